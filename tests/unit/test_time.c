/* Unit tests for UTC dates: ISO 8601 and IMF-fixdate text, parsing, and calendar windows. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/error.h"
#include "sluice/time.h"

#define S(x) ((int64_t)(x)*1000) /* epoch seconds to ms */

#define T_2026_11_28_001613 INT64_C(1795824973)
#define T_2024_02_29_LAST   INT64_C(1709251199) /* 23:59:59 on a leap day */
#define T_2038_01_19_031408 INT64_C(2147483648) /* one second past the 32-bit time_t limit */
#define T_9999_12_31_LAST   INT64_C(253402300799)
#define T_0000_01_01        INT64_C(-62167219200)

static void parses(const char *s, int64_t want_ms) {
    int64_t ms = 0;
    assert_int_equal(sl_time_parse_iso8601(s, &ms), 0);
    assert_int_equal(ms, want_ms);
}

static void refuses(const char *s) {
    int64_t ms = 42;
    assert_int_equal(sl_time_parse_iso8601(s, &ms), SL_ERR_PARSE);
    assert_int_equal(ms, 42);
}

static void formats_compact(int64_t ms, const char *want) {
    char out[SL_TIME_STR_MAX];
    assert_int_equal(sl_time_format_iso8601_compact(ms, out, sizeof out), (int)strlen(want));
    assert_string_equal(out, want);
}

static void window(enum sl_time_unit unit, int64_t at_s, int64_t start_s, int64_t end_s) {
    int64_t start = 0, end = 0;
    assert_int_equal(sl_time_utc_window(unit, S(at_s), &start, &end), 0);
    assert_int_equal(start, S(start_s));
    assert_int_equal(end, S(end_s));
}

static void test_parse_reads_seconds_fractions_and_the_epoch(void **state) {
    (void)state;
    parses("2026-11-28T00:16:13Z", S(T_2026_11_28_001613));
    parses("2026-11-28T00:16:13.1Z", S(T_2026_11_28_001613) + 100);
    parses("2026-11-28T00:16:13.05Z", S(T_2026_11_28_001613) + 50);
    parses("2026-11-28T00:16:13.123Z", S(T_2026_11_28_001613) + 123);
    parses("2026-11-28T00:16:13.123456789Z", S(T_2026_11_28_001613) + 123); /* cut, not rounded */
    parses("1970-01-01T00:00:00Z", 0);
    parses("1969-12-31T23:59:59.999Z", -1);
}

static void test_parse_accepts_leap_days_and_the_four_digit_years(void **state) {
    (void)state;
    parses("2024-02-29T23:59:59Z", S(T_2024_02_29_LAST));
    parses("2000-02-29T00:00:00Z", S(951782400)); /* divisible by 400: a leap year */
    parses("2038-01-19T03:14:08Z", S(T_2038_01_19_031408));
    parses("9999-12-31T23:59:59Z", S(T_9999_12_31_LAST));
    parses("0000-01-01T00:00:00Z", S(T_0000_01_01));
}

static void test_parse_refuses_dates_and_times_that_do_not_exist(void **state) {
    (void)state;
    refuses("2023-02-29T00:00:00Z"); /* not a leap year */
    refuses("2100-02-29T00:00:00Z"); /* divisible by 100 but not 400 */
    refuses("2026-04-31T00:00:00Z");
    refuses("2026-00-10T00:00:00Z");
    refuses("2026-13-01T00:00:00Z");
    refuses("2026-11-00T00:00:00Z");
    refuses("2026-11-28T24:00:00Z");
    refuses("2026-11-28T00:60:00Z");
    refuses("2026-12-31T23:59:60Z"); /* leap seconds have no epoch value */
}

static void test_parse_refuses_other_spellings(void **state) {
    (void)state;
    refuses("");
    refuses("2026-11-28");
    refuses("2026-11-28 00:16:13Z");
    refuses("2026-11-28T00:16:13");
    refuses("2026-11-28T00:16:13z");
    refuses("2026-11-28T00:16:13+00:00");
    refuses("2026-11-28T00:16:13.Z");
    refuses("2026-11-28T00:16:13.1234567890Z");
    refuses("2026-11-28T00:16:13ZZ");
    refuses("+2026-11-28T00:16:13Z");
    refuses("-001-11-28T00:16:13Z");
    refuses("2026-1-28T00:16:13Z ");
}

static void test_compact_format_shows_milliseconds_only_when_there_are_any(void **state) {
    (void)state;
    formats_compact(S(T_2026_11_28_001613), "2026-11-28T00:16:13Z");
    formats_compact(S(T_2024_02_29_LAST) + 500, "2024-02-29T23:59:59.500Z");
    formats_compact(0, "1970-01-01T00:00:00Z");
    formats_compact(-1, "1969-12-31T23:59:59.999Z");
    formats_compact(S(T_2038_01_19_031408), "2038-01-19T03:14:08Z");
    formats_compact(S(T_9999_12_31_LAST), "9999-12-31T23:59:59Z");
    formats_compact(S(T_0000_01_01), "0000-01-01T00:00:00Z");
}

static void test_format_and_parse_round_trip(void **state) {
    (void)state;
    const int64_t times[] = {0,
                             -1,
                             1,
                             S(T_2024_02_29_LAST) + 999,
                             S(T_2038_01_19_031408) - 1,
                             S(T_9999_12_31_LAST) + 999,
                             S(T_0000_01_01)};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char out[SL_TIME_STR_MAX];
        int64_t back = 0;
        assert_true(sl_time_format_iso8601_compact(times[i], out, sizeof out) > 0);
        assert_int_equal(sl_time_parse_iso8601(out, &back), 0);
        assert_int_equal(back, times[i]);
        assert_int_equal(sl_time_format_iso8601(times[i], out, sizeof out), 24);
        assert_int_equal(sl_time_parse_iso8601(out, &back), 0);
        assert_int_equal(back, times[i]);
    }
}

static void test_format_refuses_years_without_four_digits_and_short_buffers(void **state) {
    (void)state;
    char out[SL_TIME_STR_MAX];
    assert_int_equal(sl_time_format_iso8601_compact(S(T_9999_12_31_LAST + 1), out, sizeof out),
                     -ERANGE);
    assert_int_equal(sl_time_format_iso8601(S(T_0000_01_01) - 1, out, sizeof out), -ERANGE);
    assert_int_equal(sl_time_format_iso8601(INT64_MIN, out, sizeof out), -ERANGE);
    assert_int_equal(sl_time_format_iso8601(INT64_MAX, out, sizeof out), -ERANGE);
    assert_int_equal(sl_time_format_iso8601_compact(0, out, 20), -ENOSPC); /* no room for NUL */
    assert_int_equal(sl_time_format_iso8601_compact(0, out, 21), 20);
}

static void test_imf_fixdate_is_the_http_date_format(void **state) {
    (void)state;
    char out[SL_TIME_IMF_SIZE];
    assert_int_equal(sl_time_format_imf(784111777, out, sizeof out), SL_TIME_IMF_LEN);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT"); /* RFC 9110's example */
    assert_int_equal(sl_time_format_imf(0, out, sizeof out), SL_TIME_IMF_LEN);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_int_equal(sl_time_format_imf(T_2024_02_29_LAST, out, sizeof out), SL_TIME_IMF_LEN);
    assert_string_equal(out, "Thu, 29 Feb 2024 23:59:59 GMT");
    assert_int_equal(sl_time_format_imf(T_2038_01_19_031408, out, sizeof out), SL_TIME_IMF_LEN);
    assert_string_equal(out, "Tue, 19 Jan 2038 03:14:08 GMT");
    assert_int_equal(sl_time_format_imf(-1, out, sizeof out), SL_TIME_IMF_LEN);
    assert_string_equal(out, "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_int_equal(sl_time_format_imf(0, out, SL_TIME_IMF_LEN), -ENOSPC);
    assert_int_equal(sl_time_format_imf(T_9999_12_31_LAST + 1, out, sizeof out), -ERANGE);
}

static void test_day_window_runs_from_utc_midnight_to_midnight(void **state) {
    (void)state;
    window(SL_TIME_DAY, 0, 0, 86400);
    window(SL_TIME_DAY, 86399, 0, 86400);
    window(SL_TIME_DAY, 86400, 86400, 2 * 86400);
    window(SL_TIME_DAY, -1, -86400, 0); /* before 1970: the day still starts at its midnight */
    window(SL_TIME_DAY, T_2038_01_19_031408, 2147472000, 2147558400);
}

static void test_week_window_starts_on_monday(void **state) {
    (void)state;
    window(SL_TIME_WEEK, 0, -3 * 86400, 4 * 86400); /* 1970-01-01 was a Thursday */
    window(SL_TIME_WEEK, -1, -3 * 86400, 4 * 86400);
    window(SL_TIME_WEEK, -3 * 86400, -3 * 86400, 4 * 86400);
    window(SL_TIME_WEEK, -3 * 86400 - 1, -10 * 86400, -3 * 86400);
    window(SL_TIME_WEEK, T_2038_01_19_031408, INT64_C(2147385600), INT64_C(2147385600) + 7 * 86400);
}

static void test_month_window_knows_month_lengths_and_leap_years(void **state) {
    (void)state;
    window(SL_TIME_MONTH, T_2024_02_29_LAST, 1706745600, 1709251200);       /* 29 days */
    window(SL_TIME_MONTH, INT64_C(4105123200) + 5, 4105123200, 4107542400); /* 2100-02: 28 days */
    window(SL_TIME_MONTH, INT64_C(1796083200) + 30 * 86400, 1796083200, 1798761600); /* December */
    window(SL_TIME_MONTH, 1798761600, 1798761600, INT64_C(1798761600) + 31 * 86400); /* January */
    window(SL_TIME_MONTH, T_2038_01_19_031408, 2145916800, 2148595200);
    window(SL_TIME_MONTH, -1, -2678400, 0); /* December 1969 */
    window(SL_TIME_MONTH, 0, 0, 31 * 86400);
}

static void test_window_refuses_unknown_units_and_the_ends_of_int64(void **state) {
    (void)state;
    int64_t start = 7, end = 7;
    assert_int_equal(sl_time_utc_window((enum sl_time_unit)99, 0, &start, &end), -EINVAL);
    assert_int_equal(sl_time_utc_window(SL_TIME_DAY, INT64_MAX, &start, &end), -ERANGE);
    assert_int_equal(sl_time_utc_window(SL_TIME_MONTH, INT64_MIN, &start, &end), -ERANGE);
    assert_int_equal(start, 7);
    assert_int_equal(end, 7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_reads_seconds_fractions_and_the_epoch),
        cmocka_unit_test(test_parse_accepts_leap_days_and_the_four_digit_years),
        cmocka_unit_test(test_parse_refuses_dates_and_times_that_do_not_exist),
        cmocka_unit_test(test_parse_refuses_other_spellings),
        cmocka_unit_test(test_compact_format_shows_milliseconds_only_when_there_are_any),
        cmocka_unit_test(test_format_and_parse_round_trip),
        cmocka_unit_test(test_format_refuses_years_without_four_digits_and_short_buffers),
        cmocka_unit_test(test_imf_fixdate_is_the_http_date_format),
        cmocka_unit_test(test_day_window_runs_from_utc_midnight_to_midnight),
        cmocka_unit_test(test_week_window_starts_on_monday),
        cmocka_unit_test(test_month_window_knows_month_lengths_and_leap_years),
        cmocka_unit_test(test_window_refuses_unknown_units_and_the_ends_of_int64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
