/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the coordinator asks of an agent: start and stop guests, checkpoint
 * one to a peer's store, restore one from an epoch. Checkpoints and
 * restores run in a thread each; their messages to the coordinator go
 * through a pipe to the event loop, which owns the connection. */
#ifndef VMCKPT_WORK_H
#define VMCKPT_WORK_H

#include "lib/wire/wire.h"

struct agent;

/* Set up the pipe from worker threads to the loop. */
int work_init(struct agent *a, struct vmckpt_error *err);
void work_fini(struct agent *a);

/* Handle a request from the coordinator; replies are queued on the link.
 * Returns 1 if the message type was one of the work requests. */
int work_handle(struct agent *a, const Vmckpt__Envelope *env);

/* The link to the coordinator is gone: job checkpoints in flight abort
 * (their guests run on). */
void work_link_lost(struct agent *a);

#endif
