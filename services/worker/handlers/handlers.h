/* The handlers a child runs (echo, http, plugins) and the response they fill. */
#ifndef SLUICE_WORKER_HANDLERS_H
#define SLUICE_WORKER_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/envelope.h"
#include "sluice/routes.h"
#include "sluice/trace.h"

#define WK_RESPONSE_MAX_HEADERS 128

/*
 * A handler's answer, built in the child and encoded as the reply envelope. Header names and
 * values are kept as offsets into `strings` (it may move while growing). The response owns
 * its buffers: wk_response_init once, wk_response_reset between requests, wk_response_free.
 * A handler that fails sets `failed` with an error class (a DLQ reason name) and a message;
 * the reply then carries `error` and the supervisor treats it as a failure.
 */
struct wk_response {
    uint32_t status;
    size_t nheaders;
    size_t name_off[WK_RESPONSE_MAX_HEADERS], name_len[WK_RESPONSE_MAX_HEADERS];
    size_t value_off[WK_RESPONSE_MAX_HEADERS], value_len[WK_RESPONSE_MAX_HEADERS];
    struct sl_buf strings;
    struct sl_buf body;
    bool failed;
    bool final; /* a failure that must not be retried (the http handler's sent POST) */
    const char *error_class;
    char error_message[256];
};

void wk_response_init(struct wk_response *r, size_t max_body);
void wk_response_reset(struct wk_response *r);
void wk_response_free(struct wk_response *r);
int wk_response_add_header(struct wk_response *r, const char *name, size_t nlen, const char *value,
                           size_t vlen);
/* Marks the response failed (class is a static string such as "handler_error"). */
void wk_response_fail(struct wk_response *r, const char *error_class, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends the reply envelope for request `id` to `out`. */
int wk_response_encode(const struct wk_response *r, struct sl_str id, struct sl_buf *out);

/*
 * echo: the Python Lambda handler of the AWS stack (docs/worker.md). `now_us` is the wall
 * clock in microseconds since the epoch (the timestamp field); the `stage` field is the
 * envelope's, which the gateway sets from its SLUICE_STAGE.
 */
int wk_echo_handle(const struct sl_envelope_request *req, int64_t now_us, struct wk_response *out);

/*
 * The largest body wk_echo_handle writes for a request envelope of at most `request_bytes`
 * encoded bytes (the body, path, query, method, stage and id are all inside it): each input
 * byte becomes at most 6 ("\u00XX", or "\ufffd" for an invalid byte), plus the fixed text. A
 * response buffer this big echoes any body the envelope accepts.
 */
size_t wk_echo_body_max(size_t request_bytes);

/*
 * Appends `s` the way Python's json.dumps writes a str (ensure_ascii: every non-ASCII code
 * point as \uXXXX, surrogate pairs above U+FFFF; invalid UTF-8 bytes as U+FFFD), quotes
 * included. Exposed for tests.
 */
int wk_json_py_string(struct sl_buf *b, const char *s, size_t n);

/*
 * http: forwards the request to route->upstream (base URL + path + query) with libcurl,
 * without hop-by-hop headers; the upstream's status, headers and body become the reply.
 * `attempt` is the span of this attempt the worker exports, sent as the traceparent (NULL: a
 * new child of the envelope's trace). `timeout_ms` bounds the whole exchange; a transport
 * error or timeout marks `out` failed (timeout / handler_error), and final when the method is
 * POST or PATCH and the request may have reached the upstream (a connection was made). Returns
 * 0 or -ENOMEM.
 */
int wk_http_handle(const struct sl_envelope_request *req, const struct sl_route *route,
                   const struct sl_trace_ctx *attempt, int64_t timeout_ms, struct wk_response *out);

#endif
