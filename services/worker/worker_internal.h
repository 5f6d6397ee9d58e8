/* What the worker's files share: the service object, jobs (one per record) and children. */
#ifndef SLUICE_WORKER_INTERNAL_H
#define SLUICE_WORKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "dlq.h"
#include "frame.h"
#include "offsets.h"
#include "pool.h"
#include "settings.h"
#include "sluice/admin.h"
#include "sluice/buf.h"
#include "sluice/envelope.h"
#include "sluice/kafka.h"
#include "sluice/metrics.h"
#include "sluice/routes.h"
#include "sluice/trace.h"
#include "worker.h"

#define WK_TOPIC_MAX 256
#define WK_TICK_MS   10
#define WK_LAG_MS    1000 /* how often the consumer lag gauges are refreshed */

enum wk_job_state {
    WK_JOB_QUEUED = 0, /* waiting for an idle child */
    WK_JOB_RUNNING,    /* in a child */
    WK_JOB_BACKOFF,    /* failed, waiting for its retry time */
    WK_JOB_EMITTING,   /* reply and/or DLQ record produced, waiting for acknowledgements */
};

/*
 * One consumed record, from the message callback until its offset may be stored. Owns copies
 * of the record's value, key and headers (the decoded request points into the value). Jobs are
 * linked in exactly one list of the worker (queue, backoff, or none while running/emitting)
 * and freed by job_finish.
 */
struct wk_job {
    struct wk_worker *w;
    struct wk_job *prev, *next;
    enum wk_job_state state;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms;
    uint32_t generation; /* of the partition's assignment when read */
    char *value;
    size_t vlen;
    char *key;
    size_t keylen;
    struct sl_kafka_header *headers;
    size_t nheaders;
    bool decoded;
    struct sl_envelope_request req;
    char id[80];
    char trace_id[33]; /* hex, for log lines; empty when the record carries no trace */
    const struct sl_route *route;
    size_t route_idx;
    uint32_t attempts;
    int64_t first_failure_ms;
    int64_t due_ms; /* BACKOFF: when to run again; EMITTING: when to re-produce */
    enum wk_reason reason;
    char error[256];
    uint64_t start_ns;
    uint64_t read_ns;       /* when the consumer handed the record over (queue wait) */
    uint64_t reply_sent_ns; /* when the reply was last handed to the producer (reply ack) */
    /* tracing (trace_spans.c): the consumer span's context, its parent (the gateway's producer
     * span), epoch-ns marks taken only for a recorded trace */
    bool traced, has_trace, has_trace_parent;
    struct sl_trace_ctx trace, trace_parent;
    int64_t tm_received, tm_attempt, tm_emit;
    /* the running attempt's span, drawn when it starts and sent to the child in the frame's
     * head (all zero when there is no trace), so an upstream's spans hang under it */
    struct sl_trace_ctx attempt_span;
    uint8_t attempt_head[WK_ATTEMPT_HEAD];
    bool final; /* the child said the failure must not be retried */
    /* emitting */
    struct sl_buf reply; /* encoded reply envelope to produce, empty when none */
    bool want_reply, want_dlq, reply_acked, dlq_acked;
    size_t reply_dropped;   /* a reply Kafka cannot take, replaced by a 502 (its bytes) */
    bool dlq_value_dropped; /* Kafka refused the DLQ record: produced again without value */
    int pending_acks;
};

struct wk_list {
    struct wk_job *head, *tail;
    size_t n;
};

struct wk_partition {
    bool assigned;
    uint32_t generation;
    struct wk_offsets offsets;
    struct sl_metric *lag; /* sluice_worker_consumer_lag{partition}, created when assigned */
};

struct wk_route_stats {
    struct sl_metric *exec[WK_REASON_COUNT + 1]; /* by reason; [WK_REASON_COUNT] = ok */
    struct sl_metric *latency;
};

struct wk_worker {
    uv_loop_t *loop;
    const struct wk_settings *s;
    const char *const *kafka_props;
    char instance_id[256];
    char exe[4096];
    char topic_requests[WK_TOPIC_MAX];
    char topic_replies[WK_TOPIC_MAX];
    char topic_dlq[WK_TOPIC_MAX];
    struct sl_routes *routes;
    struct sl_envelope_limits limits;
    struct sl_envelope_limits reply_limits; /* a child's reply: up to a frame */

    struct sl_metrics *metrics;
    struct sl_otlp_tracer *tracer;      /* NULL: tracing off */
    struct sl_trace_rand rand;          /* span ids */
    uint64_t backoff_rng;               /* retry jitter */
    struct wk_route_stats *route_stats; /* routes->n + 1; the last is "none" */
    struct sl_metric *dlq[WK_REASON_COUNT];
    struct sl_metric *restarts, *in_flight, *produce_errors, *replays, *lag, *dropped;
    /* The request path split in hops (bench/e2e prints them), unlabelled histograms. */
    struct sl_metric *request_age, *queue_wait, *reply_ack;
    struct sl_metric_family *consumer_lag; /* by partition */
    uint64_t lag_due_ns;                   /* next refresh of the consumer lag gauges */

    struct sl_kafka_producer *producer;
    struct sl_kafka_consumer *consumer;
    bool producer_closed;
    struct sl_admin *admin;
    uv_timer_t tick;

    struct wk_partition *parts;
    size_t nparts;
    bool assigned_once;
    bool paused;

    struct wk_list queue;   /* QUEUED, in arrival order */
    struct wk_list backoff; /* BACKOFF */
    struct wk_list reemit;  /* EMITTING with a refused produce, retried by the tick */
    size_t jobs;            /* all live jobs */

    struct wk_pool pool; /* its events call back into worker.c */
    size_t nchildren;

    bool stopping;
    uint64_t stop_deadline_ns;
    int closing; /* the pool is closing: nothing more is dispatched */
    int pending_closes;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* worker.c */
/* The delay before retry number `attempt` (1 = the first retry): full jitter in
 * [0, min(cap, base × 2^(attempt−1))] ms, from the xorshift state *rng. */
int64_t wk_backoff_ms(int64_t base, uint32_t attempt, int64_t cap, uint64_t *rng);
void wk_list_push(struct wk_list *l, struct wk_job *j);
void wk_list_remove(struct wk_list *l, struct wk_job *j);

#endif
