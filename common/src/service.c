/* The start-up path every service shares: arguments, settings, Kafka properties, signals. */
#include "sluice/service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/error.h"
#include "sluice/log.h"

extern char **environ;

/* The service's own variables are never Kafka properties; none start with SLUICE_KAFKA_. */
static const char *const own_kafka_vars[] = {NULL};

struct app {
    const struct sl_service *svc;
    void *obj;
    uv_signal_t sigterm, sigint, sighup;
    int exit_code;
};

int sl_service_open_stdio(void) {
    int opened = 0;
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0)
            return -errno;
        /* open returns the lowest free descriptor, which is fd itself. */
        if (nfd != fd) {
            close(nfd);
            return -EBADF;
        }
        opened |= 1 << fd;
    }
    return opened;
}

static void on_stopped(void *data) {
    struct app *app = data;
    app->obj = NULL;
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
    struct app *app = h->data;
    if (signum == SIGHUP) {
        if (!app->svc->reload) {
            SL_INFO("SIGHUP: %s has nothing to reload", app->svc->name);
            return;
        }
        if (app->obj)
            app->svc->reload(app->obj);
        return;
    }
    SL_INFO("%s: shutting down gracefully", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (app->obj)
        app->svc->stop(app->obj, on_stopped, app);
}

/* The level of the table's SLUICE_LOG_LEVEL row (SL_CONFIG_OPT_LOG_LEVEL), info without one. */
static enum sl_log_level log_level(const struct sl_service *svc, const void *settings) {
    for (size_t i = 0; i < svc->table_len; i++) {
        if (strcmp(svc->table[i].env, "SLUICE_LOG_LEVEL") == 0) {
            int v;
            memcpy(&v, (const char *)settings + svc->table[i].offset, sizeof v);
            return (enum sl_log_level)v;
        }
    }
    return SL_LOG_INFO;
}

static void usage(const struct sl_service *svc, FILE *out) {
    char program[64];
    snprintf(program, sizeof program, "sluice-%s", svc->name);
    sl_config_print_help(svc->table, svc->table_len, program, svc->summary, out);
}

/* Starts the service and runs the loop until it has stopped; returns the exit code. */
static int run(const struct sl_service *svc, void *ctx, const void *settings,
               const char *const *kafka_props, struct sl_buf *errors) {
    uv_loop_t *loop = uv_default_loop();
    struct app app = {.svc = svc, .exit_code = 0};
    signal(SIGPIPE, SIG_IGN);
    uv_signal_t *sigs[] = {&app.sigterm, &app.sigint, &app.sighup};
    const int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = &app;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    int rc = svc->create(ctx, loop, settings, kafka_props, &app.obj, errors);
    if (rc == 0)
        rc = svc->start(app.obj, errors);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, NULL, "cannot start: %s",
               errors->data ? errors->data : sl_strerror(rc));
        app.exit_code = 1;
        if (app.obj)
            svc->stop(app.obj, on_stopped, &app);
        else
            on_stopped(&app);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return app.exit_code;
}

int sl_service_main(const struct sl_service *svc, void *ctx, int argc, char **argv) {
    int print = 0, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(svc, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--print-config")) {
            print = 1;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!svc->arg || !svc->arg(ctx, argv[i])) {
            fprintf(stderr, "sluice-%s: unknown argument %s (try --help)\n", svc->name, argv[i]);
            return 2;
        }
    }

    void *settings = calloc(1, svc->settings_size);
    if (!settings) {
        fprintf(stderr, "sluice-%s: out of memory\n", svc->name);
        return 1;
    }
    struct sl_buf errors;
    sl_buf_init(&errors, 1 << 16);
    char **kafka_props = NULL;
    int code;
    if (sl_config_load(svc->table, svc->table_len, settings, environ, &errors) < 0) {
        fprintf(stderr, "sluice-%s: invalid configuration:\n%s", svc->name,
                errors.data ? errors.data : "");
        code = 2;
    } else if (svc->divert && (code = svc->divert(ctx, settings)) >= 0) {
        /* Not the service: the diverted process has run. */
    } else if (sl_config_kafka_props(environ, own_kafka_vars, &kafka_props) < 0) {
        fprintf(stderr, "sluice-%s: out of memory\n", svc->name);
        code = 1;
    } else if (print) {
        code =
            sl_config_print_all(svc->table, svc->table_len, settings, kafka_props, json, stdout) < 0
                ? 1
                : 0;
    } else {
        sl_log_init(svc->name, log_level(svc, settings));
        code = run(svc, ctx, settings, (const char *const *)kafka_props, &errors);
    }
    sl_config_free(svc->table, svc->table_len, settings);
    free(settings);
    sl_config_props_free(kafka_props);
    sl_buf_free(&errors);
    return code;
}
