/* Blocking Kafka admin calls for start-up checks and sluicectl: partition counts, creation. */
#include "kafka_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

rd_kafka_conf_t *sl_kafka_conf_new(const char *const *props, char *errstr, size_t errstr_len) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (sl__kafka_conf_apply(conf, props, errstr, errstr_len) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, sl__kafka_log_cb);
    return conf;
}

static int (*wait_hook)(void *data);
static void *wait_hook_data;

void sl_kafka_set_wait_hook(int (*hook)(void *data), void *data) {
    wait_hook = hook;
    wait_hook_data = data;
}

int sl__kafka_wait_slice(int left) {
    return wait_hook && left > SL_KAFKA_WAIT_SLICE_MS ? SL_KAFKA_WAIT_SLICE_MS : left;
}

int sl__kafka_wait_interrupted(void) {
    return wait_hook && wait_hook(wait_hook_data);
}

/* Milliseconds until `deadline` (uv_hrtime nanoseconds), 0 once passed. */
static int ms_left(uint64_t deadline) {
    uint64_t now = uv_hrtime();
    return now < deadline ? (int)((deadline - now) / 1000000u) : 0;
}

static rd_kafka_t *admin_client(const char *const *props, char *errstr, size_t errlen, int *rc) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    *rc = sl__kafka_conf_apply(conf, props, errstr, errlen);
    if (*rc < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, sl__kafka_log_cb);
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        sl__kafka_set_err(errstr, errlen, "kafka admin client: %s", rderr);
        *rc = SL_ERR_CONFIG;
    }
    return rk;
}

int sl_kafka_topics_partitions(const char *const *props, const char *const *topics, size_t n,
                               int *partitions, int timeout_ms, char *errstr, size_t errstr_len) {
    if ((n && (!topics || !partitions)))
        return -EINVAL;
    sl__kafka_set_err(errstr, errstr_len, "%s", "");
    int rc;
    rd_kafka_t *rk = admin_client(props, errstr, errstr_len, &rc);
    if (!rk)
        return rc;
    const struct rd_kafka_metadata *md = NULL;
    /* In slices, so that a stop asked while the brokers do not answer is seen at once; the
     * client keeps connecting between slices. */
    uint64_t deadline = uv_hrtime() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    rd_kafka_resp_err_t err;
    for (;;) {
        int left = ms_left(deadline);
        int slice = sl__kafka_wait_slice(left);
        err = rd_kafka_metadata(rk, 1, NULL, &md, slice);
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT)
            break;
        if (slice >= left)
            break;
        if (sl__kafka_wait_interrupted()) {
            sl__kafka_set_err(errstr, errstr_len, "kafka metadata: interrupted while waiting");
            rd_kafka_destroy(rk);
            return SL_ERR_CLOSED;
        }
    }
    if (err) {
        sl__kafka_set_err(errstr, errstr_len, "kafka metadata: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
    }
    for (size_t i = 0; i < n; i++) {
        partitions[i] = 0;
        for (int t = 0; t < md->topic_cnt; t++) {
            if (strcmp(md->topics[t].topic, topics[i]) == 0 && md->topics[t].err == 0) {
                partitions[i] = md->topics[t].partition_cnt;
                break;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

int sl_kafka_topics_exist(const char *const *props, const char *const *topics, size_t n,
                          int *missing, int timeout_ms, char *errstr, size_t errstr_len) {
    if ((n && (!topics || !missing)))
        return -EINVAL;
    int rc = sl_kafka_topics_partitions(props, topics, n, missing, timeout_ms, errstr, errstr_len);
    for (size_t i = 0; rc == 0 && i < n; i++)
        missing[i] = missing[i] == 0;
    return rc;
}

int sl_kafka_topics_create(const char *const *props, const struct sl_kafka_topic_spec *specs,
                           size_t n, int timeout_ms, char *errstr, size_t errstr_len) {
    if (n && !specs)
        return -EINVAL;
    sl__kafka_set_err(errstr, errstr_len, "%s", "");
    if (n == 0)
        return 0;
    int rc;
    rd_kafka_t *rk = admin_client(props, errstr, errstr_len, &rc);
    if (!rk)
        return rc;
    rd_kafka_NewTopic_t **nts = calloc(n, sizeof *nts);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    char rderr[512];
    rc = 0;
    if (!nts) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        nts[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions,
                                       specs[i].replication_factor, rderr, sizeof rderr);
        if (!nts[i]) {
            sl__kafka_set_err(errstr, errstr_len, "topic '%s': %s", specs[i].name, rderr);
            rc = SL_ERR_CONFIG;
            goto out;
        }
        for (const char *const *cf = specs[i].configs; cf && cf[0]; cf += 2) {
            if (!cf[1] || rd_kafka_NewTopic_set_config(nts[i], cf[0], cf[1])) {
                sl__kafka_set_err(errstr, errstr_len, "topic '%s': bad config '%s'", specs[i].name,
                                  cf[0]);
                rc = SL_ERR_CONFIG;
                goto out;
            }
        }
    }
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, rderr, sizeof rderr) ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rderr, sizeof rderr)) {
        sl__kafka_set_err(errstr, errstr_len, "create topics: %s", rderr);
        rc = SL_ERR_CONFIG;
        goto out;
    }
    rd_kafka_CreateTopics(rk, nts, n, opts, q);
    /* The request timeout bounds the answer; the margin covers connecting first. */
    uint64_t deadline = uv_hrtime() + (uint64_t)(timeout_ms + 1000) * 1000000u;
    for (;;) {
        int left = ms_left(deadline);
        int slice = sl__kafka_wait_slice(left);
        if ((ev = rd_kafka_queue_poll(q, slice)) || slice >= left)
            break;
        if (sl__kafka_wait_interrupted()) {
            sl__kafka_set_err(errstr, errstr_len, "create topics: interrupted while waiting");
            rc = SL_ERR_CLOSED;
            goto out;
        }
    }
    if (!ev) {
        sl__kafka_set_err(errstr, errstr_len, "create topics: no answer within %d ms", timeout_ms);
        rc = SL_ERR_TIMEOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
        sl__kafka_set_err(errstr, errstr_len, "create topics: %s", rd_kafka_event_error_string(ev));
        rc = err == RD_KAFKA_RESP_ERR__TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **trs = rd_kafka_CreateTopics_result_topics(res, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(trs[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue;
        const char *msg = rd_kafka_topic_result_error_string(trs[i]);
        sl__kafka_set_err(errstr, errstr_len, "create topic '%s': %s: %s",
                          rd_kafka_topic_result_name(trs[i]), rd_kafka_err2name(err),
                          msg ? msg : rd_kafka_err2str(err));
        rc = err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ? SL_ERR_TIMEOUT : SL_ERR_KAFKA;
        break;
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nts) {
        for (size_t i = 0; i < n; i++)
            if (nts[i])
                rd_kafka_NewTopic_destroy(nts[i]);
        free(nts);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
