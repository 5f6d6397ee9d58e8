/* The admin listener: health, readiness and Prometheus metrics on a small sl_http server. */
#include "sluice/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/http.h"
#include "sluice/metrics.h"

/* A slice of a string literal, usable in static initializers (SL_STR is a compound literal). */
#define LIT(s)                                                                                     \
    { (s), sizeof(s) - 1 }

/* Owned by its creator through sl_admin_init / sl_admin_close. */
struct sl_admin {
    struct sl_http_server *http;
    struct sl_admin_options o;
    struct sl_buf out; /* reused for every /metrics and /readyz body */
    void (*close_cb)(void *);
    void *close_data;
};

static const struct sl_http_header text_plain = {LIT("Content-Type"), LIT("text/plain")};
static const struct sl_http_header json = {LIT("Content-Type"), LIT("application/json")};

static int path_is(struct sl_str path, const char *lit) {
    return path.len == strlen(lit) && memcmp(path.p, lit, path.len) == 0;
}

static void respond_json(struct sl_http_request *req, int status, const char *body) {
    sl_http_respond(req, status, &json, 1, body, strlen(body));
}

static void serve_readyz(struct sl_admin *a, struct sl_http_request *req) {
    struct sl_buf reason;
    sl_buf_init(&reason, 512);
    int ready = a->o.ready ? a->o.ready(&reason, a->o.data) : 1;
    if (ready) {
        sl_http_respond(req, 200, &text_plain, 1, "ok", 2);
    } else {
        sl_buf_reset(&a->out);
        int rc = sl_buf_append_str(&a->out, "{\"ready\":false,\"reason\":\"");
        if (rc == 0)
            rc = sl_buf_append_json_escaped(&a->out, reason.data ? reason.data : "", reason.len);
        if (rc == 0)
            rc = sl_buf_append_str(&a->out, "\"}");
        if (rc == 0)
            sl_http_respond(req, 503, &json, 1, a->out.data, a->out.len);
        else
            respond_json(req, 503, "{\"ready\":false}");
    }
    sl_buf_free(&reason);
}

static void serve_metrics(struct sl_admin *a, struct sl_http_request *req) {
    static const struct sl_http_header prom = {LIT("Content-Type"),
                                               LIT("text/plain; version=0.0.4")};
    sl_buf_reset(&a->out);
    if (a->o.metrics && sl_metrics_render(a->o.metrics, &a->out) < 0) {
        respond_json(req, 500, "{\"message\":\"Internal server error\"}");
        return;
    }
    sl_http_respond(req, 200, &prom, 1, a->out.data ? a->out.data : "", a->out.len);
}

static void on_request(struct sl_http_request *req, void *data) {
    struct sl_admin *a = data;
    int known = path_is(req->path, "/healthz") || path_is(req->path, "/readyz") ||
                path_is(req->path, "/metrics");
    if (!known) {
        respond_json(req, 404, "{\"message\":\"Not Found\"}");
        return;
    }
    if (!path_is(req->method, "GET") && !path_is(req->method, "HEAD")) {
        static const struct sl_http_header h[] = {{LIT("Content-Type"), LIT("application/json")},
                                                  {LIT("Allow"), LIT("GET, HEAD")}};
        const char *body = "{\"message\":\"Method Not Allowed\"}";
        sl_http_respond(req, 405, h, 2, body, strlen(body));
        return;
    }
    if (path_is(req->path, "/healthz"))
        sl_http_respond(req, 200, &text_plain, 1, "ok", 2);
    else if (path_is(req->path, "/readyz"))
        serve_readyz(a, req);
    else
        serve_metrics(a, req);
}

int sl_admin_init(struct sl_admin **out, uv_loop_t *loop, const struct sl_admin_options *opts) {
    if (!out || !loop || !opts)
        return -EINVAL;
    struct sl_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->o = *opts;
    sl_buf_init(&a->out, 64u * 1024u * 1024u);
    /* Probes are small GETs: tight limits, and no metrics of its own to keep /metrics clean. */
    struct sl_http_options h = {
        .on_request = on_request,
        .data = a,
        .max_body_bytes = 4096,
        .max_connections = 256,
        .keepalive_timeout_ms = 30000,
        .drain_timeout_ms = 1000,
    };
    int rc = sl_http_server_init(&a->http, loop, &h);
    if (rc < 0) {
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int sl_admin_start(struct sl_admin *a, const char *host, int port) {
    return sl_http_server_start(a->http, host, port);
}

int sl_admin_port(const struct sl_admin *a) {
    return sl_http_server_port(a->http);
}

static void on_http_closed(void *data) {
    struct sl_admin *a = data;
    void (*cb)(void *) = a->close_cb;
    void *cb_data = a->close_data;
    sl_buf_free(&a->out);
    free(a);
    if (cb)
        cb(cb_data);
}

void sl_admin_close(struct sl_admin *a, void (*cb)(void *data), void *data) {
    a->close_cb = cb;
    a->close_data = data;
    sl_http_server_close(a->http, on_http_closed, a);
}
