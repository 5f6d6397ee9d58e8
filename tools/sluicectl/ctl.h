/* What every sluicectl command group shares: exit codes and the environment main hands over. */
#ifndef SLUICE_CTL_H
#define SLUICE_CTL_H

#include <stdbool.h>

/* Exit codes of every sluicectl command. */
enum ctl_exit {
    CTL_EXIT_OK = 0,    /* done */
    CTL_EXIT_ERROR = 1, /* operational error: a file, Kafka, a key that does not exist */
    CTL_EXIT_USAGE = 2, /* bad command line; the message is on stderr */
};

/*
 * Settings main resolved before dispatching (global options and SLUICE_* variables). Borrowed
 * by the group for the duration of the call; strings may be NULL when unset. Groups added
 * later (topics, dlq) add their fields here.
 */
struct ctl_env {
    const char *keys_file;          /* --keys-file anywhere on the line, or SLUICE_KEYS_FILE */
    const char *topic_prefix;       /* SLUICE_TOPIC_PREFIX ("sluice.") */
    const char *const *kafka_props; /* SLUICE_KAFKA_* passthrough, NULL-terminated pairs */
    bool stdout_was_closed;         /* descriptor 1 was closed at start; it is /dev/null now */
    const char *s3_endpoint;        /* SLUICE_S3_ENDPOINT, NULL: AWS */
    const char *s3_region;          /* SLUICE_S3_REGION */
    bool s3_path_style;             /* SLUICE_S3_PATH_STYLE */
};

/*
 * A command group's entry point: argv[0] is the group name ("keys"), argv[1] the command.
 * Returns an enum ctl_exit value. Writes results to stdout and messages to stderr.
 */
typedef int (*ctl_group_fn)(int argc, char **argv, const struct ctl_env *env);

#endif
