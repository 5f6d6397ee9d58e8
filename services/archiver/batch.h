/* A batch: the records of one partition and one UTC day, their object key and gzip body. */
#ifndef SLUICE_ARCHIVER_BATCH_H
#define SLUICE_ARCHIVER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

/*
 * Records are appended as NDJSON lines (the Kafka value, one line each) and compressed as they
 * arrive into `body`, one gzip member, so that closing a batch costs only the deflate's last
 * block and no uncompressed copy is held; a batch is a contiguous range of offsets of one
 * partition, all with the same UTC day. Ownership: the archiver owns a batch from ar_batch_new
 * to ar_batch_free; `body` and the deflate state belong to it.
 */
struct ar_batch {
    struct ar_batch *next; /* the partition's queue of closed batches */
    int32_t partition;
    int64_t day; /* days since 1970-01-01, UTC */
    int64_t first_offset;
    int64_t last_offset;
    uint64_t records;
    int64_t first_timestamp_ms; /* the first record's timestamp: the oldest unarchived record */
    uint64_t opened_ns;         /* monotonic time of the first record: the age limit's start */
    size_t raw_len;             /* bytes of NDJSON appended (uncompressed) */
    struct sl_buf body;         /* the gzip of the lines; complete once ar_batch_finish ran */
    void *z;                    /* the deflate stream until finished, then NULL */
};

/* The UTC day of a timestamp in milliseconds since the epoch (floor division). */
int64_t ar_day_of(int64_t timestamp_ms);

/* A new, empty batch compressing at `level` (1..9), with room for `reserve` bytes of gzip body
 * allocated at once (untouched pages cost no resident memory, and the body is never copied to
 * grow within it). NULL when out of memory. */
struct ar_batch *ar_batch_new(int32_t partition, int64_t day, int level, size_t reserve);
void ar_batch_free(struct ar_batch *b);

/*
 * Appends one record (its value, without any trailing newline) as a line, compressing it into
 * the body. Returns 0, -ENOMEM, or -EINVAL once the batch is finished.
 * A record whose value is empty (a tombstone) still advances the offsets but writes no line.
 */
int ar_batch_add(struct ar_batch *b, int64_t offset, int64_t timestamp_ms, const void *value,
                 size_t len, uint64_t now_ns);

/*
 * The object key: <prefix>/api-logs/year=YYYY/month=MM/day=DD/<topic>+<partition>+<first
 * offset, 20 digits>.ndjson.gz; an empty prefix drops the leading "<prefix>/". 0, or
 * -ENAMETOOLONG when it does not fit in len.
 */
int ar_batch_key(const struct ar_batch *b, const char *prefix, const char *topic, char *out,
                 size_t len);

/* Ends the gzip member: `body` is then the whole object and no record can be added. Idempotent;
 * frees the deflate state. 0 or a negative code. */
int ar_batch_finish(struct ar_batch *b);

#endif
