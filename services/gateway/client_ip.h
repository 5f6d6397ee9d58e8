/* The client's IP: the socket peer, or X-Forwarded-For when the peer is a trusted proxy. */
#ifndef SLUICE_GATEWAY_CLIENT_IP_H
#define SLUICE_GATEWAY_CLIENT_IP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

#define GW_MAX_TRUSTED_PROXIES 64

struct gw_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix;
};

/* Trusted proxies (SLUICE_TRUSTED_PROXIES), a plain value: no allocation. */
struct gw_proxies {
    size_t n;
    struct gw_cidr cidrs[GW_MAX_TRUSTED_PROXIES];
};

/* Parses CIDRs ("10.0.0.0/8", "::1/128", or a bare address for /32 or /128). SL_ERR_CONFIG with
 * a line in err naming the bad entry. */
int gw_proxies_init(struct gw_proxies *p, char *const *items, size_t n, struct sl_buf *err);
/* Whether a textual address is in any of the CIDRs. */
int gw_proxies_contains(const struct gw_proxies *p, const char *ip, size_t len);

/*
 * Writes the client IP to out (NUL-terminated, at most INET6_ADDRSTRLEN bytes). `peer` is the
 * socket peer ("ip:port" or "[v6]:port"). When the peer is trusted, X-Forwarded-For (`xff`, may
 * be NULL) is read right to left and the first address that is not a trusted proxy wins, so a
 * client cannot forge its address by prepending entries. Anything unparsable falls back to the
 * peer.
 */
void gw_client_ip(const struct gw_proxies *p, const char *peer, const char *xff, size_t xff_len,
                  char out[INET6_ADDRSTRLEN]);

#endif
