/* Unit tests for the file watch that drives keys-file and web-ACL reloads. */
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

#include "sluice/filewatch.h"

struct fixture {
    char dir[64];
    char path[96];
    uv_loop_t loop;
    uv_timer_t keepalive; /* the watch's handles are unreferenced: something must keep the loop
                             alive, as a service's listeners do */
    int calls;
};

static void tick(uv_timer_t *t) {
    (void)t;
}

static void on_change(void *data) {
    ((struct fixture *)data)->calls++;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Runs the loop until the callback count reaches `want` or `ms` pass; returns elapsed ms. */
static uint64_t wait_calls(struct fixture *fx, int want, uint64_t ms) {
    uint64_t t0 = uv_hrtime();
    while (fx->calls < want && (uv_hrtime() - t0) / 1000000u < ms) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    return (uv_hrtime() - t0) / 1000000u;
}

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sl-filewatch-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof fx->path, "%s/keys.json", fx->dir);
    write_file(fx->path, "one");
    uv_loop_init(&fx->loop);
    uv_timer_init(&fx->loop, &fx->keepalive);
    uv_timer_start(&fx->keepalive, tick, 10, 10);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    uv_close((uv_handle_t *)&fx->keepalive, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle was closed */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void test_atomic_replace_is_seen_within_a_second(void **state) {
    struct fixture *fx = *state;
    struct sl_filewatch *w;
    assert_int_equal(sl_filewatch_start(&fx->loop, fx->path, 60000, on_change, fx, &w), 0);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s.tmp", fx->path);
    write_file(tmp, "two");
    assert_int_equal(rename(tmp, fx->path), 0);
    /* The poll is a minute away: only the directory watch can see this in time. */
    assert_true(wait_calls(fx, 1, 2000) < 1000);
    wait_calls(fx, 2, 200); /* the debounce folds the rename's events into one call */
    assert_int_equal(fx->calls, 1);
    sl_filewatch_close(w, NULL, NULL);
}

static void test_stat_check_sees_a_change_the_directory_watch_cannot(void **state) {
    struct fixture *fx = *state;
    /* The watched path is a symlink to a file in another directory: writes to the target do
     * not touch the watched directory, so only the stat check (which follows links) sees them. */
    char other[96], target[128], link[128];
    snprintf(other, sizeof other, "%s/other", fx->dir);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(target, sizeof target, "%s/target.json", other);
    write_file(target, "v1");
    snprintf(link, sizeof link, "%s/watched", fx->dir);
    assert_int_equal(symlink(target, link), 0);
    struct sl_filewatch *w;
    assert_int_equal(sl_filewatch_start(&fx->loop, link, 100, on_change, fx, &w), 0);
    wait_calls(fx, 1, 300);
    assert_int_equal(fx->calls, 0);
    write_file(target, "version two");
    uint64_t ms = wait_calls(fx, 1, 2000);
    assert_int_equal(fx->calls, 1);
    assert_true(ms < 1000);
    /* Nothing changes any more: the poll stays quiet. */
    wait_calls(fx, 2, 400);
    assert_int_equal(fx->calls, 1);
    sl_filewatch_close(w, NULL, NULL);
}

static void close_done(void *data) {
    *(int *)data = 1;
}

static void test_no_call_after_close(void **state) {
    struct fixture *fx = *state;
    struct sl_filewatch *w;
    assert_int_equal(sl_filewatch_start(&fx->loop, fx->path, 50, on_change, fx, &w), 0);
    write_file(fx->path, "changed in place");
    int closed = 0;
    sl_filewatch_close(w, close_done, &closed);
    wait_calls(fx, 1, 300);
    assert_int_equal(fx->calls, 0);
    assert_int_equal(closed, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_atomic_replace_is_seen_within_a_second, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stat_check_sees_a_change_the_directory_watch_cannot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_call_after_close, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
