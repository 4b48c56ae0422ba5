/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the coordinator asks of an agent: start and stop guests, checkpoint
 * one to a peer's store, restore one from an epoch, keep a store's images
 * to a retention. The link hands every request here (main.c wires it). */
#ifndef VMCKPT_WORK_H
#define VMCKPT_WORK_H

#include "lib/wire/wire.h"

struct agent;

/* Handle a request from the coordinator; replies go through the outbox.
 * Returns 1 if the message type was one of the requests, else 0. */
int work_handle(struct agent *a, const Vmckpt__Envelope *env);

#endif
