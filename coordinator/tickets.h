/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Store tickets on the coordinator's side (lib/wire/ticket.h,
 * docs/security.md 'Stores'): each store's ticket key comes from a secret
 * this coordinator draws at start, so it holds for the coordinator's run
 * (an agent that registers again gets the same key) and changes with the
 * next run, when every agent registers again. */
#ifndef VMCKPT_COORD_TICKETS_H
#define VMCKPT_COORD_TICKETS_H

#include "server.h"
#include "lib/wire/ticket.h"

/* Draw this run's secret. 0, or -1 with 'err'. */
int tickets_init(struct coord *co, struct vmckpt_error *err);
/* Wipe it. */
void tickets_fini(struct coord *co);
/* The ticket of host 'store's store for host 'client' to do 'op' on epoch
 * 'epoch' of JOB/VM, into 'out' ('buf' holding the bytes), with the key
 * the registry keeps for 'store' since it registered. 0, or -1 (logged;
 * 'out' is then empty and the store will refuse). */
int tickets_make(struct coord *co, const char *store, enum ticket_op op,
                 const char *job, const char *vm, uint64_t epoch,
                 const char *client, uint8_t buf[TICKET_LEN],
                 ProtobufCBinaryData *out);

#endif
