/* API keys: the keys file (JSON, hashes only), its in-memory table, lookup and key generation. */
#ifndef SLUICE_KEYS_H
#define SLUICE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/buf.h"
#include "sluice/plan.h"

/*
 * The keys file (docs/keys.md) lists keys by id with the SHA-256 of their value,
 * and the usage plans they refer to. A key value ("sk_" + 43 base64url characters) is never
 * stored: this module hashes a presented value and forgets it.
 */

#define SL_KEYS_FILE_MAX   (16u * 1024u * 1024u) /* larger files are refused */
#define SL_KEYS_VERSION    1
#define SL_KEYS_DIGEST_LEN 32  /* SHA-256 */
#define SL_KEYS_ID_SIZE    65  /* ids: 1..64 of [A-Za-z0-9_.-], plus NUL */
#define SL_KEYS_NAME_SIZE  257 /* names: up to 256 bytes, no control characters, plus NUL */
#define SL_KEYS_VALUE_LEN  46  /* "sk_" + 43 base64url characters (32 random bytes) */
#define SL_KEYS_VALUE_SIZE (SL_KEYS_VALUE_LEN + 1)
#define SL_KEYS_ERR_SIZE   256       /* a good size for the `err` buffers below */
#define SL_KEYS_TIME_NONE  INT64_MIN /* "null" for created / expires / revoked */

/*
 * Why a presented key is refused (or not). The gateway answers 403 {"message":"Forbidden"}
 * for every status but OK, whatever the reason, so a client cannot tell an unknown key from a
 * revoked one; the reason is only a metrics/log label (sl_key_status_name), never with the key.
 * Precedence when several apply: REVOKED, then DISABLED, then EXPIRED.
 */
enum sl_key_status {
    SL_KEY_OK = 0,
    SL_KEY_UNKNOWN,  /* no key has this hash */
    SL_KEY_DISABLED, /* "enabled": false */
    SL_KEY_EXPIRED,  /* now >= "expires" */
    SL_KEY_REVOKED,  /* now >= "revoked" */
};

/*
 * One key record: a plain value (no pointers), so callers may copy it freely. Times are epoch
 * milliseconds, SL_KEYS_TIME_NONE for null; the file spells them as sl_time_parse_iso8601 reads
 * and sl_time_format_iso8601_compact writes (sluice/time.h).
 */
struct sl_key {
    char id[SL_KEYS_ID_SIZE];
    char name[SL_KEYS_NAME_SIZE];
    char plan[SL_PLAN_NAME_MAX];
    uint8_t digest[SL_KEYS_DIGEST_LEN]; /* SHA-256 of the key value */
    bool enabled;
    int64_t created_ms;
    int64_t expires_ms;
    int64_t revoked_ms;
};

/*
 * A table of keys and plans, indexed by digest.
 *
 * Ownership and lifetime: reference-counted. Whoever creates a table (sl_keys_parse,
 * sl_keys_load, sl_keys_new) holds one reference; sl_keys_ref adds one, sl_keys_unref drops one
 * and frees the table with the last. The count is atomic, so references may be taken and dropped
 * on any thread. Pointers returned by the accessors (struct sl_key *, struct sl_plan *) stay
 * valid while the caller holds a reference: the gateway swaps tables on reload, so a request
 * either holds a reference or copies what it needs (gw_auth does the latter).
 *
 * Immutability: a table that has been shared (refcount > 1) is never modified. The mutators
 * (sl_keys_add, sl_keys_revoke, sl_keys_rotate) are for a private table (sluicectl's
 * read-modify-write) and assert that the caller holds the only reference.
 */
struct sl_keys;

/* Parses a keys file image. On error returns SL_ERR_PARSE, SL_ERR_TYPE, SL_ERR_MISSING,
 * SL_ERR_VERSION, SL_ERR_TOO_LARGE or -ENOMEM, and writes one line to `err` naming the
 * offending element by its JSON path, e.g.
 *   keys[3].hash: expected "sha256:" followed by 64 lowercase hex digits
 * `err` may be NULL. Nothing is allocated on failure. */
int sl_keys_parse(const char *json, size_t len, struct sl_keys **out, char *err, size_t errlen);

/* Reads and parses `path` (at most SL_KEYS_FILE_MAX bytes). Errors as sl_keys_parse, plus
 * negative errno from open/read. If `digest_out` is not NULL it receives the SHA-256 of the
 * file's bytes (also on parse errors), which lets a watcher skip unchanged contents. */
int sl_keys_load(const char *path, struct sl_keys **out, uint8_t digest_out[SL_KEYS_DIGEST_LEN],
                 char *err, size_t errlen);

/* An empty table (version 1, the built-in "default" plan only). */
int sl_keys_new(struct sl_keys **out);

struct sl_keys *sl_keys_ref(struct sl_keys *k);
void sl_keys_unref(struct sl_keys *k); /* NULL is fine */

size_t sl_keys_count(const struct sl_keys *k);
const struct sl_key *sl_keys_at(const struct sl_keys *k, size_t i); /* NULL past the end */
const struct sl_key *sl_keys_find_id(const struct sl_keys *k, const char *id);

/* Plans by name; "default" always resolves (the built-in one unless the file redefines it). */
const struct sl_plan *sl_keys_plan(const struct sl_keys *k, const char *name);
size_t sl_keys_plan_count(const struct sl_keys *k);
const struct sl_plan *sl_keys_plan_at(const struct sl_keys *k, size_t i);

/*
 * Looks up a presented key value: SHA-256 of the bytes, a hash-table probe on the digest, then
 * a constant-time comparison of the full digest (CRYPTO_memcmp), then the status at `now_ms`.
 * `*key_out` (may be NULL) receives the record for every status but UNKNOWN. The value is only
 * read: it is never copied, stored or logged; the digest is wiped from the stack afterwards.
 */
enum sl_key_status sl_keys_lookup(const struct sl_keys *k, const char *value, size_t len,
                                  int64_t now_ms, const struct sl_key **key_out);

/* A record's status at `now_ms` (precedence in the enum's comment). */
enum sl_key_status sl_key_status_at(const struct sl_key *key, int64_t now_ms);
/* "ok", "unknown", "disabled", "expired", "revoked": the metrics label. */
const char *sl_key_status_name(enum sl_key_status s);

/* SHA-256 of a key value (the stored hash). */
int sl_keys_hash_value(const char *value, size_t len, uint8_t digest[SL_KEYS_DIGEST_LEN]);

/*
 * Generates a fresh key with RAND_bytes: `value` gets "sk_" + base64url(32 bytes) (NUL-
 * terminated), `id` gets "key_" + 16 hex digits, `digest` its SHA-256. The caller shows the value
 * once and then wipes it with OPENSSL_cleanse. Returns 0 or -EIO when the RNG fails.
 */
int sl_keys_generate(char value[SL_KEYS_VALUE_SIZE], char id[SL_KEYS_ID_SIZE],
                     uint8_t digest[SL_KEYS_DIGEST_LEN]);

/*
 * Mutators for a private table (refcount 1). sl_keys_add validates the record like the parser
 * (id syntax, plan exists, no duplicate id or digest): SL_ERR_PARSE / SL_ERR_MISSING / -EEXIST,
 * with a message in `err`. sl_keys_revoke sets revoked = now and enabled = false (-ENOENT if
 * the id is unknown; an earlier revocation time is kept, a future one brought forward).
 * sl_keys_rotate gives the key a new value (returned in `value`, wipe it after use), keeping id,
 * name, plan and times.
 */
int sl_keys_add(struct sl_keys *k, const struct sl_key *rec, char *err, size_t errlen);
int sl_keys_revoke(struct sl_keys *k, const char *id, int64_t now_ms);
int sl_keys_rotate(struct sl_keys *k, const char *id, char value[SL_KEYS_VALUE_SIZE]);

/* Appends the table as pretty-printed JSON with a stable field order (and a final newline). */
int sl_keys_serialize(const struct sl_keys *k, struct sl_buf *out);

/*
 * Writes the table to `path` atomically: a temp file in the same directory (mode 0600 for a
 * new file, the old file's mode otherwise), fsync, rename over `path`, fsync the directory.
 * If `path` is a symlink, its target is replaced. On failure the temp file is removed and
 * `path` is unchanged; `err` names the step and the reason.
 */
int sl_keys_write_file(const struct sl_keys *k, const char *path, char *err, size_t errlen);

#endif
