/* Loading, validating and matching the shared routes file. */
#include "sluice/routes.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/error.h"

#define ROUTES_FILE_MAX (1u << 20)

static const char *const known_methods[] = {"ANY",  "GET",     "POST",  "PUT", "DELETE",
                                            "HEAD", "OPTIONS", "PATCH", NULL};
static const char *const known_handlers[] = {"echo", "http", "plugin", NULL};

static int in_list(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

static void free_route(struct sl_route *rt) {
    free(rt->method);
    free(rt->path);
    free(rt->handler);
    free(rt->upstream);
    free(rt->plugin);
    free(rt->segs);
}

void sl_routes_free(struct sl_routes *r) {
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free_route(&r->routes[i]);
    free(r->routes);
    free(r);
}

static int fail(struct sl_buf *err, size_t i, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends "routes[i].field: <message>\n" to err and returns SL_ERR_CONFIG. */
static int fail(struct sl_buf *err, size_t i, const char *field, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        sl_buf_printf(err, "routes[%zu].%s: ", i, field);
        sl_buf_vprintf(err, fmt, ap);
        sl_buf_append_str(err, "\n");
        va_end(ap);
    }
    return SL_ERR_CONFIG;
}

static int valid_param_name(const char *p, size_t n) {
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Splits "/a/{b}/{c+}" into segments pointing into rt->path. */
static int compile_path(struct sl_route *rt, struct sl_buf *err) {
    const char *p = rt->path;
    size_t len = strlen(p);
    if (len == 0 || p[0] != '/')
        return fail(err, rt->index, "path", "\"%s\" must start with '/'", p);
    if (len == 1) {
        rt->nsegs = 0; /* the root resource */
        return 0;
    }
    size_t n = 1;
    for (size_t i = 1; i < len; i++)
        n += p[i] == '/';
    rt->segs = calloc(n, sizeof *rt->segs);
    if (!rt->segs)
        return -ENOMEM;
    const char *s = p + 1;
    for (size_t k = 0; k < n; k++) {
        const char *slash = strchr(s, '/');
        size_t slen = slash ? (size_t)(slash - s) : strlen(s);
        struct sl_route_seg *seg = &rt->segs[k];
        if (slen == 0)
            return fail(err, rt->index, "path", "\"%s\" has an empty segment", p);
        if (s[0] == '{') {
            if (s[slen - 1] != '}')
                return fail(err, rt->index, "path", "\"%s\" has an unclosed '{'", p);
            int greedy = slen > 3 && s[slen - 2] == '+';
            size_t nlen = slen - 2 - (greedy ? 1 : 0);
            if (!valid_param_name(s + 1, nlen))
                return fail(err, rt->index, "path", "\"%s\" has an invalid parameter name", p);
            if (greedy && k != n - 1)
                return fail(err, rt->index, "path",
                            "\"%s\": a greedy parameter {name+} must be the last segment", p);
            seg->kind = greedy ? SL_SEG_GREEDY : SL_SEG_PARAM;
            seg->text = (struct sl_str){.p = s + 1, .len = nlen};
            for (size_t j = 0; j < k; j++)
                if (rt->segs[j].kind != SL_SEG_LITERAL && rt->segs[j].text.len == nlen &&
                    !memcmp(rt->segs[j].text.p, s + 1, nlen))
                    return fail(err, rt->index, "path", "\"%s\" repeats a parameter name", p);
        } else {
            if (memchr(s, '{', slen) || memchr(s, '}', slen))
                return fail(err, rt->index, "path",
                            "\"%s\": braces are only allowed around a whole segment", p);
            seg->kind = SL_SEG_LITERAL;
            seg->text = (struct sl_str){.p = s, .len = slen};
        }
        s += slen + 1;
    }
    rt->nsegs = n;
    if (n > 30) /* ranks are base-3 digits of a double: 30 stay exact */
        return fail(err, rt->index, "path", "\"%s\" has too many segments", p);
    return 0;
}

static int get_string(const cJSON *obj, const char *name, int required, char **out, size_t i,
                      struct sl_buf *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return fail(err, i, name, "%s", "is required");
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return fail(err, i, name, "%s", "must be a non-empty string");
    *out = strdup(v->valuestring);
    return *out ? 0 : -ENOMEM;
}

static int parse_route(const cJSON *item, size_t i, struct sl_route *rt, struct sl_buf *err) {
    rt->index = i;
    if (!cJSON_IsObject(item))
        return fail(err, i, "", "%s", "must be an object");
    static const char *const allowed[] = {"method",  "path",     "api_key_required", "timeout_ms",
                                          "handler", "upstream", "plugin",           NULL};
    for (const cJSON *f = item->child; f; f = f->next)
        if (!in_list(f->string, allowed))
            return fail(err, i, f->string, "%s", "is not a known field");
    int rc;
    if ((rc = get_string(item, "method", 1, &rt->method, i, err)) < 0 ||
        (rc = get_string(item, "path", 1, &rt->path, i, err)) < 0 ||
        (rc = get_string(item, "handler", 0, &rt->handler, i, err)) < 0 ||
        (rc = get_string(item, "upstream", 0, &rt->upstream, i, err)) < 0 ||
        (rc = get_string(item, "plugin", 0, &rt->plugin, i, err)) < 0)
        return rc;
    if (!in_list(rt->method, known_methods))
        return fail(err, i, "method",
                    "\"%s\" is not one of ANY, GET, POST, PUT, DELETE, HEAD, "
                    "OPTIONS, PATCH",
                    rt->method);
    if (!rt->handler && !(rt->handler = strdup("echo")))
        return -ENOMEM;
    if (!in_list(rt->handler, known_handlers))
        return fail(err, i, "handler", "\"%s\" is not one of echo, http, plugin", rt->handler);
    if (!strcmp(rt->handler, "http")) {
        if (!rt->upstream)
            return fail(err, i, "upstream", "%s", "is required for handler \"http\"");
        if (strncmp(rt->upstream, "http://", 7) && strncmp(rt->upstream, "https://", 8))
            return fail(err, i, "upstream", "\"%s\" must be an http:// or https:// URL",
                        rt->upstream);
    } else if (rt->upstream) {
        return fail(err, i, "upstream", "%s", "is only allowed with handler \"http\"");
    }
    if (!strcmp(rt->handler, "plugin") && !rt->plugin)
        return fail(err, i, "plugin", "%s", "is required for handler \"plugin\"");
    if (strcmp(rt->handler, "plugin") && rt->plugin)
        return fail(err, i, "plugin", "%s", "is only allowed with handler \"plugin\"");

    const cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "api_key_required");
    if (key && !cJSON_IsBool(key))
        return fail(err, i, "api_key_required", "%s", "must be true or false");
    rt->api_key_required = key ? cJSON_IsTrue(key) : 1; /* secure by default */

    const cJSON *to = cJSON_GetObjectItemCaseSensitive(item, "timeout_ms");
    if (to) {
        double d = cJSON_IsNumber(to) ? to->valuedouble : -1;
        if (d < 50 || d > 900000 || floor(d) != d)
            return fail(err, i, "timeout_ms", "%s", "must be an integer from 50 to 900000");
        rt->timeout_ms = (int64_t)d;
    }
    return compile_path(rt, err);
}

/* Two routes collide when the same method has the same shape (parameter names aside). */
static int same_shape(const struct sl_route *a, const struct sl_route *b) {
    if (strcmp(a->method, b->method) || a->nsegs != b->nsegs)
        return 0;
    for (size_t k = 0; k < a->nsegs; k++) {
        const struct sl_route_seg *x = &a->segs[k], *y = &b->segs[k];
        if (x->kind != y->kind)
            return 0;
        if (x->kind == SL_SEG_LITERAL &&
            (x->text.len != y->text.len || memcmp(x->text.p, y->text.p, x->text.len)))
            return 0;
    }
    return 1;
}

int sl_routes_parse(const char *json, size_t len, struct sl_routes **out, struct sl_buf *err) {
    *out = NULL;
    cJSON *doc = cJSON_ParseWithLength(json, len);
    if (!doc) {
        if (err)
            sl_buf_append_str(err, "routes: not valid JSON\n");
        return SL_ERR_PARSE;
    }
    int rc = 0;
    struct sl_routes *r = NULL;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "routes");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(list)) {
        if (err)
            sl_buf_append_str(err, "routes: expected an object with a \"routes\" array\n");
        rc = SL_ERR_CONFIG;
        goto out;
    }
    int n = cJSON_GetArraySize(list);
    if (n < 1 || n > SL_ROUTES_MAX) {
        if (err)
            sl_buf_printf(err, "routes: expected 1 to %d routes, found %d\n", SL_ROUTES_MAX, n);
        rc = SL_ERR_CONFIG;
        goto out;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->routes = calloc((size_t)n, sizeof *r->routes))) {
        rc = -ENOMEM;
        goto out;
    }
    size_t i = 0;
    for (const cJSON *item = list->child; item; item = item->next, i++) {
        r->n = i + 1;
        if ((rc = parse_route(item, i, &r->routes[i], err)) < 0)
            goto out;
        for (size_t j = 0; j < i; j++)
            if (same_shape(&r->routes[j], &r->routes[i])) {
                rc = fail(err, i, "path", "duplicates routes[%zu]", j);
                goto out;
            }
    }
out:
    cJSON_Delete(doc);
    if (rc < 0) {
        sl_routes_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

/* Appends each line of `text` to err as "SLUICE_ROUTES_FILE: <path>: <line>": every service
 * loads the file from that setting, and an operator should see which setting to fix. */
static void append_named(struct sl_buf *err, const char *path, const struct sl_buf *text) {
    const char *p = text->data ? text->data : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        sl_buf_printf(err, "SLUICE_ROUTES_FILE: %s: %.*s\n", path, (int)n, p);
        p += n + (nl != NULL);
    }
}

int sl_routes_load_file(const char *path, struct sl_routes **out, struct sl_buf *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (err)
            sl_buf_printf(err, "SLUICE_ROUTES_FILE: %s: %s\n", path, strerror(e));
        return -e;
    }
    struct sl_buf text, problems;
    sl_buf_init(&text, ROUTES_FILE_MAX);
    sl_buf_init(&problems, 1 << 16);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = sl_buf_append(&text, chunk, n);
    fclose(f);
    if (rc < 0) {
        if (err)
            sl_buf_printf(err, "SLUICE_ROUTES_FILE: %s: larger than %u bytes\n", path,
                          ROUTES_FILE_MAX);
    } else {
        rc = sl_routes_parse(text.data ? text.data : "", text.len, out, &problems);
        if (err)
            append_named(err, path, &problems);
    }
    sl_buf_free(&problems);
    sl_buf_free(&text);
    return rc;
}

int sl_routes_default(struct sl_routes **out) {
    static const char seed[] =
        "{\"routes\":[{\"method\":\"ANY\",\"path\":\"/{proxy+}\",\"api_key_required\":true,"
        "\"handler\":\"echo\"}]}";
    return sl_routes_parse(seed, sizeof seed - 1, out, NULL);
}

/*
 * Scores a route against the path's segments. Returns -1 when it does not match; otherwise a
 * rank where, segment by segment, literal (2) > param (1) > greedy (0), compared
 * lexicographically by encoding each segment's rank as a base-3 digit (greedy ends the path).
 */
static double match_route(const struct sl_route *rt, const char *path, size_t plen,
                          struct sl_route_match *m) {
    size_t pos = 1; /* after the leading '/' */
    double score = 0, weight = 1;
    m->nparams = 0;
    if (rt->nsegs == 0)
        return plen == 1 ? 1 : -1;
    if (plen <= 1)
        return -1;
    for (size_t k = 0; k < rt->nsegs; k++) {
        const struct sl_route_seg *seg = &rt->segs[k];
        if (pos > plen)
            return -1;
        const char *s = path + pos;
        const char *slash = memchr(s, '/', plen - pos);
        size_t slen = slash ? (size_t)(slash - s) : plen - pos;
        weight /= 3;
        if (seg->kind == SL_SEG_GREEDY) {
            size_t rest = plen - pos;
            if (rest == 0 || m->nparams == SL_ROUTES_MAX_PARAMS)
                return -1;
            m->params[m->nparams++] =
                (struct sl_route_param){.name = seg->text, .value = {.p = s, .len = rest}};
            return score;
        }
        if (slen == 0)
            return -1;
        if (seg->kind == SL_SEG_LITERAL) {
            if (slen != seg->text.len || memcmp(s, seg->text.p, slen))
                return -1;
            score += 2 * weight;
        } else {
            if (m->nparams == SL_ROUTES_MAX_PARAMS)
                return -1;
            m->params[m->nparams++] =
                (struct sl_route_param){.name = seg->text, .value = {.p = s, .len = slen}};
            score += weight;
        }
        pos += slen + 1;
    }
    /* Every path segment must be consumed (a trailing slash leaves an empty one). */
    return pos > plen ? score : -1;
}

int sl_routes_match(const struct sl_routes *r, const char *method, size_t mlen, const char *path,
                    size_t plen, struct sl_route_match *m) {
    double best = -1;
    int best_exact = 0;
    struct sl_route_match cand;
    m->route = NULL;
    if (plen == 0 || path[0] != '/')
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct sl_route *rt = &r->routes[i];
        int exact = strlen(rt->method) == mlen && !memcmp(rt->method, method, mlen);
        if (!exact && strcmp(rt->method, "ANY"))
            continue;
        double score = match_route(rt, path, plen, &cand);
        if (score < 0)
            continue;
        if (score > best || (score == best && exact && !best_exact)) {
            best = score;
            best_exact = exact;
            *m = cand;
            m->route = rt;
        }
    }
    return m->route != NULL;
}

/* The byte an escape at p[0..2] stands for, or -1 when p does not start a valid escape. */
static int escaped_byte(const char *p, size_t left) {
    if (left < 3 || p[0] != '%')
        return -1;
    int hi = sl_hex_digit(p[1]), lo = sl_hex_digit(p[2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool sl_routes_path_is_clean(const char *path, size_t len) {
    size_t dots = 0;    /* dots in the segment so far, plain or %2e */
    bool other = false; /* the segment holds anything but dots */
    for (size_t i = 0; i <= len; i++) {
        if (i == len || path[i] == '/') {
            if (!other && (dots == 1 || dots == 2))
                return false; /* "." or "..": a client-side or upstream normaliser would move up */
            dots = 0;
            other = false;
            continue;
        }
        int c = (unsigned char)path[i];
        int e = escaped_byte(path + i, len - i);
        if (e >= 0) {
            c = e;
            i += 2;
            if (c == '/' || c == '\\')
                return false; /* an encoded separator ends a segment only for some upstreams */
        }
        if (c == '\\')
            return false;
        if (c == '.')
            dots++;
        else
            other = true;
    }
    return true;
}

int sl_url_decode(const char *src, size_t len, char *dst, size_t dstlen, int plus_is_space) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return SL_ERR_PARSE;
            int hi = sl_hex_digit(src[i + 1]), lo = sl_hex_digit(src[i + 2]);
            if (hi < 0 || lo < 0)
                return SL_ERR_PARSE;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (plus_is_space && c == '+') {
            c = ' ';
        }
        if (o == dstlen)
            return SL_ERR_TOO_LARGE;
        dst[o++] = c;
    }
    return (int)o;
}
