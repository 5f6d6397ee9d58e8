/* IP addresses as data: socket addresses, text and CIDR networks to one binary form and back. */
#include "sluice/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "sluice/error.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void set_v4(struct sl_addr *a, const void *four) {
    memset(a, 0, sizeof *a);
    a->family = AF_INET;
    memcpy(a->bytes, four, 4);
}

/* An IPv6 address, or the IPv4 address it maps (see struct sl_addr). */
static void set_v6(struct sl_addr *a, const void *sixteen) {
    const uint8_t *b = sixteen;
    if (memcmp(b, v4_mapped, sizeof v4_mapped) == 0) {
        set_v4(a, b + 12);
        return;
    }
    a->family = AF_INET6;
    memcpy(a->bytes, b, 16);
}

int sl_addr_from_sockaddr(struct sl_addr *a, uint16_t *port, const struct sockaddr *sa) {
    uint16_t p = 0;
    int rc = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        set_v4(a, &in->sin_addr);
        p = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        set_v6(a, &in6->sin6_addr);
        p = ntohs(in6->sin6_port);
    } else {
        memset(a, 0, sizeof *a);
        a->family = AF_UNSPEC;
        rc = -EAFNOSUPPORT;
    }
    if (port)
        *port = p;
    return rc;
}

int sl_addr_parse(struct sl_addr *a, const char *s, size_t len) {
    char tmp[SL_ADDR_TEXT_MAX];
    uint8_t b[16];
    memset(a, 0, sizeof *a);
    a->family = AF_UNSPEC;
    /* inet_pton wants a C string; no address in text form is longer than INET6_ADDRSTRLEN. */
    if (len == 0 || len >= sizeof tmp)
        return SL_ERR_PARSE;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET, tmp, b) == 1) {
        set_v4(a, b);
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, b) == 1) {
        set_v6(a, b);
        return 0;
    }
    return SL_ERR_PARSE;
}

/*
 * IPv4 is formatted here rather than with inet_ntop, which goes through the stdio formatting
 * machinery: the gateway formats one client address per request.
 */
static size_t format_v4(const uint8_t b[4], char *out) {
    char *w = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (i)
            *w++ = '.';
        if (v >= 100)
            *w++ = (char)('0' + v / 100);
        if (v >= 10)
            *w++ = (char)('0' + v / 10 % 10);
        *w++ = (char)('0' + v % 10);
    }
    *w = '\0';
    return (size_t)(w - out);
}

size_t sl_addr_format(const struct sl_addr *a, char out[SL_ADDR_TEXT_MAX]) {
    if (a->family == AF_INET)
        return format_v4(a->bytes, out);
    if (a->family == AF_INET6 && inet_ntop(AF_INET6, a->bytes, out, SL_ADDR_TEXT_MAX))
        return strlen(out);
    out[0] = '\0';
    return 0;
}

int sl_addr_equal(const struct sl_addr *a, const struct sl_addr *b) {
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

int sl_addr_parse_cidr(struct sl_cidr *c, const char *s, size_t len) {
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    memset(c, 0, sizeof *c);
    if (sl_addr_parse(&c->addr, s, alen) < 0)
        return SL_ERR_PARSE;
    int max = c->addr.family == AF_INET ? 32 : 128;
    c->prefix = max;
    if (!slash)
        return 0;
    const char *d = slash + 1, *end = s + len;
    int v = 0;
    if (d == end || end - d > 3)
        goto bad;
    for (; d < end; d++) {
        if (*d < '0' || *d > '9')
            goto bad;
        v = v * 10 + (*d - '0');
    }
    if (v > max)
        goto bad;
    c->prefix = v;
    return 0;
bad:
    memset(c, 0, sizeof *c);
    c->addr.family = AF_UNSPEC;
    return SL_ERR_PARSE;
}

int sl_addr_in_cidr(const struct sl_cidr *c, const struct sl_addr *a) {
    if (a->family == AF_UNSPEC || c->addr.family != a->family)
        return 0;
    size_t full = (size_t)c->prefix / 8;
    int rest = c->prefix % 8;
    if (memcmp(c->addr.bytes, a->bytes, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr.bytes[full] & mask) == (a->bytes[full] & mask);
}
