/* The handler child: limits, plugin start-up, then request frame in, reply frame out. */
#include "child.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include "frame.h"
#include "handlers/handlers.h"
#include "plugin.h"
#include "sandbox.h"
#include "sluice/envelope.h"
#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/routes.h"

struct child {
    const struct wk_settings *s;
    struct sl_routes *routes;
    struct wk_plugin **plugins; /* per route; NULL unless the route's handler is "plugin" */
    struct sl_envelope_limits limits;
    struct wk_response resp;
    struct sl_buf in, out;
};

static int load(struct child *c) {
    struct sl_buf err;
    sl_buf_init(&err, 4096);
    int rc = c->s->routes_file ? sl_routes_load_file(c->s->routes_file, &c->routes, &err)
                               : sl_routes_default(&c->routes);
    if (rc == 0 && !(c->plugins = calloc(c->routes->n + 1, sizeof *c->plugins)))
        rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < c->routes->n; i++) {
        const struct sl_route *r = &c->routes->routes[i];
        if (strcmp(r->handler, "plugin"))
            continue;
        for (size_t j = 0; j < i; j++) /* one load per shared object */
            if (c->plugins[j] && !strcmp(c->plugins[j]->path, r->plugin))
                c->plugins[i] = c->plugins[j];
        if (!c->plugins[i])
            rc = wk_plugin_load(r->plugin, &c->plugins[i], &err);
    }
    if (rc < 0)
        SL_ERROR("handler child cannot start: %s", err.data ? err.data : sl_strerror(rc));
    sl_buf_free(&err);
    return rc;
}

static void unload(struct child *c) {
    if (c->plugins) {
        for (size_t i = 0; i < c->routes->n; i++) {
            struct wk_plugin *p = c->plugins[i];
            if (!p)
                continue;
            for (size_t j = i; j < c->routes->n; j++)
                if (c->plugins[j] == p)
                    c->plugins[j] = NULL;
            wk_plugin_unload(p);
        }
        free(c->plugins);
    }
    sl_routes_free(c->routes);
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs one request into c->resp; the reply frame is encoded by the caller. `attempt` is the
 * attempt's span from the frame's head, or NULL. */
static int run(struct child *c, const struct sl_envelope_request *req,
               const struct sl_trace_ctx *attempt) {
    struct sl_route_match m;
    if (!sl_routes_match(c->routes, req->method.p, req->method.len, req->path.p, req->path.len,
                         &m)) {
        wk_response_fail(&c->resp, "handler_error", "no route for %.*s %.*s", (int)req->method.len,
                         req->method.p, (int)req->path.len, req->path.p);
        return 0;
    }
    size_t idx = (size_t)(m.route - c->routes->routes);
    const char *h = m.route->handler;
    if (!strcmp(h, "echo"))
        return wk_echo_handle(req, now_us(), &c->resp);
    if (!strcmp(h, "http")) {
        /* Finish before the supervisor's kill: a margin below the attempt's timeout. */
        int64_t t = m.route->timeout_ms ? m.route->timeout_ms : c->s->handler_timeout_ms;
        int64_t left = req->deadline_ms - now_us() / 1000;
        if (left < t)
            t = left;
        return wk_http_handle(req, m.route, attempt, t > 100 ? t - 50 : 1, &c->resp);
    }
    if (!strcmp(h, "plugin") && c->plugins[idx])
        return wk_plugin_handle(c->plugins[idx], req, &c->resp);
    wk_response_fail(&c->resp, "handler_error", "handler \"%s\" is not available", h);
    return 0;
}

int wk_child_main(const struct wk_settings *s, int fd) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the supervisor */
    signal(SIGPIPE, SIG_IGN);
    /* libuv hands the socket over non-blocking; this side is a plain blocking loop. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int sb = wk_sandbox_apply((uint64_t)s->child_memory_mb);
    if (sb < 0) {
        SL_ERROR("handler child: cannot confine itself: %s", sl_strerror(sb));
        curl_global_cleanup();
        return 3;
    }
    struct child c = {.s = s, .limits = sl_envelope_limits_default((size_t)s->max_body_bytes)};
    /* The echo of the largest request (6 bytes per escaped byte) must fit, or it would fail. */
    size_t body_max = wk_echo_body_max(c.limits.max_input);
    wk_response_init(&c.resp, body_max > s->max_body_bytes ? body_max : s->max_body_bytes);
    sl_buf_init(&c.in, WK_FRAME_MAX);
    sl_buf_init(&c.out, WK_FRAME_MAX);
    int code = 0;
    /* The routes and plugins are the operator's, loaded with the worker's rights; requests are
     * not: a root worker's child gives root up before it takes the first. */
    if (load(&c) < 0) {
        code = 3;
        goto out;
    }
    int dropped = wk_sandbox_drop_user(s->handler_user);
    if (dropped < 0) {
        SL_ERROR("handler child: cannot switch to SLUICE_HANDLER_USER %s: %s", s->handler_user,
                 sl_strerror(dropped));
        code = 3;
        goto out;
    }
    if (wk_frame_write_fd(fd, "", 0) < 0) {
        code = 3;
        goto out;
    }
    for (;;) {
        int rc = wk_frame_read_fd(fd, &c.in, WK_FRAME_MAX);
        if (rc == 1)
            break; /* the supervisor closed the socket: a clean stop */
        if (rc < 0) {
            SL_ERROR("handler child: reading a request: %s", sl_strerror(rc));
            code = 4;
            break;
        }
        if (c.in.len < WK_ATTEMPT_HEAD) {
            SL_ERROR("handler child: a request frame of %zu bytes has no attempt head", c.in.len);
            code = 4;
            break;
        }
        struct sl_trace_ctx attempt;
        bool has_attempt = sl_trace_parse(c.in.data, WK_ATTEMPT_HEAD, &attempt) == 0;
        struct sl_envelope_request req;
        struct sl_envelope_error derr;
        wk_response_reset(&c.resp);
        sl_buf_reset(&c.out);
        uint8_t flags = 0;
        if (sl_buf_append(&c.out, &flags, WK_REPLY_HEAD) < 0) {
            code = 5;
            break;
        }
        rc = sl_envelope_decode_request(c.in.data + WK_ATTEMPT_HEAD, c.in.len - WK_ATTEMPT_HEAD,
                                        &c.limits, &req, &derr);
        if (rc < 0) {
            wk_response_fail(&c.resp, "decode_error", "%s: %s", derr.field, derr.message);
            rc = wk_response_encode(&c.resp, (struct sl_str){"", 0}, &c.out);
        } else {
            rc = run(&c, &req, has_attempt ? &attempt : NULL);
            if (rc < 0) {
                wk_response_reset(&c.resp);
                wk_response_fail(&c.resp, "handler_error", "handler: %s", sl_strerror(rc));
            }
            rc = wk_response_encode(&c.resp, req.id, &c.out);
            sl_envelope_request_free(&req);
        }
        if (rc == 0 && c.resp.failed && c.resp.final)
            c.out.data[0] = WK_REPLY_FINAL;
        if (rc < 0 || wk_frame_write_fd(fd, c.out.data, c.out.len) < 0) {
            code = 5;
            break;
        }
    }
out:
    unload(&c);
    curl_global_cleanup();
    wk_response_free(&c.resp);
    sl_buf_free(&c.in);
    sl_buf_free(&c.out);
    return code;
}
