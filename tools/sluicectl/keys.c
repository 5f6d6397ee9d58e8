/* sluicectl keys: create, list, revoke and rotate API keys in the keys file. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "args.h"
#include "sluice/error.h"
#include "sluice/fileio.h"
#include "sluice/keys.h"
#include "sluice/time.h"

static const char keys_help[] =
    "Usage: sluicectl keys <command> [options]\n"
    "\n"
    "Manage the API keys in the keys file (--keys-file PATH or SLUICE_KEYS_FILE). The file\n"
    "holds SHA-256 hashes only; a key value is printed once, when it is created or rotated.\n"
    "\n"
    "Commands:\n"
    "  create   create a key and print it once\n"
    "  list     list keys and their status (never the key values)\n"
    "  revoke   revoke a key (sets revoked, disables it)\n"
    "  rotate   give a key a new value (same id, name and plan) and print it once\n"
    "  plans    list the usage plans keys can use, the built-in \"default\" included\n"
    "\n"
    "Run 'sluicectl keys <command> --help' for the options of a command.\n";

static const char create_help[] =
    "Usage: sluicectl keys create --name NAME [--plan PLAN] [--expires TIME | --expires-in N]\n"
    "                             [--json] [--keys-file PATH]\n"
    "\n"
    "Creates a key and prints its id and value. The value is shown only this once.\n"
    "The keys file is created (mode 0600) when it does not exist.\n"
    "\n"
    "  --name NAME        a label for humans (required)\n"
    "  --plan PLAN        usage plan (default: \"default\"); must exist in the file\n"
    "  --expires TIME     expiry as RFC 3339 UTC, e.g. 2027-01-01T00:00:00Z\n"
    "  --expires-in N     expiry relative to now: a number with s, m, h, d or w (e.g. 30d)\n"
    "  --json             print exactly {\"id\": \"...\", \"key\": \"...\"}\n"
    "  --keys-file PATH   the keys file (default: $SLUICE_KEYS_FILE)\n";

static const char list_help[] =
    "Usage: sluicectl keys list [--json] [--keys-file PATH]\n"
    "\n"
    "Lists the keys with their status now (ok, disabled, expired, revoked). With --json, one\n"
    "object per line: id, name, plan, enabled, created, expires, revoked, status.\n";

static const char revoke_help[] =
    "Usage: sluicectl keys revoke ID [--keys-file PATH]\n"
    "\n"
    "Revokes a key: sets its revoked time to now and enabled to false. Gateways pick the\n"
    "change up within 2 seconds.\n";

static const char rotate_help[] =
    "Usage: sluicectl keys rotate ID [--json] [--keys-file PATH]\n"
    "\n"
    "Gives a key a new value and prints it once; id, name, plan and times stay. The old value\n"
    "stops working as soon as gateways reload (within 2 seconds).\n";

static const char plans_help[] =
    "Usage: sluicectl keys plans [--json] [--keys-file PATH]\n"
    "\n"
    "Lists the usage plans in force: the file's \"plans\" object and the built-in \"default\"\n"
    "(1000 requests/s, burst 2000, 10,000 a day) unless the file redefines it. With --json, one\n"
    "object per line: name, throttle {rate, burst} or null, quota {limit, period} or null.\n"
    "\n"
    "To add a plan, add it to the keys file's \"plans\" object, e.g.\n"
    "  \"plans\": {\"partner\": {\"throttle\": {\"rate\": 50, \"burst\": 100},\n"
    "                         \"quota\": {\"limit\": 100000, \"period\": \"DAY\"}}}\n"
    "then 'sluicectl keys create --plan partner ...'. See docs/keys.md for the format.\n";

enum opt_id { OPT_NAME = 'n', OPT_PLAN = 'p', OPT_JSON = 'j', OPT_HELP = 'h' };
enum { OPT_KEYS_FILE = 1000, OPT_EXPIRES, OPT_EXPIRES_IN };

static const struct option long_opts[] = {
    {"name", required_argument, NULL, OPT_NAME},
    {"plan", required_argument, NULL, OPT_PLAN},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"expires-in", required_argument, NULL, OPT_EXPIRES_IN},
    {"json", no_argument, NULL, OPT_JSON},
    {"keys-file", required_argument, NULL, OPT_KEYS_FILE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* The parsed command line of one keys command. */
struct keys_opts {
    const char *cmd;
    const char *keys_file;
    const char *name;
    const char *plan;
    const char *expires;
    const char *expires_in;
    const char *id; /* the positional argument of revoke / rotate */
    bool json;
    bool help;
};

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sluicectl keys%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'sluicectl keys%s%s --help' for usage.\n", cmd ? " " : "",
            cmd ? cmd : "");
    return CTL_EXIT_USAGE;
}

static int op_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int op_error(const char *fmt, ...) {
    va_list ap;
    fputs("sluicectl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CTL_EXIT_ERROR;
}

/* Which options each command takes; anything else is a usage error. */
static bool opt_allowed(const char *cmd, int opt) {
    if (opt == OPT_KEYS_FILE || opt == OPT_HELP)
        return true;
    if (strcmp(cmd, "create") == 0)
        return opt == OPT_NAME || opt == OPT_PLAN || opt == OPT_EXPIRES || opt == OPT_EXPIRES_IN ||
               opt == OPT_JSON;
    if (strcmp(cmd, "list") == 0 || strcmp(cmd, "rotate") == 0 || strcmp(cmd, "plans") == 0)
        return opt == OPT_JSON;
    return false;
}

static int parse_opts(int argc, char **argv, struct keys_opts *o) {
    optind = 0; /* glibc: full re-initialisation, since main may have run getopt already */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        if (c == '?')
            return usage_error(o->cmd, "unknown option '%s'", argv[optind - 1]);
        if (c == ':')
            return usage_error(o->cmd, "option '%s' needs a value", argv[optind - 1]);
        if (!opt_allowed(o->cmd, c))
            return usage_error(o->cmd, "option '%s' does not apply here", argv[optind - 1]);
        switch (c) {
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_PLAN:
            o->plan = optarg;
            break;
        case OPT_EXPIRES:
            o->expires = optarg;
            break;
        case OPT_EXPIRES_IN:
            o->expires_in = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_KEYS_FILE:
            o->keys_file = optarg;
            break;
        case OPT_HELP:
            o->help = true;
            break;
        default:
            return usage_error(o->cmd, "unknown option");
        }
    }
    bool wants_id = strcmp(o->cmd, "revoke") == 0 || strcmp(o->cmd, "rotate") == 0;
    if (o->help)
        return 0;
    if (wants_id) {
        if (optind >= argc)
            return usage_error(o->cmd, "missing the key ID");
        o->id = argv[optind++];
    }
    if (optind < argc)
        return usage_error(o->cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* "30d" -> milliseconds; units s, m, h, d, w. */
/* Keys files are edited under an exclusive flock on "<file>.lock", held until exit. */
static int lock_file(const char *path, int *fd_out) {
    size_t n = strlen(path) + sizeof ".lock";
    char *lock = malloc(n);
    if (!lock)
        return op_error("out of memory");
    snprintf(lock, n, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(lock);
        return op_error("cannot open lock file %s.lock: %s", path, strerror(e));
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            free(lock);
            return op_error("cannot lock %s.lock: %s", path, strerror(e));
        }
    }
    free(lock);
    *fd_out = fd;
    return 0;
}

/* Loads the file; a missing file is an empty table only when `create_missing`. */
static int load_keys(const char *path, bool create_missing, struct sl_keys **out) {
    char err[SL_KEYS_ERR_SIZE];
    int rc = sl_keys_load(path, out, NULL, err, sizeof err);
    if (rc == -ENOENT && create_missing)
        rc = sl_keys_new(out);
    if (rc)
        return op_error("keys file %s: %s", path, rc == -ENOMEM ? "out of memory" : err);
    return 0;
}

static int save_keys(const struct sl_keys *k, const char *path) {
    char err[SL_KEYS_ERR_SIZE];
    if (sl_keys_write_file(k, path, err, sizeof err) != 0)
        return op_error("keys file %s not written: %s", path, err);
    return 0;
}

/*
 * Prints text that contains a key value with write(2) from a stack buffer that is wiped
 * afterwards, so no stdio buffer keeps a copy of the secret.
 */
static int print_secret(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int print_secret(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    int rc = 0;
    fflush(stdout);
    if (n < 0 || (size_t)n >= sizeof buf)
        rc = -ENOSPC;
    else
        rc = sl_fileio_write_all(STDOUT_FILENO, buf, (size_t)n);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

/* Prints the new key; returns 0 or -errno of the failed write (the caller says what it did). */
static int print_new_key(const char *verb, const struct sl_key *rec, const char *value, bool json) {
    if (json)
        return print_secret("{\"id\": \"%s\", \"key\": \"%s\"}\n", rec->id, value);
    return print_secret("%s key %s (plan \"%s\").\n"
                        "API key: %s\n"
                        "Store it now: it is not saved anywhere and will not be shown again.\n",
                        verb, rec->id, rec->plan, value);
}

/*
 * A created key that could not be printed is revoked: nobody holds its value, and a failed
 * write may still have left part of it somewhere (a pipe, a full disk's last block).
 */
static int unshown_created_key(struct sl_keys *k, const char *id, const char *path, int prc) {
    char err[SL_KEYS_ERR_SIZE];
    int rc = sl_keys_revoke(k, id, sl_time_now_ms() / 1000 * 1000);
    if (!rc)
        rc = sl_keys_write_file(k, path, err, sizeof err);
    if (rc)
        return op_error("cannot print the new key: %s; key %s is stored but nobody saw it: "
                        "revoke it with 'sluicectl keys revoke %s'",
                        strerror(-prc), id, id);
    return op_error("cannot print the new key: %s; key %s was revoked at once; create another",
                    strerror(-prc), id);
}

/* A rotation whose new value could not be printed is undone: the old value keeps working. */
static int unshown_rotated_key(const struct sl_keys *before, const char *id, const char *path,
                               int prc) {
    char err[SL_KEYS_ERR_SIZE];
    if (sl_keys_write_file(before, path, err, sizeof err) != 0)
        return op_error("cannot print the new value: %s; key %s has a value nobody saw: rotate "
                        "it again or revoke it with 'sluicectl keys revoke %s'",
                        strerror(-prc), id, id);
    return op_error("cannot print the new value: %s; the rotation of key %s was undone and its "
                    "old value still works",
                    strerror(-prc), id);
}

static int cmd_create(const struct keys_opts *o, const char *path) {
    if (!o->name)
        return usage_error("create", "--name is required");
    if (!o->name[0])
        return usage_error("create", "--name must not be empty");
    if (o->expires && o->expires_in)
        return usage_error("create", "--expires and --expires-in exclude each other");
    int64_t now = sl_time_now_ms() / 1000 * 1000; /* whole seconds read better in the file */
    struct sl_key rec = {.enabled = true,
                         .created_ms = now,
                         .expires_ms = SL_KEYS_TIME_NONE,
                         .revoked_ms = SL_KEYS_TIME_NONE};
    const char *plan = o->plan ? o->plan : "default";
    if (strlen(o->name) >= sizeof rec.name)
        return usage_error("create", "--name is longer than %zu bytes", sizeof rec.name - 1);
    if (strlen(plan) >= sizeof rec.plan)
        return usage_error("create", "--plan is longer than %zu bytes", sizeof rec.plan - 1);
    memcpy(rec.name, o->name, strlen(o->name) + 1);
    memcpy(rec.plan, plan, strlen(plan) + 1);
    if (o->expires && sl_time_parse_iso8601(o->expires, &rec.expires_ms) != 0)
        return usage_error("create", "--expires: expected an RFC 3339 UTC time like "
                                     "2027-01-01T00:00:00Z");
    if (o->expires && rec.expires_ms <= now)
        return usage_error("create", "--expires: %s is not in the future", o->expires);
    if (o->expires_in) {
        int64_t d;
        if (ctl_parse_duration(o->expires_in, &d) != 0)
            return usage_error("create", "--expires-in: expected a number with s, m, h, d or w "
                                         "(e.g. 30d)");
        rec.expires_ms = now + d;
    }

    int lock_fd = -1, rc;
    struct sl_keys *k = NULL;
    char value[SL_KEYS_VALUE_SIZE];
    if ((rc = lock_file(path, &lock_fd)) || (rc = load_keys(path, true, &k)))
        goto out;
    if (sl_keys_generate(value, rec.id, rec.digest) != 0) {
        rc = op_error("the random number generator failed");
        goto out;
    }
    char err[SL_KEYS_ERR_SIZE];
    int arc = sl_keys_add(k, &rec, err, sizeof err);
    if (arc == SL_ERR_MISSING)
        rc = op_error("no plan named \"%s\" in %s", plan, path);
    else if (arc == SL_ERR_PARSE)
        rc = usage_error("create", "--name: expected UTF-8 text without control characters");
    else if (arc)
        rc = op_error("cannot add the key: %s", err);
    /* Only a key that is safely on disk is shown: an unsaved key would be a dead secret. */
    int prc;
    if (!rc && !(rc = save_keys(k, path)) &&
        (prc = print_new_key("Created", &rec, value, o->json)) != 0)
        rc = unshown_created_key(k, rec.id, path, prc);
    OPENSSL_cleanse(value, sizeof value);
out:
    sl_keys_unref(k);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

static const char *time_text(int64_t ms, char *buf, size_t len) {
    if (ms == SL_KEYS_TIME_NONE || sl_time_format_iso8601_compact(ms, buf, len) < 0)
        return NULL;
    return buf;
}

static int list_json(const struct sl_keys *k, int64_t now) {
    for (size_t i = 0; i < sl_keys_count(k); i++) {
        const struct sl_key *r = sl_keys_at(k, i);
        char tc[SL_TIME_STR_MAX], te[SL_TIME_STR_MAX], tr[SL_TIME_STR_MAX];
        const char *times[3] = {time_text(r->created_ms, tc, sizeof tc),
                                time_text(r->expires_ms, te, sizeof te),
                                time_text(r->revoked_ms, tr, sizeof tr)};
        static const char *const time_names[3] = {"created", "expires", "revoked"};
        cJSON *o = cJSON_CreateObject();
        bool ok = o && cJSON_AddStringToObject(o, "id", r->id) &&
                  cJSON_AddStringToObject(o, "name", r->name) &&
                  cJSON_AddStringToObject(o, "plan", r->plan) &&
                  cJSON_AddBoolToObject(o, "enabled", r->enabled);
        for (size_t t = 0; ok && t < 3; t++)
            ok = times[t] ? cJSON_AddStringToObject(o, time_names[t], times[t]) != NULL
                          : cJSON_AddNullToObject(o, time_names[t]) != NULL;
        ok = ok &&
             cJSON_AddStringToObject(o, "status", sl_key_status_name(sl_key_status_at(r, now)));
        char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!s)
            return op_error("out of memory");
        puts(s);
        cJSON_free(s);
    }
    return 0;
}

static int list_table(const struct sl_keys *k, int64_t now) {
    int wid = 2, wname = 4, wplan = 4;
    for (size_t i = 0; i < sl_keys_count(k); i++) {
        const struct sl_key *r = sl_keys_at(k, i);
        int a = (int)strlen(r->id), b = (int)strlen(r->name), c = (int)strlen(r->plan);
        wid = a > wid ? a : wid;
        wname = b > wname ? b : wname;
        wplan = c > wplan ? c : wplan;
    }
    printf("%-*s  %-*s  %-*s  %-8s  %-20s  %-20s  %s\n", wid, "ID", wname, "NAME", wplan, "PLAN",
           "STATUS", "CREATED", "EXPIRES", "REVOKED");
    for (size_t i = 0; i < sl_keys_count(k); i++) {
        const struct sl_key *r = sl_keys_at(k, i);
        char tc[SL_TIME_STR_MAX], te[SL_TIME_STR_MAX], tr[SL_TIME_STR_MAX];
        const char *c = time_text(r->created_ms, tc, sizeof tc);
        const char *e = time_text(r->expires_ms, te, sizeof te);
        const char *v = time_text(r->revoked_ms, tr, sizeof tr);
        printf("%-*s  %-*s  %-*s  %-8s  %-20s  %-20s  %s\n", wid, r->id, wname, r->name, wplan,
               r->plan, sl_key_status_name(sl_key_status_at(r, now)), c ? c : "-", e ? e : "-",
               v ? v : "-");
    }
    return 0;
}

static int cmd_list(const struct keys_opts *o, const char *path) {
    struct sl_keys *k = NULL;
    int rc = load_keys(path, false, &k); /* renames make reads atomic: no lock needed */
    if (rc)
        return rc;
    int64_t now = sl_time_now_ms();
    rc = o->json ? list_json(k, now) : list_table(k, now);
    sl_keys_unref(k);
    if (fflush(stdout) != 0 && !rc)
        rc = op_error("cannot write the listing: %s", strerror(errno));
    return rc;
}

static const char *const period_names[] = {[SL_QUOTA_NONE] = "",
                                           [SL_QUOTA_DAY] = "DAY",
                                           [SL_QUOTA_WEEK] = "WEEK",
                                           [SL_QUOTA_MONTH] = "MONTH"};

/* One plan as a JSON line in the keys file's own shape, so it can be pasted into "plans". */
static int plan_json(const struct sl_plan *p) {
    cJSON *o = cJSON_CreateObject(), *t = NULL, *q = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "name", p->name);
    if (ok && p->rate > 0)
        ok = (t = cJSON_AddObjectToObject(o, "throttle")) &&
             cJSON_AddNumberToObject(t, "rate", p->rate) &&
             cJSON_AddNumberToObject(t, "burst", p->burst);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "throttle") != NULL;
    if (ok && p->quota_period != SL_QUOTA_NONE)
        ok = (q = cJSON_AddObjectToObject(o, "quota")) &&
             cJSON_AddNumberToObject(q, "limit", (double)p->quota_limit) &&
             cJSON_AddStringToObject(q, "period", period_names[p->quota_period]);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "quota") != NULL;
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s)
        return op_error("out of memory");
    puts(s);
    cJSON_free(s);
    return 0;
}

static int cmd_plans(const struct keys_opts *o, const char *path) {
    struct sl_keys *k = NULL;
    int rc = load_keys(path, true, &k); /* no file yet: the built-in plan is what is in force */
    if (rc)
        return rc;
    if (!o->json)
        printf("%-20s  %-10s  %-8s  %s\n", "PLAN", "RATE/S", "BURST", "QUOTA");
    for (size_t i = 0; !rc && i < sl_keys_plan_count(k); i++) {
        const struct sl_plan *p = sl_keys_plan_at(k, i);
        if (o->json) {
            rc = plan_json(p);
            continue;
        }
        char rate[32] = "-", burst[32] = "-", quota[48] = "-";
        if (p->rate > 0) {
            snprintf(rate, sizeof rate, "%g", p->rate);
            snprintf(burst, sizeof burst, "%u", (unsigned)p->burst);
        }
        if (p->quota_period != SL_QUOTA_NONE)
            snprintf(quota, sizeof quota, "%llu/%s", (unsigned long long)p->quota_limit,
                     period_names[p->quota_period]);
        printf("%-20s  %-10s  %-8s  %s\n", p->name, rate, burst, quota);
    }
    sl_keys_unref(k);
    if (fflush(stdout) != 0 && !rc)
        rc = op_error("cannot write the listing: %s", strerror(errno));
    return rc;
}

static int cmd_revoke_or_rotate(const struct keys_opts *o, const char *path, bool rotate) {
    int lock_fd = -1, rc;
    struct sl_keys *k = NULL, *before = NULL;
    char value[SL_KEYS_VALUE_SIZE];
    if ((rc = lock_file(path, &lock_fd)) || (rc = load_keys(path, false, &k)))
        goto out;
    const struct sl_key *cur = sl_keys_find_id(k, o->id);
    /* A new value for a revoked key would never work, and the user would believe it does. */
    if (rotate && cur && cur->revoked_ms != SL_KEYS_TIME_NONE) {
        rc = op_error("key %s is revoked, so a new value would not work: create a new key", o->id);
        goto out;
    }
    /* A second copy of the file as it was, to undo a rotation whose value cannot be shown. */
    if (rotate && (rc = load_keys(path, false, &before)))
        goto out;
    int mrc = rotate ? sl_keys_rotate(k, o->id, value)
                     : sl_keys_revoke(k, o->id, sl_time_now_ms() / 1000 * 1000);
    if (mrc == -ENOENT) {
        rc = op_error("no key with id \"%s\" in %s", o->id, path);
        goto out;
    }
    if (mrc) {
        rc =
            op_error("cannot %s key %s: %s", rotate ? "rotate" : "revoke", o->id, sl_strerror(mrc));
        goto out;
    }
    if ((rc = save_keys(k, path)))
        goto out;
    if (rotate) {
        int prc = print_new_key("Rotated", sl_keys_find_id(k, o->id), value, o->json);
        if (prc)
            rc = unshown_rotated_key(before, o->id, path, prc);
    } else {
        printf("Revoked key %s.\n", o->id);
    }
out:
    OPENSSL_cleanse(value, sizeof value);
    sl_keys_unref(before);
    sl_keys_unref(k);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

int ctl_keys_main(int argc, char **argv, const struct ctl_env *env) {
    if (argc < 2)
        return usage_error(NULL, "missing a command (create, list, revoke, rotate, plans)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(keys_help, stdout);
        return CTL_EXIT_OK;
    }
    static const struct {
        const char *name;
        const char *help;
    } cmds[] = {{"create", create_help},
                {"list", list_help},
                {"revoke", revoke_help},
                {"rotate", rotate_help},
                {"plans", plans_help}};
    const char *help = NULL;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0)
            help = cmds[i].help;
    if (!help)
        return usage_error(NULL, "unknown command '%s' (create, list, revoke, rotate, plans)", cmd);

    struct keys_opts o = {.cmd = cmd};
    int rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc)
        return rc;
    if (o.help) {
        fputs(help, stdout);
        return CTL_EXIT_OK;
    }
    const char *path = o.keys_file ? o.keys_file : env->keys_file;
    if (!path || !*path)
        return usage_error(cmd, "no keys file: pass --keys-file PATH or set SLUICE_KEYS_FILE");
    /* A key printed into /dev/null would be a secret nobody holds: refuse before making one. */
    bool prints_key = strcmp(cmd, "create") == 0 || strcmp(cmd, "rotate") == 0;
    if (prints_key && env->stdout_was_closed)
        return op_error("standard output is closed, so the new key could not be shown; "
                        "nothing was changed");
    if (strcmp(cmd, "create") == 0)
        return cmd_create(&o, path);
    if (strcmp(cmd, "list") == 0)
        return cmd_list(&o, path);
    if (strcmp(cmd, "plans") == 0)
        return cmd_plans(&o, path);
    return cmd_revoke_or_rotate(&o, path, strcmp(cmd, "rotate") == 0);
}
