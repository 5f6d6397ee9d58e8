/* Picks the sink SLUICE_ARCHIVE_URL names, and the failure classes every sink reports. */
#include "sink.h"

#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

static const char *const failure_names[AR_FAIL_COUNT] = {
    [AR_FAIL_NONE] = "none",
    [AR_FAIL_CONNECT] = "connect",
    [AR_FAIL_TIMEOUT] = "timeout",
    [AR_FAIL_SERVER] = "server",
    [AR_FAIL_THROTTLE] = "throttle",
    [AR_FAIL_AUTH] = "auth",
    [AR_FAIL_BUCKET] = "bucket",
    [AR_FAIL_CLIENT] = "client",
    [AR_FAIL_IO] = "io",
    [AR_FAIL_CANCELLED] = "cancelled",
};

const char *ar_failure_name(enum ar_failure f) {
    return (unsigned)f < AR_FAIL_COUNT ? failure_names[f] : "unknown";
}

bool ar_failure_heals(enum ar_failure f) {
    return f == AR_FAIL_CONNECT || f == AR_FAIL_TIMEOUT || f == AR_FAIL_SERVER ||
           f == AR_FAIL_THROTTLE || f == AR_FAIL_CANCELLED;
}

int ar_sink_open(const struct ar_settings *s, bool check, struct ar_sink **out,
                 struct sl_buf *err) {
    const char *url = s->archive_url;
    if (strncmp(url, "file://", 7) == 0) {
        if (!url[7]) {
            sl_buf_printf(err, "SLUICE_ARCHIVE_URL: file:// needs a directory\n");
            return SL_ERR_CONFIG;
        }
        return ar_sink_file_open(url + 7, check, out, err);
    }
    if (strncmp(url, "s3://", 5) == 0) {
        const char *b = url + 5;
        const char *slash = strchr(b, '/');
        size_t blen = slash ? (size_t)(slash - b) : strlen(b);
        char bucket[64];
        if (blen < 3 || blen >= sizeof bucket) {
            sl_buf_printf(err, "SLUICE_ARCHIVE_URL: %s names no valid bucket\n", url);
            return SL_ERR_CONFIG;
        }
        memcpy(bucket, b, blen);
        bucket[blen] = '\0';
        /* The prefix without slashes at either end: keys are prefix/api-logs/... */
        const char *p = slash ? slash : "";
        while (*p == '/')
            p++;
        size_t plen = strlen(p);
        while (plen > 0 && p[plen - 1] == '/')
            plen--;
        char *prefix = strndup(p, plen);
        if (!prefix)
            return -ENOMEM;
        int rc = ar_sink_s3_open(s, bucket, prefix, out, err);
        free(prefix);
        return rc;
    }
    sl_buf_printf(err, "SLUICE_ARCHIVE_URL: %s is neither file://dir nor s3://bucket/prefix\n",
                  url);
    return SL_ERR_CONFIG;
}
