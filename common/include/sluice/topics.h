/* The topic catalog: every Sluice topic's shape in one table that every binary creates from. */
#ifndef SLUICE_TOPICS_H
#define SLUICE_TOPICS_H

#include <stdbool.h>
#include <stddef.h>

#include "sluice/buf.h"

/*
 * A topic's name is SLUICE_TOPIC_PREFIX followed by its suffix. The gateway, the worker (with
 * SLUICE_AUTO_CREATE_TOPICS=true) and `sluicectl topics create` all create topics from this
 * table, so whichever runs first, a topic gets the same shape. A topic that exists already is
 * never changed.
 */
enum sl_topic { SL_TOPIC_REQUESTS = 0, SL_TOPIC_REPLIES, SL_TOPIC_DLQ, SL_TOPIC_AUDIT };
#define SL_TOPIC_COUNT 4
/* Longest topic name Kafka accepts. */
#define SL_TOPIC_NAME_MAX 249

struct sl_topic_shape {
    const char *suffix;
    int partitions;
    /* Topic configs, as Kafka spells their values. */
    const char *retention_ms;
    const char *cleanup_policy;
    const char *compression_type;
    const char *max_message_bytes;
    const char *why; /* one line: what the topic is for, which decides its shape */
};

/* The catalog, indexed by enum sl_topic. */
extern const struct sl_topic_shape sl_topic_catalog[SL_TOPIC_COUNT];

/* Writes prefix + suffix to out (NUL-terminated). 0, or -ENAMETOOLONG when it does not fit in
 * len or is longer than Kafka allows. */
int sl_topic_name(const char *prefix, enum sl_topic t, char *out, size_t len);

/*
 * Creates the topics `which[0..n)` named from `prefix`, shaped from the catalog; a topic that
 * exists already counts as success and is left as it is. `partitions` is NULL (the catalog's
 * counts) or n counts, for an operator who sizes a topic on purpose; replication_factor -1 is
 * the broker's default. `props` configures the admin client (bootstrap.servers at least).
 * Returns 0 or a negative code with errstr naming the topic.
 */
int sl_topics_create(const char *const *props, const char *prefix, const enum sl_topic *which,
                     size_t n, const int *partitions, int replication_factor, int timeout_ms,
                     char *errstr, size_t errstr_len);

/*
 * A service's start-up check: every topic of `which` must exist. When some are missing,
 * auto_create creates them from the catalog; otherwise each missing one gets a line in err
 * saying how to create it, and the result is SL_ERR_CONFIG. An existing topic with a
 * partition count other than the catalog's is logged (an operator may size it on purpose).
 */
int sl_topics_ensure(const char *const *props, const char *prefix, const enum sl_topic *which,
                     size_t n, bool auto_create, int timeout_ms, struct sl_buf *err);

#endif
