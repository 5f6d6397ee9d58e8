/* HTTP/1.1 server: listener, connections, parsing phases, ordered responses, timeouts. */
#include "sluice/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <http_parser.h>

#include "sluice/error.h"
#include "sluice/metrics.h"
#include "sluice/time.h"

#define DEF_MAX_HEADER_BYTES 10240
#define DEF_MAX_BODY_BYTES   (10u * 1024u * 1024u)
#define DEF_MAX_URL_BYTES    8192
#define DEF_MAX_CONNECTIONS  10000
#define DEF_MAX_PIPELINED    16
#define DEF_HEADER_TIMEOUT   10000
#define DEF_BODY_TIMEOUT     10000
#define DEF_KEEPALIVE        60000
#define DEF_WRITE_TIMEOUT    30000
#define DEF_DRAIN_TIMEOUT    30000
#define LINGER_MS            1000
#define READ_BUF_SIZE        65536
/* Buffers bigger than this are freed when a request object goes back to the free list. */
#define KEEP_BUF_BYTES 16384
#define FREE_LIST_MAX  1024
/* Bytes held back while the pipeline is full before reading stops (backpressure). */
#define PENDING_READ_CAP 65536

enum req_state { REQ_PARSING, REQ_DISPATCHED, REQ_DONE, REQ_FREE };

/* Where a header sits in the request's raw buffer while the buffer may still move. */
struct hdr_off {
    uint32_t noff, nlen, voff, vlen;
};

/* The internal request: the public part first, so the handler's pointer converts back. */
struct http_req {
    struct sl_http_request pub;
    enum req_state state;
    struct http_conn *conn; /* NULL once cancelled */
    struct http_req *next;  /* connection queue or free list */
    struct sl_buf raw;      /* URL then header names and values, contiguous */
    struct sl_buf body;
    struct sl_buf out; /* the serialized response */
    struct hdr_off *offs;
    struct sl_http_header *hdrs;
    size_t nhdrs, cap_hdrs;
    size_t url_len;
    size_t header_bytes;
    int last_was_value;
    int headers_done;
    int want_continue;
    int continue_sent;
    /* The 100 Continue write holds the request until its callback: libuv owns continue_wreq
     * until then, so a release in the meantime waits (release_deferred) and happens there. */
    int continue_writing;
    int release_deferred;
    struct sl_http_server *srv;
    int close_after; /* close the connection once this response is written */
    int head;        /* HEAD: no response body */
    uv_write_t wreq;
    uv_write_t continue_wreq;
};

enum conn_timer { T_NONE, T_FIRST, T_HEADER, T_BODY, T_KEEPALIVE, T_LINGER };

/* Lexical state of the header-section scanner (see scan_headers). */
struct scan {
    int active;
    int state;
    int started;
    size_t bytes;
};

/*
 * One client connection. Owned by the server (in its list); freed in the close callback of its
 * last handle. Requests in `head..tail` are in arrival order; the head is written first.
 */
struct http_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t timer;  /* read side: header, body, keep-alive, linger */
    uv_timer_t wtimer; /* write progress */
    uv_shutdown_t shutdown_req;
    http_parser parser;
    struct sl_http_server *server;
    struct http_conn *prev, *next;
    struct http_req *head, *tail;
    struct http_req *cur; /* being parsed */
    size_t nqueued;
    size_t nwriting;
    int nhandles;
    enum conn_timer timer_kind;
    uint64_t deadline; /* loop time when timer_kind expires */
    uint64_t armed_at; /* loop time the uv timer fires; 0 when not armed */
    struct scan scan;
    struct sl_buf pending; /* bytes read but not yet parsed (pipeline limit reached) */
    int in_feed;
    int reading;
    int no_more;   /* parse no further requests */
    int lingering; /* final response written, FIN sent, discarding input */
    int closing;
    int err_status;
    const char *err_kind;
    struct http_conn *flush_prev, *flush_next; /* in the server's flush list when queued */
    int flush_queued;
    struct sl_addr peer; /* read once at accept; every request carries a copy */
    uint16_t peer_port;
};

enum err_kind { EK_BAD_REQUEST, EK_HEADER_TOO_LARGE, EK_URL_TOO_LONG, EK_BODY_TOO_LARGE, EK_MAX };
enum to_kind { TO_HEADER, TO_BODY, TO_KEEPALIVE, TO_WRITE, TO_MAX };

struct sl_http_server {
    uv_loop_t *loop;
    struct sl_http_options o;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
    } listener;
    uv_timer_t drain_timer;
    /* Connections with answers to write at the end of this loop iteration (see
     * sl_http__flush_soon). */
    uv_check_t flush_check;
    uv_idle_t flush_idle;
    struct http_conn *flush_list;
    int listening;
    int listener_closed;
    int handles; /* server-level handles not yet closed */
    http_parser_settings settings;
    struct http_conn *conns;
    size_t nconns;
    size_t live_reqs; /* requests allocated and not yet released */
    struct http_req *free_reqs;
    size_t nfree;
    int stopping;
    int closing;
    sl_http_server_cb stop_cb;
    void *stop_data;
    void (*close_cb)(void *);
    void *close_data;
    time_t date_sec;
    char date[40];
    size_t date_len;
    struct sl_metric *m_open, *m_rejected, *m_requests;
    struct sl_metric *m_errors[EK_MAX];
    struct sl_metric *m_timeouts[TO_MAX];
    char rbuf[READ_BUF_SIZE]; /* shared: every read is parsed before the next one */
};

static const char *const sl_http__err_kind_names[EK_MAX] = {"bad_request", "header_too_large",
                                                            "url_too_long", "body_too_large"};
static const char *const to_kind_names[TO_MAX] = {"header", "body", "keepalive", "write"};

static void sl_http__conn_close(struct http_conn *c);
static void sl_http__conn_flush(struct http_conn *c);
static void sl_http__flush_unlink(struct http_conn *c);
static void sl_http__conn_fail(struct http_conn *c, int status, enum err_kind kind);
static void sl_http__conn_resume(struct http_conn *c);
static void sl_http__conn_finish(struct http_conn *c);
static void sl_http__conn_idle_check(struct http_conn *c);
static void sl_http__server_maybe_finish(struct sl_http_server *s);

/* ---- small helpers ---------------------------------------------------------------------- */

static void metric_inc(struct sl_metric *m) {
    if (m)
        sl_counter_inc(m);
}

static void metric_add(struct sl_metric *m, int64_t d) {
    if (m)
        sl_gauge_add(m, d);
}

static int ascii_lower(int ch) {
    return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

static int slice_eq_nocase(const char *p, size_t n, const char *lit, size_t litn) {
    if (n != litn)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)p[i]) != lit[i])
            return 0;
    return 1;
}

#define EQ_LIT(p, n, lit) slice_eq_nocase((p), (n), (lit), sizeof(lit) - 1)

/* RFC 9110 tchar: digits, letters and !#$%&'*+-.^_`|~ (a table: one load a byte, for the names
 * of every request's and every answer's headers). */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
    ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

static int is_tchar(unsigned char ch) {
    return tchar[ch];
}

/*
 * Eight bytes at a time for the byte checks every request and answer goes through: the classic
 * exact tests for whether a word holds a zero byte, or a byte below 0x20 (a byte with its top
 * bit set is never flagged). They say whether such a byte exists, not where: the byte loop after
 * them finds it.
 */
#define ONES 0x0101010101010101u
#define HIGH 0x8080808080808080u

static inline uint64_t load8(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t has_zero(uint64_t w) {
    return (w - ONES) & ~w & HIGH;
}

/* How many bytes from p on are neither control bytes (below 0x20) nor DEL. */
static size_t printable_span(const char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = load8(p + i);
        if (((w - ONES * 0x20) & ~w & HIGH) | has_zero(w ^ (ONES * 0x7f)))
            break;
    }
    while (i < n && (unsigned char)p[i] >= 0x20 && p[i] != 0x7f)
        i++;
    return i;
}

/* Whether p[0..n) is a valid field value as far as bytes go: no control byte but HTAB. */
static int field_value_ok(const char *p, size_t n) {
    for (size_t i = printable_span(p, n); i < n; i += 1 + printable_span(p + i + 1, n - i - 1))
        if (p[i] != '\t')
            return 0;
    return 1;
}

static struct sl_str trim_ows(const char *p, size_t n) {
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return (struct sl_str){.p = p, .len = n};
}

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

/* ---- request objects: a free list instead of malloc per request -------------------------- */

static struct http_req *sl_http__req_get(struct sl_http_server *s) {
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

static void sl_http__req_free_mem(struct http_req *r) {
    sl_buf_free(&r->raw);
    sl_buf_free(&r->body);
    sl_buf_free(&r->out);
    free(r->offs);
    free(r->hdrs);
    free(r);
}

static void sl_http__req_release(struct sl_http_server *s, struct http_req *r) {
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
static void sl_http__conn_timer(struct http_conn *c, enum conn_timer kind, uint64_t ms) {
    c->timer_kind = kind;
    if (kind == T_NONE)
        return;
    c->deadline = uv_now(c->server->loop) + ms;
    if (!c->armed_at || c->deadline < c->armed_at) {
        uv_timer_start(&c->timer, conn_on_timer, ms, 0);
        c->armed_at = c->deadline;
    }
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
        metric_inc(s->m_timeouts[TO_BODY]);
        c->err_kind = "body_timeout";
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

static void sl_http__conn_on_write_timer(uv_timer_t *t) {
    struct http_conn *c = t->data;
    metric_inc(c->server->m_timeouts[TO_WRITE]);
    sl_http__conn_close(c);
}

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

static void sl_http__scan_reset(struct http_conn *c) {
    c->scan = (struct scan){.active = 1};
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
        sl_http__conn_timer(c, T_BODY, s->o.body_timeout_ms);
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
    /* Body idle timeout: restarted by every chunk of body bytes. */
    sl_http__conn_timer(c, T_BODY, c->server->o.body_timeout_ms);
    return 0;
}

static int on_message_complete(http_parser *p) {
    /* Pausing here gives the exact end of the message: dispatch happens outside the parser. */
    http_parser_pause(p, 1);
    return 0;
}

/* The callbacks above, for the server's parser settings. */
static void sl_http__parser_settings(http_parser_settings *st) {
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

static int sl_http__pipeline_full(const struct http_conn *c) {
    return c->nqueued >= c->server->o.max_pipelined;
}

/*
 * Feeds bytes to the parser, one message at a time; returns how many were consumed. Stops early
 * when the pipeline is full (the caller keeps the rest) or the connection stops parsing.
 */
static size_t sl_http__conn_feed(struct http_conn *c, const char *data, size_t len) {
    struct sl_http_server *s = c->server;
    size_t off = 0;
    c->in_feed++;
    while (off < len && !c->no_more && !c->closing) {
        if (!c->cur && sl_http__pipeline_full(c))
            break;
        if (c->scan.active) {
            size_t lim = s->o.max_url_bytes + s->o.max_header_bytes + 1024;
            if (scan_headers(c, data + off, len - off, lim) < 0) {
                sl_http__conn_fail(c, c->err_status ? c->err_status : 400, EK_MAX);
                break;
            }
        }
        size_t rem = len - off;
        size_t n = http_parser_execute(&c->parser, &s->settings, data + off, rem);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        off += n;
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

static void sl_http__conn_read_start(struct http_conn *c) {
    if (!c->reading && !c->closing) {
        if (uv_read_start(&c->h.stream, conn_alloc, conn_on_read) == 0)
            c->reading = 1;
    }
}

/* Continues parsing held-back bytes once the pipeline has room again. */
static void sl_http__conn_resume(struct http_conn *c) {
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

static void sl_http__conn_on_handle_closed(uv_handle_t *h) {
    struct http_conn *c = h->data;
    if (--c->nhandles > 0)
        return;
    struct sl_http_server *s = c->server;
    sl_buf_free(&c->pending);
    free(c);
    s->nconns--;
    metric_add(s->m_open, -1);
    sl_http__server_maybe_finish(s);
}

static void sl_http__conn_close(struct http_conn *c) {
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
static void sl_http__conn_finish(struct http_conn *c) {
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
static void sl_http__conn_idle_check(struct http_conn *c) {
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

static void conn_update_write_timer(struct http_conn *c) {
    if (c->h.stream.write_queue_size > 0)
        uv_timer_start(&c->wtimer, sl_http__conn_on_write_timer, c->server->o.write_timeout_ms, 0);
    else
        uv_timer_stop(&c->wtimer);
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
    conn_update_write_timer(c);
    if (close_after)
        sl_http__conn_finish(c);
    else
        sl_http__conn_idle_check(c);
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
static void sl_http__flush_unlink(struct http_conn *c) {
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

static void sl_http__flush_soon(struct http_conn *c) {
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
 * goes through first (position lock, permission and notify hooks): about 0.3 µs of system time
 * per answer on the gateway's 403 (6.50 -> 6.18 µs). Only called with libuv's write queue
 * empty, as uv_try_write is.
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
static void sl_http__conn_flush(struct http_conn *c) {
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
        conn_update_write_timer(c);
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
static void sl_http__conn_fail(struct http_conn *c, int status, enum err_kind kind) {
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
    peer_name(c);
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
    DEFAULT(max_pipelined, DEF_MAX_PIPELINED);
    DEFAULT(header_timeout_ms, DEF_HEADER_TIMEOUT);
    DEFAULT(body_timeout_ms, DEF_BODY_TIMEOUT);
    DEFAULT(keepalive_timeout_ms, DEF_KEEPALIVE);
    DEFAULT(write_timeout_ms, DEF_WRITE_TIMEOUT);
    DEFAULT(drain_timeout_ms, DEF_DRAIN_TIMEOUT);
    DEFAULT(backlog, 511);
#undef DEFAULT
    int rc = register_metrics(s);
    if (rc < 0) {
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
static void sl_http__server_maybe_finish(struct sl_http_server *s) {
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
