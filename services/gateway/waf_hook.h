/* The pipeline's WAF step: the interface the WAF engine plugs into (its own issue). */
#ifndef SLUICE_GATEWAY_WAF_HOOK_H
#define SLUICE_GATEWAY_WAF_HOOK_H

#include <stddef.h>

#include "sluice/http.h"

enum gw_waf_action { GW_WAF_ALLOW = 0, GW_WAF_BLOCK, GW_WAF_COUNT };

#define GW_WAF_MAX_LABELS 16

/*
 * A decision for one request. Strings are borrowed from the web ACL, which outlives every
 * request that saw it. A BLOCK with `custom_status` 0 answers the error table's 403.
 */
struct gw_waf_verdict {
    enum gw_waf_action action;
    const char *rule; /* terminating rule name, "Default_Action" when none matched */
    size_t nlabels;
    const char *labels[GW_WAF_MAX_LABELS];
    int custom_status;
    struct sl_str custom_body;
};

/*
 * The WAF as the pipeline sees it. Until the WAF engine lands this is the empty web ACL: no
 * rules, default action Allow, which is what AWS WAF does with an ACL that has no rules.
 * Owned by the gateway; gw_waf_free releases it.
 */
struct gw_waf;

int gw_waf_new(struct gw_waf **out);
void gw_waf_free(struct gw_waf *w);
void gw_waf_evaluate(struct gw_waf *w, const struct sl_http_request *req, const char *client_ip,
                     struct gw_waf_verdict *out);
const char *gw_waf_action_name(enum gw_waf_action a);

#endif
