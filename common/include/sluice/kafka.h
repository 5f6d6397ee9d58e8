/* Kafka glue for a libuv loop: producer, consumer, admin (common/src/kafka*.c). */
#ifndef SLUICE_KAFKA_H
#define SLUICE_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>
#include <uv.h>

#include "sluice/buf.h"

/*
 * Threading model. librdkafka runs its own threads; none of them ever calls back into Sluice
 * code except the log callback (which only writes a line with sl_log, itself thread-safe).
 * Everything else (delivery reports, messages, rebalances, errors, statistics) is queued by
 * librdkafka and served on the libuv loop thread: librdkafka writes a byte to a non-blocking
 * pipe when a queue becomes non-empty (rd_kafka_queue_io_event_enable), a uv_poll_t on the
 * read end wakes the loop, and the glue drains the queue in bounded batches. A uv_timer_t
 * drains too, every SL_KAFKA_TICK_MS, as a safety net for a lost wakeup. All functions below
 * must be called on the loop thread, except the admin helpers, which block and touch no loop.
 *
 * Errors are 0 or negative (see error.h): -EINVAL for bad arguments, SL_ERR_CONFIG for a bad
 * property (errstr names it), SL_ERR_KAFKA when librdkafka refuses, SL_ERR_TIMEOUT,
 * SL_ERR_CLOSED after close. A call that fails never runs its callback.
 */

#define SL_KAFKA_TICK_MS 50
/* Events served per wakeup before yielding to the rest of the loop. */
#define SL_KAFKA_BATCH      256
#define SL_KAFKA_ERRSTR_LEN 512

/*
 * The largest record Sluice writes or reads, in one place: the topics' max.message.bytes at
 * creation (topics.c), every producer's message.max.bytes and every consumer's fetch sizes
 * (set here as defaults). 16 MiB holds a request envelope with the largest default body
 * (SLUICE_MAX_BODY_BYTES, 10 MiB) and its headers, query and metadata.
 */
#define SL_KAFKA_MAX_MESSAGE_BYTES     (16u << 20)
#define SL_KAFKA_MAX_MESSAGE_BYTES_STR "16777216"
/*
 * The largest envelope (request or reply) a service hands to Kafka: the record limit minus
 * room for the key, the Kafka headers (a DLQ record adds a dozen to the request's own) and
 * the record batch framing, so that a request that was produced also fits in the DLQ. The
 * gateway answers 413 for a request envelope above it, the worker 502 for a reply above it.
 */
#define SL_KAFKA_MAX_ENVELOPE_BYTES (SL_KAFKA_MAX_MESSAGE_BYTES - (64u << 10))

/*
 * True for a produce error that producing the same record again cannot fix: the record is too
 * large, malformed or refused as invalid (MSG_SIZE_TOO_LARGE, from librdkafka or the broker,
 * INVALID_RECORD, RECORD_LIST_TOO_LARGE, ...). A caller drops or replaces such a record
 * instead of retrying it.
 */
int sl_kafka_err_permanent(rd_kafka_resp_err_t kerr);

/* One Kafka header: a name (NUL-terminated) and a value of len bytes, borrowed by the call. */
struct sl_kafka_header {
    const char *name;
    const void *value;
    size_t len;
};

/*
 * Connection state as last reported by librdkafka. DOWN after ALL_BROKERS_DOWN; UP again once
 * statistics report a broker connected (statistics.interval.ms, 1000 by default here), or a
 * message is delivered or consumed. UNKNOWN until the first signal.
 */
enum sl_kafka_state { SL_KAFKA_UNKNOWN = 0, SL_KAFKA_UP, SL_KAFKA_DOWN };

/*
 * Called on the loop thread for every error librdkafka reports (the glue has already logged
 * it and updated the state). `fatal` is set for unrecoverable errors (e.g. idempotence
 * broken); the object then only fails further calls and should be closed.
 */
typedef void (*sl_kafka_error_cb)(rd_kafka_resp_err_t kerr, const char *reason, int fatal,
                                  void *opaque);
typedef void (*sl_kafka_close_cb)(void *data);

/* ---- producer --------------------------------------------------------------------------- */

/*
 * A producer bound to one loop. Lifecycle: sl_kafka_producer_new (starts at once) ->
 * sl_kafka_produce ... -> sl_kafka_producer_close; the memory is freed by the glue right
 * before the close callback runs, so the pointer is invalid in and after that callback.
 * The caller owns the producer until it calls close; it must not free it any other way.
 *
 * Defaults (applied first; `props` overrides them): enable.idempotence=true, acks=all
 * (idempotence needs it and it is what durability means here), linger.ms=0 (request traffic
 * wants latency, not batches), socket.nagle.disable=true, statistics.interval.ms=1000 (drives
 * the connection state), message.max.bytes=SL_KAFKA_MAX_MESSAGE_BYTES.
 */
struct sl_kafka_producer;

/*
 * Delivery report, on the loop thread, exactly once per accepted sl_kafka_produce: err is 0
 * (kerr RD_KAFKA_RESP_ERR_NO_ERROR, partition/offset where it landed) or SL_ERR_KAFKA with
 * kerr saying why (offset is then RD_KAFKA_OFFSET_INVALID). Messages still queued when close
 * gives up get kerr RD_KAFKA_RESP_ERR__PURGE_QUEUE / __PURGE_INFLIGHT.
 */
typedef void (*sl_kafka_delivery_cb)(int err, rd_kafka_resp_err_t kerr, int32_t partition,
                                     int64_t offset, void *opaque);

/*
 * Creates and starts a producer. `props` is NULL or a NULL-terminated list of librdkafka
 * name,value pairs. On failure returns a negative code, *out is untouched and errstr
 * (errstr_len > 0, may be NULL) says what was wrong, naming the property.
 */
int sl_kafka_producer_new(uv_loop_t *loop, const char *const *props, struct sl_kafka_producer **out,
                          char *errstr, size_t errstr_len);

/*
 * Queues one message. Copies topic, key, value and headers (the caller keeps ownership).
 * partition may be RD_KAFKA_PARTITION_UA (partitioner on the key). On success returns 0 and
 * cb (may be NULL) runs later on the loop thread; on failure returns SL_ERR_KAFKA (the
 * librdkafka code is in *kerr_out when non-NULL: e.g. __QUEUE_FULL, __UNKNOWN_TOPIC,
 * MSG_SIZE_TOO_LARGE), SL_ERR_CLOSED after close, and cb never runs.
 *
 * A producer made with "delivery.report.only.error" "true" among its props reports losses
 * only: librdkafka frees a delivered message on its own thread, and the loop is woken for a
 * message only when it is lost, through the callback of sl_kafka_producer_set_failure_cb.
 * Its messages take no cb and no opaque (-EINVAL otherwise) and are not counted by
 * sl_kafka_producer_outstanding; close still flushes them and reports the purged ones.
 */
int sl_kafka_produce(struct sl_kafka_producer *p, const char *topic, int32_t partition,
                     const void *key, size_t keylen, const void *value, size_t vlen,
                     const struct sl_kafka_header *headers, size_t nheaders,
                     sl_kafka_delivery_cb cb, void *opaque, rd_kafka_resp_err_t *kerr_out);
/* The same with the message's timestamp (milliseconds since the epoch; 0: now, as
 * sl_kafka_produce): a caller that already read the clock saves librdkafka reading it again. */
int sl_kafka_produce_ts(struct sl_kafka_producer *p, const char *topic, int32_t partition,
                        const void *key, size_t keylen, const void *value, size_t vlen,
                        int64_t timestamp_ms, const struct sl_kafka_header *headers,
                        size_t nheaders, sl_kafka_delivery_cb cb, void *opaque,
                        rd_kafka_resp_err_t *kerr_out);

/*
 * Messages produced with RD_KAFKA_PARTITION_UA go to one partition per window of window_ms
 * (then the next; the seed offsets replicas), whatever their key, so that messages waiting
 * behind an in-flight request can share a batch. 0 restores librdkafka's key hashing.
 */
void sl_kafka_producer_set_sticky(struct sl_kafka_producer *p, int window_ms, uint64_t seed);

/* The callback for lost messages of a producer that reports only errors (see
 * sl_kafka_produce), run on the loop thread with the offset RD_KAFKA_OFFSET_INVALID. */
void sl_kafka_producer_set_failure_cb(struct sl_kafka_producer *p, sl_kafka_delivery_cb cb,
                                      void *opaque);

/* Messages accepted but not yet reported (queued, in flight, or report not yet served). */
size_t sl_kafka_producer_outstanding(const struct sl_kafka_producer *p);
enum sl_kafka_state sl_kafka_producer_state(const struct sl_kafka_producer *p);
void sl_kafka_producer_set_error_cb(struct sl_kafka_producer *p, sl_kafka_error_cb cb,
                                    void *opaque);
/* The underlying handle, for metadata queries and metrics; owned by the producer. */
rd_kafka_t *sl_kafka_producer_handle(struct sl_kafka_producer *p);

/*
 * Stops accepting messages and flushes: this call blocks the loop for up to flush_timeout_ms
 * (librdkafka ignores linger.ms only during a blocking flush) and delivery callbacks run
 * inside it. What is still unreported after that is purged; its purge reports, then the
 * handle's destruction, the closing of the libuv handles and the free happen on the loop,
 * and cb(data) (may be NULL) runs last. Call once. When called from inside a delivery or
 * error callback, the flush starts right after that callback's batch has been served.
 */
void sl_kafka_producer_close(struct sl_kafka_producer *p, int flush_timeout_ms,
                             sl_kafka_close_cb cb, void *data);

/* ---- consumer --------------------------------------------------------------------------- */

/*
 * A consumer bound to one loop, either in a group (subscribe) or on manually assigned
 * partitions (assign; then group.id may be absent). Lifecycle: sl_kafka_consumer_new ->
 * subscribe or assign (messages start flowing) -> sl_kafka_consumer_close (leaves the group,
 * commits stored offsets when auto commit is on, frees the consumer before cb runs).
 *
 * Defaults (then `props`): enable.auto.commit=true with enable.auto.offset.store=false, so
 * only offsets the service stores (sl_kafka_consumer_store_offset, after it has finished with
 * a message) are committed; socket.nagle.disable=true; statistics.interval.ms=1000;
 * max.partition.fetch.bytes=SL_KAFKA_MAX_MESSAGE_BYTES, so the largest record comes in one
 * fetch (librdkafka's fetch.max.bytes, 50 MiB, is above it).
 */
struct sl_kafka_consumer;

/*
 * A consumed message, valid only during the message callback (the glue owns and frees it).
 * key/value may be NULL. timestamp_ms is -1 when the broker gave none.
 */
struct sl_kafka_message {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t keylen;
    const void *value;
    size_t vlen;
    int64_t timestamp_ms;
    rd_kafka_message_t *rkm; /* the underlying message, for anything not wrapped here */
};

typedef void (*sl_kafka_message_cb)(const struct sl_kafka_message *msg, void *opaque);

/*
 * Group membership change, on the loop thread. For an assignment the glue has already
 * assigned `parts` when this runs; for a revocation it runs before the glue unassigns, so the
 * service can still store and commit offsets. `parts` is borrowed for the call.
 */
typedef void (*sl_kafka_rebalance_cb)(struct sl_kafka_consumer *c, int assigned,
                                      const rd_kafka_topic_partition_list_t *parts, void *opaque);

int sl_kafka_consumer_new(uv_loop_t *loop, const char *const *props, sl_kafka_message_cb cb,
                          void *opaque, struct sl_kafka_consumer **out, char *errstr,
                          size_t errstr_len);
void sl_kafka_consumer_set_rebalance_cb(struct sl_kafka_consumer *c, sl_kafka_rebalance_cb cb,
                                        void *opaque);
void sl_kafka_consumer_set_error_cb(struct sl_kafka_consumer *c, sl_kafka_error_cb cb,
                                    void *opaque);

/* Joins the group (group.id required) for these topics. */
int sl_kafka_consumer_subscribe(struct sl_kafka_consumer *c, const char *const *topics, size_t n);

/*
 * Adds one partition to the manual assignment, starting at `offset`: an absolute offset,
 * RD_KAFKA_OFFSET_BEGINNING or RD_KAFKA_OFFSET_END. Logical offsets are resolved here, with a
 * blocking watermark query bounded by timeout_ms, and the partition is assigned at the
 * resulting absolute offset, so when this returns 0 the consumer is positioned: every message
 * produced afterwards will be delivered (this is what lets the gateway become ready only once
 * its reply partition is positioned at the end). The resolved offset goes to *positioned_at
 * when non-NULL. Returns SL_ERR_TIMEOUT / SL_ERR_KAFKA when the broker did not answer.
 */
int sl_kafka_consumer_assign(struct sl_kafka_consumer *c, const char *topic, int32_t partition,
                             int64_t offset, int timeout_ms, int64_t *positioned_at);

/*
 * Marks `offset` (the next offset to read, i.e. last processed + 1) as the one to commit for
 * the partition; the auto-committer (or sl_kafka_consumer_commit) sends it.
 */
int sl_kafka_consumer_store_offset(struct sl_kafka_consumer *c, const char *topic,
                                   int32_t partition, int64_t offset);
/* Commits stored offsets now, asynchronously (the result is logged on failure). */
int sl_kafka_consumer_commit(struct sl_kafka_consumer *c);

/* Number of partitions currently assigned (group or manual). */
size_t sl_kafka_consumer_assignment_size(struct sl_kafka_consumer *c);
enum sl_kafka_state sl_kafka_consumer_state(const struct sl_kafka_consumer *c);
rd_kafka_t *sl_kafka_consumer_handle(struct sl_kafka_consumer *c);

/*
 * Header lookup: the LAST header called `name` (Kafka allows repeats). Returns 0 and sets
 * *value (may be NULL for a null header) and *len, or SL_ERR_MISSING.
 */
int sl_kafka_message_header(const struct sl_kafka_message *msg, const char *name,
                            const void **value, size_t *len);
/*
 * A message's age in seconds: the wall clock now minus its timestamp (the producer's clock at
 * produce time, CreateTime, to the millisecond, so up to 1 ms high), at least 0 (another host's
 * clock may run ahead); -1 when the message has no timestamp.
 */
double sl_kafka_message_age_s(const struct sl_kafka_message *msg);
/* Header by position, in wire order, for iterating all of them: 0 or SL_ERR_MISSING past the end.
 */
int sl_kafka_message_header_at(const struct sl_kafka_message *msg, size_t idx, const char **name,
                               const void **value, size_t *len);

/*
 * Leaves the group (or drops the manual assignment), commits stored offsets if auto commit
 * is on, destroys the handle (this blocks the loop briefly: librdkafka's close is
 * synchronous), closes the libuv handles, frees the consumer, then calls cb(data). Call once;
 * no message callback runs after this returns. From inside a message, rebalance or error
 * callback the close happens as soon as that callback returns (the revocation hook then runs
 * from the close, not nested in the callback).
 */
void sl_kafka_consumer_close(struct sl_kafka_consumer *c, sl_kafka_close_cb cb, void *data);

/* ---- admin (blocking; for startup checks and sluicectl) --------------------------------- */

/*
 * --check of the SLUICE_KAFKA_* properties (name,value pairs, NULL-terminated): each is set on
 * a librdkafka configuration as a client would set it, nothing is connected. Every property
 * librdkafka refuses (unknown name, bad value) is a line "SLUICE_KAFKA_<NAME>: <reason>" in
 * err (a secret's value is never quoted). Returns 0, SL_ERR_CONFIG or -ENOMEM.
 */
int sl_kafka_props_check(const char *const *props, struct sl_buf *err);

/*
 * The blocking start-up calls (sl_kafka_topics_partitions, sl_kafka_topics_exist,
 * sl_kafka_topics_create, sl_kafka_consumer_assign) can wait up to their timeout for brokers
 * that never answer. With a wait hook they wait in slices of at most SL_KAFKA_WAIT_SLICE_MS
 * and call hook(data) between slices; a non-zero return ends the call at once with
 * SL_ERR_CLOSED ("interrupted"). sl_service_main sets one that runs the loop once (so /healthz
 * answers and SIGTERM is seen) and says whether a stop was asked. NULL removes it. Process-wide:
 * set and cleared on the loop thread around a service's start.
 */
#define SL_KAFKA_WAIT_SLICE_MS 200
void sl_kafka_set_wait_hook(int (*hook)(void *data), void *data);

struct sl_kafka_topic_spec {
    const char *name;
    int partitions;
    int replication_factor;     /* -1: the broker default */
    const char *const *configs; /* NULL or NULL-terminated name,value pairs (retention.ms...) */
};

/*
 * A librdkafka configuration with `props` (NULL or NULL-terminated name,value pairs) applied and
 * Sluice's log callback set, for blocking clients that drive librdkafka directly (sluicectl).
 * NULL with errstr naming the property when one is refused. The caller owns the result (it
 * passes to rd_kafka_new, or rd_kafka_conf_destroy).
 */
rd_kafka_conf_t *sl_kafka_conf_new(const char *const *props, char *errstr, size_t errstr_len);

/*
 * Fetches metadata and sets missing[i] = 1 for every topics[i] the cluster does not have
 * (0 otherwise). `props` configures the temporary client (bootstrap.servers at least).
 * Returns 0, or SL_ERR_KAFKA / SL_ERR_TIMEOUT with errstr filled.
 */
int sl_kafka_topics_exist(const char *const *props, const char *const *topics, size_t n,
                          int *missing, int timeout_ms, char *errstr, size_t errstr_len);

/*
 * The same query, answering each topics[i]'s partition count in partitions[i] (0: the cluster
 * does not have it). The topic catalog (sluice/topics.h) uses it to check shapes at start-up.
 */
int sl_kafka_topics_partitions(const char *const *props, const char *const *topics, size_t n,
                               int *partitions, int timeout_ms, char *errstr, size_t errstr_len);

/*
 * Creates the topics with CreateTopics; a topic that already exists counts as success, so
 * this is idempotent (its partitions and configs are not checked or changed). Returns 0 once
 * every topic exists, else the first error with errstr naming the topic.
 */
int sl_kafka_topics_create(const char *const *props, const struct sl_kafka_topic_spec *specs,
                           size_t n, int timeout_ms, char *errstr, size_t errstr_len);

#endif
