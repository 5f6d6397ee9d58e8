/* Usage plans: per-key token-bucket throttle and UTC-aligned quota, in memory or in Redis. */
#ifndef SLUICE_GATEWAY_USAGE_PLAN_H
#define SLUICE_GATEWAY_USAGE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/http.h"
#include "sluice/plan.h"
#include "usage_plan_backend.h"

struct sl_metrics;

/*
 * The usage-plan step of the gateway pipeline (docs/gateway-usage-plans.md).
 *
 * One object, `struct gw_usage`, answers "may this key make a request now?" for every key. Its
 * state lives in this process (the in-memory backend) or in Redis (shared by every gateway
 * replica, when `redis_url` is set). Both backends implement the same decision:
 *
 *   throttle: a token bucket per key, `rate` tokens/s refill, `burst` capacity, full at first use;
 *   quota:    `quota_limit` requests per UTC day / ISO week (Monday) / calendar month.
 *
 * A request is allowed only if a token is available AND the quota has room; only then are both
 * consumed. When both are exhausted the answer is QUOTA_EXCEEDED, because retrying after the
 * throttle's second would not help the client.
 *
 * Ownership and lifecycle (libuv style): gw_usage_new() -> gw_usage_check()* ->
 * gw_usage_close(); the object and everything it owns is freed right after its close callback
 * returns. Everything runs on the loop thread.
 *
 * Callbacks: if gw_usage_check() returns an error, its callback never runs. Otherwise the callback
 * runs exactly once. It runs SYNCHRONOUSLY, before gw_usage_check() returns, whenever the answer
 * needs no I/O: always with the in-memory backend, and with the Redis backend when the plan has no
 * limits or Redis cannot take the call (not connected, max_in_flight reached: the in-memory
 * store decides at once, never queues). Otherwise it runs later from the loop,
 * after the Redis reply, after the call timeout (decided in memory), or when the object is closed
 * (with an error outcome). Callers therefore call gw_usage_check() as the last thing a pipeline
 * step does and continue in the callback.
 */
struct gw_usage;

/* Called once the object is closed; `u` is freed right after it returns. */
typedef void (*gw_usage_close_cb)(struct gw_usage *u, void *opaque);

void gw_usage_opts_default(struct gw_usage_opts *opts);

/*
 * Creates the object on `loop`. With a Redis URL it starts connecting at once (the first checks
 * fail fast until connected; see gw_usage_backend_ready). `metrics` may be NULL; otherwise the
 * families below are registered in it (so one registry serves one gw_usage):
 *   sluice_gateway_throttled_total, sluice_gateway_quota_exceeded_total,
 *   sluice_gateway_ratelimit_backend_errors_total{mode="fail_open|fail_closed"},
 *   sluice_gateway_ratelimit_fallbacks_total{reason="redis_down|in_flight_cap|timeout|redis_error"},
 *   sluice_gateway_ratelimit_redis_seconds (histogram, Redis round trips).
 * Returns 0, -EINVAL (bad options or duplicate metric names), SL_ERR_CONFIG (bad URL), -ENOMEM.
 */
int gw_usage_new(uv_loop_t *loop, const struct gw_usage_opts *opts, struct sl_metrics *metrics,
                 struct gw_usage **out);

/*
 * Decides for one request of key `key_id` (1..GW_USAGE_KEY_ID_MAX bytes) under `plan` (copied
 * as needed; rate 0 = no throttle, quota_limit 0 = no quota, burst 0 with a rate counts as 1;
 * a quota needs quota_period DAY, WEEK or MONTH).
 * `now_ms` is epoch milliseconds (the injectable clock; the Redis backend ignores it unless
 * redis_server_time is false). Returns 0 (callback runs exactly once, maybe before this returns),
 * -EINVAL, or SL_ERR_CLOSED after gw_usage_close (callback never runs).
 */
int gw_usage_check(struct gw_usage *u, const char *key_id, const struct sl_plan *plan,
                   int64_t now_ms, gw_usage_cb cb, void *opaque);

/* 1 when checks reach the backend (always for memory; Redis connected and script loaded). */
int gw_usage_backend_ready(const struct gw_usage *u);

/*
 * Starts closing: checks still awaiting Redis get their callback now with BACKEND_ERROR_* and
 * error SL_ERR_CLOSED, the connection and timers are closed, then `close_cb` (may be NULL) runs
 * from the loop and the object is freed. Call once.
 */
void gw_usage_close(struct gw_usage *u, gw_usage_close_cb close_cb, void *opaque);

/* True for ALLOWED and BACKEND_ERROR_OPEN: the pipeline proceeds. */
bool gw_usage_allowed(const struct gw_usage_decision *d);
/* "allowed", "throttled", "quota_exceeded", "backend_error_open", "backend_error_deny". */
const char *gw_usage_outcome_name(enum gw_usage_outcome o);

/*
 * The quota window containing `now_ms` (epoch ms, >= 0) for `period`, as [start, end) epoch ms,
 * aligned to UTC: day = midnight, week = Monday 00:00, month = the 1st 00:00. -EINVAL for
 * SL_QUOTA_NONE, an unknown period or a negative time.
 */
int gw_quota_window(enum sl_quota_period period, int64_t now_ms, int64_t *start_ms,
                    int64_t *end_ms);

/*
 * Response headers for a decision, in the style of draft-ietf-httpapi-ratelimit-headers:
 *
 *   RateLimit-Policy: "burst";q=<burst>;w=<ceil(burst/rate)>, "quota";q=<limit>;w=<window s>
 *   RateLimit: "burst";r=<tokens left>;t=<s until full>, "quota";r=<left>;t=<s until reset>
 *   Retry-After: <s>                 (THROTTLED, QUOTA_EXCEEDED and BACKEND_ERROR_DENY only)
 *
 * An item is present only if the plan has that limit (no throttle: no "burst" item; no limits
 * at all: no RateLimit* headers). The quota window `w` is 86400 (day), 604800 (week) or 2592000
 * (month, nominal 30 days; `t` gives the exact reset). RateLimit is left out for backend
 * errors (the state is unknown). The slices point into `out->buf`: keep `out` alive while the
 * headers are used; sl_http_respond() copies them.
 */
#define GW_USAGE_MAX_HEADERS 3
struct gw_usage_headers {
    struct sl_http_header h[GW_USAGE_MAX_HEADERS];
    size_t n;
    char buf[320];
};
int gw_usage_headers(const struct sl_plan *plan, const struct gw_usage_decision *d,
                     struct gw_usage_headers *out);

#endif
