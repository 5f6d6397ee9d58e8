/* The state every step of the gateway reads: the service object and one request's state. */
#ifndef SLUICE_GATEWAY_STATE_H
#define SLUICE_GATEWAY_STATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "client_ip.h"
#include "cors.h"
#include "errors.h"
#include "settings.h"
#include "sluice/admin.h"
#include "sluice/buf.h"
#include "sluice/envelope.h"
#include "sluice/http.h"
#include "sluice/kafka.h"
#include "sluice/keys.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/plan.h"
#include "sluice/routes.h"
#include "sluice/trace.h"
#include "usage_plan.h"
#include "sluice/waf.h"

/* Requests go to one partition of `requests` for this long, then the next (gw_gateway_start). */
#define GW_PUBLISH_STICKY_MS 10
/* Audit records go to one partition of `audit` for this long, then the next; the audit
 * producer lingers as long (gw_gateway_start): one large batch per produce request compresses
 * well and costs the broker less. */
#define GW_AUDIT_STICKY_MS 100
#define GW_TOPIC_MAX       256
/* An audit record's limit: its worst case (eight strings and sixteen labels of 2,048 bytes, each
 * escaped to 6 bytes a byte) is about 300 KiB; the buffer grows only as far as records need. */
#define GW_AUDIT_MAX (512u * 1024u)
/* During a Kafka outage every request's audit record can fail: one ERROR line per this long. */
#define GW_AUDIT_LOG_PERIOD_S 10

/* Metric children the request path updates; owned by the registry. */
struct gw_metrics {
    struct sl_metric_family *requests;   /* {route,status} */
    struct sl_metric_family *latency;    /* {route} */
    struct sl_metric *in_flight;         /* requests awaiting a reply */
    struct sl_metric *kafka_unavailable; /* 503 answered because of Kafka */
    struct sl_metric *produce_errors;    /* synchronous produce failures */
    struct sl_metric *delivery_errors;   /* failed delivery reports */
    struct sl_metric *publish_timeouts;  /* 503s: no acknowledgement within publish_timeout */
    struct sl_metric *late_replies;      /* replies for requests no longer waiting */
    struct sl_metric *invalid_replies;   /* replies that did not decode */
    struct sl_metric *timeouts;          /* 504s */
    struct sl_metric *audit_errors;      /* audit records Kafka refused */
    struct sl_metric *cancelled;         /* clients gone before the answer */
    struct sl_metric *publish_ack;       /* produce -> delivery report, delivered requests */
    struct sl_metric *reply_age;         /* reply record timestamp -> read by the gateway */
};

/* Per route (and one for "no route"): the latency child and the counters of recent statuses. */
#define GW_STATUS_CACHE 8
struct gw_route_stats {
    struct sl_metric *latency;
    int status[GW_STATUS_CACHE];
    struct sl_metric *count[GW_STATUS_CACHE];
};

/*
 * Requests awaiting a reply, by request id: a chained hash table whose size is fixed at start
 * (max_in_flight), so inserting never allocates.
 */
struct gw_inflight {
    struct gw_req **buckets;
    size_t mask;
    size_t count;
    size_t max;
};

struct gw_gateway {
    uv_loop_t *loop;
    const struct gw_settings *s;
    const char *const *kafka_props;
    int32_t index;            /* the replies partition this replica reads */
    const char *index_source; /* where the index came from, for the start-up line */
    char replica[300];
    char topic_requests[GW_TOPIC_MAX];
    char topic_replies[GW_TOPIC_MAX];
    char topic_audit[GW_TOPIC_MAX];
    char topic_dlq[GW_TOPIC_MAX];

    struct sl_metrics *metrics;
    struct gw_metrics m;
    struct gw_route_stats *route_stats; /* routes->n + 1 entries; the last is "none" */
    struct sl_trace_rand rand;          /* request ids and span ids, drawn 4 KiB at a time */
    struct gw_req *free_reqs;           /* recycled request objects (inflight.c) */
    size_t nfree_reqs;
    size_t live_reqs; /* request objects with references (a late timer close, a report) */
    /* Set once stopped while requests still live: the last request reference calls it. */
    void (*on_idle)(struct gw_gateway *g);
    struct sl_routes *routes;
    struct gw_cors cors;
    struct gw_proxies proxies;
    bool warned_forwarded; /* forwarded headers seen with no proxy trusted: logged once */
    struct sl_waf *waf;
    struct sl_otlp_tracer *tracer; /* NULL: tracing off */
    struct gw_auth *auth;
    struct gw_usage *usage;
    struct sl_kafka_producer *producer;       /* requests: small linger, short timeout */
    struct sl_kafka_producer *audit_producer; /* audit: batched, never times out */
    struct sl_log_every audit_lost_log;       /* one line per period during an outage */
    struct sl_log_every audit_queue_log;
    struct sl_kafka_consumer *replies;
    struct sl_kafka_consumer *claim; /* holds this replica's index: see index_claim.c */
    struct sl_http_server *http;
    struct sl_admin *admin;
    struct gw_inflight inflight;
    struct sl_buf encode_buf; /* reused for every envelope: produce copies it */
    struct sl_buf audit_buf;  /* reused for every audit record */
    struct sl_buf audit_tail; /* ,"stage":…,"gateway":…} — the same in every record */
    int64_t audit_ts_sec;     /* the second audit_ts holds, formatted */
    uint64_t req_mono_ns;     /* arrival of the request in the pipeline: the WAF's clock */
    char audit_ts[20];
    struct sl_envelope_limits limits; /* requests published and replies read, as the worker's */
    bool replies_ready;
    bool stopping;
    bool fenced;     /* a newer replica took this index: stop serving */
    bool ready_once; /* /readyz said ready once: a later Kafka outage keeps it ready */
    int pending_closes;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* Where a request is; decides what a late event (reply, timer, cancel) may still do. */
enum gw_req_state {
    GW_REQ_PIPELINE = 0, /* synchronous steps */
    GW_REQ_USAGE,        /* waiting for the usage-plan backend */
    GW_REQ_AWAIT,        /* published, waiting for the reply or the deadline */
    GW_REQ_DONE,         /* answered (or the client is gone); only references keep it alive */
};

/*
 * One HTTP request's gateway state. Reference-counted because three things may outlive the
 * answer: the delivery report of its Kafka message, its deadline timer's close, and the
 * usage-plan callback. Freed with the last reference (gw_req_unref).
 */
struct gw_req {
    struct gw_gateway *g;
    struct sl_http_request *http; /* NULL once answered */
    enum gw_req_state state;
    size_t phase; /* the step running, or the one an async callback resumes after */
    int refs;
    bool cors_done; /* CORS headers already chosen (preflight) */
    bool cancelled;
    bool timer_open;
    uv_timer_t timer;
    struct gw_req *next; /* in-flight chain */

    char id[SL_REQUEST_ID_LEN + 1];
    struct sl_trace_ctx trace; /* formatted into traceparent only for a request published */
    char traceparent[SL_TRACEPARENT_LEN + 1];
    char trace_id[33];
    struct sl_addr client_addr;       /* the client (client_ip.h), resolved once */
    char client_ip[SL_ADDR_TEXT_MAX]; /* its text, formatted once (WAF, envelope, audit) */
    uint64_t start_ns;
    uint64_t publish_ns; /* handed to librdkafka (sluice_gateway_publish_ack_seconds) */
    int64_t received_ms;
    int64_t deadline_ms;
    /* The request headers the pipeline reads, found in one pass (the first of each name);
     * valid while http is. has_user_agent: whether one came at all (its value may be empty). */
    struct sl_str origin, forwarded_for, traceparent_in, api_key, user_agent;
    bool has_user_agent;

    const struct sl_route *route; /* NULL when unrouted */
    struct sl_route_match match;
    bool has_key;
    char key_id[SL_KEYS_ID_SIZE];
    struct sl_plan plan;
    bool has_ratelimit;
    struct gw_usage_headers ratelimit;
    struct sl_waf_verdict waf;

    int status;
    size_t bytes_out;
    const char *error_class; /* NULL on success */

    /* Tracing (trace_spans.c): the client's span, the producer span's id, and timing marks in
     * epoch ns, taken only for a recorded trace (0: the step did not run). */
    bool has_client_span;
    uint8_t client_span[8];
    uint8_t publish_span[8];
    struct {
        int64_t start, waf0, waf1, key0, key1, usage0, usage1, publish, delivered, reply;
    } tm;
};

#endif
