/* The http handler: forwards a request to the route's upstream with libcurl (API Gateway's
 * HTTP proxy integration) and maps the answer into the reply. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handlers.h"
#include "sluice/error.h"
#include "sluice/trace.h"

/* Hop-by-hop headers (RFC 9110 §7.6.1) plus those libcurl computes itself. */
static const char *const skipped[] = {"connection",          "keep-alive", "proxy-authenticate",
                                      "proxy-authorization", "te",         "trailer",
                                      "transfer-encoding",   "upgrade",    "host",
                                      "content-length",      "expect",     NULL};

/*
 * Forwarding headers the handler sets itself from the envelope (the gateway has already decided
 * the client's address and key): a client's own values would let it forge its address or key
 * id towards the upstream. The trace parent is this attempt's own span (below).
 */
static const char *const replaced[] = {"x-forwarded-for",  "x-forwarded-proto", "x-forwarded-host",
                                       "x-forwarded-port", "forwarded",         "x-real-ip",
                                       "x-sluice-key-id",  "traceparent",       NULL};

static int in_list(const char *const *list, const char *name, size_t len) {
    for (size_t i = 0; list[i]; i++)
        if (strlen(list[i]) == len && !strncasecmp(list[i], name, len))
            return 1;
    return 0;
}

static int is_skipped(const char *name, size_t len) {
    return in_list(skipped, name, len);
}

/* A header line must not carry CR, LF or NUL: curl would send a second header (or cut it). */
static int is_clean(struct sl_str s) {
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] == '\r' || s.p[i] == '\n' || s.p[i] == '\0')
            return 0;
    return 1;
}

static int append_line(struct curl_slist **hdrs, struct sl_buf *line, const char *name,
                       struct sl_str value) {
    sl_buf_reset(line);
    int rc = sl_buf_printf(line, "%s: %.*s", name, (int)value.len, value.p);
    struct curl_slist *n = rc == 0 ? curl_slist_append(*hdrs, line->data) : NULL;
    if (rc == 0 && !n)
        rc = -ENOMEM;
    if (n)
        *hdrs = n;
    return rc;
}

struct sink {
    struct wk_response *out;
    int too_large;
};

static size_t on_body(char *p, size_t size, size_t n, void *data) {
    struct sink *s = data;
    if (sl_buf_append(&s->out->body, p, size * n) < 0) {
        s->too_large = 1;
        return 0; /* aborts the transfer */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *data) {
    struct sink *s = data;
    size_t len = size * n;
    if (len >= 5 && !memcmp(p, "HTTP/", 5)) { /* a new response (after 1xx): start over */
        s->out->nheaders = 0;
        sl_buf_reset(&s->out->strings);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon)
        return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (nlen && !is_skipped(p, nlen))
        wk_response_add_header(s->out, p, nlen, v, (size_t)(end - v));
    return len;
}

/* base + path + "?" + the query re-encoded from its decoded names and values. */
static int build_url(CURL *c, const char *base, const struct sl_envelope_request *req,
                     struct sl_buf *url) {
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    int rc = sl_buf_append(url, base, blen);
    if (rc == 0)
        rc = sl_buf_append(url, req->path.p, req->path.len);
    char sep = '?';
    for (size_t i = 0; rc == 0 && i < req->query.n; i++) {
        const struct sl_envelope_field *f = &req->query.fields[i];
        for (size_t j = 0; rc == 0 && j < f->n_values; j++) {
            char *k = curl_easy_escape(c, f->name.p, (int)f->name.len);
            char *v = curl_easy_escape(c, f->values[j].p, (int)f->values[j].len);
            rc = k && v ? sl_buf_printf(url, "%c%s=%s", sep, k, v) : -ENOMEM;
            curl_free(k);
            curl_free(v);
            sep = '&';
        }
    }
    return rc;
}

/* libcurl calls this once connected, just before it sends the request: from here on the
 * upstream may have received (and acted on) it. */
static int on_prereq(void *data, char *primary_ip, char *local_ip, int primary_port,
                     int local_port) {
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    *(int *)data = 1;
    return CURL_PREREQFUNC_OK;
}

/* POST and PATCH are not idempotent (RFC 9110 §9.2.2): sent twice, they may act twice. */
static int idempotent(const char *method) {
    return strcmp(method, "POST") && strcmp(method, "PATCH");
}

int wk_http_handle(const struct sl_envelope_request *req, const struct sl_route *route,
                   const struct sl_trace_ctx *attempt, int64_t timeout_ms,
                   struct wk_response *out) {
    CURL *c = curl_easy_init();
    if (!c)
        return -ENOMEM;
    struct sl_buf url, line;
    sl_buf_init(&url, 64 * 1024);
    sl_buf_init(&line, 64 * 1024);
    struct curl_slist *hdrs = NULL;
    int rc = build_url(c, route->upstream, req, &url);
    for (size_t i = 0; rc == 0 && i < req->headers.n; i++) {
        const struct sl_envelope_field *f = &req->headers.fields[i];
        if (is_skipped(f->name.p, f->name.len) || in_list(replaced, f->name.p, f->name.len))
            continue;
        for (size_t j = 0; rc == 0 && j < f->n_values; j++) {
            if (!is_clean(f->name) || !is_clean(f->values[j])) {
                wk_response_fail(out, "handler_error",
                                 "request header %.*s holds CR, LF or NUL; not forwarded",
                                 (int)(f->name.len > 64 ? 64 : f->name.len), f->name.p);
                goto done;
            }
            sl_buf_reset(&line);
            rc = sl_buf_printf(&line, "%.*s: %.*s", (int)f->name.len, f->name.p,
                               (int)f->values[j].len, f->values[j].p);
            struct curl_slist *n = rc == 0 ? curl_slist_append(hdrs, line.data) : NULL;
            if (rc == 0 && !n)
                rc = -ENOMEM;
            if (n)
                hdrs = n;
        }
    }
    /* No 100-continue round trip; the request id and trace travel like API Gateway's. */
    const char *extra[] = {"Expect:", NULL, NULL};
    char idh[128], tph[SL_TRACEPARENT_LEN + 1];
    snprintf(idh, sizeof idh, "X-Amzn-RequestId: %.*s", (int)req->id.len, req->id.p);
    extra[1] = idh;
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        struct curl_slist *n = curl_slist_append(hdrs, extra[i]);
        if (!n)
            rc = -ENOMEM;
        else
            hdrs = n;
    }
    /* The client as the gateway saw it (trusted proxies applied) and the key it used. The
     * gateway listens on plain HTTP; TLS, where there is any, ends in front of it. */
    if (rc == 0 && req->source_ip.len && is_clean(req->source_ip))
        rc = append_line(&hdrs, &line, "X-Forwarded-For", req->source_ip);
    if (rc == 0)
        rc = append_line(&hdrs, &line, "X-Forwarded-Proto", SL_STR("http"));
    if (rc == 0 && req->api_key_id.len && is_clean(req->api_key_id))
        rc = append_line(&hdrs, &line, "X-Sluice-Key-Id", req->api_key_id);
    /* The upstream's spans hang under this attempt's span, the one the worker exports (or, from
     * a caller that gives none, a new child of the gateway's), not under whatever the client
     * sent (the client's header is not forwarded). */
    struct sl_trace_ctx parent, span;
    if (rc == 0) {
        int trc = 0;
        if (attempt)
            span = *attempt;
        else if (sl_trace_parse(req->trace.p, req->trace.len, &parent) == 0)
            trc = sl_trace_child(&parent, &span);
        else
            trc = sl_trace_generate(&span);
        if (trc == 0) {
            sl_trace_format(&span, tph);
            rc = append_line(&hdrs, &line, "traceparent", (struct sl_str){tph, strlen(tph)});
        }
    }
    if (rc < 0)
        goto done;
    char method[32];
    snprintf(method, sizeof method, "%.*s", (int)(req->method.len < 31 ? req->method.len : 31),
             req->method.p);
    struct sink sink = {.out = out};
    int sent = 0;
    curl_easy_setopt(c, CURLOPT_URL, url.data);
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, &sent);
    /* The path goes as the gateway matched it: curl would squash "/../", sending a request the
     * gateway routed as /public/... to /admin/... upstream. */
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 1 ? timeout_ms : 1));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (req->body.len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
             !strcmp(method, "PATCH")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body.p ? req->body.p : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body.len);
    }
    /* A body makes curl send POST: a GET with a body must still say GET. */
    if (strcmp(method, "HEAD") && (strcmp(method, "GET") || req->body.len))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 100 && status <= 599)
            out->status = (uint32_t)status;
        else
            wk_response_fail(out, "invalid_reply", "upstream answered status %ld", status);
    } else if (sink.too_large) {
        wk_response_fail(out, "invalid_reply", "upstream body over the size limit");
    } else if (sent && !idempotent(method)) {
        /* The upstream may have acted on it already: sending it again could act twice. */
        wk_response_fail(out, cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "handler_error",
                         "upstream %s: %s after the %s was sent; not retried", route->upstream,
                         curl_easy_strerror(cc), method);
        out->final = true;
    } else {
        wk_response_fail(out, cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "handler_error",
                         "upstream %s: %s", route->upstream, curl_easy_strerror(cc));
    }
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    sl_buf_free(&url);
    sl_buf_free(&line);
    return rc;
}
