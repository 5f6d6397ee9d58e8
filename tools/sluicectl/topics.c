/* sluicectl topics create: the catalog's four topics, idempotently, through the admin API. */
#include "topics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void help(FILE *out) {
    fputs("Usage: sluicectl topics create [options]\n"
          "\n"
          "Creates the Sluice topics (prefix SLUICE_TOPIC_PREFIX) with librdkafka's admin API.\n"
          "A topic that exists already is left as it is, so running it twice is safe.\n"
          "Kafka is reached through SLUICE_KAFKA_BOOTSTRAP_SERVERS (and any SLUICE_KAFKA_*).\n"
          "\n"
          "Options:\n",
          out);
    for (size_t i = 0; i < NTOPICS; i++)
        fprintf(out, "  %-24s N  partitions of <prefix>%s (%d): %s\n", partition_flags[i],
                sl_topic_catalog[i].suffix, sl_topic_catalog[i].partitions,
                sl_topic_catalog[i].why);
    fputs("  --replication-factor   N  (-1: the broker's default)\n"
          "  --timeout-ms           N  how long to wait for the cluster (30000)\n",
          out);
}

static int parse_int(const char *s, long min, long max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

static int usage(const char *what, const char *arg) {
    fprintf(stderr, "sluicectl topics: %s%s%s\nRun 'sluicectl topics --help' for usage.\n", what,
            arg ? " " : "", arg ? arg : "");
    return CTL_EXIT_USAGE;
}

static int cmd_create(int argc, char **argv, const struct ctl_env *env) {
    int partitions[NTOPICS];
    int replication = -1, timeout_ms = 30000;
    for (size_t i = 0; i < NTOPICS; i++)
        partitions[i] = sl_topic_catalog[i].partitions;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            return CTL_EXIT_OK;
        }
        if (i + 1 >= argc)
            return usage("missing a value for", a);
        const char *v = argv[++i];
        int done = 0;
        for (size_t t = 0; t < NTOPICS && !done; t++)
            if (!strcmp(a, partition_flags[t])) {
                if (parse_int(v, 1, 10000, &partitions[t]) < 0)
                    return usage("partitions must be 1..10000, not", v);
                done = 1;
            }
        if (done)
            continue;
        if (!strcmp(a, "--replication-factor")) {
            if (parse_int(v, -1, 32, &replication) < 0 || replication == 0)
                return usage("--replication-factor must be -1 or 1..32, not", v);
        } else if (!strcmp(a, "--timeout-ms")) {
            if (parse_int(v, 100, 600000, &timeout_ms) < 0)
                return usage("--timeout-ms must be 100..600000, not", v);
        } else {
            return usage("unknown option", a);
        }
    }

    static const enum sl_topic all[NTOPICS] = {SL_TOPIC_REQUESTS, SL_TOPIC_REPLIES, SL_TOPIC_DLQ,
                                               SL_TOPIC_AUDIT};
    char names[NTOPICS][SL_TOPIC_NAME_MAX + 1];
    for (size_t i = 0; i < NTOPICS; i++)
        if (sl_topic_name(env->topic_prefix, all[i], names[i], sizeof names[i]) < 0)
            return usage("SLUICE_TOPIC_PREFIX is too long:", env->topic_prefix);
    char errstr[SL_KAFKA_ERRSTR_LEN];
    if (sl_topics_create(env->kafka_props, env->topic_prefix, all, NTOPICS, partitions, replication,
                         timeout_ms, errstr, sizeof errstr) < 0) {
        fprintf(stderr, "sluicectl topics create: %s\n", errstr);
        return CTL_EXIT_ERROR;
    }
    for (size_t i = 0; i < NTOPICS; i++)
        printf("%s\tready\n", names[i]);
    return CTL_EXIT_OK;
}

int ctl_topics_main(int argc, char **argv, const struct ctl_env *env) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    if (!strcmp(argv[1], "create"))
        return cmd_create(argc - 2, argv + 2, env);
    return usage("unknown command", argv[1]);
}
