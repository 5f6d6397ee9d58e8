/* The echo handler: the seed's Lambda (lib/lambda/api-handler.py) reproduced byte for byte. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "sluice/error.h"

/*
 * The seed answers with json.dumps(...): ", " and ": " separators, ensure_ascii escapes, keys
 * in insertion order. cJSON parses the body; this file prints it back the way Python would.
 */

static int put(struct sl_buf *b, const char *s) {
    return sl_buf_append_str(b, s);
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length, or 0 when it is invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1Fu;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0Fu;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = *cp << 6 | (s[i] & 0x3Fu);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

int wk_json_py_string(struct sl_buf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    int rc = sl_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (len == 0) {
            cp = 0xFFFD;
            len = 1;
        }
        i += len;
        switch (cp) {
        case '"':
            rc = put(b, "\\\"");
            break;
        case '\\':
            rc = put(b, "\\\\");
            break;
        case '\n':
            rc = put(b, "\\n");
            break;
        case '\r':
            rc = put(b, "\\r");
            break;
        case '\t':
            rc = put(b, "\\t");
            break;
        case '\b':
            rc = put(b, "\\b");
            break;
        case '\f':
            rc = put(b, "\\f");
            break;
        default:
            if (cp >= 0x20 && cp < 0x7F) {
                char c = (char)cp;
                rc = sl_buf_append(b, &c, 1);
            } else if (cp < 0x10000) {
                rc = sl_buf_printf(b, "\\u%04x", (unsigned)cp);
            } else {
                uint32_t v = cp - 0x10000;
                rc = sl_buf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)),
                                   (unsigned)(0xDC00 + (v & 0x3FF)));
            }
        }
    }
    if (rc == 0)
        rc = sl_buf_append(b, "\"", 1);
    return rc;
}

/* A double as Python's float repr (shortest round trip), or an integer when it is integral
 * and exactly representable (cJSON does not keep the int/float distinction of the input). */
static int py_number(struct sl_buf *b, double v) {
    if (isnan(v))
        return put(b, "NaN");
    if (isinf(v))
        return put(b, v > 0 ? "Infinity" : "-Infinity");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return sl_buf_printf(b, "%.0f", v);
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* Python writes a decimal exponent with at least two digits, as C does ("1e-05"). */
    return put(b, tmp);
}

static int py_value(struct sl_buf *b, const cJSON *v, int depth);

static int py_object(struct sl_buf *b, const cJSON *o, int depth) {
    int rc = put(b, "{");
    int first = 1;
    for (const cJSON *c = o->child; c && rc == 0; c = c->next) {
        /* A repeated key keeps its first position and its last value, as a Python dict. */
        int seen = 0;
        for (const cJSON *p = o->child; p != c; p = p->next)
            if (!strcmp(p->string, c->string))
                seen = 1;
        if (seen)
            continue;
        const cJSON *last = c;
        for (const cJSON *n = c->next; n; n = n->next)
            if (!strcmp(n->string, c->string))
                last = n;
        if (!first)
            rc = put(b, ", ");
        first = 0;
        if (rc == 0)
            rc = wk_json_py_string(b, c->string, strlen(c->string));
        if (rc == 0)
            rc = put(b, ": ");
        if (rc == 0)
            rc = py_value(b, last, depth + 1);
    }
    return rc ? rc : put(b, "}");
}

static int py_value(struct sl_buf *b, const cJSON *v, int depth) {
    if (depth > 512)
        return SL_ERR_TOO_LARGE;
    if (cJSON_IsNull(v))
        return put(b, "null");
    if (cJSON_IsTrue(v))
        return put(b, "true");
    if (cJSON_IsFalse(v))
        return put(b, "false");
    if (cJSON_IsNumber(v))
        return py_number(b, v->valuedouble);
    if (cJSON_IsString(v))
        return wk_json_py_string(b, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsArray(v)) {
        int rc = put(b, "[");
        for (const cJSON *c = v->child; c && rc == 0; c = c->next) {
            if (c != v->child)
                rc = put(b, ", ");
            if (rc == 0)
                rc = py_value(b, c, depth + 1);
        }
        return rc ? rc : put(b, "]");
    }
    if (cJSON_IsObject(v))
        return py_object(b, v, depth);
    return SL_ERR_TYPE;
}

/* datetime.utcnow().isoformat(): microseconds, no zone, no fraction when it is zero. */
static int py_utc_isoformat(struct sl_buf *b, int64_t now_us) {
    time_t sec = (time_t)(now_us / 1000000);
    long us = (long)(now_us % 1000000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return -EINVAL;
    int rc = sl_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (rc == 0 && us)
        rc = sl_buf_printf(b, ".%06ld", us);
    return rc ? rc : put(b, "\"");
}

/* received_data: the body parsed as JSON, else the body as a string, or null without one. */
static int received_data(struct sl_buf *b, struct sl_str body) {
    if (body.len == 0)
        return put(b, "null");
    cJSON *doc = cJSON_ParseWithLength(body.p, body.len);
    if (!doc)
        return wk_json_py_string(b, body.p, body.len);
    size_t at = b->len;
    int rc = py_value(b, doc, 0);
    cJSON_Delete(doc);
    if (rc == SL_ERR_TOO_LARGE) { /* deeper than Python's default recursion would go */
        b->len = at;
        rc = wk_json_py_string(b, body.p, body.len);
    }
    return rc;
}

/* queryStringParameters: one value per name, the last one, as API Gateway's v1 event has. */
static int query_parameters(struct sl_buf *b, const struct sl_envelope_multimap *q) {
    int rc = put(b, "{");
    for (size_t i = 0; i < q->n && rc == 0; i++) {
        const struct sl_envelope_field *f = &q->fields[i];
        if (i)
            rc = put(b, ", ");
        if (rc == 0)
            rc = wk_json_py_string(b, f->name.p, f->name.len);
        if (rc == 0)
            rc = put(b, ": ");
        if (rc == 0) {
            struct sl_str v = f->n_values ? f->values[f->n_values - 1] : (struct sl_str){"", 0};
            rc = wk_json_py_string(b, v.p, v.len);
        }
    }
    return rc ? rc : put(b, "}");
}

static int method_is(const struct sl_envelope_request *req, const char *m) {
    return req->method.len == strlen(m) && !memcmp(req->method.p, m, req->method.len);
}

int wk_echo_handle(const struct sl_envelope_request *req, const char *stage, int64_t now_us,
                   struct wk_response *out) {
    struct sl_buf *b = &out->body;
    int get = method_is(req, "GET"), post = method_is(req, "POST"), putm = method_is(req, "PUT"),
        del = method_is(req, "DELETE");
    int rc = put(b, "{\"success\": true, \"data\": {");
    if (get || post || putm || del) {
        if (rc == 0)
            rc = put(b, "\"message\": ");
        if (rc == 0) {
            char msg[64];
            int n = snprintf(msg, sizeof msg, "%s request processed successfully",
                             get    ? "GET"
                             : post ? "POST"
                             : putm ? "PUT"
                                    : "DELETE");
            rc = wk_json_py_string(b, msg, (size_t)n);
        }
        if (rc == 0)
            rc = put(b, ", \"path\": ");
        if (rc == 0)
            rc = wk_json_py_string(b, req->path.p, req->path.len);
        if (rc == 0 && get) {
            rc = put(b, ", \"query_parameters\": ");
            if (rc == 0)
                rc = query_parameters(b, &req->query);
        } else if (rc == 0 && (post || putm)) {
            rc = put(b, ", \"received_data\": ");
            if (rc == 0)
                rc = received_data(b, req->body);
        }
        if (rc == 0)
            rc = put(b, ", \"method\": ");
        if (rc == 0)
            rc = wk_json_py_string(b, req->method.p, req->method.len);
        out->status = 200;
    } else {
        if (rc == 0)
            rc = put(b, "\"error\": ");
        if (rc == 0) {
            char msg[96];
            int n = snprintf(msg, sizeof msg, "Method %.*s not supported",
                             (int)(req->method.len > 32 ? 32 : req->method.len), req->method.p);
            rc = wk_json_py_string(b, msg, (size_t)n);
        }
        if (rc == 0)
            rc = put(b, ", \"supported_methods\": [\"GET\", \"POST\", \"PUT\", \"DELETE\"]");
        out->status = 405;
        if (rc == 0)
            rc = wk_response_add_header(out, "Allow", 5, "GET, POST, PUT, DELETE", 22);
    }
    if (rc == 0)
        rc = put(b, "}, \"timestamp\": ");
    if (rc == 0)
        rc = py_utc_isoformat(b, now_us);
    if (rc == 0)
        rc = put(b, ", \"stage\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, stage, strlen(stage));
    if (rc == 0)
        rc = put(b, ", \"request_id\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, req->id.p, req->id.len);
    if (rc == 0)
        rc = put(b, "}");
    if (rc == 0)
        rc = wk_response_add_header(out, "Content-Type", 12, "application/json", 16);
    return rc;
}
