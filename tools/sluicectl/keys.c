/* sluicectl keys: create, list, revoke and rotate API keys in the keys file. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
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

/* Keys files are edited under an exclusive flock on "<file>.lock", held until exit. */
static int lock_file(const char *cmd, const char *path, int *fd_out) {
    size_t n = strlen(path) + sizeof ".lock";
    char *lock = malloc(n);
    if (!lock)
        return ctl_op_error("keys", cmd, "out of memory");
    snprintf(lock, n, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(lock);
        return ctl_op_error("keys", cmd, "cannot open lock file %s.lock: %s", path, strerror(e));
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            free(lock);
            return ctl_op_error("keys", cmd, "cannot lock %s.lock: %s", path, strerror(e));
        }
    }
    free(lock);
    *fd_out = fd;
    return 0;
}

/* Loads the file; a missing file is an empty table only when `create_missing`. */
static int load_keys(const char *cmd, const char *path, bool create_missing, struct sl_keys **out) {
    char err[SL_KEYS_ERR_SIZE];
    int rc = sl_keys_load(path, out, NULL, err, sizeof err);
    if (rc == -ENOENT && create_missing)
        rc = sl_keys_new(out);
    if (rc)
        return ctl_op_error("keys", cmd, "keys file %s: %s", path,
                            rc == -ENOMEM ? "out of memory" : err);
    return 0;
}

static int save_keys(const char *cmd, const struct sl_keys *k, const char *path) {
    char err[SL_KEYS_ERR_SIZE];
    if (sl_keys_write_file(k, path, err, sizeof err) != 0)
        return ctl_op_error("keys", cmd, "keys file %s not written: %s", path, err);
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
    const char *cmd = "create";
    char err[SL_KEYS_ERR_SIZE];
    int rc = sl_keys_revoke(k, id, sl_time_now_ms() / 1000 * 1000);
    if (!rc)
        rc = sl_keys_write_file(k, path, err, sizeof err);
    if (rc)
        return ctl_op_error("keys", cmd,
                            "cannot print the new key: %s; key %s is stored but nobody saw it: "
                            "revoke it with 'sluicectl keys revoke %s'",
                            strerror(-prc), id, id);
    return ctl_op_error("keys", cmd,
                        "cannot print the new key: %s; key %s was revoked at once; create another",
                        strerror(-prc), id);
}

/* A rotation whose new value could not be printed is undone: the old value keeps working. */
static int unshown_rotated_key(const struct sl_keys *before, const char *id, const char *path,
                               int prc) {
    const char *cmd = "rotate";
    char err[SL_KEYS_ERR_SIZE];
    if (sl_keys_write_file(before, path, err, sizeof err) != 0)
        return ctl_op_error("keys", cmd,
                            "cannot print the new value: %s; key %s has a value nobody saw: rotate "
                            "it again or revoke it with 'sluicectl keys revoke %s'",
                            strerror(-prc), id, id);
    return ctl_op_error("keys", cmd,
                        "cannot print the new value: %s; the rotation of key %s was undone and its "
                        "old value still works",
                        strerror(-prc), id);
}

/*
 * The keys file (--keys-file or SLUICE_KEYS_FILE); NULL after a usage error. A command that
 * prints a new key refuses when stdout is closed: a key printed into /dev/null would be a
 * secret nobody holds, so it refuses before making one (*rc says how it failed).
 */
static const char *keys_path(const char *cmd, const struct ctl_env *env, bool prints_key, int *rc) {
    if (!env->keys_file || !*env->keys_file) {
        *rc = ctl_usage_error("keys", cmd,
                              "no keys file: pass --keys-file PATH or set SLUICE_KEYS_FILE");
        return NULL;
    }
    if (prints_key && env->stdout_was_closed) {
        *rc = ctl_op_error("keys", cmd,
                           "standard output is closed, so the new key could not be shown; "
                           "nothing was changed");
        return NULL;
    }
    return env->keys_file;
}

/* A name only of spaces is as useless a label as an empty one (the parser refuses ""). */
static bool blank(const char *s) {
    return s[strspn(s, " ")] == '\0';
}

static int cmd_create(const struct ctl_args *a, const struct ctl_env *env) {
    const char *cmd = "create", *name = ctl_arg(a, "--name"), *expires = ctl_arg(a, "--expires"),
               *expires_in = ctl_arg(a, "--expires-in");
    bool json = ctl_flag(a, "--json");
    if (!name)
        return ctl_usage_error("keys", cmd, "--name is required");
    if (blank(name))
        return ctl_usage_error("keys", cmd, "--name must not be blank");
    if (expires && expires_in)
        return ctl_usage_error("keys", cmd, "--expires and --expires-in exclude each other");
    int64_t now = sl_time_now_ms() / 1000 * 1000; /* whole seconds read better in the file */
    struct sl_key rec = {.enabled = true,
                         .created_ms = now,
                         .expires_ms = SL_KEYS_TIME_NONE,
                         .revoked_ms = SL_KEYS_TIME_NONE};
    const char *plan = ctl_arg(a, "--plan") ? ctl_arg(a, "--plan") : "default";
    if (strlen(name) >= sizeof rec.name)
        return ctl_usage_error("keys", cmd, "--name is longer than %zu bytes", sizeof rec.name - 1);
    if (strlen(plan) >= sizeof rec.plan)
        return ctl_usage_error("keys", cmd, "--plan is longer than %zu bytes", sizeof rec.plan - 1);
    memcpy(rec.name, name, strlen(name) + 1);
    memcpy(rec.plan, plan, strlen(plan) + 1);
    if (expires && sl_time_parse_iso8601(expires, &rec.expires_ms) != 0)
        return ctl_usage_error(
            "keys", cmd, "--expires: expected an RFC 3339 UTC time like 2027-01-01T00:00:00Z");
    /* A key born expired would fail every request: refuse it rather than store a dead key. */
    if (expires && rec.expires_ms <= now)
        return ctl_usage_error("keys", cmd, "--expires: %s is not in the future", expires);
    if (expires_in) {
        int64_t d;
        if (ctl_parse_duration(expires_in, &d) != 0)
            return ctl_usage_error(
                "keys", cmd, "--expires-in: expected a number with s, m, h, d or w (e.g. 30d)");
        rec.expires_ms = now + d;
    }

    int lock_fd = -1, rc = 0;
    const char *path = keys_path(cmd, env, true, &rc);
    if (!path)
        return rc;
    struct sl_keys *k = NULL;
    char value[SL_KEYS_VALUE_SIZE];
    if ((rc = lock_file(cmd, path, &lock_fd)) || (rc = load_keys(cmd, path, true, &k)))
        goto out;
    if (sl_keys_generate(value, rec.id, rec.digest) != 0) {
        rc = ctl_op_error("keys", cmd, "the random number generator failed");
        goto out;
    }
    char err[SL_KEYS_ERR_SIZE];
    int arc = sl_keys_add(k, &rec, err, sizeof err);
    if (arc == SL_ERR_MISSING)
        rc = ctl_op_error("keys", cmd, "no plan named \"%s\" in %s", plan, path);
    else if (arc == SL_ERR_PARSE)
        rc = ctl_usage_error("keys", cmd, "--name: expected UTF-8 text without control characters");
    else if (arc)
        rc = ctl_op_error("keys", cmd, "cannot add the key: %s", err);
    /* Only a key that is safely on disk is shown: an unsaved key would be a dead secret. */
    int prc;
    if (!rc && !(rc = save_keys(cmd, k, path)) &&
        (prc = print_new_key("Created", &rec, value, json)) != 0)
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
    const char *cmd = "list";
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
            return ctl_op_error("keys", cmd, "out of memory");
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

static int cmd_list(const struct ctl_args *a, const struct ctl_env *env) {
    const char *cmd = "list";
    int rc = 0;
    const char *path = keys_path(cmd, env, false, &rc);
    if (!path)
        return rc;
    struct sl_keys *k = NULL;
    rc = load_keys(cmd, path, false, &k); /* renames make reads atomic: no lock needed */
    if (rc)
        return rc;
    int64_t now = sl_time_now_ms();
    rc = ctl_flag(a, "--json") ? list_json(k, now) : list_table(k, now);
    sl_keys_unref(k);
    if (fflush(stdout) != 0 && !rc)
        rc = ctl_op_error("keys", cmd, "cannot write the listing: %s", strerror(errno));
    return rc;
}

static const char *const period_names[] = {[SL_QUOTA_NONE] = "",
                                           [SL_QUOTA_DAY] = "DAY",
                                           [SL_QUOTA_WEEK] = "WEEK",
                                           [SL_QUOTA_MONTH] = "MONTH"};

/* One plan as a JSON line in the keys file's own shape, so it can be pasted into "plans". */
static int plan_json(const struct sl_plan *p) {
    const char *cmd = "plans";
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
        return ctl_op_error("keys", cmd, "out of memory");
    puts(s);
    cJSON_free(s);
    return 0;
}

static int cmd_plans(const struct ctl_args *a, const struct ctl_env *env) {
    const char *cmd = "plans";
    bool json = ctl_flag(a, "--json");
    int rc = 0;
    const char *path = keys_path(cmd, env, false, &rc);
    if (!path)
        return rc;
    struct sl_keys *k = NULL;
    rc = load_keys(cmd, path, true, &k); /* no file yet: the built-in plan is what is in force */
    if (rc)
        return rc;
    if (!json)
        printf("%-20s  %-10s  %-8s  %s\n", "PLAN", "RATE/S", "BURST", "QUOTA");
    for (size_t i = 0; !rc && i < sl_keys_plan_count(k); i++) {
        const struct sl_plan *p = sl_keys_plan_at(k, i);
        if (json) {
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
        rc = ctl_op_error("keys", cmd, "cannot write the listing: %s", strerror(errno));
    return rc;
}

static int revoke_or_rotate(const struct ctl_args *a, const struct ctl_env *env, bool rotate) {
    const char *cmd = rotate ? "rotate" : "revoke", *id = a->pos[0];
    int lock_fd = -1, rc = 0;
    const char *path = keys_path(cmd, env, rotate, &rc);
    if (!path)
        return rc;
    struct sl_keys *k = NULL, *before = NULL;
    char value[SL_KEYS_VALUE_SIZE];
    if ((rc = lock_file(cmd, path, &lock_fd)) || (rc = load_keys(cmd, path, false, &k)))
        goto out;
    const struct sl_key *cur = sl_keys_find_id(k, id);
    /* A new value for a revoked key would never work, and the user would believe it does. */
    if (rotate && cur && cur->revoked_ms != SL_KEYS_TIME_NONE) {
        rc = ctl_op_error("keys", cmd,
                          "key %s is revoked, so a new value would not work: create a new key", id);
        goto out;
    }
    /* A second copy of the file as it was, to undo a rotation whose value cannot be shown. */
    if (rotate && (rc = load_keys(cmd, path, false, &before)))
        goto out;
    int mrc = rotate ? sl_keys_rotate(k, id, value)
                     : sl_keys_revoke(k, id, sl_time_now_ms() / 1000 * 1000);
    if (mrc == -ENOENT) {
        rc = ctl_op_error("keys", cmd, "no key with id \"%s\" in %s", id, path);
        goto out;
    }
    if (mrc) {
        rc = ctl_op_error("keys", cmd, "cannot %s key %s: %s", cmd, id, sl_strerror(mrc));
        goto out;
    }
    if ((rc = save_keys(cmd, k, path)))
        goto out;
    if (rotate) {
        int prc = print_new_key("Rotated", sl_keys_find_id(k, id), value, ctl_flag(a, "--json"));
        if (prc)
            rc = unshown_rotated_key(before, id, path, prc);
    } else {
        printf("Revoked key %s.\n", id);
    }
out:
    OPENSSL_cleanse(value, sizeof value);
    sl_keys_unref(before);
    sl_keys_unref(k);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

static int cmd_revoke(const struct ctl_args *a, const struct ctl_env *env) {
    return revoke_or_rotate(a, env, false);
}

static int cmd_rotate(const struct ctl_args *a, const struct ctl_env *env) {
    return revoke_or_rotate(a, env, true);
}

static const struct ctl_opt create_opts[] = {
    {"--name", CTL_OPT_VALUE, "NAME", "a label for humans (required; not blank)"},
    {"--plan", CTL_OPT_VALUE, "PLAN", "usage plan (default: \"default\"); must exist in the file"},
    {"--expires", CTL_OPT_VALUE, "TIME",
     "expiry in the future, RFC 3339 UTC: 2027-01-01T00:00:00Z"},
    {"--expires-in", CTL_OPT_VALUE, "N",
     "expiry relative to now: a number with s, m, h, d or w (e.g. 30d)"},
    {"--json", CTL_OPT_FLAG, NULL, "print exactly {\"id\": \"...\", \"key\": \"...\"}"},
};
static const struct ctl_opt list_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per key and line"},
};
static const struct ctl_opt rotate_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "print exactly {\"id\": \"...\", \"key\": \"...\"}"},
};
static const struct ctl_opt plans_opts[] = {
    {"--json", CTL_OPT_FLAG, NULL, "one JSON object per plan and line"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct ctl_cmd cmds[] = {
    {.name = "create",
     .summary = "create a key and print it once",
     .description =
         "Creates a key and prints its id and value. The value is shown only this once.\n"
         "The keys file is created (mode 0600) when it does not exist. --expires and\n"
         "--expires-in exclude each other. A plan that is not in the file, or standard\n"
         "output closed (the key could not be shown), is refused with exit 1.",
     .opts = create_opts,
     .nopts = N(create_opts),
     .run = cmd_create},
    {.name = "list",
     .summary = "list keys and their status (never the key values)",
     .description =
         "Lists the keys with their status now (ok, disabled, expired, revoked). With --json, one\n"
         "object per line: id, name, plan, enabled, created, expires, revoked, status.",
     .opts = list_opts,
     .nopts = N(list_opts),
     .run = cmd_list},
    {.name = "revoke",
     .positionals = "ID",
     .min_pos = 1,
     .max_pos = 1,
     .summary = "revoke a key (sets revoked, disables it)",
     .description =
         "Revokes a key: sets its revoked time to now and enabled to false. Gateways pick the\n"
         "change up within 2 seconds.",
     .run = cmd_revoke},
    {.name = "rotate",
     .positionals = "ID",
     .min_pos = 1,
     .max_pos = 1,
     .summary = "give a key a new value (same id, name and plan) and print it once",
     .description =
         "Gives a key a new value and prints it once; id, name, plan and times stay. The old "
         "value\n"
         "stops working as soon as gateways reload (within 2 seconds). A revoked key is not\n"
         "rotated (exit 1): its new value would never work; create a new key instead.",
     .opts = rotate_opts,
     .nopts = N(rotate_opts),
     .run = cmd_rotate},
    {.name = "plans",
     .summary = "list the usage plans keys can use, the built-in \"default\" included",
     .description =
         "Lists the usage plans in force: the file's \"plans\" object and the built-in "
         "\"default\"\n"
         "(1000 requests/s, burst 2000, 10,000 a day) unless the file redefines it. With --json, "
         "one\n"
         "object per line: name, throttle {rate, burst} or null, quota {limit, period} or null.\n"
         "\n"
         "To add a plan, add it to the keys file's \"plans\" object, e.g.\n"
         "  \"plans\": {\"partner\": {\"throttle\": {\"rate\": 50, \"burst\": 100},\n"
         "                         \"quota\": {\"limit\": 100000, \"period\": \"DAY\"}}}\n"
         "then 'sluicectl keys create --plan partner ...'. See docs/keys.md for the format.",
     .opts = plans_opts,
     .nopts = N(plans_opts),
     .run = cmd_plans},
};

static const struct ctl_group_def group = {
    .name = "keys",
    .description =
        "Manage the API keys in the keys file (--keys-file PATH or SLUICE_KEYS_FILE). The file\n"
        "holds SHA-256 hashes only; a key value is printed once, when it is created or rotated.",
    .cmds = cmds,
    .ncmds = N(cmds),
    .show_globals = true,
};

int ctl_keys_main(int argc, char **argv, const struct ctl_env *env) {
    return ctl_group_run(&group, argc, argv, env);
}
