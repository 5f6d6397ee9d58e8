/* sluicectl config print SERVICE: a service's effective configuration from the environment. */
#ifndef SLUICE_CTL_CONFIG_H
#define SLUICE_CTL_CONFIG_H

#include "ctl.h"

int ctl_config_main(int argc, char **argv, const struct ctl_env *env);

#endif
