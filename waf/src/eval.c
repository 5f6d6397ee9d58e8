/* Evaluating a compiled web ACL against one request: statements, rule actions, labels. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "sluice/waf_detect.h"
#include "sluice/metrics.h"
#include "waf_internal.h"

static bool is_word(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* CONTAINS_WORD: the string with non-word characters (or the ends) on both sides. */
static bool contains_word(const char *p, size_t n, const char *w, size_t wn) {
    if (wn > n)
        return false;
    for (size_t i = 0; i + wn <= n; i++) {
        if (memcmp(p + i, w, wn) != 0)
            continue;
        bool left = i == 0 || !is_word((unsigned char)p[i - 1]);
        bool right = i + wn == n || !is_word((unsigned char)p[i + wn]);
        if (left && right)
            return true;
    }
    return false;
}

static bool byte_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p, size_t n) {
    (void)c;
    const char *w = s->u.byte.s;
    size_t wn = s->u.byte.n;
    switch (s->u.byte.pos) {
    case GW_POS_EXACTLY:
        return n == wn && memcmp(p, w, n) == 0;
    case GW_POS_STARTS_WITH:
        return n >= wn && memcmp(p, w, wn) == 0;
    case GW_POS_ENDS_WITH:
        return n >= wn && memcmp(p + n - wn, w, wn) == 0;
    case GW_POS_CONTAINS:
        return wn == 0 || (n >= wn && memmem(p, n, w, wn) != NULL);
    case GW_POS_CONTAINS_WORD:
        return contains_word(p, n, w, wn);
    }
    return false;
}

/* Whether p[0..n) holds byte b, or its other case when PCRE2 may compare it caselessly. */
static bool holds(const char *p, size_t n, int b, int other) {
    return memchr(p, b, n) || (other >= 0 && memchr(p, other, n));
}

static bool regex_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p,
                        size_t n) {
    if (n < s->u.regex.minlen)
        return false;
    if (s->u.regex.first >= 0 && !holds(p, n, s->u.regex.first, s->u.regex.first_other))
        return false;
    if (s->u.regex.required >= 0 && !holds(p, n, s->u.regex.required, s->u.regex.required_other))
        return false;
    if (s->u.regex.has_bitmap) {
        const uint8_t *bm = s->u.regex.bitmap;
        size_t i = 0;
        while (i < n && !(bm[(uint8_t)p[i] >> 3] & (1u << ((uint8_t)p[i] & 7))))
            i++;
        if (i == n)
            return false;
    }
    /* A secret (the API key) is scanned but never remembered among the prefilter's misses. */
    if (!gw_waf_prefilter_may_match(s, p, n, !c->secret))
        return false;
    /* pcre2_jit_match skips the interpreter's checks when the pattern was JIT-compiled. Both
     * take the ACL's match context: its match and depth limits end a runaway backtrack. */
    pcre2_match_context *mc = c->mctx;
    int rc = s->u.regex.jit ? pcre2_jit_match((const pcre2_code *)s->u.regex.code, (PCRE2_SPTR)p, n,
                                              0, 0, (pcre2_match_data *)s->u.regex.mdata, mc)
                            : pcre2_match((const pcre2_code *)s->u.regex.code, (PCRE2_SPTR)p, n, 0,
                                          0, (pcre2_match_data *)s->u.regex.mdata, mc);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        /* Not "no match": the statement's outcome is unknown (stmt_eval), never remembered. */
        c->match_errors++;
        c->match_error_rc = rc;
        return false;
    }
    return rc >= 0;
}

void gw_waf_match_error_text(int rc, char *buf, size_t len) {
    if (pcre2_get_error_message(rc, (PCRE2_UCHAR *)buf, len) < 0)
        snprintf(buf, len, "PCRE2 error %d", rc);
}

static bool size_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p, size_t n) {
    (void)c;
    (void)p;
    uint64_t v = n, k = s->u.size.size;
    switch (s->u.size.op) {
    case GW_CMP_EQ:
        return v == k;
    case GW_CMP_NE:
        return v != k;
    case GW_CMP_LE:
        return v <= k;
    case GW_CMP_LT:
        return v < k;
    case GW_CMP_GE:
        return v >= k;
    case GW_CMP_GT:
        return v > k;
    }
    return false;
}

static bool sqli_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p, size_t n) {
    (void)c;
    return sl_waf_sqli(p, n, s->u.sqli.high);
}

static bool xss_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p, size_t n) {
    (void)c;
    (void)s;
    return sl_waf_xss(p, n);
}

static bool client_ip(struct gw_waf_ctx *c) {
    if (c->have_ip)
        return c->ip_ok;
    c->have_ip = true;
    if (!c->client_ip)
        return c->ip_ok = false;
    struct gw_waf_scratch *m = c->scr;
    size_t n = strlen(c->client_ip);
    if (n < sizeof m->ip_text && memcmp(m->ip_text, c->client_ip, n + 1) == 0) {
        memcpy(c->ip, m->ip, 16);
        return c->ip_ok = m->ip_ok;
    }
    c->ip_ok = gw_waf_parse_ip(c->client_ip, n, c->ip);
    if (n < sizeof m->ip_text) {
        memcpy(m->ip_text, c->client_ip, n + 1);
        memcpy(m->ip, c->ip, 16);
        m->ip_ok = c->ip_ok;
    }
    return c->ip_ok;
}

static bool in_set(const struct gw_waf_stmt *s, const uint8_t ip[16]) {
    for (size_t i = 0; i < s->u.ipset.n; i++)
        if (gw_waf_cidr_contains(&s->u.ipset.cidrs[i], ip))
            return true;
    return false;
}

static bool ipset_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    if (!s->u.ipset.fwd.on)
        return client_ip(c) && in_set(s, c->ip);
    uint8_t ips[GW_WAF_MAX_FWD_IPS][16];
    int k = c->fwd_untrusted ? -1 : gw_waf_forwarded_ips(c->req, &s->u.ipset.fwd, ips);
    if (k < 0)
        return s->u.ipset.fwd.fallback_match;
    for (int i = 0; i < k; i++)
        if (in_set(s, ips[i]))
            return true;
    return false;
}

/*
 * Counts the request under its aggregation key (when the scope-down statement lets it count)
 * and matches while the key's count over the window exceeds the limit. A request without a
 * forwarded header is not counted and does not match, as AWS does for FORWARDED_IP.
 */
static bool rate_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    uint8_t key[16] = {0};
    switch (s->u.rate.agg) {
    case GW_AGG_IP:
        if (!client_ip(c))
            return false;
        memcpy(key, c->ip, 16);
        break;
    case GW_AGG_FORWARDED_IP: {
        uint8_t ips[GW_WAF_MAX_FWD_IPS][16];
        int k = c->fwd_untrusted ? -1 : gw_waf_forwarded_ips(c->req, &s->u.rate.fwd, ips);
        if (k == -1)
            return false;
        if (k < 0)
            return s->u.rate.fwd.fallback_match;
        memcpy(key, ips[0], 16);
        break;
    }
    case GW_AGG_CONSTANT:
        break;
    }
    if (s->u.rate.scope_down && !gw_waf_stmt_match(c, s->u.rate.scope_down))
        return false;
    return gw_waf_rate_hit(s->u.rate.table, key, c->now_ms) > gw_waf_rate_limit(s->u.rate.table);
}

/* LABEL: the key names a whole label (or its final name:part); NAMESPACE: a label starts with
 * the key or carries it after a ':' (a key given without the awswaf: prefix). */
static bool label_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    const char *key = s->u.label.key;
    size_t kn = s->u.label.n;
    for (size_t i = 0; i < c->nlabels; i++) {
        const char *l = c->labels[i];
        size_t ln = strlen(l);
        if (!s->u.label.ns) {
            if (ln == kn && memcmp(l, key, kn) == 0)
                return true;
            if (ln > kn && l[ln - kn - 1] == ':' && memcmp(l + ln - kn, key, kn) == 0)
                return true;
        } else {
            if (ln >= kn && memcmp(l, key, kn) == 0)
                return true;
            for (size_t j = 0; j + kn < ln; j++)
                if (l[j] == ':' && memcmp(l + j + 1, key, kn) == 0)
                    return true;
        }
    }
    return false;
}

static void add_labels(struct gw_waf_ctx *c, const struct gw_waf_rule *r) {
    for (size_t i = 0; i < r->nlabels && c->nlabels < GW_WAF_CTX_LABELS; i++)
        c->labels[c->nlabels++] = r->labels[i];
}

static void count(struct sl_metric *m) {
    if (m)
        sl_counter_inc(m);
}

/* Runs a rule list. Returns true when a rule terminated (result filled). */
static bool run_rules(struct gw_waf_ctx *c, const struct gw_waf_rule *rules, size_t n,
                      const struct gw_waf_rule *outer, bool force_count, struct gw_waf_result *out);

static bool group_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    (void)c;
    (void)s;
    return false; /* a group is run by run_rules, never as a condition */
}

/*
 * A statement's outcome in three values: a regex PCRE2 stopped with an error (a match or depth
 * limit) neither matched nor failed to, and that stays unknown through And / Or / Not exactly as
 * far as it can change the result (Kleene's logic: false And unknown is false, true Or unknown
 * is true, Not unknown is unknown). The rule decides what an unknown means (run_rules).
 */
enum tri { NO = 0, YES = 1, UNKNOWN = 2 };

/* A statement over a field: any value matching is a match, even when another value errs. */
static enum tri field_eval(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn) {
    uint32_t errors = c->match_errors;
    if (gw_waf_field_any(c, s, fn))
        return YES;
    return c->match_errors != errors ? UNKNOWN : NO;
}

static enum tri of(bool b) {
    return b ? YES : NO;
}

static enum tri stmt_eval(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    enum tri r;
    switch (s->kind) {
    case GW_STMT_BYTE:
        return field_eval(c, s, byte_match);
    case GW_STMT_REGEX:
        return field_eval(c, s, regex_match);
    case GW_STMT_SIZE:
        return field_eval(c, s, size_match);
    case GW_STMT_SQLI:
        return field_eval(c, s, sqli_match);
    case GW_STMT_XSS:
        return field_eval(c, s, xss_match);
    case GW_STMT_IPSET:
        return of(ipset_match(c, s));
    case GW_STMT_RATE:
        return of(rate_match(c, s));
    case GW_STMT_LABEL:
        return of(label_match(c, s));
    case GW_STMT_AND:
        r = YES;
        for (size_t i = 0; i < s->u.logic.n; i++) {
            enum tri k = stmt_eval(c, s->u.logic.kids[i]);
            if (k == NO)
                return NO;
            if (k == UNKNOWN)
                r = UNKNOWN;
        }
        return r;
    case GW_STMT_OR:
        r = NO;
        for (size_t i = 0; i < s->u.logic.n; i++) {
            enum tri k = stmt_eval(c, s->u.logic.kids[i]);
            if (k == YES)
                return YES;
            if (k == UNKNOWN)
                r = UNKNOWN;
        }
        return r;
    case GW_STMT_NOT:
        r = stmt_eval(c, s->u.logic.kids[0]);
        return r == UNKNOWN ? UNKNOWN : of(r == NO);
    case GW_STMT_GROUP:
        return of(group_match(c, s));
    }
    return NO;
}

/* A scope-down statement whose outcome is unknown lets the request through to what it guards
 * (the rate is counted, the group runs): inspecting more is the safe side. */
bool gw_waf_stmt_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    return stmt_eval(c, s) != NO;
}

static bool run_rules(struct gw_waf_ctx *c, const struct gw_waf_rule *rules, size_t n,
                      const struct gw_waf_rule *outer, bool force_count,
                      struct gw_waf_result *out) {
    for (size_t i = 0; i < n; i++) {
        const struct gw_waf_rule *r = &rules[i];
        if (r->action == GW_ACT_GROUP) {
            const struct gw_waf_stmt *g = r->stmt;
            if (g->u.group.scope_down && !gw_waf_stmt_match(c, g->u.group.scope_down))
                continue;
            const struct gw_waf_group *grp = g->u.group.group;
            if (run_rules(c, grp->rules, grp->nrules, r, r->override_count, out))
                return true;
            continue;
        }
        /* A statement the memo already clears costs a lookup, not an evaluation. */
        if (gw_waf_known_clear(c, r->stmt))
            continue;
        uint32_t errors = c->match_errors;
        enum tri m = stmt_eval(c, r->stmt);
        enum gw_waf_rule_action act = force_count ? GW_ACT_COUNT : r->action;
        if (c->match_errors != errors)
            c->match_error_rule = r->name;
        /* Fail closed: an error never lets through what a Block rule exists to stop, and never
         * admits what an Allow rule would have let past the rules after it. */
        if (m == UNKNOWN)
            m = act == GW_ACT_ALLOW ? NO : YES;
        if (m == NO)
            continue;
        add_labels(c, r);
        if (act == GW_ACT_COUNT) {
            count(r->m_counted);
            continue;
        }
        count(act == GW_ACT_BLOCK ? r->m_blocked : r->m_allowed);
        out->action = act;
        out->rule = outer ? outer : r;
        out->group_rule = outer ? r : NULL;
        out->custom = act == GW_ACT_BLOCK && r->custom.status ? &r->custom : NULL;
        return true;
    }
    return false;
}

void gw_waf_acl_eval(const struct gw_waf_acl *a, struct gw_waf_ctx *c, struct gw_waf_result *out) {
    *out = (struct gw_waf_result){0};
    c->memo = a->memo;
    c->mctx = a->mctx;
    if (run_rules(c, a->rules, a->nrules, NULL, false, out))
        return;
    out->action = a->default_action;
    out->custom =
        a->default_action == GW_ACT_BLOCK && a->default_custom.status ? &a->default_custom : NULL;
    count(a->m_default);
}
