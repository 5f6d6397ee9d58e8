/* FieldToMatch: the parts of a request a statement inspects, each value run through the
 * statement's text transformations before the match function sees it. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sluice/routes.h"
#include "waf_internal.h"

static bool eq_nocase_n(const char *a, size_t an, const char *b, size_t bn) {
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

static bool eq_nocase(const char *a, size_t an, const char *b) {
    return eq_nocase_n(a, an, b, strlen(b));
}

static bool grow(struct gw_waf_scratch *s, size_t n) {
    if (n <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < n)
        cap *= 2;
    char *a = realloc(s->a, cap);
    if (!a)
        return false;
    s->a = a;
    char *b = realloc(s->b, cap);
    if (!b)
        return false;
    s->b = b;
    s->cap = cap;
    return true;
}

/* The bytes some transformation acts on; a value without any of a transformation's bytes is left
 * as it is by it (most values of a benign request carry no '%', '&' or '\\'). */
enum {
    F_PCT = 1 << 0,
    F_PLUS = 1 << 1,
    F_AMP = 1 << 2,
    F_BSL = 1 << 3,
    F_NUL = 1 << 4,
    F_STAR = 1 << 5,
    F_SLASH = 1 << 6,
    F_UPPER = 1 << 7,
    F_ALWAYS = 1 << 8, /* acts on any value */
    F_SEALED = 1 << 9, /* gw_waf_tx_list.acts_on is filled in */
};

static const uint8_t byte_feature[256] = {
    ['%'] = F_PCT,   ['+'] = F_PLUS,  ['&'] = F_AMP,   ['\\'] = F_BSL,  [0] = F_NUL,
    ['*'] = F_STAR,  ['/'] = F_SLASH, ['A'] = F_UPPER, ['B'] = F_UPPER, ['C'] = F_UPPER,
    ['D'] = F_UPPER, ['E'] = F_UPPER, ['F'] = F_UPPER, ['G'] = F_UPPER, ['H'] = F_UPPER,
    ['I'] = F_UPPER, ['J'] = F_UPPER, ['K'] = F_UPPER, ['L'] = F_UPPER, ['M'] = F_UPPER,
    ['N'] = F_UPPER, ['O'] = F_UPPER, ['P'] = F_UPPER, ['Q'] = F_UPPER, ['R'] = F_UPPER,
    ['S'] = F_UPPER, ['T'] = F_UPPER, ['U'] = F_UPPER, ['V'] = F_UPPER, ['W'] = F_UPPER,
    ['X'] = F_UPPER, ['Y'] = F_UPPER, ['Z'] = F_UPPER,
};

/* The bytes (features_of) without which transformation t leaves a value as it is. */
static unsigned acts_on(enum gw_waf_tx t) {
    switch (t) {
    case GW_TX_NONE:
        return 0;
    case GW_TX_URL_DECODE:
    case GW_TX_URL_DECODE_UNI:
        return F_PCT | F_PLUS;
    case GW_TX_HTML_ENTITY_DECODE:
        return F_AMP;
    case GW_TX_JS_DECODE:
    case GW_TX_CSS_DECODE:
    case GW_TX_ESCAPE_SEQ_DECODE:
        return F_BSL;
    case GW_TX_REMOVE_NULLS:
    case GW_TX_REPLACE_NULLS:
        return F_NUL;
    case GW_TX_REPLACE_COMMENTS:
        return F_STAR;
    case GW_TX_NORMALIZE_PATH:
        return F_SLASH;
    case GW_TX_NORMALIZE_PATH_WIN:
        return F_SLASH | F_BSL;
    case GW_TX_LOWERCASE:
        return F_UPPER;
    default:
        return F_ALWAYS; /* the others (base64, hex, white space, ...) always run */
    }
}

/* Whether transformation t can change a value holding the bytes `have` (features_of). */
static bool may_change(enum gw_waf_tx t, uint8_t have) {
    return acts_on(t) & (have | F_ALWAYS);
}

void gw_waf_tx_seal(struct gw_waf_tx_list *tx) {
    unsigned m = F_SEALED;
    for (size_t i = 0; i < tx->n; i++)
        m |= acts_on((enum gw_waf_tx)tx->t[i]);
    tx->acts_on = (uint16_t)m;
}

static uint8_t features_of(const char *p, size_t n) {
    uint8_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= byte_feature[(unsigned char)p[i]];
    return m;
}

enum { VALUE_MASK = 1, VALUE_MEMO = 2 };

/* What this request has learnt about one of its values (by address and length). */
static struct gw_waf_value_facts *value_facts(struct gw_waf_ctx *c, const char *p, size_t n) {
    /* Fibonacci hashing of the address: neighbouring slices of one buffer spread apart. */
    size_t slot = (size_t)((((uint64_t)(uintptr_t)p + n) * 0x9e3779b97f4a7c15u) >> 58);
    _Static_assert(sizeof c->feat / sizeof c->feat[0] == 64, "the hash keeps 6 bits");
    struct gw_waf_value_facts *f = &c->feat[slot];
    if (f->p != p || f->n != n) {
        f->p = p;
        f->n = n;
        f->have = 0;
    }
    return f;
}

/* features_of for a value of the request itself, remembered for the statements that follow. */
static uint8_t request_features(struct gw_waf_ctx *c, const char *p, size_t n) {
    struct gw_waf_value_facts *f = value_facts(c, p, n);
    if (!(f->have & VALUE_MASK)) {
        f->mask = features_of(p, n);
        f->have |= VALUE_MASK;
    }
    return f->mask;
}

/* The memo's entry for a value of the request (n <= GW_WAF_MEMO_MAX), looked up once. */
static struct gw_waf_memo_entry *request_memo(struct gw_waf_ctx *c, const char *p, size_t n) {
    if (n == 0)
        return &c->memo->empty;
    struct gw_waf_value_facts *f = value_facts(c, p, n);
    if (f->have & VALUE_MEMO) {
        struct gw_waf_memo_entry *e = &c->memo->slot[f->slot - 1];
        if (e->gen == f->gen)
            return e;
        /* another of the request's values took the slot over: look again */
    }
    struct gw_waf_memo_entry *e = gw_waf_memo_find(c->memo, p, n);
    f->have |= VALUE_MEMO;
    f->slot = (uint16_t)(e - c->memo->slot + 1);
    f->gen = e->gen;
    return e;
}

/*
 * Runs the transformations (ping-ponging between the two scratch buffers) and the match.
 * *exact is cleared when the value could not be transformed (out of memory) and the raw value
 * was inspected instead: that verdict must not be remembered.
 */
static bool transform_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                            const char *p, size_t n, bool stable, bool *exact) {
    const struct gw_waf_tx_list *tx = &s->tx;
    if (tx->n == 0 || (tx->n == 1 && tx->t[0] == GW_TX_NONE))
        return fn(c, s, p, n);
    /* Only bytes that stay put for the request are remembered (not a scratch buffer's). */
    uint8_t have = stable ? request_features(c, p, n) : features_of(p, n);
    /* The common case, a value none of the list's transformations would touch: as it is. */
    if ((tx->acts_on & F_SEALED) && !(tx->acts_on & (have | F_ALWAYS)))
        return fn(c, s, p, n);
    if (!grow(c->scr, n + 1)) {
        *exact = false;
        return fn(c, s, p, n); /* out of memory: inspect the raw value rather than nothing */
    }
    const char *in = p;
    char *bufs[2] = {c->scr->a, c->scr->b};
    int which = 0;
    for (size_t i = 0; i < tx->n; i++) {
        if (!may_change((enum gw_waf_tx)tx->t[i], have))
            continue;
        char *out = bufs[which];
        n = gw_waf_transform((enum gw_waf_tx)tx->t[i], in, n, out);
        in = out;
        which ^= 1;
        have = features_of(in, n);
    }
    return fn(c, s, in, n);
}

/* One value through one statement, answered from the memo when the value was seen before. */
static bool check_value(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                        const char *p, size_t n, bool stable) {
    struct gw_waf_memo_entry *e = NULL;
    if (stable && s->memo >= 0 && c->memo && n <= GW_WAF_MEMO_MAX) {
        e = request_memo(c, p, n);
        if (gw_waf_memo_known(e, s->memo)) {
            c->memo->hits++;
            return false;
        }
    }
    bool exact = true;
    uint32_t errors = c->match_errors;
    bool hit = transform_match(c, s, fn, p, n, stable, &exact);
    /* A regex PCRE2 stopped with an error did not say "no match": nothing to remember. */
    if (e && !hit && exact && c->match_errors == errors)
        gw_waf_memo_learn(e, s->memo);
    return hit;
}

/* The API key header: its value is a secret, and no cache keeps a secret (docs/waf.md). */
static bool secret_header(struct sl_str name) {
    return eq_nocase(name.p, name.len, "x-api-key");
}

/* A secret value: inspected like any other, but neither the memo nor a regex prefilter's
 * misses keep its bytes, raw or transformed. */
static bool check_secret(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                         const char *p, size_t n) {
    c->secret = true;
    bool hit = check_value(c, s, fn, p, n, false);
    c->secret = false;
    return hit;
}

/* ANDs into `known` the statements the memo knows value p[0..n) does not match. */
static void and_known(struct gw_waf_ctx *c, uint64_t *known, const char *p, size_t n) {
    if (n > GW_WAF_MEMO_MAX) {
        memset(known, 0, sizeof c->whole_known[0]); /* not remembered: nothing is known */
        return;
    }
    const struct gw_waf_memo_entry *e = request_memo(c, p, n);
    for (size_t i = 0; i < GW_WAF_MEMO_STMTS / 64; i++)
        known[i] &= e->known[i];
}

/* What the memo knows about a whole field, as gw_waf_field_any reads it, taken once a request:
 * knowledge about a value stays true, so a snapshot can only miss bits learnt later. */
const uint64_t *gw_waf_whole_known(struct gw_waf_ctx *c, int whole) {
    uint64_t *known = c->whole_known[whole - 1];
    if (c->whole_have & (1u << whole))
        return known;
    c->whole_have |= (uint8_t)(1u << whole);
    memset(known, 0xff, sizeof c->whole_known[0]);
    const struct sl_http_request *r = c->req;
    switch (whole) {
    case GW_WAF_WHOLE_PATH:
        and_known(c, known, r->path.p ? r->path.p : "", r->path.len);
        break;
    case GW_WAF_WHOLE_QUERY:
        and_known(c, known, r->query.p ? r->query.p : "", r->query.len);
        break;
    case GW_WAF_WHOLE_METHOD:
        and_known(c, known, r->method.p ? r->method.p : "", r->method.len);
        break;
    case GW_WAF_WHOLE_BODY:
        if (r->body_len > GW_WAF_BODY_LIMIT)
            memset(known, 0, sizeof c->whole_known[0]); /* oversize handling decides */
        else
            and_known(c, known, r->body ? r->body : "", r->body_len);
        break;
    default: /* GW_WAF_WHOLE_HEADERS */
        for (size_t i = 0; i < r->nheaders; i++) {
            and_known(c, known, r->headers[i].name.p, r->headers[i].name.len);
            if (secret_header(r->headers[i].name)) /* never remembered: nothing is known */
                memset(known, 0, sizeof c->whole_known[0]);
            else
                and_known(c, known, r->headers[i].value.p, r->headers[i].value.len);
        }
        break;
    }
    return known;
}

/* A value that stays where it is for the whole request (the request's bytes, the parsed JSON). */
static bool check(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                  const char *p, size_t n) {
    return check_value(c, s, fn, p, n, true);
}

static bool listed(char *const *names, size_t n, const char *p, size_t len) {
    for (size_t i = 0; i < n; i++)
        if (eq_nocase(p, len, names[i]))
            return true;
    return false;
}

/* Include/exclude lists of Headers and Cookies: included wins when given, else not excluded. */
static bool selected(const struct gw_waf_field *f, const char *p, size_t len) {
    if (f->ninclude)
        return listed(f->include, f->ninclude, p, len);
    return !listed(f->exclude, f->nexclude, p, len);
}

static bool check_kv(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                     struct sl_str k, struct sl_str v) {
    enum gw_waf_scope sc = s->field.scope;
    if (sc != GW_SCOPE_VALUE && check(c, s, fn, k.p, k.len))
        return true;
    return sc != GW_SCOPE_KEY && check(c, s, fn, v.p, v.len);
}

/* One header of a Headers field: name and value as the scope says, the API key's value kept
 * out of every cache. */
static bool check_header(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                         const struct sl_http_header *h) {
    if (!secret_header(h->name))
        return check_kv(c, s, fn, h->name, h->value);
    enum gw_waf_scope sc = s->field.scope;
    if (sc != GW_SCOPE_VALUE && check(c, s, fn, h->name.p, h->name.len))
        return true;
    return sc != GW_SCOPE_KEY && check_secret(c, s, fn, h->value.p, h->value.len);
}

/* Splits "a=1&b=2" (or cookies "a=1; b=2") into pairs and calls back for each. */
static bool each_pair(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                      const char *p, size_t n, char sep,
                      bool (*on)(struct gw_waf_ctx *, const struct gw_waf_stmt *, gw_waf_value_fn,
                                 struct sl_str, struct sl_str)) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != sep)
            j++;
        size_t a = i, b = j;
        if (sep == ';')
            while (a < b && (p[a] == ' ' || p[a] == '\t'))
                a++;
        if (b > a) {
            size_t eq = a;
            while (eq < b && p[eq] != '=')
                eq++;
            struct sl_str k = {p + a, eq - a};
            struct sl_str v = {eq < b ? p + eq + 1 : p + b, eq < b ? b - eq - 1 : 0};
            if (on(c, s, fn, k, v))
                return true;
        }
        i = j + 1;
    }
    return false;
}

static bool on_all_args(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                        struct sl_str k, struct sl_str v) {
    (void)k;
    return check(c, s, fn, v.p, v.len);
}

/* Whether query argument name k is `name` (case-insensitively) as the handler sees it:
 * percent-decoded with '+' a space, by the gateway's own decoder. A name that does not decode
 * is compared as it came (the gateway answers such a request 400 before any handler). */
static bool arg_name_is(struct gw_waf_ctx *c, struct sl_str k, const char *name, size_t nlen) {
    if (!memchr(k.p, '%', k.len) && !memchr(k.p, '+', k.len))
        return eq_nocase_n(k.p, k.len, name, nlen);
    if (k.len > 3 * nlen + 2 || !grow(c->scr, k.len)) /* too long to decode to `name` */
        return eq_nocase_n(k.p, k.len, name, nlen);
    int dn = sl_url_decode(k.p, k.len, c->scr->a, c->scr->cap, 1);
    if (dn < 0)
        return eq_nocase_n(k.p, k.len, name, nlen);
    return eq_nocase_n(c->scr->a, (size_t)dn, name, nlen);
}

static bool on_single_arg(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                          struct sl_str k, struct sl_str v) {
    return arg_name_is(c, k, s->field.name, s->field.name_len) && check(c, s, fn, v.p, v.len);
}

static bool on_cookie(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                      struct sl_str k, struct sl_str v) {
    return selected(&s->field, k.p, k.len) && check_kv(c, s, fn, k, v);
}

/* ---- JSON body ---------------------------------------------------------------------------- */

struct json_walk {
    struct gw_waf_ctx *c;
    const struct gw_waf_stmt *s;
    gw_waf_value_fn fn;
    char path[512]; /* JSON Pointer of the element being visited, for IncludedPaths */
    size_t plen;
    /* With c->json_text: the body's text, read alongside cJSON's tree for the strings' bytes. */
    const char *text, *at, *end;
};

/*
 * cJSON decodes a string with \u0000 (or a raw NUL) in it in full but ends it at the NUL, and
 * its length is lost: read with strlen, "x\u0000<script>" would be inspected as "x" while the
 * handler sees all of it. Only then are the strings read from the text (json_string).
 */
static bool json_may_hold_nul(const char *p, size_t n) {
    return memchr(p, '\0', n) || memmem(p, n, "\\u0000", 6);
}

static void json_space(struct json_walk *w) {
    while (w->at < w->end && (unsigned char)*w->at <= ' ') /* cJSON's white space, NUL too */
        w->at++;
}

static uint32_t hex4(const char *p, const char *end) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = p + i < end ? sl_hex_digit((unsigned char)p[i]) : -1;
        if (d < 0)
            return 0xfffd; /* cJSON refused such text; a replacement keeps the walk going */
        v = v << 4 | (uint32_t)d;
    }
    return v;
}

static char *put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xc0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *o++ = (char)(0xf0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* The string at w->at (its opening quote), decoded as cJSON decodes it into c->json_text at the
 * string's own offset: a decoded string is never longer than its text, so strings never overlap
 * and each stays put for the request (the memo may remember it). */
static struct sl_str json_string(struct json_walk *w) {
    if (w->at >= w->end || *w->at != '"')
        return (struct sl_str){"", 0}; /* not where cJSON found a string: cannot happen */
    const char *q = w->at + 1;
    char *out = w->c->json_text + (q - w->text), *o = out;
    while (q < w->end && *q != '"') {
        if (*q != '\\' || q + 1 >= w->end) {
            *o++ = *q++;
            continue;
        }
        char e = q[1];
        q += 2;
        switch (e) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            uint32_t cp = hex4(q, w->end);
            q = q + 4 < w->end ? q + 4 : w->end;
            if (cp >= 0xd800 && cp <= 0xdbff && q + 6 <= w->end && q[0] == '\\' && q[1] == 'u') {
                cp = 0x10000 + ((cp & 0x3ff) << 10 | (hex4(q + 2, w->end) & 0x3ff));
                q += 6;
            }
            o = put_utf8(o, cp);
            break;
        }
        default: /* \" \\ \/ */
            *o++ = e;
        }
    }
    w->at = q < w->end ? q + 1 : q;
    return (struct sl_str){out, (size_t)(o - out)};
}

/* Past one character the text must hold here ('{', ':', ...), if it does. */
static void json_expect(struct json_walk *w, char ch) {
    json_space(w);
    if (w->at < w->end && *w->at == ch)
        w->at++;
}

/* Past a number, true, false or null. */
static void json_scalar(struct json_walk *w) {
    json_space(w);
    while (w->at < w->end && (unsigned char)*w->at > ' ' && !strchr(",]}", *w->at))
        w->at++;
}

static bool path_included(const struct json_walk *w) {
    const struct gw_waf_field *f = &w->s->field;
    if (!f->ninclude)
        return true;
    for (size_t i = 0; i < f->ninclude; i++) {
        size_t n = strlen(f->include[i]);
        if (w->plen >= n && memcmp(w->path, f->include[i], n) == 0 &&
            (w->plen == n || w->path[n] == '/'))
            return true;
    }
    return false;
}

static bool walk(struct json_walk *w, const cJSON *j) {
    enum gw_waf_scope sc = w->s->field.scope;
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        bool obj = cJSON_IsObject(j);
        if (w->text)
            json_expect(w, obj ? '{' : '[');
        size_t idx = 0;
        for (const cJSON *k = j->child; k; k = k->next, idx++) {
            size_t saved = w->plen;
            struct sl_str key = {k->string ? k->string : "", k->string ? strlen(k->string) : 0};
            if (obj && w->text) {
                json_space(w);
                key = json_string(w);
                json_expect(w, ':');
            }
            size_t room = sizeof w->path - w->plen;
            int wrote = obj ? snprintf(w->path + w->plen, room, "/%.*s", (int)key.len, key.p)
                            : snprintf(w->path + w->plen, room, "/%zu", idx);
            if (wrote > 0)
                w->plen += (size_t)wrote < room ? (size_t)wrote : room - 1;
            bool hit = false;
            if (obj && k->string && sc != GW_SCOPE_VALUE && path_included(w))
                hit = check(w->c, w->s, w->fn, key.p, key.len);
            if (!hit)
                hit = walk(w, k);
            w->plen = saved;
            w->path[saved] = '\0';
            if (hit)
                return true;
            if (w->text)
                json_expect(w, ',');
        }
        if (w->text)
            json_expect(w, obj ? '}' : ']');
        return false;
    }
    struct sl_str str = {0};
    if (w->text) {
        json_space(w);
        if (cJSON_IsString(j))
            str = json_string(w);
        else
            json_scalar(w);
    } else if (cJSON_IsString(j)) {
        str = (struct sl_str){j->valuestring, strlen(j->valuestring)};
    }
    if (sc == GW_SCOPE_KEY || !path_included(w))
        return false;
    if (cJSON_IsString(j))
        return check(w->c, w->s, w->fn, str.p, str.len);
    char num[64];
    const char *v = NULL;
    if (cJSON_IsNumber(j)) {
        snprintf(num, sizeof num, "%.17g", j->valuedouble);
        v = num;
    } else if (cJSON_IsBool(j)) {
        v = cJSON_IsTrue(j) ? "true" : "false";
    } else if (cJSON_IsNull(j)) {
        v = "null";
    }
    /* A number is formatted into a buffer on the stack: not a place to remember. */
    return v && check_value(w->c, w->s, w->fn, v, strlen(v), v != num);
}

static bool json_body(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn,
                      const char *p, size_t n) {
    if (c->json_state == 0) {
        c->json = cJSON_ParseWithLength(p, n);
        c->json_state = c->json ? 1 : -1;
        if (c->json && json_may_hold_nul(p, n))
            c->json_text = malloc(n); /* NULL (out of memory): cJSON's strings, cut at NUL */
    }
    if (c->json_state < 0) {
        switch (s->field.fallback) {
        case GW_FALLBACK_MATCH:
            return true;
        case GW_FALLBACK_NO_MATCH:
            return false;
        case GW_FALLBACK_NONE:
        case GW_FALLBACK_STRING:
            break;
        }
        return check(c, s, fn, p, n);
    }
    struct json_walk w = {.c = c, .s = s, .fn = fn};
    if (c->json_text) {
        w.text = w.at = p;
        w.end = p + n;
        if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) /* cJSON skips a UTF-8 BOM */
            w.at += 3;
    }
    return walk(&w, c->json);
}

void gw_waf_ctx_release(struct gw_waf_ctx *c) {
    cJSON_Delete(c->json);
    free(c->json_text);
    c->json_text = NULL;
    c->json = NULL;
    c->json_state = 0;
}

bool gw_waf_field_any(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn) {
    const struct sl_http_request *r = c->req;
    const struct gw_waf_field *f = &s->field;
    switch (f->kind) {
    case GW_FIELD_SINGLE_HEADER:
        for (size_t i = 0; i < r->nheaders; i++) {
            const struct sl_http_header *h = &r->headers[i];
            if (!eq_nocase_n(h->name.p, h->name.len, f->name, f->name_len))
                continue;
            if (secret_header(h->name) ? check_secret(c, s, fn, h->value.p, h->value.len)
                                       : check(c, s, fn, h->value.p, h->value.len))
                return true;
        }
        return false;
    case GW_FIELD_HEADERS:
        for (size_t i = 0; i < r->nheaders; i++) {
            const struct sl_http_header *h = &r->headers[i];
            if (!selected(f, h->name.p, h->name.len))
                continue;
            if (check_header(c, s, fn, h))
                return true;
        }
        return false;
    case GW_FIELD_SINGLE_QUERY_ARG:
        return each_pair(c, s, fn, r->query.p, r->query.len, '&', on_single_arg);
    case GW_FIELD_ALL_QUERY_ARGS:
        return each_pair(c, s, fn, r->query.p, r->query.len, '&', on_all_args);
    case GW_FIELD_QUERY_STRING:
        return check(c, s, fn, r->query.p ? r->query.p : "", r->query.len);
    case GW_FIELD_URI_PATH:
        return check(c, s, fn, r->path.p ? r->path.p : "", r->path.len);
    case GW_FIELD_METHOD:
        return check(c, s, fn, r->method.p ? r->method.p : "", r->method.len);
    case GW_FIELD_COOKIES:
        for (size_t i = 0; i < r->nheaders; i++)
            if (eq_nocase(r->headers[i].name.p, r->headers[i].name.len, "cookie") &&
                each_pair(c, s, fn, r->headers[i].value.p, r->headers[i].value.len, ';', on_cookie))
                return true;
        return false;
    case GW_FIELD_BODY:
    case GW_FIELD_JSON_BODY: {
        size_t n = r->body_len;
        if (n > GW_WAF_BODY_LIMIT) {
            if (f->oversize == GW_OVERSIZE_MATCH)
                return true;
            if (f->oversize == GW_OVERSIZE_NO_MATCH)
                return false;
            n = GW_WAF_BODY_LIMIT;
        }
        const char *p = r->body ? r->body : "";
        return f->kind == GW_FIELD_BODY ? check(c, s, fn, p, n) : json_body(c, s, fn, p, n);
    }
    }
    return false;
}

/* ---- addresses ---------------------------------------------------------------------------- */

bool gw_waf_parse_ip(const char *s, size_t n, uint8_t out[16]) {
    char tmp[INET6_ADDRSTRLEN + 1];
    while (n && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= sizeof tmp)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, tmp, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, tmp, out) == 1;
}

bool gw_waf_cidr_contains(const struct gw_waf_cidr *c, const uint8_t ip[16]) {
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, ip, full) != 0)
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (ip[full] & mask);
}

int gw_waf_forwarded_ips(const struct sl_http_request *req, const struct gw_waf_fwd *f,
                         uint8_t out[][16]) {
    const struct sl_http_header *h = NULL;
    for (size_t i = 0; i < req->nheaders && !h; i++)
        if (eq_nocase(req->headers[i].name.p, req->headers[i].name.len, f->header))
            h = &req->headers[i];
    if (!h)
        return -1;
    const char *p = h->value.p;
    size_t n = h->value.len;
    struct sl_str items[GW_WAF_MAX_FWD_IPS];
    size_t k = 0, i = 0, last_start = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && p[j] != ',')
            j++;
        if (k < GW_WAF_MAX_FWD_IPS)
            items[k++] = (struct sl_str){p + i, j - i};
        last_start = i;
        i = j + 1;
    }
    if (f->position == GW_FWD_FIRST)
        k = 1;
    else if (f->position == GW_FWD_LAST) {
        items[0] = (struct sl_str){p + last_start, n - last_start};
        k = 1;
    }
    for (size_t x = 0; x < k; x++)
        if (!gw_waf_parse_ip(items[x].p, items[x].len, out[x]))
            return -2;
    return (int)k;
}
