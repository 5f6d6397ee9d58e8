/* Unit tests for the WAF's SQL injection and XSS detectors (SqliMatch / XssMatch). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/waf_detect.h"

static bool sqli_low(const char *z) {
    return sl_waf_sqli(z, strlen(z), false);
}

static bool sqli_high(const char *z) {
    return sl_waf_sqli(z, strlen(z), true);
}

static bool xss(const char *z) {
    return sl_waf_xss(z, strlen(z));
}

/* Asserts every input of a list gives `want`, naming the one that does not. */
static void expect_all(bool (*fn)(const char *), const char *const *inputs, size_t count,
                       bool want) {
    for (size_t k = 0; k < count; k++) {
        if (fn(inputs[k]) != want)
            fail_msg("expected %s for: %s", want ? "a match" : "no match", inputs[k]);
    }
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_sqli_detects_classic_tautologies_after_a_string(void **state) {
    (void)state;
    static const char *const in[] = {
        "x' or '1'='1",         "' OR 1=1--",     "admin' or 1=1#", "-1839' or '1'='1",
        "-1839\" or \"1\"=\"2", "1' and 'a'='a",  "') or ('a'='a",  "x')) or 1=1--",
        "' or true--",          "' or sleep(5)#", "' || 1=1 --",    "1' && '1'='1",
    };
    expect_all(sqli_low, in, COUNT(in), true);
}

static void test_sqli_detects_numeric_injection(void **state) {
    (void)state;
    static const char *const in[] = {
        "1 or 1=1",
        "1234 OR 1=1",
        "-1 union select 1,2,3",
        "1; drop table users",
        "1 and sleep(5)",
        "1 AND 1=1",
        "1 order by 5",
        "1 group by concat(0x41,version())",
    };
    expect_all(sqli_low, in, COUNT(in), true);
}

static void test_sqli_detects_union_stacked_and_truncation(void **state) {
    (void)state;
    static const char *const in[] = {
        "' union select username, password from users--",
        "x' UNION ALL SELECT NULL,NULL--",
        "'; DROP TABLE users;--",
        "admin'--",
        "admin' #",
        "admin'/*",
        "'; waitfor delay '0:0:5'--",
        "'; exec xp_cmdshell 'dir'--",
        "select * from users",
        "SELECT name FROM users WHERE id=1",
        "1' into outfile '/tmp/x",
    };
    expect_all(sqli_low, in, COUNT(in), true);
}

static void test_sqli_resists_case_comments_and_whitespace(void **state) {
    (void)state;
    static const char *const in[] = {
        "' UnIoN SeLeCt 1,2--",
        "'/**/union/**/select/**/1,2--",
        "' union/*foo*/all/*bar*/select 1--",
        "'\tor\t1=1--",
        "'\nor\n1=1--",
        "'\vor\v1=1--",
        "'\for\f1=1--",
        "'\ror\r1=1--",
        "' or 1=1 -- trailing comment",
        "1 /*!50000union*/ /*!50000select*/ 1",
        "1/*!UNION*/SELECT 1",
        "'or'1'='1",
        "x'oR'a'LIKE'a",
        "-1 union#\ndistinctrow\vselect 1",
        "1union select 1",
    };
    expect_all(sqli_low, in, COUNT(in), true);
}

static void test_sqli_detects_concatenation_and_encoded_literals(void **state) {
    (void)state;
    static const char *const in[] = {
        "2010-01-01'+sleep(20)+'",
        "x'||pg_sleep(5)||'",
        "'+char(39)+'",
        "' or 0x41=0x41--",
        "' or char(97)=char(97)--",
        "' or benchmark(10000000,md5(1))#",
        "1 and extractvalue(1,concat(0x7e,version()))",
        "' and @@version>5--",
        "x' or x'41'=x'41",
        "admin\\' or 1=1--",
        "select pg_sleep(5)",
        "' or 1=1 into outfile 'x'",
    };
    expect_all(sqli_low, in, COUNT(in), true);
}

static void test_sqli_leaves_prose_names_and_data_alone(void **state) {
    (void)state;
    static const char *const in[] = {
        "it's",
        "O'Brien",
        "O'Brien and O'Neil",
        "Rock 'n' roll or jazz",
        "I don't like it or it's fine",
        "McDonald's and Wendy's",
        "john.doe@example.com",
        "alice+tag@mail.example.org",
        "{\"name\":\"O'Brien\",\"q\":\"cats and dogs\",\"n\":5}",
        "{\"x\":\"1\",\"and\":\"2\"}",
        "cats and dogs",
        "black or white",
        "between 3 and 5",
        "Union Square",
        "Die \"Union von Europa\"",
        "select the best option from the list",
        "Delete from cart",
        "2024-01-15",
        "12345",
        "3.14159",
        "https://example.com/search?q=a+b&page=2",
        "Please update me, it's urgent",
        "Bob said \"hi\" and left",
        "1 < 2 and 3 > 2",
        "sleep (8 hours) is healthy",
        "Order #5 is ready",
        "\"hello\" or \"world\"",
    };
    expect_all(sqli_low, in, COUNT(in), false);
}

static void test_sqli_high_sensitivity_adds_weaker_shapes(void **state) {
    (void)state;
    /* Shapes LOW lets through and HIGH flags. */
    assert_false(sqli_low("Union Square"));
    assert_false(sqli_low("1 union"));
    assert_true(sqli_high("1 union"));
    assert_false(sqli_low("x' or y"));
    assert_true(sqli_high("x' or y"));
    assert_false(sqli_low("1 or 2"));
    assert_true(sqli_high("1 or 2"));
    /* HIGH keeps everything LOW finds. */
    assert_true(sqli_high("' or 1=1--"));
    /* and still passes ordinary text. */
    assert_false(sqli_high("it's"));
    assert_false(sqli_high("john.doe@example.com"));
    assert_false(sqli_high("cats and dogs"));
}

static void test_sqli_handles_empty_and_embedded_nul(void **state) {
    (void)state;
    assert_false(sl_waf_sqli("", 0, false));
    assert_false(sl_waf_sqli(NULL, 0, true));
    /* A NUL is a separator, not the end: the length decides. */
    static const char nul[] = "'\0or\0001=1--";
    assert_true(sl_waf_sqli(nul, sizeof nul - 1, false));
    /* Reading stops at n: the attack after the limit is not seen. */
    static const char cut[] = "hello' or 1=1--";
    assert_false(sl_waf_sqli(cut, 5, false));
}

static void test_xss_detects_dangerous_tags(void **state) {
    (void)state;
    static const char *const in[] = {
        "<script>alert(1)</script>",
        "<ScRiPt>alert(1)</sCrIpT>",
        "<script src=//evil.example/x.js></script>",
        "\"><script>alert(1)</script>",
        "'><svg/onload=alert(1)>",
        "<iframe src=\"//evil\"></iframe>",
        "<object data=x>",
        "<embed src=x.swf>",
        "<svg><animate onbegin=alert(1)>",
        "<math><mtext>",
        "<base href=//evil/>",
        "<meta http-equiv=\"refresh\" content=\"0;url=//evil\">",
        "<link rel=import href=x>",
        "<style>@import'//evil'</style>",
        "<scr<script>ipt>alert(1)</script>",
        "<x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "%3Cscript%3Ealert(1)%3C/script%3E",
        "\\x3cscript\\x3ealert(1)",
        "\\u003cscript\\u003e",
        "\xef\xbc\x9cscript\xef\xbc\x9e",
        "+ADw-script+AD4-alert(1)",
    };
    expect_all(xss, in, COUNT(in), true);
}

static void test_xss_detects_event_handlers_and_script_urls(void **state) {
    (void)state;
    static const char *const in[] = {
        "<img src=x onerror=alert(1)>",
        "<IMG SRC=x OnErRoR=alert(1)>",
        "<img/src=\"x\"/onerror=alert(1)>",
        "<body onload=alert(1)>",
        "<div onmouseover=\"alert(1)\">x</div>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
        "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "<a href=\"jav\tascript:alert(1)\">x</a>",
        "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">",
        "<a href=\"&#x6A;avascript&colon;alert(1)\">",
        "<a href=\" \x01javascript:alert(1)\">",
        "<iframe/src=\"data:text/html,<script>alert(1)</script>\">",
        "<a href=\"vbscript:msgbox(1)\">",
        "<form><button formaction=javascript:alert(1)>x",
        "<div style=\"width:expression(alert(1))\">",
        "<div style=\"background:url(javascript:alert(1))\">",
        "<iframe srcdoc=\"&lt;img src=x onerror=alert(1)&gt;\">",
        "<svg onload=alert(1)//",
        "javascript:alert(document.cookie)",
        "ja&tab;vascript:alert(1)",
    };
    expect_all(xss, in, COUNT(in), true);
}

static void test_xss_detects_attribute_and_script_breakouts(void **state) {
    (void)state;
    static const char *const in[] = {
        "\" onmouseover=\"alert(1)",
        "' onfocus='alert(1)' autofocus='",
        "\" autofocus onfocus=alert(1) x=\"",
        "';alert(1)//",
        "\";alert(1);//",
        "'-alert(1)-'",
        "\\';alert(String.fromCharCode(88,83,83))//",
        "\"+confirm`1`+\"",
        "document.cookie",
        "document/*x*/./*y*/cookie",
        "window[\"alert\"](1)",
        "alert(1)",
        "[].sort.call`${alert}1337`",
        "{{constructor.constructor('alert(1)')()}}",
        "(![]+[])[+!+[]]",
        "Reflect.apply.call`${navigation.navigate}${navigation}${[name]}`",
        "new Function('alert(1)')()",
        "new  Function (\"x\")",
    };
    expect_all(xss, in, COUNT(in), true);
}

static void test_xss_detects_xml_includes_ssi_and_vml(void **state) {
    (void)state;
    static const char *const in[] = {
        "<acp xmlns:xi=\"http://www.w3.org/2001/XInclude\"><xi:include href=\"http://x.example/"
        "foo\"/></acp>",
        "<a xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        "xsi:schemaLocation=\"http://a.b/"
        " http://x.example/a.xsd\">a</a>",
        "<r xsi:noNamespaceSchemaLocation=\"http://x.example/r.xsd\"/>",
        "<!--#exec cmd=\"id\"-->",
        "x<!--#include virtual=\"/etc/passwd\"-->",
        "<!--#set var=\"a\" value=\"b\"-->",
        "<:vmlframe src=\"x\">",
    };
    expect_all(xss, in, COUNT(in), true);
}

static void test_xss_leaves_text_urls_markup_and_json_alone(void **state) {
    (void)state;
    static const char *const in[] = {
        "hello world",
        "1<2 and 3>2",
        "a < b",
        "if x<y then",
        "O'Brien's \"quoted\" text",
        "Let's meet; alert me later",
        "Set an alert (daily) for 9am",
        "https://example.com/path?q=javascript+tutorial&page=2",
        "http://example.com/a.js",
        "<b>bold</b> and <i>italic</i>",
        "<a href=\"https://example.com/\">link</a>",
        "<p class=\"note\">text</p>",
        "**bold** _italic_ `code` [link](https://example.com) ![img](x.png)",
        "{\"onload\":\"x\",\"document\":\"cookie\",\"style\":\"expression\"}",
        "{\"name\":\"script\",\"type\":\"iframe\"}",
        "<john@example.com>",
        "regular expression (regex) matching",
        "the document cookie policy",
        "onion=3",
        "5 &lt; 6 &amp;&amp; 7 &gt; 6",
        "Q&amp;A",
        "data: the new oil",
        "über straße",
        "<?xml version=\"1.0\"?><root><a probe=\"1\">x</a></root>",
        "<!-- a comment --> <!--#not a directive-->",
        "a new function (the fourth) was added",
        "obj.call(this, x)",
        "<ns:item id=\"1\">x</ns:item>",
    };
    expect_all(xss, in, COUNT(in), false);
}

static void test_xss_handles_empty_and_truncation(void **state) {
    (void)state;
    assert_false(sl_waf_xss("", 0));
    assert_false(sl_waf_xss(NULL, 0));
    static const char cut[] = "<scr"
                              "ipt>";
    assert_false(sl_waf_xss(cut, 4)); /* "<scr" */
    assert_true(sl_waf_xss(cut, 8));
    /* Entities cut at the end of input are read as far as they go, never past it. */
    assert_false(sl_waf_xss("&#x", 3));
    assert_false(sl_waf_xss("&#", 2));
    assert_false(sl_waf_xss("%3", 2));
    assert_false(sl_waf_xss("\\u00", 4));
}

/* Long inputs of repeating openers must stay fast: a quadratic scan would take minutes here. */
static void test_detectors_are_linear_on_adversarial_repetition(void **state) {
    (void)state;
    static char big[1 << 20];
    static const char *const units[] = {"<a ",    "'",         "/*", "&#", " or ",
                                        "<a b='", "document ", "!",  "$",  "j\t"};
    for (size_t u = 0; u < COUNT(units); u++) {
        size_t len = strlen(units[u]), n = 0;
        while (n + len <= sizeof big) {
            memcpy(big + n, units[u], len);
            n += len;
        }
        (void)sl_waf_sqli(big, n, true);
        (void)sl_waf_sqli(big, n, false);
        (void)sl_waf_xss(big, n);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqli_detects_classic_tautologies_after_a_string),
        cmocka_unit_test(test_sqli_detects_numeric_injection),
        cmocka_unit_test(test_sqli_detects_union_stacked_and_truncation),
        cmocka_unit_test(test_sqli_resists_case_comments_and_whitespace),
        cmocka_unit_test(test_sqli_detects_concatenation_and_encoded_literals),
        cmocka_unit_test(test_sqli_leaves_prose_names_and_data_alone),
        cmocka_unit_test(test_sqli_high_sensitivity_adds_weaker_shapes),
        cmocka_unit_test(test_sqli_handles_empty_and_embedded_nul),
        cmocka_unit_test(test_xss_detects_dangerous_tags),
        cmocka_unit_test(test_xss_detects_event_handlers_and_script_urls),
        cmocka_unit_test(test_xss_detects_attribute_and_script_breakouts),
        cmocka_unit_test(test_xss_detects_xml_includes_ssi_and_vml),
        cmocka_unit_test(test_xss_leaves_text_urls_markup_and_json_alone),
        cmocka_unit_test(test_xss_handles_empty_and_truncation),
        cmocka_unit_test(test_detectors_are_linear_on_adversarial_repetition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
