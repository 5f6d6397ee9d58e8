/* Table-driven configuration from SLUICE_* environment variables, --help and config print. */
#include "sluice/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sluice/error.h"
#include "sluice/log.h"

#define KAFKA_PREFIX     "SLUICE_KAFKA_"
#define KAFKA_PREFIX_LEN (sizeof(KAFKA_PREFIX) - 1)
#define REDACTED         "<redacted>"

/* A reason is the tail of an error line: "SLUICE_X: 'value' <reason>". */
#define REASON_MAX 256

/* In the order of enum sl_log_level (sluice/log.h). */
const char *const sl_config_log_level_names[] = {"debug", "info", "warn", "error", NULL};

static const char *const type_names[] = {
    [SL_CONFIG_STRING] = "string",      [SL_CONFIG_INT64] = "integer",
    [SL_CONFIG_SIZE] = "size",          [SL_CONFIG_BOOL] = "bool",
    [SL_CONFIG_DURATION] = "duration",  [SL_CONFIG_ENUM] = "enum",
    [SL_CONFIG_HOSTPORT] = "host:port", [SL_CONFIG_LIST] = "list",
};

struct unit {
    const char *suffix;
    uint64_t factor;
};

/* Binary units only: "10MiB" is unambiguous, "10MB" would not be. */
static const struct unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", UINT64_C(1) << 10},
    {"MiB", UINT64_C(1) << 20},
    {"GiB", UINT64_C(1) << 30},
    {"TiB", UINT64_C(1) << 40},
};

static const struct unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
};

static void *slot(void *settings, const struct sl_config_option *opt) {
    return (char *)settings + opt->offset;
}

static const void *cslot(const void *settings, const struct sl_config_option *opt) {
    return (const char *)settings + opt->offset;
}

static const char *env_lookup(char *const *envp, const char *name) {
    size_t n = strlen(name);
    for (; envp && *envp; envp++) {
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return NULL;
}

/* strtoll/strtoull skip leading space and strtoull accepts '-'; settings must start with a digit.
 */
static int parse_digits_u64(const char *s, uint64_t *out, const char **end) {
    if (!isdigit((unsigned char)s[0]))
        return SL_ERR_PARSE;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    *end = e;
    return 0;
}

static int parse_int64(const char *s, int64_t *out, char *reason) {
    const char *p = s[0] == '-' || s[0] == '+' ? s + 1 : s;
    if (!isdigit((unsigned char)p[0])) {
        snprintf(reason, REASON_MAX, "is not an integer");
        return SL_ERR_PARSE;
    }
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (*e != '\0') {
        snprintf(reason, REASON_MAX, "is not an integer");
        return SL_ERR_PARSE;
    }
    if (errno == ERANGE) {
        snprintf(reason, REASON_MAX, "is out of range for a 64-bit integer");
        return -ERANGE;
    }
    *out = v;
    return 0;
}

static int parse_scaled(const char *s, const struct unit *units, size_t nunits, uint64_t *out,
                        char *reason, const char *what) {
    uint64_t v;
    const char *end;
    int rc = parse_digits_u64(s, &v, &end);
    if (rc == -ERANGE) {
        snprintf(reason, REASON_MAX, "is too large");
        return rc;
    }
    if (rc < 0) {
        snprintf(reason, REASON_MAX, "is not a %s", what);
        return rc;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].factor) {
                snprintf(reason, REASON_MAX, "is too large");
                return -ERANGE;
            }
            *out = v * units[i].factor;
            return 0;
        }
    }
    snprintf(reason, REASON_MAX, "is not a %s", what);
    return SL_ERR_PARSE;
}

static int parse_bool(const char *s, bool *out, char *reason) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(reason, REASON_MAX, "is not a boolean (true/false, 1/0, yes/no, on/off)");
    return SL_ERR_PARSE;
}

static int parse_enum(const struct sl_config_option *opt, const char *s, int *out, char *reason) {
    struct sl_buf list;
    int i = 0;
    for (const char *const *c = opt->choices; c && *c; c++, i++) {
        if (strcasecmp(s, *c) == 0) {
            *out = i;
            return 0;
        }
    }
    sl_buf_init(&list, REASON_MAX - 32);
    for (const char *const *c = opt->choices; c && *c; c++)
        sl_buf_printf(&list, "%s%s", c == opt->choices ? "" : ", ", *c);
    snprintf(reason, REASON_MAX, "is not one of: %s", list.data ? list.data : "");
    sl_buf_free(&list);
    return SL_ERR_PARSE;
}

/* Hostnames per RFC 1123 plus '_' (seen in container DNS); IPv4 literals pass this check too. */
static int valid_hostname(const char *h, size_t n) {
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_')
            return 0;
    }
    return 1;
}

static int hostport_split(const char *s, char *host, size_t hostlen, int *port, char *reason) {
    const char *h, *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(reason, REASON_MAX, "is not a valid host:port (expected [ipv6]:port)");
            return SL_ERR_PARSE;
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        char v6[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (hlen == 0 || hlen >= sizeof v6) {
            snprintf(reason, REASON_MAX, "is not a valid host:port (bad IPv6 address)");
            return SL_ERR_PARSE;
        }
        memcpy(v6, h, hlen);
        v6[hlen] = '\0';
        if (inet_pton(AF_INET6, v6, &a6) != 1) {
            snprintf(reason, REASON_MAX, "is not a valid host:port (bad IPv6 address)");
            return SL_ERR_PARSE;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(reason, REASON_MAX, "is not a valid host:port (missing ':port')");
            return SL_ERR_PARSE;
        }
        if (memchr(s, ':', (size_t)(colon - s))) {
            snprintf(reason, REASON_MAX,
                     "is not a valid host:port (IPv6 addresses need brackets: [addr]:port)");
            return SL_ERR_PARSE;
        }
        h = s;
        hlen = (size_t)(colon - s);
        if (!valid_hostname(h, hlen)) {
            snprintf(reason, REASON_MAX, "is not a valid host:port (bad or empty host)");
            return SL_ERR_PARSE;
        }
    }
    uint64_t p;
    const char *end;
    int rc = parse_digits_u64(colon + 1, &p, &end);
    if (rc == SL_ERR_PARSE || (rc == 0 && *end != '\0')) {
        snprintf(reason, REASON_MAX, "is not a valid host:port (port is not a number)");
        return SL_ERR_PARSE;
    }
    if (rc == -ERANGE || p < 1 || p > 65535) {
        snprintf(reason, REASON_MAX, "is not a valid host:port (port must be 1..65535)");
        return -ERANGE;
    }
    if (hlen >= hostlen) {
        snprintf(reason, REASON_MAX, "is not a valid host:port (host longer than %zu bytes)",
                 hostlen ? hostlen - 1 : 0);
        return SL_ERR_TOO_LARGE;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

int sl_config_parse_hostport(const char *s, char *host, size_t hostlen, int *port) {
    char reason[REASON_MAX];
    return hostport_split(s, host, hostlen, port, reason);
}

static void list_free(struct sl_config_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int parse_list(const char *s, struct sl_config_list *out) {
    struct sl_config_list l = {0};
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    l.items = calloc(cap, sizeof *l.items);
    if (!l.items)
        return -ENOMEM;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        const char *b = p;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (e > b) {
            char *item = strndup(b, (size_t)(e - b));
            if (!item) {
                list_free(&l);
                return -ENOMEM;
            }
            l.items[l.n++] = item;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = l;
    return 0;
}

/* Bounds of zero/zero mean "whatever the type holds". */
static int check_int_bounds(const struct sl_config_option *opt, int64_t v, char *reason) {
    if (opt->min == 0 && opt->max == 0)
        return 0;
    if (v < opt->min || v > opt->max) {
        const char *unit = opt->type == SL_CONFIG_DURATION ? "ms" : "";
        snprintf(reason, REASON_MAX, "is out of range (must be %" PRId64 "%s..%" PRId64 "%s)",
                 opt->min, unit, opt->max, unit);
        return -ERANGE;
    }
    return 0;
}

/* Parses `s` and stores the result in the option's slot; on failure the slot is untouched. */
static int parse_into(const struct sl_config_option *opt, const char *s, void *settings,
                      char *reason) {
    void *dst = slot(settings, opt);
    int rc = 0;
    switch (opt->type) {
    case SL_CONFIG_STRING: {
        char *copy = strdup(s);
        if (!copy)
            return -ENOMEM;
        free(*(char **)dst);
        *(char **)dst = copy;
        return 0;
    }
    case SL_CONFIG_INT64: {
        int64_t v;
        if ((rc = parse_int64(s, &v, reason)) < 0 || (rc = check_int_bounds(opt, v, reason)) < 0)
            return rc;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case SL_CONFIG_DURATION: {
        uint64_t u;
        rc = parse_scaled(s, duration_units, sizeof duration_units / sizeof duration_units[0], &u,
                          reason, "duration (ms, or a number with ms/s/m/h)");
        if (rc < 0)
            return rc;
        if (u > INT64_MAX) {
            snprintf(reason, REASON_MAX, "is too large");
            return -ERANGE;
        }
        int64_t v = (int64_t)u;
        if ((rc = check_int_bounds(opt, v, reason)) < 0)
            return rc;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case SL_CONFIG_SIZE: {
        uint64_t v;
        rc = parse_scaled(s, size_units, sizeof size_units / sizeof size_units[0], &v, reason,
                          "size (bytes, or a number with B/KiB/MiB/GiB/TiB)");
        if (rc < 0)
            return rc;
        if (!(opt->umin == 0 && opt->umax == 0) && (v < opt->umin || v > opt->umax)) {
            snprintf(reason, REASON_MAX, "is out of range (must be %" PRIu64 "..%" PRIu64 ")",
                     opt->umin, opt->umax);
            return -ERANGE;
        }
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case SL_CONFIG_BOOL: {
        bool v;
        if ((rc = parse_bool(s, &v, reason)) < 0)
            return rc;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case SL_CONFIG_ENUM: {
        int v;
        if ((rc = parse_enum(opt, s, &v, reason)) < 0)
            return rc;
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    case SL_CONFIG_HOSTPORT: {
        struct sl_config_hostport hp;
        if ((rc = hostport_split(s, hp.host, sizeof hp.host, &hp.port, reason)) < 0)
            return rc;
        memcpy(dst, &hp, sizeof hp);
        return 0;
    }
    case SL_CONFIG_LIST: {
        struct sl_config_list l;
        if ((rc = parse_list(s, &l)) < 0)
            return rc;
        list_free(dst);
        memcpy(dst, &l, sizeof l);
        return 0;
    }
    }
    snprintf(reason, REASON_MAX, "has an unknown option type");
    return SL_ERR_CONFIG;
}

static void zero_slot(const struct sl_config_option *opt, void *settings) {
    void *dst = slot(settings, opt);
    switch (opt->type) {
    case SL_CONFIG_STRING:
        *(char **)dst = NULL;
        break;
    case SL_CONFIG_INT64:
    case SL_CONFIG_DURATION:
        memset(dst, 0, sizeof(int64_t));
        break;
    case SL_CONFIG_SIZE:
        memset(dst, 0, sizeof(uint64_t));
        break;
    case SL_CONFIG_BOOL:
        memset(dst, 0, sizeof(bool));
        break;
    case SL_CONFIG_ENUM:
        memset(dst, 0, sizeof(int));
        break;
    case SL_CONFIG_HOSTPORT:
        memset(dst, 0, sizeof(struct sl_config_hostport));
        break;
    case SL_CONFIG_LIST:
        memset(dst, 0, sizeof(struct sl_config_list));
        break;
    }
}

int sl_config_load(const struct sl_config_option *table, size_t n, void *settings,
                   char *const *envp, struct sl_buf *errors) {
    int failed = 0;
    for (size_t i = 0; i < n; i++)
        zero_slot(&table[i], settings);
    for (size_t i = 0; i < n; i++) {
        const struct sl_config_option *opt = &table[i];
        const char *v = env_lookup(envp, opt->env);
        int from_default = 0;
        if (!v || !*v) {
            v = opt->def;
            from_default = 1;
        }
        if (!v) {
            if (opt->required) {
                sl_buf_printf(errors, "%s: required but not set\n", opt->env);
                failed = 1;
            }
            continue;
        }
        char reason[REASON_MAX] = "";
        int rc = parse_into(opt, v, settings, reason);
        if (rc == -ENOMEM) {
            sl_config_free(table, n, settings);
            return -ENOMEM;
        }
        if (rc < 0) {
            /* A secret's value must not reach logs, even when it is malformed. */
            sl_buf_printf(errors, "%s: %s'%s' %s\n", opt->env, from_default ? "default " : "",
                          sl_config_redact(opt->secret, v), reason);
            failed = 1;
        }
    }
    if (failed) {
        sl_config_free(table, n, settings);
        return SL_ERR_CONFIG;
    }
    return 0;
}

void sl_config_free(const struct sl_config_option *table, size_t n, void *settings) {
    for (size_t i = 0; i < n; i++) {
        void *dst = slot(settings, &table[i]);
        if (table[i].type == SL_CONFIG_STRING) {
            free(*(char **)dst);
            *(char **)dst = NULL;
        } else if (table[i].type == SL_CONFIG_LIST) {
            list_free(dst);
        }
    }
}

static int is_set(const struct sl_config_option *opt, const void *settings) {
    if (opt->type == SL_CONFIG_STRING)
        return *(char *const *)cslot(settings, opt) != NULL;
    return 1;
}

int sl_config_format_value(const struct sl_config_option *opt, const void *settings,
                           struct sl_buf *out) {
    const void *src = cslot(settings, opt);
    switch (opt->type) {
    case SL_CONFIG_STRING: {
        const char *s = *(char *const *)src;
        return sl_buf_append_str(out, s ? s : "");
    }
    case SL_CONFIG_INT64:
    case SL_CONFIG_DURATION: {
        int64_t v;
        memcpy(&v, src, sizeof v);
        return sl_buf_printf(out, "%" PRId64, v);
    }
    case SL_CONFIG_SIZE: {
        uint64_t v;
        memcpy(&v, src, sizeof v);
        return sl_buf_printf(out, "%" PRIu64, v);
    }
    case SL_CONFIG_BOOL: {
        bool v;
        memcpy(&v, src, sizeof v);
        return sl_buf_append_str(out, v ? "true" : "false");
    }
    case SL_CONFIG_ENUM: {
        int v;
        memcpy(&v, src, sizeof v);
        int i = 0;
        for (const char *const *c = opt->choices; c && *c; c++, i++) {
            if (i == v)
                return sl_buf_append_str(out, *c);
        }
        return sl_buf_printf(out, "%d", v);
    }
    case SL_CONFIG_HOSTPORT: {
        const struct sl_config_hostport *hp = src;
        if (hp->port == 0)
            return 0;
        if (strchr(hp->host, ':'))
            return sl_buf_printf(out, "[%s]:%d", hp->host, hp->port);
        return sl_buf_printf(out, "%s:%d", hp->host, hp->port);
    }
    case SL_CONFIG_LIST: {
        const struct sl_config_list *l = src;
        for (size_t i = 0; i < l->n; i++) {
            int rc = sl_buf_printf(out, "%s%s", i ? "," : "", l->items[i]);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    }
    return SL_ERR_CONFIG;
}

void sl_config_print_help(const struct sl_config_option *table, size_t n, const char *program_name,
                          const char *flags, const char *description, FILE *out) {
    fprintf(out, "Usage: %s %s\n\n%s\n\nConfiguration (environment variables):\n", program_name,
            flags ? flags : "[--help]", description ? description : "");
    for (size_t i = 0; i < n; i++) {
        const struct sl_config_option *opt = &table[i];
        fprintf(out, "  %s (%s", opt->env, type_names[opt->type]);
        if (opt->def)
            fprintf(out, ", default: %s", opt->secret ? REDACTED : opt->def);
        else if (opt->required)
            fprintf(out, ", required");
        else
            fprintf(out, ", default: unset");
        if ((opt->type == SL_CONFIG_INT64 || opt->type == SL_CONFIG_DURATION) &&
            !(opt->min == 0 && opt->max == 0))
            fprintf(out, ", range: %" PRId64 "..%" PRId64 "%s", opt->min, opt->max,
                    opt->type == SL_CONFIG_DURATION ? " ms" : "");
        if (opt->type == SL_CONFIG_SIZE && !(opt->umin == 0 && opt->umax == 0))
            fprintf(out, ", range: %" PRIu64 "..%" PRIu64 " bytes", opt->umin, opt->umax);
        if (opt->type == SL_CONFIG_ENUM) {
            fprintf(out, ", one of:");
            for (const char *const *c = opt->choices; c && *c; c++)
                fprintf(out, "%s%s", c == opt->choices ? " " : ", ", *c);
        }
        if (opt->secret)
            fprintf(out, ", secret");
        fprintf(out, ")\n      %s\n", opt->description ? opt->description : "");
    }
    fprintf(out, "  " KAFKA_PREFIX "<PROPERTY>\n"
                 "      Any librdkafka property, upper-cased with '.' as '_' "
                 "(SLUICE_KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers).\n");
}

static cJSON *json_value(const struct sl_config_option *opt, const void *settings) {
    const void *src = cslot(settings, opt);
    if (!is_set(opt, settings))
        return cJSON_CreateNull();
    if (opt->secret)
        return cJSON_CreateString(REDACTED);
    switch (opt->type) {
    case SL_CONFIG_BOOL: {
        bool v;
        memcpy(&v, src, sizeof v);
        return cJSON_CreateBool(v);
    }
    case SL_CONFIG_INT64:
    case SL_CONFIG_DURATION:
    case SL_CONFIG_SIZE: {
        /* Raw text keeps 64-bit integers exact; cJSON numbers are doubles. */
        struct sl_buf b;
        sl_buf_init(&b, 32);
        cJSON *j = NULL;
        if (sl_config_format_value(opt, settings, &b) == 0)
            j = cJSON_CreateRaw(b.data);
        sl_buf_free(&b);
        return j;
    }
    case SL_CONFIG_LIST: {
        const struct sl_config_list *l = src;
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < l->n; i++) {
            cJSON *s = cJSON_CreateString(l->items[i]);
            if (!s || !cJSON_AddItemToArray(arr, s)) {
                cJSON_Delete(s);
                cJSON_Delete(arr);
                return NULL;
            }
        }
        return arr;
    }
    default: {
        struct sl_buf b;
        sl_buf_init(&b, SIZE_MAX / 2);
        cJSON *j = NULL;
        if (sl_config_format_value(opt, settings, &b) == 0)
            j = cJSON_CreateString(b.data ? b.data : "");
        sl_buf_free(&b);
        return j;
    }
    }
}

/* The SLUICE_KAFKA_<PROPERTY> name of a librdkafka property, as the operator wrote it. */
static void kafka_env_name(const char *property, char *out, size_t len) {
    int k = snprintf(out, len, KAFKA_PREFIX "%s", property);
    for (size_t i = KAFKA_PREFIX_LEN; k > 0 && i < len && out[i]; i++)
        out[i] = out[i] == '.' ? '_' : (char)toupper((unsigned char)out[i]);
}

/* The settings as one JSON object, then the Kafka passthrough as strings (secrets redacted). */
static int print_json(const struct sl_config_option *table, size_t n, const void *settings,
                      char *const *kafka_props, FILE *out) {
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *v = json_value(&table[i], settings);
        if (!v || !cJSON_AddItemToObject(root, table[i].env, v)) {
            cJSON_Delete(v);
            cJSON_Delete(root);
            return -ENOMEM;
        }
    }
    for (char *const *p = kafka_props; p && p[0] && p[1]; p += 2) {
        char env[256];
        kafka_env_name(p[0], env, sizeof env);
        cJSON *v = cJSON_CreateString(sl_config_redact(sl_config_kafka_prop_is_secret(p[0]), p[1]));
        if (!v || !cJSON_AddItemToObject(root, env, v)) {
            cJSON_Delete(v);
            cJSON_Delete(root);
            return -ENOMEM;
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return -ENOMEM;
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
}

int sl_config_print_effective(const struct sl_config_option *table, size_t n, const void *settings,
                              enum sl_config_format format, FILE *out) {
    if (format == SL_CONFIG_FORMAT_JSON)
        return print_json(table, n, settings, NULL, out);
    struct sl_buf b;
    sl_buf_init(&b, SIZE_MAX / 2);
    for (size_t i = 0; i < n; i++) {
        sl_buf_reset(&b);
        int rc = sl_config_format_value(&table[i], settings, &b);
        if (rc < 0) {
            sl_buf_free(&b);
            return rc;
        }
        const char *v = b.data ? b.data : "";
        /* An unset secret prints empty, so operators can still see whether it is set. */
        fprintf(out, "%s=%s\n", table[i].env, sl_config_redact(table[i].secret && *v, v));
    }
    sl_buf_free(&b);
    return 0;
}

const char *sl_config_redact(bool secret, const char *value) {
    if (secret)
        return REDACTED;
    return value ? value : "";
}

bool sl_config_kafka_prop_is_secret(const char *property) {
    static const char *const exact[] = {"ssl.key.pem", "sasl.oauthbearer.config"};
    if (strstr(property, "password") || strstr(property, "secret"))
        return true;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        if (strcmp(property, exact[i]) == 0)
            return true;
    }
    return false;
}

void sl_config_props_free(char **props) {
    if (!props)
        return;
    for (char **p = props; *p; p++)
        free(*p);
    free(props);
}

static int excluded(const char *name, size_t len, const char *const *exclude) {
    for (; exclude && *exclude; exclude++) {
        if (strlen(*exclude) == len && strncmp(*exclude, name, len) == 0)
            return 1;
    }
    return 0;
}

int sl_config_kafka_props(char *const *envp, const char *const *exclude, char ***out_props) {
    size_t count = 0;
    for (char *const *e = envp; e && *e; e++)
        count += strncmp(*e, KAFKA_PREFIX, KAFKA_PREFIX_LEN) == 0;
    char **props = calloc(2 * count + 1, sizeof *props);
    if (!props)
        return -ENOMEM;
    size_t k = 0;
    for (char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, KAFKA_PREFIX, KAFKA_PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        size_t name_len = (size_t)(eq - *e);
        if (name_len == KAFKA_PREFIX_LEN || eq[1] == '\0' || excluded(*e, name_len, exclude))
            continue;
        char *name = strndup(*e + KAFKA_PREFIX_LEN, name_len - KAFKA_PREFIX_LEN);
        char *value = strdup(eq + 1);
        if (!name || !value) {
            free(name);
            free(value);
            sl_config_props_free(props);
            return -ENOMEM;
        }
        for (char *c = name; *c; c++)
            *c = *c == '_' ? '.' : (char)tolower((unsigned char)*c);
        props[k++] = name;
        props[k++] = value;
    }
    *out_props = props;
    return (int)(k / 2);
}

void sl_config_print_kafka_props(char *const *props, FILE *out) {
    for (char *const *p = props; p && p[0] && p[1]; p += 2) {
        fprintf(out, KAFKA_PREFIX);
        for (const char *c = p[0]; *c; c++)
            fputc(*c == '.' ? '_' : toupper((unsigned char)*c), out);
        fprintf(out, "=%s\n", sl_config_redact(sl_config_kafka_prop_is_secret(p[0]), p[1]));
    }
}

int sl_config_print_all(const struct sl_config_option *table, size_t n, const void *settings,
                        char *const *kafka_props, bool json, FILE *out) {
    if (json)
        return print_json(table, n, settings, kafka_props, out);
    int rc = sl_config_print_effective(table, n, settings, SL_CONFIG_FORMAT_ENV, out);
    if (rc == 0)
        sl_config_print_kafka_props(kafka_props, out);
    return rc;
}

void sl_config_hostname(char *out, size_t len, const char *fallback) {
    const char *env = getenv("HOSTNAME");
    if (env && *env)
        snprintf(out, len, "%s", env);
    else if (gethostname(out, len) < 0 || !out[0])
        snprintf(out, len, "%s", fallback);
}

static size_t pairs_count(const char *const *pairs) {
    size_t n = 0;
    while (pairs && pairs[n])
        n += 2;
    return n;
}

static bool pairs_has(const char *const *pairs, const char *name) {
    for (size_t i = 0; pairs && pairs[i]; i += 2)
        if (strcmp(pairs[i], name) == 0)
            return true;
    return false;
}

const char **sl_config_kafka_merge(const char *const *user, const char *const *defaults,
                                   const char *const *owned, const char *client) {
    size_t total = pairs_count(user) + pairs_count(defaults) + pairs_count(owned);
    const char **all = calloc(total + 1, sizeof *all);
    if (!all)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; defaults && defaults[i]; i += 2) {
        if (pairs_has(user, defaults[i]) || pairs_has(owned, defaults[i]))
            continue;
        all[n++] = defaults[i];
        all[n++] = defaults[i + 1];
    }
    for (size_t i = 0; user && user[i]; i += 2) {
        if (pairs_has(owned, user[i])) {
            char env[128];
            int len = snprintf(env, sizeof env, "SLUICE_KAFKA_%s", user[i]);
            for (int k = 13; k < len && (size_t)k < sizeof env; k++)
                env[k] = env[k] == '.' ? '_' : (char)toupper((unsigned char)env[k]);
            SL_WARN("kafka %s: %s is set by the service and cannot be overridden; %s ignored",
                    client ? client : "client", user[i], env);
            continue;
        }
        all[n++] = user[i];
        all[n++] = user[i + 1];
    }
    for (size_t i = 0; owned && owned[i]; i += 2) {
        all[n++] = owned[i];
        all[n++] = owned[i + 1];
    }
    return all;
}
