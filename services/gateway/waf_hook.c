/* The empty web ACL: every request is allowed by the default action. */
#include "waf_hook.h"

#include <errno.h>
#include <stdlib.h>

struct gw_waf {
    int unused; /* the compiled web ACL goes here */
};

int gw_waf_new(struct gw_waf **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void gw_waf_free(struct gw_waf *w) {
    free(w);
}

void gw_waf_evaluate(struct gw_waf *w, const struct sl_http_request *req, const char *client_ip,
                     struct gw_waf_verdict *out) {
    (void)w;
    (void)req;
    (void)client_ip;
    *out = (struct gw_waf_verdict){.action = GW_WAF_ALLOW, .rule = "Default_Action"};
}

const char *gw_waf_action_name(enum gw_waf_action a) {
    static const char *const names[] = {"ALLOW", "BLOCK", "COUNT"};
    return a <= GW_WAF_COUNT ? names[a] : "ALLOW";
}
