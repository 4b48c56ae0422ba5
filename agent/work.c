/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Requests from the coordinator, reached through one table from message
 * type to handler. Guests start and stop here, in the loop; checkpoints
 * (ckpt.c) and restores (restore.c) run in threads of their own and answer
 * through the outbox. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "ckpt.h"
#include "restore.h"
#include "work.h"
#include "lib/util/log.h"

static void on_vm_start(struct agent *a, const Vmckpt__Envelope *env)
{
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;
    struct vmckpt_error err;
    struct vmm_vm *vm;
    char text[256];

    if (env->vm_start->spec == NULL) {
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                     "vm-start without a spec");
        return;
    }
    vm = vmm_start(&a->vmm, env->vm_start->spec, NULL, NULL, &err);
    if (vm == NULL) {
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                     err.text);
        return;
    }
    snprintf(text, sizeof(text), "%s/%s started on %s (%s)%s", vm->job,
             vm->name, a->name, vm->where,
             vm->qemu_stream ? "; no dirty tracking here: checkpoints "
                               "use QEMU's migration stream, full "
                               "each time"
                             : "");
    ack.text = text;
    ack.tracking = (char *)vmm_vm_tracking(vm);
    outbox_msg(&a->out, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
}

/* Stop a guest; a stop naming an incarnation is the coordinator's order
 * to destroy a stale copy (one of that incarnation or older). */
static void on_vm_stop(struct agent *a, const Vmckpt__Envelope *env)
{
    const Vmckpt__VmStop *s = env->vm_stop;
    struct vmckpt_error err;
    struct vmm_vm *vm = vmm_find(&a->vmm, s->job, s->vm);
    unsigned long long inc = vm ? vmm_vm_incarnation(vm) : 0;

    if (vm == NULL) {
        snprintf(err.text, sizeof(err.text), "%s/%s is not running on %s",
                 s->job, s->vm, a->name);
        outbox_error(&a->out, env->request_id,
                     VMCKPT__ERROR_CODE__ERR_NOT_FOUND, err.text);
        return;
    }
    if (s->incarnation != 0 && inc > s->incarnation) {
        snprintf(err.text, sizeof(err.text),
                 "%s/%s here is of incarnation %llu, newer than the %llu the "
                 "stop names: not stopped",
                 s->job, s->vm, inc, (unsigned long long)s->incarnation);
        log_warn("%s", err.text);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_STALE,
                     err.text);
        return;
    }
    if (s->incarnation != 0)
        log_warn("%s/%s (%s) is a stale copy, of incarnation %llu: the job "
                 "runs a newer one; destroying it",
                 s->job, s->vm, vm->where, inc);
    if (s->incarnation != 0 && vm->busy) {
        /* a checkpoint of the old incarnation holds it (begun before this
         * host was cut off): aborted now, the copy destroyed at its end */
        vm->destroy_pending = 1;
        ckpt_abort_vm(vm, "a stale copy (the job runs a newer incarnation)");
        outbox_ack(&a->out, env->request_id,
                   "stale copy: destroyed once its checkpoint has ended");
        return;
    }
    if (vmm_stop(&a->vmm, vm, 300, &err) < 0)
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_BUSY,
                     err.text);
    else
        outbox_ack(&a->out, env->request_id,
                   s->incarnation != 0 ? "stale copy destroyed" : "stopped");
}

static void on_ckpt_begin(struct agent *a, const Vmckpt__Envelope *env)
{
    ckpt_start(a, env);
}

static void on_ckpt_cut(struct agent *a, const Vmckpt__Envelope *env)
{
    (void)a;
    log_info("cut of %s epoch %llu: %d guest(s) pause here", env->ckpt_cut->job,
             (unsigned long long)env->ckpt_cut->epoch,
             ckpt_tell(env->ckpt_cut->job, env->ckpt_cut->epoch, 'c', ""));
}

static void on_ckpt_resume(struct agent *a, const Vmckpt__Envelope *env)
{
    ckpt_resume(a, env->ckpt_resume);
}

static void on_ckpt_abort(struct agent *a, const Vmckpt__Envelope *env)
{
    ckpt_abort(a, env->ckpt_abort);
}

/* The epoch is committed: the deltas that went into it become the bases
 * of the next. */
static void on_ckpt_commit(struct agent *a, const Vmckpt__Envelope *env)
{
    struct vmm_vm *vm;

    for (vm = a->vmm.vms; vm != NULL; vm = vm->next)
        if (strcmp(vm->job, env->ckpt_commit->job) == 0 &&
            vm->pending_epoch == env->ckpt_commit->epoch) {
            vm->last_epoch = vm->pending_epoch;
            vm->pending_epoch = 0;
        }
}

static void on_restore(struct agent *a, const Vmckpt__Envelope *env)
{
    restore_start(a, env);
}

static void on_store_retain(struct agent *a, const Vmckpt__Envelope *env)
{
    restore_retain(a, env);
}

static const struct {
    Vmckpt__MsgType type;
    void (*handler)(struct agent *a, const Vmckpt__Envelope *env);
} handlers[] = {
    {VMCKPT__MSG_TYPE__MSG_VM_START, on_vm_start},
    {VMCKPT__MSG_TYPE__MSG_VM_STOP, on_vm_stop},
    {VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN, on_ckpt_begin},
    {VMCKPT__MSG_TYPE__MSG_CKPT_CUT, on_ckpt_cut},
    {VMCKPT__MSG_TYPE__MSG_CKPT_RESUME, on_ckpt_resume},
    {VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, on_ckpt_abort},
    {VMCKPT__MSG_TYPE__MSG_CKPT_COMMIT, on_ckpt_commit},
    {VMCKPT__MSG_TYPE__MSG_RESTORE, on_restore},
    {VMCKPT__MSG_TYPE__MSG_STORE_RETAIN, on_store_retain},
};

int work_handle(struct agent *a, const Vmckpt__Envelope *env)
{
    size_t i;

    for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].type == env->type) {
            handlers[i].handler(a, env);
            return 1;
        }
    return 0;
}
