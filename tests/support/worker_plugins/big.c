/* Test plugin: answers 200 with a body of as many bytes as the query's `mb` asks (MB, 10^6). */
#include <stdlib.h>
#include <string.h>

#include "sluice/handler_v1.h"

static char *body;

static size_t asked_bytes(const struct sluice_request_v1 *req) {
    size_t mb = 0;
    for (size_t i = 0; i < req->n_query; i++) {
        const struct sluice_str_v1 *k = &req->query[i].name;
        const struct sluice_str_v1 *v = &req->query[i].value;
        if (k->len == 2 && !memcmp(k->p, "mb", 2))
            for (size_t j = 0; j < v->len && v->p[j] >= '0' && v->p[j] <= '9' && mb < 1000; j++)
                mb = mb * 10 + (size_t)(v->p[j] - '0');
    }
    return mb * 1000000u;
}

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    size_t n = asked_bytes(req);
    free(body);
    if (!(body = malloc(n ? n : 1)))
        return -1;
    memset(body, 'x', n);
    resp->status = 200;
    resp->body = body;
    resp->body_len = n;
    return 0;
}

static void shutdown_(void *st) {
    (void)st;
    free(body);
    body = NULL;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "big",
    .handle = handle,
    .shutdown = shutdown_,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
