/* The echo handler: the AWS stack's Python Lambda (lib/lambda/api-handler.py) in C. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "handlers.h"
#include "pyjson.h"

/*
 * The Lambda answers with json.dumps(...): ", " and ": " separators, ensure_ascii escapes, keys
 * in insertion order. pyjson.c parses the body as its json.loads does and prints it back.
 */

static int put(struct sl_buf *b, const char *s) {
    return sl_buf_append_str(b, s);
}

int wk_json_py_string(struct sl_buf *b, const char *s, size_t n) {
    return wk_pyjson_dump_string(b, s, n);
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
static int received_data(struct sl_buf *b, struct sl_str body, const struct wk_pyjson *doc) {
    if (body.len == 0)
        return put(b, "null");
    if (doc->outcome == WK_PYJSON_VALUE)
        return wk_pyjson_dump(doc, b);
    return wk_pyjson_dump_string(b, body.p, body.len);
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

/* Every answer ends with the timestamp, the stage and the request id. */
static int trailer(struct sl_buf *b, const struct sl_envelope_request *req, int64_t now_us) {
    int rc = put(b, ", \"timestamp\": ");
    if (rc == 0)
        rc = py_utc_isoformat(b, now_us);
    if (rc == 0)
        rc = put(b, ", \"stage\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, req->stage.p, req->stage.len);
    if (rc == 0)
        rc = put(b, ", \"request_id\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, req->id.p, req->id.len);
    return rc ? rc : put(b, "}");
}

/* The Lambda's outer `except Exception`: 500 with the exception's text and type name. */
static int exception_data(struct sl_buf *b, const struct wk_pyjson *doc) {
    int rc = put(b, "{\"success\": false, \"error\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, doc->error, strlen(doc->error));
    if (rc == 0)
        rc = put(b, ", \"error_type\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, doc->error_type, strlen(doc->error_type));
    return rc;
}

/* handle_get/post/put/delete_request's dict. */
static int success_data(struct sl_buf *b, const struct sl_envelope_request *req, const char *method,
                        const struct wk_pyjson *doc) {
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%s request processed successfully", method);
    int rc = put(b, "{\"success\": true, \"data\": {\"message\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, msg, (size_t)n);
    if (rc == 0)
        rc = put(b, ", \"path\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, req->path.p, req->path.len);
    if (rc == 0 && !strcmp(method, "GET")) {
        rc = put(b, ", \"query_parameters\": ");
        if (rc == 0)
            rc = query_parameters(b, &req->query);
    } else if (rc == 0 && (!strcmp(method, "POST") || !strcmp(method, "PUT"))) {
        rc = put(b, ", \"received_data\": ");
        if (rc == 0)
            rc = received_data(b, req->body, doc);
    }
    if (rc == 0)
        rc = put(b, ", \"method\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, method, strlen(method));
    return rc ? rc : put(b, "}");
}

/*
 * Any other method: the Lambda's data for it, but as a 405 with Allow and "success": false
 * (the Lambda says 200 and true); an answer that is an error should say so.
 */
static int unsupported_data(struct sl_buf *b, const struct sl_envelope_request *req) {
    /* f'Method {http_method} not supported', the method whole, whatever its length. */
    struct sl_buf msg;
    sl_buf_init(&msg, req->method.len + 32);
    int rc = put(&msg, "Method ");
    if (rc == 0)
        rc = sl_buf_append(&msg, req->method.p, req->method.len);
    if (rc == 0)
        rc = put(&msg, " not supported");
    if (rc == 0)
        rc = put(b, "{\"success\": false, \"data\": {\"error\": ");
    if (rc == 0)
        rc = wk_json_py_string(b, msg.data, msg.len);
    sl_buf_free(&msg);
    return rc ? rc : put(b, ", \"supported_methods\": [\"GET\", \"POST\", \"PUT\", \"DELETE\"]}");
}

size_t wk_echo_body_max(size_t request_bytes) {
    /* The fixed text (keys, messages, the timestamp, an error message) is under 1 KiB. */
    return 6 * request_bytes + 1024;
}

int wk_echo_handle(const struct sl_envelope_request *req, int64_t now_us, struct wk_response *out) {
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    const char *method = NULL;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (method_is(req, methods[i]))
            method = methods[i];
    /* The Lambda runs json.loads before it looks at the method: a body that raises fails all. */
    struct wk_pyjson doc = {.outcome = WK_PYJSON_NOT_JSON};
    int rc = req->body.len ? wk_pyjson_parse(&doc, req->body.p, req->body.len) : 0;
    struct sl_buf *b = &out->body;
    if (rc < 0) {
        /* nothing to answer: the caller reports the error */
    } else if (doc.outcome == WK_PYJSON_EXCEPTION) {
        out->status = 500;
        rc = exception_data(b, &doc);
    } else if (method) {
        out->status = 200;
        rc = success_data(b, req, method, &doc);
    } else {
        out->status = 405;
        rc = unsupported_data(b, req);
        if (rc == 0)
            rc = wk_response_add_header(out, "Allow", 5, "GET, POST, PUT, DELETE", 22);
    }
    wk_pyjson_free(&doc);
    if (rc == 0)
        rc = trailer(b, req, now_us);
    if (rc == 0)
        rc = wk_response_add_header(out, "Content-Type", 12, "application/json", 16);
    return rc;
}
