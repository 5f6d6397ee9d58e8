/* Rate-based rules: per-key request counts over a sliding window, in a fixed-size table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "waf_internal.h"

/*
 * The window is cut into RATE_SLOTS slots; a key's count is the sum of the slots inside the
 * window, so the window slides in steps of window/RATE_SLOTS. The table is open-addressed with a
 * short probe; when every probed slot is taken, the entry seen least recently is evicted, which
 * bounds memory at `capacity` keys however many addresses send traffic.
 */
#define RATE_SLOTS 10
#define RATE_PROBE 8

struct entry {
    uint8_t key[16];
    bool used;
    int64_t last; /* slot index (time / slot_ms) of the latest hit */
    uint32_t counts[RATE_SLOTS];
};

struct gw_waf_rate {
    size_t mask;
    struct entry *e;
    int64_t slot_ms;
    uint32_t window;
    int64_t limit;
};

int gw_waf_rate_new(size_t capacity, uint32_t window_sec, int64_t limit, struct gw_waf_rate **out) {
    size_t cap = 16;
    while (cap < capacity)
        cap <<= 1;
    struct gw_waf_rate *r = calloc(1, sizeof *r);
    if (!r || !(r->e = calloc(cap, sizeof *r->e))) {
        free(r);
        return -ENOMEM;
    }
    r->mask = cap - 1;
    r->window = window_sec;
    r->slot_ms = (int64_t)window_sec * 1000 / RATE_SLOTS;
    r->limit = limit;
    *out = r;
    return 0;
}

void gw_waf_rate_free(struct gw_waf_rate *r) {
    if (r)
        free(r->e);
    free(r);
}

int64_t gw_waf_rate_limit(const struct gw_waf_rate *r) {
    return r->limit;
}

uint32_t gw_waf_rate_window(const struct gw_waf_rate *r) {
    return r->window;
}

static uint64_t hash(const uint8_t key[16]) {
    uint64_t h = sl_fnv1a(key, 16);
    return h ^ (h >> 29);
}

/* Zeroes the slots that fell out of the window since the entry's last hit. */
static void advance(struct entry *e, int64_t slot) {
    if (slot <= e->last)
        return;
    if (slot - e->last >= RATE_SLOTS) {
        memset(e->counts, 0, sizeof e->counts);
    } else {
        for (int64_t s = e->last + 1; s <= slot; s++)
            e->counts[s % RATE_SLOTS] = 0;
    }
    e->last = slot;
}

static int64_t total(const struct entry *e) {
    int64_t t = 0;
    for (size_t i = 0; i < RATE_SLOTS; i++)
        t += e->counts[i];
    return t;
}

static struct entry *find(struct gw_waf_rate *r, const uint8_t key[16], bool create, int64_t slot) {
    size_t h = (size_t)hash(key);
    struct entry *victim = NULL;
    for (size_t i = 0; i < RATE_PROBE; i++) {
        struct entry *e = &r->e[(h + i) & r->mask];
        if (e->used && memcmp(e->key, key, 16) == 0)
            return e;
        if (!e->used) {
            if (!victim || victim->used)
                victim = e;
        } else if (!victim || (victim->used && e->last < victim->last)) {
            victim = e;
        }
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, key, 16);
    victim->used = true;
    victim->last = slot;
    return victim;
}

int64_t gw_waf_rate_hit(struct gw_waf_rate *r, const uint8_t key[16], int64_t now_ms) {
    int64_t slot = now_ms / r->slot_ms;
    struct entry *e = find(r, key, true, slot);
    advance(e, slot);
    if (e->counts[slot % RATE_SLOTS] < UINT32_MAX)
        e->counts[slot % RATE_SLOTS]++;
    return total(e);
}

int64_t gw_waf_rate_peek(struct gw_waf_rate *r, const uint8_t key[16], int64_t now_ms) {
    int64_t slot = now_ms / r->slot_ms;
    struct entry *e = find(r, key, false, slot);
    if (!e)
        return 0;
    advance(e, slot);
    return total(e);
}
