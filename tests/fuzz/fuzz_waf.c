/* libFuzzer target: arbitrary web ACL documents and arbitrary requests through the WAF engine. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/http.h"
#include "sluice/waf.h"

/*
 * Input: an ACL document, a NUL byte, then a raw request ("METHOD target\n" + "Name: value\n"
 * lines + an empty line + body). Without a NUL the whole input is the request, judged by the
 * shipped default ACL, which is where most of the matching code lives. A document that loads
 * evaluates the request too; one that does not must say why. Each request is judged three times
 * by the ACL and by the same ACL without its memo of values seen before (waf/src/waf_internal.h):
 * the verdicts, rule names and labels must be the same.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 64

static size_t next_line(const char *p, const char *end, const char **next) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *next = nl ? nl + 1 : end;
    return (size_t)((nl ? nl : end) - p);
}

static void parse(const char *p, const char *end, struct sl_http_request *r,
                  struct sl_http_header *hs) {
    memset(r, 0, sizeof *r);
    const char *next;
    size_t n = next_line(p, end, &next);
    const char *sp = memchr(p, ' ', n);
    r->method = (struct sl_str){p, sp ? (size_t)(sp - p) : n};
    r->url = sp ? (struct sl_str){sp + 1, (size_t)(p + n - sp - 1)} : (struct sl_str){"/", 1};
    const char *q = memchr(r->url.p, '?', r->url.len);
    r->path = (struct sl_str){r->url.p, q ? (size_t)(q - r->url.p) : r->url.len};
    r->query = q ? (struct sl_str){q + 1, r->url.len - r->path.len - 1} : (struct sl_str){"", 0};
    for (p = next; p < end;) {
        n = next_line(p, end, &next);
        if (n == 0) {
            p = next;
            break;
        }
        const char *colon = memchr(p, ':', n);
        if (colon && r->nheaders < MAX_HEADERS)
            hs[r->nheaders++] = (struct sl_http_header){{p, (size_t)(colon - p)},
                                                        {colon + 1, (size_t)(p + n - colon - 1)}};
        p = next;
    }
    r->headers = hs;
    r->body = p < end ? p : "";
    r->body_len = p < end ? (size_t)(end - p) : 0;
}

static int64_t clock_ms(void *data) {
    return (int64_t)(uintptr_t)data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The request must not point into libFuzzer's buffer past `size`: copy into our own. */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *nul = memchr(buf, '\0', size);
    struct sl_waf_opts o = {
        .clock_ms = clock_ms, .clock_data = (void *)(uintptr_t)size, .rate_capacity = 64};
    struct sl_waf *w = NULL;
    struct sl_buf err;
    sl_buf_init(&err, 1 << 20);
    /* The same ACL without its memo of values seen before: every verdict must agree. */
    struct sl_waf_opts o0 = o;
    o0.memo_off = true;
    struct sl_waf *w0 = NULL;
    const char *req = buf;
    int rc;
    if (nul) {
        rc = sl_waf_open_json(&o, buf, (size_t)(nul - buf), &w, &err);
        if (rc < 0 && (!err.data || !err.len))
            abort(); /* every refusal names a path and a reason */
        if (rc == 0 && sl_waf_open_json(&o0, buf, (size_t)(nul - buf), &w0, &err) != 0)
            abort();
        req = nul + 1;
    } else {
        rc = sl_waf_open(&o, &w, &err);
        if (rc == 0 && sl_waf_open(&o0, &w0, &err) != 0)
            abort();
    }
    if (rc == 0) {
        struct sl_http_request r;
        struct sl_http_header hs[MAX_HEADERS];
        parse(req, buf + size, &r, hs);
        struct sl_waf_verdict v, v0;
        for (int i = 0; i < 3; i++) { /* rate-based rules see repeats; the memo answers */
            const char *ip = i ? "2001:db8::1" : "192.0.2.1";
            sl_waf_evaluate(w, &r, ip, &v);
            sl_waf_evaluate(w0, &r, ip, &v0);
            if (!v.rule || v.nlabels > SL_WAF_MAX_LABELS)
                abort();
            if (v.action != v0.action || strcmp(v.rule, v0.rule) || v.nlabels != v0.nlabels ||
                (v.group_rule ? !v0.group_rule || strcmp(v.group_rule, v0.group_rule)
                              : v0.group_rule != NULL))
                abort();
            for (size_t k = 0; k < v.nlabels; k++)
                if (strcmp(v.labels[k], v0.labels[k]))
                    abort();
        }
        sl_waf_free(w);
        sl_waf_free(w0);
    }
    sl_buf_free(&err);
    free(buf);
    return 0;
}
