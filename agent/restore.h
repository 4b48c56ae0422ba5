/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Restores and retention (restore.c), started in the loop, each running in
 * a thread of its own and answering through the outbox. */
#ifndef VMCKPT_RESTORE_H
#define VMCKPT_RESTORE_H

#include "lib/wire/wire.h"

struct agent;

/* A Restore request: fetch the epoch's image, then (in the loop) start the
 * guest from it, replacing a running copy of the same name; RestoreDone
 * answers, with the error if any. */
void restore_start(struct agent *a, const Vmckpt__Envelope *env);
/* A StoreRetain request: fold this store's image of one VM so that it keeps
 * epochs from keep_from on; Ack or Error answers. */
void restore_retain(struct agent *a, const Vmckpt__Envelope *env);

#endif
