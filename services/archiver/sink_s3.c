/* The S3 sink: one PutObject per batch through the shared client, its failures classified. */
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "sluice/error.h"
#include "sluice/s3.h"

struct s3_sink {
    struct ar_sink base;
    struct sl_s3_client *client;
    char *prefix;
    const char *sse_header; /* NULL or "x-amz-server-side-encryption: ..." */
};

/* What a failed request means for the retry policy. */
static enum ar_failure classify(int rc, const struct sl_s3_response *r) {
    if (rc == SL_ERR_CLOSED)
        return AR_FAIL_CANCELLED;
    if (rc == SL_ERR_TIMEOUT || strcmp(r->code, "RequestTimeout") == 0)
        return AR_FAIL_TIMEOUT;
    if (r->status == 0)
        return AR_FAIL_CONNECT;
    if (r->status == 503 || r->status == 429 || strcmp(r->code, "SlowDown") == 0)
        return AR_FAIL_THROTTLE;
    if (r->status >= 500)
        return AR_FAIL_SERVER;
    if (r->status == 401 || r->status == 403)
        return AR_FAIL_AUTH;
    if (r->status == 404)
        return AR_FAIL_BUCKET;
    return AR_FAIL_CLIENT;
}

static int s3_put(struct ar_sink *base, const char *key, const void *body, size_t len,
                  const atomic_bool *cancel, struct ar_put_result *res) {
    struct s3_sink *s = (struct s3_sink *)base;
    const char *headers[] = {s->sse_header, NULL};
    struct sl_s3_request req = {
        .method = "PUT",
        .key = key,
        .body = body,
        .len = len,
        .content_type = "application/x-ndjson",
        .headers = s->sse_header ? headers : NULL,
        .cancel = cancel,
    };
    struct sl_s3_response r;
    int rc = sl_s3_request(s->client, &req, &r);
    res->status = r.status;
    if (rc < 0) {
        res->failure = classify(rc, &r);
        if (r.curl_error)
            snprintf(res->message, sizeof res->message, "s3://%s: %s",
                     sl_s3_client_bucket(s->client), r.error_text);
        else
            snprintf(res->message, sizeof res->message, "s3://%s: HTTP %ld %s: %s",
                     sl_s3_client_bucket(s->client), r.status, r.code[0] ? r.code : "(no code)",
                     r.message);
    }
    sl_buf_free(&r.body);
    return rc;
}

static void s3_free(struct ar_sink *base) {
    struct s3_sink *s = (struct s3_sink *)base;
    sl_s3_client_free(s->client);
    free(s->prefix);
    free(s);
}

int ar_sink_s3_open(const struct ar_settings *st, const char *bucket, const char *prefix,
                    struct ar_sink **out, struct sl_buf *err) {
    struct s3_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->prefix = strdup(prefix))) {
        free(s);
        return -ENOMEM;
    }
    struct sl_s3_config cfg = {
        .endpoint = st->s3_endpoint,
        .region = st->s3_region,
        .path_style = st->s3_path_style,
        .timeout_ms = (long)st->s3_timeout_ms,
    };
    int rc = sl_s3_client_new(&cfg, bucket, &s->client, err);
    if (rc < 0) {
        free(s->prefix);
        free(s);
        return rc;
    }
    if (st->s3_sse == AR_SSE_KMS)
        s->sse_header = "x-amz-server-side-encryption: aws:kms";
    else if (st->s3_sse == AR_SSE_S3)
        s->sse_header = "x-amz-server-side-encryption: AES256";
    s->base = (struct ar_sink){.put = s3_put, .free = s3_free, .prefix = s->prefix};
    *out = &s->base;
    return 0;
}
