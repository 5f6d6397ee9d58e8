/* W3C traceparent parsing, generation and formatting, and UUID v4 request ids. */
#include "sluice/trace.h"

#include <errno.h>
#include <string.h>

#include <openssl/rand.h>

#include "sluice/buf.h"
#include "sluice/error.h"

static int all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int sl_trace_parse(const char *s, size_t len, struct sl_trace_ctx *out) {
    uint8_t version;
    struct sl_trace_ctx ctx;

    if (len < SL_TRACEPARENT_LEN)
        return SL_ERR_PARSE;
    /* Lowercase hex only: the spec forbids uppercase, so "AB" is a parse error, not a value. */
    if (sl_hex_decode_lower(&version, s, 1) < 0 || s[2] != '-')
        return SL_ERR_PARSE;
    if (version == 0xff)
        return SL_ERR_VERSION;
    /* Version 00 has exactly four fields; later versions may append "-<more>". */
    if (version == 0 && len != SL_TRACEPARENT_LEN)
        return SL_ERR_PARSE;
    if (version != 0 && len > SL_TRACEPARENT_LEN && s[SL_TRACEPARENT_LEN] != '-')
        return SL_ERR_PARSE;
    if (sl_hex_decode_lower(ctx.trace_id, s + 3, 16) < 0 || s[35] != '-')
        return SL_ERR_PARSE;
    if (sl_hex_decode_lower(ctx.span_id, s + 36, 8) < 0 || s[52] != '-')
        return SL_ERR_PARSE;
    if (sl_hex_decode_lower(&ctx.flags, s + 53, 1) < 0)
        return SL_ERR_PARSE;
    if (all_zero(ctx.trace_id, 16) || all_zero(ctx.span_id, 8))
        return SL_ERR_PARSE;
    *out = ctx;
    return 0;
}

/* RAND_bytes takes an int length and returns 1 on success only. */
static int random_bytes(struct sl_trace_rand *r, uint8_t *p, size_t n) {
    if (!r || n > sizeof r->buf) {
        if (RAND_bytes(p, (int)n) != 1)
            return -EIO;
        return 0;
    }
    if (sizeof r->buf - r->pos < n) {
        if (RAND_bytes(r->buf, (int)sizeof r->buf) != 1)
            return -EIO;
        r->pos = 0;
    }
    memcpy(p, r->buf + r->pos, n);
    /* Bytes handed out are wiped, so the pool never holds an id that was already used. */
    memset(r->buf + r->pos, 0, n);
    r->pos += n;
    return 0;
}

void sl_trace_rand_init(struct sl_trace_rand *r) {
    r->pos = sizeof r->buf; /* empty: the first draw fills it */
}

/* An all-zero id is invalid on the wire, so redraw in the (2^-64) case the generator yields one. */
static int random_id(struct sl_trace_rand *r, uint8_t *p, size_t n) {
    do {
        int rc = random_bytes(r, p, n);
        if (rc < 0)
            return rc;
    } while (all_zero(p, n));
    return 0;
}

int sl_trace_generate(struct sl_trace_ctx *out) {
    return sl_trace_generate_r(NULL, out);
}

int sl_trace_generate_r(struct sl_trace_rand *r, struct sl_trace_ctx *out) {
    struct sl_trace_ctx ctx;
    int rc = random_id(r, ctx.trace_id, sizeof ctx.trace_id);
    if (rc == 0)
        rc = random_id(r, ctx.span_id, sizeof ctx.span_id);
    if (rc < 0)
        return rc;
    ctx.flags = SL_TRACE_FLAG_SAMPLED;
    *out = ctx;
    return 0;
}

int sl_trace_child(const struct sl_trace_ctx *parent, struct sl_trace_ctx *child) {
    return sl_trace_child_r(NULL, parent, child);
}

int sl_trace_child_r(struct sl_trace_rand *r, const struct sl_trace_ctx *parent,
                     struct sl_trace_ctx *child) {
    struct sl_trace_ctx ctx = *parent;
    int rc = random_id(r, ctx.span_id, sizeof ctx.span_id);
    if (rc < 0)
        return rc;
    *child = ctx;
    return 0;
}

void sl_trace_format(const struct sl_trace_ctx *ctx, char out[SL_TRACEPARENT_LEN + 1]) {
    memcpy(out, "00-", 3);
    sl_hex_encode(out + 3, ctx->trace_id, 16);
    out[35] = '-';
    sl_hex_encode(out + 36, ctx->span_id, 8);
    out[52] = '-';
    sl_hex_encode(out + 53, &ctx->flags, 1);
    out[SL_TRACEPARENT_LEN] = '\0';
}

void sl_trace_id_hex(const struct sl_trace_ctx *ctx, char out[33]) {
    sl_hex_encode(out, ctx->trace_id, 16);
    out[32] = '\0';
}

int sl_trace_request_id(char out[SL_REQUEST_ID_LEN + 1]) {
    return sl_trace_request_id_r(NULL, out);
}

int sl_trace_request_id_r(struct sl_trace_rand *r, char out[SL_REQUEST_ID_LEN + 1]) {
    uint8_t u[16];
    int rc = random_bytes(r, u, sizeof u);
    if (rc < 0) {
        out[0] = '\0';
        return rc;
    }
    /* RFC 9562: version 4 in the high nibble of byte 6, variant 10xx in byte 8. */
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    char *p = out;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        sl_hex_encode(p, &u[i], 1);
        p += 2;
    }
    *p = '\0';
    return 0;
}
