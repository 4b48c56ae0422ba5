/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt cluster start|stop: the agents of many hosts over SSH. */
#ifndef VMCKPT_CLI_CMD_CLUSTER_H
#define VMCKPT_CLI_CMD_CLUSTER_H

#include "cli.h"

/* argv[0] is "cluster"; returns the exit status (0, 1, or 2 for a usage
 * error). */
int cmd_cluster(struct cli *cli, int argc, char **argv);

/* The keys of [launch], which cluster start|stop read (NULL-terminated);
 * the console checks its file against them before any command. */
extern const char *const cmd_cluster_launch_keys[];

#endif
