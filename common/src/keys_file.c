/* Writing the keys file: JSON with a stable field order, replaced atomically on disk. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "keys_internal.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/fileio.h"
#include "sluice/time.h"

/* ---- serialization ---- */

static void format_hash(const uint8_t digest[SL_KEYS_DIGEST_LEN], char out[80]) {
    memcpy(out, HASH_PREFIX, HASH_PREFIX_LEN);
    sl_hex_encode(out + HASH_PREFIX_LEN, digest, SL_KEYS_DIGEST_LEN);
    out[HASH_PREFIX_LEN + 2 * SL_KEYS_DIGEST_LEN] = '\0';
}

static cJSON *time_json(int64_t ms) {
    char s[SL_TIME_STR_MAX];
    if (ms == SL_KEYS_TIME_NONE || sl_time_format_iso8601_compact(ms, s, sizeof s) < 0)
        return cJSON_CreateNull();
    return cJSON_CreateString(s);
}

static const char *period_name(enum sl_quota_period p) {
    switch (p) {
    case SL_QUOTA_DAY:
        return "DAY";
    case SL_QUOTA_WEEK:
        return "WEEK";
    case SL_QUOTA_MONTH:
        return "MONTH";
    case SL_QUOTA_NONE:
        break;
    }
    return NULL;
}

static cJSON *build_json(const struct sl_keys *k) {
    cJSON *root = cJSON_CreateObject(), *plans, *keys;
    if (!root || !cJSON_AddNumberToObject(root, "version", SL_KEYS_VERSION) ||
        !(plans = cJSON_AddObjectToObject(root, "plans")))
        goto err;
    for (size_t i = 0; i < k->nplans; i++) {
        const struct plan_entry *e = &k->plans[i];
        if (!e->from_file)
            continue;
        cJSON *p = cJSON_AddObjectToObject(plans, e->plan.name);
        if (!p)
            goto err;
        if (e->plan.rate > 0) {
            cJSON *t = cJSON_AddObjectToObject(p, "throttle");
            if (!t || !cJSON_AddNumberToObject(t, "rate", e->plan.rate) ||
                !cJSON_AddNumberToObject(t, "burst", e->plan.burst))
                goto err;
        }
        const char *period = period_name(e->plan.quota_period);
        if (e->plan.quota_limit > 0 && period) {
            cJSON *q = cJSON_AddObjectToObject(p, "quota");
            if (!q || !cJSON_AddNumberToObject(q, "limit", (double)e->plan.quota_limit) ||
                !cJSON_AddStringToObject(q, "period", period))
                goto err;
        }
    }
    if (!(keys = cJSON_AddArrayToObject(root, "keys")))
        goto err;
    for (size_t i = 0; i < k->nkeys; i++) {
        const struct sl_key *r = &k->keys[i];
        char hash[80];
        format_hash(r->digest, hash);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto err;
        cJSON_AddItemToArray(keys, o);
        cJSON *tc = time_json(r->created_ms), *te = time_json(r->expires_ms),
              *tr = time_json(r->revoked_ms);
        if (!cJSON_AddStringToObject(o, "id", r->id) ||
            !cJSON_AddStringToObject(o, "name", r->name) ||
            !cJSON_AddStringToObject(o, "hash", hash) ||
            !cJSON_AddStringToObject(o, "plan", r->plan) ||
            !cJSON_AddBoolToObject(o, "enabled", r->enabled) || !tc || !te || !tr) {
            cJSON_Delete(tc);
            cJSON_Delete(te);
            cJSON_Delete(tr);
            goto err;
        }
        cJSON_AddItemToObject(o, "created", tc);
        cJSON_AddItemToObject(o, "expires", te);
        cJSON_AddItemToObject(o, "revoked", tr);
    }
    return root;
err:
    cJSON_Delete(root);
    return NULL;
}

int sl_keys_serialize(const struct sl_keys *k, struct sl_buf *out) {
    cJSON *root = build_json(k);
    if (!root)
        return -ENOMEM;
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    int rc = sl_buf_reserve(out, n + 1);
    if (rc == 0) {
        sl_buf_append(out, s, n);
        sl_buf_append(out, "\n", 1);
    }
    cJSON_free(s);
    return rc;
}

/* ---- atomic write ---- */

int sl_keys_write_file(const struct sl_keys *k, const char *path, char *err, size_t errlen) {
    struct sl_buf json;
    sl_buf_init(&json, SL_KEYS_FILE_MAX);
    char *target = NULL, *tmp = NULL, *dir = NULL;
    int fd = -1, rc;
    struct stat st;

    if ((rc = sl_keys_serialize(k, &json))) {
        fail(err, errlen, rc, "cannot serialize: %s", sl_strerror(rc));
        goto out;
    }
    /* Replace a symlink's target, not the link: the link is someone else's indirection. */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        target = realpath(path, NULL);
    else
        target = strdup(path);
    if (!target) {
        rc = fail(err, errlen, -errno ? -errno : -ENOMEM, "cannot resolve %s: %s", path,
                  strerror(errno));
        goto out;
    }
    const char *slash = strrchr(target, '/');
    size_t dirlen = slash ? (size_t)(slash - target) : 0;
    dir = slash ? strndup(target, dirlen ? dirlen : 1) : strdup(".");
    const char *base = slash ? slash + 1 : target;
    size_t tmplen = strlen(target) + 32;
    tmp = malloc(tmplen);
    if (!dir || !tmp) {
        rc = fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    snprintf(tmp, tmplen, "%.*s%s.%s.tmp.XXXXXX", (int)dirlen, target, slash ? "/" : "", base);
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        rc = fail(err, errlen, -errno, "cannot create a temp file in %s: %s", dir, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (stat(target, &st) == 0 && fchmod(fd, st.st_mode & 07777) != 0) {
        rc = fail(err, errlen, -errno, "cannot set the mode of %s: %s", tmp, strerror(errno));
        goto out;
    }
    if ((rc = sl_fileio_write_all(fd, json.data, json.len)) || (fsync(fd) != 0 && (rc = -errno))) {
        fail(err, errlen, rc, "cannot write %s: %s", tmp, strerror(-rc));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = fail(err, errlen, -errno, "cannot close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, target) != 0) {
        rc = fail(err, errlen, -errno, "cannot rename %s to %s: %s", tmp, target, strerror(errno));
        goto out;
    }
    free(tmp);
    tmp = NULL; /* renamed: nothing to clean up any more */
    /* The rename is durable only once the directory entry is on disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        rc = fail(err, errlen, -errno, "cannot fsync directory %s: %s", dir, strerror(errno));
    }
    if (dfd >= 0)
        close(dfd);
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dir);
    free(target);
    sl_buf_free(&json);
    return rc;
}
