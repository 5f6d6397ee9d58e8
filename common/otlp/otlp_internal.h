/* Internals of the OTLP tracer shared by its files and its unit tests. */
#ifndef SLUICE_OTLP_INTERNAL_H
#define SLUICE_OTLP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/otlp.h"

/* Resource attributes: heap key/value strings, all exported as stringValue. */
struct sl_otlp_kv {
    char *key;
    char *value;
};

#define SL_OTLP_MAX_RESOURCE_ATTRS 64

struct sl_otlp_resource {
    struct sl_otlp_kv items[SL_OTLP_MAX_RESOURCE_ATTRS];
    size_t n;
};

/*
 * Parses OTEL_RESOURCE_ATTRIBUTES ("k=v,k=v", keys and values percent-decoded, blanks around
 * them trimmed, empty members skipped) and appends to `res`. Returns 0, or -EINVAL with `res`
 * unchanged (the specification: on any parse error the whole value is discarded), or -ENOMEM.
 */
int sl_otlp_resource_parse(const char *s, struct sl_otlp_resource *res);
/*
 * The resource a tracer exports: service.name first (precedence in sl_otlp_options), the other
 * parsed attributes in their order, then telemetry.sdk.name and telemetry.sdk.language.
 */
int sl_otlp_resource_build(const struct sl_otlp_options *o, struct sl_otlp_resource *res);
void sl_otlp_resource_free(struct sl_otlp_resource *res);

/*
 * Encodes an ExportTraceServiceRequest in the OTLP/JSON mapping (hex ids, enums as integers,
 * 64-bit integers as strings). Returns a heap string (free()) or NULL when out of memory.
 */
char *sl_otlp_encode_json(const struct sl_otlp_resource *res,
                          const struct sl_otlp_span *const *spans, size_t n);

/*
 * The bounded queue: a ring of span values. The export thread claims [head, head + n) and reads
 * those slots without the lock while producers write only past head + count, so a claimed slot
 * is never overwritten before it is released. All calls need the tracer's mutex.
 */
struct sl_otlp_queue {
    struct sl_otlp_span *slots;
    uint32_t cap, head, count;
};

int sl_otlp_queue_init(struct sl_otlp_queue *q, uint32_t cap);
void sl_otlp_queue_destroy(struct sl_otlp_queue *q);
/* Copies `s` in; -ENOBUFS when full. */
int sl_otlp_queue_push(struct sl_otlp_queue *q, const struct sl_otlp_span *s);
/* Points out[0..n) at the oldest n spans (n <= count); they stay until sl_otlp_queue_release. */
void sl_otlp_queue_peek(const struct sl_otlp_queue *q, uint32_t n, const struct sl_otlp_span **out);
void sl_otlp_queue_release(struct sl_otlp_queue *q, uint32_t n);

struct sl_otlp_tracer {
    struct sl_otlp_options opt;
    struct sl_otlp_resource resource;
    char *url;

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* the export thread waits here */
    pthread_cond_t drained; /* flushers wait here */
    struct sl_otlp_queue q;
    bool stopping;
    bool exporting;
    uint64_t flush_requests;
    pthread_t thread;
    _Atomic int64_t abort_at_ns; /* monotonic; 0: never. Ends a POST in flight at shutdown. */

    _Atomic uint64_t exported, failed, dropped;
    struct sl_metric *m_exported, *m_failed, *m_dropped, *m_queue;
};

/* Counts `n` spans as dropped (stats and metric). */
void sl_otlp_count_dropped(struct sl_otlp_tracer *t, uint64_t n);

#endif
