/* Python's json.loads and json.dumps for the echo handler: strict parsing, faithful printing. */
#include "pyjson.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/error.h"

/*
 * The echo handler answers as a Python Lambda that runs json.loads on the body and json.dumps
 * on the result. A general JSON library decides differently (trailing bytes, NUL in strings,
 * numbers through doubles, a nesting limit of its own), so this file follows CPython's
 * scanner (Modules/_json.c) rule by rule, with an explicit stack instead of recursion.
 */

enum kind { K_LITERAL, K_NUMBER, K_STRING, K_ARRAY, K_OBJECT };

/* A value: its bytes in the body (strings with their quotes), children linked by index. Index
 * 0 is the root, which is never a child or sibling, so 0 also means "none". */
struct wk_pyjson_node {
    uint32_t start, len;
    uint32_t child, next;
    uint8_t kind;
};

/* ---- decoding ----------------------------------------------------------------------------- */

/*
 * One code point of bytes decoded as UTF-8 with errors="replace": an invalid sequence becomes
 * U+FFFD for its longest valid-looking prefix (at least one byte), as CPython does. Returns the
 * bytes consumed (1..4).
 */
static size_t utf8_replace(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        *cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        *cp = c & 0x0Fu;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        *cp = c & 0x07u;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lo_i || s[i] > hi_i) {
            *cp = 0xFFFD;
            return i;
        }
        *cp = *cp << 6 | (s[i] & 0x3Fu);
    }
    return len;
}

/* Four hex digits at s (the caller checked there are four); -1 when one is not hex. */
static int32_t hex4(const unsigned char *s) {
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = sl_hex_digit(s[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Walks the code points of a validated string token's contents (quotes excluded). */
struct cp_iter {
    const unsigned char *s;
    size_t i, n;
};

/* The next code point, or -1 at the end. Escapes are valid: the parser checked them. */
static int32_t cp_next(struct cp_iter *it) {
    if (it->i >= it->n)
        return -1;
    const unsigned char *s = it->s + it->i;
    if (s[0] != '\\') {
        uint32_t cp;
        it->i += utf8_replace(s, it->n - it->i, &cp);
        return (int32_t)cp;
    }
    it->i += 2;
    switch (s[1]) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u':
        break;
    default: /* " \ / */
        return s[1];
    }
    int32_t cp = hex4(s + 2);
    it->i += 4;
    /* A high surrogate escape followed by a low one is one code point; a lone one stays. */
    if (cp >= 0xD800 && cp <= 0xDBFF && it->n - it->i >= 6 && s[6] == '\\' && s[7] == 'u') {
        int32_t lo = hex4(s + 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            it->i += 6;
            return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
    }
    return cp;
}

/* ---- printing ----------------------------------------------------------------------------- */

static const char hexdig[] = "0123456789abcdef";

/* One code point as ensure_ascii writes it. */
static int put_cp(struct sl_buf *b, uint32_t cp) {
    char out[12];
    size_t n = 0;
    switch (cp) {
    case '"':
        return sl_buf_append(b, "\\\"", 2);
    case '\\':
        return sl_buf_append(b, "\\\\", 2);
    case '\n':
        return sl_buf_append(b, "\\n", 2);
    case '\r':
        return sl_buf_append(b, "\\r", 2);
    case '\t':
        return sl_buf_append(b, "\\t", 2);
    case '\b':
        return sl_buf_append(b, "\\b", 2);
    case '\f':
        return sl_buf_append(b, "\\f", 2);
    default:
        break;
    }
    if (cp >= 0x20 && cp < 0x7F) {
        out[0] = (char)cp;
        return sl_buf_append(b, out, 1);
    }
    uint32_t units[2] = {cp, 0};
    size_t nunits = 1;
    if (cp >= 0x10000) {
        units[0] = 0xD800 + ((cp - 0x10000) >> 10);
        units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
        nunits = 2;
    }
    for (size_t u = 0; u < nunits; u++) {
        out[n++] = '\\';
        out[n++] = 'u';
        for (int shift = 12; shift >= 0; shift -= 4)
            out[n++] = hexdig[(units[u] >> shift) & 0xF];
    }
    return sl_buf_append(b, out, n);
}

int wk_pyjson_dump_string(struct sl_buf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    int rc = sl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t cp;
        i += utf8_replace(s + i, n - i, &cp);
        rc = put_cp(b, cp);
    }
    return rc ? rc : sl_buf_append(b, "\"", 1);
}

/* A string token (quotes included) as json.dumps writes the str json.loads made of it. */
static int put_token_string(struct sl_buf *b, const unsigned char *tok, size_t len) {
    struct cp_iter it = {.s = tok + 1, .n = len - 2};
    int rc = sl_buf_append(b, "\"", 1);
    for (int32_t cp; rc == 0 && (cp = cp_next(&it)) >= 0;)
        rc = put_cp(b, (uint32_t)cp);
    return rc ? rc : sl_buf_append(b, "\"", 1);
}

/* ---- parsing ------------------------------------------------------------------------------ */

static bool is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const unsigned char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i]))
        i++;
    return i;
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* A string token at s[i] == '"': its end (one past the closing quote), or 0 when invalid. */
static size_t scan_string(const unsigned char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0; /* strict=True: "Invalid control character" */
        if (c != '\\')
            continue;
        if (i + 1 >= n)
            return 0;
        c = s[i + 1];
        if (c == 'u') {
            if (n - i < 6 || hex4(s + i + 2) < 0)
                return 0;
            i += 5;
        } else if (strchr("\"\\/bfnrt", c) && c) {
            i++;
        } else {
            return 0;
        }
    }
    return 0;
}

/*
 * A number at s[i], as CPython's _match_number: '-'? then '0' or [1-9][0-9]*, then a fraction
 * only when '.' is followed by a digit and an exponent only when it has a digit (otherwise the
 * number ends before them and what follows is the next token). Returns its end or 0; *int_digits
 * is the number of integer digits when it has neither fraction nor exponent, else 0.
 */
static size_t scan_number(const unsigned char *s, size_t n, size_t i, size_t *int_digits) {
    if (s[i] == '-')
        i++;
    size_t digits_at = i;
    if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
    } else if (i < n && s[i] == '0') {
        i++;
    } else {
        return 0;
    }
    bool is_float = false;
    size_t ndigits = i - digits_at;
    if (i + 1 < n && s[i] == '.' && is_digit(s[i + 1])) {
        is_float = true;
        for (i += 2; i < n && is_digit(s[i]);)
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i + 1;
        if (e < n && (s[e] == '+' || s[e] == '-'))
            e++;
        size_t d = e;
        while (e < n && is_digit(s[e]))
            e++;
        if (e > d) {
            is_float = true;
            i = e;
        }
    }
    *int_digits = is_float ? 0 : ndigits;
    return i;
}

static bool word_at(const unsigned char *s, size_t n, size_t i, const char *w) {
    size_t len = strlen(w);
    return n - i >= len && !memcmp(s + i, w, len);
}

static int add_node(struct wk_pyjson *d, enum kind k, size_t start, size_t len, uint32_t *idx) {
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 64;
        struct wk_pyjson_node *p = realloc(d->nodes, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        d->nodes = p;
        d->cap = cap;
    }
    *idx = d->n++;
    d->nodes[*idx] =
        (struct wk_pyjson_node){.start = (uint32_t)start, .len = (uint32_t)len, .kind = (uint8_t)k};
    return 0;
}

static void set_exception(struct wk_pyjson *d, const char *type) {
    d->outcome = WK_PYJSON_EXCEPTION;
    d->error_type = type;
}

/* The containers being parsed: the node and its last child (to link the next one). */
struct open {
    uint32_t node, last;
};

/* Links a new node under the innermost open container. */
static void link_child(struct wk_pyjson *d, struct open *top, uint32_t idx) {
    if (top->last)
        d->nodes[top->last].next = idx;
    else
        d->nodes[top->node].child = idx;
    top->last = idx;
}

int wk_pyjson_parse(struct wk_pyjson *d, const char *body, size_t n) {
    *d = (struct wk_pyjson){.src = (const unsigned char *)body, .outcome = WK_PYJSON_NOT_JSON};
    if (n >= UINT32_MAX)
        return SL_ERR_TOO_LARGE;
    const unsigned char *s = d->src;
    struct open stack[WK_PYJSON_MAX_DEPTH];
    size_t depth = 0;
    size_t i = skip_ws(s, n, 0);
    uint32_t idx;
    int rc;
    bool want_key = false; /* inside an object, after '{' or ',' */
    for (;;) {
        /* A value (or, in an object, a key and its colon first) at s[i]. */
        if (want_key) {
            size_t end = i < n && s[i] == '"' ? scan_string(s, n, i) : 0;
            if (!end)
                return 0;
            if ((rc = add_node(d, K_STRING, i, end - i, &idx)) < 0)
                return rc;
            link_child(d, &stack[depth - 1], idx);
            i = skip_ws(s, n, end);
            if (i >= n || s[i] != ':')
                return 0;
            i = skip_ws(s, n, i + 1);
            want_key = false;
        }
        if (i >= n)
            return 0;
        unsigned char c = s[i];
        size_t end = 0, int_digits = 0;
        enum kind k = K_LITERAL;
        if (c == '{' || c == '[') {
            if (depth == WK_PYJSON_MAX_DEPTH) {
                set_exception(d, "RecursionError");
                snprintf(d->error, sizeof d->error,
                         "maximum recursion depth exceeded while decoding a JSON %s from a "
                         "unicode string",
                         c == '{' ? "object" : "array");
                return 0;
            }
            if ((rc = add_node(d, c == '{' ? K_OBJECT : K_ARRAY, i, 1, &idx)) < 0)
                return rc;
            if (depth)
                link_child(d, &stack[depth - 1], idx);
            stack[depth++] = (struct open){.node = idx};
            i = skip_ws(s, n, i + 1);
            if (i < n && s[i] == (c == '{' ? '}' : ']')) {
                depth--;
                i++;
            } else {
                want_key = c == '{';
                continue;
            }
        } else {
            if (c == '"') {
                k = K_STRING;
                end = scan_string(s, n, i);
            } else if (c == 'n' && word_at(s, n, i, "null")) {
                end = i + 4;
            } else if (c == 't' && word_at(s, n, i, "true")) {
                end = i + 4;
            } else if (c == 'f' && word_at(s, n, i, "false")) {
                end = i + 5;
            } else if (c == 'N' && word_at(s, n, i, "NaN")) {
                end = i + 3;
            } else if (c == 'I' && word_at(s, n, i, "Infinity")) {
                end = i + 8;
            } else if (c == '-' && word_at(s, n, i, "-Infinity")) {
                end = i + 9;
            } else {
                k = K_NUMBER;
                end = scan_number(s, n, i, &int_digits);
            }
            if (!end)
                return 0;
            if (int_digits > WK_PYJSON_MAX_INT_DIGITS) {
                set_exception(d, "ValueError");
                snprintf(d->error, sizeof d->error,
                         "Exceeds the limit (%d digits) for integer string conversion: value has "
                         "%zu digits; use sys.set_int_max_str_digits() to increase the limit",
                         WK_PYJSON_MAX_INT_DIGITS, int_digits);
                return 0;
            }
            if ((rc = add_node(d, k, i, end - i, &idx)) < 0)
                return rc;
            if (depth)
                link_child(d, &stack[depth - 1], idx);
            i = end;
        }
        /* After a value: a separator, the end of containers, or the end of the body. */
        for (;;) {
            i = skip_ws(s, n, i);
            if (depth == 0) {
                if (i == n)
                    d->outcome = WK_PYJSON_VALUE;
                return 0;
            }
            bool obj = d->nodes[stack[depth - 1].node].kind == K_OBJECT;
            if (i < n && s[i] == ',') {
                i = skip_ws(s, n, i + 1);
                want_key = obj;
                break;
            }
            if (i < n && s[i] == (obj ? '}' : ']')) {
                depth--;
                i++;
                continue;
            }
            return 0;
        }
    }
}

void wk_pyjson_free(struct wk_pyjson *d) {
    free(d->nodes);
    d->nodes = NULL;
    d->n = d->cap = 0;
}

/* ---- printing a document ------------------------------------------------------------------ */

/* An object member: its key's token and the value printed at its position. */
struct member {
    const unsigned char *key;
    uint32_t key_len;
    uint32_t pos;
    uint32_t value; /* UINT32_MAX: a repeated key, printed at its first position */
    bool plain;     /* ASCII without escapes: its bytes are its code points */
};

static int key_cmp(const struct member *a, const struct member *b) {
    if (a->plain && b->plain) {
        /* The same order as the decoded comparison below, without decoding. */
        size_t la = a->key_len - 2u, lb = b->key_len - 2u;
        int c = memcmp(a->key + 1, b->key + 1, la < lb ? la : lb);
        return c ? c : (la > lb) - (la < lb);
    }
    struct cp_iter x = {.s = a->key + 1, .n = a->key_len - 2};
    struct cp_iter y = {.s = b->key + 1, .n = b->key_len - 2};
    for (;;) {
        int32_t p = cp_next(&x), q = cp_next(&y);
        if (p != q)
            return p < q ? -1 : 1;
        if (p < 0)
            return 0;
    }
}

static int member_order(const void *pa, const void *pb) {
    const struct member *a = pa, *b = pb;
    int c = key_cmp(a, b);
    if (c)
        return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static bool is_plain(const unsigned char *tok, size_t len) {
    for (size_t i = 1; i + 1 < len; i++)
        if (tok[i] == '\\' || tok[i] >= 0x80)
            return false;
    return true;
}

/*
 * The members of an object in the order json.dumps prints a dict built from them: a key that
 * repeats (as decoded text, so "a" and "\u0061" are one key) keeps its first position and takes
 * its last value. Sorting keeps this O(k log k) for an object with k members.
 */
static int object_members(const struct wk_pyjson *d, uint32_t obj, struct member **out,
                          uint32_t *count) {
    uint32_t k = 0;
    for (uint32_t c = d->nodes[obj].child; c; c = d->nodes[d->nodes[c].next].next)
        k++;
    *count = k;
    *out = NULL;
    if (k == 0)
        return 0;
    struct member *m = malloc(k * sizeof *m);
    if (!m)
        return -ENOMEM;
    uint32_t i = 0;
    for (uint32_t c = d->nodes[obj].child; c; c = d->nodes[d->nodes[c].next].next, i++)
        m[i] = (struct member){.key = d->src + d->nodes[c].start,
                               .key_len = d->nodes[c].len,
                               .pos = i,
                               .value = d->nodes[c].next,
                               .plain = is_plain(d->src + d->nodes[c].start, d->nodes[c].len)};
    if (k > 1) {
        qsort(m, k, sizeof *m, member_order);
        for (uint32_t g = 0; g < k;) {
            uint32_t e = g + 1;
            while (e < k && key_cmp(&m[g], &m[e]) == 0)
                e++;
            m[g].value = m[e - 1].value;
            for (uint32_t j = g + 1; j < e; j++)
                m[j].value = UINT32_MAX;
            g = e;
        }
        /* Back to the order of the body. */
        struct member *by_pos = malloc(k * sizeof *by_pos);
        if (!by_pos) {
            free(m);
            return -ENOMEM;
        }
        for (uint32_t j = 0; j < k; j++)
            by_pos[m[j].pos] = m[j];
        free(m);
        m = by_pos;
    }
    *out = m;
    return 0;
}

/* A container being printed: arrays walk their children, objects their member plan. */
struct frame {
    uint32_t node, next; /* arrays: the next child (0: none) */
    struct member *members;
    uint32_t count, at; /* objects: members, and the next one to print */
    bool printed;       /* something was printed: the next one needs ", " */
};

static int put_node(const struct wk_pyjson *d, struct sl_buf *b, uint32_t v) {
    const struct wk_pyjson_node *nd = &d->nodes[v];
    if (nd->kind == K_STRING)
        return put_token_string(b, d->src + nd->start, nd->len);
    return sl_buf_append(b, d->src + nd->start, nd->len);
}

/* The next value an open container prints (after its key, for objects), or 0 when done. */
static int frame_next(const struct wk_pyjson *d, struct sl_buf *b, struct frame *f, uint32_t *v) {
    int rc = 0;
    *v = 0;
    if (d->nodes[f->node].kind == K_ARRAY) {
        if (!f->next)
            return 0;
        *v = f->next;
        f->next = d->nodes[f->next].next;
    } else {
        while (f->at < f->count && f->members[f->at].value == UINT32_MAX)
            f->at++;
        if (f->at == f->count)
            return 0;
        const struct member *m = &f->members[f->at++];
        if (f->printed)
            rc = sl_buf_append(b, ", ", 2);
        if (rc == 0)
            rc = put_token_string(b, m->key, m->key_len);
        if (rc == 0)
            rc = sl_buf_append(b, ": ", 2);
        *v = m->value;
        f->printed = true;
        return rc;
    }
    if (f->printed)
        rc = sl_buf_append(b, ", ", 2);
    f->printed = true;
    return rc;
}

int wk_pyjson_dump(const struct wk_pyjson *d, struct sl_buf *b) {
    struct frame *stack = calloc(WK_PYJSON_MAX_DEPTH, sizeof *stack);
    if (!stack)
        return -ENOMEM;
    size_t depth = 0;
    uint32_t v = 0; /* the root */
    int rc = 0;
    for (;;) {
        /* Print v: a scalar whole, a container's opening (its children follow). */
        uint8_t kind = d->nodes[v].kind;
        if (kind == K_ARRAY || kind == K_OBJECT) {
            struct frame *f = &stack[depth++];
            *f = (struct frame){.node = v, .next = d->nodes[v].child};
            rc = sl_buf_append(b, kind == K_ARRAY ? "[" : "{", 1);
            if (rc == 0 && kind == K_OBJECT)
                rc = object_members(d, v, &f->members, &f->count);
        } else {
            rc = put_node(d, b, v);
        }
        /* Then the next value of the innermost container, closing those that are done. */
        while (rc == 0 && depth) {
            struct frame *f = &stack[depth - 1];
            rc = frame_next(d, b, f, &v);
            if (rc || v)
                break;
            rc = sl_buf_append(b, d->nodes[f->node].kind == K_ARRAY ? "]" : "}", 1);
            free(f->members);
            f->members = NULL;
            depth--;
        }
        if (rc || depth == 0)
            break;
    }
    while (depth)
        free(stack[--depth].members);
    free(stack);
    return rc;
}
