/*
 * sluicectl config print SERVICE: what the service would run with, from this environment. The
 * service's own binary is the authority on its settings (names, defaults, validation, which
 * values are secrets), so this runs `sluice-<service> --print-config [--json]` and passes its
 * output and exit code through. The binary is looked for beside sluicectl (one directory in the
 * image), then in the build tree's layout, then on PATH.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

static const char *const services[] = {"gateway", "worker", "archiver"};

/* The path of sluice-<service> to run, into out; 0, or -ENOENT. */
static int find_binary(const char *service, char *out, size_t len) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        snprintf(out, len, "%s/sluice-%s", dir, service);
        if (access(out, X_OK) == 0)
            return 0;
        snprintf(out, len, "%s/../../services/%s/sluice-%s", dir, service, service);
        if (access(out, X_OK) == 0)
            return 0;
    }
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (char *save = NULL, *d = copy ? strtok_r(copy, ":", &save) : NULL; d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/sluice-%s", *d ? d : ".", service);
        if (access(out, X_OK) == 0) {
            free(copy);
            return 0;
        }
    }
    free(copy);
    return -ENOENT;
}

static int cmd_print(const struct ctl_args *a, const struct ctl_env *env) {
    (void)env;
    const char *service = a->pos[0];
    bool known = false;
    for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
        known = known || !strcmp(service, services[i]);
    if (!known)
        return ctl_usage_error("config", "print",
                               "'%s' is not a service: gateway, worker or archiver", service);
    char bin[PATH_MAX + 64];
    if (find_binary(service, bin, sizeof bin) < 0)
        return ctl_op_error("config", "print",
                            "sluice-%s not found beside sluicectl or on PATH: install it, or run "
                            "'sluice-%s --print-config' where it is",
                            service, service);
    fflush(stdout);
    char *argv[] = {bin, "--print-config", ctl_flag(a, "--json") ? "--json" : NULL, NULL};
    execv(bin, argv);
    return ctl_op_error("config", "print", "cannot run %s: %s", bin, strerror(errno));
}

static const struct ctl_opt print_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object instead of the text"},
};

static const struct ctl_cmd cmds[] = {
    {.name = "print",
     .positionals = "SERVICE",
     .min_pos = 1,
     .max_pos = 1,
     .summary = "a service's effective configuration from the environment, secrets redacted",
     .description =
         "Prints what SERVICE (gateway, worker or archiver) would run with in this environment:\n"
         "every setting with its value or default, and the SLUICE_KAFKA_* properties, secrets\n"
         "redacted. It runs the service's own `sluice-<service> --print-config`, which validates\n"
         "the values as the start does; the exit code is the service's (1: a value is refused).",
     .opts = print_opts,
     .nopts = sizeof print_opts / sizeof print_opts[0],
     .run = cmd_print},
};

static const struct ctl_group_def group = {
    .name = "config",
    .description = "The services' configuration as they would read it from this environment.",
    .cmds = cmds,
    .ncmds = sizeof cmds / sizeof cmds[0],
};

int ctl_config_main(int argc, char **argv, const struct ctl_env *env) {
    return ctl_group_run(&group, argc, argv, env);
}
