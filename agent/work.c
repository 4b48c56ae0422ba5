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
#include <sys/mman.h>
#include <unistd.h>

#include "agent.h"
#include "image.h"
#include "lib/util/log.h"
#include "precopy.h"
#include "stream.h"
#include "work.h"

/* One item through the pipe (its pointer is what is written). */
struct post {
    uint8_t *frame; /* to send, or NULL */
    size_t len;
    struct vmm_vm *done; /* a checkpoint of this guest ended */
    uint64_t epoch;      /* written (0: failed) */
    /* a restore's image is ready: start the guest from it */
    struct restore_job *restored;
};

struct ckpt_job {
    struct agent *a;
    struct vmm_vm *vm;
    char job[65], store[128];
    uint64_t epoch, parent, req;
    unsigned max_ms;
    int lz4, stop_and_save;
    uint32_t round;
};

struct restore_job {
    struct agent *a;
    Vmckpt__Restore *r; /* owned copy */
    uint64_t req;
    char ram[4200];
    int state_fd;
    char error[512];
};

static void post_item(struct agent *a, struct post *p)
{
    if (write(a->work_pipe[1], &p, sizeof(p)) != (ssize_t)sizeof(p)) {
        log_errno("work pipe");
        free(p->frame);
        free(p);
    }
}

static void post_msg(struct agent *a, int type, uint64_t id,
                     const void *payload)
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

static void reply_error(struct agent *a, uint64_t id, Vmckpt__ErrorCode code,
                        const char *text)
{
    Vmckpt__Error e = VMCKPT__ERROR__INIT;

    e.code = code;
    e.text = (char *)text;
    post_msg(a, VMCKPT__MSG_TYPE__MSG_ERROR, id, &e);
}

/* ---- checkpoint thread ---------------------------------------------- */

static void ckpt_round(const struct precopy_round *r, void *arg)
{
    struct ckpt_job *j = arg;
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;

    st.job = j->job;
    st.epoch = j->epoch;
    st.vm = j->vm->name;
    st.round = r->round;
    st.pages_sent = r->pages_sent;
    st.pages_left = r->pages_left;
    st.dirty_pages_per_s = r->dirty_rate;
    st.bytes_per_s = r->throughput;
    st.bytes_sent = r->bytes_sent;
    j->round = r->round;
    post_msg(j->a, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, 0, &st);
}

static void ckpt_cut(void *arg)
{
    struct ckpt_job *j = arg;
    Vmckpt__CkptCutDone c = VMCKPT__CKPT_CUT_DONE__INIT;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    c.job = j->job;
    c.epoch = j->epoch;
    c.vm = j->vm->name;
    c.paused_at_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    post_msg(j->a, VMCKPT__MSG_TYPE__MSG_CKPT_CUT_DONE, 0, &c);
}

static enum precopy_decision ckpt_decide(const struct precopy_round *r,
                                         void *arg)
{
    struct ckpt_job *j = arg;
    struct precopy_limits l = {.cut_pages = 256,
                               .max_rounds = 30,
                               .max_ms = j->max_ms ? j->max_ms : 30000};

    return precopy_limits_decide(r, &l);
}

static void *ckpt_main(void *arg)
{
    struct ckpt_job *j = arg;
    struct precopy_policy pol = {.decide = ckpt_decide,
                                 .on_cut = ckpt_cut,
                                 .on_round = ckpt_round,
                                 .arg = j};
    struct precopy_result res;
    struct precopy_sink sink;
    struct vmckpt_error err;
    struct stream_out *so;
    struct post *done = calloc(1, sizeof(*done));
    const uint8_t *ram;
    uint64_t ram_len;

    hv_qemu_ops.ram_map(j->vm->hv, &ram, &ram_len, &err);
    so = stream_out_open(j->store, &j->a->key, j->a->name, j->job, j->vm->name,
                         j->epoch, j->parent, ram_len, &err);
    if (so != NULL) {
        stream_out_sink(so, &sink);
        if (precopy_checkpoint(&hv_qemu_ops, j->vm->hv, j->parent == 0,
                               j->stop_and_save, j->lz4, &sink, &pol, &res,
                               &err) < 0) {
            stream_out_abort(so, err.text);
            so = NULL;
        } else {
            stream_out_close(so);
        }
    }
    if (so == NULL) {
        Vmckpt__CkptAbort ab = VMCKPT__CKPT_ABORT__INIT;

        log_err("checkpoint of %s/%s epoch %llu failed: %s", j->job,
                j->vm->name, (unsigned long long)j->epoch, err.text);
        ab.job = j->job;
        ab.epoch = j->epoch;
        ab.reason = err.text;
        post_msg(j->a, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, j->req, &ab);
    } else {
        Vmckpt__CkptDurable d = VMCKPT__CKPT_DURABLE__INIT;

        log_info("checkpoint of %s/%s epoch %llu durable on %s: %u rounds, "
                 "%llu pages, pause %llu us",
                 j->job, j->vm->name, (unsigned long long)j->epoch, j->store,
                 res.rounds, (unsigned long long)res.pages,
                 (unsigned long long)res.pause_us);
        d.job = j->job;
        d.epoch = j->epoch;
        d.vm = j->vm->name;
        d.store_host = j->store;
        d.bytes = res.disk_bytes;
        d.pause_ns = res.pause_us * 1000;
        d.parent = j->parent;
        d.pages = res.pages;
        d.total_ms = res.total_ms;
        d.rounds = res.rounds;
        d.wire_bytes = res.wire_bytes;
        post_msg(j->a, VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE, j->req, &d);
    }
    if (done != NULL) {
        done->done = j->vm;
        done->epoch = so != NULL ? j->epoch : 0;
        post_item(j->a, done);
    }
    free(j);
    return NULL;
}

static void start_checkpoint(struct agent *a, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptBegin *b = env->ckpt_begin;
    struct ckpt_job *j;
    struct vmm_vm *vm;
    pthread_t t;
    char text[256];

    if (b->n_targets != 1) {
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                    "a checkpoint names exactly one VM per agent message");
        return;
    }
    vm = vmm_find(&a->vmm, b->job, b->targets[0]->vm);
    if (vm == NULL || vm->busy) {
        snprintf(text, sizeof(text), "%s/%s: %s on host %s", b->job,
                 b->targets[0]->vm, vm ? "busy" : "not running", a->name);
        reply_error(a, env->request_id,
                    vm ? VMCKPT__ERROR_CODE__ERR_BUSY
                       : VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                    text);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL) {
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                    "out of memory");
        return;
    }
    j->a = a;
    j->vm = vm;
    snprintf(j->job, sizeof(j->job), "%s", b->job);
    snprintf(j->store, sizeof(j->store), "%s", b->targets[0]->store_addr);
    j->epoch = b->epoch;
    /* a delta only continues this QEMU's own chain; otherwise full */
    j->parent = b->targets[0]->parent == vm->last_epoch ? vm->last_epoch : 0;
    j->req = env->request_id;
    j->max_ms = b->max_precopy_ms;
    j->lz4 = b->compress;
    j->stop_and_save = b->mode == VMCKPT__CKPT_MODE__MODE_STOP_AND_SAVE;
    vm->busy = 1;
    if (pthread_create(&t, NULL, ckpt_main, j) != 0) {
        vm->busy = 0;
        free(j);
        reply_error(a, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                    "cannot start a checkpoint thread");
        return;
    }
    pthread_detach(t);
    log_info("checkpoint of %s/%s epoch %llu (%s) to %s begins", b->job,
             vm->name, (unsigned long long)b->epoch,
             j->parent ? "delta" : "full", j->store);
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
    if (hv_qemu_ops.load_state(vm->hv, r->state_fd, &err) < 0 ||
        hv_qemu_ops.resume(vm->hv, &err) < 0) {
        struct vmckpt_error e2;

        (void)vmm_stop(&a->vmm, vm, 200, &e2);
        goto fail_err;
    }
    log_info("guest %s/%s restored from epoch %llu (%s's store) and running",
             r->r->job, r->r->vm, (unsigned long long)r->r->epoch,
             r->r->source_host);
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
            if (p->epoch != 0)
                p->done->last_epoch = p->epoch;
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
    ev_io_stop(a->loop, &a->work_io);
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
        snprintf(text, sizeof(text), "%s/%s started on %s (pid %d)", vm->job,
                 vm->name, a->name, (int)vm->pid);
        reply_ack(a, env->request_id, text);
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
        start_checkpoint(a, env);
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
