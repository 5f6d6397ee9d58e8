/* Requests in flight: their objects and references, and the table of those awaiting a reply. */
#ifndef SLUICE_GATEWAY_INFLIGHT_H
#define SLUICE_GATEWAY_INFLIGHT_H

#include <stddef.h>
#include <uv.h>

#include "state.h"

/* A request object for g with one reference (the answer's), or NULL when memory is short. */
struct gw_req *gw_req_new(struct gw_gateway *g);
/* Drops a reference; the last one recycles the object (and calls g->on_idle when set). */
void gw_req_unref(struct gw_req *r);
/* Frees the recycled request objects (at gateway teardown). */
void gw_req_free_list(struct gw_gateway *g);

/* The table holds at most max requests; its buckets are allocated here, once. */
int gw_inflight_init(struct gw_inflight *t, size_t max);
void gw_inflight_free(struct gw_inflight *t);
/* 0, or SL_ERR_TOO_LARGE when the table holds max requests already. */
int gw_inflight_add(struct gw_inflight *t, struct gw_req *r);
struct gw_req *gw_inflight_find(struct gw_inflight *t, const char *id, size_t len);
void gw_inflight_remove(struct gw_inflight *t, struct gw_req *r);

/* Starts waiting for the reply: in the table, and a timer that calls cb after timeout_ms
 * (with the request as the timer's data) unless the wait ends first. */
int gw_await_start(struct gw_req *r, uv_timer_cb cb, uint64_t timeout_ms);
/* Leaves the waiting state: out of the table, timer stopped and closed. */
void gw_await_end(struct gw_req *r);

#endif
