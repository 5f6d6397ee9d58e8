/* The gateway's settings: one declarative table (docs/internals/config.md) and the struct it fills.
 */
#ifndef SLUICE_GATEWAY_SETTINGS_H
#define SLUICE_GATEWAY_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/config.h"

/*
 * Filled by sl_config_load from the table below; strings and lists are owned by the struct and
 * released by sl_config_free (sl_service_main does both). Durations are milliseconds.
 */
struct gw_settings {
    struct sl_config_hostport listen;
    struct sl_config_hostport admin_listen;
    char *topic_prefix;
    char *keys_file;
    char *routes_file;
    struct sl_config_list cors_origins;
    char *cors_allow_methods;
    char *cors_allow_headers;
    int64_t cors_max_age_ms;
    struct sl_config_list trusted_proxies;
    char *waf_acl_file; /* WAF engine: NULL = the shipped default web ACL */
    char *redis_url;
    bool redis_fail_open;
    int64_t redis_timeout_ms;
    int64_t redis_connect_timeout_ms;
    int64_t redis_reconnect_max_ms;
    int64_t gateway_index; /* -1: derive from the pod name (HOSTNAME "name-<ordinal>") or 0 */
    int64_t request_timeout_ms;
    int64_t publish_timeout_ms;
    int64_t max_in_flight;
    uint64_t max_body_bytes;
    uint64_t max_header_bytes;
    uint64_t max_url_bytes;
    int64_t max_connections;
    int64_t max_connections_per_ip;
    int64_t header_timeout_ms;
    int64_t body_timeout_ms;
    int64_t read_timeout_ms;
    int64_t keepalive_timeout_ms;
    int64_t drain_timeout_ms;
    char *stage;
    bool auto_create_topics;
    int log_level;       /* index into sl_log levels: debug, info, warn, error */
    char *otlp_endpoint; /* NULL: tracing off */
};

extern const struct sl_config_option gw_settings_table[];
extern const size_t gw_settings_count;

/* The replica's index: the setting, else the ordinal of a StatefulSet pod name
 * ("<name>-<ordinal>"), else 0. *source says which, for the start-up log line. */
int32_t gw_settings_index(const struct gw_settings *s, const char *hostname, const char **source);

#endif
