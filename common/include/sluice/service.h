/* The start-up path every service shares: arguments, settings, Kafka properties, signals. */
#ifndef SLUICE_SERVICE_H
#define SLUICE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <uv.h>

#include "sluice/buf.h"
#include "sluice/config.h"

/*
 * A service is a library object with four hooks; sl_service_main does the rest:
 *
 *   parse --help / --version / --check / --print-config [--json] (and the service's own flags
 *   through `arg`),
 *   load the settings from `table` (every error printed, exit 2),
 *   run `divert` (a process that is not the service, such as the worker's handler child),
 *   collect the SLUICE_KAFKA_* properties,
 *   for --check and --print-config: `create` with check set (everything the service loads,
 *   nothing it connects to), `stop`, then print "ok" or the effective config,
 *   start logging, ignore SIGPIPE, turn SIGTERM/SIGINT into `stop` and SIGHUP into `reload`,
 *   `create` then `start` the service, run the loop until it has stopped.
 *
 * Exit codes: 0 after a graceful stop (also when SIGTERM/SIGINT came while it waited for Kafka),
 * 1 when the service could not start (the reason is logged) and for every problem --check finds,
 * 2 for a bad argument or invalid settings.
 *
 * Lifetimes: the settings and the Kafka properties are owned by sl_service_main and outlive
 * the service object; `create` receives them borrowed. The service object belongs to the
 * service: `stop` must free it and then call cb(data) once, on the loop.
 */
struct sl_service {
    const char *name;    /* log name; the program is "sluice-<name>" */
    const char *summary; /* --help text: what the service does, its options and signals */
    const char *checks;  /* what `create` loads, for --check's "ok" line ("keys file, routes") */
    const struct sl_config_option *table;
    size_t table_len;
    size_t settings_size; /* sizeof the struct the table fills */

    /* A service-specific argument: return 1 when it was taken, 0 when it is unknown. May be
     * NULL. */
    int (*arg)(void *ctx, const char *arg);
    /* Runs after the settings are loaded: a return >= 0 is the exit code of a process that
     * is not the service (nothing else starts), -1 goes on. May be NULL. */
    int (*divert)(void *ctx, const void *settings);
    /* Builds the service on `loop`: loads and validates every file and setting it uses. With
     * `check` (--check, --print-config) it must not connect anywhere (Kafka, Redis, S3) nor
     * change anything on disk; the object is stopped right after. On failure returns a negative
     * code with err filled, one problem per line; *obj may then be set, and is stopped to clean
     * up. */
    int (*create)(void *ctx, uv_loop_t *loop, const void *settings, const char *const *kafka_props,
                  bool check, void **obj, struct sl_buf *err);
    /* Starts it: listeners, Kafka clients, readiness. Negative code with err filled. */
    int (*start)(void *obj, struct sl_buf *err);
    /* SIGHUP (the hook logs what it reloads). May be NULL: the signal is then logged as
     * reloading nothing. */
    void (*reload)(void *obj);
    void (*stop)(void *obj, void (*cb)(void *data), void *data);
    /* --version: prints the versions of libraries only this service links. May be NULL. */
    void (*version)(FILE *out);
};

/* Runs a service as a process's main; returns its exit code. `ctx` is passed to the hooks. */
int sl_service_main(const struct sl_service *svc, void *ctx, int argc, char **argv);

/*
 * Opens /dev/null on any of file descriptors 0, 1 and 2 that is closed, so that a file opened
 * later never becomes a process's stdout by accident. The first call in every binary's main.
 * Returns a mask of the descriptors it had to open (bit 1 << fd), so that a program whose output
 * matters (a new API key) can refuse to run into /dev/null; or -errno.
 */
int sl_service_open_stdio(void);

/* Prints "<program> <version> (commit <sha>)" and the librdkafka and libuv versions. */
void sl_service_print_version(const char *program, FILE *out);

#endif
