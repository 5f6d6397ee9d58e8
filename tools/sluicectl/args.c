/* The sluicectl grammar: table-driven option parsing and the --help generated from the tables. */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/time.h"

static int vmessage(int code, const char *group, const char *cmd, const char *fmt, va_list ap) {
    fprintf(stderr, "sluicectl %s%s%s: ", group, cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (code == CTL_EXIT_USAGE)
        fprintf(stderr, "Run 'sluicectl %s%s%s --help' for usage.\n", group, cmd ? " " : "",
                cmd ? cmd : "");
    return code;
}

int ctl_usage_error(const char *group, const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vmessage(CTL_EXIT_USAGE, group, cmd, fmt, ap);
    va_end(ap);
    return rc;
}

int ctl_op_error(const char *group, const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = vmessage(CTL_EXIT_ERROR, group, cmd, fmt, ap);
    va_end(ap);
    return rc;
}

static int find_opt(const struct ctl_cmd *cmd, const char *name, size_t len) {
    for (size_t i = 0; i < cmd->nopts; i++)
        if (strlen(cmd->opts[i].name) == len && !strncmp(cmd->opts[i].name, name, len))
            return (int)i;
    return -1;
}

const char *ctl_arg(const struct ctl_args *a, const char *name) {
    int i = find_opt(a->cmd, name, strlen(name));
    return i < 0 ? NULL : a->value[i];
}

bool ctl_flag(const struct ctl_args *a, const char *name) {
    return ctl_arg(a, name) != NULL;
}

size_t ctl_arg_list(const struct ctl_args *a, const char *name, const char *const **values) {
    int i = find_opt(a->cmd, name, strlen(name));
    if (i < 0) {
        *values = NULL;
        return 0;
    }
    *values = a->list[i];
    return a->nlist[i];
}

void ctl_cmd_help(FILE *out, const char *group, const struct ctl_cmd *cmd) {
    fprintf(out, "Usage: sluicectl %s %s%s%s%s\n\n%s\n", group, cmd->name,
            cmd->positionals ? " " : "", cmd->positionals ? cmd->positionals : "",
            cmd->nopts ? " [options]" : "", cmd->description);
    if (!cmd->nopts)
        return;
    fputs("\nOptions:\n", out);
    for (size_t i = 0; i < cmd->nopts; i++) {
        const struct ctl_opt *o = &cmd->opts[i];
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-24s %s%s\n", left, o->help,
                o->kind == CTL_OPT_LIST ? " (may be repeated)" : "");
    }
    fputs("  --help                   this help\n", out);
}

static void group_help(FILE *out, const struct ctl_group_def *g) {
    fprintf(out, "Usage: sluicectl %s <command> [options]\n\n%s\n\nCommands:\n", g->name,
            g->description);
    for (size_t i = 0; i < g->ncmds; i++)
        fprintf(out, "  %-10s %s\n", g->cmds[i].name, g->cmds[i].summary);
    fprintf(out, "\nRun 'sluicectl %s <command> --help' for the options of a command.\n", g->name);
}

/* Parses argv (after the command's name) into *a; 1 when --help was asked, 2 on an error. */
static int parse(const char *group, const struct ctl_cmd *cmd, int argc, char **argv,
                 struct ctl_args *a) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->npos >= cmd->max_pos || a->npos >= CTL_ARGS_MAX_POS)
                return ctl_usage_error(group, cmd->name, "unexpected argument '%s'", arg);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            options_done = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return 1;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int k = find_opt(cmd, arg, len);
        if (k < 0)
            return ctl_usage_error(group, cmd->name, "unknown option '%.*s'", (int)len, arg);
        const struct ctl_opt *o = &cmd->opts[k];
        const char *value;
        if (o->kind == CTL_OPT_FLAG) {
            if (eq)
                return ctl_usage_error(group, cmd->name, "%s takes no value", o->name);
            value = "";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return ctl_usage_error(group, cmd->name, "%s needs a value (%s)", o->name, o->metavar);
        }
        if (o->kind != CTL_OPT_FLAG && !*value)
            return ctl_usage_error(group, cmd->name, "%s needs a non-empty value", o->name);
        a->value[k] = value;
        if (o->kind == CTL_OPT_LIST) {
            if (a->nlist[k] >= CTL_ARGS_MAX_LIST)
                return ctl_usage_error(group, cmd->name, "%s given more than %d times", o->name,
                                       CTL_ARGS_MAX_LIST);
            a->list[k][a->nlist[k]++] = value;
        }
    }
    if (a->npos < cmd->min_pos)
        return ctl_usage_error(group, cmd->name, "missing %s", cmd->positionals);
    return 0;
}

int ctl_group_run(const struct ctl_group_def *g, int argc, char **argv, const struct ctl_env *env) {
    if (argc < 2) {
        group_help(stderr, g);
        return CTL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        group_help(stdout, g);
        return CTL_EXIT_OK;
    }
    for (size_t i = 0; i < g->ncmds; i++) {
        const struct ctl_cmd *cmd = &g->cmds[i];
        if (strcmp(argv[1], cmd->name))
            continue;
        struct ctl_args a;
        int rc = parse(g->name, cmd, argc - 2, argv + 2, &a);
        if (rc == 1) {
            ctl_cmd_help(stdout, g->name, cmd);
            return CTL_EXIT_OK;
        }
        if (rc)
            return rc;
        return cmd->run(&a, env);
    }
    return ctl_usage_error(g->name, NULL, "unknown command '%s'", argv[1]);
}

int ctl_parse_duration(const char *s, int64_t *out_ms) {
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0' || s[0] == '+')
        return -EINVAL;
    int64_t unit;
    switch (end[0]) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = 86400 * 1000;
        break;
    case 'w':
        unit = 7LL * 86400 * 1000;
        break;
    default:
        return -EINVAL;
    }
    if (n > 100LL * 365 * 86400 * 1000 / unit) /* a century is plenty */
        return -ERANGE;
    *out_ms = n * unit;
    return 0;
}

int ctl_parse_time(const char *s, int64_t now_ms, int64_t *out_ms) {
    if (s[0] == '-') {
        int64_t d;
        int rc = ctl_parse_duration(s + 1, &d);
        if (rc < 0)
            return rc;
        *out_ms = now_ms - d;
        return 0;
    }
    return sl_time_parse_iso8601(s, out_ms) < 0 ? -EINVAL : 0;
}
