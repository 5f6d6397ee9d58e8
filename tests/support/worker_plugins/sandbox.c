/* Test plugin: tries what a confined handler must not be able to do and reports each result.
 * "/…/probe": JSON with the errno of ptrace, raw and packet sockets, setsid, the limits in force,
 * its user and groups (and the errno of setuid(0)), whether an allocation of 64 MiB more than
 * its address-space limit fails, and the names of the environment variables it can see.
 * "/…/orphan?marker=F": forks a grandchild that creates F after 3 s, then spins until the
 * supervisor kills the handler. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/handler_v1.h"

extern char **environ;

static char out[65536];

static int errno_of(int rc) {
    return rc < 0 ? errno : 0;
}

static long soft_limit(int resource) {
    struct rlimit rl;
    return getrlimit(resource, &rl) == 0 ? (long)rl.rlim_cur : -1;
}

/* 1 when asking for 64 MiB more than RLIMIT_AS allows fails, as the limit promises. */
static int alloc_over_limit_fails(void) {
    long as = soft_limit(RLIMIT_AS);
    if (as < 0 || (rlim_t)as == RLIM_INFINITY)
        return 0;
    void *p = malloc((size_t)as + (64u << 20));
    free(p);
    return p == NULL;
}

static int probe_ptrace(void) {
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    if (pid < 0)
        return errno;
    int e = errno_of((int)ptrace(PTRACE_ATTACH, pid, NULL, NULL));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return e;
}

static int probe_socket(int domain, int type) {
    int fd = socket(domain, type, 0);
    if (fd >= 0)
        close(fd);
    return errno_of(fd);
}

static void probe(struct sluice_response_v1 *resp) {
    int n = snprintf(out, sizeof out,
                     "{\"ptrace\":%d,\"raw\":%d,\"packet\":%d,\"setsid\":%d,\"core\":%ld,"
                     "\"nofile\":%ld,\"nproc\":%ld,\"as\":%ld,\"alloc_over_as_fails\":%d,\"uid\":%"
                     "ld,\"euid\":%ld,\"gid\":%ld,"
                     "\"groups\":%d,\"setuid0\":%d,\"env\":[",
                     probe_ptrace(), probe_socket(AF_INET, SOCK_RAW),
                     probe_socket(AF_PACKET, SOCK_RAW), errno_of(setsid()), soft_limit(RLIMIT_CORE),
                     soft_limit(RLIMIT_NOFILE), soft_limit(RLIMIT_NPROC), soft_limit(RLIMIT_AS),
                     alloc_over_limit_fails(), (long)getuid(), (long)geteuid(), (long)getgid(),
                     getgroups(0, NULL), errno_of(setuid(0)));
    for (char **e = environ; *e && n < (int)sizeof out - 512; e++) {
        const char *eq = strchr(*e, '=');
        n += snprintf(out + n, sizeof out - (size_t)n, "%s\"%.*s\"", e == environ ? "" : ",",
                      (int)(eq ? eq - *e : 0), *e);
    }
    n += snprintf(out + n, sizeof out - (size_t)n, "]}");
    resp->status = 200;
    resp->body = out;
    resp->body_len = (size_t)n;
}

static void orphan(const struct sluice_request_v1 *req) {
    char marker[512] = "";
    for (size_t i = 0; i < req->n_query; i++)
        if (req->query[i].name.len == 6 && !memcmp(req->query[i].name.p, "marker", 6))
            snprintf(marker, sizeof marker, "%.*s", (int)req->query[i].value.len,
                     req->query[i].value.p);
    if (fork() == 0) {
        sleep(3);
        int fd = open(marker, O_CREAT | O_WRONLY, 0600);
        if (fd >= 0)
            close(fd);
        _exit(0);
    }
    for (;;) {
    }
}

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    if (req->path.len >= 6 && !memcmp(req->path.p + req->path.len - 6, "orphan", 6))
        orphan(req);
    probe(resp);
    return 0;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "sandbox",
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
