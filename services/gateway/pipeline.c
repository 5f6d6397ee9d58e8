/* The request pipeline of DESIGN.md §4 as named steps, and the one place answers are sent. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "sluice/log.h"
#include "sluice/time.h"

/* What a step tells the pipeline: go on, stop (it answered), or wait (a callback resumes). */
enum gw_step { GW_NEXT = 0, GW_DONE, GW_AGAIN };

struct gw_phase {
    const char *name;
    enum gw_step (*run)(struct gw_req *r);
};

static enum gw_step step_request_id(struct gw_req *r);
static enum gw_step step_waf(struct gw_req *r);
static enum gw_step step_cors_preflight(struct gw_req *r);
static enum gw_step step_route(struct gw_req *r);
static enum gw_step step_api_key(struct gw_req *r);
static enum gw_step step_usage_plan(struct gw_req *r);
static enum gw_step step_publish(struct gw_req *r);

/* Parse (limits) happened in the HTTP server; admin routes live on the admin listener. */
static const struct gw_phase phases[] = {
    {"request_id", step_request_id},
    {"waf", step_waf},
    {"cors_preflight", step_cors_preflight},
    {"route", step_route},
    {"api_key", step_api_key},
    {"usage_plan", step_usage_plan},
    {"publish", step_publish},
};
#define NPHASES (sizeof phases / sizeof phases[0])

/* Headers the gateway may add to any answer, on top of the handler's. */
#define GW_MAX_OWN_HEADERS 24

static void run_pipeline(struct gw_req *r, size_t from);

/* Request objects are recycled through a bounded free list: no malloc per request. */
#define GW_FREE_REQS_MAX 1024

void gw_req_unref(struct gw_req *r) {
    if (--r->refs > 0)
        return;
    struct gw_gateway *g = r->g;
    g->live_reqs--;
    if (g->nfree_reqs < GW_FREE_REQS_MAX) {
        r->next = g->free_reqs;
        g->free_reqs = r;
        g->nfree_reqs++;
    } else {
        free(r);
    }
    if (g->live_reqs == 0 && g->free_when_idle)
        gw_gateway_free(g);
}

static struct gw_req *req_alloc(struct gw_gateway *g) {
    struct gw_req *r = g->free_reqs;
    if (r) {
        g->free_reqs = r->next;
        g->nfree_reqs--;
        memset(r, 0, sizeof *r);
    } else if (!(r = calloc(1, sizeof *r))) {
        return NULL;
    }
    g->live_reqs++;
    return r;
}

void gw_req_free_list(struct gw_gateway *g) {
    while (g->free_reqs) {
        struct gw_req *r = g->free_reqs;
        g->free_reqs = r->next;
        free(r);
    }
    g->nfree_reqs = 0;
}

static struct sl_str str_of(const char *s) {
    return (struct sl_str){.p = s, .len = strlen(s)};
}

/* The headers the pipeline reads, in one pass over the request's (the first of each name). */
static void find_headers(struct gw_req *r, const struct sl_http_request *http) {
    enum { H_ORIGIN, H_FORWARDED_FOR, H_TRACEPARENT, H_API_KEY, H_USER_AGENT };
    static const struct {
        const char *name; /* lowercase */
        size_t len;
        size_t slot; /* offset of its struct sl_str in struct gw_req */
    } wanted[] = {
        [H_ORIGIN] = {"origin", 6, offsetof(struct gw_req, origin)},
        [H_FORWARDED_FOR] = {"x-forwarded-for", 15, offsetof(struct gw_req, forwarded_for)},
        [H_TRACEPARENT] = {"traceparent", 11, offsetof(struct gw_req, traceparent_in)},
        [H_API_KEY] = {"x-api-key", 9, offsetof(struct gw_req, api_key)},
        [H_USER_AGENT] = {"user-agent", 10, offsetof(struct gw_req, user_agent)},
    };
    unsigned found = 0;
    for (size_t i = 0; i < http->nheaders; i++) {
        const struct sl_http_header *h = &http->headers[i];
        for (unsigned k = 0; k < sizeof wanted / sizeof wanted[0]; k++) {
            if (h->name.len != wanted[k].len || (found & (1u << k)) ||
                !sl_str_eq_nocase(h->name, wanted[k].name))
                continue;
            *(struct sl_str *)((char *)r + wanted[k].slot) = h->value;
            found |= 1u << k;
            break;
        }
    }
    r->has_user_agent = found & (1u << H_USER_AGENT);
}

/* Counts an answer by route and status; the children are looked up once and cached. */
static void count_answer(struct gw_gateway *g, const struct sl_route *route, int status,
                         uint64_t latency_ns) {
    size_t idx = route ? (size_t)(route - g->routes->routes) : g->routes->n;
    struct gw_route_stats *st = &g->route_stats[idx];
    const char *label = route ? route->path : "none";
    struct sl_metric *count = NULL;
    size_t i = 0;
    for (; i < GW_STATUS_CACHE && st->count[i]; i++)
        if (st->status[i] == status) {
            count = st->count[i];
            break;
        }
    if (!count) {
        char status_text[8];
        snprintf(status_text, sizeof status_text, "%d", status);
        count = sl_metric_child2(g->m.requests, label, status_text);
        if (count && i < GW_STATUS_CACHE) {
            st->status[i] = status;
            st->count[i] = count;
        }
    }
    if (count)
        sl_counter_inc(count);
    if (!st->latency)
        st->latency = sl_metric_child1(g->m.latency, label);
    if (st->latency && latency_ns)
        sl_histogram_observe(st->latency, (double)latency_ns / 1e9);
}

/*
 * Sends an answer, records it (metrics, audit) and ends the request's HTTP life. Everything the
 * request still needs afterwards (the audit record) is taken before sl_http_respond frees it.
 * `extra` are the gateway's own headers (constants, generated values, the validated CORS
 * settings, a request's own header values): written as they are. `more` come from elsewhere (a
 * handler's reply, a web ACL's custom response) and are checked by the HTTP server.
 */
static void respond(struct gw_req *r, int status, const struct sl_http_header *extra, size_t nextra,
                    const struct sl_http_header *more, size_t nmore, const void *body, size_t len,
                    const char *error_class) {
    struct gw_gateway *g = r->g;
    if (r->state == GW_REQ_DONE)
        return;
    if (r->state == GW_REQ_AWAIT)
        gw_await_end(r);
    r->state = GW_REQ_DONE;
    r->status = r->cancelled ? 499 : status; /* nginx's "client closed request" */
    r->bytes_out = r->cancelled ? 0 : len;
    r->error_class = r->cancelled ? "client_closed" : error_class;

    struct sl_http_header own[GW_MAX_OWN_HEADERS];
    size_t n = 0;
    own[n++] = (struct sl_http_header){SL_STR("x-amzn-RequestId"), str_of(r->id)};
    own[n++] = (struct sl_http_header){SL_STR("x-request-id"), str_of(r->id)};
    if (!r->cors_done)
        n += gw_cors_response_headers(&g->cors, r->origin, own + n);
    if (r->has_ratelimit)
        for (size_t i = 0; i < r->ratelimit.n; i++)
            own[n++] = r->ratelimit.h[i];
    for (size_t i = 0; i < nextra && n < GW_MAX_OWN_HEADERS; i++)
        own[n++] = extra[i];

    uint64_t elapsed_ns = sl_time_mono_ns() - r->start_ns;
    count_answer(g, r->route, r->status, elapsed_ns);
    if (r->cancelled)
        sl_counter_inc(g->m.cancelled);

    gw_audit_request(g, r, r->http, r->http->body_len, elapsed_ns);
    sl_http_respond_own(r->http, status, more, nmore, own, n, body, len);
    r->http = NULL;
    gw_req_unref(r); /* the reference the answer held */
}

void gw_respond_error(struct gw_req *r, enum gw_error e, const struct sl_http_header *extra,
                      size_t nextra) {
    const struct gw_error_info *info = gw_error_info(e);
    struct sl_http_header h[8];
    size_t n = 0;
    h[n++] = (struct sl_http_header){SL_STR("Content-Type"), SL_STR("application/json")};
    if (info->error_type)
        h[n++] = (struct sl_http_header){SL_STR("x-amzn-ErrorType"), str_of(info->error_type)};
    for (size_t i = 0; i < nextra && n < 8; i++)
        h[n++] = extra[i];
    respond(r, info->status, h, n, NULL, 0, info->body, strlen(info->body), info->audit);
}

void gw_respond_reply(struct gw_req *r, const struct sl_envelope_reply *rep) {
    size_t nvalues = 0;
    for (size_t i = 0; i < rep->headers.n; i++)
        nvalues += rep->headers.fields[i].n_values;
    struct sl_http_header *hs = nvalues ? malloc(nvalues * sizeof *hs) : NULL;
    if (nvalues && !hs) {
        gw_respond_error(r, GW_ERR_BAD_GATEWAY, NULL, 0);
        return;
    }
    /*
     * With CORS on, the gateway alone decides the CORS headers of an answer: a handler's own
     * (the seed's Lambda sets them, with a fallback origin) would duplicate them or hand an
     * Access-Control-Allow-Origin to an origin the allow-list refuses.
     */
    bool cors_on = r->g->cors.norigins > 0;
    size_t k = 0;
    for (size_t i = 0; i < rep->headers.n; i++) {
        const struct sl_envelope_field *f = &rep->headers.fields[i];
        if (cors_on && (sl_str_eq_nocase(f->name, "access-control-allow-origin") ||
                        sl_str_eq_nocase(f->name, "access-control-allow-credentials")))
            continue;
        for (size_t j = 0; j < f->n_values; j++) {
            if (cors_on && sl_str_eq_nocase(f->name, "vary") &&
                sl_str_eq_nocase(f->values[j], "origin"))
                continue;
            hs[k++] = (struct sl_http_header){f->name, f->values[j]};
        }
    }
    respond(r, (int)rep->status, NULL, 0, hs, k, rep->body.p, rep->body.len, NULL);
    free(hs);
}

/* ---- steps -------------------------------------------------------------------------------- */

static enum gw_step step_request_id(struct gw_req *r) {
    struct sl_trace_ctx parent, ctx;
    struct sl_str tp = r->traceparent_in;
    struct sl_trace_rand *rnd = &r->g->rand;
    int rc = sl_trace_request_id_r(rnd, r->id);
    if (rc == 0)
        rc = tp.p && sl_trace_parse(tp.p, tp.len, &parent) == 0
                 ? sl_trace_child_r(rnd, &parent, &ctx)
                 : sl_trace_generate_r(rnd, &ctx);
    if (rc < 0) {
        /* No randomness: refuse rather than send colliding ids through Kafka. */
        snprintf(r->id, sizeof r->id, "00000000-0000-4000-8000-000000000000");
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
        return GW_DONE;
    }
    r->trace = ctx;
    sl_trace_id_hex(&ctx, r->trace_id);
    return GW_NEXT;
}

static enum gw_step step_waf(struct gw_req *r) {
    sl_waf_evaluate(r->g->waf, r->http, r->client_ip, &r->waf);
    if (r->waf.action != SL_WAF_BLOCK)
        return GW_NEXT;
    if (r->waf.custom_status) {
        respond(r, r->waf.custom_status, NULL, 0, r->waf.custom_headers, r->waf.ncustom_headers,
                r->waf.custom_body.p, r->waf.custom_body.len, gw_error_info(GW_ERR_WAF)->audit);
        return GW_DONE;
    }
    gw_respond_error(r, GW_ERR_WAF, NULL, 0);
    return GW_DONE;
}

static enum gw_step step_cors_preflight(struct gw_req *r) {
    const struct sl_str method = r->http->method;
    if (method.len != 7 || memcmp(method.p, "OPTIONS", 7) || !r->origin.p)
        return GW_NEXT;
    int has_method = sl_http_request_header(r->http, "access-control-request-method") != NULL;
    if (!gw_cors_is_preflight(&r->g->cors, method, 1, has_method))
        return GW_NEXT;
    struct sl_http_header h[6];
    size_t n = gw_cors_preflight_headers(&r->g->cors, r->origin, h);
    r->cors_done = true; /* the preflight set replaces the actual-response set */
    respond(r, 204, h, n, NULL, 0, NULL, 0, NULL);
    return GW_DONE;
}

static enum gw_step step_route(struct gw_req *r) {
    const struct sl_http_request *h = r->http;
    if (!sl_routes_match(r->g->routes, h->method.p, h->method.len, h->path.p, h->path.len,
                         &r->match)) {
        gw_respond_error(r, GW_ERR_MISSING_TOKEN, NULL, 0);
        return GW_DONE;
    }
    r->route = r->match.route;
    return GW_NEXT;
}

static enum gw_step step_api_key(struct gw_req *r) {
    if (!r->route->api_key_required)
        return GW_NEXT;
    struct sl_str key = r->api_key;
    struct gw_auth_result res;
    if (gw_auth_check(r->g->auth, key.p, key.len, r->received_ms, &res) != GW_AUTH_OK) {
        if (res.key_id[0]) {
            r->has_key = true;
            memcpy(r->key_id, res.key_id, sizeof r->key_id);
        }
        gw_respond_error(r, GW_ERR_FORBIDDEN, NULL, 0);
        return GW_DONE;
    }
    r->has_key = true;
    memcpy(r->key_id, res.key_id, sizeof r->key_id);
    r->plan = res.plan;
    return GW_NEXT;
}

static void on_usage(const struct gw_usage_decision *d, void *opaque) {
    struct gw_req *r = opaque;
    if (r->state == GW_REQ_DONE) { /* the client left while we asked */
        gw_req_unref(r);
        return;
    }
    r->state = GW_REQ_PIPELINE;
    r->has_ratelimit = gw_usage_headers(&r->plan, d, &r->ratelimit) == 0;
    switch (d->outcome) {
    case GW_USAGE_ALLOWED:
    case GW_USAGE_BACKEND_ERROR_OPEN:
        run_pipeline(r, r->phase + 1);
        break;
    case GW_USAGE_THROTTLED:
        gw_respond_error(r, GW_ERR_THROTTLED, NULL, 0);
        break;
    case GW_USAGE_QUOTA_EXCEEDED:
        gw_respond_error(r, GW_ERR_QUOTA, NULL, 0);
        break;
    case GW_USAGE_BACKEND_ERROR_DENY:
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
        break;
    }
    gw_req_unref(r); /* the usage check's reference */
}

static enum gw_step step_usage_plan(struct gw_req *r) {
    /* Usage plans apply to keyed methods, as in API Gateway. */
    if (!r->route->api_key_required || !r->has_key)
        return GW_NEXT;
    r->state = GW_REQ_USAGE;
    r->refs++;
    if (gw_usage_check(r->g->usage, r->key_id, &r->plan, r->received_ms, on_usage, r) < 0) {
        r->refs--;
        r->state = GW_REQ_PIPELINE;
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
        return GW_DONE;
    }
    return GW_AGAIN;
}

static enum gw_step step_publish(struct gw_req *r) {
    gw_publish(r);
    return GW_DONE;
}

static void run_pipeline(struct gw_req *r, size_t from) {
    r->refs++; /* a step may answer and drop the answer's reference */
    for (size_t i = from; i < NPHASES && r->state != GW_REQ_DONE; i++) {
        r->phase = i;
        enum gw_step s = phases[i].run(r);
        if (s != GW_NEXT)
            break;
    }
    gw_req_unref(r);
}

/* ---- HTTP server callbacks ---------------------------------------------------------------- */

void gw_pipeline_on_request(struct sl_http_request *http, void *data) {
    struct gw_gateway *g = data;
    struct gw_req *r = req_alloc(g);
    if (!r) {
        static const char body[] = "{\"message\":\"Service Unavailable\"}";
        sl_http_respond(http, 503, NULL, 0, body, sizeof body - 1);
        return;
    }
    r->g = g;
    r->http = http;
    r->refs = 1;
    r->start_ns = g->req_mono_ns = sl_time_mono_ns();
    r->received_ms = sl_time_now_ms();
    http->user = r;
    find_headers(r, http);
    gw_client_ip(&g->proxies, http->peer, r->forwarded_for.p, r->forwarded_for.len, r->client_ip);
    run_pipeline(r, 0);
}

void gw_pipeline_on_cancel(struct sl_http_request *http, void *data) {
    (void)data;
    struct gw_req *r = http->user;
    if (!r || r->state == GW_REQ_DONE)
        return;
    r->cancelled = true;
    if (r->state == GW_REQ_AWAIT) {
        /* Stop waiting: a reply arriving later is counted as late and dropped. */
        gw_respond_error(r, GW_ERR_TIMEOUT, NULL, 0);
    } else if (r->state == GW_REQ_USAGE) {
        /* The usage callback still holds a reference and will see DONE. */
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
    }
}

void gw_pipeline_on_error_response(struct sl_http_error_response *resp, void *data) {
    struct gw_gateway *g = data;
    char id[SL_REQUEST_ID_LEN + 1];
    if (sl_trace_request_id_r(&g->rand, id) < 0)
        id[0] = '\0';
    size_t idlen = strlen(id);
    if (idlen < sizeof resp->scratch && resp->nheaders + 2 <= SL_HTTP_ERROR_MAX_HEADERS) {
        memcpy(resp->scratch, id, idlen);
        struct sl_str v = {.p = resp->scratch, .len = idlen};
        resp->headers[resp->nheaders++] = (struct sl_http_header){SL_STR("x-amzn-RequestId"), v};
        resp->headers[resp->nheaders++] = (struct sl_http_header){SL_STR("x-request-id"), v};
    }
    count_answer(g, NULL, resp->status, 0);
    gw_audit_server_error(g, resp, id);
}
