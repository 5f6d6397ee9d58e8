/* The routes file shared by the gateway and the worker (docs/internals/routes.md): method + path
 * pattern
 * -> whether a key is required, a timeout, and the handler the worker runs. */
#ifndef SLUICE_ROUTES_H
#define SLUICE_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

#define SL_ROUTES_MAX        1024
#define SL_ROUTES_MAX_PARAMS 16

enum sl_route_seg_kind { SL_SEG_LITERAL, SL_SEG_PARAM, SL_SEG_GREEDY };

struct sl_route_seg {
    enum sl_route_seg_kind kind;
    struct sl_str text; /* the literal, or the parameter name without braces and '+' */
};

/*
 * One route. All strings are owned by the table (struct sl_routes) and live until
 * sl_routes_free. `method` is an upper-case method or "ANY".
 */
struct sl_route {
    size_t index; /* position in the file, for messages */
    char *method;
    char *path; /* the pattern as written, e.g. "/items/{id}"; the envelope's `resource` */
    int api_key_required;
    int64_t timeout_ms; /* 0: the service default */
    char *handler;      /* "echo", "http" or "plugin" */
    char *upstream;     /* handler "http": base URL of the upstream; else NULL */
    char *plugin;       /* handler "plugin": path of the shared object; else NULL */
    size_t nsegs;
    struct sl_route_seg *segs;
};

/* An immutable, loaded routes table. Owned by whoever loaded it; freed by sl_routes_free. */
struct sl_routes {
    size_t n;
    struct sl_route *routes;
};

/* A path parameter found by sl_routes_match: slices into the route (name) and the path
 * (value, still percent-encoded: sl_url_decode it where a decoded value is needed). */
struct sl_route_param {
    struct sl_str name;
    struct sl_str value;
};

struct sl_route_match {
    const struct sl_route *route;
    size_t nparams;
    struct sl_route_param params[SL_ROUTES_MAX_PARAMS];
};

/*
 * Parses a routes document: {"routes": [{"method", "path", "api_key_required", "timeout_ms",
 * "handler", "upstream", "plugin"}, ...]}. Every problem is described in `err` with the JSON
 * path of the bad entry ("routes[2].path: ..."); on error nothing is allocated in *out.
 */
int sl_routes_parse(const char *json, size_t len, struct sl_routes **out, struct sl_buf *err);
int sl_routes_load_file(const char *path, struct sl_routes **out, struct sl_buf *err);
/* The built-in table, used when no routes file is set: ANY /{proxy+} -> echo, key required. */
int sl_routes_default(struct sl_routes **out);
void sl_routes_free(struct sl_routes *r);

/*
 * Finds the most specific route for a method and a path (no query string), as API Gateway
 * does: segment by segment a literal beats {param}, which beats {proxy+}; then an exact
 * method beats ANY. Returns 1 and fills *m on a match, 0 when no route matches.
 */
int sl_routes_match(const struct sl_routes *r, const char *method, size_t mlen, const char *path,
                    size_t plen, struct sl_route_match *m);

/*
 * Whether a request path (no query string) may be routed: false when a segment is "." or ".."
 * (dots also as %2e or %2E), or the path holds an encoded slash (%2f, %2F) or a backslash
 * (raw or %5c, %5C). Routing such a path would decide on one path while a normalising client
 * library or upstream uses another: "/public/../admin/x" matches a key-free "/public/{p+}" but
 * reaches "/admin/x". The gateway answers these 400 before matching.
 */
bool sl_routes_path_is_clean(const char *path, size_t len);

/*
 * Percent-decodes src into dst (at most dstlen bytes, dst need not be NUL-terminated);
 * `plus_is_space` for query strings. Returns the decoded length, or SL_ERR_PARSE on a bad
 * escape, or SL_ERR_TOO_LARGE when dst is too small.
 */
int sl_url_decode(const char *src, size_t len, char *dst, size_t dstlen, int plus_is_space);

#endif
