/* Test plugin: allocates (and touches) memory without bound. */
#include <stdlib.h>
#include <string.h>

#include "sluice/handler_v1.h"

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    (void)req;
    for (;;) {
        char *p = malloc(1u << 20);
        if (!p)
            abort();
        memset(p, 1, 1u << 20);
    }
    resp->status = 200;
    return 0;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "alloc",
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
