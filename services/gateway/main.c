/* sluice-gateway: the gateway's hooks for the shared service start-up (sluice/service.h). */
#include "gateway.h"
#include "settings.h"
#include "sluice/log.h"
#include "sluice/service.h"

static int create(void *ctx, uv_loop_t *loop, const void *settings, const char *const *kafka_props,
                  bool check, void **obj, struct sl_buf *err) {
    (void)ctx;
    char hostname[256];
    sl_config_hostname(hostname, sizeof hostname, "gateway");
    return gw_gateway_new(loop, settings, kafka_props, hostname, check, (struct gw_gateway **)obj,
                          err);
}

static int start(void *obj, struct sl_buf *err) {
    return gw_gateway_start(obj, err);
}

static void reload(void *obj) {
    SL_INFO("SIGHUP: reloading the keys file and the web ACL");
    gw_gateway_reload(obj);
}

static void stop(void *obj, void (*cb)(void *data), void *data) {
    gw_gateway_stop(obj, cb, data);
}

int main(int argc, char **argv) {
    sl_service_open_stdio();
    const struct sl_service gateway = {
        .name = "gateway",
        .summary = "The authenticated HTTP front door to Kafka: API keys, usage plans, WAF, CORS; "
                   "publishes each request and answers with its reply.\n"
                   "Options: --help, --version, --check (load and validate everything, connect "
                   "nothing, exit 0 or 1), --print-config [--json]. Signals: SIGTERM/SIGINT "
                   "drain and stop, SIGHUP reloads the keys file and the web ACL.",
        .checks = "keys file, routes, CORS origins, trusted proxies, web ACL, usage-plan store URL",
        .table = gw_settings_table,
        .table_len = gw_settings_count,
        .settings_size = sizeof(struct gw_settings),
        .create = create,
        .start = start,
        .reload = reload,
        .stop = stop,
    };
    return sl_service_main(&gateway, NULL, argc, argv);
}
