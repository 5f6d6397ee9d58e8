/* Unit tests for the admin listener: /healthz, /readyz, /metrics over real sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <uv.h>

#include "sluice/admin.h"
#include "sluice/metrics.h"

struct fx {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    struct sl_admin *admin;
    struct sl_metrics *metrics;
    int port;
    atomic_int ready;
    atomic_int closed;
};

static int ready_cb(struct sl_buf *reason, void *data) {
    struct fx *f = data;
    if (atomic_load(&f->ready))
        return 1;
    sl_buf_append_str(reason, "kafka \"requests\" not connected");
    return 0;
}

static void on_closed(void *data) {
    struct fx *f = data;
    atomic_store(&f->closed, 1);
}

static void on_async(uv_async_t *a) {
    struct fx *f = a->data;
    sl_admin_close(f->admin, on_closed, f);
    uv_close((uv_handle_t *)&f->async, NULL);
}

static void loop_thread(void *arg) {
    struct fx *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int setup(void **state) {
    struct fx *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->metrics = sl_metrics_new();
    sl_counter_add(
        sl_metric_get(sl_metrics_counter(f->metrics, "sluice_test_total", "Test.", NULL)), 7);
    struct sl_admin_options o = {.metrics = f->metrics, .ready = ready_cb, .data = f};
    assert_int_equal(sl_admin_init(&f->admin, &f->loop, &o), 0);
    assert_int_equal(sl_admin_start(f->admin, "127.0.0.1", 0), 0);
    f->port = sl_admin_port(f->admin);
    assert_true(f->port > 0);
    uv_async_init(&f->loop, &f->async, on_async);
    f->async.data = f;
    assert_int_equal(uv_thread_create(&f->thread, loop_thread, f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fx *f = *state;
    uv_async_send(&f->async);
    uv_thread_join(&f->thread);
    assert_int_equal(atomic_load(&f->closed), 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_metrics_free(f->metrics);
    free(f);
    return 0;
}

/* Sends raw bytes and returns everything read until the server closes (caller frees). */
static char *exchange_raw(struct fx *f, const char *req) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ssize_t n = (ssize_t)strlen(req);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 65536, len = 0;
    char *out = malloc(cap);
    ssize_t r;
    while ((r = recv(fd, out + len, cap - len - 1, 0)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(fd);
    return out;
}

/* Sends one request with Connection: close and returns the whole response (caller frees). */
static char *exchange(struct fx *f, const char *method, const char *path) {
    char req[256];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", method,
             path);
    return exchange_raw(f, req);
}

static const char *body_of(const char *resp) {
    const char *p = strstr(resp, "\r\n\r\n");
    return p ? p + 4 : "";
}

static void test_healthz_answers_ok_while_the_process_lives(void **state) {
    char *r = exchange(*state, "GET", "/healthz");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_string_equal(body_of(r), "ok");
    free(r);
}

static void test_readyz_is_503_with_the_reason_until_ready_then_200(void **state) {
    struct fx *f = *state;
    char *r = exchange(f, "GET", "/readyz");
    assert_true(strncmp(r, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    assert_non_null(strstr(r, "Content-Type: application/json\r\n"));
    assert_string_equal(body_of(r),
                        "{\"ready\":false,\"reason\":\"kafka \\\"requests\\\" not connected\"}");
    free(r);
    atomic_store(&f->ready, 1);
    r = exchange(f, "GET", "/readyz");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_string_equal(body_of(r), "ok");
    free(r);
}

static void test_metrics_renders_the_registry_in_prometheus_text(void **state) {
    char *r = exchange(*state, "GET", "/metrics");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4\r\n"));
    assert_non_null(strstr(body_of(r), "\nsluice_test_total 7\n"));
    free(r);
}

static void test_head_metrics_has_headers_but_no_body(void **state) {
    char *r = exchange(*state, "HEAD", "/metrics");
    assert_true(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_string_equal(body_of(r), "");
    free(r);
}

static void test_unknown_path_is_404(void **state) {
    char *r = exchange(*state, "GET", "/admin");
    assert_true(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    assert_string_equal(body_of(r), "{\"message\":\"Not Found\"}");
    free(r);
}

static void test_post_to_a_known_path_is_405_with_allow(void **state) {
    char *r = exchange(*state, "POST", "/healthz");
    assert_true(strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0);
    assert_non_null(strstr(r, "Allow: GET, HEAD\r\n"));
    free(r);
}

/* The admin listener sets no error hook: the HTTP server's own refusals are plain. */
static void test_malformed_request_gets_a_plain_400(void **state) {
    char *r = exchange_raw(*state, "GET /healthz HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
    assert_true(strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    assert_non_null(strstr(r, "\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n"));
    assert_null(strstr(r, "x-amzn"));
    assert_string_equal(body_of(r), "Bad Request");
    free(r);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_healthz_answers_ok_while_the_process_lives),
        T(test_readyz_is_503_with_the_reason_until_ready_then_200),
        T(test_metrics_renders_the_registry_in_prometheus_text),
        T(test_head_metrics_has_headers_but_no_body),
        T(test_unknown_path_is_404),
        T(test_post_to_a_known_path_is_405_with_allow),
        T(test_malformed_request_gets_a_plain_400),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
