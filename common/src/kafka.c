/* Kafka glue: librdkafka queues served on a libuv loop, plus blocking admin helpers. */
#include "sluice/kafka.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

/* After a close has purged what the flush timeout left, how long to wait for the reports. */
#define PURGE_GRACE_MS 2000
#define CLOSE_TICK_MS  5

/* ---- shared pieces ------------------------------------------------------------------------ */

static void set_err(char *errstr, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *errstr, size_t len, const char *fmt, ...) {
    if (!errstr || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, len, fmt, ap);
    va_end(ap);
}

/* Applies name,value pairs; the error names the property so a typo in config is obvious. */
static int conf_apply(rd_kafka_conf_t *conf, const char *const *pairs, char *errstr,
                      size_t errlen) {
    if (!pairs)
        return 0;
    for (size_t i = 0; pairs[i]; i += 2) {
        if (!pairs[i + 1]) {
            set_err(errstr, errlen, "kafka property '%s' has no value", pairs[i]);
            return SL_ERR_CONFIG;
        }
        char rderr[256];
        if (rd_kafka_conf_set(conf, pairs[i], pairs[i + 1], rderr, sizeof rderr) !=
            RD_KAFKA_CONF_OK) {
            set_err(errstr, errlen, "kafka property '%s': %s", pairs[i], rderr);
            return SL_ERR_CONFIG;
        }
    }
    return 0;
}

static int conf_is_set(const rd_kafka_conf_t *conf, const char *name) {
    char v[512];
    size_t n = sizeof v;
    return rd_kafka_conf_get(conf, name, v, &n) == RD_KAFKA_CONF_OK && v[0] != '\0';
}

/* librdkafka logs from its own threads; sl_log writes each line atomically, so that is safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    enum sl_log_level l = level <= 3   ? SL_LOG_ERROR
                          : level == 4 ? SL_LOG_WARN
                          : level <= 6 ? SL_LOG_INFO
                                       : SL_LOG_DEBUG;
    sl_log(l, NULL, "kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Number of brokers with a node id whose connection is UP in a statistics blob, or -1. */
static int stats_brokers_up(const char *json, size_t len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return -1;
    int up = 0;
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    const cJSON *b;
    cJSON_ArrayForEach(b, brokers) {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");
        const cJSON *nodeid = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
        if (cJSON_IsString(state) && cJSON_IsNumber(nodeid) && nodeid->valueint >= 0 &&
            strcmp(state->valuestring, "UP") == 0)
            up++;
    }
    cJSON_Delete(root);
    return up;
}

/*
 * The loop side of one librdkafka queue: a pipe librdkafka writes to when the queue receives
 * events, a uv_poll_t on its read end, and a safety-net timer. `drain` serves the queue.
 */
struct pump {
    uv_loop_t *loop;
    rd_kafka_queue_t *q;
    int fds[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    void (*drain)(struct pump *);
    void (*closed)(struct pump *); /* runs once both handles are closed */
};

static void pump_empty_pipe(struct pump *pu) {
    char buf[256];
    while (read(pu->fds[0], buf, sizeof buf) > 0) {
    }
}

static void pump_on_poll(uv_poll_t *h, int status, int events) {
    struct pump *pu = h->data;
    (void)events;
    if (status < 0)
        SL_WARN("kafka: poll on the wakeup pipe failed: %s", uv_strerror(status));
    pump_empty_pipe(pu);
    pu->drain(pu);
}

static void pump_on_timer(uv_timer_t *t) {
    struct pump *pu = t->data;
    pu->drain(pu);
}

static int pump_start(struct pump *pu, uv_loop_t *loop, rd_kafka_queue_t *q,
                      void (*drain)(struct pump *), void (*closed)(struct pump *)) {
    pu->loop = loop;
    pu->q = q;
    pu->drain = drain;
    pu->closed = closed;
    pu->open_handles = 0;
    if (pipe2(pu->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    int rc = uv_poll_init(loop, &pu->poll, pu->fds[0]);
    if (rc < 0)
        goto err_pipe;
    pu->poll.data = pu;
    /* uv_timer_init cannot fail (it only fills in the struct). */
    uv_timer_init(loop, &pu->timer);
    pu->timer.data = pu;
    pu->open_handles = 2;
    uv_poll_start(&pu->poll, UV_READABLE, pump_on_poll);
    uv_timer_start(&pu->timer, pump_on_timer, SL_KAFKA_TICK_MS, SL_KAFKA_TICK_MS);
    rd_kafka_queue_io_event_enable(q, pu->fds[1], "1", 1);
    return 0;
err_pipe:
    close(pu->fds[0]);
    close(pu->fds[1]);
    return rc;
}

static void pump_on_close(uv_handle_t *h) {
    struct pump *pu = h->data;
    if (--pu->open_handles == 0) {
        close(pu->fds[0]);
        close(pu->fds[1]);
        pu->closed(pu);
    }
}

/* Detaches the queue (librdkafka must not write to the pipe after this) and closes handles. */
static void pump_detach(struct pump *pu) {
    if (pu->q) {
        rd_kafka_queue_io_event_enable(pu->q, -1, NULL, 0);
        rd_kafka_queue_destroy(pu->q);
        pu->q = NULL;
    }
}

static void pump_close(struct pump *pu) {
    uv_poll_stop(&pu->poll);
    uv_timer_stop(&pu->timer);
    uv_close((uv_handle_t *)&pu->poll, pump_on_close);
    uv_close((uv_handle_t *)&pu->timer, pump_on_close);
}

/* ---- producer ----------------------------------------------------------------------------- */

/* Per-message delivery record; recycled through a free list so produce does not malloc. */
struct dr {
    sl_kafka_delivery_cb cb;
    void *opaque;
    struct dr *prev, *next; /* in-flight list, or (next only) the free list */
};

struct sl_kafka_producer {
    struct pump pump; /* first member: the pump callbacks cast back to the producer */
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

static void report_error(rd_kafka_t *rk, enum sl_kafka_state *state, sl_kafka_error_cb cb,
                         void *cb_opaque, int err, const char *reason) {
    int fatal = 0;
    char buf[512];
    rd_kafka_resp_err_t kerr = (rd_kafka_resp_err_t)err;
    if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
        fatal = 1;
        kerr = rd_kafka_fatal_error(rk, buf, sizeof buf);
        reason = buf;
    }
    if (kerr == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        *state = SL_KAFKA_DOWN;
    sl_log(fatal ? SL_LOG_ERROR : SL_LOG_WARN, NULL, "kafka %s: %s%s: %s", rd_kafka_name(rk),
           fatal ? "fatal " : "", rd_kafka_err2name(kerr), reason);
    if (cb)
        cb(kerr, reason, fatal, cb_opaque);
}

static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct sl_kafka_producer *p = opaque;
    report_error(rk, &p->state, p->error_cb, p->error_opaque, err, reason);
}

static int producer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    struct sl_kafka_producer *p = opaque;
    (void)rk;
    int up = stats_brokers_up(json, len);
    if (up > 0)
        p->state = SL_KAFKA_UP;
    else if (up == 0 && p->state == SL_KAFKA_UP)
        p->state = SL_KAFKA_DOWN;
    return 0; /* librdkafka frees json */
}

static void producer_closed(struct pump *pu) {
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
    pump_detach(&p->pump);
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
    pump_close(&p->pump);
}

static void producer_close_begin(struct sl_kafka_producer *p);

static void producer_drain(struct pump *pu) {
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
                                           NULL};
    if (!loop || !out)
        return -EINVAL;
    set_err(errstr, errstr_len, "%s", "");
    struct sl_kafka_producer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_apply(conf, defaults, errstr, errstr_len);
    if (rc == 0)
        rc = conf_apply(conf, props, errstr, errstr_len);
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
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char rderr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!p->rk) {
        /* rd_kafka_new keeps conf only on success. */
        rd_kafka_conf_destroy(conf);
        set_err(errstr, errstr_len, "kafka producer: %s", rderr);
        free(p);
        return SL_ERR_CONFIG;
    }
    rc =
        pump_start(&p->pump, loop, rd_kafka_queue_get_main(p->rk), producer_drain, producer_closed);
    if (rc < 0) {
        rd_kafka_queue_destroy(p->pump.q);
        rd_kafka_destroy(p->rk);
        set_err(errstr, errstr_len, "kafka producer: %s", uv_strerror(rc));
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
    uv_timer_start(&p->pump.timer, pump_on_timer, 0, CLOSE_TICK_MS);
}

/* ---- consumer ----------------------------------------------------------------------------- */

struct sl_kafka_consumer {
    struct pump pump; /* first member, see the producer */
    rd_kafka_t *rk;
    enum sl_kafka_state state;
    sl_kafka_message_cb msg_cb;
    void *msg_opaque;
    sl_kafka_rebalance_cb rebalance_cb;
    void *rebalance_opaque;
    sl_kafka_error_cb error_cb;
    void *error_opaque;
    int closing;
    int in_drain; /* rd_kafka_consumer_poll is running callbacks */
    sl_kafka_close_cb close_cb;
    void *close_data;
};

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct sl_kafka_consumer *c = opaque;
    report_error(rk, &c->state, c->error_cb, c->error_opaque, err, reason);
}

static int consumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    struct sl_kafka_consumer *c = opaque;
    (void)rk;
    int up = stats_brokers_up(json, len);
    if (up > 0)
        c->state = SL_KAFKA_UP;
    else if (up == 0 && c->state == SL_KAFKA_UP)
        c->state = SL_KAFKA_DOWN;
    return 0;
}

static void consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)offsets;
    (void)opaque;
    /* _NO_OFFSET only means there was nothing stored to commit. */
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        SL_WARN("kafka %s: offset commit failed: %s", rd_kafka_name(rk), rd_kafka_err2str(err));
}

static void consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct sl_kafka_consumer *c = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        SL_INFO("kafka %s: assigned %d partitions", rd_kafka_name(rk), parts->cnt);
        c->state = SL_KAFKA_UP;
        if (c->rebalance_cb)
            c->rebalance_cb(c, 1, parts, c->rebalance_opaque);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            SL_WARN("kafka %s: rebalance error: %s", rd_kafka_name(rk), rd_kafka_err2str(err));
        if (c->rebalance_cb)
            c->rebalance_cb(c, 0, parts, c->rebalance_opaque);
        SL_INFO("kafka %s: revoked %d partitions", rd_kafka_name(rk), parts->cnt);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        SL_ERROR("kafka %s: rebalance assign failed: %s", rd_kafka_name(rk),
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr) {
        SL_ERROR("kafka %s: rebalance assign failed: %s", rd_kafka_name(rk),
                 rd_kafka_err2str(aerr));
    }
}

static void consumer_deliver(struct sl_kafka_consumer *c, rd_kafka_message_t *rkm) {
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            report_error(c->rk, &c->state, c->error_cb, c->error_opaque, rkm->err,
                         rd_kafka_message_errstr(rkm));
        return;
    }
    c->state = SL_KAFKA_UP;
    rd_kafka_timestamp_type_t tstype;
    struct sl_kafka_message msg = {
        .topic = rd_kafka_topic_name(rkm->rkt),
        .partition = rkm->partition,
        .offset = rkm->offset,
        .key = rkm->key,
        .keylen = rkm->key_len,
        .value = rkm->payload,
        .vlen = rkm->len,
        .timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype),
        .rkm = rkm,
    };
    if (c->msg_cb)
        c->msg_cb(&msg, c->msg_opaque);
}

static void consumer_close_now(struct sl_kafka_consumer *c);

static void consumer_drain(struct pump *pu) {
    struct sl_kafka_consumer *c = (struct sl_kafka_consumer *)pu;
    if (!c->rk || c->closing)
        return;
    c->in_drain = 1;
    for (int i = 0; i < SL_KAFKA_BATCH && !c->closing; i++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rkm)
            break;
        consumer_deliver(c, rkm);
        rd_kafka_message_destroy(rkm);
    }
    c->in_drain = 0;
    /* A callback asked to close: the handle can go now that no message refers to it. */
    if (c->closing)
        consumer_close_now(c);
}

static void consumer_closed(struct pump *pu) {
    struct sl_kafka_consumer *c = (struct sl_kafka_consumer *)pu;
    sl_kafka_close_cb cb = c->close_cb;
    void *data = c->close_data;
    free(c);
    if (cb)
        cb(data);
}

int sl_kafka_consumer_new(uv_loop_t *loop, const char *const *props, sl_kafka_message_cb cb,
                          void *opaque, struct sl_kafka_consumer **out, char *errstr,
                          size_t errstr_len) {
    static const char *const defaults[] = {"enable.auto.commit",
                                           "true",
                                           "enable.auto.offset.store",
                                           "false",
                                           "socket.nagle.disable",
                                           "true",
                                           "statistics.interval.ms",
                                           "1000",
                                           NULL};
    if (!loop || !out)
        return -EINVAL;
    set_err(errstr, errstr_len, "%s", "");
    struct sl_kafka_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->msg_cb = cb;
    c->msg_opaque = opaque;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_apply(conf, defaults, errstr, errstr_len);
    if (rc == 0)
        rc = conf_apply(conf, props, errstr, errstr_len);
    /*
     * librdkafka refuses assign() without a group id even when no group is joined; manual
     * assignment receives a fixed one. Nothing is committed for it unless offsets are stored.
     */
    if (rc == 0 && !conf_is_set(conf, "group.id"))
        rc = conf_apply(conf, (const char *const[]){"group.id", "sluice-manual-assign", NULL},
                        errstr, errstr_len);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, consumer_stats_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);
    char rderr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        set_err(errstr, errstr_len, "kafka consumer: %s", rderr);
        free(c);
        return SL_ERR_CONFIG;
    }
    /* One queue for everything: messages, rebalances, errors, stats, commit results. */
    rd_kafka_poll_set_consumer(c->rk);
    rc = pump_start(&c->pump, loop, rd_kafka_queue_get_consumer(c->rk), consumer_drain,
                    consumer_closed);
    if (rc < 0) {
        rd_kafka_queue_destroy(c->pump.q);
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
        set_err(errstr, errstr_len, "kafka consumer: %s", uv_strerror(rc));
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void sl_kafka_consumer_set_rebalance_cb(struct sl_kafka_consumer *c, sl_kafka_rebalance_cb cb,
                                        void *opaque) {
    c->rebalance_cb = cb;
    c->rebalance_opaque = opaque;
}

void sl_kafka_consumer_set_error_cb(struct sl_kafka_consumer *c, sl_kafka_error_cb cb,
                                    void *opaque) {
    c->error_cb = cb;
    c->error_opaque = opaque;
}

int sl_kafka_consumer_subscribe(struct sl_kafka_consumer *c, const char *const *topics, size_t n) {
    if (!c || !topics || n == 0 || n > INT32_MAX)
        return -EINVAL;
    if (c->closing)
        return SL_ERR_CLOSED;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        SL_ERROR("kafka %s: subscribe failed: %s", rd_kafka_name(c->rk), rd_kafka_err2str(err));
        return SL_ERR_KAFKA;
    }
    return 0;
}

/* Errors a fresh or moving partition leader gives for a while before it serves. */
static int is_retriable_leader_error(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || err == RD_KAFKA_RESP_ERR__TRANSPORT;
}

int sl_kafka_consumer_assign(struct sl_kafka_consumer *c, const char *topic, int32_t partition,
                             int64_t offset, int timeout_ms, int64_t *positioned_at) {
    if (!c || !topic || partition < 0)
        return -EINVAL;
    if (c->closing)
        return SL_ERR_CLOSED;
    if (offset == RD_KAFKA_OFFSET_END || offset == RD_KAFKA_OFFSET_BEGINNING) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err;
        /*
         * Right after a topic is created (sluicectl topics create, then the gateway starts) its
         * leader may not be elected yet: those answers are retried until the budget is spent.
         */
        uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
        for (;;) {
            uint64_t now = uv_hrtime();
            int left = now < deadline ? (int)((deadline - now) / 1000000u) : 0;
            err = rd_kafka_query_watermark_offsets(c->rk, topic, partition, &lo, &hi, left);
            if (!is_retriable_leader_error(err) || left < 100)
                break;
            uv_sleep(100);
        }
        if (err) {
            SL_WARN("kafka %s: watermarks of %s[%d]: %s", rd_kafka_name(c->rk), topic,
                    (int)partition, rd_kafka_err2str(err));
            return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
        }
        offset = offset == RD_KAFKA_OFFSET_END ? hi : lo;
    } else if (offset < 0) {
        return -EINVAL;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    rd_kafka_error_t *error = rd_kafka_incremental_assign(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (error) {
        SL_ERROR("kafka %s: assign %s[%d]: %s", rd_kafka_name(c->rk), topic, (int)partition,
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return SL_ERR_KAFKA;
    }
    if (positioned_at)
        *positioned_at = offset;
    return 0;
}

int sl_kafka_consumer_store_offset(struct sl_kafka_consumer *c, const char *topic,
                                   int32_t partition, int64_t offset) {
    if (!c || !topic || partition < 0 || offset < 0)
        return -EINVAL;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, list);
    if (!err)
        err = list->elems[0].err;
    rd_kafka_topic_partition_list_destroy(list);
    return err ? SL_ERR_KAFKA : 0;
}

int sl_kafka_consumer_commit(struct sl_kafka_consumer *c) {
    if (!c)
        return -EINVAL;
    if (c->closing)
        return SL_ERR_CLOSED;
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 1);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        return SL_ERR_KAFKA;
    return 0;
}

size_t sl_kafka_consumer_assignment_size(struct sl_kafka_consumer *c) {
    rd_kafka_topic_partition_list_t *list = NULL;
    if (rd_kafka_assignment(c->rk, &list) || !list)
        return 0;
    size_t n = (size_t)list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return n;
}

enum sl_kafka_state sl_kafka_consumer_state(const struct sl_kafka_consumer *c) {
    return c->state;
}

rd_kafka_t *sl_kafka_consumer_handle(struct sl_kafka_consumer *c) {
    return c->rk;
}

int sl_kafka_message_header(const struct sl_kafka_message *msg, const char *name,
                            const void **value, size_t *len) {
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(msg->rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return SL_ERR_MISSING;
    if (rd_kafka_header_get_last(hdrs, name, value, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return SL_ERR_MISSING;
    return 0;
}

int sl_kafka_message_header_at(const struct sl_kafka_message *msg, size_t idx, const char **name,
                               const void **value, size_t *len) {
    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(msg->rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return SL_ERR_MISSING;
    if (rd_kafka_header_get_all(hdrs, idx, name, value, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return SL_ERR_MISSING;
    return 0;
}

void sl_kafka_consumer_close(struct sl_kafka_consumer *c, sl_kafka_close_cb cb, void *data) {
    SL_ASSERT(!c->closing);
    c->closing = 1;
    c->close_cb = cb;
    c->close_data = data;
    if (!c->in_drain)
        consumer_close_now(c);
}

static void consumer_close_now(struct sl_kafka_consumer *c) {
    /* Stop the wakeups first: consumer_close serves the queue itself (rebalance, commits). */
    pump_detach(&c->pump);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err)
        SL_WARN("kafka %s: consumer close: %s", rd_kafka_name(c->rk), rd_kafka_err2str(err));
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    pump_close(&c->pump);
}

/* ---- admin -------------------------------------------------------------------------------- */

static rd_kafka_t *admin_client(const char *const *props, char *errstr, size_t errlen, int *rc) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    *rc = conf_apply(conf, props, errstr, errlen);
    if (*rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        set_err(errstr, errlen, "kafka admin client: %s", rderr);
        *rc = SL_ERR_CONFIG;
    }
    return rk;
}

int sl_kafka_topics_exist(const char *const *props, const char *const *topics, size_t n,
                          int *missing, int timeout_ms, char *errstr, size_t errstr_len) {
    if ((n && (!topics || !missing)))
        return -EINVAL;
    set_err(errstr, errstr_len, "%s", "");
    int rc;
    rd_kafka_t *rk = admin_client(props, errstr, errstr_len, &rc);
    if (!rk)
        return rc;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        set_err(errstr, errstr_len, "kafka metadata: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
    }
    for (size_t i = 0; i < n; i++) {
        missing[i] = 1;
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, topics[i]) == 0 && md->topics[t].err == 0) {
                missing[i] = 0;
                break;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

int sl_kafka_topics_create(const char *const *props, const struct sl_kafka_topic_spec *specs,
                           size_t n, int timeout_ms, char *errstr, size_t errstr_len) {
    if (n && !specs)
        return -EINVAL;
    set_err(errstr, errstr_len, "%s", "");
    if (n == 0)
        return 0;
    int rc;
    rd_kafka_t *rk = admin_client(props, errstr, errstr_len, &rc);
    if (!rk)
        return rc;
    rd_kafka_NewTopic_t **nts = calloc(n, sizeof *nts);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    char rderr[512];
    rc = 0;
    if (!nts) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nts[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions,
                                       specs[i].replication_factor, rderr, sizeof rderr);
        if (!nts[i]) {
            set_err(errstr, errstr_len, "topic '%s': %s", specs[i].name, rderr);
            rc = SL_ERR_CONFIG;
            goto out;
        }
        for (const char *const *cf = specs[i].configs; cf && cf[0]; cf += 2) {
            if (!cf[1] || rd_kafka_NewTopic_set_config(nts[i], cf[0], cf[1])) {
                set_err(errstr, errstr_len, "topic '%s': bad config '%s'", specs[i].name, cf[0]);
                rc = SL_ERR_CONFIG;
                goto out;
            }
        }
    }
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, rderr, sizeof rderr) ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rderr, sizeof rderr)) {
        set_err(errstr, errstr_len, "create topics: %s", rderr);
        rc = SL_ERR_CONFIG;
        goto out;
    }
    rd_kafka_CreateTopics(rk, nts, n, opts, q);
    /* The request timeout bounds the answer; the margin covers connecting first. */
    ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (!ev) {
        set_err(errstr, errstr_len, "create topics: no answer within %d ms", timeout_ms);
        rc = SL_ERR_TIMEOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        set_err(errstr, errstr_len, "create topics: %s", rd_kafka_event_error_string(ev));
        rc = err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **trs = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(trs[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue;
        const char *msg = rd_kafka_topic_result_error_string(trs[i]);
        set_err(errstr, errstr_len, "create topic '%s': %s: %s", rd_kafka_topic_result_name(trs[i]),
                rd_kafka_err2name(err), msg ? msg : rd_kafka_err2str(err));
        rc = err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
        break;
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nts) {
        for (size_t i = 0; i < n; i++)
            if (nts[i])
                rd_kafka_NewTopic_destroy(nts[i]);
        free(nts);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
