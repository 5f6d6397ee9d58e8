/* The error table, exactly as API Gateway REST APIs answer. */
#include "errors.h"

#include <stddef.h>

/* Designated fields: a row names what it has; error_type and retry_after are NULL unless set. */
static const struct gw_error_info table[GW_ERR_COUNT] = {
    [GW_ERR_FORBIDDEN] = {.status = 403,
                          .body = "{\"message\":\"Forbidden\"}",
                          .error_type = "ForbiddenException",
                          .audit = "forbidden"},
    [GW_ERR_MISSING_TOKEN] = {.status = 403,
                              .body = "{\"message\":\"Missing Authentication Token\"}",
                              .error_type = "MissingAuthenticationTokenException",
                              .audit = "missing_token"},
    [GW_ERR_THROTTLED] = {.status = 429,
                          .body = "{\"message\":\"Too Many Requests\"}",
                          .error_type = "TooManyRequestsException",
                          .audit = "throttled"},
    [GW_ERR_QUOTA] = {.status = 429,
                      .body = "{\"message\":\"Limit Exceeded\"}",
                      .error_type = "LimitExceededException",
                      .audit = "quota_exceeded"},
    [GW_ERR_WAF] = {.status = 403,
                    .body = "{\"message\":\"Forbidden\"}",
                    .error_type = "WAFFilteredException",
                    .audit = "waf_blocked"},
    [GW_ERR_TOO_LARGE] = {.status = 413,
                          .body = "{\"message\":\"Request Too Long\"}",
                          .error_type = "RequestTooLargeException",
                          .audit = "body_too_large"},
    [GW_ERR_HEADERS] = {.status = 431,
                        .body = "{\"message\":\"Request Header Fields Too Large\"}",
                        .audit = "headers_too_large"},
    [GW_ERR_URL] = {.status = 414,
                    .body = "{\"message\":\"Request-URI Too Long\"}",
                    .audit = "url_too_long"},
    [GW_ERR_BAD_REQUEST] = {.status = 400,
                            .body = "{\"message\":\"Bad Request\"}",
                            .error_type = "BadRequestException",
                            .audit = "bad_request"},
    [GW_ERR_TIMEOUT] = {.status = 504,
                        .body = "{\"message\":\"Endpoint request timed out\"}",
                        .error_type = "IntegrationTimeout",
                        .audit = "timeout"},
    [GW_ERR_BAD_GATEWAY] = {.status = 502,
                            .body = "{\"message\":\"Internal server error\"}",
                            .error_type = "InternalServerErrorException",
                            .audit = "bad_gateway"},
    [GW_ERR_UNAVAILABLE] = {.status = 503,
                            .body = "{\"message\":\"Service Unavailable\"}",
                            .error_type = "ServiceUnavailableException",
                            .audit = "unavailable",
                            .retry_after = "1"},
    [GW_ERR_REQUEST_TIMEOUT] = {.status = 408,
                                .body = "{\"message\":\"Request Timeout\"}",
                                .audit = "request_timeout"},
    [GW_ERR_INTERNAL] = {.status = 500,
                         .body = "{\"message\":\"Internal server error\"}",
                         .error_type = "InternalServerErrorException",
                         .audit = "internal_error"},
};

const struct gw_error_info *gw_error_info(enum gw_error e) {
    return &table[e < GW_ERR_COUNT ? e : GW_ERR_BAD_GATEWAY];
}

enum gw_error gw_error_of_server_answer(int status) {
    switch (status) {
    case 408:
        return GW_ERR_REQUEST_TIMEOUT;
    case 413:
        return GW_ERR_TOO_LARGE;
    case 414:
        return GW_ERR_URL;
    case 431:
        return GW_ERR_HEADERS;
    case 500:
        return GW_ERR_INTERNAL;
    default:
        return GW_ERR_BAD_REQUEST;
    }
}
