/* The directory sink: the S3 layout on a local file system, each object written atomically. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink.h"
#include "sluice/error.h"
#include "sluice/fileio.h"

struct file_sink {
    struct ar_sink base;
    char *dir;
};

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Creates every missing directory of path[0..len) and fsyncs the parent of each it made, so
 * that the new entry survives a power cut together with the file renamed into it. */
static int make_dirs(char *path, size_t len) {
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        char saved = path[i];
        path[i] = '\0';
        int rc = 0;
        if (mkdir(path, 0755) == 0) {
            char *slash = strrchr(path, '/');
            if (slash && slash != path) {
                *slash = '\0';
                rc = fsync_path(path);
                *slash = '/';
            } else {
                rc = fsync_path(slash ? "/" : ".");
            }
        } else if (errno != EEXIST) {
            rc = -errno;
        }
        path[i] = saved;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Temp name in the final directory, fsync, rename over the key, fsync the directory: a reader
 * (and a crash) sees the old object or the new one, never part of one. */
static int file_put(struct ar_sink *base, const char *key, const void *body, size_t len,
                    const atomic_bool *cancel, struct ar_put_result *res) {
    (void)cancel;
    struct file_sink *s = (struct file_sink *)base;
    char path[4096], tmp[4200];
    int n = snprintf(path, sizeof path, "%s/%s", s->dir, key);
    if (n < 0 || (size_t)n >= sizeof path) {
        res->failure = AR_FAIL_CLIENT;
        snprintf(res->message, sizeof res->message, "path too long for %s", key);
        return -ENAMETOOLONG;
    }
    char *slash = strrchr(path, '/');
    int rc = make_dirs(path, (size_t)(slash - path));
    const char *what = "mkdir";
    int fd = -1;
    if (rc == 0) {
        /* A temp name per process and partition object; a crash leaves it behind in .tmp,
         * which the next start clears. */
        snprintf(tmp, sizeof tmp, "%s/.tmp/%ld-%s", s->dir, (long)getpid(), slash + 1);
        what = "open";
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            rc = -errno;
    }
    if (rc == 0) {
        what = "write";
        rc = sl_fileio_write_all(fd, body, len);
    }
    if (rc == 0 && fsync(fd) < 0) {
        what = "fsync";
        rc = -errno;
    }
    if (fd >= 0 && close(fd) < 0 && rc == 0) {
        what = "close";
        rc = -errno;
    }
    if (rc == 0 && rename(tmp, path) < 0) {
        what = "rename";
        rc = -errno;
    }
    if (rc == 0) {
        *slash = '\0';
        what = "fsync of the directory";
        rc = fsync_path(path);
        *slash = '/';
    } else if (fd >= 0) {
        unlink(tmp);
    }
    if (rc < 0) {
        res->failure = AR_FAIL_IO;
        snprintf(res->message, sizeof res->message, "%s %.400s: %s", what, path, strerror(-rc));
    }
    return rc;
}

/* Removes the temp files of processes that no longer run (a crash between open and rename). */
static void clear_stale(const char *tmpdir) {
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '-' || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void file_free(struct ar_sink *base) {
    struct file_sink *s = (struct file_sink *)base;
    free(s->dir);
    free(s);
}

/* Whether make_dirs could create path: its nearest existing ancestor is a directory this
 * process may write. 0 or -errno; changes nothing. */
static int could_make_dirs(char *path, size_t len) {
    struct stat st;
    while (len > 0) {
        char saved = path[len];
        path[len] = '\0';
        int rc = stat(path, &st) == 0 ? 0 : -errno;
        if (rc == 0)
            rc = !S_ISDIR(st.st_mode) ? -ENOTDIR : access(path, W_OK | X_OK) < 0 ? -errno : 0;
        path[len] = saved;
        if (rc != -ENOENT)
            return rc;
        while (len > 0 && path[len - 1] != '/')
            len--;
        while (len > 1 && path[len - 1] == '/')
            len--;
        if (len == 1 && path[0] == '/')
            return access("/", W_OK | X_OK) < 0 ? -errno : 0;
    }
    return access(".", W_OK | X_OK) < 0 ? -errno : 0;
}

int ar_sink_file_open(const char *dir, bool check, struct ar_sink **out, struct sl_buf *err) {
    struct file_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return -ENOMEM;
    }
    size_t len = strlen(s->dir);
    while (len > 1 && s->dir[len - 1] == '/')
        s->dir[--len] = '\0';
    char tmpdir[4200];
    snprintf(tmpdir, sizeof tmpdir, "%s/.tmp", s->dir);
    /* A check must not touch the directory: another archiver may be writing in it. */
    int rc = check ? could_make_dirs(tmpdir, strlen(tmpdir)) : make_dirs(tmpdir, strlen(tmpdir));
    if (rc == 0 && !check)
        clear_stale(tmpdir);
    if (rc < 0) {
        sl_buf_printf(err, "SLUICE_ARCHIVE_URL: cannot create %s: %s\n", s->dir, strerror(-rc));
        file_free(&s->base);
        return SL_ERR_CONFIG;
    }
    s->base = (struct ar_sink){.put = file_put, .free = file_free, .prefix = ""};
    *out = &s->base;
    return 0;
}
