/* libFuzzer target: the keys-file parser, plus a serialize/parse round trip of what it accepts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/buf.h"
#include "sluice/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sl_keys *k = NULL;
    char err[SL_KEYS_ERR_SIZE];
    if (sl_keys_parse((const char *)data, size, &k, err, sizeof err) != 0) {
        /* Every refusal must say why. */
        if (err[0] == '\0')
            abort();
        return 0;
    }
    /* What the parser accepts must serialize, parse again and serialize to the same bytes. */
    struct sl_buf a, b;
    sl_buf_init(&a, SL_KEYS_FILE_MAX * 2);
    sl_buf_init(&b, SL_KEYS_FILE_MAX * 2);
    struct sl_keys *k2 = NULL;
    if (sl_keys_serialize(k, &a) != 0 || sl_keys_parse(a.data, a.len, &k2, err, sizeof err) != 0)
        abort();
    if (sl_keys_serialize(k2, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    if (sl_keys_count(k) != sl_keys_count(k2) || sl_keys_plan_count(k) != sl_keys_plan_count(k2))
        abort();
    for (size_t i = 0; i < sl_keys_count(k); i++) {
        const struct sl_key *x = sl_keys_at(k, i), *y = sl_keys_at(k2, i);
        if (strcmp(x->id, y->id) != 0 || strcmp(x->name, y->name) != 0 ||
            memcmp(x->digest, y->digest, sizeof x->digest) != 0 || x->enabled != y->enabled ||
            x->created_ms != y->created_ms || x->expires_ms != y->expires_ms ||
            x->revoked_ms != y->revoked_ms)
            abort();
        /* Every key is found again by its id. */
        if (sl_keys_find_id(k2, x->id) != y)
            abort();
    }
    sl_buf_free(&a);
    sl_buf_free(&b);
    sl_keys_unref(k2);
    sl_keys_unref(k);
    return 0;
}
