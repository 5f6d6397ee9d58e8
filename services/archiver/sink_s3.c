/* The S3 sink: PutObject through the shared S3 client. */
#include "sink.h"
#include "sluice/error.h"

int ar_sink_s3_open(const struct ar_settings *s, const char *bucket, const char *prefix,
                    struct ar_sink **out, struct sl_buf *err) {
    (void)s;
    (void)prefix;
    (void)out;
    sl_buf_printf(err, "SLUICE_ARCHIVE_URL: s3://%s is not supported yet\n", bucket);
    return SL_ERR_CONFIG;
}
