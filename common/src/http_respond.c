/* HTTP answers: reason phrases, the Date header, serialization, the server's own refusals. */
#include "http_internal.h"

#include <errno.h>

#include "sluice/error.h"
#include "sluice/time.h"

/* ---- status line and Date ------------------------------------------------------------------ */

const char *sl_http_reason(int status) {
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* The Date header is an IMF-fixdate; `out` has room for one (s->date). */
static void format_http_date(time_t t, char *out, size_t *len) {
    int n = sl_time_format_imf((int64_t)t, out, SL_TIME_IMF_SIZE);
    *len = n < 0 ? 0 : (size_t)n;
}

/* The Date header value, recomputed at most once per second. */
static struct sl_str server_date(struct sl_http_server *s) {
    time_t now = time(NULL);
    if (now != s->date_sec) {
        s->date_sec = now;
        format_http_date(now, s->date, &s->date_len);
    }
    return (struct sl_str){.p = s->date, .len = s->date_len};
}

/* ---- response serialization ----------------------------------------------------------------- */

/* Appends into memory already reserved: serialize reserves the exact size once. */
static char *put(char *w, const char *p, size_t n) {
    memcpy(w, p, n);
    return w + n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static char *put_uint(char *w, uint64_t v) {
    return w + sl_u64_dec(w, v);
}

static int header_is_reserved(struct sl_str n) {
    return EQ_LIT(n.p, n.len, "content-length") || EQ_LIT(n.p, n.len, "connection") ||
           EQ_LIT(n.p, n.len, "date") || EQ_LIT(n.p, n.len, "transfer-encoding");
}

static int header_is_safe(struct sl_str n, struct sl_str v) {
    if (n.len == 0)
        return 0;
    for (size_t i = 0; i < n.len; i++)
        if (!is_tchar((unsigned char)n.p[i]))
            return 0;
    return field_value_ok(v.p, v.len);
}

static char *put_header(char *w, const struct sl_http_header *h) {
    w = PUT_LIT(w, "\r\n");
    w = put(w, h->name.p, h->name.len);
    w = PUT_LIT(w, ": ");
    return put(w, h->value.p, h->value.len);
}

/* `hs` are checked (framing names ignored, unsafe headers dropped); `own` are written as given
 * (sl_http_respond_own: the caller vouches for them, and debug builds check that it may). */
static int serialize(struct http_req *r, struct sl_http_server *s, int status,
                     const struct sl_http_header *hs, size_t nh, const struct sl_http_header *own,
                     size_t nown, const void *body, size_t blen) {
    const char *reason = sl_http_reason(status);
    size_t reason_len = strlen(reason);
    struct sl_str date = server_date(s);
    int no_body = status < 200 || status == 204 || status == 304;
    int send_body = !no_body && !r->head && blen;
    /* Fixed parts (status line, Date, Content-Length, Connection, final CRLF) fit in 128. */
    size_t need = 128 + reason_len + date.len + (send_body ? blen : 0);
    for (size_t i = 0; i < nh; i++)
        need += hs[i].name.len + hs[i].value.len + 4;
    for (size_t i = 0; i < nown; i++) {
#ifndef NDEBUG
        SL_ASSERT(!header_is_reserved(own[i].name) && header_is_safe(own[i].name, own[i].value));
#endif
        need += own[i].name.len + own[i].value.len + 4;
    }
    struct sl_buf *b = &r->out;
    int rc = sl_buf_reserve(b, need);
    if (rc < 0)
        return rc;
    char *w = b->data + b->len;
    w = PUT_LIT(w, "HTTP/1.1 ");
    w = put_uint(w, (uint64_t)status);
    w = PUT_LIT(w, " ");
    w = put(w, reason, reason_len);
    w = PUT_LIT(w, "\r\nDate: ");
    w = put(w, date.p, date.len);
    if (!no_body) {
        w = PUT_LIT(w, "\r\nContent-Length: ");
        w = put_uint(w, blen);
    }
    if (r->close_after)
        w = PUT_LIT(w, "\r\nConnection: close");
    else if (r->pub.http_minor == 0)
        w = PUT_LIT(w, "\r\nConnection: keep-alive");
    for (size_t i = 0; i < nh; i++)
        if (!header_is_reserved(hs[i].name) && header_is_safe(hs[i].name, hs[i].value))
            w = put_header(w, &hs[i]);
    for (size_t i = 0; i < nown; i++)
        w = put_header(w, &own[i]);
    w = PUT_LIT(w, "\r\n\r\n");
    if (send_body)
        w = put(w, body, blen);
    b->len = (size_t)(w - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int sl_http_respond(struct sl_http_request *req, int status, const struct sl_http_header *headers,
                    size_t nheaders, const void *body, size_t body_len) {
    return sl_http_respond_own(req, status, headers, nheaders, NULL, 0, body, body_len);
}

int sl_http_respond_own(struct sl_http_request *req, int status,
                        const struct sl_http_header *headers, size_t nheaders,
                        const struct sl_http_header *own, size_t nown, const void *body,
                        size_t body_len) {
    struct http_req *r = (struct http_req *)req;
    struct sl_http_server *s = req->server;
    if (r->state != REQ_DISPATCHED)
        return -EINVAL;
    if (req->cancelled || !r->conn) {
        sl_http__req_release(s, r);
        return SL_ERR_CLOSED;
    }
    struct http_conn *c = r->conn;
    if (status < 200 || status > 999)
        status = 500; /* 1xx are the server's business (100 Continue), not a final response */
    if (s->stopping && c->tail == r) {
        /* Draining: this is the connection's last response, and the client should know. */
        r->close_after = 1;
        c->no_more = 1;
    }
    if (serialize(r, s, status, headers, nheaders, own, nown, body, body_len) < 0) {
        /* The connection's framing is lost without this response: close it. */
        sl_http__conn_close(c);
        return -ENOMEM;
    }
    r->state = REQ_DONE;
    sl_http__flush_soon(c);
    return 0;
}

const struct sl_http_header *sl_http_request_header(const struct sl_http_request *req,
                                                    const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sl_http_header *h = &req->headers[i];
        if (h->name.len == n && sl_str_eq_nocase(h->name, name))
            return h;
    }
    return NULL;
}

/* ---- error phase: the server's own responses ---------------------------------------------- */

/* The server's own answer as it stands without a hook: the status and its reason phrase. */
static void plain_error(struct sl_http_error_response *e, int status) {
    switch (status) {
    case 408:
    case 413:
    case 414:
    case 431:
    case 500:
        break;
    default:
        status = 400;
        break;
    }
    const char *reason = sl_http_reason(status);
    e->status = status;
    e->body = (struct sl_str){.p = reason, .len = strlen(reason)};
    e->headers[0] = (struct sl_http_header){SL_STR("Content-Type"), SL_STR("text/plain")};
    e->nheaders = 1;
}

static enum err_kind status_kind(int status) {
    switch (status) {
    case 413:
        return EK_BODY_TOO_LARGE;
    case 414:
        return EK_URL_TOO_LONG;
    case 431:
        return EK_HEADER_TOO_LARGE;
    default:
        return EK_BAD_REQUEST;
    }
}

/*
 * The request cannot be framed or is refused: answer it (after the responses to the requests
 * before it), parse nothing more, and close once written.
 */
void sl_http__conn_fail(struct http_conn *c, int status, enum err_kind kind) {
    struct sl_http_server *s = c->server;
    if (c->closing || c->no_more)
        return;
    /* Reading goes on (bytes are discarded) so that a client hanging up is noticed. */
    c->no_more = 1;
    sl_http__conn_timer(c, T_NONE, 0);
    if (status != 408) {
        kind = kind == EK_MAX ? status_kind(status) : kind;
        metric_inc(s->m_errors[kind]);
    }
    struct http_req *r = c->cur;
    if (!r) {
        r = sl_http__req_get(s);
        if (!r) {
            sl_http__conn_close(c);
            return;
        }
        r->conn = c;
        if (c->tail)
            c->tail->next = r;
        else
            c->head = r;
        c->tail = r;
        c->nqueued++;
    }
    c->cur = NULL;
    struct sl_http_error_response e;
    plain_error(&e, status);
    e.kind =
        c->err_kind ? c->err_kind : (status == 408 ? "timeout" : sl_http__err_kind_names[kind]);
    e.scratch[0] = '\0';
    e.peer = c->peer;
    if (s->o.on_error_response)
        s->o.on_error_response(&e, s->o.data);
    if (e.nheaders > SL_HTTP_ERROR_MAX_HEADERS)
        e.nheaders = SL_HTTP_ERROR_MAX_HEADERS;
    r->close_after = 1;
    r->head = 0;
    r->pub.http_minor = 1;
    sl_buf_reset(&r->out);
    if (serialize(r, s, e.status, e.headers, e.nheaders, NULL, 0, e.body.p, e.body.len) < 0) {
        sl_http__conn_close(c);
        return;
    }
    r->state = REQ_DONE;
    sl_http__conn_flush(c);
}
