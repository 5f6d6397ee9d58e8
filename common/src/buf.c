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

int sl_buf_append_grow(struct sl_buf *b, const void *p, size_t n) {
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
    /* Format into the spare room first: one pass when it fits, which is the common case. */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < room) { /* cap <= max + 1, so what fits is within the limit */
        b->len += (size_t)n;
        return 0;
    }
    int rc = sl_buf_reserve(b, (size_t)n);
    if (rc < 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return rc;
    }
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

/* Bytes that need an escape in a JSON string: controls, DEL, the quote and the backslash (a
 * table: one load a byte in the scan for the next run to copy). */
static const unsigned char needs_escape[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1,
    [0x0e] = 1, [0x0f] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1,
    [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1, ['"'] = 1,  ['\\'] = 1, [0x7f] = 1,
};

/* Writes the escaped form of s[0..n) at d (room for 6 * n bytes); returns the bytes written. */
size_t sl_json_escape_into(char *d, const char *s, size_t n) {
    char *start = d;
    size_t i = 0;
    while (i < n) {
        size_t run = i; /* the longest run that needs no escape, copied in one piece */
        while (run < n && !needs_escape[(unsigned char)s[run]])
            run++;
        memcpy(d, s + i, run - i);
        d += run - i;
        if ((i = run) == n)
            break;
        unsigned char c = (unsigned char)s[i++];
        *d++ = '\\';
        if (c == '\n')
            *d++ = 'n';
        else if (c == '\r')
            *d++ = 'r';
        else if (c == '\t')
            *d++ = 't';
        else if (c == '"' || c == '\\')
            *d++ = (char)c;
        else {
            memcpy(d, "u00", 3);
            sl_hex_encode(d + 3, &c, 1);
            d += 5;
        }
    }
    return (size_t)(d - start);
}

int sl_buf_append_json_escaped(struct sl_buf *b, const char *s, size_t n) {
    /* Room for the worst case taken once, and the escaped bytes written straight in. */
    if (n <= b->max / 6 && sl_buf_reserve(b, 6 * n) == 0) {
        b->len += sl_json_escape_into(b->data + b->len, s, n);
        b->data[b->len] = '\0';
        return 0;
    }
    /* Near the limit (where the worst case would not fit but the real text may): in pieces. */
    size_t start_len = b->len;
    char piece[6 * 256];
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        int rc = sl_buf_append(b, piece, sl_json_escape_into(piece, s + i, k));
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

static int lower_hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int sl_hex_decode_lower(uint8_t *out, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = lower_hex_digit(s[2 * i]);
        if (hi < 0) /* before reading on: a NUL here ends a string that is too short */
            return SL_ERR_PARSE;
        int lo = lower_hex_digit(s[2 * i + 1]);
        if (lo < 0)
            return SL_ERR_PARSE;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
