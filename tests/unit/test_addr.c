/* Unit tests for IP addresses as data: socket addresses, text, CIDR networks. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "sluice/addr.h"
#include "sluice/error.h"

/* Parses and formats back, for round trips written as one line. */
static const char *roundtrip(const char *text, char out[SL_ADDR_TEXT_MAX]) {
    struct sl_addr a;
    if (sl_addr_parse(&a, text, strlen(text)) < 0)
        return "(error)";
    sl_addr_format(&a, out);
    return out;
}

static int in_cidr(const char *cidr, const char *ip) {
    struct sl_cidr c;
    struct sl_addr a;
    assert_int_equal(sl_addr_parse_cidr(&c, cidr, strlen(cidr)), 0);
    assert_int_equal(sl_addr_parse(&a, ip, strlen(ip)), 0);
    return sl_addr_in_cidr(&c, &a);
}

static void test_text_round_trips_in_canonical_form(void **state) {
    (void)state;
    char out[SL_ADDR_TEXT_MAX];
    assert_string_equal(roundtrip("203.0.113.9", out), "203.0.113.9");
    assert_string_equal(roundtrip("0.0.0.0", out), "0.0.0.0");
    assert_string_equal(roundtrip("255.255.255.255", out), "255.255.255.255");
    assert_string_equal(roundtrip("10.100.1.0", out), "10.100.1.0");
    assert_string_equal(roundtrip("2001:DB8:0:0:0:0:0:1", out), "2001:db8::1");
    assert_string_equal(roundtrip("::1", out), "::1");
    /* An IPv4-mapped address is the IPv4 address. */
    assert_string_equal(roundtrip("::ffff:127.0.0.1", out), "127.0.0.1");
}

static void test_parse_refuses_ports_brackets_and_garbage(void **state) {
    (void)state;
    const char *bad[] = {"",           "1.2.3.4:80",  "[::1]",    "1.2.3",
                         "256.1.1.1",  "not-an-addr", " 1.2.3.4", "1.2.3.4 ",
                         "fe80::1%lo", "1.2.3.4/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sl_addr a = {.family = AF_INET};
        assert_int_equal(sl_addr_parse(&a, bad[i], strlen(bad[i])), SL_ERR_PARSE);
        assert_int_equal(a.family, AF_UNSPEC);
    }
    /* Only the slice is read: the bytes after it do not count. */
    struct sl_addr a;
    assert_int_equal(sl_addr_parse(&a, "10.0.0.1,10.0.0.2", 8), 0);
    char out[SL_ADDR_TEXT_MAX];
    sl_addr_format(&a, out);
    assert_string_equal(out, "10.0.0.1");
    char longer[80];
    memset(longer, '1', sizeof longer);
    assert_int_equal(sl_addr_parse(&a, longer, sizeof longer), SL_ERR_PARSE);
}

static void test_socket_addresses_give_address_and_port(void **state) {
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(5555)};
    inet_pton(AF_INET, "198.51.100.7", &in.sin_addr);
    struct sl_addr a;
    uint16_t port = 0;
    char out[SL_ADDR_TEXT_MAX];
    assert_int_equal(sl_addr_from_sockaddr(&a, &port, (const struct sockaddr *)&in), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(port, 5555);
    assert_int_equal(sl_addr_format(&a, out), strlen("198.51.100.7"));
    assert_string_equal(out, "198.51.100.7");

    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &in6.sin6_addr);
    assert_int_equal(sl_addr_from_sockaddr(&a, &port, (const struct sockaddr *)&in6), 0);
    assert_int_equal(a.family, AF_INET); /* a dual-stack listener's IPv4 client */
    assert_int_equal(port, 443);
    sl_addr_format(&a, out);
    assert_string_equal(out, "192.0.2.1");

    inet_pton(AF_INET6, "2001:db8::2", &in6.sin6_addr);
    assert_int_equal(sl_addr_from_sockaddr(&a, NULL, (const struct sockaddr *)&in6), 0);
    assert_int_equal(a.family, AF_INET6);
    sl_addr_format(&a, out);
    assert_string_equal(out, "2001:db8::2");

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_int_equal(sl_addr_from_sockaddr(&a, &port, (const struct sockaddr *)&un), -EAFNOSUPPORT);
    assert_int_equal(a.family, AF_UNSPEC);
    assert_int_equal(port, 0);
    assert_int_equal(sl_addr_format(&a, out), 0);
    assert_string_equal(out, "");
}

static void test_equal_compares_family_and_bytes(void **state) {
    (void)state;
    struct sl_addr a, b, c;
    assert_int_equal(sl_addr_parse(&a, "127.0.0.1", 9), 0);
    assert_int_equal(sl_addr_parse(&b, "::ffff:127.0.0.1", 16), 0);
    assert_int_equal(sl_addr_parse(&c, "::127.0.0.1", 11), 0);
    assert_true(sl_addr_equal(&a, &b));
    assert_false(sl_addr_equal(&a, &c));
}

static void test_cidr_prefixes_are_bit_exact(void **state) {
    (void)state;
    assert_true(in_cidr("192.168.4.0/22", "192.168.7.255"));
    assert_false(in_cidr("192.168.4.0/22", "192.168.8.0"));
    assert_true(in_cidr("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(in_cidr("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(in_cidr("0.0.0.0/0", "203.0.113.1"));
    assert_false(in_cidr("0.0.0.0/0", "::1")); /* never across families */
    /* Bits past the prefix are ignored; a bare address is one host. */
    assert_true(in_cidr("10.1.2.3/8", "10.200.0.1"));
    assert_true(in_cidr("127.0.0.1", "127.0.0.1"));
    assert_false(in_cidr("127.0.0.1", "127.0.0.2"));
    assert_true(in_cidr("::1", "::1"));
    struct sl_cidr c;
    struct sl_addr none = {.family = AF_UNSPEC};
    assert_int_equal(sl_addr_parse_cidr(&c, "0.0.0.0/0", 9), 0);
    assert_false(sl_addr_in_cidr(&c, &none));
}

static void test_cidr_parse_refuses_bad_prefixes(void **state) {
    (void)state;
    const char *bad[] = {"10.0.0.0/33", "::/129",      "10.0.0.0/",
                         "10.0.0.0/8x", "10.0.0.0/-1", "10.0.0.0/0008",
                         "/8",          "10.0.0/8",    "::ffff:10.0.0.0/104"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sl_cidr c;
        assert_int_equal(sl_addr_parse_cidr(&c, bad[i], strlen(bad[i])), SL_ERR_PARSE);
    }
    struct sl_cidr c;
    assert_int_equal(sl_addr_parse_cidr(&c, "10.0.0.0/8", 10), 0);
    assert_int_equal(c.addr.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(sl_addr_parse_cidr(&c, "2001:db8::", 10), 0);
    assert_int_equal(c.prefix, 128);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_round_trips_in_canonical_form),
        cmocka_unit_test(test_parse_refuses_ports_brackets_and_garbage),
        cmocka_unit_test(test_socket_addresses_give_address_and_port),
        cmocka_unit_test(test_equal_compares_family_and_bytes),
        cmocka_unit_test(test_cidr_prefixes_are_bit_exact),
        cmocka_unit_test(test_cidr_parse_refuses_bad_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
