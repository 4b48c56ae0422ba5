/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How the console shows a job, the same in 'jobs' and 'status JOB'. */
#ifndef VMCKPT_CLI_SHOW_H
#define VMCKPT_CLI_SHOW_H

#include <jansson.h>

#include "lib/wire/wire.h"

/* A new JSON object with the job's fields; the caller owns it. */
json_t *show_job_json(const Vmckpt__JobInfo *j);

/* The job's row of the jobs table on stdout, after the table's header
 * when 'header'. */
void show_job_row(const Vmckpt__JobInfo *j, int header);

#endif
