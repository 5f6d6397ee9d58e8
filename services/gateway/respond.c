/* Answering a request: sending, counting and auditing the answer, and finishing the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "inflight.h"
#include "respond.h"
#include "trace_spans.h"
#include "sluice/time.h"

/* Headers the gateway may add to any answer, on top of the handler's. */
#define GW_MAX_OWN_HEADERS 24

static struct sl_str str_of(const char *s) {
    return (struct sl_str){.p = s, .len = strlen(s)};
}

static bool has_header(const struct sl_http_header *h, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (sl_str_eq_nocase(h[i].name, name))
            return true;
    return false;
}

/*
 * Counts an answer by route and status; the children are looked up once and cached. A route is
 * labelled `METHOD /pattern`, as the worker labels it, so the two services' series join.
 */
void gw_count_answer(struct gw_gateway *g, const struct sl_route *route, int status,
                     uint64_t latency_ns) {
    size_t idx = route ? (size_t)(route - g->routes->routes) : g->routes->n;
    struct gw_route_stats *st = &g->route_stats[idx];
    const char *label = "none";
    char buf[600]; /* written only when a child is looked up, not for every answer */
    struct sl_metric *count = NULL;
    size_t i = 0;
    for (; i < GW_STATUS_CACHE && st->count[i]; i++)
        if (st->status[i] == status) {
            count = st->count[i];
            break;
        }
    if ((!count || !st->latency) && route) {
        snprintf(buf, sizeof buf, "%s %s", route->method, route->path);
        label = buf;
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
 * Everything the request still needs after the answer (the audit record) is taken before
 * sl_http_respond frees it. `extra` are the gateway's own headers (constants, generated values,
 * the validated CORS settings, a request's own header values): written as they are.
 */
void gw_respond(struct gw_req *r, int status, const struct sl_http_header *extra, size_t nextra,
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
    gw_count_answer(g, r->route, r->status, elapsed_ns);
    if (r->cancelled)
        sl_counter_inc(g->m.cancelled);

    gw_audit_request(g, r, r->http, r->http->body_len, elapsed_ns);
    gw_trace_answered(r);
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
    for (size_t i = 0; i < nextra && n < 7; i++)
        h[n++] = extra[i];
    /* A row with a Retry-After gets one, unless the caller or the usage plan already set it. */
    if (info->retry_after && !has_header(extra, nextra, "Retry-After") &&
        !(r->has_ratelimit && has_header(r->ratelimit.h, r->ratelimit.n, "Retry-After")))
        h[n++] = (struct sl_http_header){SL_STR("Retry-After"), str_of(info->retry_after)};
    gw_respond(r, info->status, h, n, NULL, 0, info->body, strlen(info->body), info->audit);
}

void gw_respond_reply(struct gw_req *r, const struct sl_envelope_reply *rep) {
    r->tm.reply = gw_trace_mark(r);
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
     * (Lambda code often sets them, with a fallback origin) would duplicate them or hand an
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
    gw_respond(r, (int)rep->status, NULL, 0, hs, k, rep->body.p, rep->body.len, NULL);
    free(hs);
}
