/* Bounded byte buffers and string slices. */
#include "sluice/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/error.h"

void sl_buf_init(struct sl_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sl_buf_free(struct sl_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sl_buf_reset(struct sl_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int sl_buf_reserve(struct sl_buf *b, size_t extra) {
    if (extra > b->max || b->len > b->max - extra)
        return SL_ERR_TOO_LARGE;
    size_t need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sl_buf_append(struct sl_buf *b, const void *p, size_t n) {
    int rc = sl_buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sl_buf_append_str(struct sl_buf *b, const char *s) {
    return sl_buf_append(b, s, strlen(s));
}

int sl_buf_vprintf(struct sl_buf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    int rc = sl_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int sl_buf_append_json_escaped(struct sl_buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t start_len = b->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t elen = 0;
        switch (c) {
        case '"':
            elen = 2, esc[0] = '\\', esc[1] = '"';
            break;
        case '\\':
            elen = 2, esc[0] = '\\', esc[1] = '\\';
            break;
        case '\n':
            elen = 2, esc[0] = '\\', esc[1] = 'n';
            break;
        case '\r':
            elen = 2, esc[0] = '\\', esc[1] = 'r';
            break;
        case '\t':
            elen = 2, esc[0] = '\\', esc[1] = 't';
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        int rc = elen ? sl_buf_append(b, esc, elen) : sl_buf_append(b, &s[i], 1);
        if (rc < 0) {
            b->len = start_len;
            if (b->data)
                b->data[b->len] = '\0';
            return rc;
        }
    }
    return 0;
}

void sl_buf_consume(struct sl_buf *b, size_t n) {
    if (n >= b->len) {
        sl_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

int sl_str_eq_nocase(struct sl_str a, const char *b) {
    size_t n = strlen(b);
    return a.len == n && strncasecmp(a.p, b, n) == 0;
}
