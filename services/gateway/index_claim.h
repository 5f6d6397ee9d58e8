/* The claim on this gateway's index, so that a second live replica on it is noticed. */
#ifndef GW_INDEX_CLAIM_H
#define GW_INDEX_CLAIM_H

#include "sluice/buf.h"

struct gw_gateway;

/* Joins the index's group (g->claim); a fence by a newer replica sets g->fenced and drains. */
int gw_index_claim_start(struct gw_gateway *g, struct sl_buf *err);

#endif
