/* The msgpack request/reply envelope that travels over Kafka, version 1
 * (docs/internals/envelope.md). */
#ifndef SLUICE_ENVELOPE_H
#define SLUICE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"

#define SL_ENVELOPE_VERSION 1

struct msgpack_zone;

/*
 * Ownership model. Every slice (struct sl_str) and array in these structs is borrowed:
 *  - filled by a caller for encoding: the caller owns everything, `zone` is NULL and
 *    sl_envelope_*_free does nothing;
 *  - filled by a decoder: strings, binary bodies and header names/values point INTO the input
 *    buffer (zero copy), and the arrays (fields, values, pairs) live in a msgpack zone the
 *    struct owns through `zone`. The input buffer must outlive the decoded struct; call
 *    sl_envelope_request_free / sl_envelope_reply_free once, which frees the zone.
 * Slices are not NUL-terminated and may contain any bytes (bodies contain NULs).
 */

/* One header (or query parameter) name with its values, in wire order. */
struct sl_envelope_field {
    struct sl_str name; /* original casing */
    const struct sl_str *values;
    size_t n_values;
};

/* A multi-value map: names in wire order, duplicates in any case allowed only if bytes differ. */
struct sl_envelope_multimap {
    const struct sl_envelope_field *fields;
    size_t n;
};

struct sl_envelope_pair {
    struct sl_str name;
    struct sl_str value;
};

/* A single-value map (path_params). */
struct sl_envelope_map {
    const struct sl_envelope_pair *pairs;
    size_t n;
};

/*
 * A request, shaped after API Gateway's REST proxy event v1. Optional keys decode to:
 * path_params empty, strings empty, api_key_id {NULL,0} (nil or absent: no key; the encoder
 * writes nil for an empty id), trace empty (no traceparent), reply_partition -1 (no reply
 * wanted, e.g. replays; nil accepted), attempt 1, replay_count 0.
 */
struct sl_envelope_request {
    uint32_t v; /* set by the decoder; the encoder always writes SL_ENVELOPE_VERSION */
    struct sl_str id;
    struct sl_str method;
    struct sl_str path;
    struct sl_str resource;
    struct sl_envelope_multimap headers;
    struct sl_envelope_multimap query;
    struct sl_envelope_map path_params;
    struct sl_str body; /* bytes */
    struct sl_str source_ip;
    struct sl_str user_agent;
    struct sl_str api_key_id;
    struct sl_str stage;
    int64_t received_ms;
    int64_t deadline_ms;
    struct sl_str trace;
    int32_t reply_partition;
    uint32_t attempt;
    uint32_t replay_count;
    struct msgpack_zone *zone; /* owned when decoded; NULL otherwise */
};

/* A reply. `has_error` false: success, the `error` key is absent on the wire. */
struct sl_envelope_reply {
    uint32_t v;
    struct sl_str id;
    uint32_t status; /* 100..599 */
    struct sl_envelope_multimap headers;
    struct sl_str body;
    bool has_error;
    struct sl_str error_class;
    struct sl_str error_message;
    struct msgpack_zone *zone;
};

/*
 * Decoder limits. The total bounds what msgpack-c allocates (its tree is at most ~24 bytes per
 * input byte); the rest bound what a handler or a hostile producer can push at the gateway.
 */
struct sl_envelope_limits {
    size_t max_input;     /* encoded bytes */
    size_t max_body;      /* body bytes */
    size_t max_fields;    /* values in headers, in query, and pairs in path_params, each */
    size_t max_value_len; /* bytes per header name/value, query name/value, path param */
};

/*
 * Defaults: 16 MiB input, the given body limit, 500 fields, 16 KiB per value. The gateway refuses
 * requests past these (sl_envelope_request_fits) and the worker decodes with them: one set of
 * caps for both sides.
 */
struct sl_envelope_limits sl_envelope_limits_default(size_t max_body);

/*
 * What a failed decode reports: `field` is a static key name ("method", "headers", ...) or
 * "envelope" for the whole input, `message` a sentence for logs and DLQ records.
 */
struct sl_envelope_error {
    const char *field;
    char message[160];
};

/*
 * Decodes exactly one msgpack map of `len` bytes (trailing bytes are an error). Returns 0,
 * SL_ERR_TOO_LARGE (a limit), SL_ERR_PARSE (not msgpack, truncated, duplicate key, value out
 * of range), SL_ERR_TYPE (a key holds the wrong msgpack type), SL_ERR_MISSING (a required key
 * is absent), SL_ERR_VERSION (v is not 1), -ENOMEM. `err` (may be NULL) names the field.
 * Unknown keys are ignored. On failure `out` holds nothing to free.
 */
int sl_envelope_decode_request(const void *data, size_t len,
                               const struct sl_envelope_limits *limits,
                               struct sl_envelope_request *out, struct sl_envelope_error *err);
int sl_envelope_decode_reply(const void *data, size_t len, const struct sl_envelope_limits *limits,
                             struct sl_envelope_reply *out, struct sl_envelope_error *err);

/*
 * Whether a request the caller built would decode under `limits`: the decoder's caps on names,
 * values, value lengths, path parameters and the body, checked before encoding. Returns 0 or
 * SL_ERR_TOO_LARGE with `err` (may be NULL) naming the field. Names are assumed distinct, as
 * an encoder groups them.
 */
int sl_envelope_request_fits(const struct sl_envelope_request *req,
                             const struct sl_envelope_limits *limits,
                             struct sl_envelope_error *err);

void sl_envelope_request_free(struct sl_envelope_request *req);
void sl_envelope_reply_free(struct sl_envelope_reply *rep);

/*
 * Appends the encoding to `out` (bounded by its max). Returns 0, SL_ERR_TOO_LARGE or -ENOMEM;
 * on failure `out` is as it was. Every key is written, in the wire order of
 * docs/internals/envelope.md.
 */
int sl_envelope_encode_request(const struct sl_envelope_request *req, struct sl_buf *out);
int sl_envelope_encode_reply(const struct sl_envelope_reply *rep, struct sl_buf *out);

/*
 * Finds the next field at index >= *pos whose name matches `name` in any case (ASCII), sets
 * *pos past it and returns it; NULL when there is none. Start with *pos = 0; a name can appear
 * more than once with different casing, so loop to see all of them.
 */
const struct sl_envelope_field *sl_envelope_find(const struct sl_envelope_multimap *m,
                                                 const char *name, size_t *pos);

/* The first value of `name` (any case) into *out: 0, or SL_ERR_MISSING. */
int sl_envelope_first(const struct sl_envelope_multimap *m, const char *name, struct sl_str *out);

/* Content equality (v and zone ignored), for tests, the fuzzer and replay checks. */
bool sl_envelope_request_equal(const struct sl_envelope_request *a,
                               const struct sl_envelope_request *b);
bool sl_envelope_reply_equal(const struct sl_envelope_reply *a, const struct sl_envelope_reply *b);

#endif
