/* The archiver: partitions' batches, their writes and commits, pausing, the admin listener. */
#include "archiver.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "sink.h"
#include "sluice/admin.h"
#include "sluice/error.h"
#include "sluice/kafka.h"
#include "sluice/log.h"
#include "sluice/metrics.h"
#include "sluice/otlp.h"
#include "sluice/time.h"
#include "sluice/topics.h"

#define AR_STARTUP_TIMEOUT_MS 15000
#define AR_KEY_MAX            1024

/*
 * One closed batch on its way out. The job is the partition's single "written or being
 * written, not yet committed" batch: the next batch of the partition is not written before
 * this one's offset is committed, so after a crash at most this one object exists beyond the
 * committed offset, and re-reading from there rebuilds a batch with the same first offset, the
 * same key, which overwrites it.
 *
 * `state` and `cancel` are shared with the thread pool: the state under `mu`, so that a
 * revocation can wait until no write of the job is running.
 */
enum job_state { JOB_WAITING = 0, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct ar_part;

struct ar_job {
    uv_work_t work;
    struct ar_archiver *a;
    struct ar_part *part; /* NULL once the partition was revoked: the job is then only freed */
    struct ar_batch *batch;
    char key[AR_KEY_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum job_state state;
    atomic_bool cancel;
    bool written;   /* the object is durable; only the commit is left */
    bool committed; /* ... and the thread committed its offset too */
    rd_kafka_t *rk; /* the consumer, for the thread's commit */
    int rc;
    struct ar_put_result res;
    unsigned attempts;
    uint64_t retry_at_ns;
    uint64_t first_try_ns;
    int64_t first_try_epoch_ns; /* the batch span's start, when traced */
};

/* A partition this member owns. `sealed` batches are closed and wait for `job` to commit;
 * while there are any, fetching of the partition is paused, which bounds memory. */
struct ar_part {
    bool assigned;
    bool paused;
    int32_t id;
    int64_t next_offset; /* last read + 1, -1 before the first record */
    struct ar_batch *open;
    struct ar_batch *sealed, *sealed_tail;
    struct ar_job *job;
};

struct ar_archiver {
    uv_loop_t *loop;
    const struct ar_settings *s;
    const char *const *kafka_props;
    char instance_id[256];
    char topic[SL_TOPIC_NAME_MAX + 1];
    struct ar_sink *sink;
    struct sl_kafka_consumer *consumer;
    struct sl_admin *admin;
    uv_timer_t tick;
    bool tick_started;
    struct ar_part *parts;
    size_t nparts;
    size_t jobs_outstanding; /* queued on the thread pool, after_work not yet run */
    uint64_t rng;
    uint64_t last_gauges_ns;
    bool stopping;
    int pending_closes;
    void (*stop_cb)(void *);
    void *stop_data;

    struct sl_metrics *metrics;
    struct sl_otlp_tracer *tracer; /* NULL: tracing off */
    struct sl_trace_rand trace_rand;
    struct sl_metric *records, *bytes_raw, *bytes_stored, *objects, *upload_seconds, *retries,
        *commit_failures, *lag, *oldest_age, *paused_parts, *buffered_bytes;
    struct sl_metric *failures[AR_FAIL_COUNT];
};

/* ---- metrics ---------------------------------------------------------------------------- */

static int register_metrics(struct ar_archiver *a) {
    struct sl_metrics *m = a->metrics;
    struct sl_metric_family *bytes =
        sl_metrics_counter(m, "sluice_archiver_bytes_total",
                           "Bytes archived: raw NDJSON and stored after compression.", "kind");
    struct sl_metric_family *fail = sl_metrics_counter(m, "sluice_archiver_failures_total",
                                                       "Failed object writes by class.", "class");
    if (!bytes || !fail)
        return -ENOMEM;
    a->bytes_raw = sl_metric_child1(bytes, "raw");
    a->bytes_stored = sl_metric_child1(bytes, "stored");
    for (int i = AR_FAIL_CONNECT; i < AR_FAIL_COUNT; i++)
        if (!(a->failures[i] = sl_metric_child1(fail, ar_failure_name((enum ar_failure)i))))
            return -ENOMEM;
#define METRIC(field, kind, name, help)                                                            \
    if (!(a->field = sl_metric_get(sl_metrics_##kind(m, name, help, NULL))))                       \
        return -ENOMEM;
    METRIC(records, counter, "sluice_archiver_records_total",
           "Records in objects written and committed.");
    METRIC(objects, counter, "sluice_archiver_objects_total", "Objects written and committed.");
    METRIC(retries, counter, "sluice_archiver_retries_total", "Object writes retried.");
    METRIC(commit_failures, counter, "sluice_archiver_commit_failures_total",
           "Offset commits that failed after their object was written (retried).");
    METRIC(lag, gauge, "sluice_archiver_consumer_lag",
           "Records in the assigned partitions not yet read.");
    METRIC(oldest_age, gauge, "sluice_archiver_oldest_unarchived_seconds",
           "Age (by record timestamp) of the oldest record read but not yet committed; 0 when "
           "none.");
    METRIC(paused_parts, gauge, "sluice_archiver_paused_partitions",
           "Partitions whose fetching waits for a write to finish.");
    METRIC(buffered_bytes, gauge, "sluice_archiver_buffered_bytes",
           "Bytes of gzip'd records held in memory (open, closed and in-flight batches).");
#undef METRIC
    if (!a->bytes_raw || !a->bytes_stored)
        return -ENOMEM;
    struct sl_metric_family *lat =
        sl_metrics_histogram(m, "sluice_archiver_upload_seconds",
                             "From a batch's first write attempt to its commit, retries included.",
                             NULL, sl_metrics_latency_buckets, sl_metrics_latency_nbuckets);
    if (!lat || !(a->upload_seconds = sl_metric_get(lat)))
        return -ENOMEM;
    return 0;
}

/* ---- partitions ------------------------------------------------------------------------- */

static struct ar_part *part_get(struct ar_archiver *a, int32_t id, bool create) {
    if (id < 0)
        return NULL;
    if ((size_t)id >= a->nparts) {
        if (!create)
            return NULL;
        size_t n = (size_t)id + 1;
        struct ar_part *np = realloc(a->parts, n * sizeof *np);
        if (!np)
            return NULL;
        for (size_t i = a->nparts; i < n; i++)
            np[i] = (struct ar_part){.id = (int32_t)i, .next_offset = -1};
        a->parts = np;
        a->nparts = n;
    }
    return &a->parts[id];
}

static void set_paused(struct ar_archiver *a, struct ar_part *p, bool pause) {
    if (p->paused == pause || !a->consumer)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, a->topic, p->id);
    rd_kafka_t *rk = sl_kafka_consumer_handle(a->consumer);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        SL_WARN("%s partition %" PRId32 ": %s", pause ? "pause" : "resume", p->id,
                rd_kafka_err2str(err));
        return;
    }
    p->paused = pause;
    sl_gauge_add(a->paused_parts, pause ? 1 : -1);
}

/* ---- jobs: write, commit ---------------------------------------------------------------- */

static void job_free(struct ar_job *j) {
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    ar_batch_free(j->batch);
    free(j);
}

/* Commits `offset` for the partition synchronously; librdkafka's commit is thread-safe. */
static rd_kafka_resp_err_t commit_offset(rd_kafka_t *rk, const char *topic, int32_t partition,
                                         int64_t offset) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, list, 0);
    if (!err && list->elems[0].err)
        err = list->elems[0].err;
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

/* On the thread pool. A job cancelled before it started does nothing. */
static void job_work(uv_work_t *w) {
    struct ar_job *j = w->data;
    pthread_mutex_lock(&j->mu);
    if (atomic_load(&j->cancel)) {
        j->state = JOB_DONE;
        j->rc = SL_ERR_CLOSED;
        j->res.failure = AR_FAIL_CANCELLED;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        return;
    }
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&j->mu);

    /* The body was compressed as the records came and finished when the batch closed: the
     * thread only writes it. */
    j->res = (struct ar_put_result){.failure = AR_FAIL_NONE};
    int rc = j->a->sink->put(j->a->sink, j->key, j->batch->body.data, j->batch->body.len,
                             &j->cancel, &j->res);
    /* The commit too, here rather than on the consuming thread, which it would stall for a
     * broker round trip per batch. Still before the job is DONE: a revocation waits for it,
     * so nothing is committed after the revocation returns; once it has begun (cancel),
     * nothing is committed at all. A failed commit is retried from the loop (job_commit). */
    if (rc == 0 && !atomic_load(&j->cancel))
        j->committed = commit_offset(j->rk, j->a->topic, j->batch->partition,
                                     j->batch->last_offset + 1) == RD_KAFKA_RESP_ERR_NO_ERROR;

    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_after(uv_work_t *w, int status);
static void dispatch(struct ar_archiver *a, struct ar_part *p);

static void job_queue(struct ar_archiver *a, struct ar_job *j) {
    j->state = JOB_QUEUED;
    a->jobs_outstanding++;
    int rc = uv_queue_work(a->loop, &j->work, job_work, job_after);
    SL_ASSERT(rc == 0); /* uv_queue_work fails only for a NULL work callback */
}

static uint64_t next_random(struct ar_archiver *a) {
    /* xorshift64*: jitter only needs to spread retries, not to be unpredictable. */
    a->rng ^= a->rng >> 12;
    a->rng ^= a->rng << 25;
    a->rng ^= a->rng >> 27;
    return a->rng * UINT64_C(2685821657736338717);
}

/* Full jitter: a delay drawn uniformly from [0, min(max, base * 2^(attempt-1))]. Errors that
 * waiting does not cure wait the slow interval instead, so they are visible but not hammered. */
static uint64_t backoff_ms(struct ar_archiver *a, unsigned attempt, bool heals) {
    if (!heals)
        return (uint64_t)a->s->retry_slow_ms;
    uint64_t cap = (uint64_t)a->s->retry_max_ms;
    uint64_t ceiling = (uint64_t)a->s->retry_base_ms;
    for (unsigned i = 1; i < attempt && ceiling < cap; i++)
        ceiling *= 2;
    if (ceiling > cap)
        ceiling = cap;
    return next_random(a) % (ceiling + 1);
}

static void job_retry_later(struct ar_archiver *a, struct ar_job *j, bool heals) {
    uint64_t delay = backoff_ms(a, ++j->attempts, heals);
    j->state = JOB_WAITING;
    j->retry_at_ns = sl_time_mono_ns() + delay * 1000000u;
    sl_counter_inc(a->retries);
}

/* A batch's span, a root of its own (a batch holds records of many traces): from the first
 * write attempt to the commit, with the object, its records, bytes and attempts. */
static void trace_batch(struct ar_archiver *a, const struct ar_part *p, const struct ar_job *j) {
    struct sl_otlp_span s;
    if (!a->tracer || sl_otlp_span_start(a->tracer, &s, "archive batch", SL_OTLP_KIND_CLIENT, NULL,
                                         &a->trace_rand) < 0)
        return;
    sl_otlp_span_set_start(&s, j->first_try_epoch_ns);
    sl_otlp_span_set_str(&s, "sluice.archive.object", j->key);
    sl_otlp_span_set_str(&s, "messaging.system", "kafka");
    sl_otlp_span_set_str(&s, "messaging.destination.name", a->topic);
    sl_otlp_span_set_int(&s, "messaging.destination.partition.id", p->id);
    sl_otlp_span_set_int(&s, "sluice.archive.first_offset", j->batch->first_offset);
    sl_otlp_span_set_int(&s, "sluice.archive.last_offset", j->batch->last_offset);
    sl_otlp_span_set_int(&s, "sluice.archive.records", (int64_t)j->batch->records);
    sl_otlp_span_set_int(&s, "sluice.archive.bytes_raw", (int64_t)j->batch->raw_len);
    sl_otlp_span_set_int(&s, "sluice.archive.bytes_stored", (int64_t)j->batch->body.len);
    sl_otlp_span_set_int(&s, "sluice.archive.attempts", (int64_t)j->attempts + 1);
    sl_otlp_span_end(a->tracer, &s, 0);
}

/* The object is durable and its offset committed by the write's thread, or, when that commit
 * failed, committed here: synchronously on the loop thread, so a revocation (also on this
 * thread) never races it. Then the batch is counted and the partition's next one dispatched. */
static void job_commit(struct ar_archiver *a, struct ar_part *p, struct ar_job *j) {
    rd_kafka_resp_err_t err = j->committed
                                  ? RD_KAFKA_RESP_ERR_NO_ERROR
                                  : commit_offset(sl_kafka_consumer_handle(a->consumer), a->topic,
                                                  p->id, j->batch->last_offset + 1);
    if (err) {
        sl_counter_inc(a->commit_failures);
        SL_WARN("commit of %s[%" PRId32 "] at %" PRId64 " after writing %s failed: %s; retrying",
                a->topic, p->id, j->batch->last_offset + 1, j->key, rd_kafka_err2str(err));
        job_retry_later(a, j, true);
        return;
    }
    sl_counter_add(a->records, j->batch->records);
    sl_counter_add(a->bytes_raw, j->batch->raw_len);
    sl_counter_add(a->bytes_stored, j->batch->body.len);
    sl_counter_inc(a->objects);
    sl_histogram_observe(a->upload_seconds, (double)(sl_time_mono_ns() - j->first_try_ns) / 1e9);
    trace_batch(a, p, j);
    SL_DEBUG("archived %s: %" PRIu64 " records, offsets %" PRId64 "..%" PRId64, j->key,
             j->batch->records, j->batch->first_offset, j->batch->last_offset);
    p->job = NULL;
    job_free(j);
    dispatch(a, p);
}

static void maybe_finish_stop(struct ar_archiver *a);

static void job_after(uv_work_t *w, int status) {
    struct ar_job *j = w->data;
    struct ar_archiver *a = j->a;
    a->jobs_outstanding--;
    struct ar_part *p = j->part;
    if (!p) { /* revoked while queued or running: the new owner writes it again */
        job_free(j);
        maybe_finish_stop(a);
        return;
    }
    if (status == UV_ECANCELED)
        j->rc = SL_ERR_CLOSED;
    if (j->rc == 0) {
        j->written = true;
        job_commit(a, p, j);
        return;
    }
    enum ar_failure f = j->res.failure ? j->res.failure : AR_FAIL_IO;
    bool heals = ar_failure_heals(f);
    sl_counter_inc(a->failures[f]);
    job_retry_later(a, j, heals);
    uint64_t wait_ms = (j->retry_at_ns - sl_time_mono_ns()) / 1000000u;
    if (heals)
        SL_WARN("writing %s failed (%s, status %ld): %s; attempt %u, retry in %" PRIu64 " ms",
                j->key, ar_failure_name(f), j->res.status, j->res.message, j->attempts, wait_ms);
    else
        SL_ERROR("writing %s failed and will not heal by itself (%s, status %ld): %s; the batch "
                 "is kept, nothing is committed, retry in %" PRIu64 " ms",
                 j->key, ar_failure_name(f), j->res.status, j->res.message, wait_ms);
}

/* Starts writing the partition's oldest closed batch when none is in flight, and pauses or
 * resumes fetching: a partition fetches only while no closed batch waits. */
static void dispatch(struct ar_archiver *a, struct ar_part *p) {
    if (!p->job && p->sealed && !a->stopping) {
        struct ar_batch *b = p->sealed;
        p->sealed = b->next;
        if (!p->sealed)
            p->sealed_tail = NULL;
        b->next = NULL;
        struct ar_job *j = calloc(1, sizeof *j);
        if (!j) {
            SL_ERROR("out of memory for a batch of %s[%" PRId32 "]; exiting, the group reads it "
                     "again",
                     a->topic, p->id);
            _exit(1);
        }
        j->work.data = j;
        j->a = a;
        j->part = p;
        j->batch = b;
        pthread_mutex_init(&j->mu, NULL);
        pthread_cond_init(&j->cv, NULL);
        j->rk = sl_kafka_consumer_handle(a->consumer);
        j->first_try_ns = sl_time_mono_ns();
        j->first_try_epoch_ns = a->tracer ? sl_otlp_now_ns() : 0;
        if (ar_batch_key(b, a->sink->prefix, a->topic, j->key, sizeof j->key) < 0) {
            SL_ERROR("object key too long for %s[%" PRId32 "]", a->topic, p->id);
            _exit(1);
        }
        p->job = j;
        job_queue(a, j);
    }
    set_paused(a, p, p->sealed != NULL);
}

static void close_open(struct ar_archiver *a, struct ar_part *p) {
    struct ar_batch *b = p->open;
    p->open = NULL;
    if (ar_batch_finish(b) < 0) {
        SL_ERROR("out of memory closing a batch of %s[%" PRId32 "]; exiting, the group reads it "
                 "again",
                 a->topic, p->id);
        _exit(1);
    }
    if (p->sealed_tail)
        p->sealed_tail->next = b;
    else
        p->sealed = b;
    p->sealed_tail = b;
    dispatch(a, p);
}

/*
 * The partition is no longer ours. Nothing of it may be written or committed after this
 * returns: a write in progress is cancelled and waited for (an upload whose body is fully
 * sent is let finish, since the server may store it anyway), one still queued is cancelled.
 */
static void part_drop(struct ar_archiver *a, struct ar_part *p) {
    struct ar_job *j = p->job;
    if (j) {
        pthread_mutex_lock(&j->mu);
        atomic_store(&j->cancel, true);
        while (j->state == JOB_RUNNING)
            pthread_cond_wait(&j->cv, &j->mu);
        enum job_state st = j->state;
        pthread_mutex_unlock(&j->mu);
        if (st == JOB_QUEUED)
            (void)uv_cancel((uv_req_t *)&j->work); /* after_work still runs, and frees it */
        if (st == JOB_WAITING) {
            job_free(j);
        } else {
            j->part = NULL;
        }
        p->job = NULL;
    }
    while (p->sealed) {
        struct ar_batch *b = p->sealed;
        p->sealed = b->next;
        ar_batch_free(b);
    }
    p->sealed_tail = NULL;
    ar_batch_free(p->open);
    p->open = NULL;
    if (p->paused)
        sl_gauge_add(a->paused_parts, -1);
    p->paused = false; /* the consumer kit resumes a partition before it unassigns it */
    p->assigned = false;
    p->next_offset = -1;
}

static void on_rebalance(struct sl_kafka_consumer *c, int assigned,
                         const rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct ar_archiver *a = opaque;
    (void)c;
    for (int i = 0; i < parts->cnt; i++) {
        if (strcmp(parts->elems[i].topic, a->topic) != 0)
            continue;
        struct ar_part *p = part_get(a, parts->elems[i].partition, assigned);
        if (!p)
            continue;
        if (assigned) {
            part_drop(a, p); /* a fresh start: nothing of a former ownership survives */
            p->assigned = true;
        } else if (p->assigned) {
            part_drop(a, p);
        }
    }
    SL_INFO("partitions of %s %s: %d", a->topic, assigned ? "assigned" : "revoked", parts->cnt);
}

static void on_message(const struct sl_kafka_message *m, void *opaque) {
    struct ar_archiver *a = opaque;
    struct ar_part *p = part_get(a, m->partition, false);
    if (!p || !p->assigned || a->stopping || strcmp(m->topic, a->topic) != 0)
        return; /* left over from before a revocation: its new owner reads it */
    int64_t ts = m->timestamp_ms >= 0 ? m->timestamp_ms : sl_time_now_ms();
    int64_t day = ar_day_of(ts);
    size_t need = m->vlen + 1;
    if (p->open && (p->open->day != day ||
                    (p->open->records > 0 && p->open->raw_len + need > a->s->batch_max_bytes)))
        close_open(a, p);
    uint64_t now = sl_time_mono_ns();
    if (!p->open &&
        !(p->open = ar_batch_new(p->id, day, (int)a->s->gzip_level, a->s->batch_max_bytes + 1))) {
        SL_ERROR("out of memory for %s[%" PRId32 "]; exiting, the group reads it again", a->topic,
                 p->id);
        _exit(1);
    }
    if (ar_batch_add(p->open, m->offset, ts, m->value, m->vlen, now) < 0) {
        SL_ERROR("out of memory for %s[%" PRId32 "]; exiting, the group reads it again", a->topic,
                 p->id);
        _exit(1);
    }
    p->next_offset = m->offset + 1;
    if (p->open->records >= (uint64_t)a->s->batch_max_records ||
        p->open->raw_len >= a->s->batch_max_bytes)
        close_open(a, p);
}

/* ---- the tick: age limits, retries, gauges ---------------------------------------------- */

static void update_gauges(struct ar_archiver *a, uint64_t now) {
    if (now - a->last_gauges_ns < 1000000000u)
        return;
    a->last_gauges_ns = now;
    int64_t lag = 0, oldest = INT64_MAX;
    size_t buffered = 0;
    rd_kafka_t *rk = sl_kafka_consumer_handle(a->consumer);
    for (size_t i = 0; i < a->nparts; i++) {
        struct ar_part *p = &a->parts[i];
        if (!p->assigned)
            continue;
        int64_t lo, hi;
        if (p->next_offset >= 0 &&
            rd_kafka_get_watermark_offsets(rk, a->topic, p->id, &lo, &hi) == 0 &&
            hi > p->next_offset)
            lag += hi - p->next_offset;
        const struct ar_batch *first = p->job ? p->job->batch : p->sealed ? p->sealed : p->open;
        if (first && first->first_timestamp_ms < oldest)
            oldest = first->first_timestamp_ms;
        if (p->job)
            buffered += p->job->batch->body.len;
        for (const struct ar_batch *b = p->sealed; b; b = b->next)
            buffered += b->body.len;
        if (p->open)
            buffered += p->open->body.len;
    }
    sl_gauge_set(a->lag, lag);
    int64_t age = oldest == INT64_MAX ? 0 : (sl_time_now_ms() - oldest) / 1000;
    sl_gauge_set(a->oldest_age, age > 0 ? age : 0);
    sl_gauge_set(a->buffered_bytes, (int64_t)buffered);
}

static void on_tick(uv_timer_t *t) {
    struct ar_archiver *a = t->data;
    if (a->stopping)
        return;
    uint64_t now = sl_time_mono_ns();
    uint64_t max_age_ns = (uint64_t)a->s->batch_max_age_ms * 1000000u;
    for (size_t i = 0; i < a->nparts; i++) {
        struct ar_part *p = &a->parts[i];
        if (!p->assigned)
            continue;
        if (p->open && p->open->records > 0 && now - p->open->opened_ns >= max_age_ns)
            close_open(a, p);
        struct ar_job *j = p->job;
        if (j && j->state == JOB_WAITING && now >= j->retry_at_ns) {
            if (j->written)
                job_commit(a, p, j);
            else
                job_queue(a, j);
        }
    }
    update_gauges(a, now);
}

/* ---- admin ------------------------------------------------------------------------------ */

static int ready(struct sl_buf *reason, void *data) {
    struct ar_archiver *a = data;
    if (a->stopping) {
        sl_buf_append_str(reason, "shutting down");
        return 0;
    }
    if (!a->consumer || sl_kafka_consumer_state(a->consumer) == SL_KAFKA_DOWN) {
        sl_buf_append_str(reason, "kafka not connected");
        return 0;
    }
    return 1;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int ar_archiver_new(uv_loop_t *loop, const struct ar_settings *s, const char *const *kafka_props,
                    const char *instance_id, bool check, struct ar_archiver **out,
                    struct sl_buf *err) {
    struct ar_archiver *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->loop = loop;
    a->s = s;
    a->kafka_props = kafka_props;
    snprintf(a->instance_id, sizeof a->instance_id, "%s", instance_id);
    a->rng = sl_time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ UINT64_C(0x9e3779b97f4a7c15);
    if (!a->rng)
        a->rng = 1;
    int rc = sl_topic_name(s->topic_prefix, SL_TOPIC_AUDIT, a->topic, sizeof a->topic);
    if (rc < 0) {
        sl_buf_printf(err, "SLUICE_TOPIC_PREFIX: the audit topic's name is too long\n");
        free(a);
        return SL_ERR_CONFIG;
    }
    if (!(a->metrics = sl_metrics_new()) || (rc = register_metrics(a)) < 0) {
        sl_metrics_free(a->metrics);
        free(a);
        return -ENOMEM;
    }
    sl_trace_rand_init(&a->trace_rand);
    if ((rc = sl_otlp_tracer_for_service(s->otlp_endpoint, "sluice-archiver", a->metrics,
                                         &a->tracer, err)) < 0) {
        sl_metrics_free(a->metrics);
        free(a);
        return rc;
    }
    if ((rc = ar_sink_open(s, check, &a->sink, err)) < 0) {
        sl_otlp_tracer_free(a->tracer);
        sl_metrics_free(a->metrics);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int ar_archiver_start(struct ar_archiver *a, struct sl_buf *err) {
    static const enum sl_topic own_topics[] = {SL_TOPIC_AUDIT};
    /* First, so that /healthz answers while the archiver waits for Kafka (/readyz says 503). */
    int rc;
    struct sl_admin_options ao = {.metrics = a->metrics, .ready = ready, .data = a};
    const struct sl_config_hostport *hp = &a->s->admin_listen;
    char listen[SL_CONFIG_HOST_MAX + 16]; /* for the message only */
    snprintf(listen, sizeof listen, strchr(hp->host, ':') ? "[%s]:%d" : "%s:%d", hp->host,
             hp->port);
    if ((rc = sl_admin_init(&a->admin, a->loop, &ao)) < 0 ||
        (rc = sl_admin_start(a->admin, hp->host, hp->port)) < 0) {
        sl_buf_printf(err, "SLUICE_ADMIN_LISTEN: cannot listen on %s: %s\n", listen,
                      sl_strerror(rc));
        return rc;
    }
    rc = sl_topics_ensure(a->kafka_props, a->s->topic_prefix, own_topics, 1,
                          a->s->auto_create_topics, AR_STARTUP_TIMEOUT_MS, err);
    if (rc < 0)
        return rc;
    /* Offsets move only through job_commit, after an object is written: nothing else may
     * commit, and the revocation must finish before another member owns a partition. */
    const char *const owned[] = {"group.id",
                                 a->s->group_id,
                                 "group.instance.id",
                                 a->instance_id,
                                 "partition.assignment.strategy",
                                 "range",
                                 "enable.auto.commit",
                                 "false",
                                 "enable.auto.offset.store",
                                 "false",
                                 NULL};
    static const char *const defaults[] = {
        "auto.offset.reset", "earliest",
        /* A static member's partitions wait this long for it after a crash. */
        "session.timeout.ms", "10000",
        /* What librdkafka prefetches counts against the memory bound (docs/archiver.md). */
        "queued.max.messages.kbytes", "16384", NULL};
    const char **props = sl_config_kafka_merge(a->kafka_props, defaults, owned, "audit consumer");
    if (!props)
        return -ENOMEM;
    char errstr[SL_KAFKA_ERRSTR_LEN] = "";
    rc = sl_kafka_consumer_new(a->loop, props, on_message, a, &a->consumer, errstr, sizeof errstr);
    free(props);
    if (rc < 0) {
        sl_buf_printf(err, "kafka consumer: %s", errstr);
        return rc;
    }
    sl_kafka_consumer_set_rebalance_cb(a->consumer, on_rebalance, a);
    uv_timer_init(a->loop, &a->tick);
    a->tick.data = a;
    a->tick_started = true;
    uint64_t period = (uint64_t)a->s->batch_max_age_ms / 10;
    period = period < 10 ? 10 : period > 100 ? 100 : period;
    uv_timer_start(&a->tick, on_tick, period, period);
    const char *topics[] = {a->topic};
    if ((rc = sl_kafka_consumer_subscribe(a->consumer, topics, 1)) < 0) {
        sl_buf_printf(err, "cannot subscribe to %s", a->topic);
        return rc;
    }
    SL_INFO("archiver %s: group %s on %s, writing to %s", a->instance_id, a->s->group_id, a->topic,
            a->s->archive_url);
    return 0;
}

static void maybe_finish_stop(struct ar_archiver *a) {
    if (!a->stop_cb || a->pending_closes > 0 || a->jobs_outstanding > 0)
        return;
    for (size_t i = 0; i < a->nparts; i++)
        part_drop(a, &a->parts[i]);
    free(a->parts);
    if (a->sink)
        a->sink->free(a->sink);
    sl_otlp_tracer_free(a->tracer); /* a last flush, bounded */
    sl_metrics_free(a->metrics);
    void (*cb)(void *) = a->stop_cb;
    void *data = a->stop_data;
    free(a);
    cb(data);
}

static void close_done(void *data) {
    struct ar_archiver *a = data;
    a->pending_closes--;
    maybe_finish_stop(a);
}

static void on_tick_closed(uv_handle_t *h) {
    close_done(h->data);
}

static void after_consumer(void *data) {
    struct ar_archiver *a = data;
    a->consumer = NULL;
    a->pending_closes = 1; /* released below, after every close has been started */
    if (a->admin) {
        a->pending_closes++;
        sl_admin_close(a->admin, close_done, a);
        a->admin = NULL;
    }
    if (a->tick_started) {
        a->pending_closes++;
        uv_close((uv_handle_t *)&a->tick, on_tick_closed);
    }
    close_done(a);
}

void ar_archiver_stop(struct ar_archiver *a, void (*cb)(void *data), void *data) {
    a->stopping = true;
    a->stop_cb = cb;
    a->stop_data = data;
    a->pending_closes = 1; /* until after_consumer has started the other closes */
    if (a->tick_started)
        uv_timer_stop(&a->tick);
    size_t open = 0;
    for (size_t i = 0; i < a->nparts; i++)
        open += a->parts[i].open || a->parts[i].sealed || a->parts[i].job;
    if (open)
        SL_INFO("stopping with %zu partition(s) holding uncommitted records; they are read "
                "again",
                open);
    if (a->consumer) {
        struct sl_kafka_consumer *c = a->consumer;
        sl_kafka_consumer_close(c, after_consumer, a);
        /* The handle stays valid until after_consumer; the revocation runs from the close. */
        return;
    }
    after_consumer(a);
}
