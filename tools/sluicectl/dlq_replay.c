/* sluicectl dlq replay: republish dead-lettered requests, exactly once per job (Kafka
 * transactions). */
#include "dlq.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/buf.h"
#include "sluice/kafka.h"
#include "sluice/time.h"

/* A replayed request may wait in <prefix>requests this long before the worker calls it expired. */
#define REPLAY_DEADLINE_MS (10 * 60 * 1000)
/* A transaction closes after this many records or this long, whichever comes first. */
#define TXN_MAX_RECORDS     5000
#define TXN_MAX_MS          500
#define DEFAULT_RATE        100.0
#define DEFAULT_MAX_REPLAYS 3

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

/* DLQ metadata and replay bookkeeping on the DLQ record that a republished request drops. */
static bool dropped_header(const char *name) {
    static const char *const exact[] = {"sluice-dlq-reason", "sluice-dlq-error",
                                        "sluice-attempts",   "sluice-first-failure-ms",
                                        "sluice-worker",     "sluice-reply-partition",
                                        "sluice-deadline-ms"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(name, exact[i]))
            return true;
    return !strncmp(name, "kafka_dlt-", 10) || !strncmp(name, "sluice-replay-", 14);
}

struct job {
    const struct ctl_env *env;
    const char *name;
    char group[300];
    char requests[256];
    struct dlq_filter f;
    double rate;          /* records per second; 0: no limit */
    long max;             /* -1: no limit (whole job) */
    uint32_t max_replays; /* skip records with replay_count >= this */
    bool dry_run, json;
    struct dlq_scan scan;
    rd_kafka_t *producer;
    rd_kafka_consumer_group_metadata_t *cgmd;
    /* Per-partition job totals (committed plus this run's uncommitted part). */
    long *sel, *rep, *skip;
    long run_selected, run_replayed, skip_limit, skip_not_request; /* this run */
    long prior_replayed;
    int delivery_errors;
    char delivery_error[256];
    /* The token bucket. */
    double tokens;
    uint64_t bucket_ns;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    struct job *j = opaque;
    if (m->err && j->delivery_errors++ == 0)
        snprintf(j->delivery_error, sizeof j->delivery_error, "%s", rd_kafka_err2str(m->err));
}

static int valid_job_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static int parse_args(const struct ctl_args *a, struct job *j, char *auto_name, size_t len) {
    int rc = dlq_filter_from_args(a, "replay", &j->f);
    if (rc)
        return rc;
    const char *v;
    j->rate = DEFAULT_RATE;
    if ((v = ctl_arg(a, "--rate"))) {
        char *end;
        errno = 0;
        double r = strtod(v, &end);
        if (!strcmp(end, "/s"))
            end += 2;
        if (errno || end == v || *end || !(r >= 0 && r <= 1e7))
            return ctl_usage_error(
                "dlq", "replay", "--rate: '%s' is not a rate such as 50 or 50/s (0: no limit)", v);
        j->rate = r;
    }
    j->max = -1;
    if ((v = ctl_arg(a, "--max"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 1)
            return ctl_usage_error("dlq", "replay", "--max: '%s' is not a count of 1 or more", v);
        j->max = n;
    }
    j->max_replays = DEFAULT_MAX_REPLAYS;
    if ((v = ctl_arg(a, "--max-replays"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || end == v || n < 1 || n > 1000)
            return ctl_usage_error("dlq", "replay", "--max-replays: '%s' is not 1..1000", v);
        j->max_replays = (uint32_t)n;
    }
    j->name = ctl_arg(a, "--job");
    if (j->name && !valid_job_name(j->name))
        return ctl_usage_error("dlq", "replay",
                               "--job: '%s' is not a job name (1-100 letters, digits, '.', '_', "
                               "'-')",
                               j->name);
    if (!j->name) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(auto_name, len, "replay-%Y%m%dT%H%M%SZ", &tm);
        j->name = auto_name;
    }
    j->dry_run = ctl_flag(a, "--dry-run");
    j->json = ctl_flag(a, "--json");
    if (j->json && !j->dry_run)
        return ctl_usage_error("dlq", "replay", "--json goes with --dry-run");
    return 0;
}

/* Waits for a token of the bucket. It holds a quarter of a second's worth (at least 1), so a
 * transaction's commit does not cost the job its rate, and it starts with one. */
static void take_token(struct job *j) {
    if (j->rate <= 0)
        return;
    double cap = j->rate / 4 > 1 ? j->rate / 4 : 1;
    for (;;) {
        uint64_t now = sl_time_mono_ns();
        j->tokens += (double)(now - j->bucket_ns) / 1e9 * j->rate;
        j->bucket_ns = now;
        if (j->tokens > cap)
            j->tokens = cap;
        if (j->tokens >= 1) {
            j->tokens -= 1;
            return;
        }
        double wait_s = (1 - j->tokens) / j->rate;
        struct timespec ts = {.tv_sec = (time_t)wait_s,
                              .tv_nsec = (long)((wait_s - floor(wait_s)) * 1e9)};
        if (j->producer)
            rd_kafka_poll(j->producer, 0);
        nanosleep(&ts, NULL);
        if (stop_signal)
            return;
    }
}

/* ---- progress ---------------------------------------------------------------------------- */

struct progress {
    bool tty;
    uint64_t start_ns, last_ns;
    int64_t scanned;
};

static void progress_draw(struct progress *p, const struct job *j, bool force) {
    uint64_t now = sl_time_mono_ns();
    uint64_t every = p->tty ? 100000000u : 5000000000u;
    if (!force && now - p->last_ns < every)
        return;
    p->last_ns = now;
    double secs = (double)(now - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)j->run_replayed / secs : 0;
    long skipped = j->skip_limit + j->skip_not_request;
    char eta[32] = "-";
    int64_t total = j->scan.total;
    if (p->scanned > 0 && secs > 0.2 && total > p->scanned)
        snprintf(eta, sizeof eta, "%.0fs",
                 secs * (double)(total - p->scanned) / (double)p->scanned);
    else if (total <= p->scanned)
        snprintf(eta, sizeof eta, "0s");
    if (p->tty) {
        int width = 30, done = total > 0 ? (int)(width * p->scanned / total) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr,
                "\r\033[K[%s] %" PRId64 "/%" PRId64 " read, %ld replayed, %ld skipped, "
                "%.0f/s, ETA %s",
                bar, p->scanned, total, j->run_replayed, skipped, rate, eta);
    } else {
        fprintf(stderr,
                "dlq replay %s: %" PRId64 "/%" PRId64 " read, %ld replayed, %ld skipped, "
                "%.0f/s, ETA %s\n",
                j->name, p->scanned, total, j->run_replayed, skipped, rate, eta);
    }
    fflush(stderr);
}

/* ---- the transaction --------------------------------------------------------------------- */

static int txn_fail(struct job *j, const char *what, rd_kafka_error_t *e) {
    int rc = ctl_op_error("dlq", "replay",
                          "%s: %s; nothing of this transaction was replayed: run the same command "
                          "again to resume job %s",
                          what, rd_kafka_error_string(e), j->name);
    if (!rd_kafka_error_is_fatal(e) && !rd_kafka_error_txn_requires_abort(e)) {
        rd_kafka_error_destroy(e);
        return rc;
    }
    if (rd_kafka_error_txn_requires_abort(e)) {
        rd_kafka_error_t *ae = rd_kafka_abort_transaction(j->producer, 30000);
        if (ae)
            rd_kafka_error_destroy(ae);
    }
    rd_kafka_error_destroy(e);
    return rc;
}

/* Commits the open transaction with the job's position: each partition's next offset, and the
 * job's counters for that partition as the offset's metadata. */
static int txn_commit(struct job *j) {
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(j->scan.nparts);
    for (int p = 0; p < j->scan.nparts; p++) {
        if (j->scan.next[p] <= 0 && !j->sel[p])
            continue;
        rd_kafka_topic_partition_t *e = rd_kafka_topic_partition_list_add(offs, j->scan.topic, p);
        e->offset = j->scan.next[p];
        char meta[96];
        int n = snprintf(meta, sizeof meta, "s=%ld,r=%ld,k=%ld", j->sel[p], j->rep[p], j->skip[p]);
        e->metadata = malloc((size_t)n);
        if (e->metadata) {
            memcpy(e->metadata, meta, (size_t)n);
            e->metadata_size = (size_t)n;
        }
    }
    rd_kafka_error_t *e = NULL;
    if (offs->cnt)
        e = rd_kafka_send_offsets_to_transaction(j->producer, offs, j->cgmd, 30000);
    rd_kafka_topic_partition_list_destroy(offs);
    if (e)
        return txn_fail(j, "cannot add the job's position to the transaction", e);
    if ((e = rd_kafka_commit_transaction(j->producer, 60000)))
        return txn_fail(j, "cannot commit the transaction", e);
    if (j->delivery_errors)
        return ctl_op_error("dlq", "replay", "a replayed record was refused: %s",
                            j->delivery_error);
    return 0;
}

static int open_producer(struct job *j) {
    char errstr[512];
    rd_kafka_conf_t *conf = dlq_kafka_conf(j->env, errstr, sizeof errstr);
    if (!conf)
        return ctl_op_error("dlq", "replay", "%s", errstr);
    if (rd_kafka_conf_set(conf, "transactional.id", j->group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr)) {
        rd_kafka_conf_destroy(conf);
        return ctl_op_error("dlq", "replay", "%s", errstr);
    }
    rd_kafka_conf_set(conf, "log.connection.close", "false", NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, j);
    j->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!j->producer) {
        rd_kafka_conf_destroy(conf);
        return ctl_op_error("dlq", "replay", "kafka producer: %s", errstr);
    }
    /* An unreachable cluster is said within 10 s, before the longer transactional start. */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(j->producer, 0, NULL, &md, 10000);
    if (err)
        return ctl_op_error("dlq", "replay",
                            "cannot read the topic list: %s (Kafka at %s, "
                            "SLUICE_KAFKA_BOOTSTRAP_SERVERS)",
                            rd_kafka_err2str(err), dlq_bootstrap(j->env));
    rd_kafka_metadata_destroy(md);
    /* Fences an earlier run of the same job and aborts what it left open, before the job's
     * position is read: that read waits for no transaction then. */
    rd_kafka_error_t *e = rd_kafka_init_transactions(j->producer, 30000);
    if (e) {
        int rc = ctl_op_error("dlq", "replay",
                              "cannot start the job's transactions: %s (Kafka at %s, "
                              "SLUICE_KAFKA_BOOTSTRAP_SERVERS)",
                              rd_kafka_error_string(e), dlq_bootstrap(j->env));
        rd_kafka_error_destroy(e);
        return rc;
    }
    return 0;
}

/* Republishes r's request as a replay: reply_partition -1, replay_count + 1, a new deadline. */
static int produce_replay(struct job *j, const struct dlq_record *r, struct sl_buf *buf) {
    struct sl_envelope_request q = r->req;
    q.reply_partition = -1;
    q.replay_count = r->req.replay_count + 1;
    q.attempt = 1;
    q.deadline_ms = sl_time_now_ms() + REPLAY_DEADLINE_MS;
    sl_buf_reset(buf);
    if (sl_envelope_encode_request(&q, buf) < 0)
        return ctl_op_error("dlq", "replay", "cannot encode record %" PRId32 ":%" PRId64,
                            r->partition, r->offset);
    rd_kafka_headers_t *hs = rd_kafka_headers_new(16);
    rd_kafka_headers_t *old = NULL;
    if (rd_kafka_message_headers(r->msg, &old) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *v;
        size_t n;
        for (size_t i = 0; rd_kafka_header_get_all(old, i, &name, &v, &n) == 0; i++)
            if (!dropped_header(name))
                rd_kafka_header_add(hs, name, -1, v, (ssize_t)n);
    }
    char po[48], origin[320];
    snprintf(po, sizeof po, "%" PRId32 ":%" PRId64, r->partition, r->offset);
    snprintf(origin, sizeof origin, "%s/%" PRId32 ":%" PRId64, r->orig_topic, r->orig_partition,
             r->orig_offset);
    rd_kafka_header_add(hs, "sluice-replay-job", -1, j->name, -1);
    rd_kafka_header_add(hs, "sluice-replay-dlq", -1, po, -1);
    rd_kafka_header_add(hs, "sluice-replay-origin", -1, origin, -1);
    const rd_kafka_message_t *m = r->msg;
    for (;;) {
        /* rd_kafka_produceva, not the producev macros: those paste GNU-style varargs. */
        rd_kafka_vu_t vus[] = {
            {.vtype = RD_KAFKA_VTYPE_TOPIC, .u.cstr = j->requests},
            {.vtype = RD_KAFKA_VTYPE_KEY, .u.mem = {m->key, m->key_len}},
            {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {buf->data, buf->len}},
            {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
            {.vtype = RD_KAFKA_VTYPE_HEADERS, .u.headers = hs},
        };
        rd_kafka_error_t *e = rd_kafka_produceva(j->producer, vus, sizeof vus / sizeof vus[0]);
        rd_kafka_resp_err_t err = e ? rd_kafka_error_code(e) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (e)
            rd_kafka_error_destroy(e);
        if (!err)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_headers_destroy(hs);
            return ctl_op_error("dlq", "replay", "cannot produce to %s: %s", j->requests,
                                rd_kafka_err2str(err));
        }
        rd_kafka_poll(j->producer, 10);
    }
}

/* ---- the command ------------------------------------------------------------------------- */

static void summary(const struct job *j, const struct progress *p, bool interrupted, bool done) {
    long sel = 0, rep = 0, skip = 0;
    for (int i = 0; i < j->scan.nparts; i++) {
        sel += j->sel[i];
        rep += j->rep[i];
        skip += j->skip[i];
    }
    double secs = (double)(sl_time_mono_ns() - p->start_ns) / 1e9;
    if (j->dry_run) {
        printf("dry run of job %s: would replay %ld, skip %ld (%ld at the replay limit of %" PRIu32
               ", %ld not request envelopes); nothing was written\n",
               j->name, j->run_replayed, j->skip_limit + j->skip_not_request, j->skip_limit,
               j->max_replays, j->skip_not_request);
        return;
    }
    printf("job %s: replayed %ld in %.1f s (%.0f/s), skipped %ld (%ld at the replay limit of "
           "%" PRIu32 ", %ld not request envelopes)\n",
           j->name, j->run_replayed, secs, secs > 0 ? (double)j->run_replayed / secs : 0.0,
           j->skip_limit + j->skip_not_request, j->skip_limit, j->max_replays, j->skip_not_request);
    printf("job %s in total: selected %ld, replayed %ld, skipped %ld%s\n", j->name, sel, rep, skip,
           done ? "" : " so far");
    if (interrupted)
        printf("stopped by a signal between transactions: run the same command (--job %s, the "
               "same filters) to resume\n",
               j->name);
}

int ctl_dlq_replay(const struct ctl_args *a, const struct ctl_env *env) {
    struct job j = {.env = env};
    char auto_name[64];
    int rc = parse_args(a, &j, auto_name, sizeof auto_name);
    if (rc)
        return rc;
    char dlq_topic[256];
    if (dlq_job_group(env, j.name, j.group, sizeof j.group) < 0 ||
        dlq_topic_names(env, dlq_topic, j.requests, sizeof j.requests) < 0)
        return ctl_op_error("dlq", "replay", "SLUICE_TOPIC_PREFIX is too long");
    if (dlq_require_bootstrap(env, "dlq", "replay"))
        return CTL_EXIT_ERROR;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!j.dry_run && (rc = open_producer(&j)))
        goto out;
    if ((rc = dlq_scan_open(&j.scan, env, "replay", j.group, j.f.since_ms)))
        goto out;
    int np = j.scan.nparts;
    j.sel = calloc((size_t)np, sizeof *j.sel);
    j.rep = calloc((size_t)np, sizeof *j.rep);
    j.skip = calloc((size_t)np, sizeof *j.skip);
    if (!j.sel || !j.rep || !j.skip) {
        rc = ctl_op_error("dlq", "replay", "out of memory");
        goto out;
    }
    for (int p = 0; p < np; p++) {
        if (j.scan.committed[p])
            sscanf(j.scan.committed[p], "s=%ld,r=%ld,k=%ld", &j.sel[p], &j.rep[p], &j.skip[p]);
        j.prior_replayed += j.rep[p];
    }
    if (!j.dry_run) {
        j.cgmd = rd_kafka_consumer_group_metadata(j.scan.rk);
        if (!j.cgmd) {
            rc = ctl_op_error("dlq", "replay", "no consumer group metadata for %s", j.group);
            goto out;
        }
    }
    if (j.prior_replayed && !j.json)
        fprintf(stderr, "dlq replay: resuming job %s (%ld replayed before)\n", j.name,
                j.prior_replayed);

    struct progress prog = {.tty = isatty(STDERR_FILENO) && !j.json && !j.dry_run,
                            .start_ns = sl_time_mono_ns()};
    prog.last_ns = prog.start_ns;
    j.bucket_ns = prog.start_ns;
    j.tokens = 1;
    struct dlq_table table;
    dlq_table_init(&table);
    if (j.dry_run && !j.json)
        dlq_table_header(&table, "ACTION");
    struct sl_buf buf;
    sl_buf_init(&buf, 80u << 20);
    bool in_txn = false, interrupted = false, finished = false;
    long txn_records = 0;
    uint64_t txn_start = 0;
    for (;;) {
        if (stop_signal) {
            interrupted = true;
            break;
        }
        if (j.max >= 0 && j.prior_replayed + j.run_replayed >= j.max) {
            finished = true;
            break;
        }
        if (!j.dry_run && !in_txn) {
            rd_kafka_error_t *e = rd_kafka_begin_transaction(j.producer);
            if (e) {
                rc = txn_fail(&j, "cannot begin a transaction", e);
                break;
            }
            in_txn = true;
            txn_records = 0;
            txn_start = sl_time_mono_ns();
        }
        rd_kafka_message_t *m;
        int n = dlq_scan_next(&j.scan, "replay", &m);
        if (n < 0) {
            rc = -n;
            break;
        }
        if (n == 0) {
            finished = true;
            break;
        }
        prog.scanned++;
        struct dlq_record r;
        dlq_record_parse(m, &r);
        int p = r.partition;
        if (dlq_filter_match(&j.f, &r)) {
            j.sel[p]++;
            j.run_selected++;
            const char *skip = NULL;
            if (!r.decoded) {
                skip = "skip: not a request";
                j.skip_not_request++;
            } else if (r.req.replay_count >= j.max_replays) {
                skip = "skip: replay limit";
                j.skip_limit++;
            }
            if (skip) {
                j.skip[p]++;
            } else {
                if (!j.dry_run) {
                    take_token(&j);
                    rc = produce_replay(&j, &r, &buf);
                }
                if (rc == 0) {
                    j.rep[p]++;
                    j.run_replayed++;
                    txn_records++;
                }
            }
            if (j.dry_run) {
                if (j.json)
                    dlq_json_line(&r, skip ? skip : "replay");
                else
                    dlq_table_row(&table, &r, skip ? skip : "replay");
            }
        }
        dlq_record_free(&r);
        rd_kafka_message_destroy(m);
        if (rc)
            break;
        if (!j.dry_run) {
            rd_kafka_poll(j.producer, 0);
            if (txn_records >= TXN_MAX_RECORDS ||
                sl_time_mono_ns() - txn_start >= (uint64_t)TXN_MAX_MS * 1000000u) {
                if ((rc = txn_commit(&j)))
                    break;
                in_txn = false;
            }
            progress_draw(&prog, &j, false);
        }
    }
    if (!j.dry_run && in_txn && rc == 0)
        rc = txn_commit(&j);
    else if (!j.dry_run && in_txn) {
        rd_kafka_error_t *e = rd_kafka_abort_transaction(j.producer, 30000);
        if (e)
            rd_kafka_error_destroy(e);
    }
    if (!j.dry_run) {
        progress_draw(&prog, &j, true);
        if (prog.tty)
            fputc('\n', stderr);
    }
    sl_buf_free(&buf);
    if (rc == 0 || interrupted) {
        summary(&j, &prog, interrupted, finished);
        if (interrupted && rc == 0)
            rc = CTL_EXIT_ERROR;
    }
out:
    if (j.cgmd)
        rd_kafka_consumer_group_metadata_destroy(j.cgmd);
    dlq_scan_close(&j.scan);
    if (j.producer) {
        rd_kafka_flush(j.producer, 10000);
        rd_kafka_destroy(j.producer);
    }
    free(j.sel);
    free(j.rep);
    free(j.skip);
    fflush(stdout);
    return rc;
}
