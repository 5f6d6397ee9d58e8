/* What gateway.c, the top of the gateway, sees of the files beneath it. */
#ifndef SLUICE_GATEWAY_INTERNAL_H
#define SLUICE_GATEWAY_INTERNAL_H

#include "audit.h"
#include "gateway.h"
#include "inflight.h"
#include "pipeline.h"
#include "reply_router.h"
#include "state.h"

/* The last step of stopping, once nothing refers to the gateway any more. */
void gw_gateway_free(struct gw_gateway *g);

#endif
