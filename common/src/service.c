/* The start-up path every service shares: arguments, settings, Kafka properties, signals. */
#include "sluice/service.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "sluice/error.h"
#include "sluice/kafka.h"
#include "sluice/log.h"

extern char **environ;

/* The service's own variables are never Kafka properties; none start with SLUICE_KAFKA_. */
static const char *const own_kafka_vars[] = {NULL};

struct app {
    const struct sl_service *svc;
    uv_loop_t *loop;
    void *obj;
    uv_signal_t sigterm, sigint, sighup;
    int exit_code;
    bool starting;   /* create and start are running: `stop` must wait for them */
    bool stop_asked; /* SIGTERM/SIGINT came while starting */
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

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif
#ifndef SLUICE_COMMIT
#define SLUICE_COMMIT "unknown"
#endif

void sl_service_print_version(const char *program, FILE *out) {
    fprintf(out, "%s %s (commit %s)\nlibrdkafka %s\nlibuv %s\n", program, SLUICE_VERSION,
            SLUICE_COMMIT, rd_kafka_version_str(), uv_version_string());
}

/* Edit distance between two names, for "did you mean" hints; names are short. */
static size_t levenshtein(const char *a, const char *b) {
    size_t lb = strlen(b), row[128];
    if (lb >= sizeof row / sizeof row[0])
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * Warns about a SLUICE_* variable the service does not know when a known one is close to it
 * (a typo such as SLUICE_LISTNE). Names far from every setting stay quiet: one environment
 * file often serves several Sluice programs, each ignoring the others' settings.
 */
static void warn_unknown_vars(const struct sl_service *svc) {
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (len >= 128 || strncmp(*e, "SLUICE_", 7) != 0 || strncmp(*e, "SLUICE_KAFKA_", 13) == 0)
            continue;
        char name[128];
        memcpy(name, *e, len);
        name[len] = '\0';
        const char *closest = NULL;
        size_t best = (size_t)-1;
        for (size_t i = 0; i < svc->table_len; i++) {
            size_t d = levenshtein(name, svc->table[i].env);
            if (d < best) {
                best = d;
                closest = svc->table[i].env;
            }
        }
        if (closest && best > 0 && best <= 3)
            fprintf(stderr,
                    "sluice-%s: warning: %s is not a setting of sluice-%s; did you mean %s?\n",
                    svc->name, name, svc->name, closest);
    }
}

/* The value of a property in the NULL-terminated name, value list, or NULL. */
static const char *prop(char *const *props, const char *name) {
    for (size_t i = 0; props && props[i] && props[i + 1]; i += 2)
        if (strcmp(props[i], name) == 0)
            return props[i + 1];
    return NULL;
}

/*
 * A start-up failure for a person at a terminal: plain lines, one problem per line, where the
 * log would hold one JSON message with the problems joined by escaped newlines.
 */
static size_t trimmed_len(const char *s) {
    size_t len = strlen(s);
    while (len && s[len - 1] == '\n')
        len--;
    return len;
}

static void print_plain(const char *name, const char *why, const char *brokers) {
    size_t len = trimmed_len(why);
    if (!memchr(why, '\n', len)) {
        fprintf(stderr, "sluice-%s: cannot start: %.*s", name, (int)len, why);
    } else {
        fprintf(stderr, "sluice-%s: cannot start:", name);
        for (const char *p = why, *end = why + len; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            fprintf(stderr, "\n  %.*s", (int)n, p);
            p += n + 1;
        }
    }
    if (brokers)
        fprintf(stderr, " (brokers tried: %s, from SLUICE_KAFKA_BOOTSTRAP_SERVERS)", brokers);
    fputc('\n', stderr);
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
    if (app->starting) {
        /* The start is waiting for Kafka (it runs the loop between slices of the wait): it
         * ends that wait, and run() stops the half-started service once start returns. */
        SL_INFO("%s while starting: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
        app->stop_asked = true;
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
    sl_config_print_help(svc->table, svc->table_len, program,
                         "[--help] [--version] [--check] [--print-config [--json]]", svc->summary,
                         out);
}

/* Prints each line of `problems` (or the code's meaning when it has none) as its own line. */
static void print_problems(const struct sl_service *svc, const char *problems, int rc) {
    const char *p = problems && *problems ? problems : sl_strerror(rc);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n)
            fprintf(stderr, "sluice-%s: %.*s\n", svc->name, (int)n, p);
        p += n + (nl != NULL);
    }
}

static void check_stopped(void *data) {
    (void)data;
}

/*
 * --check and --print-config: builds the service as the real start does, with `check` set, so
 * the same functions load and validate every file and setting, and stops it at once. Nothing
 * connects to Kafka, Redis or S3. Returns 0 or the code of the first problem, with every
 * problem in `errors`.
 */
static int check_load(const struct sl_service *svc, void *ctx, const void *settings,
                      char *const *kafka_props, bool need_brokers, struct sl_buf *errors) {
    uv_loop_t *loop = uv_default_loop();
    void *obj = NULL;
    int krc = sl_kafka_props_check((const char *const *)kafka_props, errors);
    int rc = svc->create(ctx, loop, settings, (const char *const *)kafka_props, true, &obj, errors);
    if (rc == 0 && krc < 0)
        rc = krc;
    if (obj)
        svc->stop(obj, check_stopped, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    if (need_brokers && !prop(kafka_props, "bootstrap.servers")) {
        sl_buf_printf(errors, "SLUICE_KAFKA_BOOTSTRAP_SERVERS: not set: name the Kafka brokers, "
                              "e.g. SLUICE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092\n");
        rc = rc < 0 ? rc : SL_ERR_CONFIG;
    }
    return rc;
}

/* The Kafka wait hook while starting: one turn of the loop, so that the admin listener answers
 * /healthz and a SIGTERM is seen; non-zero ends the wait. */
static int startup_wait(void *data) {
    struct app *app = data;
    uv_run(app->loop, UV_RUN_NOWAIT);
    return app->stop_asked;
}

/* Starts the service and runs the loop until it has stopped; returns the exit code. */
static int run(const struct sl_service *svc, void *ctx, const void *settings,
               const char *const *kafka_props, struct sl_buf *errors) {
    uv_loop_t *loop = uv_default_loop();
    struct app app = {.svc = svc, .loop = loop, .exit_code = 0};
    signal(SIGPIPE, SIG_IGN);
    uv_signal_t *sigs[] = {&app.sigterm, &app.sigint, &app.sighup};
    const int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = &app;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    app.starting = true;
    sl_kafka_set_wait_hook(startup_wait, &app);
    int rc = svc->create(ctx, loop, settings, kafka_props, false, &app.obj, errors);
    if (rc == 0)
        rc = svc->start(app.obj, errors);
    sl_kafka_set_wait_hook(NULL, NULL);
    app.starting = false;
    if (app.stop_asked) {
        /* Asked to stop while starting: a stop, not a failure, whatever the start came to. */
        if (app.obj)
            svc->stop(app.obj, on_stopped, &app);
        else
            on_stopped(&app);
    } else if (rc < 0) {
        const char *why = errors->data ? errors->data : sl_strerror(rc);
        /* A Kafka failure names the brokers it tried: the setting is the usual culprit. */
        const char *brokers =
            strstr(why, "kafka") ? prop((char *const *)kafka_props, "bootstrap.servers") : NULL;
        if (isatty(STDERR_FILENO))
            print_plain(svc->name, why, brokers);
        else
            sl_log(SL_LOG_ERROR, NULL, "cannot start: %.*s%s%s%s", (int)trimmed_len(why), why,
                   brokers ? " (brokers tried: " : "", brokers ? brokers : "",
                   brokers ? ", from SLUICE_KAFKA_BOOTSTRAP_SERVERS)" : "");
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
    int print = 0, json = 0, check = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(svc, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            char program[64];
            snprintf(program, sizeof program, "sluice-%s", svc->name);
            sl_service_print_version(program, stdout);
            if (svc->version)
                svc->version(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--print-config")) {
            print = 1;
        } else if (!strcmp(argv[i], "--check")) {
            check = 1;
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
        if (check) {
            print_problems(svc, errors.data, SL_ERR_CONFIG);
            code = 1;
        } else {
            fprintf(stderr, "sluice-%s: invalid configuration:\n%s", svc->name,
                    errors.data ? errors.data : "");
            code = 2;
        }
    } else if (svc->divert && (code = svc->divert(ctx, settings)) >= 0) {
        /* Not the service: the diverted process has run. */
    } else if (sl_config_kafka_props(environ, own_kafka_vars, &kafka_props) < 0) {
        fprintf(stderr, "sluice-%s: out of memory\n", svc->name);
        code = 1;
    } else if (warn_unknown_vars(svc), check || print) { /* after divert: no double warning */
        enum sl_log_level level = log_level(svc, settings);
        sl_log_init(svc->name, level > SL_LOG_WARN ? level : SL_LOG_WARN);
        /* --print-config shows a configuration still being written: brokers may come later. */
        int rc = check_load(svc, ctx, settings, kafka_props, check, &errors);
        if (rc < 0) {
            print_problems(svc, errors.data, rc);
            code = 1;
        } else if (check) {
            printf("sluice-%s: configuration ok: settings, SLUICE_KAFKA_* properties%s%s\n",
                   svc->name, svc->checks ? ", " : "", svc->checks ? svc->checks : "");
            code = 0;
        } else {
            code = sl_config_print_all(svc->table, svc->table_len, settings, kafka_props, json,
                                       stdout) < 0
                       ? 1
                       : 0;
        }
    } else if (!prop(kafka_props, "bootstrap.servers")) {
        fprintf(stderr,
                "sluice-%s: SLUICE_KAFKA_BOOTSTRAP_SERVERS is not set: name the Kafka brokers, "
                "e.g. SLUICE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092\n",
                svc->name);
        code = 2;
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
