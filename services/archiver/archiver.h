/* sluice-archiver as a library: audit records from Kafka to exactly-once objects. */
#ifndef SLUICE_ARCHIVER_H
#define SLUICE_ARCHIVER_H

#include <stdbool.h>

#include <uv.h>

#include "settings.h"
#include "sluice/buf.h"

/*
 * The archiver reads the audit topic in the consumer group SLUICE_ARCHIVER_GROUP, batches
 * records per partition and UTC day, and writes each closed batch as one gzip'd NDJSON object
 * through a sink (sink.h); a partition's offset is committed only once its object is written,
 * and the next batch of that partition is written only after that commit. docs/archiver.md
 * states the guarantees.
 *
 * Lifecycle: ar_archiver_new -> ar_archiver_start -> ar_archiver_stop (frees the object, then
 * cb(data) on the loop). The settings and Kafka properties are borrowed and must outlive it.
 * Everything runs on the loop thread except the compression and the sink's writes, which run
 * on libuv's thread pool.
 */
struct ar_archiver;

int ar_archiver_new(uv_loop_t *loop, const struct ar_settings *s, const char *const *kafka_props,
                    const char *instance_id, bool check, struct ar_archiver **out,
                    struct sl_buf *err);
/* Listens on the admin address (first: /healthz answers while Kafka is waited for), checks
 * the topic, joins the group. */
int ar_archiver_start(struct ar_archiver *a, struct sl_buf *err);
/* Leaves the group; batches not yet committed are dropped (the group reads them again). */
void ar_archiver_stop(struct ar_archiver *a, void (*cb)(void *data), void *data);

#endif
