/* The worker service object: consumer group on requests, the handler pool, replies and DLQ. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <uv.h>

#include "settings.h"
#include "sluice/buf.h"

struct wk_worker;

/*
 * Lifecycle: wk_worker_new (loads routes, resolves SLUICE_HANDLER_USER when root, registers
 * metrics; nothing runs yet) ->
 * wk_worker_start (admin listener first, so /healthz answers while Kafka is waited for; topics
 * checked, Kafka clients, children spawned, group joined) -> wk_worker_stop (stop fetching, finish
 * or fail in-flight within the grace period, store and commit offsets, stop children, leave); the
 * worker frees itself before stop's callback runs. Settings and kafka_props are borrowed and must
 * outlive the worker. `exe` is the path of this binary, run with --child for each handler process.
 */
int wk_worker_new(uv_loop_t *loop, const struct wk_settings *s, const char *const *kafka_props,
                  const char *instance_id, const char *exe, struct wk_worker **out,
                  struct sl_buf *errors);
int wk_worker_start(struct wk_worker *w, struct sl_buf *errors);
void wk_worker_stop(struct wk_worker *w, void (*cb)(void *data), void *data);

#endif
