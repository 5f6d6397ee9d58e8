/* The prefork pool: handler child processes that run one job at a time, told to its owner. */
#ifndef SLUICE_WORKER_POOL_H
#define SLUICE_WORKER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "dlq.h"
#include "sluice/buf.h"

/*
 * What the pool tells its owner. The pool only runs processes; the owner decides what a result
 * means (a reply to produce, a retry, a dead letter). `job` is the pointer given to wk_pool_run.
 */
struct wk_pool_events {
    /* A child answered the job it ran; payload is borrowed for the call. */
    void (*on_reply)(void *job, const uint8_t *payload, size_t len, void *data);
    /* A job's attempt failed: timed out, over the memory limit, broke the framing, its child
     * died, or the pool is closing. Told once per attempt. */
    void (*on_failed)(void *job, enum wk_reason reason, const char *why, void *data);
    /* A child died while the pool runs; it is restarted. */
    void (*on_child_died)(void *data);
    /* A child became idle or lost its job: the owner may run queued work. */
    void (*on_idle)(void *data);
    void *data;
};

struct wk_pool_config {
    uv_loop_t *loop;
    const char *exe; /* each child is `exe --child`; borrowed for the pool's life */
    size_t nchildren;
    uint64_t memory_limit; /* bytes of resident memory a busy child may use */
    struct wk_pool_events events;
};

enum wk_child_state { WK_CHILD_DOWN = 0, WK_CHILD_STARTING, WK_CHILD_IDLE, WK_CHILD_BUSY };

/* One handler process and the socket to it. Handles are reused after both closes finished. */
struct wk_child {
    struct wk_pool *pool;
    size_t index;
    enum wk_child_state state;
    uv_process_t proc;
    uv_pipe_t pipe;
    int open_handles;
    bool exited;
    void *job;
    uint64_t job_deadline_ns; /* monotonic; 0 when idle */
    bool failed;              /* a failure is already told for the running job */
    uint64_t restart_at_ns;
    int crashes_in_start; /* consecutive deaths before readiness: backs off restarts */
    struct sl_buf in;
    uv_write_t wreq;
    uint8_t hdr[4];
};

struct wk_pool {
    struct wk_pool_config cfg;
    struct wk_child *children; /* cfg.nchildren */
    bool closing;
    int pending_closes;
    void (*closed_cb)(void *data);
    void *closed_data;
};

/* Allocates the children (none started); 0 or -ENOMEM. */
int wk_pool_init(struct wk_pool *p, const struct wk_pool_config *cfg);
/* Frees what init allocated: after the close callback, or when the pool never started. */
void wk_pool_free(struct wk_pool *p);
int wk_pool_start(struct wk_pool *p);
/* An idle child, or NULL. */
struct wk_child *wk_pool_idle(struct wk_pool *p);
/* Sends one frame to an idle child, its payload `head` then `payload` (either may be empty), to
 * be answered within timeout_ms; 0, or a negative code (nothing changed). */
int wk_pool_run(struct wk_child *c, const void *head, size_t hlen, const void *payload, size_t len,
                int64_t timeout_ms, void *job);
/* Timeouts, memory watchdog, restarts; called from the owner's tick. */
void wk_pool_tick(struct wk_pool *p);
size_t wk_pool_ready(const struct wk_pool *p);
size_t wk_pool_busy(const struct wk_pool *p);
/* Closes every child's socket (a clean stop) and kills the busy ones, whose jobs fail; cb when
 * all are gone. */
void wk_pool_close(struct wk_pool *p, void (*cb)(void *data), void *data);

#endif
