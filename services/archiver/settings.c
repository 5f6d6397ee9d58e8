/* The archiver's settings table: names, types, defaults, bounds and descriptions in one place. */
#include "settings.h"

#define OPT(field) offsetof(struct ar_settings, field)

static const char *const sse_names[] = {"none", "aws:kms", "AES256", NULL};

const struct sl_config_option ar_settings_table[] = {
    SL_CONFIG_OPT_ADMIN_LISTEN(struct ar_settings, admin_listen),
    SL_CONFIG_OPT_TOPIC_PREFIX(struct ar_settings, topic_prefix),
    {.name = "archive_url",
     .env = "SLUICE_ARCHIVE_URL",
     .type = SL_CONFIG_STRING,
     .offset = OPT(archive_url),
     .def = "file://./var/archive",
     .description = "Where objects go: s3://bucket/prefix, or file://dir for a directory with "
                    "the same layout."},
    {.name = "group_id",
     .env = "SLUICE_ARCHIVER_GROUP",
     .type = SL_CONFIG_STRING,
     .offset = OPT(group_id),
     .def = "sluice-archiver",
     .description = "Consumer group on the audit topic; its committed offsets say what is "
                    "archived."},
    {.name = "instance_id",
     .env = "SLUICE_ARCHIVER_INSTANCE_ID",
     .type = SL_CONFIG_STRING,
     .offset = OPT(instance_id),
     .description = "Static group membership id (group.instance.id); unset: the host name. "
                    "A restart within the session timeout keeps the partitions; must be unique "
                    "per archiver process."},
    {.name = "batch_max_records",
     .env = "SLUICE_BATCH_MAX_RECORDS",
     .type = SL_CONFIG_INT64,
     .offset = OPT(batch_max_records),
     .def = "10000",
     .min = 1,
     .max = 10000000,
     .description = "A batch closes when it holds this many records."},
    {.name = "batch_max_bytes",
     .env = "SLUICE_BATCH_MAX_BYTES",
     .type = SL_CONFIG_SIZE,
     .offset = OPT(batch_max_bytes),
     .def = "8MiB",
     .umin = 1024,
     .umax = UINT64_C(1) << 30,
     .description = "A batch closes before its uncompressed NDJSON would pass this size; with "
                    "the assigned partitions it bounds memory (docs/archiver.md)."},
    {.name = "batch_max_age",
     .env = "SLUICE_BATCH_MAX_AGE_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(batch_max_age_ms),
     .def = "60000",
     .min = 10,
     .max = 86400000,
     .description = "A batch closes this long after its first record was read, even when no "
                    "other record arrives."},
    {.name = "gzip_level",
     .env = "SLUICE_ARCHIVE_GZIP_LEVEL",
     .type = SL_CONFIG_INT64,
     .offset = OPT(gzip_level),
     .def = "6",
     .min = 1,
     .max = 9,
     .description = "zlib compression level of the objects."},
    {.name = "s3_endpoint",
     .env = "SLUICE_S3_ENDPOINT",
     .type = SL_CONFIG_STRING,
     .offset = OPT(s3_endpoint),
     .description = "S3 endpoint URL (MinIO, emulators); unset: AWS in SLUICE_S3_REGION."},
    {.name = "s3_region",
     .env = "SLUICE_S3_REGION",
     .type = SL_CONFIG_STRING,
     .offset = OPT(s3_region),
     .def = "us-east-1",
     .description = "Region the requests are signed for."},
    {.name = "s3_path_style",
     .env = "SLUICE_S3_PATH_STYLE",
     .type = SL_CONFIG_BOOL,
     .offset = OPT(s3_path_style),
     .def = "false",
     .description = "Address the bucket in the path (endpoint/bucket/key) instead of the host "
                    "name (bucket.endpoint/key); MinIO and emulators want true."},
    {.name = "s3_sse",
     .env = "SLUICE_S3_SSE",
     .type = SL_CONFIG_ENUM,
     .offset = OPT(s3_sse),
     .def = "none",
     .choices = sse_names,
     .description = "x-amz-server-side-encryption on each object; the KMS key comes from the "
                    "bucket's default encryption (sluicectl s3 setup)."},
    {.name = "s3_timeout",
     .env = "SLUICE_S3_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(s3_timeout_ms),
     .def = "30000",
     .min = 100,
     .max = 600000,
     .description = "Deadline of one upload attempt."},
    {.name = "retry_base",
     .env = "SLUICE_ARCHIVE_RETRY_BASE_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(retry_base_ms),
     .def = "100",
     .min = 1,
     .max = 60000,
     .description = "Backoff ceiling of the first retry of a failed write; doubled per attempt "
                    "(full jitter)."},
    {.name = "retry_max",
     .env = "SLUICE_ARCHIVE_RETRY_MAX_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(retry_max_ms),
     .def = "20000",
     .min = 1,
     .max = 3600000,
     .description = "Largest backoff ceiling between retries."},
    {.name = "retry_slow",
     .env = "SLUICE_ARCHIVE_RETRY_SLOW_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(retry_slow_ms),
     .def = "60000",
     .min = 1,
     .max = 3600000,
     .description = "Pause before retrying an error that will not heal by itself (bad "
                    "credentials, missing bucket); the batch is kept."},
    SL_CONFIG_OPT_AUTO_CREATE_TOPICS(struct ar_settings, auto_create_topics),
    SL_CONFIG_OPT_LOG_LEVEL(struct ar_settings, log_level),
};

const size_t ar_settings_count = sizeof ar_settings_table / sizeof ar_settings_table[0];

int ar_settings_load(struct ar_settings *s, char *const *envp, struct sl_buf *errors) {
    return sl_config_load(ar_settings_table, ar_settings_count, s, envp, errors);
}

void ar_settings_free(struct ar_settings *s) {
    sl_config_free(ar_settings_table, ar_settings_count, s);
}
