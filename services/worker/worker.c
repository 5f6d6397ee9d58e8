/* The worker service: the consumer group, jobs from record to stored offset, replies, DLQ. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/error.h"
#include "sluice/otlp.h"
#include "sluice/log.h"
#include "sluice/time.h"
#include "sluice/topics.h"
#include "frame.h"
#include "sandbox.h"
#include "trace_spans.h"
#include "worker_internal.h"

#define WK_STARTUP_TIMEOUT_MS 10000
#define WK_REEMIT_MS          1000

/* ---- lists ------------------------------------------------------------------------------ */

void wk_list_push(struct wk_list *l, struct wk_job *j) {
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

void wk_list_remove(struct wk_list *l, struct wk_job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
    l->n--;
}

/* ---- metrics and readiness -------------------------------------------------------------- */

static int register_metrics(struct wk_worker *w) {
    struct sl_metrics *m = w->metrics;
    struct sl_metric_family *exec = sl_metrics_counter(
        m, "sluice_worker_executions_total",
        "Handler attempts by route and outcome (ok or the failure reason).", "route,outcome");
    struct sl_metric_family *lat = sl_metrics_histogram(
        m, "sluice_worker_handler_duration_seconds", "Handler attempt duration, by route.", "route",
        sl_metrics_latency_buckets, sl_metrics_latency_nbuckets);
    struct sl_metric_family *dlq = sl_metrics_counter(
        m, "sluice_worker_dlq_records_total", "Records written to the DLQ, by reason.", "reason");
    w->consumer_lag = sl_metrics_gauge(
        m, "sluice_worker_consumer_lag",
        "Records of an assigned partition not finished yet: high watermark minus the commit "
        "point (0 after a revocation).",
        "partition");
    if (!exec || !lat || !dlq || !w->consumer_lag)
        return -ENOMEM;
    w->route_stats = calloc(w->routes->n + 1, sizeof *w->route_stats);
    if (!w->route_stats)
        return -ENOMEM;
    for (size_t i = 0; i <= w->routes->n; i++) {
        char label[600];
        if (i < w->routes->n)
            snprintf(label, sizeof label, "%s %s", w->routes->routes[i].method,
                     w->routes->routes[i].path);
        else
            snprintf(label, sizeof label, "none");
        for (int r = 0; r <= WK_REASON_COUNT; r++)
            if (!(w->route_stats[i].exec[r] = sl_metric_child2(
                      exec, label, r == WK_REASON_COUNT ? "ok" : wk_reason_name(r))))
                return -ENOMEM;
        if (!(w->route_stats[i].latency = sl_metric_child1(lat, label)))
            return -ENOMEM;
    }
    for (int r = 0; r < WK_REASON_COUNT; r++)
        if (!(w->dlq[r] = sl_metric_child1(dlq, wk_reason_name(r))))
            return -ENOMEM;
#define ONE(field, kind, name, help)                                                               \
    if (!(w->field = sl_metric_get(sl_metrics_##kind(m, name, help, NULL))))                       \
        return -ENOMEM;
    ONE(restarts, counter, "sluice_worker_child_restarts_total",
        "Handler processes that died (crash, timeout, memory) and were replaced.")
    ONE(in_flight, gauge, "sluice_worker_in_flight", "Records read and not yet finished.")
    ONE(produce_errors, counter, "sluice_worker_produce_errors_total",
        "Replies or DLQ records Kafka refused or lost (they are produced again).")
    ONE(dropped, counter, "sluice_worker_records_dropped_total",
        "Replies or DLQ records Kafka refused for good (too large, invalid); logged, not retried.")
    ONE(replays, counter, "sluice_worker_replays_total",
        "Requests without a reply partition (replays) executed; outcome only logged.")
    ONE(lag, gauge, "sluice_worker_queued", "Records read and waiting for a handler process.")
#undef ONE
#define HIST(field, name, help)                                                                    \
    if (!(w->field = sl_metric_get(sl_metrics_histogram(                                           \
              m, name, help, NULL, sl_metrics_hop_buckets, sl_metrics_hop_nbuckets))))             \
        return -ENOMEM;
    HIST(request_age, "sluice_worker_request_record_age_seconds",
         "Age of a request record (now minus its Kafka timestamp) when the worker reads it.")
    HIST(queue_wait, "sluice_worker_queue_wait_seconds",
         "Time from reading a request record to its first attempt starting in a handler process.")
    HIST(reply_ack, "sluice_worker_reply_ack_seconds",
         "Time from handing a reply record to the producer to the broker's acknowledgement.")
#undef HIST
    return 0;
}

static int ready(struct sl_buf *reason, void *data) {
    struct wk_worker *w = data;
    if (w->stopping) {
        sl_buf_append_str(reason, "shutting down");
        return 0;
    }
    if (!w->assigned_once) {
        sl_buf_append_str(reason, "no partition assignment yet");
        return 0;
    }
    if (wk_pool_ready(&w->pool) < w->nchildren) {
        sl_buf_append_str(reason, "handler processes starting");
        return 0;
    }
    return 1;
}

/* ---- partitions and offsets ------------------------------------------------------------- */

static struct wk_partition *partition(struct wk_worker *w, int32_t p) {
    if (p < 0)
        return NULL;
    if ((size_t)p >= w->nparts) {
        size_t n = (size_t)p + 1;
        struct wk_partition *np = realloc(w->parts, n * sizeof *np);
        if (!np)
            return NULL;
        for (size_t i = w->nparts; i < n; i++) {
            memset(&np[i], 0, sizeof np[i]);
            wk_offsets_init(&np[i].offsets);
        }
        w->parts = np;
        w->nparts = n;
    }
    return &w->parts[p];
}

/*
 * Consumer lag per assigned partition from librdkafka's cached values (no broker round trip):
 * the high watermark of the last fetch response, and the position when nothing is in flight.
 */
static void refresh_lag(struct wk_worker *w) {
    if (!w->consumer)
        return;
    rd_kafka_t *rk = sl_kafka_consumer_handle(w->consumer);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    if (!list)
        return;
    for (size_t i = 0; i < w->nparts; i++)
        if (w->parts[i].assigned)
            rd_kafka_topic_partition_list_add(list, w->topic_requests, (int32_t)i);
    if (list->cnt && rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < list->cnt; i++) {
            int32_t pn = list->elems[i].partition;
            struct wk_partition *p = &w->parts[pn];
            int64_t lo, hi;
            if (rd_kafka_get_watermark_offsets(rk, w->topic_requests, pn, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            int64_t lag = wk_offsets_lag(&p->offsets, hi, list->elems[i].offset);
            if (lag < 0)
                continue;
            if (!p->lag) {
                char label[16];
                snprintf(label, sizeof label, "%" PRId32, pn);
                if (!(p->lag = sl_metric_child1(w->consumer_lag, label)))
                    continue;
            }
            sl_gauge_set(p->lag, lag);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void pause_all(struct wk_worker *w, int pause) {
    rd_kafka_t *rk = sl_kafka_consumer_handle(w->consumer);
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(rk, &list) || !list)
        return;
    if (pause)
        rd_kafka_pause_partitions(rk, list);
    else
        rd_kafka_resume_partitions(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}

static void job_free(struct wk_job *j) {
    struct wk_worker *w = j->w;
    if (j->decoded)
        sl_envelope_request_free(&j->req);
    free(j->value);
    free(j->key);
    free(j->headers);
    sl_buf_free(&j->reply);
    free(j);
    w->jobs--;
    sl_gauge_set(w->in_flight, (int64_t)w->jobs);
    if (w->paused && !w->stopping && w->jobs <= (size_t)w->s->max_queued / 2) {
        w->paused = false;
        pause_all(w, 0);
    }
}

/* The record is finished: its offset may be committed once every lower one is. */
static void job_finish(struct wk_job *j) {
    struct wk_worker *w = j->w;
    struct wk_partition *p = partition(w, j->partition);
    int64_t store;
    wk_trace_finished(j);
    if (p && p->assigned && p->generation == j->generation &&
        wk_offsets_done(&p->offsets, j->offset, &store) == 1 && w->consumer)
        sl_kafka_consumer_store_offset(w->consumer, w->topic_requests, j->partition, store);
    job_free(j);
}

/* Log lines about a record name its request id and, when it carries a trace, the trace id. */
#define LOG_CTX(j)                                                                                 \
    { .request_id = (j)->id, .trace_id = (j)->trace_id[0] ? (j)->trace_id : NULL }

/* ---- emitting replies and DLQ records --------------------------------------------------- */

static void emit(struct wk_job *j);
static void give_up_prepare(struct wk_job *j, enum wk_reason reason);

/*
 * Kafka refused a record for good (too large, invalid): producing it again would fail the same
 * way and hold the partition's commit point forever. A handler's reply becomes a 502 + DLQ
 * record; a DLQ record is produced once more without the original value; what still does not
 * fit (a 502 reply, a value-less DLQ record) is logged, counted and given up.
 */
static void refused(struct wk_job *j, bool dlq, rd_kafka_resp_err_t kerr) {
    struct sl_log_ctx ctx = LOG_CTX(j);
    if (!dlq && !j->want_dlq) {
        j->reply_dropped = j->reply.len;
        snprintf(j->error, sizeof j->error, "reply of %zu bytes refused by Kafka: %s", j->reply.len,
                 rd_kafka_err2str(kerr));
        give_up_prepare(j, WK_REASON_INVALID_REPLY);
        return;
    }
    if (dlq && !j->dlq_value_dropped) {
        sl_log(SL_LOG_WARN, &ctx, "DLQ record refused by Kafka: %s; producing it without its value",
               rd_kafka_err2str(kerr));
        j->dlq_value_dropped = true;
        return;
    }
    sl_counter_inc(j->w->dropped);
    sl_log(SL_LOG_ERROR, &ctx, "%s of request %d:%" PRId64 " refused by Kafka: %s; dropped",
           dlq ? "DLQ record" : "reply", j->partition, j->offset, rd_kafka_err2str(kerr));
    if (dlq)
        j->dlq_acked = true;
    else
        j->reply_acked = true;
}

static void on_delivered(int err, rd_kafka_resp_err_t kerr, struct wk_job *j, bool dlq) {
    j->pending_acks--;
    bool *acked = dlq ? &j->dlq_acked : &j->reply_acked;
    int64_t delay = WK_REEMIT_MS;
    if (err < 0) {
        sl_counter_inc(j->w->produce_errors);
        if (sl_kafka_err_permanent(kerr)) {
            refused(j, dlq, kerr);
            delay = 0; /* what replaces it goes out at the next tick */
        } else {
            struct sl_log_ctx ctx = LOG_CTX(j);
            sl_log(SL_LOG_WARN, &ctx, "record not acknowledged: %s; producing it again",
                   rd_kafka_err2str(kerr));
        }
    } else {
        if (!dlq)
            sl_histogram_observe(j->w->reply_ack,
                                 (double)(sl_time_mono_ns() - j->reply_sent_ns) / 1e9);
        *acked = true;
    }
    if (j->pending_acks > 0)
        return;
    if ((!j->want_reply || j->reply_acked) && (!j->want_dlq || j->dlq_acked)) {
        job_finish(j);
        return;
    }
    j->due_ms = sl_time_now_ms() + delay; /* the tick produces the rest again */
    wk_list_push(&j->w->reemit, j);
}

static void on_reply_delivered(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                               void *opaque) {
    (void)partition;
    (void)offset;
    on_delivered(err, kerr, opaque, false);
}

static void on_dlq_delivered(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                             void *opaque) {
    (void)partition;
    (void)offset;
    struct wk_job *j = opaque;
    /* Counted when written, so a record produced again after a failure counts once. */
    if (err >= 0 && !j->dlq_acked)
        sl_counter_inc(j->w->dlq[j->reason]);
    on_delivered(err, kerr, j, true);
}

static int emit_dlq(struct wk_job *j, rd_kafka_resp_err_t *kerr) {
    struct wk_worker *w = j->w;
    struct wk_dlq_info info = {
        .reason = j->reason,
        .error = j->error,
        .attempts = j->attempts,
        .first_failure_ms = j->first_failure_ms,
        .worker = w->instance_id,
        .topic = w->topic_requests,
        .partition = j->partition,
        .offset = j->offset,
        .timestamp_ms = j->timestamp_ms,
        .original = j->headers,
        .n_original = j->nheaders,
        .reply_dropped = j->reply_dropped,
        .value_dropped = j->dlq_value_dropped ? j->vlen : 0,
    };
    struct wk_dlq_headers dh;
    int rc = wk_dlq_headers_build(&info, &dh);
    if (rc == 0) {
        rc = sl_kafka_produce(w->producer, w->topic_dlq, RD_KAFKA_PARTITION_UA, j->key, j->keylen,
                              j->dlq_value_dropped ? NULL : j->value,
                              j->dlq_value_dropped ? 0 : j->vlen, dh.h, dh.n, on_dlq_delivered, j,
                              kerr);
        wk_dlq_headers_free(&dh);
    }
    return rc;
}

/* Produces what is still unacknowledged; a refused produce is retried from the tick. */
static void emit(struct wk_job *j) {
    struct wk_worker *w = j->w;
    j->state = WK_JOB_EMITTING;
    wk_trace_emitting(j);
    j->due_ms = 0;
    if (!w->producer || w->producer_closed) {
        wk_list_push(&w->reemit, j);
        return;
    }
    int failed = 0;
    size_t idlen = strlen(j->id);
    if (j->want_reply && !j->reply_acked) {
        const struct sl_kafka_header h[] = {{"sluice-id", j->id, idlen}};
        rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        int rc =
            sl_kafka_produce(w->producer, w->topic_replies, j->req.reply_partition, j->id, idlen,
                             j->reply.data, j->reply.len, h, 1, on_reply_delivered, j, &kerr);
        if (rc == 0) {
            j->pending_acks++;
            j->reply_sent_ns = sl_time_mono_ns();
        } else if (sl_kafka_err_permanent(kerr)) {
            sl_counter_inc(w->produce_errors);
            bool was_dlq = j->want_dlq;
            refused(j, false, kerr);
            if (!was_dlq && j->pending_acks == 0) {
                emit(j); /* the 502 and the DLQ record in its place */
                return;
            }
        } else {
            failed = 1;
        }
    }
    if (j->want_dlq && !j->dlq_acked) {
        rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        int rc = emit_dlq(j, &kerr);
        if (rc < 0 && sl_kafka_err_permanent(kerr)) {
            sl_counter_inc(w->produce_errors);
            refused(j, true, kerr); /* the value dropped, or given up */
            if (!j->dlq_acked && (rc = emit_dlq(j, &kerr)) < 0 && sl_kafka_err_permanent(kerr))
                refused(j, true, kerr); /* given up */
        }
        if (rc == 0)
            j->pending_acks++;
        else if (!j->dlq_acked)
            failed = 1;
    }
    if (failed) {
        sl_counter_inc(w->produce_errors);
        if (j->pending_acks == 0) {
            j->due_ms = sl_time_now_ms() + WK_REEMIT_MS;
            wk_list_push(&w->reemit, j);
        }
    } else if (j->pending_acks == 0) {
        if ((!j->want_reply || j->reply_acked) && (!j->want_dlq || j->dlq_acked))
            job_finish(j);
        else {
            j->due_ms = sl_time_now_ms();
            wk_list_push(&w->reemit, j);
        }
    }
}

/* A decimal header value in [0, max] into *out: 0, or -1 when it is not one. */
static int header_decimal(const struct sl_kafka_header *h, int64_t max, int64_t *out) {
    const char *p = h->value;
    int64_t v = 0;
    if (h->len == 0 || h->len > 19)
        return -1;
    for (size_t i = 0; i < h->len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (max - (p[i] - '0')) / 10)
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * Where the reply of a record that does not decode goes: the gateway writes the request id and
 * its replies partition into Kafka headers as well (sluice-id, sluice-reply-partition), so the
 * client gets its 502 at once instead of holding an in-flight slot until the deadline. Fills
 * j->id and j->req's id and reply_partition; false when the headers give no usable address or
 * sluice-deadline-ms says the gateway no longer waits.
 */
static bool reply_address_from_headers(struct wk_job *j) {
    const struct sl_kafka_header *id = NULL;
    int64_t partition = -1, deadline = -1;
    for (size_t i = 0; i < j->nheaders; i++) {
        const struct sl_kafka_header *h = &j->headers[i];
        if (!strcmp(h->name, "sluice-id"))
            id = h;
        else if (!strcmp(h->name, "sluice-reply-partition") &&
                 header_decimal(h, INT32_MAX, &partition) < 0)
            return false;
        else if (!strcmp(h->name, "sluice-deadline-ms") &&
                 header_decimal(h, INT64_MAX, &deadline) < 0)
            return false;
    }
    if (!id || id->len == 0 || id->len >= sizeof j->id || memchr(id->value, '\0', id->len) ||
        partition < 0 || (deadline >= 0 && sl_time_now_ms() >= deadline))
        return false;
    memcpy(j->id, id->value, id->len);
    j->id[id->len] = '\0';
    j->req.id = (struct sl_str){.p = j->id, .len = id->len};
    j->req.reply_partition = (int32_t)partition;
    return true;
}

/* Dead-letters the record (without producing yet); the gateway gets a 502 reply when it still
 * waits for one. */
static void give_up_prepare(struct wk_job *j, enum wk_reason reason) {
    struct wk_worker *w = j->w;
    bool has_address = j->decoded ? j->req.reply_partition >= 0 : reply_address_from_headers(j);
    j->reason = reason;
    if (!j->first_failure_ms)
        j->first_failure_ms = sl_time_now_ms();
    struct sl_log_ctx ctx = LOG_CTX(j);
    sl_log(SL_LOG_WARN, &ctx,
           "request %d:%" PRId64 " to the DLQ after %" PRIu32 " attempt(s): %s: %s", j->partition,
           j->offset, j->attempts, wk_reason_name(reason), j->error);
    j->want_dlq = true;
    j->want_reply = false;
    if (has_address && reason != WK_REASON_EXPIRED) {
        const char *cls = wk_reason_name(reason);
        struct sl_envelope_reply rep = {
            .id = j->req.id,
            .status = 502,
            .has_error = true,
            .error_class = {cls, strlen(cls)},
            .error_message = {j->error, strlen(j->error)},
        };
        sl_buf_reset(&j->reply);
        if (sl_envelope_encode_reply(&rep, &j->reply) == 0)
            j->want_reply = true;
    }
    j->reply_acked = j->dlq_acked = false;
    if (!has_address)
        sl_counter_inc(w->replays);
}

static void give_up(struct wk_job *j, enum wk_reason reason) {
    give_up_prepare(j, reason);
    emit(j);
}

/* ---- attempts --------------------------------------------------------------------------- */

static struct wk_route_stats *stats(struct wk_job *j) {
    return &j->w->route_stats[j->route ? j->route_idx : j->w->routes->n];
}

static void attempt_done(struct wk_job *j, int outcome) {
    wk_trace_attempt_end(j, outcome);
    struct wk_route_stats *st = stats(j);
    sl_counter_inc(st->exec[outcome]);
    sl_histogram_observe(st->latency, (double)(sl_time_mono_ns() - j->start_ns) / 1e9);
}

/* An attempt failed: retried after a backoff, or given up (docs/worker.md, failures). */
static void job_failed(struct wk_job *j, enum wk_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_failed(struct wk_job *j, enum wk_reason reason, const char *fmt, ...) {
    struct wk_worker *w = j->w;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    attempt_done(j, (int)reason);
    int64_t now = sl_time_now_ms();
    if (!j->first_failure_ms)
        j->first_failure_ms = now;
    j->reason = reason;
    struct sl_log_ctx ctx = LOG_CTX(j);
    sl_log(SL_LOG_WARN, &ctx, "attempt %" PRIu32 " failed: %s: %s", j->attempts,
           wk_reason_name(reason), j->error);
    if (w->closing) {
        /* Killed by the stop after the grace period: not the request's fault. Its offset is not
         * stored, so the group reads it again, as for the jobs that never started. */
        job_free(j);
        return;
    }
    int64_t backoff = wk_backoff_ms(w->s->retry_backoff_ms, j->attempts, 2000, &w->backoff_rng);
    if (!w->stopping && j->attempts < (uint32_t)w->s->max_attempts &&
        now + backoff < j->req.deadline_ms && reason != WK_REASON_DECODE_ERROR && !j->final) {
        j->state = WK_JOB_BACKOFF;
        j->due_ms = now + backoff;
        wk_list_push(&w->backoff, j);
        return;
    }
    give_up(j, reason);
}

/* A child finished an attempt with a reply frame (payload borrowed). */
static void job_replied(struct wk_job *j, const uint8_t *payload, size_t len) {
    struct sl_envelope_reply rep;
    struct sl_envelope_error err;
    if (len < WK_REPLY_HEAD) {
        job_failed(j, WK_REASON_INVALID_REPLY, "reply frame without its flags");
        return;
    }
    uint8_t flags = payload[0];
    payload += WK_REPLY_HEAD;
    len -= WK_REPLY_HEAD;
    int rc = sl_envelope_decode_reply(payload, len, &j->w->reply_limits, &rep, &err);
    if (rc < 0) {
        job_failed(j, WK_REASON_INVALID_REPLY, "reply does not decode: %s: %s", err.field,
                   err.message);
        return;
    }
    bool same = rep.id.len == j->req.id.len && !memcmp(rep.id.p, j->req.id.p, rep.id.len);
    if (rep.has_error || !same) {
        enum wk_reason r = rep.has_error ? wk_reason_parse(rep.error_class.p, rep.error_class.len)
                                         : WK_REASON_INVALID_REPLY;
        char msg[200];
        snprintf(msg, sizeof msg, "%.*s", (int)rep.error_message.len,
                 rep.error_message.p ? rep.error_message.p : "");
        sl_envelope_reply_free(&rep);
        j->final = rep.has_error && (flags & WK_REPLY_FINAL);
        if (!same && !rep.has_error)
            job_failed(j, r, "reply for another request id");
        else
            job_failed(j, r, "%s", msg);
        return;
    }
    uint32_t status = rep.status;
    sl_envelope_reply_free(&rep);
    if (len > SL_KAFKA_MAX_ENVELOPE_BYTES && j->req.reply_partition >= 0) {
        /* No record may carry it; the handler would answer the same again: 502 + DLQ. */
        attempt_done(j, WK_REASON_INVALID_REPLY);
        j->reply_dropped = len;
        snprintf(j->error, sizeof j->error,
                 "reply of %zu bytes is over the %u-byte record limit; dropped", len,
                 (unsigned)SL_KAFKA_MAX_ENVELOPE_BYTES);
        give_up(j, WK_REASON_INVALID_REPLY);
        return;
    }
    attempt_done(j, WK_REASON_COUNT);
    struct sl_log_ctx ctx = LOG_CTX(j);
    if (j->req.reply_partition < 0) {
        sl_counter_inc(j->w->replays);
        sl_log(SL_LOG_INFO, &ctx, "replayed request executed: status %" PRIu32, status);
        job_finish(j);
        return;
    }
    sl_buf_reset(&j->reply);
    if (sl_buf_append(&j->reply, payload, len) < 0) {
        job_failed(j, WK_REASON_INVALID_REPLY, "reply too large");
        return;
    }
    j->want_reply = true;
    emit(j);
}

/* How long an attempt may run: the route's timeout (or the worker's), within the deadline. */
static int64_t attempt_timeout_ms(const struct wk_job *j) {
    int64_t timeout =
        j->route && j->route->timeout_ms ? j->route->timeout_ms : j->w->s->handler_timeout_ms;
    int64_t left = j->req.deadline_ms - sl_time_now_ms();
    if (left < timeout)
        timeout = left > 1 ? left : 1;
    return timeout;
}

/* Gives idle children queued work. */
static void dispatch(struct wk_worker *w) {
    if (w->closing)
        return;
    struct wk_child *c;
    while (w->queue.head && (c = wk_pool_idle(&w->pool))) {
        struct wk_job *j = w->queue.head;
        wk_list_remove(&w->queue, j);
        if (sl_time_now_ms() >= j->req.deadline_ms) {
            /* The gateway has answered 504 at the deadline: expired, and no reply. */
            char was[sizeof j->error];
            snprintf(was, sizeof was, "%s", j->error);
            if (j->attempts)
                snprintf(j->error, sizeof j->error,
                         "deadline passed before attempt %" PRIu32 " (attempt %" PRIu32 ": %.180s)",
                         j->attempts + 1, j->attempts, was);
            else
                snprintf(j->error, sizeof j->error, "deadline passed before execution");
            give_up(j, WK_REASON_EXPIRED);
            continue;
        }
        j->attempts++;
        j->req.attempt = j->attempts;
        j->state = WK_JOB_RUNNING;
        j->start_ns = sl_time_mono_ns();
        /* Read before the run: the job may be finished by the time it returns. */
        double waited = j->attempts == 1 ? (double)(j->start_ns - j->read_ns) / 1e9 : -1;
        wk_trace_attempt_start(j);
        if (wk_pool_run(c, j->attempt_head, sizeof j->attempt_head, j->value, j->vlen,
                        attempt_timeout_ms(j), j) < 0) {
            j->attempts--;
            j->state = WK_JOB_QUEUED;
            wk_list_push(&w->queue, j);
            break;
        }
        if (waited >= 0)
            sl_histogram_observe(w->queue_wait, waited);
    }
    sl_gauge_set(w->lag, (int64_t)w->queue.n);
}

/* ---- consuming -------------------------------------------------------------------------- */

static int copy_record(struct wk_job *j, const struct sl_kafka_message *msg) {
    if (!(j->value = malloc(msg->vlen ? msg->vlen : 1)))
        return -ENOMEM;
    if (msg->vlen)
        memcpy(j->value, msg->value, msg->vlen);
    j->vlen = msg->vlen;
    if (msg->key) {
        if (!(j->key = malloc(msg->keylen ? msg->keylen : 1)))
            return -ENOMEM;
        memcpy(j->key, msg->key, msg->keylen);
        j->keylen = msg->keylen;
    }
    /* Headers: one block holding the array, then every name and value. */
    size_t n = 0, bytes = 0;
    const char *name;
    const void *value;
    size_t len;
    while (sl_kafka_message_header_at(msg, n, &name, &value, &len) == 0) {
        bytes += strlen(name) + 1 + len;
        n++;
    }
    if (!n)
        return 0;
    j->headers = malloc(n * sizeof *j->headers + bytes);
    if (!j->headers)
        return -ENOMEM;
    char *p = (char *)(j->headers + n);
    for (size_t i = 0; i < n; i++) {
        sl_kafka_message_header_at(msg, i, &name, &value, &len);
        size_t nl = strlen(name) + 1;
        memcpy(p, name, nl);
        j->headers[i].name = p;
        p += nl;
        if (len)
            memcpy(p, value, len);
        j->headers[i].value = p;
        j->headers[i].len = len;
        p += len;
    }
    j->nheaders = n;
    return 0;
}

/* The record's trace context, parsed once: the gateway's traceparent header, else the
 * envelope's. Its id goes on log lines; its span is the parent of the worker's spans. */
static void record_trace(struct wk_job *j) {
    struct sl_trace_ctx *ctx = &j->trace_parent;
    bool found = false;
    for (size_t i = 0; i < j->nheaders && !found; i++)
        if (!strcmp(j->headers[i].name, "traceparent"))
            found = sl_trace_parse(j->headers[i].value, j->headers[i].len, ctx) == 0;
    if (!found && j->decoded && j->req.trace.len)
        found = sl_trace_parse(j->req.trace.p, j->req.trace.len, ctx) == 0;
    j->has_trace_parent = found;
    if (found)
        sl_trace_id_hex(ctx, j->trace_id);
}

/* Full jitter (AWS's "exponential backoff and jitter"): a delay drawn from [0, ceiling], the
 * ceiling base × 2^(attempt−1) up to cap, so that retries of many failed requests spread out. */
int64_t wk_backoff_ms(int64_t base, uint32_t attempt, int64_t cap, uint64_t *rng) {
    int64_t ceiling = base;
    for (uint32_t i = 1; i < attempt && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;
    /* xorshift64*: no cryptography needed to spread retries */
    uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15u;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return (int64_t)((x * 0x2545f4914f6cdd1du) % (uint64_t)(ceiling + 1));
}

static void on_message(const struct sl_kafka_message *msg, void *opaque) {
    struct wk_worker *w = opaque;
    struct wk_partition *p = partition(w, msg->partition);
    struct wk_job *j = calloc(1, sizeof *j);
    int tracked = p && j ? wk_offsets_track(&p->offsets, msg->offset) : -ENOMEM;
    if (tracked == -EINVAL) { /* at or below an offset in flight: a second delivery of a record */
        SL_WARN("record %d:%" PRId64 " delivered again while in flight; the first delivery runs it",
                msg->partition, msg->offset);
        free(j);
        return;
    }
    if (tracked < 0) {
        /* Held: the partition commits nothing past it, so it is read again after the next
         * assignment (a rebalance or a restart), not committed unseen. */
        if (p)
            wk_offsets_hold(&p->offsets, msg->offset);
        SL_ERROR("out of memory taking record %d:%" PRId64 "; the partition commits nothing past "
                 "it until it is reassigned or the worker restarts, then it is read again",
                 msg->partition, msg->offset);
        free(j);
        return;
    }
    j->w = w;
    j->partition = msg->partition;
    j->offset = msg->offset;
    j->timestamp_ms = msg->timestamp_ms;
    j->read_ns = sl_time_mono_ns();
    double age = sl_kafka_message_age_s(msg);
    if (age >= 0)
        sl_histogram_observe(w->request_age, age);
    j->generation = p->generation;
    sl_buf_init(&j->reply, WK_FRAME_MAX);
    w->jobs++;
    sl_gauge_set(w->in_flight, (int64_t)w->jobs);
    if (w->jobs >= (size_t)w->s->max_queued && !w->paused) {
        w->paused = true;
        pause_all(w, 1);
    }
    if (copy_record(j, msg) < 0) {
        SL_ERROR("out of memory copying record %d:%" PRId64, msg->partition, msg->offset);
        job_free(j); /* tracked but never finished: the partition stops committing */
        return;
    }
    struct sl_envelope_error err;
    int rc = sl_envelope_decode_request(j->value, j->vlen, &w->limits, &j->req, &err);
    j->decoded = rc == 0;
    record_trace(j);
    wk_trace_received(j);
    if (rc < 0) {
        snprintf(j->id, sizeof j->id, "%.*s", (int)(j->keylen < 64 ? j->keylen : 64),
                 j->key ? j->key : "");
        snprintf(j->error, sizeof j->error, "%s: %s", err.field, err.message);
        give_up(j, WK_REASON_DECODE_ERROR);
        return;
    }
    j->decoded = true;
    snprintf(j->id, sizeof j->id, "%.*s", (int)(j->req.id.len < 64 ? j->req.id.len : 64),
             j->req.id.p);
    struct sl_route_match m;
    if (sl_routes_match(w->routes, j->req.method.p, j->req.method.len, j->req.path.p,
                        j->req.path.len, &m)) {
        j->route = m.route;
        j->route_idx = (size_t)(m.route - w->routes->routes);
    }
    if (sl_time_now_ms() >= j->req.deadline_ms) {
        snprintf(j->error, sizeof j->error, "read %" PRId64 " ms after its deadline",
                 sl_time_now_ms() - j->req.deadline_ms);
        give_up(j, WK_REASON_EXPIRED);
        return;
    }
    /* One decision per request: the gateway authorized the route it names (the envelope's
     * resource); a worker whose table maps the path elsewhere, or nowhere, runs nothing. */
    const struct sl_str res = j->req.resource;
    if (res.len && (!j->route || strlen(j->route->path) != res.len ||
                    memcmp(j->route->path, res.p, res.len))) {
        snprintf(j->error, sizeof j->error,
                 "the gateway's route %.*s is not this worker's route for %.*s %.*s (%s)",
                 (int)(res.len < 100 ? res.len : 100), res.p, (int)j->req.method.len,
                 j->req.method.p, (int)(j->req.path.len < 100 ? j->req.path.len : 100),
                 j->req.path.p, j->route ? j->route->path : "no route");
        give_up(j, WK_REASON_ROUTE_UNKNOWN);
        return;
    }
    j->state = WK_JOB_QUEUED;
    wk_list_push(&w->queue, j);
    dispatch(w);
}

/* Drops waiting jobs of partitions no longer ours: their new owner reads them again. */
static void drop_revoked(struct wk_worker *w, struct wk_list *l) {
    for (struct wk_job *j = l->head, *next; j; j = next) {
        next = j->next;
        struct wk_partition *p = partition(w, j->partition);
        if (p && p->generation != j->generation) {
            wk_list_remove(l, j);
            job_free(j);
        }
    }
}

static void on_rebalance(struct sl_kafka_consumer *c, int assigned,
                         const rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct wk_worker *w = opaque;
    (void)c;
    for (int i = 0; i < parts->cnt; i++) {
        struct wk_partition *p = partition(w, parts->elems[i].partition);
        if (!p)
            continue;
        p->assigned = assigned;
        p->generation++;
        wk_offsets_reset(&p->offsets);
        if (p->lag)
            sl_gauge_set(p->lag, 0); /* no longer ours: the new owner reports it */
    }
    SL_INFO("partitions %s: %d", assigned ? "assigned" : "revoked", parts->cnt);
    if (assigned) {
        w->assigned_once = true;
        if (w->paused || w->stopping)
            pause_all(w, 1);
    } else {
        drop_revoked(w, &w->queue);
        drop_revoked(w, &w->backoff);
        sl_kafka_consumer_commit(w->consumer);
    }
}

/* ---- the tick: retries, re-produces, the pool, shutdown --------------------------------- */

static void finish_stop(struct wk_worker *w);

static void on_tick(uv_timer_t *t) {
    struct wk_worker *w = t->data;
    int64_t now = sl_time_now_ms();
    for (struct wk_job *j = w->backoff.head, *next; j; j = next) {
        next = j->next;
        if (now >= j->due_ms) {
            wk_list_remove(&w->backoff, j);
            j->state = WK_JOB_QUEUED;
            wk_list_push(&w->queue, j);
        }
    }
    if (!w->closing)
        wk_pool_tick(&w->pool);
    for (struct wk_job *j = w->reemit.head, *next; j; j = next) {
        next = j->next;
        if (now >= j->due_ms && w->producer && !w->producer_closed) {
            wk_list_remove(&w->reemit, j);
            emit(j);
        }
    }
    if (!w->closing)
        dispatch(w);
    if (!w->stopping && sl_time_mono_ns() >= w->lag_due_ns) {
        w->lag_due_ns = sl_time_mono_ns() + (uint64_t)WK_LAG_MS * 1000000u;
        refresh_lag(w);
    }
    if (w->stopping && !w->closing && (w->jobs == 0 || sl_time_mono_ns() >= w->stop_deadline_ns))
        finish_stop(w);
}

/* ---- the pool's events: what a child's result means is decided here ---------------------- */

static void pool_on_reply(void *job, const uint8_t *payload, size_t len, void *data) {
    (void)data;
    job_replied(job, payload, len);
}

static void pool_on_failed(void *job, enum wk_reason reason, const char *why, void *data) {
    (void)data;
    job_failed(job, reason, "%s", why);
}

static void pool_on_child_died(void *data) {
    struct wk_worker *w = data;
    sl_counter_inc(w->restarts);
}

static void pool_on_idle(void *data) {
    dispatch(data);
}

static struct wk_pool_events pool_events(struct wk_worker *w) {
    return (struct wk_pool_events){
        .on_reply = pool_on_reply,
        .on_failed = pool_on_failed,
        .on_child_died = pool_on_child_died,
        .on_idle = pool_on_idle,
        .data = w,
    };
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* Plugins are loaded by the handler processes; a path that cannot be opened would only show
 * as children failing to start, over and over. Said at start instead, route by route. */
static int check_plugins(const struct wk_worker *w, struct sl_buf *errors) {
    int bad = 0;
    for (size_t i = 0; i < w->routes->n; i++) {
        const struct sl_route *r = &w->routes->routes[i];
        struct stat st;
        if (!r->plugin)
            continue;
        if (stat(r->plugin, &st) < 0 || access(r->plugin, R_OK) < 0) {
            sl_buf_printf(errors, "routes[%zu].plugin (%s %s): cannot open %s: %s\n", r->index,
                          r->method, r->path, r->plugin, strerror(errno));
            bad = 1;
        } else if (!S_ISREG(st.st_mode)) {
            sl_buf_printf(errors, "routes[%zu].plugin (%s %s): %s is not a file\n", r->index,
                          r->method, r->path, r->plugin);
            bad = 1;
        }
    }
    return bad ? SL_ERR_CONFIG : 0;
}

int wk_worker_new(uv_loop_t *loop, const struct wk_settings *s, const char *const *kafka_props,
                  const char *instance_id, const char *exe, struct wk_worker **out,
                  struct sl_buf *errors) {
    struct wk_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->s = s;
    w->kafka_props = kafka_props;
    snprintf(w->instance_id, sizeof w->instance_id, "%s", instance_id);
    snprintf(w->exe, sizeof w->exe, "%s", exe);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_REQUESTS, w->topic_requests, WK_TOPIC_MAX);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_REPLIES, w->topic_replies, WK_TOPIC_MAX);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_DLQ, w->topic_dlq, WK_TOPIC_MAX);
    w->limits = sl_envelope_limits_default((size_t)s->max_body_bytes);
    /* An echo answer can be 6 times its request (every byte escaped): up to a frame. */
    w->reply_limits = w->limits;
    w->reply_limits.max_input = w->reply_limits.max_body = WK_FRAME_MAX;
    int rc = s->routes_file ? sl_routes_load_file(s->routes_file, &w->routes, errors)
                            : sl_routes_default(&w->routes);
    if (rc == 0)
        rc = check_plugins(w, errors);
    /* Checked here, so that a bad user stops the start (and --check), not each child. */
    if (geteuid() == 0) {
        unsigned uid, gid;
        int urc = wk_sandbox_resolve_user(s->handler_user, &uid, &gid, errors);
        if (urc < 0) {
            sl_buf_append_str(errors, "\n");
            rc = rc < 0 ? rc : urc;
        } else {
            SL_INFO("running as root: handler processes switch to %s (uid %u, gid %u)",
                    s->handler_user, uid, gid);
        }
    }
    w->nchildren = (size_t)wk_settings_concurrency(s);
    if (rc == 0)
        rc = wk_pool_init(&w->pool, &(struct wk_pool_config){
                                        .loop = loop,
                                        .exe = w->exe,
                                        .nchildren = w->nchildren,
                                        .memory_limit = (uint64_t)s->child_memory_mb << 20,
                                        .events = pool_events(w),
                                    });
    if (rc == 0 && !(w->metrics = sl_metrics_new()))
        rc = -ENOMEM;
    if (rc == 0)
        rc = register_metrics(w);
    sl_trace_rand_init(&w->rand);
    w->backoff_rng = sl_time_mono_ns() ^ ((uint64_t)getpid() << 32);
    if (rc == 0)
        rc = sl_otlp_tracer_for_service(s->otlp_endpoint, "sluice-worker", w->metrics, &w->tracer,
                                        errors);
    if (rc < 0) {
        sl_metrics_free(w->metrics);
        free(w->route_stats);
        wk_pool_free(&w->pool);
        sl_routes_free(w->routes);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int wk_worker_start(struct wk_worker *w, struct sl_buf *errors) {
    static const enum sl_topic own_topics[] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_DLQ};
    int rc;
    /* First, so that /healthz answers while the worker waits for Kafka (/readyz says 503). */
    struct sl_admin_options ao = {.metrics = w->metrics, .ready = ready, .data = w};
    char listen[SL_CONFIG_HOST_MAX + 16];
    const struct sl_config_hostport *hp = &w->s->admin_listen;
    snprintf(listen, sizeof listen, strchr(hp->host, ':') ? "[%s]:%d" : "%s:%d", hp->host,
             hp->port);
    if ((rc = sl_admin_init(&w->admin, w->loop, &ao)) < 0 ||
        (rc = sl_admin_start(w->admin, hp->host, hp->port)) < 0) {
        sl_buf_printf(errors, "SLUICE_ADMIN_LISTEN: cannot listen on %s: %s\n", listen,
                      sl_strerror(rc));
        return rc;
    }
    rc = sl_topics_ensure(w->kafka_props, w->s->topic_prefix, own_topics, 3,
                          w->s->auto_create_topics, WK_STARTUP_TIMEOUT_MS, errors);
    if (rc < 0)
        return rc;
    char errstr[SL_KAFKA_ERRSTR_LEN] = "";
    /* Replies: one produce request in flight at a time, so the replies that finish while it
     * is out go together in the next (each gateway reads one partition, so they can share a
     * batch); when nothing is in flight a reply goes at once. */
    static const char *const producer_defaults[] = {"max.in.flight.requests.per.connection", "1",
                                                    NULL};
    static const char *const producer_owned[] = {"enable.idempotence", "true", "acks", "all", NULL};
    /* What the worker owns cannot be overridden through SLUICE_KAFKA_*; its defaults can
     * (docs/internals/kafka.md). */
    const char **pprops = sl_config_kafka_merge(w->kafka_props, producer_defaults, producer_owned,
                                                "replies producer");
    if (!pprops)
        return -ENOMEM;
    rc = sl_kafka_producer_new(w->loop, pprops, &w->producer, errstr, sizeof errstr);
    free(pprops);
    if (rc < 0) {
        sl_buf_printf(errors, "kafka producer: %s", errstr);
        return rc;
    }
    /* Membership comes from the worker's settings, and at-least-once needs the offsets the
     * worker stores to be the only ones committed. */
    const char *const owned[] = {"group.id",
                                 w->s->group_id,
                                 "group.instance.id",
                                 w->instance_id,
                                 "partition.assignment.strategy",
                                 "range",
                                 "enable.auto.commit",
                                 "true",
                                 "enable.auto.offset.store",
                                 "false",
                                 "isolation.level",
                                 "read_committed",
                                 NULL};
    static const char *const defaults[] = {
        "auto.offset.reset", "earliest",
        /* The redelivery window after a crash: what was stored, not yet sent. */
        "auto.commit.interval.ms", "1000",
        /* A static member does not leave the group when it stops: its partitions wait this
         * long for it to come back before they move, so it must stay well inside a request's
         * deadline (29 s by default), unlike librdkafka's 45 s. A restart within it keeps the
         * partitions. */
        "session.timeout.ms", "10000", NULL};
    const char **props =
        sl_config_kafka_merge(w->kafka_props, defaults, owned, "requests consumer");
    if (!props)
        return -ENOMEM;
    rc = sl_kafka_consumer_new(w->loop, props, on_message, w, &w->consumer, errstr, sizeof errstr);
    free(props);
    if (rc < 0) {
        sl_buf_printf(errors, "kafka consumer: %s", errstr);
        return rc;
    }
    sl_kafka_consumer_set_rebalance_cb(w->consumer, on_rebalance, w);
    uv_timer_init(w->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, WK_TICK_MS, WK_TICK_MS);
    if ((rc = wk_pool_start(&w->pool)) < 0)
        return rc;
    const char *topics[] = {w->topic_requests};
    if ((rc = sl_kafka_consumer_subscribe(w->consumer, topics, 1)) < 0) {
        sl_buf_printf(errors, "cannot subscribe to %s", w->topic_requests);
        return rc;
    }
    SL_INFO("worker %s: %zu handler processes, group %s on %s", w->instance_id, w->nchildren,
            w->s->group_id, w->topic_requests);
    return 0;
}

/* ---- stopping --------------------------------------------------------------------------- */

static void step_done(void *data) {
    struct wk_worker *w = data;
    if (--w->pending_closes > 0)
        return;
    for (size_t i = 0; i < w->nparts; i++)
        wk_offsets_free(&w->parts[i].offsets);
    free(w->parts);
    sl_otlp_tracer_free(w->tracer); /* a last flush, bounded */
    sl_metrics_free(w->metrics);
    free(w->route_stats);
    wk_pool_free(&w->pool);
    sl_routes_free(w->routes);
    void (*cb)(void *) = w->stop_cb;
    void *data2 = w->stop_data;
    free(w);
    if (cb)
        cb(data2);
}

static void on_tick_closed(uv_handle_t *h) {
    step_done(h->data);
}

static void free_list(struct wk_list *l) {
    while (l->head) {
        struct wk_job *j = l->head;
        wk_list_remove(l, j);
        job_free(j);
    }
}

static void after_consumer(void *data) {
    struct wk_worker *w = data;
    w->pending_closes = 1; /* released below, after every close has been started */
    if (w->admin) {
        w->pending_closes++;
        sl_admin_close(w->admin, step_done, w);
        w->admin = NULL;
    }
    if (w->tick.data) {
        w->pending_closes++;
        uv_close((uv_handle_t *)&w->tick, on_tick_closed);
    }
    step_done(w);
}

/* The producer is flushed (every reply and DLQ record reported): commit and leave. */
static void after_producer(void *data) {
    struct wk_worker *w = data;
    w->producer = NULL;
    free_list(&w->reemit);
    if (w->consumer) {
        struct sl_kafka_consumer *c = w->consumer;
        w->consumer = NULL;
        sl_kafka_consumer_close(c, after_consumer, w);
        return;
    }
    after_consumer(w);
}

/* The children are gone: flush what they produced, then commit and leave. */
static void on_pool_closed(void *data) {
    struct wk_worker *w = data;
    free_list(&w->queue);
    free_list(&w->backoff);
    if (w->producer) {
        struct sl_kafka_producer *p = w->producer;
        w->producer_closed = true; /* its pointer stays valid until after_producer */
        sl_kafka_producer_close(p, 5000, after_producer, w);
        return;
    }
    after_producer(w);
}

static void finish_stop(struct wk_worker *w) {
    if (w->jobs)
        SL_WARN("stopping with %zu request(s) unfinished; they are read again later", w->jobs);
    w->closing = 1;
    wk_pool_close(&w->pool, on_pool_closed, w);
}

void wk_worker_stop(struct wk_worker *w, void (*cb)(void *data), void *data) {
    if (w->stopping)
        return;
    w->stopping = true;
    w->stop_cb = cb;
    w->stop_data = data;
    w->stop_deadline_ns = sl_time_mono_ns() + (uint64_t)w->s->shutdown_grace_ms * 1000000u;
    if (w->consumer)
        pause_all(w, 1);
    /* Not started: their offsets are not stored, so the group hands them out again. */
    free_list(&w->queue);
    free_list(&w->backoff);
    if (!w->tick.data) { /* never started */
        finish_stop(w);
        return;
    }
    SL_INFO("stopping: %zu request(s) in flight, grace %" PRId64 " ms", w->jobs,
            w->s->shutdown_grace_ms);
}
