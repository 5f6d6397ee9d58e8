/* sluicectl keys: create, list, revoke and rotate API keys in the keys file. */
#ifndef SLUICE_CTL_KEYS_H
#define SLUICE_CTL_KEYS_H

#include "ctl.h"

/* `sluicectl keys <create|list|revoke|rotate> ...`; see ctl_group_fn. */
int ctl_keys_main(int argc, char **argv, const struct ctl_env *env);

#endif
