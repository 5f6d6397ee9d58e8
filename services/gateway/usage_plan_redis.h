/* The Redis store of usage plans: one backend implementation (usage_plan_backend.h). */
#ifndef SLUICE_GATEWAY_USAGE_PLAN_REDIS_H
#define SLUICE_GATEWAY_USAGE_PLAN_REDIS_H

#include <uv.h>

#include "usage_plan_backend.h"

/* Starts connecting to opts->redis_url at once; SL_ERR_CONFIG for a bad URL, -ENOMEM. The
 * metrics and `fallback` (the in-memory store that decides checks Redis cannot: not connected,
 * max_in_flight reached, timed out, an error reply) are borrowed for the backend's life; once
 * closing it never touches `fallback` again. */
int gw_usage_redis_new(uv_loop_t *loop, const struct gw_usage_opts *opts,
                       const struct gw_usage__metrics *m, struct gw_usage_backend *fallback,
                       struct gw_usage_backend **out);

#endif
