/* sluicectl s3: apply the archive bucket's settings (encryption, public access, lifecycle). */
#ifndef SLUICE_CTL_S3_H
#define SLUICE_CTL_S3_H

#include "ctl.h"

/* `sluicectl s3 setup|policy [options]`; see ctl_group_fn. */
int ctl_s3_main(int argc, char **argv, const struct ctl_env *env);

#endif
