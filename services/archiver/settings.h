/* The archiver's settings: one declarative table and the struct it fills. */
#ifndef SLUICE_ARCHIVER_SETTINGS_H
#define SLUICE_ARCHIVER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/config.h"

/* SLUICE_S3_SSE: what PutObject asks for (the bucket's default encryption applies anyway). */
enum ar_sse { AR_SSE_NONE = 0, AR_SSE_KMS, AR_SSE_S3 };

/*
 * Filled from ar_settings_table by sl_service_main, which owns it and frees its strings.
 * Durations are milliseconds.
 */
struct ar_settings {
    struct sl_config_hostport admin_listen;
    char *topic_prefix;
    char *archive_url; /* file://dir or s3://bucket/prefix */
    char *group_id;
    char *instance_id; /* NULL: the host name */
    int64_t batch_max_records;
    uint64_t batch_max_bytes;
    int64_t batch_max_age_ms;
    int64_t gzip_level;
    char *s3_endpoint; /* NULL: AWS, https://s3.<region>.amazonaws.com */
    char *s3_region;
    bool s3_path_style;
    int s3_sse; /* enum ar_sse */
    int64_t s3_timeout_ms;
    int64_t retry_base_ms;
    int64_t retry_max_ms;
    int64_t retry_slow_ms;
    bool auto_create_topics;
    int log_level;       /* index into debug, info, warn, error */
    char *otlp_endpoint; /* NULL: tracing off */
};

extern const struct sl_config_option ar_settings_table[];
extern const size_t ar_settings_count;

#endif
