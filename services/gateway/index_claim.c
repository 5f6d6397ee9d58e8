/* One live gateway per index: a Kafka group per index with static membership, newest wins. */
#include "index_claim.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "gateway_internal.h"
#include "sluice/error.h"
#include "sluice/log.h"

/*
 * Two replicas on one index would read one replies partition, each dropping the other's
 * replies as unknown and both answering 504 for them. Each gateway therefore joins a group of
 * its own index, "<prefix>gateway-index-<n>", as a static member with a fixed instance id. A
 * second member with the same instance id makes the broker fence the first: the older replica
 * learns it at its next heartbeat (a few seconds), turns unready and drains. A restarted pod
 * simply takes its own place back. The group is for the claim only: its partitions (of the
 * replies topic, which every gateway has) are paused and nothing is read or committed.
 */

static void on_rebalance(struct sl_kafka_consumer *c, int assigned,
                         const rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)opaque;
    if (assigned && parts->cnt > 0) {
        rd_kafka_topic_partition_list_t *copy = rd_kafka_topic_partition_list_copy(parts);
        rd_kafka_pause_partitions(sl_kafka_consumer_handle(c), copy);
        rd_kafka_topic_partition_list_destroy(copy);
    }
}

static void on_message(const struct sl_kafka_message *msg, void *opaque) {
    (void)msg;
    (void)opaque; /* a message fetched before the pause took hold: not ours to read */
}

static void on_error(rd_kafka_resp_err_t kerr, const char *reason, int fatal, void *opaque) {
    struct gw_gateway *g = opaque;
    (void)reason;
    if (!fatal || kerr != RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID || g->fenced)
        return;
    g->fenced = true;
    SL_ERROR("gateway index %d was claimed by another replica that started later (Kafka group "
             "%sgateway-index-%d): this replica stops serving so that each replies partition has "
             "one reader; give every replica its own SLUICE_GATEWAY_INDEX",
             (int)g->index, g->s->topic_prefix, (int)g->index);
    raise(SIGTERM); /* the service's own drain: unready, in-flight answers out, then exit */
}

int gw_index_claim_start(struct gw_gateway *g, struct sl_buf *err) {
    char group[GW_TOPIC_MAX + 32];
    char instance[48];
    snprintf(group, sizeof group, "%sgateway-index-%d", g->s->topic_prefix, (int)g->index);
    snprintf(instance, sizeof instance, "gateway-index-%d", (int)g->index);
    const char *const owned[] = {
        "group.id", group, "group.instance.id", instance, "enable.auto.commit", "false", NULL};
    const char **props = sl_config_kafka_merge(g->kafka_props, NULL, owned, "index claim");
    if (!props)
        return -ENOMEM;
    char errstr[SL_KAFKA_ERRSTR_LEN];
    int rc = sl_kafka_consumer_new(g->loop, props, on_message, g, &g->claim, errstr, sizeof errstr);
    free(props);
    if (rc < 0) {
        sl_buf_printf(err, "kafka: index claim: %s\n", errstr);
        return rc;
    }
    sl_kafka_consumer_set_rebalance_cb(g->claim, on_rebalance, g);
    sl_kafka_consumer_set_error_cb(g->claim, on_error, g);
    const char *topics[] = {g->topic_replies};
    if ((rc = sl_kafka_consumer_subscribe(g->claim, topics, 1)) < 0) {
        sl_buf_printf(err, "kafka: index claim: cannot join group %s: %s\n", group,
                      sl_strerror(rc));
        return rc;
    }
    return 0;
}
