/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the agent's request code: work.c (the loop side, restores,
 * retention) and ckpt.c (checkpoint threads). */
#ifndef VMCKPT_WORK_INT_H
#define VMCKPT_WORK_INT_H

#include "agent.h"
#include "lib/wire/wire.h"

struct restore_job;

/* One item through the pipe (its pointer is what is written). */
struct post {
    uint8_t *frame; /* to send, or NULL */
    size_t len;
    struct vmm_vm *done; /* a checkpoint of this guest ended */
    uint64_t epoch;      /* written (0: failed) */
    int coordinated;     /* the epoch counts only once committed */
    /* a restore's image is ready: start the guest from it */
    struct restore_job *restored;
};

/* Hand an item, or an encoded message, to the loop (any thread). */
void post_item(struct agent *a, struct post *p);
void post_msg(struct agent *a, int type, uint64_t id, const void *payload);
void reply_error(struct agent *a, uint64_t id, Vmckpt__ErrorCode code,
                 const char *text);

/* ckpt.c, called in the loop */
void ckpt_start(struct agent *a, const Vmckpt__Envelope *env);
/* CUT, RESUME or ABORT (what = 'c', 'r', 'a') for the checkpoints of
 * job/epoch in flight (epoch 0: all of the job; job NULL: all). Returns
 * how many were told. */
int ckpt_tell(const char *job, uint64_t epoch, int what, const char *reason);
void ckpt_abort(struct agent *a, const Vmckpt__CkptAbort *ab);
void ckpt_resume(struct agent *a, const Vmckpt__CkptResume *r);

#endif
