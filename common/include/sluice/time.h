/* Clocks and UTC dates: wall time, monotonic time, timestamp text and calendar windows. */
#ifndef SLUICE_TIME_H
#define SLUICE_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME); what envelopes and audit records carry. */
int64_t sl_time_now_ms(void);
/* Monotonic nanoseconds (CLOCK_MONOTONIC), for durations and latencies only. */
uint64_t sl_time_mono_ns(void);
/* The same clock at the kernel's tick resolution (CLOCK_MONOTONIC_COARSE: 1-4 ms), read
 * without the time stamp counter: for windows of tens of milliseconds, read per message. */
uint64_t sl_time_mono_coarse_ns(void);

/*
 * Timestamp text. Every function here works in UTC with glibc's timegm / gmtime_r, so no time
 * zone and no shared libc buffer is involved; years 0000 to 9999 are representable (four
 * digits), others are refused with -ERANGE. Formatters return the length written (without the
 * NUL) or a negative code: -ENOSPC when `outlen` is too small, -ERANGE.
 */

/* Room for any timestamp the formatters below write, NUL included. */
#define SL_TIME_STR_MAX 32
/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is 29 characters, plus the NUL. */
#define SL_TIME_IMF_LEN  29
#define SL_TIME_IMF_SIZE (SL_TIME_IMF_LEN + 1)

/* ISO 8601 with milliseconds, always ("2026-11-28T00:16:13.123Z", 24 characters): log lines and
 * audit records, where fixed-width times line up. */
int sl_time_format_iso8601(int64_t epoch_ms, char *out, size_t outlen);
/* ISO 8601 to the second, with milliseconds only when there are any ("2026-11-28T00:16:13Z",
 * "2024-02-29T23:59:59.500Z"): the keys file's spelling, which people read and write. */
int sl_time_format_iso8601_compact(int64_t epoch_ms, char *out, size_t outlen);
/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (RFC 3339, UTC only, 1 to 9 fraction digits of which
 * the first three count) into epoch ms. Returns 0 or SL_ERR_PARSE for anything else, including
 * dates that do not exist (2023-02-29) and leap seconds. */
int sl_time_parse_iso8601(const char *s, int64_t *out_ms);
/* The HTTP Date format (RFC 9110 IMF-fixdate) of epoch seconds, into `outlen` bytes (at least
 * SL_TIME_IMF_SIZE). */
int sl_time_format_imf(int64_t epoch_s, char *out, size_t outlen);

/* Calendar windows in UTC: a day from midnight, a week from Monday midnight, a month from the
 * first at midnight. */
enum sl_time_unit {
    SL_TIME_DAY,
    SL_TIME_WEEK,
    SL_TIME_MONTH,
};

/* The window of `unit` that contains `epoch_ms`: [*start_ms, *end_ms). Times before 1970 are
 * fine. Returns 0, -EINVAL for an unknown unit or -ERANGE. */
int sl_time_utc_window(enum sl_time_unit unit, int64_t epoch_ms, int64_t *start_ms,
                       int64_t *end_ms);

#endif
