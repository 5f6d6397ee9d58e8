/* Requests in flight: recycled request objects, their references, and the in-flight table. */
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/time.h"

/* Request objects are recycled through a bounded free list: no malloc per request. */
#define GW_FREE_REQS_MAX 1024

struct gw_req *gw_req_new(struct gw_gateway *g) {
    struct gw_req *r = g->free_reqs;
    if (r) {
        g->free_reqs = r->next;
        g->nfree_reqs--;
        memset(r, 0, sizeof *r);
    } else if (!(r = calloc(1, sizeof *r))) {
        return NULL;
    }
    g->live_reqs++;
    r->g = g;
    r->refs = 1;
    return r;
}

void gw_req_unref(struct gw_req *r) {
    if (--r->refs > 0)
        return;
    struct gw_gateway *g = r->g;
    g->live_reqs--;
    if (g->nfree_reqs < GW_FREE_REQS_MAX) {
        r->next = g->free_reqs;
        g->free_reqs = r;
        g->nfree_reqs++;
    } else {
        free(r);
    }
    if (g->live_reqs == 0 && g->on_idle)
        g->on_idle(g);
}

void gw_req_free_list(struct gw_gateway *g) {
    while (g->free_reqs) {
        struct gw_req *r = g->free_reqs;
        g->free_reqs = r->next;
        free(r);
    }
    g->nfree_reqs = 0;
}

/* ---- the in-flight table ----------------------------------------------------------------- */

/* Request ids are random UUIDs, so FNV-1a spreads them well. */
static size_t hash_id(const char *id, size_t len) {
    return (size_t)sl_fnv1a(id, len);
}

int gw_inflight_init(struct gw_inflight *t, size_t max) {
    size_t n = 16;
    while (n < max * 2)
        n *= 2;
    t->buckets = calloc(n, sizeof *t->buckets);
    if (!t->buckets)
        return -ENOMEM;
    t->mask = n - 1;
    t->count = 0;
    t->max = max;
    return 0;
}

void gw_inflight_free(struct gw_inflight *t) {
    free(t->buckets);
    t->buckets = NULL;
}

int gw_inflight_add(struct gw_inflight *t, struct gw_req *r) {
    if (t->count >= t->max)
        return SL_ERR_TOO_LARGE;
    size_t b = hash_id(r->id, strlen(r->id)) & t->mask;
    r->next = t->buckets[b];
    t->buckets[b] = r;
    t->count++;
    return 0;
}

struct gw_req *gw_inflight_find(struct gw_inflight *t, const char *id, size_t len) {
    for (struct gw_req *r = t->buckets[hash_id(id, len) & t->mask]; r; r = r->next)
        if (strlen(r->id) == len && !memcmp(r->id, id, len))
            return r;
    return NULL;
}

void gw_inflight_remove(struct gw_inflight *t, struct gw_req *r) {
    struct gw_req **pp = &t->buckets[hash_id(r->id, strlen(r->id)) & t->mask];
    for (; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            t->count--;
            return;
        }
}

/* ---- waiting for the reply --------------------------------------------------------------- */

int gw_await_start(struct gw_req *r, uv_timer_cb cb, uint64_t timeout_ms) {
    struct gw_gateway *g = r->g;
    if (gw_inflight_add(&g->inflight, r) < 0)
        return SL_ERR_TOO_LARGE;
    uv_timer_init(g->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    r->refs++; /* released in the timer's close callback */
    uv_timer_start(&r->timer, cb, timeout_ms, 0);
    r->state = GW_REQ_AWAIT;
    sl_gauge_add(g->m.in_flight, 1);
    return 0;
}

static void on_timer_closed(uv_handle_t *h) {
    gw_req_unref(h->data);
}

void gw_await_end(struct gw_req *r) {
    gw_inflight_remove(&r->g->inflight, r);
    sl_gauge_add(r->g->m.in_flight, -1);
    if (r->timer_open) {
        r->timer_open = false;
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    }
}
