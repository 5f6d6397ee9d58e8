/* Cross-site scripting detection: an HTML tag/attribute tokenizer with URL, CSS and JS checks. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/waf_detect.h"

/*
 * How it works. The value is read through a decoder that undoes one more layer of the encodings a
 * browser or script engine would still undo (&#106; &#x6a; &colon; and friends, %XX, \xNN,
 * \uNNNN and the string escapes \" \' \/ \t \n \r of a JSON value), so the tokenizer sees what
 * the browser sees even when the rule forgot a transformation. The tokenizer then walks the text:
 *   - '<' followed by a letter opens a tag: a dangerous element (script, iframe, svg...) is XSS
 *     by itself; otherwise its attributes are read and an event handler (on...), a script URL in
 *     any attribute, CSS expressions in style, or HTML in srcdoc is XSS.
 *   - a quote followed by an event handler and '=' breaks out of an attribute value
 *     (" onmouseover=...); a quote followed by an operator and a script sink call breaks out of a
 *     JavaScript string (';alert(1)//).
 *   - a javascript:, vbscript: or data:text/html URL anywhere (tabs and newlines inside the
 *     scheme are ignored, as browsers do).
 *   - script without HTML: document.cookie, alert(1), x.call`...`, new Function(...).
 *   - markup that makes a parser fetch or run something: <!ENTITY, <?import, XInclude
 *     (<xi:include>), xsi:schemaLocation, server-side includes (<!--#exec ...-->).
 * Text without tags, quotes-then-code or script URLs (prose, JSON, ordinary URLs, 1<2) passes.
 */

/* Decoded characters above this value stand for "some non-ASCII character". */
#define XC_END   (-1)
#define XC_OTHER 0x100

struct rd {
    const unsigned char *s;
    size_t n;
};

struct named_entity {
    const char *name;
    int c;
    bool legacy; /* accepted by browsers without the trailing ';' */
};

static const struct named_entity entities[] = {
    {"Tab", '\t', false},     {"NewLine", '\n', false}, {"tab", '\t', false},
    {"newline", '\n', false}, {"excl", '!', false},     {"quot", '"', true},
    {"QUOT", '"', true},      {"num", '#', false},      {"amp", '&', true},
    {"AMP", '&', true},       {"apos", '\'', false},    {"lpar", '(', false},
    {"rpar", ')', false},     {"comma", ',', false},    {"period", '.', false},
    {"sol", '/', false},      {"colon", ':', false},    {"semi", ';', false},
    {"lt", '<', true},        {"LT", '<', true},        {"equals", '=', false},
    {"gt", '>', true},        {"GT", '>', true},        {"bsol", '\\', false},
    {"grave", '`', false},    {"nbsp", ' ', true},      {"lsqb", '[', false},
    {"rsqb", ']', false},     {"lowbar", '_', false},   {"plus", '+', false},
    {"quest", '?', false},    {"commat", '@', false},
};

/* Elements that run script or load active content by themselves. */
static const char *const bad_tags[] = {
    "applet", "base",    "bgsound",  "embed",    "frame",    "frameset", "iframe", "ilayer",
    "import", "isindex", "layer",    "link",     "math",     "meta",     "object", "script",
    "style",  "svg",     "template", "noscript", "vmlframe", "xss",      "portal", "handler",
};

/* Event handler names recognised outside a tag (inside a tag any on... attribute counts). */
static const char *const handlers[] = {
    "onabort",
    "onactivate",
    "onafterprint",
    "onanimationend",
    "onanimationiteration",
    "onanimationstart",
    "onauxclick",
    "onbeforecopy",
    "onbeforecut",
    "onbeforeinput",
    "onbeforepaste",
    "onbeforeprint",
    "onbeforeunload",
    "onbegin",
    "onblur",
    "onbounce",
    "oncanplay",
    "oncanplaythrough",
    "onchange",
    "onclick",
    "onclose",
    "oncontextmenu",
    "oncopy",
    "oncuechange",
    "oncut",
    "ondblclick",
    "ondrag",
    "ondragend",
    "ondragenter",
    "ondragleave",
    "ondragover",
    "ondragstart",
    "ondrop",
    "ondurationchange",
    "onend",
    "onended",
    "onerror",
    "onfinish",
    "onfocus",
    "onfocusin",
    "onfocusout",
    "onformdata",
    "onfullscreenchange",
    "onhashchange",
    "oninput",
    "oninvalid",
    "onkeydown",
    "onkeypress",
    "onkeyup",
    "onload",
    "onloadeddata",
    "onloadedmetadata",
    "onloadstart",
    "onmessage",
    "onmousedown",
    "onmouseenter",
    "onmouseleave",
    "onmousemove",
    "onmouseout",
    "onmouseover",
    "onmouseup",
    "onmousewheel",
    "onpageshow",
    "onpaste",
    "onpause",
    "onplay",
    "onplaying",
    "onpointerdown",
    "onpointerenter",
    "onpointerleave",
    "onpointermove",
    "onpointerout",
    "onpointerover",
    "onpointerup",
    "onpopstate",
    "onprogress",
    "onratechange",
    "onrepeat",
    "onreset",
    "onresize",
    "onscroll",
    "onscrollend",
    "onsearch",
    "onseeked",
    "onseeking",
    "onselect",
    "onselectionchange",
    "onselectstart",
    "onshow",
    "onstart",
    "onstorage",
    "onsubmit",
    "onsuspend",
    "ontimeupdate",
    "ontoggle",
    "ontouchend",
    "ontouchmove",
    "ontouchstart",
    "ontransitionend",
    "onunload",
    "onvolumechange",
    "onwaiting",
    "onwheel",
};

/* Members of document/window that only script touches. */
static const char *const dom_members[] = {
    "cookie",        "domain",         "write",          "writeln",         "location",
    "createelement", "queryselector",  "body",           "innerhtml",       "outerhtml",
    "localstorage",  "sessionstorage", "execscript",     "alert",           "eval",
    "open",          "href",           "getelementbyid", "documentelement", "referrer",
};

/* Calls that are script even as a whole value: alert(1), eval('..'), setTimeout(..). */
static const char *const bare_calls[] = {
    "alert",      "prompt",       "confirm", "eval", "settimeout",  "setinterval",
    "execscript", "fromcharcode", "atob",    "btoa", "constructor",
};

/* Script sinks worth calling right after breaking out of a JavaScript string. */
static const char *const sinks[] = {
    "alert",  "confirm",  "prompt",      "eval",     "settimeout", "setinterval", "function",
    "fetch",  "import",   "constructor", "document", "window",     "top",         "self",
    "parent", "location", "string",      "atob",     "javascript",
};

/* URL schemes that execute or render script when followed. */
static const char *const bad_schemes[] = {
    "javascript:",    "vbscript:",      "livescript:",        "mocha:",
    "data:text/html", "data:image/svg", "data:application/x", "data:text/xml",
};

static int lower(int c) {
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int clamp(unsigned long v) {
    /* Fullwidth forms (U+FF01..U+FF5E) are folded to ASCII by some back ends: ＜script＞. */
    if (v >= 0xff01 && v <= 0xff5e)
        return (int)(v - 0xfee0);
    return v < 0x100 ? (int)v : XC_OTHER;
}

/* Legacy 7-bit tricks: an escaped 0xBC/0xBE byte is '<'/'>' to a US-ASCII page. */
static int fold_byte(int v) {
    return v == 0xbc ? '<' : v == 0xbe ? '>' : v;
}

/* Decodes a numeric character reference at s[i] == '&' '#'; returns the char or XC_END. */
static int numeric_ref(const struct rd *r, size_t i, size_t *next) {
    size_t k = i + 2;
    bool hex = k < r->n && lower(r->s[k]) == 'x';
    if (hex)
        k++;
    size_t digits = k;
    unsigned long v = 0;
    while (k < r->n) {
        int d =
            hex ? sl_hex_digit(r->s[k]) : (r->s[k] >= '0' && r->s[k] <= '9' ? r->s[k] - '0' : -1);
        if (d < 0)
            break;
        if (v < 0x110000)
            v = v * (hex ? 16 : 10) + (unsigned long)d;
        k++;
    }
    if (k == digits)
        return XC_END;
    if (k < r->n && r->s[k] == ';')
        k++;
    *next = k;
    return clamp(v);
}

static int named_ref(const struct rd *r, size_t i, size_t *next) {
    for (size_t e = 0; e < sizeof entities / sizeof entities[0]; e++) {
        size_t len = strlen(entities[e].name);
        if (i + 1 + len > r->n || memcmp(r->s + i + 1, entities[e].name, len) != 0)
            continue;
        size_t k = i + 1 + len;
        if (k < r->n && r->s[k] == ';') {
            *next = k + 1;
            return entities[e].c;
        }
        if (entities[e].legacy) {
            *next = k;
            return entities[e].c;
        }
    }
    return XC_END;
}

/* Bytes that may start an encoded form (dc_encoded); every other byte stands for itself. */
static const bool starts_encoding[256] = {
    ['&'] = true, ['%'] = true, ['\\'] = true, [0xef] = true, ['+'] = true};

static int dc_encoded(const struct rd *r, size_t i, size_t *next);

/*
 * The decoded character at s[i] (XC_END past the end); *next is where the following one starts.
 * Inline for the plain byte, which is nearly every byte the tokenizer reads.
 */
static inline int dc(const struct rd *r, size_t i, size_t *next) {
    if (i >= r->n) {
        *next = r->n;
        return XC_END;
    }
    unsigned char c = r->s[i];
    *next = i + 1;
    return starts_encoding[c] ? dc_encoded(r, i, next) : c;
}

static int dc_encoded(const struct rd *r, size_t i, size_t *next) {
    unsigned char c = r->s[i];
    if (c == '&' && i + 1 < r->n) {
        int v = r->s[i + 1] == '#' ? numeric_ref(r, i, next) : named_ref(r, i, next);
        if (v != XC_END)
            return v;
        *next = i + 1;
    } else if (c == '%' && i + 2 < r->n && sl_hex_digit(r->s[i + 1]) >= 0 &&
               sl_hex_digit(r->s[i + 2]) >= 0) {
        *next = i + 3;
        return fold_byte(sl_hex_digit(r->s[i + 1]) * 16 + sl_hex_digit(r->s[i + 2]));
    } else if (c == '\\' && i + 3 < r->n && lower(r->s[i + 1]) == 'x' &&
               sl_hex_digit(r->s[i + 2]) >= 0 && sl_hex_digit(r->s[i + 3]) >= 0) {
        *next = i + 4;
        return fold_byte(sl_hex_digit(r->s[i + 2]) * 16 + sl_hex_digit(r->s[i + 3]));
    } else if (c == '\\' && i + 1 < r->n &&
               (r->s[i + 1] == '"' || r->s[i + 1] == '\'' || r->s[i + 1] == '/')) {
        /* A JSON or JavaScript string escape: the page gets the bare character once the string
         * is decoded, so <a href=\"javascript:...\"> in a JSON value is a quoted attribute. */
        *next = i + 2;
        return r->s[i + 1];
    } else if (c == '\\' && i + 1 < r->n &&
               (r->s[i + 1] == 't' || r->s[i + 1] == 'n' || r->s[i + 1] == 'r')) {
        *next = i + 2; /* and java\tscript: is javascript: to a browser */
        return r->s[i + 1] == 't' ? '\t' : r->s[i + 1] == 'n' ? '\n' : '\r';
    } else if (c == 0xef && i + 2 < r->n && r->s[i + 1] == 0xbc &&
               (r->s[i + 2] == 0x9c || r->s[i + 2] == 0x9e)) {
        *next = i + 3; /* UTF-8 fullwidth < and > */
        return r->s[i + 2] == 0x9c ? '<' : '>';
    } else if (c == '+' && i + 4 < r->n && r->s[i + 1] == 'A' && r->s[i + 2] == 'D' &&
               (r->s[i + 3] == 'w' || r->s[i + 3] == '4') && r->s[i + 4] == '-') {
        *next = i + 5; /* UTF-7 +ADw- and +AD4- */
        return r->s[i + 3] == 'w' ? '<' : '>';
    } else if ((c == '\\' || c == '%') && i + 5 < r->n && lower(r->s[i + 1]) == 'u' &&
               sl_hex_digit(r->s[i + 2]) >= 0 && sl_hex_digit(r->s[i + 3]) >= 0 &&
               sl_hex_digit(r->s[i + 4]) >= 0 && sl_hex_digit(r->s[i + 5]) >= 0) {
        unsigned long v = 0;
        for (size_t k = 2; k < 6; k++)
            v = v * 16 + (unsigned long)sl_hex_digit(r->s[i + k]);
        *next = i + 6;
        return clamp(v);
    }
    return c;
}

static bool is_alpha(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(int c) {
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static bool is_blank(int c) {
    return c >= 0 && c <= 0x20;
}

/* Characters a browser drops from a URL before reading its scheme. */
static bool url_ignorable(int c) {
    return c == '\t' || c == '\n' || c == '\r' || c == 0;
}

static size_t skip_blank(const struct rd *r, size_t i) {
    size_t nx;
    while (is_blank(dc(r, i, &nx)))
        i = nx;
    return i;
}

/*
 * Reads up to `cap` alphanumeric (plus `extra`) decoded characters at i, lower-cased, into buf
 * (NUL-terminated); returns the position after them. A longer run is cut at cap.
 */
static size_t read_name(const struct rd *r, size_t i, char *buf, size_t cap, const char *extra) {
    size_t len = 0, nx;
    for (;;) {
        int c = dc(r, i, &nx);
        if (c == XC_END ||
            !(is_alnum(c) || (extra[0] != '\0' && c < 0x80 && c > 0 && strchr(extra, c) != NULL)))
            break;
        if (len + 1 < cap)
            buf[len++] = (char)lower(c);
        i = nx;
    }
    buf[len] = '\0';
    return i;
}

/* No list holds the empty word; comparing the first byte first skips most strcmp calls (a JSON
 * body has a quote, hence a lookup, every few bytes). */
static bool in_list(const char *w, const char *const *list, size_t count) {
    if (w[0] == '\0')
        return false;
    for (size_t k = 0; k < count; k++)
        if (w[0] == list[k][0] && strcmp(w, list[k]) == 0)
            return true;
    return false;
}

static const char *const js_objects[] = {
    "document", "window", "self", "top", "parent", "globalthis", "constructor",
};

/*
 * True when the decoded text at i starts with `lit` (lower case), case-insensitively, skipping
 * characters browsers ignore inside a URL scheme (and any blank after the ':').
 */
static bool starts_with(const struct rd *r, size_t i, const char *lit) {
    size_t nx;
    for (size_t k = 0; lit[k] != '\0';) {
        int c = dc(r, i, &nx);
        if (c == XC_END)
            return false;
        i = nx;
        bool punct_near =
            lit[k] == ':' || lit[k] == '(' || (k > 0 && (lit[k - 1] == ':' || lit[k - 1] == '('));
        if (url_ignorable(c) || (punct_near && is_blank(c)))
            continue;
        if (lower(c) != (unsigned char)lit[k])
            return false;
        k++;
    }
    return true;
}

/* Whether the decoded text at *i is `lit`, case and all; if so, *i moves past it. */
static bool exactly(const struct rd *r, size_t *i, const char *lit) {
    size_t k = *i, nx;
    for (; *lit; lit++, k = nx)
        if (dc(r, k, &nx) != (unsigned char)*lit)
            return false;
    *i = k;
    return true;
}

static bool is_bad_url(const struct rd *r, size_t i) {
    i = skip_blank(r, i);
    for (size_t k = 0; k < sizeof bad_schemes / sizeof bad_schemes[0]; k++)
        if (starts_with(r, i, bad_schemes[k]))
            return true;
    return false;
}

/* CSS that runs script: expression(...), url(javascript:...), -moz-binding, behavior. */
static bool is_bad_css(const struct rd *r, size_t i, size_t end) {
    size_t nx;
    while (i < end) {
        int c = dc(r, i, &nx);
        if (lower(c) == 'e' && starts_with(r, i, "expression")) {
            size_t k = i;
            for (int m = 0; m < 10; m++)
                dc(r, k, &k);
            if (dc(r, skip_blank(r, k), &nx) == '(')
                return true;
        }
        if ((lower(c) == 'j' || lower(c) == 'v') && is_bad_url(r, i))
            return true;
        if (lower(c) == 'u' &&
            (starts_with(r, i, "url(javascript") || starts_with(r, i, "url(vbscript")))
            return true;
        if (c == '-' && starts_with(r, i, "-moz-binding"))
            return true;
        if (lower(c) == 'b' && starts_with(r, i, "behavior:"))
            return true;
        dc(r, i, &i);
    }
    return false;
}

/* Whether an attribute named `name` with a value at [v, vend) makes the tag run script. */
static bool bad_attribute(const struct rd *r, const char *name, size_t v, size_t vend) {
    if (name[0] == 'o' && name[1] == 'n' && strlen(name) >= 5)
        return true;
    if (strcmp(name, "srcdoc") == 0)
        return true;
    /* An XML schema the parser is told to fetch from wherever the sender likes. */
    if (strcmp(name, "xsi:schemalocation") == 0 ||
        strcmp(name, "xsi:nonamespaceschemalocation") == 0)
        return true;
    if (v < vend && is_bad_url(r, v))
        return true;
    if (strcmp(name, "style") == 0 && is_bad_css(r, v, vend))
        return true;
    return false;
}

static bool scan(const struct rd *r, size_t i, int depth);

/*
 * Reads the tag whose name starts at i (just after '<' or '</'). Returns true when it is XSS;
 * otherwise *end is where the tag stops, so the scan goes on from there and stays linear.
 * Quoted attribute values are scanned as text too (once, to a bounded depth): an XML or HTML
 * document carrying a payload inside an attribute is how many payloads travel.
 */
static bool scan_tag(const struct rd *r, size_t i, size_t *end, int depth) {
    char name[24];
    size_t nx;
    i = read_name(r, i, name, sizeof name, ":-");
    const char *local = strchr(name, ':'); /* svg:script, x:script */
    if (in_list(local != NULL ? local + 1 : name, bad_tags, sizeof bad_tags / sizeof bad_tags[0]))
        return true;
    if (local != NULL && strcmp(local + 1, "include") == 0)
        return true; /* XInclude (xi:include href=...): the parser fetches and inlines a URL */
    for (;;) {
        int c;
        while ((c = dc(r, i, &nx)) != XC_END && (is_blank(c) || c == '/' || c == '"' || c == '\''))
            i = nx;
        if (c == XC_END || c == '>') {
            *end = c == XC_END ? r->n : nx;
            return false;
        }
        char attr[40]; /* room for xsi:noNamespaceSchemaLocation */
        size_t len = 0;
        while ((c = dc(r, i, &nx)) != XC_END && !is_blank(c) && c != '/' && c != '>' &&
               (c != '=' || len == 0)) {
            if (len + 1 < sizeof attr)
                attr[len++] = (char)lower(c);
            i = nx;
        }
        attr[len] = '\0';
        i = skip_blank(r, i);
        size_t v = i, vend = i;
        bool quoted = false;
        if (dc(r, i, &nx) == '=') {
            i = skip_blank(r, nx);
            int q = dc(r, i, &nx);
            if (q == '"' || q == '\'' || q == '`') {
                quoted = true;
                i = v = nx;
                while ((c = dc(r, i, &nx)) != XC_END && c != q)
                    i = nx;
                vend = i;
                if (c != XC_END)
                    i = nx;
            } else {
                v = i;
                while ((c = dc(r, i, &nx)) != XC_END && !is_blank(c) && c != '>')
                    i = nx;
                vend = i;
            }
        }
        if (bad_attribute(r, attr, v, vend))
            return true;
        if (quoted && depth < 2 && vend > v) {
            struct rd sub = {.s = r->s, .n = vend};
            if (scan(&sub, v, depth + 1))
                return true;
        }
    }
}

/* After a quote: an event handler attribute (" onfocus=...) breaking out of a value. */
static bool attr_breakout(const struct rd *r, size_t i, bool any_handler) {
    size_t nx;
    int c;
    while ((c = dc(r, i, &nx)) != XC_END && (is_blank(c) || c == '/'))
        i = nx;
    char name[24];
    i = read_name(r, i, name, sizeof name, "");
    bool on = name[0] == 'o' && name[1] == 'n';
    bool handler =
        (on && in_list(name, handlers, sizeof handlers / sizeof handlers[0])) ||
        (any_handler && name[0] == 'o' && name[1] == 'n' && strlen(name) >= 5) ||
        (any_handler && (strcmp(name, "formaction") == 0 || strcmp(name, "srcdoc") == 0));
    if (!handler)
        return false;
    return dc(r, skip_blank(r, i), &nx) == '=';
}

/* Skips blanks and JavaScript block comments. */
static size_t skip_js_blank(const struct rd *r, size_t i) {
    size_t nx, nx2;
    for (;;) {
        int c = dc(r, i, &nx);
        if (is_blank(c)) {
            i = nx;
        } else if (c == '/' && dc(r, nx, &nx2) == '*') {
            i = nx2;
            for (;;) {
                c = dc(r, i, &nx);
                if (c == XC_END)
                    return i;
                if (c == '*' && dc(r, nx, &nx2) == '/') {
                    i = nx2;
                    break;
                }
                i = nx;
            }
        } else {
            return i;
        }
    }
}

/* After a quote: an operator, then a call of a script sink (';alert(1)//, "-confirm`1`-"). */
static bool js_breakout(const struct rd *r, size_t i) {
    size_t nx;
    int c;
    int ops = 0;
    while ((c = dc(r, i, &nx)) != XC_END &&
           (is_blank(c) || (c < 0x80 && c > 0 && strchr(";+-*/|&,)}^%<>?:=!~", c) != NULL))) {
        if (!is_blank(c))
            ops++;
        i = nx;
    }
    if (ops == 0)
        return false;
    char name[24];
    i = read_name(r, i, name, sizeof name, "");
    if (!in_list(name, sinks, sizeof sinks / sizeof sinks[0]))
        return false;
    /* Allow a member chain such as document.cookie, window['x'] or top.alert before the call. */
    c = dc(r, skip_blank(r, i), &nx);
    return c == '(' || c == '`' || c == '.' || c == '[' || c == '=';
}

/*
 * At a word: script that needs no HTML around it. document.cookie (also with comments and
 * brackets: document/ * * /["cookie"]), window["alert"], alert(1) with no space before the
 * parenthesis, tagged templates (.call`...`), ${alert}, AngularJS constructor.constructor.
 */
static bool js_expression(const struct rd *r, size_t i, bool member_access) {
    char name[24], member[24];
    size_t nx;
    i = read_name(r, i, name, sizeof name, "");
    int c = dc(r, i, &nx);
    /* x.call`...`, Reflect.apply.call`...`: a function called with a template literal. */
    if (((name[0] == 'c' && strcmp(name, "call") == 0) ||
         (name[0] == 'a' && strcmp(name, "apply") == 0)) &&
        dc(r, skip_js_blank(r, i), &nx) == '`')
        return true;
    if (member_access)
        return false; /* the rest is about names that start an expression */
    if ((c == '(' || c == '`') &&
        in_list(name, bare_calls, sizeof bare_calls / sizeof bare_calls[0]))
        return true;
    if (name[0] == 'n' && strcmp(name, "new") == 0) {
        /* new Function("...")(): eval under another name (JavaScript names are case-sensitive:
         * "new function (...)" is prose or a plain function expression). */
        size_t j = skip_js_blank(r, i);
        return exactly(r, &j, "Function") && dc(r, skip_js_blank(r, j), &nx) == '(';
    }
    bool object = in_list(name, js_objects, sizeof js_objects / sizeof js_objects[0]);
    if (!object)
        return false;
    i = skip_js_blank(r, i);
    if (dc(r, i, &nx) == ')')
        i = skip_js_blank(r, nx);
    c = dc(r, i, &nx);
    if (c != '.' && c != '[')
        return false;
    bool bracket = c == '[';
    i = skip_js_blank(r, nx);
    c = dc(r, i, &nx);
    bool quoted = c == '"' || c == '\'' || c == '`';
    if (quoted)
        i = nx;
    if (bracket && !quoted)
        return false;
    read_name(r, i, member, sizeof member, "$");
    if (bracket && strcmp(name, "document") != 0)
        return true; /* window["..."], self["$"]: computed access to the global object */
    return in_list(member, dom_members, sizeof dom_members / sizeof dom_members[0]) ||
           strcmp(member, "constructor") == 0;
}

/* At '!': JSFuck-style ![] (but not a Markdown image, ![alt](url)). */
static bool jsfuck(const struct rd *r, size_t i) {
    size_t nx;
    i = skip_blank(r, i);
    if (dc(r, i, &nx) != '[')
        return false;
    i = skip_blank(r, nx);
    if (dc(r, i, &nx) != ']')
        return false;
    return dc(r, skip_blank(r, nx), &nx) != '(';
}

/* Server-side include directives: <!--#exec cmd=...-->, <!--#include virtual=...--> and kin. */
static const char *const ssi_directives[] = {
    "exec", "include", "echo", "set", "config", "printenv", "fsize", "flastmod",
};

/* At what follows "<!": "--#" and a directive name. */
static bool ssi_directive(const struct rd *r, size_t i) {
    if (!exactly(r, &i, "--#"))
        return false;
    char name[12];
    read_name(r, i, name, sizeof name, "");
    return in_list(name, ssi_directives, sizeof ssi_directives / sizeof ssi_directives[0]);
}

static bool scan(const struct rd *r, size_t i, int depth) {
    size_t nx, after;
    int prev = ' ', prev_nb = ' ';
    while (i < r->n) {
        int c = dc(r, i, &nx);
        if (c == '<') {
            size_t k = nx;
            int first = dc(r, k, &after);
            if (first == '/') {
                k = after;
                first = dc(r, k, &after);
            }
            size_t after2;
            if (is_alpha(first) || (first == ':' && is_alpha(dc(r, after, &after2)))) {
                size_t end = nx;
                if (scan_tag(r, k, &end, depth))
                    return true;
                i = end;
                prev = prev_nb = '>';
                continue;
            }
            if (first == '?' || first == '!') {
                /* <?import (IE behaviours) and <!ENTITY (XML entities that fetch URLs). */
                char name[12];
                read_name(r, after, name, sizeof name, "");
                if (strcmp(name, "import") == 0 || strcmp(name, "entity") == 0)
                    return true;
                if (first == '!' && ssi_directive(r, after))
                    return true;
            }
        } else if (c == '"' || c == '\'' || c == '`') {
            if (attr_breakout(r, nx, true) || js_breakout(r, nx))
                return true;
        } else if (c == '!' && jsfuck(r, nx)) {
            return true;
        } else if (c == '$' && dc(r, nx, &after) == '{') {
            char name[24];
            read_name(r, skip_blank(r, after), name, sizeof name, "");
            if (in_list(name, sinks, sizeof sinks / sizeof sinks[0]))
                return true;
        } else if (is_alpha(c) && !is_alnum(prev)) {
            int l = lower(c);
            if ((l == 'j' || l == 'v' || l == 'l' || l == 'd' || l == 'm') && is_bad_url(r, i))
                return true;
            if (l == 'o' && attr_breakout(r, i, false))
                return true;
            /* expression( only after a CSS ':', so "regular expression (regex)" stays prose. */
            if (((l == 'e' && prev_nb == ':') || l == 'b' || l == 'u') && is_bad_css(r, i, nx))
                return true;
            if (js_expression(r, i, prev == '.'))
                return true;
            /* Nothing inside a word starts a check: go to its last character at once. */
            int w;
            while ((w = dc(r, nx, &after)) != XC_END && is_alnum(w)) {
                c = w;
                nx = after;
            }
        } else if (c == '-' && is_bad_css(r, i, nx)) {
            return true;
        }
        prev = c;
        if (!is_blank(c))
            prev_nb = c;
        i = nx;
    }
    return false;
}

bool sl_waf_xss(const char *s, size_t n) {
    if (s == NULL || n == 0)
        return false;
    struct rd r = {.s = (const unsigned char *)s, .n = n};
    return scan(&r, 0, 0);
}
