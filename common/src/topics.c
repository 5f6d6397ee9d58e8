/* The topic catalog and the two ways of applying it: create on demand, check at start-up. */
#include "sluice/topics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/kafka.h"
#include "sluice/log.h"

/*
 * max.message.bytes is SL_KAFKA_MAX_MESSAGE_BYTES on every topic, the same value the glue sets
 * as every producer's message.max.bytes and every consumer's fetch size, so that a record one
 * service may write is one Kafka accepts and the next service can read. The broker's own
 * default (message.max.bytes, 1 MB) does not apply to a topic that sets it.
 */
const struct sl_topic_shape sl_topic_catalog[SL_TOPIC_COUNT] = {
    [SL_TOPIC_REQUESTS] = {.suffix = "requests",
                           .partitions = 12,
                           .retention_ms = "86400000",
                           .cleanup_policy = "delete",
                           .compression_type = "producer",
                           .max_message_bytes = SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                           .why = "request envelopes; partitions = the most worker processes that "
                                  "can share the load"},
    [SL_TOPIC_REPLIES] = {.suffix = "replies",
                          .partitions = 16,
                          .retention_ms = "3600000",
                          .cleanup_policy = "delete",
                          .compression_type = "producer",
                          .max_message_bytes = SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                          .why = "replies; partition N belongs to gateway replica N, so >= the "
                                 "most gateway replicas"},
    [SL_TOPIC_DLQ] = {.suffix = "dlq",
                      .partitions = 3,
                      .retention_ms = "1209600000",
                      .cleanup_policy = "delete",
                      .compression_type = "producer",
                      .max_message_bytes = SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                      .why = "dead letters, kept 14 days like the SQS DLQ"},
    [SL_TOPIC_AUDIT] = {.suffix = "audit",
                        .partitions = 6,
                        .retention_ms = "604800000",
                        .cleanup_policy = "delete",
                        .compression_type = "producer",
                        .max_message_bytes = SL_KAFKA_MAX_MESSAGE_BYTES_STR,
                        .why = "audit records for the archiver"},
};

int sl_topic_name(const char *prefix, enum sl_topic t, char *out, size_t len) {
    if ((unsigned)t >= SL_TOPIC_COUNT || !out || len == 0)
        return -EINVAL;
    int n = snprintf(out, len, "%s%s", prefix ? prefix : "", sl_topic_catalog[t].suffix);
    if (n < 0 || (size_t)n >= len || n > SL_TOPIC_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* The catalog's configs of one topic as name,value pairs (NULL-terminated, 9 slots). */
static void shape_configs(const struct sl_topic_shape *s, const char *out[9]) {
    const char *pairs[9] = {"retention.ms",      s->retention_ms,      "cleanup.policy",
                            s->cleanup_policy,   "compression.type",   s->compression_type,
                            "max.message.bytes", s->max_message_bytes, NULL};
    memcpy(out, pairs, sizeof pairs);
}

int sl_topics_create(const char *const *props, const char *prefix, const enum sl_topic *which,
                     size_t n, const int *partitions, int replication_factor, int timeout_ms,
                     char *errstr, size_t errstr_len) {
    if (n > SL_TOPIC_COUNT || (n && !which))
        return -EINVAL;
    char names[SL_TOPIC_COUNT][SL_TOPIC_NAME_MAX + 1];
    const char *configs[SL_TOPIC_COUNT][9];
    struct sl_kafka_topic_spec specs[SL_TOPIC_COUNT];
    for (size_t i = 0; i < n; i++) {
        if (sl_topic_name(prefix, which[i], names[i], sizeof names[i]) < 0) {
            snprintf(errstr, errstr_len, "topic prefix '%s' is too long", prefix);
            return -ENAMETOOLONG;
        }
        const struct sl_topic_shape *s = &sl_topic_catalog[which[i]];
        shape_configs(s, configs[i]);
        specs[i] = (struct sl_kafka_topic_spec){
            .name = names[i],
            .partitions = partitions ? partitions[i] : s->partitions,
            .replication_factor = replication_factor,
            .configs = configs[i],
        };
    }
    return sl_kafka_topics_create(props, specs, n, timeout_ms, errstr, errstr_len);
}

int sl_topics_ensure(const char *const *props, const char *prefix, const enum sl_topic *which,
                     size_t n, bool auto_create, int timeout_ms, struct sl_buf *err) {
    if (n > SL_TOPIC_COUNT || (n && !which))
        return -EINVAL;
    char names[SL_TOPIC_COUNT][SL_TOPIC_NAME_MAX + 1];
    const char *topics[SL_TOPIC_COUNT] = {NULL};
    int counts[SL_TOPIC_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        if (sl_topic_name(prefix, which[i], names[i], sizeof names[i]) < 0) {
            sl_buf_printf(err, "SLUICE_TOPIC_PREFIX: '%s' is too long\n", prefix);
            return -ENAMETOOLONG;
        }
        topics[i] = names[i];
    }
    char errstr[SL_KAFKA_ERRSTR_LEN] = "";
    int rc =
        sl_kafka_topics_partitions(props, topics, n, counts, timeout_ms, errstr, sizeof errstr);
    if (rc < 0) {
        sl_buf_printf(err, "kafka: %s\n", errstr);
        return rc;
    }
    enum sl_topic missing[SL_TOPIC_COUNT];
    size_t nmissing = 0;
    for (size_t i = 0; i < n; i++) {
        int want = sl_topic_catalog[which[i]].partitions;
        if (counts[i] == 0)
            missing[nmissing++] = which[i];
        else if (counts[i] != want)
            SL_INFO("topic %s has %d partitions (the catalog's shape has %d)", topics[i], counts[i],
                    want);
    }
    if (nmissing == 0)
        return 0;
    if (!auto_create) {
        for (size_t i = 0; i < n; i++)
            if (counts[i] == 0)
                sl_buf_printf(err,
                              "kafka: topic %s does not exist (run `sluicectl topics create` or "
                              "set SLUICE_AUTO_CREATE_TOPICS=true)\n",
                              topics[i]);
        return SL_ERR_CONFIG;
    }
    rc = sl_topics_create(props, prefix, missing, nmissing, NULL, -1, timeout_ms, errstr,
                          sizeof errstr);
    if (rc < 0)
        sl_buf_printf(err, "kafka: %s\n", errstr);
    return rc;
}
