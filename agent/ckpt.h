/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checkpoint threads (ckpt.c): one per guest and epoch, started in the loop
 * by a CkptBegin; the loop passes them the coordinator's CUT, RESUME and
 * ABORT. Their messages go through the outbox. */
#ifndef VMCKPT_CKPT_H
#define VMCKPT_CKPT_H

#include <stdint.h>

#include "lib/wire/wire.h"

struct agent;
struct vmm_vm;

/* A CkptBegin: start the checkpoint of the one VM it names, or answer an
 * Error (unknown or busy VM, bad stream count). */
void ckpt_start(struct agent *a, const Vmckpt__Envelope *env);
/* CUT, RESUME or ABORT (what = 'c', 'r', 'a', with 'reason' for an abort)
 * for the job checkpoints of job/epoch in flight (epoch 0: all of the job;
 * job NULL: all). Returns how many were told. Any thread. */
int ckpt_tell(const char *job, uint64_t epoch, int what, const char *reason);
/* Abort every checkpoint of guest 'vm' in flight (with 'reason'); how
 * many. Any thread. */
int ckpt_abort_vm(const struct vmm_vm *vm, const char *reason);
/* The coordinator aborted job/epoch: stop its checkpoints here, forget its
 * deltas as bases and drop what this host's store holds of it. */
void ckpt_abort(struct agent *a, const Vmckpt__CkptAbort *ab);
/* RESUME of job/epoch: held checkpoints finish, guests restored paused for
 * a job restart run again. */
void ckpt_resume(struct agent *a, const Vmckpt__CkptResume *r);
/* The link to the coordinator is gone: job checkpoints in flight abort
 * (their guests run on). */
void ckpt_link_lost(struct agent *a);

#endif
