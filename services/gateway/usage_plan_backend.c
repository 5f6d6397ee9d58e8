/* What the usage-plan stores share: delivering a decision or a backend error, and counting it. */
#include "usage_plan_backend.h"

#include "sluice/metrics.h"

uint32_t gw_usage__ceil_s(int64_t ms) {
    if (ms <= 0)
        return 0;
    int64_t s = (ms + 999) / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

void gw_usage__deliver(const struct gw_usage__metrics *m, gw_usage_cb cb, void *opaque,
                       const struct gw_usage_decision *d) {
    if (d->outcome == GW_USAGE_THROTTLED && m->throttled)
        sl_counter_inc(m->throttled);
    else if (d->outcome == GW_USAGE_QUOTA_EXCEEDED && m->quota_exceeded)
        sl_counter_inc(m->quota_exceeded);
    cb(d, opaque);
}

void gw_usage__deliver_error(const struct gw_usage__metrics *m, bool fail_open, int err, bool count,
                             gw_usage_cb cb, void *opaque) {
    struct gw_usage_decision d = {
        .outcome = fail_open ? GW_USAGE_BACKEND_ERROR_OPEN : GW_USAGE_BACKEND_ERROR_DENY,
        .error = err,
        /* A denied client should come back soon: the backend usually returns within a second. */
        .retry_after_s = fail_open ? 0 : 1,
    };
    struct sl_metric *c = fail_open ? m->err_open : m->err_closed;
    if (count && c)
        sl_counter_inc(c);
    cb(&d, opaque);
}
