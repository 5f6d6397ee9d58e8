/* The request pipeline: the HTTP server's callbacks that run the gateway's steps. */
#ifndef SLUICE_GATEWAY_PIPELINE_H
#define SLUICE_GATEWAY_PIPELINE_H

#include "sluice/http.h"

/* data: the gateway. */
void gw_pipeline_on_request(struct sl_http_request *http, void *data);
void gw_pipeline_on_cancel(struct sl_http_request *http, void *data);
void gw_pipeline_on_error_response(struct sl_http_error_response *resp, void *data);

#endif
