/* Unit tests of the worker's pure parts: echo output, offset tracking, DLQ headers, framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dlq.h"
#include "frame.h"
#include "handlers/handlers.h"
#include "offsets.h"
#include "worker_internal.h"
#include "sluice/error.h"

/* 2026-11-28T01:02:03.000456 UTC */
#define NOW_US (INT64_C(1795827723) * 1000000 + 456)

static struct sl_envelope_request request(const char *method, const char *body) {
    struct sl_envelope_request r = {
        .id = SL_STR("req-1"),
        .method = {method, strlen(method)},
        .path = SL_STR("/items/42"),
        .stage = SL_STR("production"),
        .body = {body, strlen(body)},
    };
    return r;
}

static void test_echo_get_writes_the_seeds_json_with_last_query_values(void **state) {
    (void)state;
    static const struct sl_str a[] = {SL_STR_INIT("1"), SL_STR_INIT("3")};
    static const struct sl_str b[] = {SL_STR_INIT("x\xc3\xa9")};
    const struct sl_envelope_field q[] = {{SL_STR_INIT("a"), a, 2}, {SL_STR_INIT("b"), b, 1}};
    struct sl_envelope_request r = request("GET", "");
    r.query = (struct sl_envelope_multimap){q, 2};
    struct wk_response out;
    wk_response_init(&out, 1 << 20);
    assert_int_equal(wk_echo_handle(&r, NOW_US, &out), 0);
    assert_int_equal(out.status, 200);
    assert_string_equal(out.body.data,
                        "{\"success\": true, \"data\": {\"message\": \"GET request processed "
                        "successfully\", \"path\": \"/items/42\", \"query_parameters\": {\"a\": "
                        "\"3\", \"b\": \"x\\u00e9\"}, \"method\": \"GET\"}, \"timestamp\": "
                        "\"2026-11-28T01:02:03.000456\", \"stage\": \"production\", "
                        "\"request_id\": \"req-1\"}");
    wk_response_free(&out);
}

static void test_echo_post_reprints_json_like_python(void **state) {
    (void)state;
    struct sl_envelope_request r = request("POST", "{\"k\":1,\"f\":2.5,\"k\":[true,null]}");
    struct wk_response out;
    wk_response_init(&out, 1 << 20);
    assert_int_equal(wk_echo_handle(&r, INT64_C(1795827723) * 1000000, &out), 0);
    assert_non_null(strstr(out.body.data, "\"received_data\": {\"k\": [true, null], \"f\": 2.5}"));
    /* No fraction when the microseconds are zero, as isoformat() does. */
    assert_non_null(strstr(out.body.data, "\"timestamp\": \"2026-11-28T01:02:03\""));
    wk_response_free(&out);
}

static void test_echo_post_non_json_is_a_string_and_empty_is_null(void **state) {
    (void)state;
    struct wk_response out;
    wk_response_init(&out, 1 << 20);
    struct sl_envelope_request r = request("PUT", "not \"json\"");
    assert_int_equal(wk_echo_handle(&r, NOW_US, &out), 0);
    assert_non_null(strstr(out.body.data, "\"received_data\": \"not \\\"json\\\"\""));
    wk_response_reset(&out);
    r = request("POST", "");
    assert_int_equal(wk_echo_handle(&r, NOW_US, &out), 0);
    assert_non_null(strstr(out.body.data, "\"received_data\": null"));
    wk_response_free(&out);
}

static void test_echo_patch_is_405_with_allow(void **state) {
    (void)state;
    struct sl_envelope_request r = request("PATCH", "");
    struct wk_response out;
    wk_response_init(&out, 1 << 20);
    assert_int_equal(wk_echo_handle(&r, NOW_US, &out), 0);
    assert_int_equal(out.status, 405);
    assert_non_null(strstr(out.body.data,
                           "\"data\": {\"error\": \"Method PATCH not supported\", "
                           "\"supported_methods\": [\"GET\", \"POST\", \"PUT\", \"DELETE\"]}"));
    assert_int_equal(out.nheaders, 2);
    assert_memory_equal(out.strings.data + out.name_off[0], "Allow", 5);
    assert_memory_equal(out.strings.data + out.value_off[0], "GET, POST, PUT, DELETE", 22);
    wk_response_free(&out);
}

static void test_offsets_store_up_to_the_lowest_unfinished(void **state) {
    (void)state;
    struct wk_offsets o;
    wk_offsets_init(&o);
    for (int64_t i = 10; i < 15; i++)
        assert_int_equal(wk_offsets_track(&o, i), 0);
    int64_t store = -1;
    assert_int_equal(wk_offsets_done(&o, 12, &store), 0); /* 10 and 11 still running */
    assert_int_equal(wk_offsets_done(&o, 11, &store), 0);
    assert_int_equal(wk_offsets_done(&o, 10, &store), 1);
    assert_int_equal(store, 13); /* 10..12 done, 13 is the lowest unfinished */
    assert_int_equal(wk_offsets_done(&o, 14, &store), 0);
    assert_int_equal(wk_offsets_done(&o, 13, &store), 1);
    assert_int_equal(store, 15);
    assert_int_equal(wk_offsets_pending(&o), 0);
    assert_int_equal(wk_offsets_done(&o, 13, &store), SL_ERR_MISSING);
    assert_int_equal(wk_offsets_track(&o, 20), 0); /* gaps (compaction) are fine */
    assert_int_equal(wk_offsets_track(&o, 19), -EINVAL);
    assert_int_equal(wk_offsets_done(&o, 20, &store), 1);
    assert_int_equal(store, 21);
    wk_offsets_free(&o);
}

/* A record the worker could not take on (out of memory) is held: nothing past it is committed
 * until the partition is reassigned, so it is read again rather than committed unseen. */
static void test_offsets_never_commit_past_a_held_record(void **state) {
    (void)state;
    struct wk_offsets o;
    wk_offsets_init(&o);
    assert_int_equal(wk_offsets_track(&o, 10), 0);
    wk_offsets_hold(&o, 11); /* 11 was read but not tracked */
    assert_int_equal(wk_offsets_track(&o, 12), 0);
    assert_int_equal(wk_offsets_track(&o, 13), 0);
    int64_t store = -1;
    assert_int_equal(wk_offsets_done(&o, 10, &store), 1);
    assert_int_equal(store, 11); /* 11 is next: not past it */
    assert_int_equal(wk_offsets_done(&o, 12, &store), 1);
    assert_int_equal(store, 11);
    assert_int_equal(wk_offsets_done(&o, 13, &store), 1);
    assert_int_equal(store, 11); /* every tracked record done, and still 11 */
    wk_offsets_hold(&o, 15);     /* a later hold does not move the first */
    assert_int_equal(wk_offsets_track(&o, 16), 0);
    assert_int_equal(wk_offsets_done(&o, 16, &store), 1);
    assert_int_equal(store, 11);
    wk_offsets_reset(&o); /* reassigned: read again from the committed 11 */
    assert_int_equal(wk_offsets_track(&o, 11), 0);
    assert_int_equal(wk_offsets_done(&o, 11, &store), 1);
    assert_int_equal(store, 12);
    wk_offsets_free(&o);
}

static void test_offsets_lag_is_high_watermark_minus_the_commit_point(void **state) {
    (void)state;
    struct wk_offsets o;
    wk_offsets_init(&o);
    /* Nothing tracked since the assignment: from the consumer's position, unknown without. */
    assert_int_equal(wk_offsets_lag(&o, 100, 40), 60);
    assert_int_equal(wk_offsets_lag(&o, 100, -1001), -1); /* RD_KAFKA_OFFSET_INVALID */
    assert_int_equal(wk_offsets_lag(&o, -1001, 40), -1);
    for (int64_t i = 40; i < 45; i++)
        assert_int_equal(wk_offsets_track(&o, i), 0);
    /* Read but unfinished records count: the commit point is 40 whatever the position. */
    assert_int_equal(wk_offsets_lag(&o, 100, 45), 60);
    int64_t store = -1;
    assert_int_equal(wk_offsets_done(&o, 41, &store), 0);
    assert_int_equal(wk_offsets_lag(&o, 100, 45), 60);
    assert_int_equal(wk_offsets_done(&o, 40, &store), 1);
    assert_int_equal(wk_offsets_lag(&o, 100, 45), 58);
    for (int64_t i = 42; i < 45; i++)
        assert_true(wk_offsets_done(&o, i, &store) >= 0);
    assert_int_equal(wk_offsets_lag(&o, 45, 45), 0); /* caught up */
    assert_int_equal(wk_offsets_lag(&o, 44, 45), 0); /* a stale watermark never goes negative */
    wk_offsets_reset(&o);
    assert_int_equal(wk_offsets_lag(&o, 50, 47), 3); /* after a revocation: the position again */
    wk_offsets_free(&o);
}

static void test_offsets_survive_growth_with_many_out_of_order_completions(void **state) {
    (void)state;
    struct wk_offsets o;
    wk_offsets_init(&o);
    for (int64_t i = 0; i < 1000; i++)
        assert_int_equal(wk_offsets_track(&o, i), 0);
    int64_t store = -1;
    for (int64_t i = 999; i >= 1; i--)
        assert_int_equal(wk_offsets_done(&o, i, &store), 0);
    assert_int_equal(wk_offsets_pending(&o), 1);
    assert_int_equal(wk_offsets_done(&o, 0, &store), 1);
    assert_int_equal(store, 1000);
    wk_offsets_free(&o);
}

static const struct sl_kafka_header *find(const struct wk_dlq_headers *h, const char *name) {
    for (size_t i = 0; i < h->n; i++)
        if (!strcmp(h->h[i].name, name))
            return &h->h[i];
    return NULL;
}

static void test_dlq_headers_carry_reason_origin_and_original_headers(void **state) {
    (void)state;
    const struct sl_kafka_header orig[] = {{"sluice-id", "abc", 3}};
    struct wk_dlq_info info = {.reason = WK_REASON_TIMEOUT,
                               .error = "handler timed out",
                               .attempts = 3,
                               .first_failure_ms = 1700000000123,
                               .worker = "w-1",
                               .topic = "sluice.requests",
                               .partition = 2,
                               .offset = 258,
                               .timestamp_ms = 1700000000456,
                               .original = orig,
                               .n_original = 1};
    struct wk_dlq_headers h;
    assert_int_equal(wk_dlq_headers_build(&info, &h), 0);
    assert_int_equal(h.n, 1 + WK_DLQ_OWN_HEADERS);
    assert_string_equal(h.h[0].name, "sluice-id");
    assert_memory_equal(find(&h, "sluice-dlq-reason")->value, "timeout", 7);
    assert_memory_equal(find(&h, "sluice-attempts")->value, "3", 1);
    assert_memory_equal(find(&h, "sluice-first-failure-ms")->value, "1700000000123", 13);
    assert_memory_equal(find(&h, "sluice-worker")->value, "w-1", 3);
    assert_memory_equal(find(&h, "kafka_dlt-original-topic")->value, "sluice.requests", 15);
    assert_memory_equal(find(&h, "kafka_dlt-original-partition")->value, "\0\0\0\2", 4);
    assert_memory_equal(find(&h, "kafka_dlt-original-offset")->value, "\0\0\0\0\0\0\1\2", 8);
    /* 1700000000456 = 0x0000018BCFE569C8, big-endian like every kafka_dlt- number. */
    assert_int_equal(find(&h, "kafka_dlt-original-timestamp")->len, 8);
    assert_memory_equal(find(&h, "kafka_dlt-original-timestamp")->value,
                        "\x00\x00\x01\x8b\xcf\xe5\x69\xc8", 8);
    assert_memory_equal(find(&h, "kafka_dlt-exception-message")->value, "handler timed out", 17);
    wk_dlq_headers_free(&h);
    assert_string_equal(wk_reason_name(WK_REASON_DECODE_ERROR), "decode_error");
    assert_int_equal(wk_reason_parse("invalid_reply", 13), WK_REASON_INVALID_REPLY);
    assert_int_equal(wk_reason_parse("whatever", 8), WK_REASON_HANDLER_ERROR);
}

/* Retry delays: full jitter under a ceiling that doubles from the base up to the cap. */
static void test_backoff_is_full_jitter_under_a_doubling_capped_ceiling(void **state) {
    (void)state;
    uint64_t rng = 42;
    const int64_t ceilings[] = {100, 200, 400, 800, 1600, 2000, 2000};
    for (uint32_t attempt = 1; attempt <= 7; attempt++) {
        int64_t lo = INT64_MAX, hi = -1, sum = 0;
        for (int i = 0; i < 2000; i++) {
            int64_t d = wk_backoff_ms(100, attempt, 2000, &rng);
            assert_true(d >= 0 && d <= ceilings[attempt - 1]);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += d;
        }
        /* Spread over the whole range, centred on half the ceiling. */
        int64_t c = ceilings[attempt - 1];
        assert_true(lo <= c / 20);
        assert_true(hi >= c - c / 20);
        assert_true(sum / 2000 > c * 2 / 5 && sum / 2000 < c * 3 / 5);
    }
    /* Two states give different sequences: replicas do not retry in step. */
    uint64_t a = 1, b = 2;
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += wk_backoff_ms(100, 3, 2000, &a) == wk_backoff_ms(100, 3, 2000, &b);
    assert_true(same < 10);
}

static void test_dlq_headers_say_what_was_dropped_only_when_something_was(void **state) {
    (void)state;
    struct wk_dlq_info info = {.reason = WK_REASON_INVALID_REPLY,
                               .error = "reply of 70000153 bytes is over the limit",
                               .reply_dropped = 70000153,
                               .value_dropped = 2000123};
    struct wk_dlq_headers h;
    assert_int_equal(wk_dlq_headers_build(&info, &h), 0);
    assert_int_equal(h.n, WK_DLQ_OWN_HEADERS + 2);
    const struct sl_kafka_header *r = find(&h, "sluice-dlq-reply-dropped-bytes");
    assert_non_null(r);
    assert_int_equal(r->len, 8);
    assert_memory_equal(r->value, "70000153", 8);
    const struct sl_kafka_header *v = find(&h, "sluice-dlq-value-dropped-bytes");
    assert_non_null(v);
    assert_int_equal(v->len, 7);
    assert_memory_equal(v->value, "2000123", 7);
    wk_dlq_headers_free(&h);
    info.reply_dropped = info.value_dropped = 0;
    assert_int_equal(wk_dlq_headers_build(&info, &h), 0);
    assert_int_equal(h.n, WK_DLQ_OWN_HEADERS);
    assert_null(find(&h, "sluice-dlq-reply-dropped-bytes"));
    assert_null(find(&h, "sluice-dlq-value-dropped-bytes"));
    wk_dlq_headers_free(&h);
}

static void test_frames_parse_only_when_complete_and_within_the_limit(void **state) {
    (void)state;
    uint8_t buf[16];
    wk_frame_header(buf, 3);
    memcpy(buf + 4, "abc", 3);
    const uint8_t *p;
    size_t len;
    assert_int_equal(wk_frame_parse(buf, 3, 100, &p, &len), 0);
    assert_int_equal(wk_frame_parse(buf, 6, 100, &p, &len), 0);
    assert_int_equal(wk_frame_parse(buf, 7, 100, &p, &len), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(wk_frame_parse(buf, 7, 2, &p, &len), SL_ERR_TOO_LARGE);
    wk_frame_header(buf, 0x01020304);
    assert_memory_equal(buf, "\1\2\3\4", 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_get_writes_the_seeds_json_with_last_query_values),
        cmocka_unit_test(test_echo_post_reprints_json_like_python),
        cmocka_unit_test(test_echo_post_non_json_is_a_string_and_empty_is_null),
        cmocka_unit_test(test_echo_patch_is_405_with_allow),
        cmocka_unit_test(test_offsets_store_up_to_the_lowest_unfinished),
        cmocka_unit_test(test_offsets_never_commit_past_a_held_record),
        cmocka_unit_test(test_offsets_lag_is_high_watermark_minus_the_commit_point),
        cmocka_unit_test(test_offsets_survive_growth_with_many_out_of_order_completions),
        cmocka_unit_test(test_dlq_headers_carry_reason_origin_and_original_headers),
        cmocka_unit_test(test_dlq_headers_say_what_was_dropped_only_when_something_was),
        cmocka_unit_test(test_frames_parse_only_when_complete_and_within_the_limit),
        cmocka_unit_test(test_backoff_is_full_jitter_under_a_doubling_capped_ceiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
