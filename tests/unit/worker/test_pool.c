/*
 * Unit tests for the worker's prefork pool, through the events it tells its owner. The children
 * are this test program re-executed with --child: they answer each frame with the same bytes,
 * exit on "die" and never answer "hang".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "pool.h"
#include "sluice/buf.h"
#include "sluice/time.h"

static const char *self_exe;

/* The child side: ready, then echo every frame on fd 3 until the end of the stream. */
static int child_main(void) {
    struct sl_buf in;
    sl_buf_init(&in, 1 << 16);
    if (wk_frame_write_fd(3, "", 0) < 0)
        return 1;
    while (wk_frame_read_fd(3, &in, 1 << 16) == 0) {
        if (in.len == 3 && !memcmp(in.data, "die", 3))
            _exit(3);
        if (in.len == 4 && !memcmp(in.data, "hang", 4)) {
            pause();
            continue;
        }
        if (wk_frame_write_fd(3, in.data, in.len) < 0)
            break;
    }
    sl_buf_free(&in);
    return 0;
}

struct owner {
    int replies, failures, deaths, idles, closed;
    void *last_job;
    enum wk_reason last_reason;
    char reply[64];
};

static void on_reply(void *job, const uint8_t *payload, size_t len, void *data) {
    struct owner *o = data;
    o->replies++;
    o->last_job = job;
    size_t n = len < sizeof o->reply - 1 ? len : sizeof o->reply - 1;
    memcpy(o->reply, payload, n);
    o->reply[n] = '\0';
}

static void on_failed(void *job, enum wk_reason reason, const char *why, void *data) {
    (void)why;
    struct owner *o = data;
    o->failures++;
    o->last_job = job;
    o->last_reason = reason;
}

static void on_child_died(void *data) {
    ((struct owner *)data)->deaths++;
}

static void on_idle(void *data) {
    ((struct owner *)data)->idles++;
}

static void on_closed(void *data) {
    ((struct owner *)data)->closed++;
}

struct fixture {
    uv_loop_t loop;
    struct wk_pool pool;
    struct owner o;
    uv_timer_t tick;
};

static void on_tick(uv_timer_t *t) {
    struct fixture *f = t->data;
    wk_pool_tick(&f->pool);
}

/* Runs the loop until *counter reaches want or five seconds pass. */
static void run_until(struct fixture *f, const int *counter, int want) {
    uint64_t end = sl_time_mono_ns() + 5000000000u;
    while (*counter < want && sl_time_mono_ns() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(*counter, want);
}

static void run_until_ready(struct fixture *f, size_t n) {
    uint64_t end = sl_time_mono_ns() + 5000000000u;
    while (wk_pool_ready(&f->pool) < n && sl_time_mono_ns() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(wk_pool_ready(&f->pool), n);
}

static int setup(void **state) {
    static struct fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(uv_loop_init(&f.loop), 0);
    struct wk_pool_config cfg = {
        .loop = &f.loop,
        .exe = self_exe,
        .nchildren = 2,
        .memory_limit = UINT64_C(1) << 40,
        .events = {.on_reply = on_reply,
                   .on_failed = on_failed,
                   .on_child_died = on_child_died,
                   .on_idle = on_idle,
                   .data = &f.o},
    };
    assert_int_equal(wk_pool_init(&f.pool, &cfg), 0);
    assert_int_equal(wk_pool_start(&f.pool), 0);
    uv_timer_init(&f.loop, &f.tick);
    f.tick.data = &f;
    uv_timer_start(&f.tick, on_tick, 10, 10);
    run_until_ready(&f, 2);
    *state = &f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    uv_close((uv_handle_t *)&f->tick, NULL);
    if (!f->pool.closing)
        wk_pool_close(&f->pool, on_closed, &f->o);
    run_until(f, &f->o.closed, 1);
    wk_pool_free(&f->pool);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    return 0;
}

static void test_a_child_answers_the_job_it_was_given(void **state) {
    struct fixture *f = *state;
    int job;
    struct wk_child *c = wk_pool_idle(&f->pool);
    assert_non_null(c);
    /* The head and the payload travel as one frame. */
    assert_int_equal(wk_pool_run(c, "he", 2, "llo", 3, 5000, &job), 0);
    assert_int_equal(wk_pool_busy(&f->pool), 1);
    run_until(f, &f->o.replies, 1);
    assert_ptr_equal(f->o.last_job, &job);
    assert_string_equal(f->o.reply, "hello");
    assert_int_equal(wk_pool_busy(&f->pool), 0);
    assert_true(f->o.idles >= 1);
    assert_int_equal(f->o.failures, 0);
}

static void test_a_dead_child_fails_its_job_and_is_restarted(void **state) {
    struct fixture *f = *state;
    int job;
    assert_int_equal(wk_pool_run(wk_pool_idle(&f->pool), NULL, 0, "die", 3, 5000, &job), 0);
    run_until(f, &f->o.failures, 1);
    assert_ptr_equal(f->o.last_job, &job);
    assert_int_equal(f->o.last_reason, WK_REASON_CRASH);
    assert_int_equal(f->o.deaths, 1);
    run_until_ready(f, 2);
}

static void test_a_job_past_its_timeout_fails_once_and_its_child_is_killed(void **state) {
    struct fixture *f = *state;
    int job;
    assert_int_equal(wk_pool_run(wk_pool_idle(&f->pool), NULL, 0, "hang", 4, 50, &job), 0);
    run_until(f, &f->o.deaths, 1);
    assert_int_equal(f->o.failures, 1);
    assert_int_equal(f->o.last_reason, WK_REASON_TIMEOUT);
    run_until_ready(f, 2);
    assert_int_equal(f->o.failures, 1);
}

static void test_closing_fails_the_running_job(void **state) {
    struct fixture *f = *state;
    int job;
    assert_int_equal(wk_pool_run(wk_pool_idle(&f->pool), NULL, 0, "hang", 4, 60000, &job), 0);
    wk_pool_close(&f->pool, on_closed, &f->o);
    assert_int_equal(f->o.failures, 1);
    assert_int_equal(f->o.last_reason, WK_REASON_TIMEOUT);
    run_until(f, &f->o.closed, 1);
    assert_int_equal(f->o.deaths, 0); /* a stop is not a restart */
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return child_main();
    self_exe = "/proc/self/exe";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_child_answers_the_job_it_was_given, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_child_fails_its_job_and_is_restarted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_job_past_its_timeout_fails_once_and_its_child_is_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing_fails_the_running_job, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
