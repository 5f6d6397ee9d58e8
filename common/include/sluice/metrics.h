/* Counters, gauges and histograms, rendered in the Prometheus text exposition format. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

/*
 * A registry owns metric families; a family owns its children (one per label-value tuple).
 * Lifecycle: sl_metrics_new -> register families -> look up children (cache the pointers:
 * they stay valid until sl_metrics_free) -> update on the hot path -> render on /metrics.
 *
 * Threading: updates use relaxed atomics, so a child may be updated from any thread (e.g.
 * librdkafka callbacks); registering families, creating children and rendering must happen
 * on one thread (the service's loop thread).
 */
struct sl_metrics;
struct sl_metric_family;
struct sl_metric;

enum sl_metric_type { SL_METRIC_COUNTER, SL_METRIC_GAUGE, SL_METRIC_HISTOGRAM };

#define SL_METRICS_MAX_LABELS  4
#define SL_METRICS_MAX_BUCKETS 24

struct sl_metrics *sl_metrics_new(void);
/* Frees the registry, its families and all children. */
void sl_metrics_free(struct sl_metrics *m);

/*
 * Registers a family. `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*; `labels` is a comma-separated
 * list of label names or NULL. Strings are copied. Returns NULL on invalid arguments, a
 * duplicate name, or out of memory.
 */
struct sl_metric_family *sl_metrics_counter(struct sl_metrics *m, const char *name,
                                            const char *help, const char *labels);
struct sl_metric_family *sl_metrics_gauge(struct sl_metrics *m, const char *name, const char *help,
                                          const char *labels);
/* `bounds` are the upper bounds of the buckets in increasing order (+Inf is implicit). */
struct sl_metric_family *sl_metrics_histogram(struct sl_metrics *m, const char *name,
                                              const char *help, const char *labels,
                                              const double *bounds, size_t nbounds);

/*
 * Returns the child for the given label values (exactly as many as the family has labels),
 * creating it on first use. Values are copied and escaped when rendered. Returns NULL on a
 * wrong count or out of memory. Cache the result: lookup is a linear scan.
 */
struct sl_metric *sl_metric_child(struct sl_metric_family *f, size_t nvalues,
                                  const char *const *values);
/* Shorthand for families without labels. */
struct sl_metric *sl_metric_get(struct sl_metric_family *f);
/* Shorthands for one and two label values. */
struct sl_metric *sl_metric_child1(struct sl_metric_family *f, const char *v1);
struct sl_metric *sl_metric_child2(struct sl_metric_family *f, const char *v1, const char *v2);

void sl_counter_inc(struct sl_metric *c);
void sl_counter_add(struct sl_metric *c, uint64_t n);
void sl_gauge_set(struct sl_metric *g, int64_t v);
void sl_gauge_add(struct sl_metric *g, int64_t delta);
/* Observes a value (e.g. seconds) into a histogram. */
void sl_histogram_observe(struct sl_metric *h, double v);

/* Reads back a counter or gauge value (tests, readiness logic). */
int64_t sl_metric_value(const struct sl_metric *m);
/* Histogram count and sum. */
uint64_t sl_histogram_count(const struct sl_metric *h);
double sl_histogram_sum(const struct sl_metric *h);

/* Appends the whole registry in the Prometheus text format (version 0.0.4). */
int sl_metrics_render(const struct sl_metrics *m, struct sl_buf *out);

/* Latency buckets in seconds used by every service (0.5 ms .. 30 s). */
extern const double sl_metrics_latency_buckets[];
extern const size_t sl_metrics_latency_nbuckets;
/* The same with 0.1 and 0.25 ms in front, for the hops of the request path (mostly below a
 * millisecond on an idle machine; bench/e2e estimates their p50 from the buckets). */
extern const double sl_metrics_hop_buckets[];
extern const size_t sl_metrics_hop_nbuckets;

#endif
