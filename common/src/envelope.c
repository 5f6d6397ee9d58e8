/* Envelope codec: strict, bounded, zero-copy msgpack decoding and bounded encoding. */
#include "sluice/envelope.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <msgpack.h>

#include "sluice/error.h"

/* Request keys in wire order (docs/internals/envelope.md); the encoder and decoder both walk this
 * table. */
enum req_key {
    RQ_V,
    RQ_ID,
    RQ_METHOD,
    RQ_PATH,
    RQ_RESOURCE,
    RQ_HEADERS,
    RQ_QUERY,
    RQ_PATH_PARAMS,
    RQ_BODY,
    RQ_SOURCE_IP,
    RQ_USER_AGENT,
    RQ_API_KEY_ID,
    RQ_STAGE,
    RQ_RECEIVED_MS,
    RQ_DEADLINE_MS,
    RQ_TRACE,
    RQ_REPLY_PARTITION,
    RQ_ATTEMPT,
    RQ_REPLAY_COUNT,
    RQ_COUNT
};

static const char *const req_names[RQ_COUNT] = {
    [RQ_V] = "v",
    [RQ_ID] = "id",
    [RQ_METHOD] = "method",
    [RQ_PATH] = "path",
    [RQ_RESOURCE] = "resource",
    [RQ_HEADERS] = "headers",
    [RQ_QUERY] = "query",
    [RQ_PATH_PARAMS] = "path_params",
    [RQ_BODY] = "body",
    [RQ_SOURCE_IP] = "source_ip",
    [RQ_USER_AGENT] = "user_agent",
    [RQ_API_KEY_ID] = "api_key_id",
    [RQ_STAGE] = "stage",
    [RQ_RECEIVED_MS] = "received_ms",
    [RQ_DEADLINE_MS] = "deadline_ms",
    [RQ_TRACE] = "trace",
    [RQ_REPLY_PARTITION] = "reply_partition",
    [RQ_ATTEMPT] = "attempt",
    [RQ_REPLAY_COUNT] = "replay_count",
};

static const bool req_required[RQ_COUNT] = {
    [RQ_V] = true,           [RQ_ID] = true,          [RQ_METHOD] = true, [RQ_PATH] = true,
    [RQ_RESOURCE] = true,    [RQ_HEADERS] = true,     [RQ_QUERY] = true,  [RQ_BODY] = true,
    [RQ_RECEIVED_MS] = true, [RQ_DEADLINE_MS] = true,
};

enum rep_key { RP_V, RP_ID, RP_STATUS, RP_HEADERS, RP_BODY, RP_ERROR, RP_COUNT };

static const char *const rep_names[RP_COUNT] = {
    [RP_V] = "v",       [RP_ID] = "id",       [RP_STATUS] = "status", [RP_HEADERS] = "headers",
    [RP_BODY] = "body", [RP_ERROR] = "error",
};

static const bool rep_required[RP_COUNT] = {
    [RP_V] = true, [RP_ID] = true, [RP_STATUS] = true, [RP_HEADERS] = true, [RP_BODY] = true,
};

enum err_key { ER_CLASS, ER_MESSAGE, ER_COUNT };
static const char *const err_names[ER_COUNT] = {[ER_CLASS] = "class", [ER_MESSAGE] = "message"};
static const bool err_required[ER_COUNT] = {true, true};

struct sl_envelope_limits sl_envelope_limits_default(size_t max_body) {
    return (struct sl_envelope_limits){
        .max_input = (size_t)16 << 20,
        .max_body = max_body,
        .max_fields = 500,
        .max_value_len = (size_t)16 << 10,
    };
}

/* ---- structural pre-check ----------------------------------------------------------------- */

static uint64_t be(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * msgpack-c's C unpacker allocates count × sizeof(msgpack_object) for an array or map header
 * before it reads the elements, so a 5-byte input could make it request gigabytes. This walk
 * reads only type bytes and lengths and rejects any container that declares more elements
 * than bytes remain (each element needs at least one), and any truncated value, so that
 * msgpack-c only ever sees inputs whose tree is proportional to their size.
 */
static int precheck(const uint8_t *p, size_t len) {
    size_t off = 0;
    size_t pending = 1;
    while (pending > 0) {
        if (off >= len)
            return SL_ERR_PARSE;
        uint8_t t = p[off++];
        pending--;
        size_t rest = len - off;
        uint64_t skip = 0, count = 0;
        size_t lenbytes = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            skip = 0;
        } else if (t >= 0x80 && t <= 0x8f) {
            count = 2u * (t & 0x0fu);
        } else if (t >= 0x90 && t <= 0x9f) {
            count = t & 0x0fu;
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1fu;
        } else {
            switch (t) {
            case 0xc4:
            case 0xd9:
                lenbytes = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                break; /* bin16, str16 */
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                break; /* bin32, str32 */
            case 0xc7:
                lenbytes = 1;
                break; /* ext8 */
            case 0xc8:
                lenbytes = 2;
                break; /* ext16 */
            case 0xc9:
                lenbytes = 4;
                break; /* ext32 */
            case 0xca:
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext: type + data */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
            case 0xdd:
            case 0xde:
            case 0xdf:
                break; /* containers, below */
            default:
                return SL_ERR_PARSE; /* 0xc1 is never used */
            }
            if (t >= 0xdc) {
                size_t nb = (t == 0xdc || t == 0xde) ? 2 : 4;
                if (rest < nb)
                    return SL_ERR_PARSE;
                count = be(p + off, nb);
                if (t >= 0xde)
                    count *= 2;
                off += nb;
                rest -= nb;
            }
        }
        if (lenbytes) {
            if (rest < lenbytes)
                return SL_ERR_PARSE;
            skip = be(p + off, lenbytes) + ((t >= 0xc7 && t <= 0xc9) ? 1 : 0);
            off += lenbytes;
            rest -= lenbytes;
        }
        if (skip > rest || count > rest - skip)
            return SL_ERR_PARSE;
        off += (size_t)skip;
        pending += (size_t)count;
    }
    return off == len ? 0 : SL_ERR_PARSE;
}

/* ---- decoding ----------------------------------------------------------------------------- */

struct dec {
    msgpack_zone *zone;
    const struct sl_envelope_limits *lim;
    struct sl_envelope_error *err;
};

__attribute__((format(printf, 4, 5))) static int fail(struct dec *d, int rc, const char *field,
                                                      const char *fmt, ...) {
    if (d->err) {
        va_list ap;
        d->err->field = field;
        va_start(ap, fmt);
        vsnprintf(d->err->message, sizeof d->err->message, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const char *type_name(msgpack_object_type t) {
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

static int wrong_type(struct dec *d, const char *field, const char *want, const msgpack_object *o) {
    return fail(d, SL_ERR_TYPE, field, "key '%s' must be %s, got %s", field, want,
                type_name(o->type));
}

static void *zalloc(struct dec *d, size_t n, size_t size) {
    if (n == 0)
        return NULL;
    return msgpack_zone_malloc(d->zone, n * size);
}

static struct sl_str slice(const msgpack_object *o) {
    return (struct sl_str){.p = o->via.str.ptr, .len = o->via.str.size};
}

static bool key_is(const msgpack_object *k, const char *name, size_t len) {
    return k->via.str.size == len && memcmp(k->via.str.ptr, name, len) == 0;
}

/* The most keys a collect() call knows: the request's. */
#define COLLECT_MAX RQ_COUNT
_Static_assert((int)RP_COUNT <= (int)COLLECT_MAX, "the reply has fewer keys than the request");

/*
 * Maps the known keys of a map to slots[]; unknown keys are skipped (forward compatibility)
 * without further inspection, a known key seen twice is an error. The encoders write the keys in
 * names[] order, so the key after the last one found is tried first: a request's 19 keys take
 * 19 comparisons instead of about 190 (any order is still accepted).
 */
static int collect(struct dec *d, const msgpack_object *map, const char *field,
                   const char *const *names, size_t nnames, const msgpack_object **slots) {
    if (map->type != MSGPACK_OBJECT_MAP)
        return wrong_type(d, field, "map", map);
    SL_ASSERT(nnames <= COLLECT_MAX);
    size_t lens[COLLECT_MAX];
    for (size_t i = 0; i < nnames; i++) {
        slots[i] = NULL;
        lens[i] = strlen(names[i]);
    }
    size_t next = 0;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return fail(d, SL_ERR_TYPE, field, "map '%s' has a %s key, keys must be str", field,
                        type_name(kv->key.type));
        size_t k = next;
        if (k >= nnames || !key_is(&kv->key, names[k], lens[k]))
            for (k = 0; k < nnames && !key_is(&kv->key, names[k], lens[k]); k++)
                ;
        if (k == nnames)
            continue;
        if (slots[k])
            return fail(d, SL_ERR_PARSE, names[k], "duplicate key '%s'", names[k]);
        slots[k] = &kv->val;
        next = k + 1;
    }
    return 0;
}

static int get_str(struct dec *d, const msgpack_object *o, const char *field, struct sl_str *out) {
    if (o->type != MSGPACK_OBJECT_STR)
        return wrong_type(d, field, "str", o);
    *out = slice(o);
    return 0;
}

static int get_int64(struct dec *d, const msgpack_object *o, const char *field, int64_t *out) {
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(d, field, "int", o);
    if (o->via.u64 > INT64_MAX)
        return fail(d, SL_ERR_PARSE, field, "key '%s' is out of the int64 range", field);
    *out = (int64_t)o->via.u64;
    return 0;
}

static int get_uint32(struct dec *d, const msgpack_object *o, const char *field, uint64_t min,
                      uint64_t max, uint32_t *out) {
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wrong_type(d, field, "uint", o);
    if (o->via.u64 < min || o->via.u64 > max)
        return fail(d, SL_ERR_PARSE, field, "key '%s' is %llu, must be %llu..%llu", field,
                    (unsigned long long)o->via.u64, (unsigned long long)min,
                    (unsigned long long)max);
    *out = (uint32_t)o->via.u64;
    return 0;
}

static int get_body(struct dec *d, const msgpack_object *o, struct sl_str *out) {
    if (o->type != MSGPACK_OBJECT_BIN)
        return wrong_type(d, "body", "bin", o);
    if (o->via.bin.size > d->lim->max_body)
        return fail(d, SL_ERR_TOO_LARGE, "body", "body of %u bytes exceeds the limit of %zu",
                    o->via.bin.size, d->lim->max_body);
    out->p = o->via.bin.ptr;
    out->len = o->via.bin.size;
    return 0;
}

static int check_len(struct dec *d, const char *field, struct sl_str s) {
    if (s.len > d->lim->max_value_len)
        return fail(d, SL_ERR_TOO_LARGE, field, "a '%s' entry of %zu bytes exceeds %zu", field,
                    s.len, d->lim->max_value_len);
    return 0;
}

/* Exact (byte-equal) repeats of a name are an error; "Accept" and "accept" are two names. */
static int check_dup_name(struct dec *d, const char *field, const msgpack_object_kv *kvs,
                          uint32_t i) {
    for (uint32_t j = 0; j < i; j++) {
        if (kvs[j].key.via.str.size == kvs[i].key.via.str.size &&
            memcmp(kvs[j].key.via.str.ptr, kvs[i].key.via.str.ptr, kvs[i].key.via.str.size) == 0)
            return fail(d, SL_ERR_PARSE, field, "duplicate name '%.*s' in '%s'",
                        (int)(kvs[i].key.via.str.size > 64 ? 64 : kvs[i].key.via.str.size),
                        kvs[i].key.via.str.ptr, field);
    }
    return 0;
}

static int get_multimap(struct dec *d, const msgpack_object *o, const char *field,
                        struct sl_envelope_multimap *out) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return wrong_type(d, field, "map", o);
    uint32_t n = o->via.map.size;
    if (n > d->lim->max_fields)
        return fail(d, SL_ERR_TOO_LARGE, field, "'%s' has %u names, the limit is %zu", field, n,
                    d->lim->max_fields);
    struct sl_envelope_field *fields = zalloc(d, n, sizeof *fields);
    if (n && !fields)
        return -ENOMEM;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        int rc;
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return fail(d, SL_ERR_TYPE, field, "'%s' has a %s name, names must be str", field,
                        type_name(kv->key.type));
        if ((rc = check_len(d, field, slice(&kv->key))) < 0 ||
            (rc = check_dup_name(d, field, o->via.map.ptr, i)) < 0)
            return rc;
        if (kv->val.type != MSGPACK_OBJECT_ARRAY)
            return fail(d, SL_ERR_TYPE, field, "values in '%s' must be array of str, got %s", field,
                        type_name(kv->val.type));
        uint32_t nv = kv->val.via.array.size;
        total += nv;
        if (total > d->lim->max_fields)
            return fail(d, SL_ERR_TOO_LARGE, field, "'%s' has more than %zu values", field,
                        d->lim->max_fields);
        struct sl_str *values = zalloc(d, nv, sizeof *values);
        if (nv && !values)
            return -ENOMEM;
        for (uint32_t j = 0; j < nv; j++) {
            const msgpack_object *v = &kv->val.via.array.ptr[j];
            if (v->type != MSGPACK_OBJECT_STR)
                return fail(d, SL_ERR_TYPE, field, "values in '%s' must be array of str, got %s",
                            field, type_name(v->type));
            values[j] = slice(v);
            if ((rc = check_len(d, field, values[j])) < 0)
                return rc;
        }
        fields[i] =
            (struct sl_envelope_field){.name = slice(&kv->key), .values = values, .n_values = nv};
    }
    out->fields = fields;
    out->n = n;
    return 0;
}

static int get_map(struct dec *d, const msgpack_object *o, const char *field,
                   struct sl_envelope_map *out) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return wrong_type(d, field, "map", o);
    uint32_t n = o->via.map.size;
    if (n > d->lim->max_fields)
        return fail(d, SL_ERR_TOO_LARGE, field, "'%s' has %u names, the limit is %zu", field, n,
                    d->lim->max_fields);
    struct sl_envelope_pair *pairs = zalloc(d, n, sizeof *pairs);
    if (n && !pairs)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        int rc;
        if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR)
            return fail(d, SL_ERR_TYPE, field, "'%s' must map str to str, got %s to %s", field,
                        type_name(kv->key.type), type_name(kv->val.type));
        pairs[i].name = slice(&kv->key);
        pairs[i].value = slice(&kv->val);
        if ((rc = check_len(d, field, pairs[i].name)) < 0 ||
            (rc = check_len(d, field, pairs[i].value)) < 0 ||
            (rc = check_dup_name(d, field, o->via.map.ptr, i)) < 0)
            return rc;
    }
    out->pairs = pairs;
    out->n = n;
    return 0;
}

/*
 * Shared front half of both decoders: limits, structure, msgpack-c unpacking into a zone,
 * top-level keys, then the version, which is checked before anything else so a v2 envelope
 * reports SL_ERR_VERSION rather than whatever its new shape would trip over.
 */
static int decode_root(struct dec *d, const void *data, size_t len, const char *const *names,
                       const bool *required, size_t nnames, const msgpack_object **slots,
                       uint32_t *version) {
    if (len > d->lim->max_input)
        return fail(d, SL_ERR_TOO_LARGE, "envelope", "envelope of %zu bytes exceeds %zu", len,
                    d->lim->max_input);
    if (precheck(data, len) < 0)
        return fail(d, SL_ERR_PARSE, "envelope", "not one complete msgpack value");
    msgpack_unpacked up;
    size_t off = 0;
    msgpack_unpacked_init(&up);
    msgpack_unpack_return ur = msgpack_unpack_next(&up, data, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&up);
        if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
            return -ENOMEM;
        return fail(d, SL_ERR_PARSE, "envelope", "msgpack-c rejected the input (%d)", (int)ur);
    }
    /* The zone now belongs to the decoded struct; up.data stays valid inside it. */
    d->zone = msgpack_unpacked_release_zone(&up);
    if (!d->zone)
        return -ENOMEM;
    int rc = collect(d, &up.data, "envelope", names, nnames, slots);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nnames; i++) {
        if (i == 1 && slots[0]) {
            /* names[0] is "v": settle the version before reporting other missing keys. */
            if (slots[0]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return wrong_type(d, "v", "uint", slots[0]);
            if (slots[0]->via.u64 != SL_ENVELOPE_VERSION)
                return fail(d, SL_ERR_VERSION, "v", "envelope version %llu is not supported",
                            (unsigned long long)slots[0]->via.u64);
            *version = SL_ENVELOPE_VERSION;
        }
        if (required[i] && !slots[i])
            return fail(d, SL_ERR_MISSING, names[i], "missing required key '%s'", names[i]);
    }
    return 0;
}

static void dec_cleanup(struct dec *d) {
    if (d->zone)
        msgpack_zone_free(d->zone);
    d->zone = NULL;
}

static int decode_request_fields(struct dec *d, const msgpack_object **s,
                                 struct sl_envelope_request *r) {
    int rc = 0;
    struct {
        enum req_key key;
        struct sl_str *dst;
    } strs[] = {
        {RQ_ID, &r->id},
        {RQ_METHOD, &r->method},
        {RQ_PATH, &r->path},
        {RQ_RESOURCE, &r->resource},
        {RQ_SOURCE_IP, &r->source_ip},
        {RQ_USER_AGENT, &r->user_agent},
        {RQ_STAGE, &r->stage},
        {RQ_TRACE, &r->trace},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const msgpack_object *o = s[strs[i].key];
        if (o && (rc = get_str(d, o, req_names[strs[i].key], strs[i].dst)) < 0)
            return rc;
    }
    if ((rc = get_multimap(d, s[RQ_HEADERS], "headers", &r->headers)) < 0 ||
        (rc = get_multimap(d, s[RQ_QUERY], "query", &r->query)) < 0)
        return rc;
    if (s[RQ_PATH_PARAMS] &&
        (rc = get_map(d, s[RQ_PATH_PARAMS], "path_params", &r->path_params)) < 0)
        return rc;
    if ((rc = get_body(d, s[RQ_BODY], &r->body)) < 0)
        return rc;
    if (s[RQ_API_KEY_ID] && s[RQ_API_KEY_ID]->type != MSGPACK_OBJECT_NIL &&
        (rc = get_str(d, s[RQ_API_KEY_ID], "api_key_id", &r->api_key_id)) < 0)
        return rc;
    if ((rc = get_int64(d, s[RQ_RECEIVED_MS], "received_ms", &r->received_ms)) < 0 ||
        (rc = get_int64(d, s[RQ_DEADLINE_MS], "deadline_ms", &r->deadline_ms)) < 0)
        return rc;
    r->reply_partition = -1;
    const msgpack_object *rp = s[RQ_REPLY_PARTITION];
    if (rp && rp->type != MSGPACK_OBJECT_NIL) {
        int64_t v = 0;
        if ((rc = get_int64(d, rp, "reply_partition", &v)) < 0)
            return rc;
        if (v < -1 || v > INT32_MAX)
            return fail(d, SL_ERR_PARSE, "reply_partition",
                        "key 'reply_partition' is %lld, must be -1..2147483647", (long long)v);
        r->reply_partition = (int32_t)v;
    }
    r->attempt = 1;
    if (s[RQ_ATTEMPT] &&
        (rc = get_uint32(d, s[RQ_ATTEMPT], "attempt", 0, UINT32_MAX, &r->attempt)) < 0)
        return rc;
    if (s[RQ_REPLAY_COUNT] && (rc = get_uint32(d, s[RQ_REPLAY_COUNT], "replay_count", 0, UINT32_MAX,
                                               &r->replay_count)) < 0)
        return rc;
    return 0;
}

int sl_envelope_decode_request(const void *data, size_t len,
                               const struct sl_envelope_limits *limits,
                               struct sl_envelope_request *out, struct sl_envelope_error *err) {
    struct dec d = {.lim = limits, .err = err};
    const msgpack_object *slots[RQ_COUNT];
    struct sl_envelope_request r = {0};
    int rc = decode_root(&d, data, len, req_names, req_required, RQ_COUNT, slots, &r.v);
    if (rc == 0)
        rc = decode_request_fields(&d, slots, &r);
    if (rc < 0) {
        dec_cleanup(&d);
        memset(out, 0, sizeof *out);
        return rc;
    }
    r.zone = d.zone;
    *out = r;
    return 0;
}

static int decode_reply_fields(struct dec *d, const msgpack_object **s,
                               struct sl_envelope_reply *r) {
    int rc;
    if ((rc = get_str(d, s[RP_ID], "id", &r->id)) < 0 ||
        (rc = get_uint32(d, s[RP_STATUS], "status", 100, 599, &r->status)) < 0 ||
        (rc = get_multimap(d, s[RP_HEADERS], "headers", &r->headers)) < 0 ||
        (rc = get_body(d, s[RP_BODY], &r->body)) < 0)
        return rc;
    const msgpack_object *e = s[RP_ERROR];
    if (!e || e->type == MSGPACK_OBJECT_NIL)
        return 0;
    const msgpack_object *es[ER_COUNT];
    if ((rc = collect(d, e, "error", err_names, ER_COUNT, es)) < 0)
        return rc;
    for (size_t i = 0; i < ER_COUNT; i++) {
        if (err_required[i] && !es[i])
            return fail(d, SL_ERR_MISSING, "error", "missing required key 'error.%s'",
                        err_names[i]);
    }
    if ((rc = get_str(d, es[ER_CLASS], "error", &r->error_class)) < 0 ||
        (rc = get_str(d, es[ER_MESSAGE], "error", &r->error_message)) < 0)
        return rc;
    r->has_error = true;
    return 0;
}

int sl_envelope_decode_reply(const void *data, size_t len, const struct sl_envelope_limits *limits,
                             struct sl_envelope_reply *out, struct sl_envelope_error *err) {
    struct dec d = {.lim = limits, .err = err};
    const msgpack_object *slots[RP_COUNT];
    struct sl_envelope_reply r = {0};
    int rc = decode_root(&d, data, len, rep_names, rep_required, RP_COUNT, slots, &r.v);
    if (rc == 0)
        rc = decode_reply_fields(&d, slots, &r);
    if (rc < 0) {
        dec_cleanup(&d);
        memset(out, 0, sizeof *out);
        return rc;
    }
    r.zone = d.zone;
    *out = r;
    return 0;
}

/* ---- limits before encoding -------------------------------------------------------------- */

static int fits_multimap(struct dec *d, const char *field, const struct sl_envelope_multimap *m) {
    size_t total = 0;
    int rc;
    if (m->n > d->lim->max_fields)
        return fail(d, SL_ERR_TOO_LARGE, field, "'%s' has %zu names, the limit is %zu", field, m->n,
                    d->lim->max_fields);
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_envelope_field *f = &m->fields[i];
        total += f->n_values;
        if (total > d->lim->max_fields)
            return fail(d, SL_ERR_TOO_LARGE, field, "'%s' has more than %zu values", field,
                        d->lim->max_fields);
        if ((rc = check_len(d, field, f->name)) < 0)
            return rc;
        for (size_t j = 0; j < f->n_values; j++)
            if ((rc = check_len(d, field, f->values[j])) < 0)
                return rc;
    }
    return 0;
}

int sl_envelope_request_fits(const struct sl_envelope_request *req,
                             const struct sl_envelope_limits *limits,
                             struct sl_envelope_error *err) {
    struct dec d = {.lim = limits, .err = err};
    int rc;
    if ((rc = fits_multimap(&d, "headers", &req->headers)) < 0 ||
        (rc = fits_multimap(&d, "query", &req->query)) < 0)
        return rc;
    const struct sl_envelope_map *pp = &req->path_params;
    if (pp->n > limits->max_fields)
        return fail(&d, SL_ERR_TOO_LARGE, "path_params",
                    "'path_params' has %zu names, the limit "
                    "is %zu",
                    pp->n, limits->max_fields);
    for (size_t i = 0; i < pp->n; i++)
        if ((rc = check_len(&d, "path_params", pp->pairs[i].name)) < 0 ||
            (rc = check_len(&d, "path_params", pp->pairs[i].value)) < 0)
            return rc;
    if (req->body.len > limits->max_body)
        return fail(&d, SL_ERR_TOO_LARGE, "body", "body of %zu bytes exceeds the limit of %zu",
                    req->body.len, limits->max_body);
    return 0;
}

void sl_envelope_request_free(struct sl_envelope_request *req) {
    if (req->zone)
        msgpack_zone_free(req->zone);
    req->zone = NULL;
}

void sl_envelope_reply_free(struct sl_envelope_reply *rep) {
    if (rep->zone)
        msgpack_zone_free(rep->zone);
    rep->zone = NULL;
}

/* ---- encoding ----------------------------------------------------------------------------- */

struct enc {
    msgpack_packer pk;
    struct sl_buf *out;
    int rc; /* first sl_buf error: tells SL_ERR_TOO_LARGE from -ENOMEM */
};

static int enc_write(void *data, const char *p, size_t n) {
    struct enc *e = data;
    int rc = sl_buf_append(e->out, p, n);
    if (rc < 0) {
        if (e->rc == 0)
            e->rc = rc;
        return -1;
    }
    return 0;
}

/* Packs with msgpack-c; every helper returns non-zero once the buffer refused a write. */
static int pk_str(struct enc *e, struct sl_str s) {
    return msgpack_pack_str(&e->pk, s.len) || msgpack_pack_str_body(&e->pk, s.p, s.len);
}

static int pk_cstr(struct enc *e, const char *s) {
    return pk_str(e, (struct sl_str){.p = s, .len = strlen(s)});
}

static int pk_bin(struct enc *e, struct sl_str s) {
    return msgpack_pack_bin(&e->pk, s.len) || msgpack_pack_bin_body(&e->pk, s.p, s.len);
}

static int pk_multimap(struct enc *e, const struct sl_envelope_multimap *m) {
    if (msgpack_pack_map(&e->pk, m->n))
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        const struct sl_envelope_field *f = &m->fields[i];
        if (pk_str(e, f->name) || msgpack_pack_array(&e->pk, f->n_values))
            return -1;
        for (size_t j = 0; j < f->n_values; j++) {
            if (pk_str(e, f->values[j]))
                return -1;
        }
    }
    return 0;
}

static int pk_map(struct enc *e, const struct sl_envelope_map *m) {
    if (msgpack_pack_map(&e->pk, m->n))
        return -1;
    for (size_t i = 0; i < m->n; i++) {
        if (pk_str(e, m->pairs[i].name) || pk_str(e, m->pairs[i].value))
            return -1;
    }
    return 0;
}

static int enc_finish(struct enc *e, size_t start, int failed) {
    if (!failed)
        return 0;
    e->out->len = start;
    if (e->out->data)
        e->out->data[start] = '\0';
    return e->rc ? e->rc : -ENOMEM;
}

int sl_envelope_encode_request(const struct sl_envelope_request *r, struct sl_buf *out) {
    struct enc e = {.out = out};
    size_t start = out->len;
    msgpack_packer_init(&e.pk, &e, enc_write);
    int f = msgpack_pack_map(&e.pk, RQ_COUNT);
    f = f || pk_cstr(&e, "v") || msgpack_pack_uint32(&e.pk, SL_ENVELOPE_VERSION);
    f = f || pk_cstr(&e, "id") || pk_str(&e, r->id);
    f = f || pk_cstr(&e, "method") || pk_str(&e, r->method);
    f = f || pk_cstr(&e, "path") || pk_str(&e, r->path);
    f = f || pk_cstr(&e, "resource") || pk_str(&e, r->resource);
    f = f || pk_cstr(&e, "headers") || pk_multimap(&e, &r->headers);
    f = f || pk_cstr(&e, "query") || pk_multimap(&e, &r->query);
    f = f || pk_cstr(&e, "path_params") || pk_map(&e, &r->path_params);
    f = f || pk_cstr(&e, "body") || pk_bin(&e, r->body);
    f = f || pk_cstr(&e, "source_ip") || pk_str(&e, r->source_ip);
    f = f || pk_cstr(&e, "user_agent") || pk_str(&e, r->user_agent);
    f = f || pk_cstr(&e, "api_key_id") ||
        (r->api_key_id.len ? pk_str(&e, r->api_key_id) : msgpack_pack_nil(&e.pk));
    f = f || pk_cstr(&e, "stage") || pk_str(&e, r->stage);
    f = f || pk_cstr(&e, "received_ms") || msgpack_pack_int64(&e.pk, r->received_ms);
    f = f || pk_cstr(&e, "deadline_ms") || msgpack_pack_int64(&e.pk, r->deadline_ms);
    f = f || pk_cstr(&e, "trace") || pk_str(&e, r->trace);
    f = f || pk_cstr(&e, "reply_partition") || msgpack_pack_int32(&e.pk, r->reply_partition);
    f = f || pk_cstr(&e, "attempt") || msgpack_pack_uint32(&e.pk, r->attempt);
    f = f || pk_cstr(&e, "replay_count") || msgpack_pack_uint32(&e.pk, r->replay_count);
    return enc_finish(&e, start, f);
}

int sl_envelope_encode_reply(const struct sl_envelope_reply *r, struct sl_buf *out) {
    struct enc e = {.out = out};
    size_t start = out->len;
    msgpack_packer_init(&e.pk, &e, enc_write);
    int f = msgpack_pack_map(&e.pk, r->has_error ? RP_COUNT : RP_COUNT - 1);
    f = f || pk_cstr(&e, "v") || msgpack_pack_uint32(&e.pk, SL_ENVELOPE_VERSION);
    f = f || pk_cstr(&e, "id") || pk_str(&e, r->id);
    f = f || pk_cstr(&e, "status") || msgpack_pack_uint32(&e.pk, r->status);
    f = f || pk_cstr(&e, "headers") || pk_multimap(&e, &r->headers);
    f = f || pk_cstr(&e, "body") || pk_bin(&e, r->body);
    if (r->has_error) {
        f = f || pk_cstr(&e, "error") || msgpack_pack_map(&e.pk, 2);
        f = f || pk_cstr(&e, "class") || pk_str(&e, r->error_class);
        f = f || pk_cstr(&e, "message") || pk_str(&e, r->error_message);
    }
    return enc_finish(&e, start, f);
}

/* ---- lookup and equality ------------------------------------------------------------------ */

const struct sl_envelope_field *sl_envelope_find(const struct sl_envelope_multimap *m,
                                                 const char *name, size_t *pos) {
    for (size_t i = *pos; i < m->n; i++) {
        if (sl_str_eq_nocase(m->fields[i].name, name)) {
            *pos = i + 1;
            return &m->fields[i];
        }
    }
    *pos = m->n;
    return NULL;
}

int sl_envelope_first(const struct sl_envelope_multimap *m, const char *name, struct sl_str *out) {
    size_t pos = 0;
    const struct sl_envelope_field *f;
    while ((f = sl_envelope_find(m, name, &pos)) != NULL) {
        if (f->n_values > 0) {
            *out = f->values[0];
            return 0;
        }
    }
    return SL_ERR_MISSING;
}

static bool str_eq(struct sl_str a, struct sl_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool multimap_eq(const struct sl_envelope_multimap *a,
                        const struct sl_envelope_multimap *b) {
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct sl_envelope_field *x = &a->fields[i], *y = &b->fields[i];
        if (!str_eq(x->name, y->name) || x->n_values != y->n_values)
            return false;
        for (size_t j = 0; j < x->n_values; j++) {
            if (!str_eq(x->values[j], y->values[j]))
                return false;
        }
    }
    return true;
}

bool sl_envelope_request_equal(const struct sl_envelope_request *a,
                               const struct sl_envelope_request *b) {
    if (a->path_params.n != b->path_params.n)
        return false;
    for (size_t i = 0; i < a->path_params.n; i++) {
        if (!str_eq(a->path_params.pairs[i].name, b->path_params.pairs[i].name) ||
            !str_eq(a->path_params.pairs[i].value, b->path_params.pairs[i].value))
            return false;
    }
    return str_eq(a->id, b->id) && str_eq(a->method, b->method) && str_eq(a->path, b->path) &&
           str_eq(a->resource, b->resource) && multimap_eq(&a->headers, &b->headers) &&
           multimap_eq(&a->query, &b->query) && str_eq(a->body, b->body) &&
           str_eq(a->source_ip, b->source_ip) && str_eq(a->user_agent, b->user_agent) &&
           str_eq(a->api_key_id, b->api_key_id) && str_eq(a->stage, b->stage) &&
           a->received_ms == b->received_ms && a->deadline_ms == b->deadline_ms &&
           str_eq(a->trace, b->trace) && a->reply_partition == b->reply_partition &&
           a->attempt == b->attempt && a->replay_count == b->replay_count;
}

bool sl_envelope_reply_equal(const struct sl_envelope_reply *a, const struct sl_envelope_reply *b) {
    if (a->has_error != b->has_error)
        return false;
    if (a->has_error &&
        (!str_eq(a->error_class, b->error_class) || !str_eq(a->error_message, b->error_message)))
        return false;
    return str_eq(a->id, b->id) && a->status == b->status &&
           multimap_eq(&a->headers, &b->headers) && str_eq(a->body, b->body);
}
