/* Declarative configuration: one table per binary drives env parsing, --help and config print. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/buf.h"

/*
 * Each option names the C type of the settings field it fills (at `offset` in the binary's
 * settings struct, taken with offsetof):
 *
 *   SL_CONFIG_STRING    char *                     heap copy, NULL when unset (owned, see free)
 *   SL_CONFIG_INT64     int64_t                    decimal, optional sign; bounds min..max
 *   SL_CONFIG_SIZE      uint64_t                   decimal with optional B/KiB/MiB/GiB/TiB
 *                                                  suffix; bounds umin..umax
 *   SL_CONFIG_BOOL      bool                       true/false/1/0/yes/no/on/off (any case)
 *   SL_CONFIG_DURATION  int64_t (milliseconds)     plain integer = ms, or ms/s/m/h suffix;
 *                                                  bounds min..max in ms
 *   SL_CONFIG_ENUM      int                        index into `choices` (matched in any case)
 *   SL_CONFIG_HOSTPORT  struct sl_config_hostport  "host:port", "[v6]:port"
 *   SL_CONFIG_LIST      struct sl_config_list      comma-separated, items trimmed, empties dropped
 */
enum sl_config_type {
    SL_CONFIG_STRING = 0,
    SL_CONFIG_INT64,
    SL_CONFIG_SIZE,
    SL_CONFIG_BOOL,
    SL_CONFIG_DURATION,
    SL_CONFIG_ENUM,
    SL_CONFIG_HOSTPORT,
    SL_CONFIG_LIST,
};

#define SL_CONFIG_HOST_MAX 256

/* A parsed listen/connect address. Host holds no brackets; an IPv6 literal contains ':'. */
struct sl_config_hostport {
    char host[SL_CONFIG_HOST_MAX];
    int port;
};

/* A parsed comma-separated list. `items` and every item are heap strings owned by the settings. */
struct sl_config_list {
    char **items;
    size_t n;
};

/*
 * One setting. Tables are constant (static const arrays) and use designated initialisers;
 * fields a type does not use stay zero. Bounds: when both ends are zero the type's full range
 * applies, so `.min = 0, .max = 0` means "unbounded", never "exactly zero".
 */
struct sl_config_option {
    const char *name; /* short name for docs and JSON ("listen") */
    const char *env;  /* environment variable ("SLUICE_LISTEN") */
    enum sl_config_type type;
    size_t offset;              /* offsetof(settings struct, field) */
    const char *def;            /* default, parsed like user input; NULL = unset */
    int64_t min, max;           /* INT64 and DURATION (ms) */
    uint64_t umin, umax;        /* SIZE */
    const char *const *choices; /* ENUM: NULL-terminated allowed values */
    const char *description;    /* one sentence for --help */
    bool secret;                /* value printed as "<redacted>", never echoed in errors */
    bool required;              /* an error when neither the environment nor `def` sets it */
};

/*
 * Fills `settings` from `envp` (NULL-terminated "NAME=value" strings, e.g. environ) using the
 * table. An unset or empty variable takes the default (12-factor: `FOO=` means unset). Every
 * problem is appended to `errors` as one line "ENV: message\n", so an operator sees all of them
 * at once. Each option's field is zeroed first, so the caller need not clear `settings`.
 * Returns 0, or SL_ERR_CONFIG with the fields freed (nothing half-made), or -ENOMEM.
 * On success the caller owns the heap strings in `settings` and releases them with
 * sl_config_free.
 */
int sl_config_load(const struct sl_config_option *table, size_t n, void *settings,
                   char *const *envp, struct sl_buf *errors);

/* Frees the STRING and LIST fields the table describes and zeroes them; safe to call twice. */
void sl_config_free(const struct sl_config_option *table, size_t n, void *settings);

/*
 * Writes the generated --help: usage line ("Usage: <program_name> <flags>", flags NULL:
 * "[--help]"), `description`, then each variable with its type, default, bounds or choices,
 * and description; ends with the SLUICE_KAFKA_<PROPERTY> note.
 */
void sl_config_print_help(const struct sl_config_option *table, size_t n, const char *program_name,
                          const char *flags, const char *description, FILE *out);

enum sl_config_format {
    SL_CONFIG_FORMAT_ENV = 0, /* one NAME=value per line, reusable as an env file */
    SL_CONFIG_FORMAT_JSON,    /* one JSON object keyed by variable name, typed values */
};

/* Prints the effective settings; secret values print as "<redacted>". Returns 0 or -ENOMEM. */
int sl_config_print_effective(const struct sl_config_option *table, size_t n, const void *settings,
                              enum sl_config_format format, FILE *out);

/*
 * Appends one option's effective value as text (the ENV format, not redacted) to `out`.
 * Exposed for `sluicectl config print` and tests; callers that print must redact secrets.
 */
int sl_config_format_value(const struct sl_config_option *opt, const void *settings,
                           struct sl_buf *out);

/*
 * Kafka passthrough: every SLUICE_KAFKA_<PROPERTY>=value in `envp` becomes the librdkafka
 * property <property> (lowercased, '_' -> '.'), e.g. SLUICE_KAFKA_SASL_MECHANISMS ->
 * sasl.mechanisms. Variables named in `exclude` (full env names, NULL-terminated, may be NULL)
 * are Sluice's own settings and are skipped, as are empty values. `*out_props` receives a
 * NULL-terminated array name0, value0, name1, value1, ..., NULL of heap strings, in envp order;
 * the caller frees it with sl_config_props_free. Returns the number of properties or -ENOMEM.
 * librdkafka property names contain no '_', so the mapping is lossless. Values of secret
 * properties (see sl_config_kafka_prop_is_secret) must be printed through sl_config_redact.
 */
int sl_config_kafka_props(char *const *envp, const char *const *exclude, char ***out_props);
void sl_config_props_free(char **props);

/*
 * The one rule for a client's librdkafka properties. `owned` (name,value pairs) are what the
 * service must decide itself (idempotence, acks, offset handling, group membership...): a
 * SLUICE_KAFKA_* property of the same name is ignored, with a warning naming `client`.
 * `defaults` are the service's choices an operator may change: the user's value wins. Every
 * other user property passes through. The result is a NULL-terminated name,value list in that
 * order (defaults not overridden, user properties not owned, owned), so a later name never
 * repeats an earlier one; its strings are borrowed from the inputs and the caller free()s the
 * array only. `user`, `defaults` and `owned` may be NULL. Returns NULL when out of memory.
 */
const char **sl_config_kafka_merge(const char *const *user, const char *const *defaults,
                                   const char *const *owned, const char *client);

/*
 * True for librdkafka properties whose values are credentials: any name containing "password"
 * or "secret" (sasl.password, ssl.key.password, sasl.oauthbearer.client.secret, ...), plus
 * ssl.key.pem (an inline private key) and sasl.oauthbearer.config (may embed credentials).
 */
bool sl_config_kafka_prop_is_secret(const char *property);

/* The redaction helper: returns "<redacted>" when `secret`, else `value` (NULL prints as ""). */
const char *sl_config_redact(bool secret, const char *value);

/* Prints passthrough properties as SLUICE_KAFKA_<PROPERTY>=value lines, secrets redacted. */
void sl_config_print_kafka_props(char *const *props, FILE *out);

/*
 * `--print-config [--json]` of every binary: the effective settings (secrets redacted), then
 * the SLUICE_KAFKA_* passthrough properties (secrets redacted): NAME=value lines, or, with
 * json, string members of the same object. Returns 0 or -ENOMEM.
 */
int sl_config_print_all(const struct sl_config_option *table, size_t n, const void *settings,
                        char *const *kafka_props, bool json, FILE *out);

/*
 * The name a process reports (audit records, static group membership, replica index):
 * $HOSTNAME when set (a Kubernetes pod name), else gethostname(), else `fallback`.
 */
void sl_config_hostname(char *out, size_t len, const char *fallback);

/*
 * Splits "host:port" (IPv4 or hostname), or "[ipv6]:port", into `host` (NUL-terminated, no
 * brackets) and `port` (1..65535). Returns 0; SL_ERR_PARSE for bad syntax; -ERANGE for a port
 * outside 1..65535; SL_ERR_TOO_LARGE when the host does not fit `hostlen`. Outputs are
 * written only on success.
 */
int sl_config_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/*
 * Rows every service's table shares: the same variable, type, default and meaning in every
 * binary, written once. `stype` is the binary's settings struct, `field` the member filled.
 * The log level is an index into sl_config_log_level_names, which follows enum sl_log_level,
 * so `(enum sl_log_level)settings.log_level` is the level.
 */
extern const char *const sl_config_log_level_names[];

/* Each service's admin port differs by default, so services on one host do not collide. */
#define SL_CONFIG_OPT_ADMIN_LISTEN(stype, field)                                                   \
    SL_CONFIG_OPT_ADMIN_LISTEN_PORT(stype, field, "9090")
#define SL_CONFIG_OPT_ADMIN_LISTEN_PORT(stype, field, port)                                        \
    {                                                                                              \
        .name = "admin_listen", .env = "SLUICE_ADMIN_LISTEN", .type = SL_CONFIG_HOSTPORT,          \
        .offset = offsetof(stype, field), .def = "0.0.0.0:" port,                                  \
        .description = "Admin listener: /healthz, /readyz, /metrics."                              \
    }
#define SL_CONFIG_OPT_TOPIC_PREFIX(stype, field)                                                   \
    {                                                                                              \
        .name = "topic_prefix", .env = "SLUICE_TOPIC_PREFIX", .type = SL_CONFIG_STRING,            \
        .offset = offsetof(stype, field), .def = "sluice.",                                        \
        .description = "Prefix of the Kafka topics (requests, replies, dlq, audit)."               \
    }
#define SL_CONFIG_OPT_AUTO_CREATE_TOPICS(stype, field)                                             \
    {                                                                                              \
        .name = "auto_create_topics", .env = "SLUICE_AUTO_CREATE_TOPICS", .type = SL_CONFIG_BOOL,  \
        .offset = offsetof(stype, field), .def = "false",                                          \
        .description = "Create missing topics at start instead of refusing to start."              \
    }
/* Shared rows whose meaning differs a little per binary: the description is the caller's. */
#define SL_CONFIG_OPT_ROUTES_FILE(stype, field, desc)                                              \
    {                                                                                              \
        .name = "routes_file", .env = "SLUICE_ROUTES_FILE", .type = SL_CONFIG_STRING,              \
        .offset = offsetof(stype, field), .description = desc                                      \
    }
#define SL_CONFIG_OPT_MAX_BODY(stype, field, desc)                                                 \
    {                                                                                              \
        .name = "max_body", .env = "SLUICE_MAX_BODY_BYTES", .type = SL_CONFIG_SIZE,                \
        .offset = offsetof(stype, field), .def = "10MiB", .umin = 0, .umax = UINT64_C(64) << 20,   \
        .description = desc                                                                        \
    }
#define SL_CONFIG_OPT_LOG_LEVEL(stype, field)                                                      \
    {                                                                                              \
        .name = "log_level", .env = "SLUICE_LOG_LEVEL", .type = SL_CONFIG_ENUM,                    \
        .offset = offsetof(stype, field), .def = "info", .choices = sl_config_log_level_names,     \
        .description = "Minimum level of log lines."                                               \
    }

#endif
