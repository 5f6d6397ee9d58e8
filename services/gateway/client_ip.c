/* Client IP resolution with trusted proxies: the socket peer, or the forwarded-for chain. */
#include "client_ip.h"

#include <string.h>

#include "sluice/error.h"

int gw_proxies_init(struct gw_proxies *p, char *const *items, size_t n, struct sl_buf *err) {
    memset(p, 0, sizeof *p);
    if (n > GW_MAX_TRUSTED_PROXIES) {
        sl_buf_printf(err, "SLUICE_TRUSTED_PROXIES: more than %d entries\n",
                      GW_MAX_TRUSTED_PROXIES);
        return SL_ERR_CONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (sl_addr_parse_cidr(&p->cidrs[i], items[i], strlen(items[i])) < 0) {
            sl_buf_printf(err, "SLUICE_TRUSTED_PROXIES: \"%s\" is not an address or CIDR\n",
                          items[i]);
            return SL_ERR_CONFIG;
        }
        p->n++;
    }
    return 0;
}

int gw_proxies_contains(const struct gw_proxies *p, const struct sl_addr *a) {
    for (size_t i = 0; i < p->n; i++)
        if (sl_addr_in_cidr(&p->cidrs[i], a))
            return 1;
    return 0;
}

/*
 * Walks one X-Forwarded-For value right to left from the hop *out holds, the nearest first, and
 * stops at the first address that is not trusted. Returns 1 when every hop on it was trusted, so
 * the walk goes on into the line before.
 */
static int walk_line(const struct gw_proxies *p, const char *xff, size_t xff_len,
                     struct sl_addr *out) {
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
        struct sl_addr hop;
        if (sl_addr_parse(&hop, s, len) < 0)
            return 0; /* garbage: keep the last trusted hop */
        *out = hop;
        if (!gw_proxies_contains(p, &hop))
            return 0;
        end = start ? start - 1 : 0;
    }
    return 1;
}

void gw_client_ip(const struct gw_proxies *p, const struct sl_addr *peer, const char *xff,
                  size_t xff_len, struct sl_addr *out) {
    *out = *peer;
    if (xff && gw_proxies_contains(p, peer))
        walk_line(p, xff, xff_len, out);
}

void gw_client_ip_headers(const struct gw_proxies *p, const struct sl_addr *peer,
                          const struct sl_http_header *h, size_t n, struct sl_addr *out) {
    *out = *peer;
    if (!gw_proxies_contains(p, peer))
        return;
    /* Lines are one list in order (RFC 9110 5.3): a proxy that appends a line of its own must
     * not let a forged first line win, so the walk starts at the last line. */
    for (size_t i = n; i-- > 0;)
        if (sl_str_eq_nocase(h[i].name, "x-forwarded-for") &&
            !walk_line(p, h[i].value.p, h[i].value.len, out))
            return;
}
