/* Replies back to the waiting HTTP request: the in-flight table, deadlines, the replies consumer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_internal.h"
#include "sluice/error.h"
#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/time.h"

/* FNV-1a: request ids are random UUIDs, so a simple hash spreads them well. */
static size_t hash_id(const char *id, size_t len) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)id[i];
        h *= 1099511628211u;
    }
    return (size_t)h;
}

int gw_inflight_init(struct gw_inflight *t, size_t max) {
    size_t n = 16;
    while (n < max * 2)
        n *= 2;
    t->buckets = calloc(n, sizeof *t->buckets);
    if (!t->buckets)
        return -ENOMEM;
    t->mask = n - 1;
    t->count = 0;
    t->max = max;
    return 0;
}

void gw_inflight_free(struct gw_inflight *t) {
    free(t->buckets);
    t->buckets = NULL;
}

int gw_inflight_add(struct gw_inflight *t, struct gw_req *r) {
    if (t->count >= t->max)
        return SL_ERR_TOO_LARGE;
    size_t b = hash_id(r->id, strlen(r->id)) & t->mask;
    r->next = t->buckets[b];
    t->buckets[b] = r;
    t->count++;
    return 0;
}

struct gw_req *gw_inflight_find(struct gw_inflight *t, const char *id, size_t len) {
    for (struct gw_req *r = t->buckets[hash_id(id, len) & t->mask]; r; r = r->next)
        if (strlen(r->id) == len && !memcmp(r->id, id, len))
            return r;
    return NULL;
}

void gw_inflight_remove(struct gw_inflight *t, struct gw_req *r) {
    struct gw_req **pp = &t->buckets[hash_id(r->id, strlen(r->id)) & t->mask];
    for (; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            r->next = NULL;
            t->count--;
            return;
        }
}

static void on_deadline(uv_timer_t *t) {
    struct gw_req *r = t->data;
    sl_counter_inc(r->g->m.timeouts);
    gw_respond_error(r, GW_ERR_TIMEOUT, NULL, 0);
}

int gw_await_reply(struct gw_req *r) {
    struct gw_gateway *g = r->g;
    int64_t left = r->deadline_ms - sl_time_now_ms();
    if (gw_inflight_add(&g->inflight, r) < 0)
        return SL_ERR_TOO_LARGE;
    uv_timer_init(g->loop, &r->timer);
    r->timer.data = r;
    r->timer_open = true;
    r->refs++; /* released in the timer's close callback */
    uv_timer_start(&r->timer, on_deadline, left > 0 ? (uint64_t)left : 0, 0);
    r->state = GW_REQ_AWAIT;
    sl_gauge_add(g->m.in_flight, 1);
    return 0;
}

static void on_timer_closed(uv_handle_t *h) {
    gw_req_unref(h->data);
}

void gw_await_end(struct gw_req *r) {
    gw_inflight_remove(&r->g->inflight, r);
    sl_gauge_add(r->g->m.in_flight, -1);
    if (r->timer_open) {
        r->timer_open = false;
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
    }
}

void gw_replies_on_message(const struct sl_kafka_message *msg, void *opaque) {
    struct gw_gateway *g = opaque;
    /* The key is the request id; the sluice-id header says the same without decoding. */
    const void *id = msg->key;
    size_t idlen = msg->keylen;
    const void *hv;
    size_t hlen;
    if (sl_kafka_message_header(msg, "sluice-id", &hv, &hlen) == 0 && hv) {
        id = hv;
        idlen = hlen;
    }
    struct gw_req *r = id ? gw_inflight_find(&g->inflight, id, idlen) : NULL;
    if (!r) {
        sl_counter_inc(g->m.late_replies);
        return;
    }
    struct sl_envelope_reply rep;
    struct sl_envelope_error err;
    int rc = sl_envelope_decode_reply(msg->value, msg->vlen, &g->reply_limits, &rep, &err);
    if (rc == 0 && (rep.id.len != idlen || memcmp(rep.id.p, id, idlen))) {
        sl_envelope_reply_free(&rep);
        snprintf(err.message, sizeof err.message, "reply id does not match its key");
        rc = SL_ERR_PARSE;
    }
    if (rc < 0) {
        struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
        sl_log(SL_LOG_WARN, &ctx, "invalid reply at %s[%d]@%lld: %s", msg->topic,
               (int)msg->partition, (long long)msg->offset, err.message);
        sl_counter_inc(g->m.invalid_replies);
        gw_respond_error(r, GW_ERR_BAD_GATEWAY, NULL, 0);
        return;
    }
    if (rep.has_error) {
        /* The worker gave up (crash, timeout, invalid handler output): the contract's 502. */
        struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
        sl_log(SL_LOG_INFO, &ctx, "handler failed: %.*s: %.*s", (int)rep.error_class.len,
               rep.error_class.p, (int)rep.error_message.len, rep.error_message.p);
        gw_respond_error(r, GW_ERR_BAD_GATEWAY, NULL, 0);
    } else {
        gw_respond_reply(r, &rep);
    }
    sl_envelope_reply_free(&rep);
}
