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

/* Room kept free at the body's end for one deflate call's output: a record's compressed line
 * plus a block the deflater may emit while taking it. */
#define BODY_SLACK 65536

struct ar_batch *ar_batch_new(int32_t partition, int64_t day, int level, size_t reserve) {
    struct ar_batch *b = calloc(1, sizeof *b);
    z_stream *z = calloc(1, sizeof *z);
    if (!b || !z) {
        free(b);
        free(z);
        return NULL;
    }
    b->partition = partition;
    b->day = day;
    b->first_offset = -1;
    b->last_offset = -1;
    sl_buf_init(&b->body, SIZE_MAX / 2);
    /* 15 + 16: a gzip wrapper, so `zcat` and S3 Select read the objects as they are. */
    if (deflateInit2(z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(z);
        free(b);
        return NULL;
    }
    b->z = z;
    if (sl_buf_reserve(&b->body, reserve + BODY_SLACK) < 0) {
        ar_batch_free(b);
        return NULL;
    }
    return b;
}

void ar_batch_free(struct ar_batch *b) {
    if (!b)
        return;
    if (b->z) {
        deflateEnd(b->z);
        free(b->z);
    }
    sl_buf_free(&b->body);
    free(b);
}

/* Feeds bytes to the deflater (flush Z_NO_FLUSH or Z_FINISH), growing the body as it fills. */
static int deflate_into(struct ar_batch *b, const void *p, size_t len, int flush) {
    z_stream *z = b->z;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)len;
    for (;;) {
        int rc = sl_buf_reserve(&b->body, BODY_SLACK);
        if (rc < 0)
            return rc;
        size_t room = b->body.cap - b->body.len - 1; /* sl_buf keeps a byte for a NUL */
        z->next_out = (Bytef *)b->body.data + b->body.len;
        z->avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
        int zr = deflate(z, flush);
        b->body.len += (size_t)((char *)z->next_out - (b->body.data + b->body.len));
        if (zr == Z_STREAM_END)
            return 0;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            return -EINVAL;
        if (flush == Z_NO_FLUSH && z->avail_in == 0 && z->avail_out > 0)
            return 0;
    }
}

int ar_batch_add(struct ar_batch *b, int64_t offset, int64_t timestamp_ms, const void *value,
                 size_t len, uint64_t now_ns) {
    if (!b->z)
        return -EINVAL;
    const char *v = value;
    while (len > 0 && (v[len - 1] == '\n' || v[len - 1] == '\r'))
        len--;
    if (len > 0) {
        int rc = deflate_into(b, v, len, Z_NO_FLUSH);
        if (rc == 0)
            rc = deflate_into(b, "\n", 1, Z_NO_FLUSH);
        if (rc < 0)
            return rc;
        b->raw_len += len + 1;
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

int ar_batch_finish(struct ar_batch *b) {
    if (!b->z)
        return 0;
    int rc = deflate_into(b, NULL, 0, Z_FINISH);
    if (rc == 0) {
        deflateEnd(b->z);
        free(b->z);
        b->z = NULL;
    }
    return rc;
}
