/* The handler plugin ABI, version 1: what a shared object exports for sluice-worker to run. */
#ifndef SLUICE_HANDLER_V1_H
#define SLUICE_HANDLER_V1_H

#include <stddef.h>
#include <stdint.h>

/*
 * A plugin is a shared object (built with -fPIC, loaded with dlopen in every handler child
 * process) that exports one function:
 *
 *     const struct sluice_handler_v1 *sluice_handler_v1(void);
 *
 * It returns a pointer to a static table whose abi_version is SLUICE_HANDLER_ABI_VERSION.
 * A later, incompatible ABI gets a new entry point (sluice_handler_v2) so one worker can load
 * both. Compatible additions append fields at the end of the request struct; `size` tells a
 * plugin how many bytes of it exist.
 *
 * Lifecycle, per child process: init once after dlopen (before any request), then handle for
 * each request, one at a time (a child never runs two requests at once, so no locking is
 * needed), then shutdown when the child stops cleanly. A child that crashed, timed out or
 * ran out of memory is killed without shutdown and replaced by a fresh process, which calls
 * init again.
 *
 * Memory: everything in the request is borrowed and valid only during handle. The response's
 * headers and body belong to the plugin and must stay valid until the next handle or shutdown
 * call (a static or per-state buffer is the usual way); the worker copies them at once.
 *
 * Errors: init and handle return 0, or a negative number for a failure. A failing handle
 * counts as a handler failure (retried, then the client gets 502 and the record goes to the
 * DLQ with reason handler_error). A response that breaks the rules below counts as
 * invalid_reply. To answer an error to the client (404, 500 with a JSON body...), return 0
 * with that status: it is a normal reply.
 */

#define SLUICE_HANDLER_ABI_VERSION 1

/* A byte string: not NUL-terminated, may contain any bytes. */
struct sluice_str_v1 {
    const char *p;
    size_t len;
};

/* One header, query parameter or path parameter: repeated names appear once per value. */
struct sluice_pair_v1 {
    struct sluice_str_v1 name;
    struct sluice_str_v1 value;
};

/* A request, shaped after API Gateway's REST proxy event (Lambda proxy integration). */
struct sluice_request_v1 {
    size_t size; /* sizeof(struct sluice_request_v1) of the worker that filled it */
    struct sluice_str_v1 id;
    struct sluice_str_v1 method;
    struct sluice_str_v1 path;
    struct sluice_str_v1 resource; /* the route pattern, e.g. "/items/{id}" */
    const struct sluice_pair_v1 *headers;
    size_t n_headers;
    const struct sluice_pair_v1 *query; /* percent-decoded */
    size_t n_query;
    const struct sluice_pair_v1 *path_params; /* percent-decoded */
    size_t n_path_params;
    struct sluice_str_v1 body;
    struct sluice_str_v1 source_ip;
    struct sluice_str_v1 user_agent;
    struct sluice_str_v1 api_key_id; /* empty when the route needs no key */
    struct sluice_str_v1 stage;
    struct sluice_str_v1 trace; /* W3C traceparent */
    int64_t received_ms;
    int64_t deadline_ms; /* epoch ms; the answer is useless after it */
    uint32_t attempt;    /* 1 on the first try */
};

/*
 * The answer, filled by handle. The worker zeroes it before the call. Rules: status in
 * 100..599; header names non-empty tokens and no CR or LF in names or values; body NULL only
 * when body_len is 0.
 */
struct sluice_response_v1 {
    int status;
    const struct sluice_pair_v1 *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
};

struct sluice_handler_v1 {
    uint32_t abi_version; /* SLUICE_HANDLER_ABI_VERSION */
    const char *name;     /* for logs */
    /* Optional (may be NULL). *state is passed to handle and shutdown. */
    int (*init)(void **state);
    int (*handle)(void *state, const struct sluice_request_v1 *req,
                  struct sluice_response_v1 *resp);
    /* Optional (may be NULL). */
    void (*shutdown)(void *state);
};

typedef const struct sluice_handler_v1 *(*sluice_handler_v1_fn)(void);

/* The entry point a plugin defines (declared here so plugins get a prototype). */
const struct sluice_handler_v1 *sluice_handler_v1(void);

#define SLUICE_HANDLER_V1_SYMBOL "sluice_handler_v1"

#endif
