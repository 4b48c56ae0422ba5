/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The top of the coordinator: which role may send which message, and
 * which module handles it. */
#ifndef VMCKPT_COORD_DISPATCH_H
#define VMCKPT_COORD_DISPATCH_H

#include "server.h"

/* Hand the server the table of every message's route. */
void dispatch_install(struct coord *co);

#endif
