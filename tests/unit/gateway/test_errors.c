/* Unit tests for the gateway's error table and the rows of the HTTP server's own answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "errors.h"

static void test_server_answers_map_to_rows_of_the_same_status(void **state) {
    (void)state;
    static const struct {
        int status;
        const char *body, *error_type;
    } want[] = {
        {400, "{\"message\":\"Bad Request\"}", "BadRequestException"},
        {408, "{\"message\":\"Request Timeout\"}", NULL},
        {413, "{\"message\":\"Request Too Long\"}", "RequestTooLargeException"},
        {414, "{\"message\":\"Request-URI Too Long\"}", NULL},
        {431, "{\"message\":\"Request Header Fields Too Large\"}", NULL},
        {500, "{\"message\":\"Internal server error\"}", "InternalServerErrorException"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct gw_error_info *e = gw_error_info(gw_error_of_server_answer(want[i].status));
        assert_int_equal(e->status, want[i].status);
        assert_string_equal(e->body, want[i].body);
        if (want[i].error_type)
            assert_string_equal(e->error_type, want[i].error_type);
        else
            assert_null(e->error_type);
    }
    /* Anything else the server might send is a bad request. */
    assert_int_equal(gw_error_of_server_answer(418), GW_ERR_BAD_REQUEST);
}

static void test_every_row_is_filled(void **state) {
    (void)state;
    for (int e = 0; e < GW_ERR_COUNT; e++) {
        const struct gw_error_info *info = gw_error_info((enum gw_error)e);
        assert_true(info->status >= 400 && info->status <= 599);
        assert_non_null(info->body);
        assert_non_null(info->audit);
    }
}

static void test_every_503_row_says_when_to_retry(void **state) {
    (void)state;
    for (int e = 0; e < GW_ERR_COUNT; e++) {
        const struct gw_error_info *info = gw_error_info((enum gw_error)e);
        if (info->status == 503)
            assert_string_equal(info->retry_after, "1");
        else
            assert_null(info->retry_after);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_answers_map_to_rows_of_the_same_status),
        cmocka_unit_test(test_every_row_is_filled),
        cmocka_unit_test(test_every_503_row_says_when_to_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
