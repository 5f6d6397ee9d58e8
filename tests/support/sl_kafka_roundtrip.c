/* Drives the Kafka glue against a real broker for tests/integration/test_kafka_glue.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/kafka.h"
#include "sluice/log.h"

/*
 * Usage (all output is JSON lines on stdout, bytes as lowercase hex):
 *   create <bootstrap> <topic> <partitions> [retention.ms]
 *       creates the topic twice (the second must succeed too) and checks it exists:
 *       {"create":0,"create_again":0,"missing":0,"other_missing":1}
 *   produce <bootstrap> <topic> <partition|-1|sticky:MS>
 *       (sticky:MS: partition -1 with sl_kafka_producer_set_sticky(MS, seed 0))
 *       stdin: one {"key":hex|null,"value":hex|null,"headers":[[name,hex|null],...]} per line;
 *       prints {"i":n,"err":0,"kerr":"NO_ERROR","partition":p,"offset":o} per message, in order
 *   consume <bootstrap> <topic> <partition> <mode> <count> <timeout_ms>
 *       mode: beginning | end | offset:N (manual assignment) | group:ID (subscription);
 *       prints {"ready":1,"position":o} once positioned (assignments only), then one
 *       {"topic","partition","offset","key","value","headers","timestamp"} per message, then
 *       {"done":count} or {"timeout":received}.
 * Exit status 0 on success.
 */

static uv_loop_t loop;

static void usage(void) {
    fputs("usage: sl_kafka_roundtrip create|produce|consume ...\n", stderr);
    exit(2);
}

static int parse_long(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

static cJSON *hex_or_null(const void *p, size_t len) {
    if (!p)
        return cJSON_CreateNull();
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    if (!s)
        abort();
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[b[i] >> 4];
        s[2 * i + 1] = digits[b[i] & 15];
    }
    s[2 * len] = '\0';
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

/* Decodes a JSON hex string (or null) into a malloc'ed buffer; *out NULL for null. */
static int unhex(const cJSON *j, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (!j || cJSON_IsNull(j))
        return 0;
    if (!cJSON_IsString(j))
        return SL_ERR_TYPE;
    size_t n = strlen(j->valuestring);
    if (n % 2)
        return SL_ERR_PARSE;
    *out = malloc(n / 2 + 1);
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = sl_hex_digit(j->valuestring[2 * i]), lo = sl_hex_digit(j->valuestring[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(*out);
            *out = NULL;
            return SL_ERR_PARSE;
        }
        (*out)[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

static void emit(cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    puts(s);
    fflush(stdout);
    free(s);
    cJSON_Delete(j);
}

static void on_closed(void *data) {
    (void)data;
}

/* ---- create ---- */

static int cmd_create(int argc, char **argv) {
    if (argc < 3)
        usage();
    long parts;
    if (parse_long(argv[2], &parts) < 0)
        usage();
    const char *const props[] = {"bootstrap.servers", argv[0], NULL};
    const char *const configs[] = {"retention.ms", argc > 3 ? argv[3] : "3600000", NULL};
    struct sl_kafka_topic_spec spec = {
        .name = argv[1], .partitions = (int)parts, .replication_factor = 1, .configs = configs};
    char err[SL_KAFKA_ERRSTR_LEN];
    cJSON *out = cJSON_CreateObject();
    int rc = sl_kafka_topics_create(props, &spec, 1, 10000, err, sizeof err);
    cJSON_AddNumberToObject(out, "create", rc);
    if (rc)
        cJSON_AddStringToObject(out, "create_error", err);
    rc = sl_kafka_topics_create(props, &spec, 1, 10000, err, sizeof err);
    cJSON_AddNumberToObject(out, "create_again", rc);
    if (rc)
        cJSON_AddStringToObject(out, "create_again_error", err);
    char other[300];
    snprintf(other, sizeof other, "%s.does-not-exist", argv[1]);
    const char *const topics[] = {argv[1], other};
    int missing[2] = {-1, -1};
    rc = sl_kafka_topics_exist(props, topics, 2, missing, 10000, err, sizeof err);
    cJSON_AddNumberToObject(out, "exist", rc);
    cJSON_AddNumberToObject(out, "missing", missing[0]);
    cJSON_AddNumberToObject(out, "other_missing", missing[1]);
    emit(out);
    return 0;
}

/* ---- produce ---- */

struct pending {
    int index;
    int *remaining;
    cJSON *report;
};

static void on_delivery(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                        void *opaque) {
    struct pending *pe = opaque;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "i", pe->index);
    cJSON_AddNumberToObject(r, "err", err);
    cJSON_AddStringToObject(r, "kerr", rd_kafka_err2name(kerr));
    cJSON_AddNumberToObject(r, "partition", partition);
    cJSON_AddNumberToObject(r, "offset", (double)offset);
    pe->report = r;
    --*pe->remaining;
}

static void on_tick(uv_timer_t *t) {
    (void)t;
}

/* Runs the loop until *value == target or the timeout passes. */
static int run_until(const int *value, int target, int timeout_ms) {
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    uint64_t end = uv_now(&loop) + (uint64_t)timeout_ms;
    while (*value != target && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT); /* finishes the close: tick lives on this stack frame */
    return *value == target ? 0 : SL_ERR_TIMEOUT;
}

/* Reads stdin into parsed JSON lines (an array). */
static cJSON *read_lines(void) {
    cJSON *arr = cJSON_CreateArray();
    struct sl_buf line;
    sl_buf_init(&line, 16 << 20);
    for (;;) {
        int ch = getchar();
        if (ch != EOF && ch != '\n') {
            char c = (char)ch;
            if (sl_buf_append(&line, &c, 1) < 0)
                abort();
            continue;
        }
        if (line.len > 0) {
            cJSON *j = cJSON_ParseWithLength(line.data, line.len);
            if (!j) {
                fprintf(stderr, "bad input line: %s\n", line.data);
                exit(2);
            }
            cJSON_AddItemToArray(arr, j);
            sl_buf_reset(&line);
        }
        if (ch == EOF)
            break;
    }
    sl_buf_free(&line);
    return arr;
}

static int produce_one(struct sl_kafka_producer *p, const char *topic, int32_t partition,
                       const cJSON *j, struct pending *pe) {
    unsigned char *key = NULL, *val = NULL;
    size_t klen, vlen;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(j, "headers");
    size_t nh = (size_t)cJSON_GetArraySize(hs);
    struct sl_kafka_header *h = calloc(nh + 1, sizeof *h);
    unsigned char **hv = calloc(nh + 1, sizeof *hv);
    int rc = unhex(cJSON_GetObjectItemCaseSensitive(j, "key"), &key, &klen);
    if (rc == 0)
        rc = unhex(cJSON_GetObjectItemCaseSensitive(j, "value"), &val, &vlen);
    for (size_t i = 0; rc == 0 && i < nh; i++) {
        const cJSON *pair = cJSON_GetArrayItem(hs, (int)i);
        h[i].name = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        rc = unhex(cJSON_GetArrayItem(pair, 1), &hv[i], &h[i].len);
        h[i].value = hv[i];
    }
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (rc == 0)
        rc = sl_kafka_produce(p, topic, partition, key, klen, val, vlen, nh ? h : NULL, nh,
                              on_delivery, pe, &kerr);
    if (rc < 0)
        fprintf(stderr, "produce %d: %s (%s)\n", pe->index, sl_strerror(rc),
                rd_kafka_err2name(kerr));
    for (size_t i = 0; i < nh; i++)
        free(hv[i]);
    free(hv);
    free(h);
    free(key);
    free(val);
    return rc;
}

static int cmd_produce(int argc, char **argv) {
    if (argc < 3)
        usage();
    long partition, sticky_ms = 0;
    if (strncmp(argv[2], "sticky:", 7) == 0) {
        if (parse_long(argv[2] + 7, &sticky_ms) < 0 || sticky_ms <= 0)
            usage();
        partition = -1;
    } else if (parse_long(argv[2], &partition) < 0) {
        usage();
    }
    const char *const props[] = {"bootstrap.servers", argv[0], NULL};
    char err[SL_KAFKA_ERRSTR_LEN];
    struct sl_kafka_producer *p;
    if (sl_kafka_producer_new(&loop, props, &p, err, sizeof err) < 0) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    if (sticky_ms)
        sl_kafka_producer_set_sticky(p, (int)sticky_ms, 0);
    cJSON *msgs = read_lines();
    int n = cJSON_GetArraySize(msgs);
    struct pending *pend = calloc((size_t)n + 1, sizeof *pend);
    int remaining = 0, status = 0;
    for (int i = 0; i < n; i++) {
        pend[i] = (struct pending){.index = i, .remaining = &remaining};
        if (produce_one(p, argv[1], (int32_t)partition, cJSON_GetArrayItem(msgs, i), &pend[i]) <
            0) {
            status = 1;
            break;
        }
        remaining++;
    }
    if (run_until(&remaining, 0, 30000) < 0) {
        fprintf(stderr, "produce: %d delivery reports missing after 30 s\n", remaining);
        status = 1;
    }
    for (int i = 0; i < n; i++)
        if (pend[i].report)
            emit(pend[i].report);
    sl_kafka_producer_close(p, 5000, on_closed, NULL);
    free(pend);
    cJSON_Delete(msgs);
    return status;
}

/* ---- consume ---- */

struct consume_state {
    struct sl_kafka_consumer *c;
    int group;
    long want;
    long got;
    int done;
};

static void on_message(const struct sl_kafka_message *msg, void *opaque) {
    struct consume_state *st = opaque;
    /* The glue may hand over the rest of a batch after the count is reached; stop there. */
    if (st->got >= st->want)
        return;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "topic", msg->topic);
    cJSON_AddNumberToObject(j, "partition", msg->partition);
    cJSON_AddNumberToObject(j, "offset", (double)msg->offset);
    cJSON_AddItemToObject(j, "key", hex_or_null(msg->key, msg->keylen));
    cJSON_AddItemToObject(j, "value", hex_or_null(msg->value, msg->vlen));
    cJSON *hs = cJSON_AddArrayToObject(j, "headers");
    const char *name;
    const void *v;
    size_t len;
    for (size_t i = 0; sl_kafka_message_header_at(msg, i, &name, &v, &len) == 0; i++) {
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(name));
        cJSON_AddItemToArray(pair, hex_or_null(v, len));
        cJSON_AddItemToArray(hs, pair);
    }
    /* The by-name lookup must agree with the last header of that name. */
    if (cJSON_GetArraySize(hs) > 0) {
        const char *last = cJSON_GetStringValue(
            cJSON_GetArrayItem(cJSON_GetArrayItem(hs, cJSON_GetArraySize(hs) - 1), 0));
        if (sl_kafka_message_header(msg, last, &v, &len) == 0)
            cJSON_AddItemToObject(j, "last_header", hex_or_null(v, len));
    }
    cJSON_AddNumberToObject(j, "timestamp", (double)msg->timestamp_ms);
    emit(j);
    /* A group member stores what it has handled; close commits it (auto commit is on). */
    if (st->group &&
        sl_kafka_consumer_store_offset(st->c, msg->topic, msg->partition, msg->offset + 1) < 0)
        fprintf(stderr, "store offset failed\n");
    if (++st->got >= st->want)
        st->done = 1;
}

static int cmd_consume(int argc, char **argv) {
    if (argc < 6)
        usage();
    long partition, count, timeout_ms;
    if (parse_long(argv[2], &partition) < 0 || parse_long(argv[4], &count) < 0 ||
        parse_long(argv[5], &timeout_ms) < 0)
        usage();
    const char *mode = argv[3];
    char err[SL_KAFKA_ERRSTR_LEN];
    struct consume_state st = {.want = count};
    struct sl_kafka_consumer *c;
    int group = strncmp(mode, "group:", 6) == 0;
    const char *const gprops[] = {"bootstrap.servers", argv[0],    "group.id", mode + 6,
                                  "auto.offset.reset", "earliest", NULL};
    const char *const mprops[] = {"bootstrap.servers", argv[0], NULL};
    if (sl_kafka_consumer_new(&loop, group ? gprops : mprops, on_message, &st, &c, err,
                              sizeof err) < 0) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    st.c = c;
    st.group = group;
    int rc;
    if (group) {
        const char *const topics[] = {argv[1]};
        rc = sl_kafka_consumer_subscribe(c, topics, 1);
    } else {
        long off;
        if (strcmp(mode, "beginning") == 0)
            off = RD_KAFKA_OFFSET_BEGINNING;
        else if (strcmp(mode, "end") == 0)
            off = RD_KAFKA_OFFSET_END;
        else if (strncmp(mode, "offset:", 7) != 0 || parse_long(mode + 7, &off) < 0)
            usage();
        int64_t pos = -1;
        rc = sl_kafka_consumer_assign(c, argv[1], (int32_t)partition, off, 10000, &pos);
        if (rc == 0) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "ready", 1);
            cJSON_AddNumberToObject(r, "position", (double)pos);
            emit(r);
        }
    }
    if (rc < 0) {
        fprintf(stderr, "consume: %s\n", sl_strerror(rc));
        sl_kafka_consumer_close(c, on_closed, NULL);
        return 1;
    }
    if (count > 0)
        run_until(&st.done, 1, (int)timeout_ms);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, st.done || count == 0 ? "done" : "timeout", (double)st.got);
    emit(r);
    sl_kafka_consumer_close(c, on_closed, NULL);
    return st.done || count == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    sl_log_init("sl_kafka_roundtrip", SL_LOG_WARN);
    if (argc < 2)
        usage();
    uv_loop_init(&loop);
    int rc;
    if (strcmp(argv[1], "create") == 0)
        rc = cmd_create(argc - 2, argv + 2);
    else if (strcmp(argv[1], "produce") == 0)
        rc = cmd_produce(argc - 2, argv + 2);
    else if (strcmp(argv[1], "consume") == 0)
        rc = cmd_consume(argc - 2, argv + 2);
    else
        usage();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}
