/*
 * The worker's spans. A job keeps a context and a few epoch-ns marks (only when its trace is
 * recorded); spans are built on the stack when each part ends. The consumer span is a child of
 * the gateway's producer span (the record's traceparent) and links to it, as OpenTelemetry's
 * messaging conventions describe; attempts and produces are its children, so retries show as
 * siblings and a dead-lettered request shows every attempt and why it failed.
 */
#include "trace_spans.h"

#include <stdio.h>
#include <string.h>

#include "sluice/otlp.h"

static bool on(const struct wk_job *j) {
    return j->w->tracer && j->traced;
}

void wk_trace_received(struct wk_job *j) {
    struct wk_worker *w = j->w;
    if (!w->tracer)
        return;
    struct sl_otlp_span s;
    if (sl_otlp_span_start(w->tracer, &s, NULL, SL_OTLP_KIND_CONSUMER,
                           j->has_trace_parent ? &j->trace_parent : NULL, &w->rand) < 0)
        return;
    j->trace = s.ctx;
    j->has_trace = true;
    j->traced = s.recording;
    if (j->traced)
        j->tm_received = sl_otlp_now_ns();
}

/*
 * The attempt's span id is drawn when it starts, not when it ends: the child sends it to an
 * http upstream as the traceparent's parent-id, so the upstream's spans hang under the span
 * exported here. Without a tracer it is a child of the gateway's span, as the upstream would
 * otherwise be.
 */
void wk_trace_attempt_start(struct wk_job *j) {
    const struct sl_trace_ctx *parent = j->has_trace          ? &j->trace
                                        : j->has_trace_parent ? &j->trace_parent
                                                              : NULL;
    memset(j->attempt_head, 0, sizeof j->attempt_head);
    if (parent && sl_trace_child_r(&j->w->rand, parent, &j->attempt_span) == 0) {
        char tp[SL_TRACEPARENT_LEN + 1];
        sl_trace_format(&j->attempt_span, tp);
        memcpy(j->attempt_head, tp, sizeof j->attempt_head);
    }
    if (on(j))
        j->tm_attempt = sl_otlp_now_ns();
}

void wk_trace_attempt_end(struct wk_job *j, int outcome) {
    if (!on(j) || !j->tm_attempt)
        return;
    struct sl_otlp_span s;
    sl_otlp_span_start_ctx(j->w->tracer, &s, "handler attempt", SL_OTLP_KIND_INTERNAL,
                           &j->attempt_span, j->trace.span_id);
    sl_otlp_span_set_start(&s, j->tm_attempt);
    sl_otlp_span_set_int(&s, "sluice.attempt", j->attempts);
    if (j->route) {
        sl_otlp_span_set_str(&s, "http.route", j->route->path);
        sl_otlp_span_set_str(&s, "sluice.handler", j->route->handler);
    }
    if (outcome == WK_REASON_COUNT) {
        sl_otlp_span_set_str(&s, "sluice.outcome", "ok");
    } else {
        const char *reason = wk_reason_name((enum wk_reason)outcome);
        sl_otlp_span_set_str(&s, "sluice.outcome", reason);
        sl_otlp_span_set_str(&s, "error.type", reason);
        sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, j->error);
    }
    sl_otlp_span_end(j->w->tracer, &s, 0);
    j->tm_attempt = 0;
}

void wk_trace_emitting(struct wk_job *j) {
    if (on(j) && !j->tm_emit)
        j->tm_emit = sl_otlp_now_ns();
}

static void produce_span(struct wk_job *j, const char *name, const char *topic, int64_t end) {
    struct sl_otlp_span s;
    if (sl_otlp_span_start(j->w->tracer, &s, name, SL_OTLP_KIND_PRODUCER, &j->trace, &j->w->rand) <
        0)
        return;
    sl_otlp_span_set_start(&s, j->tm_emit);
    sl_otlp_span_set_str(&s, "messaging.system", "kafka");
    sl_otlp_span_set_str(&s, "messaging.operation.type", "send");
    sl_otlp_span_set_str(&s, "messaging.destination.name", topic);
    sl_otlp_span_end(j->w->tracer, &s, end);
}

void wk_trace_finished(struct wk_job *j) {
    if (!on(j))
        return;
    struct wk_worker *w = j->w;
    int64_t now = sl_otlp_now_ns();
    if (j->tm_emit && j->want_reply)
        produce_span(j, "reply", w->topic_replies, now);
    if (j->tm_emit && j->want_dlq)
        produce_span(j, "dead-letter", w->topic_dlq, now);
    struct sl_otlp_span s;
    char name[300];
    snprintf(name, sizeof name, "process %s", w->topic_requests);
    sl_otlp_span_start_ctx(w->tracer, &s, name, SL_OTLP_KIND_CONSUMER, &j->trace,
                           j->has_trace_parent ? j->trace_parent.span_id : NULL);
    sl_otlp_span_set_start(&s, j->tm_received);
    if (j->has_trace_parent)
        sl_otlp_span_add_link(&s, &j->trace_parent);
    sl_otlp_span_set_str(&s, "messaging.system", "kafka");
    sl_otlp_span_set_str(&s, "messaging.operation.type", "process");
    sl_otlp_span_set_str(&s, "messaging.destination.name", w->topic_requests);
    sl_otlp_span_set_int(&s, "messaging.destination.partition.id", j->partition);
    sl_otlp_span_set_int(&s, "messaging.kafka.offset", j->offset);
    sl_otlp_span_set_str(&s, "messaging.consumer.group.name", w->s->group_id);
    sl_otlp_span_set_str(&s, "sluice.request_id", j->id);
    sl_otlp_span_set_int(&s, "sluice.attempts", j->attempts);
    if (j->decoded) {
        sl_otlp_span_set_strn(&s, "http.request.method", j->req.method.p, j->req.method.len);
        sl_otlp_span_set_strn(&s, "url.path", j->req.path.p, j->req.path.len);
        if (j->req.replay_count)
            sl_otlp_span_set_int(&s, "sluice.replay_count", j->req.replay_count);
    }
    if (j->route)
        sl_otlp_span_set_str(&s, "http.route", j->route->path);
    if (j->want_dlq) {
        const char *reason = wk_reason_name(j->reason);
        sl_otlp_span_set_str(&s, "error.type", reason);
        int ev = sl_otlp_span_add_event(&s, "dead-lettered", now);
        sl_otlp_event_set_str(&s, ev, "sluice.dlq.reason", reason);
        sl_otlp_event_set_str(&s, ev, "messaging.destination.name", w->topic_dlq);
        sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, j->error);
    }
    sl_otlp_span_end(w->tracer, &s, now);
}
