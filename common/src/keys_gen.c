/* New key values and ids from RAND_bytes, and the mutators of a private table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keys_internal.h"
#include "sluice/buf.h"
#include "sluice/error.h"

static int random_value(char value[SL_KEYS_VALUE_SIZE], uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned char raw[32];
    unsigned char b64[48]; /* 44 characters + NUL */
    int rc = 0;
    if (RAND_bytes(raw, sizeof raw) != 1) {
        rc = -EIO;
        goto out;
    }
    if (EVP_EncodeBlock(b64, raw, sizeof raw) != 44) {
        rc = -EIO;
        goto out;
    }
    memcpy(value, "sk_", 3);
    for (size_t i = 0; i < 43; i++) { /* base64 -> base64url, the one '=' of padding dropped */
        char ch = (char)b64[i];
        value[3 + i] = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    }
    value[SL_KEYS_VALUE_LEN] = '\0';
    rc = sl_keys_hash_value(value, SL_KEYS_VALUE_LEN, digest);
    if (rc)
        OPENSSL_cleanse(value, SL_KEYS_VALUE_SIZE);
out:
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(b64, sizeof b64);
    return rc;
}

int sl_keys_generate(char value[SL_KEYS_VALUE_SIZE], char id[SL_KEYS_ID_SIZE],
                     uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -EIO;
    memcpy(id, "key_", 4);
    sl_hex_encode(id + 4, raw, sizeof raw);
    id[4 + 2 * sizeof raw] = '\0';
    return random_value(value, digest);
}

int sl_keys_add(struct sl_keys *k, const struct sl_key *rec, char *err, size_t errlen) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    struct parse_ctx c = {.err = err, .errlen = errlen};
    char path[48];
    snprintf(path, sizeof path, "keys[%zu]", k->nkeys);
    int rc = sl_keys__check_record(&c, k, rec, path);
    if (rc)
        return rc;
    rc = sl_keys__push_key(k, rec);
    if (rc)
        fail(err, errlen, rc, "%s", sl_strerror(rc));
    return rc;
}

int sl_keys_revoke(struct sl_keys *k, const char *id, int64_t now_ms) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    long i = sl_keys__find_id(k, id);
    if (i < 0)
        return -ENOENT;
    /* An earlier revocation stays; a scheduled (future) one is brought forward to now. */
    if (k->keys[i].revoked_ms == SL_KEYS_TIME_NONE || k->keys[i].revoked_ms > now_ms)
        k->keys[i].revoked_ms = now_ms;
    k->keys[i].enabled = false;
    return 0;
}

int sl_keys_rotate(struct sl_keys *k, const char *id, char value[SL_KEYS_VALUE_SIZE]) {
    SL_ASSERT(atomic_load(&k->refs) == 1);
    long i = sl_keys__find_id(k, id);
    if (i < 0)
        return -ENOENT;
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    int rc = random_value(value, digest);
    if (rc)
        return rc;
    /* 2^-256 odds of a clash; checked anyway because the index assumes unique digests. */
    if (sl_keys__find_digest(k, digest) >= 0) {
        OPENSSL_cleanse(value, SL_KEYS_VALUE_SIZE);
        return -EEXIST;
    }
    memcpy(k->keys[i].digest, digest, sizeof digest);
    sl_keys__unindex_digest(k, (size_t)i);
    sl_keys__index_digest(k, (size_t)i);
    return 0;
}
