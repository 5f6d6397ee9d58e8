/* Reading the dead-letter topic: a record's metadata, the filters, and a bounded scan. */
#ifndef SLUICE_CTL_DLQ_SCAN_H
#define SLUICE_CTL_DLQ_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "args.h"
#include "sluice/envelope.h"

/* What a DLQ record says, read from its headers and its (decoded) original envelope. */
struct dlq_record {
    const rd_kafka_message_t *msg; /* borrowed */
    int32_t partition;
    int64_t offset;
    int64_t ts_ms; /* when it was dead-lettered */
    char reason[32];
    char error[512];
    uint32_t attempts;
    char orig_topic[256];
    int32_t orig_partition; /* -1 when the header is absent */
    int64_t orig_offset;
    int64_t orig_ts_ms;
    /* The status the client got: 502 (the worker answered), 504 (expired: the gateway answered
     * at its deadline), 0 (nobody waited: a replay, or no reply address). */
    int status;
    bool decoded; /* req holds the original request */
    char decode_error[200];
    struct sl_envelope_request req;
};

/* Fills *r from m (kept borrowed); free with dlq_record_free. */
void dlq_record_parse(const rd_kafka_message_t *m, struct dlq_record *r);
void dlq_record_free(struct dlq_record *r);
/* The value of header `name` (the last one of that name), or NULL. */
const void *dlq_header(const rd_kafka_message_t *m, const char *name, size_t *len);

/* The filters every dlq command takes. */
struct dlq_filter {
    int64_t since_ms, until_ms; /* INT64_MIN / INT64_MAX when not given */
    const char *const *reasons;
    size_t nreasons;
    const char *route; /* glob on the route template (resource) or the path */
    int status;        /* -1: any */
    const char *key_id;
};

/* The filter options (--since, --until, --reason, --route, --status, --key-id) of a command's
 * table, to splice into it. */
#define DLQ_FILTER_OPTS                                                                            \
    {"--since", CTL_OPT_VALUE, "T", "dead-lettered at or after T (RFC 3339 or -15m, -2h, -7d)"},   \
        {"--until", CTL_OPT_VALUE, "T", "dead-lettered before T"},                                 \
        {"--reason", CTL_OPT_LIST, "R",                                                            \
         "crash, timeout, invalid_reply, decode_error, expired, handler_error, route_unknown"},    \
        {"--route", CTL_OPT_VALUE, "GLOB", "route template or path, e.g. '/orders/*'"},            \
        {"--status", CTL_OPT_VALUE, "N", "status the client got: 502, 504, or 0 (none)"}, {        \
        "--key-id", CTL_OPT_VALUE, "ID", "the API key id of the request"                           \
    }

/* Reads the filter options; a bad value is a usage error (the return code), else 0. */
int dlq_filter_from_args(const struct ctl_args *a, const char *cmd, struct dlq_filter *f);
bool dlq_filter_match(const struct dlq_filter *f, const struct dlq_record *r);

/*
 * A scan of the DLQ topic from a start point to the end offsets it had when the scan opened,
 * so that it ends although workers keep writing. With a group id, each partition starts at the
 * group's committed offset when it has one (a replay job resuming); otherwise at --since
 * (offsets for times) or the beginning.
 */
struct dlq_scan {
    rd_kafka_t *rk;
    char topic[256];
    int nparts;
    int64_t *start;   /* per partition: first offset read */
    int64_t *end;     /* per partition: the high watermark at open */
    int64_t *next;    /* per partition: the offset after the last one delivered */
    char **committed; /* per partition: the group's offset metadata (NULL when none) */
    int remaining;    /* partitions not yet at their end */
    int64_t total;    /* offsets between start and end, all partitions */
};

/* Opens the scan; 0, or CTL_EXIT_ERROR after printing one line naming what failed. */
int dlq_scan_open(struct dlq_scan *s, const struct ctl_env *env, const char *cmd,
                  const char *group_id, int64_t since_ms);
/* The next record (*out owned by the caller: rd_kafka_message_destroy), 1; 0 at the end;
 * CTL_EXIT_ERROR (negative of it) after printing the error when Kafka stops answering. */
int dlq_scan_next(struct dlq_scan *s, const char *cmd, rd_kafka_message_t **out);
void dlq_scan_close(struct dlq_scan *s);

/* The SLUICE_KAFKA_* configuration with librdkafka's own log lines silenced; NULL + errstr. */
rd_kafka_conf_t *dlq_kafka_conf(const struct ctl_env *env, char *errstr, size_t len);
/* "host:port,..." of the Kafka passthrough, for messages ("(unset)" when missing). */
const char *dlq_bootstrap(const struct ctl_env *env);
/* 0 when SLUICE_KAFKA_BOOTSTRAP_SERVERS is set; else one line saying so, CTL_EXIT_ERROR. */
int dlq_require_bootstrap(const struct ctl_env *env, const char *group, const char *cmd);
/* The DLQ / requests topic names from the prefix. */
int dlq_topic_names(const struct ctl_env *env, char *dlq, char *requests, size_t len);

#endif
