/* Answering a request: the one place answers are sent, counted, audited and finished. */
#ifndef SLUICE_GATEWAY_RESPOND_H
#define SLUICE_GATEWAY_RESPOND_H

#include <stddef.h>

#include "state.h"

/*
 * Sends an answer, records it (metrics, audit) and ends the request's HTTP life. `extra` are the
 * gateway's own headers (written as they are, see sl_http_respond_own); `more` come from
 * elsewhere (a handler's reply, a web ACL's custom response) and are checked by the HTTP server.
 * error_class: NULL on success.
 */
void gw_respond(struct gw_req *r, int status, const struct sl_http_header *extra, size_t nextra,
                const struct sl_http_header *more, size_t nmore, const void *body, size_t len,
                const char *error_class);
/* Answers with the error table's row for e (plus the gateway's own extra headers). */
void gw_respond_error(struct gw_req *r, enum gw_error e, const struct sl_http_header *extra,
                      size_t nextra);
/* Answers with a reply envelope's status, headers and body. */
void gw_respond_reply(struct gw_req *r, const struct sl_envelope_reply *rep);
/* Counts an answer by route (NULL: none) and status; latency_ns 0 records no latency. */
void gw_count_answer(struct gw_gateway *g, const struct sl_route *route, int status,
                     uint64_t latency_ns);

#endif
