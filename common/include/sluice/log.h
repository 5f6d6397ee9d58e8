/* Structured logging: one JSON object per line on stderr. */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG = 0, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR };

/* Request-scoped fields attached to a line; either pointer may be NULL. Borrowed. */
struct sl_log_ctx {
    const char *request_id;
    const char *trace_id;
};

/*
 * Sets the service name stamped on every line and the minimum level written. The logger is
 * the one piece of process-wide mutable state in common/ (like stderr itself); call this once
 * from main before starting threads. `service` must outlive the process (a string literal).
 * Until it is called, lines carry service "sluice" and level info.
 */
void sl_log_init(const char *service, enum sl_log_level min_level);
/* Parses "debug", "info", "warn"/"warning", "error" (any case); -EINVAL otherwise. */
int sl_log_level_parse(const char *s, enum sl_log_level *out);
const char *sl_log_level_name(enum sl_log_level level);
int sl_log_enabled(enum sl_log_level level);

/*
 * Writes {"ts","level","service","msg"[,"request_id"][,"trace_id"]} as one line with a single
 * write(2), so lines from several threads or processes never interleave. Messages longer than
 * 4 KiB are truncated. Never log a secret: callers pass key ids, never key values.
 */
void sl_log(enum sl_log_level level, const struct sl_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl_vlog(enum sl_log_level level, const struct sl_log_ctx *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*
 * A limit for a line that can repeat without bound (one per record lost during a long outage):
 * the first call logs, then at most one a period, each saying how many were held back since the
 * line before. Held-back lines are only reported by the next line that passes; count the events
 * in a metric too. Not thread-safe: one limiter per thread or event loop. Zero-initialised plus
 * `period_ns` is ready.
 */
struct sl_log_every {
    uint64_t period_ns;
    uint64_t next_ns; /* monotonic time the next line may pass; 0: the next call passes */
    uint64_t held;    /* calls held back since the last line that passed */
};

/* Returns 1 when the caller should log now, with *held = lines held back since the previous
 * one (then reset); 0 when the line is held back (counted). now_ns: a monotonic clock. */
int sl_log_every_take(struct sl_log_every *l, uint64_t now_ns, uint64_t *held);

#define SL_DEBUG(...) sl_log(SL_LOG_DEBUG, NULL, __VA_ARGS__)
#define SL_INFO(...)  sl_log(SL_LOG_INFO, NULL, __VA_ARGS__)
#define SL_WARN(...)  sl_log(SL_LOG_WARN, NULL, __VA_ARGS__)
#define SL_ERROR(...) sl_log(SL_LOG_ERROR, NULL, __VA_ARGS__)

#endif
