/* Audit records: one per HTTP request, produced to `audit` without waiting. */
#ifndef SLUICE_GATEWAY_AUDIT_H
#define SLUICE_GATEWAY_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* The audit producer reports only lost records (delivery.report.only.error): counted, logged. */
void gw_audit_on_lost(int err, rd_kafka_resp_err_t kerr, int32_t partition, int64_t offset,
                      void *opaque);
/* Builds g->audit_tail from the settings and the replica name, once. */
int gw_audit_tail(struct gw_gateway *g);
/* The record of an answered request; elapsed_ns: from its start to its answer. */
void gw_audit_request(struct gw_gateway *g, const struct gw_req *r,
                      const struct sl_http_request *http, size_t bytes_in, uint64_t elapsed_ns);
/* The record of an answer the HTTP server gave itself; its source is the connection's peer. */
void gw_audit_server_error(struct gw_gateway *g, const struct sl_http_error_response *resp,
                           const char *request_id);

#endif
