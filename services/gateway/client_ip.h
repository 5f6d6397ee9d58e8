/* The client's IP: the socket peer, or X-Forwarded-For when the peer is a trusted proxy. */
#ifndef SLUICE_GATEWAY_CLIENT_IP_H
#define SLUICE_GATEWAY_CLIENT_IP_H

#include <stddef.h>

#include "sluice/addr.h"
#include "sluice/buf.h"
#include "sluice/http.h"

#define GW_MAX_TRUSTED_PROXIES 64

/* Trusted proxies (SLUICE_TRUSTED_PROXIES), a plain value: no allocation. */
struct gw_proxies {
    size_t n;
    struct sl_cidr cidrs[GW_MAX_TRUSTED_PROXIES];
};

/* Parses CIDRs ("10.0.0.0/8", "::1/128", or a bare address for /32 or /128). SL_ERR_CONFIG with
 * a line in err naming the bad entry. */
int gw_proxies_init(struct gw_proxies *p, char *const *items, size_t n, struct sl_buf *err);
/* Whether an address is in any of the CIDRs. */
int gw_proxies_contains(const struct gw_proxies *p, const struct sl_addr *a);

/*
 * The client's address into *out. `peer` is the socket peer. When the peer is trusted,
 * X-Forwarded-For (`xff`, may be NULL) is read right to left and the first address that is not
 * a trusted proxy wins, so a client cannot forge its address by prepending entries; a hop that
 * does not parse stops the walk at the last good one. A peer without an IP address (a Unix
 * socket) gives AF_UNSPEC.
 */
void gw_client_ip(const struct gw_proxies *p, const struct sl_addr *peer, const char *xff,
                  size_t xff_len, struct sl_addr *out);
/* The same over a request's headers: every X-Forwarded-For line, joined in order. */
void gw_client_ip_headers(const struct gw_proxies *p, const struct sl_addr *peer,
                          const struct sl_http_header *h, size_t n, struct sl_addr *out);

#endif
