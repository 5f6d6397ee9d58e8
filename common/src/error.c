/* Error codes to text, and the invariant-failure path of SL_ASSERT. */
#include "sluice/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/log.h"

const char *sl_strerror(int err) {
    switch (err) {
    case SL_OK:
        return "success";
    case SL_ERR_CONFIG:
        return "invalid configuration";
    case SL_ERR_PARSE:
        return "malformed input";
    case SL_ERR_TOO_LARGE:
        return "input exceeds a limit";
    case SL_ERR_TYPE:
        return "value has the wrong type";
    case SL_ERR_MISSING:
        return "required field missing";
    case SL_ERR_KAFKA:
        return "kafka error";
    case SL_ERR_TIMEOUT:
        return "timed out";
    case SL_ERR_CLOSED:
        return "closed";
    case SL_ERR_VERSION:
        return "unsupported version";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

void sl_assert_fail(const char *expr, const char *file, int line) {
    sl_log(SL_LOG_ERROR, NULL, "assertion failed: %s (%s:%d)", expr, file, line);
    abort();
}
