/* Test plugin: records its lifecycle. init opens the file named by SLUICE_TEST_LIFECYCLE_LOG
 * (before the child gives up any rights) and appends "init <pid>"; each request appends
 * "handle <pid>", sleeps for its ?sleep_ms= if it has one, then appends "done <pid>" and
 * answers 200; shutdown appends "shutdown <pid>". Each line ends with the wall-clock time in
 * milliseconds. Lines are written whole with O_APPEND, so
 * children sharing the file do not mix them. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/handler_v1.h"

static int fd = -1;

static void note(const char *what) {
    char line[96];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int n = snprintf(line, sizeof line, "%s %ld %lld\n", what, (long)getpid(),
                     (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    if (fd >= 0 && write(fd, line, (size_t)n) < 0)
        abort();
}

static int init(void **state) {
    const char *path = getenv("SLUICE_TEST_LIFECYCLE_LOG");
    *state = NULL;
    if (!path || (fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
        return -1;
    note("init");
    return 0;
}

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    note("handle");
    for (size_t i = 0; i < req->n_query; i++)
        if (req->query[i].name.len == 8 && !memcmp(req->query[i].name.p, "sleep_ms", 8)) {
            long ms = 0;
            for (size_t j = 0; j < req->query[i].value.len && j < 6; j++)
                ms = ms * 10 + (req->query[i].value.p[j] - '0');
            struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    note("done");
    resp->status = 200;
    resp->body = "{\"lifecycle\":true}";
    resp->body_len = 18;
    return 0;
}

static void shutdown_(void *st) {
    (void)st;
    note("shutdown");
    close(fd);
    fd = -1;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "lifecycle",
    .init = init,
    .handle = handle,
    .shutdown = shutdown_,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
