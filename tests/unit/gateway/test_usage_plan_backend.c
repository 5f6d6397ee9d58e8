/* Unit tests for what the usage-plan stores share: delivering decisions and backend errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sluice/metrics.h"
#include "usage_plan_backend.h"

struct seen {
    int calls;
    struct gw_usage_decision d;
};

static void on_decision(const struct gw_usage_decision *d, void *opaque) {
    struct seen *s = opaque;
    s->calls++;
    s->d = *d;
}

struct fixture {
    struct sl_metrics *reg;
    struct gw_usage__metrics m;
};

static void make(struct fixture *f) {
    f->reg = sl_metrics_new();
    assert_non_null(f->reg);
    struct sl_metric_family *c = sl_metrics_counter(f->reg, "c_total", "c", "kind");
    assert_non_null(c);
    f->m = (struct gw_usage__metrics){
        .throttled = sl_metric_child1(c, "throttled"),
        .quota_exceeded = sl_metric_child1(c, "quota"),
        .err_open = sl_metric_child1(c, "open"),
        .err_closed = sl_metric_child1(c, "closed"),
    };
}

static void test_deliver_counts_refusals_and_calls_back_once(void **state) {
    (void)state;
    struct fixture f;
    make(&f);
    struct seen s = {0};
    gw_usage__deliver(&f.m, on_decision, &s,
                      &(struct gw_usage_decision){.outcome = GW_USAGE_ALLOWED});
    assert_int_equal(s.calls, 1);
    gw_usage__deliver(
        &f.m, on_decision, &s,
        &(struct gw_usage_decision){.outcome = GW_USAGE_THROTTLED, .retry_after_s = 2});
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.d.retry_after_s, 2);
    gw_usage__deliver(&f.m, on_decision, &s,
                      &(struct gw_usage_decision){.outcome = GW_USAGE_QUOTA_EXCEEDED});
    assert_int_equal(sl_metric_value(f.m.throttled), 1);
    assert_int_equal(sl_metric_value(f.m.quota_exceeded), 1);
    /* No registry: nothing counted, the callback still runs. */
    struct gw_usage__metrics none = {0};
    gw_usage__deliver(&none, on_decision, &s,
                      &(struct gw_usage_decision){.outcome = GW_USAGE_THROTTLED});
    assert_int_equal(s.calls, 4);
    sl_metrics_free(f.reg);
}

static void test_backend_errors_follow_the_fail_mode(void **state) {
    (void)state;
    struct fixture f;
    make(&f);
    struct seen s = {0};
    gw_usage__deliver_error(&f.m, true, -5, true, on_decision, &s);
    assert_int_equal(s.d.outcome, GW_USAGE_BACKEND_ERROR_OPEN);
    assert_int_equal(s.d.error, -5);
    assert_int_equal(s.d.retry_after_s, 0);
    gw_usage__deliver_error(&f.m, false, -5, true, on_decision, &s);
    assert_int_equal(s.d.outcome, GW_USAGE_BACKEND_ERROR_DENY);
    assert_int_equal(s.d.retry_after_s, 1);
    /* Closing is not a backend failure: answered, not counted. */
    gw_usage__deliver_error(&f.m, false, -5, false, on_decision, &s);
    assert_int_equal(s.calls, 3);
    assert_int_equal(sl_metric_value(f.m.err_open), 1);
    assert_int_equal(sl_metric_value(f.m.err_closed), 1);
    sl_metrics_free(f.reg);
}

static void test_ceil_s_rounds_up_to_whole_seconds(void **state) {
    (void)state;
    assert_int_equal(gw_usage__ceil_s(0), 0);
    assert_int_equal(gw_usage__ceil_s(1), 1);
    assert_int_equal(gw_usage__ceil_s(1000), 1);
    assert_int_equal(gw_usage__ceil_s(1001), 2);
    assert_int_equal(gw_usage__ceil_s(-5), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deliver_counts_refusals_and_calls_back_once),
        cmocka_unit_test(test_backend_errors_follow_the_fail_mode),
        cmocka_unit_test(test_ceil_s_rounds_up_to_whole_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
