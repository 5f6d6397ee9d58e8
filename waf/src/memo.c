/* The memo of values past requests brought and the statements known not to match them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "waf_internal.h"

/*
 * Whether remembering a statement's verdicts pays: it must depend on the value's bytes alone
 * (not the client's address, a rate, labels, other statements), and evaluating it must cost
 * more than a lookup. A size check, or an exact, prefix or suffix compare on a value as it came,
 * costs a few instructions; with transformations to run first they are worth it too.
 */
static bool worth(const struct gw_waf_stmt *s) {
    bool plain = s->tx.n == 0 || (s->tx.n == 1 && s->tx.t[0] == GW_TX_NONE);
    switch (s->kind) {
    case GW_STMT_REGEX:
    case GW_STMT_SQLI:
    case GW_STMT_XSS:
        return true;
    case GW_STMT_BYTE:
        return !plain || s->u.byte.pos == GW_POS_CONTAINS || s->u.byte.pos == GW_POS_CONTAINS_WORD;
    case GW_STMT_SIZE:
        return !plain;
    default:
        return false;
    }
}

/* The whole field a statement reads, when gw_waf_known_clear can judge it; 0 otherwise. */
static uint8_t whole_field(const struct gw_waf_field *f) {
    switch (f->kind) {
    case GW_FIELD_URI_PATH:
        return GW_WAF_WHOLE_PATH;
    case GW_FIELD_QUERY_STRING:
        return GW_WAF_WHOLE_QUERY;
    case GW_FIELD_METHOD:
        return GW_WAF_WHOLE_METHOD;
    case GW_FIELD_BODY:
        return GW_WAF_WHOLE_BODY;
    case GW_FIELD_HEADERS:
        /* every header, names and values: no include or exclude list, scope ALL */
        return !f->ninclude && !f->nexclude && f->scope == GW_SCOPE_ALL ? GW_WAF_WHOLE_HEADERS : 0;
    default:
        return 0;
    }
}

static void number_rules(struct gw_waf_rule *r, size_t n, int *next);

static void number(struct gw_waf_stmt *s, int *next) {
    if (!s)
        return;
    s->memo = -1;
    s->whole = 0;
    switch (s->kind) {
    case GW_STMT_AND:
    case GW_STMT_OR:
    case GW_STMT_NOT:
        for (size_t i = 0; i < s->u.logic.n; i++)
            number(s->u.logic.kids[i], next);
        return;
    case GW_STMT_RATE:
        number(s->u.rate.scope_down, next);
        return;
    case GW_STMT_GROUP:
        number(s->u.group.scope_down, next);
        number_rules(s->u.group.group->rules, s->u.group.group->nrules, next);
        return;
    default:
        if (worth(s) && *next < GW_WAF_MEMO_STMTS) {
            s->memo = (int16_t)(*next)++;
            s->whole = whole_field(&s->field);
        }
        return;
    }
}

static void number_rules(struct gw_waf_rule *r, size_t n, int *next) {
    for (size_t i = 0; i < n; i++)
        number(r[i].stmt, next);
}

int gw_waf_memo_attach(struct gw_waf_acl *a, const struct gw_waf_load_opts *o) {
    bool off = o && o->memo_off;
    int next = off ? GW_WAF_MEMO_STMTS : 0; /* off: the bits are all taken, every memo is -1 */
    number_rules(a->rules, a->nrules, &next);
    if (off || next == 0)
        return 0;
    /* About 64 KiB, touched only where values land. */
    if (!(a->memo = calloc(1, sizeof *a->memo)))
        return -ENOMEM;
    return 0;
}

struct gw_waf_memo_entry *gw_waf_memo_find(struct gw_waf_memo *m, const char *p, size_t n) {
    uint64_t h = gw_waf_hash_bytes(p, n);
    _Static_assert(GW_WAF_MEMO_SLOTS == 256, "the slot is the hash's top 8 bits");
    struct gw_waf_memo_entry *e = &m->slot[h >> 56];
    if (e->len == n && e->hash == h && memcmp(e->bytes, p, n) == 0)
        return e;
    e->hash = h;
    e->len = (uint32_t)n;
    e->gen++;
    memset(e->known, 0, sizeof e->known);
    memcpy(e->bytes, p, n);
    return e;
}
