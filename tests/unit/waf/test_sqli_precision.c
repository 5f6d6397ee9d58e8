/* Precision of the WAF's detectors on ordinary API traffic, and the attacks they still catch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/buf.h"
#include "sluice/waf.h"
#include "sluice/waf_detect.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Asserts the detector's verdict on every input at both sensitivities, naming the one that
 * differs. `high_only` inputs are only asserted at HIGH. */
static void expect(const char *const *in, size_t count, bool want, bool low_too) {
    for (size_t k = 0; k < count; k++) {
        if (sl_waf_sqli(in[k], strlen(in[k]), true) != want)
            fail_msg("HIGH: expected %s for: %s", want ? "a match" : "no match", in[k]);
        if (low_too && sl_waf_sqli(in[k], strlen(in[k]), false) != want)
            fail_msg("LOW: expected %s for: %s", want ? "a match" : "no match", in[k]);
    }
}

static void prose(const char *const *in, size_t count) {
    expect(in, count, false, true);
}

static void attacks(const char *const *in, size_t count) {
    expect(in, count, true, true);
}

/* ---- prose that was blocked and now passes ------------------------------------------------ */

static void test_sentences_opening_with_a_statement_verb_pass(void **state) {
    (void)state;
    static const char *const in[] = {
        "select the best one from our list",
        "Select the size from the chart: S (13-18), M, L.",
        "update billing address",
        "delete old photos",
        "Delete from my cart the item I added twice, thanks.",
        "insert coin arcade machine",
        "Insert the batteries (AA x 4) before you start",
        "Select size 'M' if you're between sizes",
        "drop shipping suppliers",
        "Drop me a line when the 12\" version is back in stock.",
        "drop table top for picnic",
        "create account",
        "declare variable javascript",
        "shutdown timer app",
        "Exec summary: the product is great; delivery was not.",
    };
    prose(in, COUNT(in));
}

static void test_inch_and_foot_marks_pass(void **state) {
    (void)state;
    static const char *const in[] = {
        "She's 4'10\" -- will the 20\" bike fit?",
        "My height is 5'11\" and my weight 180 lb -- which size?",
        "If you're 6'2\" or taller, size up.",
        "Drill bit set (1/16\" - 1/2\")",
        "Sit/stand; 28\"-47\" height range.",
        "5 m / 16.4'; 300 LEDs; cut every 2\".",
        "Desk 60\" x 30\"",
        "Is the 50\" or the 55\" better for a 12' x 14' room?",
        "name=Nora D'Angelo&comment=My height is 5'11\" and my weight 180 lb -- which size?",
    };
    prose(in, COUNT(in));
}

static void test_quoted_words_in_sentences_pass(void **state) {
    (void)state;
    static const char *const in[] = {
        "The 'select all' checkbox doesn't work on the orders page.",
        "Hi team -- the 'where' field on the event form is required but hidden.",
        "Why is 'Union Square' listed twice in store locations?",
        "Set the default to 'metric' -- I don't use inches or feet.",
    };
    prose(in, COUNT(in));
}

static void test_json_documents_are_read_string_by_string(void **state) {
    (void)state;
    static const char *const in[] = {
        "{\"filename\": \"scan (1).pdf\", \"content_type\": \"application/pdf\"}",
        "{\"message\": \"The 'select all' checkbox doesn't work\", \"priority\": \"low\"}",
        "{\"name\": \"Desk 60\\\" x 30\\\"\", \"qty\": 2, \"gift\": true, \"note\": null}",
        "[{\"q\": \"order by price\"}, {\"q\": \"delete my account\"}]",
        "{\"t\": \"the \\u0027select all\\u0027 box\", \"n\": -1.5e3}",
    };
    prose(in, COUNT(in));
}

static void test_code_snippets_ranges_and_colons_pass(void **state) {
    (void)state;
    static const char *const in[] = {
        "for attempt in range(3):\n    time.sleep(2 ** attempt)\n",
        "Thread.sleep(100 * n);",
        "Deliver between 9 and 5.",
        "Note: the box was empty.",
    };
    prose(in, COUNT(in));
}

/* ---- attacks that must still be caught ---------------------------------------------------- */

static void test_tautologies_are_caught(void **state) {
    (void)state;
    static const char *const in[] = {
        "' or 1=1--",       "x' or 'a'='a",  "1 or 1=1",       "1' or '1'='1",
        "1\" or \"1\"=\"1", "') or ('a'='a", "admin' or 1=1#", "' || 1=1 --",
    };
    attacks(in, COUNT(in));
}

static void test_union_select_is_caught(void **state) {
    (void)state;
    static const char *const in[] = {
        "' union select username, password from users--",
        "-1 union select 1,2,3",
        "1' UNION ALL SELECT NULL,NULL--",
        "1/*!UNION*/SELECT 1",
    };
    attacks(in, COUNT(in));
}

static void test_stacked_queries_are_caught(void **state) {
    (void)state;
    static const char *const in[] = {
        "1; drop table users",
        "'; DROP TABLE users;--",
        "'; exec xp_cmdshell 'dir'--",
        "{ \"; select\": \"foo\" }",
    };
    attacks(in, COUNT(in));
}

static void test_comment_terminated_injections_are_caught(void **state) {
    (void)state;
    static const char *const in[] = {"admin'--", "admin' #", "admin\"/*", "x\" -- "};
    attacks(in, COUNT(in));
}

static void test_time_and_error_based_injections_are_caught(void **state) {
    (void)state;
    static const char *const in[] = {
        "1 and sleep(5)",
        "'; waitfor delay '0:0:5'--",
        "1' and pg_sleep(5)--",
        "' or benchmark(10000000,md5(1))#",
        "1 and extractvalue(1,concat(0x7e,version()))",
        "2010-01-01'+sleep(20)+'",
    };
    attacks(in, COUNT(in));
}

static void test_injections_inside_json_are_caught(void **state) {
    (void)state;
    static const char *const in[] = {
        "{\"id\": \"1' or '1'='1\"}",
        "{\"q\": \"x\\\" union select password from users--\"}",
        "[1, {\"k\": [\"admin'--\"]}]",
        "{\"1' or 1=1--\": 1}",
        "{\"a\": 1} or 1=1",
        "{\"a\": \"b\"}; drop table users",
    };
    attacks(in, COUNT(in));
}

static void test_system_objects_and_definitions_are_caught(void **state) {
    (void)state;
    static const char *const low[] = {"information_schema", "pg_catalog", "MSysAccessObjects"};
    attacks(low, COUNT(low));
    static const char *const high[] = {
        "DROP TABLE users",
        "DROP sampletable;--",
        "CREATE FUNCTION hello (s CHAR(20)) RETURNS CHAR(50)",
        "ALTER TABLE `mails` ADD `video` TEXT",
        "exec master..xp_cmdshell",
        "x' or y",
        "'UNION A",
    };
    expect(high, COUNT(high), true, false);
}

/* ---- the same through web ACLs ------------------------------------------------------------ */

static const char sqli_acl[] =
    "{\"Name\":\"t\",\"DefaultAction\":{\"Allow\":{}},\"Rules\":[{\"Name\":\"SQLi\",\"Priority\":1,"
    "\"OverrideAction\":{\"None\":{}},\"Statement\":{\"ManagedRuleGroupStatement\":{"
    "\"VendorName\":\"AWS\",\"Name\":\"AWSManagedRulesSQLiRuleSet\"}},\"VisibilityConfig\":{"
    "\"MetricName\":\"SQLi\"}}]}";

static bool post_blocked(struct sl_waf *w, const char *target, const char *body) {
    struct sl_http_header h[] = {
        {.name = {"User-Agent", 10}, .value = {"test/1", 6}},
        {.name = {"Content-Type", 12}, .value = {"application/json", 16}},
    };
    const char *qm = strchr(target, '?');
    struct sl_http_request r = {
        .method = {"POST", 4},
        .url = {target, strlen(target)},
        .path = {target, qm ? (size_t)(qm - target) : strlen(target)},
        .query = qm ? (struct sl_str){qm + 1, strlen(qm + 1)} : (struct sl_str){"", 0},
        .headers = h,
        .nheaders = COUNT(h),
        .body = body,
        .body_len = strlen(body),
    };
    struct sl_waf_verdict v;
    sl_waf_evaluate(w, &r, "198.51.100.1", &v);
    return v.action == SL_WAF_BLOCK;
}

static void test_default_acl_blocks_xss_in_a_json_string_value(void **state) {
    (void)state;
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    struct sl_waf *w;
    assert_int_equal(sl_waf_open(&(struct sl_waf_opts){0}, &w, &err), 0);
    /* JSON escapes the attribute's quotes; the page gets them back once the value is decoded. */
    assert_true(
        post_blocked(w, "/v1/comments", "{\"c\":\"<a href=\\\"javascript:alert(1)\\\">x</a>\"}"));
    assert_true(post_blocked(w, "/v1/comments",
                             "{\"c\":\"<form action=\\\"javascript:alert(1)\\\"><input>\"}"));
    assert_true(post_blocked(w, "/v1/comments", "{\"u\":\"<a href='java\\tscript:x()'>\"}"));
    /* Markup and measurements in JSON strings stay allowed. */
    assert_false(post_blocked(w, "/v1/comments",
                              "{\"c\":\"<a href=\\\"https://example.com/\\\">docs</a>\"}"));
    assert_false(post_blocked(w, "/v1/products", "{\"size\":\"12\\\" x 16\\\"\",\"n\":2}"));
    sl_waf_free(w);
    sl_buf_free(&err);
}

static void test_sqli_group_reads_json_prose_and_finds_json_injection(void **state) {
    (void)state;
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    struct sl_waf *w;
    assert_int_equal(sl_waf_open_json(NULL, sqli_acl, strlen(sqli_acl), &w, &err), 0);
    assert_false(post_blocked(w, "/v1/tickets",
                              "{\"subject\":\"Refund -- urgent\",\"message\":\"The 'select all' "
                              "box doesn't work. Hi team -- the 'where' field is hidden.\"}"));
    assert_false(post_blocked(w, "/v1/search?q=select+the+best+one+from+our+list", ""));
    assert_false(post_blocked(w, "/v1/search?q=She%27s+4%2710%22+--+will+the+20%22+bike+fit", ""));
    assert_true(post_blocked(w, "/v1/tickets", "{\"id\":\"1' or '1'='1\"}"));
    assert_true(
        post_blocked(w, "/v1/search?q=1%27%20union%20select%20password%20from%20users--", ""));
    sl_waf_free(w);
    sl_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentences_opening_with_a_statement_verb_pass),
        cmocka_unit_test(test_inch_and_foot_marks_pass),
        cmocka_unit_test(test_quoted_words_in_sentences_pass),
        cmocka_unit_test(test_json_documents_are_read_string_by_string),
        cmocka_unit_test(test_code_snippets_ranges_and_colons_pass),
        cmocka_unit_test(test_tautologies_are_caught),
        cmocka_unit_test(test_union_select_is_caught),
        cmocka_unit_test(test_stacked_queries_are_caught),
        cmocka_unit_test(test_comment_terminated_injections_are_caught),
        cmocka_unit_test(test_time_and_error_based_injections_are_caught),
        cmocka_unit_test(test_injections_inside_json_are_caught),
        cmocka_unit_test(test_system_objects_and_definitions_are_caught),
        cmocka_unit_test(test_default_acl_blocks_xss_in_a_json_string_value),
        cmocka_unit_test(test_sqli_group_reads_json_prose_and_finds_json_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
