/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt checkpoint: a job's coordinated checkpoint, or one guest's. */
#ifndef VMCKPT_CLI_CMD_CHECKPOINT_H
#define VMCKPT_CLI_CMD_CHECKPOINT_H

#include "cli.h"

/* argv[0] is "checkpoint"; returns the exit status (0, 1, or 2 for a
 * usage error). */
int cmd_checkpoint(struct cli *cli, int argc, char **argv);

#endif
