/* The publish step: the request envelope produced to `requests`. */
#ifndef SLUICE_GATEWAY_PUBLISH_H
#define SLUICE_GATEWAY_PUBLISH_H

#include "state.h"

/* Builds the request envelope, starts waiting for the reply and produces it; answers 503 (or
 * 400 for a bad percent escape) itself on failure. */
void gw_publish(struct gw_req *r);

#endif
