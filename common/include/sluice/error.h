/* Error codes shared by every Sluice module, and the helper that turns them into text. */
#ifndef SLUICE_ERROR_H
#define SLUICE_ERROR_H

#include <errno.h>

/*
 * Functions return 0 on success or a negative code: either a negated errno value (-ENOMEM,
 * -EINVAL, ...) or one of the Sluice-specific codes below, which live above the errno range.
 * A function that fails leaves nothing half-made and, when it takes a callback, never calls it.
 */
enum sl_error {
    SL_OK = 0,
    SL_ERR_CONFIG = -10001,    /* a setting is missing, malformed or out of bounds */
    SL_ERR_PARSE = -10002,     /* input does not follow its grammar */
    SL_ERR_TOO_LARGE = -10003, /* input exceeds a configured limit */
    SL_ERR_TYPE = -10004,      /* a value has the wrong type */
    SL_ERR_MISSING = -10005,   /* a required field is absent */
    SL_ERR_KAFKA = -10006,     /* librdkafka reported an error */
    SL_ERR_TIMEOUT = -10007,   /* a deadline passed */
    SL_ERR_CLOSED = -10008,    /* the object is shutting down or closed */
    SL_ERR_VERSION = -10009,   /* unsupported version */
};

/* Returns a static, human-readable description of an error code (never NULL). */
const char *sl_strerror(int err);

/*
 * Invariant check: logs file, line and expression at error level, then aborts. Used for
 * programming errors only; recoverable errors are returned, never asserted.
 */
#define SL_ASSERT(expr)                                                                            \
    do {                                                                                           \
        if (!(expr))                                                                               \
            sl_assert_fail(#expr, __FILE__, __LINE__);                                             \
    } while (0)

_Noreturn void sl_assert_fail(const char *expr, const char *file, int line);

#endif
