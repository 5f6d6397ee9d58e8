/* The prefork pool: handler child processes, the socket to each, timeouts and restarts. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "pool.h"
#include "sandbox.h"
#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

extern char **environ;

static void spawn(struct wk_child *c);

/* A child leads its own process group: killing the group takes what the handler started. */
static void kill_child(struct wk_child *c) {
    if (!c->exited && c->state != WK_CHILD_DOWN)
        wk_sandbox_kill_group(c->proc.pid);
}

static void on_handle_closed(uv_handle_t *h) {
    struct wk_child *c = h->data;
    struct wk_pool *p = c->pool;
    if (--c->open_handles > 0)
        return;
    c->state = WK_CHILD_DOWN;
    sl_buf_reset(&c->in);
    if (p->closing) {
        if (--p->pending_closes == 0 && p->closed_cb)
            p->closed_cb(p->closed_data);
        return;
    }
    /* A child that keeps dying before it is ready (a plugin that cannot init) backs off. */
    uint64_t delay_ms =
        c->crashes_in_start ? 100u << (c->crashes_in_start > 6 ? 6 : c->crashes_in_start) : 0;
    c->restart_at_ns = sl_time_mono_ns() + delay_ms * 1000000u;
    if (!delay_ms)
        spawn(c);
}

static void close_child(struct wk_child *c) {
    if (!uv_is_closing((uv_handle_t *)&c->pipe))
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
    if (c->exited && !uv_is_closing((uv_handle_t *)&c->proc))
        uv_close((uv_handle_t *)&c->proc, on_handle_closed);
}

/* Tells the owner that the running job's attempt failed, once. */
static void fail_job(struct wk_child *c, enum wk_reason reason, const char *why) {
    const struct wk_pool_events *ev = &c->pool->cfg.events;
    if (c->job && !c->failed)
        ev->on_failed(c->job, reason, why, ev->data);
    c->failed = true;
}

/* The child's attempt ends without a reply: the failure told already, or a crash. */
static void lose_job(struct wk_child *c, enum wk_reason reason, const char *why) {
    fail_job(c, reason, why);
    c->job = NULL;
    c->job_deadline_ns = 0;
    c->failed = false;
}

static void on_child_exit(uv_process_t *p, int64_t status, int signum) {
    struct wk_child *c = p->data;
    struct wk_pool *pool = c->pool;
    const struct wk_pool_events *ev = &pool->cfg.events;
    c->exited = true;
    wk_sandbox_kill_group(p->pid); /* whatever the handler left running goes with it */
    if (c->state == WK_CHILD_STARTING)
        c->crashes_in_start++;
    if (!pool->closing || c->job)
        SL_WARN("handler child %d exited (status %" PRId64 ", signal %d)", p->pid, status, signum);
    char why[96];
    if (signum)
        snprintf(why, sizeof why, "handler process killed by signal %d (%s)", signum,
                 strsignal(signum));
    else
        snprintf(why, sizeof why, "handler process exited with status %" PRId64, status);
    lose_job(c, WK_REASON_CRASH, why);
    if (!pool->closing)
        ev->on_child_died(ev->data);
    close_child(c);
    ev->on_idle(ev->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    struct wk_child *c = h->data;
    (void)suggested;
    if (sl_buf_reserve(&c->in, 65536) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

/* A child that breaks the framing cannot be trusted with the next request. */
static void protocol_error(struct wk_child *c, const char *why) {
    fail_job(c, WK_REASON_INVALID_REPLY, why);
    uv_read_stop((uv_stream_t *)&c->pipe);
    kill_child(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    struct wk_child *c = s->data;
    const struct wk_pool_events *ev = &c->pool->cfg.events;
    (void)buf;
    if (nread < 0) {
        uv_read_stop(s);
        if (nread != UV_EOF)
            kill_child(c);
        return; /* on_exit does the rest */
    }
    c->in.len += (size_t)nread;
    for (;;) {
        const uint8_t *payload;
        size_t len;
        int rc = wk_frame_parse(c->in.data, c->in.len, WK_FRAME_MAX, &payload, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            protocol_error(c, "reply frame over the size limit");
            return;
        }
        if (c->state == WK_CHILD_STARTING && len == 0) {
            c->state = WK_CHILD_IDLE;
            c->crashes_in_start = 0;
        } else if (c->state == WK_CHILD_BUSY && c->job) {
            void *job = c->job;
            c->job = NULL;
            c->job_deadline_ns = 0;
            c->state = WK_CHILD_IDLE;
            ev->on_reply(job, payload, len, ev->data);
        } else {
            protocol_error(c, "unexpected frame from a handler process");
            return;
        }
        sl_buf_consume(&c->in, WK_FRAME_HEADER + len);
        if (c->state == WK_CHILD_IDLE)
            ev->on_idle(ev->data);
    }
}

static void spawn(struct wk_child *c) {
    struct wk_pool *p = c->pool;
    c->restart_at_ns = 0;
    c->exited = false;
    c->failed = false;
    uv_pipe_init(p->cfg.loop, &c->pipe, 0);
    c->pipe.data = c;
    c->proc.data = c;
    char *args[] = {(char *)p->cfg.exe, "--child", NULL};
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&c->pipe},
    };
    /* Its own session and process group (setsid), and only the environment a handler needs. */
    char **env = wk_sandbox_env(environ);
    uv_process_options_t opts = {.exit_cb = on_child_exit,
                                 .file = p->cfg.exe,
                                 .args = args,
                                 .env = env,
                                 .flags = UV_PROCESS_DETACHED,
                                 .stdio = stdio,
                                 .stdio_count = 4};
    if (!env) {
        SL_ERROR("cannot start a handler process: out of memory");
        c->open_handles = 1; /* the pipe; the process handle was never initialised */
        c->exited = true;
        c->crashes_in_start++;
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
        return;
    }
    int rc = uv_spawn(p->cfg.loop, &c->proc, &opts);
    free(env);
    if (rc < 0) {
        SL_ERROR("cannot start a handler process: %s", uv_strerror(rc));
        c->open_handles = 1; /* the pipe; uv_spawn failures leave the process handle closing */
        c->exited = true;
        c->crashes_in_start++;
        uv_close((uv_handle_t *)&c->proc, NULL);
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
        return;
    }
    c->open_handles = 2;
    c->state = WK_CHILD_STARTING;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int wk_pool_init(struct wk_pool *p, const struct wk_pool_config *cfg) {
    *p = (struct wk_pool){.cfg = *cfg};
    if (!(p->children = calloc(cfg->nchildren ? cfg->nchildren : 1, sizeof *p->children)))
        return -ENOMEM;
    for (size_t i = 0; i < cfg->nchildren; i++)
        p->children[i] = (struct wk_child){.pool = p, .index = i};
    return 0;
}

void wk_pool_free(struct wk_pool *p) {
    for (size_t i = 0; p->children && i < p->cfg.nchildren; i++)
        sl_buf_free(&p->children[i].in);
    free(p->children);
    p->children = NULL;
}

int wk_pool_start(struct wk_pool *p) {
    for (size_t i = 0; i < p->cfg.nchildren; i++) {
        struct wk_child *c = &p->children[i];
        sl_buf_init(&c->in, WK_FRAME_MAX + WK_FRAME_HEADER + 65536);
        spawn(c);
    }
    return 0;
}

struct wk_child *wk_pool_idle(struct wk_pool *p) {
    for (size_t i = 0; i < p->cfg.nchildren; i++)
        if (p->children[i].state == WK_CHILD_IDLE)
            return &p->children[i];
    return NULL;
}

static void on_written(uv_write_t *req, int status) {
    struct wk_child *c = req->data;
    if (status < 0 && status != UV_ECANCELED)
        kill_child(c); /* on_exit reports the job as a crash */
}

int wk_pool_run(struct wk_child *c, const void *head, size_t hlen, const void *payload, size_t len,
                int64_t timeout_ms, void *job) {
    wk_frame_header(c->hdr, (uint32_t)(hlen + len));
    /* uv_write only reads the buffers: they stay the caller's until the write ends. */
    uv_buf_t bufs[3] = {uv_buf_init((char *)c->hdr, WK_FRAME_HEADER),
                        uv_buf_init((char *)head, (unsigned)hlen),
                        uv_buf_init((char *)payload, (unsigned)len)};
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, bufs, 3, on_written);
    if (rc < 0)
        return rc;
    c->job = job;
    c->failed = false;
    c->state = WK_CHILD_BUSY;
    c->job_deadline_ns = sl_time_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    return 0;
}

/* Resident set of a process in bytes, from /proc/<pid>/statm; 0 when unknown. */
static uint64_t rss_bytes(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long long size = 0, rss = 0;
    int n = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    return n == 2 ? (uint64_t)rss * 4096u : 0;
}

void wk_pool_tick(struct wk_pool *p) {
    uint64_t now = sl_time_mono_ns();
    uint64_t limit = p->cfg.memory_limit;
    for (size_t i = 0; i < p->cfg.nchildren; i++) {
        struct wk_child *c = &p->children[i];
        if (c->state == WK_CHILD_DOWN && !p->closing && c->restart_at_ns &&
            now >= c->restart_at_ns) {
            spawn(c);
            continue;
        }
        if (c->state != WK_CHILD_BUSY || !c->job || c->failed || c->exited)
            continue;
        if (now >= c->job_deadline_ns) {
            fail_job(c, WK_REASON_TIMEOUT, "handler timed out; process killed");
            kill_child(c);
        } else if (rss_bytes(c->proc.pid) > limit) {
            char why[96];
            snprintf(why, sizeof why,
                     "handler process over the memory limit (%" PRIu64 " MiB); killed",
                     limit >> 20);
            fail_job(c, WK_REASON_CRASH, why);
            kill_child(c);
        }
    }
}

size_t wk_pool_ready(const struct wk_pool *p) {
    size_t n = 0;
    for (size_t i = 0; i < p->cfg.nchildren; i++)
        n += p->children[i].state == WK_CHILD_IDLE || p->children[i].state == WK_CHILD_BUSY;
    return n;
}

size_t wk_pool_busy(const struct wk_pool *p) {
    size_t n = 0;
    for (size_t i = 0; i < p->cfg.nchildren; i++)
        n += p->children[i].state == WK_CHILD_BUSY;
    return n;
}

void wk_pool_close(struct wk_pool *p, void (*cb)(void *data), void *data) {
    p->closed_cb = cb;
    p->closed_data = data;
    p->closing = true;
    p->pending_closes = 0;
    for (size_t i = 0; i < p->cfg.nchildren; i++) {
        struct wk_child *c = &p->children[i];
        if (c->state == WK_CHILD_DOWN)
            continue;
        p->pending_closes++;
        if (c->job) {
            fail_job(c, WK_REASON_TIMEOUT, "worker shutting down");
            kill_child(c);
        }
        /* Closing our end gives the child end-of-stream: it shuts its plugins down, exits. */
        if (!uv_is_closing((uv_handle_t *)&c->pipe))
            uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
    }
    if (p->pending_closes == 0)
        cb(data);
}
