/* Benchmark target: answers every request with a fixed 200 {"ok":true} (bench/http/run). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "sluice/config.h"
#include "sluice/error.h"
#include "sluice/http.h"

/* A slice of a string literal, usable in static initializers (SL_STR is a compound literal). */
#define LIT(s)                                                                                     \
    { (s), sizeof(s) - 1 }

static const char body[] = "{\"ok\":true}";
static const struct sl_http_header headers[] = {{LIT("Content-Type"), LIT("application/json")}};

static void on_request(struct sl_http_request *req, void *data) {
    (void)data;
    sl_http_respond(req, 200, headers, 1, body, sizeof(body) - 1);
}

static void on_closed(void *data) {
    (void)data;
}

/* The process state main builds; signals close everything so the loop ends cleanly. */
struct app {
    struct sl_http_server *server;
    uv_signal_t sigint, sigterm;
};

static void on_signal(uv_signal_t *sig, int signum) {
    (void)signum;
    struct app *app = sig->data;
    sl_http_server_close(app->server, on_closed, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
}

int main(int argc, char **argv) {
    const char *listen = "127.0.0.1:8081";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--listen host:port]\n", argv[0]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct app app;
    struct sl_http_options o = {.on_request = on_request};
    char host[SL_CONFIG_HOST_MAX];
    int port;
    int rc = sl_config_parse_hostport(listen, host, sizeof(host), &port);
    if (rc == 0)
        rc = sl_http_server_init(&app.server, loop, &o);
    if (rc == 0)
        rc = sl_http_server_start(app.server, host, port);
    if (rc < 0) {
        fprintf(stderr, "sl_http_fixed: %s: %s\n", listen,
                rc < -10000 ? sl_strerror(rc) : uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &app.sigint);
    uv_signal_init(loop, &app.sigterm);
    app.sigint.data = &app;
    app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    fprintf(stderr, "sl_http_fixed: listening on %s\n", listen);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
