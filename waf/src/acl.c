/* Loading a WAFv2 web ACL document: validation with JSON-path errors, then a compiled form. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "sluice/error.h"
#include "sluice/metrics.h"
#include "waf_internal.h"

#define PATH_MAX_LEN 512
#define MAX_DEPTH    20 /* nested statements; AWS's capacity units make deeper ones useless */
#define MAX_ERRORS   50
#define MAX_RULES    1000

/* Key lookup is case-insensitive (cJSON_GetObjectItem), so the camelCase of CDK output loads
 * as well as the PascalCase of the API and CloudFormation. */
struct loader {
    struct sl_buf *err;
    int nerr;
    const struct gw_waf_load_opts *o;
    const cJSON *ipsets;     /* IPSets: [{Name, ARN, Addresses}] (Sluice's inline sets) */
    const cJSON *regex_sets; /* RegexPatternSets: [{Name, ARN, RegularExpressionList}] */
    const cJSON *bodies;     /* CustomResponseBodies */
    const char *ns;          /* label namespace of the rules being compiled */
    const char *metric_base; /* "" at the top level, "<group rule metric>:" in a group */
};

__attribute__((format(printf, 3, 4))) static void bad(struct loader *L, const char *path,
                                                      const char *fmt, ...) {
    if (L->nerr++ >= MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    sl_buf_printf(L->err, "%s: ", path);
    sl_buf_vprintf(L->err, fmt, ap);
    sl_buf_append_str(L->err, "\n");
    va_end(ap);
}

static void put(char *tmp, size_t *n, const char *s) {
    size_t len = strlen(s);
    if (len > PATH_MAX_LEN - 1 - *n)
        len = PATH_MAX_LEN - 1 - *n; /* a path that long is cut, never overrun */
    memcpy(tmp + *n, s, len);
    *n += len;
    tmp[*n] = '\0';
}

/* Builds "<base>.<key>" into out (which may be base itself). */
static const char *sub(char *out, const char *base, const char *key) {
    char tmp[PATH_MAX_LEN];
    size_t n = 0;
    tmp[0] = '\0';
    put(tmp, &n, base);
    if (*base)
        put(tmp, &n, ".");
    put(tmp, &n, key);
    memcpy(out, tmp, n + 1);
    return out;
}

/* Builds "<base>[i]" into out. */
static const char *idx(char *out, const char *base, size_t i) {
    char tmp[PATH_MAX_LEN], num[32];
    size_t n = 0;
    tmp[0] = '\0';
    snprintf(num, sizeof num, "[%zu]", i);
    put(tmp, &n, base);
    put(tmp, &n, num);
    memcpy(out, tmp, n + 1);
    return out;
}

static char *dup_lower(const char *s) {
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    return d;
}

static const cJSON *get(const cJSON *o, const char *key) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItem(o, key) : NULL;
}

static const char *want_string(struct loader *L, const cJSON *o, const char *key, const char *path,
                               bool required) {
    char p[PATH_MAX_LEN];
    const cJSON *v = get(o, key);
    if (!v) {
        if (required)
            bad(L, sub(p, path, key), "missing");
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        bad(L, sub(p, path, key), "must be a string");
        return NULL;
    }
    return v->valuestring;
}

/* An integer in [lo, hi]; `def` when absent and not required. Returns false on error. */
static bool want_int(struct loader *L, const cJSON *o, const char *key, const char *path,
                     bool required, int64_t lo, int64_t hi, int64_t *out) {
    char p[PATH_MAX_LEN];
    const cJSON *v = get(o, key);
    if (!v) {
        if (required) {
            bad(L, sub(p, path, key), "missing");
            return false;
        }
        return true;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble) {
        bad(L, sub(p, path, key), "must be an integer");
        return false;
    }
    int64_t x = (int64_t)v->valuedouble;
    if (x < lo || x > hi) {
        bad(L, sub(p, path, key), "%lld is out of range %lld..%lld", (long long)x, (long long)lo,
            (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

/* One of `names` (NULL-terminated); returns its index, `def` when absent, -1 on error. */
static int want_enum(struct loader *L, const cJSON *o, const char *key, const char *path,
                     const char *const *names, int def) {
    char p[PATH_MAX_LEN];
    const char *s = want_string(L, o, key, path, def < 0);
    if (!s)
        return get(o, key) ? -1 : def;
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    char list[512] = "";
    size_t n = 0;
    for (int i = 0; names[i] && n < sizeof list; i++) {
        int w = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", names[i]);
        if (w > 0)
            n += (size_t)w;
    }
    bad(L, sub(p, path, key), "\"%s\" is not one of %s", s, list);
    return -1;
}

/* The single key of an object like {"Block": {...}}: its name and value, or NULL. */
static const cJSON *only_member(struct loader *L, const cJSON *o, const char *path) {
    if (!cJSON_IsObject(o)) {
        bad(L, path, "must be an object");
        return NULL;
    }
    if (!o->child || o->child->next) {
        bad(L, path, "must have exactly one member");
        return NULL;
    }
    return o->child;
}

/* ---- freeing ------------------------------------------------------------------------------ */

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_rules(struct gw_waf_rule *r, size_t n);

static void free_stmt(struct gw_waf_stmt *s) {
    if (!s)
        return;
    free(s->field.name);
    free_strv(s->field.include, s->field.ninclude);
    free_strv(s->field.exclude, s->field.nexclude);
    switch (s->kind) {
    case GW_STMT_BYTE:
        free(s->u.byte.s);
        break;
    case GW_STMT_REGEX:
        pcre2_match_data_free(s->u.regex.mdata);
        pcre2_code_free(s->u.regex.code);
        gw_waf_prefilter_free(s);
        break;
    case GW_STMT_IPSET:
        free(s->u.ipset.cidrs);
        free(s->u.ipset.fwd.header);
        break;
    case GW_STMT_RATE:
        gw_waf_rate_free(s->u.rate.table);
        free_stmt(s->u.rate.scope_down);
        free(s->u.rate.fwd.header);
        break;
    case GW_STMT_LABEL:
        free(s->u.label.key);
        break;
    case GW_STMT_AND:
    case GW_STMT_OR:
    case GW_STMT_NOT:
        for (size_t i = 0; i < s->u.logic.n; i++)
            free_stmt(s->u.logic.kids[i]);
        free(s->u.logic.kids);
        break;
    case GW_STMT_GROUP:
        if (s->u.group.group) {
            free_rules(s->u.group.group->rules, s->u.group.group->nrules);
            free(s->u.group.group->name);
            free(s->u.group.group);
        }
        free_stmt(s->u.group.scope_down);
        break;
    case GW_STMT_SIZE:
    case GW_STMT_SQLI:
    case GW_STMT_XSS:
        break;
    }
    free(s);
}

static void free_custom(struct gw_waf_custom *c) {
    free(c->hh);
    free(c->body);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
}

static void free_rules(struct gw_waf_rule *r, size_t n) {
    for (size_t i = 0; r && i < n; i++) {
        free(r[i].name);
        free(r[i].metric_name);
        free_stmt(r[i].stmt);
        free_custom(&r[i].custom);
        free_strv(r[i].labels, r[i].nlabels);
    }
    free(r);
}

void gw_waf_acl_free(struct gw_waf_acl *a) {
    if (!a)
        return;
    free(a->name);
    free_rules(a->rules, a->nrules);
    free_custom(&a->default_custom);
    free(a->memo);
    pcre2_match_context_free(a->mctx);
    free(a);
}

/* ---- field to match and transformations --------------------------------------------------- */

static const char *const scopes[] = {"ALL", "KEY", "VALUE", NULL};
static const char *const oversizes[] = {"CONTINUE", "MATCH", "NO_MATCH", NULL};

static bool string_list(struct loader *L, const cJSON *arr, const char *path, bool lower,
                        char ***out, size_t *n) {
    char p[PATH_MAX_LEN];
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0) {
        bad(L, path, "must be a non-empty array of strings");
        return false;
    }
    size_t cnt = (size_t)cJSON_GetArraySize(arr);
    char **v = calloc(cnt, sizeof *v);
    if (!v)
        return false;
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e)) {
            bad(L, idx(p, path, i), "must be a string");
            free_strv(v, i);
            return false;
        }
        v[i] = lower ? dup_lower(e->valuestring) : strdup(e->valuestring);
    }
    *out = v;
    *n = cnt;
    return true;
}

/* Headers / Cookies / JsonBody MatchPattern: All, or Included* / Excluded* lists. */
static bool match_pattern(struct loader *L, const cJSON *fo, const char *path, const char *inc,
                          const char *exc, struct gw_waf_field *f) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const cJSON *mp = get(fo, "MatchPattern");
    sub(p, path, "MatchPattern");
    if (!mp) {
        bad(L, p, "missing");
        return false;
    }
    if (get(mp, "All"))
        return true;
    if (get(mp, inc))
        return string_list(L, get(mp, inc), sub(q, p, inc), f->kind != GW_FIELD_JSON_BODY,
                           &f->include, &f->ninclude);
    if (exc && get(mp, exc))
        return string_list(L, get(mp, exc), sub(q, p, exc), true, &f->exclude, &f->nexclude);
    bad(L, p, "needs All or %s%s%s", inc, exc ? " or " : "", exc ? exc : "");
    return false;
}

static bool field_to_match(struct loader *L, const cJSON *st, const char *path,
                           struct gw_waf_field *f) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    sub(p, path, "FieldToMatch");
    const cJSON *fm = get(st, "FieldToMatch");
    if (!fm) {
        bad(L, p, "missing");
        return false;
    }
    const cJSON *m = only_member(L, fm, p);
    if (!m)
        return false;
    const char *k = m->string;
    sub(q, p, k);
    int v;
    if (!strcasecmp(k, "SingleHeader") || !strcasecmp(k, "SingleQueryArgument")) {
        f->kind =
            !strcasecmp(k, "SingleHeader") ? GW_FIELD_SINGLE_HEADER : GW_FIELD_SINGLE_QUERY_ARG;
        const char *name = want_string(L, m, "Name", q, true);
        if (!name)
            return false;
        f->name = dup_lower(name);
        f->name_len = f->name ? strlen(f->name) : 0;
        return f->name != NULL;
    }
    if (!strcasecmp(k, "AllQueryArguments"))
        f->kind = GW_FIELD_ALL_QUERY_ARGS;
    else if (!strcasecmp(k, "QueryString"))
        f->kind = GW_FIELD_QUERY_STRING;
    else if (!strcasecmp(k, "UriPath"))
        f->kind = GW_FIELD_URI_PATH;
    else if (!strcasecmp(k, "Method"))
        f->kind = GW_FIELD_METHOD;
    else if (!strcasecmp(k, "Body"))
        f->kind = GW_FIELD_BODY;
    else if (!strcasecmp(k, "JsonBody"))
        f->kind = GW_FIELD_JSON_BODY;
    else if (!strcasecmp(k, "Headers"))
        f->kind = GW_FIELD_HEADERS;
    else if (!strcasecmp(k, "Cookies"))
        f->kind = GW_FIELD_COOKIES;
    else {
        bad(L, q, "not supported by Sluice (see docs/waf.md)");
        return false;
    }
    if (f->kind == GW_FIELD_BODY || f->kind == GW_FIELD_JSON_BODY || f->kind == GW_FIELD_HEADERS ||
        f->kind == GW_FIELD_COOKIES) {
        if ((v = want_enum(L, m, "OversizeHandling", q, oversizes, GW_OVERSIZE_CONTINUE)) < 0)
            return false;
        f->oversize = (enum gw_waf_oversize)v;
    }
    if (f->kind == GW_FIELD_HEADERS || f->kind == GW_FIELD_COOKIES ||
        f->kind == GW_FIELD_JSON_BODY) {
        if ((v = want_enum(L, m, "MatchScope", q, scopes, -1)) < 0)
            return false;
        f->scope = (enum gw_waf_scope)v;
        bool ok = f->kind == GW_FIELD_HEADERS
                      ? match_pattern(L, m, q, "IncludedHeaders", "ExcludedHeaders", f)
                  : f->kind == GW_FIELD_COOKIES
                      ? match_pattern(L, m, q, "IncludedCookies", "ExcludedCookies", f)
                      : match_pattern(L, m, q, "IncludedPaths", NULL, f);
        if (!ok)
            return false;
    }
    if (f->kind == GW_FIELD_JSON_BODY) {
        static const char *const fb[] = {"", "MATCH", "NO_MATCH", "EVALUATE_AS_STRING", NULL};
        if ((v = want_enum(L, m, "InvalidFallbackBehavior", q, fb, 0)) < 0)
            return false;
        f->fallback = (enum gw_waf_fallback)v;
    }
    return true;
}

static bool transformations(struct loader *L, const cJSON *st, const char *path,
                            struct gw_waf_tx_list *tx) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    sub(p, path, "TextTransformations");
    const cJSON *arr = get(st, "TextTransformations");
    if (!arr) {
        bad(L, p, "missing");
        return false;
    }
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
        cJSON_GetArraySize(arr) > GW_WAF_MAX_TRANSFORMS) {
        bad(L, p, "must be an array of 1 to %d transformations", GW_WAF_MAX_TRANSFORMS);
        return false;
    }
    int64_t prio[GW_WAF_MAX_TRANSFORMS];
    size_t i = 0;
    bool ok = true;
    static const char *names[GW_TX_COUNT + 1];
    for (size_t t = 0; t < GW_TX_COUNT; t++)
        names[t] = gw_waf_tx_names[t];
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        idx(q, p, i);
        int64_t pr = 0;
        int t = want_enum(L, e, "Type", q, names, -1);
        if (!want_int(L, e, "Priority", q, true, 0, INT32_MAX, &pr) || t < 0) {
            ok = false;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (prio[j] == pr) {
                bad(L, q, "Priority %lld is used twice", (long long)pr);
                ok = false;
            }
        /* Insertion by priority: WAF applies the lowest first. */
        size_t at = i;
        while (at > 0 && prio[at - 1] > pr) {
            prio[at] = prio[at - 1];
            tx->t[at] = tx->t[at - 1];
            at--;
        }
        prio[at] = pr;
        tx->t[at] = (uint8_t)t;
        tx->n = i + 1;
    }
    gw_waf_tx_seal(tx);
    return ok;
}

/* ---- statements --------------------------------------------------------------------------- */

static struct gw_waf_stmt *statement(struct loader *L, const cJSON *o, const char *path, int depth);

static bool parse_cidr(const char *s, struct gw_waf_cidr *c) {
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!gw_waf_parse_ip(s, n, c->addr))
        return false;
    bool v4 = strchr(s, ':') == NULL || (slash && memchr(s, ':', n) == NULL);
    unsigned max = v4 ? 32 : 128;
    unsigned prefix = max;
    if (slash) {
        char *end;
        unsigned long x = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || x > max)
            return false;
        prefix = (unsigned)x;
    }
    c->prefix = v4 ? prefix + 96 : prefix;
    return true;
}

static bool fwd_config(struct loader *L, const cJSON *o, const char *path, bool position,
                       struct gw_waf_fwd *f) {
    static const char *const fb[] = {"MATCH", "NO_MATCH", NULL};
    static const char *const pos[] = {"FIRST", "LAST", "ANY", NULL};
    const char *h = want_string(L, o, "HeaderName", path, true);
    int b = want_enum(L, o, "FallbackBehavior", path, fb, -1);
    int ps = position ? want_enum(L, o, "Position", path, pos, -1) : GW_FWD_FIRST;
    if (!h || b < 0 || ps < 0)
        return false;
    f->on = true;
    f->header = dup_lower(h);
    f->fallback_match = b == 0;
    f->position = (enum gw_waf_fwd_pos)ps;
    return f->header != NULL;
}

/* An IP set by ARN or Name from the document's IPSets, or inline Addresses. */
static const cJSON *find_set(const cJSON *sets, const char *ref) {
    for (const cJSON *e = cJSON_IsArray(sets) ? sets->child : NULL; e; e = e->next) {
        const cJSON *arn = get(e, "ARN"), *name = get(e, "Name");
        if ((cJSON_IsString(arn) && !strcmp(arn->valuestring, ref)) ||
            (cJSON_IsString(name) && !strcmp(name->valuestring, ref)))
            return e;
    }
    return NULL;
}

static bool ipset(struct loader *L, const cJSON *o, const char *path, struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    const cJSON *addrs = get(o, "Addresses");
    const char *apath = sub(p, path, "Addresses");
    char setpath[PATH_MAX_LEN];
    if (!addrs) {
        const char *arn = want_string(L, o, "ARN", path, true);
        if (!arn)
            return false;
        const cJSON *set = find_set(L->ipsets, arn);
        if (!set) {
            bad(L, sub(q, path, "ARN"),
                "\"%s\" names no entry of IPSets (give the set inline as Addresses, or add "
                "{\"ARN\", \"Addresses\"} to the document's IPSets)",
                arn);
            return false;
        }
        addrs = get(set, "Addresses");
        snprintf(setpath, sizeof setpath, "IPSets[%s].Addresses", arn);
        apath = setpath;
    }
    if (!cJSON_IsArray(addrs)) {
        bad(L, apath, "must be an array of CIDR strings");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(addrs), i = 0;
    s->u.ipset.cidrs = calloc(n ? n : 1, sizeof *s->u.ipset.cidrs);
    if (!s->u.ipset.cidrs)
        return false;
    bool ok = true;
    for (const cJSON *e = addrs->child; e; e = e->next, i++) {
        if (!cJSON_IsString(e) || !parse_cidr(e->valuestring, &s->u.ipset.cidrs[i])) {
            bad(L, idx(q, apath, i), "not a CIDR (\"192.0.2.0/24\", \"2001:db8::/32\")");
            ok = false;
        }
    }
    s->u.ipset.n = n;
    const cJSON *fc = get(o, "IPSetForwardedIPConfig");
    if (fc && !fwd_config(L, fc, sub(q, path, "IPSetForwardedIPConfig"), true, &s->u.ipset.fwd))
        ok = false;
    return ok;
}

/*
 * A code unit PCRE2 says every match starts with or holds, as a byte to look for (or -1: none
 * that is safe), and in *other its other case. PCRE2 keeps to itself whether the unit is
 * compared caselessly: its options never show an inline (?i), so (?i)<script reports 't' as
 * required although <SCRIPT> matches. A letter is therefore looked for in both cases, which is
 * right whatever the pattern's flags. In UTF or UCP mode a caseless letter can also match
 * outside ASCII (k and the Kelvin sign, s and the long s), so letters and non-ASCII units get
 * no byte check there.
 */
static int byte_check(uint32_t unit, bool unicode, int *other) {
    *other = -1;
    bool upper = unit >= 'A' && unit <= 'Z', lower = unit >= 'a' && unit <= 'z';
    if (unit > 0xff || (unicode && (upper || lower || unit >= 0x80)))
        return -1;
    if (upper || lower)
        *other = (int)(unit ^ 0x20);
    return (int)unit;
}

static bool compile_regex(struct loader *L, const char *re, const char *path,
                          struct gw_waf_stmt *s) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        bad(L, path, "invalid regex at offset %zu: %s", (size_t)off, (const char *)msg);
        return false;
    }
    /* Best effort: the interpreter also works. */
    s->u.regex.jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    s->u.regex.code = code;
    uint32_t minlen = 0, ftype = 0, funit = 0, rset = 0, runit = 0, opts = 0;
    const uint8_t *bitmap = NULL;
    pcre2_pattern_info(code, PCRE2_INFO_MINLENGTH, &minlen);
    pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODETYPE, &ftype);
    pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODEUNIT, &funit);
    pcre2_pattern_info(code, PCRE2_INFO_FIRSTBITMAP, &bitmap);
    pcre2_pattern_info(code, PCRE2_INFO_LASTCODETYPE, &rset);
    pcre2_pattern_info(code, PCRE2_INFO_LASTCODEUNIT, &runit);
    pcre2_pattern_info(code, PCRE2_INFO_ALLOPTIONS, &opts);
    bool unicode = (opts & (PCRE2_UTF | PCRE2_UCP)) != 0; /* (*UTF) or (*UCP) at its start */
    s->u.regex.minlen = minlen;
    s->u.regex.first = ftype == 1 ? byte_check(funit, unicode, &s->u.regex.first_other) : -1;
    s->u.regex.required = rset == 1 ? byte_check(runit, unicode, &s->u.regex.required_other) : -1;
    if (s->u.regex.first < 0)
        s->u.regex.first_other = -1;
    if (s->u.regex.required < 0)
        s->u.regex.required_other = -1;
    s->u.regex.has_bitmap = bitmap != NULL && ftype != 2; /* type 2: anchored at line starts */
    if (s->u.regex.has_bitmap)
        memcpy(s->u.regex.bitmap, bitmap, 32);
    gw_waf_prefilter_build(re, minlen, s);
    s->u.regex.mdata = pcre2_match_data_create_from_pattern(code, NULL);
    return s->u.regex.mdata != NULL;
}

/* RegexPatternSetReferenceStatement: the set's expressions joined into one alternation. */
static bool regex_set(struct loader *L, const cJSON *o, const char *path, struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN];
    const cJSON *list = get(o, "RegularExpressionList");
    if (!list) {
        const char *arn = want_string(L, o, "ARN", path, true);
        if (!arn)
            return false;
        const cJSON *set = find_set(L->regex_sets, arn);
        if (!set) {
            bad(L, sub(p, path, "ARN"),
                "\"%s\" names no entry of RegexPatternSets (add {\"ARN\", "
                "\"RegularExpressionList\"} to the document)",
                arn);
            return false;
        }
        list = get(set, "RegularExpressionList");
    }
    if (!cJSON_IsArray(list) || !list->child) {
        bad(L, sub(p, path, "RegularExpressionList"), "must be a non-empty array");
        return false;
    }
    struct sl_buf re;
    sl_buf_init(&re, 1 << 20);
    for (const cJSON *e = list->child; e; e = e->next) {
        const cJSON *r = get(e, "RegexString");
        if (!cJSON_IsString(r)) {
            bad(L, sub(p, path, "RegularExpressionList"), "entries need a RegexString");
            sl_buf_free(&re);
            return false;
        }
        sl_buf_printf(&re, "%s(?:%s)", re.len ? "|" : "", r->valuestring);
    }
    bool ok = compile_regex(L, re.data ? re.data : "", sub(p, path, "RegularExpressionList"), s);
    sl_buf_free(&re);
    return ok;
}

static bool logic(struct loader *L, const cJSON *o, const char *path, int depth,
                  struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    if (s->kind == GW_STMT_NOT) {
        s->u.logic.kids = calloc(1, sizeof *s->u.logic.kids);
        if (!s->u.logic.kids)
            return false;
        const cJSON *st = get(o, "Statement");
        if (!st) {
            bad(L, sub(p, path, "Statement"), "missing");
            return false;
        }
        s->u.logic.kids[0] = statement(L, st, sub(p, path, "Statement"), depth + 1);
        s->u.logic.n = s->u.logic.kids[0] ? 1 : 0;
        return s->u.logic.n == 1;
    }
    const cJSON *arr = get(o, "Statements");
    sub(p, path, "Statements");
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 2) {
        bad(L, p, "must be an array of at least 2 statements");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    s->u.logic.kids = calloc(n, sizeof *s->u.logic.kids);
    if (!s->u.logic.kids)
        return false;
    bool ok = true;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        struct gw_waf_stmt *k = statement(L, e, idx(q, p, i), depth + 1);
        if (!k)
            ok = false;
        else
            s->u.logic.kids[s->u.logic.n++] = k;
    }
    return ok;
}

static bool rate(struct loader *L, const cJSON *o, const char *path, int depth,
                 struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN];
    static const char *const aggs[] = {"IP", "FORWARDED_IP", "CONSTANT", NULL};
    if (depth > 0) {
        bad(L, path, "a RateBasedStatement must be a rule's top-level statement");
        return false;
    }
    int64_t limit = 0, window = 300;
    bool ok = want_int(L, o, "Limit", path, true, 10, 2000000000, &limit);
    ok = want_int(L, o, "EvaluationWindowSec", path, false, 60, 600, &window) && ok;
    if (get(o, "EvaluationWindowSec") && window != 60 && window != 120 && window != 300 &&
        window != 600) {
        bad(L, sub(p, path, "EvaluationWindowSec"), "%lld is not one of 60, 120, 300, 600",
            (long long)window);
        ok = false;
    }
    const char *agg = want_string(L, o, "AggregateKeyType", path, true);
    if (agg && !strcmp(agg, "CUSTOM_KEYS")) {
        bad(L, sub(p, path, "AggregateKeyType"), "CUSTOM_KEYS is not supported by Sluice");
        return false;
    }
    int a = agg ? want_enum(L, o, "AggregateKeyType", path, aggs, -1) : -1;
    if (a < 0)
        return false;
    s->u.rate.agg = (enum gw_waf_agg)a;
    if (a == GW_AGG_FORWARDED_IP) {
        const cJSON *fc = get(o, "ForwardedIPConfig");
        if (!fc) {
            bad(L, sub(p, path, "ForwardedIPConfig"), "missing (FORWARDED_IP needs it)");
            ok = false;
        } else if (!fwd_config(L, fc, sub(p, path, "ForwardedIPConfig"), false, &s->u.rate.fwd)) {
            ok = false;
        }
    }
    const cJSON *sd = get(o, "ScopeDownStatement");
    if (sd) {
        s->u.rate.scope_down = statement(L, sd, sub(p, path, "ScopeDownStatement"), depth + 1);
        ok = ok && s->u.rate.scope_down;
    } else if (a == GW_AGG_CONSTANT) {
        bad(L, sub(p, path, "ScopeDownStatement"), "missing (CONSTANT needs one)");
        ok = false;
    }
    if (!ok)
        return false;
    size_t cap = L->o && L->o->rate_capacity ? L->o->rate_capacity : GW_WAF_RATE_CAPACITY;
    if (a == GW_AGG_CONSTANT)
        cap = 1;
    return gw_waf_rate_new(cap, (uint32_t)window, limit, &s->u.rate.table) == 0;
}

static bool group_stmt(struct loader *L, const cJSON *o, const char *path, int depth,
                       struct gw_waf_stmt *s);

static bool search_string(struct loader *L, const cJSON *o, const char *path,
                          struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN];
    const cJSON *plain = get(o, "SearchString"), *b64 = get(o, "SearchStringBase64");
    if (!plain && !b64) {
        bad(L, sub(p, path, "SearchString"), "missing");
        return false;
    }
    const cJSON *v = plain ? plain : b64;
    if (!cJSON_IsString(v)) {
        bad(L, sub(p, path, plain ? "SearchString" : "SearchStringBase64"), "must be a string");
        return false;
    }
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > 200) {
        bad(L, sub(p, path, plain ? "SearchString" : "SearchStringBase64"),
            "must be 1 to 200 bytes");
        return false;
    }
    if (!(s->u.byte.s = malloc(n + 1)))
        return false;
    s->u.byte.n = plain ? n : gw_waf_transform(GW_TX_BASE64_DECODE, v->valuestring, n, s->u.byte.s);
    if (plain)
        memcpy(s->u.byte.s, v->valuestring, n);
    s->u.byte.s[s->u.byte.n] = '\0';
    return true;
}

static struct gw_waf_stmt *statement(struct loader *L, const cJSON *o, const char *path,
                                     int depth) {
    char p[PATH_MAX_LEN];
    static const char *const positions[] = {"EXACTLY",  "STARTS_WITH",   "ENDS_WITH",
                                            "CONTAINS", "CONTAINS_WORD", NULL};
    static const char *const ops[] = {"EQ", "NE", "LE", "LT", "GE", "GT", NULL};
    static const char *const levels[] = {"LOW", "HIGH", NULL};
    static const char *const lscopes[] = {"LABEL", "NAMESPACE", NULL};
    if (depth > MAX_DEPTH) {
        bad(L, path, "statements nested deeper than %d", MAX_DEPTH);
        return NULL;
    }
    const cJSON *m = only_member(L, o, path);
    if (!m)
        return NULL;
    struct gw_waf_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->memo = -1; /* gw_waf_memo_attach numbers the ones worth it */
    const char *k = m->string;
    sub(p, path, k);
    if (!cJSON_IsObject(m)) {
        bad(L, p, "must be an object");
        goto fail;
    }
    bool ok;
    int v;
    if (!strcasecmp(k, "ByteMatchStatement")) {
        s->kind = GW_STMT_BYTE;
        ok = search_string(L, m, p, s);
        ok = field_to_match(L, m, p, &s->field) && ok;
        ok = transformations(L, m, p, &s->tx) && ok;
        v = want_enum(L, m, "PositionalConstraint", p, positions, -1);
        s->u.byte.pos = (enum gw_waf_pos)(v < 0 ? 0 : v);
        ok = ok && v >= 0;
    } else if (!strcasecmp(k, "RegexMatchStatement")) {
        s->kind = GW_STMT_REGEX;
        const char *re = want_string(L, m, "RegexString", p, true);
        char rp[PATH_MAX_LEN];
        ok = re && compile_regex(L, re, sub(rp, p, "RegexString"), s);
        ok = field_to_match(L, m, p, &s->field) && ok;
        ok = transformations(L, m, p, &s->tx) && ok;
    } else if (!strcasecmp(k, "RegexPatternSetReferenceStatement")) {
        s->kind = GW_STMT_REGEX;
        ok = regex_set(L, m, p, s);
        ok = field_to_match(L, m, p, &s->field) && ok;
        ok = transformations(L, m, p, &s->tx) && ok;
    } else if (!strcasecmp(k, "SizeConstraintStatement")) {
        s->kind = GW_STMT_SIZE;
        int64_t size = 0;
        ok = want_int(L, m, "Size", p, true, 0, INT64_C(21474836480), &size);
        s->u.size.size = (uint64_t)size;
        v = want_enum(L, m, "ComparisonOperator", p, ops, -1);
        s->u.size.op = (enum gw_waf_cmp)(v < 0 ? 0 : v);
        ok = field_to_match(L, m, p, &s->field) && v >= 0 && ok;
        ok = transformations(L, m, p, &s->tx) && ok;
    } else if (!strcasecmp(k, "SqliMatchStatement")) {
        s->kind = GW_STMT_SQLI;
        v = want_enum(L, m, "SensitivityLevel", p, levels, 0);
        s->u.sqli.high = v == 1;
        ok = field_to_match(L, m, p, &s->field) && v >= 0;
        ok = transformations(L, m, p, &s->tx) && ok;
    } else if (!strcasecmp(k, "XssMatchStatement")) {
        s->kind = GW_STMT_XSS;
        ok = field_to_match(L, m, p, &s->field);
        ok = transformations(L, m, p, &s->tx) && ok;
    } else if (!strcasecmp(k, "IPSetReferenceStatement")) {
        s->kind = GW_STMT_IPSET;
        ok = ipset(L, m, p, s);
    } else if (!strcasecmp(k, "RateBasedStatement")) {
        s->kind = GW_STMT_RATE;
        ok = rate(L, m, p, depth, s);
    } else if (!strcasecmp(k, "LabelMatchStatement")) {
        s->kind = GW_STMT_LABEL;
        v = want_enum(L, m, "Scope", p, lscopes, -1);
        const char *key = want_string(L, m, "Key", p, true);
        ok = v >= 0 && key && *key;
        if (key && !*key)
            bad(L, sub(p, p, "Key"), "must not be empty");
        if (ok) {
            s->u.label.ns = v == 1;
            s->u.label.key = strdup(key);
            s->u.label.n = strlen(key);
            ok = s->u.label.key != NULL;
        }
    } else if (!strcasecmp(k, "AndStatement") || !strcasecmp(k, "OrStatement") ||
               !strcasecmp(k, "NotStatement")) {
        s->kind = !strcasecmp(k, "AndStatement")  ? GW_STMT_AND
                  : !strcasecmp(k, "OrStatement") ? GW_STMT_OR
                                                  : GW_STMT_NOT;
        ok = logic(L, m, p, depth, s);
    } else if (!strcasecmp(k, "ManagedRuleGroupStatement")) {
        s->kind = GW_STMT_GROUP;
        ok = group_stmt(L, m, p, depth, s);
    } else if (!strcasecmp(k, "GeoMatchStatement") || !strcasecmp(k, "AsnMatchStatement") ||
               !strcasecmp(k, "RuleGroupReferenceStatement")) {
        bad(L, p, "not supported by Sluice (see docs/waf.md)");
        goto fail;
    } else {
        bad(L, p, "unknown statement");
        goto fail;
    }
    if (ok)
        return s;
fail:
    s->kind = s->kind == GW_STMT_GROUP ? GW_STMT_GROUP : s->kind;
    free_stmt(s);
    return NULL;
}

/* ---- actions and rules -------------------------------------------------------------------- */

static bool custom_response(struct loader *L, const cJSON *cr, const char *path,
                            struct gw_waf_custom *c) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    int64_t code = 0;
    if (!want_int(L, cr, "ResponseCode", path, true, 200, 599, &code))
        return false;
    c->status = (int)code;
    const char *key = want_string(L, cr, "CustomResponseBodyKey", path, false);
    if (key) {
        const cJSON *b = get(L->bodies, key);
        const cJSON *content = get(b, "Content");
        if (!cJSON_IsString(content)) {
            bad(L, sub(p, path, "CustomResponseBodyKey"),
                "\"%s\" is not a key of CustomResponseBodies", key);
            return false;
        }
        const cJSON *ct = get(b, "ContentType");
        const char *t = cJSON_IsString(ct) ? ct->valuestring : "TEXT_PLAIN";
        c->content_type = !strcmp(t, "APPLICATION_JSON") ? "application/json"
                          : !strcmp(t, "TEXT_HTML")      ? "text/html"
                                                         : "text/plain";
        c->body_len = strlen(content->valuestring);
        if (!(c->body = strdup(content->valuestring)))
            return false;
    }
    const cJSON *hs = get(cr, "ResponseHeaders");
    if (hs) {
        sub(p, path, "ResponseHeaders");
        if (!cJSON_IsArray(hs)) {
            bad(L, p, "must be an array of {Name, Value}");
            return false;
        }
        size_t n = (size_t)cJSON_GetArraySize(hs), i = 0;
        if (!(c->headers = calloc(n ? n : 1, sizeof *c->headers)))
            return false;
        for (const cJSON *e = hs->child; e; e = e->next, i++) {
            const char *name = want_string(L, e, "Name", idx(q, p, i), true);
            const char *value = want_string(L, e, "Value", q, true);
            if (!name || !value)
                return false;
            /* AWS prefixes custom response header names so they cannot pose as the origin's. */
            size_t len = strlen(name) + 12;
            struct gw_waf_header_kv *h = &c->headers[c->nheaders++];
            if ((h->name = malloc(len)))
                snprintf(h->name, len, "x-amzn-waf-%s", name);
            h->value = strdup(value);
            if (!h->name || !h->value)
                return false;
        }
    }
    if (!(c->hh = calloc(c->nheaders + 1, sizeof *c->hh)))
        return false;
    if (c->content_type)
        c->hh[c->nhh++] = (struct sl_http_header){SL_STR("Content-Type"),
                                                  {c->content_type, strlen(c->content_type)}};
    for (size_t i = 0; i < c->nheaders; i++)
        c->hh[c->nhh++] =
            (struct sl_http_header){{c->headers[i].name, strlen(c->headers[i].name)},
                                    {c->headers[i].value, strlen(c->headers[i].value)}};
    return true;
}

/* Action: Allow / Block (CustomResponse) / Count. Captcha and Challenge need a browser
 * round trip Sluice does not offer; they are refused rather than silently weakened. */
static bool action(struct loader *L, const cJSON *a, const char *path, enum gw_waf_rule_action *act,
                   struct gw_waf_custom *c) {
    char p[PATH_MAX_LEN];
    const cJSON *m = only_member(L, a, path);
    if (!m)
        return false;
    sub(p, path, m->string);
    if (!strcasecmp(m->string, "Allow"))
        *act = GW_ACT_ALLOW;
    else if (!strcasecmp(m->string, "Count"))
        *act = GW_ACT_COUNT;
    else if (!strcasecmp(m->string, "Block")) {
        *act = GW_ACT_BLOCK;
        const cJSON *cr = get(m, "CustomResponse");
        char q[PATH_MAX_LEN];
        if (cr && !custom_response(L, cr, sub(q, p, "CustomResponse"), c))
            return false;
    } else if (!strcasecmp(m->string, "Captcha") || !strcasecmp(m->string, "Challenge")) {
        bad(L, p, "not supported by Sluice (use Block or Count)");
        return false;
    } else {
        bad(L, p, "is not one of Allow, Block, Count");
        return false;
    }
    return true;
}

static bool labels(struct loader *L, const cJSON *arr, const char *path, struct gw_waf_rule *r) {
    char p[PATH_MAX_LEN];
    if (!cJSON_IsArray(arr)) {
        bad(L, path, "must be an array of {Name}");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    if (!(r->labels = calloc(n ? n : 1, sizeof *r->labels)))
        return false;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const char *name = want_string(L, e, "Name", idx(p, path, i), true);
        if (!name)
            return false;
        size_t len = strlen(L->ns) + strlen(name) + 1;
        char *full = malloc(len);
        if (!full)
            return false;
        snprintf(full, len, "%s%s", L->ns, name);
        r->labels[r->nlabels++] = full;
    }
    return true;
}

static struct sl_metric *rule_metric(struct loader *L, const char *rule, const char *act) {
    return L->o && L->o->rule_metrics ? sl_metric_child2(L->o->rule_metrics, rule, act) : NULL;
}

static bool rule(struct loader *L, const cJSON *o, const char *path, bool in_group,
                 struct gw_waf_rule *r) {
    char p[PATH_MAX_LEN];
    if (!cJSON_IsObject(o)) {
        bad(L, path, "must be an object");
        return false;
    }
    const char *name = want_string(L, o, "Name", path, true);
    bool ok = name != NULL;
    if (name && !(r->name = strdup(name)))
        return false;
    ok = want_int(L, o, "Priority", path, true, 0, INT32_MAX, &r->priority) && ok;
    const cJSON *st = get(o, "Statement");
    if (!st) {
        bad(L, sub(p, path, "Statement"), "missing");
        ok = false;
    } else {
        r->stmt = statement(L, st, sub(p, path, "Statement"), 0);
        ok = r->stmt && ok;
    }
    bool is_group = r->stmt && r->stmt->kind == GW_STMT_GROUP;
    if (is_group && in_group) {
        bad(L, sub(p, path, "Statement"), "a rule group cannot contain a rule group");
        ok = false;
    }
    const cJSON *act = get(o, "Action"), *ovr = get(o, "OverrideAction");
    if (is_group) {
        r->action = GW_ACT_GROUP;
        if (act)
            bad(L, sub(p, path, "Action"), "a rule group statement takes OverrideAction");
        if (!ovr)
            bad(L, sub(p, path, "OverrideAction"), "missing");
        const cJSON *m = ovr ? only_member(L, ovr, sub(p, path, "OverrideAction")) : NULL;
        if (m && strcasecmp(m->string, "None") && strcasecmp(m->string, "Count")) {
            bad(L, sub(p, p, m->string), "is not one of None, Count");
            m = NULL;
        }
        ok = ok && !act && m;
        r->override_count = m && !strcasecmp(m->string, "Count");
    } else if (r->stmt || act || ovr) {
        if (ovr)
            bad(L, sub(p, path, "OverrideAction"), "only a rule group statement takes one");
        if (!act)
            bad(L, sub(p, path, "Action"), "missing");
        ok = act && !ovr && action(L, act, sub(p, path, "Action"), &r->action, &r->custom) && ok;
    }
    const cJSON *rl = get(o, "RuleLabels");
    if (rl)
        ok = labels(L, rl, sub(p, path, "RuleLabels"), r) && ok;
    const cJSON *vc = get(o, "VisibilityConfig");
    const cJSON *mn = get(vc, "MetricName");
    const char *metric = cJSON_IsString(mn) ? mn->valuestring : name ? name : "";
    size_t len = strlen(L->metric_base) + strlen(metric) + 1;
    if ((r->metric_name = malloc(len)))
        snprintf(r->metric_name, len, "%s%s", L->metric_base, metric);
    if (ok && r->metric_name && !is_group) {
        r->m_allowed = rule_metric(L, r->metric_name, "ALLOW");
        r->m_blocked = rule_metric(L, r->metric_name, "BLOCK");
        r->m_counted = rule_metric(L, r->metric_name, "COUNT");
    }
    return ok && r->metric_name;
}

static int by_priority(const void *a, const void *b) {
    const struct gw_waf_rule *x = a, *y = b;
    return x->priority < y->priority ? -1 : x->priority > y->priority;
}

static bool rules(struct loader *L, const cJSON *arr, const char *path, bool in_group,
                  struct gw_waf_rule **out, size_t *nout) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN];
    if (!cJSON_IsArray(arr)) {
        bad(L, path, "must be an array of rules");
        return false;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n > MAX_RULES) {
        bad(L, path, "more than %d rules", MAX_RULES);
        return false;
    }
    struct gw_waf_rule *r = calloc(n ? n : 1, sizeof *r);
    if (!r)
        return false;
    bool ok = true;
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        ok = rule(L, e, idx(p, path, i), in_group, &r[i]) && ok;
        for (size_t j = 0; j < i && r[i].name; j++) {
            if (r[j].name && !strcmp(r[j].name, r[i].name)) {
                bad(L, sub(q, p, "Name"), "\"%s\" is also the name of %s[%zu]", r[i].name, path, j);
                ok = false;
            }
            if (r[j].priority == r[i].priority && r[i].name && r[j].name) {
                bad(L, sub(q, p, "Priority"), "%lld is also the priority of %s[%zu]",
                    (long long)r[i].priority, path, j);
                ok = false;
            }
        }
    }
    qsort(r, n, sizeof *r, by_priority);
    *out = r;
    *nout = n;
    return ok;
}

/* ---- managed rule groups ------------------------------------------------------------------ */

static struct gw_waf_rule *find_rule(struct gw_waf_group *g, const char *name) {
    for (size_t i = 0; i < g->nrules; i++)
        if (!strcmp(g->rules[i].name, name))
            return &g->rules[i];
    return NULL;
}

static bool group_stmt(struct loader *L, const cJSON *o, const char *path, int depth,
                       struct gw_waf_stmt *s) {
    char p[PATH_MAX_LEN], q[PATH_MAX_LEN], file[128];
    if (depth > 0) {
        bad(L, path, "a ManagedRuleGroupStatement must be a rule's top-level statement");
        return false;
    }
    const char *vendor = want_string(L, o, "VendorName", path, true);
    const char *name = want_string(L, o, "Name", path, true);
    if (!vendor || !name)
        return false;
    snprintf(file, sizeof file, "%s.json", name);
    size_t len = 0;
    const char *json = strcmp(vendor, "AWS") ? NULL : gw_waf_data(file, &len);
    if (!json) {
        bad(L, sub(p, path, "Name"),
            "\"%s/%s\" is not a rule group Sluice ships (AWS/AWSManagedRulesCommonRuleSet, "
            "AWS/AWSManagedRulesKnownBadInputsRuleSet, AWS/AWSManagedRulesSQLiRuleSet)",
            vendor, name);
        return false;
    }
    cJSON *doc = cJSON_ParseWithLength(json, len);
    const cJSON *ns = get(doc, "LabelNamespace");
    struct gw_waf_group *g = calloc(1, sizeof *g);
    if (!doc || !g || !cJSON_IsString(ns)) {
        cJSON_Delete(doc);
        free(g);
        bad(L, path, "the shipped %s is damaged", file);
        return false;
    }
    s->u.group.group = g;
    g->name = strdup(name);
    /* The group's rules compile like any others, with its label namespace and file as context. */
    struct loader G = *L;
    G.ns = ns->valuestring;
    char base[PATH_MAX_LEN];
    snprintf(base, sizeof base, "%s:", name);
    G.metric_base = base;
    G.err = L->err;
    bool ok = rules(&G, get(doc, "Rules"), file, true, &g->rules, &g->nrules);
    L->nerr = G.nerr;
    cJSON_Delete(doc);
    if (!ok)
        return false;
    const cJSON *ex = get(o, "ExcludedRules");
    size_t i = 0;
    for (const cJSON *e = cJSON_IsArray(ex) ? ex->child : NULL; e; e = e->next, i++) {
        const char *rn = want_string(L, e, "Name", idx(q, sub(p, path, "ExcludedRules"), i), true);
        struct gw_waf_rule *r = rn ? find_rule(g, rn) : NULL;
        if (rn && !r)
            bad(L, sub(p, q, "Name"), "\"%s\" is not a rule of %s", rn, name);
        if (!r) {
            ok = false;
            continue;
        }
        r->action = GW_ACT_COUNT; /* an excluded rule still labels, as AWS's Count does */
    }
    const cJSON *ov = get(o, "RuleActionOverrides");
    i = 0;
    for (const cJSON *e = cJSON_IsArray(ov) ? ov->child : NULL; e; e = e->next, i++) {
        idx(q, sub(p, path, "RuleActionOverrides"), i);
        const char *rn = want_string(L, e, "Name", q, true);
        struct gw_waf_rule *r = rn ? find_rule(g, rn) : NULL;
        if (rn && !r)
            bad(L, sub(p, q, "Name"), "\"%s\" is not a rule of %s", rn, name);
        const cJSON *use = get(e, "ActionToUse");
        if (!use)
            bad(L, sub(p, q, "ActionToUse"), "missing");
        if (!r || !use) {
            ok = false;
            continue;
        }
        free_custom(&r->custom);
        memset(&r->custom, 0, sizeof r->custom);
        ok = action(L, use, sub(p, q, "ActionToUse"), &r->action, &r->custom) && ok;
    }
    const cJSON *sd = get(o, "ScopeDownStatement");
    if (sd) {
        s->u.group.scope_down = statement(L, sd, sub(p, path, "ScopeDownStatement"), depth + 1);
        ok = ok && s->u.group.scope_down;
    }
    return ok;
}

/* ---- the document ------------------------------------------------------------------------- */

/* AWS's label namespace for a web ACL's own rules: awswaf:<account>:webacl:<name>:. */
static void acl_namespace(const cJSON *acl, const char *name, char *out, size_t n) {
    const cJSON *arn = get(acl, "ARN");
    char account[32] = "000000000000";
    if (cJSON_IsString(arn)) {
        /* arn:aws:wafv2:<region>:<account>:... */
        const char *p = arn->valuestring;
        for (int field = 0; field < 4 && p; field++) {
            p = strchr(p, ':');
            if (p)
                p++;
        }
        const char *end = p ? strchr(p, ':') : NULL;
        if (end && (size_t)(end - p) < sizeof account && end > p)
            snprintf(account, sizeof account, "%.*s", (int)(end - p), p);
    }
    snprintf(out, n, "awswaf:%s:webacl:%s:", account, name);
}

int gw_waf_acl_load(const char *json, size_t len, const struct gw_waf_load_opts *o,
                    struct gw_waf_acl **out, struct sl_buf *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        sl_buf_printf(err, "$: not valid JSON (near byte %zu)\n", at);
        return SL_ERR_PARSE;
    }
    struct loader L = {.err = err, .o = o, .metric_base = ""};
    const cJSON *acl = doc, *rl = NULL;
    const char *base = "";
    if (cJSON_IsObject(doc) && get(doc, "WebACL")) {
        acl = get(doc, "WebACL");
        base = "WebACL";
    } else if (cJSON_IsObject(doc) && get(doc, "Properties") && get(doc, "Type")) {
        acl = get(doc, "Properties"); /* a CloudFormation AWS::WAFv2::WebACL resource */
        base = "Properties";
    }
    char p[PATH_MAX_LEN], ns[256];
    struct gw_waf_acl *a = calloc(1, sizeof *a);
    if (!a) {
        cJSON_Delete(doc);
        return -ENOMEM;
    }
    a->default_action = GW_ACT_ALLOW;
    const char *name = "WebACL";
    if (cJSON_IsArray(acl)) {
        rl = acl; /* a bare Rules list */
        base = "Rules";
    } else if (cJSON_IsObject(acl)) {
        const char *n = want_string(&L, acl, "Name", base, false);
        if (n)
            name = n;
        const cJSON *da = get(acl, "DefaultAction");
        if (!da)
            bad(&L, sub(p, base, "DefaultAction"), "missing");
        else if (action(&L, da, sub(p, base, "DefaultAction"), &a->default_action,
                        &a->default_custom) &&
                 a->default_action == GW_ACT_COUNT)
            bad(&L, p, "must be Allow or Block");
        L.bodies = get(acl, "CustomResponseBodies");
        L.ipsets = get(acl, "IPSets");
        L.regex_sets = get(acl, "RegexPatternSets");
        if (!L.ipsets)
            L.ipsets = get(doc, "IPSets");
        if (!L.regex_sets)
            L.regex_sets = get(doc, "RegexPatternSets");
        rl = get(acl, "Rules");
        if (!rl)
            bad(&L, sub(p, base, "Rules"), "missing");
        base = *base ? (strcmp(base, "WebACL") ? "Properties.Rules" : "WebACL.Rules") : "Rules";
    } else {
        bad(&L, "$", "must be a WebACL object or a Rules array");
    }
    if (!(a->name = strdup(name))) {
        cJSON_Delete(doc);
        gw_waf_acl_free(a);
        return -ENOMEM;
    }
    acl_namespace(acl, name, ns, sizeof ns);
    L.ns = ns;
    if (rl)
        rules(&L, rl, base, false, &a->rules, &a->nrules);
    cJSON_Delete(doc);
    if (L.nerr) {
        if (L.nerr > MAX_ERRORS)
            sl_buf_printf(err, "... and %d more errors\n", L.nerr - MAX_ERRORS);
        gw_waf_acl_free(a);
        return SL_ERR_PARSE;
    }
    if (o && o->rule_metrics)
        a->m_default = sl_metric_child2(o->rule_metrics, "Default_Action",
                                        a->default_action == GW_ACT_BLOCK ? "BLOCK" : "ALLOW");
    int rc = gw_waf_memo_attach(a, o);
    pcre2_match_context *mc = rc < 0 ? NULL : pcre2_match_context_create(NULL);
    if (!mc) {
        gw_waf_acl_free(a);
        return rc < 0 ? rc : -ENOMEM;
    }
    /* A custom regex must not become a way to spend the gateway's time (docs/waf.md). */
    pcre2_set_match_limit(mc, GW_WAF_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, GW_WAF_DEPTH_LIMIT);
    a->mctx = mc;
    *out = a;
    return 0;
}

void gw_waf_acl_adopt_rates(struct gw_waf_acl *fresh, struct gw_waf_acl *old) {
    for (size_t i = 0; i < fresh->nrules; i++) {
        struct gw_waf_stmt *s = fresh->rules[i].stmt;
        if (s->kind != GW_STMT_RATE)
            continue;
        for (size_t j = 0; j < old->nrules; j++) {
            struct gw_waf_stmt *t = old->rules[j].stmt;
            if (t->kind != GW_STMT_RATE || strcmp(fresh->rules[i].name, old->rules[j].name) ||
                t->u.rate.agg != s->u.rate.agg ||
                gw_waf_rate_window(t->u.rate.table) != gw_waf_rate_window(s->u.rate.table) ||
                gw_waf_rate_limit(t->u.rate.table) != gw_waf_rate_limit(s->u.rate.table))
                continue;
            struct gw_waf_rate *tmp = s->u.rate.table;
            s->u.rate.table = t->u.rate.table;
            t->u.rate.table = tmp;
            break;
        }
    }
}
