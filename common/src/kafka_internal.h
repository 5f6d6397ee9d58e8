/* What the Kafka glue's producer, consumer and admin files share: the loop pump, property
 * application, logging and error reporting. Internal to common/src/kafka*.c. */
#ifndef SLUICE_KAFKA_INTERNAL_H
#define SLUICE_KAFKA_INTERNAL_H

#include "sluice/kafka.h"

/* After a close has purged what the flush timeout left, how long to wait for the reports. */
#define PURGE_GRACE_MS 2000
#define CLOSE_TICK_MS  5

/*
 * The loop side of one librdkafka queue: a pipe librdkafka writes to when the queue receives
 * events, a uv_poll_t on its read end, and a safety-net timer. `drain` serves the queue.
 */
struct sl__kafka_pump {
    uv_loop_t *loop;
    rd_kafka_queue_t *q;
    int fds[2];
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;
    void (*drain)(struct sl__kafka_pump *);
    void (*closed)(struct sl__kafka_pump *); /* runs once both handles are closed */
};

/* How long the next slice of a blocking wait may take (see sl_kafka_set_wait_hook): `left`
 * without a hook, else at most SL_KAFKA_WAIT_SLICE_MS. */
int sl__kafka_wait_slice(int left);
/* Runs the wait hook between slices: 1 when the wait must end now. */
int sl__kafka_wait_interrupted(void);

void sl__kafka_set_err(char *errstr, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Applies name,value pairs; the error names the property so a typo in config is obvious. */
int sl__kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *pairs, char *errstr,
                         size_t errlen);
int sl__kafka_conf_is_set(const rd_kafka_conf_t *conf, const char *name);
/* The log callback every handle gets: librdkafka's lines through sl_log. */
void sl__kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* Number of brokers with a node id whose connection is UP in a statistics blob, or -1. */
int sl__kafka_stats_brokers_up(const char *json, size_t len);
/* Logs an error librdkafka reported, updates *state and runs cb (may be NULL). */
void sl__kafka_report_error(rd_kafka_t *rk, enum sl_kafka_state *state, sl_kafka_error_cb cb,
                            void *cb_opaque, int err, const char *reason);

int sl__kafka_pump_start(struct sl__kafka_pump *pu, uv_loop_t *loop, rd_kafka_queue_t *q,
                         void (*drain)(struct sl__kafka_pump *),
                         void (*closed)(struct sl__kafka_pump *));
void sl__kafka_pump_on_timer(uv_timer_t *t);
/* Makes the pump drain again on the loop's next turn: for a drain that stopped at its batch
 * limit with events left, which librdkafka would not announce again until a new one arrives. */
void sl__kafka_pump_again(struct sl__kafka_pump *pu);
/* Detaches the queue (librdkafka must not write to the pipe after this). */
void sl__kafka_pump_detach(struct sl__kafka_pump *pu);
/* Closes the handles; pu->closed runs once both are closed. */
void sl__kafka_pump_close(struct sl__kafka_pump *pu);

#endif
