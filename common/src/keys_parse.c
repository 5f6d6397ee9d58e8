/* The keys file's strict JSON parser and its validators; every error names a JSON path. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "keys_internal.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/time.h"

#define MAX_SAFE_INT 9007199254740992.0 /* 2^53: integers above lose precision in JSON */
#define MAX_RATE     1e9

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

/* ---- parsing ---- */

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
        if ((rc = sl_keys__push_plan(k, &p, true)))
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
int sl_keys__check_record(struct parse_ctx *c, const struct sl_keys *k, const struct sl_key *rec,
                          const char *path) {
    if (!ident_ok(rec->id, SL_KEYS_ID_SIZE - 1))
        return fail(c->err, c->errlen, SL_ERR_PARSE,
                    "%s.id: expected 1 to %d characters of A-Z a-z 0-9 _ . -", path,
                    SL_KEYS_ID_SIZE - 1);
    if (!name_ok(rec->name))
        return fail(c->err, c->errlen, SL_ERR_PARSE,
                    "%s.name: expected UTF-8 text of at most %d bytes without control characters",
                    path, SL_KEYS_NAME_SIZE - 1);
    if (!sl_keys__find_plan(k, rec->plan))
        return fail(c->err, c->errlen, SL_ERR_MISSING, "%s.plan: no plan named \"%s\"", path,
                    rec->plan);
    long dup = sl_keys__find_id(k, rec->id);
    if (dup >= 0)
        return fail(c->err, c->errlen, -EEXIST, "%s.id: duplicate of keys[%ld]", path, dup);
    dup = sl_keys__find_digest(k, rec->digest);
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
    if ((rc = sl_keys__check_record(c, k, &rec, path)))
        return rc == -EEXIST ? SL_ERR_PARSE : rc;
    return sl_keys__push_key(k, &rec);
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
