/* Clocks: wall time for records and deadlines, monotonic time for intervals. */
#ifndef SLUICE_TIME_H
#define SLUICE_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME); what envelopes and audit records carry. */
int64_t sl_time_now_ms(void);
/* Monotonic nanoseconds (CLOCK_MONOTONIC), for durations and latencies only. */
uint64_t sl_time_mono_ns(void);
/* The same clock at the kernel's tick resolution (CLOCK_MONOTONIC_COARSE: 1-4 ms), read
 * without the time stamp counter: for windows of tens of milliseconds, read per message. */
uint64_t sl_time_mono_coarse_ns(void);
/*
 * Formats epoch milliseconds as UTC ISO-8601 with milliseconds ("2026-11-28T00:16:13.123Z")
 * into out (at least 25 bytes). Returns the length written, or a negative code.
 */
int sl_time_format_iso8601(int64_t epoch_ms, char *out, size_t outlen);

#endif
