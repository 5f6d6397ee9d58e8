/*
 * A Vectorscan prefilter for RegexMatchStatement: the same expression compiled by Vectorscan in
 * prefilter mode (HS_FLAG_PREFILTER), scanned before PCRE2 runs.
 *
 * Why: a large case-insensitive alternation (the known-bad-inputs group's Java deserialization
 * pattern, run over every header name and value) defeats PCRE2's start-byte checks, so PCRE2 runs
 * on nearly every value of a benign request. Vectorscan finds the alternation's literals with one
 * SIMD pass, and most values contain none of them.
 *
 * Why it never changes a verdict: in prefilter mode Vectorscan promises to report a match for
 * every input the expression matches (it may approximate constructs it does not support, such as
 * back references or lookarounds, by something that matches more, never less). So "no match" from
 * the prefilter means PCRE2 would not match either, and the statement answers false without
 * calling PCRE2; any match (or any scan error) still goes to PCRE2, which decides. Both engines
 * read the pattern as bytes (no UTF / UCP), with the same flags (none: PCRE2 is compiled with
 * options 0, the expression's own (?i) groups apply to both). An expression Vectorscan cannot
 * compile, or one that can match the empty string (the prefilter would have to report at every
 * offset), gets no prefilter: PCRE2 alone, as before.
 */
#include <hs.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "waf_internal.h"

/* Small expressions gain nothing: PCRE2's own start-byte optimisations already reject most
 * values, and a Vectorscan scan has a fixed cost of its own (measured with bench/waf). */
#define PREFILTER_MIN_PATTERN 64
/* A huge expression (a fuzzed document) would make the compile slow for little benefit. */
#define PREFILTER_MAX_PATTERN 65536

/*
 * Compiled databases, shared by expression text: a Vectorscan compile of a large alternation takes
 * a good part of a second, the managed groups use the same expression on several fields, and a
 * reload (or a test) compiles the same document again. A database is immutable and may be
 * scanned from any thread with its own scratch, so statements share it; entries stay after their
 * last user is freed (a reload comes back to them) up to CACHE_SLOTS, then the unused ones go.
 */
#define CACHE_SLOTS 32

struct cached {
    char *re;
    hs_database_t *db;
    size_t users;
};

static struct cached cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static hs_database_t *compile(const char *re) {
    hs_database_t *db = NULL;
    hs_compile_error_t *err = NULL;
    if (hs_compile(re, HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH, HS_MODE_BLOCK, NULL, &db, &err) !=
        HS_SUCCESS) {
        hs_free_compile_error(err);
        return NULL;
    }
    return db;
}

/* Takes a database for `re` (shared when cached); *owned: the caller must free it itself. */
static hs_database_t *acquire(const char *re, bool *owned) {
    *owned = false;
    pthread_mutex_lock(&cache_lock);
    struct cached *slot = NULL;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].re && strcmp(cache[i].re, re) == 0) {
            cache[i].users++;
            hs_database_t *db = cache[i].db;
            pthread_mutex_unlock(&cache_lock);
            return db;
        }
        if (!slot && (!cache[i].re || cache[i].users == 0))
            slot = &cache[i];
    }
    /* Compiled under the lock: two loads of one document wait for one compile. */
    hs_database_t *db = compile(re);
    char *copy = db && slot ? strdup(re) : NULL;
    if (copy) {
        if (slot->re) {
            free(slot->re);
            hs_free_database(slot->db);
        }
        *slot = (struct cached){.re = copy, .db = db, .users = 1};
    } else {
        *owned = db != NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    return db;
}

static void release(hs_database_t *db) {
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].re && cache[i].db == db) {
            cache[i].users--;
            pthread_mutex_unlock(&cache_lock);
            return;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    hs_free_database(db); /* not cached: the statement owned it */
}

/*
 * Short values the prefilter found nothing in, remembered per statement. A scan has a fixed cost
 * whatever the length (bench/waf), and most values a statement sees again and
 * again: header names, Host, Accept, a client's User-Agent, the paths of an API. Only "no
 * match" is remembered, only for the exact bytes (the hash picks the slot, the bytes decide), so
 * an entry can save a scan but never hide a match: a value that differs in one byte, or that
 * found a match, is scanned. Evaluation is single-threaded, like the scratch.
 */
#define MISS_SLOTS 64
#define MISS_MAX   48

struct misses {
    struct {
        uint64_t hash;
        uint32_t len; /* 0: empty */
        char bytes[MISS_MAX];
    } slot[MISS_SLOTS];
};

void gw_waf_prefilter_build(const char *re, uint32_t minlen, struct gw_waf_stmt *s) {
    s->u.regex.hs_db = NULL;
    s->u.regex.hs_scratch = NULL;
    s->u.regex.hs_misses = NULL;
    size_t len = strlen(re);
    if (minlen == 0 || len < PREFILTER_MIN_PATTERN || len > PREFILTER_MAX_PATTERN)
        return;
    bool owned;
    hs_database_t *db = acquire(re, &owned);
    if (!db)
        return; /* PCRE2 alone */
    hs_scratch_t *scratch = NULL;
    if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
        if (owned)
            hs_free_database(db);
        else
            release(db);
        return;
    }
    s->u.regex.hs_db = db;
    s->u.regex.hs_scratch = scratch;
    s->u.regex.hs_misses = calloc(1, sizeof(struct misses)); /* NULL: every value is scanned */
}

void gw_waf_prefilter_free(struct gw_waf_stmt *s) {
    if (s->u.regex.hs_db) {
        hs_free_scratch((hs_scratch_t *)s->u.regex.hs_scratch);
        release((hs_database_t *)s->u.regex.hs_db);
    }
    free(s->u.regex.hs_misses);
    s->u.regex.hs_db = NULL;
    s->u.regex.hs_scratch = NULL;
    s->u.regex.hs_misses = NULL;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx) {
    (void)id;
    (void)from;
    (void)to;
    (void)flags;
    *(bool *)ctx = true;
    return 1; /* one is enough: stop scanning */
}

const void *gw_waf_prefilter_misses(const struct gw_waf_stmt *s, size_t *len) {
    *len = s->u.regex.hs_misses ? sizeof(struct misses) : 0;
    return s->u.regex.hs_misses;
}

bool gw_waf_prefilter_may_match(const struct gw_waf_stmt *s, const char *p, size_t n,
                                bool remember) {
    if (!s->u.regex.hs_db || n > 0xffffffffu)
        return true;
    struct misses *m = s->u.regex.hs_misses;
    uint64_t hash = 0;
    size_t k = 0;
    if (m && n && n <= MISS_MAX) {
        hash = gw_waf_hash_bytes(p, n);
        k = hash % MISS_SLOTS;
        if (m->slot[k].len == n && m->slot[k].hash == hash && memcmp(m->slot[k].bytes, p, n) == 0)
            return false;
    }
    bool hit = false;
    hs_error_t rc = hs_scan((const hs_database_t *)s->u.regex.hs_db, p, (unsigned int)n, 0,
                            (hs_scratch_t *)s->u.regex.hs_scratch, on_match, &hit);
    if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED)
        return true; /* an error proves nothing: let PCRE2 decide */
    if (!hit && remember && m && n && n <= MISS_MAX) {
        m->slot[k].hash = hash;
        m->slot[k].len = (uint32_t)n;
        memcpy(m->slot[k].bytes, p, n);
    }
    return hit;
}
