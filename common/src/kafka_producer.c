/* Kafka producer on a libuv loop: per-message delivery reports, sticky partitions, close. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

/* Per-message delivery record; recycled through a free list so produce does not malloc. */
struct dr {
    sl_kafka_delivery_cb cb;
    void *opaque;
    struct dr *prev, *next; /* in-flight list, or (next only) the free list */
};

struct sl_kafka_producer {
    struct sl__kafka_pump pump; /* first member: the pump callbacks cast back to the producer */
    rd_kafka_t *rk;
    enum sl_kafka_state state;
    sl_kafka_error_cb error_cb;
    void *error_opaque;
    struct dr *inflight; /* doubly linked, so leftovers can be freed on destroy */
    struct dr *free_list;
    size_t outstanding;
    /* The last topic produced to: services produce to one or two topics, and librdkafka's
     * lookup by name takes a lock per message. */
    rd_kafka_topic_t *rkt;
    char *rkt_name;
    uint64_t sticky_ns; /* UA messages: one partition per window of this length (0: by key) */
    uint64_t sticky_seed;
    int closing;
    int in_drain;       /* rd_kafka_poll is running callbacks */
    int close_deferred; /* close was called from one of them */
    int flush_timeout_ms;
    /* delivery.report.only.error: messages are not tracked, a loss goes to failure_cb. */
    int errors_only;
    sl_kafka_delivery_cb failure_cb;
    void *failure_opaque;
    uint64_t deadline_ns;
    sl_kafka_close_cb close_cb;
    void *close_data;
};

static struct dr *dr_get(struct sl_kafka_producer *p) {
    struct dr *d = p->free_list;
    if (d)
        p->free_list = d->next;
    else if (!(d = malloc(sizeof *d)))
        return NULL;
    d->prev = NULL;
    d->next = p->inflight;
    if (p->inflight)
        p->inflight->prev = d;
    p->inflight = d;
    return d;
}

static void dr_put(struct sl_kafka_producer *p, struct dr *d) {
    if (d->prev)
        d->prev->next = d->next;
    else
        p->inflight = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = p->free_list;
    p->free_list = d;
}

static void dr_free_all(struct dr *d) {
    while (d) {
        struct dr *next = d->next;
        free(d);
        d = next;
    }
}

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    struct sl_kafka_producer *p = opaque;
    struct dr *d = m->_private;
    (void)rk;
    if (!d) {
        /* An untracked message of an errors-only producer: only failures come here. */
        if (m->err && p->failure_cb)
            p->failure_cb(SL_ERR_KAFKA, m->err, m->partition, RD_KAFKA_OFFSET_INVALID,
                          p->failure_opaque);
        return;
    }
    sl_kafka_delivery_cb cb = d->cb;
    void *cb_opaque = d->opaque;
    dr_put(p, d);
    p->outstanding--;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        p->state = SL_KAFKA_UP;
    if (cb)
        cb(m->err ? SL_ERR_KAFKA : 0, m->err, m->partition,
           m->err ? RD_KAFKA_OFFSET_INVALID : m->offset, cb_opaque);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct sl_kafka_producer *p = opaque;
    sl__kafka_report_error(rk, &p->state, p->error_cb, p->error_opaque, err, reason);
}

static int producer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    struct sl_kafka_producer *p = opaque;
    (void)rk;
    int up = sl__kafka_stats_brokers_up(json, len);
    if (up > 0)
        p->state = SL_KAFKA_UP;
    else if (up == 0 && p->state == SL_KAFKA_UP)
        p->state = SL_KAFKA_DOWN;
    return 0; /* librdkafka frees json */
}

static void producer_closed(struct sl__kafka_pump *pu) {
    struct sl_kafka_producer *p = (struct sl_kafka_producer *)pu;
    sl_kafka_close_cb cb = p->close_cb;
    void *data = p->close_data;
    dr_free_all(p->free_list);
    free(p);
    if (cb)
        cb(data);
}

static void producer_finish(struct sl_kafka_producer *p) {
    if (p->outstanding > 0)
        SL_WARN("kafka %s: closing with %zu unreported messages", rd_kafka_name(p->rk),
                p->outstanding);
    sl__kafka_pump_detach(&p->pump);
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    p->rkt = NULL;
    free(p->rkt_name);
    p->rkt_name = NULL;
    rd_kafka_destroy(p->rk);
    p->rk = NULL;
    /* Records of messages whose reports never came; their callbacks cannot run any more. */
    dr_free_all(p->inflight);
    p->inflight = NULL;
    sl__kafka_pump_close(&p->pump);
}

static void producer_close_begin(struct sl_kafka_producer *p);

static void producer_drain(struct sl__kafka_pump *pu) {
    struct sl_kafka_producer *p = (struct sl_kafka_producer *)pu;
    if (!p->rk)
        return;
    p->in_drain = 1;
    for (int i = 0; i < SL_KAFKA_BATCH; i++) {
        if (rd_kafka_poll(p->rk, 0) == 0)
            break;
    }
    p->in_drain = 0;
    if (p->close_deferred) {
        p->close_deferred = 0;
        producer_close_begin(p);
        return;
    }
    if (!p->closing)
        return;
    if ((p->outstanding == 0 && rd_kafka_outq_len(p->rk) == 0) ||
        sl_time_mono_ns() >= p->deadline_ns)
        producer_finish(p);
}

int sl_kafka_producer_new(uv_loop_t *loop, const char *const *props, struct sl_kafka_producer **out,
                          char *errstr, size_t errstr_len) {
    static const char *const defaults[] = {"enable.idempotence",
                                           "true",
                                           "acks",
                                           "all",
                                           "linger.ms",
                                           "0",
                                           "socket.nagle.disable",
                                           "true",
                                           "statistics.interval.ms",
                                           "1000",
                                           "message.max.bytes",
                                           SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                                           NULL};
    if (!loop || !out)
        return -EINVAL;
    sl__kafka_set_err(errstr, errstr_len, "%s", "");
    struct sl_kafka_producer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = sl__kafka_conf_apply(conf, defaults, errstr, errstr_len);
    if (rc == 0)
        rc = sl__kafka_conf_apply(conf, props, errstr, errstr_len);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        free(p);
        return rc;
    }
    char only_error[8];
    size_t only_error_len = sizeof only_error;
    p->errors_only = rd_kafka_conf_get(conf, "delivery.report.only.error", only_error,
                                       &only_error_len) == RD_KAFKA_CONF_OK &&
                     strcmp(only_error, "true") == 0;
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    rd_kafka_conf_set_error_cb(conf, producer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, producer_stats_cb);
    rd_kafka_conf_set_log_cb(conf, sl__kafka_log_cb);
    char rderr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!p->rk) {
        /* rd_kafka_new keeps conf only on success. */
        rd_kafka_conf_destroy(conf);
        sl__kafka_set_err(errstr, errstr_len, "kafka producer: %s", rderr);
        free(p);
        return SL_ERR_CONFIG;
    }
    rc = sl__kafka_pump_start(&p->pump, loop, rd_kafka_queue_get_main(p->rk), producer_drain,
                              producer_closed);
    if (rc < 0) {
        rd_kafka_queue_destroy(p->pump.q);
        rd_kafka_destroy(p->rk);
        sl__kafka_set_err(errstr, errstr_len, "kafka producer: %s", uv_strerror(rc));
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/*
 * The sticky partitioner: every message without an explicit partition goes to one partition for
 * a window of sticky_ns, then to the next one. librdkafka (2.0) sends one produce request per
 * partition, so keyed messages spread by hash over 12 partitions leave nothing to batch: each
 * becomes a request of its own for the broker. Kept on one partition, the messages that wait
 * while a request is in flight go out together in the next one. Stateless (the window is the
 * monotonic clock), so it is safe on librdkafka's threads; the seed spreads replicas apart. The
 * coarse clock (the kernel's tick, 1-4 ms) is plenty for windows of 10 ms and more, and is read
 * without the time stamp counter, once per message.
 */
static int32_t sticky_partitioner(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                  int32_t cnt, void *rkt_opaque, void *msg_opaque) {
    (void)key;
    (void)keylen;
    (void)msg_opaque;
    const struct sl_kafka_producer *p = rkt_opaque;
    if (cnt <= 0)
        return RD_KAFKA_PARTITION_UA;
    uint64_t slot = sl_time_mono_coarse_ns() / p->sticky_ns + p->sticky_seed;
    for (int32_t i = 0; i < cnt; i++) {
        int32_t part = (int32_t)((slot + (uint64_t)i) % (uint64_t)cnt);
        if (rd_kafka_topic_partition_available(rkt, part))
            return part;
    }
    return (int32_t)(slot % (uint64_t)cnt);
}

static rd_kafka_topic_t *topic_new(struct sl_kafka_producer *p, const char *topic) {
    if (!p->sticky_ns)
        return rd_kafka_topic_new(p->rk, topic, NULL);
    rd_kafka_topic_conf_t *tc = rd_kafka_topic_conf_new();
    if (!tc)
        return NULL;
    rd_kafka_topic_conf_set_partitioner_cb(tc, sticky_partitioner);
    rd_kafka_topic_conf_set_opaque(tc, p);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, topic, tc); /* takes tc on success */
    if (!rkt)
        rd_kafka_topic_conf_destroy(tc);
    return rkt;
}

void sl_kafka_producer_set_sticky(struct sl_kafka_producer *p, int window_ms, uint64_t seed) {
    p->sticky_ns = window_ms > 0 ? (uint64_t)window_ms * 1000000u : 0;
    p->sticky_seed = seed;
    if (p->rkt) { /* the next message makes a handle with the new partitioner */
        rd_kafka_topic_destroy(p->rkt);
        p->rkt = NULL;
        free(p->rkt_name);
        p->rkt_name = NULL;
    }
}

int sl_kafka_produce(struct sl_kafka_producer *p, const char *topic, int32_t partition,
                     const void *key, size_t keylen, const void *value, size_t vlen,
                     const struct sl_kafka_header *headers, size_t nheaders,
                     sl_kafka_delivery_cb cb, void *opaque, rd_kafka_resp_err_t *kerr_out) {
    return sl_kafka_produce_ts(p, topic, partition, key, keylen, value, vlen, 0, headers, nheaders,
                               cb, opaque, kerr_out);
}

int sl_kafka_produce_ts(struct sl_kafka_producer *p, const char *topic, int32_t partition,
                        const void *key, size_t keylen, const void *value, size_t vlen,
                        int64_t timestamp_ms, const struct sl_kafka_header *headers,
                        size_t nheaders, sl_kafka_delivery_cb cb, void *opaque,
                        rd_kafka_resp_err_t *kerr_out) {
    if (kerr_out)
        *kerr_out = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!p || !topic || (nheaders && !headers))
        return -EINVAL;
    if (p->errors_only && (cb || opaque))
        return -EINVAL; /* its successes are never reported: a callback could not be kept */
    if (p->closing)
        return SL_ERR_CLOSED;
    struct dr *d = NULL;
    if (!p->errors_only) {
        if (!(d = dr_get(p)))
            return -ENOMEM;
        d->cb = cb;
        d->opaque = opaque;
    }

    rd_kafka_headers_t *hdrs = NULL;
    if (nheaders) {
        hdrs = rd_kafka_headers_new(nheaders);
        for (size_t i = 0; i < nheaders; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].len);
    }
    rd_kafka_vu_t vus[8];
    size_t n = 0;
    if (!p->rkt_name || strcmp(p->rkt_name, topic)) {
        char *name = strdup(topic);
        rd_kafka_topic_t *rkt = name ? topic_new(p, topic) : NULL;
        if (!rkt) {
            free(name);
            if (hdrs)
                rd_kafka_headers_destroy(hdrs);
            if (d)
                dr_put(p, d);
            return -ENOMEM;
        }
        if (p->rkt)
            rd_kafka_topic_destroy(p->rkt);
        free(p->rkt_name);
        p->rkt = rkt;
        p->rkt_name = name;
    }
    vus[n].vtype = RD_KAFKA_VTYPE_RKT;
    vus[n++].u.rkt = p->rkt;
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = partition;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = (void *)value; /* copied (F_COPY), never written */
    vus[n++].u.mem.size = vlen;
    vus[n].vtype = RD_KAFKA_VTYPE_KEY;
    vus[n].u.mem.ptr = (void *)key;
    vus[n++].u.mem.size = keylen;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = d;
    if (hdrs) {
        vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vus[n++].u.headers = hdrs;
    }
    if (timestamp_ms > 0) {
        vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
        vus[n++].u.i64 = timestamp_ms;
    }
    rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vus, n);
    if (error) {
        rd_kafka_resp_err_t kerr = rd_kafka_error_code(error);
        rd_kafka_error_destroy(error);
        /* On failure the headers stay ours (librdkafka takes them only on success). */
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (d)
            dr_put(p, d);
        if (kerr_out)
            *kerr_out = kerr;
        return SL_ERR_KAFKA;
    }
    if (d)
        p->outstanding++;
    return 0;
}

void sl_kafka_producer_set_failure_cb(struct sl_kafka_producer *p, sl_kafka_delivery_cb cb,
                                      void *opaque) {
    p->failure_cb = cb;
    p->failure_opaque = opaque;
}

size_t sl_kafka_producer_outstanding(const struct sl_kafka_producer *p) {
    return p->outstanding;
}

enum sl_kafka_state sl_kafka_producer_state(const struct sl_kafka_producer *p) {
    return p->state;
}

void sl_kafka_producer_set_error_cb(struct sl_kafka_producer *p, sl_kafka_error_cb cb,
                                    void *opaque) {
    p->error_cb = cb;
    p->error_opaque = opaque;
}

rd_kafka_t *sl_kafka_producer_handle(struct sl_kafka_producer *p) {
    return p->rk;
}

void sl_kafka_producer_close(struct sl_kafka_producer *p, int flush_timeout_ms,
                             sl_kafka_close_cb cb, void *data) {
    SL_ASSERT(!p->closing);
    p->closing = 1;
    p->close_cb = cb;
    p->close_data = data;
    p->flush_timeout_ms = flush_timeout_ms < 0 ? 0 : flush_timeout_ms;
    /* Inside a delivery callback rd_kafka_poll is on the stack: flush once it has returned. */
    if (p->in_drain)
        p->close_deferred = 1;
    else
        producer_close_begin(p);
}

static void producer_close_begin(struct sl_kafka_producer *p) {
    int flush_timeout_ms = p->flush_timeout_ms;
    /*
     * Blocking, because librdkafka only overrides linger.ms while a flush call is in
     * progress; it serves delivery reports (on this thread) while it waits.
     */
    rd_kafka_flush(p->rk, flush_timeout_ms);
    p->deadline_ns = sl_time_mono_ns();
    if (p->outstanding > 0 || rd_kafka_outq_len(p->rk) > 0) {
        SL_WARN("kafka %s: flush timed out with %zu messages outstanding; purging",
                rd_kafka_name(p->rk), p->outstanding);
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        p->deadline_ns += (uint64_t)PURGE_GRACE_MS * 1000000u;
    }
    /* The purge reports arrive through the queue; the timer serves them, then finishes. */
    uv_timer_start(&p->pump.timer, sl__kafka_pump_on_timer, 0, CLOSE_TICK_MS);
}
