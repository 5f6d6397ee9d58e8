/* The gateway service object: building it from settings, starting, readiness, reload, stop. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "index_claim.h"
#include "sluice/otlp.h"
#include "sluice/error.h"
#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/topics.h"

#define GW_STARTUP_TIMEOUT_MS 10000
/* A number macro as a string literal (librdkafka properties are strings). */
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

static int register_metrics(struct gw_gateway *g) {
    struct sl_metrics *m = g->metrics;
    struct gw_metrics *gm = &g->m;
    gm->requests =
        sl_metrics_counter(m, "sluice_gateway_requests_total",
                           "HTTP requests answered, by route and status.", "route,status");
    gm->latency = sl_metrics_histogram(m, "sluice_gateway_request_duration_seconds",
                                       "Time from request to answer, by route.", "route",
                                       sl_metrics_latency_buckets, sl_metrics_latency_nbuckets);
#define ONE(field, kind, name, help)                                                               \
    gm->field = sl_metric_get(sl_metrics_##kind(m, name, help, NULL));                             \
    if (!gm->field)                                                                                \
        return -ENOMEM;
    ONE(in_flight, gauge, "sluice_gateway_in_flight", "Requests published and awaiting a reply.")
    ONE(kafka_unavailable, counter, "sluice_gateway_kafka_unavailable_total",
        "Requests answered 503 because Kafka was unavailable or the local queue was full.")
    ONE(produce_errors, counter, "sluice_gateway_kafka_produce_errors_total",
        "Requests librdkafka refused to queue.")
    ONE(delivery_errors, counter, "sluice_gateway_kafka_delivery_errors_total",
        "Requests Kafka did not acknowledge in time.")
    ONE(publish_timeouts, counter, "sluice_gateway_publish_timeouts_total",
        "Requests answered 503 because Kafka had not acknowledged them within the publish "
        "timeout (the record may still be written later).")
    ONE(late_replies, counter, "sluice_gateway_late_replies_total",
        "Replies for requests no longer waiting (answered, timed out or cancelled); dropped.")
    ONE(invalid_replies, counter, "sluice_gateway_invalid_replies_total",
        "Replies that did not decode; answered 502.")
    ONE(timeouts, counter, "sluice_gateway_timeouts_total", "Requests answered 504.")
    ONE(audit_errors, counter, "sluice_gateway_audit_errors_total",
        "Audit records Kafka refused or lost.")
    ONE(cancelled, counter, "sluice_gateway_cancelled_total",
        "Requests whose client went away before the answer.")
#undef ONE
    /* The request path split in hops (bench/e2e prints them): publish -> broker ack, and the
     * age of a reply record when the gateway reads it (worker produce -> gateway). */
#define HIST(field, name, help)                                                                    \
    gm->field = sl_metric_get(sl_metrics_histogram(m, name, help, NULL, sl_metrics_hop_buckets,    \
                                                   sl_metrics_hop_nbuckets));                      \
    if (!gm->field)                                                                                \
        return -ENOMEM;
    HIST(publish_ack, "sluice_gateway_publish_ack_seconds",
         "Time from handing a request record to the producer to the broker's acknowledgement.")
    HIST(reply_age, "sluice_gateway_reply_record_age_seconds",
         "Age of a reply record (now minus its Kafka timestamp) when the gateway reads it.")
#undef HIST
    return gm->requests && gm->latency ? 0 : -ENOMEM;
}

/*
 * /readyz: Kafka reachable, the reply partition positioned, the keys loaded — until the first
 * time all three held. After that a Kafka outage keeps the replica ready: it answers 503 with
 * Retry-After, which a client can act on, where dropping every replica out of a load balancer
 * at once (they all lose the same Kafka) would leave clients with connection errors.
 */
static int ready(struct sl_buf *reason, void *data) {
    struct gw_gateway *g = data;
    if (g->fenced) {
        sl_buf_append_str(reason, "another replica took this gateway index");
        return 0;
    }
    if (g->stopping) {
        sl_buf_append_str(reason, "shutting down");
        return 0;
    }
    if (g->ready_once)
        return 1;
    if (!g->producer || sl_kafka_producer_state(g->producer) != SL_KAFKA_UP) {
        sl_buf_append_str(reason, "kafka not connected");
        return 0;
    }
    if (!g->replies_ready) {
        sl_buf_append_str(reason, "reply partition not assigned");
        return 0;
    }
    if (!g->auth || !gw_auth_ready(g->auth)) {
        sl_buf_append_str(reason, "keys not loaded");
        return 0;
    }
    g->ready_once = true;
    return 1;
}

/* The WAF's clock (milliseconds, CLOCK_MONOTONIC): when the request it judges arrived. The WAF
 * step runs within gw_pipeline_on_request, right after it sets req_mono_ns, never later. */
static int64_t request_clock_ms(void *data) {
    const struct gw_gateway *g = data;
    return (int64_t)(g->req_mono_ns / 1000000u);
}

/* Keeps the first failure while the loaders after it still run, so that one start (or one
 * --check) reports every problem; running out of memory stops at once. */
static int first_failure(int *first, int rc) {
    if (rc < 0 && *first == 0)
        *first = rc;
    return rc == -ENOMEM;
}

int gw_gateway_new(uv_loop_t *loop, const struct gw_settings *s, const char *const *kafka_props,
                   const char *hostname, bool check, struct gw_gateway **out, struct sl_buf *err) {
    struct gw_gateway *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->loop = loop;
    g->s = s;
    g->kafka_props = kafka_props;
    g->index = gw_settings_index(s, hostname, &g->index_source);
    snprintf(g->replica, sizeof g->replica, "%s/%d", hostname ? hostname : "gateway",
             (int)g->index);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_REQUESTS, g->topic_requests, GW_TOPIC_MAX);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_REPLIES, g->topic_replies, GW_TOPIC_MAX);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_AUDIT, g->topic_audit, GW_TOPIC_MAX);
    (void)sl_topic_name(s->topic_prefix, SL_TOPIC_DLQ, g->topic_dlq, GW_TOPIC_MAX);
    sl_buf_init(&g->encode_buf, s->max_body_bytes + (UINT64_C(1) << 20));
    sl_buf_init(&g->audit_buf, GW_AUDIT_MAX);
    sl_buf_init(&g->audit_tail, GW_AUDIT_MAX);
    g->audit_lost_log.period_ns = GW_AUDIT_LOG_PERIOD_S * UINT64_C(1000000000);
    g->audit_queue_log.period_ns = GW_AUDIT_LOG_PERIOD_S * UINT64_C(1000000000);
    g->limits = sl_envelope_limits_default(s->max_body_bytes);
    if (s->max_body_bytes > SL_KAFKA_MAX_ENVELOPE_BYTES)
        SL_WARN("SLUICE_MAX_BODY_BYTES (%" PRIu64 ") is over what a Kafka record holds: bodies "
                "whose envelope passes %u bytes answer 413",
                s->max_body_bytes, (unsigned)SL_KAFKA_MAX_ENVELOPE_BYTES);
    sl_trace_rand_init(&g->rand);
    *out = g; /* from here on, gw_gateway_stop cleans up whatever was made */

    int rc, failed = 0;
    if (gw_audit_tail(g) < 0)
        return -ENOMEM;
    if (!(g->metrics = sl_metrics_new()) || (rc = register_metrics(g)) < 0)
        return -ENOMEM;
    if (s->routes_file) {
        rc = sl_routes_load_file(s->routes_file, &g->routes, err);
    } else {
        rc = sl_routes_default(&g->routes);
    }
    if (first_failure(&failed, rc))
        return rc;
    if (rc == 0 && !(g->route_stats = calloc(g->routes->n + 1, sizeof *g->route_stats)))
        return -ENOMEM;
    rc = gw_cors_init(&g->cors, "", s->cors_allow_methods, s->cors_allow_headers,
                      (long)(s->cors_max_age_ms / 1000), err);
    if (rc < 0)
        return rc;
    /* The origins arrive as a parsed list; the CORS module takes a comma-separated string. */
    struct sl_buf origins;
    sl_buf_init(&origins, 1 << 16);
    for (size_t i = 0; i < s->cors_origins.n; i++)
        sl_buf_printf(&origins, "%s%s", i ? "," : "", s->cors_origins.items[i]);
    gw_cors_free(&g->cors);
    rc = gw_cors_init(&g->cors, origins.data ? origins.data : "", s->cors_allow_methods,
                      s->cors_allow_headers, (long)(s->cors_max_age_ms / 1000), err);
    sl_buf_free(&origins);
    if (first_failure(&failed, rc))
        return rc;
    rc = gw_proxies_init(&g->proxies, s->trusted_proxies.items, s->trusted_proxies.n, err);
    if (first_failure(&failed, rc))
        return rc;
    /* ---- WAF engine: the web ACL file (or the shipped default), watched like the keys file */
    /* Rate-based rules count on the request's arrival time, read once for the whole pipeline. */
    struct sl_waf_opts wo = {.loop = loop,
                             .acl_file = s->waf_acl_file,
                             .metrics = g->metrics,
                             .clock_ms = request_clock_ms,
                             .clock_data = g,
                             .forwarded_from_trusted_only = true,
                             .trusted_proxies = g->proxies.cidrs,
                             .ntrusted_proxies = g->proxies.n};
    if ((rc = sl_waf_open(&wo, &g->waf, err)) < 0)
        sl_buf_printf(err, "SLUICE_WAF_ACL_FILE: cannot load %s: %s\n",
                      s->waf_acl_file ? s->waf_acl_file : "the shipped default web ACL",
                      sl_strerror(rc));
    if (first_failure(&failed, rc))
        return rc;
    if ((rc = gw_inflight_init(&g->inflight, (size_t)s->max_in_flight)) < 0)
        return rc;
    rc =
        sl_otlp_tracer_for_service(s->otlp_endpoint, "sluice-gateway", g->metrics, &g->tracer, err);
    if (first_failure(&failed, rc))
        return rc;
    if ((rc = gw_auth_new(loop, s->keys_file, g->metrics, &g->auth)) < 0)
        sl_buf_printf(err, "SLUICE_KEYS_FILE: cannot load %s: %s (see the log line above)\n",
                      s->keys_file, sl_strerror(rc));
    if (first_failure(&failed, rc))
        return rc;
    struct gw_usage_opts uo;
    gw_usage_opts_default(&uo);
    uo.redis_url = s->redis_url;
    uo.fail_open = s->redis_fail_open;
    uo.timeout_ms = (uint32_t)s->redis_timeout_ms;
    uo.connect_timeout_ms = (uint32_t)s->redis_connect_timeout_ms;
    uo.reconnect_max_ms = (uint32_t)s->redis_reconnect_max_ms;
    uo.no_connect = check;
    if ((rc = gw_usage_new(loop, &uo, g->metrics, &g->usage)) < 0)
        sl_buf_printf(err, "SLUICE_REDIS_URL: %s\n", sl_strerror(rc));
    first_failure(&failed, rc);
    return failed;
}

int gw_gateway_start(struct gw_gateway *g, struct sl_buf *err) {
    const struct gw_settings *s = g->s;
    char listen[SL_CONFIG_HOST_MAX + 16];
    int rc;

    struct sl_admin_options ao = {.metrics = g->metrics, .ready = ready, .data = g};
    snprintf(listen, sizeof listen, strchr(s->admin_listen.host, ':') ? "[%s]:%d" : "%s:%d",
             s->admin_listen.host, s->admin_listen.port);
    if ((rc = sl_admin_init(&g->admin, g->loop, &ao)) < 0 ||
        (rc = sl_admin_start(g->admin, s->admin_listen.host, s->admin_listen.port)) < 0) {
        sl_buf_printf(err, "SLUICE_ADMIN_LISTEN: cannot listen on %s: %s\n", listen,
                      sl_strerror(rc));
        return rc;
    }
    static const enum sl_topic topics[] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_AUDIT};
    if ((rc = sl_topics_ensure(g->kafka_props, s->topic_prefix, topics, 3, s->auto_create_topics,
                               GW_STARTUP_TIMEOUT_MS, err)) < 0)
        return rc;

    char errstr[SL_KAFKA_ERRSTR_LEN];
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%lld", (long long)s->publish_timeout_ms);
    /*
     * Requests: fail fast (publish_timeout) so a client gets 503, never a hang. Batching that
     * adapts to the load, as Nagle's algorithm does: a request goes out at once when nothing
     * is in flight to the broker, and the ones that arrive meanwhile wait for that answer and
     * go together (one partition at a time, GW_PUBLISH_STICKY_MS, so they can share a batch).
     * bench/e2e measures what this does to latency and throughput (docs/benchmarks.md).
     */
    const char *const req_owned[] = {"enable.idempotence",
                                     "true",
                                     "acks",
                                     "all",
                                     "message.timeout.ms",
                                     timeout,
                                     "max.in.flight.requests.per.connection",
                                     "1",
                                     NULL};
    /*
     * Audit: batched, compressed, and never given up on: every record must reach the archive.
     * The records of a window go to one partition (GW_AUDIT_STICKY_MS) and the batch is LZ4,
     * which costs the broker far less per record than many small batches. A batch waits as long
     * as its window (a shorter linger would send each window as several requests); the archive
     * sees records one window later.
     * Only a lost record is reported back: a report per delivered record would cost the loop a
     * wake-up and a callback for each request (bench/gateway measures the loop's cost).
     */
    const char *const audit_owned[] = {"enable.idempotence",
                                       "true",
                                       "acks",
                                       "all",
                                       "linger.ms",
                                       STRINGIFY(GW_AUDIT_STICKY_MS),
                                       "compression.codec",
                                       "lz4",
                                       "message.timeout.ms",
                                       "0",
                                       "queue.buffering.max.messages",
                                       "1000000",
                                       "queue.buffering.max.kbytes",
                                       "1048576",
                                       "delivery.report.only.error",
                                       "true",
                                       NULL};
    /*
     * Replies: the broker answers a waiting fetch as soon as a reply is appended, so a long
     * wait costs no latency; librdkafka's 500 ms default is kept. (A short wait makes an idle
     * gateway cost the broker a stream of empty fetches.)
     */
    const char *const reply_owned[] = {"enable.auto.commit", "false", "isolation.level",
                                       "read_committed", NULL};
    /* What each client owns cannot be overridden through SLUICE_KAFKA_* (docs/internals/kafka.md).
     */
    const char **p1 = sl_config_kafka_merge(g->kafka_props, NULL, req_owned, "requests producer");
    const char **p2 = sl_config_kafka_merge(g->kafka_props, NULL, audit_owned, "audit producer");
    const char **p3 = sl_config_kafka_merge(g->kafka_props, NULL, reply_owned, "replies consumer");
    rc = !p1 || !p2 || !p3 ? -ENOMEM : 0;
    if (rc == 0)
        rc = sl_kafka_producer_new(g->loop, p1, &g->producer, errstr, sizeof errstr);
    if (rc == 0)
        rc = sl_kafka_producer_new(g->loop, p2, &g->audit_producer, errstr, sizeof errstr);
    if (rc == 0)
        sl_kafka_producer_set_sticky(g->producer, GW_PUBLISH_STICKY_MS, (uint64_t)g->index);
    if (rc == 0)
        sl_kafka_producer_set_sticky(g->audit_producer, GW_AUDIT_STICKY_MS, (uint64_t)g->index);
    if (rc == 0)
        sl_kafka_producer_set_failure_cb(g->audit_producer, gw_audit_on_lost, g);
    if (rc == 0)
        rc = sl_kafka_consumer_new(g->loop, p3, gw_replies_on_message, g, &g->replies, errstr,
                                   sizeof errstr);
    free(p1);
    free(p2);
    free(p3);
    if (rc < 0) {
        sl_buf_printf(err, "kafka: %s\n", rc == -ENOMEM ? "out of memory" : errstr);
        return rc;
    }
    int64_t at;
    rc = sl_kafka_consumer_assign(g->replies, g->topic_replies, g->index, RD_KAFKA_OFFSET_END,
                                  GW_STARTUP_TIMEOUT_MS, &at);
    if (rc < 0) {
        sl_buf_printf(err,
                      "kafka: cannot assign %s partition %d (SLUICE_GATEWAY_INDEX; does the topic "
                      "have that many partitions?): %s\n",
                      g->topic_replies, (int)g->index, sl_strerror(rc));
        return rc;
    }
    g->replies_ready = true;
    if ((rc = gw_index_claim_start(g, err)) < 0)
        return rc;

    struct sl_http_options ho = {
        .on_request = gw_pipeline_on_request,
        .on_cancel = gw_pipeline_on_cancel,
        .on_error_response = gw_pipeline_on_error_response,
        .data = g,
        .metrics = g->metrics,
        .metrics_prefix = "sluice_gateway_http",
        .max_header_bytes = s->max_header_bytes,
        .max_body_bytes = s->max_body_bytes,
        .max_url_bytes = s->max_url_bytes,
        .max_connections = (size_t)s->max_connections,
        .max_connections_per_ip = (size_t)s->max_connections_per_ip,
        .header_timeout_ms = (uint64_t)s->header_timeout_ms,
        .body_timeout_ms = (uint64_t)s->body_timeout_ms,
        .read_timeout_ms = (uint64_t)s->read_timeout_ms,
        .keepalive_timeout_ms = (uint64_t)s->keepalive_timeout_ms,
        .drain_timeout_ms = (uint64_t)s->drain_timeout_ms,
    };
    snprintf(listen, sizeof listen, strchr(s->listen.host, ':') ? "[%s]:%d" : "%s:%d",
             s->listen.host, s->listen.port);
    if ((rc = sl_http_server_init(&g->http, g->loop, &ho)) < 0 ||
        (rc = sl_http_server_start(g->http, s->listen.host, s->listen.port)) < 0) {
        sl_buf_printf(err, "SLUICE_LISTEN: cannot listen on %s: %s\n", listen, sl_strerror(rc));
        return rc;
    }
    SL_INFO("gateway %s serving on %s (index %d, from %s; replies partition %d from offset "
            "%lld, %zu routes)",
            g->replica, listen, (int)g->index, g->index_source, (int)g->index, (long long)at,
            g->routes->n);
    return 0;
}

void gw_gateway_reload(struct gw_gateway *g) {
    if (g->auth)
        gw_auth_reload(g->auth);
    if (g->waf)
        sl_waf_reload(g->waf); /* WAF engine: a bad document is logged and the old ACL stays */
}

int gw_gateway_http_port(const struct gw_gateway *g) {
    return g->http ? sl_http_server_port(g->http) : -EINVAL;
}

int gw_gateway_admin_port(const struct gw_gateway *g) {
    return g->admin ? sl_admin_port(g->admin) : -EINVAL;
}

/* ---- stop: HTTP drains first, then Kafka flushes, then the rest closes ------------------- */

void gw_gateway_free(struct gw_gateway *g) {
    void (*cb)(void *) = g->stop_cb;
    void *data = g->stop_data;
    gw_req_free_list(g);
    sl_routes_free(g->routes);
    free(g->route_stats);
    gw_cors_free(&g->cors);
    sl_waf_free(g->waf);
    sl_otlp_tracer_free(g->tracer); /* a last flush, bounded */
    gw_inflight_free(&g->inflight);
    sl_buf_free(&g->encode_buf);
    sl_buf_free(&g->audit_buf);
    sl_buf_free(&g->audit_tail);
    sl_metrics_free(g->metrics);
    free(g);
    if (cb)
        cb(data);
}

static void closed_one(void *data) {
    struct gw_gateway *g = data;
    if (--g->pending_closes > 0)
        return;
    if (g->live_reqs > 0)
        g->on_idle = gw_gateway_free; /* a request's timer is still closing: it frees us */
    else
        gw_gateway_free(g);
}

static void usage_closed(struct gw_usage *u, void *data) {
    (void)u;
    closed_one(data);
}

static void close_rest(struct gw_gateway *g) {
    g->pending_closes = 1; /* held until every close below has been started */
    if (g->replies) {
        g->pending_closes++;
        sl_kafka_consumer_close(g->replies, closed_one, g);
    }
    if (g->claim) {
        g->pending_closes++;
        sl_kafka_consumer_close(g->claim, closed_one, g);
    }
    if (g->producer) {
        g->pending_closes++;
        sl_kafka_producer_close(g->producer, 2000, closed_one, g);
    }
    if (g->audit_producer) {
        g->pending_closes++;
        sl_kafka_producer_close(g->audit_producer, 10000, closed_one, g);
    }
    if (g->usage) {
        g->pending_closes++;
        gw_usage_close(g->usage, usage_closed, g);
    }
    if (g->auth) {
        g->pending_closes++;
        gw_auth_close(g->auth, closed_one, g);
    }
    if (g->admin) {
        g->pending_closes++;
        sl_admin_close(g->admin, closed_one, g);
    }
    if (g->waf) { /* WAF engine: its watch handles close like the keys file's */
        g->pending_closes++;
        struct sl_waf *w = g->waf;
        g->waf = NULL;
        sl_waf_close(w, closed_one, g);
    }
    closed_one(g);
}

static void http_closed(void *data) {
    close_rest(data);
}

static void http_drained(struct sl_http_server *server, void *data) {
    struct gw_gateway *g = data;
    sl_http_server_close(server, http_closed, g);
}

void gw_gateway_stop(struct gw_gateway *g, void (*cb)(void *data), void *data) {
    if (g->stopping)
        return;
    g->stopping = true;
    g->stop_cb = cb;
    g->stop_data = data;
    SL_INFO("gateway stopping: draining %zu requests in flight", g->inflight.count);
    if (!g->http) {
        close_rest(g);
        return;
    }
    if (sl_http_server_stop(g->http, http_drained, g) < 0)
        sl_http_server_close(g->http, http_closed, g);
}
