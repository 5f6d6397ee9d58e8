/* Replies back to the waiting request: the deadline and the replies consumer. */
#ifndef SLUICE_GATEWAY_REPLY_ROUTER_H
#define SLUICE_GATEWAY_REPLY_ROUTER_H

#include "sluice/kafka.h"
#include "state.h"

/* Starts waiting for the reply: in-flight table + deadline timer (a 504 when it fires). */
int gw_await_reply(struct gw_req *r);
/* The replies consumer's message callback (opaque: the gateway). */
void gw_replies_on_message(const struct sl_kafka_message *msg, void *opaque);

#endif
