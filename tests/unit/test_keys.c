/* Unit tests for the keys file: parsing, error messages, lookup, generation, writing. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/keys.h"

#define H_ABC      "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_DISABLED "sha256:d518c5abc5dc3e54002d300fa51391a9965f64de561ccb0411d7aaf384fc77d0"
#define H_EXPIRED  "sha256:23330580f8712fb25ffd6363bf1144b4e5fd389128cabf944d2949c60cd30771"
#define H_REVOKED  "sha256:3f11c226bf184bff1e363eea46fba909cee991b8a2fba35a32df22d6b338fe08"
#define H_FUTURE   "sha256:b3f6a2356ddd47de3b35cef424875371973ae68774a0c6071cde55cc8b10d007"

#define T_CREATED 1795824973000LL /* 2026-11-28T00:16:13Z */
#define T_DEC1    1796083200000LL /* 2026-12-01T00:00:00Z */
#define T_2027    1798761600000LL /* 2027-01-01T00:00:00Z */

static const char valid_file[] =
    "{\n"
    "  \"version\": 1,\n"
    "  \"plans\": {\n"
    "    \"default\": {\"throttle\": {\"rate\": 10, \"burst\": 20}},\n"
    "    \"gold\": {\"throttle\": {\"rate\": 2.5, \"burst\": 5}, \"quota\": {\"limit\": 300, "
    "\"period\": \"MONTH\"}},\n"
    "    \"free\": {}\n"
    "  },\n"
    "  \"keys\": [\n"
    "    {\"id\": \"key_5f2c1a9e3b7d4c60\", \"name\": \"mobile-app\", \"hash\": \"" H_ABC "\",\n"
    "     \"plan\": \"gold\", \"enabled\": true, \"created\": \"2026-11-28T00:16:13Z\",\n"
    "     \"expires\": null, \"revoked\": null},\n"
    "    {\"id\": \"key_disabled\", \"hash\": \"" H_DISABLED "\", \"enabled\": false},\n"
    "    {\"id\": \"key_expired\", \"hash\": \"" H_EXPIRED "\", \"expires\": "
    "\"2026-12-01T00:00:00Z\"},\n"
    "    {\"id\": \"key_revoked\", \"hash\": \"" H_REVOKED "\", \"revoked\": "
    "\"2026-11-28T00:16:13Z\", \"enabled\": false},\n"
    "    {\"id\": \"key_future\", \"name\": \"caf\xc3\xa9\", \"hash\": \"" H_FUTURE
    "\", \"plan\": \"free\", \"revoked\": \"2027-01-01T00:00:00.250Z\"}\n"
    "  ]\n"
    "}\n";

static struct sl_keys *parse_ok(const char *json) {
    struct sl_keys *k = NULL;
    char err[SL_KEYS_ERR_SIZE];
    int rc = sl_keys_parse(json, strlen(json), &k, err, sizeof err);
    if (rc)
        fail_msg("parse failed: %d %s", rc, err);
    return k;
}

static void test_valid_file_parses_every_field(void **state) {
    (void)state;
    struct sl_keys *k = parse_ok(valid_file);
    assert_int_equal(sl_keys_count(k), 5);

    const struct sl_key *r = sl_keys_at(k, 0);
    assert_string_equal(r->id, "key_5f2c1a9e3b7d4c60");
    assert_string_equal(r->name, "mobile-app");
    assert_string_equal(r->plan, "gold");
    assert_true(r->enabled);
    assert_int_equal(r->created_ms, T_CREATED);
    assert_true(r->expires_ms == SL_KEYS_TIME_NONE);
    assert_true(r->revoked_ms == SL_KEYS_TIME_NONE);
    assert_int_equal(r->digest[0], 0xba);
    assert_int_equal(r->digest[31], 0xad);

    r = sl_keys_find_id(k, "key_future");
    assert_non_null(r);
    assert_string_equal(r->name, "caf\xc3\xa9");
    assert_string_equal(r->plan, "free");
    assert_true(r->created_ms == SL_KEYS_TIME_NONE);
    assert_int_equal(r->revoked_ms, T_2027 + 250);
    r = sl_keys_find_id(k, "key_disabled");
    assert_string_equal(r->plan, "default"); /* plan defaults to "default" */
    assert_string_equal(r->name, "");
    assert_false(r->enabled);
    assert_null(sl_keys_find_id(k, "key_nope"));

    /* The file redefines "default"; "gold" has both parts; "free" has neither. */
    assert_int_equal(sl_keys_plan_count(k), 3);
    const struct sl_plan *p = sl_keys_plan(k, "default");
    assert_true(p->rate == 10.0);
    assert_int_equal(p->burst, 20);
    assert_int_equal(p->quota_limit, 0);
    assert_int_equal(p->quota_period, SL_QUOTA_NONE);
    p = sl_keys_plan(k, "gold");
    assert_true(p->rate == 2.5);
    assert_int_equal(p->burst, 5);
    assert_int_equal(p->quota_limit, 300);
    assert_int_equal(p->quota_period, SL_QUOTA_MONTH);
    p = sl_keys_plan(k, "free");
    assert_true(p->rate == 0.0);
    assert_int_equal(p->quota_limit, 0);
    assert_null(sl_keys_plan(k, "platinum"));
    sl_keys_unref(k);
}

static void test_default_plan_is_the_seed_when_the_file_has_no_plans(void **state) {
    (void)state;
    struct sl_keys *k =
        parse_ok("{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\"}]}");
    const struct sl_plan *p = sl_keys_plan(k, "default");
    assert_non_null(p);
    assert_true(p->rate == 1000.0);
    assert_int_equal(p->burst, 2000);
    assert_int_equal(p->quota_limit, 10000);
    assert_int_equal(p->quota_period, SL_QUOTA_DAY);
    assert_int_equal(sl_keys_plan_count(k), 1);
    sl_keys_unref(k);
}

struct bad_case {
    const char *json;
    int code;
    const char *msg;
};

#define KEY_OK "{\"id\":\"a\",\"hash\":\"" H_ABC "\"}"
#define KEY_2  "{\"id\":\"b\",\"hash\":\"" H_DISABLED "\"}"

static const struct bad_case bad_cases[] = {
    {"", SL_ERR_PARSE, "invalid JSON at line 1, column 1"},
    {"{\"version\":1,\n \"keys\": [}", SL_ERR_PARSE, "invalid JSON at line 2, column 11"},
    {"{\"version\":1,\"keys\":[]} x", SL_ERR_PARSE,
     "invalid JSON at line 1, column 25: data after the top-level object"},
    {"[]", SL_ERR_TYPE, "(root): expected an object"},
    {"{\"keys\":[]}", SL_ERR_MISSING, "version: missing"},
    {"{\"version\":\"1\",\"keys\":[]}", SL_ERR_TYPE, "version: expected a number"},
    {"{\"version\":2,\"keys\":[]}", SL_ERR_VERSION,
     "version: unsupported version 2 (this build reads version 1)"},
    {"{\"version\":1}", SL_ERR_MISSING, "keys: missing"},
    {"{\"version\":1,\"keys\":{}}", SL_ERR_TYPE, "keys: expected an array"},
    {"{\"version\":1,\"keys\":[],\"extra\":1}", SL_ERR_PARSE, "extra: unknown field"},
    {"{\"version\":1,\"keys\":[],\"keys\":[]}", SL_ERR_PARSE, "keys: duplicate field"},
    {"{\"version\":1,\"plans\":[],\"keys\":[]}", SL_ERR_TYPE, "plans: expected an object"},
    {"{\"version\":1,\"plans\":{\"a b\":{}},\"keys\":[]}", SL_ERR_PARSE,
     "plans: invalid plan name (expected 1 to 63 characters of A-Z a-z 0-9 _ . -)"},
    {"{\"version\":1,\"plans\":{\"p\":{},\"p\":{}},\"keys\":[]}", SL_ERR_PARSE,
     "plans.p: duplicate plan"},
    {"{\"version\":1,\"plans\":{\"p\":{\"throtle\":{}}},\"keys\":[]}", SL_ERR_PARSE,
     "plans.p.throtle: unknown field"},
    {"{\"version\":1,\"plans\":{\"p\":{\"throttle\":{\"burst\":1}}},\"keys\":[]}", SL_ERR_MISSING,
     "plans.p.throttle.rate: missing"},
    {"{\"version\":1,\"plans\":{\"p\":{\"throttle\":{\"rate\":0,\"burst\":1}}},\"keys\":[]}",
     SL_ERR_PARSE,
     "plans.p.throttle.rate: expected a number of requests per second above 0 and at most 1e9"},
    {"{\"version\":1,\"plans\":{\"p\":{\"throttle\":{\"rate\":1,\"burst\":1.5}}},\"keys\":[]}",
     SL_ERR_PARSE, "plans.p.throttle.burst: expected an integer from 1 to 4294967295"},
    {"{\"version\":1,\"plans\":{\"p\":{\"quota\":{\"limit\":5,\"period\":\"YEAR\"}}},\"keys\":[]}",
     SL_ERR_PARSE, "plans.p.quota.period: expected \"DAY\", \"WEEK\" or \"MONTH\""},
    {"{\"version\":1,\"plans\":{\"p\":{\"quota\":{\"period\":\"DAY\"}}},\"keys\":[]}",
     SL_ERR_MISSING, "plans.p.quota.limit: missing"},
    {"{\"version\":1,\"keys\":[" KEY_OK ",1]}", SL_ERR_TYPE, "keys[1]: expected an object"},
    {"{\"version\":1,\"keys\":[{\"hash\":\"" H_ABC "\"}]}", SL_ERR_MISSING, "keys[0].id: missing"},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\"}]}", SL_ERR_MISSING, "keys[0].hash: missing"},
    {"{\"version\":1,\"keys\":[" KEY_OK "," KEY_2 ",{\"id\":\"c\",\"hash\":\"sha256:ABC\"},"
     "{\"id\":\"d\",\"hash\":\"x\"}]}",
     SL_ERR_PARSE, "keys[2].hash: expected \"sha256:\" followed by 64 lowercase hex digits"},
    {"{\"version\":1,\"keys\":[" KEY_OK "," KEY_2 "," KEY_2 ",{\"id\":\"d\",\"hash\":\"sha256:"
     "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"}]}",
     SL_ERR_PARSE, "keys[2].id: duplicate of keys[1]"},
    {"{\"version\":1,\"keys\":[" KEY_OK ",{\"id\":\"b\",\"hash\":\"" H_ABC "\"}]}", SL_ERR_PARSE,
     "keys[1].hash: duplicate of keys[0]"},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\",\"plan\":\"gold\"}]}",
     SL_ERR_MISSING, "keys[0].plan: no plan named \"gold\""},
    {"{\"version\":1,\"keys\":[{\"id\":\"a b\",\"hash\":\"" H_ABC "\"}]}", SL_ERR_PARSE,
     "keys[0].id: expected 1 to 64 characters of A-Z a-z 0-9 _ . -"},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\",\"name\":\"a\\nb\"}]}",
     SL_ERR_PARSE,
     "keys[0].name: expected UTF-8 text of at most 256 bytes without control characters"},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\",\"enabled\":1}]}", SL_ERR_TYPE,
     "keys[0].enabled: expected true or false"},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC
     "\",\"expires\":\"2026-02-30T00:00:00Z\"}]}",
     SL_ERR_PARSE,
     "keys[0].expires: expected null or an RFC 3339 UTC timestamp like \"2026-11-28T00:16:13Z\""},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC
     "\",\"revoked\":\"2026-11-28T00:16:13+01:00\"}]}",
     SL_ERR_PARSE,
     "keys[0].revoked: expected null or an RFC 3339 UTC timestamp like \"2026-11-28T00:16:13Z\""},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\",\"created\":5}]}", SL_ERR_TYPE,
     "keys[0].created: expected null or an RFC 3339 UTC timestamp like \"2026-11-28T00:16:13Z\""},
    {"{\"version\":1,\"keys\":[{\"id\":\"a\",\"hash\":\"" H_ABC "\",\"expire\":null}]}",
     SL_ERR_PARSE, "keys[0].expire: unknown field"},
};

static void test_every_bad_file_is_refused_with_the_path_of_the_bad_element(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        struct sl_keys *k = NULL;
        char err[SL_KEYS_ERR_SIZE] = "";
        int rc = sl_keys_parse(bad_cases[i].json, strlen(bad_cases[i].json), &k, err, sizeof err);
        if (rc != bad_cases[i].code || strcmp(err, bad_cases[i].msg) != 0)
            fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, rc, err, bad_cases[i].code,
                     bad_cases[i].msg);
        assert_null(k);
    }
}

static void test_file_over_16_mib_is_refused(void **state) {
    (void)state;
    char path[] = "/tmp/sluice-keys-big-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)SL_KEYS_FILE_MAX + 1), 0);
    close(fd);
    struct sl_keys *k = NULL;
    char err[SL_KEYS_ERR_SIZE];
    assert_int_equal(sl_keys_load(path, &k, NULL, err, sizeof err), SL_ERR_TOO_LARGE);
    assert_string_equal(err, "file is larger than 16777216 bytes");
    assert_null(k);
    unlink(path);
    assert_int_equal(sl_keys_load(path, &k, NULL, err, sizeof err), -ENOENT);
    assert_string_equal(err, "cannot open: No such file or directory");
}

static void test_lookup_reports_each_status_at_the_given_time(void **state) {
    (void)state;
    struct sl_keys *k = parse_ok(valid_file);
    const struct sl_key *r;
    int64_t now = T_CREATED + 1000;

    assert_int_equal(sl_keys_lookup(k, "abc", 3, now, &r), SL_KEY_OK);
    assert_string_equal(r->id, "key_5f2c1a9e3b7d4c60");
    assert_int_equal(sl_keys_lookup(k, "abd", 3, now, &r), SL_KEY_UNKNOWN);
    assert_null(r);
    assert_int_equal(sl_keys_lookup(k, "ab", 2, now, &r), SL_KEY_UNKNOWN);
    assert_int_equal(sl_keys_lookup(k, "", 0, now, &r), SL_KEY_UNKNOWN);
    assert_int_equal(sl_keys_lookup(k, "sk_disabled", 11, now, &r), SL_KEY_DISABLED);
    assert_string_equal(r->id, "key_disabled");

    /* Expiry is a point in time: valid before, expired at and after it. */
    assert_int_equal(sl_keys_lookup(k, "sk_expired", 10, T_DEC1 - 1, &r), SL_KEY_OK);
    assert_int_equal(sl_keys_lookup(k, "sk_expired", 10, T_DEC1, &r), SL_KEY_EXPIRED);
    /* Revoked wins over disabled. */
    assert_int_equal(sl_keys_lookup(k, "sk_revoked", 10, now, &r), SL_KEY_REVOKED);
    /* A revocation time in the future takes effect then. */
    assert_int_equal(sl_keys_lookup(k, "sk_future", 9, T_2027 + 249, &r), SL_KEY_OK);
    assert_int_equal(sl_keys_lookup(k, "sk_future", 9, T_2027 + 250, &r), SL_KEY_REVOKED);

    assert_string_equal(sl_key_status_name(SL_KEY_OK), "ok");
    assert_string_equal(sl_key_status_name(SL_KEY_UNKNOWN), "unknown");
    assert_string_equal(sl_key_status_name(SL_KEY_DISABLED), "disabled");
    assert_string_equal(sl_key_status_name(SL_KEY_EXPIRED), "expired");
    assert_string_equal(sl_key_status_name(SL_KEY_REVOKED), "revoked");
    sl_keys_unref(k);
}

static void test_table_outlives_the_loader_while_a_reference_is_held(void **state) {
    (void)state;
    struct sl_keys *k = parse_ok(valid_file);
    struct sl_keys *held = sl_keys_ref(k);
    const struct sl_key *r = sl_keys_find_id(held, "key_expired");
    sl_keys_unref(k); /* the loader lets go, e.g. on reload */
    assert_string_equal(r->id, "key_expired");
    sl_keys_unref(held);
    sl_keys_unref(NULL);
}

static void test_generated_key_has_the_documented_shape_and_hashes_to_the_stored_hash(void **s) {
    (void)s;
    char value[SL_KEYS_VALUE_SIZE], id[SL_KEYS_ID_SIZE];
    uint8_t digest[SL_KEYS_DIGEST_LEN], again[SL_KEYS_DIGEST_LEN];
    assert_int_equal(sl_keys_generate(value, id, digest), 0);
    assert_int_equal(strlen(value), 46);
    assert_memory_equal(value, "sk_", 3);
    for (size_t i = 3; i < 46; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", value[i]));
    assert_int_equal(strlen(id), 20);
    assert_memory_equal(id, "key_", 4);
    for (size_t i = 4; i < 20; i++)
        assert_non_null(strchr("0123456789abcdef", id[i]));
    assert_int_equal(sl_keys_hash_value(value, strlen(value), again), 0);
    assert_memory_equal(digest, again, sizeof digest);

    /* Stored, serialized and parsed back, the key is found by its value. */
    struct sl_keys *k;
    assert_int_equal(sl_keys_new(&k), 0);
    struct sl_key rec = {.enabled = true,
                         .plan = "default",
                         .created_ms = T_CREATED,
                         .expires_ms = SL_KEYS_TIME_NONE,
                         .revoked_ms = SL_KEYS_TIME_NONE};
    memcpy(rec.id, id, sizeof rec.id);
    memcpy(rec.digest, digest, sizeof digest);
    assert_int_equal(sl_keys_add(k, &rec, NULL, 0), 0);
    struct sl_buf b;
    sl_buf_init(&b, SL_KEYS_FILE_MAX);
    assert_int_equal(sl_keys_serialize(k, &b), 0);
    assert_null(strstr(b.data, value));
    struct sl_keys *k2 = parse_ok(b.data);
    const struct sl_key *r;
    assert_int_equal(sl_keys_lookup(k2, value, strlen(value), T_CREATED, &r), SL_KEY_OK);
    assert_string_equal(r->id, id);
    assert_memory_equal(r->digest, digest, sizeof digest);

    char other[SL_KEYS_VALUE_SIZE], id2[SL_KEYS_ID_SIZE];
    assert_int_equal(sl_keys_generate(other, id2, again), 0);
    assert_string_not_equal(other, value);
    sl_buf_free(&b);
    sl_keys_unref(k2);
    sl_keys_unref(k);
}

static void test_add_refuses_duplicates_and_unknown_plans(void **state) {
    (void)state;
    struct sl_keys *k = parse_ok(valid_file);
    /* A private copy for mutation: the parsed table has refcount 1 here. */
    struct sl_key rec = *sl_keys_at(k, 0);
    char err[SL_KEYS_ERR_SIZE];
    assert_int_equal(sl_keys_add(k, &rec, err, sizeof err), -EEXIST);
    assert_string_equal(err, "keys[5].id: duplicate of keys[0]");
    memcpy(rec.id, "key_new", sizeof "key_new");
    assert_int_equal(sl_keys_add(k, &rec, err, sizeof err), -EEXIST);
    assert_string_equal(err, "keys[5].hash: duplicate of keys[0]");
    rec.digest[0] ^= 1;
    memcpy(rec.plan, "nope", sizeof "nope");
    assert_int_equal(sl_keys_add(k, &rec, err, sizeof err), SL_ERR_MISSING);
    assert_string_equal(err, "keys[5].plan: no plan named \"nope\"");
    memcpy(rec.plan, "free", sizeof "free");
    assert_int_equal(sl_keys_add(k, &rec, err, sizeof err), 0);
    assert_int_equal(sl_keys_count(k), 6);
    sl_keys_unref(k);
}

static void test_revoke_and_rotate_change_only_what_they_should(void **state) {
    (void)state;
    struct sl_keys *k = parse_ok(valid_file);
    int64_t now = T_CREATED + 5000;
    assert_int_equal(sl_keys_revoke(k, "key_nope", now), -ENOENT);
    assert_int_equal(sl_keys_revoke(k, "key_5f2c1a9e3b7d4c60", now), 0);
    const struct sl_key *r = sl_keys_find_id(k, "key_5f2c1a9e3b7d4c60");
    assert_false(r->enabled);
    assert_int_equal(r->revoked_ms, now);
    assert_int_equal(sl_keys_revoke(k, "key_5f2c1a9e3b7d4c60", now + 1), 0);
    assert_int_equal(r->revoked_ms, now); /* the first revocation time stays */
    assert_int_equal(sl_keys_lookup(k, "abc", 3, now, NULL), SL_KEY_REVOKED);

    char value[SL_KEYS_VALUE_SIZE];
    assert_int_equal(sl_keys_rotate(k, "key_nope", value), -ENOENT);
    assert_int_equal(sl_keys_rotate(k, "key_expired", value), 0);
    assert_int_equal(sl_keys_lookup(k, "sk_expired", 10, T_CREATED, NULL), SL_KEY_UNKNOWN);
    assert_int_equal(sl_keys_lookup(k, value, strlen(value), T_CREATED, &r), SL_KEY_OK);
    assert_string_equal(r->id, "key_expired");
    assert_int_equal(r->expires_ms, T_DEC1);
    /* Every other key is still found after the index was rebuilt. */
    assert_int_equal(sl_keys_lookup(k, "sk_disabled", 11, now, NULL), SL_KEY_DISABLED);
    assert_int_equal(sl_keys_lookup(k, "sk_future", 9, now, NULL), SL_KEY_OK);
    sl_keys_unref(k);
}

static const char small_file_serialized[] = "{\n"
                                            "\t\"version\":\t1,\n"
                                            "\t\"plans\":\t{\n"
                                            "\t\t\"gold\":\t{\n"
                                            "\t\t\t\"throttle\":\t{\n"
                                            "\t\t\t\t\"rate\":\t2.5,\n"
                                            "\t\t\t\t\"burst\":\t5\n"
                                            "\t\t\t},\n"
                                            "\t\t\t\"quota\":\t{\n"
                                            "\t\t\t\t\"limit\":\t300,\n"
                                            "\t\t\t\t\"period\":\t\"WEEK\"\n"
                                            "\t\t\t}\n"
                                            "\t\t}\n"
                                            "\t},\n"
                                            "\t\"keys\":\t[{\n"
                                            "\t\t\t\"id\":\t\"a\",\n"
                                            "\t\t\t\"name\":\t\"n\",\n"
                                            "\t\t\t\"hash\":\t\"" H_ABC "\",\n"
                                            "\t\t\t\"plan\":\t\"gold\",\n"
                                            "\t\t\t\"enabled\":\ttrue,\n"
                                            "\t\t\t\"created\":\t\"2026-11-28T00:16:13Z\",\n"
                                            "\t\t\t\"expires\":\tnull,\n"
                                            "\t\t\t\"revoked\":\t\"2027-01-01T00:00:00.250Z\"\n"
                                            "\t\t}]\n"
                                            "}\n";

static void test_serialization_has_a_stable_field_order_and_round_trips(void **state) {
    (void)state;
    struct sl_keys *k =
        parse_ok("{\"keys\":[{\"revoked\":\"2027-01-01T00:00:00.250999Z\",\"plan\":\"gold\","
                 "\"hash\":\"" H_ABC "\",\"name\":\"n\",\"id\":\"a\",\"created\":"
                 "\"2026-11-28T00:16:13.000Z\"}],"
                 "\"plans\":{\"gold\":{\"quota\":{\"period\":\"WEEK\",\"limit\":300},"
                 "\"throttle\":{\"burst\":5,\"rate\":2.5}}},\"version\":1}");
    struct sl_buf a, b;
    sl_buf_init(&a, SL_KEYS_FILE_MAX);
    sl_buf_init(&b, SL_KEYS_FILE_MAX);
    assert_int_equal(sl_keys_serialize(k, &a), 0);
    assert_string_equal(a.data, small_file_serialized);

    struct sl_keys *big = parse_ok(valid_file);
    sl_buf_reset(&a);
    assert_int_equal(sl_keys_serialize(big, &a), 0);
    struct sl_keys *again = parse_ok(a.data);
    assert_int_equal(sl_keys_serialize(again, &b), 0);
    assert_string_equal(a.data, b.data);
    assert_int_equal(sl_keys_count(again), 5);
    for (size_t i = 0; i < 5; i++)
        assert_memory_equal(sl_keys_at(again, i), sl_keys_at(big, i), sizeof(struct sl_key));
    sl_buf_free(&a);
    sl_buf_free(&b);
    sl_keys_unref(again);
    sl_keys_unref(big);
    sl_keys_unref(k);
}

static size_t count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_atomic_write_replaces_the_file_and_leaves_no_temp_file(void **state) {
    (void)state;
    char dir[] = "/tmp/sluice-keys-write-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/keys.json", dir);
    struct sl_keys *k = parse_ok(valid_file);
    char err[SL_KEYS_ERR_SIZE];

    assert_int_equal(sl_keys_write_file(k, path, err, sizeof err), 0);
    struct stat st1, st2;
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(st1.st_mode & 0777, 0600); /* a new keys file is private */
    assert_int_equal(count_dir_entries(dir), 1);

    assert_int_equal(chmod(path, 0640), 0); /* an operator's choice survives rewrites */
    assert_int_equal(sl_keys_revoke(k, "key_future", T_CREATED), 0);
    assert_int_equal(sl_keys_write_file(k, path, err, sizeof err), 0);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st1.st_ino != st2.st_ino);
    assert_int_equal(st2.st_mode & 0777, 0640);
    assert_int_equal(count_dir_entries(dir), 1);

    struct sl_keys *back = NULL;
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    assert_int_equal(sl_keys_load(path, &back, digest, err, sizeof err), 0);
    assert_int_equal(sl_keys_lookup(back, "sk_future", 9, T_CREATED, NULL), SL_KEY_REVOKED);

    /* A directory that does not exist: an error, and nothing is left behind. */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/keys.json", dir);
    assert_true(sl_keys_write_file(k, bad, err, sizeof err) == -ENOENT);
    assert_non_null(strstr(err, "cannot create a temp file"));

    unlink(path);
    rmdir(dir);
    sl_keys_unref(back);
    sl_keys_unref(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file_parses_every_field),
        cmocka_unit_test(test_default_plan_is_the_seed_when_the_file_has_no_plans),
        cmocka_unit_test(test_every_bad_file_is_refused_with_the_path_of_the_bad_element),
        cmocka_unit_test(test_file_over_16_mib_is_refused),
        cmocka_unit_test(test_lookup_reports_each_status_at_the_given_time),
        cmocka_unit_test(test_table_outlives_the_loader_while_a_reference_is_held),
        cmocka_unit_test(test_generated_key_has_the_documented_shape_and_hashes_to_the_stored_hash),
        cmocka_unit_test(test_add_refuses_duplicates_and_unknown_plans),
        cmocka_unit_test(test_revoke_and_rotate_change_only_what_they_should),
        cmocka_unit_test(test_serialization_has_a_stable_field_order_and_round_trips),
        cmocka_unit_test(test_atomic_write_replaces_the_file_and_leaves_no_temp_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
