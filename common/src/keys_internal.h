/* What the keys files share and the public header does not show: the table and its indexes. */
#ifndef SLUICE_KEYS_INTERNAL_H
#define SLUICE_KEYS_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "sluice/keys.h"

#define HASH_PREFIX     "sha256:"
#define HASH_PREFIX_LEN 7

/* A plan plus whether the file defined it (the built-in "default" is not written back). */
struct plan_entry {
    struct sl_plan plan;
    bool from_file;
};

struct sl_keys {
    atomic_uint refs;
    struct sl_key *keys;
    size_t nkeys, capkeys;
    struct plan_entry *plans;
    size_t nplans, capplans;
    /* Open-addressing indexes: slot value 0 = empty, otherwise key index + 1. */
    uint32_t *by_digest;
    uint32_t *by_id;
    size_t nslots; /* power of two, at least twice the number of keys */
};

/* Writes one line to `err` (when there is one) and returns `code`: how every step reports. */
static inline int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Where the parser and sl_keys_add write their message. */
struct parse_ctx {
    char *err;
    size_t errlen;
};

/* The table's indexes (keys_table.c). Index of the key with this digest or id, or -1. */
long sl_keys__find_digest(const struct sl_keys *k, const uint8_t *digest);
long sl_keys__find_id(const struct sl_keys *k, const char *id);
void sl_keys__index_digest(struct sl_keys *k, size_t i);
void sl_keys__unindex_digest(struct sl_keys *k, size_t i);
int sl_keys__push_key(struct sl_keys *k, const struct sl_key *rec);
struct plan_entry *sl_keys__find_plan(const struct sl_keys *k, const char *name);
int sl_keys__push_plan(struct sl_keys *k, const struct sl_plan *p, bool from_file);

/* Validation shared by the parser and sl_keys_add (keys_parse.c). */
int sl_keys__check_record(struct parse_ctx *c, const struct sl_keys *k, const struct sl_key *rec,
                          const char *path);

#endif
