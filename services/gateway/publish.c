/* The publish step: the request envelope (docs/internals/envelope.md) produced to `requests`, keyed
 * by id. */
#include <errno.h>
#include <inttypes.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inflight.h"
#include "publish.h"
#include "trace_spans.h"
#include "reply_router.h"
#include "respond.h"
#include "sluice/error.h"
#include "sluice/envelope.h"
#include "sluice/log.h"
#include "sluice/time.h"

/*
 * One allocation per published request holds every array and decoded string of its envelope;
 * it is sized from the request up front, so bump allocation never fails midway, and freed as
 * soon as the envelope is encoded (produce copies the bytes).
 */
struct arena {
    char *base;
    size_t used, cap;
};

static void *arena_alloc(struct arena *a, size_t n) {
    size_t at = (a->used + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (at > a->cap || n > a->cap - at)
        return NULL;
    a->used = at + n;
    return a->base + at;
}

/* The hash table group() uses for n pairs: a power of two at least twice n. */
static size_t group_slots(size_t n) {
    size_t cap = 2;
    while (cap < 2 * n)
        cap <<= 1;
    return cap;
}

/* Upper bound of what group() and its caller take from the arena for n pairs. */
static size_t list_bytes(size_t n) {
    return n * (3 * sizeof(struct sl_str) + sizeof(struct sl_envelope_field) + 2 * sizeof(size_t)) +
           group_slots(n) * sizeof(size_t) + 8 * alignof(max_align_t);
}

static bool same_name(struct sl_str a, struct sl_str b) {
    return a.len == b.len && !memcmp(a.p, b.p, a.len);
}

/*
 * Groups name/value pairs by exact name, keeping the order names first appear and the order of
 * values (the envelope's multi-value maps). `names`/`values` are parallel arrays of n items, n
 * at most the envelope's max_fields (the callers refuse more first). A hash table of field
 * numbers finds a name's field, so grouping is linear in n; names come from clients, and a set
 * made to collide costs at most n * n comparisons of that bounded n.
 */
static int group(struct arena *a, const struct sl_str *names, const struct sl_str *values, size_t n,
                 struct sl_envelope_multimap *out) {
    size_t cap = group_slots(n);
    struct sl_envelope_field *fields = arena_alloc(a, (n ? n : 1) * sizeof *fields);
    struct sl_str *vals = arena_alloc(a, (n ? n : 1) * sizeof *vals);
    size_t *slots = arena_alloc(a, cap * sizeof *slots); /* field number + 1; 0 = empty */
    size_t *field_of = arena_alloc(a, (n ? n : 1) * sizeof *field_of);
    size_t *next = arena_alloc(a, (n ? n : 1) * sizeof *next); /* per field: its next value */
    if (!fields || !vals || !slots || !field_of || !next)
        return -ENOMEM;
    memset(slots, 0, cap * sizeof *slots);
    size_t nf = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = (size_t)sl_fnv1a(names[i].p, names[i].len) & (cap - 1);
        while (slots[j] && !same_name(fields[slots[j] - 1].name, names[i]))
            j = (j + 1) & (cap - 1);
        if (!slots[j]) {
            fields[nf] = (struct sl_envelope_field){.name = names[i]};
            slots[j] = ++nf;
        }
        field_of[i] = slots[j] - 1;
        fields[field_of[i]].n_values++;
    }
    size_t at = 0;
    for (size_t f = 0; f < nf; f++) {
        fields[f].values = &vals[at];
        next[f] = at;
        at += fields[f].n_values;
    }
    for (size_t i = 0; i < n; i++)
        vals[next[field_of[i]]++] = values[i];
    out->fields = fields;
    out->n = nf;
    return 0;
}

/* Headers minus X-API-Key: the key value never leaves the gateway. More than the envelope's
 * max_fields: SL_ERR_TOO_LARGE before grouping. */
static int build_headers(struct arena *a, const struct sl_http_request *h, size_t max_fields,
                         struct sl_envelope_multimap *out) {
    struct sl_str *names = arena_alloc(a, (h->nheaders + 1) * sizeof *names);
    struct sl_str *values = arena_alloc(a, (h->nheaders + 1) * sizeof *values);
    if (!names || !values)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (sl_str_eq_nocase(h->headers[i].name, "x-api-key"))
            continue;
        names[n] = h->headers[i].name;
        values[n++] = h->headers[i].value;
    }
    if (n > max_fields)
        return SL_ERR_TOO_LARGE;
    return group(a, names, values, n, out);
}

/* Splits the query on '&' into decoded names and values ("a=1&a=2&b" -> a:[1,2], b:[""]).
 * More than max_fields parameters: SL_ERR_TOO_LARGE before grouping. */
static int build_query(struct arena *a, struct sl_str q, size_t max_fields,
                       struct sl_envelope_multimap *out) {
    size_t max = 1;
    for (size_t i = 0; i < q.len; i++)
        max += q.p[i] == '&';
    struct sl_str *names = arena_alloc(a, max * sizeof *names);
    struct sl_str *values = arena_alloc(a, max * sizeof *values);
    char *text = arena_alloc(a, q.len + 1);
    if (!names || !values || !text)
        return -ENOMEM;
    size_t n = 0, used = 0, pos = 0;
    while (pos < q.len) {
        const char *s = q.p + pos;
        const char *amp = memchr(s, '&', q.len - pos);
        size_t len = amp ? (size_t)(amp - s) : q.len - pos;
        pos += len + 1;
        if (len == 0)
            continue;
        const char *eq = memchr(s, '=', len);
        size_t nlen = eq ? (size_t)(eq - s) : len;
        int dn = sl_url_decode(s, nlen, text + used, q.len - used, 1);
        if (dn < 0)
            return dn;
        names[n] = (struct sl_str){.p = text + used, .len = (size_t)dn};
        used += (size_t)dn;
        int dv = eq ? sl_url_decode(eq + 1, len - nlen - 1, text + used, q.len - used, 1) : 0;
        if (dv < 0)
            return dv;
        values[n++] = (struct sl_str){.p = text + used, .len = (size_t)dv};
        used += (size_t)dv;
    }
    if (n > max_fields)
        return SL_ERR_TOO_LARGE;
    return group(a, names, values, n, out);
}

static int build_path_params(struct arena *a, const struct sl_route_match *m,
                             struct sl_envelope_map *out) {
    size_t total = 0;
    for (size_t i = 0; i < m->nparams; i++)
        total += m->params[i].value.len;
    struct sl_envelope_pair *pairs = arena_alloc(a, (m->nparams + 1) * sizeof *pairs);
    char *text = arena_alloc(a, total + 1);
    if (!pairs || !text)
        return -ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < m->nparams; i++) {
        const struct sl_route_param *p = &m->params[i];
        int d = sl_url_decode(p->value.p, p->value.len, text + used, total - used, 0);
        if (d < 0)
            return d;
        pairs[i] = (struct sl_envelope_pair){p->name, {.p = text + used, .len = (size_t)d}};
        used += (size_t)d;
    }
    out->pairs = pairs;
    out->n = m->nparams;
    return 0;
}

/* Kafka refused the record for its size (a topic whose max.message.bytes is below Sluice's
 * limit): asking again will not help, so the client hears 413, not 503. */
static bool too_large(rd_kafka_resp_err_t kerr) {
    return kerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           kerr == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

static void on_delivery(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                        void *opaque) {
    (void)partition;
    (void)offset;
    struct gw_req *r = opaque;
    if (r->tm.publish)
        r->tm.delivered = gw_trace_mark(r);
    if (err == 0) {
        sl_histogram_observe(r->g->m.publish_ack,
                             (double)(sl_time_mono_ns() - r->publish_ns) / 1e9);
        gw_await_published(r);
    }
    if (err < 0) {
        sl_counter_inc(r->g->m.delivery_errors);
        if (r->state == GW_REQ_AWAIT) {
            struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
            sl_log(SL_LOG_WARN, &ctx, "request not delivered to Kafka: %s", rd_kafka_err2str(kerr));
            if (too_large(kerr)) {
                gw_respond_error(r, GW_ERR_TOO_LARGE, NULL, 0);
            } else {
                sl_counter_inc(r->g->m.kafka_unavailable);
                static const struct sl_http_header retry = {SL_STR_INIT("Retry-After"),
                                                            SL_STR_INIT("1")};
                gw_respond_error(r, GW_ERR_UNAVAILABLE, &retry, 1);
            }
        }
    }
    gw_req_unref(r); /* the delivery report's reference */
}

static void unavailable(struct gw_req *r) {
    static const struct sl_http_header retry = {SL_STR_INIT("Retry-After"), SL_STR_INIT("1")};
    sl_counter_inc(r->g->m.kafka_unavailable);
    gw_respond_error(r, GW_ERR_UNAVAILABLE, &retry, 1);
}

void gw_publish(struct gw_req *r) {
    struct gw_gateway *g = r->g;
    const struct sl_http_request *h = r->http;

    /* Fail fast: while librdkafka reports every broker down, nothing would be delivered. */
    if (sl_kafka_producer_state(g->producer) == SL_KAFKA_DOWN ||
        g->inflight.count >= g->inflight.max) {
        unavailable(r);
        return;
    }
    int64_t timeout = r->route->timeout_ms ? r->route->timeout_ms : g->s->request_timeout_ms;
    r->deadline_ms = r->received_ms + timeout;
    struct sl_trace_ctx producer;
    gw_trace_publish_ctx(r, &producer);
    sl_trace_format(&producer, r->traceparent);

    size_t arena_size = list_bytes(h->nheaders + 1) + list_bytes(h->query.len + 1) + h->query.len +
                        1 + (SL_ROUTES_MAX_PARAMS + 1) * sizeof(struct sl_envelope_pair) +
                        h->path.len + 1 + 4 * alignof(max_align_t);
    struct arena a = {.base = malloc(arena_size), .cap = arena_size};
    if (!a.base) {
        unavailable(r);
        return;
    }
    struct sl_str ua = r->has_user_agent ? r->user_agent : (struct sl_str){0};
    struct sl_envelope_request env = {
        .id = {.p = r->id, .len = strlen(r->id)},
        .method = h->method,
        .path = h->path,
        .resource = {.p = r->route->path, .len = strlen(r->route->path)},
        .body = {.p = h->body, .len = h->body_len},
        .source_ip = {.p = r->client_ip, .len = strlen(r->client_ip)},
        .user_agent = ua,
        .api_key_id = {.p = r->key_id, .len = r->has_key ? strlen(r->key_id) : 0},
        .stage = {.p = g->s->stage, .len = strlen(g->s->stage)},
        .received_ms = r->received_ms,
        .deadline_ms = r->deadline_ms,
        .trace = {.p = r->traceparent, .len = strlen(r->traceparent)},
        .reply_partition = g->index,
        .attempt = 1,
        .replay_count = 0,
    };
    /* The worker decodes with the same limits: a request past them would never get a reply. */
    const struct sl_envelope_limits *lim = &g->limits;
    struct sl_envelope_error err = {.field = "envelope"};
    int rc = build_headers(&a, h, lim->max_fields, &env.headers);
    if (rc == 0)
        rc = build_query(&a, h->query, lim->max_fields, &env.query);
    if (rc == 0)
        rc = build_path_params(&a, &r->match, &env.path_params);
    if (rc == 0)
        rc = sl_envelope_request_fits(&env, lim, &err);
    if (rc == SL_ERR_PARSE || rc == SL_ERR_TOO_LARGE) {
        free(a.base);
        /* A bad percent escape, or more names, values or bytes than an envelope carries. */
        gw_respond_error(r, GW_ERR_BAD_REQUEST, NULL, 0);
        return;
    }
    sl_buf_reset(&g->encode_buf);
    if (rc == 0)
        rc = sl_envelope_encode_request(&env, &g->encode_buf);
    free(a.base);
    if (rc < 0) {
        SL_ERROR("envelope encoding failed: %s", sl_strerror(rc));
        gw_respond_error(r, GW_ERR_UNAVAILABLE, NULL, 0);
        return;
    }
    /* Kafka would refuse the record (and the DLQ could not hold it): too large, for good. */
    if (g->encode_buf.len > SL_KAFKA_MAX_ENVELOPE_BYTES) {
        gw_respond_error(r, GW_ERR_TOO_LARGE, NULL, 0);
        return;
    }

    char deadline[24], partition[16];
    snprintf(deadline, sizeof deadline, "%" PRId64, r->deadline_ms);
    snprintf(partition, sizeof partition, "%" PRId32, g->index);
    const struct sl_kafka_header kh[] = {
        {"sluice-id", r->id, strlen(r->id)},
        {"traceparent", r->traceparent, strlen(r->traceparent)},
        {"sluice-deadline-ms", deadline, strlen(deadline)},
        {"sluice-reply-partition", partition, strlen(partition)},
    };
    /* Wait for the reply before producing: a fast reply must find the request in the table. */
    if (gw_await_reply(r) < 0) {
        unavailable(r);
        return;
    }
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    r->refs++;
    r->tm.publish = gw_trace_mark(r);
    r->publish_ns = sl_time_mono_ns();
    rc = sl_kafka_produce(g->producer, g->topic_requests, RD_KAFKA_PARTITION_UA, r->id,
                          strlen(r->id), g->encode_buf.data, g->encode_buf.len, kh, 4, on_delivery,
                          r, &kerr);
    if (rc < 0) {
        r->refs--;
        sl_counter_inc(g->m.produce_errors);
        struct sl_log_ctx ctx = {.request_id = r->id, .trace_id = r->trace_id};
        sl_log(SL_LOG_WARN, &ctx, "produce to %s failed: %s", g->topic_requests,
               rd_kafka_err2str(kerr));
        if (too_large(kerr))
            gw_respond_error(r, GW_ERR_TOO_LARGE, NULL, 0);
        else
            unavailable(r);
    }
}
