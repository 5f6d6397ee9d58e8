/* The WAF engine: a compiled AWS WAFv2 web ACL, kept current, judging each request. */
#ifndef SLUICE_WAF_H
#define SLUICE_WAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/buf.h"
#include "sluice/http.h"

struct sl_metrics;

enum sl_waf_action { SL_WAF_ALLOW = 0, SL_WAF_BLOCK, SL_WAF_COUNT };

#define SL_WAF_MAX_LABELS 16

/*
 * A decision for one request. Strings are borrowed from the web ACL, which outlives every
 * request that saw it (a replaced ACL is kept for an hour, longer than any request lives).
 * A BLOCK with `custom_status` 0 is answered with the caller's own 403 (the gateway's error
 * table).
 */
struct sl_waf_verdict {
    enum sl_waf_action action;
    const char *rule; /* terminating rule name, "Default_Action" when none matched */
    size_t nlabels;
    const char *labels[SL_WAF_MAX_LABELS];
    int custom_status;
    struct sl_str custom_body;
    const char *group_rule; /* the rule inside a managed group that terminated, else NULL */
    const struct sl_http_header *custom_headers; /* Content-Type + x-amzn-waf-* of a custom
                                                    response (pass as extra headers) */
    size_t ncustom_headers;
};

/* How the WAF is made. Zero values mean the default in brackets. */
struct sl_waf_opts {
    uv_loop_t *loop;            /* [NULL: no file watching] */
    const char *acl_file;       /* [NULL: the shipped default web ACL, data/waf/default-acl.json] */
    struct sl_metrics *metrics; /* [NULL: no metrics]; borrowed, must outlive the WAF */
    int64_t (*clock_ms)(void *data); /* [CLOCK_MONOTONIC]; rate-based windows run on it */
    void *clock_data;
    size_t rate_capacity; /* [16384] addresses tracked per rate-based rule */
    bool memo_off;        /* [false] no memo of values seen before (tests compare with it) */
    /* [false: from any peer] Forwarded-IP statements (FORWARDED_IP, IPSetForwardedIPConfig) read
     * their header only when the request's socket peer is in trusted_proxies (the gateway's
     * SLUICE_TRUSTED_PROXIES, as for the client address); from another peer it counts as absent.
     * The list is borrowed and must outlive the WAF. */
    bool forwarded_from_trusted_only;
    const struct sl_cidr *trusted_proxies;
    size_t ntrusted_proxies;
};

/*
 * The WAF as its users hold it: the web ACL in force plus what keeps it current. With a
 * loop and a file it watches the file's directory and stats it every second (as the keys file
 * is watched) and reloads on change and on sl_waf_reload (the gateway's SIGHUP); a document that
 * does not load is logged with its JSON paths and counted, and the ACL in force stays.
 *
 * Lifecycle: sl_waf_open -> sl_waf_evaluate per request -> sl_waf_close (with a loop: the
 * handles close, then the object is freed and cb runs) or sl_waf_free (without a loop).
 * Threading: one loop thread; evaluation uses scratch buffers owned by the object.
 */
struct sl_waf;

/* Loads the ACL (file or default). On error appends "<file>: <json path>: <reason>" lines to
 * err and returns SL_ERR_PARSE (or a negative errno from reading). */
int sl_waf_open(const struct sl_waf_opts *o, struct sl_waf **out, struct sl_buf *err);
/* The same from a document in memory (tests, sluicectl); never watches. */
int sl_waf_open_json(const struct sl_waf_opts *o, const char *json, size_t len, struct sl_waf **out,
                     struct sl_buf *err);
/* Re-reads the file now; 0 when the new ACL is in force, else the error (the old one stays). */
int sl_waf_reload(struct sl_waf *w);
void sl_waf_close(struct sl_waf *w, void (*cb)(void *data), void *data);
void sl_waf_free(struct sl_waf *w);

void sl_waf_evaluate(struct sl_waf *w, const struct sl_http_request *req, const char *client_ip,
                     struct sl_waf_verdict *out);
const char *sl_waf_action_name(enum sl_waf_action a);
/* The ACL's name and rule count (logs, sluicectl). */
const char *sl_waf_name(const struct sl_waf *w);
size_t sl_waf_rule_count(const struct sl_waf *w);
/* Statement checks the ACL in force answered from its memo of values seen before (docs/waf.md). */
uint64_t sl_waf_memo_hits(const struct sl_waf *w);
/* Regex evaluations PCRE2 ended with an error since the WAF opened (docs/waf.md). */
uint64_t sl_waf_match_errors(const struct sl_waf *w);

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
bool sl_waf_read_raw_request(const char **pp, const char *end, bool body_to_end,
                             struct sl_http_request *r, struct sl_http_header *hs, size_t max);

#endif
