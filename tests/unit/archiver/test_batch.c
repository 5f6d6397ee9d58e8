/* Unit tests of batches: UTC days, object keys, the gzip body, failure classes, the file sink. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "batch.h"
#include "sink.h"

static void test_day_of_is_the_utc_day_and_floors_before_the_epoch(void **state) {
    (void)state;
    assert_int_equal(ar_day_of(0), 0);
    assert_int_equal(ar_day_of(86399999), 0);
    assert_int_equal(ar_day_of(86400000), 1);
    assert_int_equal(ar_day_of(-1), -1);
    /* 2026-12-02T23:59:59.999Z and the next millisecond. */
    assert_int_equal(ar_day_of(INT64_C(1796255999999)) + 1, ar_day_of(INT64_C(1796256000000)));
}

static void test_key_names_prefix_date_topic_partition_and_padded_first_offset(void **state) {
    (void)state;
    struct ar_batch *b = ar_batch_new(3, ar_day_of(INT64_C(1796255999999)), 6, 0);
    assert_non_null(b);
    assert_int_equal(ar_batch_add(b, 42, INT64_C(1796255999999), "{}", 2, 1), 0);
    char key[256];
    assert_int_equal(ar_batch_key(b, "logs/prod", "sluice.audit", key, sizeof key), 0);
    assert_string_equal(key, "logs/prod/api-logs/year=2026/month=12/day=02/"
                             "sluice.audit+3+00000000000000000042.ndjson.gz");
    assert_int_equal(ar_batch_key(b, "", "sluice.audit", key, sizeof key), 0);
    assert_string_equal(key, "api-logs/year=2026/month=12/day=02/"
                             "sluice.audit+3+00000000000000000042.ndjson.gz");
    assert_int_equal(ar_batch_key(b, "", "sluice.audit", key, 20), -ENAMETOOLONG);
    ar_batch_free(b);
}

static void test_records_become_lines_and_the_body_gunzips_to_them(void **state) {
    (void)state;
    struct ar_batch *b = ar_batch_new(0, 0, 6, 4096);
    assert_int_equal(ar_batch_add(b, 7, 1000, "{\"a\":1}\n", 8, 5), 0);
    assert_int_equal(ar_batch_add(b, 8, 2000, "", 0, 6), 0); /* a tombstone: no line */
    assert_int_equal(ar_batch_add(b, 9, 3000, "{\"b\":2}", 7, 7), 0);
    assert_int_equal(b->first_offset, 7);
    assert_int_equal(b->last_offset, 9);
    assert_int_equal(b->records, 3);
    assert_int_equal(b->first_timestamp_ms, 1000);
    assert_int_equal(b->opened_ns, 5);
    assert_int_equal(b->raw_len, 16);
    assert_int_equal(ar_batch_finish(b), 0);
    assert_int_equal(ar_batch_finish(b), 0);                          /* idempotent */
    assert_int_equal(ar_batch_add(b, 10, 4000, "{}", 2, 8), -EINVAL); /* closed */
    unsigned char out[64];
    z_stream z = {.next_in = (Bytef *)b->body.data,
                  .avail_in = (uInt)b->body.len,
                  .next_out = out,
                  .avail_out = sizeof out};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, 16);
    assert_memory_equal(out, "{\"a\":1}\n{\"b\":2}\n", 16);
    inflateEnd(&z);
    ar_batch_free(b);
}

/* Many records, a body that outgrows its reservation many times over, random (incompressible)
 * lines: the streamed gzip still inflates to exactly the lines, in order. */
static void test_a_large_streamed_body_gunzips_to_every_line(void **state) {
    (void)state;
    enum { N = 20000, LINE = 100 };
    struct ar_batch *b = ar_batch_new(0, 0, 1, 0);
    assert_non_null(b);
    char *want = malloc((size_t)N * (LINE + 1));
    assert_non_null(want);
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < N; i++) {
        char *line = want + (size_t)i * (LINE + 1);
        for (int k = 0; k < LINE; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            line[k] = (char)(' ' + (x % 94));
        }
        line[LINE] = '\n';
        assert_int_equal(ar_batch_add(b, i, 0, line, LINE, 0), 0);
    }
    assert_int_equal(ar_batch_finish(b), 0);
    assert_int_equal(b->raw_len, (size_t)N * (LINE + 1));
    size_t n = (size_t)N * (LINE + 1);
    unsigned char *out = malloc(n + 1);
    assert_non_null(out);
    z_stream z = {.next_in = (Bytef *)b->body.data,
                  .avail_in = (uInt)b->body.len,
                  .next_out = out,
                  .avail_out = (uInt)n + 1};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, n);
    assert_int_equal(z.avail_in, 0);
    assert_memory_equal(out, want, n);
    inflateEnd(&z);
    free(out);
    free(want);
    ar_batch_free(b);
}

static void test_only_transient_failures_heal(void **state) {
    (void)state;
    assert_true(ar_failure_heals(AR_FAIL_CONNECT));
    assert_true(ar_failure_heals(AR_FAIL_TIMEOUT));
    assert_true(ar_failure_heals(AR_FAIL_SERVER));
    assert_true(ar_failure_heals(AR_FAIL_THROTTLE));
    assert_false(ar_failure_heals(AR_FAIL_AUTH));
    assert_false(ar_failure_heals(AR_FAIL_BUCKET));
    assert_false(ar_failure_heals(AR_FAIL_CLIENT));
    assert_string_equal(ar_failure_name(AR_FAIL_AUTH), "auth");
}

static void test_file_sink_replaces_an_object_whole(void **state) {
    (void)state;
    char dir[] = "/tmp/ar-sink-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct ar_sink *s = NULL;
    struct sl_buf err = {0};
    assert_int_equal(ar_sink_file_open(dir, false, &s, &err), 0);
    atomic_bool cancel = false;
    struct ar_put_result res = {0};
    const char *key = "api-logs/year=2026/month=12/day=02/t+0+00000000000000000001.ndjson.gz";
    assert_int_equal(s->put(s, key, "first", 5, &cancel, &res), 0);
    assert_int_equal(s->put(s, key, "two", 3, &cancel, &res), 0);
    char path[512], got[16] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, key);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, 1, sizeof got, f), 3);
    fclose(f);
    assert_string_equal(got, "two");
    s->free(s);
    sl_buf_free(&err);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_of_is_the_utc_day_and_floors_before_the_epoch),
        cmocka_unit_test(test_key_names_prefix_date_topic_partition_and_padded_first_offset),
        cmocka_unit_test(test_records_become_lines_and_the_body_gunzips_to_them),
        cmocka_unit_test(test_a_large_streamed_body_gunzips_to_every_line),
        cmocka_unit_test(test_only_transient_failures_heal),
        cmocka_unit_test(test_file_sink_replaces_an_object_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
