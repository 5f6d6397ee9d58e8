/* OpenTelemetry spans: a per-process tracer that samples, queues and exports them over OTLP/HTTP.
 */
#ifndef SLUICE_OTLP_H
#define SLUICE_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/config.h"
#include "sluice/metrics.h"
#include "sluice/trace.h"

/*
 * Lifecycle: sl_otlp_tracer_new_from_env (or sl_otlp_tracer_new) once at start, on the loop
 * thread -> sl_otlp_span_start / set attributes / sl_otlp_span_end on any thread ->
 * sl_otlp_tracer_free at shutdown (a final flush bounded by `shutdown_timeout_ms`).
 *
 * A NULL tracer is valid everywhere and means "tracing off": every call is then a cheap no-op
 * and spans started on it do not record. A span of an unsampled trace does not record either.
 *
 * Threading: spans are plain values owned by whoever started them (a stack variable, a field of
 * the request object); one span is used by one thread at a time. sl_otlp_span_end copies the
 * span into the tracer's bounded queue under a short mutex and returns; a separate export thread
 * batches the queue and POSTs OTLP/HTTP JSON with libcurl. A full queue drops the span and
 * counts it: ending a span never waits for the network. The export thread does not survive a
 * fork: a forked child must not use its parent's tracer.
 *
 * Library: sluice_otlp (links libcurl), separate from sluice_common so that binaries without
 * tracing do not link libcurl.
 */

enum sl_otlp_span_kind {
    SL_OTLP_KIND_UNSPECIFIED = 0,
    SL_OTLP_KIND_INTERNAL = 1,
    SL_OTLP_KIND_SERVER = 2,
    SL_OTLP_KIND_CLIENT = 3,
    SL_OTLP_KIND_PRODUCER = 4,
    SL_OTLP_KIND_CONSUMER = 5,
};

enum sl_otlp_status_code {
    SL_OTLP_STATUS_UNSET = 0,
    SL_OTLP_STATUS_OK = 1,
    SL_OTLP_STATUS_ERROR = 2,
};

enum sl_otlp_sampler {
    SL_OTLP_SAMPLER_ALWAYS_ON = 0,
    SL_OTLP_SAMPLER_ALWAYS_OFF,
    SL_OTLP_SAMPLER_TRACEIDRATIO,
    SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_ON,
    SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_OFF,
    SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO,
};

/* Fixed per-span limits: a span is one flat value, so recording never allocates. */
#define SL_OTLP_MAX_ATTRS    24 /* span, event and link attributes together */
#define SL_OTLP_MAX_EVENTS   4
#define SL_OTLP_MAX_LINKS    4
#define SL_OTLP_STRINGS_SIZE 1024 /* name, keys, string values, status message */

enum sl_otlp_value_type {
    SL_OTLP_VALUE_STRING = 0,
    SL_OTLP_VALUE_INT,
    SL_OTLP_VALUE_DOUBLE,
    SL_OTLP_VALUE_BOOL,
};

/* The parts below are private to the module: use the functions, never the fields. */
struct sl_otlp_attr {
    uint16_t key;  /* offset into strings */
    uint8_t type;  /* enum sl_otlp_value_type */
    uint8_t owner; /* 0: the span, 1 + i: event i, 1 + SL_OTLP_MAX_EVENTS + i: link i */
    union {
        uint16_t str; /* offset into strings */
        int64_t i;
        double d;
        bool b;
    } v;
};

struct sl_otlp_event {
    int64_t time_ns;
    uint16_t name;
};

struct sl_otlp_link {
    struct sl_trace_ctx ctx;
};

/*
 * One span. A value: no pointers, nothing to free. Strings are copied into `strings` (invalid
 * UTF-8 replaced by U+FFFD); what does not fit is dropped and counted in the exported span's
 * droppedAttributesCount (or droppedEventsCount, droppedLinksCount).
 */
struct sl_otlp_span {
    struct sl_trace_ctx ctx; /* this span's own context: propagate it as traceparent */
    uint8_t parent_span_id[8];
    bool has_parent;
    bool recording;
    uint8_t kind;
    uint8_t status;
    uint8_t nattrs, nevents, nlinks;
    uint8_t dropped_attrs, dropped_events, dropped_links;
    uint16_t name;
    uint16_t status_message; /* 0: none */
    uint16_t used;           /* bytes of `strings` in use */
    int64_t start_ns, end_ns;
    struct sl_otlp_attr attrs[SL_OTLP_MAX_ATTRS];
    struct sl_otlp_event events[SL_OTLP_MAX_EVENTS];
    struct sl_otlp_link links[SL_OTLP_MAX_LINKS];
    char strings[SL_OTLP_STRINGS_SIZE];
};

/* Tracer settings. sl_otlp_options_from_env fills them from the environment. */
struct sl_otlp_options {
    const char *endpoint; /* base URL, "/v1/traces" is appended; NULL or "": tracing off */
    /* service.name: `service_name` (OTEL_SERVICE_NAME) wins over a service.name in
     * `resource_attributes`, which wins over `service_default`; else "unknown_service". */
    const char *service_name;
    const char *service_default;
    /* Extra resource attributes as "k=v,k=v" (OTEL_RESOURCE_ATTRIBUTES syntax), or NULL. */
    const char *resource_attributes;
    enum sl_otlp_sampler sampler;
    double sampler_ratio;         /* 0..1, for the traceidratio samplers */
    uint32_t max_queue_size;      /* spans held for export; more are dropped */
    uint32_t max_batch_size;      /* spans per POST (at most max_queue_size) */
    uint32_t schedule_delay_ms;   /* a batch leaves at least this often */
    uint32_t export_timeout_ms;   /* one POST */
    uint32_t batch_timeout_ms;    /* one batch, retries included */
    uint32_t shutdown_timeout_ms; /* the final flush in sl_otlp_tracer_free */
};

/*
 * Defaults (the OpenTelemetry SDK's): sampler parentbased_traceidratio with ratio 1.0 (the same
 * decisions as parentbased_always_on), queue 2048, batch 512, delay 5000 ms, export timeout
 * 10000 ms, batch timeout 30000 ms, shutdown 5000 ms.
 */
void sl_otlp_options_default(struct sl_otlp_options *o);

/*
 * Fills `o` from `envp` (NULL-terminated "NAME=value", e.g. environ) on top of the defaults:
 * SLUICE_OTLP_ENDPOINT, OTEL_SDK_DISABLED, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_MAX_QUEUE_SIZE,
 * OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT,
 * OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (or OTEL_EXPORTER_OTLP_TIMEOUT). String fields point into
 * `envp`, which must outlive `o`; `service_default` (e.g. "sluice-gateway") is kept as
 * o->service_default. As the OpenTelemetry specification asks, an invalid value is logged as a
 * warning and its default used.
 */
void sl_otlp_options_from_env(struct sl_otlp_options *o, char *const *envp,
                              const char *service_default);

/*
 * The row a service adds to its settings table (sluice/config.h), so that the endpoint shows in
 * --help and the printed configuration like every other setting. `field` is a `char *` of the
 * service's settings struct; after sl_otlp_options_from_env, set o.endpoint from it. The
 * standard OTEL_* variables stay outside the table: they are the OpenTelemetry SDK's, with its
 * own rules for bad values.
 */
#define SL_OTLP_ENDPOINT_OPTION(settings_type, field)                                              \
    {                                                                                              \
        .name = "otlp_endpoint", .env = "SLUICE_OTLP_ENDPOINT", .type = SL_CONFIG_STRING,          \
        .offset = offsetof(settings_type, field),                                                  \
        .description = "OTLP/HTTP receiver base URL for trace spans (unset: tracing off)",         \
    }

struct sl_otlp_tracer;

/*
 * Starts a tracer and its export thread. `metrics` (may be NULL) receives the families
 * sluice_otlp_spans_exported_total, sluice_otlp_spans_failed_total,
 * sluice_otlp_spans_dropped_total and sluice_otlp_queue_spans; it must outlive the tracer.
 * Returns 0 with *out set, 0 with *out NULL when the endpoint is empty (tracing off), -EINVAL
 * for a bad endpoint or resource attribute string, or -ENOMEM / -errno.
 */
int sl_otlp_tracer_new(const struct sl_otlp_options *o, struct sl_metrics *metrics,
                       struct sl_otlp_tracer **out);
/*
 * A service's tracer: the OTEL_* environment (environ) with `endpoint`, the service's own
 * SLUICE_OTLP_ENDPOINT setting, as the endpoint (NULL or "": tracing off, *out NULL). On
 * failure appends "SLUICE_OTLP_ENDPOINT: <endpoint>: <reason>" to `err` and returns the code.
 */
int sl_otlp_tracer_for_service(const char *endpoint, const char *service_default,
                               struct sl_metrics *metrics, struct sl_otlp_tracer **out,
                               struct sl_buf *err);
/* sl_otlp_options_from_env + sl_otlp_tracer_new. */
int sl_otlp_tracer_new_from_env(char *const *envp, const char *service_default,
                                struct sl_metrics *metrics, struct sl_otlp_tracer **out);
/*
 * Stops the export thread after a final flush bounded by shutdown_timeout_ms (spans still
 * queued then are counted as dropped), and frees the tracer. NULL is a no-op.
 */
void sl_otlp_tracer_free(struct sl_otlp_tracer *t);
/*
 * Asks the export thread to send everything queued now and waits until the queue is empty or
 * `timeout_ms` passed. Returns 0, or -ETIMEDOUT. For tests and shutdown paths, never requests.
 */
int sl_otlp_tracer_flush(struct sl_otlp_tracer *t, uint32_t timeout_ms);

/* What the tracer has done, also in the metrics above. */
struct sl_otlp_stats {
    uint64_t exported; /* accepted by the collector */
    uint64_t failed;   /* sent and refused, or given up after retries */
    uint64_t dropped;  /* never sent: queue full, or left at shutdown */
    uint64_t queued;   /* in the queue now */
};
void sl_otlp_tracer_stats(const struct sl_otlp_tracer *t, struct sl_otlp_stats *out);

/*
 * The sampling decision for a new span (true: record and set the sampled flag). `parent` is
 * the parent's context or NULL for a root span; `trace_id` is the (new or inherited) trace id.
 * The traceidratio samplers decide from the trace id alone, so every hop agrees.
 */
bool sl_otlp_should_sample(enum sl_otlp_sampler sampler, double ratio,
                           const struct sl_trace_ctx *parent, const uint8_t trace_id[16]);

/*
 * Starts a span: a child of `parent` (same trace id, new span id) or, when `parent` is NULL, the
 * root of a new trace. The tracer's sampler sets the sampled flag of s->ctx, which the caller
 * propagates (traceparent) whether or not the span records. `r` is the calling thread's random
 * source (NULL: RAND_bytes). `name` is copied. With a NULL tracer the flag follows the parent
 * (a new root is marked sampled, as sl_trace_generate does) and nothing records.
 * Returns 0 or -EIO (no random bytes; then the span does not record and s->ctx is zeroed).
 */
int sl_otlp_span_start(struct sl_otlp_tracer *t, struct sl_otlp_span *s, const char *name,
                       enum sl_otlp_span_kind kind, const struct sl_trace_ctx *parent,
                       struct sl_trace_rand *r);
/*
 * Starts a span whose context the caller already made (e.g. the gateway's request context,
 * whose span id it has already sent onward). `parent_span_id` is NULL for a root span. The
 * span records when ctx->flags has the sampled bit and `t` is not NULL.
 */
void sl_otlp_span_start_ctx(struct sl_otlp_tracer *t, struct sl_otlp_span *s, const char *name,
                            enum sl_otlp_span_kind kind, const struct sl_trace_ctx *ctx,
                            const uint8_t parent_span_id[8]);
/* Overrides the start time (Unix epoch nanoseconds; spans start at "now"). */
void sl_otlp_span_set_start(struct sl_otlp_span *s, int64_t start_ns);

/* Attributes. `key` and string values are copied; a repeated key adds a second attribute. */
void sl_otlp_span_set_str(struct sl_otlp_span *s, const char *key, const char *value);
void sl_otlp_span_set_strn(struct sl_otlp_span *s, const char *key, const char *value, size_t len);
void sl_otlp_span_set_int(struct sl_otlp_span *s, const char *key, int64_t value);
void sl_otlp_span_set_double(struct sl_otlp_span *s, const char *key, double value);
void sl_otlp_span_set_bool(struct sl_otlp_span *s, const char *key, bool value);

/* Status; `message` (may be NULL) is kept only for SL_OTLP_STATUS_ERROR, as the spec says. */
void sl_otlp_span_set_status(struct sl_otlp_span *s, enum sl_otlp_status_code code,
                             const char *message);

/*
 * Adds an event at `time_ns` (0: now) and returns its index for sl_otlp_event_set_*, or -1 when
 * the span does not record or is full.
 */
int sl_otlp_span_add_event(struct sl_otlp_span *s, const char *name, int64_t time_ns);
void sl_otlp_event_set_str(struct sl_otlp_span *s, int event, const char *key, const char *value);
void sl_otlp_event_set_int(struct sl_otlp_span *s, int event, const char *key, int64_t value);

/* Adds a link to another span (e.g. the consumer's link to the producer's span); -1 when full. */
int sl_otlp_span_add_link(struct sl_otlp_span *s, const struct sl_trace_ctx *to);
void sl_otlp_link_set_str(struct sl_otlp_span *s, int link, const char *key, const char *value);

/*
 * Ends the span at `end_ns` (0: now) and queues it for export; a recording span is queued at
 * most once. Returns 0 (also for a span that does not record), or -ENOBUFS when the queue was
 * full: the span is then dropped and counted.
 */
int sl_otlp_span_end(struct sl_otlp_tracer *t, struct sl_otlp_span *s, int64_t end_ns);

/* Current wall-clock time in Unix epoch nanoseconds, the clock spans use. */
int64_t sl_otlp_now_ns(void);

#endif
