/* Failure reasons and the headers of a dead-letter record (docs/worker.md). */
#ifndef SLUICE_WORKER_DLQ_H
#define SLUICE_WORKER_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/kafka.h"

enum wk_reason {
    WK_REASON_CRASH = 0,     /* the child died (signal or exit) while handling */
    WK_REASON_TIMEOUT,       /* the per-request timeout passed; the child was killed */
    WK_REASON_INVALID_REPLY, /* the handler's output was not a valid reply */
    WK_REASON_DECODE_ERROR,  /* the record is not a request envelope */
    WK_REASON_EXPIRED,       /* read after its deadline; not executed */
    WK_REASON_HANDLER_ERROR, /* the handler reported a failure (or no route/handler) */
    WK_REASON_ROUTE_UNKNOWN, /* the gateway's route (the envelope's resource) is not in our table */
    WK_REASON_COUNT,
};

/* "crash", "timeout", ... as in the sluice-dlq-reason header. */
const char *wk_reason_name(enum wk_reason r);
/* The reason named `s` (a reply's error class), or WK_REASON_HANDLER_ERROR. */
enum wk_reason wk_reason_parse(const char *s, size_t len);

/* What a dead-letter record says about its origin and its failure; all borrowed. */
struct wk_dlq_info {
    enum wk_reason reason;
    const char *error; /* one sentence */
    uint32_t attempts;
    int64_t first_failure_ms;
    const char *worker; /* this process's instance id */
    const char *topic;  /* the original record */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    const struct sl_kafka_header *original; /* the original record's headers, kept first */
    size_t n_original;
    size_t reply_dropped; /* bytes of a reply too large for Kafka, not kept (0: none) */
    size_t value_dropped; /* bytes of the original value Kafka refused here (0: value kept) */
};

#define WK_DLQ_OWN_HEADERS 10
/* sluice-dlq-reply-dropped-bytes and sluice-dlq-value-dropped-bytes, when they apply. */
#define WK_DLQ_MAX_HEADERS (WK_DLQ_OWN_HEADERS + 2)

/*
 * The headers of the DLQ record: the original ones, then sluice-dlq-reason, sluice-dlq-error,
 * sluice-attempts, sluice-first-failure-ms, sluice-worker (decimal text), and the
 * Spring-compatible kafka_dlt-original-topic (text), -partition (4-byte big-endian),
 * -offset and -timestamp (8-byte big-endian), -exception-message (text), which is what
 * Spring's DeadLetterPublishingRecoverer writes; then sluice-dlq-reply-dropped-bytes (decimal:
 * the handler's reply was larger than a record may be and was dropped) and
 * sluice-dlq-value-dropped-bytes (decimal: Kafka refused the DLQ record with the original
 * value, so it carries none), each only when it applies. `h` is heap memory owned by the struct and
 * points into it and into `info`: both must outlive the produce call. Free with
 * wk_dlq_headers_free.
 */
struct wk_dlq_headers {
    struct sl_kafka_header *h;
    size_t n;
    char attempts[16];
    char first_ms[24];
    unsigned char partition[4];
    unsigned char offset[8];
    unsigned char timestamp[8];
    char reply_dropped[24];
    char value_dropped[24];
};

int wk_dlq_headers_build(const struct wk_dlq_info *info, struct wk_dlq_headers *out);
void wk_dlq_headers_free(struct wk_dlq_headers *out);

#endif
