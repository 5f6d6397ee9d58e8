/* HTTP answers on the wire: in request order, written together at the end of a loop turn. */
#include "http_internal.h"

#include <errno.h>
#include <sys/socket.h>

/* ---- write completion ----------------------------------------------------------------------- */

/*
 * The write timer measures progress, not answers: it starts when the first answer waits and is
 * restarted only when a write completes (restart set), so a client that never reads is closed
 * at the write timeout however many answers it makes the server queue.
 */
static void conn_update_write_timer(struct http_conn *c, int restart) {
    if (c->h.stream.write_queue_size == 0)
        uv_timer_stop(&c->wtimer);
    else if (restart || !uv_is_active((uv_handle_t *)&c->wtimer))
        uv_timer_start(&c->wtimer, sl_http__conn_on_write_timer, c->server->o.write_timeout_ms, 0);
}

static void conn_on_write(uv_write_t *w, int status) {
    struct http_req *r = w->data;
    struct http_conn *c = r->conn;
    struct sl_http_server *s = c->server;
    int close_after = r->close_after;
    c->nwriting--;
    sl_http__req_release(s, r);
    if (c->closing)
        return;
    if (status < 0) {
        sl_http__conn_close(c);
        return;
    }
    conn_update_write_timer(c, 1);
    if (close_after)
        sl_http__conn_finish(c);
    else if (!c->head && !c->nwriting)
        sl_http__conn_idle_check(c);
    else
        sl_http__conn_resume(c); /* the write queue may have dropped below its cap */
}

static void conn_on_continue_written(uv_write_t *w, int status) {
    struct http_req *r = w->data;
    struct http_conn *c = r->conn; /* NULL once the connection has let go of the request */
    r->continue_writing = 0;
    if (r->release_deferred)
        sl_http__req_release(r->srv, r);
    if (status < 0 && c && !c->closing)
        sl_http__conn_close(c);
}

/*
 * Answers are written at the end of the loop iteration that produced them, all together, not
 * one by one as each is ready (Redis writes its replies the same way, before it sleeps). A
 * write that finds the client asleep wakes it, and on a busy server that wake-up (an
 * inter-processor interrupt, a VM exit under a hypervisor) cost more than the answer itself:
 * writing the iteration's answers back to back lets one wake-up serve many. Answers made
 * during the I/O phase go out in the check phase right after it; the idle handle covers the
 * rest (timers, close callbacks) and keeps the loop from sleeping while something waits.
 */
void sl_http__flush_unlink(struct http_conn *c) {
    if (!c->flush_queued)
        return;
    struct sl_http_server *s = c->server;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        s->flush_list = c->flush_next;
    if (c->flush_next)
        c->flush_next->flush_prev = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
    c->flush_queued = 0;
}

static void flush_all(struct sl_http_server *s) {
    uv_check_stop(&s->flush_check);
    uv_idle_stop(&s->flush_idle);
    while (s->flush_list) {
        struct http_conn *c = s->flush_list;
        sl_http__flush_unlink(c);
        /* May close c, or resume parsing and answer a pipelined request at once, which puts c
         * back on the list: the loop takes it again. */
        sl_http__conn_flush(c);
    }
}

static void on_flush_check(uv_check_t *h) {
    flush_all(h->data);
}

static void on_flush_idle(uv_idle_t *h) {
    flush_all(h->data);
}

void sl_http__flush_soon(struct http_conn *c) {
    struct sl_http_server *s = c->server;
    if (c->flush_queued || c->closing)
        return;
    c->flush_queued = 1;
    c->flush_prev = NULL;
    c->flush_next = s->flush_list;
    if (s->flush_list)
        s->flush_list->flush_prev = c;
    s->flush_list = c;
    if (!s->closing) {
        uv_check_start(&s->flush_check, on_flush_check);
        uv_idle_start(&s->flush_idle, on_flush_idle);
    }
}

/*
 * uv_try_write, with send(2) for write(2): the socket needs none of the file layer write(2)
 * goes through first (position lock, permission and notify hooks), which costs system time on
 * every answer (bench/gateway measures it; docs/benchmarks.md). Only called with libuv's write
 * queue empty, as uv_try_write is.
 */
static ssize_t try_send(struct http_conn *c, const char *p, size_t len) {
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) < 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned int)len);
        return uv_try_write(&c->h.stream, &b, 1);
    }
    ssize_t n;
    do
        n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : uv_translate_sys_error(errno);
}

/* Writes finished responses from the head of the queue, strictly in request order. */
void sl_http__conn_flush(struct http_conn *c) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while (c->head && !c->closing) {
        struct http_req *r = c->head;
        if (r->state != REQ_DONE) {
            if (r->want_continue && !r->continue_sent && r == c->cur) {
                r->continue_sent = 1;
                uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
                r->continue_wreq.data = r;
                r->continue_writing = 1;
                if (uv_write(&r->continue_wreq, &c->h.stream, &b, 1, conn_on_continue_written) <
                    0) {
                    r->continue_writing = 0;
                    sl_http__conn_close(c);
                }
            }
            return;
        }
        c->head = r->next;
        if (!c->head)
            c->tail = NULL;
        r->next = NULL;
        c->nqueued--;
        /* Fast path: nothing else in flight, so write now; most responses go out whole and
         * skip the write request and its deferred callback. */
        size_t done = 0;
        if (c->nwriting == 0 && c->h.stream.write_queue_size == 0) {
            ssize_t n = try_send(c, r->out.data, r->out.len);
            if (n < 0 && n != UV_EAGAIN) {
                sl_http__req_release(c->server, r);
                sl_http__conn_close(c);
                return;
            }
            done = n > 0 ? (size_t)n : 0;
        }
        int close_after = r->close_after;
        if (done == r->out.len) {
            sl_http__req_release(c->server, r);
            if (close_after) {
                c->no_more = 1;
                sl_http__conn_finish(c);
                return;
            }
            continue;
        }
        uv_buf_t b = uv_buf_init(r->out.data + done, (unsigned int)(r->out.len - done));
        r->wreq.data = r;
        int rc = uv_write(&r->wreq, &c->h.stream, &b, 1, conn_on_write);
        if (rc < 0) {
            sl_http__req_release(c->server, r);
            sl_http__conn_close(c);
            return;
        }
        c->nwriting++;
        conn_update_write_timer(c, 0);
        if (close_after) {
            /* Nothing after a closing response is answered. */
            c->no_more = 1;
            return;
        }
    }
    if (c->closing)
        return;
    if (!c->head && !c->nwriting)
        sl_http__conn_idle_check(c);
    else
        sl_http__conn_resume(c);
}
