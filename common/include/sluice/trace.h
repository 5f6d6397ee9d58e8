/* W3C trace context (traceparent version 00) and random request ids. */
#ifndef SLUICE_TRACE_H
#define SLUICE_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* Length of a version-00 traceparent: "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define SL_TRACEPARENT_LEN 55
/* Length of a textual UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). */
#define SL_REQUEST_ID_LEN 36
/* The only flag version 00 defines: the caller may have recorded this trace. */
#define SL_TRACE_FLAG_SAMPLED 0x01

/*
 * One position in a trace. A plain value type: no pointers, nothing to free, copy freely.
 * `span_id` is the id of the span this context describes; in a traceparent header it is the
 * "parent-id" field, because the receiver's spans are children of it.
 */
struct sl_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t flags;
};

/*
 * Parses a traceparent header value of `len` bytes (not NUL-terminated) strictly per W3C
 * Trace Context: lowercase hex only, exact field lengths, trace id and parent id not all zero,
 * version "ff" invalid. Version 00 must be exactly 55 bytes. A higher version is parsed by its
 * version-00 prefix and accepted when the 55 bytes are followed by nothing or by '-' (the
 * spec's forward-compatibility rule); the result is then re-emitted as version 00.
 * Returns 0, SL_ERR_VERSION for version ff, or SL_ERR_PARSE. Writes `out` only on success.
 */
int sl_trace_parse(const char *s, size_t len, struct sl_trace_ctx *out);

/* Starts a new trace: random trace id and span id (OpenSSL RAND_bytes), flags = sampled. */
int sl_trace_generate(struct sl_trace_ctx *out);

/* A child span of `parent`: same trace id and flags, a new random span id. */
int sl_trace_child(const struct sl_trace_ctx *parent, struct sl_trace_ctx *child);

/* Formats "00-<trace>-<span>-<flags>" with its NUL into out (56 bytes). */
void sl_trace_format(const struct sl_trace_ctx *ctx, char out[SL_TRACEPARENT_LEN + 1]);

/* The 32-hex-digit trace id with its NUL, as logs and audit records carry it. */
void sl_trace_id_hex(const struct sl_trace_ctx *ctx, char out[33]);

/*
 * Writes a random UUID version 4 in lowercase (36 characters + NUL), the shape of API
 * Gateway's x-amzn-RequestId. Returns 0, or -EIO when the random generator fails (then `out`
 * holds an empty string).
 */
int sl_trace_request_id(char out[SL_REQUEST_ID_LEN + 1]);

/*
 * A buffered random source for hot paths: RAND_bytes is called once per 4 KiB instead of once
 * per id (each call costs a getpid() for OpenSSL's fork check, and more). The bytes are as good
 * as RAND_bytes' own. A plain value owned by one thread (e.g. embedded in a service object);
 * sl_trace_rand_init before first use. A process that forks must not share one across the fork.
 */
struct sl_trace_rand {
    uint8_t buf[4096];
    size_t pos;
};

void sl_trace_rand_init(struct sl_trace_rand *r);
/* The functions above, drawing from `r` (NULL: straight from RAND_bytes). */
int sl_trace_generate_r(struct sl_trace_rand *r, struct sl_trace_ctx *out);
int sl_trace_child_r(struct sl_trace_rand *r, const struct sl_trace_ctx *parent,
                     struct sl_trace_ctx *child);
int sl_trace_request_id_r(struct sl_trace_rand *r, char out[SL_REQUEST_ID_LEN + 1]);

#endif
