/* sluicectl topics create: the four topics, idempotently, through librdkafka's admin API. */
#include "topics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kafka.h"

#define TOPIC_MAX 256

/* What each topic is for decides its shape (DESIGN.md §2). */
struct topic_default {
    const char *suffix;
    const char *flag;
    int partitions;
    const char *retention_ms;
    const char *why;
};

static const struct topic_default topic_defaults[] = {
    {"requests", "--requests-partitions", 12, "86400000",
     "request envelopes; partitions = the most worker processes that can share the load"},
    {"replies", "--replies-partitions", 16, "3600000",
     "replies; partition N belongs to gateway replica N, so >= the most gateway replicas"},
    {"dlq", "--dlq-partitions", 3, "1209600000", "dead letters, kept 14 days like the SQS DLQ"},
    {"audit", "--audit-partitions", 6, "604800000", "audit records for the archiver"},
};
#define NTOPICS (sizeof topic_defaults / sizeof topic_defaults[0])

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
        fprintf(out, "  %-24s N  partitions of <prefix>%s (%d): %s\n", topic_defaults[i].flag,
                topic_defaults[i].suffix, topic_defaults[i].partitions, topic_defaults[i].why);
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
        partitions[i] = topic_defaults[i].partitions;
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
            if (!strcmp(a, topic_defaults[t].flag)) {
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

    char names[NTOPICS][TOPIC_MAX];
    const char *configs[NTOPICS][3];
    struct sl_kafka_topic_spec specs[NTOPICS];
    for (size_t i = 0; i < NTOPICS; i++) {
        if ((size_t)snprintf(names[i], TOPIC_MAX, "%s%s", env->topic_prefix,
                             topic_defaults[i].suffix) >= TOPIC_MAX)
            return usage("SLUICE_TOPIC_PREFIX is too long:", env->topic_prefix);
        configs[i][0] = "retention.ms";
        configs[i][1] = topic_defaults[i].retention_ms;
        configs[i][2] = NULL;
        specs[i] = (struct sl_kafka_topic_spec){.name = names[i],
                                                .partitions = partitions[i],
                                                .replication_factor = replication,
                                                .configs = configs[i]};
    }
    char errstr[SL_KAFKA_ERRSTR_LEN];
    if (sl_kafka_topics_create(env->kafka_props, specs, NTOPICS, timeout_ms, errstr,
                               sizeof errstr) < 0) {
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
