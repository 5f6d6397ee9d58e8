/* The worker's settings: one declarative table (docs/internals/config.md) and the struct it fills.
 */
#ifndef SLUICE_WORKER_SETTINGS_H
#define SLUICE_WORKER_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/config.h"

/*
 * Filled by sl_config_load from wk_settings_table; strings are owned by the struct and
 * released by sl_config_free (sl_service_main does both). Durations are milliseconds.
 */
struct wk_settings {
    struct sl_config_hostport admin_listen;
    char *topic_prefix;
    char *routes_file;
    char *group_id;
    char *instance_id;   /* NULL: the host name */
    char *handler_user;  /* the user handler processes switch to when the worker runs as root */
    int64_t concurrency; /* 0: 2 x online CPUs */
    int64_t max_attempts;
    int64_t retry_backoff_ms;
    int64_t handler_timeout_ms;
    int64_t child_memory_mb;
    int64_t max_queued;
    int64_t shutdown_grace_ms;
    uint64_t max_body_bytes;
    bool auto_create_topics;
    int log_level;       /* index into debug, info, warn, error */
    char *otlp_endpoint; /* NULL: tracing off */
};

extern const struct sl_config_option wk_settings_table[];
extern const size_t wk_settings_count;

/* The number of handler children: the setting, or 2 x online CPUs when it is 0. */
int wk_settings_concurrency(const struct wk_settings *s);

#endif
