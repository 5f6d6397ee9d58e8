/* sluicectl dlq list, show, stats and jobs; replay is in dlq_replay.c. */
#include "dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "sluice/kafka.h"
#include "sluice/time.h"

/* ---- output ------------------------------------------------------------------------------ */

void dlq_table_init(struct dlq_table *t) {
    struct winsize ws;
    t->width = isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col
                   ? ws.ws_col
                   : 0;
}

static void print_line(const struct dlq_table *t, const char *line) {
    if (t->width > 0 && (int)strlen(line) > t->width)
        printf("%.*s\n", t->width, line);
    else
        printf("%s\n", line);
}

#define ROW_FMT "%-*s%-20s  %-10s  %-13s  %-7s  %-24.*s  %8s  %7s  %s"

void dlq_table_header(const struct dlq_table *t, const char *first) {
    char line[1024];
    snprintf(line, sizeof line, ROW_FMT, first ? 24 : 0, first ? first : "", "TIME", "P:O",
             "REASON", "METHOD", 24, "PATH", "ATTEMPTS", "REPLAYS", "ERROR");
    print_line(t, line);
}

void dlq_table_row(const struct dlq_table *t, const struct dlq_record *r, const char *first) {
    char when[32], po[32], replays[16] = "-", line[2048];
    if (sl_time_format_iso8601_compact(r->ts_ms, when, sizeof when) < 0)
        snprintf(when, sizeof when, "%" PRId64, r->ts_ms);
    snprintf(po, sizeof po, "%" PRId32 ":%" PRId64, r->partition, r->offset);
    if (r->decoded)
        snprintf(replays, sizeof replays, "%" PRIu32, r->req.replay_count);
    char attempts[16];
    snprintf(attempts, sizeof attempts, "%" PRIu32, r->attempts);
    char method[16] = "-", path[512] = "-";
    if (r->decoded) {
        snprintf(method, sizeof method, "%.*s", (int)r->req.method.len, r->req.method.p);
        snprintf(path, sizeof path, "%.*s", (int)r->req.path.len, r->req.path.p);
    }
    snprintf(line, sizeof line, ROW_FMT, first ? 24 : 0, first ? first : "", when, po, r->reason,
             method, 24, path, attempts, replays, r->decoded ? r->error : r->decode_error);
    print_line(t, line);
}

static cJSON *str_json(struct sl_str s) {
    char *tmp = strndup(s.p ? s.p : "", s.len);
    cJSON *j = cJSON_CreateString(tmp ? tmp : "");
    free(tmp);
    return j;
}

void dlq_json_line(const struct dlq_record *r, const char *action) {
    cJSON *o = cJSON_CreateObject();
    char when[32];
    if (sl_time_format_iso8601(r->ts_ms, when, sizeof when) > 0)
        cJSON_AddStringToObject(o, "time", when);
    cJSON_AddNumberToObject(o, "timestamp_ms", (double)r->ts_ms);
    cJSON_AddNumberToObject(o, "partition", r->partition);
    cJSON_AddNumberToObject(o, "offset", (double)r->offset);
    if (action)
        cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "reason", r->reason);
    cJSON_AddStringToObject(o, "error", r->error);
    cJSON_AddNumberToObject(o, "attempts", r->attempts);
    cJSON_AddNumberToObject(o, "status", r->status);
    if (r->decoded) {
        cJSON_AddItemToObject(o, "request_id", str_json(r->req.id));
        cJSON_AddItemToObject(o, "method", str_json(r->req.method));
        cJSON_AddItemToObject(o, "path", str_json(r->req.path));
        cJSON_AddItemToObject(o, "route", str_json(r->req.resource));
        if (r->req.api_key_id.len)
            cJSON_AddItemToObject(o, "key_id", str_json(r->req.api_key_id));
        else
            cJSON_AddNullToObject(o, "key_id");
        cJSON_AddNumberToObject(o, "replays", r->req.replay_count);
    } else {
        cJSON_AddStringToObject(o, "envelope_error", r->decode_error);
    }
    cJSON *orig = cJSON_AddObjectToObject(o, "original");
    cJSON_AddStringToObject(orig, "topic", r->orig_topic);
    cJSON_AddNumberToObject(orig, "partition", r->orig_partition);
    cJSON_AddNumberToObject(orig, "offset", (double)r->orig_offset);
    cJSON_AddNumberToObject(orig, "timestamp_ms", (double)r->orig_ts_ms);
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
}

/* ---- list -------------------------------------------------------------------------------- */

static int parse_limit(const struct ctl_args *a, const char *cmd, const char *opt, long *out) {
    const char *v = ctl_arg(a, opt);
    *out = -1;
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > 100000000)
        return ctl_usage_error("dlq", cmd, "%s: '%s' is not a count from 1 to 100000000", opt, v);
    *out = n;
    return 0;
}

static int cmd_list(const struct ctl_args *a, const struct ctl_env *env) {
    struct dlq_filter f;
    long limit;
    int rc = dlq_filter_from_args(a, "list", &f);
    if (rc || (rc = parse_limit(a, "list", "--limit", &limit)))
        return rc;
    bool json = ctl_flag(a, "--json");
    struct dlq_scan s;
    if ((rc = dlq_scan_open(&s, env, "list", NULL, f.since_ms))) {
        dlq_scan_close(&s);
        return rc;
    }
    struct dlq_table t;
    dlq_table_init(&t);
    if (!json)
        dlq_table_header(&t, NULL);
    long shown = 0;
    rd_kafka_message_t *m;
    while (limit < 0 || shown < limit) {
        int n = dlq_scan_next(&s, "list", &m);
        if (n <= 0) {
            rc = n < 0 ? -n : 0;
            break;
        }
        struct dlq_record r;
        dlq_record_parse(m, &r);
        if (dlq_filter_match(&f, &r)) {
            if (json)
                dlq_json_line(&r, NULL);
            else
                dlq_table_row(&t, &r, NULL);
            shown++;
        }
        dlq_record_free(&r);
        rd_kafka_message_destroy(m);
    }
    dlq_scan_close(&s);
    fflush(stdout);
    return rc;
}

/* ---- show -------------------------------------------------------------------------------- */

static bool utf8_text(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n || (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)
            return false;
        if (len == 2 && c < 0xc2)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

/* Adds `name` (text when it is UTF-8 text) or `name`_base64 to o. */
static void add_bytes(cJSON *o, const char *name, const void *p, size_t n) {
    if (utf8_text(p, n)) {
        char *tmp = strndup(p ? p : "", n);
        cJSON_AddStringToObject(o, name, tmp ? tmp : "");
        free(tmp);
        return;
    }
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    char key[64];
    snprintf(key, sizeof key, "%s_base64", name);
    if (b64) {
        EVP_EncodeBlock((unsigned char *)b64, p, (int)n);
        cJSON_AddStringToObject(o, key, b64);
    }
    free(b64);
}

static cJSON *multimap_json(const struct sl_envelope_multimap *m) {
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < m->n; i++) {
        char *name = strndup(m->fields[i].name.p, m->fields[i].name.len);
        cJSON *vals = cJSON_AddArrayToObject(o, name ? name : "");
        for (size_t k = 0; k < m->fields[i].n_values; k++)
            cJSON_AddItemToArray(vals, str_json(m->fields[i].values[k]));
        free(name);
    }
    return o;
}

static cJSON *envelope_json(const struct sl_envelope_request *q) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "v", q->v);
    cJSON_AddItemToObject(o, "id", str_json(q->id));
    cJSON_AddItemToObject(o, "method", str_json(q->method));
    cJSON_AddItemToObject(o, "path", str_json(q->path));
    cJSON_AddItemToObject(o, "resource", str_json(q->resource));
    cJSON_AddItemToObject(o, "headers", multimap_json(&q->headers));
    cJSON_AddItemToObject(o, "query", multimap_json(&q->query));
    cJSON *pp = cJSON_AddObjectToObject(o, "path_params");
    for (size_t i = 0; i < q->path_params.n; i++) {
        char *name = strndup(q->path_params.pairs[i].name.p, q->path_params.pairs[i].name.len);
        cJSON_AddItemToObject(pp, name ? name : "", str_json(q->path_params.pairs[i].value));
        free(name);
    }
    add_bytes(o, "body", q->body.p, q->body.len);
    cJSON_AddItemToObject(o, "source_ip", str_json(q->source_ip));
    cJSON_AddItemToObject(o, "user_agent", str_json(q->user_agent));
    if (q->api_key_id.len)
        cJSON_AddItemToObject(o, "api_key_id", str_json(q->api_key_id));
    else
        cJSON_AddNullToObject(o, "api_key_id");
    cJSON_AddItemToObject(o, "stage", str_json(q->stage));
    cJSON_AddNumberToObject(o, "received_ms", (double)q->received_ms);
    cJSON_AddNumberToObject(o, "deadline_ms", (double)q->deadline_ms);
    cJSON_AddItemToObject(o, "trace", str_json(q->trace));
    cJSON_AddNumberToObject(o, "reply_partition", q->reply_partition);
    cJSON_AddNumberToObject(o, "attempt", q->attempt);
    cJSON_AddNumberToObject(o, "replay_count", q->replay_count);
    return o;
}

static cJSON *record_json(const struct dlq_record *r, const char *topic) {
    const rd_kafka_message_t *m = r->msg;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "topic", topic);
    cJSON_AddNumberToObject(o, "partition", r->partition);
    cJSON_AddNumberToObject(o, "offset", (double)r->offset);
    cJSON_AddNumberToObject(o, "timestamp_ms", (double)r->ts_ms);
    char when[32];
    if (sl_time_format_iso8601(r->ts_ms, when, sizeof when) > 0)
        cJSON_AddStringToObject(o, "time", when);
    if (m->key)
        add_bytes(o, "key", m->key, m->key_len);
    else
        cJSON_AddNullToObject(o, "key");
    cJSON *hs = cJSON_AddArrayToObject(o, "headers");
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t n;
        for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &v, &n) == 0; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", name);
            if (v)
                add_bytes(e, "value", v, n);
            else
                cJSON_AddNullToObject(e, "value");
            cJSON_AddItemToArray(hs, e);
        }
    }
    cJSON *d = cJSON_AddObjectToObject(o, "dlq");
    cJSON_AddStringToObject(d, "reason", r->reason);
    cJSON_AddStringToObject(d, "error", r->error);
    cJSON_AddNumberToObject(d, "attempts", r->attempts);
    cJSON_AddNumberToObject(d, "status", r->status);
    size_t n;
    const char *v = dlq_header(m, "sluice-first-failure-ms", &n);
    cJSON_AddNumberToObject(d, "first_failure_ms", v ? strtod(strndupa(v, n), NULL) : -1);
    v = dlq_header(m, "sluice-worker", &n);
    if (v) {
        char *w = strndup(v, n);
        cJSON_AddStringToObject(d, "worker", w ? w : "");
        free(w);
    }
    cJSON *orig = cJSON_AddObjectToObject(d, "original");
    cJSON_AddStringToObject(orig, "topic", r->orig_topic);
    cJSON_AddNumberToObject(orig, "partition", r->orig_partition);
    cJSON_AddNumberToObject(orig, "offset", (double)r->orig_offset);
    cJSON_AddNumberToObject(orig, "timestamp_ms", (double)r->orig_ts_ms);
    if (r->decoded)
        cJSON_AddItemToObject(o, "envelope", envelope_json(&r->req));
    else
        cJSON_AddStringToObject(o, "envelope_error", r->decode_error);
    add_bytes(o, "value", m->payload, m->len);
    return o;
}

static int parse_po(const char *s, int32_t *p, int64_t *o) {
    char *end;
    long part = strtol(s, &end, 10);
    if (end == s || *end != ':' || part < 0 || part > INT32_MAX)
        return -1;
    const char *q = end + 1;
    long long off = strtoll(q, &end, 10);
    if (end == q || *end || off < 0)
        return -1;
    *p = (int32_t)part;
    *o = off;
    return 0;
}

static int cmd_show(const struct ctl_args *a, const struct ctl_env *env) {
    int32_t part;
    int64_t off;
    if (parse_po(a->pos[0], &part, &off) < 0)
        return ctl_usage_error("dlq", "show",
                               "'%s' is not PARTITION:OFFSET (e.g. 2:1045, as 'dlq list' shows)",
                               a->pos[0]);
    struct dlq_scan s;
    int rc = dlq_scan_open(&s, env, "show", NULL, INT64_MIN);
    if (rc) {
        dlq_scan_close(&s);
        return rc;
    }
    if (part >= s.nparts || off < s.start[part] || off >= s.end[part]) {
        rc = ctl_op_error("dlq", "show",
                          "no record %" PRId32 ":%" PRId64 " in %s (partitions 0..%d; partition "
                          "%" PRId32 " holds offsets %" PRId64 "..%" PRId64 ")",
                          part, off, s.topic, s.nparts - 1, part < s.nparts ? part : 0,
                          part < s.nparts ? s.start[part] : 0,
                          part < s.nparts ? s.end[part] - 1 : 0);
        dlq_scan_close(&s);
        return rc;
    }
    /* Read just that partition from that offset. */
    for (int p = 0; p < s.nparts; p++)
        if (p != part && s.next[p] < s.end[p]) {
            s.next[p] = s.end[p];
            s.remaining--;
        }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, s.topic, part)->offset = off;
    rd_kafka_assign(s.rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    s.next[part] = off;
    rc = CTL_EXIT_ERROR;
    rd_kafka_message_t *m;
    int n;
    while ((n = dlq_scan_next(&s, "show", &m)) > 0) {
        if (m->offset != off) {
            rd_kafka_message_destroy(m);
            continue;
        }
        struct dlq_record r;
        dlq_record_parse(m, &r);
        cJSON *o = record_json(&r, s.topic);
        char *txt = cJSON_Print(o);
        if (txt)
            printf("%s\n", txt);
        free(txt);
        cJSON_Delete(o);
        dlq_record_free(&r);
        rd_kafka_message_destroy(m);
        rc = CTL_EXIT_OK;
        break;
    }
    if (n == 0 && rc)
        rc = ctl_op_error("dlq", "show",
                          "record %" PRId32 ":%" PRId64 " is gone (retention or "
                          "a transaction marker)",
                          part, off);
    else if (n < 0)
        rc = -n;
    dlq_scan_close(&s);
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------- */

#define STATS_MAX 256

struct count {
    char name[128];
    long n;
};

static void count_add(struct count *c, size_t *nc, const char *name, size_t len) {
    for (size_t i = 0; i < *nc; i++)
        if (strlen(c[i].name) == len && !memcmp(c[i].name, name, len)) {
            c[i].n++;
            return;
        }
    if (*nc >= STATS_MAX)
        name = "(other)", len = 7;
    if (*nc >= STATS_MAX) {
        c[STATS_MAX - 1].n++;
        return;
    }
    snprintf(c[*nc].name, sizeof c[*nc].name, "%.*s", (int)len, name);
    c[(*nc)++].n = 1;
}

static int count_cmp(const void *a, const void *b) {
    const struct count *x = a, *y = b;
    return x->n != y->n ? (x->n < y->n ? 1 : -1) : strcmp(x->name, y->name);
}

static void counts_out(const char *title, struct count *c, size_t n, cJSON *json) {
    qsort(c, n, sizeof *c, count_cmp);
    if (json) {
        cJSON *o = cJSON_AddObjectToObject(json, title);
        for (size_t i = 0; i < n; i++)
            cJSON_AddNumberToObject(o, c[i].name, (double)c[i].n);
        return;
    }
    printf("\nby %s:\n", title);
    for (size_t i = 0; i < n; i++)
        printf("  %-40s %8ld\n", c[i].name, c[i].n);
}

static int cmd_stats(const struct ctl_args *a, const struct ctl_env *env) {
    struct dlq_filter f;
    int rc = dlq_filter_from_args(a, "stats", &f);
    if (rc)
        return rc;
    struct dlq_scan s;
    if ((rc = dlq_scan_open(&s, env, "stats", NULL, f.since_ms))) {
        dlq_scan_close(&s);
        return rc;
    }
    static struct count by_reason[STATS_MAX], by_route[STATS_MAX], by_status[STATS_MAX];
    size_t nreason = 0, nroute = 0, nstatus = 0;
    long total = 0, last_hour = 0;
    int64_t oldest = INT64_MAX, newest = INT64_MIN, hour_ago = sl_time_now_ms() - 3600 * 1000;
    rd_kafka_message_t *m;
    int n;
    while ((n = dlq_scan_next(&s, "stats", &m)) > 0) {
        struct dlq_record r;
        dlq_record_parse(m, &r);
        if (dlq_filter_match(&f, &r)) {
            total++;
            count_add(by_reason, &nreason, r.reason, strlen(r.reason));
            if (r.decoded && r.req.resource.len)
                count_add(by_route, &nroute, r.req.resource.p, r.req.resource.len);
            else
                count_add(by_route, &nroute, "-", 1);
            char st[8];
            snprintf(st, sizeof st, "%d", r.status);
            count_add(by_status, &nstatus, st, strlen(st));
            oldest = r.ts_ms < oldest ? r.ts_ms : oldest;
            newest = r.ts_ms > newest ? r.ts_ms : newest;
            last_hour += r.ts_ms >= hour_ago;
        }
        dlq_record_free(&r);
        rd_kafka_message_destroy(m);
    }
    dlq_scan_close(&s);
    if (n < 0)
        return -n;
    char o1[32] = "-", o2[32] = "-";
    if (total) {
        sl_time_format_iso8601_compact(oldest, o1, sizeof o1);
        sl_time_format_iso8601_compact(newest, o2, sizeof o2);
    }
    double per_min = (double)last_hour / 60.0;
    if (ctl_flag(a, "--json")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "total", (double)total);
        if (total) {
            cJSON_AddStringToObject(o, "oldest", o1);
            cJSON_AddStringToObject(o, "newest", o2);
        } else {
            cJSON_AddNullToObject(o, "oldest");
            cJSON_AddNullToObject(o, "newest");
        }
        cJSON_AddNumberToObject(o, "last_hour", (double)last_hour);
        cJSON_AddNumberToObject(o, "per_minute_last_hour", per_min);
        counts_out("reason", by_reason, nreason, o);
        counts_out("route", by_route, nroute, o);
        counts_out("status", by_status, nstatus, o);
        char *txt = cJSON_PrintUnformatted(o);
        if (txt)
            printf("%s\n", txt);
        free(txt);
        cJSON_Delete(o);
        return CTL_EXIT_OK;
    }
    printf("records: %ld\noldest:  %s\nnewest:  %s\nlast hour: %ld (%.1f a minute)\n", total, o1,
           o2, last_hour, per_min);
    counts_out("reason", by_reason, nreason, NULL);
    counts_out("route", by_route, nroute, NULL);
    counts_out("status", by_status, nstatus, NULL);
    return CTL_EXIT_OK;
}

/* ---- jobs -------------------------------------------------------------------------------- */

int dlq_job_group(const struct ctl_env *env, const char *job, char *out, size_t len) {
    int n = snprintf(out, len, "%s" DLQ_JOB_GROUP_INFIX "%s", env->topic_prefix, job);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Sums "s=..,r=..,k=.." job counters of the committed offsets' metadata. */
static void job_counts(const char *meta, long *sel, long *rep, long *skip) {
    long s = 0, r = 0, k = 0;
    if (meta && sscanf(meta, "s=%ld,r=%ld,k=%ld", &s, &r, &k) == 3) {
        *sel += s;
        *rep += r;
        *skip += k;
    }
}

static int cmd_jobs(const struct ctl_args *a, const struct ctl_env *env) {
    bool json = ctl_flag(a, "--json");
    struct dlq_scan s;
    int rc = dlq_scan_open(&s, env, "jobs", NULL, INT64_MIN);
    if (rc) {
        dlq_scan_close(&s);
        return rc;
    }
    const struct rd_kafka_group_list *groups = NULL;
    rd_kafka_resp_err_t err = rd_kafka_list_groups(s.rk, NULL, &groups, 10000);
    if (err) {
        dlq_scan_close(&s);
        return ctl_op_error("dlq", "jobs", "cannot list consumer groups: %s",
                            rd_kafka_err2str(err));
    }
    char prefix[300];
    dlq_job_group(env, "", prefix, sizeof prefix);
    size_t plen = strlen(prefix);
    if (!json)
        printf("%-32s %9s %9s %9s %9s  %s\n", "JOB", "SELECTED", "REPLAYED", "SKIPPED", "REMAINING",
               "NEXT OFFSETS");
    rd_kafka_queue_t *q = rd_kafka_queue_new(s.rk);
    for (int g = 0; g < groups->group_cnt && rc == 0; g++) {
        const char *name = groups->groups[g].group;
        if (strncmp(name, prefix, plen))
            continue;
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(s.nparts);
        for (int p = 0; p < s.nparts; p++)
            rd_kafka_topic_partition_list_add(parts, s.topic, p);
        rd_kafka_ListConsumerGroupOffsets_t *req =
            rd_kafka_ListConsumerGroupOffsets_new(name, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_ListConsumerGroupOffsets(s.rk, &req, 1, NULL, q);
        rd_kafka_ListConsumerGroupOffsets_destroy(req);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
        const rd_kafka_ListConsumerGroupOffsets_result_t *res =
            ev ? rd_kafka_event_ListConsumerGroupOffsets_result(ev) : NULL;
        size_t ng = 0;
        const rd_kafka_group_result_t **gr =
            res ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &ng) : NULL;
        if (!ev || rd_kafka_event_error(ev) || ng != 1 || rd_kafka_group_result_error(gr[0])) {
            rc = ctl_op_error("dlq", "jobs", "cannot read the offsets of %s: %s", name,
                              ev ? rd_kafka_event_error_string(ev) : "timed out");
            if (ev)
                rd_kafka_event_destroy(ev);
            break;
        }
        const rd_kafka_topic_partition_list_t *offs = rd_kafka_group_result_partitions(gr[0]);
        long sel = 0, rep = 0, skip = 0, remaining = 0;
        char next[1024] = "";
        size_t used = 0;
        for (int i = 0; offs && i < offs->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &offs->elems[i];
            char *meta = e->metadata ? strndup(e->metadata, e->metadata_size) : NULL;
            job_counts(meta, &sel, &rep, &skip);
            free(meta);
            int p = e->partition;
            if (p >= 0 && p < s.nparts)
                remaining += s.end[p] - (e->offset >= 0 ? e->offset : s.start[p]);
            if (e->offset >= 0 && used < sizeof next - 32)
                used += (size_t)snprintf(next + used, sizeof next - used, "%s%d:%" PRId64,
                                         used ? "," : "", p, e->offset);
        }
        const char *job = name + plen;
        if (json) {
            printf("{\"job\":\"%s\",\"group\":\"%s\",\"selected\":%ld,\"replayed\":%ld,"
                   "\"skipped\":%ld,\"remaining\":%ld,\"next_offsets\":\"%s\"}\n",
                   job, name, sel, rep, skip, remaining, next);
        } else {
            printf("%-32s %9ld %9ld %9ld %9ld  %s\n", job, sel, rep, skip, remaining,
                   used ? next : "-");
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_group_list_destroy(groups);
    dlq_scan_close(&s);
    return rc;
}

/* ---- the group --------------------------------------------------------------------------- */

static const struct ctl_opt list_opts[] = {
    DLQ_FILTER_OPTS,
    {"--limit", CTL_OPT_VALUE, "N", "at most N records"},
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per line instead of the table"},
};
static const struct ctl_opt stats_opts[] = {
    DLQ_FILTER_OPTS,
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object instead of the text"},
};
static const struct ctl_opt jobs_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per job and line"},
};
static const struct ctl_opt replay_opts[] = {
    DLQ_FILTER_OPTS,
    {"--rate", CTL_OPT_VALUE, "N/s", "records per second at most (default 100; 0: no limit)"},
    {"--max", CTL_OPT_VALUE, "N", "replay at most N records in the whole job"},
    {"--dry-run", CTL_OPT_FLAG, NULL, "print what would be replayed and skipped; write nothing"},
    {"--job", CTL_OPT_VALUE, "NAME", "the job to run or resume (default: replay-<UTC time>)"},
    {"--max-replays", CTL_OPT_VALUE, "K", "skip records already replayed K times (default 3)"},
    {"--json", CTL_OPT_FLAG, NULL, "--dry-run: one JSON object per record and line"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct ctl_cmd cmds[] = {
    {.name = "list",
     .summary = "list dead-lettered requests (table, or --json lines)",
     .description =
         "Lists the records of the DLQ topic (<prefix>dlq) that match the filters, oldest\n"
         "first per partition: time, partition:offset, reason, method, path, attempts,\n"
         "replays and error, cut to the terminal's width.",
     .opts = list_opts,
     .nopts = N(list_opts),
     .run = cmd_list},
    {.name = "show",
     .positionals = "P:O",
     .min_pos = 1,
     .max_pos = 1,
     .summary = "one record, whole, as JSON",
     .description =
         "Prints the DLQ record at partition P, offset O as JSON: every Kafka header, the\n"
         "decoded request (body as text when it is UTF-8 text, else body_base64), the DLQ\n"
         "metadata and the record's exact bytes (value or value_base64).",
     .run = cmd_show},
    {.name = "stats",
     .summary = "counts by reason, route and status; oldest, newest, last hour",
     .description = "Counts the matching records by reason, route and status the client got, and\n"
                    "gives the oldest and newest and the count over the last hour.",
     .opts = stats_opts,
     .nopts = N(stats_opts),
     .run = cmd_stats},
    {.name = "replay",
     .summary = "republish selected requests to <prefix>requests, once per job",
     .description =
         "Republishes the original requests of the matching records to <prefix>requests with\n"
         "replay_count + 1 and no reply address: the worker runs them and answers nobody. The\n"
         "DLQ is never changed. Records already replayed --max-replays times, and records that\n"
         "are not request envelopes, are skipped and counted.\n"
         "\n"
         "A job replays each record at most once, even when it is killed and started again\n"
         "with the same --job: the replayed records and the job's position are written in one\n"
         "Kafka transaction (consumer group <prefix>dlq-replay.<job>). Ctrl-C stops between\n"
         "transactions; run the same command again to resume. 'sluicectl dlq jobs' shows\n"
         "each job's progress.",
     .opts = replay_opts,
     .nopts = N(replay_opts),
     .run = ctl_dlq_replay},
    {.name = "jobs",
     .summary = "replay jobs and their progress",
     .description = "Lists the replay jobs (consumer groups <prefix>dlq-replay.<job>): records\n"
                    "selected, replayed and skipped so far, records left to read, next offsets.",
     .opts = jobs_opts,
     .nopts = N(jobs_opts),
     .run = cmd_jobs},
};

static const struct ctl_group_def group = {
    .name = "dlq",
    .description =
        "Inspect and replay the dead-letter topic, <prefix>dlq. Filters: --since/--until\n"
        "(RFC 3339 UTC or -15m, -2h, -7d), --reason (repeatable), --route GLOB,\n"
        "--status N, --key-id ID. Kafka: SLUICE_KAFKA_BOOTSTRAP_SERVERS.",
    .cmds = cmds,
    .ncmds = N(cmds),
};

int ctl_dlq_main(int argc, char **argv, const struct ctl_env *env) {
    return ctl_group_run(&group, argc, argv, env);
}
