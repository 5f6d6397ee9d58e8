/* The handler child's confinement: resource limits, a seccomp filter (libseccomp) and, under a
 * root worker, another user. */
#include "sandbox.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define WK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WK_ASAN 1
#endif
#endif

/*
 * What a handler never needs. A call in this list fails with EPERM instead of killing the
 * process, so a library that probes for a feature (some call unshare or personality) gets a
 * plain error it can handle.
 */
static const char *const denied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "setns",
    "unshare",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "add_key",
    "request_key",
    "keyctl",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "setsid",
    "setpgid",
};

/* The memory limit: an allocation beyond it fails in the child itself. AddressSanitizer
 * reserves terabytes of shadow address space at start, so under it only the supervisor's
 * resident-set watchdog enforces the limit. */
static int limit(int resource, rlim_t value, const char *name) {
    struct rlimit rl = {.rlim_cur = value, .rlim_max = value};
    if (setrlimit(resource, &rl) == 0)
        return 0;
    SL_WARN("handler child: cannot set %s: %s", name, strerror(errno));
    return -errno;
}

static int deny(scmp_filter_ctx ctx, const char *name) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not a call on this architecture (or this libseccomp): nothing to deny */
#ifdef WK_ASAN
    /* LeakSanitizer stops the process with ptrace at exit to look for leaks. */
    if (!strcmp(name, "ptrace"))
        return 0;
#endif
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
}

int wk_sandbox_apply(uint64_t memory_mb) {
#ifndef WK_ASAN
    limit(RLIMIT_AS, (rlim_t)memory_mb << 20, "the memory limit (RLIMIT_AS)");
#else
    (void)memory_mb;
#endif
    limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
    limit(RLIMIT_NOFILE, WK_SANDBOX_NOFILE, "RLIMIT_NOFILE");
    limit(RLIMIT_NPROC, WK_SANDBOX_NPROC, "RLIMIT_NPROC");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -errno;

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof denied / sizeof *denied; i++)
        rc = deny(ctx, denied[i]);
    /* Raw and packet sockets: reading or forging other hosts' traffic. (Spelt out rather than
     * with SCMP_A0/SCMP_A1, whose positional initialisers clang flags.) */
    const struct scmp_arg_cmp packet = {
        .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_PACKET, .datum_b = 0};
    const struct scmp_arg_cmp raw = {
        .arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xf, .datum_b = SOCK_RAW};
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, packet);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, raw);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc;
}

static const char *const env_names[] = {"PATH",         "HOME",
                                        "TMPDIR",       "TZ",
                                        "LANG",         "SSL_CERT_FILE",
                                        "SSL_CERT_DIR", "CURL_CA_BUNDLE",
                                        "http_proxy",   "https_proxy",
                                        "HTTP_PROXY",   "HTTPS_PROXY",
                                        "no_proxy",     "NO_PROXY",
                                        "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                        "LSAN_OPTIONS", NULL};

static bool has_prefix(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool passes(const char *var) {
    const char *eq = strchr(var, '=');
    if (!eq)
        return false;
    size_t len = (size_t)(eq - var);
    for (size_t i = 0; env_names[i]; i++)
        if (strlen(env_names[i]) == len && !memcmp(env_names[i], var, len))
            return true;
    if (has_prefix(var, "LC_"))
        return true;
    return has_prefix(var, "SLUICE_") && !has_prefix(var, "SLUICE_KAFKA_");
}

char **wk_sandbox_env(char *const *env) {
    size_t n = 0;
    while (env && env[n])
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (passes(env[i]))
            out[k++] = env[i];
    return out;
}

void wk_sandbox_kill_group(int pid) {
    if (pid > 0)
        kill(-pid, SIGKILL);
}

int wk_sandbox_resolve_user(const char *user, unsigned *uid, unsigned *gid, struct sl_buf *err) {
    if (!user || !*user) {
        sl_buf_printf(err, "SLUICE_HANDLER_USER: empty; name the user handler processes run as");
        return SL_ERR_CONFIG;
    }
    char buf[4096];
    struct passwd pw, *found = NULL;
    char *end;
    errno = 0;
    unsigned long n = strtoul(user, &end, 10);
    if (*end == '\0' && errno == 0) {
        if (n == 0 || n > 0xfffffffe) {
            sl_buf_printf(err, "SLUICE_HANDLER_USER: %s is %s; name an unprivileged user", user,
                          n == 0 ? "root" : "out of range");
            return SL_ERR_CONFIG;
        }
        *uid = (unsigned)n;
        *gid = (unsigned)n; /* a bare number: its own group, as container runtimes do */
        if (getpwuid_r((uid_t)n, &pw, buf, sizeof buf, &found) == 0 && found)
            *gid = (unsigned)found->pw_gid;
        return 0;
    }
    if (getpwnam_r(user, &pw, buf, sizeof buf, &found) != 0 || !found) {
        sl_buf_printf(err,
                      "SLUICE_HANDLER_USER: no user \"%s\" on this host (give a name from "
                      "/etc/passwd or a number)",
                      user);
        return SL_ERR_CONFIG;
    }
    if (found->pw_uid == 0) {
        sl_buf_printf(err, "SLUICE_HANDLER_USER: %s is root; name an unprivileged user", user);
        return SL_ERR_CONFIG;
    }
    *uid = (unsigned)found->pw_uid;
    *gid = (unsigned)found->pw_gid;
    return 0;
}

int wk_sandbox_drop_user(const char *user) {
    if (geteuid() != 0)
        return 0;
    unsigned uid, gid;
    struct sl_buf err;
    sl_buf_init(&err, 512);
    int rc = wk_sandbox_resolve_user(user, &uid, &gid, &err);
    if (rc < 0) {
        SL_ERROR("handler child: %s", err.data ? err.data : sl_strerror(rc));
        sl_buf_free(&err);
        return rc;
    }
    sl_buf_free(&err);
    if (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid((uid_t)uid) < 0)
        return -errno;
    /* A process that could get root back has not dropped it. */
    if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0)
        return -EPERM;
    return 0;
}
