/* Usage plans: per-key token-bucket throttle and UTC-aligned quota, in memory or in Redis. */
#ifndef SLUICE_GATEWAY_USAGE_PLAN_H
#define SLUICE_GATEWAY_USAGE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/http.h"
#include "sluice/plan.h"

struct sl_metrics;
struct sl_metric;

/*
 * The usage-plan step of the gateway pipeline (DESIGN.md §4, docs/gateway-usage-plans.md).
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
 * limits or Redis is not connected (fail fast, never queue). Otherwise it runs later from the loop,
 * after the Redis reply, after the call timeout, or when the object is closed (with an error
 * outcome). Callers therefore call gw_usage_check() as the last thing a pipeline step does and
 * continue in the callback.
 */
struct gw_usage;

/* Longest key id accepted (bytes); key ids are the keys file's ids, never key values. */
#define GW_USAGE_KEY_ID_MAX 128

enum gw_usage_outcome {
    GW_USAGE_ALLOWED = 0,        /* proceed; a token and one unit of quota were consumed */
    GW_USAGE_THROTTLED,          /* 429 TooManyRequestsException, Retry-After */
    GW_USAGE_QUOTA_EXCEEDED,     /* 429 LimitExceededException, Retry-After */
    GW_USAGE_BACKEND_ERROR_OPEN, /* Redis failed, fail-open: proceed without limits */
    GW_USAGE_BACKEND_ERROR_DENY, /* Redis failed, fail-closed: 503 ServiceUnavailable, Retry-After
                                  */
};

/*
 * One decision, a plain value. For BACKEND_ERROR_* outcomes only `error` and `retry_after_s` are
 * meaningful (the state could not be read); the other numbers are 0.
 */
struct gw_usage_decision {
    enum gw_usage_outcome outcome;
    int error;                 /* 0, or why the backend failed (SL_ERR_TIMEOUT, SL_ERR_CLOSED...) */
    uint32_t retry_after_s;    /* 429/503 only: throttle: until 1 token (>= 1); quota: reset */
    uint32_t tokens_remaining; /* whole tokens left after this request (0 without throttle) */
    uint32_t tokens_full_s;    /* seconds until the bucket is full again (0 without throttle) */
    uint64_t quota_remaining;  /* requests left in this window after this one (0 without quota) */
    uint32_t quota_reset_s;    /* seconds until the quota window resets (0 without quota) */
};

/* Called exactly once per accepted gw_usage_check(); `d` is valid during the call only. */
typedef void (*gw_usage_cb)(const struct gw_usage_decision *d, void *opaque);
/* Called once the object is closed; `u` is freed right after it returns. */
typedef void (*gw_usage_close_cb)(struct gw_usage *u, void *opaque);

/* Settings; gw_usage_opts_default() fills the defaults shown in brackets. */
struct gw_usage_opts {
    const char *redis_url;       /* [NULL] SLUICE_REDIS_URL; NULL or "" = in memory; copied */
    bool fail_open;              /* [true] SLUICE_REDIS_FAIL_OPEN: allow while Redis is down */
    uint32_t timeout_ms;         /* [100] SLUICE_REDIS_TIMEOUT_MS: per Redis call */
    uint32_t connect_timeout_ms; /* [1000] SLUICE_REDIS_CONNECT_TIMEOUT_MS: connect + handshake */
    uint32_t reconnect_min_ms;   /* [100] first reconnect delay; doubles on each failure... */
    uint32_t reconnect_max_ms;   /* [5000] ...up to this (SLUICE_REDIS_RECONNECT_MAX_MS) */
    uint32_t max_in_flight;      /* [10000] Redis calls awaiting a reply; beyond: backend error */
    /*
     * [true] Redis backend: take "now" from Redis TIME inside the script, so replicas with skewed
     * clocks share one clock. false: use the caller's now_ms (tests with explicit times).
     */
    bool redis_server_time;
    uint32_t memory_initial_keys; /* [1024] in-memory table size hint; it grows as needed */
};

void gw_usage_opts_default(struct gw_usage_opts *opts);

/*
 * Creates the object on `loop`. With a Redis URL it starts connecting at once (the first checks
 * fail fast until connected; see gw_usage_backend_ready). `metrics` may be NULL; otherwise the
 * families below are registered in it (so one registry serves one gw_usage):
 *   sluice_gateway_throttled_total, sluice_gateway_quota_exceeded_total,
 *   sluice_gateway_ratelimit_backend_errors_total{mode="fail_open|fail_closed"},
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

/* ---- Internal: shared by usage_plan.c and usage_plan_redis.c, not for the pipeline. ---- */

/* Metric children; any may be NULL (no registry). Owned by the registry. */
struct gw_usage__metrics {
    struct sl_metric *throttled;
    struct sl_metric *quota_exceeded;
    struct sl_metric *err_open;
    struct sl_metric *err_closed;
    struct sl_metric *redis_seconds;
};

/* Counts the outcome in the metrics and runs the callback. */
void gw_usage__deliver(const struct gw_usage__metrics *m, gw_usage_cb cb, void *opaque,
                       const struct gw_usage_decision *d);
/* Delivers a backend error per the fail mode; `count` = false for closing (not a failure). */
void gw_usage__deliver_error(const struct gw_usage__metrics *m, bool fail_open, int err, bool count,
                             gw_usage_cb cb, void *opaque);
/* Converts durations in ms to whole seconds, rounding up. */
uint32_t gw_usage__ceil_s(int64_t ms);

struct gw_usage__redis;
int gw_usage__redis_new(uv_loop_t *loop, const struct gw_usage_opts *opts,
                        const struct gw_usage__metrics *m, struct gw_usage__redis **out);
int gw_usage__redis_check(struct gw_usage__redis *r, const char *key_id, size_t key_len,
                          const struct sl_plan *plan, int64_t now_ms, gw_usage_cb cb, void *opaque);
int gw_usage__redis_ready(const struct gw_usage__redis *r);
/* Fails pending checks, closes everything, then calls done(arg) from the loop. */
void gw_usage__redis_close(struct gw_usage__redis *r, void (*done)(void *arg), void *arg);

#endif
