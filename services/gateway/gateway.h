/* sluice-gateway as a library: build it from settings, start it on a loop, reload, stop. */
#ifndef SLUICE_GATEWAY_H
#define SLUICE_GATEWAY_H

#include <stdbool.h>

#include <uv.h>

#include "settings.h"
#include "sluice/buf.h"

/*
 * The gateway service object. Lifecycle: gw_gateway_new (loads routes, keys, CORS; validates
 * everything, every problem a line in err; connects nothing; with `check` the usage-plan store
 * only checks its URL and never connects, for --check) -> gw_gateway_start (admin listener, topic
 * check, producers, reply-partition assignment positioned at the end, then the HTTP listener: HTTP
 * is served only once replies can be received) -> gw_gateway_reload (SIGHUP) -> gw_gateway_stop
 * (graceful: stop accepting, drain in-flight requests up to drain_timeout, flush Kafka, close
 * everything, then the callback; the object is freed right before it runs).
 * All calls on the loop thread. `settings` and `kafka_props` are borrowed and must outlive
 * the gateway.
 */
struct gw_gateway;

int gw_gateway_new(uv_loop_t *loop, const struct gw_settings *settings,
                   const char *const *kafka_props, const char *hostname, bool check,
                   struct gw_gateway **out, struct sl_buf *err);
/* Returns 0 once serving; on failure err says why and the caller must still gw_gateway_stop. */
int gw_gateway_start(struct gw_gateway *g, struct sl_buf *err);
/* Re-reads the keys file now (SIGHUP). */
void gw_gateway_reload(struct gw_gateway *g);
void gw_gateway_stop(struct gw_gateway *g, void (*cb)(void *data), void *data);

/* The bound ports (useful with port 0 in tests), or a negative code. */
int gw_gateway_http_port(const struct gw_gateway *g);
int gw_gateway_admin_port(const struct gw_gateway *g);

#endif
