/* sluice-worker: the worker's hooks for the shared service start-up (sluice/service.h). */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "child.h"
#include "settings.h"
#include "sluice/log.h"
#include "sluice/service.h"
#include "worker.h"

struct worker_main {
    int child; /* internal --child: a handler process, its socket on fd 3 */
};

static int arg(void *ctx, const char *a) {
    struct worker_main *m = ctx;
    if (strcmp(a, "--child") != 0)
        return 0;
    m->child = 1;
    return 1;
}

static int divert(void *ctx, const void *settings) {
    const struct worker_main *m = ctx;
    if (!m->child)
        return -1;
    const struct wk_settings *s = settings;
    sl_log_init("worker-child", (enum sl_log_level)s->log_level);
    return wk_child_main(s, 3);
}

static int create(void *ctx, uv_loop_t *loop, const void *settings, const char *const *kafka_props,
                  bool check, void **obj, struct sl_buf *err) {
    (void)ctx;
    (void)check; /* the worker connects nothing and spawns nothing before start */
    const struct wk_settings *s = settings;
    char instance[256];
    if (s->instance_id)
        snprintf(instance, sizeof instance, "%s", s->instance_id);
    else
        sl_config_hostname(instance, sizeof instance, "worker");
    char exe[4096];
    size_t exelen = sizeof exe;
    int rc = uv_exepath(exe, &exelen);
    if (rc < 0) {
        sl_buf_printf(err, "cannot find its own executable: %s\n", uv_strerror(rc));
        return rc;
    }
    return wk_worker_new(loop, s, kafka_props, instance, exe, (struct wk_worker **)obj, err);
}

static int start(void *obj, struct sl_buf *err) {
    return wk_worker_start(obj, err);
}

static void stop(void *obj, void (*cb)(void *data), void *data) {
    wk_worker_stop(obj, cb, data);
}

/* The handlers' HTTP client is the one library only the worker links. */
static void version(FILE *out) {
    fprintf(out, "libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
}

int main(int argc, char **argv) {
    sl_service_open_stdio();
    const struct sl_service worker = {
        .name = "worker",
        .summary =
            "Executes handlers for requests read from Kafka, in a pool of child processes; "
            "answers on replies, dead-letters failures on dlq.\n"
            "Options: --help, --version, --check (load and validate everything, connect nothing, "
            "exit 0 or 1), --print-config [--json]. Signals: SIGTERM/SIGINT finish in-flight "
            "work and stop; SIGHUP reloads nothing (it is logged).",
        .checks = "routes, handler user (when root)",
        .table = wk_settings_table,
        .table_len = wk_settings_count,
        .settings_size = sizeof(struct wk_settings),
        .arg = arg,
        .divert = divert,
        .create = create,
        .start = start,
        .stop = stop,
        .version = version,
    };
    struct worker_main m = {.child = 0};
    return sl_service_main(&worker, &m, argc, argv);
}
