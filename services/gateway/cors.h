/* CORS: the allow-list, preflight answers and the headers added to actual responses. */
#ifndef SLUICE_GATEWAY_CORS_H
#define SLUICE_GATEWAY_CORS_H

#include <stddef.h>

#include "sluice/buf.h"
#include "sluice/http.h"

#define GW_CORS_MAX_ORIGINS 64

/*
 * The CORS policy, built once from settings and immutable afterwards. Owns its strings;
 * gw_cors_free releases them. An empty origin list disables CORS entirely (no headers, and
 * OPTIONS requests go through the pipeline like any other method).
 */
struct gw_cors {
    size_t norigins;
    char *origins[GW_CORS_MAX_ORIGINS];
    char *allow_methods; /* "GET,POST,PUT,DELETE,OPTIONS" */
    char *allow_headers; /* "Content-Type,X-Amz-Date,Authorization,X-Api-Key,..." */
    char max_age[24];    /* seconds, as text; empty: no Access-Control-Max-Age */
};

/*
 * Builds the policy from a comma-separated origin list (each an exact origin such as
 * "https://app.example.com"; "*" is refused because credentials are allowed), and the
 * methods and headers lists. Returns SL_ERR_CONFIG with a message in err on a bad origin.
 */
int gw_cors_init(struct gw_cors *c, const char *origins, const char *methods, const char *headers,
                 long max_age_s, struct sl_buf *err);
void gw_cors_free(struct gw_cors *c);

/* Whether an Origin header value is on the allow-list (exact, case-sensitive match). */
int gw_cors_origin_allowed(const struct gw_cors *c, struct sl_str origin);

/*
 * A preflight is OPTIONS with Origin and Access-Control-Request-Method headers. The gateway
 * answers it itself, without a key: 204 with these headers. The allow-origin and credentials
 * headers appear only for an allowed origin. Returns the number of headers written to out
 * (at most 6).
 */
int gw_cors_is_preflight(const struct gw_cors *c, struct sl_str method, int has_origin,
                         int has_request_method);
size_t gw_cors_preflight_headers(const struct gw_cors *c, struct sl_str origin,
                                 struct sl_http_header out[6]);
/*
 * Headers for an actual response: allow-origin and credentials for an allowed origin only;
 * `Vary: Origin` on every response while CORS is on, so caches keep origins apart.
 */
size_t gw_cors_response_headers(const struct gw_cors *c, struct sl_str origin,
                                struct sl_http_header out[3]);

#endif
