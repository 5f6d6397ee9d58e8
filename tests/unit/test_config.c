/* Specification tests for the declarative config table, Kafka passthrough and host:port parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/config.h"
#include "sluice/error.h"

struct settings {
    struct sl_config_hostport listen;
    int64_t timeout_ms;
    int64_t gateway_index;
    uint64_t max_body;
    bool fail_open;
    int log_level;
    struct sl_config_list origins;
    char *redis_url;
    char *prefix;
    char *token;
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const struct sl_config_option table[] = {
    {.name = "listen",
     .env = "SLUICE_LISTEN",
     .type = SL_CONFIG_HOSTPORT,
     .offset = offsetof(struct settings, listen),
     .def = "0.0.0.0:8080",
     .description = "HTTP listener."},
    {.name = "request_timeout",
     .env = "SLUICE_REQUEST_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = offsetof(struct settings, timeout_ms),
     .def = "29000",
     .min = 1,
     .max = 300000,
     .description = "Integration deadline."},
    {.name = "gateway_index",
     .env = "SLUICE_GATEWAY_INDEX",
     .type = SL_CONFIG_INT64,
     .offset = offsetof(struct settings, gateway_index),
     .def = "0",
     .min = 0,
     .max = 1023,
     .description = "Reply partition."},
    {.name = "max_body",
     .env = "SLUICE_MAX_BODY_BYTES",
     .type = SL_CONFIG_SIZE,
     .offset = offsetof(struct settings, max_body),
     .def = "10MiB",
     .umin = 1,
     .umax = UINT64_C(1) << 30,
     .description = "Body limit."},
    {.name = "fail_open",
     .env = "SLUICE_REDIS_FAIL_OPEN",
     .type = SL_CONFIG_BOOL,
     .offset = offsetof(struct settings, fail_open),
     .def = "true",
     .description = "Serve when Redis is down."},
    {.name = "log_level",
     .env = "SLUICE_LOG_LEVEL",
     .type = SL_CONFIG_ENUM,
     .offset = offsetof(struct settings, log_level),
     .def = "info",
     .choices = levels,
     .description = "Minimum log level."},
    {.name = "cors_origins",
     .env = "SLUICE_CORS_ORIGINS",
     .type = SL_CONFIG_LIST,
     .offset = offsetof(struct settings, origins),
     .def = "https://yourdomain.com,https://app.yourdomain.com",
     .description = "Allowed origins."},
    {.name = "redis_url",
     .env = "SLUICE_REDIS_URL",
     .type = SL_CONFIG_STRING,
     .offset = offsetof(struct settings, redis_url),
     .description = "Shared state."},
    {.name = "topic_prefix",
     .env = "SLUICE_TOPIC_PREFIX",
     .type = SL_CONFIG_STRING,
     .offset = offsetof(struct settings, prefix),
     .def = "sluice.",
     .description = "Topic prefix."},
    {.name = "token",
     .env = "SLUICE_ADMIN_TOKEN",
     .type = SL_CONFIG_STRING,
     .offset = offsetof(struct settings, token),
     .secret = true,
     .description = "Admin token."},
};

#define N (sizeof table / sizeof table[0])

struct loaded {
    struct settings s;
    struct sl_buf errors;
    int rc;
};

static void load(struct loaded *l, char **envp) {
    memset(&l->s, 0x5a, sizeof l->s); /* load must not rely on a cleared struct */
    sl_buf_init(&l->errors, 4096);
    l->rc = sl_config_load(table, N, &l->s, envp, &l->errors);
}

static void unload(struct loaded *l) {
    sl_config_free(table, N, &l->s);
    sl_buf_free(&l->errors);
}

static void test_config_defaults_apply_when_environment_is_empty(void **state) {
    (void)state;
    char *envp[] = {NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, 0);
    assert_null(l.errors.data);
    assert_string_equal(l.s.listen.host, "0.0.0.0");
    assert_int_equal(l.s.listen.port, 8080);
    assert_int_equal(l.s.timeout_ms, 29000);
    assert_int_equal(l.s.gateway_index, 0);
    assert_int_equal(l.s.max_body, 10485760);
    assert_true(l.s.fail_open);
    assert_int_equal(l.s.log_level, 1);
    assert_int_equal(l.s.origins.n, 2);
    assert_string_equal(l.s.origins.items[0], "https://yourdomain.com");
    assert_string_equal(l.s.origins.items[1], "https://app.yourdomain.com");
    assert_null(l.s.redis_url);
    assert_string_equal(l.s.prefix, "sluice.");
    assert_null(l.s.token);
    unload(&l);
}

static void test_config_reads_every_type_from_environment(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_LISTEN=[::1]:9000",
                    "SLUICE_REQUEST_TIMEOUT_MS=2m",
                    "SLUICE_GATEWAY_INDEX=7",
                    "SLUICE_MAX_BODY_BYTES=512KiB",
                    "SLUICE_REDIS_FAIL_OPEN=No",
                    "SLUICE_LOG_LEVEL=WARN",
                    "SLUICE_CORS_ORIGINS= https://a.example , ,https://b.example,",
                    "SLUICE_REDIS_URL=redis://redis:6379/0",
                    "SLUICE_TOPIC_PREFIX=",
                    NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, 0);
    assert_string_equal(l.s.listen.host, "::1");
    assert_int_equal(l.s.listen.port, 9000);
    assert_int_equal(l.s.timeout_ms, 120000);
    assert_int_equal(l.s.gateway_index, 7);
    assert_int_equal(l.s.max_body, 524288);
    assert_false(l.s.fail_open);
    assert_int_equal(l.s.log_level, 2);
    assert_int_equal(l.s.origins.n, 2);
    assert_string_equal(l.s.origins.items[0], "https://a.example");
    assert_string_equal(l.s.origins.items[1], "https://b.example");
    assert_string_equal(l.s.redis_url, "redis://redis:6379/0");
    assert_string_equal(l.s.prefix, "sluice."); /* empty means unset */
    unload(&l);
}

static void test_config_accepts_duration_suffixes(void **state) {
    (void)state;
    const char *cases[][2] = {
        {"1500", "1500"}, {"1500ms", "1500"}, {"3s", "3000"}, {"1m", "60000"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char var[64];
        snprintf(var, sizeof var, "SLUICE_REQUEST_TIMEOUT_MS=%s", cases[i][0]);
        char *envp[] = {var, NULL};
        struct loaded l;
        load(&l, envp);
        assert_int_equal(l.rc, 0);
        assert_int_equal(l.s.timeout_ms, strtoll(cases[i][1], NULL, 10));
        unload(&l);
    }
}

static void test_config_rejects_port_out_of_range(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_LISTEN=0.0.0.0:99999", NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, SL_ERR_CONFIG);
    assert_string_equal(
        l.errors.data,
        "SLUICE_LISTEN: '0.0.0.0:99999' is not a valid host:port (port must be 1..65535)\n");
    unload(&l);
}

static void test_config_collects_all_errors_at_once(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_REQUEST_TIMEOUT_MS=0",
                    "SLUICE_GATEWAY_INDEX=12x",
                    "SLUICE_MAX_BODY_BYTES=10MB",
                    "SLUICE_REDIS_FAIL_OPEN=maybe",
                    "SLUICE_LOG_LEVEL=verbose",
                    "SLUICE_LISTEN=localhost",
                    NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, SL_ERR_CONFIG);
    assert_string_equal(
        l.errors.data,
        "SLUICE_LISTEN: 'localhost' is not a valid host:port (missing ':port')\n"
        "SLUICE_REQUEST_TIMEOUT_MS: '0' is out of range (must be 1ms..300000ms)\n"
        "SLUICE_GATEWAY_INDEX: '12x' is not an integer\n"
        "SLUICE_MAX_BODY_BYTES: '10MB' is not a size (bytes, or a number with "
        "B/KiB/MiB/GiB/TiB)\n"
        "SLUICE_REDIS_FAIL_OPEN: 'maybe' is not a boolean (true/false, 1/0, yes/no, on/off)\n"
        "SLUICE_LOG_LEVEL: 'verbose' is not one of: debug, info, warn, error\n");
    /* Nothing half-made: owned strings were released. */
    assert_null(l.s.prefix);
    assert_null(l.s.origins.items);
    unload(&l);
}

static void test_config_rejects_integer_out_of_bounds_and_overflow(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_GATEWAY_INDEX=1024", "SLUICE_MAX_BODY_BYTES=99999999999999999999",
                    NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, SL_ERR_CONFIG);
    assert_string_equal(l.errors.data,
                        "SLUICE_GATEWAY_INDEX: '1024' is out of range (must be 0..1023)\n"
                        "SLUICE_MAX_BODY_BYTES: '99999999999999999999' is too large\n");
    unload(&l);
}

static void test_config_rejects_negative_size_and_leading_space(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_MAX_BODY_BYTES=-1", "SLUICE_GATEWAY_INDEX= 5", NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, SL_ERR_CONFIG);
    assert_string_equal(l.errors.data,
                        "SLUICE_GATEWAY_INDEX: ' 5' is not an integer\n"
                        "SLUICE_MAX_BODY_BYTES: '-1' is not a size (bytes, or a number with "
                        "B/KiB/MiB/GiB/TiB)\n");
    unload(&l);
}

static void test_config_never_echoes_a_secret_value(void **state) {
    (void)state;
    static const struct sl_config_option secret_int[] = {
        {.name = "pin",
         .env = "SLUICE_PIN",
         .type = SL_CONFIG_INT64,
         .offset = 0,
         .secret = true,
         .description = "A secret number."},
    };
    int64_t pin;
    char *envp[] = {"SLUICE_PIN=hunter2", NULL};
    struct sl_buf errors;
    sl_buf_init(&errors, 1024);
    assert_int_equal(sl_config_load(secret_int, 1, &pin, envp, &errors), SL_ERR_CONFIG);
    assert_string_equal(errors.data, "SLUICE_PIN: '<redacted>' is not an integer\n");
    sl_buf_free(&errors);
}

static void test_config_reports_required_setting_missing(void **state) {
    (void)state;
    static const struct sl_config_option req[] = {
        {.name = "keys_file",
         .env = "SLUICE_KEYS_FILE",
         .type = SL_CONFIG_STRING,
         .offset = 0,
         .required = true,
         .description = "Keys."},
    };
    char *path = NULL;
    char *envp[] = {NULL};
    struct sl_buf errors;
    sl_buf_init(&errors, 1024);
    assert_int_equal(sl_config_load(req, 1, &path, envp, &errors), SL_ERR_CONFIG);
    assert_string_equal(errors.data, "SLUICE_KEYS_FILE: required but not set\n");
    sl_buf_free(&errors);
}

static void test_config_reports_invalid_default_as_default(void **state) {
    (void)state;
    static const struct sl_config_option bad[] = {
        {.name = "n",
         .env = "SLUICE_N",
         .type = SL_CONFIG_INT64,
         .offset = 0,
         .def = "ten",
         .description = "N."},
    };
    int64_t v;
    char *envp[] = {NULL};
    struct sl_buf errors;
    sl_buf_init(&errors, 1024);
    assert_int_equal(sl_config_load(bad, 1, &v, envp, &errors), SL_ERR_CONFIG);
    assert_string_equal(errors.data, "SLUICE_N: default 'ten' is not an integer\n");
    sl_buf_free(&errors);
}

static char *capture(void (*fn)(FILE *, void *), void *arg) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(f, arg);
    fclose(f);
    return text;
}

static void print_env(FILE *f, void *arg) {
    assert_int_equal(sl_config_print_effective(table, N, arg, SL_CONFIG_FORMAT_ENV, f), 0);
}

static void print_json(FILE *f, void *arg) {
    assert_int_equal(sl_config_print_effective(table, N, arg, SL_CONFIG_FORMAT_JSON, f), 0);
}

static void print_help(FILE *f, void *arg) {
    (void)arg;
    sl_config_print_help(table, N, "sluice-gateway", NULL, "The HTTP front door.", f);
}

static void test_config_prints_effective_values_with_secrets_redacted(void **state) {
    (void)state;
    char *envp[] = {"SLUICE_ADMIN_TOKEN=s3cr3t", "SLUICE_LISTEN=[::]:8443", NULL};
    struct loaded l;
    load(&l, envp);
    assert_int_equal(l.rc, 0);
    char *text = capture(print_env, &l.s);
    assert_string_equal(text,
                        "SLUICE_LISTEN=[::]:8443\n"
                        "SLUICE_REQUEST_TIMEOUT_MS=29000\n"
                        "SLUICE_GATEWAY_INDEX=0\n"
                        "SLUICE_MAX_BODY_BYTES=10485760\n"
                        "SLUICE_REDIS_FAIL_OPEN=true\n"
                        "SLUICE_LOG_LEVEL=info\n"
                        "SLUICE_CORS_ORIGINS=https://yourdomain.com,https://app.yourdomain.com\n"
                        "SLUICE_REDIS_URL=\n"
                        "SLUICE_TOPIC_PREFIX=sluice.\n"
                        "SLUICE_ADMIN_TOKEN=<redacted>\n");
    free(text);
    text = capture(print_json, &l.s);
    assert_non_null(strstr(text, "\"SLUICE_ADMIN_TOKEN\":\t\"<redacted>\""));
    assert_non_null(strstr(text, "\"SLUICE_MAX_BODY_BYTES\":\t10485760"));
    assert_non_null(strstr(text, "\"SLUICE_REDIS_FAIL_OPEN\":\ttrue"));
    assert_non_null(strstr(text, "\"SLUICE_REDIS_URL\":\tnull"));
    assert_null(strstr(text, "s3cr3t"));
    free(text);
    unload(&l);
}

static void test_config_help_lists_type_default_bounds_and_description(void **state) {
    (void)state;
    char *text = capture(print_help, NULL);
    assert_non_null(strstr(text, "Usage: sluice-gateway [--help]\n\nThe HTTP front door.\n"));
    assert_non_null(strstr(text, "  SLUICE_REQUEST_TIMEOUT_MS (duration, default: 29000, range: "
                                 "1..300000 ms)\n      Integration deadline.\n"));
    assert_non_null(strstr(text, "  SLUICE_LOG_LEVEL (enum, default: info, one of: debug, info, "
                                 "warn, error)\n"));
    assert_non_null(strstr(text, "  SLUICE_ADMIN_TOKEN (string, default: unset, secret)\n"));
    assert_non_null(strstr(text, "SLUICE_KAFKA_<PROPERTY>"));
    free(text);
}

static void test_config_kafka_passthrough_maps_env_to_properties(void **state) {
    (void)state;
    char *envp[] = {"PATH=/bin",
                    "SLUICE_KAFKA_BOOTSTRAP_SERVERS=kafka:9092",
                    "SLUICE_LISTEN=0.0.0.0:8080",
                    "SLUICE_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512",
                    "SLUICE_KAFKA_SASL_PASSWORD=pw",
                    "SLUICE_KAFKA_EMPTY=",
                    "SLUICE_KAFKA_POLL_MS=5",
                    NULL};
    const char *const exclude[] = {"SLUICE_KAFKA_POLL_MS", NULL};
    char **props = NULL;
    assert_int_equal(sl_config_kafka_props(envp, exclude, &props), 3);
    assert_string_equal(props[0], "bootstrap.servers");
    assert_string_equal(props[1], "kafka:9092");
    assert_string_equal(props[2], "sasl.mechanisms");
    assert_string_equal(props[3], "SCRAM-SHA-512");
    assert_string_equal(props[4], "sasl.password");
    assert_string_equal(props[5], "pw");
    assert_null(props[6]);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sl_config_print_kafka_props(props, f);
    fclose(f);
    assert_string_equal(text, "SLUICE_KAFKA_BOOTSTRAP_SERVERS=kafka:9092\n"
                              "SLUICE_KAFKA_SASL_MECHANISMS=SCRAM-SHA-512\n"
                              "SLUICE_KAFKA_SASL_PASSWORD=<redacted>\n");
    free(text);
    sl_config_props_free(props);
}

static void test_config_kafka_secret_properties_are_recognised(void **state) {
    (void)state;
    assert_true(sl_config_kafka_prop_is_secret("sasl.password"));
    assert_true(sl_config_kafka_prop_is_secret("ssl.key.password"));
    assert_true(sl_config_kafka_prop_is_secret("ssl.keystore.password"));
    assert_true(sl_config_kafka_prop_is_secret("sasl.oauthbearer.client.secret"));
    assert_true(sl_config_kafka_prop_is_secret("ssl.key.pem"));
    assert_false(sl_config_kafka_prop_is_secret("bootstrap.servers"));
    assert_false(sl_config_kafka_prop_is_secret("sasl.username"));
    assert_string_equal(sl_config_redact(true, "x"), "<redacted>");
    assert_string_equal(sl_config_redact(false, "x"), "x");
    assert_string_equal(sl_config_redact(false, NULL), "");
}

static void test_hostport_parses_ipv4_ipv6_and_hostnames(void **state) {
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(sl_config_parse_hostport("127.0.0.1:80", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 80);
    assert_int_equal(sl_config_parse_hostport("[2001:db8::1]:65535", host, sizeof host, &port), 0);
    assert_string_equal(host, "2001:db8::1");
    assert_int_equal(port, 65535);
    assert_int_equal(sl_config_parse_hostport("kafka-0.kafka_svc:9092", host, sizeof host, &port),
                     0);
    assert_string_equal(host, "kafka-0.kafka_svc");
    assert_int_equal(port, 9092);
}

static void test_hostport_rejects_malformed_addresses(void **state) {
    (void)state;
    char host[8] = "unset";
    int port = 7;
    assert_int_equal(sl_config_parse_hostport("h:0", host, sizeof host, &port), -ERANGE);
    assert_int_equal(sl_config_parse_hostport("h:65536", host, sizeof host, &port), -ERANGE);
    assert_int_equal(sl_config_parse_hostport("h:", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport(":80", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("h:8o", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("h:+80", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("::1:80", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("[zz::1]:80", host, sizeof host, &port),
                     SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("[::1]80", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("h st:80", host, sizeof host, &port), SL_ERR_PARSE);
    assert_int_equal(sl_config_parse_hostport("longhostname:80", host, sizeof host, &port),
                     SL_ERR_TOO_LARGE);
    assert_string_equal(host, "unset");
    assert_int_equal(port, 7);
}

static void test_kafka_merge_owned_wins_defaults_yield_and_the_rest_passes(void **state) {
    (void)state;
    const char *user[] = {"acks",   "1", "session.timeout.ms", "6000", "bootstrap.servers",
                          "b:9092", NULL};
    const char *defaults[] = {"session.timeout.ms", "10000", "auto.offset.reset", "earliest", NULL};
    const char *owned[] = {"acks", "all", "enable.idempotence", "true", NULL};
    const char **all = sl_config_kafka_merge(user, defaults, owned, "test client");
    assert_non_null(all);
    const char *want[] = {"auto.offset.reset",
                          "earliest",
                          "session.timeout.ms",
                          "6000",
                          "bootstrap.servers",
                          "b:9092",
                          "acks",
                          "all",
                          "enable.idempotence",
                          "true",
                          NULL};
    for (size_t i = 0; want[i]; i++)
        assert_string_equal(all[i], want[i]);
    assert_null(all[10]);
    free(all);
    all = sl_config_kafka_merge(NULL, NULL, NULL, NULL);
    assert_non_null(all);
    assert_null(all[0]);
    free(all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_apply_when_environment_is_empty),
        cmocka_unit_test(test_config_reads_every_type_from_environment),
        cmocka_unit_test(test_config_accepts_duration_suffixes),
        cmocka_unit_test(test_config_rejects_port_out_of_range),
        cmocka_unit_test(test_config_collects_all_errors_at_once),
        cmocka_unit_test(test_config_rejects_integer_out_of_bounds_and_overflow),
        cmocka_unit_test(test_config_rejects_negative_size_and_leading_space),
        cmocka_unit_test(test_config_never_echoes_a_secret_value),
        cmocka_unit_test(test_config_reports_required_setting_missing),
        cmocka_unit_test(test_config_reports_invalid_default_as_default),
        cmocka_unit_test(test_config_prints_effective_values_with_secrets_redacted),
        cmocka_unit_test(test_config_help_lists_type_default_bounds_and_description),
        cmocka_unit_test(test_config_kafka_passthrough_maps_env_to_properties),
        cmocka_unit_test(test_config_kafka_secret_properties_are_recognised),
        cmocka_unit_test(test_hostport_parses_ipv4_ipv6_and_hostnames),
        cmocka_unit_test(test_hostport_rejects_malformed_addresses),
        cmocka_unit_test(test_kafka_merge_owned_wins_defaults_yield_and_the_rest_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
