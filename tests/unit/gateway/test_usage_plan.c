/* Unit tests for usage plans: UTC windows, throttle + quota rules, headers, in memory and Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "sluice/error.h"
#include "sluice/metrics.h"
#include "usage_plan.h"

#define S(sec) ((int64_t)(sec)*1000)

/* Epoch seconds of a few UTC instants (from `date -u -d ... +%s`). */
#define T_2026_11_23_MON  1795392000 /* Monday 00:00 */
#define T_2026_11_28_SAT  1795824000 /* Saturday 00:00 */
#define T_2026_11_28_LAST 1795910399 /* Saturday 23:59:59 */
#define T_2026_11_29_SUN  1795910400
#define T_2026_11_30_MON  1795996800
#define T_2026_12_01      1796083200
#define T_2026_12_28_MON  1798416000
#define T_2026_12_31_LAST 1798761599
#define T_2027_01_01      1798761600
#define T_2027_01_04_MON  1799020800
#define T_2024_02_01      1706745600
#define T_2024_02_29_NOON 1709208000
#define T_2024_03_01      1709251200
#define T_2023_02_01      1675209600
#define T_2023_02_15      1676419200
#define T_2023_03_01      1677628800
#define T_2100_02_01      4105123200
#define T_2100_03_01      4107542400
#define T_2000_02_01      949363200
#define T_2000_03_01      951868800

/* ---- helpers ---- */

struct result {
    int calls;
    struct gw_usage_decision d;
};

static void on_decision(const struct gw_usage_decision *d, void *opaque) {
    struct result *r = opaque;
    r->calls++;
    r->d = *d;
}

static struct sl_plan plan(double rate, uint32_t burst, uint64_t limit, enum sl_quota_period p) {
    struct sl_plan pl = {
        .name = "test", .rate = rate, .burst = burst, .quota_limit = limit, .quota_period = p};
    return pl;
}

struct env {
    uv_loop_t loop;
    struct sl_metrics *metrics;
    struct gw_usage *u;
    int closed;
};

static void on_closed(struct gw_usage *u, void *opaque) {
    (void)u;
    ((struct env *)opaque)->closed++;
}

static void env_open(struct env *e, const struct gw_usage_opts *o) {
    memset(e, 0, sizeof(*e));
    assert_int_equal(uv_loop_init(&e->loop), 0);
    e->metrics = sl_metrics_new();
    assert_non_null(e->metrics);
    assert_int_equal(gw_usage_new(&e->loop, o, e->metrics, &e->u), 0);
}

static void env_memory(struct env *e) {
    struct gw_usage_opts o;
    gw_usage_opts_default(&o);
    env_open(e, &o);
}

static void env_close(struct env *e) {
    gw_usage_close(e->u, on_closed, e);
    assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(e->closed, 1);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    sl_metrics_free(e->metrics);
}

/* In memory the callback runs before gw_usage_check returns. */
static struct gw_usage_decision check_now(struct gw_usage *u, const char *key,
                                          const struct sl_plan *p, int64_t now_ms) {
    struct result r = {0};
    assert_int_equal(gw_usage_check(u, key, p, now_ms, on_decision, &r), 0);
    assert_int_equal(r.calls, 1);
    return r.d;
}

static int64_t metric(struct env *e, const char *line_prefix) {
    struct sl_buf b;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_metrics_render(e->metrics, &b), 0);
    const char *p = b.data;
    int64_t v = -1;
    size_t n = strlen(line_prefix);
    while (p && *p) {
        if (strncmp(p, line_prefix, n) == 0 && p[n] == ' ') {
            v = strtoll(p + n + 1, NULL, 10);
            break;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    sl_buf_free(&b);
    return v;
}

static void window(enum sl_quota_period p, int64_t now_s, int64_t start_s, int64_t end_s) {
    int64_t s = -1, e = -1;
    assert_int_equal(gw_quota_window(p, S(now_s), &s, &e), 0);
    assert_int_equal(s, S(start_s));
    assert_int_equal(e, S(end_s));
}

/* ---- UTC windows ---- */

static void test_day_window_is_utc_midnight_to_midnight(void **state) {
    (void)state;
    window(SL_QUOTA_DAY, T_2026_11_28_SAT, T_2026_11_28_SAT, T_2026_11_29_SUN);
    window(SL_QUOTA_DAY, T_2026_11_28_LAST, T_2026_11_28_SAT, T_2026_11_29_SUN);
    window(SL_QUOTA_DAY, T_2026_11_29_SUN, T_2026_11_29_SUN, T_2026_11_29_SUN + 86400);
    window(SL_QUOTA_DAY, T_2026_12_31_LAST, T_2026_12_31_LAST + 1 - 86400, T_2027_01_01);
}

static void test_week_window_starts_monday_utc(void **state) {
    (void)state;
    window(SL_QUOTA_WEEK, T_2026_11_28_LAST, T_2026_11_23_MON, T_2026_11_30_MON);
    window(SL_QUOTA_WEEK, T_2026_11_23_MON, T_2026_11_23_MON, T_2026_11_30_MON);
    window(SL_QUOTA_WEEK, T_2026_11_23_MON - 1, T_2026_11_23_MON - 7 * 86400, T_2026_11_23_MON);
    /* Across the year end: Thursday 2026-12-31 belongs to the week of Monday 2026-12-28. */
    window(SL_QUOTA_WEEK, T_2026_12_31_LAST, T_2026_12_28_MON, T_2027_01_04_MON);
    window(SL_QUOTA_WEEK, T_2027_01_01, T_2026_12_28_MON, T_2027_01_04_MON);
    /* The epoch itself was a Thursday. */
    window(SL_QUOTA_WEEK, 0, -3 * 86400, 4 * 86400);
}

static void test_month_window_handles_month_ends_leap_years_and_year_end(void **state) {
    (void)state;
    window(SL_QUOTA_MONTH, T_2024_02_29_NOON, T_2024_02_01, T_2024_03_01); /* leap: 29 days */
    window(SL_QUOTA_MONTH, T_2024_03_01 - 1, T_2024_02_01, T_2024_03_01);
    window(SL_QUOTA_MONTH, T_2024_03_01, T_2024_03_01, T_2024_03_01 + 31 * 86400);
    window(SL_QUOTA_MONTH, T_2023_02_15, T_2023_02_01, T_2023_03_01);     /* 28 days */
    window(SL_QUOTA_MONTH, T_2100_02_01 + 5, T_2100_02_01, T_2100_03_01); /* not leap */
    window(SL_QUOTA_MONTH, T_2000_02_01 + 5, T_2000_02_01, T_2000_03_01); /* leap (400) */
    window(SL_QUOTA_MONTH, T_2026_11_28_LAST, T_2026_12_01 - 30 * 86400, T_2026_12_01);
    window(SL_QUOTA_MONTH, T_2026_12_31_LAST, T_2026_12_01, T_2027_01_01);
    window(SL_QUOTA_MONTH, T_2027_01_01, T_2027_01_01, T_2027_01_01 + 31 * 86400);
}

static void test_window_rejects_no_period_and_negative_time(void **state) {
    (void)state;
    int64_t s, e;
    assert_int_equal(gw_quota_window(SL_QUOTA_NONE, 0, &s, &e), -EINVAL);
    assert_int_equal(gw_quota_window(SL_QUOTA_DAY, -1, &s, &e), -EINVAL);
}

/* ---- in memory: the rules ---- */

static void test_burst_of_exactly_burst_then_refill_at_rate(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(10, 5, 0, SL_QUOTA_NONE);
    int64_t t0 = S(T_2026_11_28_SAT);
    for (uint32_t i = 0; i < 5; i++) {
        struct gw_usage_decision d = check_now(e.u, "k1", &p, t0);
        assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
        assert_int_equal(d.tokens_remaining, 4 - i);
    }
    struct gw_usage_decision d = check_now(e.u, "k1", &p, t0);
    assert_int_equal(d.outcome, GW_USAGE_THROTTLED);
    assert_int_equal(d.retry_after_s, 1); /* 100 ms to one token, rounded up to a second */
    assert_int_equal(d.tokens_full_s, 1);
    /* 99 ms refill 0.99 of a token: still throttled; at 100 ms exactly one token is back. */
    assert_int_equal(check_now(e.u, "k1", &p, t0 + 99).outcome, GW_USAGE_THROTTLED);
    assert_int_equal(check_now(e.u, "k1", &p, t0 + 100).outcome, GW_USAGE_ALLOWED);
    assert_int_equal(check_now(e.u, "k1", &p, t0 + 100).outcome, GW_USAGE_THROTTLED);
    /* Ten seconds later the bucket holds its capacity (5), not 100 tokens. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(check_now(e.u, "k1", &p, t0 + 10100).outcome, GW_USAGE_ALLOWED);
    assert_int_equal(check_now(e.u, "k1", &p, t0 + 10100).outcome, GW_USAGE_THROTTLED);
    /* Another key has its own full bucket. */
    assert_int_equal(check_now(e.u, "k2", &p, t0).tokens_remaining, 4);
    assert_int_equal(metric(&e, "sluice_gateway_throttled_total"), 4);
    env_close(&e);
}

static void test_slow_rate_retry_after_is_time_to_one_token(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0.25, 1, 0, SL_QUOTA_NONE); /* one request per 4 s */
    int64_t t0 = S(T_2026_11_28_SAT);
    assert_int_equal(check_now(e.u, "slow", &p, t0).outcome, GW_USAGE_ALLOWED);
    struct gw_usage_decision d = check_now(e.u, "slow", &p, t0 + 1000);
    assert_int_equal(d.outcome, GW_USAGE_THROTTLED);
    assert_int_equal(d.retry_after_s, 3);
    assert_int_equal(check_now(e.u, "slow", &p, t0 + 4000).outcome, GW_USAGE_ALLOWED);
    env_close(&e);
}

static void test_quota_resets_at_utc_midnight(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0, 0, 3, SL_QUOTA_DAY);
    int64_t t = S(T_2026_11_28_LAST);
    for (uint64_t i = 0; i < 3; i++) {
        struct gw_usage_decision d = check_now(e.u, "q", &p, t);
        assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
        assert_int_equal(d.quota_remaining, 2 - i);
        assert_int_equal(d.quota_reset_s, 1);
    }
    struct gw_usage_decision d = check_now(e.u, "q", &p, t);
    assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED);
    assert_int_equal(d.retry_after_s, 1);
    assert_int_equal(d.quota_remaining, 0);
    assert_int_equal(check_now(e.u, "q", &p, t + 999).outcome, GW_USAGE_QUOTA_EXCEEDED);
    d = check_now(e.u, "q", &p, S(T_2026_11_29_SUN));
    assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(d.quota_remaining, 2);
    assert_int_equal(d.quota_reset_s, 86400);
    assert_int_equal(metric(&e, "sluice_gateway_quota_exceeded_total"), 2);
    env_close(&e);
}

static void test_quota_resets_on_monday_utc(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0, 0, 2, SL_QUOTA_WEEK);
    assert_int_equal(check_now(e.u, "w", &p, S(T_2026_11_23_MON)).outcome, GW_USAGE_ALLOWED);
    assert_int_equal(check_now(e.u, "w", &p, S(T_2026_11_28_SAT)).outcome, GW_USAGE_ALLOWED);
    struct gw_usage_decision d = check_now(e.u, "w", &p, S(T_2026_11_29_SUN));
    assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED);
    assert_int_equal(d.retry_after_s, 86400);
    d = check_now(e.u, "w", &p, S(T_2026_11_30_MON));
    assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(d.quota_remaining, 1);
    env_close(&e);
}

static void test_quota_resets_on_the_first_of_the_month(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0, 0, 1, SL_QUOTA_MONTH);
    assert_int_equal(check_now(e.u, "m", &p, S(T_2024_02_01)).outcome, GW_USAGE_ALLOWED);
    struct gw_usage_decision d = check_now(e.u, "m", &p, S(T_2024_02_29_NOON));
    assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED);
    assert_int_equal(d.retry_after_s, 12 * 3600);
    assert_int_equal(check_now(e.u, "m", &p, S(T_2024_03_01)).outcome, GW_USAGE_ALLOWED);
    env_close(&e);
}

static void test_throttled_request_does_not_use_quota(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(1, 1, 5, SL_QUOTA_DAY);
    int64_t t0 = S(T_2026_11_28_SAT);
    assert_int_equal(check_now(e.u, "tq", &p, t0).quota_remaining, 4);
    for (int i = 0; i < 10; i++) {
        struct gw_usage_decision d = check_now(e.u, "tq", &p, t0 + 10);
        assert_int_equal(d.outcome, GW_USAGE_THROTTLED);
        assert_int_equal(d.quota_remaining, 4);
    }
    struct gw_usage_decision d = check_now(e.u, "tq", &p, t0 + 1000);
    assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(d.quota_remaining, 3);
    env_close(&e);
}

static void test_quota_rejected_request_does_not_use_a_token(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(1, 3, 1, SL_QUOTA_DAY);
    int64_t t0 = S(T_2026_11_28_SAT);
    assert_int_equal(check_now(e.u, "qt", &p, t0).tokens_remaining, 2);
    for (int i = 0; i < 5; i++) {
        struct gw_usage_decision d = check_now(e.u, "qt", &p, t0);
        /* Both exhausted would say quota: waiting for a token would not help the client. */
        assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED);
        assert_int_equal(d.tokens_remaining, 2);
    }
    env_close(&e);
}

static void test_plan_without_limits_always_allows(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0, 0, 0, SL_QUOTA_NONE);
    for (int i = 0; i < 100; i++)
        assert_int_equal(check_now(e.u, "free", &p, 0).outcome, GW_USAGE_ALLOWED);
    struct gw_usage_headers h;
    struct gw_usage_decision d = check_now(e.u, "free", &p, 0);
    assert_int_equal(gw_usage_headers(&p, &d, &h), 0);
    assert_int_equal(h.n, 0);
    env_close(&e);
}

static void test_many_keys_keep_separate_state(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(1, 2, 10, SL_QUOTA_DAY);
    char key[32];
    int64_t t0 = S(T_2026_11_28_SAT);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 50000; i++) {
            snprintf(key, sizeof(key), "key-%d", i);
            struct gw_usage_decision d = check_now(e.u, key, &p, t0);
            assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
            assert_int_equal(d.tokens_remaining, (uint32_t)(1 - pass));
            assert_int_equal(d.quota_remaining, (uint64_t)(9 - pass));
        }
    }
    env_close(&e);
}

static void test_bad_arguments_and_check_after_close_are_refused(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(1, 1, 0, SL_QUOTA_NONE);
    struct result r = {0};
    char long_key[GW_USAGE_KEY_ID_MAX + 2];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(gw_usage_check(e.u, "", &p, 0, on_decision, &r), -EINVAL);
    assert_int_equal(gw_usage_check(e.u, long_key, &p, 0, on_decision, &r), -EINVAL);
    assert_int_equal(gw_usage_check(e.u, "k", NULL, 0, on_decision, &r), -EINVAL);
    struct sl_plan no_period = plan(0, 0, 10, SL_QUOTA_NONE);
    assert_int_equal(gw_usage_check(e.u, "k", &no_period, 0, on_decision, &r), -EINVAL);
    struct sl_plan nan_rate = plan(NAN, 1, 0, SL_QUOTA_NONE);
    assert_int_equal(gw_usage_check(e.u, "k", &nan_rate, 0, on_decision, &r), -EINVAL);
    gw_usage_close(e.u, on_closed, &e);
    assert_int_equal(gw_usage_check(e.u, "k", &p, 0, on_decision, &r), SL_ERR_CLOSED);
    assert_int_equal(r.calls, 0);
    assert_int_equal(e.closed, 0); /* the close callback runs from the loop */
    assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(e.closed, 1);
    assert_int_equal(uv_loop_close(&e.loop), 0);
    sl_metrics_free(e.metrics);
}

/* ---- headers ---- */

static void assert_header(const struct gw_usage_headers *h, size_t i, const char *name,
                          const char *value) {
    assert_true(i < h->n);
    assert_int_equal(h->h[i].name.len, strlen(name));
    assert_memory_equal(h->h[i].name.p, name, strlen(name));
    char got[400];
    snprintf(got, sizeof(got), "%.*s", (int)h->h[i].value.len, h->h[i].value.p);
    assert_string_equal(got, value);
}

static void test_headers_for_the_seed_plan_are_exact(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = SL_PLAN_DEFAULT_INIT;
    /* 09:46:06 UTC: 51234 s to midnight. */
    struct gw_usage_decision d = check_now(e.u, "seed", &p, S(T_2026_11_28_SAT + 35166));
    struct gw_usage_headers h;
    assert_int_equal(gw_usage_headers(&p, &d, &h), 0);
    assert_int_equal(h.n, 2);
    assert_header(&h, 0, "RateLimit-Policy", "\"burst\";q=2000;w=2, \"quota\";q=10000;w=86400");
    assert_header(&h, 1, "RateLimit", "\"burst\";r=1999;t=1, \"quota\";r=9999;t=51234");
    env_close(&e);
}

static void test_headers_on_throttle_carry_retry_after(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(1, 1, 0, SL_QUOTA_NONE);
    int64_t t0 = S(T_2026_11_28_SAT);
    check_now(e.u, "h", &p, t0);
    struct gw_usage_decision d = check_now(e.u, "h", &p, t0 + 200);
    assert_int_equal(d.outcome, GW_USAGE_THROTTLED);
    struct gw_usage_headers h;
    assert_int_equal(gw_usage_headers(&p, &d, &h), 0);
    assert_int_equal(h.n, 3);
    assert_header(&h, 0, "RateLimit-Policy", "\"burst\";q=1;w=1");
    assert_header(&h, 1, "RateLimit", "\"burst\";r=0;t=1");
    assert_header(&h, 2, "Retry-After", "1");
    env_close(&e);
}

static void test_headers_on_quota_exceeded_retry_after_the_window(void **state) {
    (void)state;
    struct env e;
    env_memory(&e);
    struct sl_plan p = plan(0, 0, 1, SL_QUOTA_WEEK);
    check_now(e.u, "hq", &p, S(T_2026_11_28_LAST));
    struct gw_usage_decision d = check_now(e.u, "hq", &p, S(T_2026_11_28_LAST));
    struct gw_usage_headers h;
    assert_int_equal(gw_usage_headers(&p, &d, &h), 0);
    assert_int_equal(h.n, 3);
    assert_header(&h, 0, "RateLimit-Policy", "\"quota\";q=1;w=604800");
    assert_header(&h, 1, "RateLimit", "\"quota\";r=0;t=86401");
    assert_header(&h, 2, "Retry-After", "86401");
    env_close(&e);
}

static void test_headers_on_backend_errors(void **state) {
    (void)state;
    struct sl_plan p = plan(0, 0, 100, SL_QUOTA_MONTH);
    struct gw_usage_headers h;
    struct gw_usage_decision open = {.outcome = GW_USAGE_BACKEND_ERROR_OPEN, .error = -ENOTCONN};
    assert_int_equal(gw_usage_headers(&p, &open, &h), 0);
    assert_int_equal(h.n, 1);
    assert_header(&h, 0, "RateLimit-Policy", "\"quota\";q=100;w=2592000");
    struct gw_usage_decision deny = {
        .outcome = GW_USAGE_BACKEND_ERROR_DENY, .error = -ENOTCONN, .retry_after_s = 1};
    assert_int_equal(gw_usage_headers(&p, &deny, &h), 0);
    assert_int_equal(h.n, 2);
    assert_header(&h, 1, "Retry-After", "1");
    assert_true(gw_usage_allowed(&open));
    assert_false(gw_usage_allowed(&deny));
    assert_string_equal(gw_usage_outcome_name(deny.outcome), "backend_error_deny");
}

/* ---- Redis ---- */

static const char *redis_url(void) {
    const char *u = getenv("SLUICE_TEST_REDIS_URL");
    if (!u || !*u)
        fail_msg("SLUICE_TEST_REDIS_URL is not set: the Redis tests need a real Redis "
                 "(scripts/stack up exports it; e.g. redis://127.0.0.1:16379)");
    return u;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs the loop until *flag >= want or `ms` pass; returns whether it got there. */
static int run_until(uv_loop_t *loop, const int *flag, int want, long ms) {
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (*flag < want) {
        if (uv_hrtime() > end)
            return 0;
        uv_run(loop, UV_RUN_NOWAIT);
        if (*flag < want)
            sleep_ms(1);
    }
    return 1;
}

static int wait_ready(struct env *e, int want_ready, long ms) {
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (gw_usage_backend_ready(e->u) != want_ready) {
        if (uv_hrtime() > end)
            return 0;
        uv_run(&e->loop, UV_RUN_NOWAIT);
        sleep_ms(1);
    }
    return 1;
}

static void env_redis(struct env *e, const char *url, bool fail_open, bool server_time) {
    struct gw_usage_opts o;
    gw_usage_opts_default(&o);
    o.redis_url = url;
    o.fail_open = fail_open;
    o.redis_server_time = server_time;
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 200;
    o.connect_timeout_ms = 3000;
    env_open(e, &o);
}

static struct gw_usage_decision check_wait(struct env *e, const char *key, const struct sl_plan *p,
                                           int64_t now_ms) {
    struct result r = {0};
    assert_int_equal(gw_usage_check(e->u, key, p, now_ms, on_decision, &r), 0);
    if (!run_until(&e->loop, &r.calls, 1, 2000))
        fail_msg("no decision within 2 s");
    assert_int_equal(r.calls, 1);
    return r.d;
}

/* A key id no earlier run against the same Redis has used. */
static void unique_key(char *out, size_t n, const char *name) {
    snprintf(out, n, "test-%ld-%llu-%s", (long)getpid(), (unsigned long long)uv_hrtime(), name);
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void own_redis_start_args(int port, const char *extra) {
    char cmd[384];
    snprintf(cmd, sizeof(cmd),
             "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
             "--pidfile /tmp/sluice-test-redis-%d.pid --logfile /dev/null %s",
             port, port, extra);
    assert_int_equal(system(cmd), 0);
    /* Wait until it accepts connections. */
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        int ok = c && !c->err;
        redisFree(c);
        if (ok)
            return;
        sleep_ms(10);
    }
    fail_msg("redis-server on port %d did not start", port);
}

static void own_redis_start(int port) {
    own_redis_start_args(port, "");
}

static void own_redis_stop_auth(int port, const char *password) {
    redisContext *c = redisConnect("127.0.0.1", port);
    if (c && !c->err && password)
        freeReplyObject(redisCommand(c, "AUTH %s", password));
    if (c && !c->err)
        freeReplyObject(redisCommand(c, "SHUTDOWN NOSAVE"));
    redisFree(c);
    for (int i = 0; i < 200; i++) {
        c = redisConnect("127.0.0.1", port);
        int up = c && !c->err;
        redisFree(c);
        if (!up)
            return;
        sleep_ms(10);
    }
    fail_msg("redis-server on port %d did not stop", port);
}

static void own_redis_stop(int port) {
    own_redis_stop_auth(port, NULL);
}

/*
 * Tests that start their own redis-server get a free port from this fixture; the teardown kills
 * the server if a failed assertion left it running (Redis removes its pidfile when it stops).
 */
static int own_redis_setup(void **state) {
    int *port = malloc(sizeof(*port));
    assert_non_null(port);
    *port = free_port();
    *state = port;
    return 0;
}

static int own_redis_teardown(void **state) {
    int *port = *state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/sluice-test-redis-%d.pid", *port);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) == 1 && pid > 1)
            kill(pid, SIGKILL);
        fclose(f);
        unlink(path);
    }
    free(port);
    return 0;
}

static void test_redis_burst_refill_and_quota_rules_match_memory(void **state) {
    (void)state;
    struct env e;
    env_redis(&e, redis_url(), true, false);
    assert_true(wait_ready(&e, 1, 3000));
    char key[96];
    unique_key(key, sizeof(key), "rules");
    struct sl_plan p = plan(10, 5, 8, SL_QUOTA_DAY);
    int64_t t0 = S(T_2026_11_28_LAST) - 5000; /* 23:59:54 */
    for (uint32_t i = 0; i < 5; i++) {
        struct gw_usage_decision d = check_wait(&e, key, &p, t0);
        assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
        assert_int_equal(d.tokens_remaining, 4 - i);
        assert_int_equal(d.quota_remaining, 7 - i);
        assert_int_equal(d.quota_reset_s, 6);
    }
    struct gw_usage_decision d = check_wait(&e, key, &p, t0);
    assert_int_equal(d.outcome, GW_USAGE_THROTTLED);
    assert_int_equal(d.retry_after_s, 1);
    assert_int_equal(d.quota_remaining, 3); /* the throttled request used no quota */
    assert_int_equal(check_wait(&e, key, &p, t0 + 99).outcome, GW_USAGE_THROTTLED);
    assert_int_equal(check_wait(&e, key, &p, t0 + 100).outcome, GW_USAGE_ALLOWED);
    assert_int_equal(check_wait(&e, key, &p, t0 + 1000).outcome, GW_USAGE_ALLOWED);
    assert_int_equal(check_wait(&e, key, &p, t0 + 1000).outcome, GW_USAGE_ALLOWED);
    d = check_wait(&e, key, &p, t0 + 1000);
    assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED); /* 8 used */
    assert_int_equal(d.retry_after_s, 5);
    assert_int_equal(d.tokens_remaining, 3); /* refilled to 5 at t0+1000, 2 used */
    /* Midnight UTC resets the quota. */
    d = check_wait(&e, key, &p, S(T_2026_11_29_SUN));
    assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(d.quota_remaining, 7);
    assert_int_equal(metric(&e, "sluice_gateway_throttled_total"), 2);
    assert_int_equal(metric(&e, "sluice_gateway_quota_exceeded_total"), 1);
    assert_true(metric(&e, "sluice_gateway_ratelimit_redis_seconds_count") >= 12);
    env_close(&e);
}

static void test_redis_two_replicas_enforce_one_quota_of_50(void **state) {
    (void)state;
    struct env a, b;
    env_redis(&a, redis_url(), true, true);
    env_redis(&b, redis_url(), true, true);
    assert_true(wait_ready(&a, 1, 3000));
    assert_true(wait_ready(&b, 1, 3000));
    char key[96];
    unique_key(key, sizeof(key), "replicas");
    struct sl_plan p = plan(0, 0, 50, SL_QUOTA_DAY);
    struct result ra[30], rb[30];
    memset(ra, 0, sizeof(ra));
    memset(rb, 0, sizeof(rb));
    /* All 60 in flight at once, interleaved across the two replicas. */
    for (int i = 0; i < 30; i++) {
        assert_int_equal(gw_usage_check(a.u, key, &p, 0, on_decision, &ra[i]), 0);
        assert_int_equal(gw_usage_check(b.u, key, &p, 0, on_decision, &rb[i]), 0);
    }
    int done = 0;
    uint64_t end = uv_hrtime() + 3000000000u;
    while (done < 60 && uv_hrtime() < end) {
        uv_run(&a.loop, UV_RUN_NOWAIT);
        uv_run(&b.loop, UV_RUN_NOWAIT);
        done = 0;
        for (int i = 0; i < 30; i++)
            done += ra[i].calls + rb[i].calls;
        sleep_ms(1);
    }
    assert_int_equal(done, 60);
    int allowed = 0, exceeded = 0;
    int seen[50] = {0};
    for (int i = 0; i < 60; i++) {
        const struct gw_usage_decision *d = i < 30 ? &ra[i].d : &rb[i - 30].d;
        if (d->outcome == GW_USAGE_ALLOWED) {
            allowed++;
            assert_true(d->quota_remaining < 50);
            seen[d->quota_remaining]++;
        } else {
            assert_int_equal(d->outcome, GW_USAGE_QUOTA_EXCEEDED);
            exceeded++;
        }
    }
    assert_int_equal(allowed, 50);
    assert_int_equal(exceeded, 10);
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], 1); /* each unit of quota handed out exactly once */
    env_close(&a);
    env_close(&b);
}

static void test_redis_unreachable_enforces_the_plan_in_memory_and_counts(void **state) {
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
    struct env e;
    env_redis(&e, url, true, true);
    struct sl_plan p = plan(1, 1, 1, SL_QUOTA_DAY);
    static const enum gw_usage_outcome want[] = {GW_USAGE_ALLOWED, GW_USAGE_QUOTA_EXCEEDED,
                                                 GW_USAGE_QUOTA_EXCEEDED};
    for (int i = 0; i < 3; i++) {
        /* No waiting: the in-memory store answers before check returns. */
        struct gw_usage_decision d = check_now(e.u, "down", &p, 0);
        assert_int_equal(d.outcome, want[i]);
        assert_int_equal(d.error, 0);
        /* Let it try to reconnect in between. */
        uint64_t end = uv_hrtime() + 50000000u;
        while (uv_hrtime() < end) {
            uv_run(&e.loop, UV_RUN_NOWAIT);
            sleep_ms(1);
        }
    }
    assert_int_equal(metric(&e, "sluice_gateway_ratelimit_fallbacks_total{reason=\"redis_down\"}"),
                     3);
    assert_int_equal(
        metric(&e, "sluice_gateway_ratelimit_backend_errors_total{mode=\"fail_open\"}"), 0);
    assert_int_equal(gw_usage_backend_ready(e.u), 0);
    env_close(&e);
}

static void test_quotas_fail_closed_by_default(void **state) {
    (void)state;
    struct gw_usage_opts o;
    gw_usage_opts_default(&o);
    assert_false(o.fail_open);
}

/* Past max_in_flight calls awaiting Redis, checks are decided in memory, not let through. */
static void test_redis_in_flight_cap_falls_back_to_memory(void **state) {
    (void)state;
    struct gw_usage_opts o;
    gw_usage_opts_default(&o);
    o.redis_url = redis_url();
    o.fail_open = true;
    o.max_in_flight = 1;
    struct env e;
    env_open(&e, &o);
    assert_true(wait_ready(&e, 1, 3000));
    char key[96];
    unique_key(key, sizeof(key), "cap");
    struct sl_plan p = plan(0, 0, 1, SL_QUOTA_DAY);
    struct result first = {0};
    assert_int_equal(gw_usage_check(e.u, key, &p, 0, on_decision, &first), 0);
    assert_int_equal(first.calls, 0); /* awaiting Redis: the cap is reached */
    struct gw_usage_decision d = check_now(e.u, key, &p, 0);
    assert_int_equal(d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(d.quota_remaining, 0);
    d = check_now(e.u, key, &p, 0);
    assert_int_equal(d.outcome, GW_USAGE_QUOTA_EXCEEDED);
    assert_int_equal(
        metric(&e, "sluice_gateway_ratelimit_fallbacks_total{reason=\"in_flight_cap\"}"), 2);
    assert_int_equal(
        metric(&e, "sluice_gateway_ratelimit_backend_errors_total{mode=\"fail_open\"}"), 0);
    assert_true(run_until(&e.loop, &first.calls, 1, 2000));
    assert_int_equal(first.d.outcome, GW_USAGE_ALLOWED); /* Redis' own count */
    env_close(&e);
}

static void test_redis_recovers_when_redis_comes_back(void **state) {
    int port = *(int *)*state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", port);
    struct env e;
    env_redis(&e, url, true, true);
    struct sl_plan p = plan(0, 0, 100, SL_QUOTA_DAY);
    assert_int_equal(check_now(e.u, "rec", &p, 0).quota_remaining, 99); /* in memory */
    own_redis_start(port);
    assert_true(wait_ready(&e, 1, 3000));
    assert_int_equal(check_wait(&e, "rec", &p, 0).quota_remaining, 99);
    own_redis_stop(port);
    assert_true(wait_ready(&e, 0, 3000));
    assert_int_equal(check_now(e.u, "rec", &p, 0).quota_remaining, 98); /* in memory again */
    own_redis_start(port);                                              /* a fresh, empty Redis */
    assert_true(wait_ready(&e, 1, 3000));
    assert_int_equal(check_wait(&e, "rec", &p, 0).quota_remaining, 99);
    env_close(&e);
    own_redis_stop(port);
}

static void test_redis_password_from_the_url_is_percent_decoded(void **state) {
    int port = *(int *)*state;
    own_redis_start_args(port, "--requirepass 'p@ss:w/rd'");
    char url[96];
    snprintf(url, sizeof(url), "redis://:p%%40ss%%3Aw%%2Frd@127.0.0.1:%d/1", port);
    struct env e;
    env_redis(&e, url, true, true);
    assert_true(wait_ready(&e, 1, 3000));
    struct sl_plan p = plan(0, 0, 10, SL_QUOTA_DAY);
    assert_int_equal(check_wait(&e, "auth", &p, 0).quota_remaining, 9);
    env_close(&e);
    /* A wrong password never becomes ready; checks are decided in memory. */
    snprintf(url, sizeof(url), "redis://default:wrong@127.0.0.1:%d", port);
    env_redis(&e, url, true, true);
    assert_false(wait_ready(&e, 1, 300));
    assert_int_equal(check_now(e.u, "auth", &p, 0).quota_remaining, 9);
    env_close(&e);
    own_redis_stop_auth(port, "p@ss:w/rd");
}

static void test_redis_flushed_script_cache_falls_back_to_eval(void **state) {
    int port = *(int *)*state;
    own_redis_start(port);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    struct env e;
    env_redis(&e, url, false, true);
    assert_true(wait_ready(&e, 1, 3000));
    redisContext *c = redisConnect("127.0.0.1", port);
    assert_true(c && !c->err);
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    redisFree(c);
    struct sl_plan p = plan(0, 0, 10, SL_QUOTA_DAY);
    assert_int_equal(check_wait(&e, "flushed", &p, 0).quota_remaining, 9);
    assert_int_equal(check_wait(&e, "flushed", &p, 0).quota_remaining, 8); /* EVALSHA again */
    env_close(&e);
    own_redis_stop(port);
}

static void test_redis_slow_call_is_decided_in_memory_then_reconnects(void **state) {
    int port = *(int *)*state;
    own_redis_start(port);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    struct env e;
    env_redis(&e, url, true, true);
    assert_true(wait_ready(&e, 1, 3000));
    /* CLIENT PAUSE makes Redis hold every client's commands, like a stalled server. */
    redisContext *c = redisConnect("127.0.0.1", port);
    assert_true(c && !c->err);
    redisReply *rep = redisCommand(c, "CLIENT PAUSE 600 ALL");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    redisFree(c);
    struct sl_plan p = plan(0, 0, 1, SL_QUOTA_DAY);
    struct result r = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(gw_usage_check(e.u, "hung", &p, 0, on_decision, &r), 0);
    assert_true(run_until(&e.loop, &r.calls, 1, 2000));
    uint64_t waited_ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(r.d.outcome, GW_USAGE_ALLOWED);
    assert_int_equal(r.d.quota_remaining, 0);
    assert_true(waited_ms >= 90 && waited_ms < 400);
    assert_int_equal(metric(&e, "sluice_gateway_ratelimit_fallbacks_total{reason=\"timeout\"}"), 1);
    /* While it reconnects the quota of 1 still holds, in memory. */
    assert_int_equal(check_now(e.u, "hung", &p, 0).outcome, GW_USAGE_QUOTA_EXCEEDED);
    p = plan(0, 0, 100, SL_QUOTA_DAY);
    /* After the pause it is usable again. */
    assert_true(wait_ready(&e, 1, 3000));
    assert_int_equal(check_wait(&e, "hung", &p, 0).outcome, GW_USAGE_ALLOWED);
    env_close(&e);
    own_redis_stop(port);
}

static void test_redis_close_answers_pending_checks_with_closed(void **state) {
    (void)state;
    struct env e;
    env_redis(&e, redis_url(), false, true);
    assert_true(wait_ready(&e, 1, 3000));
    char key[96];
    unique_key(key, sizeof(key), "close");
    struct sl_plan p = plan(0, 0, 100, SL_QUOTA_DAY);
    struct result r = {0};
    assert_int_equal(gw_usage_check(e.u, key, &p, 0, on_decision, &r), 0);
    assert_int_equal(r.calls, 0); /* in flight */
    gw_usage_close(e.u, on_closed, &e);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.d.outcome, GW_USAGE_BACKEND_ERROR_DENY);
    assert_int_equal(r.d.error, SL_ERR_CLOSED);
    assert_int_equal(uv_run(&e.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(e.closed, 1);
    assert_int_equal(uv_loop_close(&e.loop), 0);
    /* Closing is not a backend failure. */
    assert_int_equal(
        metric(&e, "sluice_gateway_ratelimit_backend_errors_total{mode=\"fail_closed\"}"), 0);
    sl_metrics_free(e.metrics);
}

static void test_bad_redis_url_is_a_config_error(void **state) {
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gw_usage_opts o;
    gw_usage_opts_default(&o);
    struct gw_usage *u = NULL;
    const char *bad[] = {"http://x",    "redis://",      "redis://h:0", "redis://h:99999",
                         "redis://h:x", "redis://h/abc", "redis://[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.redis_url = bad[i];
        assert_int_equal(gw_usage_new(&loop, &o, NULL, &u), SL_ERR_CONFIG);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    /* hiredis writes with write(2): a Redis that goes away must not kill the test with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_window_is_utc_midnight_to_midnight),
        cmocka_unit_test(test_week_window_starts_monday_utc),
        cmocka_unit_test(test_month_window_handles_month_ends_leap_years_and_year_end),
        cmocka_unit_test(test_window_rejects_no_period_and_negative_time),
        cmocka_unit_test(test_burst_of_exactly_burst_then_refill_at_rate),
        cmocka_unit_test(test_slow_rate_retry_after_is_time_to_one_token),
        cmocka_unit_test(test_quota_resets_at_utc_midnight),
        cmocka_unit_test(test_quota_resets_on_monday_utc),
        cmocka_unit_test(test_quota_resets_on_the_first_of_the_month),
        cmocka_unit_test(test_throttled_request_does_not_use_quota),
        cmocka_unit_test(test_quota_rejected_request_does_not_use_a_token),
        cmocka_unit_test(test_plan_without_limits_always_allows),
        cmocka_unit_test(test_many_keys_keep_separate_state),
        cmocka_unit_test(test_bad_arguments_and_check_after_close_are_refused),
        cmocka_unit_test(test_headers_for_the_seed_plan_are_exact),
        cmocka_unit_test(test_headers_on_throttle_carry_retry_after),
        cmocka_unit_test(test_headers_on_quota_exceeded_retry_after_the_window),
        cmocka_unit_test(test_headers_on_backend_errors),
        cmocka_unit_test(test_bad_redis_url_is_a_config_error),
        cmocka_unit_test(test_redis_burst_refill_and_quota_rules_match_memory),
        cmocka_unit_test(test_redis_two_replicas_enforce_one_quota_of_50),
        cmocka_unit_test(test_redis_unreachable_enforces_the_plan_in_memory_and_counts),
        cmocka_unit_test(test_quotas_fail_closed_by_default),
        cmocka_unit_test(test_redis_in_flight_cap_falls_back_to_memory),
        cmocka_unit_test_setup_teardown(test_redis_recovers_when_redis_comes_back, own_redis_setup,
                                        own_redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_password_from_the_url_is_percent_decoded,
                                        own_redis_setup, own_redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_flushed_script_cache_falls_back_to_eval,
                                        own_redis_setup, own_redis_teardown),
        cmocka_unit_test_setup_teardown(test_redis_slow_call_is_decided_in_memory_then_reconnects,
                                        own_redis_setup, own_redis_teardown),
        cmocka_unit_test(test_redis_close_answers_pending_checks_with_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
