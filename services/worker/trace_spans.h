/* The worker's trace spans (docs/tracing.md): a consumer span per record, a span per handler
 * attempt and one per produce of its reply or dead letter. */
#ifndef SLUICE_WK_TRACE_SPANS_H
#define SLUICE_WK_TRACE_SPANS_H

#include "worker_internal.h"

/* At read, after the record's trace context was parsed (j->trace_parent): the consumer span's
 * context, with the sampler's decision. */
void wk_trace_received(struct wk_job *j);
/* An attempt starts (its span's context into j->attempt_span and j->attempt_head) / ended
 * (outcome: a reason, or WK_REASON_COUNT for ok). */
void wk_trace_attempt_start(struct wk_job *j);
void wk_trace_attempt_end(struct wk_job *j, int outcome);
/* The first produce of the job's reply or dead letter. */
void wk_trace_emitting(struct wk_job *j);
/* Everything acknowledged: the produce spans and the consumer span end. */
void wk_trace_finished(struct wk_job *j);

#endif
