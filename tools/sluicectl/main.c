/* sluicectl: the operator CLI; dispatches `sluicectl <group> <command> [options]` to a group. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "config.h"
#include "ctl.h"
#include "dlq.h"
#include "keys.h"
#include "s3.h"
#include "topics.h"
#include "waf.h"
#include "sluice/buf.h"
#include "sluice/config.h"
#include "sluice/log.h"
#include "sluice/service.h"

extern char **environ;

/* The settings sluicectl reads from the environment; one table drives parsing and --help. */
struct ctl_settings {
    char *keys_file;
    char *topic_prefix;
    char *unused_bootstrap; /* listed for --help; read through the Kafka passthrough */
    char *s3_endpoint;
    char *s3_region;
    bool s3_path_style;
};

#define OPT(f) offsetof(struct ctl_settings, f)
static const struct sl_config_option ctl_options[] = {
    {.name = "keys_file",
     .env = "SLUICE_KEYS_FILE",
     .type = SL_CONFIG_STRING,
     .offset = OPT(keys_file),
     .description = "The API keys file (JSON, hashes only) that `keys` commands edit."},
    {.name = "topic_prefix",
     .env = "SLUICE_TOPIC_PREFIX",
     .type = SL_CONFIG_STRING,
     .offset = OPT(topic_prefix),
     .def = "sluice.",
     .description = "Prefix of the Kafka topics `topics create` makes."},
    {.name = "kafka_bootstrap_servers",
     .env = "SLUICE_KAFKA_BOOTSTRAP_SERVERS",
     .type = SL_CONFIG_STRING,
     .offset = OPT(unused_bootstrap),
     .description = "Kafka bootstrap servers; every SLUICE_KAFKA_<PROPERTY> is passed to "
                    "librdkafka (dots as underscores)."},
    {.name = "s3_endpoint",
     .env = "SLUICE_S3_ENDPOINT",
     .type = SL_CONFIG_STRING,
     .offset = OPT(s3_endpoint),
     .description = "S3 endpoint URL for `s3` commands (unset: AWS)."},
    {.name = "s3_region",
     .env = "SLUICE_S3_REGION",
     .type = SL_CONFIG_STRING,
     .offset = OPT(s3_region),
     .def = "us-east-1",
     .description = "Region `s3` commands sign for."},
    {.name = "s3_path_style",
     .env = "SLUICE_S3_PATH_STYLE",
     .type = SL_CONFIG_BOOL,
     .offset = OPT(s3_path_style),
     .def = "false",
     .description = "Bucket in the path (MinIO, emulators) instead of the host name."},
};
#define CTL_NOPTIONS (sizeof ctl_options / sizeof ctl_options[0])

/* One row per command group: `sluicectl <name> ...` runs `run`. */
struct ctl_group {
    const char *name;
    ctl_group_fn run;
    const char *summary;
};

static const struct ctl_group groups[] = {
    {.name = "keys", .run = ctl_keys_main, .summary = "create, list, revoke and rotate API keys"},
    {.name = "topics", .run = ctl_topics_main, .summary = "create the Kafka topics (idempotent)"},
    {.name = "s3", .run = ctl_s3_main, .summary = "set up the archive bucket; print its policy"},
    {.name = "waf", .run = ctl_waf_main, .summary = "check a WAFv2 web ACL; evaluate requests"},
    {.name = "dlq",
     .run = ctl_dlq_main,
     .summary = "inspect, filter and replay the dead-letter topic"},
    {.name = "config",
     .run = ctl_config_main,
     .summary = "a service's effective configuration, secrets redacted"},
};
#define CTL_NGROUPS (sizeof groups / sizeof groups[0])

static void print_help(FILE *out) {
    fputs("Usage: sluicectl [global options] <group> <command> [arguments] [options]\n"
          "\n"
          "The Sluice operator CLI. Exit codes: 0 ok, 1 operational error (the files, Kafka or\n"
          "S3 refused or failed), 2 usage error (the command line alone is wrong; nothing done).\n"
          "\n"
          "Groups:\n",
          out);
    for (size_t i = 0; i < CTL_NGROUPS; i++)
        fprintf(out, "  %-8s %s\n", groups[i].name, groups[i].summary);
    fputs("\nGlobal options (before the group or anywhere after it):\n", out);
    for (size_t i = 0; i < ctl_nglobal_opts; i++) {
        char left[48];
        snprintf(left, sizeof left, "%s %s", ctl_global_opts[i].name, ctl_global_opts[i].metavar);
        fprintf(out, "  %-20s %s\n", left, ctl_global_opts[i].help);
    }
    fputs("  --help               this help; after a group or a command, its help\n"
          "  --version            the version (before the group only)\n"
          "\nRun 'sluicectl <group> --help' for the commands of a group.\n\nEnvironment:\n",
          out);
    for (size_t i = 0; i < CTL_NOPTIONS; i++)
        fprintf(out, "  %-20s %s\n", ctl_options[i].env, ctl_options[i].description);
}

int main(int argc, char **argv) {
    int opened = sl_service_open_stdio();
    sl_log_init("sluicectl", SL_LOG_WARN);
    struct ctl_settings settings;
    struct sl_buf errors;
    sl_buf_init(&errors, 64 * 1024);
    if (sl_config_load(ctl_options, CTL_NOPTIONS, &settings, environ, &errors) != 0) {
        fprintf(stderr, "sluicectl: %s", errors.data ? errors.data : "bad configuration\n");
        sl_buf_free(&errors);
        return CTL_EXIT_USAGE;
    }
    sl_buf_free(&errors);
    char **kafka_props = NULL;
    if (sl_config_kafka_props(environ, NULL, &kafka_props) < 0) {
        sl_config_free(ctl_options, CTL_NOPTIONS, &settings);
        fputs("sluicectl: out of memory\n", stderr);
        return CTL_EXIT_ERROR;
    }
    struct ctl_env env = {.keys_file = settings.keys_file,
                          .topic_prefix = settings.topic_prefix,
                          .kafka_props = (const char *const *)kafka_props,
                          .stdout_was_closed = opened > 0 && (opened & (1 << STDOUT_FILENO)),
                          .s3_endpoint = settings.s3_endpoint,
                          .s3_region = settings.s3_region,
                          .s3_path_style = settings.s3_path_style};

    /* Global options before the group; the group's parser takes them anywhere after it. */
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(stdout);
            sl_config_free(ctl_options, CTL_NOPTIONS, &settings);
            sl_config_props_free(kafka_props);
            return CTL_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            sl_service_print_version("sluicectl", stdout);
            sl_config_free(ctl_options, CTL_NOPTIONS, &settings);
            sl_config_props_free(kafka_props);
            return CTL_EXIT_OK;
        }
        int n = ctl_global_opt(argc, argv, i, &env, NULL, NULL);
        if (n <= 0) {
            sl_config_free(ctl_options, CTL_NOPTIONS, &settings);
            sl_config_props_free(kafka_props);
            return n < 0 ? CTL_EXIT_USAGE
                         : ctl_usage_error(NULL, NULL, "unknown option '%.*s'",
                                           (int)strcspn(argv[i], "="), argv[i]);
        }
        i += n;
    }
    char group_names[128];
    size_t used = 0;
    for (size_t j = 0; j < CTL_NGROUPS && used < sizeof group_names; j++)
        used += (size_t)snprintf(group_names + used, sizeof group_names - used, "%s%s",
                                 j ? ", " : "", groups[j].name);
    int rc;
    if (i >= argc) {
        rc = ctl_usage_error(NULL, NULL, "missing a group (%s)", group_names);
    } else {
        const struct ctl_group *g = NULL;
        for (size_t j = 0; j < CTL_NGROUPS; j++)
            if (strcmp(argv[i], groups[j].name) == 0)
                g = &groups[j];
        if (strcmp(argv[i], "help") == 0) {
            print_help(stdout);
            rc = CTL_EXIT_OK;
        } else if (!g) {
            rc = ctl_usage_error(NULL, NULL, "unknown group '%s' (%s)", argv[i], group_names);
        } else {
            rc = g->run(argc - i, argv + i, &env);
        }
    }
    sl_config_free(ctl_options, CTL_NOPTIONS, &settings);
    sl_config_props_free(kafka_props);
    return rc;
}
