/* Kafka glue against librdkafka's in-process mock cluster: roundtrip, injected faults, config. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/kafka.h"

#include <librdkafka/rdkafka_mock.h> /* after rdkafka.h, which kafka.h includes */
#include "sluice/log.h"
#include "sluice/topics.h"

#define TOPIC   "sl.test"
#define NMSG    20
#define WAIT_MS 15000

/* Produce request api key in the Kafka protocol (rdkafka_mock.h asks for the raw number). */
#define APIKEY_PRODUCE 0

struct mock {
    rd_kafka_t *rk; /* only book-keeping for the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
};

static void mock_start(struct mock *m, int partitions) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* This handle never connects anywhere; silence its "no bootstrap.servers" notice. */
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "4", err, sizeof err), RD_KAFKA_CONF_OK);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(m->rk);
    m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
    assert_non_null(m->mc);
    m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
    assert_int_equal(rd_kafka_mock_topic_create(m->mc, TOPIC, partitions, 1), 0);
}

/* What most tests open with: the mock cluster, a loop, room for an error. */
struct kit {
    struct mock m;
    uv_loop_t loop;
    char err[SL_KAFKA_ERRSTR_LEN];
};

static void kit_start(struct kit *k, int partitions) {
    mock_start(&k->m, partitions);
    uv_loop_init(&k->loop);
}

static void mock_stop(struct mock *m) {
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->rk);
}

static void on_tick(uv_timer_t *t) {
    (void)t;
}

/* Runs the loop until *flag is set or timeout_ms passes; a ticking timer keeps it awake. */
static int run_until(uv_loop_t *loop, const int *flag, int timeout_ms) {
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    uint64_t end = uv_now(loop) + (uint64_t)timeout_ms;
    while (!*flag && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static void on_closed(void *data) {
    ++*(int *)data;
}

/* Closing every handle the glue opened lets the loop close: nothing leaked on the loop. */
static void loop_finish(uv_loop_t *loop) {
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* ---- delivery and consumption records ---- */

struct delivery {
    int done;
    int err;
    rd_kafka_resp_err_t kerr;
    int32_t partition;
    int64_t offset;
    pthread_t thread;
};

static void on_delivery(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                        void *opaque) {
    struct delivery *d = opaque;
    d->done++;
    d->err = err;
    d->kerr = kerr;
    d->partition = partition;
    d->offset = offset;
    d->thread = pthread_self();
}

struct received {
    int count;
    int done;
    char values[NMSG][32];
    char keys[NMSG][32];
    int64_t offsets[NMSG];
    char trace[NMSG][64];
    char bin[NMSG][4];
    size_t binlen[NMSG];
    int nheaders[NMSG];
    int on_loop_thread;
    pthread_t loop_thread;
};

static void on_message(const struct sl_kafka_message *msg, void *opaque) {
    struct received *r = opaque;
    if (r->count >= NMSG) {
        r->count++;
        return;
    }
    int i = r->count++;
    snprintf(r->values[i], sizeof r->values[i], "%.*s", (int)msg->vlen, (const char *)msg->value);
    snprintf(r->keys[i], sizeof r->keys[i], "%.*s", (int)msg->keylen, (const char *)msg->key);
    r->offsets[i] = msg->offset;
    const void *v;
    size_t len;
    /* "traceparent" is repeated; the lookup must return the last one. */
    if (sl_kafka_message_header(msg, "traceparent", &v, &len) == 0)
        snprintf(r->trace[i], sizeof r->trace[i], "%.*s", (int)len, (const char *)v);
    if (sl_kafka_message_header(msg, "bin", &v, &len) == 0 && len <= sizeof r->bin[i]) {
        memcpy(r->bin[i], v, len);
        r->binlen[i] = len;
    }
    const char *name;
    while (sl_kafka_message_header_at(msg, (size_t)r->nheaders[i], &name, &v, &len) == 0)
        r->nheaders[i]++;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->on_loop_thread = 0;
    if (r->count == NMSG)
        r->done = 1;
}

/* ---- tests ---- */

static void test_unknown_property_is_rejected_with_its_name(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[SL_KAFKA_ERRSTR_LEN];
    struct sl_kafka_producer *p = NULL;
    const char *const props[] = {"bootstrap.servers", "127.0.0.1:1", "no.such.property", "1", NULL};
    assert_int_equal(sl_kafka_producer_new(&loop, props, &p, err, sizeof err), SL_ERR_CONFIG);
    assert_null(p);
    assert_non_null(strstr(err, "'no.such.property'"));

    const char *const bad_value[] = {"linger.ms", "soon", NULL};
    assert_int_equal(sl_kafka_producer_new(&loop, bad_value, &p, err, sizeof err), SL_ERR_CONFIG);
    assert_non_null(strstr(err, "'linger.ms'"));

    const char *const odd[] = {"acks", NULL};
    struct sl_kafka_consumer *c = NULL;
    assert_int_equal(sl_kafka_consumer_new(&loop, odd, NULL, NULL, &c, err, sizeof err),
                     SL_ERR_CONFIG);
    assert_null(c);
    assert_non_null(strstr(err, "'acks' has no value"));
    loop_finish(&loop);
}

static void test_roundtrip_keeps_order_keys_and_headers(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, NULL};

    struct sl_kafka_consumer *c;
    struct received r = {.on_loop_thread = 1, .loop_thread = pthread_self()};
    assert_int_equal(sl_kafka_consumer_new(&k.loop, props, on_message, &r, &c, k.err, sizeof k.err),
                     0);
    int64_t pos = -1;
    assert_int_equal(sl_kafka_consumer_assign(c, TOPIC, 0, RD_KAFKA_OFFSET_END, 5000, &pos), 0);
    assert_int_equal(pos, 0); /* empty partition: positioned at its end, offset 0 */
    assert_int_equal(sl_kafka_consumer_assignment_size(c), 1);

    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &p, k.err, sizeof k.err), 0);
    struct delivery d[NMSG];
    memset(d, 0, sizeof d);
    static const unsigned char bin[4] = {0x00, 0xff, 0x0a, 0x80};
    for (int i = 0; i < NMSG; i++) {
        char key[16], val[32];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "value-%d", i);
        struct sl_kafka_header h[] = {
            {"traceparent", "first", 5},
            {"bin", bin, sizeof bin},
            {"traceparent", "second", 6},
        };
        assert_int_equal(sl_kafka_produce(p, TOPIC, RD_KAFKA_PARTITION_UA, key, strlen(key), val,
                                          strlen(val), h, 3, on_delivery, &d[i], NULL),
                         0);
    }
    assert_int_equal(sl_kafka_producer_outstanding(p), NMSG);
    assert_true(run_until(&k.loop, &r.done, WAIT_MS));

    for (int i = 0; i < NMSG; i++) {
        char want[32];
        assert_int_equal(d[i].done, 1);
        assert_int_equal(d[i].err, 0);
        assert_int_equal(d[i].offset, i);
        assert_true(pthread_equal(d[i].thread, pthread_self()));
        snprintf(want, sizeof want, "value-%d", i);
        assert_string_equal(r.values[i], want);
        snprintf(want, sizeof want, "k%d", i);
        assert_string_equal(r.keys[i], want);
        assert_int_equal(r.offsets[i], i);
        assert_string_equal(r.trace[i], "second");
        assert_int_equal(r.binlen[i], 4);
        assert_memory_equal(r.bin[i], bin, 4);
        assert_int_equal(r.nheaders[i], 3);
    }
    assert_int_equal(r.count, NMSG);
    assert_true(r.on_loop_thread);
    assert_int_equal(sl_kafka_producer_outstanding(p), 0);
    assert_int_equal(sl_kafka_producer_state(p), SL_KAFKA_UP);

    int closed = 0;
    sl_kafka_producer_close(p, 1000, on_closed, &closed);
    sl_kafka_consumer_close(c, on_closed, &closed);
    loop_finish(&k.loop);
    assert_int_equal(closed, 2);
    mock_stop(&k.m);
}

static void test_injected_produce_error_reaches_callback_on_loop_thread(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    /* A non-retriable broker answer: the message fails at once instead of being retried. */
    rd_kafka_mock_push_request_errors(k.m.mc, APIKEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, NULL};
    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &p, k.err, sizeof k.err), 0);
    struct delivery d = {0};
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "v", 1, NULL, 0, on_delivery, &d, NULL),
                     0);
    assert_true(run_until(&k.loop, &d.done, WAIT_MS));
    assert_int_equal(d.done, 1);
    assert_int_equal(d.err, SL_ERR_KAFKA);
    assert_int_equal(d.kerr, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(d.offset, RD_KAFKA_OFFSET_INVALID);
    assert_true(pthread_equal(d.thread, pthread_self()));

    int closed = 0;
    sl_kafka_producer_close(p, 1000, on_closed, &closed);
    loop_finish(&k.loop);
    assert_int_equal(closed, 1);
    mock_stop(&k.m);
}

/* delivery.report.only.error: a delivered message wakes nobody, a lost one reaches the failure
 * callback on the loop thread; per-message callbacks are refused, nothing is counted. */
static void test_errors_only_producer_reports_losses_alone(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, "delivery.report.only.error",
                                 "true", NULL};
    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &p, k.err, sizeof k.err), 0);
    struct delivery lost = {0};
    sl_kafka_producer_set_failure_cb(p, on_delivery, &lost);
    struct delivery d = {0};
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "v", 1, NULL, 0, on_delivery, &d, NULL),
                     -EINVAL);

    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "ok", 2, NULL, 0, NULL, NULL, NULL), 0);
    assert_int_equal(sl_kafka_producer_outstanding(p), 0);
    rd_kafka_t *rk = sl_kafka_producer_handle(p);
    uint64_t end = uv_hrtime() + (uint64_t)WAIT_MS * 1000000u;
    while (rd_kafka_outq_len(rk) > 0 && uv_hrtime() < end)
        uv_run(&k.loop, UV_RUN_NOWAIT);
    assert_int_equal(rd_kafka_outq_len(rk), 0); /* delivered, and no report came */
    assert_int_equal(lost.done, 0);

    rd_kafka_mock_push_request_errors(k.m.mc, APIKEY_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "bad", 3, NULL, 0, NULL, NULL, NULL), 0);
    assert_true(run_until(&k.loop, &lost.done, WAIT_MS));
    assert_int_equal(lost.done, 1);
    assert_int_equal(lost.err, SL_ERR_KAFKA);
    assert_int_equal(lost.kerr, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    assert_int_equal(lost.partition, 0);
    assert_int_equal(lost.offset, RD_KAFKA_OFFSET_INVALID);
    assert_true(pthread_equal(lost.thread, pthread_self()));
    assert_int_equal(sl_kafka_producer_outstanding(p), 0);

    int closed = 0;
    sl_kafka_producer_close(p, 1000, on_closed, &closed);
    loop_finish(&k.loop);
    assert_int_equal(closed, 1);
    assert_int_equal(lost.done, 1);
    assert_int_equal(d.done, 0);
    mock_stop(&k.m);
}

static void test_full_queue_fails_synchronously_without_callback(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[SL_KAFKA_ERRSTR_LEN];
    /* Nothing listens on port 1, so the first message stays queued and fills the queue. */
    const char *const props[] = {"bootstrap.servers", "127.0.0.1:1", "queue.buffering.max.messages",
                                 "1", NULL};
    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&loop, props, &p, err, sizeof err), 0);
    struct delivery first = {0}, second = {0};
    assert_int_equal(
        sl_kafka_produce(p, TOPIC, 0, NULL, 0, "a", 1, NULL, 0, on_delivery, &first, NULL), 0);
    rd_kafka_resp_err_t kerr;
    assert_int_equal(
        sl_kafka_produce(p, TOPIC, 0, NULL, 0, "b", 1, NULL, 0, on_delivery, &second, &kerr),
        SL_ERR_KAFKA);
    assert_int_equal(kerr, RD_KAFKA_RESP_ERR__QUEUE_FULL);
    assert_int_equal(sl_kafka_producer_outstanding(p), 1);

    /* Close cannot flush to a dead broker: it purges, and the purge is reported. */
    int closed = 0;
    sl_kafka_producer_close(p, 100, on_closed, &closed);
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, NULL, 0, "c", 1, NULL, 0, NULL, NULL, NULL),
                     SL_ERR_CLOSED);
    loop_finish(&loop);
    assert_int_equal(closed, 1);
    assert_int_equal(first.done, 1);
    assert_int_equal(first.err, SL_ERR_KAFKA);
    assert_int_equal(first.kerr, RD_KAFKA_RESP_ERR__PURGE_QUEUE);
    assert_int_equal(second.done, 0);
}

static void test_close_flushes_messages_still_lingering(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    /* A long linger keeps the message in the queue until close forces it out. */
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, "linger.ms", "5000", NULL};
    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &p, k.err, sizeof k.err), 0);
    struct delivery d = {0};
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "v", 1, NULL, 0, on_delivery, &d, NULL),
                     0);
    int closed = 0;
    sl_kafka_producer_close(p, 4000, on_closed, &closed);
    uint64_t start = uv_hrtime();
    loop_finish(&k.loop);
    assert_true(uv_hrtime() - start < 4000000000u);
    assert_int_equal(closed, 1);
    assert_int_equal(d.done, 1);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.offset, 0);
    mock_stop(&k.m);
}

static int down_seen;
static void on_error(rd_kafka_resp_err_t kerr, const char *reason, int fatal, void *opaque) {
    (void)reason;
    (void)opaque;
    assert_false(fatal);
    if (kerr == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        down_seen = 1;
}

static void test_broker_down_is_reported_as_state_and_error(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, "statistics.interval.ms",
                                 "100", NULL};
    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &p, k.err, sizeof k.err), 0);
    sl_kafka_producer_set_error_cb(p, on_error, NULL);
    struct delivery d = {0};
    assert_int_equal(sl_kafka_produce(p, TOPIC, 0, "k", 1, "v", 1, NULL, 0, on_delivery, &d, NULL),
                     0);
    assert_true(run_until(&k.loop, &d.done, WAIT_MS));
    assert_int_equal(sl_kafka_producer_state(p), SL_KAFKA_UP);

    down_seen = 0;
    assert_int_equal(rd_kafka_mock_broker_set_down(k.m.mc, -1), 0);
    assert_true(run_until(&k.loop, &down_seen, WAIT_MS));
    assert_int_equal(sl_kafka_producer_state(p), SL_KAFKA_DOWN);

    /* Back up: the statistics see a connected broker again. */
    assert_int_equal(rd_kafka_mock_broker_set_up(k.m.mc, -1), 0);
    struct delivery d2 = {0};
    assert_int_equal(
        sl_kafka_produce(p, TOPIC, 0, "k", 1, "v2", 2, NULL, 0, on_delivery, &d2, NULL), 0);
    assert_true(run_until(&k.loop, &d2.done, WAIT_MS));
    assert_int_equal(d2.err, 0);
    assert_int_equal(sl_kafka_producer_state(p), SL_KAFKA_UP);

    int closed = 0;
    sl_kafka_producer_close(p, 1000, on_closed, &closed);
    loop_finish(&k.loop);
    assert_int_equal(closed, 1);
    mock_stop(&k.m);
}

struct group_state {
    int assigned;
    int revoked;
    struct received r;
};

static void on_rebalance(struct sl_kafka_consumer *c, int assigned,
                         const rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct group_state *g = opaque;
    (void)c;
    if (assigned)
        g->assigned += parts->cnt;
    else
        g->revoked += parts->cnt;
}

static void on_group_message(const struct sl_kafka_message *msg, void *opaque) {
    struct group_state *g = opaque;
    on_message(msg, &g->r);
}

static void test_group_subscription_calls_rebalance_hook_and_consumes(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 2);
    const char *const cprops[] = {"bootstrap.servers", k.m.bootstrap, "group.id", "g1",
                                  "auto.offset.reset", "earliest",    NULL};
    const char *const pprops[] = {"bootstrap.servers", k.m.bootstrap, NULL};
    struct group_state g = {.r = {.on_loop_thread = 1, .loop_thread = pthread_self()}};
    struct sl_kafka_consumer *c;
    assert_int_equal(
        sl_kafka_consumer_new(&k.loop, cprops, on_group_message, &g, &c, k.err, sizeof k.err), 0);
    sl_kafka_consumer_set_rebalance_cb(c, on_rebalance, &g);
    const char *const topics[] = {TOPIC};
    assert_int_equal(sl_kafka_consumer_subscribe(c, topics, 1), 0);

    struct sl_kafka_producer *p;
    assert_int_equal(sl_kafka_producer_new(&k.loop, pprops, &p, k.err, sizeof k.err), 0);
    for (int i = 0; i < NMSG; i++) {
        char val[32];
        snprintf(val, sizeof val, "value-%d", i);
        /* One partition only, so the consumed order is the produced order. */
        assert_int_equal(
            sl_kafka_produce(p, TOPIC, 1, "k", 1, val, strlen(val), NULL, 0, NULL, NULL, NULL), 0);
    }
    assert_true(run_until(&k.loop, &g.r.done, WAIT_MS));
    assert_int_equal(g.assigned, 2);
    assert_int_equal(sl_kafka_consumer_assignment_size(c), 2);
    for (int i = 0; i < NMSG; i++) {
        char want[32];
        snprintf(want, sizeof want, "value-%d", i);
        assert_string_equal(g.r.values[i], want);
    }
    assert_int_equal(sl_kafka_consumer_store_offset(c, TOPIC, 1, NMSG), 0);
    assert_int_equal(sl_kafka_consumer_commit(c), 0);

    int closed = 0;
    sl_kafka_producer_close(p, 1000, on_closed, &closed);
    sl_kafka_consumer_close(c, on_closed, &closed);
    assert_int_equal(g.revoked, 2); /* close left the group through the hook */
    loop_finish(&k.loop);
    assert_int_equal(closed, 2);
    mock_stop(&k.m);
}

struct closer {
    struct sl_kafka_consumer *c;
    struct sl_kafka_producer *p;
    int seen;
    int closed;
};

static void close_on_third_message(const struct sl_kafka_message *msg, void *opaque) {
    struct closer *cl = opaque;
    (void)msg;
    if (++cl->seen == 3)
        sl_kafka_consumer_close(cl->c, on_closed, &cl->closed);
}

static void close_on_delivery(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                              void *opaque) {
    struct closer *cl = opaque;
    (void)err;
    (void)kerr;
    (void)partition;
    (void)offset;
    if (++cl->seen == 1)
        sl_kafka_producer_close(cl->p, 1000, on_closed, &cl->closed);
}

static void test_close_from_inside_callbacks_stops_delivery(void **state) {
    (void)state;
    struct kit k;
    kit_start(&k, 1);
    const char *const props[] = {"bootstrap.servers", k.m.bootstrap, NULL};

    /* The producer closes itself from its first delivery report; the others still report. */
    struct closer pcl = {0};
    assert_int_equal(sl_kafka_producer_new(&k.loop, props, &pcl.p, k.err, sizeof k.err), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(sl_kafka_produce(pcl.p, TOPIC, 0, NULL, 0, "v", 1, NULL, 0,
                                          close_on_delivery, &pcl, NULL),
                         0);
    assert_true(run_until(&k.loop, &pcl.closed, WAIT_MS));
    assert_int_equal(pcl.seen, 10);

    /* The consumer closes from its third message: no fourth one is delivered. */
    struct closer ccl = {0};
    assert_int_equal(sl_kafka_consumer_new(&k.loop, props, close_on_third_message, &ccl, &ccl.c,
                                           k.err, sizeof k.err),
                     0);
    assert_int_equal(
        sl_kafka_consumer_assign(ccl.c, TOPIC, 0, RD_KAFKA_OFFSET_BEGINNING, 5000, NULL), 0);
    assert_true(run_until(&k.loop, &ccl.closed, WAIT_MS));
    assert_int_equal(ccl.seen, 3);
    loop_finish(&k.loop);
    mock_stop(&k.m);
}

static void test_topic_partitions_are_counted_and_missing_ones_are_zero(void **state) {
    (void)state;
    struct mock m;
    mock_start(&m, 3);
    const char *props[] = {"bootstrap.servers", m.bootstrap, NULL};
    const char *topics[] = {TOPIC, "sl.absent"};
    int parts[2] = {-1, -1};
    char err[SL_KAFKA_ERRSTR_LEN];
    assert_int_equal(sl_kafka_topics_partitions(props, topics, 2, parts, 5000, err, sizeof err), 0);
    assert_int_equal(parts[0], 3);
    assert_int_equal(parts[1], 0);
    int missing[2] = {-1, -1};
    assert_int_equal(sl_kafka_topics_exist(props, topics, 2, missing, 5000, err, sizeof err), 0);
    assert_int_equal(missing[0], 0);
    assert_int_equal(missing[1], 1);
    mock_stop(&m);
}

static void test_topic_check_names_each_missing_topic_unless_it_may_create(void **state) {
    (void)state;
    struct mock m;
    mock_start(&m, 1);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "p.requests", 12, 1), 0);
    const char *props[] = {"bootstrap.servers", m.bootstrap, NULL};
    const enum sl_topic which[] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_AUDIT};
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    assert_int_equal(sl_topics_ensure(props, "p.", which, 3, false, 5000, &err), SL_ERR_CONFIG);
    assert_non_null(err.data);
    assert_null(strstr(err.data, "p.requests"));
    assert_non_null(strstr(err.data, "topic p.replies does not exist"));
    assert_non_null(strstr(err.data, "topic p.audit does not exist"));
    sl_buf_reset(&err);
    assert_int_equal(sl_topics_ensure(props, "p.", which, 1, false, 5000, &err), 0);
    sl_buf_free(&err);
    mock_stop(&m);
}

static void test_topic_names_are_prefix_and_catalog_suffix(void **state) {
    (void)state;
    char name[SL_TOPIC_NAME_MAX + 1];
    assert_int_equal(sl_topic_name("sluice.", SL_TOPIC_DLQ, name, sizeof name), 0);
    assert_string_equal(name, "sluice.dlq");
    assert_int_equal(sl_topic_catalog[SL_TOPIC_REPLIES].partitions, 16);
    assert_int_equal(sl_topic_name("sluice.", SL_TOPIC_REPLIES, name, 8), -ENAMETOOLONG);
}

static void test_size_and_validity_errors_are_permanent_and_outages_are_not(void **state) {
    (void)state;
    assert_true(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    assert_true(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE));
    assert_true(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_INVALID_RECORD));
    assert_true(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_INVALID_MSG));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_NO_ERROR));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR__QUEUE_FULL));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR__TRANSPORT));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION));
    assert_false(sl_kafka_err_permanent(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
}

int main(void) {
    sl_log_init("test_kafka", SL_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_property_is_rejected_with_its_name),
        cmocka_unit_test(test_topic_partitions_are_counted_and_missing_ones_are_zero),
        cmocka_unit_test(test_topic_check_names_each_missing_topic_unless_it_may_create),
        cmocka_unit_test(test_topic_names_are_prefix_and_catalog_suffix),
        cmocka_unit_test(test_size_and_validity_errors_are_permanent_and_outages_are_not),
        cmocka_unit_test(test_roundtrip_keeps_order_keys_and_headers),
        cmocka_unit_test(test_injected_produce_error_reaches_callback_on_loop_thread),
        cmocka_unit_test(test_errors_only_producer_reports_losses_alone),
        cmocka_unit_test(test_full_queue_fails_synchronously_without_callback),
        cmocka_unit_test(test_close_flushes_messages_still_lingering),
        cmocka_unit_test(test_broker_down_is_reported_as_state_and_error),
        cmocka_unit_test(test_group_subscription_calls_rebalance_hook_and_consumes),
        cmocka_unit_test(test_close_from_inside_callbacks_stops_delivery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
