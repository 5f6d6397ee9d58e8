/* The error table, exactly as API Gateway REST APIs answer. */
#include "errors.h"

#include <stddef.h>

static const struct gw_error_info table[GW_ERR_COUNT] = {
    [GW_ERR_FORBIDDEN] = {403, "{\"message\":\"Forbidden\"}", "ForbiddenException", "forbidden"},
    [GW_ERR_MISSING_TOKEN] = {403, "{\"message\":\"Missing Authentication Token\"}",
                              "MissingAuthenticationTokenException", "missing_token"},
    [GW_ERR_THROTTLED] = {429, "{\"message\":\"Too Many Requests\"}", "TooManyRequestsException",
                          "throttled"},
    [GW_ERR_QUOTA] = {429, "{\"message\":\"Limit Exceeded\"}", "LimitExceededException",
                      "quota_exceeded"},
    [GW_ERR_WAF] = {403, "{\"message\":\"Forbidden\"}", "WAFFilteredException", "waf_blocked"},
    [GW_ERR_TOO_LARGE] = {413, "{\"message\":\"Request Too Long\"}", "RequestTooLargeException",
                          "body_too_large"},
    [GW_ERR_HEADERS] = {431, "{\"message\":\"Request Header Fields Too Large\"}", NULL,
                        "headers_too_large"},
    [GW_ERR_URL] = {414, "{\"message\":\"Request-URI Too Long\"}", NULL, "url_too_long"},
    [GW_ERR_BAD_REQUEST] = {400, "{\"message\":\"Bad Request\"}", "BadRequestException",
                            "bad_request"},
    [GW_ERR_TIMEOUT] = {504, "{\"message\":\"Endpoint request timed out\"}", "IntegrationTimeout",
                        "timeout"},
    [GW_ERR_BAD_GATEWAY] = {502, "{\"message\":\"Internal server error\"}",
                            "InternalServerErrorException", "bad_gateway"},
    [GW_ERR_UNAVAILABLE] = {503, "{\"message\":\"Service Unavailable\"}",
                            "ServiceUnavailableException", "unavailable", "1"},
    [GW_ERR_REQUEST_TIMEOUT] = {408, "{\"message\":\"Request Timeout\"}", NULL, "request_timeout"},
    [GW_ERR_INTERNAL] = {500, "{\"message\":\"Internal server error\"}",
                         "InternalServerErrorException", "internal_error"},
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
