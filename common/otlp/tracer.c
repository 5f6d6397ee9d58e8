/* The tracer: a bounded span queue and the thread that batches it to the collector over libcurl. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otlp_internal.h"
#include "sluice/buf.h"
#include "sluice/error.h"
#include "sluice/log.h"
#include "sluice/time.h"

extern char **environ;

int sl_otlp_queue_init(struct sl_otlp_queue *q, uint32_t cap) {
    *q = (struct sl_otlp_queue){.cap = cap};
    /* Touch every page now (explicit_bzero: compilers turn malloc + memset into a lazy calloc):
     * the queue's whole bound is committed at start, and spans never pay page faults. */
    q->slots = malloc((size_t)cap * sizeof *q->slots);
    if (!q->slots) {
        return -ENOMEM;
    }
    explicit_bzero(q->slots, (size_t)cap * sizeof *q->slots);
    return 0;
}

void sl_otlp_queue_destroy(struct sl_otlp_queue *q) {
    free(q->slots);
    q->slots = NULL;
}

int sl_otlp_queue_push(struct sl_otlp_queue *q, const struct sl_otlp_span *s) {
    if (q->count == q->cap) {
        return -ENOBUFS;
    }
    /* Only the used part of the strings is copied: most spans use a small fraction. */
    struct sl_otlp_span *d = &q->slots[(q->head + q->count) % q->cap];
    memcpy(d, s, offsetof(struct sl_otlp_span, strings));
    memcpy(d->strings, s->strings, s->used);
    q->count++;
    return 0;
}

void sl_otlp_queue_peek(const struct sl_otlp_queue *q, uint32_t n,
                        const struct sl_otlp_span **out) {
    for (uint32_t i = 0; i < n; i++) {
        out[i] = &q->slots[(q->head + i) % q->cap];
    }
}

void sl_otlp_queue_release(struct sl_otlp_queue *q, uint32_t n) {
    q->head = (q->head + n) % q->cap;
    q->count -= n;
}

void sl_otlp_count_dropped(struct sl_otlp_tracer *t, uint64_t n) {
    atomic_fetch_add_explicit(&t->dropped, n, memory_order_relaxed);
    if (t->m_dropped) {
        sl_counter_add(t->m_dropped, n);
    }
}

static void count(_Atomic uint64_t *c, struct sl_metric *m, uint64_t n) {
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    if (m && n) {
        sl_counter_add(m, n);
    }
}

static int64_t mono_ns(void) {
    return (int64_t)sl_time_mono_ns();
}

/* Absolute CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int64_t ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    return (struct timespec){.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
}

/* Keeps at most 4 KiB of the collector's answer: enough for a partialSuccess message. */
struct reply {
    char buf[4096];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
    struct reply *r = ud;
    size_t n = size * nmemb, room = sizeof r->buf - 1 - r->len;
    memcpy(r->buf + r->len, p, n < room ? n : room);
    r->len += n < room ? n : room;
    return n;
}

/* Ends a POST in flight once the shutdown deadline passed, so sl_otlp_tracer_free is bounded. */
static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
    struct sl_otlp_tracer *t = ud;
    (void)a, (void)b, (void)c, (void)d;
    int64_t at = atomic_load(&t->abort_at_ns);
    return at != 0 && mono_ns() >= at;
}

/* The spans of an accepted batch that the collector still rejected (partialSuccess). */
static uint64_t rejected_spans(struct reply *r) {
    r->buf[r->len] = '\0';
    cJSON *root = cJSON_Parse(r->buf);
    cJSON *ps = cJSON_GetObjectItem(root, "partialSuccess");
    cJSON *rej = cJSON_GetObjectItem(ps, "rejectedSpans");
    uint64_t n = 0;
    if (cJSON_IsString(rej)) {
        n = strtoull(rej->valuestring, NULL, 10);
    } else if (cJSON_IsNumber(rej) && rej->valuedouble > 0) {
        n = (uint64_t)rej->valuedouble;
    }
    cJSON_Delete(root);
    return n;
}

enum post_result { POST_OK, POST_RETRY, POST_FAIL };

static enum post_result post(struct sl_otlp_tracer *t, CURL *curl, const char *body,
                             int64_t timeout_ns, uint64_t *rejected, int64_t *retry_after_ns) {
    struct reply r = {.len = 0};
    long ms = (long)(timeout_ns / 1000000);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms > 1 ? ms : 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        SL_DEBUG("otlp export to %s: %s", t->url, curl_easy_strerror(rc));
        return POST_RETRY;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        *rejected = rejected_spans(&r);
        return POST_OK;
    }
    /* The OTLP/HTTP specification's retryable answers; anything else will not get better. */
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        curl_off_t after = 0; /* the collector's Retry-After, in seconds, when it sent one */
        if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0) {
            *retry_after_ns = (int64_t)(after < 3600 ? after : 3600) * 1000000000LL;
        }
        return POST_RETRY;
    }
    SL_WARN("otlp export to %s: HTTP %ld", t->url, status);
    return POST_FAIL;
}

/* Sends one batch, retrying with backoff within its time budget. Called without the lock. */
static void export_batch(struct sl_otlp_tracer *t, CURL *curl, const struct sl_otlp_span **spans,
                         uint32_t n) {
    char *body = sl_otlp_encode_json(&t->resource, spans, n);
    if (!body) {
        count(&t->failed, t->m_failed, n);
        return;
    }
    int64_t deadline = mono_ns() + (int64_t)t->opt.batch_timeout_ms * 1000000;
    int64_t backoff = 100 * 1000000LL;
    for (;;) {
        int64_t now = mono_ns(), left = deadline - now;
        int64_t abort_at = atomic_load(&t->abort_at_ns);
        if (abort_at && abort_at - now < left) {
            left = abort_at - now;
        }
        if (left <= 0) {
            count(&t->failed, t->m_failed, n);
            break;
        }
        int64_t timeout = (int64_t)t->opt.export_timeout_ms * 1000000;
        uint64_t rejected = 0;
        int64_t retry_after = 0;
        enum post_result pr =
            post(t, curl, body, timeout < left ? timeout : left, &rejected, &retry_after);
        if (pr == POST_OK) {
            rejected = rejected < n ? rejected : n;
            count(&t->exported, t->m_exported, n - rejected);
            count(&t->failed, t->m_failed, rejected);
            break;
        }
        if (pr == POST_FAIL) {
            count(&t->failed, t->m_failed, n);
            break;
        }
        /* Wait before the next attempt (at least what Retry-After asked), unless that would
         * outlast the batch's budget. At shutdown there is no next attempt: the final flush
         * makes one pass over the queue, so its time stays bounded. */
        int64_t wait = retry_after > backoff ? retry_after : backoff;
        if (mono_ns() + wait >= deadline) {
            count(&t->failed, t->m_failed, n);
            break;
        }
        pthread_mutex_lock(&t->mu);
        struct timespec until = deadline_in(wait);
        while (!t->stopping && pthread_cond_timedwait(&t->wake, &t->mu, &until) != ETIMEDOUT) {
        }
        bool stopping = t->stopping;
        pthread_mutex_unlock(&t->mu);
        if (stopping) {
            count(&t->failed, t->m_failed, n);
            break;
        }
        backoff = backoff * 2 < 2000 * 1000000LL ? backoff * 2 : 2000 * 1000000LL;
    }
    free(body);
}

static void *export_main(void *arg) {
    struct sl_otlp_tracer *t = arg;
    const struct sl_otlp_span **batch = calloc(t->opt.max_batch_size, sizeof *batch);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (curl && headers) {
        curl_easy_setopt(curl, CURLOPT_URL, t->url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    }
    bool usable = batch && curl && headers;
    if (!usable) {
        SL_ERROR("otlp exporter could not start (out of memory): spans will be dropped");
    }

    pthread_mutex_lock(&t->mu);
    uint64_t flushes_seen = t->flush_requests;
    struct timespec next = deadline_in((int64_t)t->opt.schedule_delay_ms * 1000000);
    for (;;) {
        while (!t->stopping && t->flush_requests == flushes_seen &&
               t->q.count < t->opt.max_batch_size) {
            if (pthread_cond_timedwait(&t->wake, &t->mu, &next) == ETIMEDOUT) {
                break;
            }
        }
        flushes_seen = t->flush_requests;
        if (t->stopping && atomic_load(&t->abort_at_ns) != 0 &&
            mono_ns() >= atomic_load(&t->abort_at_ns)) {
            break;
        }
        uint32_t n = t->q.count < t->opt.max_batch_size ? t->q.count : t->opt.max_batch_size;
        if (n == 0) {
            pthread_cond_broadcast(&t->drained);
            if (t->stopping) {
                break;
            }
            next = deadline_in((int64_t)t->opt.schedule_delay_ms * 1000000);
            continue;
        }
        t->exporting = true;
        if (usable) {
            sl_otlp_queue_peek(&t->q, n, batch);
        }
        pthread_mutex_unlock(&t->mu);
        if (usable) {
            export_batch(t, curl, batch, n);
        } else {
            sl_otlp_count_dropped(t, n);
        }
        pthread_mutex_lock(&t->mu);
        sl_otlp_queue_release(&t->q, n);
        t->exporting = false;
        if (t->m_queue) {
            sl_gauge_set(t->m_queue, t->q.count);
        }
        pthread_cond_broadcast(&t->drained);
        if (t->q.count < t->opt.max_batch_size) {
            next = deadline_in((int64_t)t->opt.schedule_delay_ms * 1000000);
        }
    }
    /* What the bounded shutdown could not send is dropped, and counted as such. */
    uint32_t left = t->q.count;
    sl_otlp_queue_release(&t->q, left);
    pthread_cond_broadcast(&t->drained);
    pthread_mutex_unlock(&t->mu);
    if (left) {
        sl_otlp_count_dropped(t, left);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(batch);
    return NULL;
}

static struct sl_metric *counter(struct sl_metrics *m, const char *name, const char *help) {
    struct sl_metric_family *f = m ? sl_metrics_counter(m, name, help, NULL) : NULL;
    return f ? sl_metric_get(f) : NULL;
}

int sl_otlp_tracer_new(const struct sl_otlp_options *o, struct sl_metrics *metrics,
                       struct sl_otlp_tracer **out) {
    *out = NULL;
    if (!o->endpoint || !o->endpoint[0]) {
        return 0;
    }
    if (strncmp(o->endpoint, "http://", 7) != 0 && strncmp(o->endpoint, "https://", 8) != 0) {
        SL_ERROR("SLUICE_OTLP_ENDPOINT must be an http:// or https:// URL");
        return -EINVAL;
    }
    struct sl_otlp_tracer *t = calloc(1, sizeof *t);
    if (!t) {
        return -ENOMEM;
    }
    t->opt = *o;
    if (t->opt.max_queue_size == 0) {
        t->opt.max_queue_size = 1;
    }
    if (t->opt.max_batch_size == 0 || t->opt.max_batch_size > t->opt.max_queue_size) {
        t->opt.max_batch_size = t->opt.max_queue_size; /* the specification's clamp */
    }
    t->opt.endpoint = NULL; /* the borrowed strings are not kept */
    t->opt.service_name = t->opt.service_default = t->opt.resource_attributes = NULL;

    size_t len = strlen(o->endpoint);
    while (len && o->endpoint[len - 1] == '/') {
        len--;
    }
    int rc = -ENOMEM;
    t->url = malloc(len + sizeof "/v1/traces");
    if (!t->url) {
        goto err_free;
    }
    memcpy(t->url, o->endpoint, len);
    memcpy(t->url + len, "/v1/traces", sizeof "/v1/traces");
    rc = sl_otlp_resource_build(o, &t->resource);
    if (rc) {
        goto err_url;
    }
    rc = sl_otlp_queue_init(&t->q, t->opt.max_queue_size);
    if (rc) {
        goto err_resource;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->wake, &ca);
    pthread_cond_init(&t->drained, &ca);
    pthread_condattr_destroy(&ca);

    t->m_exported =
        counter(metrics, "sluice_otlp_spans_exported_total", "Spans the OTLP collector accepted.");
    t->m_failed = counter(metrics, "sluice_otlp_spans_failed_total",
                          "Spans sent to the OTLP collector and refused, or given up on.");
    t->m_dropped = counter(metrics, "sluice_otlp_spans_dropped_total",
                           "Spans never sent: the export queue was full, or left at shutdown.");
    struct sl_metric_family *g =
        metrics ? sl_metrics_gauge(metrics, "sluice_otlp_queue_spans",
                                   "Spans waiting in the OTLP export queue.", NULL)
                : NULL;
    t->m_queue = g ? sl_metric_get(g) : NULL;

    /* Thread-safe since libcurl 7.84; a no-op after the first call in the process. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = -pthread_create(&t->thread, NULL, export_main, t);
    if (rc) {
        goto err_sync;
    }
    *out = t;
    return 0;

err_sync:
    pthread_cond_destroy(&t->drained);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    sl_otlp_queue_destroy(&t->q);
err_resource:
    sl_otlp_resource_free(&t->resource);
err_url:
    free(t->url);
err_free:
    free(t);
    return rc;
}

int sl_otlp_tracer_new_from_env(char *const *envp, const char *service_default,
                                struct sl_metrics *metrics, struct sl_otlp_tracer **out) {
    struct sl_otlp_options o;
    sl_otlp_options_from_env(&o, envp, service_default);
    return sl_otlp_tracer_new(&o, metrics, out);
}

int sl_otlp_tracer_for_service(const char *endpoint, const char *service_default,
                               struct sl_metrics *metrics, struct sl_otlp_tracer **out,
                               struct sl_buf *err) {
    struct sl_otlp_options o;
    sl_otlp_options_from_env(&o, environ, service_default);
    o.endpoint = endpoint;
    int rc = sl_otlp_tracer_new(&o, metrics, out);
    if (rc < 0)
        sl_buf_printf(err, "SLUICE_OTLP_ENDPOINT: %s: %s\n", endpoint, sl_strerror(rc));
    return rc;
}

int sl_otlp_tracer_flush(struct sl_otlp_tracer *t, uint32_t timeout_ms) {
    if (!t) {
        return 0;
    }
    struct timespec until = deadline_in((int64_t)timeout_ms * 1000000);
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    t->flush_requests++;
    pthread_cond_signal(&t->wake);
    while (t->q.count > 0 || t->exporting) {
        if (pthread_cond_timedwait(&t->drained, &t->mu, &until) == ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void sl_otlp_tracer_free(struct sl_otlp_tracer *t) {
    if (!t) {
        return;
    }
    atomic_store(&t->abort_at_ns, mono_ns() + (int64_t)t->opt.shutdown_timeout_ms * 1000000);
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->drained);
    pthread_cond_destroy(&t->wake);
    pthread_mutex_destroy(&t->mu);
    sl_otlp_queue_destroy(&t->q);
    sl_otlp_resource_free(&t->resource);
    free(t->url);
    free(t);
}

void sl_otlp_tracer_stats(const struct sl_otlp_tracer *t, struct sl_otlp_stats *out) {
    *out = (struct sl_otlp_stats){0};
    if (!t) {
        return;
    }
    out->exported = atomic_load_explicit(&t->exported, memory_order_relaxed);
    out->failed = atomic_load_explicit(&t->failed, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&t->dropped, memory_order_relaxed);
    pthread_mutex_t *mu = (pthread_mutex_t *)&t->mu; /* the lock, not the value, changes */
    pthread_mutex_lock(mu);
    out->queued = t->q.count;
    pthread_mutex_unlock(mu);
}
