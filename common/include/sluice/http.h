/* HTTP/1.1 server on libuv + http-parser: keep-alive, pipelining, limits, timeouts, async replies.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/addr.h"
#include "sluice/buf.h"

struct sl_metrics;
struct sl_http_server;

/* A header as name/value slices, in the original casing and order. */
struct sl_http_header {
    struct sl_str name;
    struct sl_str value;
};

/*
 * One parsed request, handed to the handler.
 *
 * Ownership and lifecycle: the server owns the request. It is valid from the handler call until
 * the handler calls sl_http_respond() exactly once -- synchronously inside the handler or later
 * from the loop thread (e.g. when a Kafka reply arrives). Every slice points into memory owned
 * by the request and dies with it. sl_http_respond() copies what it needs, so the handler may
 * free its own headers and body right after the call.
 *
 * Cancellation: if the client goes away (EOF, reset, timeout) or the server is closed before the
 * response, the server sets `cancelled` to 1 and calls the `on_cancel` option (if any). The
 * request stays valid even then: the handler must still call sl_http_respond() (which then only
 * frees the request) -- that is what makes a late Kafka reply safe. The server's close callback
 * waits for every request to be responded to.
 */
struct sl_http_request {
    struct sl_str method; /* "GET", "POST", ... */
    struct sl_str url;    /* the raw request target */
    struct sl_str path;   /* path part of the target ("/items/1") */
    struct sl_str query;  /* query without '?', empty when absent */
    const struct sl_http_header *headers;
    size_t nheaders;
    const char *body; /* decoded body (chunked framing removed); never NULL */
    size_t body_len;
    struct sl_addr peer; /* the socket peer; AF_UNSPEC for a Unix socket (see addr.h) */
    uint16_t peer_port;  /* its port; 0 for a Unix socket */
    unsigned short http_major;
    unsigned short http_minor;
    int keep_alive; /* the connection stays open after this response */
    int cancelled;  /* the client is gone; the response will not be sent */
    void *user;     /* free for the handler (e.g. its per-request state) */
    struct sl_http_server *server;
};

/* Called on the loop thread for each complete request, in arrival order per connection. */
typedef void (*sl_http_request_cb)(struct sl_http_request *req, void *data);
/* Called once when a request the handler holds is cancelled (see above). */
typedef void (*sl_http_cancel_cb)(struct sl_http_request *req, void *data);
typedef void (*sl_http_server_cb)(struct sl_http_server *server, void *data);

#define SL_HTTP_ERROR_MAX_HEADERS 6

/*
 * An answer the server gives on its own, to a request it refuses before any handler sees it
 * (400 malformed or ambiguous framing, 408 header or body timeout, 413, 414, 431, 500 out of
 * memory); the connection closes after it. The server fills it plainly: the status, its reason
 * phrase as a `text/plain` body, no other header. The `on_error_response` hook, when set, may
 * then rewrite it (a service answers in its own error format): change the body, replace or add
 * headers (up to SL_HTTP_ERROR_MAX_HEADERS) and keep values it generates (e.g. a request id) in
 * `scratch`. Everything is copied when the hook returns; Date, Content-Length and
 * `Connection: close` are the server's. `kind` names the cause for logs and records:
 * "bad_request", "header_too_large", "url_too_long", "body_too_large", "header_timeout",
 * "body_timeout", "read_timeout". `peer` is the connection's peer, read-only, so the refusal can be
 * recorded with its source.
 */
struct sl_http_error_response {
    int status;
    const char *kind;
    struct sl_addr peer;
    struct sl_str body;
    struct sl_http_header headers[SL_HTTP_ERROR_MAX_HEADERS];
    size_t nheaders;
    char scratch[256];
};
typedef void (*sl_http_error_cb)(struct sl_http_error_response *resp, void *data);

/*
 * Server options. Zero (or NULL) means the default given in brackets. Sizes are bytes, times
 * milliseconds.
 */
struct sl_http_options {
    sl_http_request_cb on_request;      /* required */
    sl_http_cancel_cb on_cancel;        /* optional */
    sl_http_error_cb on_error_response; /* optional */
    void *data;                         /* passed to every callback */
    struct sl_metrics *metrics;         /* optional; borrowed, must outlive the server */
    const char *metrics_prefix;         /* [sluice_http]; unique per registry */
    size_t max_header_bytes;            /* [10240] names + values + 4 per line -> 431 */
    size_t max_body_bytes;              /* [10 MiB] decoded body -> 413 */
    size_t max_url_bytes;               /* [8192] request target -> 414 */
    size_t max_connections;             /* [10000] beyond: accepted and closed at once */
    size_t max_connections_per_ip;      /* [256] from one address (IPv6: one /64), same */
    size_t max_pipelined;               /* [16] requests queued per connection */
    uint64_t header_timeout_ms;         /* [10000] first byte (or accept) -> end of headers */
    uint64_t body_timeout_ms;           /* [10000] idle time between body bytes */
    uint64_t read_timeout_ms;           /* [60000] first byte -> end of body, however it trickles */
    uint64_t keepalive_timeout_ms;      /* [60000] idle keep-alive connection */
    uint64_t write_timeout_ms;          /* [30000] a response not fully written in time */
    uint64_t drain_timeout_ms;          /* [30000] graceful stop bound */
    int backlog;                        /* [511] */
};

/*
 * The server. Lifecycle (libuv style): sl_http_server_init -> sl_http_server_start ->
 * [sl_http_server_stop] -> sl_http_server_close. All calls, and every callback, happen on the
 * loop thread. The server allocates itself in init and frees itself after the close callback's
 * conditions are met: all handles closed and every request responded to. If init or start fails,
 * no callback ever runs (after a failed start, still call sl_http_server_close).
 */
int sl_http_server_init(struct sl_http_server **out, uv_loop_t *loop,
                        const struct sl_http_options *opts);
/*
 * Listens on `host`, an IPv4 or IPv6 address literal without brackets ("0.0.0.0", "::1"), and
 * `port` (0 picks an ephemeral one, see sl_http_server_port): a service passes its parsed listen
 * setting (struct sl_config_hostport). SL_ERR_CONFIG when host is not an address literal or
 * port is outside 0..65535; a libuv code when the bind or listen fails.
 */
int sl_http_server_start(struct sl_http_server *s, const char *host, int port);
/* The bound port after start (useful with port 0), or a negative code. */
int sl_http_server_port(const struct sl_http_server *s);
/*
 * Serves an already connected socket (a socketpair end in tests and the fuzz target, or an
 * inherited socket). AF_UNIX sockets are driven as pipes, others as TCP. The server owns fd
 * on success; on failure the caller still owns it.
 */
int sl_http_server_adopt(struct sl_http_server *s, uv_os_sock_t fd);
/* Number of open connections. */
size_t sl_http_server_connections(const struct sl_http_server *s);
/*
 * Graceful stop: stops accepting, closes idle connections, lets in-flight requests finish (their
 * responses carry `Connection: close`), then calls cb. After drain_timeout_ms the remaining
 * connections are closed (their requests cancelled) and cb runs. Returns SL_ERR_CLOSED when
 * already stopping or closing (cb will not run).
 */
int sl_http_server_stop(struct sl_http_server *s, sl_http_server_cb cb, void *data);
/*
 * Closes everything now (in-flight requests are cancelled) and frees the server once all handles
 * are closed and every request has been responded to; then cb(data) runs (the server pointer is
 * already invalid then). Callable after a failed start, during or after stop.
 */
void sl_http_server_close(struct sl_http_server *s, void (*cb)(void *data), void *data);

/*
 * Sends the response to `req` and releases it: `req` is invalid after the call whatever the
 * result. The server adds Date, Content-Length and Connection; user headers with those names (and
 * Transfer-Encoding) are ignored, and headers containing CR, LF or NUL are dropped (no response
 * splitting). Headers and body are copied. Responses on one connection are written in request
 * order: a response for a later pipelined request waits until the earlier ones are written.
 * Returns 0, SL_ERR_CLOSED when the request was cancelled (nothing sent), -ENOMEM, or -EINVAL
 * when req was already responded to.
 */
int sl_http_respond(struct sl_http_request *req, int status, const struct sl_http_header *headers,
                    size_t nheaders, const void *body, size_t body_len);
/*
 * The same with a second list, written after `headers` as it is: the caller's own headers, made
 * of constants and of values it has checked itself (a request's header value qualifies: the
 * parser refused its control bytes), never Date, Content-Length, Connection or
 * Transfer-Encoding. Debug builds (no NDEBUG) assert that each would pass sl_http_respond's
 * checks; release builds skip them.
 */
int sl_http_respond_own(struct sl_http_request *req, int status,
                        const struct sl_http_header *headers, size_t nheaders,
                        const struct sl_http_header *own, size_t nown, const void *body,
                        size_t body_len);
/* First header with that name (ASCII case-insensitive), or NULL. */
const struct sl_http_header *sl_http_request_header(const struct sl_http_request *req,
                                                    const char *name);
/* The standard reason phrase for a status ("OK", "Not Found"), "Unknown" otherwise. */
const char *sl_http_reason(int status);

#endif
