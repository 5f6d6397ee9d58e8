/* Test plugin: its init fails (-5), so it must never be asked to handle a request. */
#include <stdlib.h>

#include "sluice/handler_v1.h"

static int init(void **state) {
    *state = NULL;
    return -5;
}

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    (void)req;
    (void)resp;
    abort(); /* unreachable: a plugin whose init failed is not used */
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "initfail",
    .init = init,
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
