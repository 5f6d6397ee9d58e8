/* The gateway's error contract: status, JSON body and x-amzn-ErrorType, as API Gateway has it. */
#ifndef SLUICE_GATEWAY_ERRORS_H
#define SLUICE_GATEWAY_ERRORS_H

enum gw_error {
    GW_ERR_FORBIDDEN = 0,   /* key missing, unknown, disabled, expired or revoked */
    GW_ERR_MISSING_TOKEN,   /* route not configured */
    GW_ERR_THROTTLED,       /* usage-plan token bucket empty */
    GW_ERR_QUOTA,           /* usage-plan quota exhausted */
    GW_ERR_WAF,             /* WAF block */
    GW_ERR_TOO_LARGE,       /* body over the limit */
    GW_ERR_HEADERS,         /* headers over the limit */
    GW_ERR_URL,             /* request target over the limit */
    GW_ERR_BAD_REQUEST,     /* malformed HTTP */
    GW_ERR_TIMEOUT,         /* no reply by the deadline */
    GW_ERR_BAD_GATEWAY,     /* handler failed, crashed or replied with something invalid */
    GW_ERR_UNAVAILABLE,     /* Kafka unavailable, local queue full, too many in flight */
    GW_ERR_REQUEST_TIMEOUT, /* the client sent its headers or its body too slowly */
    GW_ERR_INTERNAL,        /* the gateway could not take the request in (out of memory) */
    GW_ERR_COUNT
};

struct gw_error_info {
    int status;
    const char *body;        /* the exact JSON body */
    const char *error_type;  /* x-amzn-ErrorType, or NULL when the contract has none */
    const char *audit;       /* the error class recorded in audit records and metrics */
    const char *retry_after; /* Retry-After's value, or NULL: every 503 tells when to retry */
};

/* The constant table, indexed by enum gw_error. */
const struct gw_error_info *gw_error_info(enum gw_error e);

/* The row for an answer the HTTP server gives on its own, by its status (400, 408, 413, 414,
 * 431, 500; any other status is a bad request). */
enum gw_error gw_error_of_server_answer(int status);

#endif
