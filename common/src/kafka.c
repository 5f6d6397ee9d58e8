/* Kafka glue, shared pieces: librdkafka queues served on a libuv loop, properties, logs. */
#include "kafka_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "sluice/config.h"
#include "sluice/error.h"
#include "sluice/log.h"

void sl__kafka_set_err(char *errstr, size_t len, const char *fmt, ...) {
    if (!errstr || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, len, fmt, ap);
    va_end(ap);
}

int sl__kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *pairs, char *errstr,
                         size_t errlen) {
    if (!pairs)
        return 0;
    for (size_t i = 0; pairs[i]; i += 2) {
        if (!pairs[i + 1]) {
            sl__kafka_set_err(errstr, errlen, "kafka property '%s' has no value", pairs[i]);
            return SL_ERR_CONFIG;
        }
        char rderr[256];
        if (rd_kafka_conf_set(conf, pairs[i], pairs[i + 1], rderr, sizeof rderr) !=
            RD_KAFKA_CONF_OK) {
            sl__kafka_set_err(errstr, errlen, "kafka property '%s': %s", pairs[i], rderr);
            return SL_ERR_CONFIG;
        }
    }
    return 0;
}

int sl_kafka_props_check(const char *const *props, struct sl_buf *err) {
    int rc = 0;
    for (size_t i = 0; props && props[i] && props[i + 1]; i += 2) {
        /* One property at a time, each on a fresh configuration, so every bad one is named. */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (!conf)
            return -ENOMEM;
        const char *const pair[] = {props[i], props[i + 1], NULL};
        char errstr[512];
        if (sl__kafka_conf_apply(conf, pair, errstr, sizeof errstr) < 0) {
            char env[256];
            int n = snprintf(env, sizeof env, "SLUICE_KAFKA_%s", props[i]);
            for (size_t k = 13; n > 0 && k < sizeof env && env[k]; k++)
                env[k] = env[k] == '.' ? '_' : (char)toupper((unsigned char)env[k]);
            /* librdkafka's message may quote the value, which a secret's must never reach. */
            if (sl_config_kafka_prop_is_secret(props[i]))
                sl_buf_printf(err, "%s: kafka property '%s': invalid value\n", env, props[i]);
            else
                sl_buf_printf(err, "%s: %s\n", env, errstr);
            rc = SL_ERR_CONFIG;
        }
        rd_kafka_conf_destroy(conf);
    }
    return rc;
}

int sl__kafka_conf_is_set(const rd_kafka_conf_t *conf, const char *name) {
    char v[512];
    size_t n = sizeof v;
    return rd_kafka_conf_get(conf, name, v, &n) == RD_KAFKA_CONF_OK && v[0] != '\0';
}

/* librdkafka logs from its own threads; sl_log writes each line atomically, so that is safe. */
void sl__kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    enum sl_log_level l = level <= 3   ? SL_LOG_ERROR
                          : level == 4 ? SL_LOG_WARN
                          : level <= 6 ? SL_LOG_INFO
                                       : SL_LOG_DEBUG;
    sl_log(l, NULL, "kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

int sl__kafka_stats_brokers_up(const char *json, size_t len) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root)
        return -1;
    int up = 0;
    const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(root, "brokers");
    const cJSON *b;
    cJSON_ArrayForEach(b, brokers) {
        const cJSON *state = cJSON_GetObjectItemCaseSensitive(b, "state");
        const cJSON *nodeid = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
        if (cJSON_IsString(state) && cJSON_IsNumber(nodeid) && nodeid->valueint >= 0 &&
            strcmp(state->valuestring, "UP") == 0)
            up++;
    }
    cJSON_Delete(root);
    return up;
}

static void pump_empty_pipe(struct sl__kafka_pump *pu) {
    char buf[256];
    while (read(pu->fds[0], buf, sizeof buf) > 0) {
    }
}

static void pump_on_poll(uv_poll_t *h, int status, int events) {
    struct sl__kafka_pump *pu = h->data;
    (void)events;
    if (status < 0)
        SL_WARN("kafka: poll on the wakeup pipe failed: %s", uv_strerror(status));
    pump_empty_pipe(pu);
    pu->drain(pu);
}

void sl__kafka_pump_again(struct sl__kafka_pump *pu) {
    /* The pipe is non-blocking: when it is full a wakeup is pending anyway. */
    ssize_t n = write(pu->fds[1], "1", 1);
    (void)n;
}

void sl__kafka_pump_on_timer(uv_timer_t *t) {
    struct sl__kafka_pump *pu = t->data;
    pu->drain(pu);
}

int sl__kafka_pump_start(struct sl__kafka_pump *pu, uv_loop_t *loop, rd_kafka_queue_t *q,
                         void (*drain)(struct sl__kafka_pump *),
                         void (*closed)(struct sl__kafka_pump *)) {
    pu->loop = loop;
    pu->q = q;
    pu->drain = drain;
    pu->closed = closed;
    pu->open_handles = 0;
    if (pipe2(pu->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    int rc = uv_poll_init(loop, &pu->poll, pu->fds[0]);
    if (rc < 0)
        goto err_pipe;
    pu->poll.data = pu;
    /* uv_timer_init cannot fail (it only fills in the struct). */
    uv_timer_init(loop, &pu->timer);
    pu->timer.data = pu;
    pu->open_handles = 2;
    uv_poll_start(&pu->poll, UV_READABLE, pump_on_poll);
    uv_timer_start(&pu->timer, sl__kafka_pump_on_timer, SL_KAFKA_TICK_MS, SL_KAFKA_TICK_MS);
    rd_kafka_queue_io_event_enable(q, pu->fds[1], "1", 1);
    return 0;
err_pipe:
    close(pu->fds[0]);
    close(pu->fds[1]);
    return rc;
}

static void pump_on_close(uv_handle_t *h) {
    struct sl__kafka_pump *pu = h->data;
    if (--pu->open_handles == 0) {
        close(pu->fds[0]);
        close(pu->fds[1]);
        pu->closed(pu);
    }
}

/* Detaches the queue (librdkafka must not write to the pipe after this) and closes handles. */
void sl__kafka_pump_detach(struct sl__kafka_pump *pu) {
    if (pu->q) {
        rd_kafka_queue_io_event_enable(pu->q, -1, NULL, 0);
        rd_kafka_queue_destroy(pu->q);
        pu->q = NULL;
    }
}

void sl__kafka_pump_close(struct sl__kafka_pump *pu) {
    uv_poll_stop(&pu->poll);
    uv_timer_stop(&pu->timer);
    uv_close((uv_handle_t *)&pu->poll, pump_on_close);
    uv_close((uv_handle_t *)&pu->timer, pump_on_close);
}

void sl__kafka_report_error(rd_kafka_t *rk, enum sl_kafka_state *state, sl_kafka_error_cb cb,
                            void *cb_opaque, int err, const char *reason) {
    int fatal = 0;
    char buf[512];
    rd_kafka_resp_err_t kerr = (rd_kafka_resp_err_t)err;
    if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
        fatal = 1;
        kerr = rd_kafka_fatal_error(rk, buf, sizeof buf);
        reason = buf;
    }
    if (kerr == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        *state = SL_KAFKA_DOWN;
    sl_log(fatal ? SL_LOG_ERROR : SL_LOG_WARN, NULL, "kafka %s: %s%s: %s", rd_kafka_name(rk),
           fatal ? "fatal " : "", rd_kafka_err2name(kerr), reason);
    if (cb)
        cb(kerr, reason, fatal, cb_opaque);
}

int sl_kafka_err_permanent(rd_kafka_resp_err_t kerr) {
    switch (kerr) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 1;
    default:
        return 0;
    }
}
