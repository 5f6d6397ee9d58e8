/* HTTP connections: request objects, read-side timers, reading, closing and lingering. */
#include "http_internal.h"

#include <stdlib.h>

#include "sluice/error.h"

/* ---- request objects: a free list instead of malloc per request -------------------------- */

struct http_req *sl_http__req_get(struct sl_http_server *s) {
    struct http_req *r = s->free_reqs;
    if (r) {
        s->free_reqs = r->next;
        s->nfree--;
    } else {
        r = calloc(1, sizeof(*r));
        if (!r)
            return NULL;
        sl_buf_init(&r->raw, s->o.max_url_bytes + s->o.max_header_bytes);
        sl_buf_init(&r->body, s->o.max_body_bytes);
        sl_buf_init(&r->out, SIZE_MAX / 2);
    }
    r->next = NULL;
    r->state = REQ_PARSING;
    r->srv = s;
    s->live_reqs++;
    return r;
}

static void shrink(struct sl_buf *b) {
    if (b->cap > KEEP_BUF_BYTES)
        sl_buf_free(b);
    else
        sl_buf_reset(b);
}

void sl_http__req_free_mem(struct http_req *r) {
    sl_buf_free(&r->raw);
    sl_buf_free(&r->body);
    sl_buf_free(&r->out);
    free(r->offs);
    free(r->hdrs);
    free(r);
}

void sl_http__req_release(struct sl_http_server *s, struct http_req *r) {
    if (r->continue_writing) {
        r->release_deferred = 1;
        return;
    }
    r->release_deferred = 0;
    SL_ASSERT(s->live_reqs > 0);
    s->live_reqs--;
    shrink(&r->raw);
    shrink(&r->body);
    shrink(&r->out);
    if (r->cap_hdrs > 64) {
        free(r->offs);
        free(r->hdrs);
        r->offs = NULL;
        r->hdrs = NULL;
        r->cap_hdrs = 0;
    }
    r->nhdrs = 0;
    r->url_len = 0;
    r->header_bytes = 0;
    r->last_was_value = 0;
    r->headers_done = 0;
    r->want_continue = 0;
    r->continue_sent = 0;
    r->close_after = 0;
    r->head = 0;
    r->conn = NULL;
    r->state = REQ_FREE; /* a second sl_http_respond is refused, not a double free */
    memset(&r->pub, 0, sizeof(r->pub));
    if (s->closing || s->nfree >= FREE_LIST_MAX) {
        sl_http__req_free_mem(r);
    } else {
        r->next = s->free_reqs;
        s->free_reqs = r;
        s->nfree++;
    }
    if (s->closing)
        sl_http__server_maybe_finish(s);
}

/* ---- timers ------------------------------------------------------------------------------ */

static void conn_on_timer(uv_timer_t *t);

/*
 * Sets the read-side deadline. The uv timer is re-armed only when the new deadline is earlier
 * than the armed one; a later deadline is picked up when the timer fires early and re-arms. So
 * the per-request deadline changes (header -> none -> keep-alive -> header) cost no timer-heap
 * operations in the steady state.
 */
void sl_http__conn_timer(struct http_conn *c, enum conn_timer kind, uint64_t ms) {
    c->timer_kind = kind;
    if (kind == T_NONE)
        return;
    c->deadline = uv_now(c->server->loop) + ms;
    if (!c->armed_at || c->deadline < c->armed_at) {
        uv_timer_start(&c->timer, conn_on_timer, ms, 0);
        c->armed_at = c->deadline;
    }
}

/*
 * Arms the body timer: the idle time between body bytes, but never past the whole-request
 * deadline, so a client sending one byte just before each idle timeout is still cut off.
 */
void sl_http__conn_body_timer(struct http_conn *c) {
    uint64_t now = uv_now(c->server->loop);
    uint64_t ms = c->server->o.body_timeout_ms;
    if (c->req_deadline <= now)
        ms = 0;
    else if (c->req_deadline - now < ms)
        ms = c->req_deadline - now;
    sl_http__conn_timer(c, T_BODY, ms);
}

static void conn_on_timer(uv_timer_t *t) {
    struct http_conn *c = t->data;
    struct sl_http_server *s = c->server;
    c->armed_at = 0;
    enum conn_timer kind = c->timer_kind;
    if (kind == T_NONE || c->closing)
        return;
    uint64_t now = uv_now(s->loop);
    if (now < c->deadline) {
        uv_timer_start(&c->timer, conn_on_timer, c->deadline - now, 0);
        c->armed_at = c->deadline;
        return;
    }
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_FIRST:
    case T_HEADER:
        metric_inc(s->m_timeouts[TO_HEADER]);
        if (c->cur) {
            /* The client started a request but did not finish its headers in time. */
            c->err_kind = "header_timeout";
            sl_http__conn_fail(c, 408, EK_MAX);
        } else {
            sl_http__conn_close(c);
        }
        break;
    case T_BODY:
        if (now >= c->req_deadline) {
            metric_inc(s->m_timeouts[TO_READ]);
            c->err_kind = "read_timeout";
        } else {
            metric_inc(s->m_timeouts[TO_BODY]);
            c->err_kind = "body_timeout";
        }
        sl_http__conn_fail(c, 408, EK_MAX);
        break;
    case T_KEEPALIVE:
        metric_inc(s->m_timeouts[TO_KEEPALIVE]);
        sl_http__conn_close(c);
        break;
    case T_LINGER:
    case T_NONE:
        sl_http__conn_close(c);
        break;
    }
}

void sl_http__conn_on_write_timer(uv_timer_t *t) {
    struct http_conn *c = t->data;
    metric_inc(c->server->m_timeouts[TO_WRITE]);
    sl_http__conn_close(c);
}

/* ---- I/O ---------------------------------------------------------------------------------- */

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    struct http_conn *c = h->data;
    buf->base = c->server->rbuf;
    buf->len = sizeof(c->server->rbuf);
}

static void conn_read_stop(struct http_conn *c) {
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = 0;
    }
}

static void conn_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    struct http_conn *c = st->data;
    if (nread < 0) {
        /* EOF or reset: the client is gone, so its pending requests are cancelled. */
        sl_http__conn_close(c);
        return;
    }
    if (nread == 0 || c->closing || c->lingering || c->no_more)
        return;
    size_t n = (size_t)nread;
    size_t used = c->pending.len ? 0 : sl_http__conn_feed(c, buf->base, n);
    if (used < n && !c->no_more && !c->closing) {
        /* The pipeline is full: hold the bytes, in order. Reading goes on up to a cap so that a
         * client hanging up is still noticed (and its requests cancelled). */
        if (sl_buf_append(&c->pending, buf->base + used, n - used) < 0) {
            sl_http__conn_close(c);
            return;
        }
        if (c->pending.len >= PENDING_READ_CAP)
            conn_read_stop(c);
        sl_http__conn_resume(c);
    }
}

void sl_http__conn_read_start(struct http_conn *c) {
    if (!c->reading && !c->closing) {
        if (uv_read_start(&c->h.stream, conn_alloc, conn_on_read) == 0)
            c->reading = 1;
    }
}

/* Continues parsing held-back bytes once the pipeline has room again. */
void sl_http__conn_resume(struct http_conn *c) {
    if (c->in_feed || c->closing || c->lingering || c->no_more || sl_http__pipeline_full(c))
        return;
    if (c->pending.len) {
        size_t used = sl_http__conn_feed(c, c->pending.data, c->pending.len);
        if (c->closing)
            return;
        sl_buf_consume(&c->pending, used);
        if (c->pending.len)
            return;
    }
    if (!c->no_more)
        sl_http__conn_read_start(c);
}

void sl_http__conn_on_handle_closed(uv_handle_t *h) {
    struct http_conn *c = h->data;
    if (--c->nhandles > 0)
        return;
    struct sl_http_server *s = c->server;
    sl_http__ip_release(s, c);
    sl_buf_free(&c->pending);
    free(c);
    s->nconns--;
    metric_add(s->m_open, -1);
    sl_http__server_maybe_finish(s);
}

void sl_http__conn_close(struct http_conn *c) {
    if (c->closing)
        return;
    struct sl_http_server *s = c->server;
    c->closing = 1;
    c->reading = 0;
    sl_http__flush_unlink(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    /* Detach the queue first: the cancel callback may respond (and so release) right away. */
    struct http_req *r = c->head;
    c->head = c->tail = c->cur = NULL;
    c->nqueued = 0;
    while (r) {
        struct http_req *next = r->next;
        r->next = NULL;
        r->conn = NULL;
        if (r->state == REQ_DISPATCHED) {
            r->pub.cancelled = 1;
            if (s->o.on_cancel)
                s->o.on_cancel(&r->pub, s->o.data);
        } else {
            sl_http__req_release(s, r);
        }
        r = next;
    }
    c->nhandles = 3;
    uv_close(&c->h.handle, sl_http__conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, sl_http__conn_on_handle_closed);
    uv_close((uv_handle_t *)&c->wtimer, sl_http__conn_on_handle_closed);
}

static void conn_on_shutdown(uv_shutdown_t *sr, int status) {
    struct http_conn *c = sr->data;
    if (c->closing)
        return;
    if (status < 0) {
        sl_http__conn_close(c);
        return;
    }
    /* Lingering close: read and discard until the client closes, so a reset does not destroy
     * the response we just sent while the client is still sending. */
    sl_http__conn_read_start(c);
    sl_http__conn_timer(c, T_LINGER, LINGER_MS);
}

/* The last response is written: send FIN, then linger briefly before closing. */
void sl_http__conn_finish(struct http_conn *c) {
    if (c->closing || c->lingering)
        return;
    c->lingering = 1;
    c->no_more = 1;
    sl_http__conn_timer(c, T_NONE, 0);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->h.stream, conn_on_shutdown) < 0)
        sl_http__conn_close(c);
}

/* Called when the connection may have become idle: no queue, nothing being written. */
void sl_http__conn_idle_check(struct http_conn *c) {
    if (c->closing || c->lingering || c->head || c->nwriting)
        return;
    struct sl_http_server *s = c->server;
    if (c->no_more || s->stopping) {
        sl_http__conn_finish(c);
        return;
    }
    if (c->timer_kind == T_NONE)
        sl_http__conn_timer(c, T_KEEPALIVE, s->o.keepalive_timeout_ms);
    sl_http__conn_resume(c);
}
