/*
 * libFuzzer target: the worker's checks and framing of a handler's answer. The input describes
 * a plugin answer (status, headers, body); what wk_plugin_reply_invalid accepts must keep the
 * ABI's rules, encode as a reply envelope, pass the gateway's decoder with every header value
 * and the body unchanged, and frame and unframe exactly. An answer the worker marks failed
 * must encode as a 502 with its error.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "handlers/handlers.h"
#include "plugin.h"
#include "sluice/buf.h"
#include "sluice/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An RFC 9110 token character, as the ABI asks of header names. */
static int tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Splits the input: 2 bytes status, 1 byte header count, then "name\0value\0" pairs, then body. */
static size_t take(const uint8_t **p, const uint8_t *end, struct sluice_str_v1 *s) {
    const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
    s->p = (const char *)*p;
    s->len = z ? (size_t)(z - *p) : (size_t)(end - *p);
    *p += s->len + (z ? 1 : 0);
    return s->len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3)
        return 0;
    struct sluice_response_v1 resp = {0};
    resp.status = (int)(((unsigned)data[0] << 8 | data[1]) % 700);
    size_t nh = data[2] % (WK_RESPONSE_MAX_HEADERS + 8);
    const uint8_t *p = data + 3, *end = data + size;
    struct sluice_pair_v1 *hs = calloc(nh + 1, sizeof *hs);
    for (size_t i = 0; i < nh; i++) {
        take(&p, end, &hs[i].name);
        take(&p, end, &hs[i].value);
    }
    resp.headers = hs;
    resp.n_headers = nh;
    resp.body = (const char *)p;
    resp.body_len = (size_t)(end - p);
    const char *why = wk_plugin_reply_invalid(&resp);

    struct wk_response r;
    wk_response_init(&r, 1u << 20);
    if (why) {
        wk_response_fail(&r, "invalid_reply", "plugin fuzz: %s", why);
    } else {
        for (size_t i = 0; i < nh; i++)
            for (size_t k = 0; k < hs[i].name.len; k++)
                if (!tchar((unsigned char)hs[i].name.p[k]))
                    abort(); /* accepted a name the ABI forbids */
        r.status = (uint32_t)resp.status;
        for (size_t i = 0; i < nh; i++)
            if (wk_response_add_header(&r, hs[i].name.p, hs[i].name.len, hs[i].value.p,
                                       hs[i].value.len) != 0)
                abort();
        if (sl_buf_append(&r.body, resp.body, resp.body_len) != 0)
            abort();
    }
    struct sl_buf out;
    sl_buf_init(&out, 64u << 20);
    uint8_t hdr[WK_FRAME_HEADER];
    if (sl_buf_append(&out, hdr, sizeof hdr) != 0 ||
        wk_response_encode(&r, (struct sl_str){"id-1", 4}, &out) != 0)
        abort();
    /* Framed as the child sends it, unframed as the supervisor reads it. */
    wk_frame_header((uint8_t *)out.data, (uint32_t)(out.len - WK_FRAME_HEADER));
    const uint8_t *payload;
    size_t plen;
    if (wk_frame_parse(out.data, out.len, WK_FRAME_MAX, &payload, &plen) != 1 ||
        plen != out.len - WK_FRAME_HEADER ||
        wk_frame_parse(out.data, out.len - 1, WK_FRAME_MAX, &payload, &plen) != 0)
        abort();
    struct sl_envelope_limits lim = sl_envelope_limits_default(1u << 20);
    struct sl_envelope_reply rep;
    struct sl_envelope_error err;
    if (sl_envelope_decode_reply(payload, plen, &lim, &rep, &err) != 0)
        abort(); /* the gateway would answer 502 for a reply the worker thought fine */
    if (why) {
        if (rep.status != 502 || !rep.has_error)
            abort();
    } else {
        if (rep.status != (uint32_t)resp.status || rep.has_error || rep.body.len != resp.body_len ||
            memcmp(rep.body.p, resp.body, resp.body_len) != 0)
            abort();
        size_t nvalues = 0;
        for (size_t i = 0; i < rep.headers.n; i++)
            nvalues += rep.headers.fields[i].n_values;
        if (nvalues != nh)
            abort();
    }
    sl_envelope_reply_free(&rep);
    sl_buf_free(&out);
    wk_response_free(&r);
    free(hs);
    return 0;
}
