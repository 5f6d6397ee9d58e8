/* Looking a presented key up: SHA-256 of its value, the digest index, the status at a time. */
#include <errno.h>
#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "keys_internal.h"

/*
 * Every keyed request hashes the key it presents. OpenSSL 3 looks a digest up by name on every
 * EVP_Digest(EVP_sha256()) and allocates a context for it, which costs about as much as hashing
 * a key itself. The algorithm is fetched once, and each thread keeps one context.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static _Thread_local EVP_MD_CTX *sha256_ctx;

static void sha256_fetch(void) {
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int sl_keys_hash_value(const char *value, size_t len, uint8_t digest[SL_KEYS_DIGEST_LEN]) {
    unsigned int mdlen = 0;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md)
        return -EIO;
    if (!sha256_ctx && !(sha256_ctx = EVP_MD_CTX_new()))
        return -ENOMEM;
    if (!EVP_DigestInit_ex2(sha256_ctx, sha256_md, NULL) ||
        !EVP_DigestUpdate(sha256_ctx, value, len) ||
        !EVP_DigestFinal_ex(sha256_ctx, digest, &mdlen) || mdlen != SL_KEYS_DIGEST_LEN)
        return -EIO;
    return 0;
}

enum sl_key_status sl_key_status_at(const struct sl_key *key, int64_t now_ms) {
    if (key->revoked_ms != SL_KEYS_TIME_NONE && now_ms >= key->revoked_ms)
        return SL_KEY_REVOKED;
    if (!key->enabled)
        return SL_KEY_DISABLED;
    if (key->expires_ms != SL_KEYS_TIME_NONE && now_ms >= key->expires_ms)
        return SL_KEY_EXPIRED;
    return SL_KEY_OK;
}

const char *sl_key_status_name(enum sl_key_status s) {
    switch (s) {
    case SL_KEY_OK:
        return "ok";
    case SL_KEY_UNKNOWN:
        return "unknown";
    case SL_KEY_DISABLED:
        return "disabled";
    case SL_KEY_EXPIRED:
        return "expired";
    case SL_KEY_REVOKED:
        return "revoked";
    }
    return "unknown";
}

enum sl_key_status sl_keys_lookup(const struct sl_keys *k, const char *value, size_t len,
                                  int64_t now_ms, const struct sl_key **key_out) {
    uint8_t digest[SL_KEYS_DIGEST_LEN];
    if (key_out)
        *key_out = NULL;
    if (!value || sl_keys_hash_value(value, len, digest) != 0)
        return SL_KEY_UNKNOWN;
    long i = sl_keys__find_digest(k, digest);
    OPENSSL_cleanse(digest, sizeof digest);
    if (i < 0)
        return SL_KEY_UNKNOWN;
    if (key_out)
        *key_out = &k->keys[i];
    return sl_key_status_at(&k->keys[i], now_ms);
}
