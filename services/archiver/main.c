/* sluice-archiver: the archiver's hooks for the shared service start-up (sluice/service.h). */
#include <stdio.h>

#include "archiver.h"
#include "settings.h"
#include "sluice/service.h"

static int create(void *ctx, uv_loop_t *loop, const void *settings, const char *const *kafka_props,
                  bool check, void **obj, struct sl_buf *err) {
    (void)ctx;
    const struct ar_settings *s = settings;
    char instance[256];
    if (s->instance_id)
        snprintf(instance, sizeof instance, "%s", s->instance_id);
    else
        sl_config_hostname(instance, sizeof instance, "archiver");
    return ar_archiver_new(loop, s, kafka_props, instance, check, (struct ar_archiver **)obj, err);
}

static int start(void *obj, struct sl_buf *err) {
    return ar_archiver_start(obj, err);
}

static void stop(void *obj, void (*cb)(void *data), void *data) {
    ar_archiver_stop(obj, cb, data);
}

int main(int argc, char **argv) {
    sl_service_open_stdio();
    const struct sl_service archiver = {
        .name = "archiver",
        .summary = "Archives the audit topic as gzip'd NDJSON objects, one per partition, UTC "
                   "day and batch, in S3 or a directory; offsets are committed only after an "
                   "object is written.\n"
                   "Options: --help, --version, --check (load and validate everything, connect "
                   "nothing, exit 0 or 1), --print-config [--json]. Signals: SIGTERM/SIGINT "
                   "leave the group (uncommitted batches are read again); SIGHUP reloads "
                   "nothing.",
        .checks = "archive URL (file:// directory or S3 bucket and credentials)",
        .table = ar_settings_table,
        .table_len = ar_settings_count,
        .settings_size = sizeof(struct ar_settings),
        .create = create,
        .start = start,
        .stop = stop,
    };
    return sl_service_main(&archiver, NULL, argc, argv);
}
