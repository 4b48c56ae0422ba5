/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The simulated back end with ops of known length (tests of the pause's
 * parts): its pause takes 3 ms, the device state's save 2 ms, the resume
 * 1 ms, and a state_ready (2 ms, before a live pause) notes what it saw
 * for save_state to compare. */
#ifndef VMCKPT_TIMED_OPS_H
#define VMCKPT_TIMED_OPS_H

#include "agent/hv/hv.h"

struct timed_notes {
    int ready_fd;     /* the descriptor state_ready got (-1: not called) */
    int ready_paused; /* the guest was paused then (-1: not called) */
    int ready_same;   /* save_state got that descriptor */
};
extern struct timed_notes timed_notes;

/* 'ops' = the simulated back end with those ops; the notes reset. */
void timed_ops_get(struct hv_ops *ops);

#endif
