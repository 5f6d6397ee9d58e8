/* Unit tests for the metric registry and its Prometheus text rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/metrics.h"

static char *render(struct sl_metrics *m, struct sl_buf *b) {
    sl_buf_init(b, 1 << 20);
    assert_int_equal(sl_metrics_render(m, b), 0);
    return b->data;
}

static void test_counter_renders_help_type_and_labelled_values(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_metric_family *f =
        sl_metrics_counter(m, "sluice_requests_total", "HTTP requests.", "route,status");
    assert_non_null(f);
    struct sl_metric *ok = sl_metric_child2(f, "/items", "200");
    struct sl_metric *denied = sl_metric_child2(f, "/items", "403");
    sl_counter_inc(ok);
    sl_counter_add(ok, 2);
    sl_counter_inc(denied);
    assert_ptr_equal(sl_metric_child2(f, "/items", "200"), ok);
    struct sl_buf b;
    assert_string_equal(render(m, &b),
                        "# HELP sluice_requests_total HTTP requests.\n"
                        "# TYPE sluice_requests_total counter\n"
                        "sluice_requests_total{route=\"/items\",status=\"200\"} 3\n"
                        "sluice_requests_total{route=\"/items\",status=\"403\"} 1\n");
    sl_buf_free(&b);
    sl_metrics_free(m);
}

static void test_gauge_goes_up_and_down(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_metric *g =
        sl_metric_get(sl_metrics_gauge(m, "sluice_in_flight", "In flight.", NULL));
    sl_gauge_add(g, 5);
    sl_gauge_add(g, -2);
    assert_int_equal(sl_metric_value(g), 3);
    sl_gauge_set(g, -7);
    struct sl_buf b;
    assert_string_equal(render(m, &b), "# HELP sluice_in_flight In flight.\n"
                                       "# TYPE sluice_in_flight gauge\n"
                                       "sluice_in_flight -7\n");
    sl_buf_free(&b);
    sl_metrics_free(m);
}

static void test_histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    const double bounds[] = {0.1, 1};
    struct sl_metric_family *f =
        sl_metrics_histogram(m, "sluice_latency_seconds", "Latency.", "route", bounds, 2);
    struct sl_metric *h = sl_metric_child1(f, "r");
    sl_histogram_observe(h, 0.05);
    sl_histogram_observe(h, 0.1); /* le is inclusive */
    sl_histogram_observe(h, 0.5);
    sl_histogram_observe(h, 7);
    assert_int_equal(sl_histogram_count(h), 4);
    struct sl_buf b;
    assert_string_equal(render(m, &b), "# HELP sluice_latency_seconds Latency.\n"
                                       "# TYPE sluice_latency_seconds histogram\n"
                                       "sluice_latency_seconds_bucket{route=\"r\",le=\"0.1\"} 2\n"
                                       "sluice_latency_seconds_bucket{route=\"r\",le=\"1\"} 3\n"
                                       "sluice_latency_seconds_bucket{route=\"r\",le=\"+Inf\"} 4\n"
                                       "sluice_latency_seconds_sum{route=\"r\"} 7.65\n"
                                       "sluice_latency_seconds_count{route=\"r\"} 4\n");
    sl_buf_free(&b);
    sl_metrics_free(m);
}

static void test_label_values_are_escaped(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    struct sl_metric_family *f = sl_metrics_counter(m, "x_total", "a\\b\nc", "v");
    sl_counter_inc(sl_metric_child1(f, "q\"uote\\back\nline"));
    struct sl_buf b;
    assert_string_equal(render(m, &b), "# HELP x_total a\\\\b\\nc\n"
                                       "# TYPE x_total counter\n"
                                       "x_total{v=\"q\\\"uote\\\\back\\nline\"} 1\n");
    sl_buf_free(&b);
    sl_metrics_free(m);
}

static void test_invalid_registrations_are_refused(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    assert_non_null(sl_metrics_counter(m, "ok_total", "", NULL));
    assert_null(sl_metrics_counter(m, "ok_total", "duplicate", NULL));
    assert_null(sl_metrics_counter(m, "9starts_with_digit", "", NULL));
    assert_null(sl_metrics_counter(m, "has-dash", "", NULL));
    assert_null(sl_metrics_counter(m, "bad_label", "", "a,,b"));
    assert_null(sl_metrics_counter(m, "too_many_labels", "", "a,b,c,d,e"));
    const double unsorted[] = {1, 0.5};
    assert_null(sl_metrics_histogram(m, "h", "", NULL, unsorted, 2));
    struct sl_metric_family *f = sl_metrics_counter(m, "two_total", "", "a,b");
    assert_null(sl_metric_child1(f, "only-one"));
    sl_metrics_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_renders_help_type_and_labelled_values),
        cmocka_unit_test(test_gauge_goes_up_and_down),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_invalid_registrations_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
