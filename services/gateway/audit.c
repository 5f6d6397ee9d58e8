/* Audit records (DESIGN.md §6): one JSON line per HTTP request to `audit`, never awaited. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gateway_internal.h"
#include "sluice/log.h"
#include "sluice/time.h"

/*
 * The record is built with plain appends and a small integer formatter: printf-style
 * formatting was a third of the cost of a record, and a record is written for every request.
 */
static void put_lit(struct sl_buf *b, const char *s) {
    sl_buf_append(b, s, strlen(s));
}

static void put_u64(struct sl_buf *b, uint64_t v) {
    char digits[SL_U64_DEC_MAX];
    sl_buf_append(b, digits, sl_u64_dec(digits, v));
}

/* A member's `,"key":` is one literal, its length known at compile time. */
#define KEY(k) ",\"" k "\":", sizeof(",\"" k "\":") - 1

static void put_uint(struct sl_buf *b, const char *key, size_t keylen, uint64_t v) {
    sl_buf_append(b, key, keylen);
    put_u64(b, v);
}

static void put_str(struct sl_buf *b, const char *key, size_t keylen, const char *s, size_t len) {
    sl_buf_append(b, key, keylen);
    if (!s) {
        sl_buf_append(b, "null", 4);
        return;
    }
    sl_buf_append(b, "\"", 1);
    sl_buf_append_json_escaped(b, s, len > 2048 ? 2048 : len); /* bounded: a path can be long */
    sl_buf_append(b, "\"", 1);
}

static void put_cstr(struct sl_buf *b, const char *key, size_t keylen, const char *s) {
    put_str(b, key, keylen, s, s ? strlen(s) : 0);
}

/* A string the gateway made itself, of bytes that need no escape (ids, hex, an address). */
static void put_plain(struct sl_buf *b, const char *key, size_t keylen, const char *s) {
    if (!s) {
        put_str(b, key, keylen, NULL, 0);
        return;
    }
    sl_buf_append(b, key, keylen);
    sl_buf_append(b, "\"", 1);
    sl_buf_append(b, s, strlen(s));
    sl_buf_append(b, "\"", 1);
}

int gw_audit_tail(struct gw_gateway *g) {
    struct sl_buf *b = &g->audit_tail;
    sl_buf_reset(b);
    put_cstr(b, KEY("stage"), g->s->stage);
    put_cstr(b, KEY("gateway"), g->replica);
    return sl_buf_append_str(b, "}");
}

void gw_audit_on_lost(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                      void *opaque) {
    (void)err;
    (void)partition;
    (void)offset;
    struct gw_gateway *g = opaque;
    sl_counter_inc(g->m.audit_errors);
    SL_ERROR("audit record lost: %s", rd_kafka_err2str(kerr));
}

static void produce(struct gw_gateway *g, const char *id, struct sl_buf *rec) {
    rd_kafka_resp_err_t kerr;
    if (!g->audit_producer)
        return;
    if (sl_kafka_produce(g->audit_producer, g->topic_audit, RD_KAFKA_PARTITION_UA, id, strlen(id),
                         rec->data, rec->len, NULL, 0, NULL, NULL, &kerr) < 0) {
        sl_counter_inc(g->m.audit_errors);
        SL_ERROR("audit record not queued: %s", rd_kafka_err2str(kerr));
    }
}

/* "YYYY-MM-DDTHH:MM:SS" is formatted once per second; the milliseconds are appended. */
static void put_head(struct gw_gateway *g, struct sl_buf *b, int64_t ts_ms, const char *id) {
    int64_t sec = ts_ms / 1000;
    if (sec != g->audit_ts_sec) {
        char ts[32];
        if (sl_time_format_iso8601(sec * 1000, ts, sizeof ts) == 24) {
            memcpy(g->audit_ts, ts, 19);
            g->audit_ts_sec = sec;
        }
    }
    int ms = (int)(ts_ms % 1000);
    char frac[6] = {
        '.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', '"'};
    put_lit(b, "{\"timestamp\":\"");
    sl_buf_append(b, g->audit_ts, 19);
    sl_buf_append(b, frac, sizeof frac);
    put_plain(b, KEY("request_id"), id);
}

void gw_audit_request(struct gw_gateway *g, const struct gw_req *r,
                      const struct sl_http_request *http, size_t bytes_in, uint64_t elapsed_ns) {
    struct sl_buf *b = &g->audit_buf; /* reused: the loop builds one record at a time */
    sl_buf_reset(b);
    put_head(g, b, r->received_ms, r->id);
    put_plain(b, KEY("trace_id"), r->trace_id[0] ? r->trace_id : NULL);
    put_str(b, KEY("method"), http->method.p, http->method.len);
    put_str(b, KEY("path"), http->path.p, http->path.len);
    put_cstr(b, KEY("route"), r->route ? r->route->path : NULL);
    put_uint(b, KEY("status"), (uint64_t)r->status);
    uint64_t us = elapsed_ns / 1000;
    put_uint(b, KEY("latency_ms"), us / 1000);
    char frac[4] = {'.', (char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10),
                    (char)('0' + us % 10)};
    sl_buf_append(b, frac, sizeof frac);
    put_plain(b, KEY("source_ip"), r->client_ip[0] ? r->client_ip : NULL);
    const struct sl_http_header *ua = sl_http_request_header(http, "user-agent");
    put_str(b, KEY("user_agent"), ua ? ua->value.p : NULL, ua ? ua->value.len : 0);
    put_cstr(b, KEY("api_key_id"), r->has_key ? r->key_id : NULL);
    put_cstr(b, KEY("plan"), r->has_key && r->plan.name[0] ? r->plan.name : NULL);
    put_lit(b, ",\"waf\":{\"action\":\"");
    put_lit(b, gw_waf_action_name(r->waf.action));
    sl_buf_append(b, "\"", 1);
    put_cstr(b, KEY("rule"), r->waf.rule);
    sl_buf_append_str(b, ",\"labels\":[");
    for (size_t i = 0; i < r->waf.nlabels; i++) {
        sl_buf_append_str(b, i ? ",\"" : "\"");
        sl_buf_append_json_escaped(b, r->waf.labels[i], strlen(r->waf.labels[i]));
        sl_buf_append_str(b, "\"");
    }
    sl_buf_append_str(b, "]}");
    put_uint(b, KEY("bytes_in"), bytes_in);
    put_uint(b, KEY("bytes_out"), r->bytes_out);
    put_cstr(b, KEY("error"), r->error_class);
    sl_buf_append(b, g->audit_tail.data, g->audit_tail.len);
    produce(g, r->id, b);
}

void gw_audit_server_error(struct gw_gateway *g, const struct sl_http_error_response *resp,
                           const char *request_id) {
    struct sl_buf *b = &g->audit_buf; /* reused: the loop builds one record at a time */
    sl_buf_reset(b);
    put_head(g, b, sl_time_now_ms(), request_id);
    sl_buf_append_str(b, ",\"trace_id\":null,\"method\":null,\"path\":null,\"route\":null");
    put_uint(b, KEY("status"), (uint64_t)resp->status);
    put_lit(b, ",\"latency_ms\":null");
    sl_buf_append_str(b, ",\"source_ip\":null,\"user_agent\":null,\"api_key_id\":null,"
                         "\"plan\":null,\"waf\":null,\"bytes_in\":null");
    put_uint(b, KEY("bytes_out"), resp->body.len);
    put_cstr(b, KEY("error"), resp->kind);
    sl_buf_append(b, g->audit_tail.data, g->audit_tail.len);
    produce(g, request_id, b);
}
