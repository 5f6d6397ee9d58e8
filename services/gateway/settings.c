/* The gateway's settings table: names, types, defaults, bounds and descriptions in one place. */
#include "settings.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/otlp.h"

#define OPT(field) offsetof(struct gw_settings, field)

const struct sl_config_option gw_settings_table[] = {
    {.name = "listen",
     .env = "SLUICE_LISTEN",
     .type = SL_CONFIG_HOSTPORT,
     .offset = OPT(listen),
     .def = "0.0.0.0:8080",
     .description = "HTTP listener for API traffic."},
    SL_CONFIG_OPT_ADMIN_LISTEN(struct gw_settings, admin_listen),
    SL_CONFIG_OPT_TOPIC_PREFIX(struct gw_settings, topic_prefix),
    {.name = "keys_file",
     .env = "SLUICE_KEYS_FILE",
     .type = SL_CONFIG_STRING,
     .offset = OPT(keys_file),
     .required = true,
     .description = "API keys and usage plans (JSON, hashes only); reloaded on SIGHUP and on "
                    "change."},
    SL_CONFIG_OPT_ROUTES_FILE(struct gw_settings, routes_file,
                              "Routes (JSON); unset: ANY /{proxy+} -> echo with a key."),
    {.name = "cors_origins",
     .env = "SLUICE_CORS_ORIGINS",
     .type = SL_CONFIG_LIST,
     .offset = OPT(cors_origins),
     .description = "Allowed CORS origins, comma-separated (never *: credentials are allowed); "
                    "unset or empty: CORS off."},
    {.name = "cors_allow_methods",
     .env = "SLUICE_CORS_ALLOW_METHODS",
     .type = SL_CONFIG_STRING,
     .offset = OPT(cors_allow_methods),
     .def = "GET,POST,PUT,DELETE,OPTIONS",
     .description = "Access-Control-Allow-Methods of preflight answers."},
    {.name = "cors_allow_headers",
     .env = "SLUICE_CORS_ALLOW_HEADERS",
     .type = SL_CONFIG_STRING,
     .offset = OPT(cors_allow_headers),
     .def = "Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token,"
            "X-Amz-User-Agent",
     .description = "Access-Control-Allow-Headers of preflight answers."},
    {.name = "cors_max_age",
     .env = "SLUICE_CORS_MAX_AGE",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(cors_max_age_ms),
     .def = "600s",
     .min = 0,
     .max = 86400000,
     .description = "Access-Control-Max-Age of preflight answers (0: not sent)."},
    {.name = "trusted_proxies",
     .env = "SLUICE_TRUSTED_PROXIES",
     .type = SL_CONFIG_LIST,
     .offset = OPT(trusted_proxies),
     .description = "CIDRs whose X-Forwarded-For is believed for the client IP (none)."},
    /* ---- WAF engine ---- */
    {.name = "waf_acl_file",
     .env = "SLUICE_WAF_ACL_FILE",
     .type = SL_CONFIG_STRING,
     .offset = OPT(waf_acl_file),
     .description = "AWS WAFv2 web ACL (JSON, as exported from AWS) the WAF step enforces; "
                    "reloaded on SIGHUP and on change. Unset: the built-in default (IP rate limit "
                    "2000/5 min + AWSManagedRulesCommonRuleSet + "
                    "AWSManagedRulesKnownBadInputsRuleSet)."},
    {.name = "redis_url",
     .env = "SLUICE_REDIS_URL",
     .type = SL_CONFIG_STRING,
     .offset = OPT(redis_url),
     .secret = true,
     .description = "redis://[:password@]host:port[/db] for usage-plan state shared by replicas "
                    "(unset: in memory)."},
    {.name = "redis_fail_open",
     .env = "SLUICE_REDIS_FAIL_OPEN",
     .type = SL_CONFIG_BOOL,
     .offset = OPT(redis_fail_open),
     .def = "false",
     .description = "Allow requests when no usage-plan store can decide (Redis unusable and "
                    "the in-memory fallback out of memory); false answers 503 (counted)."},
    {.name = "redis_timeout",
     .env = "SLUICE_REDIS_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(redis_timeout_ms),
     .def = "100",
     .min = 5,
     .max = 10000,
     .description = "Deadline of one usage-plan check in Redis."},
    {.name = "redis_connect_timeout",
     .env = "SLUICE_REDIS_CONNECT_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(redis_connect_timeout_ms),
     .def = "1000",
     .min = 10,
     .max = 60000,
     .description = "Deadline of a Redis connect and handshake."},
    {.name = "redis_reconnect_max",
     .env = "SLUICE_REDIS_RECONNECT_MAX_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(redis_reconnect_max_ms),
     .def = "5000",
     .min = 100,
     .max = 600000,
     .description = "Longest pause between Redis reconnect attempts (they back off from 100 ms)."},
    {.name = "gateway_index",
     .env = "SLUICE_GATEWAY_INDEX",
     .type = SL_CONFIG_INT64,
     .offset = OPT(gateway_index),
     .def = "-1",
     .min = -1,
     .max = 100000,
     .description = "This replica's replies partition, one per live replica (-1: the ordinal "
                    "of a StatefulSet pod name in HOSTNAME, such as 2 in sluice-gateway-2, else "
                    "0). A replica started later on the same index makes the older one stop."},
    {.name = "request_timeout",
     .env = "SLUICE_REQUEST_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(request_timeout_ms),
     .def = "29000",
     .min = 50,
     .max = 900000,
     .description = "Integration deadline: no reply by then answers 504."},
    {.name = "publish_timeout",
     .env = "SLUICE_PUBLISH_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(publish_timeout_ms),
     .def = "1000",
     .min = 100,
     .max = 60000,
     .description = "A request Kafka has not acknowledged by then answers 503."},
    {.name = "max_in_flight",
     .env = "SLUICE_MAX_IN_FLIGHT",
     .type = SL_CONFIG_INT64,
     .offset = OPT(max_in_flight),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .description = "Requests awaiting a reply at once; beyond it 503."},
    SL_CONFIG_OPT_MAX_BODY(struct gw_settings, max_body_bytes, "Request body limit (413)."),
    {.name = "max_header",
     .env = "SLUICE_MAX_HEADER_BYTES",
     .type = SL_CONFIG_SIZE,
     .offset = OPT(max_header_bytes),
     .def = "10240",
     .umin = 1024,
     .umax = 1 << 20,
     .description = "Total request header bytes (431)."},
    {.name = "max_url",
     .env = "SLUICE_MAX_URL_BYTES",
     .type = SL_CONFIG_SIZE,
     .offset = OPT(max_url_bytes),
     .def = "8192",
     .umin = 256,
     .umax = 1 << 20,
     .description = "Request target length (414)."},
    {.name = "max_connections",
     .env = "SLUICE_MAX_CONNECTIONS",
     .type = SL_CONFIG_INT64,
     .offset = OPT(max_connections),
     .def = "10000",
     .min = 1,
     .max = 1000000,
     .description = "Open client connections; beyond it new ones are closed at once."},
    {.name = "max_connections_per_ip",
     .env = "SLUICE_MAX_CONNECTIONS_PER_IP",
     .type = SL_CONFIG_INT64,
     .offset = OPT(max_connections_per_ip),
     .def = "256",
     .min = 1,
     .max = 1000000,
     .description = "Open connections from one client address (IPv6: one /64); beyond it new "
                    "ones from it are closed at once."},
    {.name = "header_timeout",
     .env = "SLUICE_HEADER_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(header_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .description = "From a request's first byte to the end of its headers."},
    {.name = "body_timeout",
     .env = "SLUICE_BODY_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(body_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 600000,
     .description = "Idle time allowed between body bytes."},
    {.name = "read_timeout",
     .env = "SLUICE_READ_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(read_timeout_ms),
     .def = "60s",
     .min = 100,
     .max = 3600000,
     .description = "From a request's first byte to the end of its body, however it trickles."},
    {.name = "keepalive_timeout",
     .env = "SLUICE_KEEPALIVE_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(keepalive_timeout_ms),
     .def = "60s",
     .min = 100,
     .max = 3600000,
     .description = "Idle keep-alive connections are closed after this."},
    {.name = "drain_timeout",
     .env = "SLUICE_DRAIN_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(drain_timeout_ms),
     .def = "30s",
     .min = 0,
     .max = 600000,
     .description = "On SIGTERM, how long in-flight requests may take to finish."},
    {.name = "stage",
     .env = "SLUICE_STAGE",
     .type = SL_CONFIG_STRING,
     .offset = OPT(stage),
     .def = "production",
     .description = "Stage name carried in envelopes (the echo handler's \"stage\") and audit "
                    "records."},
    SL_CONFIG_OPT_AUTO_CREATE_TOPICS(struct gw_settings, auto_create_topics),
    SL_CONFIG_OPT_LOG_LEVEL(struct gw_settings, log_level),
    SL_OTLP_ENDPOINT_OPTION(struct gw_settings, otlp_endpoint),
};

const size_t gw_settings_count = sizeof gw_settings_table / sizeof gw_settings_table[0];

/* A StatefulSet pod's name: a DNS label "<name>-<ordinal>", the ordinal without leading zeros
 * (Kubernetes writes 0, 1, ... 10). "web-01", "Web-1" or "web-1.example.com" are not. */
static int32_t statefulset_ordinal(const char *h) {
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > 63)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '-'))
            return -1;
    const char *dash = strrchr(h, '-');
    if (!dash || dash == h || dash[-1] == '-' || !dash[1] || (dash[1] == '0' && dash[2]))
        return -1;
    int64_t v = 0;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > 100000)
            return -1;
    }
    return (int32_t)v;
}

int32_t gw_settings_index(const struct gw_settings *s, const char *hostname, const char **source) {
    if (s->gateway_index >= 0) {
        *source = "SLUICE_GATEWAY_INDEX";
        return (int32_t)s->gateway_index;
    }
    int32_t v = statefulset_ordinal(hostname);
    if (v >= 0) {
        *source = "the StatefulSet ordinal in HOSTNAME";
        return v;
    }
    *source = "the default: SLUICE_GATEWAY_INDEX unset and HOSTNAME not a StatefulSet pod name";
    return 0;
}
