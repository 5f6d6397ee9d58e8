/* Specification tests for the OTLP tracer: sampling, settings, resource, JSON, queue and drops. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "otlp_internal.h"
#include "sluice/otlp.h"
#include "sluice/time.h"

static const uint8_t TRACE_A[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};

/* A trace id whose rightmost 56 bits are `r` and whose first bytes are `hi` (ignored). */
static void trace_with_r(uint8_t out[16], uint64_t r, uint8_t hi) {
    memset(out, hi, 9);
    for (int i = 15; i >= 9; i--) {
        out[i] = (uint8_t)(r & 0xff);
        r >>= 8;
    }
}

/* "http://127.0.0.1:<port>" of a port nothing listens on. */
static void closed_endpoint(char *out, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    snprintf(out, len, "http://127.0.0.1:%u", ntohs(a.sin_port));
}

/* A tracer that exports to a closed port and, with these sizes, only when asked. */
static struct sl_otlp_tracer *quiet_tracer(struct sl_otlp_options *o, char *endpoint, size_t len,
                                           struct sl_metrics *m) {
    closed_endpoint(endpoint, len);
    if (!o->endpoint) {
        sl_otlp_options_default(o);
        o->max_queue_size = 1 << 12;
        o->max_batch_size = 1 << 12;
        o->schedule_delay_ms = 600000;
    }
    o->endpoint = endpoint;
    o->service_default = "sluice-test";
    struct sl_otlp_tracer *t = NULL;
    assert_int_equal(sl_otlp_tracer_new(o, m, &t), 0);
    assert_non_null(t);
    return t;
}

static void test_always_on_and_always_off_ignore_the_parent(void **state) {
    (void)state;
    struct sl_trace_ctx unsampled = {.flags = 0}, sampled = {.flags = SL_TRACE_FLAG_SAMPLED};
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_ALWAYS_ON, 0, &unsampled, TRACE_A));
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_ALWAYS_ON, 0, NULL, TRACE_A));
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_ALWAYS_OFF, 1, &sampled, TRACE_A));
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_ALWAYS_OFF, 1, NULL, TRACE_A));
}

static void test_traceidratio_compares_rightmost_56_bits_with_threshold(void **state) {
    (void)state;
    uint8_t id[16];
    const uint64_t half = 1ULL << 55; /* T for ratio 0.5 */
    trace_with_r(id, half, 0x00);
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.5, NULL, id));
    trace_with_r(id, half - 1, 0x00);
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.5, NULL, id));
    /* The leading bytes take no part: every hop decides the same from the trace id alone. */
    trace_with_r(id, half - 1, 0xff);
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.5, NULL, id));
    /* Kept at a ratio, kept at every higher one. */
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.51, NULL, id));
    /* The ends: 0 keeps nothing, 1 keeps everything. */
    trace_with_r(id, (1ULL << 56) - 1, 0xff);
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.0, NULL, id));
    trace_with_r(id, 0, 0x00);
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 1.0, NULL, id));
    /* The ratio is also applied to spans that have a parent. */
    struct sl_trace_ctx sampled = {.flags = SL_TRACE_FLAG_SAMPLED};
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.0, &sampled, id));
}

static void test_traceidratio_keeps_about_the_ratio_of_random_traces(void **state) {
    (void)state;
    struct sl_trace_rand r;
    sl_trace_rand_init(&r);
    int kept = 0;
    for (int i = 0; i < 20000; i++) {
        struct sl_trace_ctx c;
        assert_int_equal(sl_trace_generate_r(&r, &c), 0);
        kept += sl_otlp_should_sample(SL_OTLP_SAMPLER_TRACEIDRATIO, 0.25, NULL, c.trace_id);
    }
    /* 5000 expected; the standard deviation is about 61. */
    assert_in_range(kept, 4600, 5400);
}

static void test_parentbased_samplers_follow_the_parent_flag(void **state) {
    (void)state;
    struct sl_trace_ctx unsampled = {.flags = 0}, sampled = {.flags = SL_TRACE_FLAG_SAMPLED};
    uint8_t id[16];
    trace_with_r(id, 0, 0);
    enum sl_otlp_sampler all[] = {SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_ON,
                                  SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_OFF,
                                  SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO};
    for (size_t i = 0; i < 3; i++) {
        assert_true(sl_otlp_should_sample(all[i], 0.0, &sampled, id));
        assert_false(sl_otlp_should_sample(all[i], 1.0, &unsampled, id));
    }
    /* Roots: the delegate decides. */
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_ON, 0, NULL, id));
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_OFF, 1, NULL, id));
    assert_false(sl_otlp_should_sample(SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5, NULL, id));
    trace_with_r(id, (1ULL << 56) - 1, 0);
    assert_true(sl_otlp_should_sample(SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5, NULL, id));
}

static void test_settings_default_to_parent_based_ratio_one_and_off(void **state) {
    (void)state;
    char *env[] = {"PATH=/bin", NULL};
    struct sl_otlp_options o;
    sl_otlp_options_from_env(&o, env, "sluice-gateway");
    assert_null(o.endpoint);
    assert_int_equal(o.sampler, SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO);
    assert_true(o.sampler_ratio == 1.0);
    assert_int_equal(o.max_queue_size, 2048);
    assert_int_equal(o.max_batch_size, 512);
    assert_int_equal(o.schedule_delay_ms, 5000);
    assert_int_equal(o.export_timeout_ms, 10000);
    assert_int_equal(o.batch_timeout_ms, 30000);
    assert_string_equal(o.service_default, "sluice-gateway");
    struct sl_otlp_tracer *t = NULL;
    assert_int_equal(sl_otlp_tracer_new(&o, NULL, &t), 0);
    assert_null(t);
}

static void test_settings_read_the_standard_variables(void **state) {
    (void)state;
    char *env[] = {"SLUICE_OTLP_ENDPOINT=http://collector:4318",
                   "OTEL_SERVICE_NAME=edge",
                   "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod",
                   "OTEL_TRACES_SAMPLER=ParentBased_TraceIdRatio",
                   "OTEL_TRACES_SAMPLER_ARG=0.125",
                   "OTEL_BSP_MAX_QUEUE_SIZE=100",
                   "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=10",
                   "OTEL_BSP_SCHEDULE_DELAY=250",
                   "OTEL_BSP_EXPORT_TIMEOUT=3000",
                   "OTEL_EXPORTER_OTLP_TIMEOUT=2000",
                   "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=1500",
                   NULL};
    struct sl_otlp_options o;
    sl_otlp_options_from_env(&o, env, "sluice-gateway");
    assert_string_equal(o.endpoint, "http://collector:4318");
    assert_string_equal(o.service_name, "edge");
    assert_string_equal(o.resource_attributes, "deployment.environment=prod");
    assert_int_equal(o.sampler, SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO);
    assert_true(o.sampler_ratio == 0.125);
    assert_int_equal(o.max_queue_size, 100);
    assert_int_equal(o.max_batch_size, 10);
    assert_int_equal(o.schedule_delay_ms, 250);
    assert_int_equal(o.batch_timeout_ms, 3000);
    assert_int_equal(o.export_timeout_ms, 1500);
}

static void test_settings_fall_back_to_defaults_on_bad_values(void **state) {
    (void)state;
    char *env[] = {"SLUICE_OTLP_ENDPOINT=http://collector:4318",
                   "OTEL_TRACES_SAMPLER=xray",
                   "OTEL_TRACES_SAMPLER_ARG=1.5",
                   "OTEL_BSP_MAX_QUEUE_SIZE=-3",
                   "OTEL_SDK_DISABLED=true",
                   NULL};
    struct sl_otlp_options o;
    sl_otlp_options_from_env(&o, env, NULL);
    assert_int_equal(o.sampler, SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO);
    assert_true(o.sampler_ratio == 1.0);
    assert_int_equal(o.max_queue_size, 2048);
    assert_null(o.endpoint); /* OTEL_SDK_DISABLED=true turns tracing off */
}

struct demo_settings {
    char *otlp_endpoint;
};

static void test_endpoint_row_fits_a_service_settings_table(void **state) {
    (void)state;
    static const struct sl_config_option table[] = {
        SL_OTLP_ENDPOINT_OPTION(struct demo_settings, otlp_endpoint),
    };
    char *env[] = {"SLUICE_OTLP_ENDPOINT=http://collector:4318", NULL};
    struct demo_settings ds;
    struct sl_buf errors;
    sl_buf_init(&errors, 4096);
    assert_int_equal(sl_config_load(table, 1, &ds, env, &errors), 0);
    assert_string_equal(ds.otlp_endpoint, "http://collector:4318");
    sl_buf_free(&errors);
    sl_config_free(table, 1, &ds);
}

static void test_resource_attributes_are_trimmed_and_percent_decoded(void **state) {
    (void)state;
    struct sl_otlp_resource r = {.n = 0};
    assert_int_equal(sl_otlp_resource_parse(" a=1, b = x%2Cy ,,c%3Dk=%3D%20%e2%82%ac,empty=", &r),
                     0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.items[0].key, "a");
    assert_string_equal(r.items[0].value, "1");
    assert_string_equal(r.items[1].key, "b");
    assert_string_equal(r.items[1].value, "x,y");
    assert_string_equal(r.items[2].key, "c=k");
    assert_string_equal(r.items[2].value, "= \xe2\x82\xac");
    assert_string_equal(r.items[3].key, "empty");
    assert_string_equal(r.items[3].value, "");
    sl_otlp_resource_free(&r);
}

static void test_resource_attributes_with_an_error_are_discarded_whole(void **state) {
    (void)state;
    const char *bad[] = {"a=1,b", "a=1,b=%zz", "a=%4", "=v", "a=1,%=2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sl_otlp_resource r = {.n = 0};
        assert_int_equal(sl_otlp_resource_parse(bad[i], &r), -EINVAL);
        assert_int_equal(r.n, 0);
    }
}

static void test_service_name_precedence(void **state) {
    (void)state;
    struct sl_otlp_options o;
    struct sl_otlp_resource r;
    sl_otlp_options_default(&o);
    o.service_default = "sluice-worker";
    o.resource_attributes = "service.name=from-attrs,team=core";
    o.service_name = "from-env";
    assert_int_equal(sl_otlp_resource_build(&o, &r), 0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.items[0].key, "service.name");
    assert_string_equal(r.items[0].value, "from-env");
    assert_string_equal(r.items[1].key, "team");
    assert_string_equal(r.items[2].key, "telemetry.sdk.name");
    assert_string_equal(r.items[3].key, "telemetry.sdk.language");
    sl_otlp_resource_free(&r);

    o.service_name = NULL;
    assert_int_equal(sl_otlp_resource_build(&o, &r), 0);
    assert_string_equal(r.items[0].value, "from-attrs");
    sl_otlp_resource_free(&r);

    o.resource_attributes = "broken";
    assert_int_equal(sl_otlp_resource_build(&o, &r), 0);
    assert_string_equal(r.items[0].value, "sluice-worker");
    assert_int_equal(r.n, 3);
    sl_otlp_resource_free(&r);

    o.service_default = NULL;
    assert_int_equal(sl_otlp_resource_build(&o, &r), 0);
    assert_string_equal(r.items[0].value, "unknown_service");
    sl_otlp_resource_free(&r);
}

static const char EXPECTED_JSON[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"sluice-test\"}},"
    "{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"sluice\"}},"
    "{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"c\"}}]},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\"},\"spans\":[{"
    "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"spanId\":\"00f067aa0ba902b7\","
    "\"parentSpanId\":\"1122334455667788\",\"flags\":1,\"name\":\"GET /items/{id}\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1700000000000000123\",\"endTimeUnixNano\":\"1700000000500000456\","
    "\"attributes\":["
    "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
    "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"502\"}},"
    "{\"key\":\"sample.ratio\",\"value\":{\"doubleValue\":0.25}},"
    "{\"key\":\"error\",\"value\":{\"boolValue\":true}},"
    "{\"key\":\"url.path\",\"value\":{\"stringValue\":\"/a\xef\xbf\xbd\\\"b\xc3\xa9\"}}],"
    "\"events\":[{\"timeUnixNano\":\"1700000000400000000\",\"name\":\"exception\","
    "\"attributes\":[{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"crash\"}},"
    "{\"key\":\"signal\",\"value\":{\"intValue\":\"11\"}}]}],"
    "\"links\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\","
    "\"attributes\":[{\"key\":\"messaging.system\",\"value\":{\"stringValue\":\"kafka\"}}],"
    "\"flags\":1}],"
    "\"status\":{\"message\":\"handler crashed\",\"code\":2}}]}]}]}";

static void test_span_encodes_to_the_otlp_json_mapping(void **state) {
    (void)state;
    char endpoint[64];
    struct sl_otlp_options o = {.endpoint = NULL};
    struct sl_otlp_tracer *t = quiet_tracer(&o, endpoint, sizeof endpoint, NULL);
    struct sl_trace_ctx ctx = {.flags = SL_TRACE_FLAG_SAMPLED};
    memcpy(ctx.trace_id, TRACE_A, 16);
    memcpy(ctx.span_id, "\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8);
    const uint8_t parent[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    struct sl_otlp_span s;
    sl_otlp_span_start_ctx(t, &s, "GET /items/{id}", SL_OTLP_KIND_SERVER, &ctx, parent);
    sl_otlp_span_set_start(&s, 1700000000000000123);
    sl_otlp_span_set_str(&s, "http.request.method", "GET");
    sl_otlp_span_set_int(&s, "http.response.status_code", 502);
    sl_otlp_span_set_double(&s, "sample.ratio", 0.25);
    sl_otlp_span_set_bool(&s, "error", true);
    /* An invalid byte becomes U+FFFD; quotes are escaped; valid UTF-8 is kept. */
    sl_otlp_span_set_str(&s, "url.path", "/a\xff\"b\xc3\xa9");
    int e = sl_otlp_span_add_event(&s, "exception", 1700000000400000000);
    assert_int_equal(e, 0);
    sl_otlp_event_set_str(&s, e, "exception.type", "crash");
    sl_otlp_event_set_int(&s, e, "signal", 11);
    struct sl_trace_ctx to = {.flags = SL_TRACE_FLAG_SAMPLED};
    assert_int_equal(
        sl_trace_parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55, &to), 0);
    int l = sl_otlp_span_add_link(&s, &to);
    assert_int_equal(l, 0);
    sl_otlp_link_set_str(&s, l, "messaging.system", "kafka");
    sl_otlp_span_set_status(&s, SL_OTLP_STATUS_ERROR, "handler crashed");
    s.end_ns = 1700000000500000456;

    const struct sl_otlp_span *batch[1] = {&s};
    char *json = sl_otlp_encode_json(&t->resource, batch, 1);
    assert_non_null(json);
    assert_string_equal(json, EXPECTED_JSON);
    free(json);
    sl_otlp_tracer_free(t);
}

static void test_span_limits_drop_and_count_what_does_not_fit(void **state) {
    (void)state;
    char endpoint[64];
    struct sl_otlp_options o = {.endpoint = NULL};
    struct sl_otlp_tracer *t = quiet_tracer(&o, endpoint, sizeof endpoint, NULL);
    struct sl_otlp_span s;
    assert_int_equal(sl_otlp_span_start(t, &s, "limits", SL_OTLP_KIND_INTERNAL, NULL, NULL), 0);
    for (int i = 0; i < SL_OTLP_MAX_ATTRS + 6; i++) {
        sl_otlp_span_set_int(&s, "k", i);
    }
    assert_int_equal(s.nattrs, SL_OTLP_MAX_ATTRS);
    assert_int_equal(s.dropped_attrs, 6);
    for (int i = 0; i < SL_OTLP_MAX_EVENTS + 2; i++) {
        sl_otlp_span_add_event(&s, "e", 0);
    }
    assert_int_equal(s.nevents, SL_OTLP_MAX_EVENTS);
    assert_int_equal(s.dropped_events, 2);

    /* A string value too long for the span's strings is dropped, not cut. */
    struct sl_otlp_span s2;
    assert_int_equal(sl_otlp_span_start(t, &s2, "big", SL_OTLP_KIND_INTERNAL, NULL, NULL), 0);
    char big[SL_OTLP_STRINGS_SIZE + 10];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sl_otlp_span_set_str(&s2, "big", big);
    sl_otlp_span_set_str(&s2, "small", "ok");
    assert_int_equal(s2.nattrs, 1);
    assert_int_equal(s2.dropped_attrs, 1);
    assert_string_equal(s2.strings + s2.attrs[0].v.str, "ok");

    /* A key that fills the strings exactly leaves no room for even an empty value. */
    struct sl_otlp_span s3;
    assert_int_equal(sl_otlp_span_start(t, &s3, "x", SL_OTLP_KIND_INTERNAL, NULL, NULL), 0);
    char key[SL_OTLP_STRINGS_SIZE - 3];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    sl_otlp_span_set_str(&s3, key, "");
    assert_int_equal(s3.nattrs, 0);
    assert_int_equal(s3.dropped_attrs, 1);
    assert_int_equal(s3.used, 3);
    sl_otlp_tracer_free(t);
}

static void test_unsampled_and_untraced_spans_never_queue(void **state) {
    (void)state;
    /* No tracer: ids still flow, the parent's flag is kept, nothing records. */
    struct sl_trace_ctx parent = {.flags = 0};
    memcpy(parent.trace_id, TRACE_A, 16);
    memset(parent.span_id, 0x42, 8);
    struct sl_otlp_span s;
    assert_int_equal(sl_otlp_span_start(NULL, &s, "x", SL_OTLP_KIND_SERVER, &parent, NULL), 0);
    assert_false(s.recording);
    assert_memory_equal(s.ctx.trace_id, TRACE_A, 16);
    assert_int_equal(s.ctx.flags, 0);
    sl_otlp_span_set_str(&s, "k", "v");
    assert_int_equal(sl_otlp_span_end(NULL, &s, 0), 0);
    assert_int_equal(sl_otlp_span_start(NULL, &s, "root", SL_OTLP_KIND_SERVER, NULL, NULL), 0);
    assert_int_equal(s.ctx.flags, SL_TRACE_FLAG_SAMPLED);

    char endpoint[64];
    struct sl_otlp_options o = {.endpoint = NULL};
    struct sl_otlp_tracer *t = quiet_tracer(&o, endpoint, sizeof endpoint, NULL);
    /* The default sampler follows an unsampled parent: the child is unsampled too. */
    assert_int_equal(sl_otlp_span_start(t, &s, "child", SL_OTLP_KIND_SERVER, &parent, NULL), 0);
    assert_false(s.recording);
    assert_int_equal(s.ctx.flags, 0);
    assert_memory_not_equal(s.ctx.span_id, parent.span_id, 8);
    assert_int_equal(sl_otlp_span_end(t, &s, 0), 0);
    /* A sampled one queues exactly once, even when ended twice. */
    parent.flags = SL_TRACE_FLAG_SAMPLED;
    assert_int_equal(sl_otlp_span_start(t, &s, "child", SL_OTLP_KIND_SERVER, &parent, NULL), 0);
    assert_true(s.recording);
    assert_int_equal(s.ctx.flags, SL_TRACE_FLAG_SAMPLED);
    assert_memory_equal(s.parent_span_id, parent.span_id, 8);
    assert_int_equal(sl_otlp_span_end(t, &s, 0), 0);
    assert_int_equal(sl_otlp_span_end(t, &s, 0), 0);
    struct sl_otlp_stats st;
    sl_otlp_tracer_stats(t, &st);
    assert_int_equal(st.queued, 1);
    assert_int_equal(st.dropped, 0);
    sl_otlp_tracer_free(t);
}

static void test_queue_is_a_bounded_ring(void **state) {
    (void)state;
    struct sl_otlp_queue q;
    assert_int_equal(sl_otlp_queue_init(&q, 3), 0);
    struct sl_otlp_span s = {.used = 1, .start_ns = 0};
    const struct sl_otlp_span *out[3];
    for (int round = 0; round < 4; round++) { /* crosses the end of the ring */
        for (int i = 0; i < 3; i++) {
            s.start_ns = round * 10 + i;
            assert_int_equal(sl_otlp_queue_push(&q, &s), 0);
        }
        assert_int_equal(sl_otlp_queue_push(&q, &s), -ENOBUFS);
        sl_otlp_queue_peek(&q, 2, out);
        assert_int_equal(out[0]->start_ns, round * 10);
        assert_int_equal(out[1]->start_ns, round * 10 + 1);
        sl_otlp_queue_release(&q, 2);
        assert_int_equal(q.count, 1);
        sl_otlp_queue_peek(&q, 1, out);
        assert_int_equal(out[0]->start_ns, round * 10 + 2);
        sl_otlp_queue_release(&q, 1);
    }
    sl_otlp_queue_destroy(&q);
}

static void test_full_queue_drops_and_counts_while_collector_is_down(void **state) {
    (void)state;
    struct sl_metrics *m = sl_metrics_new();
    char endpoint[64];
    struct sl_otlp_options o;
    sl_otlp_options_default(&o);
    o.endpoint = "set below";
    o.max_queue_size = 16;
    o.max_batch_size = 16;
    o.schedule_delay_ms = 50;
    o.export_timeout_ms = 200;
    o.batch_timeout_ms = 300;
    o.shutdown_timeout_ms = 1000;
    struct sl_otlp_tracer *t = quiet_tracer(&o, endpoint, sizeof endpoint, m);
    const int total = 10000;
    int refused = 0;
    uint64_t slowest = 0;
    for (int i = 0; i < total; i++) {
        struct sl_otlp_span s;
        sl_otlp_span_start(t, &s, "burst", SL_OTLP_KIND_INTERNAL, NULL, NULL);
        sl_otlp_span_set_int(&s, "i", i);
        uint64_t t0 = sl_time_mono_ns();
        refused += sl_otlp_span_end(t, &s, 0) == -ENOBUFS;
        uint64_t took = sl_time_mono_ns() - t0;
        slowest = took > slowest ? took : slowest;
    }
    /* The exporter keeps retrying one batch of 16, so nearly everything else is dropped. */
    struct sl_otlp_stats st;
    sl_otlp_tracer_stats(t, &st);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped, (uint64_t)refused);
    assert_true(st.dropped >= (uint64_t)total - 16 * 8);
    assert_true(st.queued <= 16);
    /* Ending a span never waited on the network: a backoff takes 100 ms or more (the margin
     * below that is for a loaded host descheduling this thread). */
    assert_true(slowest < 90 * 1000000ULL);

    assert_int_equal(sl_otlp_tracer_flush(t, 5000), 0);
    sl_otlp_tracer_stats(t, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.exported, 0);
    assert_int_equal(st.dropped + st.failed, (uint64_t)total);
    struct sl_buf out;
    sl_buf_init(&out, 1 << 20);
    assert_int_equal(sl_metrics_render(m, &out), 0);
    char line[96];
    snprintf(line, sizeof line, "sluice_otlp_spans_dropped_total %llu\n",
             (unsigned long long)st.dropped);
    assert_non_null(memmem(out.data, out.len, line, strlen(line)));
    snprintf(line, sizeof line, "sluice_otlp_spans_failed_total %llu\n",
             (unsigned long long)st.failed);
    assert_non_null(memmem(out.data, out.len, line, strlen(line)));
    sl_buf_free(&out);

    /* Shutdown with the collector still down is bounded by its timeout. */
    uint64_t t0 = sl_time_mono_ns();
    sl_otlp_tracer_free(t);
    assert_true(sl_time_mono_ns() - t0 < 3000 * 1000000ULL);
    sl_metrics_free(m);
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/*
 * CPU cost on the calling thread, printed for docs/tracing.md (this build's flags apply; CPU
 * time rather than wall time, so a busy host does not inflate it).
 */
static void test_enqueue_cost(void **state) {
    (void)state;
    char endpoint[64];
    struct sl_otlp_options o = {.endpoint = NULL};
    struct sl_otlp_tracer *t = quiet_tracer(&o, endpoint, sizeof endpoint, NULL);
    struct sl_trace_rand r;
    sl_trace_rand_init(&r);
    struct sl_trace_ctx parent;
    assert_int_equal(sl_trace_generate_r(&r, &parent), 0);
    const int n = 4000; /* fits the queue: only the caller's side is measured */
    struct sl_otlp_span s;
    uint64_t t0 = thread_cpu_ns();
    for (int i = 0; i < n; i++) {
        sl_otlp_span_start(t, &s, "publish", SL_OTLP_KIND_PRODUCER, &parent, &r);
        sl_otlp_span_set_str(&s, "messaging.system", "kafka");
        sl_otlp_span_set_str(&s, "messaging.destination.name", "sluice.requests");
        sl_otlp_span_set_int(&s, "messaging.kafka.partition", 3);
        sl_otlp_span_set_int(&s, "messaging.kafka.offset", 123456);
        assert_int_equal(sl_otlp_span_end(t, &s, 0), 0);
    }
    uint64_t on = (thread_cpu_ns() - t0) / (uint64_t)n;
    t0 = thread_cpu_ns();
    for (int i = 0; i < n; i++) {
        sl_otlp_span_start(NULL, &s, "publish", SL_OTLP_KIND_PRODUCER, &parent, &r);
        sl_otlp_span_set_str(&s, "messaging.system", "kafka");
        sl_otlp_span_set_str(&s, "messaging.destination.name", "sluice.requests");
        sl_otlp_span_set_int(&s, "messaging.kafka.partition", 3);
        sl_otlp_span_set_int(&s, "messaging.kafka.offset", 123456);
        sl_otlp_span_end(NULL, &s, 0);
    }
    uint64_t off = (thread_cpu_ns() - t0) / (uint64_t)n;
    printf("otlp span start+4 attributes+end: %llu ns sampled, %llu ns tracing off "
           "(span %zu bytes)\n",
           (unsigned long long)on, (unsigned long long)off, sizeof(struct sl_otlp_span));
    sl_otlp_tracer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_always_on_and_always_off_ignore_the_parent),
        cmocka_unit_test(test_traceidratio_compares_rightmost_56_bits_with_threshold),
        cmocka_unit_test(test_traceidratio_keeps_about_the_ratio_of_random_traces),
        cmocka_unit_test(test_parentbased_samplers_follow_the_parent_flag),
        cmocka_unit_test(test_settings_default_to_parent_based_ratio_one_and_off),
        cmocka_unit_test(test_settings_read_the_standard_variables),
        cmocka_unit_test(test_settings_fall_back_to_defaults_on_bad_values),
        cmocka_unit_test(test_endpoint_row_fits_a_service_settings_table),
        cmocka_unit_test(test_resource_attributes_are_trimmed_and_percent_decoded),
        cmocka_unit_test(test_resource_attributes_with_an_error_are_discarded_whole),
        cmocka_unit_test(test_service_name_precedence),
        cmocka_unit_test(test_span_encodes_to_the_otlp_json_mapping),
        cmocka_unit_test(test_span_limits_drop_and_count_what_does_not_fit),
        cmocka_unit_test(test_unsampled_and_untraced_spans_never_queue),
        cmocka_unit_test(test_queue_is_a_bounded_ring),
        cmocka_unit_test(test_full_queue_drops_and_counts_while_collector_is_down),
        cmocka_unit_test(test_enqueue_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
