/* Recording one span: ids and sampling, attributes, events and links copied into the span value. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "otlp_internal.h"

int64_t sl_otlp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The traceidratio decision as the OpenTelemetry specification (and W3C Trace Context level 2)
 * defines it: the rightmost 56 bits of the trace id are the randomness R, the ratio gives the
 * rejection threshold T = (1 - ratio) * 2^56, and the span is sampled when R >= T. Every hop
 * reaches the same decision for the same trace, and a trace kept at one ratio is kept at any
 * higher ratio.
 */
static bool ratio_sample(double ratio, const uint8_t trace_id[16]) {
    if (!(ratio > 0.0)) {
        return false;
    }
    if (ratio >= 1.0) {
        return true;
    }
    uint64_t r = 0;
    for (int i = 9; i < 16; i++) {
        r = (r << 8) | trace_id[i];
    }
    const double two56 = 72057594037927936.0;
    uint64_t threshold = (uint64_t)((1.0 - ratio) * two56);
    return r >= threshold;
}

bool sl_otlp_should_sample(enum sl_otlp_sampler sampler, double ratio,
                           const struct sl_trace_ctx *parent, const uint8_t trace_id[16]) {
    switch (sampler) {
    case SL_OTLP_SAMPLER_ALWAYS_ON:
        return true;
    case SL_OTLP_SAMPLER_ALWAYS_OFF:
        return false;
    case SL_OTLP_SAMPLER_TRACEIDRATIO:
        return ratio_sample(ratio, trace_id);
    case SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_ON:
        return parent ? (parent->flags & SL_TRACE_FLAG_SAMPLED) != 0 : true;
    case SL_OTLP_SAMPLER_PARENTBASED_ALWAYS_OFF:
        return parent ? (parent->flags & SL_TRACE_FLAG_SAMPLED) != 0 : false;
    case SL_OTLP_SAMPLER_PARENTBASED_TRACEIDRATIO:
        return parent ? (parent->flags & SL_TRACE_FLAG_SAMPLED) != 0
                      : ratio_sample(ratio, trace_id);
    }
    return false;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one. */
static size_t utf8_seq(const unsigned char *p, size_t left) {
    unsigned char c = p[0];
    if (c >= 0x01 && c < 0x80) {
        return 1;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F; /* no UTF-16 surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/*
 * Copies `len` bytes into the span's strings as valid UTF-8 (NUL bytes and invalid sequences
 * become U+FFFD, because a collector rejects a whole request over one bad string) and returns
 * the offset, or 0 when it does not fit. With `truncate`, as many whole characters as fit are
 * kept instead.
 */
static uint16_t put_str(struct sl_otlp_span *s, const char *str, size_t len, bool truncate) {
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)str;
    size_t at = s->used, cap = SL_OTLP_STRINGS_SIZE - 1; /* room for the NUL */
    if (at > cap) {
        return 0; /* full: not even the NUL of an empty string fits */
    }
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        const char *src = n ? (const char *)p + i : repl;
        size_t w = n ? n : 3;
        if (at + w > cap) {
            if (!truncate) {
                return 0;
            }
            break;
        }
        memcpy(s->strings + at, src, w);
        at += w;
        i += n ? n : 1;
    }
    s->strings[at++] = '\0';
    uint16_t off = s->used;
    s->used = (uint16_t)at;
    return off;
}

static bool has_room(const struct sl_otlp_span *s) {
    return s->used < SL_OTLP_STRINGS_SIZE - 1;
}

static void span_init(struct sl_otlp_tracer *t, struct sl_otlp_span *s, const char *name,
                      enum sl_otlp_span_kind kind, const struct sl_trace_ctx *ctx,
                      const uint8_t parent_span_id[8]) {
    s->ctx = *ctx;
    s->recording = t != NULL && (ctx->flags & SL_TRACE_FLAG_SAMPLED) != 0;
    if (!s->recording) {
        return; /* the rest is never read: keep the off path cheap */
    }
    s->has_parent = parent_span_id != NULL;
    if (parent_span_id) {
        memcpy(s->parent_span_id, parent_span_id, sizeof s->parent_span_id);
    } else {
        memset(s->parent_span_id, 0, sizeof s->parent_span_id);
    }
    s->kind = (uint8_t)kind;
    s->status = SL_OTLP_STATUS_UNSET;
    s->nattrs = s->nevents = s->nlinks = 0;
    s->dropped_attrs = s->dropped_events = s->dropped_links = 0;
    s->status_message = 0;
    s->strings[0] = '\0'; /* offset 0 is "no string" */
    s->used = 1;
    s->name = put_str(s, name ? name : "", name ? strlen(name) : 0, true);
    s->start_ns = sl_otlp_now_ns();
    s->end_ns = 0;
}

int sl_otlp_span_start(struct sl_otlp_tracer *t, struct sl_otlp_span *s, const char *name,
                       enum sl_otlp_span_kind kind, const struct sl_trace_ctx *parent,
                       struct sl_trace_rand *r) {
    struct sl_trace_ctx ctx;
    int rc = parent ? sl_trace_child_r(r, parent, &ctx) : sl_trace_generate_r(r, &ctx);
    if (rc != 0) {
        memset(&s->ctx, 0, sizeof s->ctx);
        s->recording = false;
        return -EIO;
    }
    bool sampled;
    if (t) {
        sampled = sl_otlp_should_sample(t->opt.sampler, t->opt.sampler_ratio, parent, ctx.trace_id);
    } else {
        sampled = parent ? (parent->flags & SL_TRACE_FLAG_SAMPLED) != 0 : true;
    }
    ctx.flags = (uint8_t)(sampled ? (ctx.flags | SL_TRACE_FLAG_SAMPLED)
                                  : (ctx.flags & ~SL_TRACE_FLAG_SAMPLED));
    span_init(t, s, name, kind, &ctx, parent ? parent->span_id : NULL);
    return 0;
}

void sl_otlp_span_start_ctx(struct sl_otlp_tracer *t, struct sl_otlp_span *s, const char *name,
                            enum sl_otlp_span_kind kind, const struct sl_trace_ctx *ctx,
                            const uint8_t parent_span_id[8]) {
    span_init(t, s, name, kind, ctx, parent_span_id);
}

void sl_otlp_span_set_start(struct sl_otlp_span *s, int64_t start_ns) {
    if (s->recording) {
        s->start_ns = start_ns;
    }
}

/* A new attribute with its key copied, or NULL (counted) when there is no room. */
static struct sl_otlp_attr *add_attr(struct sl_otlp_span *s, unsigned owner, const char *key) {
    if (!s->recording) {
        return NULL;
    }
    uint16_t off = 0;
    if (s->nattrs < SL_OTLP_MAX_ATTRS && has_room(s)) {
        off = put_str(s, key, strlen(key), false);
    }
    if (off == 0) {
        if (s->dropped_attrs < UINT8_MAX) {
            s->dropped_attrs++;
        }
        return NULL;
    }
    struct sl_otlp_attr *a = &s->attrs[s->nattrs++];
    a->key = off;
    a->owner = (uint8_t)owner;
    return a;
}

/* Takes back the attribute add_attr just made (its value did not fit). */
static void undo_attr(struct sl_otlp_span *s, struct sl_otlp_attr *a) {
    s->used = a->key;
    s->nattrs--;
    if (s->dropped_attrs < UINT8_MAX) {
        s->dropped_attrs++;
    }
}

static void set_strn(struct sl_otlp_span *s, unsigned owner, const char *key, const char *value,
                     size_t len) {
    struct sl_otlp_attr *a = add_attr(s, owner, key);
    if (!a) {
        return;
    }
    uint16_t off = put_str(s, value, len, false);
    if (off == 0) {
        undo_attr(s, a);
        return;
    }
    a->type = SL_OTLP_VALUE_STRING;
    a->v.str = off;
}

void sl_otlp_span_set_strn(struct sl_otlp_span *s, const char *key, const char *value, size_t len) {
    set_strn(s, 0, key, value, len);
}

void sl_otlp_span_set_str(struct sl_otlp_span *s, const char *key, const char *value) {
    if (s->recording) {
        set_strn(s, 0, key, value ? value : "", value ? strlen(value) : 0);
    }
}

void sl_otlp_span_set_int(struct sl_otlp_span *s, const char *key, int64_t value) {
    struct sl_otlp_attr *a = add_attr(s, 0, key);
    if (a) {
        a->type = SL_OTLP_VALUE_INT;
        a->v.i = value;
    }
}

void sl_otlp_span_set_double(struct sl_otlp_span *s, const char *key, double value) {
    struct sl_otlp_attr *a = add_attr(s, 0, key);
    if (a) {
        a->type = SL_OTLP_VALUE_DOUBLE;
        a->v.d = value;
    }
}

void sl_otlp_span_set_bool(struct sl_otlp_span *s, const char *key, bool value) {
    struct sl_otlp_attr *a = add_attr(s, 0, key);
    if (a) {
        a->type = SL_OTLP_VALUE_BOOL;
        a->v.b = value;
    }
}

void sl_otlp_span_set_status(struct sl_otlp_span *s, enum sl_otlp_status_code code,
                             const char *message) {
    if (!s->recording) {
        return;
    }
    s->status = (uint8_t)code;
    s->status_message = 0;
    if (code == SL_OTLP_STATUS_ERROR && message && message[0] && has_room(s)) {
        s->status_message = put_str(s, message, strlen(message), true);
    }
}

int sl_otlp_span_add_event(struct sl_otlp_span *s, const char *name, int64_t time_ns) {
    if (!s->recording) {
        return -1;
    }
    uint16_t off = 0;
    if (s->nevents < SL_OTLP_MAX_EVENTS && has_room(s)) {
        off = put_str(s, name, strlen(name), false);
    }
    if (off == 0) {
        if (s->dropped_events < UINT8_MAX) {
            s->dropped_events++;
        }
        return -1;
    }
    int i = s->nevents++;
    s->events[i] =
        (struct sl_otlp_event){.time_ns = time_ns ? time_ns : sl_otlp_now_ns(), .name = off};
    return i;
}

void sl_otlp_event_set_str(struct sl_otlp_span *s, int event, const char *key, const char *value) {
    if (s->recording && event >= 0 && event < s->nevents) {
        set_strn(s, 1u + (unsigned)event, key, value ? value : "", value ? strlen(value) : 0);
    }
}

void sl_otlp_event_set_int(struct sl_otlp_span *s, int event, const char *key, int64_t value) {
    if (event < 0 || event >= s->nevents) {
        return;
    }
    struct sl_otlp_attr *a = add_attr(s, 1u + (unsigned)event, key);
    if (a) {
        a->type = SL_OTLP_VALUE_INT;
        a->v.i = value;
    }
}

int sl_otlp_span_add_link(struct sl_otlp_span *s, const struct sl_trace_ctx *to) {
    if (!s->recording) {
        return -1;
    }
    if (s->nlinks >= SL_OTLP_MAX_LINKS) {
        if (s->dropped_links < UINT8_MAX) {
            s->dropped_links++;
        }
        return -1;
    }
    int i = s->nlinks++;
    s->links[i].ctx = *to;
    return i;
}

void sl_otlp_link_set_str(struct sl_otlp_span *s, int link, const char *key, const char *value) {
    if (s->recording && link >= 0 && link < s->nlinks) {
        set_strn(s, 1u + SL_OTLP_MAX_EVENTS + (unsigned)link, key, value ? value : "",
                 value ? strlen(value) : 0);
    }
}

int sl_otlp_span_end(struct sl_otlp_tracer *t, struct sl_otlp_span *s, int64_t end_ns) {
    if (!s->recording || !t) {
        return 0;
    }
    s->end_ns = end_ns ? end_ns : sl_otlp_now_ns();
    s->recording = false; /* queued at most once */
    int rc;
    pthread_mutex_lock(&t->mu);
    rc = sl_otlp_queue_push(&t->q, s);
    uint32_t count = t->q.count;
    bool wake = rc == 0 && count == t->opt.max_batch_size;
    if (wake) {
        pthread_cond_signal(&t->wake);
    }
    pthread_mutex_unlock(&t->mu);
    if (rc != 0) {
        sl_otlp_count_dropped(t, 1);
    } else if (t->m_queue) {
        sl_gauge_set(t->m_queue, count);
    }
    return rc;
}
