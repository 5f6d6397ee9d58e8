/* Replies back to the waiting request: the deadline and the replies consumer. */
#ifndef SLUICE_GATEWAY_REPLY_ROUTER_H
#define SLUICE_GATEWAY_REPLY_ROUTER_H

#include "sluice/kafka.h"
#include "state.h"

/*
 * Starts waiting for the reply: in-flight table + a timer. Until the broker acknowledges the
 * request (gw_await_published) the timer is the publish timeout, a 503: librdkafka's own
 * message timeout does not end a produce request already sent to a broker that stopped
 * answering. Then it is the request's deadline, a 504.
 */
int gw_await_reply(struct gw_req *r);
/* The broker acknowledged the request: from now on only the deadline (504) ends the wait. */
void gw_await_published(struct gw_req *r);
/* The replies consumer's message callback (opaque: the gateway). */
void gw_replies_on_message(const struct sl_kafka_message *msg, void *opaque);

#endif
