/* Test plugin: never returns. */
#include <stdlib.h>
#include <string.h>

#include "sluice/handler_v1.h"

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    (void)req;
    volatile unsigned long n = 0;
    for (;;)
        n++;
    resp->status = 200;
    return 0;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "loop",
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
