/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Requests from the coordinator. A checkpoint or restore runs in its own
 * thread (the event loop keeps heartbeating); the thread hands finished
 * frames, and state changes of its guest, to the loop through a pipe. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "agent/store/image.h"
#include "lib/util/log.h"
#include "agent/engine/precopy.h"
#include "agent/store/stream.h"
#include "work.h"
#include "work_int.h"

struct restore_job {
    struct agent *a;
    Vmckpt__Restore *r; /* owned copy */
    uint64_t req;
    char ram[4200];
    int state_fd;
    char error[512];
};

void post_item(struct agent *a, struct post *p)
{
    if (write(a->work_pipe[1], &p, sizeof(p)) != (ssize_t)sizeof(p)) {
        log_errno("work pipe");
        free(p->frame);
        free(p);
    }
}

void post_msg(struct agent *a, int type, uint64_t id, const void *payload)
{
    struct post *p = calloc(1, sizeof(*p));
    struct vmckpt_error err;

    if (p == NULL)
        return;
    if (wire_encode(type, id, payload, &p->frame, &p->len, &err) < 0) {
        log_err("%s", err.text);
        free(p);
        return;
    }
    post_item(a, p);
}

void reply_error(struct agent *a, uint64_t id, Vmckpt__ErrorCode code,
                 const char *text)
{
    Vmckpt__Error e = VMCKPT__ERROR__INIT;

    e.code = code;
    e.text = (char *)text;
    post_msg(a, VMCKPT__MSG_TYPE__MSG_ERROR, id, &e);
}

/* How the guest's writes are tracked, as reported to the coordinator. */
static char *vm_tracking(const struct vmm_vm *vm)
{
    if (vmm_is_xen(vm))
        return "xen-logdirty";
    return vm->qemu_stream ? "qemu-migration" : "uffd-wp";
}

/* ---- restore thread -------------------------------------------------- */

static void *restore_main(void *arg)
{
    struct restore_job *r = arg;
    struct vmckpt_error err;
    struct post *p = calloc(1, sizeof(*p));
    int ram_fd = open(r->ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc;

    r->state_fd = memfd_create("vmckpt-restore-state", MFD_CLOEXEC);
    if (ram_fd < 0 || r->state_fd < 0) {
        rc = errprintf_errno(&err, "restore files");
    } else if (strcmp(r->r->source_host, r->a->name) == 0) {
        struct image_manifest m;

        rc =
            image_manifest_load(r->a->store.dir, r->r->job, r->r->vm, &m, &err);
        if (rc == 0 && ftruncate(ram_fd, (off_t)m.ram_bytes) < 0)
            rc = errprintf_errno(&err, "RAM file");
        if (rc == 0)
            rc = image_restore(r->a->store.dir, r->r->job, r->r->vm,
                               r->r->epoch, ram_fd, r->state_fd, &err);
    } else {
        rc = stream_fetch(r->r->source_addr, &r->a->key, r->a->name, r->r->job,
                          r->r->vm, r->r->epoch, ram_fd, r->state_fd, &err);
    }
    if (ram_fd >= 0)
        close(ram_fd);
    if (rc < 0)
        snprintf(r->error, sizeof(r->error), "%s", err.text);
    if (p == NULL)
        return NULL;
    p->restored = r;
    post_item(r->a, p);
    return NULL;
}

static void restore_free(struct restore_job *r)
{
    if (r->state_fd >= 0)
        close(r->state_fd);
    unlink(r->ram);
    wire_free_message(r->r);
    free(r);
}

/* In the loop: the image is here; (re)start the guest from it. */
static void restore_finish(struct agent *a, struct restore_job *r)
{
    Vmckpt__RestoreDone d = VMCKPT__RESTORE_DONE__INIT;
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct vmckpt_error err;
    struct vmm_vm *vm, *old;

    d.job = r->r->job;
    d.vm = r->r->vm;
    d.epoch = r->r->epoch;
    e.code = VMCKPT__ERROR_CODE__ERR_NONE;
    e.text = "";
    d.error = &e;
    if (r->error[0] != '\0')
        goto fail;
    /* a surviving guest of the same name is replaced by its image */
    old = vmm_find(&a->vmm, r->r->job, r->r->vm);
    if (old != NULL && vmm_stop(&a->vmm, old, 5000, &err) != 1) {
        if (old->busy)
            goto fail_err;
        snprintf(err.text, sizeof(err.text),
                 "the running copy of %s/%s did not stop", r->r->job, r->r->vm);
        goto fail_err;
    }
    vm = vmm_start(&a->vmm, r->r->spec, r->ram, &err);
    if (vm == NULL)
        goto fail_err;
    if ((r->r->qemu_stream
             ? vm->ops->load_full(vm->hv, r->state_fd, &err)
             : vm->ops->load_state(vm->hv, r->state_fd, &err)) < 0 ||
        (!r->r->start_paused && vm->ops->resume(vm->hv, &err) < 0)) {
        struct vmckpt_error e2;

        (void)vmm_stop(&a->vmm, vm, 200, &e2);
        goto fail_err;
    }
    if (vmm_is_xen(vm))
        unlink(vm->ram); /* in the domain now */
    vm->held = r->r->start_paused;
    d.tracking = vm_tracking(vm);
    vm->restored_epoch = r->r->epoch;
    log_info("guest %s/%s restored from epoch %llu (%s's store) and %s",
             r->r->job, r->r->vm, (unsigned long long)r->r->epoch,
             r->r->source_host,
             vm->held ? "paused until the job resumes" : "running");
    post_msg(a, VMCKPT__MSG_TYPE__MSG_RESTORE_DONE, r->req, &d);
    restore_free(r);
    return;
fail_err:
    snprintf(r->error, sizeof(r->error), "%s", err.text);
fail:
    log_err("restore of %s/%s epoch %llu failed: %s", r->r->job, r->r->vm,
            (unsigned long long)r->r->epoch, r->error);
    e.code = VMCKPT__ERROR_CODE__ERR_INTERNAL;
    e.text = r->error;
    post_msg(a, VMCKPT__MSG_TYPE__MSG_RESTORE_DONE, r->req, &d);
    restore_free(r);
}

static void start_restore(struct agent *a, const Vmckpt__Envelope *env)
{
    struct restore_job *r = calloc(1, sizeof(*r));
    pthread_t t;

    if (r == NULL || env->restore->spec == NULL ||
        !image_valid_name(env->restore->job) ||
        !image_valid_name(env->restore->vm)) {
        free(r);
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                    "restore: bad job/VM name or no VM spec");
        return;
    }
    r->r = wire_copy(env->restore);
    r->a = a;
    r->req = env->request_id;
    r->state_fd = -1;
    snprintf(r->ram, sizeof(r->ram), "/dev/shm/vmckpt-restore-%s-%s.ram",
             env->restore->job, env->restore->vm);
    if (r->r == NULL || pthread_create(&t, NULL, restore_main, r) != 0) {
        if (r->r != NULL)
            wire_free_message(r->r);
        free(r);
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                    "cannot start a restore");
        return;
    }
    pthread_detach(t);
    log_info("restore of %s/%s epoch %llu from %s begins", env->restore->job,
             env->restore->vm, (unsigned long long)env->restore->epoch,
             env->restore->source_host);
}

/* ---- retention (background: folding rewrites a whole image) ---------- */

struct retain_job {
    struct agent *a;
    char job[65], vm[65];
    uint64_t keep_from, req;
};

static void *retain_main(void *arg)
{
    struct retain_job *r = arg;
    struct vmckpt_error err;
    char text[256];
    int n = image_retain(r->a->store.dir, r->job, r->vm, r->keep_from, &err);

    if (n < 0) {
        log_err("store: retention of %s/%s: %s", r->job, r->vm, err.text);
        reply_error(r->a, r->req, VMCKPT__ERROR_CODE__ERR_INTERNAL, err.text);
    } else {
        snprintf(text, sizeof(text),
                 "%s/%s: kept epochs from %llu, removed "
                 "%d",
                 r->job, r->vm, (unsigned long long)r->keep_from, n);
        if (n > 0)
            log_info("store: %s", text);
        {
            Vmckpt__Ack ack = VMCKPT__ACK__INIT;

            ack.text = text;
            post_msg(r->a, VMCKPT__MSG_TYPE__MSG_ACK, r->req, &ack);
        }
    }
    free(r);
    return NULL;
}

static void start_retain(struct agent *a, const Vmckpt__Envelope *env)
{
    const Vmckpt__StoreRetain *sr = env->store_retain;
    struct retain_job *r;
    pthread_t t;

    if (!image_valid_name(sr->job) || !image_valid_name(sr->vm) ||
        (r = calloc(1, sizeof(*r))) == NULL) {
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                    "store-retain: bad job/VM name");
        return;
    }
    r->a = a;
    snprintf(r->job, sizeof(r->job), "%s", sr->job);
    snprintf(r->vm, sizeof(r->vm), "%s", sr->vm);
    r->keep_from = sr->keep_from;
    r->req = env->request_id;
    if (pthread_create(&t, NULL, retain_main, r) != 0) {
        free(r);
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                    "cannot start retention");
        return;
    }
    pthread_detach(t);
}

/* ---- the loop side ---------------------------------------------------- */

static void on_pipe(struct evloop *loop, struct ev_io *io, int revents)
{
    struct agent *a = io->arg;
    struct post *p;

    (void)loop;
    (void)revents;
    while (read(a->work_pipe[0], &p, sizeof(p)) == (ssize_t)sizeof(p)) {
        if (p->frame != NULL)
            link_send_frame(a, p->frame, p->len);
        if (p->done != NULL) {
            p->done->busy = 0;
            /* a failed checkpoint moved tracking on: the next is full; a
             * job epoch becomes a base only when committed */
            p->done->last_epoch = p->coordinated ? 0 : p->epoch;
            p->done->pending_epoch = p->coordinated ? p->epoch : 0;
        }
        if (p->restored != NULL)
            restore_finish(a, p->restored);
        free(p);
    }
}

int work_init(struct agent *a, struct vmckpt_error *err)
{
    if (pipe2(a->work_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return errprintf_errno(err, "pipe");
    ev_io_init(&a->work_io, a->work_pipe[0], POLLIN, on_pipe, a);
    return ev_io_start(a->loop, &a->work_io) < 0 ? errprintf_errno(err, "pipe")
                                                 : 0;
}

void work_fini(struct agent *a)
{
    struct post *p;

    ev_io_stop(a->loop, &a->work_io);
    /* what threads posted after the loop's last turn is dropped, not
     * leaked (the coordinator sees the link close) */
    while (read(a->work_pipe[0], &p, sizeof(p)) == (ssize_t)sizeof(p)) {
        if (p->restored != NULL)
            restore_free(p->restored);
        free(p->frame);
        free(p);
    }
    close(a->work_pipe[0]);
    close(a->work_pipe[1]);
}

static void reply_ack(struct agent *a, uint64_t id, const char *text)
{
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;

    ack.text = (char *)text;
    post_msg(a, VMCKPT__MSG_TYPE__MSG_ACK, id, &ack);
}

int work_handle(struct agent *a, const Vmckpt__Envelope *env)
{
    struct vmckpt_error err;
    struct vmm_vm *vm;
    char text[256];

    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_VM_START:
        if (env->vm_start->spec == NULL) {
            reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                        "vm-start without a spec");
            return 1;
        }
        vm = vmm_start(&a->vmm, env->vm_start->spec, NULL, &err);
        if (vm == NULL) {
            reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                        err.text);
            return 1;
        }
        if (vmm_is_xen(vm))
            snprintf(text, sizeof(text), "%s/%s started on %s (Xen domain %s)",
                     vm->job, vm->name, a->name, vm->domain);
        else
            snprintf(text, sizeof(text), "%s/%s started on %s (pid %d)%s",
                     vm->job, vm->name, a->name, (int)vm->pid,
                     vm->qemu_stream ? "; no dirty tracking here: checkpoints "
                                       "use QEMU's migration stream, full "
                                       "each time"
                                     : "");
        {
            Vmckpt__Ack ack = VMCKPT__ACK__INIT;

            ack.text = text;
            ack.tracking = vm_tracking(vm);
            post_msg(a, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
        }
        return 1;
    case VMCKPT__MSG_TYPE__MSG_VM_STOP:
        vm = vmm_find(&a->vmm, env->vm_stop->job, env->vm_stop->vm);
        if (vm == NULL || vmm_stop(&a->vmm, vm, 300, &err) < 0) {
            if (vm == NULL)
                snprintf(err.text, sizeof(err.text),
                         "%s/%s is not running "
                         "on %s",
                         env->vm_stop->job, env->vm_stop->vm, a->name);
            reply_error(a, env->request_id,
                        vm ? VMCKPT__ERROR_CODE__ERR_BUSY
                           : VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                        err.text);
            return 1;
        }
        reply_ack(a, env->request_id, "stopped");
        return 1;
    case VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN:
        ckpt_start(a, env);
        return 1;
    case VMCKPT__MSG_TYPE__MSG_CKPT_CUT:
        log_info("cut of %s epoch %llu: %d guest(s) pause here",
                 env->ckpt_cut->job, (unsigned long long)env->ckpt_cut->epoch,
                 ckpt_tell(env->ckpt_cut->job, env->ckpt_cut->epoch, 'c', ""));
        return 1;
    case VMCKPT__MSG_TYPE__MSG_CKPT_RESUME:
        ckpt_resume(a, env->ckpt_resume);
        return 1;
    case VMCKPT__MSG_TYPE__MSG_CKPT_ABORT:
        ckpt_abort(a, env->ckpt_abort);
        return 1;
    case VMCKPT__MSG_TYPE__MSG_CKPT_COMMIT:
        for (vm = a->vmm.vms; vm != NULL; vm = vm->next)
            if (strcmp(vm->job, env->ckpt_commit->job) == 0 &&
                vm->pending_epoch == env->ckpt_commit->epoch) {
                vm->last_epoch = vm->pending_epoch;
                vm->pending_epoch = 0;
            }
        return 1;
    case VMCKPT__MSG_TYPE__MSG_RESTORE:
        start_restore(a, env);
        return 1;
    case VMCKPT__MSG_TYPE__MSG_STORE_RETAIN:
        start_retain(a, env);
        return 1;
    default:
        return 0;
    }
}
