/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The console's job commands, for the command table. Each takes its own
 * argv (argv[0] the command's name) and returns the exit status: 0, 1 when
 * the operation failed, 2 on a usage error. */
#ifndef VMCKPT_CLI_CMD_JOB_H
#define VMCKPT_CLI_CMD_JOB_H

#include "cli.h"

int cmd_jobs(struct cli *cli, int argc, char **argv);    /* jobs */
int cmd_job(struct cli *cli, int argc, char **argv);     /* job set|token */
int cmd_list(struct cli *cli, int argc, char **argv);    /* list JOB */
int cmd_restart(struct cli *cli, int argc, char **argv); /* restart JOB */
int cmd_cancel(struct cli *cli, int argc, char **argv);  /* cancel JOB */
int cmd_gc(struct cli *cli, int argc, char **argv);      /* gc */

#endif
