/* Bounded, growable byte buffers: the cap set at creation is the limit for whatever fills it. */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A byte buffer that grows on demand up to `max` bytes. Anything read from the network goes
 * into one of these, so the cap is the request limit. `data` is always NUL-terminated when
 * non-NULL (the terminator is not counted in `len` and does not count against `max`).
 * Ownership: the buffer owns `data`; sl_buf_free releases it. Zero-initialised (or
 * sl_buf_init'ed) buffers need no allocation until the first append.
 */
struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

/* A string slice (pointer + length), not NUL-terminated, owned by whoever owns `p`. */
struct sl_str {
    const char *p;
    size_t len;
};

#define SL_STR(lit) ((struct sl_str){.p = (lit), .len = sizeof(lit) - 1})
/* The same as a constant initializer, for static tables. */
#define SL_STR_INIT(lit)                                                                           \
    { .p = (lit), .len = sizeof(lit) - 1 }

void sl_buf_init(struct sl_buf *b, size_t max);
void sl_buf_free(struct sl_buf *b);
/* Empties the buffer and keeps its memory for reuse. */
void sl_buf_reset(struct sl_buf *b);
/* Ensures room for `extra` more bytes; -SL_ERR_TOO_LARGE past `max`, -ENOMEM. */
int sl_buf_reserve(struct sl_buf *b, size_t extra);
/* Appends bytes; on failure the buffer is unchanged. Inline when they fit in the memory the
 * buffer already holds (records are built from many small pieces); sl_buf_append_grow otherwise. */
int sl_buf_append_grow(struct sl_buf *b, const void *p, size_t n);
static inline int sl_buf_append(struct sl_buf *b, const void *p, size_t n) {
    /* cap > len whenever data is set, and cap <= max + 1: what fits here is within the limit. */
    if (n >= b->cap - b->len)
        return sl_buf_append_grow(b, p, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}
int sl_buf_append_str(struct sl_buf *b, const char *s);
int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sl_buf_vprintf(struct sl_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends `s` as the contents of a JSON string literal (quotes not included). */
int sl_buf_append_json_escaped(struct sl_buf *b, const char *s, size_t n);
/* The same into memory with room for 6 * n bytes (the worst case); returns the bytes written. */
size_t sl_json_escape_into(char *out, const char *s, size_t n);
/* Removes the first n bytes (n <= len). */
void sl_buf_consume(struct sl_buf *b, size_t n);

/* Case-insensitive equality of a slice and a C string (ASCII). */
int sl_str_eq_nocase(struct sl_str a, const char *b);

/* FNV-1a (64-bit) of n bytes: the hash of the hash tables and fingerprints that need no
 * resistance to chosen inputs (say why at the call). Inline: some callers hash per request. */
static inline uint64_t sl_fnv1a(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(1099511628211);
    return h;
}

/* The longest decimal form of a uint64_t (18446744073709551615). */
#define SL_U64_DEC_MAX 20

/* Writes v in decimal at out (SL_U64_DEC_MAX bytes of room, no terminator) and returns the
 * number of digits. Inline: response, audit and rate-limit headers format numbers per request,
 * where snprintf would cost far more per number. */
static inline size_t sl_u64_dec(char *out, uint64_t v) {
    char tmp[SL_U64_DEC_MAX];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

/* Writes n bytes as 2 * n lowercase hex digits at out (no terminator). Inline: the trace and
 * request ids of every request and the escapes of the JSON writers use it. */
static inline void sl_hex_encode(char *out, const void *in, size_t n) {
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
}

/* Reads 2 * n lowercase hex digits at s into n bytes: 0, or SL_ERR_PARSE (out partly written)
 * at the first character that is not one, so a NUL ends a short string. Uppercase is refused: where
 * one spelling is the rule (traceparent, the keys file's hashes), a second would hide duplicates.
 */
int sl_hex_decode_lower(uint8_t *out, const char *s, size_t n);

/* The value of a hex digit in either case, or -1 when c is not one. Inline: decoders call it
 * per byte. */
static inline int sl_hex_digit(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
