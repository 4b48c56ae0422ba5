/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The console's guest commands, for the command table. Each takes its own
 * argv (argv[0] the command's name) and returns the exit status: 0, 1 when
 * the operation failed, 2 on a usage error. */
#ifndef VMCKPT_CLI_CMD_VM_H
#define VMCKPT_CLI_CMD_VM_H

#include "cli.h"

int cmd_vm(struct cli *cli, int argc, char **argv);     /* vm start|stop|list */
int cmd_status(struct cli *cli, int argc, char **argv); /* status [JOB] */
int cmd_restore(struct cli *cli, int argc, char **argv); /* restore --vm */

#endif
