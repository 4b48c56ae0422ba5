/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The simulated back end with ops of known length (timed_ops.h). */
#include "config.h"

#include <unistd.h>

#include "agent/hv/hv_sim.h"
#include "timed_ops.h"

struct timed_notes timed_notes;

static int slow_pause(struct hv_vm *vm, struct vmckpt_error *err)
{
    usleep(3000);
    return hv_sim_ops.pause(vm, err);
}

static int64_t slow_save_state(struct hv_vm *vm, int fd,
                               struct vmckpt_error *err)
{
    usleep(2000);
    timed_notes.ready_same = fd == timed_notes.ready_fd;
    return hv_sim_ops.save_state(vm, fd, err);
}

static int note_state_ready(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    struct hv_sim_stats st;

    (void)err;
    usleep(2000); /* before the pause: pre-copy time (precopy_ms) */
    hv_sim_stats(vm, &st);
    timed_notes.ready_fd = fd;
    timed_notes.ready_paused = st.paused;
    return 0;
}

static int slow_resume(struct hv_vm *vm, struct vmckpt_error *err)
{
    usleep(1000);
    return hv_sim_ops.resume(vm, err);
}

void timed_ops_get(struct hv_ops *ops)
{
    *ops = hv_sim_ops;
    ops->pause = slow_pause;
    ops->save_state = slow_save_state;
    ops->resume = slow_resume;
    ops->state_ready = note_state_ready;
    timed_notes.ready_fd = timed_notes.ready_paused = -1;
    timed_notes.ready_same = 0;
}
