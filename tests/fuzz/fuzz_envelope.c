/* libFuzzer target: the envelope decoders on arbitrary bytes, plus the encode/decode round trip. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sluice/buf.h"
#include "sluice/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts so libFuzzer records the input; a violated property is a finding, like a crash. */
static void check(int ok) {
    if (!ok)
        abort();
}

static void fuzz_request(const uint8_t *data, size_t size, const struct sl_envelope_limits *lim) {
    struct sl_envelope_request a, b;
    struct sl_envelope_error err;
    if (sl_envelope_decode_request(data, size, lim, &a, &err) != 0)
        return;
    /* Everything that decodes must re-encode and decode to the same content. */
    struct sl_buf out;
    sl_buf_init(&out, (size_t)64 << 20);
    check(sl_envelope_encode_request(&a, &out) == 0);
    check(sl_envelope_decode_request(out.data, out.len, lim, &b, &err) == 0);
    check(sl_envelope_request_equal(&a, &b));
    sl_envelope_request_free(&b);
    sl_envelope_request_free(&a);
    sl_buf_free(&out);
}

static void fuzz_reply(const uint8_t *data, size_t size, const struct sl_envelope_limits *lim) {
    struct sl_envelope_reply a, b;
    struct sl_envelope_error err;
    if (sl_envelope_decode_reply(data, size, lim, &a, &err) != 0)
        return;
    struct sl_buf out;
    sl_buf_init(&out, (size_t)64 << 20);
    check(sl_envelope_encode_reply(&a, &out) == 0);
    check(sl_envelope_decode_reply(out.data, out.len, lim, &b, &err) == 0);
    check(sl_envelope_reply_equal(&a, &b));
    sl_envelope_reply_free(&b);
    sl_envelope_reply_free(&a);
    sl_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sl_envelope_limits lim = sl_envelope_limits_default((size_t)1 << 20);
    fuzz_request(data, size, &lim);
    fuzz_reply(data, size, &lim);
    return 0;
}
