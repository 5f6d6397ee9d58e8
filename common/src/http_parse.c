/* HTTP parsing: the header-section scanner, http-parser callbacks, framing rules, dispatch. */
#include "http_internal.h"

#include <stdlib.h>

#include "sluice/error.h"

/* ---- header-section scanner --------------------------------------------------------------- */

/*
 * http-parser as Debian builds it is lenient: it takes bare LF line ends and obs-fold lines.
 * Before the parser sees a request's header section, this scanner checks it lexically: every
 * line ends in CRLF, no line starts with SP/HT (obs-fold), no control bytes except HTAB. It stops
 * at the CRLFCRLF that ends the section, so bodies are never scanned. Returns 0 or -1.
 */
static int scan_headers(struct http_conn *c, const char *p, size_t n, size_t limit) {
    struct scan *sc = &c->scan;
    size_t i = 0;
    int rc = 0;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (sc->state) {
        case 0: /* inside a line: skip ordinary bytes in a tight loop, the common case */
            if (ch >= 0x20 && ch != 0x7f) {
                i += printable_span(p + i + 1, n - i - 1);
                sc->started = 1;
            } else if (ch == '\r')
                sc->state = 1;
            else if (ch != '\t')
                rc = -1;
            else
                sc->started = 1;
            break;
        case 1: /* after CR */
            if (ch != '\n')
                rc = -1;
            /* Empty lines before the request line are tolerated, as RFC 9112 allows. */
            sc->state = sc->started ? 2 : 0;
            break;
        case 2: /* at the start of a header line */
            if (ch == '\r')
                sc->state = 3;
            else if (ch == ' ' || ch == '\t' || ch < 0x20 || ch == 0x7f)
                rc = -1;
            else
                sc->state = 0;
            break;
        case 3: /* CRLF CR */
            if (ch != '\n')
                rc = -1;
            else
                sc->active = 0;
            break;
        }
        if (rc < 0 || !sc->active) {
            i++;
            break;
        }
    }
    sc->bytes += i;
    if (sc->bytes > limit) {
        c->err_status = 431;
        return -1;
    }
    return rc;
}

void sl_http__scan_reset(struct http_conn *c) {
    c->scan = (struct scan){.active = 1};
    c->chunks = (struct chunk_scan){0};
}

/* ---- chunked-body framing check ----------------------------------------------------------- */

enum {
    CK_SIZE,
    CK_EXT,
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TRAILER_BOL,
    CK_TRAILER,
    CK_TRAILER_LF,
    CK_END_LF
};

/*
 * http-parser as Debian builds it (not HTTP_PARSER_STRICT) takes any two bytes after chunk data
 * as its CRLF and skips bare LFs inside chunk extensions, so "5\r\nhelloXX0\r\n\r\n" reads as
 * "hello": a proxy in front that reads the framing strictly sees another body, the start of a
 * smuggled request. This checks the bytes the parser consumed for a chunked body, across reads:
 * every chunk-size line, the CRLF after each chunk's data, trailer lines and the final empty line
 * end in CRLF, and no control byte but HTAB appears in extensions or trailers. Returns 0 or -1.
 */
static int scan_chunks(struct chunk_scan *k, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (k->state) {
        case CK_SIZE: {
            int d = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (d >= 0) {
                if (k->size >> 60)
                    return -1; /* the parser refuses it too */
                k->size = k->size * 16 + (uint64_t)d;
                k->ndigits++;
            } else if (!k->ndigits) {
                return -1;
            } else if (ch == '\r') {
                k->state = CK_SIZE_LF;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                k->state = CK_EXT;
            } else {
                return -1;
            }
            break;
        }
        case CK_EXT:
            if (ch == '\r')
                k->state = CK_SIZE_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return -1;
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return -1;
            k->state = k->size ? CK_DATA : CK_TRAILER_BOL;
            break;
        case CK_DATA: {
            uint64_t take = n - i < k->size ? n - i : k->size;
            k->size -= take;
            i += take - 1;
            if (!k->size)
                k->state = CK_DATA_CR;
            break;
        }
        case CK_DATA_CR:
            if (ch != '\r')
                return -1;
            k->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return -1;
            *k = (struct chunk_scan){.active = 1, .state = CK_SIZE};
            break;
        case CK_TRAILER_BOL:
            if (ch == '\r') {
                k->state = CK_END_LF;
                break;
            }
            k->state = CK_TRAILER;
            /* fall through - the byte starts a trailer line */
        case CK_TRAILER:
            if (ch == '\r')
                k->state = CK_TRAILER_LF;
            else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return -1;
            break;
        case CK_TRAILER_LF:
            if (ch != '\n')
                return -1;
            k->state = CK_TRAILER_BOL;
            break;
        case CK_END_LF:
            if (ch != '\n')
                return -1;
            k->active = 0; /* the message ends here; the parser stops here too */
            return 0;
        }
    }
    return 0;
}

/* ---- parse phase: http-parser callbacks --------------------------------------------------- */

static int on_message_begin(http_parser *p) {
    struct http_conn *c = p->data;
    struct sl_http_server *s = c->server;
    struct http_req *r = sl_http__req_get(s);
    if (!r)
        return -1;
    r->conn = c;
    r->pub.peer = c->peer;
    r->pub.peer_port = c->peer_port;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->nqueued++;
    c->cur = r;
    /* Whole-request deadline: body bytes restart the idle timer, never this one. */
    c->req_deadline = uv_now(s->loop) + s->o.read_timeout_ms;
    /* The header deadline runs from the first byte (or from accept), never reset by bytes. */
    if (c->timer_kind == T_FIRST)
        c->timer_kind = T_HEADER;
    else
        sl_http__conn_timer(c, T_HEADER, s->o.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
    struct http_conn *c = p->data;
    struct http_req *r = c->cur;
    if (r->url_len + len > c->server->o.max_url_bytes) {
        c->err_status = 414;
        return -1;
    }
    if (sl_buf_append(&r->raw, at, len) < 0)
        return -1;
    r->url_len += len;
    return 0;
}

static int add_header_bytes(struct http_conn *c, struct http_req *r, size_t len) {
    r->header_bytes += len;
    if (r->header_bytes > c->server->o.max_header_bytes) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
    struct http_conn *c = p->data;
    struct http_req *r = c->cur;
    if (add_header_bytes(c, r, len) < 0)
        return -1;
    if (r->headers_done)
        return 0; /* trailers are limited but not kept */
    if (r->nhdrs == 0 || r->last_was_value) {
        if (r->nhdrs == r->cap_hdrs) {
            size_t cap = r->cap_hdrs ? r->cap_hdrs * 2 : 16;
            struct hdr_off *o = realloc(r->offs, cap * sizeof(*o));
            if (!o)
                return -1;
            r->offs = o;
            struct sl_http_header *h = realloc(r->hdrs, cap * sizeof(*h));
            if (!h)
                return -1;
            r->hdrs = h;
            r->cap_hdrs = cap;
        }
        r->offs[r->nhdrs++] = (struct hdr_off){.noff = (uint32_t)r->raw.len};
        r->last_was_value = 0;
        /* ": " and CRLF count too, so many tiny headers cannot slip under the limit. */
        if (add_header_bytes(c, r, 4) < 0)
            return -1;
    }
    if (sl_buf_append(&r->raw, at, len) < 0)
        return -1;
    r->offs[r->nhdrs - 1].nlen += (uint32_t)len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
    struct http_conn *c = p->data;
    struct http_req *r = c->cur;
    if (add_header_bytes(c, r, len) < 0)
        return -1;
    if (r->headers_done)
        return 0;
    struct hdr_off *o = &r->offs[r->nhdrs - 1];
    if (!r->last_was_value) {
        o->voff = (uint32_t)r->raw.len;
        r->last_was_value = 1;
    }
    if (sl_buf_append(&r->raw, at, len) < 0)
        return -1;
    o->vlen += (uint32_t)len;
    return 0;
}

/*
 * Framing rules that close request-smuggling gaps the lenient parser leaves open. Returns 0, or
 * -1 with the request to be answered 400.
 */
static int check_framing(struct http_conn *c, struct http_req *r) {
    http_parser *p = &c->parser;
    int ncl = 0, nte = 0, nhost = 0;
    struct sl_str te = {0};
    for (size_t i = 0; i < r->nhdrs; i++) {
        const struct sl_http_header *h = &r->hdrs[i];
        if (h->name.len == 0)
            return -1;
        for (size_t k = 0; k < h->name.len; k++)
            if (!is_tchar((unsigned char)h->name.p[k]))
                return -1; /* e.g. "Content-Length : 5" */
        /* No value holds a control byte but HTAB: scan_headers refused the section before. */
        if (EQ_LIT(h->name.p, h->name.len, "content-length")) {
            ncl++;
        } else if (EQ_LIT(h->name.p, h->name.len, "transfer-encoding")) {
            nte++;
            te = trim_ows(h->value.p, h->value.len);
        } else if (EQ_LIT(h->name.p, h->name.len, "host")) {
            nhost++;
        }
    }
    /* Even two equal Content-Length values are refused: nothing legitimate sends them. */
    if (ncl > 1 || nte > 1 || (ncl && nte))
        return -1;
    if (nte) {
        if (p->http_major == 1 && p->http_minor == 0)
            return -1;
        if (!EQ_LIT(te.p, te.len, "chunked") || !(p->flags & F_CHUNKED))
            return -1;
    } else if (p->flags & F_CHUNKED) {
        return -1;
    }
    if (nhost > 1 || (nhost == 0 && p->http_major == 1 && p->http_minor >= 1))
        return -1;
    if (p->method == HTTP_CONNECT)
        return -1;
    return 0;
}

static int split_url(struct http_req *r) {
    const char *u = r->raw.data;
    size_t n = r->url_len;
    if (n == 1 && u[0] == '*') {
        r->pub.path = (struct sl_str){.p = u, .len = 1};
        r->pub.query = (struct sl_str){.p = u + 1, .len = 0};
        return 0;
    }
    struct http_parser_url pu;
    http_parser_url_init(&pu);
    if (http_parser_parse_url(u, n, 0, &pu) != 0)
        return -1;
    if (pu.field_set & (1 << UF_PATH))
        r->pub.path =
            (struct sl_str){.p = u + pu.field_data[UF_PATH].off, .len = pu.field_data[UF_PATH].len};
    else
        r->pub.path = SL_STR("/");
    if (pu.field_set & (1 << UF_QUERY))
        r->pub.query = (struct sl_str){.p = u + pu.field_data[UF_QUERY].off,
                                       .len = pu.field_data[UF_QUERY].len};
    else
        r->pub.query = (struct sl_str){.p = u + n, .len = 0};
    return 0;
}

static int on_headers_complete(http_parser *p) {
    struct http_conn *c = p->data;
    struct sl_http_server *s = c->server;
    struct http_req *r = c->cur;
    r->headers_done = 1;
    /* The raw buffer no longer moves: turn offsets into slices. */
    for (size_t i = 0; i < r->nhdrs; i++) {
        const struct hdr_off *o = &r->offs[i];
        r->hdrs[i].name = (struct sl_str){.p = r->raw.data + o->noff, .len = o->nlen};
        r->hdrs[i].value =
            (struct sl_str){.p = o->vlen ? r->raw.data + o->voff : "", .len = o->vlen};
    }
    r->pub.url = (struct sl_str){.p = r->raw.data ? r->raw.data : "", .len = r->url_len};
    if (r->url_len == 0 || split_url(r) < 0 || check_framing(c, r) < 0) {
        c->err_status = 400;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > s->o.max_body_bytes) {
        c->err_status = 413; /* early: no 100 Continue, no body read */
        return -1;
    }
    r->head = p->method == HTTP_HEAD;
    if (p->flags & F_CHUNKED)
        c->chunks = (struct chunk_scan){.active = 1, .state = CK_SIZE};
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
    if (has_body) {
        const struct sl_http_header *e = NULL;
        for (size_t i = 0; i < r->nhdrs && !e; i++)
            if (EQ_LIT(r->hdrs[i].name.p, r->hdrs[i].name.len, "expect"))
                e = &r->hdrs[i];
        if (e && p->http_minor >= 1) {
            struct sl_str v = trim_ows(e->value.p, e->value.len);
            r->want_continue = EQ_LIT(v.p, v.len, "100-continue");
        }
        sl_http__conn_body_timer(c);
        if (r->want_continue)
            sl_http__conn_flush(c); /* sends 100 Continue when this request is at the head */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
    struct http_conn *c = p->data;
    struct http_req *r = c->cur;
    int rc = sl_buf_append(&r->body, at, len);
    if (rc < 0) {
        c->err_status = rc == SL_ERR_TOO_LARGE ? 413 : 500;
        return -1;
    }
    /* Body idle timeout: restarted by every chunk of body bytes, capped by the request's. */
    sl_http__conn_body_timer(c);
    return 0;
}

static int on_message_complete(http_parser *p) {
    /* Pausing here gives the exact end of the message: dispatch happens outside the parser. */
    http_parser_pause(p, 1);
    return 0;
}

/* The callbacks above, for the server's parser settings. */
void sl_http__parser_settings(http_parser_settings *st) {
    st->on_message_begin = on_message_begin;
    st->on_url = on_url;
    st->on_header_field = on_header_field;
    st->on_header_value = on_header_value;
    st->on_headers_complete = on_headers_complete;
    st->on_body = on_body;
    st->on_message_complete = on_message_complete;
}

/* ---- dispatch phase --------------------------------------------------------------------- */

static void dispatch(struct http_conn *c) {
    struct sl_http_server *s = c->server;
    struct http_req *r = c->cur;
    http_parser *p = &c->parser;
    c->cur = NULL;
    sl_http__scan_reset(c);
    sl_http__conn_timer(c, T_NONE, 0);
    r->state = REQ_DISPATCHED;
    r->pub.method = (struct sl_str){.p = http_method_str((enum http_method)p->method),
                                    .len = strlen(http_method_str((enum http_method)p->method))};
    r->pub.headers = r->hdrs;
    r->pub.nheaders = r->nhdrs;
    r->pub.body = r->body.data ? r->body.data : "";
    r->pub.body_len = r->body.len;
    r->pub.http_major = p->http_major;
    r->pub.http_minor = p->http_minor;
    r->pub.keep_alive = http_should_keep_alive(p) && !p->upgrade && !s->stopping;
    r->pub.server = s;
    if (!r->pub.keep_alive) {
        c->no_more = 1;
        r->close_after = 1;
    }
    metric_inc(s->m_requests);
    s->o.on_request(&r->pub, s->o.data);
}

int sl_http__pipeline_full(const struct http_conn *c) {
    return c->nqueued >= c->server->o.max_pipelined ||
           c->h.stream.write_queue_size > WRITE_QUEUE_CAP;
}

/*
 * Feeds bytes to the parser, one message at a time; returns how many were consumed. Stops early
 * when the pipeline is full (the caller keeps the rest) or the connection stops parsing.
 */
size_t sl_http__conn_feed(struct http_conn *c, const char *data, size_t len) {
    struct sl_http_server *s = c->server;
    size_t off = 0;
    c->in_feed++;
    while (off < len && !c->no_more && !c->closing) {
        if (!c->cur && sl_http__pipeline_full(c))
            break;
        /* Where this call's body bytes start: after the header section if it ends here. */
        size_t body_off = off;
        if (c->scan.active) {
            size_t lim = s->o.max_url_bytes + s->o.max_header_bytes + 1024;
            size_t before = c->scan.bytes;
            if (scan_headers(c, data + off, len - off, lim) < 0) {
                sl_http__conn_fail(c, c->err_status ? c->err_status : 400, EK_MAX);
                break;
            }
            body_off = c->scan.active ? len : off + (c->scan.bytes - before);
        }
        size_t rem = len - off;
        size_t n = http_parser_execute(&c->parser, &s->settings, data + off, rem);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        off += n;
        /* Checked before dispatch: a badly framed chunked body is never handed on. */
        if (c->chunks.active && body_off < off &&
            scan_chunks(&c->chunks, data + body_off, off - body_off) < 0) {
            sl_http__conn_fail(c, 400, EK_MAX);
            break;
        }
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
            if (c->parser.upgrade)
                c->no_more = 1;
            continue;
        }
        if (e != HPE_OK) {
            if (!c->err_status && e == HPE_HEADER_OVERFLOW)
                c->err_status = 431;
            sl_http__conn_fail(c, c->err_status ? c->err_status : 400, EK_MAX);
            break;
        }
        if (n < rem) {
            c->no_more = 1; /* the parser gave up on the rest (upgrade) */
            break;
        }
    }
    c->in_feed--;
    return off;
}
