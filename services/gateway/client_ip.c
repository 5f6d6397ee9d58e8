/* Client IP resolution with trusted proxies (DESIGN.md §4, WAF: client IP). */
#include "client_ip.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

/* Parses an address (no port) of at most 63 bytes into family + bytes. */
static int parse_addr(const char *s, size_t len, int *family, uint8_t addr[16]) {
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        /* An IPv4-mapped IPv6 address is the IPv4 address. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(addr, mapped, 12)) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        } else {
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

int gw_proxies_init(struct gw_proxies *p, char *const *items, size_t n, struct sl_buf *err) {
    memset(p, 0, sizeof *p);
    if (n > GW_MAX_TRUSTED_PROXIES) {
        sl_buf_printf(err, "SLUICE_TRUSTED_PROXIES: more than %d entries\n",
                      GW_MAX_TRUSTED_PROXIES);
        return SL_ERR_CONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = items[i];
        const char *slash = strchr(s, '/');
        size_t alen = slash ? (size_t)(slash - s) : strlen(s);
        struct gw_cidr *c = &p->cidrs[i];
        if (parse_addr(s, alen, &c->family, c->addr) < 0)
            goto bad;
        int max = c->family == AF_INET ? 32 : 128;
        c->prefix = max;
        if (slash) {
            char *end;
            long v = strtol(slash + 1, &end, 10);
            if (slash[1] == '\0' || *end || v < 0 || v > max)
                goto bad;
            c->prefix = (int)v;
        }
        p->n++;
        continue;
    bad:
        sl_buf_printf(err, "SLUICE_TRUSTED_PROXIES: \"%s\" is not an address or CIDR\n", s);
        return SL_ERR_CONFIG;
    }
    return 0;
}

static int cidr_contains(const struct gw_cidr *c, int family, const uint8_t addr[16]) {
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, (size_t)full))
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static int contains(const struct gw_proxies *p, int family, const uint8_t addr[16]) {
    for (size_t i = 0; i < p->n; i++)
        if (cidr_contains(&p->cidrs[i], family, addr))
            return 1;
    return 0;
}

int gw_proxies_contains(const struct gw_proxies *p, const char *ip, size_t len) {
    int family;
    uint8_t addr[16];
    return parse_addr(ip, len, &family, addr) == 0 && contains(p, family, addr);
}

/* Splits "ip:port" / "[v6]:port" into the address part. */
static void peer_host(const char *peer, const char **host, size_t *len) {
    if (peer[0] == '[') {
        const char *close = strchr(peer, ']');
        *host = peer + 1;
        *len = close ? (size_t)(close - peer - 1) : 0;
        return;
    }
    const char *colon = strrchr(peer, ':');
    *host = peer;
    *len = colon ? (size_t)(colon - peer) : strlen(peer);
}

static void write_ip(int family, const uint8_t addr[16], char out[INET6_ADDRSTRLEN]) {
    if (!inet_ntop(family, addr, out, INET6_ADDRSTRLEN))
        out[0] = '\0';
}

/*
 * The socket peer of the previous request, parsed and formatted: consecutive requests mostly come
 * from one address (keep-alive connections, a load balancer in front), and inet_ntop is a
 * sprintf. One entry per thread (the gateway's loop is one thread).
 */
static _Thread_local struct {
    char host[64];
    size_t len;
    int family;
    uint8_t addr[16];
    char out[INET6_ADDRSTRLEN];
} last_peer;

void gw_client_ip(const struct gw_proxies *p, const char *peer, const char *xff, size_t xff_len,
                  char out[INET6_ADDRSTRLEN]) {
    const char *host;
    size_t hlen;
    int family;
    uint8_t addr[16];
    peer_host(peer, &host, &hlen);
    if (hlen && hlen == last_peer.len && memcmp(host, last_peer.host, hlen) == 0) {
        family = last_peer.family;
        memcpy(addr, last_peer.addr, sizeof addr);
        memcpy(out, last_peer.out, INET6_ADDRSTRLEN);
    } else {
        if (parse_addr(host, hlen, &family, addr) < 0) {
            out[0] = '\0';
            return;
        }
        write_ip(family, addr, out);
        if (hlen < sizeof last_peer.host) {
            memcpy(last_peer.host, host, hlen);
            last_peer.len = hlen;
            last_peer.family = family;
            memcpy(last_peer.addr, addr, sizeof addr);
            memcpy(last_peer.out, out, INET6_ADDRSTRLEN);
        }
    }
    if (!xff || !contains(p, family, addr))
        return;
    /* Right to left: the nearest hop first; stop at the first address we do not trust. */
    size_t end = xff_len;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        const char *s = xff + start;
        size_t len = end - start;
        while (len && (*s == ' ' || *s == '\t'))
            s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        int f2;
        uint8_t a2[16];
        if (parse_addr(s, len, &f2, a2) < 0)
            return; /* garbage: keep the last trusted hop */
        write_ip(f2, a2, out);
        if (!contains(p, f2, a2))
            return;
        end = start ? start - 1 : 0;
    }
}
