/* The HTTP server's internals, shared by its files (http_*.c): objects, limits, helpers. */
#ifndef SLUICE_HTTP_INTERNAL_H
#define SLUICE_HTTP_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>

#include "sluice/http.h"
#include "sluice/metrics.h"

#define DEF_MAX_HEADER_BYTES 10240
#define DEF_MAX_BODY_BYTES   (10u * 1024u * 1024u)
#define DEF_MAX_URL_BYTES    8192
#define DEF_MAX_CONNECTIONS  10000
#define DEF_MAX_CONNS_PER_IP 256
#define DEF_MAX_PIPELINED    16
#define DEF_HEADER_TIMEOUT   10000
#define DEF_BODY_TIMEOUT     10000
#define DEF_READ_TIMEOUT     60000
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
/* Answer bytes waiting to be written past which the connection parses and reads no more: a
 * client that pipelines and never reads must not make the server keep every answer. */
#define WRITE_QUEUE_CAP (1u << 20)

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

/* Open connections from one client address (an IPv6 client's /64), in the server's table. */
struct ip_count {
    struct ip_count *next;
    struct sl_addr key;
    size_t n;
};

/* State of the chunked-body framing check (see scan_chunks in http_parse.c). */
struct chunk_scan {
    int active;
    int state;
    int ndigits;
    uint64_t size; /* the chunk-size being read, then the data bytes left in the chunk */
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
    uint64_t deadline;     /* loop time when timer_kind expires */
    uint64_t armed_at;     /* loop time the uv timer fires; 0 when not armed */
    uint64_t req_deadline; /* loop time the request being read must be complete by */
    struct scan scan;
    struct chunk_scan chunks;
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
    struct ip_count *ip; /* this connection's entry in the per-IP table; NULL: not counted */
    uint16_t peer_port;
};

enum err_kind { EK_BAD_REQUEST, EK_HEADER_TOO_LARGE, EK_URL_TOO_LONG, EK_BODY_TOO_LARGE, EK_MAX };
enum to_kind { TO_HEADER, TO_BODY, TO_READ, TO_KEEPALIVE, TO_WRITE, TO_MAX };

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
    struct ip_count **ip_buckets; /* open connections per client address */
    size_t ip_nbuckets;           /* a power of two */
    uint64_t ip_seed;             /* so clients cannot aim addresses at one bucket */
    size_t live_reqs;             /* requests allocated and not yet released */
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
    struct sl_metric *m_open, *m_rejected, *m_rejected_ip, *m_requests;
    struct sl_metric *m_errors[EK_MAX];
    struct sl_metric *m_timeouts[TO_MAX];
    char rbuf[READ_BUF_SIZE]; /* shared: every read is parsed before the next one */
};

/* The label values of the parse-error metric, by enum err_kind (http_server.c). */
extern const char *const sl_http__err_kind_names[EK_MAX];

/* ---- small helpers ---------------------------------------------------------------------- */

static inline void metric_inc(struct sl_metric *m) {
    if (m)
        sl_counter_inc(m);
}

static inline void metric_add(struct sl_metric *m, int64_t d) {
    if (m)
        sl_gauge_add(m, d);
}

static inline int ascii_lower(int ch) {
    return (ch >= 'A' && ch <= 'Z') ? ch + 32 : ch;
}

static inline int slice_eq_nocase(const char *p, size_t n, const char *lit, size_t litn) {
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

static inline int is_tchar(unsigned char ch) {
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
static inline size_t printable_span(const char *p, size_t n) {
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
static inline int field_value_ok(const char *p, size_t n) {
    for (size_t i = printable_span(p, n); i < n; i += 1 + printable_span(p + i + 1, n - i - 1))
        if (p[i] != '\t')
            return 0;
    return 1;
}

static inline struct sl_str trim_ows(const char *p, size_t n) {
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    return (struct sl_str){.p = p, .len = n};
}

/* http_conn.c: request objects, read-side timers, reading and closing */
struct http_req *sl_http__req_get(struct sl_http_server *s);
void sl_http__req_free_mem(struct http_req *r);
void sl_http__req_release(struct sl_http_server *s, struct http_req *r);
void sl_http__conn_timer(struct http_conn *c, enum conn_timer kind, uint64_t ms);
void sl_http__conn_body_timer(struct http_conn *c);
void sl_http__ip_release(struct sl_http_server *s, struct http_conn *c);
void sl_http__conn_on_write_timer(uv_timer_t *t);
void sl_http__conn_read_start(struct http_conn *c);
void sl_http__conn_resume(struct http_conn *c);
void sl_http__conn_on_handle_closed(uv_handle_t *h);
void sl_http__conn_close(struct http_conn *c);
void sl_http__conn_finish(struct http_conn *c);
void sl_http__conn_idle_check(struct http_conn *c);

/* http_write.c: answers written in request order, at the end of the loop iteration */
void sl_http__flush_unlink(struct http_conn *c);
void sl_http__flush_soon(struct http_conn *c);
void sl_http__conn_flush(struct http_conn *c);

/* http_parse.c: scanner, parser callbacks, dispatch */
void sl_http__scan_reset(struct http_conn *c);
void sl_http__parser_settings(http_parser_settings *st);
int sl_http__pipeline_full(const struct http_conn *c);
size_t sl_http__conn_feed(struct http_conn *c, const char *data, size_t len);

/* http_respond.c: the server's own answers */
void sl_http__conn_fail(struct http_conn *c, int status, enum err_kind kind);

/* http_server.c */
void sl_http__server_maybe_finish(struct sl_http_server *s);

#endif
