/* Where closed batches are written: a small vtable with a directory and an S3 implementation. */
#ifndef SLUICE_ARCHIVER_SINK_H
#define SLUICE_ARCHIVER_SINK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "settings.h"
#include "sluice/buf.h"

/* Why a write failed; the label of the failures metric. Only the first four heal by waiting. */
enum ar_failure {
    AR_FAIL_NONE = 0,
    AR_FAIL_CONNECT,  /* connection refused, reset, DNS */
    AR_FAIL_TIMEOUT,  /* no answer in time, RequestTimeout */
    AR_FAIL_SERVER,   /* 5xx */
    AR_FAIL_THROTTLE, /* SlowDown, 503, 429 */
    AR_FAIL_AUTH,     /* 401/403: credentials or signature refused */
    AR_FAIL_BUCKET,   /* 404: no such bucket */
    AR_FAIL_CLIENT,   /* any other 4xx */
    AR_FAIL_IO,       /* the local file system */
    AR_FAIL_CANCELLED,
};
#define AR_FAIL_COUNT (AR_FAIL_CANCELLED + 1)

/* The metric label of a failure class ("connect", "auth", ...). */
const char *ar_failure_name(enum ar_failure f);
/* True for failures that waiting cures (retried with backoff); others are retried slowly. */
bool ar_failure_heals(enum ar_failure f);

/* What one write attempt gave: the class, the HTTP status (0 without one), a message. */
struct ar_put_result {
    enum ar_failure failure;
    long status;
    char message[512];
};

/*
 * A sink writes whole objects atomically: after put returns 0 the object is durable and
 * complete under `key`, and a later put of the same key replaces it whole. `put` blocks and
 * runs on a libuv worker thread (several at once, for different keys); it gives up early when
 * `cancel` becomes true, and then must not complete the write later. Ownership: the archiver
 * opens the sink and frees it once no put is running.
 */
struct ar_sink {
    int (*put)(struct ar_sink *s, const char *key, const void *body, size_t len,
               const atomic_bool *cancel, struct ar_put_result *res);
    void (*free)(struct ar_sink *s);
    const char *prefix; /* the key prefix the URL names ("" for a directory), owned by the sink */
};

/*
 * Opens the sink SLUICE_ARCHIVE_URL names: file://dir (created if missing) or
 * s3://bucket[/prefix] (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN). Returns 0 or SL_ERR_CONFIG with err saying what is wrong. With `check`
 * (--check) nothing is created or removed: a directory must exist or be creatable.
 */
int ar_sink_open(const struct ar_settings *s, bool check, struct ar_sink **out, struct sl_buf *err);

int ar_sink_file_open(const char *dir, bool check, struct ar_sink **out, struct sl_buf *err);
int ar_sink_s3_open(const struct ar_settings *s, const char *bucket, const char *prefix,
                    struct ar_sink **out, struct sl_buf *err);

#endif
