/* API-key check per request, and keeping the keys table current (SIGHUP, watch, poll). */
#include "auth.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "sluice/error.h"
#include "sluice/filewatch.h"
#include "sluice/log.h"

#define POLL_INTERVAL_MS 1000 /* the safety net: a change is seen within about a second */
#define NUM_REASONS      (GW_AUTH_REVOKED + 1)

/* The identity of the file last read, to skip re-reading an unchanged file every second. */

struct gw_auth {
    char *path;
    struct sl_keys *keys; /* in force; one reference owned here */
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    /* The last rejected version (error and content hash), so a bad file is reported once. */
    bool have_bad;
    int bad_rc;
    uint8_t bad_digest[SL_KEYS_DIGEST_LEN];

    struct sl_filewatch *watch;
    void (*close_cb)(void *data);
    void *close_data;

    struct sl_metric *m_loaded;
    struct sl_metric *m_reload_ok;
    struct sl_metric *m_reload_err;
    struct sl_metric *m_fail[NUM_REASONS];
};

static const char *const status_names[NUM_REASONS] = {
    [GW_AUTH_OK] = "ok",           [GW_AUTH_MISSING] = "missing",
    [GW_AUTH_UNKNOWN] = "unknown", [GW_AUTH_DISABLED] = "disabled",
    [GW_AUTH_EXPIRED] = "expired", [GW_AUTH_REVOKED] = "revoked",
};

const char *gw_auth_status_name(enum gw_auth_status s) {
    return (unsigned)s < NUM_REASONS ? status_names[s] : "unknown";
}

static void count(struct sl_metric *m) {
    if (m)
        sl_counter_inc(m);
}

static int register_metrics(struct gw_auth *a, struct sl_metrics *m) {
    if (!m)
        return 0;
    struct sl_metric_family *loaded =
        sl_metrics_gauge(m, "sluice_gateway_keys_loaded", "API keys in the table in force", NULL);
    struct sl_metric_family *reloads = sl_metrics_counter(m, "sluice_gateway_keys_reloads_total",
                                                          "Keys file reloads by result", "result");
    struct sl_metric_family *fails =
        sl_metrics_counter(m, "sluice_gateway_auth_failures_total",
                           "Requests refused by the API-key check, by reason", "reason");
    if (!loaded || !reloads || !fails)
        return -ENOMEM;
    a->m_loaded = sl_metric_get(loaded);
    a->m_reload_ok = sl_metric_child1(reloads, "ok");
    a->m_reload_err = sl_metric_child1(reloads, "error");
    for (int r = GW_AUTH_MISSING; r < NUM_REASONS; r++)
        if (!(a->m_fail[r] = sl_metric_child1(fails, status_names[r])))
            return -ENOMEM;
    if (!a->m_loaded || !a->m_reload_ok || !a->m_reload_err)
        return -ENOMEM;
    return 0;
}

/*
 * Reads the file and puts it in force if it parses. Without `force`, contents identical to the
 * table in force, or to the version last rejected, are skipped silently: the watch and the poll
 * both see most changes, and neither should produce a second log line or count.
 */
static int load(struct gw_auth *a, bool force) {
    char err[SL_KEYS_ERR_SIZE];
    uint8_t digest[SL_KEYS_DIGEST_LEN] = {0};
    struct sl_keys *k = NULL;
    int rc = sl_keys_load(a->path, &k, digest, err, sizeof err);
    if (rc) {
        if (!force && a->have_bad && a->bad_rc == rc &&
            memcmp(a->bad_digest, digest, sizeof digest) == 0)
            return rc;
        a->have_bad = true;
        a->bad_rc = rc;
        memcpy(a->bad_digest, digest, sizeof digest);
        count(a->m_reload_err);
        SL_ERROR("keys file %s rejected, keeping the %zu keys in force: %s", a->path,
                 sl_keys_count(a->keys), err);
        return rc;
    }
    a->have_bad = false;
    if (!force && memcmp(digest, a->digest, sizeof digest) == 0) {
        sl_keys_unref(k);
        return 0;
    }
    sl_keys_unref(a->keys);
    a->keys = k;
    memcpy(a->digest, digest, sizeof digest);
    count(a->m_reload_ok);
    if (a->m_loaded)
        sl_gauge_set(a->m_loaded, (int64_t)sl_keys_count(k));
    SL_INFO("keys file %s loaded: %zu keys, %zu plans", a->path, sl_keys_count(k),
            sl_keys_plan_count(k));
    return 0;
}

static void on_change(void *data) {
    load(data, false);
}

static void free_auth(struct gw_auth *a) {
    sl_keys_unref(a->keys);
    free(a->path);
    free(a);
}

static void on_watch_closed(void *data) {
    struct gw_auth *a = data;
    void (*cb)(void *) = a->close_cb;
    void *cb_data = a->close_data;
    free_auth(a);
    if (cb)
        cb(cb_data);
}

int gw_auth_new(uv_loop_t *loop, const char *path, struct sl_metrics *metrics,
                struct gw_auth **out) {
    struct gw_auth *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->path = strdup(path);
    int rc = -ENOMEM;
    if (!a->path)
        goto err;
    if ((rc = register_metrics(a, metrics))) {
        SL_ERROR("keys: cannot register metrics: %s", sl_strerror(rc));
        goto err;
    }
    char err[SL_KEYS_ERR_SIZE];
    rc = sl_keys_load(path, &a->keys, a->digest, err, sizeof err);
    if (rc) {
        SL_ERROR("keys file %s cannot be loaded: %s", path, err);
        goto err;
    }
    if (a->m_loaded)
        sl_gauge_set(a->m_loaded, (int64_t)sl_keys_count(a->keys));
    SL_INFO("keys file %s loaded: %zu keys, %zu plans", path, sl_keys_count(a->keys),
            sl_keys_plan_count(a->keys));

    if ((rc = sl_filewatch_start(loop, path, POLL_INTERVAL_MS, on_change, a, &a->watch)) < 0) {
        SL_ERROR("keys file %s cannot be watched: %s", path, sl_strerror(rc));
        goto err;
    }
    *out = a;
    return 0;
err:
    free_auth(a);
    return rc;
}

int gw_auth_reload(struct gw_auth *a) {
    sl_filewatch_mark_seen(a->watch);
    return load(a, true);
}

int gw_auth_ready(const struct gw_auth *a) {
    return a && a->keys != NULL;
}

struct sl_keys *gw_auth_keys(struct gw_auth *a) {
    return sl_keys_ref(a->keys);
}

static bool is_ows(char c) {
    return c == ' ' || c == '\t';
}

enum gw_auth_status gw_auth_check(struct gw_auth *a, const char *value, size_t len, int64_t now_ms,
                                  struct gw_auth_result *out) {
    out->status = GW_AUTH_MISSING;
    out->key_id[0] = '\0';
    memset(&out->plan, 0, sizeof out->plan);
    while (value && len && is_ows(value[0])) {
        value++;
        len--;
    }
    while (value && len && is_ows(value[len - 1]))
        len--;
    if (!value || len == 0) {
        count(a->m_fail[GW_AUTH_MISSING]);
        return out->status;
    }
    const struct sl_key *key = NULL;
    enum sl_key_status s = sl_keys_lookup(a->keys, value, len, now_ms, &key);
    switch (s) {
    case SL_KEY_OK:
        out->status = GW_AUTH_OK;
        break;
    case SL_KEY_UNKNOWN:
        out->status = GW_AUTH_UNKNOWN;
        break;
    case SL_KEY_DISABLED:
        out->status = GW_AUTH_DISABLED;
        break;
    case SL_KEY_EXPIRED:
        out->status = GW_AUTH_EXPIRED;
        break;
    case SL_KEY_REVOKED:
        out->status = GW_AUTH_REVOKED;
        break;
    }
    if (key) {
        memcpy(out->key_id, key->id, sizeof out->key_id);
        /* The parser guarantees every key's plan exists in its table. */
        const struct sl_plan *p = sl_keys_plan(a->keys, key->plan);
        if (p)
            out->plan = *p;
    }
    if (out->status != GW_AUTH_OK)
        count(a->m_fail[out->status]);
    return out->status;
}

void gw_auth_close(struct gw_auth *a, void (*cb)(void *data), void *data) {
    a->close_cb = cb;
    a->close_data = data;
    sl_filewatch_close(a->watch, on_watch_closed, a);
}
