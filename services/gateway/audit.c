/* Audit records (docs/gateway.md, "Audit records"): one JSON line per HTTP request to `audit`,
 * never awaited. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

void gw_audit_on_lost(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                      void *opaque) {
    (void)err;
    (void)partition;
    (void)offset;
    struct gw_gateway *g = opaque;
    sl_counter_inc(g->m.audit_errors);
    uint64_t held;
    if (sl_log_every_take(&g->audit_lost_log, sl_time_mono_ns(), &held))
        SL_ERROR("audit record lost: %s (%" PRIu64 " more lost since the last such line, "
                 "logged at most every %d s)",
                 rd_kafka_err2str(kerr), held, GW_AUDIT_LOG_PERIOD_S);
}

/* ts_ms: the record's Kafka timestamp (its request's arrival; 0: now). */
static void produce(struct gw_gateway *g, const char *id, struct sl_buf *rec, int64_t ts_ms) {
    rd_kafka_resp_err_t kerr;
    if (!g->audit_producer)
        return;
    if (sl_kafka_produce_ts(g->audit_producer, g->topic_audit, RD_KAFKA_PARTITION_UA, id,
                            strlen(id), rec->data, rec->len, ts_ms, NULL, 0, NULL, NULL,
                            &kerr) < 0) {
        sl_counter_inc(g->m.audit_errors);
        uint64_t held;
        if (sl_log_every_take(&g->audit_queue_log, sl_time_mono_ns(), &held))
            SL_ERROR("audit record not queued: %s (%" PRIu64 " more dropped since the last "
                     "such line, logged at most every %d s)",
                     rd_kafka_err2str(kerr), held, GW_AUDIT_LOG_PERIOD_S);
    }
}

/*
 * The request's record is written straight into memory reserved once: every part's size is
 * bounded (a string escapes to at most 6 bytes a byte, and is cut at AUDIT_STR_CAP), so one
 * reservation replaces the capacity check and terminator of some fifty appends.
 */
#define AUDIT_STR_CAP 2048 /* bytes of a request's string kept: a path can be long */

static size_t str_cap(size_t n) {
    return n > AUDIT_STR_CAP ? AUDIT_STR_CAP : n;
}

/* The most a string member's value can take: quoted and escaped, or null. */
static size_t str_room(const char *s, size_t n) {
    return s ? 6 * str_cap(n) + 2 : 4;
}

static char *w_mem(char *w, const void *p, size_t n) {
    memcpy(w, p, n);
    return w + n;
}

#define W_LIT(w, lit) w_mem((w), (lit), sizeof(lit) - 1)

static char *w_str(char *w, const char *s, size_t n) {
    if (!s)
        return W_LIT(w, "null");
    *w++ = '"';
    w += sl_json_escape_into(w, s, str_cap(n));
    *w++ = '"';
    return w;
}

/* A string the gateway made itself, of bytes that need no escape (ids, hex, an address). */
static char *w_plain(char *w, const char *s, size_t n) {
    if (!s)
        return W_LIT(w, "null");
    *w++ = '"';
    w = w_mem(w, s, n);
    *w++ = '"';
    return w;
}

static char *w_u64(char *w, uint64_t v) {
    return w + sl_u64_dec(w, v);
}

/* Empties the record buffer and reserves `need` bytes in it; NULL (counted, logged) if it cannot.
 */
static char *record_start(struct gw_gateway *g, size_t need) {
    struct sl_buf *b = &g->audit_buf; /* reused: the loop builds one record at a time */
    sl_buf_reset(b);
    int rc = sl_buf_reserve(b, need);
    if (rc < 0) {
        sl_counter_inc(g->m.audit_errors);
        SL_ERROR("audit record not built: %s", sl_strerror(rc));
        return NULL;
    }
    return b->data;
}

/* `{"timestamp":"…","request_id":"…"`: the date and time formatted once per second. */
static char *w_head(struct gw_gateway *g, char *w, int64_t ts_ms, const char *id, size_t id_n) {
    int64_t sec = ts_ms / 1000;
    if (sec != g->audit_ts_sec) {
        char ts[32];
        if (sl_time_format_iso8601(sec * 1000, ts, sizeof ts) == 24) {
            memcpy(g->audit_ts, ts, 19);
            g->audit_ts_sec = sec;
        }
    }
    int ms = (int)(ts_ms % 1000);
    w = W_LIT(w, "{\"timestamp\":\"");
    w = w_mem(w, g->audit_ts, 19);
    *w++ = '.';
    *w++ = (char)('0' + ms / 100);
    *w++ = (char)('0' + ms / 10 % 10);
    *w++ = (char)('0' + ms % 10);
    w = W_LIT(w, "Z\",\"request_id\":");
    return w_plain(w, id, id_n);
}

/* Appends the constant tail, ends the buffer at w and produces the record, stamped ts_ms. */
static void record_finish(struct gw_gateway *g, char *w, const char *id, int64_t ts_ms) {
    struct sl_buf *b = &g->audit_buf;
    w = w_mem(w, g->audit_tail.data, g->audit_tail.len);
    b->len = (size_t)(w - b->data);
    b->data[b->len] = '\0';
    produce(g, id, b, ts_ms);
}

int gw_audit_tail(struct gw_gateway *g) {
    struct sl_buf *b = &g->audit_tail;
    const char *stage = g->s->stage, *replica = g->replica;
    size_t stage_n = stage ? strlen(stage) : 0, replica_n = strlen(replica);
    sl_buf_reset(b);
    int rc = sl_buf_reserve(b, 32 + str_room(stage, stage_n) + str_room(replica, replica_n));
    if (rc < 0)
        return rc;
    char *w = W_LIT(b->data, ",\"stage\":");
    w = w_str(w, stage, stage_n);
    w = W_LIT(w, ",\"gateway\":");
    w = w_str(w, replica, replica_n);
    *w++ = '}';
    b->len = (size_t)(w - b->data);
    b->data[b->len] = '\0';
    return 0;
}

void gw_audit_request(struct gw_gateway *g, const struct gw_req *r,
                      const struct sl_http_request *http, size_t bytes_in, uint64_t elapsed_ns) {
    struct sl_str uav = r->has_user_agent ? r->user_agent : (struct sl_str){NULL, 0};
    const char *route = r->route ? r->route->path : NULL;
    const char *key_id = r->has_key ? r->key_id : NULL;
    const char *plan = r->has_key && r->plan.name[0] ? r->plan.name : NULL;
    const char *trace = r->trace_id[0] ? r->trace_id : NULL;
    const char *ip = r->client_ip[0] ? r->client_ip : NULL;
    size_t id_n = strlen(r->id), trace_n = trace ? strlen(trace) : 0, ip_n = ip ? strlen(ip) : 0;
    size_t route_n = route ? strlen(route) : 0, key_n = key_id ? strlen(key_id) : 0;
    size_t plan_n = plan ? strlen(plan) : 0, rule_n = r->waf.rule ? strlen(r->waf.rule) : 0;
    size_t err_n = r->error_class ? strlen(r->error_class) : 0;

    /* Member names, punctuation, the timestamp and numbers: under 512 bytes. */
    size_t need = 512 + id_n + trace_n + ip_n + g->audit_tail.len;
    need += str_room(http->method.p, http->method.len) + str_room(http->path.p, http->path.len);
    need += str_room(route, route_n) + str_room(uav.p, uav.len) + str_room(key_id, key_n);
    need += str_room(plan, plan_n) + str_room(r->waf.rule, rule_n);
    need += str_room(r->error_class, err_n);
    for (size_t i = 0; i < r->waf.nlabels; i++)
        need += str_room(r->waf.labels[i], strlen(r->waf.labels[i])) + 1;
    char *w = record_start(g, need);
    if (!w)
        return;
    uint64_t us = elapsed_ns / 1000;
    w = w_head(g, w, r->received_ms, r->id, id_n);
    w = W_LIT(w, ",\"trace_id\":");
    w = w_plain(w, trace, trace_n);
    w = W_LIT(w, ",\"method\":");
    w = w_str(w, http->method.p, http->method.len);
    w = W_LIT(w, ",\"path\":");
    w = w_str(w, http->path.p, http->path.len);
    w = W_LIT(w, ",\"route\":");
    w = w_str(w, route, route_n);
    w = W_LIT(w, ",\"status\":");
    w = w_u64(w, (uint64_t)r->status);
    w = W_LIT(w, ",\"latency_ms\":");
    w = w_u64(w, us / 1000);
    *w++ = '.';
    *w++ = (char)('0' + us % 1000 / 100);
    *w++ = (char)('0' + us % 100 / 10);
    *w++ = (char)('0' + us % 10);
    w = W_LIT(w, ",\"source_ip\":");
    w = w_plain(w, ip, ip_n);
    w = W_LIT(w, ",\"user_agent\":");
    w = w_str(w, uav.p, uav.len);
    w = W_LIT(w, ",\"api_key_id\":");
    w = w_str(w, key_id, key_n);
    w = W_LIT(w, ",\"plan\":");
    w = w_str(w, plan, plan_n);
    w = W_LIT(w, ",\"waf\":{\"action\":\"");
    const char *action = sl_waf_action_name(r->waf.action);
    w = w_mem(w, action, strlen(action));
    w = W_LIT(w, "\",\"rule\":");
    w = w_str(w, r->waf.rule, rule_n);
    w = W_LIT(w, ",\"labels\":[");
    for (size_t i = 0; i < r->waf.nlabels; i++) {
        if (i)
            *w++ = ',';
        w = w_str(w, r->waf.labels[i], strlen(r->waf.labels[i]));
    }
    w = W_LIT(w, "]},\"bytes_in\":");
    w = w_u64(w, bytes_in);
    w = W_LIT(w, ",\"bytes_out\":");
    w = w_u64(w, r->bytes_out);
    w = W_LIT(w, ",\"error\":");
    w = w_str(w, r->error_class, err_n);
    record_finish(g, w, r->id, r->received_ms);
}

void gw_audit_server_error(struct gw_gateway *g, const struct sl_http_error_response *resp,
                           const char *request_id) {
    size_t id_n = strlen(request_id), kind_n = resp->kind ? strlen(resp->kind) : 0;
    /* The headers were not read, so X-Forwarded-For is unknown: the source is the peer. */
    char ip[SL_ADDR_TEXT_MAX];
    size_t ip_n = sl_addr_format(&resp->peer, ip);
    char *w = record_start(g, 512 + id_n + ip_n + str_room(resp->kind, kind_n) + g->audit_tail.len);
    if (!w)
        return;
    int64_t now_ms = sl_time_now_ms();
    w = w_head(g, w, now_ms, request_id, id_n);
    w = W_LIT(w, ",\"trace_id\":null,\"method\":null,\"path\":null,\"route\":null,\"status\":");
    w = w_u64(w, (uint64_t)resp->status);
    w = W_LIT(w, ",\"latency_ms\":null,\"source_ip\":");
    w = w_str(w, ip_n ? ip : NULL, ip_n);
    w = W_LIT(w, ",\"user_agent\":null,\"api_key_id\":null,"
                 "\"plan\":null,\"waf\":null,\"bytes_in\":null,\"bytes_out\":");
    w = w_u64(w, resp->body.len);
    w = W_LIT(w, ",\"error\":");
    w = w_str(w, resp->kind, kind_n);
    record_finish(g, w, request_id, now_ms);
}
