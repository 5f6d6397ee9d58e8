/* sluicectl topics: create the Kafka topics of the catalog (sluice/topics.h). */
#ifndef SLUICE_CTL_TOPICS_H
#define SLUICE_CTL_TOPICS_H

#include "ctl.h"

/* `sluicectl topics create [options]`; see ctl_group_fn. */
int ctl_topics_main(int argc, char **argv, const struct ctl_env *env);

#endif
