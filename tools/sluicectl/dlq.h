/* sluicectl dlq: inspect, filter and replay the dead-letter topic (docs/sluicectl.md). */
#ifndef SLUICE_CTL_DLQ_H
#define SLUICE_CTL_DLQ_H

#include "args.h"
#include "ctl.h"
#include "dlq_scan.h"

int ctl_dlq_main(int argc, char **argv, const struct ctl_env *env);

/* dlq replay (dlq_replay.c). */
int ctl_dlq_replay(const struct ctl_args *a, const struct ctl_env *env);

/* Output shared by list and replay --dry-run: a record as a table row or a JSON line. */
struct dlq_table {
    int width; /* terminal columns; 0: no truncation (not a terminal) */
};
void dlq_table_init(struct dlq_table *t);
/* `first` (NULL: none) is an extra leading column, 24 characters wide (a dry run's action). */
void dlq_table_header(const struct dlq_table *t, const char *first);
void dlq_table_row(const struct dlq_table *t, const struct dlq_record *r, const char *first);
/* One JSON object on a line; `action` (NULL: none) says what a dry run would do. */
void dlq_json_line(const struct dlq_record *r, const char *action);

/* The consumer group and transactional id of a replay job. */
int dlq_job_group(const struct ctl_env *env, const char *job, char *out, size_t len);
#define DLQ_JOB_GROUP_INFIX "dlq-replay."

#endif
