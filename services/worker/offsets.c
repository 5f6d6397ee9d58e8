/* In-flight offsets per partition: the commit point is the lowest unfinished offset. */
#include "offsets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

void wk_offsets_init(struct wk_offsets *o) {
    memset(o, 0, sizeof *o);
    o->next = -1;
    o->hold = -1;
}

void wk_offsets_free(struct wk_offsets *o) {
    free(o->offs);
    free(o->done);
    wk_offsets_init(o);
}

void wk_offsets_reset(struct wk_offsets *o) {
    o->head = o->len = 0;
    o->next = -1;
    o->hold = -1;
}

void wk_offsets_hold(struct wk_offsets *o, int64_t offset) {
    if (o->hold < 0 || offset < o->hold)
        o->hold = offset;
}

int wk_offsets_track(struct wk_offsets *o, int64_t offset) {
    if (o->len > o->head && offset <= o->offs[o->len - 1])
        return -EINVAL;
    if (o->len == o->cap) {
        if (o->head > 0) { /* slide the live window to the front before growing */
            size_t live = o->len - o->head;
            memmove(o->offs, o->offs + o->head, live * sizeof *o->offs);
            memmove(o->done, o->done + o->head, live);
            o->head = 0;
            o->len = live;
        }
        if (o->len == o->cap) {
            size_t cap = o->cap ? o->cap * 2 : 64;
            int64_t *offs = realloc(o->offs, cap * sizeof *offs);
            if (!offs)
                return -ENOMEM;
            o->offs = offs;
            unsigned char *done = realloc(o->done, cap);
            if (!done)
                return -ENOMEM;
            o->done = done;
            o->cap = cap;
        }
    }
    o->offs[o->len] = offset;
    o->done[o->len] = 0;
    o->len++;
    o->next = offset + 1;
    return 0;
}

int wk_offsets_done(struct wk_offsets *o, int64_t offset, int64_t *store) {
    size_t lo = o->head, hi = o->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->offs[mid] < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == o->len || o->offs[lo] != offset || o->done[lo])
        return SL_ERR_MISSING;
    o->done[lo] = 1;
    if (lo != o->head)
        return 0;
    while (o->head < o->len && o->done[o->head])
        o->head++;
    int64_t point = o->head < o->len ? o->offs[o->head] : o->next;
    if (o->head == o->len)
        o->head = o->len = 0;
    /* Nothing past a held record is committed (storing the hold again is harmless). */
    if (o->hold >= 0 && point > o->hold)
        point = o->hold;
    *store = point;
    return 1;
}

size_t wk_offsets_pending(const struct wk_offsets *o) {
    size_t n = 0;
    for (size_t i = o->head; i < o->len; i++)
        n += !o->done[i];
    return n;
}

int64_t wk_offsets_lag(const struct wk_offsets *o, int64_t high, int64_t position) {
    int64_t low = o->head < o->len ? o->offs[o->head] : o->next;
    if (low < 0)
        low = position;
    if (high < 0 || low < 0)
        return -1;
    return high > low ? high - low : 0;
}
