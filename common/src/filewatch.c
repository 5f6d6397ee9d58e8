/* File watching for reloads: a debounced directory watch plus a periodic stat check. */
#include "sluice/filewatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sluice/log.h"

#define DEBOUNCE_MS 50

struct file_id {
    bool valid;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct sl_filewatch {
    char *path;
    char *dir;
    uint64_t poll_ms;
    sl_filewatch_cb cb;
    void *data;
    struct file_id seen;
    uv_timer_t poll;
    uv_timer_t debounce;
    uv_fs_event_t watch;
    bool watching;
    bool closing;
    int open_handles;
    void (*close_cb)(void *data);
    void *close_data;
};

static struct file_id stat_file(const char *path) {
    struct stat st;
    struct file_id id = {0};
    if (stat(path, &st) == 0) { /* stat, not lstat: a swapped symlink must look like a change */
        id.valid = true;
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.ctime = st.st_ctim;
    }
    return id;
}

static bool same_file(const struct file_id *x, const struct file_id *y) {
    return x->valid == y->valid && x->dev == y->dev && x->ino == y->ino && x->size == y->size &&
           x->mtime.tv_sec == y->mtime.tv_sec && x->mtime.tv_nsec == y->mtime.tv_nsec &&
           x->ctime.tv_sec == y->ctime.tv_sec && x->ctime.tv_nsec == y->ctime.tv_nsec;
}

static void fire(struct sl_filewatch *w) {
    if (w->closing)
        return;
    w->seen = stat_file(w->path);
    w->cb(w->data);
}

static void on_debounce(uv_timer_t *t) {
    fire(t->data);
}

static void on_poll(uv_timer_t *t) {
    struct sl_filewatch *w = t->data;
    struct file_id now = stat_file(w->path);
    if (!same_file(&now, &w->seen))
        fire(w);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    struct sl_filewatch *w = h->data;
    (void)filename; /* any entry: the file, a temp file renamed over it, `..data` */
    (void)events;
    if (status < 0) {
        SL_WARN("watching %s failed (%s); relying on the %llu ms stat check", w->dir,
                uv_strerror(status), (unsigned long long)w->poll_ms);
        uv_fs_event_stop(h);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&w->debounce))
        uv_timer_start(&w->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

int sl_filewatch_start(uv_loop_t *loop, const char *path, uint64_t poll_ms, sl_filewatch_cb cb,
                       void *data, struct sl_filewatch **out) {
    if (!loop || !path || !cb || poll_ms == 0)
        return -EINVAL;
    struct sl_filewatch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->path = strdup(path);
    w->dir = dir_of(path);
    if (!w->path || !w->dir) {
        free(w->path);
        free(w->dir);
        free(w);
        return -ENOMEM;
    }
    w->poll_ms = poll_ms;
    w->cb = cb;
    w->data = data;
    w->seen = stat_file(path);
    uv_timer_init(loop, &w->poll);
    uv_timer_init(loop, &w->debounce);
    w->poll.data = w->debounce.data = w;
    w->open_handles = 2;
    uv_unref((uv_handle_t *)&w->poll);
    uv_unref((uv_handle_t *)&w->debounce);
    uv_timer_start(&w->poll, on_poll, poll_ms, poll_ms);
    if (uv_fs_event_init(loop, &w->watch) == 0) {
        w->watch.data = w;
        w->open_handles++;
        w->watching = true;
        int rc = uv_fs_event_start(&w->watch, on_fs_event, w->dir, 0);
        if (rc)
            SL_WARN("cannot watch %s (%s); relying on the %llu ms stat check", w->dir,
                    uv_strerror(rc), (unsigned long long)poll_ms);
        uv_unref((uv_handle_t *)&w->watch);
    }
    *out = w;
    return 0;
}

void sl_filewatch_mark_seen(struct sl_filewatch *w) {
    w->seen = stat_file(w->path);
}

static void on_closed(uv_handle_t *h) {
    struct sl_filewatch *w = h->data;
    if (--w->open_handles > 0)
        return;
    void (*cb)(void *) = w->close_cb;
    void *data = w->close_data;
    free(w->path);
    free(w->dir);
    free(w);
    if (cb)
        cb(data);
}

void sl_filewatch_close(struct sl_filewatch *w, void (*close_cb)(void *data), void *data) {
    w->closing = true;
    w->close_cb = close_cb;
    w->close_data = data;
    uv_timer_stop(&w->poll);
    uv_timer_stop(&w->debounce);
    uv_close((uv_handle_t *)&w->poll, on_closed);
    uv_close((uv_handle_t *)&w->debounce, on_closed);
    if (w->watching) {
        uv_fs_event_stop(&w->watch);
        uv_close((uv_handle_t *)&w->watch, on_closed);
    }
}
