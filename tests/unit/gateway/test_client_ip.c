/* Unit tests for client IP resolution behind trusted proxies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "client_ip.h"
#include "sluice/error.h"

static void init(struct gw_proxies *p, const char *a, const char *b) {
    char *items[] = {(char *)a, (char *)b};
    struct sl_buf err;
    sl_buf_init(&err, 512);
    assert_int_equal(gw_proxies_init(p, items, b ? 2 : 1, &err), 0);
    sl_buf_free(&err);
}

/* Resolves with the peer given as text (an address, or "" for a peer without one). */
static const char *resolve(const struct gw_proxies *p, const char *peer, const char *xff,
                           char out[SL_ADDR_TEXT_MAX]) {
    struct sl_addr a = {.family = AF_UNSPEC}, client;
    if (*peer)
        assert_int_equal(sl_addr_parse(&a, peer, strlen(peer)), 0);
    gw_client_ip(p, &a, xff, xff ? strlen(xff) : 0, &client);
    sl_addr_format(&client, out);
    return out;
}

static int contains(const struct gw_proxies *p, const char *ip) {
    struct sl_addr a;
    assert_int_equal(sl_addr_parse(&a, ip, strlen(ip)), 0);
    return gw_proxies_contains(p, &a);
}

static void test_untrusted_peer_is_the_client_whatever_xff_says(void **state) {
    (void)state;
    struct gw_proxies p;
    init(&p, "10.0.0.0/8", NULL);
    char out[SL_ADDR_TEXT_MAX];
    assert_string_equal(resolve(&p, "203.0.113.9", "1.2.3.4", out), "203.0.113.9");
    assert_string_equal(resolve(&p, "2001:db8::1", NULL, out), "2001:db8::1");
}

static void test_trusted_peer_yields_rightmost_untrusted_forwarded_address(void **state) {
    (void)state;
    struct gw_proxies p;
    init(&p, "10.0.0.0/8", "127.0.0.1");
    char out[SL_ADDR_TEXT_MAX];
    /* A client prepends a forged entry; the proxies appended the real one. */
    assert_string_equal(resolve(&p, "127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", out),
                        "198.51.100.7");
    assert_string_equal(resolve(&p, "10.9.9.9", "198.51.100.8", out), "198.51.100.8");
    /* Only trusted hops: the leftmost one is as far as we can see. */
    assert_string_equal(resolve(&p, "10.9.9.9", "10.0.0.1,10.0.0.2", out), "10.0.0.1");
    /* Garbage stops the walk at the last good hop. */
    assert_string_equal(resolve(&p, "10.9.9.9", "garbage", out), "10.9.9.9");
    assert_string_equal(resolve(&p, "::ffff:127.0.0.1", "192.0.2.1", out), "192.0.2.1");
}

/* One resolution never leaks into the next: the same peer under other trust, another peer, a
 * peer without an address. */
static void test_each_resolution_stands_alone(void **state) {
    (void)state;
    struct gw_proxies trusting, none;
    init(&trusting, "127.0.0.1", NULL);
    init(&none, "10.0.0.0/8", NULL);
    char out[SL_ADDR_TEXT_MAX];
    assert_string_equal(resolve(&trusting, "127.0.0.1", "198.51.100.7", out), "198.51.100.7");
    assert_string_equal(resolve(&none, "127.0.0.1", "198.51.100.7", out), "127.0.0.1");
    assert_string_equal(resolve(&trusting, "127.0.0.1", NULL, out), "127.0.0.1");
    assert_string_equal(resolve(&trusting, "127.0.0.10", "198.51.100.7", out), "127.0.0.10");
    assert_string_equal(resolve(&trusting, "127.0.0.1", "198.51.100.9", out), "198.51.100.9");
    assert_string_equal(resolve(&none, "::ffff:127.0.0.1", NULL, out), "127.0.0.1");
    /* A Unix socket's peer has no address, and forwarded-for does not give it one. */
    assert_string_equal(resolve(&none, "", NULL, out), "");
    assert_string_equal(resolve(&trusting, "", "198.51.100.7", out), "");
}

/* Resolves over header lines as a request carries them: X-Forwarded-For lines among others. */
static const char *resolve_lines(const struct gw_proxies *p, const char *peer,
                                 const struct sl_http_header *h, size_t n,
                                 char out[SL_ADDR_TEXT_MAX]) {
    struct sl_addr a, client;
    assert_int_equal(sl_addr_parse(&a, peer, strlen(peer)), 0);
    gw_client_ip_headers(p, &a, h, n, &client);
    sl_addr_format(&client, out);
    return out;
}

static void test_every_forwarded_for_line_counts_the_last_first(void **state) {
    (void)state;
    struct gw_proxies p;
    init(&p, "10.0.0.0/8", NULL);
    char out[SL_ADDR_TEXT_MAX];
    /* The client forged a first line; the trusted proxy appended a line of its own. */
    const struct sl_http_header two[] = {
        {SL_STR("X-Forwarded-For"), SL_STR("6.6.6.6")},
        {SL_STR("Host"), SL_STR("t")},
        {SL_STR("x-forwarded-for"), SL_STR("198.51.100.7")},
    };
    assert_string_equal(resolve_lines(&p, "10.0.0.1", two, 3, out), "198.51.100.7");
    /* Trusted hops on the last line lead into the line before. */
    const struct sl_http_header chain[] = {
        {SL_STR("X-Forwarded-For"), SL_STR("6.6.6.6, 198.51.100.8")},
        {SL_STR("X-Forwarded-For"), SL_STR("10.2.2.2, 10.3.3.3")},
    };
    assert_string_equal(resolve_lines(&p, "10.0.0.1", chain, 2, out), "198.51.100.8");
    /* An untrusted peer: no line is read. */
    assert_string_equal(resolve_lines(&p, "203.0.113.9", two, 3, out), "203.0.113.9");
    assert_string_equal(resolve_lines(&p, "10.0.0.1", two + 1, 1, out), "10.0.0.1");
}

static void test_prefixes_are_bit_exact(void **state) {
    (void)state;
    struct gw_proxies p;
    init(&p, "192.168.4.0/22", "2001:db8::/33");
    assert_true(contains(&p, "192.168.7.255"));
    assert_false(contains(&p, "192.168.8.0"));
    assert_true(contains(&p, "2001:db8:7fff::1"));
    assert_false(contains(&p, "2001:db8:8000::1"));
}

static void test_bad_cidrs_are_named(void **state) {
    (void)state;
    struct gw_proxies p;
    char *items[] = {"10.0.0.0/33"};
    struct sl_buf err;
    sl_buf_init(&err, 512);
    assert_int_equal(gw_proxies_init(&p, items, 1, &err), SL_ERR_CONFIG);
    assert_string_equal(err.data,
                        "SLUICE_TRUSTED_PROXIES: \"10.0.0.0/33\" is not an address or CIDR\n");
    sl_buf_free(&err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_untrusted_peer_is_the_client_whatever_xff_says),
        cmocka_unit_test(test_trusted_peer_yields_rightmost_untrusted_forwarded_address),
        cmocka_unit_test(test_each_resolution_stands_alone),
        cmocka_unit_test(test_every_forwarded_for_line_counts_the_last_first),
        cmocka_unit_test(test_prefixes_are_bit_exact),
        cmocka_unit_test(test_bad_cidrs_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
