/* libFuzzer target: arbitrary bytes, in arbitrary chunks, into an sl_http connection. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "sluice/http.h"

/*
 * The server is driven over a socketpair adopted with sl_http_server_adopt, so the whole real
 * path runs (read buffer, header scanner, parser callbacks, pipelining queue, writes, lingering
 * close) without TCP. Requests whose path contains "/a" are held and answered only after the
 * connection is gone, which exercises cancellation and out-of-order completion.
 */
struct harness {
    uv_loop_t loop;
    struct sl_http_server *srv;
    struct sl_http_request *held[64];
    size_t nheld;
};

static struct harness *h_state;

static void on_request(struct sl_http_request *req, void *data) {
    struct harness *h = data;
    int hold = 0;
    for (size_t i = 0; i + 1 < req->path.len; i++)
        if (req->path.p[i] == '/' && req->path.p[i + 1] == 'a')
            hold = 1;
    if (hold && h->nheld < sizeof(h->held) / sizeof(h->held[0])) {
        h->held[h->nheld++] = req;
        return;
    }
    /* An adopted socketpair has no IP peer. */
    if (req->peer.family != AF_UNSPEC || req->peer_port != 0)
        abort();
    /* Touch every slice so ASan checks they point at live memory. */
    size_t sum = req->method.len + req->url.len + req->query.len + req->body_len;
    for (size_t i = 0; i < req->nheaders; i++)
        sum += req->headers[i].name.len + req->headers[i].value.len +
               (unsigned char)req->headers[i].name.p[0];
    for (size_t i = 0; i < req->body_len; i++)
        sum += (unsigned char)req->body[i];
    struct sl_http_header hd = {SL_STR("X-Sum"), SL_STR("1")};
    sl_http_respond(req, sum % 2 ? 200 : 201, &hd, 1, req->body, req->body_len);
}

static struct harness *harness(void) {
    if (h_state)
        return h_state;
    struct harness *h = calloc(1, sizeof(*h));
    uv_loop_init(&h->loop);
    struct sl_http_options o = {
        .on_request = on_request,
        .data = h,
        .max_header_bytes = 2048,
        .max_body_bytes = 4096,
        .max_url_bytes = 512,
        .max_pipelined = 4,
    };
    if (sl_http_server_init(&h->srv, &h->loop, &o) != 0)
        abort();
    h_state = h;
    return h;
}

static void drain(int fd) {
    char buf[16384];
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
}

/* A tiny LCG seeded by the input's first byte picks chunk sizes (deterministic per input). */
static uint32_t next(uint32_t *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct harness *h = harness();
    if (size < 1)
        return 0;
    uint32_t seed = data[0];
    data++;
    size--;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    if (sl_http_server_adopt(h->srv, sv[0]) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        size_t n = 1 + next(&seed) % (seed & 1 ? 7 : 300);
        if (n > size - off)
            n = size - off;
        ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;
        for (int i = 0; i < 2; i++)
            uv_run(&h->loop, UV_RUN_NOWAIT);
        drain(sv[1]);
        if (sl_http_server_connections(h->srv) == 0)
            break;
    }
    /* Let responses to the held requests out for half of the inputs, then hang up. */
    if (seed & 2) {
        for (size_t i = 0; i < h->nheld; i++)
            sl_http_respond(h->held[i], 200, NULL, 0, "late", 4);
        h->nheld = 0;
        uv_run(&h->loop, UV_RUN_NOWAIT);
        drain(sv[1]);
    }
    close(sv[1]);
    for (int i = 0; i < 100000 && sl_http_server_connections(h->srv) > 0; i++)
        uv_run(&h->loop, UV_RUN_NOWAIT);
    if (sl_http_server_connections(h->srv) != 0)
        abort(); /* a connection that never closes after EOF is a bug */
    /* The rest answer after the client is gone: cancelled, freed, never written. */
    for (size_t i = 0; i < h->nheld; i++) {
        if (!h->held[i]->cancelled)
            abort();
        sl_http_respond(h->held[i], 200, NULL, 0, "late", 4);
    }
    h->nheld = 0;
    return 0;
}
