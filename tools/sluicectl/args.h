/* One command-line grammar for sluicectl commands: a table per command drives parsing and --help.
 */
#ifndef SLUICE_CTL_ARGS_H
#define SLUICE_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl.h"

enum ctl_opt_kind {
    CTL_OPT_FLAG,  /* --json */
    CTL_OPT_VALUE, /* --since T (the last one given wins) */
    CTL_OPT_LIST,  /* --reason R, may repeat; every value is kept */
};

/* One option of a command. */
struct ctl_opt {
    const char *name; /* "--since" */
    enum ctl_opt_kind kind;
    const char *metavar; /* "T"; NULL for flags */
    const char *help;    /* one line */
};

#define CTL_ARGS_MAX_OPTS 24
#define CTL_ARGS_MAX_LIST 16
#define CTL_ARGS_MAX_POS  4

/*
 * What a command line said. Options are looked up by name (ctl_arg, ctl_arg_list, ctl_flag);
 * positionals are in order. Values point into argv.
 */
struct ctl_args {
    const struct ctl_cmd *cmd;
    const char *value[CTL_ARGS_MAX_OPTS];
    const char *list[CTL_ARGS_MAX_OPTS][CTL_ARGS_MAX_LIST];
    size_t nlist[CTL_ARGS_MAX_OPTS];
    const char *pos[CTL_ARGS_MAX_POS];
    int npos;
};

typedef int (*ctl_cmd_fn)(const struct ctl_args *a, const struct ctl_env *env);

/* One command of a group: `sluicectl <group> <name> [positionals] [options]`. */
struct ctl_cmd {
    const char *name;
    const char *positionals; /* synopsis, e.g. "P:O"; NULL when none */
    int min_pos, max_pos;
    const char *summary;     /* one line, for the group's help */
    const char *description; /* paragraphs for the command's help */
    const struct ctl_opt *opts;
    size_t nopts;
    ctl_cmd_fn run;
};

/* A group of commands: `sluicectl <name> <command>`. */
struct ctl_group_def {
    const char *name;
    const char *description;
    const struct ctl_cmd *cmds;
    size_t ncmds;
    bool show_globals; /* list the global options in each command's help (the group uses them) */
};

/*
 * The global options (--keys-file PATH): accepted before the group and anywhere after it, in
 * either form, up to a `--`. Listed by `sluicectl --help`.
 */
extern const struct ctl_opt ctl_global_opts[];
extern const size_t ctl_nglobal_opts;

/*
 * If argv[i] is a global option, stores its value in *env and returns how many arguments it
 * took (1 or 2). Returns 0 when argv[i] is not one, and -1 after printing a usage error that
 * names group and cmd (either may be NULL).
 */
int ctl_global_opt(int argc, char **argv, int i, struct ctl_env *env, const char *group,
                   const char *cmd);

/*
 * Runs the command argv[1] of the group (argv[0] is the group's name; global options may come
 * before the command): `--help`/`help` print the group's help (exit 0), a missing or unknown
 * command is a usage error, otherwise the command's options are parsed (options, global options
 * and positionals in any order, `--opt=value` and `--opt value`, `--` ends options) and its
 * function runs with the global options applied to a copy of *env. A usage error prints one line
 * naming the problem and a hint, writes nothing to stdout and returns 2.
 */
int ctl_group_run(const struct ctl_group_def *g, int argc, char **argv, const struct ctl_env *env);

/* The value of a VALUE option (NULL when absent), a FLAG's presence, a LIST's values. */
const char *ctl_arg(const struct ctl_args *a, const char *name);
bool ctl_flag(const struct ctl_args *a, const char *name);
size_t ctl_arg_list(const struct ctl_args *a, const char *name, const char *const **values);

/* "sluicectl <group> <cmd>: <message>" and the --help hint on stderr; returns CTL_EXIT_USAGE.
 * group and cmd may be NULL: "sluicectl: <message>". */
int ctl_usage_error(const char *group, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "sluicectl <group> <cmd>: <message>" on stderr; returns CTL_EXIT_ERROR. */
int ctl_op_error(const char *group, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "30d", "15m": a positive count with s, m, h, d or w, in milliseconds. 0, -EINVAL or -ERANGE. */
int ctl_parse_duration(const char *s, int64_t *out_ms);
/* A point in time: RFC 3339 UTC ("2026-12-01T08:00:00Z") or relative to now_ms ("-15m", "-2h",
 * "-7d"). 0 or -EINVAL / -ERANGE. */
int ctl_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* Prints a command's help, generated from its table. */
void ctl_cmd_help(FILE *out, const char *group, const struct ctl_cmd *cmd);

#endif
