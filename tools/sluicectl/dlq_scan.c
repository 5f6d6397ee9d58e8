/* Reading the dead-letter topic: record metadata from headers, filters, bounded scans. */
#include "dlq_scan.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/kafka.h"
#include "sluice/time.h"
#include "sluice/topics.h"

/* How long a scan waits for Kafka before it says it cannot reach it. */
#define DLQ_KAFKA_TIMEOUT_MS 10000

static const char *const reasons[] = {"crash",   "timeout",       "invalid_reply", "decode_error",
                                      "expired", "handler_error", "route_unknown"};

const void *dlq_header(const rd_kafka_message_t *m, const char *name, size_t *len) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (rd_kafka_header_get_last(h, name, &v, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return v;
}

static void header_text(const rd_kafka_message_t *m, const char *name, char *out, size_t len) {
    size_t n = 0;
    const char *v = dlq_header(m, name, &n);
    if (!v)
        n = 0;
    if (n >= len)
        n = len - 1;
    memcpy(out, v ? v : "", n);
    out[n] = '\0';
}

static int64_t header_be(const rd_kafka_message_t *m, const char *name, size_t width) {
    size_t n = 0;
    const unsigned char *v = dlq_header(m, name, &n);
    if (!v || n != width)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | v[i];
    return width == 4 ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
}

void dlq_record_parse(const rd_kafka_message_t *m, struct dlq_record *r) {
    memset(r, 0, sizeof *r);
    r->msg = m;
    r->partition = m->partition;
    r->offset = m->offset;
    r->ts_ms = rd_kafka_message_timestamp(m, NULL);
    header_text(m, "sluice-dlq-reason", r->reason, sizeof r->reason);
    header_text(m, "sluice-dlq-error", r->error, sizeof r->error);
    char num[24];
    header_text(m, "sluice-attempts", num, sizeof num);
    r->attempts = (uint32_t)strtoul(num, NULL, 10);
    header_text(m, "kafka_dlt-original-topic", r->orig_topic, sizeof r->orig_topic);
    r->orig_partition = (int32_t)header_be(m, "kafka_dlt-original-partition", 4);
    r->orig_offset = header_be(m, "kafka_dlt-original-offset", 8);
    r->orig_ts_ms = header_be(m, "kafka_dlt-original-timestamp", 8);
    struct sl_envelope_limits lim = sl_envelope_limits_default(64u << 20);
    lim.max_input = m->len + 1;
    struct sl_envelope_error err;
    if (m->payload && sl_envelope_decode_request(m->payload, m->len, &lim, &r->req, &err) == 0) {
        r->decoded = true;
    } else {
        snprintf(r->decode_error, sizeof r->decode_error, "%s: %s",
                 m->payload ? err.field : "envelope", m->payload ? err.message : "empty record");
    }
    /* The worker answers 502 when the request has a reply address, unless it expired (the
     * gateway then answered 504 at its deadline); a record that does not decode is answered
     * when the gateway's sluice-reply-partition header gives the address. */
    bool address = r->decoded ? r->req.reply_partition >= 0
                              : dlq_header(m, "sluice-reply-partition", &(size_t){0}) != NULL;
    if (address)
        r->status = strcmp(r->reason, "expired") ? 502 : 504;
}

void dlq_record_free(struct dlq_record *r) {
    if (r->decoded)
        sl_envelope_request_free(&r->req);
    r->decoded = false;
}

int dlq_filter_from_args(const struct ctl_args *a, const char *cmd, struct dlq_filter *f) {
    int64_t now = sl_time_now_ms();
    memset(f, 0, sizeof *f);
    f->since_ms = INT64_MIN;
    f->until_ms = INT64_MAX;
    f->status = -1;
    const char *v;
    if ((v = ctl_arg(a, "--since")) && ctl_parse_time(v, now, &f->since_ms) < 0)
        return ctl_usage_error("dlq", cmd,
                               "--since: '%s' is not a time (RFC 3339 UTC such as "
                               "2026-12-01T08:00:00Z, or -15m, -2h, -7d)",
                               v);
    if ((v = ctl_arg(a, "--until")) && ctl_parse_time(v, now, &f->until_ms) < 0)
        return ctl_usage_error("dlq", cmd,
                               "--until: '%s' is not a time (RFC 3339 UTC such as "
                               "2026-12-01T08:00:00Z, or -15m, -2h, -7d)",
                               v);
    f->nreasons = ctl_arg_list(a, "--reason", &f->reasons);
    for (size_t i = 0; i < f->nreasons; i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof reasons / sizeof reasons[0]; k++)
            known = known || !strcmp(f->reasons[i], reasons[k]);
        if (!known)
            return ctl_usage_error("dlq", cmd,
                                   "--reason: '%s' is not one of crash, timeout, invalid_reply, "
                                   "decode_error, expired, handler_error, route_unknown",
                                   f->reasons[i]);
    }
    f->route = ctl_arg(a, "--route");
    if ((v = ctl_arg(a, "--status"))) {
        char *end;
        errno = 0;
        long s = strtol(v, &end, 10);
        if (errno || *end || end == v || !(s == 0 || (s >= 100 && s <= 599)))
            return ctl_usage_error("dlq", cmd, "--status: '%s' is not 0 or an HTTP status", v);
        f->status = (int)s;
    }
    f->key_id = ctl_arg(a, "--key-id");
    return 0;
}

/* fnmatch needs NUL-terminated text; envelope strings are not. */
static bool glob_str(const char *glob, struct sl_str s) {
    char buf[2048];
    if (s.len >= sizeof buf)
        return false;
    memcpy(buf, s.p ? s.p : "", s.len);
    buf[s.len] = '\0';
    return fnmatch(glob, buf, 0) == 0;
}

bool dlq_filter_match(const struct dlq_filter *f, const struct dlq_record *r) {
    if (r->ts_ms < f->since_ms || r->ts_ms >= f->until_ms)
        return false;
    if (f->nreasons) {
        bool any = false;
        for (size_t i = 0; i < f->nreasons && !any; i++)
            any = !strcmp(f->reasons[i], r->reason);
        if (!any)
            return false;
    }
    if (f->status >= 0 && f->status != r->status)
        return false;
    if (f->route &&
        (!r->decoded || !(glob_str(f->route, r->req.resource) || glob_str(f->route, r->req.path))))
        return false;
    if (f->key_id && (!r->decoded || r->req.api_key_id.len != strlen(f->key_id) ||
                      memcmp(r->req.api_key_id.p, f->key_id, r->req.api_key_id.len)))
        return false;
    return true;
}

const char *dlq_bootstrap(const struct ctl_env *env) {
    for (size_t i = 0; env->kafka_props && env->kafka_props[i]; i += 2)
        if (!strcmp(env->kafka_props[i], "bootstrap.servers") && env->kafka_props[i + 1])
            return env->kafka_props[i + 1];
    return "(unset)";
}

int dlq_require_bootstrap(const struct ctl_env *env, const char *group, const char *cmd) {
    if (strcmp(dlq_bootstrap(env), "(unset)"))
        return 0;
    return ctl_op_error(group, cmd,
                        "SLUICE_KAFKA_BOOTSTRAP_SERVERS is not set: name the Kafka brokers, "
                        "e.g. SLUICE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092");
}

int dlq_topic_names(const struct ctl_env *env, char *dlq, char *requests, size_t len) {
    if (sl_topic_name(env->topic_prefix, SL_TOPIC_DLQ, dlq, len) < 0 ||
        sl_topic_name(env->topic_prefix, SL_TOPIC_REQUESTS, requests, len) < 0)
        return -ENAMETOOLONG;
    return 0;
}

static int kafka_error(const struct ctl_env *env, const char *cmd, const char *what,
                       rd_kafka_resp_err_t err) {
    return ctl_op_error("dlq", cmd, "%s: %s (Kafka at %s, SLUICE_KAFKA_BOOTSTRAP_SERVERS)", what,
                        rd_kafka_err2str(err), dlq_bootstrap(env));
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk, (void)level, (void)fac, (void)buf;
}

rd_kafka_conf_t *dlq_kafka_conf(const struct ctl_env *env, char *errstr, size_t len) {
    rd_kafka_conf_t *conf = sl_kafka_conf_new(env->kafka_props, errstr, len);
    /* librdkafka's own lines (a refused connection, retried) are noise for a person at a
     * terminal; the command says in one line what failed. */
    if (conf)
        rd_kafka_conf_set_log_cb(conf, quiet_log);
    return conf;
}

int dlq_scan_open(struct dlq_scan *s, const struct ctl_env *env, const char *cmd,
                  const char *group_id, int64_t since_ms) {
    memset(s, 0, sizeof *s);
    char requests[256];
    if (dlq_topic_names(env, s->topic, requests, sizeof s->topic) < 0)
        return ctl_op_error("dlq", cmd, "SLUICE_TOPIC_PREFIX is too long");
    if (dlq_require_bootstrap(env, "dlq", cmd))
        return CTL_EXIT_ERROR;
    char errstr[512];
    rd_kafka_conf_t *conf = dlq_kafka_conf(env, errstr, sizeof errstr);
    if (!conf)
        return ctl_op_error("dlq", cmd, "%s", errstr);
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"isolation.level", "read_committed"},
        {"fetch.wait.max.ms", "100"},
        {"log.connection.close", "false"},
        {"socket.connection.setup.timeout.ms", "10000"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], NULL, 0);
    /* librdkafka's consumer needs a group even to assign partitions; an inspecting scan
     * never commits, so its group stays empty. */
    char inspect[300];
    snprintf(inspect, sizeof inspect, "%ssluicectl-dlq-inspect", env->topic_prefix);
    if (rd_kafka_conf_set(conf, "group.id", group_id ? group_id : inspect, errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        return ctl_op_error("dlq", cmd, "group.id: %s", errstr);
    }
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return ctl_op_error("dlq", cmd, "kafka consumer: %s", errstr);
    }
    rd_kafka_topic_t *t = rd_kafka_topic_new(s->rk, s->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(s->rk, 0, t, &md, DLQ_KAFKA_TIMEOUT_MS);
    rd_kafka_topic_destroy(t);
    if (err)
        return kafka_error(env, cmd, "cannot read the topic list", err);
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt <= 0) {
        rd_kafka_metadata_destroy(md);
        return ctl_op_error("dlq", cmd,
                            "topic %s does not exist (run 'sluicectl topics create'; "
                            "SLUICE_TOPIC_PREFIX is '%s')",
                            s->topic, env->topic_prefix);
    }
    s->nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    s->start = calloc((size_t)s->nparts, sizeof *s->start);
    s->end = calloc((size_t)s->nparts, sizeof *s->end);
    s->next = calloc((size_t)s->nparts, sizeof *s->next);
    s->committed = calloc((size_t)s->nparts, sizeof *s->committed);
    if (!s->start || !s->end || !s->next || !s->committed)
        return ctl_op_error("dlq", cmd, "out of memory");
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(s->nparts);
    for (int p = 0; p < s->nparts; p++) {
        int64_t lo, hi;
        err = rd_kafka_query_watermark_offsets(s->rk, s->topic, p, &lo, &hi, DLQ_KAFKA_TIMEOUT_MS);
        if (err) {
            rd_kafka_topic_partition_list_destroy(list);
            return kafka_error(env, cmd, "cannot read the end offsets", err);
        }
        s->start[p] = lo;
        s->end[p] = hi;
        rd_kafka_topic_partition_list_add(list, s->topic, p)->offset =
            since_ms == INT64_MIN ? RD_KAFKA_OFFSET_BEGINNING : since_ms;
    }
    if (since_ms != INT64_MIN) {
        err = rd_kafka_offsets_for_times(s->rk, list, DLQ_KAFKA_TIMEOUT_MS);
        if (err) {
            rd_kafka_topic_partition_list_destroy(list);
            return kafka_error(env, cmd, "cannot look up offsets for --since", err);
        }
        for (int i = 0; i < list->cnt; i++) {
            int p = list->elems[i].partition;
            int64_t o = list->elems[i].offset;
            s->start[p] = o < 0 ? s->end[p] : (o > s->start[p] ? o : s->start[p]);
        }
    }
    if (group_id) {
        err = rd_kafka_committed(s->rk, list, DLQ_KAFKA_TIMEOUT_MS);
        if (err) {
            rd_kafka_topic_partition_list_destroy(list);
            return kafka_error(env, cmd, "cannot read the job's committed offsets", err);
        }
        for (int i = 0; i < list->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &list->elems[i];
            if (e->offset >= 0)
                s->start[e->partition] = e->offset;
            if (e->metadata && e->metadata_size)
                s->committed[e->partition] = strndup(e->metadata, e->metadata_size);
        }
    }
    for (int p = 0; p < s->nparts; p++) {
        list->elems[p].offset = s->start[p];
        s->next[p] = s->start[p];
        if (s->start[p] < s->end[p]) {
            s->remaining++;
            s->total += s->end[p] - s->start[p];
        }
    }
    err = rd_kafka_assign(s->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err)
        return kafka_error(env, cmd, "cannot assign the partitions", err);
    return 0;
}

int dlq_scan_next(struct dlq_scan *s, const char *cmd, rd_kafka_message_t **out) {
    uint64_t quiet_since = sl_time_mono_ns();
    while (s->remaining > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(s->rk, 200);
        if (!m) {
            if (sl_time_mono_ns() - quiet_since > (uint64_t)DLQ_KAFKA_TIMEOUT_MS * 1000000u)
                return -ctl_op_error("dlq", cmd,
                                     "no record from %s for %d s although %d partition(s) are "
                                     "not read to their end: Kafka does not answer",
                                     s->topic, DLQ_KAFKA_TIMEOUT_MS / 1000, s->remaining);
            continue;
        }
        quiet_since = sl_time_mono_ns();
        int p = m->partition;
        bool ours =
            m->rkt && p >= 0 && p < s->nparts && !strcmp(rd_kafka_topic_name(m->rkt), s->topic);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* The end was reached (transaction markers may leave the last offsets empty). */
            if (ours && s->next[p] < s->end[p] && m->offset >= s->end[p]) {
                s->next[p] = s->end[p];
                s->remaining--;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            char what[600];
            snprintf(what, sizeof what, "%s", rd_kafka_message_errstr(m));
            rd_kafka_resp_err_t e = m->err;
            rd_kafka_message_destroy(m);
            if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                e == RD_KAFKA_RESP_ERR__RESOLVE)
                continue; /* librdkafka retries; the quiet timer above decides */
            return -ctl_op_error("dlq", cmd, "reading %s: %s", s->topic, what);
        }
        if (!ours || m->offset < s->next[p] || m->offset >= s->end[p]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        s->next[p] = m->offset + 1;
        if (s->next[p] >= s->end[p])
            s->remaining--;
        *out = m;
        return 1;
    }
    return 0;
}

void dlq_scan_close(struct dlq_scan *s) {
    if (s->rk) {
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    for (int p = 0; s->committed && p < s->nparts; p++)
        free(s->committed[p]);
    free(s->committed);
    free(s->start);
    free(s->end);
    free(s->next);
    memset(s, 0, sizeof *s);
}
