/* sluicectl topics create: the catalog's four topics, idempotently, through the admin API. */
#include "topics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "sluice/kafka.h"
#include "sluice/topics.h"

/* The option that sizes each catalog topic, in catalog order. */
static const char *const partition_flags[SL_TOPIC_COUNT] = {
    [SL_TOPIC_REQUESTS] = "--requests-partitions",
    [SL_TOPIC_REPLIES] = "--replies-partitions",
    [SL_TOPIC_DLQ] = "--dlq-partitions",
    [SL_TOPIC_AUDIT] = "--audit-partitions",
};
#define NTOPICS SL_TOPIC_COUNT

static int parse_int(const char *s, long min, long max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int cmd_create(const struct ctl_args *a, const struct ctl_env *env) {
    int partitions[NTOPICS];
    int replication = -1, timeout_ms = 30000;
    for (size_t i = 0; i < NTOPICS; i++) {
        partitions[i] = sl_topic_catalog[i].partitions;
        const char *v = ctl_arg(a, partition_flags[i]);
        if (v && parse_int(v, 1, 10000, &partitions[i]) < 0)
            return ctl_usage_error("topics", "create", "%s: partitions must be 1..10000, not %s",
                                   partition_flags[i], v);
    }
    const char *v = ctl_arg(a, "--replication-factor");
    if (v && (parse_int(v, -1, 32, &replication) < 0 || replication == 0))
        return ctl_usage_error("topics", "create",
                               "--replication-factor must be -1 or 1..32, not %s", v);
    v = ctl_arg(a, "--timeout-ms");
    if (v && parse_int(v, 100, 600000, &timeout_ms) < 0)
        return ctl_usage_error("topics", "create", "--timeout-ms must be 100..600000, not %s", v);

    static const enum sl_topic all[NTOPICS] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_DLQ,
                                               SL_TOPIC_AUDIT};
    char names[NTOPICS][SL_TOPIC_NAME_MAX + 1];
    for (size_t i = 0; i < NTOPICS; i++)
        if (sl_topic_name(env->topic_prefix, all[i], names[i], sizeof names[i]) < 0)
            return ctl_usage_error("topics", "create", "SLUICE_TOPIC_PREFIX is too long: %s",
                                   env->topic_prefix);
    char errstr[SL_KAFKA_ERRSTR_LEN];
    if (sl_topics_create(env->kafka_props, env->topic_prefix, all, NTOPICS, partitions, replication,
                         timeout_ms, errstr, sizeof errstr) < 0)
        return ctl_op_error("topics", "create", "%s", errstr);
    for (size_t i = 0; i < NTOPICS; i++)
        printf("%s\tready\n", names[i]);
    return CTL_EXIT_OK;
}

/* The partition options' help names the catalog's counts and purposes: filled at start. */
static char partition_help[NTOPICS][200];
static struct ctl_opt create_opts[] = {
    {"--requests-partitions", CTL_OPT_VALUE, "N", partition_help[SL_TOPIC_REQUESTS]},
    {"--replies-partitions", CTL_OPT_VALUE, "N", partition_help[SL_TOPIC_REPLIES]},
    {"--dlq-partitions", CTL_OPT_VALUE, "N", partition_help[SL_TOPIC_DLQ]},
    {"--audit-partitions", CTL_OPT_VALUE, "N", partition_help[SL_TOPIC_AUDIT]},
    {"--replication-factor", CTL_OPT_VALUE, "N", "-1 (the broker's default) or 1..32"},
    {"--timeout-ms", CTL_OPT_VALUE, "N", "how long to wait for the cluster (30000)"},
};

static const struct ctl_cmd cmds[] = {
    {.name = "create",
     .summary = "create the Sluice topics from the catalog (idempotent)",
     .description =
         "Creates <prefix>requests, replies, dlq and audit (prefix SLUICE_TOPIC_PREFIX) with\n"
         "librdkafka's admin API, shaped from the topic catalog. A topic that exists\n"
         "already is left as it is, so running it twice is safe. Kafka is reached through\n"
         "SLUICE_KAFKA_BOOTSTRAP_SERVERS (and any SLUICE_KAFKA_*).",
     .opts = create_opts,
     .nopts = sizeof create_opts / sizeof create_opts[0],
     .run = cmd_create},
};

static const struct ctl_group_def group = {
    .name = "topics",
    .description = "The Kafka topics Sluice uses.",
    .cmds = cmds,
    .ncmds = sizeof cmds / sizeof cmds[0],
};

int ctl_topics_main(int argc, char **argv, const struct ctl_env *env) {
    for (size_t i = 0; i < NTOPICS; i++)
        snprintf(partition_help[i], sizeof partition_help[i], "partitions of <prefix>%s (%d): %s",
                 sl_topic_catalog[i].suffix, sl_topic_catalog[i].partitions,
                 sl_topic_catalog[i].why);
    return ctl_group_run(&group, argc, argv, env);
}
