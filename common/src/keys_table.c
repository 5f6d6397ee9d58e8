/* The keys table: reference counting, the digest and id indexes, and the accessors. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keys_internal.h"
#include "sluice/buf.h"
#include "sluice/error.h"

static const struct sl_plan default_plan = SL_PLAN_DEFAULT_INIT;

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
long sl_keys__find_digest(const struct sl_keys *k, const uint8_t *digest) {
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

long sl_keys__find_id(const struct sl_keys *k, const char *id) {
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

void sl_keys__index_digest(struct sl_keys *k, size_t i) {
    size_t mask = k->nslots - 1, s = (size_t)digest_hash(k->keys[i].digest) & mask;
    while (k->by_digest[s])
        s = (s + 1) & mask;
    k->by_digest[s] = (uint32_t)(i + 1);
}

void sl_keys__unindex_digest(struct sl_keys *k, size_t i) {
    /* Rebuilding is simpler than tombstones and only sluicectl's rotate ever gets here. */
    (void)i;
    memset(k->by_digest, 0, k->nslots * sizeof *k->by_digest);
    for (size_t j = 0; j < k->nkeys; j++)
        if (j != i)
            sl_keys__index_digest(k, j);
}

/* Appends a record known to be valid and unique. */
int sl_keys__push_key(struct sl_keys *k, const struct sl_key *rec) {
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
    sl_keys__index_digest(k, i);
    size_t mask = k->nslots - 1, s = (size_t)id_hash(rec->id) & mask;
    while (k->by_id[s])
        s = (s + 1) & mask;
    k->by_id[s] = (uint32_t)(i + 1);
    return 0;
}

struct plan_entry *sl_keys__find_plan(const struct sl_keys *k, const char *name) {
    for (size_t i = 0; i < k->nplans; i++)
        if (strcmp(k->plans[i].plan.name, name) == 0)
            return &k->plans[i];
    return NULL;
}

int sl_keys__push_plan(struct sl_keys *k, const struct sl_plan *p, bool from_file) {
    struct plan_entry *e = sl_keys__find_plan(k, p->name);
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
    if (sl_keys__push_plan(k, &default_plan, false)) {
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
    long i = sl_keys__find_id(k, id);
    return i < 0 ? NULL : &k->keys[i];
}

const struct sl_plan *sl_keys_plan(const struct sl_keys *k, const char *name) {
    struct plan_entry *e = sl_keys__find_plan(k, name);
    return e ? &e->plan : NULL;
}

size_t sl_keys_plan_count(const struct sl_keys *k) {
    return k->nplans;
}

const struct sl_plan *sl_keys_plan_at(const struct sl_keys *k, size_t i) {
    return i < k->nplans ? &k->plans[i].plan : NULL;
}
