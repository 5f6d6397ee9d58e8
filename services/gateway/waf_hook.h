/* The pipeline's WAF step: a compiled AWS WAFv2 web ACL, kept current, judging each request. */
#ifndef SLUICE_GATEWAY_WAF_HOOK_H
#define SLUICE_GATEWAY_WAF_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/buf.h"
#include "sluice/http.h"

struct sl_metrics;

enum gw_waf_action { GW_WAF_ALLOW = 0, GW_WAF_BLOCK, GW_WAF_COUNT };

#define GW_WAF_MAX_LABELS 16

/*
 * A decision for one request. Strings are borrowed from the web ACL, which outlives every
 * request that saw it (a replaced ACL is kept for an hour, longer than any request lives).
 * A BLOCK with `custom_status` 0 answers the error table's 403.
 */
struct gw_waf_verdict {
    enum gw_waf_action action;
    const char *rule; /* terminating rule name, "Default_Action" when none matched */
    size_t nlabels;
    const char *labels[GW_WAF_MAX_LABELS];
    int custom_status;
    struct sl_str custom_body;
    /* ---- WAF engine additions ---- */
    const char *group_rule; /* the rule inside a managed group that terminated, else NULL */
    const struct sl_http_header *custom_headers; /* Content-Type + x-amzn-waf-* of a custom
                                                    response (pass as extra headers) */
    size_t ncustom_headers;
};

/* How the WAF is made. Zero values mean the default in brackets. */
struct gw_waf_opts {
    uv_loop_t *loop;            /* [NULL: no file watching] */
    const char *acl_file;       /* [NULL: the shipped default web ACL, data/waf/default-acl.json] */
    struct sl_metrics *metrics; /* [NULL: no metrics]; borrowed, must outlive the WAF */
    int64_t (*clock_ms)(void *data); /* [CLOCK_MONOTONIC]; rate-based windows run on it */
    void *clock_data;
    size_t rate_capacity; /* [16384] addresses tracked per rate-based rule */
    bool memo_off;        /* [false] no memo of values seen before (tests compare with it) */
};

/*
 * The WAF as the pipeline sees it: the web ACL in force plus what keeps it current. With a
 * loop and a file it watches the file's directory and stats it every second (as the keys file
 * is watched) and reloads on change and on gw_waf_reload (SIGHUP); a document that does not
 * load is logged with its JSON paths and counted, and the ACL in force stays.
 *
 * Lifecycle: gw_waf_open -> gw_waf_evaluate per request -> gw_waf_close (with a loop: the
 * handles close, then the object is freed and cb runs) or gw_waf_free (without a loop).
 * Threading: one loop thread; evaluation uses scratch buffers owned by the object.
 */
struct gw_waf;

/* Loads the ACL (file or default). On error appends "<file>: <json path>: <reason>" lines to
 * err and returns SL_ERR_PARSE (or a negative errno from reading). */
int gw_waf_open(const struct gw_waf_opts *o, struct gw_waf **out, struct sl_buf *err);
/* The same from a document in memory (tests, sluicectl); never watches. */
int gw_waf_open_json(const struct gw_waf_opts *o, const char *json, size_t len, struct gw_waf **out,
                     struct sl_buf *err);
/* Re-reads the file now; 0 when the new ACL is in force, else the error (the old one stays). */
int gw_waf_reload(struct gw_waf *w);
void gw_waf_close(struct gw_waf *w, void (*cb)(void *data), void *data);
void gw_waf_free(struct gw_waf *w);

void gw_waf_evaluate(struct gw_waf *w, const struct sl_http_request *req, const char *client_ip,
                     struct gw_waf_verdict *out);
const char *gw_waf_action_name(enum gw_waf_action a);
/* The ACL's name and rule count (logs, sluicectl). */
const char *gw_waf_name(const struct gw_waf *w);
size_t gw_waf_rule_count(const struct gw_waf *w);
/* Statement checks the ACL in force answered from its memo of values seen before (waf/waf.h). */
uint64_t gw_waf_memo_hits(const struct gw_waf *w);

/*
 * Offline evaluation (`sluicectl waf eval`, bench/waf): reads one request from raw HTTP/1.x
 * text at *pp (before end) into r, leniently. This is not the server's parser on purpose: the
 * CRS regression corpus holds malformed requests that ModSecurity still evaluates, and an
 * operator pastes requests by hand. Blank lines before a request are skipped; a request line
 * without a space is all method, with URL "/"; header lines without a colon are skipped, and
 * at most max headers are kept (in hs, which r points to). The body is Content-Length bytes (at
 * most what is left), or with body_to_end everything after the blank line. *pp moves past the
 * request. false: nothing but blank lines was left.
 */
bool gw_waf_read_raw_request(const char **pp, const char *end, bool body_to_end,
                             struct sl_http_request *r, struct sl_http_header *hs, size_t max);

#endif
