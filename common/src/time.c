/* Wall and monotonic clocks, and UTC dates through timegm / gmtime_r (never the libc buffers). */
#include "sluice/time.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sluice/error.h"

#define MS_PER_DAY INT64_C(86400000)

int64_t sl_time_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t sl_time_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sl_time_mono_coarse_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- text ---- */

/* Splits epoch ms into UTC calendar fields and the milliseconds past the second. Years outside
 * 0000-9999 are refused: they have no four-digit spelling to read back. */
static int breakdown(int64_t epoch_ms, struct tm *tm, int *ms) {
    int64_t secs = epoch_ms / 1000, frac = epoch_ms % 1000;
    if (frac < 0) { /* C division truncates; a time before 1970 still counts up within its second */
        frac += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    if (!gmtime_r(&t, tm) || tm->tm_year < -1900 || tm->tm_year > 9999 - 1900)
        return -ERANGE;
    *ms = (int)frac;
    return 0;
}

static int finish(int n, size_t outlen) {
    if (n < 0 || (size_t)n >= outlen)
        return -ENOSPC;
    return n;
}

/* Both ISO 8601 spellings: milliseconds always, or only when there are any. */
static int format_iso8601(int64_t epoch_ms, bool always_ms, char *out, size_t outlen) {
    struct tm tm;
    int ms, rc = breakdown(epoch_ms, &tm, &ms);
    if (rc)
        return rc;
    int n = ms || always_ms
                ? snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms)
                : snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return finish(n, outlen);
}

int sl_time_format_iso8601(int64_t epoch_ms, char *out, size_t outlen) {
    return format_iso8601(epoch_ms, true, out, outlen);
}

int sl_time_format_iso8601_compact(int64_t epoch_ms, char *out, size_t outlen) {
    return format_iso8601(epoch_ms, false, out, outlen);
}

int sl_time_format_imf(int64_t epoch_s, char *out, size_t outlen) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t t = (time_t)epoch_s;
    if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return -ERANGE;
    return finish(snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                           tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                           tm.tm_sec),
                  outlen);
}

/* Exactly n decimal digits. */
static bool digits(const char *s, size_t n, int *out) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int sl_time_parse_iso8601(const char *s, int64_t *out_ms) {
    int y, mo, d, h, mi, sec, ms = 0;
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return SL_ERR_PARSE;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3)
                ms = ms * 10 + (s[i] - '0');
            i++;
        }
        if (i == start || i - start > 9)
            return SL_ERR_PARSE;
        for (size_t k = i - start; k < 3; k++)
            ms *= 10;
    }
    if (i != n - 1 || s[i] != 'Z')
        return SL_ERR_PARSE;
    struct tm tm = {
        .tm_year = y - 1900,
        .tm_mon = mo - 1,
        .tm_mday = d,
        .tm_hour = h,
        .tm_min = mi,
        .tm_sec = sec,
    };
    time_t t = timegm(&tm);
    /* timegm carries fields that are out of range into the next one (2023-02-29 comes back as
     * 03-01, 24:00 as the next day): a field that changed names a time that does not exist. */
    if (tm.tm_year != y - 1900 || tm.tm_mon != mo - 1 || tm.tm_mday != d || tm.tm_hour != h ||
        tm.tm_min != mi || tm.tm_sec != sec)
        return SL_ERR_PARSE;
    *out_ms = (int64_t)t * 1000 + ms;
    return 0;
}

/* ---- calendar windows ---- */

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int sl_time_utc_window(enum sl_time_unit unit, int64_t epoch_ms, int64_t *start_ms,
                       int64_t *end_ms) {
    /* The longest window is 31 days; keeping that far from the ends of int64 keeps the bounds in
     * range. */
    if (epoch_ms > INT64_MAX - 32 * MS_PER_DAY || epoch_ms < INT64_MIN + 32 * MS_PER_DAY)
        return -ERANGE;
    int64_t day = floor_div(epoch_ms, MS_PER_DAY);
    switch (unit) {
    case SL_TIME_DAY:
        *start_ms = day * MS_PER_DAY;
        *end_ms = (day + 1) * MS_PER_DAY;
        return 0;
    case SL_TIME_WEEK: {
        /* 1970-01-01 was a Thursday: with Monday = 0 it has index 3. */
        int64_t first = day - (day + 3 - floor_div(day + 3, 7) * 7);
        *start_ms = first * MS_PER_DAY;
        *end_ms = (first + 7) * MS_PER_DAY;
        return 0;
    }
    case SL_TIME_MONTH: {
        time_t t = (time_t)(day * 86400);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
            return -ERANGE;
        tm.tm_mday = 1; /* midnight already: t is a whole day */
        time_t first = timegm(&tm);
        tm.tm_mon++; /* December carries into January of the next year */
        time_t next = timegm(&tm);
        /* Both are midnights, so -1 (one second before 1970) is always an error here. */
        if (first == (time_t)-1 || next == (time_t)-1)
            return -ERANGE;
        *start_ms = (int64_t)first * 1000;
        *end_ms = (int64_t)next * 1000;
        return 0;
    }
    }
    return -EINVAL;
}
