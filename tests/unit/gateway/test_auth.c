/* Unit tests for the gateway's API-key step: checks, reasons, and keys-file reloads on a loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "auth.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/keys.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/time.h"

/* SHA-256("abc") and SHA-256("sk_disabled"). */
#define H_ABC   "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_OTHER "sha256:d518c5abc5dc3e54002d300fa51391a9965f64de561ccb0411d7aaf384fc77d0"
#define NOW     1795824973000LL /* 2026-11-28T00:16:13Z */

static const char keys_ok[] =
    "{\"version\":1,\"plans\":{\"gold\":{\"throttle\":{\"rate\":5,\"burst\":7}}},\"keys\":["
    "{\"id\":\"key_a\",\"hash\":\"" H_ABC "\",\"plan\":\"gold\"},"
    "{\"id\":\"key_b\",\"hash\":\"" H_OTHER "\",\"enabled\":false}]}";
static const char keys_revoked[] =
    "{\"version\":1,\"plans\":{\"gold\":{\"throttle\":{\"rate\":5,\"burst\":7}}},\"keys\":["
    "{\"id\":\"key_a\",\"hash\":\"" H_ABC "\",\"plan\":\"gold\",\"enabled\":false,"
    "\"revoked\":\"2026-11-28T00:00:00Z\"},"
    "{\"id\":\"key_b\",\"hash\":\"" H_OTHER "\",\"enabled\":false}]}";

struct fixture {
    char dir[64];
    char path[128];
    uv_loop_t loop;
    struct sl_metrics *metrics;
    struct gw_auth *auth;
    int closed;
};

static void write_raw(const char *path, const char *content) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Replaces the file the way sluicectl and editors do: a new inode renamed over the old one. */
static void replace_atomically(struct fixture *fx, const char *content) {
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s/.new", fx->dir);
    write_raw(tmp, content);
    assert_int_equal(rename(tmp, fx->path), 0);
}

static void on_tick(uv_timer_t *t) {
    uv_stop(t->loop);
}

/* Runs the loop for `ms` milliseconds; a referenced timer keeps it running meanwhile. */
static void run_for(uv_loop_t *loop, uint64_t ms) {
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_tick, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static enum gw_auth_status check(struct fixture *fx, const char *value) {
    struct gw_auth_result r;
    return gw_auth_check(fx->auth, value, value ? strlen(value) : 0, NOW, &r);
}

/* Drives the loop in 20 ms steps until the check gives `want`; returns the ms it took or -1. */
static long wait_for_status(struct fixture *fx, const char *value, enum gw_auth_status want,
                            long max_ms) {
    uint64_t start = sl_time_mono_ns();
    for (;;) {
        long waited = (long)((sl_time_mono_ns() - start) / 1000000u);
        if (check(fx, value) == want)
            return waited;
        if (waited > max_ms)
            return -1;
        run_for(&fx->loop, 20);
    }
}

static int metric_line(struct fixture *fx, const char *line) {
    struct sl_buf b;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_metrics_render(fx->metrics, &b), 0);
    int found = strstr(b.data, line) != NULL;
    if (!found)
        fprintf(stderr, "metric line not found: %s\n%s", line, b.data);
    sl_buf_free(&b);
    return found;
}

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sluice-auth-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/keys.json", fx->dir);
    write_raw(fx->path, keys_ok);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->metrics = sl_metrics_new();
    assert_int_equal(gw_auth_new(&fx->loop, fx->path, fx->metrics, &fx->auth), 0);
    *state = fx;
    return 0;
}

static void on_closed(void *data) {
    ((struct fixture *)data)->closed++;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    if (fx->auth) {
        gw_auth_close(fx->auth, on_closed, fx);
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        assert_int_equal(fx->closed, 1);
    }
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* no handle left behind */
    sl_metrics_free(fx->metrics);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void test_known_key_passes_with_its_id_and_plan(void **state) {
    struct fixture *fx = *state;
    struct gw_auth_result r;
    assert_int_equal(gw_auth_ready(fx->auth), 1);
    assert_int_equal(gw_auth_check(fx->auth, " abc\t", 5, NOW, &r), GW_AUTH_OK);
    assert_int_equal(r.status, GW_AUTH_OK);
    assert_string_equal(r.key_id, "key_a");
    assert_string_equal(r.plan.name, "gold");
    assert_true(r.plan.rate == 5.0);
    assert_int_equal(r.plan.burst, 7);
    assert_true(metric_line(fx, "sluice_gateway_keys_loaded 2\n"));
}

static void test_missing_unknown_and_disabled_keys_are_refused_by_reason(void **state) {
    struct fixture *fx = *state;
    struct gw_auth_result r;
    assert_int_equal(gw_auth_check(fx->auth, NULL, 0, NOW, &r), GW_AUTH_MISSING);
    assert_string_equal(r.key_id, "");
    assert_int_equal(gw_auth_check(fx->auth, "  ", 2, NOW, &r), GW_AUTH_MISSING);
    assert_int_equal(gw_auth_check(fx->auth, "abd", 3, NOW, &r), GW_AUTH_UNKNOWN);
    assert_string_equal(r.key_id, "");
    assert_int_equal(gw_auth_check(fx->auth, "sk_disabled", 11, NOW, &r), GW_AUTH_DISABLED);
    assert_string_equal(r.key_id, "key_b");
    assert_true(metric_line(fx, "sluice_gateway_auth_failures_total{reason=\"missing\"} 2\n"));
    assert_true(metric_line(fx, "sluice_gateway_auth_failures_total{reason=\"unknown\"} 1\n"));
    assert_true(metric_line(fx, "sluice_gateway_auth_failures_total{reason=\"disabled\"} 1\n"));
    assert_true(metric_line(fx, "sluice_gateway_auth_failures_total{reason=\"revoked\"} 0\n"));
    assert_string_equal(gw_auth_status_name(GW_AUTH_EXPIRED), "expired");
}

static void test_atomic_replacement_revoking_a_key_takes_effect_within_two_seconds(void **state) {
    struct fixture *fx = *state;
    assert_int_equal(check(fx, "abc"), GW_AUTH_OK);
    replace_atomically(fx, keys_revoked);
    long ms = wait_for_status(fx, "abc", GW_AUTH_REVOKED, 2000);
    assert_true(ms >= 0);
    assert_true(metric_line(fx, "sluice_gateway_keys_reloads_total{result=\"ok\"} 1\n"));
    /* A result copied before a reload stays valid after it: it holds no pointer into a table. */
    struct gw_auth_result r;
    assert_int_equal(gw_auth_check(fx->auth, "sk_disabled", 11, NOW, &r), GW_AUTH_DISABLED);
    replace_atomically(fx, keys_ok);
    assert_true(wait_for_status(fx, "abc", GW_AUTH_OK, 2000) >= 0);
    assert_string_equal(r.key_id, "key_b");
}

static void test_corrupt_file_keeps_the_old_keys_and_counts_one_reload_error(void **state) {
    struct fixture *fx = *state;
    replace_atomically(fx, "{\"version\":1,\"keys\":[{\"id\":\"key_a\"}]}");
    run_for(&fx->loop, 2500); /* the watch and two or more polls all see the change */
    assert_int_equal(check(fx, "abc"), GW_AUTH_OK);
    assert_true(metric_line(fx, "sluice_gateway_keys_reloads_total{result=\"error\"} 1\n"));
    assert_true(metric_line(fx, "sluice_gateway_keys_reloads_total{result=\"ok\"} 0\n"));
    assert_true(metric_line(fx, "sluice_gateway_keys_loaded 2\n"));
    /* Fixing the file puts the new contents in force. */
    replace_atomically(fx, keys_revoked);
    assert_true(wait_for_status(fx, "abc", GW_AUTH_REVOKED, 2000) >= 0);
}

static void test_explicit_reload_applies_an_in_place_edit_at_once(void **state) {
    struct fixture *fx = *state;
    write_raw(fx->path, keys_revoked); /* same inode, no loop iteration in between */
    assert_int_equal(gw_auth_reload(fx->auth), 0);
    assert_int_equal(check(fx, "abc"), GW_AUTH_REVOKED);
    assert_true(metric_line(fx, "sluice_gateway_keys_reloads_total{result=\"ok\"} 1\n"));
    /* A forced reload of a bad file reports the error and keeps the table. */
    write_raw(fx->path, "not json");
    assert_int_equal(gw_auth_reload(fx->auth), SL_ERR_PARSE);
    assert_int_equal(check(fx, "abc"), GW_AUTH_REVOKED);
    assert_true(metric_line(fx, "sluice_gateway_keys_reloads_total{result=\"error\"} 1\n"));
}

static void test_kubernetes_style_symlink_swap_is_picked_up(void **state) {
    struct fixture *fx = *state;
    /* Layout of a Secret volume: keys.json -> ..data/keys.json, ..data -> ..v1 */
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/..v1", fx->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/..v1/keys.json", fx->dir);
    write_raw(p, keys_ok);
    snprintf(p, sizeof p, "%s/..data", fx->dir);
    assert_int_equal(symlink("..v1", p), 0);
    snprintf(p, sizeof p, "%s/k8s.json", fx->dir);
    assert_int_equal(symlink("..data/keys.json", p), 0);

    struct gw_auth *k8s;
    assert_int_equal(gw_auth_new(&fx->loop, p, NULL, &k8s), 0);
    struct gw_auth_result r;
    assert_int_equal(gw_auth_check(k8s, "abc", 3, NOW, &r), GW_AUTH_OK);

    snprintf(p, sizeof p, "%s/..v2", fx->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/..v2/keys.json", fx->dir);
    write_raw(p, keys_revoked);
    snprintf(p, sizeof p, "%s/..data_tmp", fx->dir);
    assert_int_equal(symlink("..v2", p), 0);
    snprintf(q, sizeof q, "%s/..data", fx->dir);
    assert_int_equal(rename(p, q), 0);

    uint64_t start = sl_time_mono_ns();
    while (gw_auth_check(k8s, "abc", 3, NOW, &r) != GW_AUTH_REVOKED &&
           sl_time_mono_ns() - start < 2000000000u)
        run_for(&fx->loop, 20);
    assert_int_equal(r.status, GW_AUTH_REVOKED);
    gw_auth_close(k8s, NULL, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void test_gateway_refuses_to_start_on_a_missing_or_bad_file(void **state) {
    struct fixture *fx = *state;
    struct gw_auth *a = NULL;
    char p[160];
    snprintf(p, sizeof p, "%s/nope.json", fx->dir);
    assert_int_equal(gw_auth_new(&fx->loop, p, NULL, &a), -ENOENT);
    assert_null(a);
    write_raw(p, "{\"version\":2,\"keys\":[]}");
    assert_int_equal(gw_auth_new(&fx->loop, p, NULL, &a), SL_ERR_VERSION);
    assert_null(a);
}

int main(void) {
    sl_log_init("test_auth", SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_known_key_passes_with_its_id_and_plan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_missing_unknown_and_disabled_keys_are_refused_by_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_atomic_replacement_revoking_a_key_takes_effect_within_two_seconds, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_corrupt_file_keeps_the_old_keys_and_counts_one_reload_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explicit_reload_applies_an_in_place_edit_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_kubernetes_style_symlink_swap_is_picked_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gateway_refuses_to_start_on_a_missing_or_bad_file,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
