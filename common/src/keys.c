/* The keys file: strict JSON parsing, a digest-indexed table, lookup, generation and writing. */
#include "sluice/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/fileio.h"
#include "sluice/time.h"

#define HASH_PREFIX     "sha256:"
#define HASH_PREFIX_LEN 7
#define MAX_SAFE_INT    9007199254740992.0 /* 2^53: integers above lose precision in JSON */
#define MAX_RATE        1e9

/* A plan plus whether the file defined it (the implicit seed "default" is not written back). */
struct plan_entry {
    struct sl_plan plan;
    bool from_file;
};

struct sl_keys {
    atomic_uint refs;
    struct sl_key *keys;
    size_t nkeys, capkeys;
    struct plan_entry *plans;
    size_t nplans, capplans;
    /* Open-addressing indexes: slot value 0 = empty, otherwise key index + 1. */
    uint32_t *by_digest;
    uint32_t *by_id;
    size_t nslots; /* power of two, at least twice the number of keys */
};

static const struct sl_plan seed_plan = SL_PLAN_DEFAULT_INIT;

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- small validators ---- */

static bool id_char_ok(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

/* Ids and plan names share one conservative charset so they are safe as log and metric labels. */
static bool ident_ok(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!id_char_ok((unsigned char)s[i]))
            return false;
    return true;
}

/* Names are free text for humans: valid UTF-8, bounded, no control characters. */
static bool name_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    if (n > SL_KEYS_NAME_SIZE - 1)
        return false;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        size_t extra;
        uint32_t cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            extra = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            extra = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + extra >= n)
            return false;
        for (size_t j = 1; j <= extra; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) ||
            (extra == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += extra + 1;
    }
    return true;
}

/* Lowercase only: one spelling per hash keeps duplicates visible. */
static bool parse_hash(const char *s, uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    return strncmp(s, HASH_PREFIX, HASH_PREFIX_LEN) == 0 &&
           strlen(s) == HASH_PREFIX_LEN + 2 * SL_KEYS_DIGEST_LEN &&
           sl_hex_decode_lower(digest, s + HASH_PREFIX_LEN, SL_KEYS_DIGEST_LEN) == 0;
}

static void format_hash(const uint8_t digest[SL_KEYS_DIGEST_LEN], char out[80]) {
    memcpy(out, HASH_PREFIX, HASH_PREFIX_LEN);
    sl_hex_encode(out + HASH_PREFIX_LEN, digest, SL_KEYS_DIGEST_LEN);
    out[HASH_PREFIX_LEN + 2 * SL_KEYS_DIGEST_LEN] = '\0';
}

/* ---- table ---- */

static uint64_t digest_hash(const uint8_t *digest) {
    uint64_t h;
    memcpy(&h, digest, sizeof h); /* SHA-256 output is uniform already */
    return h;
}

static uint64_t id_hash(const char *id) {
    return sl_fnv1a(id, strlen(id)); /* ids are the operator's, not chosen by clients */
}

static int ensure_slots(struct sl_keys *k, size_t want_keys) {
    if (want_keys * 2 <= k->nslots)
        return 0;
    size_t n = 16;
    while (n < want_keys * 2)
        n *= 2;
    uint32_t *bd = calloc(n, sizeof *bd), *bi = calloc(n, sizeof *bi);
    if (!bd || !bi) {
        free(bd);
        free(bi);
        return -ENOMEM;
    }
    for (size_t i = 0; i < k->nkeys; i++) {
        size_t s = (size_t)digest_hash(k->keys[i].digest) & (n - 1);
        while (bd[s])
            s = (s + 1) & (n - 1);
        bd[s] = (uint32_t)(i + 1);
        s = (size_t)id_hash(k->keys[i].id) & (n - 1);
        while (bi[s])
            s = (s + 1) & (n - 1);
        bi[s] = (uint32_t)(i + 1);
    }
    free(k->by_digest);
    free(k->by_id);
    k->by_digest = bd;
    k->by_id = bi;
    k->nslots = n;
    return 0;
}

/* Index of the key with this digest, or -1; the full digest is compared in constant time. */
static long find_digest(const struct sl_keys *k, const uint8_t *digest) {
    if (!k->nslots)
        return -1;
    size_t mask = k->nslots - 1, s = (size_t)digest_hash(digest) & mask;
    for (; k->by_digest[s]; s = (s + 1) & mask) {
        size_t i = k->by_digest[s] - 1;
        if (CRYPTO_memcmp(k->keys[i].digest, digest, SL_KEYS_DIGEST_LEN) == 0)
            return (long)i;
    }
    return -1;
}

static long find_id(const struct sl_keys *k, const char *id) {
    if (!k->nslots)
        return -1;
    size_t mask = k->nslots - 1, s = (size_t)id_hash(id) & mask;
    for (; k->by_id[s]; s = (s + 1) & mask) {
        size_t i = k->by_id[s] - 1;
        if (strcmp(k->keys[i].id, id) == 0)
            return (long)i;
    }
    return -1;
}

static void index_digest(struct sl_keys *k, size_t i) {
    size_t mask = k->nslots - 1, s = (size_t)digest_hash(k->keys[i].digest) & mask;
    while (k->by_digest[s])
        s = (s + 1) & mask;
    k->by_digest[s] = (uint32_t)(i + 1);
}

static void unindex_digest(struct sl_keys *k, size_t i) {
    /* Rebuilding is simpler than tombstones and only sluicectl's rotate ever gets here. */
    (void)i;
    memset(k->by_digest, 0, k->nslots * sizeof *k->by_digest);
    for (size_t j = 0; j < k->nkeys; j++)
        if (j != i)
            index_digest(k, j);
}

/* Appends a record known to be valid and unique. */
static int push_key(struct sl_keys *k, const struct sl_key *rec) {
    if (k->nkeys >= UINT32_MAX - 1)
        return SL_ERR_TOO_LARGE;
    if (k->nkeys == k->capkeys) {
        size_t cap = k->capkeys ? k->capkeys * 2 : 16;
        struct sl_key *nk = realloc(k->keys, cap * sizeof *nk);
        if (!nk)
            return -ENOMEM;
        k->keys = nk;
        k->capkeys = cap;
    }
    int rc = ensure_slots(k, k->nkeys + 1);
    if (rc)
        return rc;
    size_t i = k->nkeys++;
    k->keys[i] = *rec;
    index_digest(k, i);
    size_t mask = k->nslots - 1, s = (size_t)id_hash(rec->id) & mask;
    while (k->by_id[s])
        s = (s + 1) & mask;
    k->by_id[s] = (uint32_t)(i + 1);
    return 0;
}

static struct plan_entry *find_plan(const struct sl_keys *k, const char *name) {
    for (size_t i = 0; i < k->nplans; i++)
        if (strcmp(k->plans[i].plan.name, name) == 0)
            return &k->plans[i];
    return NULL;
}

static int push_plan(struct sl_keys *k, const struct sl_plan *p, bool from_file) {
    struct plan_entry *e = find_plan(k, p->name);
    if (e) { /* only the implicit default can be redefined; the parser rejects other repeats */
        e->plan = *p;
        e->from_file = from_file;
        return 0;
    }
    if (k->nplans == k->capplans) {
        size_t cap = k->capplans ? k->capplans * 2 : 4;
        struct plan_entry *np = realloc(k->plans, cap * sizeof *np);
        if (!np)
            return -ENOMEM;
        k->plans = np;
        k->capplans = cap;
    }
    k->plans[k->nplans++] = (struct plan_entry){.plan = *p, .from_file = from_file};
    return 0;
}

int sl_keys_new(struct sl_keys **out) {
    struct sl_keys *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    atomic_init(&k->refs, 1u);
    if (push_plan(k, &seed_plan, false)) {
        free(k);
        return -ENOMEM;
    }
    *out = k;
    return 0;
}

struct sl_keys *sl_keys_ref(struct sl_keys *k) {
    atomic_fetch_add_explicit(&k->refs, 1u, memory_order_relaxed);
    return k;
}

void sl_keys_unref(struct sl_keys *k) {
    if (!k || atomic_fetch_sub_explicit(&k->refs, 1u, memory_order_acq_rel) != 1)
        return;
    free(k->keys);
    free(k->plans);
    free(k->by_digest);
    free(k->by_id);
    free(k);
}

size_t sl_keys_count(const struct sl_keys *k) {
    return k->nkeys;
}

const struct sl_key *sl_keys_at(const struct sl_keys *k, size_t i) {
    return i < k->nkeys ? &k->keys[i] : NULL;
}

const struct sl_key *sl_keys_find_id(const struct sl_keys *k, const char *id) {
    long i = find_id(k, id);
    return i < 0 ? NULL : &k->keys[i];
}

const struct sl_plan *sl_keys_plan(const struct sl_keys *k, const char *name) {
    struct plan_entry *e = find_plan(k, name);
    return e ? &e->plan : NULL;
}

size_t sl_keys_plan_count(const struct sl_keys *k) {
    return k->nplans;
}

const struct sl_plan *sl_keys_plan_at(const struct sl_keys *k, size_t i) {
    return i < k->nplans ? &k->plans[i].plan : NULL;
}

/* ---- parsing ---- */

struct parse_ctx {
    char *err;
    size_t errlen;
};

/* Reports a duplicate member: cJSON keeps both, and silently using the first would hide typos. */
static int check_members(struct parse_ctx *c, const cJSON *obj, const char *path,
                         const char *const *allowed) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(it->string, allowed[i]) == 0)
                known = true;
        if (!known)
            return fail(c->err, c->errlen, SL_ERR_PARSE, "%s%s%s: unknown field", path,
                        *path ? "." : "", it->string);
        for (const cJSON *o = obj->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0)
                return fail(c->err, c->errlen, SL_ERR_PARSE, "%s%s%s: duplicate field", path,
                            *path ? "." : "", it->string);
    }
    return 0;
}

static int get_integer(struct parse_ctx *c, const cJSON *item, const char *path, double min,
                       double max, double *out) {
    if (!cJSON_IsNumber(item))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected a number", path);
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || v < min || v > max)
        return fail(c->err, c->errlen, SL_ERR_PARSE, "%s: expected an integer from %.0f to %.0f",
                    path, min, max);
    *out = v;
    return 0;
}

static int parse_throttle(struct parse_ctx *c, const cJSON *t, const char *path,
                          struct sl_plan *p) {
    static const char *const allowed[] = {"rate", "burst", NULL};
    char sub[160];
    if (cJSON_IsNull(t))
        return 0;
    if (!cJSON_IsObject(t))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected an object or null", path);
    int rc = check_members(c, t, path, allowed);
    if (rc)
        return rc;
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(t, "rate");
    const cJSON *burst = cJSON_GetObjectItemCaseSensitive(t, "burst");
    snprintf(sub, sizeof sub, "%s.rate", path);
    if (!rate)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    if (!cJSON_IsNumber(rate))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected a number", sub);
    if (!isfinite(rate->valuedouble) || rate->valuedouble <= 0 || rate->valuedouble > MAX_RATE)
        return fail(c->err, c->errlen, SL_ERR_PARSE,
                    "%s: expected a number of requests per second above 0 and at most 1e9", sub);
    snprintf(sub, sizeof sub, "%s.burst", path);
    if (!burst)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    double b = 0;
    rc = get_integer(c, burst, sub, 1, (double)UINT32_MAX, &b);
    if (rc)
        return rc;
    p->rate = rate->valuedouble;
    p->burst = (uint32_t)b;
    return 0;
}

static int parse_quota(struct parse_ctx *c, const cJSON *q, const char *path, struct sl_plan *p) {
    static const char *const allowed[] = {"limit", "period", NULL};
    char sub[160];
    if (cJSON_IsNull(q))
        return 0;
    if (!cJSON_IsObject(q))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected an object or null", path);
    int rc = check_members(c, q, path, allowed);
    if (rc)
        return rc;
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(q, "limit");
    const cJSON *period = cJSON_GetObjectItemCaseSensitive(q, "period");
    snprintf(sub, sizeof sub, "%s.limit", path);
    if (!limit)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    double l = 0;
    rc = get_integer(c, limit, sub, 1, MAX_SAFE_INT, &l);
    if (rc)
        return rc;
    snprintf(sub, sizeof sub, "%s.period", path);
    if (!period)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    if (!cJSON_IsString(period))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected a string", sub);
    if (strcmp(period->valuestring, "DAY") == 0)
        p->quota_period = SL_QUOTA_DAY;
    else if (strcmp(period->valuestring, "WEEK") == 0)
        p->quota_period = SL_QUOTA_WEEK;
    else if (strcmp(period->valuestring, "MONTH") == 0)
        p->quota_period = SL_QUOTA_MONTH;
    else
        return fail(c->err, c->errlen, SL_ERR_PARSE, "%s: expected \"DAY\", \"WEEK\" or \"MONTH\"",
                    sub);
    p->quota_limit = (uint64_t)l;
    return 0;
}

static int parse_plans(struct parse_ctx *c, const cJSON *plans, struct sl_keys *k) {
    if (!cJSON_IsObject(plans))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "plans: expected an object");
    for (const cJSON *it = plans->child; it; it = it->next) {
        static const char *const allowed[] = {"throttle", "quota", NULL};
        if (!ident_ok(it->string, SL_PLAN_NAME_MAX - 1))
            return fail(c->err, c->errlen, SL_ERR_PARSE,
                        "plans: invalid plan name (expected 1 to %d characters of "
                        "A-Z a-z 0-9 _ . -)",
                        SL_PLAN_NAME_MAX - 1);
        char path[96], sub[128];
        snprintf(path, sizeof path, "plans.%s", it->string);
        for (const cJSON *o = plans->child; o != it; o = o->next)
            if (strcmp(o->string, it->string) == 0)
                return fail(c->err, c->errlen, SL_ERR_PARSE, "%s: duplicate plan", path);
        if (!cJSON_IsObject(it))
            return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected an object", path);
        int rc = check_members(c, it, path, allowed);
        if (rc)
            return rc;
        struct sl_plan p = {0};
        memcpy(p.name, it->string, strlen(it->string) + 1);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "throttle");
        snprintf(sub, sizeof sub, "%s.throttle", path);
        if (t && (rc = parse_throttle(c, t, sub, &p)))
            return rc;
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(it, "quota");
        snprintf(sub, sizeof sub, "%s.quota", path);
        if (q && (rc = parse_quota(c, q, sub, &p)))
            return rc;
        if ((rc = push_plan(k, &p, true)))
            return rc;
    }
    return 0;
}

static int get_time(struct parse_ctx *c, const cJSON *item, const char *path, int64_t *out) {
    *out = SL_KEYS_TIME_NONE;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item) || sl_time_parse_iso8601(item->valuestring, out) != 0)
        return fail(c->err, c->errlen, cJSON_IsString(item) ? SL_ERR_PARSE : SL_ERR_TYPE,
                    "%s: expected null or an RFC 3339 UTC timestamp like "
                    "\"2026-11-28T00:16:13Z\"",
                    path);
    return 0;
}

/* Validation shared by the parser and sl_keys_add; `path` is e.g. "keys[3]". */
static int check_record(struct parse_ctx *c, const struct sl_keys *k, const struct sl_key *rec,
                        const char *path) {
    if (!ident_ok(rec->id, SL_KEYS_ID_SIZE - 1))
        return fail(c->err, c->errlen, SL_ERR_PARSE,
                    "%s.id: expected 1 to %d characters of A-Z a-z 0-9 _ . -", path,
                    SL_KEYS_ID_SIZE - 1);
    if (!name_ok(rec->name))
        return fail(c->err, c->errlen, SL_ERR_PARSE,
                    "%s.name: expected UTF-8 text of at most %d bytes without control characters",
                    path, SL_KEYS_NAME_SIZE - 1);
    if (!find_plan(k, rec->plan))
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s.plan: no plan named \"%s\"", path,
                    rec->plan);
    long dup = find_id(k, rec->id);
    if (dup >= 0)
        return fail(c->err, c->errlen, -EEXIST, "%s.id: duplicate of keys[%ld]", path, dup);
    dup = find_digest(k, rec->digest);
    if (dup >= 0)
        return fail(c->err, c->errlen, -EEXIST, "%s.hash: duplicate of keys[%ld]", path, dup);
    return 0;
}

/* Copies a string member into a fixed field; over-long values are reported, never cut. */
static int get_string(struct parse_ctx *c, const cJSON *item, const char *path, char *out,
                      size_t outsize) {
    if (!cJSON_IsString(item))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected a string", path);
    size_t n = strlen(item->valuestring);
    if (n >= outsize)
        return fail(c->err, c->errlen, SL_ERR_PARSE, "%s: longer than %zu bytes", path,
                    outsize - 1);
    memcpy(out, item->valuestring, n + 1);
    return 0;
}

static int parse_key(struct parse_ctx *c, const cJSON *it, size_t idx, struct sl_keys *k) {
    static const char *const allowed[] = {"id",      "name",    "hash",    "plan", "enabled",
                                          "created", "expires", "revoked", NULL};
    char path[48], sub[96];
    snprintf(path, sizeof path, "keys[%zu]", idx);
    if (!cJSON_IsObject(it))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "%s: expected an object", path);
    int rc = check_members(c, it, path, allowed);
    if (rc)
        return rc;
    struct sl_key rec = {.enabled = true};
    memcpy(rec.plan, "default", sizeof "default");

    const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "id");
    snprintf(sub, sizeof sub, "%s.id", path);
    if (!v)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    if ((rc = get_string(c, v, sub, rec.id, sizeof rec.id)))
        return rc;
    if ((v = cJSON_GetObjectItemCaseSensitive(it, "name"))) {
        snprintf(sub, sizeof sub, "%s.name", path);
        if ((rc = get_string(c, v, sub, rec.name, sizeof rec.name)))
            return rc;
    }
    v = cJSON_GetObjectItemCaseSensitive(it, "hash");
    snprintf(sub, sizeof sub, "%s.hash", path);
    if (!v)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s: missing", sub);
    if (!cJSON_IsString(v) || !parse_hash(v->valuestring, rec.digest))
        return fail(c->err, c->errlen, cJSON_IsString(v) ? SL_ERR_PARSE : SL_ERR_TYPE,
                    "%s: expected \"sha256:\" followed by 64 lowercase hex digits", sub);
    if ((v = cJSON_GetObjectItemCaseSensitive(it, "plan"))) {
        snprintf(sub, sizeof sub, "%s.plan", path);
        if ((rc = get_string(c, v, sub, rec.plan, sizeof rec.plan)))
            return rc;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(it, "enabled"))) {
        if (!cJSON_IsBool(v))
            return fail(c->err, c->errlen, SL_ERR_TYPE, "%s.enabled: expected true or false", path);
        rec.enabled = cJSON_IsTrue(v);
    }
    snprintf(sub, sizeof sub, "%s.created", path);
    if ((rc = get_time(c, cJSON_GetObjectItemCaseSensitive(it, "created"), sub, &rec.created_ms)))
        return rc;
    snprintf(sub, sizeof sub, "%s.expires", path);
    if ((rc = get_time(c, cJSON_GetObjectItemCaseSensitive(it, "expires"), sub, &rec.expires_ms)))
        return rc;
    snprintf(sub, sizeof sub, "%s.revoked", path);
    if ((rc = get_time(c, cJSON_GetObjectItemCaseSensitive(it, "revoked"), sub, &rec.revoked_ms)))
        return rc;
    if ((rc = check_record(c, k, &rec, path)))
        return rc == -EEXIST ? SL_ERR_PARSE : rc;
    return push_key(k, &rec);
}

static void locate(const char *json, size_t off, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (json[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static int parse_root(struct parse_ctx *c, const cJSON *root, struct sl_keys *k) {
    static const char *const allowed[] = {"version", "plans", "keys", NULL};
    if (!cJSON_IsObject(root))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "(root): expected an object");
    int rc = check_members(c, root, "", allowed);
    if (rc)
        return rc;
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!version)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "version: missing");
    if (!cJSON_IsNumber(version))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "version: expected a number");
    if (version->valuedouble != SL_KEYS_VERSION)
        return fail(c->err, c->errlen, SL_ERR_VERSION,
                    "version: unsupported version %g (this build reads version %d)",
                    version->valuedouble, SL_KEYS_VERSION);
    const cJSON *plans = cJSON_GetObjectItemCaseSensitive(root, "plans");
    if (plans && (rc = parse_plans(c, plans, k)))
        return rc;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!keys)
        return fail(c->err, c->errlen, SL_ERR_MISSING, "keys: missing");
    if (!cJSON_IsArray(keys))
        return fail(c->err, c->errlen, SL_ERR_TYPE, "keys: expected an array");
    size_t idx = 0;
    for (const cJSON *it = keys->child; it; it = it->next, idx++)
        if ((rc = parse_key(c, it, idx, k)))
            return rc;
    return 0;
}

int sl_keys_parse(const char *json, size_t len, struct sl_keys **out, char *err, size_t errlen) {
    struct parse_ctx c = {.err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (len > SL_KEYS_FILE_MAX)
        return fail(err, errlen, SL_ERR_TOO_LARGE, "file is larger than %u bytes",
                    SL_KEYS_FILE_MAX);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t line, col;
        size_t off = end && end >= json && end <= json + len ? (size_t)(end - json) : 0;
        locate(json, off, &line, &col);
        return fail(err, errlen, SL_ERR_PARSE, "invalid JSON at line %zu, column %zu", line, col);
    }
    /* cJSON stops after the first value; anything but whitespace after it is an error. */
    for (const char *p = end; p && p < json + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            size_t line, col;
            locate(json, (size_t)(p - json), &line, &col);
            cJSON_Delete(root);
            return fail(err, errlen, SL_ERR_PARSE,
                        "invalid JSON at line %zu, column %zu: data after the top-level object",
                        line, col);
        }
    }
    struct sl_keys *k = NULL;
    int rc = sl_keys_new(&k);
    if (rc == 0)
        rc = parse_root(&c, root, k);
    cJSON_Delete(root);
    if (rc) {
        if (rc == -ENOMEM && err && errlen && !err[0])
            fail(err, errlen, rc, "out of memory");
        sl_keys_unref(k);
        return rc;
    }
    *out = k;
    return 0;
}

int sl_keys_load(const char *path, struct sl_keys **out, uint8_t digest_out[SL_KEYS_DIGEST_LEN],
                 char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open: %s", strerror(errno));
    struct sl_buf b;
    sl_buf_init(&b, SL_KEYS_FILE_MAX);
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = fail(err, errlen, -errno, "cannot read: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if ((rc = sl_buf_append(&b, chunk, (size_t)n))) {
            if (rc == SL_ERR_TOO_LARGE)
                fail(err, errlen, rc, "file is larger than %u bytes", SL_KEYS_FILE_MAX);
            else
                fail(err, errlen, rc, "out of memory");
            break;
        }
    }
    close(fd);
    if (rc == 0) {
        if (digest_out)
            sl_keys_hash_value(b.len ? b.data : "", b.len, digest_out);
        rc = sl_keys_parse(b.len ? b.data : "", b.len, out, err, errlen);
    }
    sl_buf_free(&b);
    return rc;
}

/* ---- lookup ---- */

/*
 * Every keyed request hashes the key it presents. OpenSSL 3 looks a digest up by name on every
 * EVP_Digest(EVP_sha256()) and allocates a context for it: about half the cost of hashing a
 * 46-byte key (callgrind: 5.9k instructions, 3.1k without). The algorithm is fetched once, and each
 * thread keeps one context.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *sha256_ctx;

static void sha256_fetch(void) {
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int sl_keys_hash_value(const char *value, size_t len, uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned int mdlen = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md)
        return -EIO;
    if (!sha256_ctx && !(sha256_ctx = EVP_MD_CTX_new()))
        return -ENOMEM;
    if (!EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(sha256_ctx, value, len) ||
        !EVP_DigestFinal_ex(sha256_ctx, digest, &mdlen) || mdlen != SL_KEYS_DIGEST_LEN)
        return -EIO;
    return 0;
}

enum sl_key_status sl_key_status_at(const struct sl_key *key, int64_t now_ms) {
    if (key->revoked_ms != SL_KEYS_TIME_NONE && now_ms >= key->revoked_ms)
        return SL_KEY_REVOKED;
    if (!key->enabled)
        return SL_KEY_DISABLED;
    if (key->expires_ms != SL_KEYS_TIME_NONE && now_ms >= key->expires_ms)
        return SL_KEY_EXPIRED;
    return SL_KEY_OK;
}

const char *sl_key_status_name(enum sl_key_status s) {
    switch (s) {
    case SL_KEY_OK:
        return "ok";
    case SL_KEY_UNKNOWN:
        return "unknown";
    case SL_KEY_DISABLED:
        return "disabled";
    case SL_KEY_EXPIRED:
        return "expired";
    case SL_KEY_REVOKED:
        return "revoked";
    }
    return "unknown";
}

enum sl_key_status sl_keys_lookup(const struct sl_keys *k, const char *value, size_t len,
                                  int64_t now_ms, const struct sl_key **key_out) {
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    if (key_out)
        *key_out = NULL;
    if (!value || sl_keys_hash_value(value, len, digest) != 0)
        return SL_KEY_UNKNOWN;
    long i = find_digest(k, digest);
    OPENSSL_cleanse(digest, sizeof digest);
    if (i < 0)
        return SL_KEY_UNKNOWN;
    if (key_out)
        *key_out = &k->keys[i];
    return sl_key_status_at(&k->keys[i], now_ms);
}

/* ---- generation and mutation ---- */

static int random_value(char value[SL_KEYS_VALUE_SIZE], uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned char raw[32];
    unsigned char b64[48]; /* 44 characters + NUL */
    int rc = 0;
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = -EIO;
        goto out;
    }
    if (EVP_EncodeBlock(b64, raw, sizeof raw) != 44) {
        rc = -EIO;
        goto out;
    }
    memcpy(value, "sk_", 3);
    for (size_t i = 0; i < 43; i++) { /* base64 -> base64url, the one '=' of padding dropped */
        char ch = (char)b64[i];
        value[3 + i] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    value[SL_KEYS_VALUE_LEN] = '\0';
    rc = sl_keys_hash_value(value, SL_KEYS_VALUE_LEN, digest);
    if (rc)
        OPENSSL_cleanse(value, SL_KEYS_VALUE_SIZE);
out:
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(b64, sizeof b64);
    return rc;
}

int sl_keys_generate(char value[SL_KEYS_VALUE_SIZE], char id[SL_KEYS_ID_SIZE],
                     uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -EIO;
    memcpy(id, "key_", 4);
    sl_hex_encode(id + 4, raw, sizeof raw);
    id[4 + 2 * sizeof raw] = '\0';
    return random_value(value, digest);
}

int sl_keys_add(struct sl_keys *k, const struct sl_key *rec, char *err, size_t errlen) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    struct parse_ctx c = {.err = err, .errlen = errlen};
    char path[48];
    snprintf(path, sizeof path, "keys[%zu]", k->nkeys);
    int rc = check_record(&c, k, rec, path);
    if (rc)
        return rc;
    rc = push_key(k, rec);
    if (rc)
        fail(err, errlen, rc, "%s", sl_strerror(rc));
    return rc;
}

int sl_keys_revoke(struct sl_keys *k, const char *id, int64_t now_ms) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    long i = find_id(k, id);
    if (i < 0)
        return -ENOENT;
    /* An earlier revocation stays; a scheduled (future) one is brought forward to now. */
    if (k->keys[i].revoked_ms == SL_KEYS_TIME_NONE || k->keys[i].revoked_ms > now_ms)
        k->keys[i].revoked_ms = now_ms;
    k->keys[i].enabled = false;
    return 0;
}

int sl_keys_rotate(struct sl_keys *k, const char *id, char value[SL_KEYS_VALUE_SIZE]) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    long i = find_id(k, id);
    if (i < 0)
        return -ENOENT;
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    int rc = random_value(value, digest);
    if (rc)
        return rc;
    /* 2^-256 odds of a clash; checked anyway because the index assumes unique digests. */
    if (find_digest(k, digest) >= 0) {
        OPENSSL_cleanse(value, SL_KEYS_VALUE_SIZE);
        return -EEXIST;
    }
    memcpy(k->keys[i].digest, digest, sizeof digest);
    unindex_digest(k, (size_t)i);
    index_digest(k, (size_t)i);
    return 0;
}

/* ---- serialization ---- */

static cJSON *time_json(int64_t ms) {
    char s[SL_TIME_STR_MAX];
    if (ms == SL_KEYS_TIME_NONE || sl_time_format_iso8601_compact(ms, s, sizeof s) < 0)
        return cJSON_CreateNull();
    return cJSON_CreateString(s);
}

static const char *period_name(enum sl_quota_period p) {
    switch (p) {
    case SL_QUOTA_DAY:
        return "DAY";
    case SL_QUOTA_WEEK:
        return "WEEK";
    case SL_QUOTA_MONTH:
        return "MONTH";
    case SL_QUOTA_NONE:
        break;
    }
    return NULL;
}

static cJSON *build_json(const struct sl_keys *k) {
    cJSON *root = cJSON_CreateObject(), *plans, *keys;
    if (!root || !cJSON_AddNumberToObject(root, "version", SL_KEYS_VERSION) ||
        !(plans = cJSON_AddObjectToObject(root, "plans")))
        goto err;
    for (size_t i = 0; i < k->nplans; i++) {
        const struct plan_entry *e = &k->plans[i];
        if (!e->from_file)
            continue;
        cJSON *p = cJSON_AddObjectToObject(plans, e->plan.name);
        if (!p)
            goto err;
        if (e->plan.rate > 0) {
            cJSON *t = cJSON_AddObjectToObject(p, "throttle");
            if (!t || !cJSON_AddNumberToObject(t, "rate", e->plan.rate) ||
                !cJSON_AddNumberToObject(t, "burst", e->plan.burst))
                goto err;
        }
        const char *period = period_name(e->plan.quota_period);
        if (e->plan.quota_limit > 0 && period) {
            cJSON *q = cJSON_AddObjectToObject(p, "quota");
            if (!q || !cJSON_AddNumberToObject(q, "limit", (double)e->plan.quota_limit) ||
                !cJSON_AddStringToObject(q, "period", period))
                goto err;
        }
    }
    if (!(keys = cJSON_AddArrayToObject(root, "keys")))
        goto err;
    for (size_t i = 0; i < k->nkeys; i++) {
        const struct sl_key *r = &k->keys[i];
        char hash[80];
        format_hash(r->digest, hash);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto err;
        cJSON_AddItemToArray(keys, o);
        cJSON *tc = time_json(r->created_ms), *te = time_json(r->expires_ms),
              *tr = time_json(r->revoked_ms);
        if (!cJSON_AddStringToObject(o, "id", r->id) ||
            !cJSON_AddStringToObject(o, "name", r->name) ||
            !cJSON_AddStringToObject(o, "hash", hash) ||
            !cJSON_AddStringToObject(o, "plan", r->plan) ||
            !cJSON_AddBoolToObject(o, "enabled", r->enabled) || !tc || !te || !tr) {
            cJSON_Delete(tc);
            cJSON_Delete(te);
            cJSON_Delete(tr);
            goto err;
        }
        cJSON_AddItemToObject(o, "created", tc);
        cJSON_AddItemToObject(o, "expires", te);
        cJSON_AddItemToObject(o, "revoked", tr);
    }
    return root;
err:
    cJSON_Delete(root);
    return NULL;
}

int sl_keys_serialize(const struct sl_keys *k, struct sl_buf *out) {
    cJSON *root = build_json(k);
    if (!root)
        return -ENOMEM;
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    int rc = sl_buf_reserve(out, n + 1);
    if (rc == 0) {
        sl_buf_append(out, s, n);
        sl_buf_append(out, "\n", 1);
    }
    cJSON_free(s);
    return rc;
}

/* ---- atomic write ---- */

int sl_keys_write_file(const struct sl_keys *k, const char *path, char *err, size_t errlen) {
    struct sl_buf json;
    sl_buf_init(&json, SL_KEYS_FILE_MAX);
    char *target = NULL, *tmp = NULL, *dir = NULL;
    int fd = -1, rc;
    struct stat st;

    if ((rc = sl_keys_serialize(k, &json))) {
        fail(err, errlen, rc, "cannot serialize: %s", sl_strerror(rc));
        goto out;
    }
    /* Replace a symlink's target, not the link: the link is someone else's indirection. */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        target = realpath(path, NULL);
    else
        target = strdup(path);
    if (!target) {
        rc = fail(err, errlen, -errno ? -errno : -ENOMEM, "cannot resolve %s: %s", path,
                  strerror(errno));
        goto out;
    }
    const char *slash = strrchr(target, '/');
    size_t dirlen = slash ? (size_t)(slash - target) : 0;
    dir = slash ? strndup(target, dirlen ? dirlen : 1) : strdup(".");
    const char *base = slash ? slash + 1 : target;
    size_t tmplen = strlen(target) + 32;
    tmp = malloc(tmplen);
    if (!dir || !tmp) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, tmplen, "%.*s%s.%s.tmp.XXXXXX", (int)dirlen, target, slash ? "/" : "", base);
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        rc = fail(err, errlen, -errno, "cannot create a temp file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (stat(target, &st) == 0 && fchmod(fd, st.st_mode & 07777) != 0) {
        rc = fail(err, errlen, -errno, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = sl_fileio_write_all(fd, json.data, json.len)) || (fsync(fd) != 0 && (rc = -errno))) {
        fail(err, errlen, rc, "cannot write %s: %s", tmp, strerror(-rc));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = fail(err, errlen, -errno, "cannot close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, target) != 0) {
        rc = fail(err, errlen, -errno, "cannot rename %s to %s: %s", tmp, target, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL; /* renamed: nothing to clean up any more */
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = fail(err, errlen, -errno, "cannot fsync directory %s: %s", dir, strerror(errno));
    }
    if (dfd >= 0)
        close(dfd);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    free(target);
    sl_buf_free(&json);
    return rc;
}
