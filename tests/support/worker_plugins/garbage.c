/* Test plugin: answers a response that breaks the ABI (status 7, CR LF in a header). */
#include <stdlib.h>
#include <string.h>

#include "sluice/handler_v1.h"

static int handle(void *st, const struct sluice_request_v1 *req, struct sluice_response_v1 *resp) {
    (void)st;
    (void)req;
    static const struct sluice_pair_v1 h[] = {{{"X-Bad\r\nInjected", 16}, {"1", 1}}};
    resp->status = 7;
    resp->headers = h;
    resp->n_headers = 1;
    return 0;
}

static const struct sluice_handler_v1 handler = {
    .abi_version = SLUICE_HANDLER_ABI_VERSION,
    .name = "garbage",
    .handle = handle,
};

const struct sluice_handler_v1 *sluice_handler_v1(void) {
    return &handler;
}
