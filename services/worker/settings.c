/* The worker's settings table: names, types, defaults, bounds and descriptions in one place. */
#include "settings.h"

#include <unistd.h>

#include "sluice/otlp.h"

#define OPT(field) offsetof(struct wk_settings, field)

const struct sl_config_option wk_settings_table[] = {
    SL_CONFIG_OPT_ADMIN_LISTEN_PORT(struct wk_settings, admin_listen, "9091"),
    SL_CONFIG_OPT_TOPIC_PREFIX(struct wk_settings, topic_prefix),
    SL_CONFIG_OPT_ROUTES_FILE(struct wk_settings, routes_file,
                              "Routes (JSON); unset: ANY /{proxy+} -> echo."),
    {.name = "group_id",
     .env = "SLUICE_WORKER_GROUP",
     .type = SL_CONFIG_STRING,
     .offset = OPT(group_id),
     .def = "sluice-worker",
     .description = "Consumer group on the requests topic."},
    {.name = "instance_id",
     .env = "SLUICE_WORKER_INSTANCE_ID",
     .type = SL_CONFIG_STRING,
     .offset = OPT(instance_id),
     .description = "Static group membership id (group.instance.id); unset: the host name. "
                    "Must be unique per worker process."},
    {.name = "concurrency",
     .env = "SLUICE_WORKER_CONCURRENCY",
     .type = SL_CONFIG_INT64,
     .offset = OPT(concurrency),
     .def = "0",
     .min = 0,
     .max = 1024,
     .description = "Handler child processes (0: 2 x online CPUs)."},
    {.name = "max_attempts",
     .env = "SLUICE_MAX_ATTEMPTS",
     .type = SL_CONFIG_INT64,
     .offset = OPT(max_attempts),
     .def = "3",
     .min = 1,
     .max = 100,
     .description = "Attempts of a failing request before the DLQ."},
    {.name = "retry_backoff",
     .env = "SLUICE_RETRY_BACKOFF_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(retry_backoff_ms),
     .def = "100",
     .min = 0,
     .max = 60000,
     .description = "Pause before the first retry; doubled for each later one (capped at 2 s)."},
    {.name = "handler_timeout",
     .env = "SLUICE_HANDLER_TIMEOUT_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(handler_timeout_ms),
     .def = "30000",
     .min = 10,
     .max = 900000,
     .description = "Per-attempt handler timeout (a route's timeout_ms overrides it); never "
                    "past the request's deadline."},
    {.name = "child_memory",
     .env = "SLUICE_CHILD_MEMORY_MB",
     .type = SL_CONFIG_INT64,
     .offset = OPT(child_memory_mb),
     .def = "512",
     .min = 16,
     .max = 1048576,
     .description = "Memory limit of each handler child in MiB (address space and resident "
                    "set)."},
    {.name = "handler_user",
     .env = "SLUICE_HANDLER_USER",
     .type = SL_CONFIG_STRING,
     .offset = OPT(handler_user),
     .def = "nobody",
     .description = "When the worker runs as root, the user (name or number) its handler "
                    "processes switch to once their routes and plugins are loaded, before any "
                    "request; ignored when the worker is not root."},
    {.name = "max_queued",
     .env = "SLUICE_WORKER_MAX_QUEUED",
     .type = SL_CONFIG_INT64,
     .offset = OPT(max_queued),
     .def = "1000",
     .min = 1,
     .max = 1000000,
     .description = "Requests read but not finished; above it fetching pauses."},
    {.name = "shutdown_grace",
     .env = "SLUICE_SHUTDOWN_GRACE_MS",
     .type = SL_CONFIG_DURATION,
     .offset = OPT(shutdown_grace_ms),
     .def = "10000",
     .min = 0,
     .max = 600000,
     .description = "On SIGTERM, how long in-flight requests may take to finish."},
    SL_CONFIG_OPT_MAX_BODY(struct wk_settings, max_body_bytes,
                           "Largest request or reply body accepted in an envelope."),
    SL_CONFIG_OPT_AUTO_CREATE_TOPICS(struct wk_settings, auto_create_topics),
    SL_CONFIG_OPT_LOG_LEVEL(struct wk_settings, log_level),
    SL_OTLP_ENDPOINT_OPTION(struct wk_settings, otlp_endpoint),
};

const size_t wk_settings_count = sizeof wk_settings_table / sizeof wk_settings_table[0];

int wk_settings_concurrency(const struct wk_settings *s) {
    if (s->concurrency > 0)
        return (int)s->concurrency;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(2 * n) : 2;
}
