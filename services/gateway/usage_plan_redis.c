/* Usage plans in Redis: one atomic Lua script per check, hiredis async on the libuv loop. */
#include "usage_plan_redis.h"

#include "sluice/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/metrics.h"

/*
 * The whole decision in one script, so a check is one round trip and atomic across replicas.
 * KEYS[1] = sluice:usage:{<id>}:bucket, a hash {t = tokens, ts = ms of last refill};
 * KEYS[2] = sluice:usage:{<id>}:quota, a hash {w = window start ms, n = used in that window}.
 * Both are declared in KEYS and share the {<id>} hash tag, so Redis Cluster keeps them in one
 * slot. ARGV = now ms ("" = use Redis TIME), rate, burst, quota limit, period (1 day, 2 week,
 * 3 month). Returns {outcome (0 allowed, 1 throttled, 2 quota), whole tokens left, ms until one
 * token, quota left, ms until the quota window ends, ms until the bucket is full}. State is
 * written only when the request is allowed; a rejected request changes nothing. This is
 * mem_decide() in usage_plan.c, in Lua: keep the two in step.
 */
static const char usage_script[] =
    "local now = tonumber(ARGV[1])\n"
    "if not now then\n"
    "  if redis.replicate_commands then redis.replicate_commands() end\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local limit, period = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local DAY = 86400000\n"
    "local function window()\n"
    "  local day = math.floor(now / DAY)\n"
    "  if period == 1 then return day * DAY, (day + 1) * DAY end\n"
    "  if period == 2 then local s = day - (day + 3) % 7; return s * DAY, (s + 7) * DAY end\n"
    "  local z = day + 719468\n"
    "  local era = math.floor(z / 146097)\n"
    "  local doe = z - era * 146097\n"
    "  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)\n"
    "                          - math.floor(doe / 146096)) / 365)\n"
    "  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))\n"
    "  local mp = math.floor((5 * doy + 2) / 153)\n"
    "  local d = doy - math.floor((153 * mp + 2) / 5) + 1\n"
    "  local m = mp < 10 and mp + 3 or mp - 9\n"
    "  local y = yoe + era * 400\n"
    "  if m <= 2 then y = y + 1 end\n"
    "  local dim = ({31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31})[m]\n"
    "  if m == 2 and y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then dim = 29 end\n"
    "  local s = day - (d - 1)\n"
    "  return s * DAY, (s + dim) * DAY\n"
    "end\n"
    "local tokens, ts = burst, now\n"
    "if rate > 0 then\n"
    "  local b = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
    "  if b[1] then\n"
    "    tokens, ts = tonumber(b[1]), tonumber(b[2])\n"
    "    if now > ts then tokens = tokens + (now - ts) * rate / 1000; ts = now end\n"
    "    if tokens > burst then tokens = burst end\n"
    "  end\n"
    "end\n"
    "local used, ws, we = 0, 0, 0\n"
    "if limit > 0 then\n"
    "  ws, we = window()\n"
    "  local q = redis.call('HMGET', KEYS[2], 'w', 'n')\n"
    "  if q[1] and tonumber(q[1]) == ws then used = tonumber(q[2]) end\n"
    "end\n"
    "local outcome, retry = 0, 0\n"
    "if limit > 0 and used >= limit then\n"
    "  outcome = 2\n"
    "elseif rate > 0 and tokens < 1 then\n"
    "  outcome = 1; retry = math.ceil((1 - tokens) * 1000 / rate)\n"
    "else\n"
    "  if rate > 0 then\n"
    "    tokens = tokens - 1\n"
    "    redis.call('HSET', KEYS[1], 't', tokens, 'ts', ts)\n"
    "    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)\n"
    "  end\n"
    "  if limit > 0 then\n"
    "    used = used + 1\n"
    "    redis.call('HSET', KEYS[2], 'w', ws, 'n', used)\n"
    "    redis.call('PEXPIRE', KEYS[2], we - now + 60000)\n"
    "  end\n"
    "end\n"
    "local left, full = 0, 0\n"
    "if rate > 0 then\n"
    "  left = math.floor(tokens); full = math.ceil((burst - tokens) * 1000 / rate)\n"
    "end\n"
    "local qleft, reset = 0, 0\n"
    "if limit > 0 then qleft = limit - used; reset = we - now end\n"
    "return {outcome, left, retry, qleft, reset, full}\n";

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

#define REQ_ARGC       10
#define KEY_PREFIX     "sluice:usage:{"
#define REQ_KEY_MAX    (sizeof(KEY_PREFIX) + GW_USAGE_KEY_ID_MAX + sizeof("}:bucket"))
#define FREE_LIST_KEEP 1024

/*
 * One check sent to Redis. Owned by the in-flight list from the send until hiredis runs its
 * reply callback, which it does exactly once (with a reply, or NULL when the connection goes
 * away). `cb` is cleared once the caller has had its answer (a timeout or close can answer
 * first), so the later hiredis callback only recycles the request.
 */
struct req {
    struct req *next;
    struct redis_backend *r;
    gw_usage_cb cb;
    void *opaque;
    uint64_t sent_ns;
    int retried; /* NOSCRIPT already answered with EVAL */
    /* What the in-memory store needs to decide the check if Redis cannot. */
    struct sl_plan plan;
    int64_t now_ms;
    size_t key_len;
    char key_id[GW_USAGE_KEY_ID_MAX];
    const char *argv[REQ_ARGC];
    size_t argvlen[REQ_ARGC];
    char bucket_key[REQ_KEY_MAX];
    char quota_key[REQ_KEY_MAX];
    char now[24], rate[32], burst[16], limit[24], period[4];
};

/*
 * The Redis backend. Owned by struct gw_usage. It keeps at most one connection; checks are sent
 * only while it is UP (connected, authenticated, script loaded); otherwise the in-memory store
 * (`fallback`) decides at once.
 * Replies on one connection come in send order, so the in-flight list is a FIFO whose head is
 * the oldest call: when the head outlives timeout_ms, the connection is treated as hung, every
 * call on it is failed, and it is dropped and reconnected with backoff.
 */
struct redis_backend {
    struct gw_usage_backend base; /* first: the ops below receive it */
    uv_loop_t *loop;
    const struct gw_usage__metrics *m;
    struct gw_usage_backend *fallback; /* the in-memory store; borrowed */
    bool fail_open;
    bool server_time;
    uint32_t timeout_ms, connect_timeout_ms, reconnect_min_ms, reconnect_max_ms, max_in_flight;
    char *host, *user, *password; /* owned */
    int port, db;

    redisAsyncContext *ac; /* NULL when DOWN */
    enum conn_state state;
    char sha[41];
    uint32_t backoff_ms;
    int quiet; /* failures since the last success are logged at debug level after the first */
    uv_timer_t conn_timer; /* CONNECTING: connect timeout; DOWN: reconnect backoff */
    uv_timer_t call_timer; /* UP: the head-of-line call timeout */
    struct req *head, *tail;
    uint32_t in_flight;
    struct req *free_list;
    uint32_t nfree;

    int closing;
    int handles_open;
    void (*done)(void *arg);
    void *done_arg;
};

/* ---- URL ---- */

/* Copies [p, p+n) percent-decoded (passwords may contain '@', ':' or '/'). */
static char *dup_decoded(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    int len = sl_url_decode(p, n, s, n, 0);
    if (len < 0) { /* not a valid escape: take the text as written */
        memcpy(s, p, n);
        len = (int)n;
    }
    s[len] = '\0';
    return s;
}

static int parse_uint(const char *p, size_t n, long max, int *out) {
    if (n == 0 || n > 9)
        return SL_ERR_CONFIG;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return SL_ERR_CONFIG;
        v = v * 10 + (p[i] - '0');
    }
    if (v > max)
        return SL_ERR_CONFIG;
    *out = (int)v;
    return 0;
}

/* redis://[[user]:password@]host[:port][/db], host may be [IPv6]. */
static int parse_url(struct redis_backend *r, const char *url) {
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return SL_ERR_CONFIG;
    const char *s = url + sizeof(scheme) - 1;
    const char *at = strrchr(s, '@');
    const char *hp = s;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon) {
            if (colon > s && !(r->user = dup_decoded(s, (size_t)(colon - s))))
                return -ENOMEM;
            if (!(r->password = dup_decoded(colon + 1, (size_t)(at - colon - 1))))
                return -ENOMEM;
        }
        hp = at + 1;
    }
    const char *slash = strchr(hp, '/');
    const char *hend = slash ? slash : hp + strlen(hp);
    r->db = 0;
    if (slash && slash[1] && parse_uint(slash + 1, strlen(slash + 1), 1 << 20, &r->db) != 0)
        return SL_ERR_CONFIG;
    const char *host = hp, *host_end, *port = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(hend - hp));
        if (!rb)
            return SL_ERR_CONFIG;
        host = hp + 1;
        host_end = rb;
        if (rb + 1 < hend) {
            if (rb[1] != ':')
                return SL_ERR_CONFIG;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', (size_t)(hend - hp));
        host_end = colon ? colon : hend;
        if (colon)
            port = colon + 1;
    }
    if (host_end == host)
        return SL_ERR_CONFIG;
    r->port = 6379;
    if (port && (parse_uint(port, (size_t)(hend - port), 65535, &r->port) != 0 || r->port == 0))
        return SL_ERR_CONFIG;
    if (!(r->host = dup_decoded(host, (size_t)(host_end - host))))
        return -ENOMEM;
    return 0;
}

/* ---- hiredis on libuv ---- */

/*
 * Our binding of hiredis' event hooks (redisAsyncContext.ev) to a uv_poll_t. We do not use the
 * adapters/libuv.h that hiredis 0.14.1 ships because it ignores poll errors: libuv reports
 * EPOLLERR as a negative status with no events, that adapter returns, and a refused connect or
 * a reset connection goes unnoticed until some timeout. Here an error status hands hiredis the
 * events it waits for, so its own read or write finds the error at once (hiredis 1.x behaves
 * the same way). Owned by the context: freed in the uv_close callback hiredis' cleanup starts.
 */
struct uv_glue {
    redisAsyncContext *ac; /* NULL once hiredis has let go of it */
    uv_poll_t poll;
    int events;
};

static void glue_poll_cb(uv_poll_t *h, int status, int events) {
    struct uv_glue *g = h->data;
    int ev = status < 0 ? g->events : events;
    if (g->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(g->ac);
    if (g->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(g->ac);
}

static void glue_update(struct uv_glue *g) {
    if (g->events)
        uv_poll_start(&g->poll, g->events, glue_poll_cb);
    else
        uv_poll_stop(&g->poll);
}

static void glue_add_read(void *arg) {
    struct uv_glue *g = arg;
    g->events |= UV_READABLE;
    glue_update(g);
}

static void glue_del_read(void *arg) {
    struct uv_glue *g = arg;
    g->events &= ~UV_READABLE;
    glue_update(g);
}

static void glue_add_write(void *arg) {
    struct uv_glue *g = arg;
    g->events |= UV_WRITABLE;
    glue_update(g);
}

static void glue_del_write(void *arg) {
    struct uv_glue *g = arg;
    g->events &= ~UV_WRITABLE;
    glue_update(g);
}

static void glue_closed(uv_handle_t *h) {
    free(h->data);
}

static void glue_cleanup(void *arg) {
    struct uv_glue *g = arg;
    g->ac = NULL;
    uv_close((uv_handle_t *)&g->poll, glue_closed);
}

static int glue_attach(redisAsyncContext *ac, uv_loop_t *loop) {
    struct uv_glue *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int rc = uv_poll_init(loop, &g->poll, ac->c.fd);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->ac = ac;
    g->poll.data = g;
    ac->ev.data = g;
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    return 0;
}

/* ---- connection ---- */

static void r_connect(struct redis_backend *r);

/* While Redis stays down, one warning is enough; the retries after it log at debug level. */
static enum sl_log_level down_level(struct redis_backend *r) {
    return r->quiet++ ? SL_LOG_DEBUG : SL_LOG_WARN;
}
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/*
 * Redis cannot decide this check: the in-memory store does, so limits hold per replica while
 * Redis is unavailable or slow, and the fallback is counted. Only while closing is the check
 * answered as a backend error instead (the store may already be gone).
 */
static void fall_back(struct redis_backend *r, enum gw_usage_fallback why, const char *key_id,
                      size_t key_len, const struct sl_plan *plan, int64_t now_ms, gw_usage_cb cb,
                      void *opaque) {
    if (r->closing) {
        gw_usage__deliver_error(r->m, r->fail_open, SL_ERR_CLOSED, false, cb, opaque);
        return;
    }
    if (r->m->fallback[why])
        sl_counter_inc(r->m->fallback[why]);
    if (r->fallback->ops->check(r->fallback, key_id, key_len, plan, now_ms, cb, opaque) < 0)
        gw_usage__deliver_error(r->m, r->fail_open, -EINVAL, true, cb, opaque);
}

static void fall_back_req(struct redis_backend *r, enum gw_usage_fallback why, struct req *q,
                          gw_usage_cb cb, void *opaque) {
    fall_back(r, why, q->key_id, q->key_len, &q->plan, q->now_ms, cb, opaque);
}

static void on_reconnect_timer(uv_timer_t *t) {
    r_connect(t->data);
}

/* DOWN: try again after the backoff, which doubles up to the maximum. */
static void schedule_reconnect(struct redis_backend *r) {
    r->state = CONN_DOWN;
    if (r->closing)
        return;
    uv_timer_start(&r->conn_timer, on_reconnect_timer, r->backoff_ms, 0);
    r->backoff_ms =
        r->backoff_ms >= r->reconnect_max_ms / 2 ? r->reconnect_max_ms : r->backoff_ms * 2;
}

/*
 * Answers every in-flight call that has not been answered yet: from the in-memory store, or
 * with SL_ERR_CLOSED while closing.
 */
static void fail_in_flight(struct redis_backend *r, enum gw_usage_fallback why) {
    for (struct req *q = r->head; q; q = q->next) {
        gw_usage_cb cb = q->cb;
        if (!cb)
            continue;
        q->cb = NULL;
        fall_back_req(r, why, q, cb, q->opaque);
    }
}

/*
 * Drops the connection: marks it DOWN first (so callbacks that re-enter gw_usage_check fail
 * fast instead of using it), answers what is in flight, then frees the context; hiredis runs
 * the remaining reply callbacks with NULL, which recycle the requests.
 */
static void r_drop(struct redis_backend *r, enum gw_usage_fallback why) {
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = CONN_DOWN;
    uv_timer_stop(&r->call_timer);
    uv_timer_stop(&r->conn_timer);
    fail_in_flight(r, why);
    if (ac)
        redisAsyncFree(ac);
    schedule_reconnect(r);
}

static void on_connect_timeout(uv_timer_t *t) {
    struct redis_backend *r = t->data;
    sl_log(down_level(r), NULL, "usage plans: Redis %s:%d did not connect within %u ms", r->host,
           r->port, r->connect_timeout_ms);
    r_drop(r, GW_USAGE_FB_REDIS_DOWN);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    struct redis_backend *r = ac->data;
    if (ac != r->ac || status == REDIS_OK)
        return; /* connected: UP once the handshake's last reply (SCRIPT LOAD) is in */
    sl_log(down_level(r), NULL, "usage plans: cannot connect to Redis %s:%d: %s", r->host, r->port,
           ac->errstr);
    /* hiredis frees the context after this returns. */
    r->ac = NULL;
    uv_timer_stop(&r->conn_timer);
    schedule_reconnect(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    struct redis_backend *r = ac->data;
    (void)status;
    if (ac != r->ac)
        return; /* we dropped it ourselves */
    SL_WARN("usage plans: lost Redis %s:%d: %s", r->host, r->port, ac->err ? ac->errstr : "closed");
    r->ac = NULL;
    uv_timer_stop(&r->call_timer);
    schedule_reconnect(r);
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata) {
    struct redis_backend *r = ac->data;
    redisReply *rep = reply;
    if (ac != r->ac || !rep)
        return;
    if (rep->type == REDIS_REPLY_ERROR) {
        SL_ERROR("usage plans: Redis %s:%d refused the %s: %s", r->host, r->port,
                 (const char *)privdata, rep->str);
        r_drop(r, GW_USAGE_FB_REDIS_DOWN);
        return;
    }
    if (strcmp(privdata, "SCRIPT LOAD") != 0)
        return;
    if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
        r_drop(r, GW_USAGE_FB_REDIS_DOWN);
        return;
    }
    memcpy(r->sha, rep->str, 40);
    r->sha[40] = '\0';
    uv_timer_stop(&r->conn_timer);
    r->state = CONN_UP;
    r->backoff_ms = r->reconnect_min_ms;
    r->quiet = 0;
    SL_INFO("usage plans: connected to Redis %s:%d", r->host, r->port);
}

/*
 * Connects and pipelines the handshake (AUTH, SELECT, SCRIPT LOAD) behind the connect, so the
 * connection is usable after one round trip; the script's SHA comes back from SCRIPT LOAD.
 */
static void r_connect(struct redis_backend *r) {
    if (r->closing)
        return;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac) {
        schedule_reconnect(r);
        return;
    }
    if (ac->err) {
        sl_log(down_level(r), NULL, "usage plans: cannot connect to Redis %s:%d: %s", r->host,
               r->port, ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (glue_attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = CONN_CONNECTING;
    int rc = REDIS_OK;
    if (r->password && r->user)
        rc |= redisAsyncCommand(ac, on_handshake, "AUTH", "AUTH %s %s", r->user, r->password);
    else if (r->password)
        rc |= redisAsyncCommand(ac, on_handshake, "AUTH", "AUTH %s", r->password);
    if (r->db)
        rc |= redisAsyncCommand(ac, on_handshake, "SELECT", "SELECT %d", r->db);
    rc |= redisAsyncCommand(ac, on_handshake, "SCRIPT LOAD", "SCRIPT LOAD %s", usage_script);
    if (rc != REDIS_OK) {
        r_drop(r, GW_USAGE_FB_REDIS_DOWN);
        return;
    }
    uv_timer_start(&r->conn_timer, on_connect_timeout, r->connect_timeout_ms, 0);
}

/* ---- calls ---- */

static void on_call_timer(uv_timer_t *t) {
    struct redis_backend *r = t->data;
    if (!r->head)
        return;
    uint64_t now = uv_hrtime();
    uint64_t deadline = r->head->sent_ns + (uint64_t)r->timeout_ms * 1000000u;
    if (now < deadline) {
        uv_timer_start(&r->call_timer, on_call_timer, (deadline - now + 999999) / 1000000, 0);
        return;
    }
    SL_WARN("usage plans: Redis %s:%d did not answer within %u ms; reconnecting", r->host, r->port,
            r->timeout_ms);
    r_drop(r, GW_USAGE_FB_TIMEOUT);
}

static void push_tail(struct redis_backend *r, struct req *q) {
    q->next = NULL;
    if (r->tail)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
    r->in_flight++;
    if (!uv_is_active((uv_handle_t *)&r->call_timer))
        uv_timer_start(&r->call_timer, on_call_timer, r->timeout_ms, 0);
}

static struct req *pop_head(struct redis_backend *r) {
    struct req *q = r->head;
    r->head = q->next;
    if (!r->head)
        r->tail = NULL;
    r->in_flight--;
    return q;
}

static void recycle(struct redis_backend *r, struct req *q) {
    if (r->nfree >= FREE_LIST_KEEP) {
        free(q);
        return;
    }
    q->next = r->free_list;
    r->free_list = q;
    r->nfree++;
}

static int send_req(struct redis_backend *r, struct req *q) {
    q->sent_ns = uv_hrtime();
    if (redisAsyncCommandArgv(r->ac, on_reply, q, REQ_ARGC, q->argv, q->argvlen) != REDIS_OK)
        return -ENOTCONN;
    push_tail(r, q);
    return 0;
}

static int reply_to_decision(const redisReply *rep, struct gw_usage_decision *d) {
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 6)
        return -EPROTO;
    long long v[6];
    for (size_t i = 0; i < 6; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER || rep->element[i]->integer < 0)
            return -EPROTO;
        v[i] = rep->element[i]->integer;
    }
    static const enum gw_usage_outcome outcomes[] = {GW_USAGE_ALLOWED, GW_USAGE_THROTTLED,
                                                     GW_USAGE_QUOTA_EXCEEDED};
    if (v[0] > 2)
        return -EPROTO;
    *d = (struct gw_usage_decision){
        .outcome = outcomes[v[0]],
        .tokens_remaining = v[1] > UINT32_MAX ? UINT32_MAX : (uint32_t)v[1],
        .tokens_full_s = gw_usage__ceil_s(v[5]),
        .quota_remaining = (uint64_t)v[3],
        .quota_reset_s = gw_usage__ceil_s(v[4]),
    };
    if (d->outcome == GW_USAGE_THROTTLED) {
        uint32_t s = gw_usage__ceil_s(v[2]);
        d->retry_after_s = s < 1 ? 1 : s;
    } else if (d->outcome == GW_USAGE_QUOTA_EXCEEDED) {
        d->retry_after_s = d->quota_reset_s;
    }
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    struct req *q = privdata;
    struct redis_backend *r = q->r;
    redisReply *rep = reply;
    SL_ASSERT(r->head == q);
    pop_head(r);
    gw_usage_cb cb = q->cb;
    if (!cb) {
        recycle(r, q);
        return;
    }
    if (!rep) {
        /* The connection went away under the call (on_disconnect follows). */
        q->cb = NULL;
        fall_back_req(r, GW_USAGE_FB_REDIS_DOWN, q, cb, q->opaque);
        recycle(r, q);
        return;
    }
    if (r->m->redis_seconds)
        sl_histogram_observe(r->m->redis_seconds, (double)(uv_hrtime() - q->sent_ns) / 1e9);
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && !q->retried &&
        ac == r->ac) {
        /* The script cache was flushed (SCRIPT FLUSH, failover): EVAL loads it again. */
        q->retried = 1;
        q->argv[0] = "EVAL";
        q->argvlen[0] = 4;
        q->argv[1] = usage_script;
        q->argvlen[1] = sizeof(usage_script) - 1;
        if (send_req(r, q) == 0)
            return;
    }
    struct gw_usage_decision d;
    int err = rep->type == REDIS_REPLY_ERROR ? -EPROTO : reply_to_decision(rep, &d);
    q->cb = NULL;
    void *opaque = q->opaque;
    if (err != 0) {
        SL_WARN("usage plans: unexpected Redis reply: %s",
                rep->type == REDIS_REPLY_ERROR ? rep->str : "(not the script's array)");
        fall_back_req(r, GW_USAGE_FB_REDIS_ERROR, q, cb, opaque);
        recycle(r, q);
        return;
    }
    recycle(r, q);
    gw_usage__deliver(r->m, cb, opaque, &d);
}

static int redis_check(struct gw_usage_backend *b, const char *key_id, size_t key_len,
                       const struct sl_plan *plan, int64_t now_ms, gw_usage_cb cb, void *opaque) {
    struct redis_backend *r = (struct redis_backend *)b;
    if (r->state != CONN_UP || r->in_flight >= r->max_in_flight) {
        fall_back(r, r->state != CONN_UP ? GW_USAGE_FB_REDIS_DOWN : GW_USAGE_FB_IN_FLIGHT_CAP,
                  key_id, key_len, plan, now_ms, cb, opaque);
        return 0;
    }
    struct req *q = r->free_list;
    if (q) {
        r->free_list = q->next;
        r->nfree--;
    } else if (!(q = malloc(sizeof(*q)))) {
        fall_back(r, GW_USAGE_FB_REDIS_ERROR, key_id, key_len, plan, now_ms, cb, opaque);
        return 0;
    }
    q->r = r;
    q->cb = cb;
    q->opaque = opaque;
    q->retried = 0;
    q->plan = *plan;
    q->now_ms = now_ms;
    q->key_len = key_len;
    memcpy(q->key_id, key_id, key_len);
    int n[7];
    n[0] = snprintf(q->bucket_key, sizeof(q->bucket_key), KEY_PREFIX "%.*s}:bucket", (int)key_len,
                    key_id);
    n[1] = snprintf(q->quota_key, sizeof(q->quota_key), KEY_PREFIX "%.*s}:quota", (int)key_len,
                    key_id);
    n[2] = r->server_time ? 0 : snprintf(q->now, sizeof(q->now), "%lld", (long long)now_ms);
    if (r->server_time)
        q->now[0] = '\0';
    n[3] = snprintf(q->rate, sizeof(q->rate), "%.17g", plan->rate);
    n[4] = snprintf(q->burst, sizeof(q->burst), "%u", plan->burst < 1 ? 1u : plan->burst);
    n[5] = snprintf(q->limit, sizeof(q->limit), "%llu", (unsigned long long)plan->quota_limit);
    n[6] = snprintf(q->period, sizeof(q->period), "%d", (int)plan->quota_period);
    const char *args[REQ_ARGC] = {"EVALSHA", r->sha,  "2",      q->bucket_key, q->quota_key,
                                  q->now,    q->rate, q->burst, q->limit,      q->period};
    size_t lens[REQ_ARGC] = {7,
                             40,
                             1,
                             (size_t)n[0],
                             (size_t)n[1],
                             (size_t)n[2],
                             (size_t)n[3],
                             (size_t)n[4],
                             (size_t)n[5],
                             (size_t)n[6]};
    memcpy(q->argv, args, sizeof(args));
    memcpy(q->argvlen, lens, sizeof(lens));
    if (send_req(r, q) != 0) {
        recycle(r, q);
        fall_back(r, GW_USAGE_FB_REDIS_DOWN, key_id, key_len, plan, now_ms, cb, opaque);
    }
    return 0;
}

static int redis_ready(const struct gw_usage_backend *b) {
    return ((const struct redis_backend *)b)->state == CONN_UP;
}

/* ---- lifecycle ---- */

static void free_redis(struct redis_backend *r) {
    while (r->free_list) {
        struct req *q = r->free_list;
        r->free_list = q->next;
        free(q);
    }
    free(r->host);
    free(r->user);
    free(r->password);
    free(r);
}

static void redis_close(struct gw_usage_backend *b, void (*done)(void *arg), void *arg);

static const struct gw_usage_backend_ops redis_ops = {
    .check = redis_check,
    .ready = redis_ready,
    .close = redis_close,
};

int gw_usage_redis_new(uv_loop_t *loop, const struct gw_usage_opts *opts,
                       const struct gw_usage__metrics *m, struct gw_usage_backend *fallback,
                       struct gw_usage_backend **out) {
    struct redis_backend *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = parse_url(r, opts->redis_url);
    if (rc != 0) {
        SL_ERROR("usage plans: SLUICE_REDIS_URL is not redis://[[user]:password@]host[:port][/db]");
        free_redis(r);
        return rc;
    }
    r->base.ops = &redis_ops;
    r->loop = loop;
    r->m = m;
    r->fallback = fallback;
    r->fail_open = opts->fail_open;
    r->server_time = opts->redis_server_time;
    r->timeout_ms = opts->timeout_ms;
    r->connect_timeout_ms = opts->connect_timeout_ms;
    r->reconnect_min_ms = opts->reconnect_min_ms;
    r->reconnect_max_ms = opts->reconnect_max_ms;
    r->max_in_flight = opts->max_in_flight;
    r->backoff_ms = opts->reconnect_min_ms;
    uv_timer_init(loop, &r->conn_timer);
    uv_timer_init(loop, &r->call_timer);
    r->conn_timer.data = r;
    r->call_timer.data = r;
    r->handles_open = 2;
    if (!opts->no_connect)
        r_connect(r);
    *out = &r->base;
    return 0;
}

static void on_timer_closed(uv_handle_t *h) {
    struct redis_backend *r = h->data;
    if (--r->handles_open > 0)
        return;
    /* Every hiredis callback has run by now: the context was freed before the timers closed. */
    SL_ASSERT(r->head == NULL);
    if (r->done)
        r->done(r->done_arg);
    free_redis(r);
}

static void redis_close(struct gw_usage_backend *b, void (*done)(void *arg), void *arg) {
    struct redis_backend *r = (struct redis_backend *)b;
    r->closing = 1;
    r->done = done;
    r->done_arg = arg;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = CONN_DOWN;
    fail_in_flight(r, GW_USAGE_FB_REDIS_DOWN); /* closing: answered with SL_ERR_CLOSED */
    if (ac)
        redisAsyncFree(ac);
    uv_close((uv_handle_t *)&r->conn_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->call_timer, on_timer_closed);
}
