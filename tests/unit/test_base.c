/* Unit tests for the small base modules: buf, fileio, time, error and log. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/fileio.h"
#include "sluice/log.h"
#include "sluice/time.h"

static void test_buf_refuses_growth_past_its_cap_and_stays_unchanged(void **state) {
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b, 8);
    assert_int_equal(sl_buf_append(&b, "12345", 5), 0);
    assert_int_equal(sl_buf_append(&b, "6789", 4), SL_ERR_TOO_LARGE);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "12345");
    assert_int_equal(sl_buf_append(&b, "678", 3), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(sl_buf_printf(&b, "%d", 9), SL_ERR_TOO_LARGE);
    sl_buf_consume(&b, 3);
    assert_string_equal(b.data, "45678");
    sl_buf_free(&b);
}

static void test_buf_json_escape_covers_quotes_controls_and_is_atomic(void **state) {
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b, 64);
    assert_int_equal(sl_buf_append_json_escaped(&b, "a\"b\\c\n\x01", 7), 0);
    assert_string_equal(b.data, "a\\\"b\\\\c\\n\\u0001");
    struct sl_buf small;
    sl_buf_init(&small, 4);
    assert_int_equal(sl_buf_append_json_escaped(&small, "ab\"c", 4), SL_ERR_TOO_LARGE);
    assert_int_equal(small.len, 0);
    /* Near the limit the worst case (6 bytes a byte) does not fit but the text does. */
    struct sl_buf tight;
    sl_buf_init(&tight, 8);
    assert_int_equal(sl_buf_append(&tight, "x", 1), 0);
    assert_int_equal(sl_buf_append_json_escaped(&tight, "ab\tcd", 5), 0);
    assert_string_equal(tight.data, "xab\\tcd");
    assert_int_equal(sl_buf_append_json_escaped(&tight, "\x7f", 1), SL_ERR_TOO_LARGE);
    assert_string_equal(tight.data, "xab\\tcd");
    sl_buf_free(&tight);
    /* Longer than one piece of the near-limit path, with escapes across the piece boundary. */
    char in[600], want[700];
    size_t w = 0;
    for (size_t i = 0; i < sizeof in; i++) {
        in[i] = i % 97 == 0 ? '"' : (char)('a' + i % 26);
        if (in[i] == '"')
            want[w++] = '\\';
        want[w++] = in[i];
    }
    want[w] = '\0';
    struct sl_buf exact;
    sl_buf_init(&exact, w);
    assert_int_equal(sl_buf_append_json_escaped(&exact, in, sizeof in), 0);
    assert_string_equal(exact.data, want);
    sl_buf_free(&exact);
    sl_buf_free(&small);
    sl_buf_free(&b);
}

/* Every byte value at every position of strings longer than a word (the scan reads eight
 * bytes at a time, then byte by byte): escaped exactly when JSON needs it, and as JSON says. */
static void test_buf_json_escape_finds_every_byte_at_every_offset(void **state) {
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b, 1 << 12);
    for (int c = 0; c < 256; c++) {
        for (size_t len = 1; len <= 19; len++) {
            for (size_t at = 0; at < len; at++) {
                char in[19], want[64];
                memset(in, 'x', sizeof in);
                in[at] = (char)c;
                size_t w = 0;
                for (size_t i = 0; i < len; i++) {
                    unsigned char x = (unsigned char)in[i];
                    if (x == '"' || x == '\\')
                        w += (size_t)snprintf(want + w, sizeof want - w, "\\%c", x);
                    else if (x == '\n' || x == '\r' || x == '\t')
                        w += (size_t)snprintf(want + w, sizeof want - w, "\\%c",
                                              x == '\n'   ? 'n'
                                              : x == '\r' ? 'r'
                                                          : 't');
                    else if (x < 0x20 || x == 0x7f)
                        w += (size_t)snprintf(want + w, sizeof want - w, "\\u%04x", x);
                    else
                        want[w++] = (char)x;
                }
                sl_buf_reset(&b);
                assert_int_equal(sl_buf_append_json_escaped(&b, in, len), 0);
                if (b.len != w || memcmp(b.data, want, w) != 0) {
                    fprintf(stderr, "byte 0x%02x at %zu of %zu: got \"%.*s\"\n", c, at, len,
                            (int)b.len, b.data);
                    fail();
                }
            }
        }
    }
    sl_buf_free(&b);
}

/* The coarse monotonic clock is the precise one at the kernel's last tick: never ahead of it,
 * never going back, and behind by a tick (1-10 ms; 100 ms allowed for a tick delayed on a busy
 * virtual machine). */
static void test_hex_encodes_lowercase_without_a_terminator(void **state) {
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[16];
    memset(out, '#', sizeof out);
    sl_hex_encode(out, in, sizeof in);
    assert_memory_equal(out, "00017f80abff####", 16);
    sl_hex_encode(out, in, 0);
    assert_int_equal(out[0], '0');
}

static void test_hex_decode_takes_lowercase_only(void **state) {
    (void)state;
    uint8_t out[4] = {0};
    assert_int_equal(sl_hex_decode_lower(out, "00ff7fa0", 4), 0);
    assert_memory_equal(out, "\x00\xff\x7f\xa0", 4);
    assert_int_equal(sl_hex_decode_lower(out, "00FF", 2), SL_ERR_PARSE);
    assert_int_equal(sl_hex_decode_lower(out, "0g", 1), SL_ERR_PARSE);
    assert_int_equal(sl_hex_decode_lower(out, "ab", 2), SL_ERR_PARSE); /* stops at the NUL */
    assert_int_equal(sl_hex_decode_lower(out, "", 0), 0);
}

static void test_write_all_writes_everything_or_says_why_not(void **state) {
    (void)state;
    char path[] = "/tmp/sluice-test-fileio-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(sl_fileio_write_all(fd, big, sizeof big), 0);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)sizeof big);
    close(fd);
    assert_int_equal(sl_fileio_write_all(fd, "x", 1), -EBADF);
    /* A full non-blocking pipe: what fitted was written, the rest is an error, not a hang. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(sl_fileio_write_all(p[1], big, sizeof big), -EAGAIN);
    close(p[0]);
    close(p[1]);
}

static void test_time_coarse_monotonic_follows_the_precise_clock(void **state) {
    (void)state;
    uint64_t last = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t coarse = sl_time_mono_coarse_ns();
        uint64_t precise = sl_time_mono_ns();
        assert_true(coarse <= precise);
        assert_true(precise - coarse <= 100000000u);
        assert_true(coarse >= last);
        last = coarse;
    }
}

static void test_time_formats_utc_iso8601_with_milliseconds(void **state) {
    (void)state;
    char out[32];
    assert_int_equal(sl_time_format_iso8601(1795827373123LL, out, sizeof out), 24);
    assert_string_equal(out, "2026-11-28T00:56:13.123Z");
    assert_int_equal(sl_time_format_iso8601(0, out, sizeof out), 24);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    assert_int_equal(sl_time_format_iso8601(0, out, 10), -ENOSPC);
}

static void test_strerror_names_sluice_and_errno_codes(void **state) {
    (void)state;
    assert_string_equal(sl_strerror(SL_ERR_TOO_LARGE), "input exceeds a limit");
    assert_string_equal(sl_strerror(-ENOMEM), "Cannot allocate memory");
    assert_string_equal(sl_strerror(-99999), "unknown error");
}

/* Captures what the logger writes to stderr through a pipe. */
static void capture_log(enum sl_log_level level, const struct sl_log_ctx *ctx, const char *msg,
                        char *out, size_t outlen) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    sl_log(level, ctx, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, outlen - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
}

static void test_log_writes_one_json_line_with_ids(void **state) {
    (void)state;
    sl_log_init("gateway", SL_LOG_INFO);
    char out[1024];
    struct sl_log_ctx ctx = {.request_id = "r-1", .trace_id = "0af7651916cd43dd8448eb211c80319c"};
    capture_log(SL_LOG_WARN, &ctx, "quote \" and\nnewline", out, sizeof out);
    /* The timestamp varies; everything after it is exact. */
    const char *rest = strstr(out, "\",\"level\"");
    assert_non_null(rest);
    assert_memory_equal(out, "{\"ts\":\"", 7);
    assert_string_equal(rest, "\",\"level\":\"warn\",\"service\":\"gateway\","
                              "\"msg\":\"quote \\\" and\\nnewline\",\"request_id\":\"r-1\","
                              "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\"}\n");
}

static void test_log_every_lets_one_line_a_period_through_with_the_count_held(void **state) {
    (void)state;
    const uint64_t s = 1000000000;
    struct sl_log_every l = {.period_ns = 10 * s};
    uint64_t held = 99;
    /* The first line passes at once, whatever the clock says (even 0). */
    assert_int_equal(sl_log_every_take(&l, 0, &held), 1);
    assert_int_equal(held, 0);
    /* 1000 failures within the period: all held back. */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sl_log_every_take(&l, (uint64_t)i * (s / 100), &held), 0);
    assert_int_equal(sl_log_every_take(&l, 10 * s - 1, &held), 0);
    /* At the period: one line, reporting the 1001 held back since the first. */
    assert_int_equal(sl_log_every_take(&l, 10 * s, &held), 1);
    assert_int_equal(held, 1001);
    assert_int_equal(sl_log_every_take(&l, 15 * s, &held), 0);
    /* A quiet spell: the next line passes at once and reports the one held back. */
    assert_int_equal(sl_log_every_take(&l, 100 * s, &held), 1);
    assert_int_equal(held, 1);
    assert_int_equal(sl_log_every_take(&l, 100 * s, &held), 0);
}

static void test_log_drops_lines_below_the_level(void **state) {
    (void)state;
    sl_log_init("worker", SL_LOG_WARN);
    char out[256];
    capture_log(SL_LOG_INFO, NULL, "hidden", out, sizeof out);
    assert_string_equal(out, "");
    enum sl_log_level lvl;
    assert_int_equal(sl_log_level_parse("WARNING", &lvl), 0);
    assert_int_equal(lvl, SL_LOG_WARN);
    assert_int_equal(sl_log_level_parse("verbose", &lvl), -EINVAL);
    sl_log_init("sluice", SL_LOG_INFO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_refuses_growth_past_its_cap_and_stays_unchanged),
        cmocka_unit_test(test_buf_json_escape_covers_quotes_controls_and_is_atomic),
        cmocka_unit_test(test_buf_json_escape_finds_every_byte_at_every_offset),
        cmocka_unit_test(test_hex_encodes_lowercase_without_a_terminator),
        cmocka_unit_test(test_hex_decode_takes_lowercase_only),
        cmocka_unit_test(test_write_all_writes_everything_or_says_why_not),
        cmocka_unit_test(test_time_coarse_monotonic_follows_the_precise_clock),
        cmocka_unit_test(test_time_formats_utc_iso8601_with_milliseconds),
        cmocka_unit_test(test_strerror_names_sluice_and_errno_codes),
        cmocka_unit_test(test_log_writes_one_json_line_with_ids),
        cmocka_unit_test(test_log_drops_lines_below_the_level),
        cmocka_unit_test(test_log_every_lets_one_line_a_period_through_with_the_count_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
