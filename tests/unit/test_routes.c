/* Unit tests for the shared routes file: validation messages and API Gateway-style matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/error.h"
#include "sluice/routes.h"

static struct sl_routes *load(const char *json) {
    struct sl_routes *r = NULL;
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    int rc = sl_routes_parse(json, strlen(json), &r, &err);
    if (rc != 0)
        fail_msg("unexpected error: %s", err.data);
    sl_buf_free(&err);
    return r;
}

static void expect_error(const char *json, const char *message) {
    struct sl_routes *r = (struct sl_routes *)1;
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    assert_true(sl_routes_parse(json, strlen(json), &r, &err) < 0);
    assert_null(r);
    assert_string_equal(err.data, message);
    sl_buf_free(&err);
}

static const char *match_path(const struct sl_routes *r, const char *method, const char *path,
                              struct sl_route_match *m) {
    if (!sl_routes_match(r, method, strlen(method), path, strlen(path), m))
        return NULL;
    return m->route->path;
}

static void test_default_routes_are_the_seed_proxy_with_a_key(void **state) {
    (void)state;
    struct sl_routes *r;
    assert_int_equal(sl_routes_default(&r), 0);
    struct sl_route_match m;
    assert_string_equal(match_path(r, "PATCH", "/a/b/c", &m), "/{proxy+}");
    assert_true(m.route->api_key_required);
    assert_string_equal(m.route->handler, "echo");
    assert_int_equal(m.nparams, 1);
    assert_int_equal(m.params[0].value.len, 5);
    assert_memory_equal(m.params[0].value.p, "a/b/c", 5);
    /* API Gateway's root resource has no method in the seed: "/" is not routed. */
    assert_null(match_path(r, "GET", "/", &m));
    sl_routes_free(r);
}

static void test_literal_beats_param_beats_greedy_and_exact_method_beats_any(void **state) {
    (void)state;
    struct sl_routes *r = load("{\"routes\":["
                               "{\"method\":\"ANY\",\"path\":\"/{proxy+}\"},"
                               "{\"method\":\"ANY\",\"path\":\"/items/{id}\"},"
                               "{\"method\":\"GET\",\"path\":\"/items/{id}\"},"
                               "{\"method\":\"ANY\",\"path\":\"/items/special\"},"
                               "{\"method\":\"ANY\",\"path\":\"/items/{id}/tags/{tag}\"},"
                               "{\"method\":\"ANY\",\"path\":\"/\",\"api_key_required\":false}]}");
    struct sl_route_match m;
    assert_string_equal(match_path(r, "POST", "/items/42", &m), "/items/{id}");
    assert_string_equal(m.route->method, "ANY");
    assert_string_equal(match_path(r, "GET", "/items/42", &m), "/items/{id}");
    assert_string_equal(m.route->method, "GET");
    assert_string_equal(match_path(r, "GET", "/items/special", &m), "/items/special");
    assert_string_equal(match_path(r, "GET", "/items/7/tags/red", &m), "/items/{id}/tags/{tag}");
    assert_int_equal(m.nparams, 2);
    assert_memory_equal(m.params[1].name.p, "tag", 3);
    assert_memory_equal(m.params[1].value.p, "red", 3);
    assert_string_equal(match_path(r, "GET", "/items/7/other", &m), "/{proxy+}");
    assert_string_equal(match_path(r, "GET", "/items/", &m), "/{proxy+}");
    assert_string_equal(match_path(r, "GET", "/", &m), "/");
    assert_false(m.route->api_key_required);
    sl_routes_free(r);
}

static void test_unmatched_path_returns_no_route(void **state) {
    (void)state;
    struct sl_routes *r = load("{\"routes\":[{\"method\":\"GET\",\"path\":\"/items/{id}\"}]}");
    struct sl_route_match m;
    assert_null(match_path(r, "GET", "/items", &m));
    assert_null(match_path(r, "GET", "/items/1/2", &m));
    assert_null(match_path(r, "POST", "/items/1", &m));
    assert_null(match_path(r, "GET", "/items//", &m));
    sl_routes_free(r);
}

static void test_handlers_carry_their_settings(void **state) {
    (void)state;
    struct sl_routes *r =
        load("{\"routes\":[{\"method\":\"GET\",\"path\":\"/up\",\"handler\":\"http\","
             "\"upstream\":\"http://127.0.0.1:8000/base\",\"timeout_ms\":5000},"
             "{\"method\":\"POST\",\"path\":\"/hello\",\"handler\":\"plugin\",\"plugin\":\"/p/"
             "h.so\"}]}");
    assert_string_equal(r->routes[0].upstream, "http://127.0.0.1:8000/base");
    assert_int_equal(r->routes[0].timeout_ms, 5000);
    assert_true(r->routes[0].api_key_required);
    assert_string_equal(r->routes[1].plugin, "/p/h.so");
    assert_int_equal(r->routes[1].timeout_ms, 0);
    sl_routes_free(r);
}

static void test_invalid_entries_are_named_with_their_json_path(void **state) {
    (void)state;
    expect_error("[]", "routes: expected an object with a \"routes\" array\n");
    expect_error("{\"routes\":[", "routes: not valid JSON\n");
    expect_error("{\"routes\":[]}", "routes: expected 1 to 1024 routes, found 0\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a\"},{\"path\":\"/b\"}]}",
                 "routes[1].method: is required\n");
    expect_error("{\"routes\":[{\"method\":\"FETCH\",\"path\":\"/a\"}]}",
                 "routes[0].method: \"FETCH\" is not one of ANY, GET, POST, PUT, DELETE, HEAD, "
                 "OPTIONS, PATCH\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"a\"}]}",
                 "routes[0].path: \"a\" must start with '/'\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/{p+}/x\"}]}",
                 "routes[0].path: \"/{p+}/x\": a greedy parameter {name+} must be the last "
                 "segment\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a/{id}/{id}\"}]}",
                 "routes[0].path: \"/a/{id}/{id}\" repeats a parameter name\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a\",\"handler\":\"lambda\"}]}",
                 "routes[0].handler: \"lambda\" is not one of echo, http, plugin\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a\",\"handler\":\"http\"}]}",
                 "routes[0].upstream: is required for handler \"http\"\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a\",\"timeout_ms\":10}]}",
                 "routes[0].timeout_ms: must be an integer from 50 to 900000\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a\",\"api_key\":true}]}",
                 "routes[0].api_key: is not a known field\n");
    expect_error("{\"routes\":[{\"method\":\"GET\",\"path\":\"/a/{x}\"},"
                 "{\"method\":\"GET\",\"path\":\"/a/{y}\"}]}",
                 "routes[1].path: duplicates routes[0]\n");
}

static void test_url_decode_handles_escapes_plus_and_bad_input(void **state) {
    (void)state;
    char out[16];
    assert_int_equal(sl_url_decode("a%20b+c%2F", 10, out, sizeof out, 1), 6);
    assert_memory_equal(out, "a b c/", 6);
    assert_int_equal(sl_url_decode("a+b", 3, out, sizeof out, 0), 3);
    assert_memory_equal(out, "a+b", 3);
    assert_int_equal(sl_url_decode("%4", 2, out, sizeof out, 0), SL_ERR_PARSE);
    assert_int_equal(sl_url_decode("%zz", 3, out, sizeof out, 0), SL_ERR_PARSE);
    assert_int_equal(sl_url_decode("abc", 3, out, 2, 0), SL_ERR_TOO_LARGE);
}

static void test_dot_segments_and_encoded_separators_are_not_clean(void **state) {
    (void)state;
    static const char *const bad[] = {
        "/public/../admin/x",
        "/public/./x",
        "/..",
        "/.",
        "/a/..",
        "/a/%2e%2e/b",
        "/a/%2E%2e/b",
        "/a/.%2e/b",
        "/a/%2e/b",
        "/a%2fb",
        "/a%2Fb",
        "/a%5cb",
        "/a%5Cb",
        "/a\\b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sl_routes_path_is_clean(bad[i], strlen(bad[i])))
            fail_msg("%s passed as clean", bad[i]);
    static const char *const good[] = {
        "/",         "/a/b",         "/a/.../b", "/a/.b/c",         "/a/b./c",
        "/file.txt", "/a/%2e%2e%2e", "/a%20b/c", "/a/%252e%252e/b", "/a//b",
        "/a/%",      "/a/%zz",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!sl_routes_path_is_clean(good[i], strlen(good[i])))
            fail_msg("%s refused", good[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_routes_are_the_seed_proxy_with_a_key),
        cmocka_unit_test(test_literal_beats_param_beats_greedy_and_exact_method_beats_any),
        cmocka_unit_test(test_unmatched_path_returns_no_route),
        cmocka_unit_test(test_handlers_carry_their_settings),
        cmocka_unit_test(test_invalid_entries_are_named_with_their_json_path),
        cmocka_unit_test(test_url_decode_handles_escapes_plus_and_bad_input),
        cmocka_unit_test(test_dot_segments_and_encoded_separators_are_not_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
