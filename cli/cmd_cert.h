/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt cert init|issue|revoke|list: the cluster's certificate authority,
 * for the command table. Works on the CA directory; never contacts the
 * coordinator. */
#ifndef VMCKPT_CLI_CMD_CERT_H
#define VMCKPT_CLI_CMD_CERT_H

#include "cli.h"

/* argv[0] is "cert"; returns the exit status (0, 1 when the operation
 * failed, 2 on a usage error). */
int cmd_cert(struct cli *cli, int argc, char **argv);

#endif
