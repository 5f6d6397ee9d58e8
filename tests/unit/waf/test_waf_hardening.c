/* Unit tests for the WAF's defences against its own inputs: regex flags and limits, what the
 * caches keep, and fields read as the handler reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "sluice/waf.h"
#include "waf_internal.h"

/* JSON written with single quotes (readable in C), turned into real JSON. */
static char *json_of(const char *sq) {
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static struct sl_waf *open_acl(const char *sq) {
    char *j = json_of(sq);
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf *w = NULL;
    int rc = sl_waf_open_json(NULL, j, strlen(j), &w, &err);
    if (rc)
        fprintf(stderr, "load failed: %s", err.data ? err.data : "");
    assert_int_equal(rc, 0);
    sl_buf_free(&err);
    free(j);
    return w;
}

struct req {
    struct sl_http_request r;
    struct sl_http_header h[8];
};

/* A request: target splits into path and query; body_len bytes of body (it may hold NULs);
 * headers are "Name: value" strings. */
static void mk(struct req *q, const char *target, const char *body, size_t body_len, ...) {
    memset(q, 0, sizeof *q);
    q->r.method = (struct sl_str){"POST", 4};
    q->r.url = (struct sl_str){target, strlen(target)};
    const char *qm = strchr(target, '?');
    q->r.path = (struct sl_str){target, qm ? (size_t)(qm - target) : strlen(target)};
    q->r.query = qm ? (struct sl_str){qm + 1, strlen(qm + 1)} : (struct sl_str){"", 0};
    q->r.body = body ? body : "";
    q->r.body_len = body_len;
    va_list ap;
    va_start(ap, body_len);
    const char *h;
    while ((h = va_arg(ap, const char *)) && q->r.nheaders < 8) {
        const char *colon = strchr(h, ':');
        struct sl_http_header *x = &q->h[q->r.nheaders++];
        x->name = (struct sl_str){h, (size_t)(colon - h)};
        x->value = (struct sl_str){colon + 2, strlen(colon + 2)};
    }
    va_end(ap);
    q->r.headers = q->h;
}

static bool blocked(struct sl_waf *w, struct req *q) {
    struct sl_waf_verdict v;
    sl_waf_evaluate(w, &q->r, "198.51.100.1", &v);
    return v.action == SL_WAF_BLOCK;
}

static bool blocks_path(struct sl_waf *w, const char *target) {
    struct req q;
    mk(&q, target, NULL, 0, NULL);
    return blocked(w, &q);
}

static bool blocks_body(struct sl_waf *w, const char *body, size_t n) {
    struct req q;
    mk(&q, "/", body, n, NULL);
    return blocked(w, &q);
}

#define RULE(name, prio, action, stmt)                                                             \
    "{'Name':'" name "','Priority':" #prio ",'Action':{'" action "':{}},'VisibilityConfig':{"      \
    "'MetricName':'" name "'},'Statement':" stmt "}"
#define ACL(rules)     "{'Name':'t','DefaultAction':{'Allow':{}},'Rules':[" rules "]}"
#define ONE_RULE(stmt) ACL(RULE("R", 0, "Block", stmt))
#define REGEX(re, field)                                                                           \
    "{'RegexMatchStatement':{'RegexString':'" re "','FieldToMatch':" field                         \
    ",'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"
#define ON_PATH "{'UriPath':{}}"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- regular expressions ------------------------------------------------------------------ */

static void test_inline_caseless_flag_matches_the_other_case(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(ONE_RULE(REGEX("(?i)<script", ON_PATH)));
    assert_true(blocks_path(w, "/<script"));
    assert_true(blocks_path(w, "/<SCRIPT>"));
    assert_true(blocks_path(w, "/x<ScRiPt"));
    assert_false(blocks_path(w, "/<scrip"));
    sl_waf_free(w);
    /* The flag after the first byte, and a letter that starts every match. */
    w = open_acl(ONE_RULE(REGEX("/a(?i)dmin/x", ON_PATH)));
    assert_true(blocks_path(w, "/aDMIN/X"));
    assert_false(blocks_path(w, "/ADMIN/x"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(REGEX("(?i)select", ON_PATH)));
    assert_true(blocks_path(w, "/SELECT"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(REGEX("x(?i:union)y", ON_PATH)));
    assert_true(blocks_path(w, "/xUNIONy"));
    assert_false(blocks_path(w, "/XUNIONy"));
    sl_waf_free(w);
}

static void test_caseless_unicode_mode_letters_match_outside_ascii(void **state) {
    (void)state;
    /* In UTF mode a caseless k also matches the Kelvin sign (U+212A): no 'k' byte is required. */
    struct sl_waf *w = open_acl(ONE_RULE(REGEX("(*UTF)(?i)ok", ON_PATH)));
    assert_true(blocks_path(w, "/OK"));
    assert_true(blocks_path(w, "/o\xe2\x84\xaa"));
    sl_waf_free(w);
}

static void test_catastrophic_backtracking_stops_at_the_limit_and_is_counted(void **state) {
    (void)state;
    char target[4200] = "/";
    memset(target + 1, 'a', 4096);
    target[4097] = 'b';
    target[4098] = '\0';
    struct sl_waf *w = open_acl(ONE_RULE(REGEX("^/(a+)+$", ON_PATH)));
    double t0 = now_s();
    /* A Block rule fails closed: the request PCRE2 gave up on is blocked. */
    assert_true(blocks_path(w, target));
    assert_true(now_s() - t0 < 1.0);
    assert_int_equal(sl_waf_match_errors(w), 1);
    assert_false(blocks_path(w, "/aaab"));
    assert_true(blocks_path(w, "/aaaa"));
    assert_int_equal(sl_waf_match_errors(w), 1);
    /* Not remembered as "no match": the same value errs (and blocks) again. */
    assert_true(blocks_path(w, target));
    assert_int_equal(sl_waf_match_errors(w), 2);
    /* About a million steps, within PCRE2's own default limit: within ours it is not. */
    assert_true(blocks_path(w, "/aaaaaaaaaaaaaaaaaaaab"));
    assert_int_equal(sl_waf_match_errors(w), 3);
    sl_waf_free(w);
}

static void test_a_match_error_decides_by_the_rule_action(void **state) {
    (void)state;
    char target[200] = "/";
    memset(target + 1, 'a', 60);
    target[61] = 'b';
    /* Under a Not the outcome stays unknown, and a Block rule still blocks. */
    struct sl_waf *w =
        open_acl(ONE_RULE("{'NotStatement':{'Statement':" REGEX("^/(a+)+$", ON_PATH) "}}"));
    assert_true(blocks_path(w, target));
    assert_false(blocks_path(w, "/aaaa"));
    sl_waf_free(w);
    /* An Allow rule that errs does not allow: the Block rule after it decides. */
    w = open_acl(ACL(RULE("A", 0, "Allow", REGEX("^/(a+)+$", ON_PATH)) "," RULE(
        "B", 1, "Block",
        "{'ByteMatchStatement':{'SearchString':'/a','FieldToMatch':" ON_PATH
        ",'TextTransformations':[{'Priority':0,'Type':'NONE'}],"
        "'PositionalConstraint':'STARTS_WITH'}}")));
    assert_true(blocks_path(w, target));
    assert_false(blocks_path(w, "/aaaa"));
    sl_waf_free(w);
    /* False And unknown is false: nothing to decide, nothing blocked. */
    w = open_acl(ONE_RULE("{'AndStatement':{'Statements':[" REGEX("^/(a+)+$", ON_PATH) "," REGEX(
        "zzz", ON_PATH) "]}}"));
    assert_false(blocks_path(w, target));
    assert_int_equal(sl_waf_match_errors(w), 1);
    sl_waf_free(w);
}

/* ---- what the caches keep ------------------------------------------------------------------ */

static bool holds(const void *mem, size_t len, const char *s) {
    return mem && memmem(mem, len, s, strlen(s)) != NULL;
}

/* Whether any cache of the ACL (the memo, every regex prefilter's misses) holds s. */
static bool cached_anywhere(const struct gw_waf_acl *a, const char *s) {
    if (a->memo && holds(a->memo, sizeof *a->memo, s))
        return true;
    for (size_t i = 0; i < a->nrules; i++) {
        const struct gw_waf_stmt *st = a->rules[i].stmt;
        if (st->kind != GW_STMT_REGEX)
            continue;
        size_t len;
        const void *m = gw_waf_prefilter_misses(st, &len);
        if (holds(m, len, s))
            return true;
    }
    return false;
}

/* A regex long enough to get a prefilter (64 bytes and more). */
#define LONG_RE "(?:java\\\\.lang\\\\.runtime|processbuilder|clonetransformer|forclosure|invoker)"

static void test_the_api_key_is_never_cached(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        ACL(RULE("H", 0, "Block",
                 "{'RegexMatchStatement':{'RegexString':'" LONG_RE "','FieldToMatch':{'Headers':{"
                 "'MatchPattern':{'All':{}},'MatchScope':'ALL','"
                 "OversizeHandling':'CONTINUE'}},"
                 "'TextTransformations':[{'Priority':0,'Type':'LOWERCASE'}]"
                 "}}") "," RULE("S", 1, "Block",
                                "{'"
                                "RegexMatchStat"
                                "ement':{'"
                                "RegexString':"
                                "'" LONG_RE "','"
                                "FieldToMatch':"
                                "{'"
                                "SingleHeader':"
                                "{"
                                "'Name':'x-api-"
                                "key'}},'"
                                "TextTransforma"
                                "tions':[{'"
                                "Priority':0,'"
                                "Type':'NONE'}]"
                                "}}") "," RULE("X", 2, "Block",
                                               "{'XssMatchStatement':{'"
                                               "FieldToMatch':{'"
                                               "SingleHeader':{'Name':'X-"
                                               "Api-Key'}},"
                                               "'TextTransformations':[{'"
                                               "Priority':0,'Type':'NONE'}]"
                                               "}}")));
    struct sl_waf *d = NULL;
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    assert_int_equal(sl_waf_open(NULL, &d, &err), 0); /* the shipped default ACL */
    sl_buf_free(&err);
    struct sl_waf *both[] = {w, d};
    for (size_t k = 0; k < 2; k++) {
        for (int round = 0; round < 3; round++) {
            struct req q;
            mk(&q, "/v1/items", NULL, 0, "User-Agent: test/1", "X-API-Key: SeCrEt-Key-0123",
               "Accept: application/json", NULL);
            assert_false(blocked(both[k], &q));
            mk(&q, "/v1/items", NULL, 0, "user-agent: test/1", "x-api-key: SeCrEt-Key-0123", NULL);
            assert_false(blocked(both[k], &q));
        }
        const struct gw_waf_acl *a = *(struct gw_waf_acl *const *)both[k]; /* its first field */
        assert_false(cached_anywhere(a, "SeCrEt-Key-0123"));
        assert_false(cached_anywhere(a, "secret-key-0123"));
        /* What is not a secret is still remembered. */
        assert_true(cached_anywhere(a, "application/json"));
    }
    /* The key is still inspected. */
    struct req q;
    mk(&q, "/", NULL, 0, "X-API-Key: x java.lang.Runtime", NULL);
    assert_true(blocked(w, &q));
    sl_waf_free(w);
    sl_waf_free(d);
}

/* ---- fields as the handler reads them ------------------------------------------------------ */

static void test_json_body_values_are_inspected_past_an_escaped_nul(void **state) {
    (void)state;
    struct sl_waf *w =
        open_acl(ONE_RULE("{'ByteMatchStatement':{'SearchString':'<script','FieldToMatch':{"
                          "'JsonBody':{'MatchPattern':{'All':{}},'MatchScope':'ALL'}},"
                          "'TextTransformations':[{'Priority':0,'Type':'LOWERCASE'}],"
                          "'PositionalConstraint':'CONTAINS'}}"));
    const char *esc = "{\"a\":\"x\\u0000<SCRIPT>\"}";
    assert_true(blocks_body(w, esc, strlen(esc)));
    const char *key = "{\"k\\u0000<script>\":1}";
    assert_true(blocks_body(w, key, strlen(key)));
    const char raw[] = "{\"a\":[1,\"x\0<script>\"]}";
    assert_true(blocks_body(w, raw, sizeof raw - 1));
    /* Escapes around it decode as cJSON decodes them. */
    const char *mixed = "{\"b\": [true, null, 2.5e3, {\"c\": \"\\n\\u00e9\\ud83d\\ude00\\u0000"
                        "\\u003cscript\"}]}";
    assert_true(blocks_body(w, mixed, strlen(mixed)));
    const char *clean = "{\"a\":\"x\\u0000<scrip\", \"b\": \"t\"}";
    assert_false(blocks_body(w, clean, strlen(clean)));
    sl_waf_free(w);
    /* The exact decoded bytes: the NUL and what follows it. */
    w = open_acl(ONE_RULE("{'ByteMatchStatement':{'SearchStringBase64':'eABBw6k=','FieldToMatch':"
                          "{'JsonBody':{'MatchPattern':{'IncludedPaths':['/a/1']},"
                          "'MatchScope':'VALUE'}},'TextTransformations':[{'Priority':0,'Type':"
                          "'NONE'}],'PositionalConstraint':'EXACTLY'}}"));
    const char *exact = "{\"a\": [\"x\\u0000A\\u00e9\", \"x\\u0000A\\u00e9\"]}";
    assert_true(blocks_body(w, exact, strlen(exact)));
    const char *first = "{\"a\": [\"x\\u0000A\\u00e9\", \"x\\u0000A\"]}";
    assert_false(blocks_body(w, first, strlen(first)));
    sl_waf_free(w);
}

static void test_single_query_argument_names_match_as_decoded(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'evil','FieldToMatch':{'SingleQueryArgument':{"
        "'Name':'user id'}},'TextTransformations':[{'Priority':0,'Type':'NONE'}],"
        "'PositionalConstraint':'CONTAINS'}}"));
    assert_true(blocks_path(w, "/?user%20id=evil"));
    assert_true(blocks_path(w, "/?user+id=evil"));
    assert_true(blocks_path(w, "/?%55ser%2bid=x&User%20Id=evil"));
    assert_false(blocks_path(w, "/?user_id=evil"));
    assert_false(blocks_path(w, "/?user%20id=good&other=evil"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'evil','FieldToMatch':{'SingleQueryArgument':{"
        "'Name':'id'}},'TextTransformations':[{'Priority':0,'Type':'NONE'}],"
        "'PositionalConstraint':'CONTAINS'}}"));
    assert_true(blocks_path(w, "/?%69d=evil"));
    assert_true(blocks_path(w, "/?ID=evil"));
    assert_false(blocks_path(w, "/?%69d2=evil"));
    sl_waf_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_caseless_flag_matches_the_other_case),
        cmocka_unit_test(test_caseless_unicode_mode_letters_match_outside_ascii),
        cmocka_unit_test(test_catastrophic_backtracking_stops_at_the_limit_and_is_counted),
        cmocka_unit_test(test_a_match_error_decides_by_the_rule_action),
        cmocka_unit_test(test_the_api_key_is_never_cached),
        cmocka_unit_test(test_json_body_values_are_inspected_past_an_escaped_nul),
        cmocka_unit_test(test_single_query_argument_names_match_as_decoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
