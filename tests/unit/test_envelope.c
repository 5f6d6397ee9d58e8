/* Specification tests for the msgpack envelope codec: round trips, strictness and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "sluice/envelope.h"
#include "sluice/error.h"

/* A brace initialiser (not a compound literal), so it works in static tables too. */
#define S(lit)                                                                                     \
    { .p = (lit), .len = sizeof(lit) - 1 }

static const struct sl_str accept_values[] = {S("text/html"), S("application/json")};
static const struct sl_str cookie_values[] = {S("a=1")};
static const struct sl_str lower_accept_values[] = {S("*/*")};
static const struct sl_str empty_header_value[] = {S("")};
static const struct sl_envelope_field req_headers[] = {
    {.name = S("Accept"), .values = accept_values, .n_values = 2},
    {.name = S("X-Api-Key-Id-Is-Not-A-Key"), .values = cookie_values, .n_values = 1},
    {.name = S("accept"), .values = lower_accept_values, .n_values = 1},
    {.name = S("X-Empty"), .values = empty_header_value, .n_values = 1},
};
static const struct sl_str tag_values[] = {S("b"), S("a"), S("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93")};
static const struct sl_envelope_field req_query[] = {
    {.name = S("tag"), .values = tag_values, .n_values = 3},
};
static const struct sl_envelope_pair req_params[] = {
    {.name = S("id"), .value = S("42")},
    {.name = S("proxy"), .value = S("a/b/c")},
};

static struct sl_envelope_request sample_request(void) {
    return (struct sl_envelope_request){
        .id = S("2b7e1516-28ae-4d2a-abf7-158809cf4f3c"),
        .method = S("POST"),
        .path = S("/items/42"),
        .resource = S("/items/{id}"),
        .headers = {.fields = req_headers, .n = 4},
        .query = {.fields = req_query, .n = 1},
        .path_params = {.pairs = req_params, .n = 2},
        .body = {.p = "bin\0ary\xff\x00", .len = 9},
        .source_ip = S("203.0.113.7"),
        .user_agent = S("curl/8.5.0"),
        .api_key_id = S("key_01"),
        .stage = S("production"),
        .received_ms = 1767225600123,
        .deadline_ms = 1767225629123,
        .trace = S("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        .reply_partition = 3,
        .attempt = 2,
        .replay_count = 1,
    };
}

static const struct sl_str ct_values[] = {S("application/json")};
static const struct sl_str sc_values[] = {S("a=1"), S("b=2")};
static const struct sl_envelope_field rep_headers[] = {
    {.name = S("Content-Type"), .values = ct_values, .n_values = 1},
    {.name = S("Set-Cookie"), .values = sc_values, .n_values = 2},
};

static struct sl_envelope_reply sample_reply(void) {
    return (struct sl_envelope_reply){
        .id = S("2b7e1516-28ae-4d2a-abf7-158809cf4f3c"),
        .status = 201,
        .headers = {.fields = rep_headers, .n = 2},
        .body = S("{\"ok\":true}"),
    };
}

static struct sl_envelope_limits limits(void) {
    return sl_envelope_limits_default(1 << 20);
}

static void encode_req(const struct sl_envelope_request *r, struct sl_buf *b) {
    sl_buf_init(b, 1 << 22);
    assert_int_equal(sl_envelope_encode_request(r, b), 0);
}

static void test_envelope_request_round_trips_multi_value_headers_and_binary_body(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request(), out;
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_error err = {0};
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), 0);
    assert_true(sl_envelope_request_equal(&in, &out));
    assert_int_equal(out.v, 1);
    assert_int_equal(out.body.len, 9);
    assert_memory_equal(out.body.p, "bin\0ary\xff\x00", 9);
    assert_int_equal(out.headers.n, 4);
    assert_int_equal(out.headers.fields[0].n_values, 2);
    assert_memory_equal(out.headers.fields[0].values[1].p, "application/json", 16);
    assert_memory_equal(out.headers.fields[2].name.p, "accept", 6);
    assert_int_equal(out.query.fields[0].values[2].len, strlen("\xc3\xa9t\xc3\xa9 \xe2\x9c\x93"));
    assert_int_equal(out.reply_partition, 3);
    assert_int_equal(out.received_ms, 1767225600123);
    /* Zero copy: decoded slices point into the input buffer. */
    assert_true(out.id.p >= b.data && out.id.p < b.data + b.len);
    assert_true(out.body.p >= b.data && out.body.p < b.data + b.len);
    sl_envelope_request_free(&out);
    sl_envelope_request_free(&out); /* idempotent */
    sl_buf_free(&b);
}

static void test_envelope_request_round_trips_empty_body_and_no_key(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request(), out;
    in.body = (struct sl_str){0};
    in.api_key_id = (struct sl_str){0};
    in.headers.n = 0;
    in.query.n = 0;
    in.path_params.n = 0;
    in.trace = (struct sl_str){0};
    in.reply_partition = -1;
    in.received_ms = -5;
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_limits lim = limits();
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, NULL), 0);
    assert_true(sl_envelope_request_equal(&in, &out));
    assert_int_equal(out.body.len, 0);
    assert_null(out.api_key_id.p);
    assert_int_equal(out.reply_partition, -1);
    assert_int_equal(out.received_ms, -5);
    sl_envelope_request_free(&out);
    sl_buf_free(&b);
}

static void test_envelope_reply_round_trips_with_and_without_error(void **state) {
    (void)state;
    struct sl_envelope_reply in = sample_reply(), out;
    struct sl_envelope_limits lim = limits();
    for (int with_error = 0; with_error < 2; with_error++) {
        if (with_error) {
            in.status = 502;
            in.has_error = true;
            in.error_class = SL_STR("HandlerCrashed");
            in.error_message = SL_STR("child exited on signal 11");
            in.body = (struct sl_str){0};
        }
        struct sl_buf b;
        sl_buf_init(&b, 4096);
        assert_int_equal(sl_envelope_encode_reply(&in, &b), 0);
        assert_int_equal(sl_envelope_decode_reply(b.data, b.len, &lim, &out, NULL), 0);
        assert_true(sl_envelope_reply_equal(&in, &out));
        assert_int_equal(out.status, with_error ? 502 : 201);
        assert_int_equal(out.has_error, with_error);
        sl_envelope_reply_free(&out);
        sl_buf_free(&b);
    }
}

static void test_envelope_encode_respects_buffer_cap_and_leaves_it_unchanged(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request();
    struct sl_buf b;
    sl_buf_init(&b, 64);
    assert_int_equal(sl_buf_append_str(&b, "prefix"), 0);
    assert_int_equal(sl_envelope_encode_request(&in, &b), SL_ERR_TOO_LARGE);
    assert_int_equal(b.len, 6);
    assert_string_equal(b.data, "prefix");
    sl_buf_free(&b);
}

static void test_envelope_header_lookup_is_case_insensitive_and_iterates(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request();
    struct sl_str v;
    assert_int_equal(sl_envelope_first(&in.headers, "ACCEPT", &v), 0);
    assert_int_equal(v.len, 9);
    assert_memory_equal(v.p, "text/html", 9);
    assert_int_equal(sl_envelope_first(&in.headers, "x-missing", &v), SL_ERR_MISSING);
    size_t pos = 0, names = 0, values = 0;
    const struct sl_envelope_field *f;
    while ((f = sl_envelope_find(&in.headers, "accept", &pos)) != NULL) {
        names++;
        values += f->n_values;
    }
    assert_int_equal(names, 2);
    assert_int_equal(values, 3);
}

/* ---- hand-built envelopes for strictness tests ---- */

enum kind { K_UINT, K_INT, K_STR, K_BIN, K_MULTI, K_MAP };

struct key {
    const char *name;
    enum kind kind;
    bool required;
};

static const struct key request_keys[] = {
    {"v", K_UINT, true},
    {"id", K_STR, true},
    {"method", K_STR, true},
    {"path", K_STR, true},
    {"resource", K_STR, true},
    {"headers", K_MULTI, true},
    {"query", K_MULTI, true},
    {"path_params", K_MAP, false},
    {"body", K_BIN, true},
    {"source_ip", K_STR, false},
    {"user_agent", K_STR, false},
    {"api_key_id", K_STR, false},
    {"stage", K_STR, false},
    {"received_ms", K_INT, true},
    {"deadline_ms", K_INT, true},
    {"trace", K_STR, false},
    {"reply_partition", K_INT, false},
    {"attempt", K_UINT, false},
    {"replay_count", K_UINT, false},
};
#define NREQ (sizeof request_keys / sizeof request_keys[0])

static const struct key reply_keys[] = {
    {"v", K_UINT, true},        {"id", K_STR, true},   {"status", K_UINT, true},
    {"headers", K_MULTI, true}, {"body", K_BIN, true},
};
#define NREP (sizeof reply_keys / sizeof reply_keys[0])

static void pk_cstr(msgpack_packer *pk, const char *s) {
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void pack_value(msgpack_packer *pk, const struct key *k) {
    switch (k->kind) {
    case K_UINT:
        msgpack_pack_uint32(pk, strcmp(k->name, "status") == 0 ? 200 : 1);
        break;
    case K_INT:
        msgpack_pack_int64(pk, 1000);
        break;
    case K_STR:
        pk_cstr(pk, "x");
        break;
    case K_BIN:
        msgpack_pack_bin_with_body(pk, "\0", 1);
        break;
    case K_MULTI:
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "Name");
        msgpack_pack_array(pk, 1);
        pk_cstr(pk, "value");
        break;
    case K_MAP:
        msgpack_pack_map(pk, 1);
        pk_cstr(pk, "id");
        pk_cstr(pk, "1");
        break;
    }
}

/* Packs a map from `keys`, leaving out `skip`, giving `wrong` a bool, adding `extra` keys. */
static void build(msgpack_sbuffer *sb, const struct key *keys, size_t n, const char *skip,
                  const char *wrong, int extra) {
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (n - (skip ? 1 : 0)) + (size_t)extra);
    for (int i = 0; i < extra; i++) {
        pk_cstr(&pk, i == 0 ? "future_field" : "another_one");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_double(&pk, 1.5);
        msgpack_pack_nil(&pk);
    }
    for (size_t i = 0; i < n; i++) {
        if (skip && strcmp(keys[i].name, skip) == 0)
            continue;
        pk_cstr(&pk, keys[i].name);
        if (wrong && strcmp(keys[i].name, wrong) == 0)
            msgpack_pack_true(&pk);
        else
            pack_value(&pk, &keys[i]);
    }
}

static int decode_req(const msgpack_sbuffer *sb, struct sl_envelope_error *err) {
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_request r;
    int rc = sl_envelope_decode_request(sb->data, sb->size, &lim, &r, err);
    sl_envelope_request_free(&r);
    return rc;
}

static int decode_rep(const msgpack_sbuffer *sb, struct sl_envelope_error *err) {
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_reply r;
    int rc = sl_envelope_decode_reply(sb->data, sb->size, &lim, &r, err);
    sl_envelope_reply_free(&r);
    return rc;
}

static void test_envelope_hand_built_minimal_envelopes_decode(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    build(&sb, request_keys, NREQ, NULL, NULL, 0);
    assert_int_equal(decode_req(&sb, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
    build(&sb, reply_keys, NREP, NULL, NULL, 0);
    assert_int_equal(decode_rep(&sb, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_decode_names_missing_key(void **state) {
    (void)state;
    for (size_t i = 0; i < NREQ; i++) {
        msgpack_sbuffer sb;
        struct sl_envelope_error err = {0};
        build(&sb, request_keys, NREQ, request_keys[i].name, NULL, 0);
        int rc = decode_req(&sb, &err);
        if (request_keys[i].required) {
            assert_int_equal(rc, SL_ERR_MISSING);
            assert_string_equal(err.field, request_keys[i].name);
        } else {
            assert_int_equal(rc, 0);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    for (size_t i = 0; i < NREP; i++) {
        msgpack_sbuffer sb;
        struct sl_envelope_error err = {0};
        build(&sb, reply_keys, NREP, reply_keys[i].name, NULL, 0);
        assert_int_equal(decode_rep(&sb, &err), SL_ERR_MISSING);
        assert_string_equal(err.field, reply_keys[i].name);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_envelope_decode_message_says_which_key_is_missing(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    struct sl_envelope_error err = {0};
    build(&sb, request_keys, NREQ, "method", NULL, 0);
    assert_int_equal(decode_req(&sb, &err), SL_ERR_MISSING);
    assert_string_equal(err.message, "missing required key 'method'");
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_decode_names_wrong_type(void **state) {
    (void)state;
    for (size_t i = 0; i < NREQ; i++) {
        msgpack_sbuffer sb;
        struct sl_envelope_error err = {0};
        build(&sb, request_keys, NREQ, NULL, request_keys[i].name, 0);
        assert_int_equal(decode_req(&sb, &err), SL_ERR_TYPE);
        assert_string_equal(err.field, request_keys[i].name);
        msgpack_sbuffer_destroy(&sb);
    }
    for (size_t i = 0; i < NREP; i++) {
        msgpack_sbuffer sb;
        struct sl_envelope_error err = {0};
        build(&sb, reply_keys, NREP, NULL, reply_keys[i].name, 0);
        assert_int_equal(decode_rep(&sb, &err), SL_ERR_TYPE);
        assert_string_equal(err.field, reply_keys[i].name);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_sbuffer sb;
    struct sl_envelope_error err = {0};
    build(&sb, request_keys, NREQ, NULL, "method", 0);
    decode_req(&sb, &err);
    assert_string_equal(err.message, "key 'method' must be str, got bool");
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_ignores_unknown_keys(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    build(&sb, request_keys, NREQ, NULL, NULL, 2);
    assert_int_equal(decode_req(&sb, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
    build(&sb, reply_keys, NREP, NULL, NULL, 2);
    assert_int_equal(decode_rep(&sb, NULL), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Keys in any order: each string field carries its own key name, so a key matched to the
 * wrong field shows. The decoder tries the encoder's order first; this is the other path. */
static void test_envelope_decodes_keys_in_any_order(void **state) {
    (void)state;
    for (int reversed = 0; reversed <= 1; reversed++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, NREQ);
        for (size_t j = 0; j < NREQ; j++) {
            const struct key *k = &request_keys[reversed ? NREQ - 1 - j : j];
            pk_cstr(&pk, k->name);
            if (k->kind == K_STR)
                pk_cstr(&pk, k->name);
            else if (strcmp(k->name, "deadline_ms") == 0)
                msgpack_pack_int64(&pk, 2000);
            else
                pack_value(&pk, k);
        }
        struct sl_envelope_limits lim = limits();
        struct sl_envelope_request r;
        assert_int_equal(sl_envelope_decode_request(sb.data, sb.size, &lim, &r, NULL), 0);
        struct {
            struct sl_str got;
            const char *want;
        } strs[] = {{r.id, "id"},
                    {r.method, "method"},
                    {r.path, "path"},
                    {r.resource, "resource"},
                    {r.source_ip, "source_ip"},
                    {r.user_agent, "user_agent"},
                    {r.api_key_id, "api_key_id"},
                    {r.stage, "stage"},
                    {r.trace, "trace"}};
        for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
            assert_int_equal(strs[i].got.len, strlen(strs[i].want));
            assert_memory_equal(strs[i].got.p, strs[i].want, strs[i].got.len);
        }
        assert_int_equal(r.received_ms, 1000);
        assert_int_equal(r.deadline_ms, 2000);
        assert_int_equal(r.headers.n, 1);
        assert_int_equal(r.path_params.n, 1);
        assert_int_equal(r.body.len, 1);
        sl_envelope_request_free(&r);
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_envelope_rejects_version_2(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request();
    struct sl_buf b;
    encode_req(&in, &b);
    /* 19 keys: map16 header (de 00 13), then "v" as fixstr a1 'v' and positive fixint 01. */
    assert_int_equal((unsigned char)b.data[0], 0xde);
    assert_int_equal((unsigned char)b.data[3], 0xa1);
    assert_int_equal(b.data[4], 'v');
    assert_int_equal(b.data[5], 1);
    b.data[5] = 2;
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_request out;
    struct sl_envelope_error err = {0};
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_VERSION);
    assert_string_equal(err.field, "v");
    assert_string_equal(err.message, "envelope version 2 is not supported");
    sl_buf_free(&b);
}

static void test_envelope_version_is_checked_before_missing_keys(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_cstr(&pk, "v");
    msgpack_pack_uint32(&pk, 2);
    struct sl_envelope_error err = {0};
    assert_int_equal(decode_req(&sb, &err), SL_ERR_VERSION);
    assert_int_equal(decode_rep(&sb, &err), SL_ERR_VERSION);
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_rejects_duplicate_keys(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    build(&sb, reply_keys, NREP, NULL, NULL, 0);
    /* Rewrite the map header to one more entry and append a second "status". */
    assert_int_equal((unsigned char)sb.data[0], 0x85);
    sb.data[0] = (char)0x86;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pk_cstr(&pk, "status");
    msgpack_pack_uint32(&pk, 500);
    struct sl_envelope_error err = {0};
    assert_int_equal(decode_rep(&sb, &err), SL_ERR_PARSE);
    assert_string_equal(err.field, "status");
    assert_string_equal(err.message, "duplicate key 'status'");
    msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_rejects_status_outside_100_to_599(void **state) {
    (void)state;
    struct sl_envelope_reply in = sample_reply(), out;
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_error err = {0};
    const uint32_t bad[] = {0, 99, 600};
    for (size_t i = 0; i < 3; i++) {
        struct sl_buf b;
        sl_buf_init(&b, 4096);
        in.status = bad[i];
        assert_int_equal(sl_envelope_encode_reply(&in, &b), 0);
        assert_int_equal(sl_envelope_decode_reply(b.data, b.len, &lim, &out, &err), SL_ERR_PARSE);
        assert_string_equal(err.field, "status");
        sl_buf_free(&b);
    }
}

static void test_envelope_enforces_size_limits(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request(), out;
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_error err = {0};
    struct sl_envelope_limits lim = limits();

    lim.max_input = b.len - 1;
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_TOO_LARGE);
    assert_string_equal(err.field, "envelope");

    lim = limits();
    lim.max_body = 8;
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_TOO_LARGE);
    assert_string_equal(err.field, "body");
    assert_string_equal(err.message, "body of 9 bytes exceeds the limit of 8");

    lim = limits();
    lim.max_fields = 4; /* headers carry 5 values */
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_TOO_LARGE);
    assert_string_equal(err.field, "headers");

    lim = limits();
    lim.max_value_len = 15; /* "application/json" is 16 bytes */
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_TOO_LARGE);
    assert_string_equal(err.field, "headers");
    sl_buf_free(&b);
}

/* The encoder's side of the limits refuses exactly what the decoder refuses. */
static void test_request_fits_refuses_what_the_decoder_refuses(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request(), out;
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_error err = {0};
    struct sl_envelope_limits lim = limits();
    assert_int_equal(sl_envelope_request_fits(&in, &lim, &err), 0);
    struct {
        size_t *limit;
        size_t value;
        const char *field;
    } cases[] = {
        {&lim.max_body, 8, "body"},
        {&lim.max_fields, 4, "headers"},     /* headers carry 5 values */
        {&lim.max_value_len, 15, "headers"}, /* "application/json" is 16 bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lim = limits();
        *cases[i].limit = cases[i].value;
        assert_int_equal(sl_envelope_request_fits(&in, &lim, &err), SL_ERR_TOO_LARGE);
        assert_string_equal(err.field, cases[i].field);
        assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err),
                         SL_ERR_TOO_LARGE);
        assert_string_equal(err.field, cases[i].field);
    }
    sl_buf_free(&b);
}

static void test_envelope_rejects_more_than_500_headers_by_default(void **state) {
    (void)state;
    static struct sl_envelope_field many[501];
    static const struct sl_str one[] = {S("v")};
    static char names[501][8];
    for (size_t i = 0; i < 501; i++) {
        int n = snprintf(names[i], sizeof names[i], "h%zu", i);
        many[i] = (struct sl_envelope_field){
            .name = {.p = names[i], .len = (size_t)n}, .values = one, .n_values = 1};
    }
    struct sl_envelope_request in = sample_request(), out;
    in.headers = (struct sl_envelope_multimap){.fields = many, .n = 500};
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_limits lim = limits();
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, NULL), 0);
    sl_envelope_request_free(&out);
    sl_buf_free(&b);
    in.headers.n = 501;
    encode_req(&in, &b);
    struct sl_envelope_error err = {0};
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_TOO_LARGE);
    assert_string_equal(err.field, "headers");
    sl_buf_free(&b);
}

static void test_envelope_rejects_duplicate_header_name_but_keeps_case_variants(void **state) {
    (void)state;
    static const struct sl_str one[] = {S("1")};
    const struct sl_envelope_field dup[] = {
        {.name = S("X-A"), .values = one, .n_values = 1},
        {.name = S("X-A"), .values = one, .n_values = 1},
    };
    struct sl_envelope_request in = sample_request(), out;
    in.headers = (struct sl_envelope_multimap){.fields = dup, .n = 2};
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_error err = {0};
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_PARSE);
    assert_string_equal(err.message, "duplicate name 'X-A' in 'headers'");
    sl_buf_free(&b);
}

static void test_envelope_rejects_garbage_and_trailing_bytes(void **state) {
    (void)state;
    struct sl_envelope_limits lim = limits();
    struct sl_envelope_request out;
    struct sl_envelope_error err = {0};
    const char *garbage[] = {"",
                             "\xc1",
                             "hello",
                             "\x93\x01\x02\x03",
                             "\xdf\xff\xff\xff\xff",
                             "\xdd\x7f\xff\xff\xff\x00"};
    const size_t lens[] = {0, 1, 5, 4, 5, 6};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        int rc = sl_envelope_decode_request(garbage[i], lens[i], &lim, &out, &err);
        assert_true(rc == SL_ERR_PARSE || rc == SL_ERR_TYPE);
    }
    assert_int_equal(sl_envelope_decode_request("\x93\x01\x02\x03", 4, &lim, &out, &err),
                     SL_ERR_TYPE);
    assert_string_equal(err.message, "key 'envelope' must be map, got array");

    struct sl_envelope_request in = sample_request();
    struct sl_buf b;
    encode_req(&in, &b);
    assert_int_equal(sl_buf_append(&b, "\xc0", 1), 0);
    assert_int_equal(sl_envelope_decode_request(b.data, b.len, &lim, &out, &err), SL_ERR_PARSE);
    assert_string_equal(err.field, "envelope");
    sl_buf_free(&b);
}

static void test_envelope_rejects_truncation_at_every_offset(void **state) {
    (void)state;
    struct sl_envelope_request in = sample_request(), out;
    struct sl_buf b;
    encode_req(&in, &b);
    struct sl_envelope_limits lim = limits();
    for (size_t cut = 0; cut < b.len; cut++) {
        /* A fresh heap copy of exactly `cut` bytes lets ASan catch any read past the end. */
        char *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, cut);
        assert_int_equal(sl_envelope_decode_request(copy, cut, &lim, &out, NULL), SL_ERR_PARSE);
        free(copy);
    }
    struct sl_envelope_reply rin = sample_reply(), rout;
    sl_buf_reset(&b);
    assert_int_equal(sl_envelope_encode_reply(&rin, &b), 0);
    for (size_t cut = 0; cut < b.len; cut++) {
        char *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b.data, cut);
        assert_int_equal(sl_envelope_decode_reply(copy, cut, &lim, &rout, NULL), SL_ERR_PARSE);
        free(copy);
    }
    sl_buf_free(&b);
}

static void test_envelope_reply_error_needs_class_and_message(void **state) {
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    build(&sb, reply_keys, NREP, NULL, NULL, 0);
    sb.data[0] = (char)0x86;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pk_cstr(&pk, "error");
    msgpack_pack_map(&pk, 1);
    pk_cstr(&pk, "class");
    pk_cstr(&pk, "Timeout");
    struct sl_envelope_error err = {0};
    assert_int_equal(decode_rep(&sb, &err), SL_ERR_MISSING);
    assert_string_equal(err.message, "missing required key 'error.message'");
    msgpack_sbuffer_destroy(&sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_request_round_trips_multi_value_headers_and_binary_body),
        cmocka_unit_test(test_envelope_request_round_trips_empty_body_and_no_key),
        cmocka_unit_test(test_envelope_reply_round_trips_with_and_without_error),
        cmocka_unit_test(test_envelope_encode_respects_buffer_cap_and_leaves_it_unchanged),
        cmocka_unit_test(test_envelope_header_lookup_is_case_insensitive_and_iterates),
        cmocka_unit_test(test_envelope_hand_built_minimal_envelopes_decode),
        cmocka_unit_test(test_envelope_decode_names_missing_key),
        cmocka_unit_test(test_envelope_decode_message_says_which_key_is_missing),
        cmocka_unit_test(test_envelope_decode_names_wrong_type),
        cmocka_unit_test(test_envelope_ignores_unknown_keys),
        cmocka_unit_test(test_envelope_rejects_version_2),
        cmocka_unit_test(test_envelope_version_is_checked_before_missing_keys),
        cmocka_unit_test(test_envelope_rejects_duplicate_keys),
        cmocka_unit_test(test_envelope_decodes_keys_in_any_order),
        cmocka_unit_test(test_envelope_rejects_status_outside_100_to_599),
        cmocka_unit_test(test_envelope_enforces_size_limits),
        cmocka_unit_test(test_request_fits_refuses_what_the_decoder_refuses),
        cmocka_unit_test(test_envelope_rejects_more_than_500_headers_by_default),
        cmocka_unit_test(test_envelope_rejects_duplicate_header_name_but_keeps_case_variants),
        cmocka_unit_test(test_envelope_rejects_garbage_and_trailing_bytes),
        cmocka_unit_test(test_envelope_rejects_truncation_at_every_offset),
        cmocka_unit_test(test_envelope_reply_error_needs_class_and_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
