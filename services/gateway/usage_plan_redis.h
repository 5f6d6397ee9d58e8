/* The Redis store of usage plans: one backend implementation (usage_plan_backend.h). */
#ifndef SLUICE_GATEWAY_USAGE_PLAN_REDIS_H
#define SLUICE_GATEWAY_USAGE_PLAN_REDIS_H

#include <uv.h>

#include "usage_plan_backend.h"

/* Starts connecting to opts->redis_url at once; SL_ERR_CONFIG for a bad URL, -ENOMEM. The
 * metrics are borrowed for the backend's life. */
int gw_usage_redis_new(uv_loop_t *loop, const struct gw_usage_opts *opts,
                       const struct gw_usage__metrics *m, struct gw_usage_backend **out);

#endif
