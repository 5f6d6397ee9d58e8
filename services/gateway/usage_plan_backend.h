/* What the usage-plan store implementations share, beneath usage_plan.c which picks one. */
#ifndef SLUICE_GATEWAY_USAGE_PLAN_BACKEND_H
#define SLUICE_GATEWAY_USAGE_PLAN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/plan.h"

struct sl_metric;

/* Longest key id accepted (bytes); key ids are the keys file's ids, never key values. */
#define GW_USAGE_KEY_ID_MAX 128

enum gw_usage_outcome {
    GW_USAGE_ALLOWED = 0,        /* proceed; a token and one unit of quota were consumed */
    GW_USAGE_THROTTLED,          /* 429 TooManyRequestsException, Retry-After */
    GW_USAGE_QUOTA_EXCEEDED,     /* 429 LimitExceededException, Retry-After */
    GW_USAGE_BACKEND_ERROR_OPEN, /* no store could decide, fail-open: proceed without limits */
    GW_USAGE_BACKEND_ERROR_DENY, /* no store could decide, fail-closed: 503, Retry-After */
};

/*
 * Why a check meant for Redis was decided by the in-memory store instead (the label of
 * sluice_gateway_ratelimit_fallbacks_total{reason}).
 */
enum gw_usage_fallback {
    GW_USAGE_FB_REDIS_DOWN = 0, /* not connected (down, connecting, reconnect backoff, reset) */
    GW_USAGE_FB_IN_FLIGHT_CAP,  /* max_in_flight calls already await Redis */
    GW_USAGE_FB_TIMEOUT,        /* the call outlived timeout_ms */
    GW_USAGE_FB_REDIS_ERROR,    /* an error or unexpected reply, or no memory for the call */
    GW_USAGE_FB_COUNT
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
/* Settings; gw_usage_opts_default() fills the defaults shown in brackets. */
struct gw_usage_opts {
    const char *redis_url; /* [NULL] SLUICE_REDIS_URL; NULL or "" = in memory; copied */
    bool fail_open;        /* [false] SLUICE_REDIS_FAIL_OPEN: allow when no store can decide */
    uint32_t timeout_ms;   /* [100] SLUICE_REDIS_TIMEOUT_MS: per Redis call */
    uint32_t connect_timeout_ms; /* [1000] SLUICE_REDIS_CONNECT_TIMEOUT_MS: connect + handshake */
    uint32_t reconnect_min_ms;   /* [100] first reconnect delay; doubles on each failure... */
    uint32_t reconnect_max_ms;   /* [5000] ...up to this (SLUICE_REDIS_RECONNECT_MAX_MS) */
    uint32_t max_in_flight;      /* [10000] Redis calls awaiting a reply; beyond: in memory */
    /*
     * [true] Redis backend: take "now" from Redis TIME inside the script, so replicas with skewed
     * clocks share one clock. false: use the caller's now_ms (tests with explicit times).
     */
    bool redis_server_time;
    uint32_t memory_initial_keys; /* [1024] in-memory table size hint; it grows as needed */
    /* [false] Check the Redis URL only, never connect (`sluice-gateway --check`). */
    bool no_connect;
};

/* Metric children; any may be NULL (no registry). Owned by the registry. */
struct gw_usage__metrics {
    struct sl_metric *throttled;
    struct sl_metric *quota_exceeded;
    struct sl_metric *err_open;
    struct sl_metric *err_closed;
    struct sl_metric *redis_seconds;
    struct sl_metric *fallback[GW_USAGE_FB_COUNT];
};

/* Counts the outcome in the metrics and runs the callback. */
void gw_usage__deliver(const struct gw_usage__metrics *m, gw_usage_cb cb, void *opaque,
                       const struct gw_usage_decision *d);
/* Delivers a backend error per the fail mode; `count` = false for closing (not a failure). */
void gw_usage__deliver_error(const struct gw_usage__metrics *m, bool fail_open, int err, bool count,
                             gw_usage_cb cb, void *opaque);
/* Converts durations in ms to whole seconds, rounding up. */
uint32_t gw_usage__ceil_s(int64_t ms);

/*
 * One store of usage-plan state. usage_plan.c validates a check and hands it to its backend
 * through these operations; a backend never calls back up except through the callbacks given.
 */
struct gw_usage_backend;
struct gw_usage_backend_ops {
    /* Decides one check; the arguments are valid and the plan has a limit. Returns 0 (the
     * callback runs exactly once, maybe before this returns) or a negative code (it never runs). */
    int (*check)(struct gw_usage_backend *b, const char *key_id, size_t key_len,
                 const struct sl_plan *plan, int64_t now_ms, gw_usage_cb cb, void *opaque);
    /* 1 when checks reach the store. */
    int (*ready)(const struct gw_usage_backend *b);
    /* Fails pending checks, releases everything, then calls done(arg) (may be NULL), from the
     * loop or before it returns. */
    void (*close)(struct gw_usage_backend *b, void (*done)(void *arg), void *arg);
};

/* The first member of each backend's own struct. */
struct gw_usage_backend {
    const struct gw_usage_backend_ops *ops;
};

#endif
