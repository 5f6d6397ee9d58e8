/* HTTP server: listener, accept, defaults, metrics, graceful stop and close. */
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "sluice/error.h"

const char *const sl_http__err_kind_names[EK_MAX] = {"bad_request", "header_too_large",
                                                     "url_too_long", "body_too_large"};
static const char *const to_kind_names[TO_MAX] = {"header", "body", "read", "keepalive", "write"};

/* ---- accept ------------------------------------------------------------------------------- */

/* The socket peer as data: nothing parses it again (a Unix socket has none: AF_UNSPEC). */
static void peer_name(struct http_conn *c) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (c->h.handle.type != UV_TCP ||
        uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC;
    sl_addr_from_sockaddr(&c->peer, &c->peer_port, (const struct sockaddr *)&ss);
}

/* ---- open connections per client address ------------------------------------------------ */

/* The counted key: the address itself, or for IPv6 its /64, which one client usually holds. */
static struct sl_addr ip_key(const struct sl_addr *a) {
    struct sl_addr k = *a;
    if (k.family == AF_INET6)
        memset(k.bytes + 8, 0, 8);
    return k;
}

static size_t ip_bucket(const struct sl_http_server *s, const struct sl_addr *k) {
    uint64_t h = 0xcbf29ce484222325ull ^ s->ip_seed; /* FNV-1a, seeded */
    h = (h ^ (uint64_t)k->family) * 0x100000001b3ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ k->bytes[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return (size_t)h & (s->ip_nbuckets - 1);
}

/*
 * Counts c against its client address. Returns 0, or -1 when that address already holds
 * max_connections_per_ip (the connection is not counted) or no entry can be allocated. A peer
 * without an IP address (Unix socket) is never counted.
 */
static int ip_admit(struct sl_http_server *s, struct http_conn *c) {
    if (c->peer.family == AF_UNSPEC || !s->ip_buckets)
        return 0;
    struct sl_addr k = ip_key(&c->peer);
    struct ip_count **b = &s->ip_buckets[ip_bucket(s, &k)];
    struct ip_count *e = *b;
    while (e && !sl_addr_equal(&e->key, &k))
        e = e->next;
    if (e && e->n >= s->o.max_connections_per_ip)
        return -1;
    if (!e) {
        if (!(e = calloc(1, sizeof(*e))))
            return -1;
        e->key = k;
        e->next = *b;
        *b = e;
    }
    e->n++;
    c->ip = e;
    return 0;
}

/* Uncounts a closed connection; the entry goes when its last connection does. */
void sl_http__ip_release(struct sl_http_server *s, struct http_conn *c) {
    struct ip_count *e = c->ip;
    if (!e)
        return;
    c->ip = NULL;
    if (--e->n > 0)
        return;
    struct ip_count **pp = &s->ip_buckets[ip_bucket(s, &e->key)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    free(e);
}

static struct http_conn *conn_new(struct sl_http_server *s) {
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->server = s;
    sl_buf_init(&c->pending, s->o.max_url_bytes + s->o.max_header_bytes + s->o.max_body_bytes);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    sl_http__scan_reset(c);
    uv_timer_init(s->loop, &c->timer);
    uv_timer_init(s->loop, &c->wtimer);
    c->timer.data = c;
    c->wtimer.data = c;
    return c;
}

/* Links an accepted connection in and starts its first header deadline. */
static void conn_begin(struct sl_http_server *s, struct http_conn *c) {
    c->h.handle.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    metric_add(s->m_open, 1);
    if (c->h.handle.type == UV_TCP)
        uv_tcp_nodelay(&c->h.tcp, 1);
    sl_http__conn_timer(c, T_FIRST, s->o.header_timeout_ms);
    sl_http__conn_read_start(c);
}

static void free_on_close(uv_handle_t *h) {
    free(h);
}

/* A connection that could not be set up: close its handles, free it in the callback. */
static void conn_abort(struct http_conn *c, int stream_inited) {
    /* Counted as open until its close callback, like any other connection. */
    c->server->nconns++;
    metric_add(c->server->m_open, 1);
    c->closing = 1;
    c->nhandles = stream_inited ? 3 : 2;
    if (stream_inited) {
        c->h.handle.data = c;
        uv_close(&c->h.handle, sl_http__conn_on_handle_closed);
    }
    uv_close((uv_handle_t *)&c->timer, sl_http__conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->wtimer, sl_http__conn_on_handle_closed);
}

static void on_connection(uv_stream_t *ls, int status) {
    struct sl_http_server *s = ls->data;
    if (status < 0 || s->stopping || s->closing)
        return;
    if (s->nconns >= s->o.max_connections) {
        /* Over the limit: accept and close at once, so the client sees a clean close. */
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        /* Counted before the close, so whoever sees the close also sees the count. */
        metric_inc(s->m_rejected);
        uv_tcp_init(s->loop, t);
        uv_accept(ls, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, free_on_close);
        return;
    }
    struct http_conn *c = conn_new(s);
    if (!c)
        return;
    uv_tcp_init(s->loop, &c->h.tcp);
    if (uv_accept(ls, &c->h.stream) < 0) {
        conn_abort(c, 1);
        return;
    }
    peer_name(c);
    if (ip_admit(s, c) < 0) {
        /* Over the per-address cap: closed at once like over max_connections, counted first. */
        metric_inc(s->m_rejected_ip);
        conn_abort(c, 1);
        return;
    }
    conn_begin(s, c);
}

int sl_http_server_adopt(struct sl_http_server *s, uv_os_sock_t fd) {
    if (s->stopping || s->closing)
        return SL_ERR_CLOSED;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    struct http_conn *c = conn_new(s);
    if (!c)
        return -ENOMEM;
    int rc;
    if (ss.ss_family == AF_UNIX) {
        uv_pipe_init(s->loop, &c->h.pipe, 0);
        rc = uv_pipe_open(&c->h.pipe, fd);
    } else {
        uv_tcp_init(s->loop, &c->h.tcp);
        rc = uv_tcp_open(&c->h.tcp, fd);
    }
    if (rc < 0) {
        conn_abort(c, 1);
        return rc;
    }
    /* Adopted connections are counted (they hold their address's slots) but never refused. */
    peer_name(c);
    if (ip_admit(s, c) < 0)
        c->ip = NULL;
    conn_begin(s, c);
    return 0;
}

/* ---- server lifecycle ----------------------------------------------------------------------- */

static int register_metrics(struct sl_http_server *s) {
    struct sl_metrics *m = s->o.metrics;
    if (!m)
        return 0;
    const char *pfx = s->o.metrics_prefix ? s->o.metrics_prefix : "sluice_http";
    struct sl_buf n;
    sl_buf_init(&n, 256);
    int rc = SL_ERR_CONFIG;
    struct sl_metric_family *f;
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_connections_open", pfx) < 0 ||
        !(f = sl_metrics_gauge(m, n.data, "Open HTTP connections.", NULL)))
        goto out;
    s->m_open = sl_metric_get(f);
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_connections_rejected_total", pfx) < 0 ||
        !(f = sl_metrics_counter(m, n.data, "Connections closed at once over max_connections.",
                                 NULL)))
        goto out;
    s->m_rejected = sl_metric_get(f);
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_connections_rejected_per_ip_total", pfx) < 0 ||
        !(f = sl_metrics_counter(m, n.data,
                                 "Connections closed at once over max_connections_per_ip.", NULL)))
        goto out;
    s->m_rejected_ip = sl_metric_get(f);
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_requests_total", pfx) < 0 ||
        !(f = sl_metrics_counter(m, n.data, "Requests parsed and dispatched.", NULL)))
        goto out;
    s->m_requests = sl_metric_get(f);
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_parse_errors_total", pfx) < 0 ||
        !(f = sl_metrics_counter(m, n.data, "Requests refused by the HTTP layer, by kind.",
                                 "kind")))
        goto out;
    for (int i = 0; i < EK_MAX; i++)
        s->m_errors[i] = sl_metric_child1(f, sl_http__err_kind_names[i]);
    sl_buf_reset(&n);
    if (sl_buf_printf(&n, "%s_timeouts_total", pfx) < 0 ||
        !(f = sl_metrics_counter(m, n.data, "Connections timed out, by phase.", "kind")))
        goto out;
    for (int i = 0; i < TO_MAX; i++)
        s->m_timeouts[i] = sl_metric_child1(f, to_kind_names[i]);
    rc = 0;
out:
    sl_buf_free(&n);
    return rc;
}

int sl_http_server_init(struct sl_http_server **out, uv_loop_t *loop,
                        const struct sl_http_options *opts) {
    if (!out || !loop || !opts || !opts->on_request)
        return -EINVAL;
    struct sl_http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->o = *opts;
#define DEFAULT(f, v)                                                                              \
    if (!s->o.f)                                                                                   \
    s->o.f = (v)
    DEFAULT(max_header_bytes, DEF_MAX_HEADER_BYTES);
    DEFAULT(max_body_bytes, DEF_MAX_BODY_BYTES);
    DEFAULT(max_url_bytes, DEF_MAX_URL_BYTES);
    DEFAULT(max_connections, DEF_MAX_CONNECTIONS);
    DEFAULT(max_connections_per_ip, DEF_MAX_CONNS_PER_IP);
    DEFAULT(max_pipelined, DEF_MAX_PIPELINED);
    DEFAULT(header_timeout_ms, DEF_HEADER_TIMEOUT);
    DEFAULT(body_timeout_ms, DEF_BODY_TIMEOUT);
    DEFAULT(read_timeout_ms, DEF_READ_TIMEOUT);
    DEFAULT(keepalive_timeout_ms, DEF_KEEPALIVE);
    DEFAULT(write_timeout_ms, DEF_WRITE_TIMEOUT);
    DEFAULT(drain_timeout_ms, DEF_DRAIN_TIMEOUT);
    DEFAULT(backlog, 511);
#undef DEFAULT
    /* About one address per four allowed connections per bucket; chains stay short. */
    s->ip_nbuckets = 64;
    while (s->ip_nbuckets < s->o.max_connections / 4 && s->ip_nbuckets < (1u << 16))
        s->ip_nbuckets *= 2;
    s->ip_buckets = calloc(s->ip_nbuckets, sizeof(*s->ip_buckets));
    s->ip_seed = uv_hrtime() ^ (uint64_t)(uintptr_t)s;
    int rc = s->ip_buckets ? register_metrics(s) : -ENOMEM;
    if (rc < 0) {
        free(s->ip_buckets);
        free(s);
        return rc;
    }
    sl_http__parser_settings(&s->settings);
    uv_tcp_init(loop, &s->listener.tcp);
    s->listener.handle.data = s;
    uv_timer_init(loop, &s->drain_timer);
    s->drain_timer.data = s;
    uv_check_init(loop, &s->flush_check);
    s->flush_check.data = s;
    uv_idle_init(loop, &s->flush_idle);
    s->flush_idle.data = s;
    s->handles = 4;
    *out = s;
    return 0;
}

int sl_http_server_start(struct sl_http_server *s, const char *host, int port) {
    if (s->listening || s->stopping || s->closing)
        return -EINVAL;
    if (port < 0 || port > 65535)
        return SL_ERR_CONFIG;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return SL_ERR_CONFIG;
    int rc = uv_tcp_bind(&s->listener.tcp, (const struct sockaddr *)&ss, 0);
    if (rc < 0)
        return rc;
    rc = uv_listen(&s->listener.stream, s->o.backlog, on_connection);
    if (rc < 0)
        return rc;
    s->listening = 1;
    return 0;
}

int sl_http_server_port(const struct sl_http_server *s) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (!s->listening)
        return -EINVAL;
    int rc = uv_tcp_getsockname(&s->listener.tcp, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

size_t sl_http_server_connections(const struct sl_http_server *s) {
    return s->nconns;
}

static void server_on_handle_closed(uv_handle_t *h) {
    struct sl_http_server *s = h->data;
    s->handles--;
    sl_http__server_maybe_finish(s);
}

/* Completes a stop (all connections gone) or a close (handles closed, requests released). */
void sl_http__server_maybe_finish(struct sl_http_server *s) {
    if (s->stopping && s->stop_cb && s->nconns == 0) {
        sl_http_server_cb cb = s->stop_cb;
        s->stop_cb = NULL;
        if (!s->closing)
            uv_timer_stop(&s->drain_timer);
        cb(s, s->stop_data);
    }
    if (s->closing && s->handles == 0 && s->nconns == 0 && s->live_reqs == 0) {
        void (*cb)(void *) = s->close_cb;
        void *data = s->close_data;
        s->close_cb = NULL;
        while (s->free_reqs) {
            struct http_req *r = s->free_reqs;
            s->free_reqs = r->next;
            sl_http__req_free_mem(r);
        }
        free(s->ip_buckets); /* empty: every connection released its entry on close */
        free(s);
        if (cb)
            cb(data);
    }
}

static void server_on_drain_timeout(uv_timer_t *t) {
    struct sl_http_server *s = t->data;
    while (s->conns)
        sl_http__conn_close(s->conns);
    sl_http__server_maybe_finish(s);
}

int sl_http_server_stop(struct sl_http_server *s, sl_http_server_cb cb, void *data) {
    if (s->stopping || s->closing)
        return SL_ERR_CLOSED;
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_data = data;
    s->listening = 0;
    s->listener_closed = 1;
    uv_close(&s->listener.handle, server_on_handle_closed);
    /* Idle connections go now; busy ones close after their last response
     * (sl_http__conn_idle_check). */
    struct http_conn *c = s->conns;
    while (c) {
        struct http_conn *next = c->next;
        if (!c->head && !c->nwriting && !c->cur && !c->lingering)
            sl_http__conn_close(c);
        c = next;
    }
    /* The listener's close callback completes the stop when nothing is left to drain. */
    uv_timer_start(&s->drain_timer, server_on_drain_timeout, s->o.drain_timeout_ms, 0);
    return 0;
}

void sl_http_server_close(struct sl_http_server *s, void (*cb)(void *data), void *data) {
    if (s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_data = data;
    s->stopping = 1;
    s->listening = 0;
    if (!s->listener_closed) {
        s->listener_closed = 1;
        uv_close(&s->listener.handle, server_on_handle_closed);
    }
    while (s->conns)
        sl_http__conn_close(s->conns);
    while (s->free_reqs) {
        struct http_req *r = s->free_reqs;
        s->free_reqs = r->next;
        sl_http__req_free_mem(r);
    }
    s->nfree = 0;
    uv_close((uv_handle_t *)&s->drain_timer, server_on_handle_closed);
    uv_close((uv_handle_t *)&s->flush_check, server_on_handle_closed);
    uv_close((uv_handle_t *)&s->flush_idle, server_on_handle_closed);
}
