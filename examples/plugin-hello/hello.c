/* An example handler plugin: answers {"hello":"<name>"} with the route's {name} parameter. */
#include <stdio.h>
#include <string.h>

#include "sluice/handler_v1.h"

/* Per-process state: the answer buffer the worker copies after each call. */
struct hello {
    char body[512];
    unsigned long served;
};

static struct hello state;

static int hello_init(void **st) {
    *st = &state;
    return 0;
}

static int hello_handle(void *st, const struct sluice_request_v1 *req,
                        struct sluice_response_v1 *resp) {
    struct hello *h = st;
    struct sluice_str_v1 name = {"world", 5};
    for (size_t i = 0; i < req->n_path_params; i++)
        if (req->path_params[i].name.len == 4 && !memcmp(req->path_params[i].name.p, "name", 4))
            name = req->path_params[i].value;
    int n = snprintf(h->body, sizeof h->body, "{\"hello\":\"%.*s\",\"served\":%lu}",
                     (int)(name.len > 200 ? 200 : name.len), name.p, ++h->served);
    static const struct sluice_pair_v1 headers[] = {
        {{"Content-Type", 12}, {"application/json", 16}},
        {{"X-Plugin", 8}, {"hello", 5}},
    };
    resp->status = 200;
    resp->headers = headers;
    resp->n_headers = 2;
    resp->body = h->body;
    resp->body_len = (size_t)n;
    return 0;
}

static void hello_shutdown(void *st) {
    (void)st;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "hello",
    .init = hello_init,
    .handle = hello_handle,
    .shutdown = hello_shutdown,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
