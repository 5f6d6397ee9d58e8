/*
 * The gateway's trace spans (docs/tracing.md). A request object holds no span: the pipeline
 * takes timing marks (a clock read each, only for a recorded trace) and the spans are built,
 * one at a time on the stack, when the request is answered. The server span's id is the
 * request's context (r->trace); the producer span's id is what traceparent carries to the
 * worker, so the worker's spans hang below the publish.
 */
#include "trace_spans.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sluice/otlp.h"
#include "sluice/time.h"

bool gw_trace_on(const struct gw_req *r) {
    return r->g->tracer && (r->trace.flags & SL_TRACE_FLAG_SAMPLED);
}

int64_t gw_trace_mark(const struct gw_req *r) {
    return gw_trace_on(r) ? sl_otlp_now_ns() : 0;
}

int gw_trace_begin(struct gw_req *r) {
    struct gw_gateway *g = r->g;
    struct sl_trace_ctx parent;
    struct sl_str tp = r->traceparent_in;
    bool has_parent = tp.p && sl_trace_parse(tp.p, tp.len, &parent) == 0;
    if (!g->tracer) /* tracing off: the flag follows the client's, a new trace is sampled */
        return has_parent ? sl_trace_child_r(&g->rand, &parent, &r->trace)
                          : sl_trace_generate_r(&g->rand, &r->trace);
    struct sl_otlp_span s; /* only for the sampler's decision: the span is built at the end */
    if (sl_otlp_span_start(g->tracer, &s, NULL, SL_OTLP_KIND_SERVER, has_parent ? &parent : NULL,
                           &g->rand) < 0)
        return -EIO;
    r->trace = s.ctx;
    r->has_client_span = has_parent;
    if (has_parent)
        memcpy(r->client_span, parent.span_id, sizeof r->client_span);
    if (gw_trace_on(r)) {
        /* The server span starts when the request reached the pipeline, not now. */
        uint64_t since = sl_time_mono_ns() - r->start_ns;
        r->tm.start = sl_otlp_now_ns() - (int64_t)since;
        struct sl_trace_ctx producer;
        if (sl_trace_child_r(&g->rand, &r->trace, &producer) < 0)
            return -EIO;
        memcpy(r->publish_span, producer.span_id, sizeof r->publish_span);
    }
    return 0;
}

void gw_trace_publish_ctx(struct gw_req *r, struct sl_trace_ctx *out) {
    *out = r->trace;
    if (gw_trace_on(r))
        memcpy(out->span_id, r->publish_span, sizeof out->span_id);
}

/* Starts a child of the server span at `start` (epoch ns); `span_id` NULL: a new id. */
static void child(struct gw_req *r, const char *name, enum sl_otlp_span_kind kind, int64_t start,
                  const uint8_t *span_id, struct sl_otlp_span *s) {
    struct gw_gateway *g = r->g;
    s->recording = false;
    if (span_id) {
        struct sl_trace_ctx ctx = r->trace;
        memcpy(ctx.span_id, span_id, sizeof ctx.span_id);
        sl_otlp_span_start_ctx(g->tracer, s, name, kind, &ctx, r->trace.span_id);
    } else if (sl_otlp_span_start(g->tracer, s, name, kind, &r->trace, &g->rand) < 0) {
        return;
    }
    sl_otlp_span_set_start(s, start);
}

static void end(struct gw_req *r, struct sl_otlp_span *s, int64_t end_ns) {
    sl_otlp_span_end(r->g->tracer, s, end_ns ? end_ns : sl_otlp_now_ns());
}

void gw_trace_answered(struct gw_req *r) {
    if (!gw_trace_on(r))
        return;
    struct gw_gateway *g = r->g;
    int64_t now = sl_otlp_now_ns();
    struct sl_otlp_span s;

    if (r->tm.waf0) {
        child(r, "waf", SL_OTLP_KIND_INTERNAL, r->tm.waf0, NULL, &s);
        sl_otlp_span_set_str(&s, "sluice.waf.action", sl_waf_action_name(r->waf.action));
        if (r->waf.rule[0])
            sl_otlp_span_set_str(&s, "sluice.waf.rule", r->waf.rule);
        if (r->waf.group_rule)
            sl_otlp_span_set_str(&s, "sluice.waf.group_rule", r->waf.group_rule);
        if (r->waf.action == SL_WAF_BLOCK)
            sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, "blocked by the web ACL");
        end(r, &s, r->tm.waf1);
    }
    if (r->tm.key0) {
        child(r, "api key", SL_OTLP_KIND_INTERNAL, r->tm.key0, NULL, &s);
        if (r->has_key)
            sl_otlp_span_set_str(&s, "sluice.api_key.id", r->key_id);
        end(r, &s, r->tm.key1);
    }
    if (r->tm.usage0) {
        child(r, "usage plan", SL_OTLP_KIND_INTERNAL, r->tm.usage0, NULL, &s);
        sl_otlp_span_set_str(&s, "sluice.usage_plan.backend",
                             g->s->redis_url && g->s->redis_url[0] ? "redis" : "memory");
        end(r, &s, r->tm.usage1);
    }
    if (r->tm.publish) {
        char part[16];
        snprintf(part, sizeof part, "%d", (int)g->index);
        child(r, "publish", SL_OTLP_KIND_PRODUCER, r->tm.publish, r->publish_span, &s);
        sl_otlp_span_set_str(&s, "messaging.system", "kafka");
        sl_otlp_span_set_str(&s, "messaging.operation.type", "send");
        sl_otlp_span_set_str(&s, "messaging.destination.name", g->topic_requests);
        sl_otlp_span_set_str(&s, "messaging.message.id", r->id);
        sl_otlp_span_set_str(&s, "sluice.reply_partition", part);
        end(r, &s, r->tm.delivered);
        child(r, "await reply", SL_OTLP_KIND_INTERNAL,
              r->tm.delivered ? r->tm.delivered : r->tm.publish, NULL, &s);
        sl_otlp_span_set_str(&s, "messaging.source.name", g->topic_replies);
        if (!r->tm.reply)
            sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, "no reply before the answer");
        end(r, &s, r->tm.reply ? r->tm.reply : now);
    }

    const struct sl_http_request *h = r->http;
    char name[300];
    if (r->route)
        snprintf(name, sizeof name, "%.*s %s", (int)h->method.len, h->method.p, r->route->path);
    else
        snprintf(name, sizeof name, "%.*s", (int)h->method.len, h->method.p);
    sl_otlp_span_start_ctx(g->tracer, &s, name, SL_OTLP_KIND_SERVER, &r->trace,
                           r->has_client_span ? r->client_span : NULL);
    sl_otlp_span_set_start(&s, r->tm.start);
    sl_otlp_span_set_strn(&s, "http.request.method", h->method.p, h->method.len);
    sl_otlp_span_set_strn(&s, "url.path", h->path.p, h->path.len);
    if (r->route)
        sl_otlp_span_set_str(&s, "http.route", r->route->path);
    sl_otlp_span_set_int(&s, "http.response.status_code", r->status);
    sl_otlp_span_set_str(&s, "client.address", r->client_ip);
    sl_otlp_span_set_str(&s, "sluice.request_id", r->id);
    if (r->error_class)
        sl_otlp_span_set_str(&s, "error.type", r->error_class);
    if (r->status >= 500) /* server spans: 4xx is the client's error, not the server's */
        sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, r->error_class);
    sl_otlp_span_end(g->tracer, &s, now);
}
