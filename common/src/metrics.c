/* Metric registry and the Prometheus text exposition renderer. */
#include "sluice/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/error.h"

const double sl_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,   0.5,   1,      2.5,   5,    10,    30};
const size_t sl_metrics_latency_nbuckets =
    sizeof sl_metrics_latency_buckets / sizeof sl_metrics_latency_buckets[0];
const double sl_metrics_hop_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                         1,      2.5,     5,      10,    30};
const size_t sl_metrics_hop_nbuckets =
    sizeof sl_metrics_hop_buckets / sizeof sl_metrics_hop_buckets[0];

struct sl_metric {
    struct sl_metric *next;
    const struct sl_metric_family *family;
    char *values[SL_METRICS_MAX_LABELS];
    /* Counter or gauge value; for histograms the observation count. */
    _Atomic int64_t value;
    /* Histogram only: per-bucket (non-cumulative) counts and the sum, stored as double bits. */
    _Atomic uint64_t buckets[SL_METRICS_MAX_BUCKETS + 1];
    _Atomic uint64_t sum_bits;
};

struct sl_metric_family {
    struct sl_metric_family *next;
    enum sl_metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char *labels[SL_METRICS_MAX_LABELS];
    size_t nbounds;
    double bounds[SL_METRICS_MAX_BUCKETS];
    struct sl_metric *children; /* in creation order */
    struct sl_metric **tail;
};

struct sl_metrics {
    struct sl_metric_family *families; /* in registration order */
    struct sl_metric_family **tail;
};

struct sl_metrics *sl_metrics_new(void) {
    struct sl_metrics *m = calloc(1, sizeof *m);
    if (m)
        m->tail = &m->families;
    return m;
}

static void free_child(struct sl_metric *c, size_t nlabels) {
    for (size_t i = 0; i < nlabels; i++)
        free(c->values[i]);
    free(c);
}

static void free_family(struct sl_metric_family *f) {
    struct sl_metric *c = f->children;
    while (c) {
        struct sl_metric *next = c->next;
        free_child(c, f->nlabels);
        c = next;
    }
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void sl_metrics_free(struct sl_metrics *m) {
    if (!m)
        return;
    struct sl_metric_family *f = m->families;
    while (f) {
        struct sl_metric_family *next = f->next;
        free_family(f);
        f = next;
    }
    free(m);
}

static int valid_name(const char *s, int allow_colon) {
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (allow_colon && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* Splits "a,b" into owned label names; returns the count or a negative code. */
static int split_labels(const char *labels, char **out) {
    size_t n = 0;
    if (!labels || !*labels)
        return 0;
    const char *p = labels;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == SL_METRICS_MAX_LABELS || len == 0)
            goto err;
        out[n] = strndup(p, len);
        if (!out[n] || !valid_name(out[n], 0))
            goto err_one;
        n++;
        if (!comma)
            return (int)n;
        p = comma + 1;
    }
err_one:
    free(out[n]);
err:
    while (n)
        free(out[--n]);
    return -EINVAL;
}

static struct sl_metric_family *add_family(struct sl_metrics *m, enum sl_metric_type type,
                                           const char *name, const char *help, const char *labels) {
    if (!m || !valid_name(name, 1))
        return NULL;
    for (struct sl_metric_family *f = m->families; f; f = f->next)
        if (!strcmp(f->name, name))
            return NULL;
    struct sl_metric_family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = type;
    f->tail = &f->children;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    int n = split_labels(labels, f->labels);
    if (!f->name || !f->help || n < 0) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->nlabels = (size_t)n;
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

struct sl_metric_family *sl_metrics_counter(struct sl_metrics *m, const char *name,
                                            const char *help, const char *labels) {
    return add_family(m, SL_METRIC_COUNTER, name, help, labels);
}

struct sl_metric_family *sl_metrics_gauge(struct sl_metrics *m, const char *name, const char *help,
                                          const char *labels) {
    return add_family(m, SL_METRIC_GAUGE, name, help, labels);
}

struct sl_metric_family *sl_metrics_histogram(struct sl_metrics *m, const char *name,
                                              const char *help, const char *labels,
                                              const double *bounds, size_t nbounds) {
    if (nbounds == 0 || nbounds > SL_METRICS_MAX_BUCKETS)
        return NULL;
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    struct sl_metric_family *f = add_family(m, SL_METRIC_HISTOGRAM, name, help, labels);
    if (f) {
        memcpy(f->bounds, bounds, nbounds * sizeof bounds[0]);
        f->nbounds = nbounds;
    }
    return f;
}

struct sl_metric *sl_metric_child(struct sl_metric_family *f, size_t nvalues,
                                  const char *const *values) {
    if (!f || nvalues != f->nlabels)
        return NULL;
    for (struct sl_metric *c = f->children; c; c = c->next) {
        size_t i = 0;
        while (i < nvalues && !strcmp(c->values[i], values[i]))
            i++;
        if (i == nvalues)
            return c;
    }
    struct sl_metric *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < nvalues; i++) {
        c->values[i] = strdup(values[i] ? values[i] : "");
        if (!c->values[i]) {
            free_child(c, i);
            return NULL;
        }
    }
    c->family = f;
    *f->tail = c;
    f->tail = &c->next;
    return c;
}

struct sl_metric *sl_metric_get(struct sl_metric_family *f) {
    return sl_metric_child(f, 0, NULL);
}

struct sl_metric *sl_metric_child1(struct sl_metric_family *f, const char *v1) {
    const char *v[] = {v1};
    return sl_metric_child(f, 1, v);
}

struct sl_metric *sl_metric_child2(struct sl_metric_family *f, const char *v1, const char *v2) {
    const char *v[] = {v1, v2};
    return sl_metric_child(f, 2, v);
}

void sl_counter_inc(struct sl_metric *c) {
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

void sl_counter_add(struct sl_metric *c, uint64_t n) {
    atomic_fetch_add_explicit(&c->value, (int64_t)n, memory_order_relaxed);
}

void sl_gauge_set(struct sl_metric *g, int64_t v) {
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void sl_gauge_add(struct sl_metric *g, int64_t delta) {
    atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

static double bits_to_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits;
}

void sl_histogram_observe(struct sl_metric *h, double v) {
    const struct sl_metric_family *f = h->family;
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->value, 1, memory_order_relaxed);
    /* No atomic double add in C11: a compare-and-swap loop on the bit pattern. */
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&h->sum_bits, &old,
                                                  double_to_bits(bits_to_double(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

int64_t sl_metric_value(const struct sl_metric *m) {
    return atomic_load_explicit(&m->value, memory_order_relaxed);
}

uint64_t sl_histogram_count(const struct sl_metric *h) {
    return (uint64_t)atomic_load_explicit(&h->value, memory_order_relaxed);
}

double sl_histogram_sum(const struct sl_metric *h) {
    return bits_to_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
}

/* Label values and help text escape backslash and newline; label values also the quote. */
static int append_escaped(struct sl_buf *out, const char *s, int quote) {
    for (const char *p = s; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = sl_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = sl_buf_append(out, "\\n", 2);
        else if (quote && *p == '"')
            rc = sl_buf_append(out, "\\\"", 2);
        else
            rc = sl_buf_append(out, p, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Writes `{a="x",b="y"` plus an optional extra label, and the closing brace when any. */
static int append_labels(struct sl_buf *out, const struct sl_metric_family *f,
                         const struct sl_metric *c, const char *extra_name,
                         const char *extra_value) {
    if (f->nlabels == 0 && !extra_name)
        return 0;
    int rc = sl_buf_append(out, "{", 1);
    for (size_t i = 0; rc == 0 && i < f->nlabels; i++) {
        rc = sl_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        if (rc == 0)
            rc = append_escaped(out, c->values[i], 1);
        if (rc == 0)
            rc = sl_buf_append(out, "\"", 1);
    }
    if (rc == 0 && extra_name)
        rc = sl_buf_printf(out, "%s%s=\"%s\"", f->nlabels ? "," : "", extra_name, extra_value);
    if (rc == 0)
        rc = sl_buf_append(out, "}", 1);
    return rc;
}

/* Prometheus floats: shortest round-trip form, with +Inf spelled out. */
static void format_double(double v, char *out, size_t len) {
    if (isinf(v)) {
        snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest precision that reads back as the same double: 0.1, not 0.10000000000000001.
         */
        for (int prec = 6; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static int render_histogram(struct sl_buf *out, const struct sl_metric_family *f,
                            const struct sl_metric *c) {
    uint64_t cumulative = 0;
    int rc = 0;
    char le[40];
    for (size_t i = 0; rc == 0 && i <= f->nbounds; i++) {
        cumulative += atomic_load_explicit(&c->buckets[i], memory_order_relaxed);
        format_double(i < f->nbounds ? f->bounds[i] : INFINITY, le, sizeof le);
        rc = sl_buf_printf(out, "%s_bucket", f->name);
        if (rc == 0)
            rc = append_labels(out, f, c, "le", le);
        if (rc == 0)
            rc = sl_buf_printf(out, " %llu\n", (unsigned long long)cumulative);
    }
    char sum[40];
    format_double(sl_histogram_sum(c), sum, sizeof sum);
    if (rc == 0)
        rc = sl_buf_printf(out, "%s_sum", f->name);
    if (rc == 0)
        rc = append_labels(out, f, c, NULL, NULL);
    if (rc == 0)
        rc = sl_buf_printf(out, " %s\n%s_count", sum, f->name);
    if (rc == 0)
        rc = append_labels(out, f, c, NULL, NULL);
    if (rc == 0)
        rc = sl_buf_printf(out, " %llu\n", (unsigned long long)sl_histogram_count(c));
    return rc;
}

int sl_metrics_render(const struct sl_metrics *m, struct sl_buf *out) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    for (const struct sl_metric_family *f = m->families; rc == 0 && f; f = f->next) {
        rc = sl_buf_printf(out, "# HELP %s ", f->name);
        if (rc == 0)
            rc = append_escaped(out, f->help, 0);
        if (rc == 0)
            rc = sl_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (const struct sl_metric *c = f->children; rc == 0 && c; c = c->next) {
            if (f->type == SL_METRIC_HISTOGRAM) {
                rc = render_histogram(out, f, c);
                continue;
            }
            rc = sl_buf_append_str(out, f->name);
            if (rc == 0)
                rc = append_labels(out, f, c, NULL, NULL);
            if (rc == 0)
                rc = sl_buf_printf(out, " %lld\n", (long long)sl_metric_value(c));
        }
    }
    return rc;
}
