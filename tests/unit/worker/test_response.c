/* Unit tests of the reply a handler's response becomes: repeated header names, failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "handlers/handlers.h"
#include "plugin.h"
#include "sluice/envelope.h"
#include "sluice/error.h"

static void add(struct wk_response *r, const char *name, const char *value) {
    assert_int_equal(wk_response_add_header(r, name, strlen(name), value, strlen(value)), 0);
}

static void assert_values(const struct sl_envelope_field *f, const char *name, size_t n,
                          const char *const *values) {
    assert_int_equal(f->name.len, strlen(name));
    assert_memory_equal(f->name.p, name, f->name.len);
    assert_int_equal(f->n_values, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(f->values[i].len, strlen(values[i]));
        assert_memory_equal(f->values[i].p, values[i], f->values[i].len);
    }
}

static void test_repeated_header_names_become_one_field_with_every_value(void **state) {
    (void)state;
    struct wk_response r;
    wk_response_init(&r, 1 << 16);
    r.status = 200;
    add(&r, "Set-Cookie", "a=1; Path=/");
    add(&r, "Content-Type", "text/plain");
    add(&r, "Set-Cookie", "b=2; HttpOnly");
    add(&r, "set-cookie", "c=3"); /* another name in the envelope: names compare as bytes */
    add(&r, "Set-Cookie", "d=4");
    struct sl_buf out;
    sl_buf_init(&out, 1 << 20);
    assert_int_equal(wk_response_encode(&r, SL_STR("req-1"), &out), 0);

    struct sl_envelope_reply rep;
    struct sl_envelope_limits lim = sl_envelope_limits_default(1 << 16);
    struct sl_envelope_error err;
    assert_int_equal(sl_envelope_decode_reply(out.data, out.len, &lim, &rep, &err), 0);
    assert_int_equal(rep.status, 200);
    assert_int_equal(rep.headers.n, 3);
    assert_values(&rep.headers.fields[0], "Set-Cookie", 3,
                  (const char *const[]){"a=1; Path=/", "b=2; HttpOnly", "d=4"});
    assert_values(&rep.headers.fields[1], "Content-Type", 1, (const char *const[]){"text/plain"});
    assert_values(&rep.headers.fields[2], "set-cookie", 1, (const char *const[]){"c=3"});
    sl_envelope_reply_free(&rep);
    sl_buf_free(&out);
    wk_response_free(&r);
}

static const char *check_name(const char *name) {
    struct sluice_pair_v1 h = {{name, strlen(name)}, {"v", 1}};
    struct sluice_response_v1 r = {.status = 200, .headers = &h, .n_headers = 1};
    return wk_plugin_reply_invalid(&r);
}

static void test_plugin_header_names_must_be_tokens(void **state) {
    (void)state;
    assert_null(check_name("X-Ok_1.~!#$%&'*+^`|"));
    /* Bytes the ABI forbids in a name: not only CR, LF, ':' and SP (found by fuzz_worker_reply). */
    const char *const bad[] = {"X\xff-A", "X\tA", "X(A)",  "X\"A", "X/A", "X@A", "X,A",
                               "X=A",     "X{A}", "X\x7f", "X:A",  "X A", "X\rA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_string_equal(check_name(bad[i]), "a header name or value with forbidden characters");
    struct sluice_pair_v1 nul = {{"X\0A", 3}, {"v", 1}};
    struct sluice_response_v1 r = {.status = 200, .headers = &nul, .n_headers = 1};
    assert_non_null(wk_plugin_reply_invalid(&r));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_header_names_become_one_field_with_every_value),
        cmocka_unit_test(test_plugin_header_names_must_be_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
