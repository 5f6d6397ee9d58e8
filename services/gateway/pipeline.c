/* The request pipeline as named steps, run from the HTTP server's callbacks. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "inflight.h"
#include "pipeline.h"
#include "publish.h"
#include "respond.h"
#include "trace_spans.h"
#include "sluice/log.h"
#include "sluice/time.h"

/* What a step tells the pipeline: go on, stop (it answered), or wait (a callback resumes). */
enum gw_step { GW_NEXT = 0, GW_DONE, GW_AGAIN };

struct gw_phase {
    const char *name;
    enum gw_step (*run)(struct gw_req *r);
};

static enum gw_step step_request_id(struct gw_req *r);
static enum gw_step step_path(struct gw_req *r);
static enum gw_step step_waf(struct gw_req *r);
static enum gw_step step_cors_preflight(struct gw_req *r);
static enum gw_step step_route(struct gw_req *r);
static enum gw_step step_api_key(struct gw_req *r);
static enum gw_step step_usage_plan(struct gw_req *r);
static enum gw_step step_publish(struct gw_req *r);

/* Parse (limits) happened in the HTTP server; admin routes live on the admin listener. */
static const struct gw_phase phases[] = {
    {"request_id", step_request_id},
    {"path", step_path}, /* before the WAF: the answer must not depend on the web ACL */
    {"waf", step_waf},
    {"cors_preflight", step_cors_preflight},
    {"route", step_route},
    {"api_key", step_api_key},
    {"usage_plan", step_usage_plan},
    {"publish", step_publish},
};
#define NPHASES (sizeof phases / sizeof phases[0])

static void run_pipeline(struct gw_req *r, size_t from);

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

/* ---- steps -------------------------------------------------------------------------------- */

static enum gw_step step_request_id(struct gw_req *r) {
    int rc = sl_trace_request_id_r(&r->g->rand, r->id);
    if (rc == 0)
        rc = gw_trace_begin(r);
    if (rc < 0) {
        /* No randomness: refuse rather than send colliding ids through Kafka. */
        snprintf(r->id, sizeof r->id, "00000000-0000-4000-8000-000000000000");
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
        return GW_DONE;
    }
    sl_trace_id_hex(&r->trace, r->trace_id);
    return GW_NEXT;
}

/*
 * Routing decides on the path as sent, an upstream or a client library on the normalised one:
 * "/public/../admin/x" would pass a key-free "/public/{p+}" and reach "/admin/x". Such paths
 * are malformed requests, answered like the parse errors before them, whatever the web ACL.
 */
static enum gw_step step_path(struct gw_req *r) {
    if (sl_routes_path_is_clean(r->http->path.p, r->http->path.len))
        return GW_NEXT;
    gw_respond_error(r, GW_ERR_BAD_REQUEST, NULL, 0);
    return GW_DONE;
}

static enum gw_step step_waf(struct gw_req *r) {
    r->tm.waf0 = gw_trace_mark(r);
    sl_waf_evaluate(r->g->waf, r->http, r->client_ip, &r->waf);
    r->tm.waf1 = gw_trace_mark(r);
    if (r->waf.action != SL_WAF_BLOCK)
        return GW_NEXT;
    struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
    sl_log(SL_LOG_DEBUG, &ctx, "blocked by the web ACL: rule %s%s%s", r->waf.rule,
           r->waf.group_rule ? ", " : "", r->waf.group_rule ? r->waf.group_rule : "");
    if (r->waf.custom_status) {
        gw_respond(r, r->waf.custom_status, NULL, 0, r->waf.custom_headers, r->waf.ncustom_headers,
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
    gw_respond(r, 204, h, n, NULL, 0, NULL, 0, NULL);
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
    r->tm.key0 = gw_trace_mark(r);
    enum gw_auth_status st = gw_auth_check(r->g->auth, key.p, key.len, r->received_ms, &res);
    r->tm.key1 = gw_trace_mark(r);
    if (st != GW_AUTH_OK) {
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
    r->tm.usage1 = gw_trace_mark(r);
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
    r->tm.usage0 = gw_trace_mark(r);
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
    struct gw_req *r = gw_req_new(g);
    if (!r) {
        /* No request object, so no audit record: the row's status, body and headers only. */
        const struct gw_error_info *e = gw_error_info(GW_ERR_UNAVAILABLE);
        const struct sl_http_header h[] = {
            {SL_STR("Content-Type"), SL_STR("application/json")},
            {SL_STR("x-amzn-ErrorType"), {.p = e->error_type, .len = strlen(e->error_type)}},
            {SL_STR("Retry-After"), {.p = e->retry_after, .len = strlen(e->retry_after)}},
        };
        sl_http_respond(http, e->status, h, 3, e->body, strlen(e->body));
        return;
    }
    r->http = http;
    r->start_ns = g->req_mono_ns = sl_time_mono_ns();
    r->received_ms = sl_time_now_ms();
    http->user = r;
    find_headers(r, http);
    gw_client_ip_headers(&g->proxies, &http->peer, http->headers, http->nheaders, &r->client_addr);
    if (r->forwarded_for.p && !g->proxies.n && !g->warned_forwarded) {
        /* Likely a proxy in front that the gateway was not told about: every client then has
         * the proxy's address (quotas, WAF IP rules, audit). Said once, not per request. */
        g->warned_forwarded = true;
        SL_WARN("requests carry X-Forwarded-For but SLUICE_TRUSTED_PROXIES is empty: the "
                "socket peer is taken as the client");
    }
    sl_addr_format(&r->client_addr, r->client_ip);
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

/* The HTTP server refused a request on its own: answer with the error table's row, with request
 * ids as every gateway answer has (no CORS: the request's Origin was never read). */
void gw_pipeline_on_error_response(struct sl_http_error_response *resp, void *data) {
    _Static_assert(SL_HTTP_ERROR_MAX_HEADERS >= 4, "room for the gateway's error headers");
    _Static_assert(sizeof resp->scratch > SL_REQUEST_ID_LEN, "room for a request id");
    struct gw_gateway *g = data;
    const struct gw_error_info *info = gw_error_info(gw_error_of_server_answer(resp->status));
    char *id = resp->scratch; /* the server copies the headers when this returns */
    if (sl_trace_request_id_r(&g->rand, id) < 0)
        id[0] = '\0';
    struct sl_str idv = {.p = id, .len = strlen(id)};
    size_t n = 0;
    resp->headers[n++] =
        (struct sl_http_header){SL_STR("Content-Type"), SL_STR("application/json")};
    if (info->error_type)
        resp->headers[n++] = (struct sl_http_header){
            SL_STR("x-amzn-ErrorType"), {.p = info->error_type, .len = strlen(info->error_type)}};
    resp->headers[n++] = (struct sl_http_header){SL_STR("x-amzn-RequestId"), idv};
    resp->headers[n++] = (struct sl_http_header){SL_STR("x-request-id"), idv};
    resp->nheaders = n;
    resp->status = info->status;
    resp->body = (struct sl_str){.p = info->body, .len = strlen(info->body)};
    gw_count_answer(g, NULL, resp->status, 0);
    gw_audit_server_error(g, resp, id);
}
