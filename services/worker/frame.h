/* Supervisor <-> child framing: a 4-byte big-endian length, then that many payload bytes. */
#ifndef SLUICE_WORKER_FRAME_H
#define SLUICE_WORKER_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/trace.h"

/*
 * The supervisor writes one frame per attempt: the attempt's head, then the request record's
 * value (the encoded request envelope) unchanged; the child answers with one frame: one byte of
 * flags, then an encoded reply envelope. A child announces that it is ready for work with one
 * empty frame after its start-up.
 */
#define WK_FRAME_HEADER 4
/* The attempt's head: the span the worker exports for it, as a version-00 traceparent (the
 * http handler's upstream hangs its spans under it), or all zero bytes when there is none. */
#define WK_ATTEMPT_HEAD SL_TRACEPARENT_LEN
/* The reply's flags: the handler's failure must not be retried (a POST the upstream may have
 * received). */
#define WK_REPLY_HEAD  1
#define WK_REPLY_FINAL 0x01
/* A reply frame holds an echo of the largest request envelope (wk_echo_body_max of 16 MiB is
 * 96 MiB and a little), so frames are bounded above that. */
#define WK_FRAME_MAX (128u << 20)

void wk_frame_header(uint8_t out[WK_FRAME_HEADER], uint32_t len);

/*
 * Looks for one complete frame at the start of buf[0..n). Returns 1 and sets *payload and
 * *len (the frame occupies WK_FRAME_HEADER + *len bytes); 0 when more bytes are needed;
 * SL_ERR_TOO_LARGE when the announced length exceeds `max`.
 */
int wk_frame_parse(const void *buf, size_t n, size_t max, const uint8_t **payload, size_t *len);

/* Blocking helpers for the child: write a whole frame; read one into `out` (reset first).
 * Read returns 0 with a frame, 1 at a clean end of stream, or a negative code. */
int wk_frame_write_fd(int fd, const void *payload, size_t len);
int wk_frame_read_fd(int fd, struct sl_buf *out, size_t max);

#endif
