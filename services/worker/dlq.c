/* Dead-letter records: the reason names and the header set every DLQ record carries. */
#include "dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[WK_REASON_COUNT] = {
    [WK_REASON_CRASH] = "crash",
    [WK_REASON_TIMEOUT] = "timeout",
    [WK_REASON_INVALID_REPLY] = "invalid_reply",
    [WK_REASON_DECODE_ERROR] = "decode_error",
    [WK_REASON_EXPIRED] = "expired",
    [WK_REASON_HANDLER_ERROR] = "handler_error",
    [WK_REASON_ROUTE_UNKNOWN] = "route_unknown",
};

const char *wk_reason_name(enum wk_reason r) {
    return (unsigned)r < WK_REASON_COUNT ? reason_names[r] : "handler_error";
}

enum wk_reason wk_reason_parse(const char *s, size_t len) {
    for (int i = 0; i < WK_REASON_COUNT; i++)
        if (strlen(reason_names[i]) == len && !memcmp(reason_names[i], s, len))
            return (enum wk_reason)i;
    return WK_REASON_HANDLER_ERROR;
}

static void put_be(unsigned char *out, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (unsigned char)v;
        v >>= 8;
    }
}

int wk_dlq_headers_build(const struct wk_dlq_info *info, struct wk_dlq_headers *out) {
    memset(out, 0, sizeof *out);
    out->h = calloc(info->n_original + WK_DLQ_MAX_HEADERS, sizeof *out->h);
    if (!out->h)
        return -ENOMEM;
    for (size_t i = 0; i < info->n_original; i++)
        out->h[out->n++] = info->original[i];
    snprintf(out->attempts, sizeof out->attempts, "%" PRIu32, info->attempts);
    snprintf(out->first_ms, sizeof out->first_ms, "%" PRId64, info->first_failure_ms);
    put_be(out->partition, (uint32_t)info->partition, 4);
    put_be(out->offset, (uint64_t)info->offset, 8);
    put_be(out->timestamp, (uint64_t)info->timestamp_ms, 8);
    const char *reason = wk_reason_name(info->reason);
    const char *error = info->error ? info->error : "";
    const char *worker = info->worker ? info->worker : "";
    const char *topic = info->topic ? info->topic : "";
    const struct sl_kafka_header own[WK_DLQ_OWN_HEADERS] = {
        {"sluice-dlq-reason", reason, strlen(reason)},
        {"sluice-dlq-error", error, strlen(error)},
        {"sluice-attempts", out->attempts, strlen(out->attempts)},
        {"sluice-first-failure-ms", out->first_ms, strlen(out->first_ms)},
        {"sluice-worker", worker, strlen(worker)},
        {"kafka_dlt-original-topic", topic, strlen(topic)},
        {"kafka_dlt-original-partition", out->partition, sizeof out->partition},
        {"kafka_dlt-original-offset", out->offset, sizeof out->offset},
        {"kafka_dlt-original-timestamp", out->timestamp, sizeof out->timestamp},
        {"kafka_dlt-exception-message", error, strlen(error)},
    };
    for (size_t i = 0; i < WK_DLQ_OWN_HEADERS; i++)
        out->h[out->n++] = own[i];
    if (info->reply_dropped) {
        snprintf(out->reply_dropped, sizeof out->reply_dropped, "%zu", info->reply_dropped);
        out->h[out->n++] = (struct sl_kafka_header){"sluice-dlq-reply-dropped-bytes",
                                                    out->reply_dropped, strlen(out->reply_dropped)};
    }
    if (info->value_dropped) {
        snprintf(out->value_dropped, sizeof out->value_dropped, "%zu", info->value_dropped);
        out->h[out->n++] = (struct sl_kafka_header){"sluice-dlq-value-dropped-bytes",
                                                    out->value_dropped, strlen(out->value_dropped)};
    }
    return 0;
}

void wk_dlq_headers_free(struct wk_dlq_headers *out) {
    free(out->h);
    out->h = NULL;
    out->n = 0;
}
