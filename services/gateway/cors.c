/* CORS policy: an exact-match origin allow-list with credentials, as API Gateway is configured to
 * answer. */
#include "cors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

static struct sl_str str_of(const char *s) {
    return (struct sl_str){.p = s, .len = strlen(s)};
}

/* An origin is scheme "://" host [":" port], with no path, query or whitespace. */
static int valid_origin(const char *s, size_t n) {
    const char *sep = memmem(s, n, "://", 3);
    if (!sep || sep == s || (size_t)(sep - s) + 3 >= n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || (c == '/' && (s + i < sep || s + i > sep + 2)))
            return 0;
    }
    return 1;
}

void gw_cors_free(struct gw_cors *c) {
    for (size_t i = 0; i < c->norigins; i++)
        free(c->origins[i]);
    free(c->allow_methods);
    free(c->allow_headers);
    memset(c, 0, sizeof *c);
}

int gw_cors_init(struct gw_cors *c, const char *origins, const char *methods, const char *headers,
                 long max_age_s, struct sl_buf *err) {
    memset(c, 0, sizeof *c);
    const char *p = origins ? origins : "";
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            if (len == 1 && p[0] == '*') {
                sl_buf_append_str(err, "SLUICE_CORS_ORIGINS: \"*\" is not allowed with "
                                       "credentials; list the origins\n");
                goto err;
            }
            if (!valid_origin(p, len)) {
                sl_buf_printf(err,
                              "SLUICE_CORS_ORIGINS: \"%.*s\" is not an origin "
                              "(scheme://host[:port])\n",
                              (int)len, p);
                goto err;
            }
            if (c->norigins == GW_CORS_MAX_ORIGINS) {
                sl_buf_printf(err, "SLUICE_CORS_ORIGINS: more than %d origins\n",
                              GW_CORS_MAX_ORIGINS);
                goto err;
            }
            if (!(c->origins[c->norigins] = strndup(p, len)))
                goto nomem;
            c->norigins++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    /* The lists are answer header values, written without another check: no control bytes. */
    for (int k = 0; k < 2; k++) {
        const char *v = k ? headers : methods;
        for (size_t i = 0; v[i]; i++) {
            unsigned char ch = (unsigned char)v[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                sl_buf_printf(err, "%s: control character 0x%02x at byte %zu\n",
                              k ? "SLUICE_CORS_ALLOW_HEADERS" : "SLUICE_CORS_ALLOW_METHODS", ch, i);
                goto err;
            }
        }
    }
    c->allow_methods = strdup(methods);
    c->allow_headers = strdup(headers);
    if (!c->allow_methods || !c->allow_headers)
        goto nomem;
    if (max_age_s > 0)
        snprintf(c->max_age, sizeof c->max_age, "%ld", max_age_s);
    return 0;
nomem:
    gw_cors_free(c);
    return -ENOMEM;
err:
    gw_cors_free(c);
    return SL_ERR_CONFIG;
}

int gw_cors_origin_allowed(const struct gw_cors *c, struct sl_str origin) {
    for (size_t i = 0; i < c->norigins; i++)
        if (strlen(c->origins[i]) == origin.len && !memcmp(c->origins[i], origin.p, origin.len))
            return 1;
    return 0;
}

int gw_cors_is_preflight(const struct gw_cors *c, struct sl_str method, int has_origin,
                         int has_request_method) {
    return c->norigins > 0 && method.len == 7 && !memcmp(method.p, "OPTIONS", 7) && has_origin &&
           has_request_method;
}

size_t gw_cors_preflight_headers(const struct gw_cors *c, struct sl_str origin,
                                 struct sl_http_header out[6]) {
    size_t n = 0;
    if (gw_cors_origin_allowed(c, origin)) {
        out[n++] = (struct sl_http_header){SL_STR("Access-Control-Allow-Origin"), origin};
        out[n++] =
            (struct sl_http_header){SL_STR("Access-Control-Allow-Credentials"), SL_STR("true")};
    }
    out[n++] =
        (struct sl_http_header){SL_STR("Access-Control-Allow-Methods"), str_of(c->allow_methods)};
    out[n++] =
        (struct sl_http_header){SL_STR("Access-Control-Allow-Headers"), str_of(c->allow_headers)};
    if (c->max_age[0])
        out[n++] = (struct sl_http_header){SL_STR("Access-Control-Max-Age"), str_of(c->max_age)};
    out[n++] = (struct sl_http_header){SL_STR("Vary"), SL_STR("Origin")};
    return n;
}

size_t gw_cors_response_headers(const struct gw_cors *c, struct sl_str origin,
                                struct sl_http_header out[3]) {
    if (c->norigins == 0)
        return 0;
    if (!origin.p || !gw_cors_origin_allowed(c, origin)) {
        out[0] = (struct sl_http_header){SL_STR("Vary"), SL_STR("Origin")};
        return 1;
    }
    out[0] = (struct sl_http_header){SL_STR("Access-Control-Allow-Origin"), origin};
    out[1] = (struct sl_http_header){SL_STR("Access-Control-Allow-Credentials"), SL_STR("true")};
    out[2] = (struct sl_http_header){SL_STR("Vary"), SL_STR("Origin")};
    return 3;
}
