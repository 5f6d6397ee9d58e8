/* The WAF engine's internal model: a compiled web ACL and the per-request evaluation context. */
#ifndef SLUICE_WAF_INTERNAL_H
#define SLUICE_WAF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/http.h"

struct sl_metric_family;
struct sl_metric;
struct cJSON;

/* AWS WAF inspects at most this much of a body (API Gateway's default, 16 KiB). */
#define GW_WAF_BODY_LIMIT     16384
#define GW_WAF_MAX_TRANSFORMS 10 /* AWS's own cap per statement */
#define GW_WAF_CTX_LABELS     64 /* labels one request can collect; the verdict keeps 16 */
#define GW_WAF_MAX_FWD_IPS    10 /* addresses of a forwarded header AWS looks at */

enum gw_waf_tx {
    GW_TX_NONE = 0,
    GW_TX_URL_DECODE,
    GW_TX_URL_DECODE_UNI,
    GW_TX_HTML_ENTITY_DECODE,
    GW_TX_LOWERCASE,
    GW_TX_COMPRESS_WHITE_SPACE,
    GW_TX_CMD_LINE,
    GW_TX_NORMALIZE_PATH,
    GW_TX_NORMALIZE_PATH_WIN,
    GW_TX_REMOVE_NULLS,
    GW_TX_REPLACE_NULLS,
    GW_TX_REPLACE_COMMENTS,
    GW_TX_JS_DECODE,
    GW_TX_CSS_DECODE,
    GW_TX_BASE64_DECODE,
    GW_TX_BASE64_DECODE_EXT,
    GW_TX_HEX_DECODE,
    GW_TX_SQL_HEX_DECODE,
    GW_TX_ESCAPE_SEQ_DECODE,
    GW_TX_COUNT,
};

/* Transformation names as WAFv2 spells them; NULL-free, indexed by enum gw_waf_tx. */
extern const char *const gw_waf_tx_names[GW_TX_COUNT];

/* One transformation on in[0..n) into out (room for n bytes: none of them grows its input).
 * Returns the output length. */
size_t gw_waf_transform(enum gw_waf_tx t, const char *in, size_t n, char *out);

enum gw_waf_field_kind {
    GW_FIELD_SINGLE_HEADER,
    GW_FIELD_HEADERS,
    GW_FIELD_SINGLE_QUERY_ARG,
    GW_FIELD_ALL_QUERY_ARGS,
    GW_FIELD_QUERY_STRING,
    GW_FIELD_URI_PATH,
    GW_FIELD_METHOD,
    GW_FIELD_BODY,
    GW_FIELD_JSON_BODY,
    GW_FIELD_COOKIES,
};

enum gw_waf_scope { GW_SCOPE_ALL, GW_SCOPE_KEY, GW_SCOPE_VALUE };
enum gw_waf_oversize { GW_OVERSIZE_CONTINUE, GW_OVERSIZE_MATCH, GW_OVERSIZE_NO_MATCH };
enum gw_waf_fallback {
    GW_FALLBACK_NONE,
    GW_FALLBACK_MATCH,
    GW_FALLBACK_NO_MATCH,
    GW_FALLBACK_STRING
};

/* A FieldToMatch, compiled. Names are lowercased copies owned by the ACL. */
struct gw_waf_field {
    enum gw_waf_field_kind kind;
    char *name; /* SingleHeader / SingleQueryArgument, lowercased */
    size_t name_len;
    enum gw_waf_scope scope;
    enum gw_waf_oversize oversize;
    enum gw_waf_fallback fallback; /* JsonBody InvalidFallbackBehavior */
    char **include;                /* IncludedHeaders / IncludedCookies / IncludedPaths */
    size_t ninclude;
    char **exclude; /* ExcludedHeaders / ExcludedCookies */
    size_t nexclude;
};

struct gw_waf_tx_list {
    size_t n;
    uint8_t t[GW_WAF_MAX_TRANSFORMS];
    /* gw_waf_tx_seal: the kinds of byte some transformation of the list acts on (fields.c);
     * 0 until sealed, and an unsealed list is run transformation by transformation. */
    uint16_t acts_on;
};

enum gw_waf_stmt_kind {
    GW_STMT_BYTE,
    GW_STMT_REGEX,
    GW_STMT_SIZE,
    GW_STMT_SQLI,
    GW_STMT_XSS,
    GW_STMT_IPSET,
    GW_STMT_RATE,
    GW_STMT_LABEL,
    GW_STMT_AND,
    GW_STMT_OR,
    GW_STMT_NOT,
    GW_STMT_GROUP,
};

enum gw_waf_pos {
    GW_POS_EXACTLY,
    GW_POS_STARTS_WITH,
    GW_POS_ENDS_WITH,
    GW_POS_CONTAINS,
    GW_POS_CONTAINS_WORD
};
enum gw_waf_cmp { GW_CMP_EQ, GW_CMP_NE, GW_CMP_LE, GW_CMP_LT, GW_CMP_GE, GW_CMP_GT };
enum gw_waf_fwd_pos { GW_FWD_FIRST, GW_FWD_LAST, GW_FWD_ANY };
enum gw_waf_agg { GW_AGG_IP, GW_AGG_FORWARDED_IP, GW_AGG_CONSTANT };

/* An address range: IPv4 is kept as an IPv4-mapped IPv6 address so one compare serves both. */
struct gw_waf_cidr {
    uint8_t addr[16];
    unsigned prefix; /* over the 128-bit form */
};

/* ForwardedIPConfig / IPSetForwardedIPConfig: where a forwarded address comes from. */
struct gw_waf_fwd {
    bool on;
    char *header; /* lowercased */
    bool fallback_match;
    enum gw_waf_fwd_pos position;
};

struct gw_waf_rate;  /* rate.c: per-key counters of one RateBasedStatement */
struct gw_waf_group; /* a compiled managed rule group (below) */

struct gw_waf_stmt {
    enum gw_waf_stmt_kind kind;
    struct gw_waf_field field;
    struct gw_waf_tx_list tx;
    /* memo.c: this statement's bit in a remembered value's `known` set; -1: always evaluated. */
    int16_t memo;
    /* memo.c: which of the request's whole fields (GW_WAF_WHOLE_*) the statement reads, so the
     * memo can clear it before dispatch; 0: none of them. */
    uint8_t whole;
    union {
        struct {
            char *s;
            size_t n;
            enum gw_waf_pos pos;
        } byte;
        struct {
            void *code;  /* pcre2_code_8 */
            void *mdata; /* pcre2_match_data_8, reused: evaluation is single-threaded */
            bool jit;
            /* What PCRE2's study says any match needs, checked before calling it: most values
             * of a benign request fail here, and a call costs far more than a memchr. */
            uint32_t minlen;
            int first;    /* the byte every match starts with, or -1 */
            int required; /* a byte every match contains, or -1 */
            /* Their other case (or -1): PCRE2 does not say whether a code unit is compared
             * caselessly (an inline (?i) never shows in its options), so a letter's other case
             * counts too. */
            int first_other, required_other;
            bool has_bitmap;
            uint8_t bitmap[32]; /* the bytes a match can start with */
            /* prefilter.c: the expression in Vectorscan prefilter mode (NULL: none). */
            void *hs_db;      /* hs_database_t */
            void *hs_scratch; /* hs_scratch_t, reused like mdata */
            void *hs_misses;  /* short values the prefilter found nothing in (prefilter.c) */
        } regex;
        struct {
            enum gw_waf_cmp op;
            uint64_t size;
        } size;
        struct {
            bool high;
        } sqli;
        struct {
            struct gw_waf_cidr *cidrs;
            size_t n;
            struct gw_waf_fwd fwd;
        } ipset;
        struct {
            struct gw_waf_rate *table;
            struct gw_waf_stmt *scope_down; /* NULL: every request counts */
            enum gw_waf_agg agg;
            struct gw_waf_fwd fwd;
        } rate;
        struct {
            bool ns; /* Scope NAMESPACE */
            char *key;
            size_t n;
        } label;
        struct {
            struct gw_waf_stmt **kids;
            size_t n;
        } logic;
        struct {
            struct gw_waf_group *group;
            struct gw_waf_stmt *scope_down;
        } group;
    } u;
};

enum gw_waf_rule_action { GW_ACT_ALLOW, GW_ACT_BLOCK, GW_ACT_COUNT, GW_ACT_GROUP };

struct gw_waf_header_kv {
    char *name;
    char *value;
};

/* A Block's CustomResponse: status, body (from CustomResponseBodies) and headers. `hh` views
 * the same headers as the HTTP server takes them, Content-Type first when there is a body. */
struct gw_waf_custom {
    int status;
    char *body;
    size_t body_len;
    const char *content_type;
    struct gw_waf_header_kv *headers; /* names already carry AWS's "x-amzn-waf-" prefix */
    size_t nheaders;
    struct sl_http_header *hh;
    size_t nhh;
};

struct gw_waf_rule {
    char *name;
    int64_t priority;
    struct gw_waf_stmt *stmt;
    enum gw_waf_rule_action action; /* GROUP: a rule group runs; `override_count` applies */
    bool override_count;            /* OverrideAction Count on a group rule */
    struct gw_waf_custom custom;    /* status 0: the gateway's 403 */
    char **labels;                  /* fully qualified (namespace + name) */
    size_t nlabels;
    char *metric_name;
    struct sl_metric *m_allowed, *m_blocked, *m_counted;
};

struct gw_waf_group {
    char *name;
    struct gw_waf_rule *rules; /* sorted by Priority; actions already overridden */
    size_t nrules;
};

/* A compiled web ACL: immutable once loaded except the rate counters. */
struct gw_waf_acl {
    char *name;
    enum gw_waf_rule_action default_action; /* ALLOW or BLOCK */
    struct gw_waf_custom default_custom;
    struct gw_waf_rule *rules; /* sorted by Priority */
    size_t nrules;
    size_t rate_capacity;
    struct sl_metric *m_default;
    struct gw_waf_memo *memo; /* memo.c; NULL: every statement evaluates every value */
    void *mctx;               /* pcre2_match_context_8: the match and depth limits */
};

/* PCRE2's limits on one match attempt (docs/waf.md, "Match errors"). The match limit counts
 * backtracking steps per start position; the depth limit bounds the interpreter's backtracking
 * memory (the JIT is bounded by its 32 KiB stack instead). */
#define GW_WAF_MATCH_LIMIT 10000
#define GW_WAF_DEPTH_LIMIT 1000

/* Options of a load: the per-rule counter family (labels rule, action; may be NULL) and the
 * rate tables' size. */
struct gw_waf_load_opts {
    struct sl_metric_family *rule_metrics;
    size_t rate_capacity; /* keys per rate-based rule; 0: GW_WAF_RATE_CAPACITY */
    bool memo_off;        /* no gw_waf_memo (tests compare verdicts with and without it) */
};

#define GW_WAF_RATE_CAPACITY 16384

/*
 * acl.c: compiles a web ACL document (a WebACL object, `{"WebACL": {...}}` as get-web-acl prints
 * it, or a bare `Rules` list). On error returns SL_ERR_PARSE and appends one line per problem
 * to err, each starting with the JSON path. The result is owned by the caller
 * (gw_waf_acl_free).
 */
int gw_waf_acl_load(const char *json, size_t len, const struct gw_waf_load_opts *o,
                    struct gw_waf_acl **out, struct sl_buf *err);
void gw_waf_acl_free(struct gw_waf_acl *a);
/* Moves rate counters from `old` into `fresh` for rate rules with the same name and shape, so a
 * reload does not reset everybody's rate. */
void gw_waf_acl_adopt_rates(struct gw_waf_acl *fresh, struct gw_waf_acl *old);

/* The shipped documents (data/waf, embedded at build time): name -> JSON text, or NULL. */
const char *gw_waf_data(const char *name, size_t *len);

/* rate.c */
int gw_waf_rate_new(size_t capacity, uint32_t window_sec, int64_t limit, struct gw_waf_rate **out);
void gw_waf_rate_free(struct gw_waf_rate *r);
/* Counts one request for `key` at now_ms and returns the count over the window, this one included.
 */
int64_t gw_waf_rate_hit(struct gw_waf_rate *r, const uint8_t key[16], int64_t now_ms);
/* Whether `key` is over the limit right now, without counting. */
int64_t gw_waf_rate_peek(struct gw_waf_rate *r, const uint8_t key[16], int64_t now_ms);
int64_t gw_waf_rate_limit(const struct gw_waf_rate *r);
uint32_t gw_waf_rate_window(const struct gw_waf_rate *r);

/*
 * memo.c: what past requests showed about their short values. The same bytes come again and
 * again (Host, User-Agent, Accept, the paths of an API; never the API key, see fields.c), and a
 * statement's verdict on a value depends on nothing but the value's bytes (its transformations are
 * part of the statement). So each remembered value keeps the set of statements known NOT to match
 * it, and a statement asked about it again answers from the set. Only "no match" is remembered,
 * only for the exact bytes (the hash picks the slot, a full compare decides), and only a
 * verdict reached the normal way: an entry can save an evaluation but never hide a match.
 * Owned by one compiled ACL (a reload starts empty); evaluation is single-threaded.
 */
#define GW_WAF_MEMO_STMTS 256 /* statements with a bit; the ones after them always evaluate */
#define GW_WAF_MEMO_MAX   192 /* longest value remembered */
#define GW_WAF_MEMO_SLOTS 256 /* values remembered; a new value takes its slot's place */

/* The fields a statement can be cleared on as a whole (gw_waf_known_clear): one value of the
 * request, or every header name and value. */
enum {
    GW_WAF_WHOLE_PATH = 1,
    GW_WAF_WHOLE_QUERY,
    GW_WAF_WHOLE_METHOD,
    GW_WAF_WHOLE_BODY,
    GW_WAF_WHOLE_HEADERS,
    GW_WAF_WHOLE_COUNT
};

struct gw_waf_memo_entry {
    uint64_t hash;
    uint32_t len; /* 0: free */
    uint32_t gen; /* changes whenever the slot takes another value */
    uint64_t known[GW_WAF_MEMO_STMTS / 64];
    char bytes[GW_WAF_MEMO_MAX];
};

struct gw_waf_memo {
    uint64_t hits;                  /* statements answered from the memo (tests) */
    struct gw_waf_memo_entry empty; /* the empty value (a missing body, query string, ...) */
    struct gw_waf_memo_entry slot[GW_WAF_MEMO_SLOTS];
};

/* Numbers the statements worth remembering and gives `a` its memo (unless o->memo_off, or none
 * is worth it). Returns 0 or -ENOMEM. */
int gw_waf_memo_attach(struct gw_waf_acl *a, const struct gw_waf_load_opts *o);
/* The entry holding p[0..n) (1 <= n <= GW_WAF_MEMO_MAX), its slot taken over if it held
 * another value. (The empty value has its own entry, m->empty.) */
struct gw_waf_memo_entry *gw_waf_memo_find(struct gw_waf_memo *m, const char *p, size_t n);

static inline bool gw_waf_memo_known(const struct gw_waf_memo_entry *e, int bit) {
    return (e->known[bit >> 6] >> (bit & 63)) & 1u;
}

static inline void gw_waf_memo_learn(struct gw_waf_memo_entry *e, int bit) {
    e->known[bit >> 6] |= UINT64_C(1) << (bit & 63);
}

/* A hash of a value's bytes, eight a step; it only ever picks a slot, the bytes decide. */
static inline uint64_t gw_waf_hash_bytes(const char *p, size_t n) {
    const uint64_t mul = 0xff51afd7ed558ccdu;
    uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15u;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * mul;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        h = (h ^ w) * mul;
        h ^= h >> 32;
    }
    return h;
}

/* Growable scratch owned by the WAF object: grown, never shrunk, so steady state allocates nothing.
 */
struct gw_waf_scratch {
    char *a, *b;
    size_t cap;
    /* The last client address parsed, as text and as bytes: keep-alive connections and a load
     * balancer in front repeat one address, and parsing it was most of an IP rule's cost. */
    char ip_text[48];
    uint8_t ip[16];
    bool ip_ok;
};

/* One evaluation. Lives on the caller's stack; lazily parsed parts are cached here. */
struct gw_waf_ctx {
    const struct sl_http_request *req;
    const char *client_ip;
    int64_t now_ms;
    struct gw_waf_scratch *scr;
    const char *labels[GW_WAF_CTX_LABELS];
    size_t nlabels;
    bool have_ip, ip_ok;
    uint8_t ip[16];
    /* waf.c: the socket peer is no trusted proxy, so forwarded-IP headers count as absent. */
    bool fwd_untrusted;
    int json_state; /* 0 not parsed, 1 parsed, -1 invalid */
    struct cJSON *json;
    struct gw_waf_memo *memo; /* the ACL's (gw_waf_acl_eval sets it); NULL: none */
    void *mctx;               /* the ACL's pcre2 match context (gw_waf_acl_eval sets it) */
    /* fields.c: the value being checked is a secret (the API key): no cache keeps it. */
    bool secret;
    /* eval.c: regex evaluations PCRE2 ended with an error, the last error and the rule. */
    uint32_t match_errors;
    int match_error_rc;
    const char *match_error_rule;
    /* fields.c: a JSON body whose strings can hold NUL (a raw NUL or \u0000): the strings
     * decoded again from the text into json_text at their own offsets, as cJSON ends its
     * strings at the first NUL. */
    char *json_text;
    /* fields.c: per whole field (GW_WAF_WHOLE_* - 1), the statements the memo knew not to
     * match all of its values when first asked in this request (bit w of whole_have). */
    uint8_t whole_have;
    uint64_t whole_known[GW_WAF_WHOLE_COUNT - 1][GW_WAF_MEMO_STMTS / 64];
    /* fields.c: what is known about the request's values many statements look at (headers,
     * body, path): which bytes that some transformation acts on they hold, and their memo
     * entry; keyed by address and length, zeroed with the context. */
    struct gw_waf_value_facts {
        const char *p;
        size_t n;
        uint8_t mask;
        uint8_t have;  /* VALUE_MASK, VALUE_MEMO: which of the two is filled in */
        uint16_t slot; /* memo slot + 1 */
        uint32_t gen;  /* the slot's gen when it was looked up */
    } feat[64];
};

/* fields.c: what the memo knows about a whole field of the request (GW_WAF_WHOLE_*), taken the
 * first time it is asked in a request (c->whole_known[whole - 1]). */
const uint64_t *gw_waf_whole_known(struct gw_waf_ctx *c, int whole);

/* True when `s` certainly does not match: its field is one value of the request (path, query
 * string, method, body), or every header name and value, and the memo knows it matches none of
 * them. false: evaluate it. Inline: the rule loop asks for most statements of an ACL. */
static inline bool gw_waf_known_clear(struct gw_waf_ctx *c, const struct gw_waf_stmt *s) {
    if (!s->whole || !c->memo)
        return false;
    const uint64_t *known = (c->whole_have & (1u << s->whole)) ? c->whole_known[s->whole - 1]
                                                               : gw_waf_whole_known(c, s->whole);
    if (!((known[s->memo >> 6] >> (s->memo & 63)) & 1u))
        return false;
    c->memo->hits++;
    return true;
}
/* fields.c: fills tx->acts_on, once the list is complete. */
void gw_waf_tx_seal(struct gw_waf_tx_list *tx);
/* fields.c: calls `fn` on every (transformed) value the field yields until it returns true.
 * Returns true when some value matched (or the oversize handling says MATCH). */
typedef bool (*gw_waf_value_fn)(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, const char *p,
                                size_t n);
bool gw_waf_field_any(struct gw_waf_ctx *c, const struct gw_waf_stmt *s, gw_waf_value_fn fn);
void gw_waf_ctx_release(struct gw_waf_ctx *c);
/* Parses a textual address into the 16-byte form (IPv4 mapped). */
bool gw_waf_parse_ip(const char *s, size_t n, uint8_t out[16]);
bool gw_waf_cidr_contains(const struct gw_waf_cidr *c, const uint8_t ip[16]);
/*
 * The addresses a forwarded-IP header holds, as `f->position` selects them (FIRST, LAST or up to
 * GW_WAF_MAX_FWD_IPS for ANY). Returns how many parsed; -1 when the header is absent, -2 when a
 * selected entry is not an address (the caller applies FallbackBehavior to both).
 */
int gw_waf_forwarded_ips(const struct sl_http_request *req, const struct gw_waf_fwd *f,
                         uint8_t out[][16]);

/*
 * prefilter.c: a Vectorscan prefilter for a RegexMatchStatement. build sets u.regex.hs_db /
 * hs_scratch (NULL when the expression gets none); may_match is false only when the expression
 * certainly does not match p[0..n).
 */
void gw_waf_prefilter_build(const char *re, uint32_t minlen, struct gw_waf_stmt *s);
void gw_waf_prefilter_free(struct gw_waf_stmt *s);
bool gw_waf_prefilter_may_match(const struct gw_waf_stmt *s, const char *p, size_t n,
                                bool remember);
/* The statement's remembered misses as raw memory, for tests that check what it keeps. */
const void *gw_waf_prefilter_misses(const struct gw_waf_stmt *s, size_t *len);

/* eval.c */
struct gw_waf_result {
    enum gw_waf_rule_action action; /* ALLOW or BLOCK (terminating) */
    const struct gw_waf_rule *rule; /* NULL: the default action */
    const struct gw_waf_rule *group_rule;
    const struct gw_waf_custom *custom;
};
void gw_waf_acl_eval(const struct gw_waf_acl *a, struct gw_waf_ctx *c, struct gw_waf_result *out);
bool gw_waf_stmt_match(struct gw_waf_ctx *c, const struct gw_waf_stmt *s);
/* The text of a PCRE2 error code (match_error_rc) into buf. */
void gw_waf_match_error_text(int rc, char *buf, size_t len);

#endif
