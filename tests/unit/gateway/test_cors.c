/* Unit tests for the gateway's CORS policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cors.h"
#include "sluice/error.h"

#define SEED_ORIGINS "https://yourdomain.com, https://app.yourdomain.com"
#define SEED_METHODS "GET,POST,PUT,DELETE,OPTIONS"
#define SEED_HEADERS                                                                               \
    "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,X-Amz-User-Agent"

static struct sl_str s(const char *z) {
    return (struct sl_str){.p = z, .len = strlen(z)};
}

static void assert_header(const struct sl_http_header *h, const char *name, const char *value) {
    assert_int_equal(h->name.len, strlen(name));
    assert_memory_equal(h->name.p, name, h->name.len);
    assert_int_equal(h->value.len, strlen(value));
    assert_memory_equal(h->value.p, value, h->value.len);
}

static void seed(struct gw_cors *c) {
    struct sl_buf err;
    sl_buf_init(&err, 1024);
    assert_int_equal(gw_cors_init(c, SEED_ORIGINS, SEED_METHODS, SEED_HEADERS, 600, &err), 0);
    sl_buf_free(&err);
}

static void test_preflight_from_allowed_origin_gets_full_headers(void **state) {
    (void)state;
    struct gw_cors c;
    seed(&c);
    assert_true(gw_cors_is_preflight(&c, s("OPTIONS"), 1, 1));
    assert_false(gw_cors_is_preflight(&c, s("OPTIONS"), 1, 0));
    assert_false(gw_cors_is_preflight(&c, s("GET"), 1, 1));
    struct sl_http_header h[6];
    assert_int_equal(gw_cors_preflight_headers(&c, s("https://app.yourdomain.com"), h), 6);
    assert_header(&h[0], "Access-Control-Allow-Origin", "https://app.yourdomain.com");
    assert_header(&h[1], "Access-Control-Allow-Credentials", "true");
    assert_header(&h[2], "Access-Control-Allow-Methods", SEED_METHODS);
    assert_header(&h[3], "Access-Control-Allow-Headers", SEED_HEADERS);
    assert_header(&h[4], "Access-Control-Max-Age", "600");
    assert_header(&h[5], "Vary", "Origin");
    gw_cors_free(&c);
}

static void test_disallowed_origin_gets_no_allow_origin(void **state) {
    (void)state;
    struct gw_cors c;
    seed(&c);
    struct sl_http_header h[6];
    size_t n = gw_cors_preflight_headers(&c, s("https://evil.example"), h);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_false(h[i].name.len == 27 &&
                     !memcmp(h[i].name.p, "Access-Control-Allow-Origin", 27));
    /* A prefix or a different case is not the same origin. */
    assert_false(gw_cors_origin_allowed(&c, s("https://yourdomain.com.evil.example")));
    assert_false(gw_cors_origin_allowed(&c, s("HTTPS://YOURDOMAIN.COM")));
    struct sl_http_header r[3];
    assert_int_equal(gw_cors_response_headers(&c, s("https://evil.example"), r), 1);
    assert_header(&r[0], "Vary", "Origin");
    gw_cors_free(&c);
}

static void test_actual_response_from_allowed_origin_gets_origin_and_credentials(void **state) {
    (void)state;
    struct gw_cors c;
    seed(&c);
    struct sl_http_header r[3];
    assert_int_equal(gw_cors_response_headers(&c, s("https://yourdomain.com"), r), 3);
    assert_header(&r[0], "Access-Control-Allow-Origin", "https://yourdomain.com");
    assert_header(&r[1], "Access-Control-Allow-Credentials", "true");
    assert_header(&r[2], "Vary", "Origin");
    gw_cors_free(&c);
}

static void test_wildcard_and_malformed_origins_are_refused(void **state) {
    (void)state;
    struct gw_cors c;
    struct sl_buf err;
    sl_buf_init(&err, 1024);
    assert_int_equal(gw_cors_init(&c, "https://a.example,*", "GET", "X", 0, &err), SL_ERR_CONFIG);
    assert_string_equal(err.data, "SLUICE_CORS_ORIGINS: \"*\" is not allowed with credentials; "
                                  "list the origins\n");
    sl_buf_reset(&err);
    assert_int_equal(gw_cors_init(&c, "https://a.example/path", "GET", "X", 0, &err),
                     SL_ERR_CONFIG);
    assert_string_equal(err.data, "SLUICE_CORS_ORIGINS: \"https://a.example/path\" is not an "
                                  "origin (scheme://host[:port])\n");
    sl_buf_free(&err);
}

/* The method and header lists go out as answer header values without another check. */
static void test_control_bytes_in_the_allow_lists_are_refused(void **state) {
    (void)state;
    struct gw_cors c;
    struct sl_buf err;
    sl_buf_init(&err, 1024);
    assert_int_equal(gw_cors_init(&c, SEED_ORIGINS, "GET,\nPOST", "X", 0, &err), SL_ERR_CONFIG);
    assert_string_equal(err.data, "SLUICE_CORS_ALLOW_METHODS: control character 0x0a at byte 4\n");
    sl_buf_reset(&err);
    assert_int_equal(gw_cors_init(&c, SEED_ORIGINS, "GET", "X-A,\x7fX-B", 0, &err), SL_ERR_CONFIG);
    assert_string_equal(err.data, "SLUICE_CORS_ALLOW_HEADERS: control character 0x7f at byte 4\n");
    sl_buf_reset(&err);
    assert_int_equal(gw_cors_init(&c, SEED_ORIGINS, "GET,\tPOST", "X-A, X-B", 0, &err), 0);
    gw_cors_free(&c);
    sl_buf_free(&err);
}

static void test_empty_origin_list_turns_cors_off(void **state) {
    (void)state;
    struct gw_cors c;
    struct sl_buf err;
    sl_buf_init(&err, 1024);
    assert_int_equal(gw_cors_init(&c, "", SEED_METHODS, SEED_HEADERS, 0, &err), 0);
    assert_false(gw_cors_is_preflight(&c, s("OPTIONS"), 1, 1));
    struct sl_http_header r[3];
    assert_int_equal(gw_cors_response_headers(&c, s("https://yourdomain.com"), r), 0);
    gw_cors_free(&c);
    sl_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preflight_from_allowed_origin_gets_full_headers),
        cmocka_unit_test(test_disallowed_origin_gets_no_allow_origin),
        cmocka_unit_test(test_actual_response_from_allowed_origin_gets_origin_and_credentials),
        cmocka_unit_test(test_wildcard_and_malformed_origins_are_refused),
        cmocka_unit_test(test_control_bytes_in_the_allow_lists_are_refused),
        cmocka_unit_test(test_empty_origin_list_turns_cors_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
