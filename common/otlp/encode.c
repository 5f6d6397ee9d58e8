/* OTLP/JSON encoding of a batch of spans (the protobuf JSON mapping the OTLP specification fixes).
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "otlp_internal.h"

static void hex(const uint8_t *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool add_hex(cJSON *o, const char *name, const uint8_t *b, size_t n) {
    char buf[33];
    hex(b, n, buf);
    return cJSON_AddStringToObject(o, name, buf) != NULL;
}

/* 64-bit integers are JSON strings in the mapping, so no reader loses precision. */
static bool add_i64(cJSON *o, const char *name, int64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_AddStringToObject(o, name, buf) != NULL;
}

static cJSON *kv(const char *key, cJSON *value) {
    cJSON *a = cJSON_CreateObject();
    if (!a || !value || !cJSON_AddStringToObject(a, "key", key)) {
        cJSON_Delete(a);
        cJSON_Delete(value);
        return NULL;
    }
    cJSON_AddItemToObject(a, "value", value);
    return a;
}

static cJSON *any_value(const struct sl_otlp_span *s, const struct sl_otlp_attr *a) {
    cJSON *v = cJSON_CreateObject();
    if (!v) {
        return NULL;
    }
    bool ok = false;
    switch (a->type) {
    case SL_OTLP_VALUE_STRING:
        ok = cJSON_AddStringToObject(v, "stringValue", s->strings + a->v.str) != NULL;
        break;
    case SL_OTLP_VALUE_INT:
        ok = add_i64(v, "intValue", a->v.i);
        break;
    case SL_OTLP_VALUE_DOUBLE:
        /* JSON has no NaN or infinities; the mapping spells them as strings. */
        if (isnan(a->v.d)) {
            ok = cJSON_AddStringToObject(v, "doubleValue", "NaN") != NULL;
        } else if (isinf(a->v.d)) {
            ok = cJSON_AddStringToObject(v, "doubleValue", a->v.d > 0 ? "Infinity" : "-Infinity") !=
                 NULL;
        } else {
            ok = cJSON_AddNumberToObject(v, "doubleValue", a->v.d) != NULL;
        }
        break;
    case SL_OTLP_VALUE_BOOL:
        ok = cJSON_AddBoolToObject(v, "boolValue", a->v.b) != NULL;
        break;
    }
    if (!ok) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* Adds "attributes" with the span's attributes of `owner`, when it has any. */
static bool add_attrs(cJSON *o, const struct sl_otlp_span *s, unsigned owner) {
    cJSON *arr = NULL;
    for (unsigned i = 0; i < s->nattrs; i++) {
        const struct sl_otlp_attr *a = &s->attrs[i];
        if (a->owner != owner) {
            continue;
        }
        if (!arr && !(arr = cJSON_AddArrayToObject(o, "attributes"))) {
            return false;
        }
        cJSON *item = kv(s->strings + a->key, any_value(s, a));
        if (!item) {
            return false;
        }
        cJSON_AddItemToArray(arr, item);
    }
    return true;
}

static bool add_count(cJSON *o, const char *name, unsigned n) {
    return n == 0 || cJSON_AddNumberToObject(o, name, n) != NULL;
}

static cJSON *span_json(const struct sl_otlp_span *s) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_hex(o, "traceId", s->ctx.trace_id, 16) &&
              add_hex(o, "spanId", s->ctx.span_id, 8) &&
              (!s->has_parent || add_hex(o, "parentSpanId", s->parent_span_id, 8)) &&
              cJSON_AddNumberToObject(o, "flags", s->ctx.flags) &&
              cJSON_AddStringToObject(o, "name", s->strings + s->name) &&
              cJSON_AddNumberToObject(o, "kind", s->kind) &&
              add_i64(o, "startTimeUnixNano", s->start_ns) &&
              add_i64(o, "endTimeUnixNano", s->end_ns) && add_attrs(o, s, 0) &&
              add_count(o, "droppedAttributesCount", s->dropped_attrs);
    if (ok && s->nevents) {
        cJSON *arr = cJSON_AddArrayToObject(o, "events");
        ok = arr != NULL;
        for (unsigned i = 0; ok && i < s->nevents; i++) {
            cJSON *e = cJSON_CreateObject();
            ok = e && add_i64(e, "timeUnixNano", s->events[i].time_ns) &&
                 cJSON_AddStringToObject(e, "name", s->strings + s->events[i].name) &&
                 add_attrs(e, s, 1 + i);
            if (e) {
                cJSON_AddItemToArray(arr, e);
            }
        }
    }
    ok = ok && add_count(o, "droppedEventsCount", s->dropped_events);
    if (ok && s->nlinks) {
        cJSON *arr = cJSON_AddArrayToObject(o, "links");
        ok = arr != NULL;
        for (unsigned i = 0; ok && i < s->nlinks; i++) {
            const struct sl_trace_ctx *c = &s->links[i].ctx;
            cJSON *l = cJSON_CreateObject();
            ok = l && add_hex(l, "traceId", c->trace_id, 16) &&
                 add_hex(l, "spanId", c->span_id, 8) &&
                 add_attrs(l, s, 1 + SL_OTLP_MAX_EVENTS + i) &&
                 cJSON_AddNumberToObject(l, "flags", c->flags);
            if (l) {
                cJSON_AddItemToArray(arr, l);
            }
        }
    }
    ok = ok && add_count(o, "droppedLinksCount", s->dropped_links);
    if (ok && s->status != SL_OTLP_STATUS_UNSET) {
        cJSON *st = cJSON_AddObjectToObject(o, "status");
        ok = st &&
             (!s->status_message ||
              cJSON_AddStringToObject(st, "message", s->strings + s->status_message)) &&
             cJSON_AddNumberToObject(st, "code", s->status);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *sl_otlp_encode_json(const struct sl_otlp_resource *res,
                          const struct sl_otlp_span *const *spans, size_t n) {
    cJSON *root = cJSON_CreateObject();
    cJSON *rs_arr = root ? cJSON_AddArrayToObject(root, "resourceSpans") : NULL;
    cJSON *rs = cJSON_CreateObject();
    char *out = NULL;
    if (!rs_arr || !rs) {
        cJSON_Delete(rs);
        goto done;
    }
    cJSON_AddItemToArray(rs_arr, rs);
    cJSON *resource = cJSON_AddObjectToObject(rs, "resource");
    cJSON *rattrs = resource ? cJSON_AddArrayToObject(resource, "attributes") : NULL;
    if (!rattrs) {
        goto done;
    }
    for (size_t i = 0; i < res->n; i++) {
        cJSON *item = kv(res->items[i].key, cJSON_CreateObject());
        if (!item) {
            goto done;
        }
        cJSON_AddItemToArray(rattrs, item);
        if (!cJSON_AddStringToObject(cJSON_GetObjectItem(item, "value"), "stringValue",
                                     res->items[i].value)) {
            goto done;
        }
    }
    cJSON *ss_arr = cJSON_AddArrayToObject(rs, "scopeSpans");
    cJSON *ss = cJSON_CreateObject();
    if (!ss_arr || !ss) {
        cJSON_Delete(ss);
        goto done;
    }
    cJSON_AddItemToArray(ss_arr, ss);
    cJSON *scope = cJSON_AddObjectToObject(ss, "scope");
    cJSON *sp_arr = scope && cJSON_AddStringToObject(scope, "name", "sluice")
                        ? cJSON_AddArrayToObject(ss, "spans")
                        : NULL;
    if (!sp_arr) {
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *sj = span_json(spans[i]);
        if (!sj) {
            goto done;
        }
        cJSON_AddItemToArray(sp_arr, sj);
    }
    out = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return out;
}
