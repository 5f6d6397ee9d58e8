/* Specification tests for W3C traceparent handling and UUID v4 request ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/error.h"
#include "sluice/trace.h"

#define VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, struct sl_trace_ctx *ctx) {
    return sl_trace_parse(s, strlen(s), ctx);
}

static void test_traceparent_parses_spec_example(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse(VALID, &ctx), 0);
    assert_int_equal(ctx.trace_id[0], 0x4b);
    assert_int_equal(ctx.trace_id[15], 0x36);
    assert_int_equal(ctx.span_id[0], 0x00);
    assert_int_equal(ctx.span_id[7], 0xb7);
    assert_int_equal(ctx.flags, 0x01);
    char out[SL_TRACEPARENT_LEN + 1];
    sl_trace_format(&ctx, out);
    assert_string_equal(out, VALID);
    char tid[33];
    sl_trace_id_hex(&ctx, tid);
    assert_string_equal(tid, "4bf92f3577b34da6a3ce929d0e0e4736");
}

static void test_traceparent_rejects_all_zero_trace_id(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
}

static void test_traceparent_rejects_all_zero_parent_id(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", &ctx),
                     SL_ERR_PARSE);
}

static void test_traceparent_rejects_uppercase_hex(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", &ctx),
                     SL_ERR_PARSE);
}

static void test_traceparent_rejects_version_ff(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_VERSION);
}

static void test_traceparent_rejects_wrong_lengths_and_separators(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
    assert_int_equal(parse("", &ctx), SL_ERR_PARSE);
    assert_int_equal(parse("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx),
                     SL_ERR_PARSE);
}

static void test_traceparent_version_00_rejects_trailing_data(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse(VALID "-extra", &ctx), SL_ERR_PARSE);
    assert_int_equal(parse(VALID " ", &ctx), SL_ERR_PARSE);
}

static void test_traceparent_future_version_accepts_extra_fields_after_dash(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(
        parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
              &ctx),
        0);
    char out[SL_TRACEPARENT_LEN + 1];
    sl_trace_format(&ctx, out);
    assert_string_equal(out, VALID);
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &ctx), 0);
}

static void test_traceparent_future_version_rejects_extra_without_dash(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", &ctx),
                     SL_ERR_PARSE);
}

static void test_traceparent_parse_leaves_output_untouched_on_error(void **state) {
    (void)state;
    struct sl_trace_ctx ctx;
    memset(&ctx, 0xaa, sizeof ctx);
    assert_int_equal(parse("garbage", &ctx), SL_ERR_PARSE);
    assert_int_equal(ctx.flags, 0xaa);
}

static void test_trace_generate_makes_sampled_nonzero_ids(void **state) {
    (void)state;
    struct sl_trace_ctx a, b;
    assert_int_equal(sl_trace_generate(&a), 0);
    assert_int_equal(sl_trace_generate(&b), 0);
    assert_int_equal(a.flags, SL_TRACE_FLAG_SAMPLED);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    char out[SL_TRACEPARENT_LEN + 1];
    sl_trace_format(&a, out);
    assert_int_equal(strlen(out), 55);
    struct sl_trace_ctx back;
    assert_int_equal(parse(out, &back), 0);
    assert_memory_equal(&back, &a, sizeof a);
}

static void test_trace_child_keeps_trace_id_and_flags_with_new_span(void **state) {
    (void)state;
    struct sl_trace_ctx parent, child;
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &parent), 0);
    assert_int_equal(sl_trace_child(&parent, &child), 0);
    assert_memory_equal(child.trace_id, parent.trace_id, 16);
    assert_memory_not_equal(child.span_id, parent.span_id, 8);
    assert_int_equal(child.flags, 0x00);
}

static void test_request_id_is_lowercase_uuid_v4(void **state) {
    (void)state;
    char a[SL_REQUEST_ID_LEN + 1], b[SL_REQUEST_ID_LEN + 1];
    assert_int_equal(sl_trace_request_id(a), 0);
    assert_int_equal(sl_trace_request_id(b), 0);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a[i], '-');
        else
            assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    }
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
}

static void test_buffered_random_ids_are_distinct_and_well_formed_across_refills(void **state) {
    (void)state;
    struct sl_trace_rand r;
    sl_trace_rand_init(&r);
    char prev[SL_REQUEST_ID_LEN + 1] = "";
    struct sl_trace_ctx parent, child;
    assert_int_equal(sl_trace_generate_r(&r, &parent), 0);
    /* 600 ids x (16 + 8) bytes cross several 4 KiB refills. */
    for (int i = 0; i < 600; i++) {
        char id[SL_REQUEST_ID_LEN + 1];
        assert_int_equal(sl_trace_request_id_r(&r, id), 0);
        assert_int_equal(strlen(id), SL_REQUEST_ID_LEN);
        assert_int_equal(id[14], '4');
        assert_true(strchr("89ab", id[19]) != NULL);
        assert_string_not_equal(id, prev);
        memcpy(prev, id, sizeof id);
        assert_int_equal(sl_trace_child_r(&r, &parent, &child), 0);
        assert_memory_equal(child.trace_id, parent.trace_id, 16);
        assert_memory_not_equal(child.span_id, parent.span_id, 8);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffered_random_ids_are_distinct_and_well_formed_across_refills),
        cmocka_unit_test(test_traceparent_parses_spec_example),
        cmocka_unit_test(test_traceparent_rejects_all_zero_trace_id),
        cmocka_unit_test(test_traceparent_rejects_all_zero_parent_id),
        cmocka_unit_test(test_traceparent_rejects_uppercase_hex),
        cmocka_unit_test(test_traceparent_rejects_version_ff),
        cmocka_unit_test(test_traceparent_rejects_wrong_lengths_and_separators),
        cmocka_unit_test(test_traceparent_version_00_rejects_trailing_data),
        cmocka_unit_test(test_traceparent_future_version_accepts_extra_fields_after_dash),
        cmocka_unit_test(test_traceparent_future_version_rejects_extra_without_dash),
        cmocka_unit_test(test_traceparent_parse_leaves_output_untouched_on_error),
        cmocka_unit_test(test_trace_generate_makes_sampled_nonzero_ids),
        cmocka_unit_test(test_trace_child_keeps_trace_id_and_flags_with_new_span),
        cmocka_unit_test(test_request_id_is_lowercase_uuid_v4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
