/* WAFv2 text transformations: each rewrites its input into a buffer no longer than the input. */
#include <stdint.h>
#include <string.h>

#include "sluice/buf.h"
#include "waf_internal.h"

const char *const gw_waf_tx_names[GW_TX_COUNT] = {
    [GW_TX_NONE] = "NONE",
    [GW_TX_URL_DECODE] = "URL_DECODE",
    [GW_TX_URL_DECODE_UNI] = "URL_DECODE_UNI",
    [GW_TX_HTML_ENTITY_DECODE] = "HTML_ENTITY_DECODE",
    [GW_TX_LOWERCASE] = "LOWERCASE",
    [GW_TX_COMPRESS_WHITE_SPACE] = "COMPRESS_WHITE_SPACE",
    [GW_TX_CMD_LINE] = "CMD_LINE",
    [GW_TX_NORMALIZE_PATH] = "NORMALIZE_PATH",
    [GW_TX_NORMALIZE_PATH_WIN] = "NORMALIZE_PATH_WIN",
    [GW_TX_REMOVE_NULLS] = "REMOVE_NULLS",
    [GW_TX_REPLACE_NULLS] = "REPLACE_NULLS",
    [GW_TX_REPLACE_COMMENTS] = "REPLACE_COMMENTS",
    [GW_TX_JS_DECODE] = "JS_DECODE",
    [GW_TX_CSS_DECODE] = "CSS_DECODE",
    [GW_TX_BASE64_DECODE] = "BASE64_DECODE",
    [GW_TX_BASE64_DECODE_EXT] = "BASE64_DECODE_EXT",
    [GW_TX_HEX_DECODE] = "HEX_DECODE",
    [GW_TX_SQL_HEX_DECODE] = "SQL_HEX_DECODE",
    [GW_TX_ESCAPE_SEQ_DECODE] = "ESCAPE_SEQ_DECODE",
};

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xa0;
}

/* %uXXXX as IIS decodes it: full-width ASCII (U+FF01..U+FF5E) folds to ASCII, else the low byte. */
static char uni_byte(unsigned v) {
    if (v >= 0xff01 && v <= 0xff5e)
        return (char)(v - 0xfee0);
    return (char)(v & 0xff);
}

static size_t url_decode(const char *in, size_t n, char *out, bool uni) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%' && uni && i + 5 < n && (in[i + 1] == 'u' || in[i + 1] == 'U') &&
                   sl_hex_digit((unsigned char)in[i + 2]) >= 0 &&
                   sl_hex_digit((unsigned char)in[i + 3]) >= 0 &&
                   sl_hex_digit((unsigned char)in[i + 4]) >= 0 &&
                   sl_hex_digit((unsigned char)in[i + 5]) >= 0) {
            unsigned v = 0;
            for (size_t k = 2; k < 6; k++)
                v = v * 16 + (unsigned)sl_hex_digit((unsigned char)in[i + k]);
            out[o++] = uni_byte(v);
            i += 5;
        } else if (c == '%' && i + 2 < n && sl_hex_digit((unsigned char)in[i + 1]) >= 0 &&
                   sl_hex_digit((unsigned char)in[i + 2]) >= 0) {
            out[o++] = (char)(sl_hex_digit((unsigned char)in[i + 1]) * 16 +
                              sl_hex_digit((unsigned char)in[i + 2]));
            i += 2;
        } else {
            out[o++] = c;
        }
    }
    return o;
}

/* Writes code point v as UTF-8 when it fits in `room`, else its low byte (never grows). */
static size_t put_cp(char *out, unsigned long v, size_t room) {
    if (v < 0x80 || room < 2) {
        out[0] = (char)(v & 0xff);
        return 1;
    }
    if (v < 0x800) {
        out[0] = (char)(0xc0 | (v >> 6));
        out[1] = (char)(0x80 | (v & 0x3f));
        return 2;
    }
    if (v < 0x10000 || room < 4) {
        if (room < 3) {
            out[0] = (char)(v & 0xff);
            return 1;
        }
        out[0] = (char)(0xe0 | ((v >> 12) & 0x0f));
        out[1] = (char)(0x80 | ((v >> 6) & 0x3f));
        out[2] = (char)(0x80 | (v & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | ((v >> 18) & 0x07));
    out[1] = (char)(0x80 | ((v >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((v >> 6) & 0x3f));
    out[3] = (char)(0x80 | (v & 0x3f));
    return 4;
}

static const struct {
    const char *name;
    char c;
} entities[] = {{"quot", '"'},   {"amp", '&'},   {"lt", '<'},       {"gt", '>'},   {"apos", '\''},
                {"nbsp", ' '},   {"colon", ':'}, {"lpar", '('},     {"rpar", ')'}, {"sol", '/'},
                {"bsol", '\\'},  {"Tab", '\t'},  {"NewLine", '\n'}, {"semi", ';'}, {"comma", ','},
                {"period", '.'}, {"grave", '`'}, {"equals", '='},   {"excl", '!'}, {"quest", '?'}};

/* Entities with or without the closing ';', as browsers are lenient about it. */
static size_t html_decode(const char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '&') {
            out[o++] = in[i++];
            continue;
        }
        size_t j = i + 1;
        if (j < n && in[j] == '#') {
            j++;
            bool hex = j < n && (in[j] == 'x' || in[j] == 'X');
            if (hex)
                j++;
            size_t start = j;
            unsigned long v = 0;
            while (j < n && (hex ? sl_hex_digit((unsigned char)in[j]) >= 0
                                 : (in[j] >= '0' && in[j] <= '9'))) {
                if (v < 0x110000)
                    v = v * (hex ? 16 : 10) +
                        (unsigned long)(hex ? sl_hex_digit((unsigned char)in[j]) : in[j] - '0');
                j++;
            }
            if (j > start) {
                if (j < n && in[j] == ';')
                    j++;
                if (v >= 0x110000)
                    v = 0xfffd;
                o += put_cp(out + o, v, j - i);
                i = j;
                continue;
            }
        } else {
            size_t k;
            for (k = 0; k < sizeof entities / sizeof entities[0]; k++) {
                size_t len = strlen(entities[k].name);
                if (j + len <= n && memcmp(in + j, entities[k].name, len) == 0) {
                    j += len;
                    if (j < n && in[j] == ';')
                        j++;
                    out[o++] = entities[k].c;
                    i = j;
                    break;
                }
            }
            if (k < sizeof entities / sizeof entities[0])
                continue;
        }
        out[o++] = in[i++];
    }
    return o;
}

static size_t compress_ws(const char *in, size_t n, char *out) {
    size_t o = 0;
    bool in_ws = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space((unsigned char)in[i])) {
            if (!in_ws)
                out[o++] = ' ';
            in_ws = true;
        } else {
            out[o++] = in[i];
            in_ws = false;
        }
    }
    return o;
}

/* Windows/Unix command-line evasions: drop \ " ' ^, drop spaces before / and (, turn , and ;
 * into spaces, squeeze spaces, lowercase. */
static size_t cmd_line(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\' || c == '"' || c == '\'' || c == '^')
            continue;
        if (c == ',' || c == ';' || is_space(c)) {
            if (o == 0 || out[o - 1] != ' ')
                out[o++] = ' ';
            continue;
        }
        if ((c == '/' || c == '(') && o > 0 && out[o - 1] == ' ')
            o--;
        out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    return o;
}

/* Removes "//" runs, "/./" and "x/../" (a leading "../" stays: nothing to climb out of). */
static size_t normalize_path(const char *in, size_t n, char *out, bool win) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (win && c == '\\')
            c = '/';
        out[o++] = c;
        if (c != '/')
            continue;
        /* out ends with '/': look at the segment just closed. */
        if (o >= 2 && out[o - 2] == '/') {
            o--; /* "//" */
        } else if (o >= 3 && out[o - 2] == '.' && out[o - 3] == '/') {
            o -= 2; /* "/./" */
        } else if (o == 2 && out[0] == '.') {
            o = 0; /* leading "./" */
        } else if (o >= 4 && out[o - 2] == '.' && out[o - 3] == '.' && out[o - 4] == '/') {
            /* "/../": drop the previous segment when there is one */
            size_t seg = o - 4;
            if (seg == 0) {
                continue; /* "/../" at the root stays */
            }
            size_t p = seg;
            while (p > 0 && out[p - 1] != '/')
                p--;
            if (!(seg - p == 2 && out[p] == '.' && out[p + 1] == '.'))
                o = p;
        }
    }
    /* A trailing "/." or "/.." segment without a slash after it. */
    if (o >= 2 && out[o - 1] == '.' && out[o - 2] == '/')
        o--;
    return o;
}

static size_t remove_nulls(const char *in, size_t n, char *out, bool replace) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i])
            out[o++] = in[i];
        else if (replace)
            out[o++] = ' ';
    }
    return o;
}

/* C-style comments become one space; an unterminated one at the end too. A lone "*" + "/"
 * closer is dropped as MySQL accepts it. */
static size_t replace_comments(const char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    while (i < n) {
        if (i + 1 < n && in[i] == '/' && in[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < n && !(in[j] == '*' && in[j + 1] == '/'))
                j++;
            out[o++] = ' ';
            i = j + 1 < n ? j + 2 : n;
        } else if (i + 1 < n && in[i] == '*' && in[i + 1] == '/') {
            i += 2;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

/* Backslash escapes: JavaScript (\uXXXX too) or ANSI C. */
static size_t escape_decode(const char *in, size_t n, char *out, bool js) {
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '\\' || i + 1 >= n) {
            out[o++] = in[i++];
            continue;
        }
        char c = in[i + 1];
        if (js && (c == 'u' || c == 'U') && i + 5 < n &&
            sl_hex_digit((unsigned char)in[i + 2]) >= 0 &&
            sl_hex_digit((unsigned char)in[i + 3]) >= 0 &&
            sl_hex_digit((unsigned char)in[i + 4]) >= 0 &&
            sl_hex_digit((unsigned char)in[i + 5]) >= 0) {
            unsigned v = 0;
            for (size_t k = 2; k < 6; k++)
                v = v * 16 + (unsigned)sl_hex_digit((unsigned char)in[i + k]);
            out[o++] = uni_byte(v);
            i += 6;
        } else if ((c == 'x' || c == 'X') && i + 3 < n &&
                   sl_hex_digit((unsigned char)in[i + 2]) >= 0 &&
                   sl_hex_digit((unsigned char)in[i + 3]) >= 0) {
            out[o++] = (char)(sl_hex_digit((unsigned char)in[i + 2]) * 16 +
                              sl_hex_digit((unsigned char)in[i + 3]));
            i += 4;
        } else if (c >= '0' && c <= '7') {
            unsigned v = 0;
            size_t j = i + 1;
            while (j < n && j < i + 4 && in[j] >= '0' && in[j] <= '7')
                v = v * 8 + (unsigned)(in[j++] - '0');
            out[o++] = (char)(v & 0xff);
            i = j;
        } else {
            static const char from[] = "abfnrtv";
            static const char to[] = "\a\b\f\n\r\t\v";
            const char *p = c ? strchr(from, c) : NULL;
            out[o++] = p ? to[p - from] : c;
            i += 2;
        }
    }
    return o;
}

/* CSS: "\" + 1..6 hex digits (+ one optional space), "\" + newline vanishes, "\" + x is x. */
static size_t css_decode(const char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    while (i < n) {
        if (in[i] != '\\' || i + 1 >= n) {
            out[o++] = in[i++];
            continue;
        }
        size_t j = i + 1;
        unsigned long v = 0;
        while (j < n && j < i + 7 && sl_hex_digit((unsigned char)in[j]) >= 0)
            v = v * 16 + (unsigned long)sl_hex_digit((unsigned char)in[j++]);
        if (j > i + 1) {
            if (j < n && is_space((unsigned char)in[j]))
                j++;
            out[o++] = uni_byte((unsigned)(v & 0xffff)); /* full-width folds like %u */
            i = j;
        } else if (in[j] == '\n') {
            i = j + 1;
        } else {
            out[o++] = in[j];
            i = j + 1;
        }
    }
    return o;
}

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes until the first character outside the alphabet (or skips them with `ext`). */
static size_t base64_decode(const char *in, size_t n, char *out, bool ext) {
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            if (in[i] == '=' && !ext)
                break;
            if (ext)
                continue;
            break;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return o;
}

static size_t hex_decode(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        int h = sl_hex_digit((unsigned char)in[i]), l = sl_hex_digit((unsigned char)in[i + 1]);
        if (h < 0 || l < 0)
            break;
        out[o++] = (char)(h * 16 + l);
    }
    return o;
}

/* MySQL hex literals: 0x414243 -> ABC wherever they appear. */
static size_t sql_hex_decode(const char *in, size_t n, char *out) {
    size_t o = 0, i = 0;
    while (i < n) {
        if (i + 3 < n && in[i] == '0' && (in[i + 1] == 'x' || in[i + 1] == 'X') &&
            sl_hex_digit((unsigned char)in[i + 2]) >= 0 &&
            sl_hex_digit((unsigned char)in[i + 3]) >= 0) {
            size_t j = i + 2;
            while (j + 1 < n && sl_hex_digit((unsigned char)in[j]) >= 0 &&
                   sl_hex_digit((unsigned char)in[j + 1]) >= 0) {
                out[o++] = (char)(sl_hex_digit((unsigned char)in[j]) * 16 +
                                  sl_hex_digit((unsigned char)in[j + 1]));
                j += 2;
            }
            i = j;
        } else {
            out[o++] = in[i++];
        }
    }
    return o;
}

size_t gw_waf_transform(enum gw_waf_tx t, const char *in, size_t n, char *out) {
    switch (t) {
    case GW_TX_URL_DECODE:
        return url_decode(in, n, out, false);
    case GW_TX_URL_DECODE_UNI:
        return url_decode(in, n, out, true);
    case GW_TX_HTML_ENTITY_DECODE:
        return html_decode(in, n, out);
    case GW_TX_LOWERCASE:
        for (size_t i = 0; i < n; i++)
            out[i] = (char)((in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i]);
        return n;
    case GW_TX_COMPRESS_WHITE_SPACE:
        return compress_ws(in, n, out);
    case GW_TX_CMD_LINE:
        return cmd_line(in, n, out);
    case GW_TX_NORMALIZE_PATH:
        return normalize_path(in, n, out, false);
    case GW_TX_NORMALIZE_PATH_WIN:
        return normalize_path(in, n, out, true);
    case GW_TX_REMOVE_NULLS:
        return remove_nulls(in, n, out, false);
    case GW_TX_REPLACE_NULLS:
        return remove_nulls(in, n, out, true);
    case GW_TX_REPLACE_COMMENTS:
        return replace_comments(in, n, out);
    case GW_TX_JS_DECODE:
        return escape_decode(in, n, out, true);
    case GW_TX_ESCAPE_SEQ_DECODE:
        return escape_decode(in, n, out, false);
    case GW_TX_CSS_DECODE:
        return css_decode(in, n, out);
    case GW_TX_BASE64_DECODE:
        return base64_decode(in, n, out, false);
    case GW_TX_BASE64_DECODE_EXT:
        return base64_decode(in, n, out, true);
    case GW_TX_HEX_DECODE:
        return hex_decode(in, n, out);
    case GW_TX_SQL_HEX_DECODE:
        return sql_hex_decode(in, n, out);
    case GW_TX_NONE:
    case GW_TX_COUNT:
        break;
    }
    if (n)
        memmove(out, in, n);
    return n;
}
