/* dlopen'ed handler plugins: loading, the ABI check, and one request through handle(). */
#include "plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

int wk_plugin_load(const char *path, struct wk_plugin **out, struct sl_buf *err) {
    struct wk_plugin *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        return -ENOMEM;
    }
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        sl_buf_printf(err, "plugin %s: %s", path, dlerror());
        goto fail;
    }
    sluice_handler_v1_fn entry;
    *(void **)&entry = dlsym(p->dl, SLUICE_HANDLER_V1_SYMBOL);
    if (!entry) {
        sl_buf_printf(err, "plugin %s: no %s symbol", path, SLUICE_HANDLER_V1_SYMBOL);
        goto fail;
    }
    p->h = entry();
    if (!p->h || p->h->abi_version != SLUICE_HANDLER_ABI_VERSION || !p->h->handle) {
        sl_buf_printf(err, "plugin %s: not a version %d handler", path, SLUICE_HANDLER_ABI_VERSION);
        goto fail;
    }
    if (p->h->init) {
        int rc = p->h->init(&p->state);
        if (rc < 0) {
            sl_buf_printf(err, "plugin %s: init failed (%d)", path, rc);
            p->h = NULL;
            goto fail;
        }
    }
    *out = p;
    return 0;
fail:
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
    return SL_ERR_CONFIG;
}

void wk_plugin_unload(struct wk_plugin *p) {
    if (!p)
        return;
    if (p->h && p->h->shutdown)
        p->h->shutdown(p->state);
    dlclose(p->dl);
    free(p->path);
    free(p);
}

static struct sluice_str_v1 s1(struct sl_str s) {
    return (struct sluice_str_v1){s.p, s.len};
}

/* Flattens a multi-value map into one pair per value. */
static struct sluice_pair_v1 *flatten(const struct sl_envelope_multimap *m, size_t *n) {
    size_t total = 0;
    for (size_t i = 0; i < m->n; i++)
        total += m->fields[i].n_values;
    struct sluice_pair_v1 *pairs = calloc(total ? total : 1, sizeof *pairs);
    if (!pairs)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        for (size_t j = 0; j < m->fields[i].n_values; j++)
            pairs[k++] = (struct sluice_pair_v1){s1(m->fields[i].name), s1(m->fields[i].values[j])};
    *n = total;
    return pairs;
}

static int has_crlf(const char *p, size_t n) {
    return p && (memchr(p, '\r', n) || memchr(p, '\n', n));
}

/* An RFC 9110 token: the ABI's header names (handler_v1.h). */
static int is_token(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return 0;
    }
    return 1;
}

/* The ABI's rules for an answer (handler_v1.h). */
const char *wk_plugin_reply_invalid(const struct sluice_response_v1 *r) {
    if (r->status < 100 || r->status > 599)
        return "status outside 100..599";
    if (!r->body && r->body_len)
        return "body NULL with a length";
    if (r->n_headers && !r->headers)
        return "headers NULL with a count";
    if (r->n_headers > WK_RESPONSE_MAX_HEADERS)
        return "too many headers";
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct sluice_pair_v1 *h = &r->headers[i];
        if (!h->name.p || !h->name.len || (!h->value.p && h->value.len))
            return "a header without a name";
        if (has_crlf(h->name.p, h->name.len) || has_crlf(h->value.p, h->value.len) ||
            !is_token(h->name.p, h->name.len))
            return "a header name or value with forbidden characters";
    }
    return NULL;
}

int wk_plugin_handle(struct wk_plugin *p, const struct sl_envelope_request *req,
                     struct wk_response *out) {
    size_t nh = 0, nq = 0;
    struct sluice_pair_v1 *headers = flatten(&req->headers, &nh);
    struct sluice_pair_v1 *query = flatten(&req->query, &nq);
    struct sluice_pair_v1 *params = calloc(req->path_params.n + 1, sizeof *params);
    if (!headers || !query || !params) {
        free(headers);
        free(query);
        free(params);
        return -ENOMEM;
    }
    for (size_t i = 0; i < req->path_params.n; i++)
        params[i] = (struct sluice_pair_v1){s1(req->path_params.pairs[i].name),
                                            s1(req->path_params.pairs[i].value)};
    struct sluice_request_v1 r = {
        .size = sizeof r,
        .id = s1(req->id),
        .method = s1(req->method),
        .path = s1(req->path),
        .resource = s1(req->resource),
        .headers = headers,
        .n_headers = nh,
        .query = query,
        .n_query = nq,
        .path_params = params,
        .n_path_params = req->path_params.n,
        .body = s1(req->body),
        .source_ip = s1(req->source_ip),
        .user_agent = s1(req->user_agent),
        .api_key_id = s1(req->api_key_id),
        .stage = s1(req->stage),
        .trace = s1(req->trace),
        .received_ms = req->received_ms,
        .deadline_ms = req->deadline_ms,
        .attempt = req->attempt,
    };
    struct sluice_response_v1 resp = {0};
    int rc = p->h->handle(p->state, &r, &resp);
    free(headers);
    free(query);
    free(params);
    if (rc < 0) {
        wk_response_fail(out, "handler_error", "plugin %s: handle returned %d", p->h->name, rc);
        return 0;
    }
    const char *why = wk_plugin_reply_invalid(&resp);
    if (why) {
        wk_response_fail(out, "invalid_reply", "plugin %s: %s", p->h->name, why);
        return 0;
    }
    out->status = (uint32_t)resp.status;
    for (size_t i = 0; i < resp.n_headers && rc == 0; i++)
        rc = wk_response_add_header(out, resp.headers[i].name.p, resp.headers[i].name.len,
                                    resp.headers[i].value.p ? resp.headers[i].value.p : "",
                                    resp.headers[i].value.len);
    if (rc == 0 && resp.body_len)
        rc = sl_buf_append(&out->body, resp.body, resp.body_len);
    if (rc == SL_ERR_TOO_LARGE) {
        wk_response_reset(out);
        wk_response_fail(out, "invalid_reply", "plugin %s: answer over the size limit", p->h->name);
        rc = 0;
    }
    return rc;
}
