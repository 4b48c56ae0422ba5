/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fencing by lease: past the end of its lease the agent pauses its guests
 * (the back end's pause op), so that a copy the coordinator restores
 * elsewhere never runs next to one here. Only the coordinator lifts it. */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <signal.h>

#include "ckpt.h"
#include "fence.h"
#include "guard.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/util/notify.h"

/* How often the lease is checked: the coordinator allows for this
 * (HOSTS_FENCE_SLACK_MS, docs/consistency.md). */
#define FENCE_CHECK_MS 100

void fence_renew(struct agent *a, uint64_t sent_ms)
{
    uint64_t until;

    if (a->lease_ms == 0)
        return;
    until = sent_ms + a->lease_ms;
    if (until > a->lease_until) {
        /* restore threads read it (restore.c) */
        __atomic_store_n(&a->lease_until, until, __ATOMIC_RELAXED);
        guard_lease(until);
    }
}

/* Pause every guest not paused by the fence yet. A guest a checkpoint
 * thread owns (its QMP connection is the thread's, and the thread may be
 * blocked on a store it cannot reach) is stopped with SIGSTOP instead,
 * as the fence guard would: its checkpoint is aborted, and it may not run
 * one moment past the lease. */
static int pause_guests(struct agent *a)
{
    struct vmckpt_error err;
    struct vmm_vm *vm;
    int n = 0;

    for (vm = a->vmm.vms; vm != NULL; vm = vm->next) {
        if (vm->fenced || vm->stopping || vm->hv == NULL)
            continue;
        if (vm->busy) {
            if (vm->pid <= 0 || kill(vm->pid, SIGSTOP) < 0) {
                n++; /* (a Xen domain: paused once its thread let go) */
                continue;
            }
            vmm_set_fenced(&a->vmm, vm, 1);
            log_warn("fence: stopped %s/%s (%s): its checkpoint holds its QMP "
                     "connection",
                     vm->job, vm->name, vm->where);
            continue;
        }
        if (vmm_pid_stopped(vm->pid)) {
            /* the guard was first (this loop was held up): no QMP to a
             * stopped QEMU, it would not answer */
            vmm_set_fenced(&a->vmm, vm, 1);
            log_warn("fence: %s/%s (%s) was stopped by the fence guard",
                     vm->job, vm->name, vm->where);
            continue;
        }
        if (vm->ops->pause(vm->hv, &err) < 0) {
            log_err("fence: cannot pause %s/%s (%s): %s", vm->job, vm->name,
                    vm->where, err.text);
            n++;
            continue;
        }
        vmm_set_fenced(&a->vmm, vm, 1);
        log_warn("fence: paused %s/%s (%s)", vm->job, vm->name, vm->where);
    }
    return n;
}

static void check(struct evloop *loop, struct ev_timer *t)
{
    struct agent *a = t->arg;
    uint64_t now = clock_mono_ms();
    char status[160];

    ev_timer_start(loop, t, FENCE_CHECK_MS);
    guard_beat(now);
    if (a->lease_ms == 0 || a->lease_until == 0 || now < a->lease_until)
        return;
    /* an answer waiting unread (this loop was busy) may renew the lease:
     * read it first, check again at the next tick */
    if (!a->fencing && a->fd >= 0 &&
        poll(&(struct pollfd){.fd = a->fd, .events = POLLIN}, 1, 0) > 0)
        return;
    if (!a->fencing) {
        int n;

        a->fencing = 1;
        log_warn("fence: lease of %u ms ended %llu ms ago without a renewal "
                 "from the coordinator; pausing every guest until it says "
                 "they may run",
                 a->lease_ms, (unsigned long long)(now - a->lease_until));
        snprintf(status, sizeof(status),
                 "host %s: fenced (lease ended): guests paused until the "
                 "coordinator answers",
                 a->name);
        notify_status(status);
        n = ckpt_tell(NULL, 0, 'a', "aborted: lease ended (fenced)");
        if (n > 0)
            log_warn("fence: %d checkpoint(s) aborted", n);
    }
    if (pause_guests(a) == 0)
        guard_paused(a->lease_until);
}

void fence_lift(struct agent *a, const char *text)
{
    struct vmckpt_error err;
    char status[320];
    struct vmm_vm *vm;
    int n = 0, was = a->fencing;

    /* renewed: the registration this answers granted a new lease */
    a->fencing = 0;
    for (vm = a->vmm.vms; vm != NULL; vm = vm->next) {
        /* a stale copy the coordinator ordered destroyed stays as it is
         * until its checkpoint thread has ended */
        if (!vm->fenced || vm->destroy_pending)
            continue;
        vmm_set_fenced(&a->vmm, vm, 0);
        if (vm->pid > 0 && vmm_pid_stopped(vm->pid)) {
            kill(vm->pid, SIGCONT); /* stopped by the fence guard */
            log_info("fence: %s/%s (%s) continued", vm->job, vm->name,
                     vm->where);
        }
        if (vm->busy)
            continue; /* stopped, not paused: it runs again as it was */
        if (vm->stopping || vm->held || vm->hv == NULL)
            continue; /* ordered away, or paused for another reason */
        if (vm->ops->resume(vm->hv, &err) < 0) {
            log_err("fence: cannot resume %s/%s: %s", vm->job, vm->name,
                    err.text);
            continue;
        }
        n++;
        log_info("fence: resumed %s/%s", vm->job, vm->name);
    }
    if (was || n > 0) {
        log_info("fence lifted by the coordinator (%s): %d guest(s) run "
                 "again",
                 text, n);
        snprintf(status, sizeof(status),
                 "host %s: registered with coordinator %s; fence lifted",
                 a->name, a->coordinator);
        notify_status(status);
    } else
        log_debug("lease confirmed by the coordinator (%s)", text);
}

void fence_start(struct agent *a)
{
    ev_timer_init(&a->fence_timer, check, a);
    ev_timer_start(a->loop, &a->fence_timer, FENCE_CHECK_MS);
}

void fence_stop(struct agent *a)
{
    ev_timer_stop(a->loop, &a->fence_timer);
}
