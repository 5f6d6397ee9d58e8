/* sluice-worker: parse settings, build the worker (or run as a handler child), run the loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "settings.h"
#include "sluice/config.h"
#include "sluice/error.h"
#include "sluice/log.h"
#include "worker.h"

extern char **environ;

static const char *const own_kafka_vars[] = {NULL};

struct app {
    struct wk_worker *w;
    uv_signal_t sigterm, sigint;
    int exit_code;
};

static void on_stopped(void *data) {
    struct app *app = data;
    app->w = NULL;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
    struct app *app = h->data;
    SL_INFO("%s: shutting down gracefully", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (app->w)
        wk_worker_stop(app->w, on_stopped, app);
}

static void usage(FILE *out) {
    sl_config_print_help(wk_settings_table, wk_settings_count, "sluice-worker",
                         "Executes handlers for requests read from Kafka, in a pool of child "
                         "processes; answers on replies, dead-letters failures on dlq.\n"
                         "Options: --help, --print-config [--json]. Signals: SIGTERM/SIGINT "
                         "finish in-flight work and stop.",
                         out);
}

int main(int argc, char **argv) {
    int print = 0, json = 0, child = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--print-config")) {
            print = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--child")) {
            child = 1; /* internal: a handler process, socket on fd 3 */
        } else {
            fprintf(stderr, "sluice-worker: unknown argument %s (try --help)\n", argv[i]);
            return 2;
        }
    }
    struct wk_settings settings;
    struct sl_buf errors;
    sl_buf_init(&errors, 1 << 16);
    if (wk_settings_load(&settings, environ, &errors) < 0) {
        fprintf(stderr, "sluice-worker: invalid configuration:\n%s",
                errors.data ? errors.data : "");
        sl_buf_free(&errors);
        return 2;
    }
    if (child) {
        sl_log_init("worker-child", (enum sl_log_level)settings.log_level);
        int code = wk_child_main(&settings, 3);
        wk_settings_free(&settings);
        sl_buf_free(&errors);
        return code;
    }
    char **kafka_props = NULL;
    if (sl_config_kafka_props(environ, own_kafka_vars, &kafka_props) < 0) {
        fprintf(stderr, "sluice-worker: out of memory\n");
        return 1;
    }
    if (print) {
        int prc = sl_config_print_all(wk_settings_table, wk_settings_count, &settings, kafka_props,
                                      json, stdout);
        wk_settings_free(&settings);
        sl_config_props_free(kafka_props);
        sl_buf_free(&errors);
        return prc < 0 ? 1 : 0;
    }
    sl_log_init("worker", (enum sl_log_level)settings.log_level);

    char instance[256];
    if (settings.instance_id)
        snprintf(instance, sizeof instance, "%s", settings.instance_id);
    else
        sl_config_hostname(instance, sizeof instance, "worker");
    char exe[4096];
    size_t exelen = sizeof exe;
    if (uv_exepath(exe, &exelen) < 0) {
        fprintf(stderr, "sluice-worker: cannot find its own executable\n");
        return 1;
    }

    uv_loop_t *loop = uv_default_loop();
    struct app app = {.exit_code = 0};
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &app.sigterm);
    uv_signal_init(loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);

    int rc = wk_worker_new(loop, &settings, (const char *const *)kafka_props, instance, exe, &app.w,
                           &errors);
    if (rc == 0)
        rc = wk_worker_start(app.w, &errors);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot start: %s", errors.data ? errors.data : sl_strerror(rc));
        app.exit_code = 1;
        if (app.w)
            wk_worker_stop(app.w, on_stopped, &app);
        else
            on_stopped(&app);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    wk_settings_free(&settings);
    sl_config_props_free(kafka_props);
    sl_buf_free(&errors);
    return app.exit_code;
}
