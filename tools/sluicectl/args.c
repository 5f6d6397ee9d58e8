/* The sluicectl grammar: table-driven option parsing and the --help generated from the tables. */
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/time.h"

/* "sluicectl", "sluicectl <group>" or "sluicectl <group> <cmd>": who speaks, and whose help. */
static void who(char *buf, size_t len, const char *group, const char *cmd) {
    snprintf(buf, len, "sluicectl%s%s%s%s", group ? " " : "", group ? group : "",
             group && cmd ? " " : "", group && cmd ? cmd : "");
}

static int vmessage(int code, const char *group, const char *cmd, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vmessage(int code, const char *group, const char *cmd, const char *fmt, va_list ap) {
    char w[128];
    who(w, sizeof w, group, cmd);
    fprintf(stderr, "%s: ", w);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    if (code == CTL_EXIT_USAGE)
        fprintf(stderr, "Run '%s --help' for usage.\n", w);
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

const struct ctl_opt ctl_global_opts[] = {
    {"--keys-file", CTL_OPT_VALUE, "PATH",
     "the keys file 'keys' commands edit (default: $SLUICE_KEYS_FILE)"},
};
const size_t ctl_nglobal_opts = sizeof ctl_global_opts / sizeof ctl_global_opts[0];

static void print_opts(FILE *out, const struct ctl_opt *opts, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const struct ctl_opt *o = &opts[i];
        char left[48];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-24s %s%s\n", left, o->help,
                o->kind == CTL_OPT_LIST ? " (may be repeated)" : "");
    }
}

static void print_globals(FILE *out, bool show) {
    if (!show)
        return;
    fputs("\nGlobal options (anywhere on the line):\n", out);
    print_opts(out, ctl_global_opts, ctl_nglobal_opts);
}

static void cmd_help(FILE *out, const struct ctl_group_def *g, const struct ctl_cmd *cmd) {
    ctl_cmd_help(out, g->name, cmd);
    print_globals(out, g->show_globals);
}

void ctl_cmd_help(FILE *out, const char *group, const struct ctl_cmd *cmd) {
    fprintf(out, "Usage: sluicectl %s %s%s%s%s\n\n%s\n", group, cmd->name,
            cmd->positionals ? " " : "", cmd->positionals ? cmd->positionals : "",
            cmd->nopts ? " [options]" : "", cmd->description);
    fputs("\nOptions:\n", out);
    print_opts(out, cmd->opts, cmd->nopts);
    fputs("  --help                   this help\n", out);
}

static void group_help(FILE *out, const struct ctl_group_def *g) {
    fprintf(out, "Usage: sluicectl %s <command> [options]\n\n%s\n\nCommands:\n", g->name,
            g->description);
    for (size_t i = 0; i < g->ncmds; i++)
        fprintf(out, "  %-10s %s\n", g->cmds[i].name, g->cmds[i].summary);
    print_globals(out, g->show_globals);
    fprintf(out, "\nRun 'sluicectl %s <command> --help' for the options of a command.\n", g->name);
}

/* The value of option o at argv[*i]: after the '=' (eq), else the next argument (*i moves on). */
static int opt_value(const char *group, const char *cmd, const struct ctl_opt *o, const char *eq,
                     int argc, char **argv, int *i, const char **value) {
    if (o->kind == CTL_OPT_FLAG) {
        if (eq)
            return ctl_usage_error(group, cmd, "%s takes no value", o->name);
        *value = "";
        return 0;
    }
    if (eq)
        *value = eq + 1;
    else if (*i + 1 < argc)
        *value = argv[++*i];
    else
        return ctl_usage_error(group, cmd, "%s needs a value (%s)", o->name, o->metavar);
    if (!**value)
        return ctl_usage_error(group, cmd, "%s needs a non-empty value", o->name);
    return 0;
}

int ctl_global_opt(int argc, char **argv, int i, struct ctl_env *env, const char *group,
                   const char *cmd) {
    const char *arg = argv[i], *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t k = 0; k < ctl_nglobal_opts; k++) {
        const struct ctl_opt *o = &ctl_global_opts[k];
        if (strlen(o->name) != len || strncmp(o->name, arg, len))
            continue;
        const char *value = NULL;
        int j = i;
        if (opt_value(group, cmd, o, eq, argc, argv, &j, &value))
            return -1;
        env->keys_file = value; /* the only global option so far */
        return j - i + 1;
    }
    return 0;
}

/* Parses argv (after the command's name) into *a and the global options into *env; 1 when
 * --help was asked, 2 on an error. */
static int parse(const char *group, const struct ctl_cmd *cmd, int argc, char **argv,
                 struct ctl_args *a, struct ctl_env *env) {
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
        if (k < 0) {
            int n = ctl_global_opt(argc, argv, i, env, group, cmd->name);
            if (n < 0)
                return CTL_EXIT_USAGE;
            if (n == 0)
                return ctl_usage_error(group, cmd->name, "unknown option '%.*s'", (int)len, arg);
            i += n - 1;
            continue;
        }
        const struct ctl_opt *o = &cmd->opts[k];
        const char *value = NULL;
        if (opt_value(group, cmd->name, o, eq, argc, argv, &i, &value))
            return CTL_EXIT_USAGE;
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

/* "create, list, revoke": the group's commands, for messages. */
static void command_list(const struct ctl_group_def *g, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->ncmds && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", g->cmds[i].name);
}

int ctl_group_run(const struct ctl_group_def *g, int argc, char **argv, const struct ctl_env *env) {
    struct ctl_env e = *env;
    char names[256];
    command_list(g, names, sizeof names);
    int i = 1;
    /* Global options may come between the group and the command. */
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "--help") && strcmp(argv[i], "-h")) {
        int n = ctl_global_opt(argc, argv, i, &e, g->name, NULL);
        if (n < 0)
            return CTL_EXIT_USAGE;
        if (n == 0)
            return ctl_usage_error(g->name, NULL, "unknown option '%.*s'",
                                   (int)strcspn(argv[i], "="), argv[i]);
        i += n;
    }
    if (i >= argc)
        return ctl_usage_error(g->name, NULL, "missing a command (%s)", names);
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || !strcmp(argv[i], "help")) {
        group_help(stdout, g);
        return CTL_EXIT_OK;
    }
    for (size_t k = 0; k < g->ncmds; k++) {
        const struct ctl_cmd *cmd = &g->cmds[k];
        if (strcmp(argv[i], cmd->name))
            continue;
        struct ctl_args a;
        int rc = parse(g->name, cmd, argc - i - 1, argv + i + 1, &a, &e);
        if (rc == 1) {
            cmd_help(stdout, g, cmd);
            return CTL_EXIT_OK;
        }
        if (rc)
            return rc;
        return cmd->run(&a, &e);
    }
    return ctl_usage_error(g->name, NULL, "unknown command '%s' (%s)", argv[i], names);
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
