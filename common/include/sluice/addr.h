/* IP addresses as data: read once from a socket or text, then compared and matched as bytes. */
#ifndef SLUICE_ADDR_H
#define SLUICE_ADDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* The longest text sl_addr_format writes, with its NUL (INET6_ADDRSTRLEN). */
#define SL_ADDR_TEXT_MAX 46

/*
 * An IP address, a plain value. `family` is AF_INET (the address in bytes[0..4)), AF_INET6
 * (bytes[0..16)) or AF_UNSPEC (no IP address: a Unix socket's peer, or nothing parsed yet).
 * Unused bytes are zero. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is always stored as the
 * IPv4 address it maps, so a dual-stack listener's IPv4 clients compare, match and print as
 * IPv4.
 */
struct sl_addr {
    int family;
    uint8_t bytes[16];
};

/* A network: the first `prefix` bits of `addr` (0..32 for IPv4, 0..128 for IPv6). */
struct sl_cidr {
    struct sl_addr addr;
    int prefix;
};

/*
 * The address and port of an AF_INET or AF_INET6 socket address; for any other family `*a` is
 * AF_UNSPEC, `*port` 0 and the result -EAFNOSUPPORT. `port` may be NULL.
 */
int sl_addr_from_sockaddr(struct sl_addr *a, uint16_t *port, const struct sockaddr *sa);

/*
 * Parses an IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1") address from s[0..len), no port, no
 * brackets, no zone. Returns 0, or SL_ERR_PARSE with `*a` AF_UNSPEC.
 */
int sl_addr_parse(struct sl_addr *a, const char *s, size_t len);

/*
 * Writes the address as text into out (NUL-terminated): dotted quad for IPv4, RFC 5952 form for
 * IPv6, "" for AF_UNSPEC. Returns the length written (without the NUL).
 */
size_t sl_addr_format(const struct sl_addr *a, char out[SL_ADDR_TEXT_MAX]);

/* Whether two addresses are the same (same family, same bytes). */
int sl_addr_equal(const struct sl_addr *a, const struct sl_addr *b);

/*
 * Parses "addr/prefix" from s[0..len), or a bare address for a single host (/32, /128). Bits of
 * the address past the prefix are ignored when matching. Returns 0 or SL_ERR_PARSE.
 */
int sl_addr_parse_cidr(struct sl_cidr *c, const char *s, size_t len);

/* Whether `a` is inside the network `c` (never for different families, nor for AF_UNSPEC). */
int sl_addr_in_cidr(const struct sl_cidr *c, const struct sl_addr *a);

#endif
