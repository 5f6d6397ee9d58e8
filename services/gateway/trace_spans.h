/* The gateway's trace spans: timings taken along the pipeline, spans built when answered. */
#ifndef SLUICE_GW_TRACE_SPANS_H
#define SLUICE_GW_TRACE_SPANS_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway_internal.h"

/*
 * The request's span context (r->trace): a child of the client's traceparent, or a new trace,
 * with the tracer's sampling decision in its flags. Returns 0 or -EIO (no random bytes).
 */
int gw_trace_begin(struct gw_req *r);
/* Whether the request's spans are recorded (a tracer is on and the trace sampled). */
bool gw_trace_on(const struct gw_req *r);
/* Epoch nanoseconds for a timing mark, or 0 when the request is not traced. */
int64_t gw_trace_mark(const struct gw_req *r);
/* The context published in traceparent: the producer span's, a child of the server span. */
void gw_trace_publish_ctx(struct gw_req *r, struct sl_trace_ctx *out);
/* Emits the server span and its children (WAF, key, usage plan, publish, reply wait). */
void gw_trace_answered(struct gw_req *r);

#endif
