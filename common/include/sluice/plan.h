/* Usage plans: the throttle and quota a key is subject to (docs/gateway-usage-plans.md). */
#ifndef SLUICE_PLAN_H
#define SLUICE_PLAN_H

#include <stdint.h>

/* Quota windows are aligned to UTC: midnight, Monday 00:00 (ISO week), the 1st of the month. */
enum sl_quota_period { SL_QUOTA_NONE = 0, SL_QUOTA_DAY, SL_QUOTA_WEEK, SL_QUOTA_MONTH };

#define SL_PLAN_NAME_MAX 64

/*
 * A plan is a plain value (no pointers), so copies are cheap and a reloaded keys file can
 * replace the table without invalidating plans held by in-flight requests.
 */
struct sl_plan {
    char name[SL_PLAN_NAME_MAX];
    double rate;          /* token-bucket refill, requests per second; 0 means no throttle */
    uint32_t burst;       /* token-bucket capacity */
    uint64_t quota_limit; /* requests per period; 0 means no quota */
    enum sl_quota_period quota_period;
};

/* The built-in plan, named "default" (API Gateway's sample usage plan): 1000 req/s, burst 2000,
 * 10,000 per day. */
#define SL_PLAN_DEFAULT_INIT                                                                       \
    {                                                                                              \
        .name = "default", .rate = 1000, .burst = 2000, .quota_limit = 10000,                      \
        .quota_period = SL_QUOTA_DAY                                                               \
    }

#endif
