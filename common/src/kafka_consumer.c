/* Kafka consumer on a libuv loop: group or manual assignment, stored offsets, close. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

struct sl_kafka_consumer {
    struct sl__kafka_pump pump; /* first member, see the producer */
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
    sl__kafka_report_error(rk, &c->state, c->error_cb, c->error_opaque, err, reason);
}

static int consumer_stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    struct sl_kafka_consumer *c = opaque;
    (void)rk;
    int up = sl__kafka_stats_brokers_up(json, len);
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
        /* librdkafka keeps a partition's pause through revoke and re-assignment: one paused
         * now would come back paused, and nobody would resume it. An assignment starts
         * fetching; a service that wants it paused pauses it again from its callback. */
        rd_kafka_resume_partitions(rk, parts);
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
            sl__kafka_report_error(c->rk, &c->state, c->error_cb, c->error_opaque, rkm->err,
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

static void consumer_drain(struct sl__kafka_pump *pu) {
    struct sl_kafka_consumer *c = (struct sl_kafka_consumer *)pu;
    if (!c->rk || c->closing)
        return;
    c->in_drain = 1;
    int i = 0;
    for (; i < SL_KAFKA_BATCH && !c->closing; i++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        if (!rkm)
            break;
        consumer_deliver(c, rkm);
        rd_kafka_message_destroy(rkm);
    }
    c->in_drain = 0;
    /* A full batch may have left messages queued: come back after the rest of the loop has
     * had its turn, not at the next safety-net tick (which would cap a busy consumer at
     * SL_KAFKA_BATCH messages per SL_KAFKA_TICK_MS). */
    if (i == SL_KAFKA_BATCH && !c->closing)
        sl__kafka_pump_again(pu);
    /* A callback asked to close: the handle can go now that no message refers to it. */
    if (c->closing)
        consumer_close_now(c);
}

static void consumer_closed(struct sl__kafka_pump *pu) {
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
                                           "max.partition.fetch.bytes",
                                           SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                                           NULL};
    if (!loop || !out)
        return -EINVAL;
    sl__kafka_set_err(errstr, errstr_len, "%s", "");
    struct sl_kafka_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->msg_cb = cb;
    c->msg_opaque = opaque;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = sl__kafka_conf_apply(conf, defaults, errstr, errstr_len);
    if (rc == 0)
        rc = sl__kafka_conf_apply(conf, props, errstr, errstr_len);
    /*
     * librdkafka refuses assign() without a group id even when no group is joined; manual
     * assignment receives a fixed one. Nothing is committed for it unless offsets are stored.
     */
    if (rc == 0 && !sl__kafka_conf_is_set(conf, "group.id"))
        rc = sl__kafka_conf_apply(conf,
                                  (const char *const[]){"group.id", "sluice-manual-assign", NULL},
                                  errstr, errstr_len);
    if (rc < 0) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_stats_cb(conf, consumer_stats_cb);
    rd_kafka_conf_set_log_cb(conf, sl__kafka_log_cb);
    rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);
    char rderr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        sl__kafka_set_err(errstr, errstr_len, "kafka consumer: %s", rderr);
        free(c);
        return SL_ERR_CONFIG;
    }
    /* One queue for everything: messages, rebalances, errors, stats, commit results. */
    rd_kafka_poll_set_consumer(c->rk);
    rc = sl__kafka_pump_start(&c->pump, loop, rd_kafka_queue_get_consumer(c->rk), consumer_drain,
                              consumer_closed);
    if (rc < 0) {
        rd_kafka_queue_destroy(c->pump.q);
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
        sl__kafka_set_err(errstr, errstr_len, "kafka consumer: %s", uv_strerror(rc));
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
            int slice = sl__kafka_wait_slice(left);
            err = rd_kafka_query_watermark_offsets(c->rk, topic, partition, &lo, &hi, slice);
            /* A slice that ran out is waited again, unless a stop was asked meanwhile. */
            int sliced = err == RD_KAFKA_RESP_ERR__TIMED_OUT && slice < left;
            if ((!sliced && !is_retriable_leader_error(err)) || left < 100)
                break;
            if (sl__kafka_wait_interrupted())
                return SL_ERR_CLOSED;
            if (!sliced)
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

double sl_kafka_message_age_s(const struct sl_kafka_message *msg) {
    if (msg->timestamp_ms < 0)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t age_ns = ((int64_t)now.tv_sec * 1000 - msg->timestamp_ms) * 1000000 + now.tv_nsec;
    return age_ns > 0 ? (double)age_ns / 1e9 : 0;
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
    sl__kafka_pump_detach(&c->pump);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err)
        SL_WARN("kafka %s: consumer close: %s", rd_kafka_name(c->rk), rd_kafka_err2str(err));
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    sl__kafka_pump_close(&c->pump);
}
