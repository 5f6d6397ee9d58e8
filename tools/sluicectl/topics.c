/* sluicectl topics create (the catalog's four topics, idempotently, through the admin API) and
 * topics describe (their partitions, configs, end offsets and consumer-group lag). */
#include "topics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "dlq_scan.h"
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

/* ---- describe ---------------------------------------------------------------------------- */

#define DESCRIBE_TIMEOUT_MS 10000
static const char *const shown_configs[] = {"retention.ms", "cleanup.policy", "max.message.bytes",
                                            "compression.type"};
#define NCONFIGS (sizeof shown_configs / sizeof shown_configs[0])

struct topic_view {
    char name[SL_TOPIC_NAME_MAX + 1];
    int partitions, replicas;
    bool exists;
    int64_t *end; /* per partition */
    int64_t records_end;
    char configs[NCONFIGS][64];
};

/* One admin result event from q, or NULL after the timeout. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q) {
    return rd_kafka_queue_poll(q, DESCRIBE_TIMEOUT_MS + 5000);
}

static int describe_configs(rd_kafka_t *rk, struct topic_view *t, size_t n) {
    rd_kafka_ConfigResource_t *res[SL_TOPIC_COUNT];
    size_t nres = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].exists)
            res[nres++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t[i].name);
    if (!nres)
        return 0;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, res, nres, NULL, q);
    rd_kafka_ConfigResource_destroy_array(res, nres);
    rd_kafka_event_t *ev = admin_wait(q);
    int rc = 0;
    const rd_kafka_DescribeConfigs_result_t *r =
        ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    if (!r || rd_kafka_event_error(ev)) {
        rc = -1;
    } else {
        size_t cnt;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(r, &cnt);
        for (size_t k = 0; k < cnt; k++) {
            struct topic_view *v = NULL;
            for (size_t i = 0; i < n; i++)
                if (!strcmp(t[i].name, rd_kafka_ConfigResource_name(rs[k])))
                    v = &t[i];
            size_t nc;
            const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[k], &nc);
            for (size_t e = 0; v && e < nc; e++)
                for (size_t c = 0; c < NCONFIGS; c++)
                    if (!strcmp(rd_kafka_ConfigEntry_name(ce[e]), shown_configs[c]))
                        snprintf(v->configs[c], sizeof v->configs[c], "%s",
                                 rd_kafka_ConfigEntry_value(ce[e])
                                     ? rd_kafka_ConfigEntry_value(ce[e])
                                     : "");
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return rc;
}

/* Lag of every consumer group with offsets on a topic: end offsets minus committed offsets. */
static void print_lags(rd_kafka_t *rk, const struct topic_view *t, bool json, cJSON *arr) {
    const struct rd_kafka_group_list *groups = NULL;
    if (rd_kafka_list_groups(rk, NULL, &groups, DESCRIBE_TIMEOUT_MS) || !groups)
        return;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int g = 0; g < groups->group_cnt; g++) {
        const char *name = groups->groups[g].group;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
        for (int p = 0; p < t->partitions; p++)
            rd_kafka_topic_partition_list_add(parts, t->name, p);
        rd_kafka_ListConsumerGroupOffsets_t *req =
            rd_kafka_ListConsumerGroupOffsets_new(name, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, NULL, q);
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
        rd_kafka_event_t *ev = admin_wait(q);
        const rd_kafka_ListConsumerGroupOffsets_result_t *r =
            ev ? rd_kafka_event_ListConsumerGroupOffsets_result(ev) : NULL;
        size_t ng = 0;
        const rd_kafka_group_result_t **gr =
            r ? rd_kafka_ListConsumerGroupOffsets_result_groups(r, &ng) : NULL;
        const rd_kafka_topic_partition_list_t *offs = ng == 1 && !rd_kafka_group_result_error(gr[0])
                                                          ? rd_kafka_group_result_partitions(gr[0])
                                                          : NULL;
        int64_t lag = 0;
        int committed = 0;
        for (int i = 0; offs && i < offs->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &offs->elems[i];
            if (e->offset < 0 || e->partition < 0 || e->partition >= t->partitions)
                continue;
            committed++;
            int64_t l = t->end[e->partition] - e->offset;
            lag += l > 0 ? l : 0;
        }
        if (committed) {
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "group", name);
                cJSON_AddNumberToObject(o, "lag", (double)lag);
                cJSON_AddNumberToObject(o, "partitions_committed", committed);
                cJSON_AddItemToArray(arr, o);
            } else {
                printf("  group %-40s lag %" PRId64 " (%d of %d partitions committed)\n", name, lag,
                       committed, t->partitions);
            }
        }
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_group_list_destroy(groups);
}

static int cmd_describe(const struct ctl_args *a, const struct ctl_env *env) {
    bool json = ctl_flag(a, "--json");
    if (dlq_require_bootstrap(env, "topics", "describe"))
        return CTL_EXIT_ERROR;
    char errstr[512];
    rd_kafka_conf_t *conf = dlq_kafka_conf(env, errstr, sizeof errstr);
    if (!conf)
        return ctl_op_error("topics", "describe", "%s", errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return ctl_op_error("topics", "describe", "kafka client: %s", errstr);
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, DESCRIBE_TIMEOUT_MS);
    if (err) {
        rd_kafka_destroy(rk);
        return ctl_op_error("topics", "describe",
                            "cannot read the topic list: %s (Kafka at %s, "
                            "SLUICE_KAFKA_BOOTSTRAP_SERVERS)",
                            rd_kafka_err2str(err), dlq_bootstrap(env));
    }
    static const enum sl_topic all[NTOPICS] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_DLQ,
                                               SL_TOPIC_AUDIT};
    struct topic_view t[NTOPICS];
    memset(t, 0, sizeof t);
    int rc = CTL_EXIT_OK;
    for (size_t i = 0; i < NTOPICS; i++) {
        if (sl_topic_name(env->topic_prefix, all[i], t[i].name, sizeof t[i].name) < 0) {
            rc = ctl_usage_error("topics", "describe", "SLUICE_TOPIC_PREFIX is too long: %s",
                                 env->topic_prefix);
            goto out;
        }
        for (int k = 0; k < md->topic_cnt; k++) {
            const struct rd_kafka_metadata_topic *mt = &md->topics[k];
            if (strcmp(mt->topic, t[i].name) || mt->err)
                continue;
            t[i].exists = true;
            t[i].partitions = mt->partition_cnt;
            t[i].replicas = mt->partition_cnt ? mt->partitions[0].replica_cnt : 0;
        }
        if (!t[i].exists)
            continue;
        t[i].end = calloc((size_t)t[i].partitions + 1, sizeof *t[i].end);
        for (int p = 0; t[i].end && p < t[i].partitions; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, t[i].name, p, &lo, &hi, DESCRIBE_TIMEOUT_MS))
                continue;
            t[i].end[p] = hi;
            t[i].records_end += hi;
        }
    }
    if (describe_configs(rk, t, NTOPICS) < 0) {
        rc = ctl_op_error("topics", "describe", "cannot read the topic configs (Kafka at %s)",
                          dlq_bootstrap(env));
        goto out;
    }
    for (size_t i = 0; i < NTOPICS; i++) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "topic", t[i].name);
            cJSON_AddBoolToObject(o, "exists", t[i].exists);
            if (t[i].exists) {
                cJSON_AddNumberToObject(o, "partitions", t[i].partitions);
                cJSON_AddNumberToObject(o, "replicas", t[i].replicas);
                cJSON *cfg = cJSON_AddObjectToObject(o, "configs");
                for (size_t c = 0; c < NCONFIGS; c++)
                    cJSON_AddStringToObject(cfg, shown_configs[c], t[i].configs[c]);
                cJSON_AddNumberToObject(o, "end_offsets_sum", (double)t[i].records_end);
                print_lags(rk, &t[i], true, cJSON_AddArrayToObject(o, "groups"));
            }
            char *line = cJSON_PrintUnformatted(o);
            if (line)
                printf("%s\n", line);
            free(line);
            cJSON_Delete(o);
            continue;
        }
        if (!t[i].exists) {
            printf("%s: missing (sluicectl topics create)\n", t[i].name);
            continue;
        }
        printf("%s: %d partitions, replication %d, end offsets %" PRId64 "\n", t[i].name,
               t[i].partitions, t[i].replicas, t[i].records_end);
        for (size_t c = 0; c < NCONFIGS; c++)
            printf("  %-18s %s\n", shown_configs[c], t[i].configs[c]);
        print_lags(rk, &t[i], false, NULL);
    }
out:
    for (size_t i = 0; i < NTOPICS; i++)
        free(t[i].end);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

static const struct ctl_opt describe_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per topic and line"},
};

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
    {.name = "describe",
     .summary = "partitions, configs, end offsets and consumer-group lag of each topic",
     .description =
         "For each Sluice topic (prefix SLUICE_TOPIC_PREFIX): whether it exists, its partitions\n"
         "and replication, retention.ms, cleanup.policy, max.message.bytes and\n"
         "compression.type, the sum of its end offsets, and the lag of every consumer group\n"
         "with offsets on it (end offsets minus committed offsets).",
     .opts = describe_opts,
     .nopts = sizeof describe_opts / sizeof describe_opts[0],
     .run = cmd_describe},
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
