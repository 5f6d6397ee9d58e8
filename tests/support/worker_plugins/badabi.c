/* Test plugin: declares an ABI version this worker does not speak. */
#include "sluice/handler_v1.h"

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    (void)req;
    resp->status = 200;
    return 0;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION + 1,
    .name = "badabi",
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
