/* The handler child's confinement: resource limits and a system-call filter, applied to itself. */
#ifndef SLUICE_WORKER_SANDBOX_H
#define SLUICE_WORKER_SANDBOX_H

#include <stdint.h>

/* Limits a handler child runs under; see docs/worker.md ("Isolation"). */
#define WK_SANDBOX_NOFILE 256 /* open descriptors */
#define WK_SANDBOX_NPROC  256 /* processes of the child's user (the kernel counts per user) */

/*
 * Applies the memory limit (RLIMIT_AS, MiB), RLIMIT_NOFILE, RLIMIT_NPROC and RLIMIT_CORE = 0,
 * sets no_new_privs and loads a seccomp filter that fails the system calls a handler never
 * needs with EPERM: tracing other processes, mounting, loading kernel code or modules,
 * rebooting, changing the clock, entering or creating namespaces, BPF, perf, keyrings, raw and
 * packet sockets, and leaving the process group the supervisor kills on timeout. Call once, in
 * the child, before any handler code runs. Returns 0, or a negative code when the filter could
 * not be built or loaded (the child must then not serve).
 */
int wk_sandbox_apply(uint64_t memory_mb);

/*
 * The environment a handler child starts with: the variables of `env` a handler needs (PATH,
 * HOME, TMPDIR, TZ, LANG and LC_*, curl's CA and proxy variables, the sanitizers' options) and
 * the worker's own SLUICE_* settings, which the child reads; never SLUICE_KAFKA_* (SASL and SSL
 * secrets) nor anything else (AWS_* credentials, a database password). Returns a NULL-terminated
 * array whose strings are borrowed from `env`; free the array alone with free(). NULL: no memory.
 */
char **wk_sandbox_env(char *const *env);

/*
 * The user a handler child of a root worker runs as: `user` is a name or a number. Fills *uid and
 * *gid (the user's primary group) and returns 0, or SL_ERR_CONFIG with err filled.
 */
struct sl_buf;
int wk_sandbox_resolve_user(const char *user, unsigned *uid, unsigned *gid, struct sl_buf *err);

/*
 * When the process is root: drops every supplementary group and switches to `user`'s group and
 * user id for good (a handler then cannot read root's files, signal other processes or undo it).
 * Nothing happens when it is not root. Returns 0 or a negative code (the child must not serve).
 */
int wk_sandbox_drop_user(const char *user);

/* Kills the process group a handler child leads (it and every process it started). */
void wk_sandbox_kill_group(int pid);

#endif
