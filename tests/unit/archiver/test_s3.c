/* Unit tests of the S3 client's pieces that need no server: URI encoding and configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/error.h"
#include "sluice/s3.h"

static void test_key_segments_are_encoded_once_with_equals_as_percent_3d(void **state) {
    (void)state;
    struct sl_buf b = {0};
    sl_buf_init(&b, 1024);
    assert_int_equal(sl_s3_uri_encode(&b, "p/api-logs/year=2026/t+0+01.ndjson.gz~_", true), 0);
    assert_string_equal(b.data, "p/api-logs/year%3D2026/t%2B0%2B01.ndjson.gz~_");
    sl_buf_reset(&b);
    assert_int_equal(sl_s3_uri_encode(&b, "a b/\xc3\xa9", false), 0);
    assert_string_equal(b.data, "a%20b%2F%C3%A9");
    sl_buf_free(&b);
}

static void test_a_client_without_credentials_is_a_configuration_error(void **state) {
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    struct sl_s3_config cfg = {.endpoint = "http://127.0.0.1:1", .path_style = true};
    struct sl_s3_client *c = NULL;
    struct sl_buf err = {0};
    sl_buf_init(&err, 4096);
    assert_int_equal(sl_s3_client_new(&cfg, "b", &c, &err), SL_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(err.data, "AWS_ACCESS_KEY_ID"));
    cfg.access_key = "AK";
    cfg.secret_key = "SK";
    assert_int_equal(sl_s3_client_new(&cfg, "b", &c, &err), 0);
    assert_string_equal(sl_s3_client_bucket(c), "b");
    sl_s3_client_free(c);
    sl_buf_free(&err);
}

static void test_a_refused_connection_is_an_io_error_without_status(void **state) {
    (void)state;
    struct sl_s3_config cfg = {.endpoint = "http://127.0.0.1:1",
                               .path_style = true,
                               .access_key = "AK",
                               .secret_key = "SK",
                               .timeout_ms = 2000};
    struct sl_s3_client *c = NULL;
    struct sl_buf err = {0};
    assert_int_equal(sl_s3_client_new(&cfg, "b", &c, &err), 0);
    struct sl_s3_request req = {.method = "PUT", .key = "k", .body = "x", .len = 1};
    struct sl_s3_response res;
    assert_int_equal(sl_s3_request(c, &req, &res), -EIO);
    assert_int_equal(res.status, 0);
    assert_int_not_equal(res.curl_error, 0);
    sl_buf_free(&res.body);
    sl_s3_client_free(c);
    sl_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_segments_are_encoded_once_with_equals_as_percent_3d),
        cmocka_unit_test(test_a_client_without_credentials_is_a_configuration_error),
        cmocka_unit_test(test_a_refused_connection_is_an_io_error_without_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
