/* Raw HTTP text to a request for offline WAF evaluation (sl_waf_read_raw_request, sluice/waf.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/waf.h"

/* The next line of [p, end): its length without the CR LF / LF; *next is past the terminator. */
static size_t line(const char *p, const char *end, const char **next) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *next = nl ? nl + 1 : end;
    size_t n = (size_t)((nl ? nl : end) - p);
    if (n && p[n - 1] == '\r')
        n--;
    return n;
}

bool sl_waf_read_raw_request(const char **pp, const char *end, bool body_to_end,
                             struct sl_http_request *r, struct sl_http_header *hs, size_t max) {
    const char *p = *pp, *next;
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    if (p >= end)
        return false;
    memset(r, 0, sizeof *r);
    size_t n = line(p, end, &next);
    const char *sp1 = memchr(p, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(p + n - sp1 - 1)) : NULL;
    r->method = (struct sl_str){p, sp1 ? (size_t)(sp1 - p) : n};
    r->url = sp1 ? (struct sl_str){sp1 + 1, (size_t)((sp2 ? sp2 : p + n) - sp1 - 1)}
                 : (struct sl_str){"/", 1};
    const char *q = memchr(r->url.p, '?', r->url.len);
    r->path = (struct sl_str){r->url.p, q ? (size_t)(q - r->url.p) : r->url.len};
    r->query = q ? (struct sl_str){q + 1, r->url.len - r->path.len - 1} : (struct sl_str){"", 0};
    r->http_major = r->http_minor = 1;
    size_t content_length = 0;
    for (p = next; p < end; p = next) {
        n = line(p, end, &next);
        if (n == 0) {
            p = next;
            break;
        }
        const char *colon = memchr(p, ':', n);
        if (!colon || r->nheaders >= max)
            continue;
        const char *v = colon + 1;
        while (v < p + n && (*v == ' ' || *v == '\t'))
            v++;
        hs[r->nheaders++] =
            (struct sl_http_header){{p, (size_t)(colon - p)}, {v, (size_t)(p + n - v)}};
        if ((size_t)(colon - p) == 14 && !strncasecmp(p, "content-length", 14))
            content_length = strtoul(v, NULL, 10);
    }
    size_t left = p < end ? (size_t)(end - p) : 0;
    size_t body_len = body_to_end || content_length > left ? left : content_length;
    r->headers = hs;
    r->body = left ? p : "";
    r->body_len = body_len;
    *pp = (left ? p : end) + body_len;
    return true;
}
