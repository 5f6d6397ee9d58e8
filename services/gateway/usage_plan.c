/* Usage plans: the shared decision rules, UTC quota windows, headers, and the in-memory store. */
#include "usage_plan.h"
#include "usage_plan_redis.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/metrics.h"
#include "sluice/time.h"

/*
 * One key's state in the in-memory store. The key id is copied once, when the key is first
 * seen; after that a check touches only this slot, so the hot path never allocates.
 */
struct mem_entry {
    char *key; /* owned; NULL = empty slot */
    size_t key_len;
    uint64_t hash;
    double tokens;     /* current bucket level as of ts_ms */
    int64_t ts_ms;     /* last refill time */
    int64_t window_ms; /* start of the quota window `used` counts in; -1 = none yet */
    uint64_t used;
};

/*
 * Open addressing with linear probing; keys are never removed (their number is bounded by the
 * keys file), so no tombstones are needed. The table doubles at 70 % load.
 */
struct mem_table {
    struct mem_entry *slots;
    size_t cap; /* power of two */
    size_t count;
};

struct gw_usage {
    uv_loop_t *loop;
    struct gw_usage_opts opts;
    char *redis_url; /* owned copy behind opts.redis_url */
    struct gw_usage__metrics metrics;
    struct gw_usage_backend *backend;  /* in memory (below) or in Redis */
    struct gw_usage_backend *fallback; /* with Redis: the in-memory store it falls back to */
    /* An idle handle gives the close callback a loop turn of its own, as libuv promises. */
    uv_idle_t close_handle;
    int closing;
    int close_pending; /* parts still closing: the handle, the backend */
    gw_usage_close_cb close_cb;
    void *close_opaque;
};

void gw_usage_opts_default(struct gw_usage_opts *opts) {
    *opts = (struct gw_usage_opts){
        .redis_url = NULL,
        .fail_open = false,
        .timeout_ms = 100,
        .connect_timeout_ms = 1000,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 5000,
        .max_in_flight = 10000,
        .redis_server_time = true,
        .memory_initial_keys = 1024,
    };
}

bool gw_usage_allowed(const struct gw_usage_decision *d) {
    return d->outcome == GW_USAGE_ALLOWED || d->outcome == GW_USAGE_BACKEND_ERROR_OPEN;
}

const char *gw_usage_outcome_name(enum gw_usage_outcome o) {
    switch (o) {
    case GW_USAGE_ALLOWED:
        return "allowed";
    case GW_USAGE_THROTTLED:
        return "throttled";
    case GW_USAGE_QUOTA_EXCEEDED:
        return "quota_exceeded";
    case GW_USAGE_BACKEND_ERROR_OPEN:
        return "backend_error_open";
    case GW_USAGE_BACKEND_ERROR_DENY:
        return "backend_error_deny";
    }
    return "unknown";
}

/* ---- UTC quota windows ---- */

/* The windows are sl_time_utc_window's; the Redis script computes the same ones in Lua (it has
 * no timegm), so a window moved here must move there too. */
int gw_quota_window(enum sl_quota_period period, int64_t now_ms, int64_t *start_ms,
                    int64_t *end_ms) {
    enum sl_time_unit unit;
    if (now_ms < 0)
        return -EINVAL;
    switch (period) {
    case SL_QUOTA_DAY:
        unit = SL_TIME_DAY;
        break;
    case SL_QUOTA_WEEK:
        unit = SL_TIME_WEEK;
        break;
    case SL_QUOTA_MONTH:
        unit = SL_TIME_MONTH;
        break;
    default:
        return -EINVAL;
    }
    return sl_time_utc_window(unit, now_ms, start_ms, end_ms);
}

/* ---- metrics ---- */

static int register_metrics(struct sl_metrics *reg, struct gw_usage__metrics *m) {
    struct sl_metric_family *thr = sl_metrics_counter(
        reg, "sluice_gateway_throttled_total",
        "Requests rejected by a usage-plan throttle (token bucket empty).", NULL);
    struct sl_metric_family *quota = sl_metrics_counter(
        reg, "sluice_gateway_quota_exceeded_total",
        "Requests rejected because the key's usage-plan quota is exhausted.", NULL);
    struct sl_metric_family *errs = sl_metrics_counter(
        reg, "sluice_gateway_ratelimit_backend_errors_total",
        "Usage-plan checks no store could decide (fail-open allowed, fail-closed answered 503).",
        "mode");
    struct sl_metric_family *fb = sl_metrics_counter(
        reg, "sluice_gateway_ratelimit_fallbacks_total",
        "Usage-plan checks meant for Redis decided by this replica's in-memory store, by reason.",
        "reason");
    struct sl_metric_family *lat = sl_metrics_histogram(
        reg, "sluice_gateway_ratelimit_redis_seconds", "Round trip of a usage-plan Redis call.",
        NULL, sl_metrics_latency_buckets, sl_metrics_latency_nbuckets);
    if (!thr || !quota || !errs || !lat || !fb)
        return -EINVAL;
    static const char *const reasons[GW_USAGE_FB_COUNT] = {
        [GW_USAGE_FB_REDIS_DOWN] = "redis_down",
        [GW_USAGE_FB_IN_FLIGHT_CAP] = "in_flight_cap",
        [GW_USAGE_FB_TIMEOUT] = "timeout",
        [GW_USAGE_FB_REDIS_ERROR] = "redis_error",
    };
    for (size_t i = 0; i < GW_USAGE_FB_COUNT; i++)
        if (!(m->fallback[i] = sl_metric_child1(fb, reasons[i])))
            return -ENOMEM;
    m->throttled = sl_metric_get(thr);
    m->quota_exceeded = sl_metric_get(quota);
    m->err_open = sl_metric_child1(errs, "fail_open");
    m->err_closed = sl_metric_child1(errs, "fail_closed");
    m->redis_seconds = sl_metric_get(lat);
    if (!m->throttled || !m->quota_exceeded || !m->err_open || !m->err_closed || !m->redis_seconds)
        return -ENOMEM;
    return 0;
}

/* ---- in-memory store ---- */

static int mem_init(struct mem_table *t, size_t hint) {
    size_t cap = 16;
    while (cap < hint * 2 && cap < ((size_t)1 << 40))
        cap <<= 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (!t->slots)
        return -ENOMEM;
    t->cap = cap;
    t->count = 0;
    return 0;
}

static void mem_free(struct mem_table *t) {
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].key);
    free(t->slots);
    t->slots = NULL;
}

static int mem_grow(struct mem_table *t) {
    size_t ncap = t->cap * 2;
    struct mem_entry *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        struct mem_entry *e = &t->slots[i];
        if (!e->key)
            continue;
        size_t j = (size_t)e->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Finds the key's entry, creating it (full bucket, no quota use) on first sight. */
static struct mem_entry *mem_get(struct mem_table *t, const char *key, size_t n, double burst,
                                 int64_t now_ms) {
    /* Key ids come from the operator's keys file, not from clients: no DoS hardening. */
    uint64_t h = sl_fnv1a(key, n);
    size_t i = (size_t)h & (t->cap - 1);
    for (;;) {
        struct mem_entry *e = &t->slots[i];
        if (!e->key)
            break;
        if (e->hash == h && e->key_len == n && memcmp(e->key, key, n) == 0)
            return e;
        i = (i + 1) & (t->cap - 1);
    }
    if ((t->count + 1) * 10 > t->cap * 7) {
        if (mem_grow(t) != 0)
            return NULL;
        return mem_get(t, key, n, burst, now_ms);
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, key, n);
    copy[n] = '\0';
    t->slots[i] = (struct mem_entry){
        .key = copy,
        .key_len = n,
        .hash = h,
        .tokens = burst,
        .ts_ms = now_ms,
        .window_ms = -1,
        .used = 0,
    };
    t->count++;
    return &t->slots[i];
}

static double effective_burst(const struct sl_plan *p) {
    return p->burst < 1 ? 1.0 : (double)p->burst;
}

/*
 * The decision for one key. The Redis script (usage_plan_redis.c) is the same algorithm in Lua;
 * keep the two in step.
 */
static void mem_decide(struct mem_entry *e, const struct sl_plan *p, int64_t now_ms,
                       struct gw_usage_decision *d) {
    bool throttle = p->rate > 0;
    bool quota = p->quota_limit > 0;
    double burst = effective_burst(p);
    int64_t ws = 0, we = 0;

    if (throttle) {
        /* A clock that steps back refills nothing; time never runs backwards for a bucket. */
        if (now_ms > e->ts_ms) {
            e->tokens += (double)(now_ms - e->ts_ms) * p->rate / 1000.0;
            e->ts_ms = now_ms;
        }
        if (e->tokens > burst)
            e->tokens = burst;
    }
    if (quota) {
        int rc = gw_quota_window(p->quota_period, now_ms, &ws, &we);
        SL_ASSERT(rc == 0); /* gw_usage_check refused plans without a valid period */
        if (e->window_ms != ws) {
            e->window_ms = ws;
            e->used = 0;
        }
    }

    *d = (struct gw_usage_decision){.outcome = GW_USAGE_ALLOWED};
    if (quota && e->used >= p->quota_limit) {
        d->outcome = GW_USAGE_QUOTA_EXCEEDED;
        d->retry_after_s = gw_usage__ceil_s(we - now_ms);
    } else if (throttle && e->tokens < 1.0) {
        d->outcome = GW_USAGE_THROTTLED;
        uint32_t s = gw_usage__ceil_s((int64_t)ceil((1.0 - e->tokens) * 1000.0 / p->rate));
        d->retry_after_s = s < 1 ? 1 : s;
    } else {
        if (throttle)
            e->tokens -= 1.0;
        if (quota)
            e->used++;
    }
    if (throttle) {
        d->tokens_remaining = (uint32_t)floor(e->tokens);
        d->tokens_full_s = gw_usage__ceil_s((int64_t)ceil((burst - e->tokens) * 1000.0 / p->rate));
    }
    if (quota) {
        d->quota_remaining = p->quota_limit - e->used;
        d->quota_reset_s = gw_usage__ceil_s(we - now_ms);
    }
}

/* The in-memory store as a backend: this process's table, answered before check returns. */
struct mem_backend {
    struct gw_usage_backend base;
    const struct gw_usage__metrics *m;
    bool fail_open;
    struct mem_table mem;
};

static int mem_check(struct gw_usage_backend *b, const char *key_id, size_t key_len,
                     const struct sl_plan *plan, int64_t now_ms, gw_usage_cb cb, void *opaque) {
    struct mem_backend *mb = (struct mem_backend *)b;
    struct mem_entry *e = mem_get(&mb->mem, key_id, key_len, effective_burst(plan), now_ms);
    if (!e) {
        /* Out of memory for a new key is a backend failure like Redis being down. */
        gw_usage__deliver_error(mb->m, mb->fail_open, -ENOMEM, true, cb, opaque);
        return 0;
    }
    struct gw_usage_decision d;
    mem_decide(e, plan, now_ms, &d);
    gw_usage__deliver(mb->m, cb, opaque, &d);
    return 0;
}

static int mem_ready(const struct gw_usage_backend *b) {
    (void)b;
    return 1;
}

static void mem_close(struct gw_usage_backend *b, void (*done)(void *arg), void *arg) {
    struct mem_backend *mb = (struct mem_backend *)b;
    mem_free(&mb->mem);
    free(mb);
    if (done)
        done(arg);
}

static const struct gw_usage_backend_ops mem_ops = {
    .check = mem_check,
    .ready = mem_ready,
    .close = mem_close,
};

static int mem_backend_new(const struct gw_usage_opts *opts, const struct gw_usage__metrics *m,
                           struct gw_usage_backend **out) {
    struct mem_backend *mb = calloc(1, sizeof *mb);
    if (!mb)
        return -ENOMEM;
    *mb = (struct mem_backend){.base = {.ops = &mem_ops}, .m = m, .fail_open = opts->fail_open};
    int rc = mem_init(&mb->mem, opts->memory_initial_keys);
    if (rc != 0) {
        free(mb);
        return rc;
    }
    *out = &mb->base;
    return 0;
}

/* ---- the object ---- */

int gw_usage_new(uv_loop_t *loop, const struct gw_usage_opts *opts, struct sl_metrics *metrics,
                 struct gw_usage **out) {
    if (!loop || !opts || !out || opts->timeout_ms == 0 || opts->connect_timeout_ms == 0 ||
        opts->reconnect_min_ms == 0 || opts->reconnect_max_ms < opts->reconnect_min_ms ||
        opts->max_in_flight == 0)
        return -EINVAL;
    struct gw_usage *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    int rc;
    u->loop = loop;
    u->opts = *opts;
    if (opts->redis_url && opts->redis_url[0]) {
        u->redis_url = strdup(opts->redis_url);
        if (!u->redis_url) {
            rc = -ENOMEM;
            goto err;
        }
        u->opts.redis_url = u->redis_url;
    } else {
        u->opts.redis_url = NULL;
    }
    if (metrics && (rc = register_metrics(metrics, &u->metrics)) != 0)
        goto err;
    /* With Redis, the in-memory store decides whatever Redis cannot answer in time. */
    if ((rc = mem_backend_new(&u->opts, &u->metrics,
                              u->opts.redis_url ? &u->fallback : &u->backend)) != 0)
        goto err;
    if (u->opts.redis_url &&
        (rc = gw_usage_redis_new(loop, &u->opts, &u->metrics, u->fallback, &u->backend)) != 0) {
        u->fallback->ops->close(u->fallback, NULL, NULL);
        goto err;
    }
    /* Last, so that nothing after it can fail: a handle cannot be un-initialised synchronously. */
    if ((rc = uv_idle_init(loop, &u->close_handle)) != 0) {
        /* Unreachable in practice (uv_idle_init cannot fail); keep the contract anyway. */
        u->backend->ops->close(u->backend, NULL, NULL);
        if (u->fallback)
            u->fallback->ops->close(u->fallback, NULL, NULL);
        goto err;
    }
    u->close_handle.data = u;
    *out = u;
    return 0;
err:
    free(u->redis_url);
    free(u);
    return rc;
}

int gw_usage_backend_ready(const struct gw_usage *u) {
    return u->backend->ops->ready(u->backend);
}

int gw_usage_check(struct gw_usage *u, const char *key_id, const struct sl_plan *plan,
                   int64_t now_ms, gw_usage_cb cb, void *opaque) {
    if (!u || !key_id || !plan || !cb)
        return -EINVAL;
    if (u->closing)
        return SL_ERR_CLOSED;
    size_t n = strnlen(key_id, GW_USAGE_KEY_ID_MAX + 1);
    if (n == 0 || n > GW_USAGE_KEY_ID_MAX || !(plan->rate >= 0) || isinf(plan->rate) || now_ms < 0)
        return -EINVAL;
    if (plan->quota_limit > 0 && plan->quota_period != SL_QUOTA_DAY &&
        plan->quota_period != SL_QUOTA_WEEK && plan->quota_period != SL_QUOTA_MONTH)
        return -EINVAL; /* a quota needs a window; the Redis script knows only these three */
    if (plan->rate == 0 && plan->quota_limit == 0) {
        struct gw_usage_decision d = {.outcome = GW_USAGE_ALLOWED};
        cb(&d, opaque);
        return 0;
    }
    return u->backend->ops->check(u->backend, key_id, n, plan, now_ms, cb, opaque);
}

static void finish_close(struct gw_usage *u) {
    if (--u->close_pending > 0)
        return;
    if (u->close_cb)
        u->close_cb(u, u->close_opaque);
    free(u->redis_url);
    free(u);
}

static void on_close_handle(uv_handle_t *h) {
    finish_close(h->data);
}

static void on_backend_closed(void *arg) {
    finish_close(arg);
}

void gw_usage_close(struct gw_usage *u, gw_usage_close_cb close_cb, void *opaque) {
    SL_ASSERT(!u->closing);
    u->closing = 1;
    u->close_cb = close_cb;
    u->close_opaque = opaque;
    u->close_pending = 2;
    uv_close((uv_handle_t *)&u->close_handle, on_close_handle);
    /* Redis first: the calls it fails on closing are answered, never sent to the fallback. */
    u->backend->ops->close(u->backend, on_backend_closed, u);
    if (u->fallback)
        u->fallback->ops->close(u->fallback, NULL, NULL);
}

/* ---- headers ---- */

static uint32_t period_seconds(enum sl_quota_period p) {
    switch (p) {
    case SL_QUOTA_DAY:
        return 86400;
    case SL_QUOTA_WEEK:
        return 604800;
    case SL_QUOTA_MONTH:
        return 2592000;
    default:
        return 0;
    }
}

/*
 * The headers are written with literals and sl_u64_dec into out->buf, each value NUL-terminated:
 * they go out on every request a plan lets through, and vsnprintf is far dearer for the three
 * of them (bench/gateway).
 */
struct hdr_writer {
    struct gw_usage_headers *out;
    size_t used;  /* bytes of out->buf taken, terminators included */
    size_t start; /* where the value being written begins */
    bool full;
};

static void w_bytes(struct hdr_writer *w, const char *p, size_t n) {
    if (w->full || n >= sizeof w->out->buf - w->used) {
        w->full = true;
        return;
    }
    memcpy(w->out->buf + w->used, p, n);
    w->used += n;
}

static void w_uint(struct hdr_writer *w, uint64_t v) {
    char d[SL_U64_DEC_MAX];
    w_bytes(w, d, sl_u64_dec(d, v));
}

/* One list item: `<head><a><mid><b>`, e.g. "burst";q=2000;w=2. */
static void w_item(struct hdr_writer *w, const char *head, uint64_t a, const char *mid,
                   uint64_t b) {
    w_bytes(w, head, strlen(head));
    w_uint(w, a);
    w_bytes(w, mid, strlen(mid));
    w_uint(w, b);
}

/* Ends the value being written as header `name`; SL_ERR_TOO_LARGE if it did not fit. */
static int w_header(struct hdr_writer *w, const char *name, size_t name_len) {
    struct gw_usage_headers *out = w->out;
    if (w->full || w->used >= sizeof out->buf || out->n >= GW_USAGE_MAX_HEADERS)
        return SL_ERR_TOO_LARGE;
    out->buf[w->used] = '\0';
    out->h[out->n].name = (struct sl_str){.p = name, .len = name_len};
    out->h[out->n].value = (struct sl_str){.p = out->buf + w->start, .len = w->used - w->start};
    out->n++;
    w->start = ++w->used;
    return 0;
}

#define W_HEADER(w, lit) w_header((w), (lit), sizeof(lit) - 1)

int gw_usage_headers(const struct sl_plan *plan, const struct gw_usage_decision *d,
                     struct gw_usage_headers *out) {
    out->n = 0;
    struct hdr_writer w = {.out = out};
    bool throttle = plan->rate > 0;
    bool quota = plan->quota_limit > 0;
    bool known = d->outcome == GW_USAGE_ALLOWED || d->outcome == GW_USAGE_THROTTLED ||
                 d->outcome == GW_USAGE_QUOTA_EXCEEDED;
    int rc = 0;
    double burst = effective_burst(plan); /* a whole number: sl_plan.burst is an integer */
    /* Seconds a drained bucket takes to be full again: the bucket's "window". */
    uint32_t burst_w = 0;
    if (throttle) {
        double bw = ceil(burst / plan->rate);
        burst_w = bw < 1 ? 1 : (bw > UINT32_MAX ? UINT32_MAX : (uint32_t)bw);
    }
    const char *sep = throttle && quota ? ", " : "";
    if (throttle || quota) {
        if (throttle)
            w_item(&w, "\"burst\";q=", (uint64_t)burst, ";w=", burst_w);
        w_bytes(&w, sep, strlen(sep));
        if (quota)
            w_item(&w, "\"quota\";q=", plan->quota_limit,
                   ";w=", period_seconds(plan->quota_period));
        rc = W_HEADER(&w, "RateLimit-Policy");
    }
    if (rc == 0 && known && (throttle || quota)) {
        if (throttle)
            w_item(&w, "\"burst\";r=", d->tokens_remaining, ";t=", d->tokens_full_s);
        w_bytes(&w, sep, strlen(sep));
        if (quota)
            w_item(&w, "\"quota\";r=", d->quota_remaining, ";t=", d->quota_reset_s);
        rc = W_HEADER(&w, "RateLimit");
    }
    if (rc == 0 && (d->outcome == GW_USAGE_THROTTLED || d->outcome == GW_USAGE_QUOTA_EXCEEDED ||
                    d->outcome == GW_USAGE_BACKEND_ERROR_DENY)) {
        w_uint(&w, d->retry_after_s);
        rc = W_HEADER(&w, "Retry-After");
    }
    if (rc != 0)
        out->n = 0;
    return rc;
}
