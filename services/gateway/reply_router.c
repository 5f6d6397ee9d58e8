/* Replies back to the waiting HTTP request: its deadline and the replies consumer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"
#include "reply_router.h"
#include "respond.h"
#include "sluice/error.h"
#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/time.h"

static void on_deadline(uv_timer_t *t) {
    struct gw_req *r = t->data;
    sl_counter_inc(r->g->m.timeouts);
    gw_respond_error(r, GW_ERR_TIMEOUT, NULL, 0);
}

static void on_publish_timeout(uv_timer_t *t) {
    struct gw_req *r = t->data;
    struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
    sl_log(SL_LOG_WARN, &ctx, "request not acknowledged by Kafka within %" PRId64 " ms",
           r->g->s->publish_timeout_ms);
    sl_counter_inc(r->g->m.publish_timeouts);
    sl_counter_inc(r->g->m.kafka_unavailable);
    static const struct sl_http_header retry = {SL_STR_INIT("Retry-After"), SL_STR_INIT("1")};
    gw_respond_error(r, GW_ERR_UNAVAILABLE, &retry, 1);
}

static uint64_t until_deadline(const struct gw_req *r) {
    int64_t left = r->deadline_ms - sl_time_now_ms();
    return left > 0 ? (uint64_t)left : 0;
}

int gw_await_reply(struct gw_req *r) {
    uint64_t left = until_deadline(r);
    uint64_t publish = (uint64_t)r->g->s->publish_timeout_ms;
    if (left <= publish)
        return gw_await_start(r, on_deadline, left);
    return gw_await_start(r, on_publish_timeout, publish);
}

void gw_await_published(struct gw_req *r) {
    if (r->state == GW_REQ_AWAIT && r->timer_open)
        uv_timer_start(&r->timer, on_deadline, until_deadline(r), 0);
}

void gw_replies_on_message(const struct sl_kafka_message *msg, void *opaque) {
    struct gw_gateway *g = opaque;
    double age = sl_kafka_message_age_s(msg);
    if (age >= 0)
        sl_histogram_observe(g->m.reply_age, age);
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
    int rc = sl_envelope_decode_reply(msg->value, msg->vlen, &g->limits, &rep, &err);
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
