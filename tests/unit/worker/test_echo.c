/* Unit tests of the echo handler's body: json.loads's strictness, json.dumps's printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handlers/handlers.h"
#include "handlers/pyjson.h"

#define NOW_US (INT64_C(1795827723) * 1000000)

/* Runs echo on a POST of body[0..n) and returns the answer's body (owned by *out). */
static const char *post(struct wk_response *out, const char *method, const char *body, size_t n) {
    struct sl_envelope_request r = {
        .id = SL_STR("r"),
        .method = {method, strlen(method)},
        .path = SL_STR("/p"),
        .stage = SL_STR("s"),
        .body = {body, n},
    };
    wk_response_init(out, wk_echo_body_max(n + 64));
    assert_int_equal(wk_echo_handle(&r, NOW_US, out), 0);
    return out->body.data;
}

/* The received_data of a 200 POST answer, as printed. */
static void assert_received(const char *body, size_t n, const char *want) {
    struct wk_response out;
    const char *got = post(&out, "POST", body, n);
    assert_int_equal(out.status, 200);
    const char *at = strstr(got, "\"received_data\": ");
    assert_non_null(at);
    at += strlen("\"received_data\": ");
    const char *end = strstr(at, ", \"method\": \"POST\"}");
    assert_non_null(end);
    char *text = strndup(at, (size_t)(end - at));
    assert_string_equal(text, want);
    free(text);
    wk_response_free(&out);
}

#define RECEIVED(lit, want) assert_received(lit, sizeof(lit) - 1, want)

static void test_echo_body_with_trailing_bytes_is_a_string(void **state) {
    (void)state;
    RECEIVED("{\"a\":1} x", "\"{\\\"a\\\":1} x\"");
    RECEIVED("[1]]", "\"[1]]\"");
    RECEIVED("nullx", "\"nullx\"");
    RECEIVED("\xef\xbb\xbf{}", "\"\\ufeff{}\"");
    RECEIVED("01", "\"01\"");
    RECEIVED("1.", "\"1.\"");
    RECEIVED(".5", "\".5\"");
    RECEIVED("\"a\tb\"", "\"\\\"a\\tb\\\"\""); /* a raw control character in a string */
    RECEIVED("\"\\x\"", "\"\\\"\\\\x\\\"\"");
    RECEIVED(" \t\r\n[1] \n", "[1]"); /* only these four are whitespace */
    RECEIVED("\x0b"
             "1",
             "\"\\u000b1\"");
}

static void test_echo_numbers_are_printed_as_written(void **state) {
    (void)state;
    RECEIVED("[1.0, 1e5, -0.0, -0, 1E400, 123456789012345678901234567890]",
             "[1.0, 1e5, -0.0, -0, 1E400, 123456789012345678901234567890]");
    RECEIVED("[NaN,Infinity,-Infinity]", "[NaN, Infinity, -Infinity]");
}

static void test_echo_strings_keep_nul_and_lone_surrogates(void **state) {
    (void)state;
    RECEIVED("\"a\\u0000b\"", "\"a\\u0000b\"");
    RECEIVED("[\"\\ud800\", \"\\uDC00x\", \"\\ud83d\\ude00\", \"\\ud800\\u0041\"]",
             "[\"\\ud800\", \"\\udc00x\", \"\\ud83d\\ude00\", \"\\ud800A\"]");
    RECEIVED("\"\xf0\x9f\x98\x80\xc3\xa9\x7f\"", "\"\\ud83d\\ude00\\u00e9\\u007f\"");
}

static void test_echo_invalid_utf8_is_replaced_as_python_decodes_it(void **state) {
    (void)state;
    /* One U+FFFD per maximal invalid subpart: a cut sequence is one, a surrogate three. */
    RECEIVED("\"\xf0\x9f\x98\"", "\"\\ufffd\"");
    RECEIVED("\"\xed\xa0\x80\"", "\"\\ufffd\\ufffd\\ufffd\"");
    RECEIVED("\"\xc0\x80\"", "\"\\ufffd\\ufffd\"");
    RECEIVED("\xe2\x82x", "\"\\ufffdx\"");
}

static void test_echo_repeated_key_keeps_first_position_and_last_value(void **state) {
    (void)state;
    RECEIVED("{\"b\":1,\"a\":2,\"b\":3,\"\\u0061\":4}", "{\"b\": 3, \"a\": 4}");
    RECEIVED("{\"\xff\":1,\"\xfe\":2}", "{\"\\ufffd\": 2}");
}

static char *nested(size_t depth) {
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_echo_keeps_1000_levels_and_answers_deeper_as_recursion_error(void **state) {
    (void)state;
    char *doc = nested(WK_PYJSON_MAX_DEPTH);
    assert_received(doc, strlen(doc), doc);
    free(doc);
    doc = nested(WK_PYJSON_MAX_DEPTH + 1);
    struct wk_response out;
    const char *got = post(&out, "POST", doc, strlen(doc));
    assert_int_equal(out.status, 500);
    assert_string_equal(got, "{\"success\": false, \"error\": \"maximum recursion depth exceeded "
                             "while decoding a JSON array from a unicode string\", \"error_type\": "
                             "\"RecursionError\", \"timestamp\": \"2026-11-28T01:02:03\", "
                             "\"stage\": \"s\", \"request_id\": \"r\"}");
    wk_response_free(&out);
    /* Ten mebibytes of '[' stop at the limit: no recursion, no stack to overflow. */
    size_t n = (size_t)10 << 20;
    char *open = malloc(n);
    memset(open, '[', n);
    post(&out, "GET", open, n);
    assert_int_equal(out.status, 500);
    wk_response_free(&out);
    free(open);
    free(doc);
}

static void test_echo_integer_over_4300_digits_is_a_value_error(void **state) {
    (void)state;
    char digits[4302];
    memset(digits, '7', sizeof digits);
    digits[4300] = '\0';
    assert_received(digits, 4300, digits);
    digits[4300] = '7';
    struct wk_response out;
    const char *got = post(&out, "DELETE", digits, 4301);
    assert_int_equal(out.status, 500);
    assert_non_null(strstr(got, "\"error\": \"Exceeds the limit (4300 digits) for integer string "
                                "conversion: value has 4301 digits; use "
                                "sys.set_int_max_str_digits() to increase the limit\", "
                                "\"error_type\": \"ValueError\""));
    wk_response_free(&out);
}

static void test_echo_other_method_is_405_with_success_false(void **state) {
    (void)state;
    struct wk_response out;
    const char *got = post(&out, "PATCH", "{}", 2);
    assert_int_equal(out.status, 405);
    assert_string_equal(got, "{\"success\": false, \"data\": {\"error\": \"Method PATCH not "
                             "supported\", \"supported_methods\": [\"GET\", \"POST\", \"PUT\", "
                             "\"DELETE\"]}, \"timestamp\": \"2026-11-28T01:02:03\", \"stage\": "
                             "\"s\", \"request_id\": \"r\"}");
    assert_memory_equal(out.strings.data + out.name_off[0], "Allow", 5);
    wk_response_free(&out);
}

static void test_echo_largest_escape_fits_the_buffer_sized_for_it(void **state) {
    (void)state;
    /* Every byte invalid UTF-8: six output bytes each, in a buffer sized by wk_echo_body_max. */
    size_t n = (size_t)1 << 20;
    char *body = malloc(n);
    memset(body, 0xff, n);
    struct sl_envelope_request r = {.id = SL_STR("r"),
                                    .method = SL_STR("POST"),
                                    .path = SL_STR("/p"),
                                    .stage = SL_STR("s"),
                                    .body = {body, n}};
    struct wk_response out;
    wk_response_init(&out, wk_echo_body_max(n + 16));
    assert_int_equal(wk_echo_handle(&r, NOW_US, &out), 0);
    assert_int_equal(out.status, 200);
    assert_true(out.body.len > 6 * n);
    wk_response_free(&out);
    free(body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_body_with_trailing_bytes_is_a_string),
        cmocka_unit_test(test_echo_numbers_are_printed_as_written),
        cmocka_unit_test(test_echo_strings_keep_nul_and_lone_surrogates),
        cmocka_unit_test(test_echo_invalid_utf8_is_replaced_as_python_decodes_it),
        cmocka_unit_test(test_echo_repeated_key_keeps_first_position_and_last_value),
        cmocka_unit_test(test_echo_keeps_1000_levels_and_answers_deeper_as_recursion_error),
        cmocka_unit_test(test_echo_integer_over_4300_digits_is_a_value_error),
        cmocka_unit_test(test_echo_other_method_is_405_with_success_false),
        cmocka_unit_test(test_echo_largest_escape_fits_the_buffer_sized_for_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
