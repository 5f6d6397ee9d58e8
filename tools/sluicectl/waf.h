/* sluicectl waf: validate a WAFv2 web ACL and evaluate raw HTTP requests against it. */
#ifndef SLUICE_CTL_WAF_H
#define SLUICE_CTL_WAF_H

#include "ctl.h"

/* `sluicectl waf check ACL.json...` and `sluicectl waf eval ACL.json [REQUEST...]`. */
int ctl_waf_main(int argc, char **argv, const struct ctl_env *env);

#endif
