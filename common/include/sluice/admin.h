/* The admin listener every service runs: /healthz, /readyz and /metrics over sl_http. */
#ifndef SLUICE_ADMIN_H
#define SLUICE_ADMIN_H

#include <uv.h>

#include "sluice/buf.h"

struct sl_metrics;
struct sl_admin;

/*
 * Readiness probe, called on the loop thread for each GET /readyz. Returns nonzero when the
 * service is ready; otherwise returns 0 and may append a short reason ("kafka not connected") to
 * `reason`, which /readyz returns JSON-escaped. Must not block.
 */
typedef int (*sl_admin_ready_cb)(struct sl_buf *reason, void *data);

struct sl_admin_options {
    struct sl_metrics *metrics; /* rendered on /metrics; borrowed, must outlive the admin */
    sl_admin_ready_cb ready;    /* NULL: always ready */
    void *data;                 /* passed to `ready` */
};

/*
 * Routes (GET and HEAD only; other methods get 405 with `Allow: GET, HEAD`):
 *   /healthz  200 "ok" while the process (and its loop) lives
 *   /readyz   200 "ok" when `ready` says so, else 503 {"ready":false,"reason":"..."}
 *   /metrics  200 sl_metrics_render output, Content-Type: text/plain; version=0.0.4
 *   other     404 {"message":"Not Found"}
 *
 * Lifecycle: sl_admin_init -> sl_admin_start -> sl_admin_close. The admin allocates itself in
 * init and is freed before its close callback runs; if init fails nothing is allocated. Every
 * call and callback happens on the loop thread.
 */
int sl_admin_init(struct sl_admin **out, uv_loop_t *loop, const struct sl_admin_options *opts);
/* Listens on host (an address literal) and port: SLUICE_ADMIN_LISTEN, parsed by the service's
 * settings (0.0.0.0 and 9090 by default). Errors as sl_http_server_start. */
int sl_admin_start(struct sl_admin *a, const char *host, int port);
/* The bound port after start, or a negative code. */
int sl_admin_port(const struct sl_admin *a);
/* Closes the listener and its connections; cb(data) runs once everything is freed. */
void sl_admin_close(struct sl_admin *a, void (*cb)(void *data), void *data);

#endif
