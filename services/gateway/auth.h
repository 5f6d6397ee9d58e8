/* The gateway's API-key step (X-API-Key) and the keys-file reload machinery. */
#ifndef SLUICE_GATEWAY_AUTH_H
#define SLUICE_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sluice/keys.h"
#include "sluice/metrics.h"
#include "sluice/plan.h"

/*
 * Outcome of the key check. Every status but OK is answered 403 {"message":"Forbidden"}
 * (ForbiddenException, gw_error GW_ERR_FORBIDDEN) so a client learns nothing about why; the
 * reason is only the `reason` label of sluice_gateway_auth_failures_total (gw_auth_status_name).
 */
enum gw_auth_status {
    GW_AUTH_OK = 0,
    GW_AUTH_MISSING,  /* no X-API-Key header, or an empty one */
    GW_AUTH_UNKNOWN,  /* no key with this value */
    GW_AUTH_DISABLED, /* "enabled": false */
    GW_AUTH_EXPIRED,  /* past "expires" */
    GW_AUTH_REVOKED,  /* past "revoked" */
};

/*
 * What a request keeps from the check: plain values copied out of the keys table, so a reload
 * that frees the table never invalidates them. Owned by the caller (e.g. in its request).
 */
struct gw_auth_result {
    enum gw_auth_status status;
    char key_id[SL_KEYS_ID_SIZE]; /* the key's id when a record matched (any status but
                                     MISSING/UNKNOWN), "" otherwise; safe to log and audit */
    struct sl_plan plan;          /* the key's usage plan; meaningful when status is OK */
};

/*
 * The keys file in force, plus what keeps it current: a uv_fs_event on the file's DIRECTORY
 * (an atomic rename replaces the inode, and Kubernetes swaps a `..data` symlink, neither of
 * which a watch on the file itself would see) and a 1 s stat check (inode, mtime, size; then the
 * content's SHA-256) as a safety net for file systems without inotify. A change is in force
 * within about a second. A bad file is logged once (file and reason, never a key value) and
 * counted, and the previous table stays in force.
 *
 * Lifecycle: gw_auth_new (loads the file: an error means the gateway must not start) ->
 * gw_auth_check per request, gw_auth_reload on SIGHUP -> gw_auth_close (stops and closes the
 * libuv handles; the object is freed once they are closed, then `cb` runs). The watch and poll
 * handles are unreferenced, so they never keep the loop alive on their own.
 * Threading: every call on the loop thread. Owns its copy of `path` and one reference to the
 * current sl_keys table; `metrics` is borrowed and must outlive the object (may be NULL).
 */
struct gw_auth;

/* Loads `path` and starts watching. On error logs and returns it (negative errno from reading,
 * or the sl_keys_parse codes), and nothing is left running. */
int gw_auth_new(uv_loop_t *loop, const char *path, struct sl_metrics *metrics,
                struct gw_auth **out);

/* Re-reads the file now, even if it looks unchanged (SIGHUP). Returns 0 when the new table is
 * in force, or the error (logged and counted; the previous table stays). */
int gw_auth_reload(struct gw_auth *a);

/*
 * Checks a presented X-API-Key value (`value` may be NULL when the header is absent; spaces
 * and tabs around it are ignored) at `now_ms`. Fills `*out` and returns out->status; counts
 * failures by reason. The value is only hashed: never copied, stored or logged.
 */
enum gw_auth_status gw_auth_check(struct gw_auth *a, const char *value, size_t len, int64_t now_ms,
                                  struct gw_auth_result *out);

/* "ok", "missing", "unknown", "disabled", "expired", "revoked". */
const char *gw_auth_status_name(enum gw_auth_status s);

/* 1 when a keys table is loaded (always, once gw_auth_new succeeded): for /readyz. */
int gw_auth_ready(const struct gw_auth *a);

/* The table in force, with a new reference for the caller (release with sl_keys_unref). */
struct sl_keys *gw_auth_keys(struct gw_auth *a);

/* Stops watching, closes the handles, frees the object, then calls cb(data) (cb may be NULL). */
void gw_auth_close(struct gw_auth *a, void (*cb)(void *data), void *data);

#endif
