/* Per-partition bookkeeping of in-flight offsets: what may be committed when work finishes
 * out of order. */
#ifndef SLUICE_WORKER_OFFSETS_H
#define SLUICE_WORKER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The offsets of one partition read but not yet finished, in increasing order (Kafka hands
 * them out in order). Finishing marks one done; the commit point is the lowest unfinished
 * offset, or the last tracked + 1 when none is left. The struct owns its arrays; zero it or
 * call wk_offsets_init, release with wk_offsets_free.
 */
struct wk_offsets {
    int64_t *offs;
    unsigned char *done;
    size_t head, len, cap; /* live entries are [head, len) */
    int64_t next;          /* last tracked + 1; -1 before the first */
    int64_t hold;          /* the lowest record that could not be tracked; -1 when none */
};

void wk_offsets_init(struct wk_offsets *o);
void wk_offsets_free(struct wk_offsets *o);
/* Forgets everything, a hold too (after a revocation). */
void wk_offsets_reset(struct wk_offsets *o);
/* Adds an offset; it must be above every tracked one (-EINVAL otherwise), or -ENOMEM. */
int wk_offsets_track(struct wk_offsets *o, int64_t offset);
/*
 * A record at `offset` was read but could not be tracked (out of memory): the commit point
 * never moves past it until wk_offsets_reset, so the record is read again after the next
 * assignment (a rebalance or a restart) instead of being committed unseen.
 */
void wk_offsets_hold(struct wk_offsets *o, int64_t offset);
/*
 * Marks `offset` finished. Returns 1 and sets *store (the next offset to read, what Kafka
 * commits) when the commit point moved, 0 when it did not, SL_ERR_MISSING for an offset that
 * is not tracked.
 */
int wk_offsets_done(struct wk_offsets *o, int64_t offset, int64_t *store);
/* Offsets tracked and not finished. */
size_t wk_offsets_pending(const struct wk_offsets *o);
/*
 * Consumer lag of the partition: `high` (the high watermark, the next offset the broker will
 * write) minus the commit point (the lowest unfinished offset, or the last tracked + 1), or
 * minus `position` (the next offset the consumer will hand out) when nothing was tracked since
 * the assignment. -1 when unknown (a negative high watermark or position); never below 0.
 */
int64_t wk_offsets_lag(const struct wk_offsets *o, int64_t high, int64_t position);

#endif
