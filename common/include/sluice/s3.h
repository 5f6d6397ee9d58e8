/* A small S3 client over libcurl: SigV4-signed requests on one bucket (sluice_s3 library). */
#ifndef SLUICE_S3_H
#define SLUICE_S3_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "sluice/buf.h"

/*
 * Requests are signed by libcurl (CURLOPT_AWS_SIGV4), with what libcurl 7.88 leaves out done
 * here: the x-amz-content-sha256 header (hex SHA-256 of the body), Content-MD5, each key
 * segment percent-encoded once in the path that is both sent and signed ("year=2026" goes out
 * as "year%3D2026"), a subresource query written with its "=" ("?lifecycle="), and
 * X-Amz-Security-Token for temporary credentials. Headers that libcurl would order wrongly
 * when signing (x-amz-server-side-encryption-*-key-id beside x-amz-server-side-encryption)
 * are not offered: SSE-KMS keys belong in the bucket's default encryption.
 *
 * Threading: a client is immutable after sl_s3_client_new, and sl_s3_request may run on any
 * number of threads at once (each call uses its own curl handle). Ownership: the caller owns
 * the client and frees it with sl_s3_client_free once no request runs.
 */
struct sl_s3_client;

struct sl_s3_config {
    const char *endpoint; /* "http://host:port"; NULL: https://s3.<region>.amazonaws.com */
    const char *region;   /* "us-east-1" when NULL */
    bool path_style;      /* endpoint/bucket/key instead of bucket.endpoint/key */
    /* Credentials; NULL: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. */
    const char *access_key;
    const char *secret_key;
    const char *session_token;
    long timeout_ms;         /* one request's deadline (30000 when 0) */
    long connect_timeout_ms; /* 5000 when 0 */
};

/* Copies what it needs from cfg. 0, or SL_ERR_CONFIG with err saying what is missing. */
int sl_s3_client_new(const struct sl_s3_config *cfg, const char *bucket, struct sl_s3_client **out,
                     struct sl_buf *err);
void sl_s3_client_free(struct sl_s3_client *c);
const char *sl_s3_client_bucket(const struct sl_s3_client *c);

struct sl_s3_request {
    const char *method;       /* "GET", "PUT", "DELETE", "HEAD" */
    const char *key;          /* object key, NULL for the bucket itself */
    const char *query;        /* a subresource name ("lifecycle"), sent as "?lifecycle="; or NULL */
    const void *body;         /* PUT body, may be NULL */
    size_t len;               /* its length */
    const char *content_type; /* NULL: application/octet-stream for a PUT */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
    /* Set from another thread to give up; an upload whose body was fully sent is let finish,
     * since the server may store it anyway. May be NULL. */
    const atomic_bool *cancel;
};

/*
 * What the server (or the network) answered. `status` is the HTTP status, 0 when no answer
 * came; `curl_error` the libcurl code (0 for none), `cancelled` set when `cancel` stopped it.
 * For an error answer, `code` and `message` come from S3's XML body ("SlowDown",
 * "SignatureDoesNotMatch"). `body` holds the response body (up to 1 MiB); the caller frees it.
 */
struct sl_s3_response {
    long status;
    int curl_error;
    bool cancelled;
    char code[64];
    char message[256];
    char error_text[256]; /* libcurl's message when curl_error is set */
    struct sl_buf body;
};

/* Sends one request. Returns 0 when a 2xx answer came, else a negative code with res filled
 * (SL_ERR_TIMEOUT, SL_ERR_CLOSED when cancelled, -ECONNREFUSED-like network errors as
 * -EIO, SL_ERR_PARSE for an HTTP error status). res->body is initialised in every case. */
int sl_s3_request(struct sl_s3_client *c, const struct sl_s3_request *req,
                  struct sl_s3_response *res);

/* Percent-encodes every byte of s but A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash) as %XX
 * (upper-case hex), as SigV4's canonical URI wants. Returns 0 or -ENOMEM / SL_ERR_TOO_LARGE. */
int sl_s3_uri_encode(struct sl_buf *out, const char *s, bool keep_slash);

#endif
