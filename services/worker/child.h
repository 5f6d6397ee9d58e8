/* The handler side: what runs inside each child process of the pool. */
#ifndef SLUICE_WORKER_CHILD_H
#define SLUICE_WORKER_CHILD_H

#include "settings.h"

/*
 * The child's whole life, in a process the supervisor started (sluice-worker --child): applies
 * the memory limit, loads the routes and the plugins (init), announces readiness with an empty
 * frame on `fd`, then answers one request frame after another with one reply frame, until the
 * supervisor closes the socket; then shuts the plugins down. Returns the process exit code.
 */
int wk_child_main(const struct wk_settings *s, int fd);

#endif
