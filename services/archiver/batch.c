/* Batches: NDJSON lines of one partition and day, the key they are stored under, gzip. */
#include "batch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

#include "sluice/error.h"

#define MS_PER_DAY INT64_C(86400000)

int64_t ar_day_of(int64_t timestamp_ms) {
    int64_t d = timestamp_ms / MS_PER_DAY;
    return (timestamp_ms % MS_PER_DAY < 0) ? d - 1 : d;
}

struct ar_batch *ar_batch_new(int32_t partition, int64_t day, size_t reserve) {
    struct ar_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->partition = partition;
    b->day = day;
    b->first_offset = -1;
    b->last_offset = -1;
    sl_buf_init(&b->lines, SIZE_MAX / 2);
    sl_buf_init(&b->body, SIZE_MAX / 2);
    if (reserve && sl_buf_reserve(&b->lines, reserve) < 0) {
        ar_batch_free(b);
        return NULL;
    }
    return b;
}

void ar_batch_free(struct ar_batch *b) {
    if (!b)
        return;
    sl_buf_free(&b->lines);
    sl_buf_free(&b->body);
    free(b);
}

int ar_batch_add(struct ar_batch *b, int64_t offset, int64_t timestamp_ms, const void *value,
                 size_t len, uint64_t now_ns) {
    const char *v = value;
    while (len > 0 && (v[len - 1] == '\n' || v[len - 1] == '\r'))
        len--;
    if (len > 0) {
        int rc = sl_buf_reserve(&b->lines, len + 1);
        if (rc < 0)
            return rc;
        (void)sl_buf_append(&b->lines, v, len);
        (void)sl_buf_append(&b->lines, "\n", 1);
    }
    if (b->first_offset < 0) {
        b->first_offset = offset;
        b->first_timestamp_ms = timestamp_ms;
        b->opened_ns = now_ns;
    }
    b->last_offset = offset;
    b->records++;
    return 0;
}

int ar_batch_key(const struct ar_batch *b, const char *prefix, const char *topic, char *out,
                 size_t len) {
    time_t t = (time_t)(b->day * 86400);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -EINVAL;
    int n = snprintf(out, len,
                     "%s%sapi-logs/year=%04d/month=%02d/day=%02d/%s+%" PRId32 "+%020" PRId64
                     ".ndjson.gz",
                     prefix ? prefix : "", prefix && *prefix ? "/" : "", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, topic, b->partition, b->first_offset);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int ar_batch_compress(struct ar_batch *b, int level) {
    z_stream z = {0};
    /* 15 + 16: a gzip wrapper, so `zcat` and S3 Select read the objects as they are. */
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    sl_buf_reset(&b->body);
    size_t bound = deflateBound(&z, (uLong)b->lines.len) + 32;
    int rc = sl_buf_reserve(&b->body, bound);
    if (rc == 0) {
        z.next_in = (Bytef *)b->lines.data;
        z.avail_in = (uInt)b->lines.len;
        z.next_out = (Bytef *)b->body.data;
        z.avail_out = (uInt)bound;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END)
            rc = SL_ERR_TOO_LARGE;
        else
            b->body.len = z.total_out;
    }
    deflateEnd(&z);
    return rc;
}
