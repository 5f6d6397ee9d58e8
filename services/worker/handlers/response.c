/* The handler response a child builds and encodes as the reply envelope. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "sluice/error.h"

void wk_response_init(struct wk_response *r, size_t max_body) {
    memset(r, 0, sizeof *r);
    sl_buf_init(&r->strings, 1u << 20);
    sl_buf_init(&r->body, max_body);
}

void wk_response_reset(struct wk_response *r) {
    r->status = 0;
    r->nheaders = 0;
    r->failed = false;
    r->final = false;
    r->error_class = NULL;
    r->error_message[0] = '\0';
    sl_buf_reset(&r->strings);
    sl_buf_reset(&r->body);
}

void wk_response_free(struct wk_response *r) {
    sl_buf_free(&r->strings);
    sl_buf_free(&r->body);
}

int wk_response_add_header(struct wk_response *r, const char *name, size_t nlen, const char *value,
                           size_t vlen) {
    if (r->nheaders == WK_RESPONSE_MAX_HEADERS)
        return SL_ERR_TOO_LARGE;
    size_t at = r->strings.len;
    int rc = sl_buf_append(&r->strings, name, nlen);
    if (rc == 0)
        rc = sl_buf_append(&r->strings, value, vlen);
    if (rc < 0) {
        r->strings.len = at;
        return rc;
    }
    r->name_off[r->nheaders] = at;
    r->name_len[r->nheaders] = nlen;
    r->value_off[r->nheaders] = at + nlen;
    r->value_len[r->nheaders] = vlen;
    r->nheaders++;
    return 0;
}

void wk_response_fail(struct wk_response *r, const char *error_class, const char *fmt, ...) {
    r->failed = true;
    r->error_class = error_class;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error_message, sizeof r->error_message, fmt, ap);
    va_end(ap);
}

int wk_response_encode(const struct wk_response *r, struct sl_str id, struct sl_buf *out) {
    struct sl_envelope_field fields[WK_RESPONSE_MAX_HEADERS];
    struct sl_str values[WK_RESPONSE_MAX_HEADERS];
    struct sl_envelope_reply rep = {.id = id, .status = r->status};
    if (r->failed) {
        rep.status = 502;
        rep.has_error = true;
        rep.error_class = (struct sl_str){r->error_class, strlen(r->error_class)};
        rep.error_message = (struct sl_str){r->error_message, strlen(r->error_message)};
    } else {
        /*
         * A name may repeat (two Set-Cookie, Vary or Link headers): the envelope carries one
         * field per name with every value in order, since the decoder refuses a repeated name.
         * Names group by exact bytes, as the decoder compares them; at most
         * WK_RESPONSE_MAX_HEADERS headers, so the quadratic scan stays small.
         */
        bool taken[WK_RESPONSE_MAX_HEADERS] = {false};
        size_t nfields = 0, nvalues = 0;
        for (size_t i = 0; i < r->nheaders; i++) {
            if (taken[i])
                continue;
            struct sl_str name = {r->strings.data + r->name_off[i], r->name_len[i]};
            struct sl_envelope_field *f = &fields[nfields++];
            *f = (struct sl_envelope_field){.name = name, .values = &values[nvalues]};
            for (size_t j = i; j < r->nheaders; j++) {
                if (j > i && (taken[j] || r->name_len[j] != name.len ||
                              memcmp(r->strings.data + r->name_off[j], name.p, name.len) != 0))
                    continue;
                taken[j] = true;
                values[nvalues++] =
                    (struct sl_str){r->strings.data + r->value_off[j], r->value_len[j]};
                f->n_values++;
            }
        }
        rep.headers = (struct sl_envelope_multimap){fields, nfields};
        rep.body = (struct sl_str){r->body.data ? r->body.data : "", r->body.len};
    }
    return sl_envelope_encode_reply(&rep, out);
}
