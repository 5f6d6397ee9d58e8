/* sluice-gateway: parse settings, build the gateway, run the loop, handle signals. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "settings.h"
#include "sluice/config.h"
#include "sluice/error.h"
#include "sluice/log.h"

extern char **environ;

static const char *const own_kafka_vars[] = {NULL};

struct app {
    struct gw_gateway *gw;
    uv_signal_t sigterm, sigint, sighup;
    int exit_code;
};

static void on_stopped(void *data) {
    struct app *app = data;
    app->gw = NULL;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
    struct app *app = h->data;
    if (signum == SIGHUP) {
        SL_INFO("SIGHUP: reloading the keys file and the web ACL");
        if (app->gw)
            gw_gateway_reload(app->gw);
        return;
    }
    SL_INFO("%s: shutting down gracefully", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (app->gw)
        gw_gateway_stop(app->gw, on_stopped, app);
}

static void usage(FILE *out) {
    sl_config_print_help(gw_settings_table, gw_settings_count, "sluice-gateway",
                         "The authenticated HTTP front door to Kafka: API keys, usage plans, "
                         "WAF, CORS; publishes each request and answers with its reply.\n"
                         "Options: --help, --print-config [--json]. Signals: SIGTERM/SIGINT "
                         "drain and stop, SIGHUP reloads the keys file and the web ACL.",
                         out);
}

int main(int argc, char **argv) {
    int print = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--print-config")) {
            print = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "sluice-gateway: unknown argument %s (try --help)\n", argv[i]);
            return 2;
        }
    }

    struct gw_settings settings;
    struct sl_buf errors;
    sl_buf_init(&errors, 1 << 16);
    if (gw_settings_load(&settings, environ, &errors) < 0) {
        fprintf(stderr, "sluice-gateway: invalid configuration:\n%s",
                errors.data ? errors.data : "");
        sl_buf_free(&errors);
        return 2;
    }
    char **kafka_props = NULL;
    if (sl_config_kafka_props(environ, own_kafka_vars, &kafka_props) < 0) {
        fprintf(stderr, "sluice-gateway: out of memory\n");
        return 1;
    }
    if (print) {
        int prc = sl_config_print_all(gw_settings_table, gw_settings_count, &settings, kafka_props,
                                      json, stdout);
        gw_settings_free(&settings);
        sl_config_props_free(kafka_props);
        sl_buf_free(&errors);
        return prc < 0 ? 1 : 0;
    }
    sl_log_init("gateway", (enum sl_log_level)settings.log_level);

    char hostname[256];
    sl_config_hostname(hostname, sizeof hostname, "gateway");

    uv_loop_t *loop = uv_default_loop();
    struct app app = {.exit_code = 0};
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(loop, &app.sigterm);
    uv_signal_init(loop, &app.sigint);
    uv_signal_init(loop, &app.sighup);
    app.sigterm.data = app.sigint.data = app.sighup.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sighup, on_signal, SIGHUP);

    int rc = gw_gateway_new(loop, &settings, (const char *const *)kafka_props, hostname, &app.gw,
                            &errors);
    if (rc == 0)
        rc = gw_gateway_start(app.gw, &errors);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot start: %s", errors.data ? errors.data : sl_strerror(rc));
        app.exit_code = 1;
        if (app.gw)
            gw_gateway_stop(app.gw, on_stopped, &app);
        else
            on_stopped(&app);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gw_settings_free(&settings);
    sl_config_props_free(kafka_props);
    sl_buf_free(&errors);
    return app.exit_code;
}
