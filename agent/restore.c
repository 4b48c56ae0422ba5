/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Restores and retention, each in a thread of its own: a restore fetches an
 * epoch's image (from this host's store or a peer's) and then, in the loop,
 * starts the guest from it; retention folds old epochs of an image away. */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <unistd.h>

#include "agent.h"
#include "restore.h"
#include "agent/disk/disk.h"
#include "agent/store/image.h"
#include "agent/store/sealed.h"
#include "agent/store/stream.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

struct restore_job {
    struct agent *a;
    Vmckpt__Restore *r;      /* owned copy */
    struct disk_recv *disks; /* its disks' new chain, or NULL */
    uint64_t req;
    char ram[4200];
    int state_fd;
    char error[512];
};

static void restore_finish(void *arg);
static void restore_free(void *arg);

/* ---- restore thread -------------------------------------------------- */

/* A restore's finish runs in the loop and blocks it while a QEMU starts
 * and takes its state (seconds on a loaded host); the loop renews the
 * lease. So a finish is posted only when no other is pending and the
 * lease was renewed within the last two heartbeats: two finishes in a
 * row, or one begun with little lease left, would let it end while the
 * loop is busy, and the fence guard would stop the guests just restored.
 * After twice the lease (no coordinator to renew it) it goes anyway. */
static pthread_mutex_t finish_mu = PTHREAD_MUTEX_INITIALIZER;
static int finish_pending;

static int lease_fresh(struct agent *a)
{
    uint64_t until = __atomic_load_n(&a->lease_until, __ATOMIC_RELAXED);
    uint64_t lease = __atomic_load_n(&a->lease_ms, __ATOMIC_RELAXED);
    uint64_t hb;

    pthread_mutex_lock(&a->link_mu);
    hb = a->heartbeat_ms;
    pthread_mutex_unlock(&a->link_mu);
    return lease == 0 || until + 2 * hb >= clock_mono_ms() + lease;
}

static void wait_finish_turn(struct agent *a)
{
    uint64_t give_up =
        clock_mono_ms() +
        2 * (uint64_t)__atomic_load_n(&a->lease_ms, __ATOMIC_RELAXED);

    for (;;) {
        pthread_mutex_lock(&finish_mu);
        if ((!finish_pending && lease_fresh(a)) || clock_mono_ms() >= give_up) {
            finish_pending++;
            pthread_mutex_unlock(&finish_mu);
            return;
        }
        pthread_mutex_unlock(&finish_mu);
        usleep(20000);
    }
}

static void finish_done(void)
{
    pthread_mutex_lock(&finish_mu);
    finish_pending--;
    pthread_mutex_unlock(&finish_mu);
}

struct local_disk {
    struct disk_recv *disks;
    struct sealer *sealer; /* a sealed epoch's, or NULL */
};

/* A chunk from the store, opened when sealed, to the new chain. */
static int local_chunk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                       const void *data, size_t len, uint64_t xxh64,
                       const uint8_t *seal, struct vmckpt_error *err)
{
    struct local_disk *l = arg;
    const uint8_t *p = data;

    if (seal_disk_chunk_open(l->sealer, disk, off, &p, len, seal, err) < 0)
        return errprefix(err, "layer %u", layer);
    return disk_recv_chunk(l->disks, disk, layer, off, p, len, xxh64, NULL,
                           err);
}

/* The epoch's disk layers from this host's own store ('key': it is
 * sealed). */
static int local_disks(struct restore_job *r, const struct seal_key *key,
                       struct vmckpt_error *err)
{
    struct image_disk_sizes *sz = calloc(1, sizeof(*sz));
    struct local_disk l = {.disks = r->disks};
    int rc = -1;

    if (sz == NULL)
        return errprintf_errno(err, "restore");
    if (key == NULL ||
        (l.sealer = sealer_new(key, r->r->job, r->r->vm, err)) != NULL)
        rc = image_disk_read(r->a->store.dir, r->r->job, r->r->vm, r->r->epoch,
                             local_chunk, &l, sz, err);
    if (rc == 0)
        rc = disk_recv_finish(r->disks, sz, err);
    sealer_free(l.sealer);
    free(sz);
    return rc;
}

/* The device state as it came: opened when sealed. */
static int open_state(struct restore_job *r, const struct seal_key *key,
                      struct vmckpt_error *err)
{
    struct stat st;
    uint64_t clear;

    if (fstat(r->state_fd, &st) < 0)
        return errprintf_errno(err, "device state");
    return seal_state_open_fd(r->state_fd, (uint64_t)st.st_size, key, r->r->job,
                              r->r->vm, &clear, err);
}

static void *restore_main(void *arg)
{
    struct restore_job *r = arg;
    struct seal_key kbuf, *key = NULL;
    int bad_key = 0;
    struct vmckpt_error err;
    int ram_fd = open(r->ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc;

    r->state_fd = memfd_create("vmckpt-restore-state", MFD_CLOEXEC);
    if (r->r->data_key.len > 0) {
        if (seal_key_from_bytes(r->r->data_key.data, r->r->data_key.len, &kbuf,
                                &err) < 0)
            bad_key = 1;
        else
            key = &kbuf;
    }
    if (r->r->spec->n_disks > 0)
        r->disks = disk_recv_open(r->a->vmm.disk_dir, r->a->vmm.qemu_img,
                                  r->r->spec, r->r->epoch, &err);
    if (bad_key || (r->r->spec->n_disks > 0 && r->disks == NULL)) {
        rc = -1;
    } else if (ram_fd < 0 || r->state_fd < 0) {
        rc = errprintf_errno(&err, "restore files");
    } else if (strcmp(r->r->source_host, r->a->name) == 0) {
        struct image_manifest m;
        uint64_t nread = 0;

        rc =
            image_manifest_load(r->a->store.dir, r->r->job, r->r->vm, &m, &err);
        if (rc == 0 && ftruncate(ram_fd, (off_t)m.ram_bytes) < 0)
            rc = errprintf_errno(&err, "RAM file");
        if (rc == 0)
            rc =
                image_restore(r->a->store.dir, r->r->job, r->r->vm, r->r->epoch,
                              key, ram_fd, r->state_fd, &nread, &err);
        store_count(&r->a->store, 0, nread);
        if (rc == 0 && r->disks != NULL)
            rc = local_disks(r, key, &err);
    } else {
        struct stream_disks sd = {disk_recv_chunk, disk_recv_finish, r->disks};
        struct stream_source src = {
            r->r->source_addr, r->r->source_host[0] ? r->r->source_host : NULL,
            r->r->ticket.data, r->r->ticket.len};

        rc = stream_fetch(&src, &r->a->key, r->a->name, r->r->job, r->r->vm,
                          r->r->epoch, key, ram_fd, r->state_fd,
                          r->disks != NULL ? &sd : NULL, &err);
    }
    if (rc == 0)
        rc = open_state(r, key, &err);
    if (ram_fd >= 0)
        close(ram_fd);
    OPENSSL_cleanse(&kbuf, sizeof(kbuf));
    if (rc < 0)
        snprintf(r->error, sizeof(r->error), "%s", err.text);
    wait_finish_turn(r->a);
    outbox_run(&r->a->out, restore_finish, restore_free, r);
    return NULL;
}

/* Every restore ends here, finished or dropped (its turn is over). */
static void restore_free(void *arg)
{
    struct restore_job *r = arg;

    finish_done();

    disk_recv_close(r->disks);
    if (r->state_fd >= 0)
        close(r->state_fd);
    unlink(r->ram);
    wire_free_message(r->r);
    free(r);
}

/* In the loop: the image is here; (re)start the guest from it. */
static void restore_finish(void *arg)
{
    struct restore_job *r = arg;
    struct agent *a = r->a;
    Vmckpt__RestoreDone d = VMCKPT__RESTORE_DONE__INIT;
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct vmckpt_error err;
    struct vmm_vm *vm, *old;
    struct disk_chain *chain = NULL;

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
    if (r->disks != NULL && (chain = disk_recv_install(r->disks, &err)) == NULL)
        goto fail_err;
    vm = vmm_start(&a->vmm, r->r->spec, r->ram, chain, &err);
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
    vmm_vm_loaded(vm); /* e.g. a Xen domain's RAM file goes */
    vm->held = r->r->start_paused;
    d.tracking = (char *)vmm_vm_tracking(vm);
    vm->restored_epoch = r->r->epoch;
    log_info("guest %s/%s restored from epoch %llu (%s's store) and %s",
             r->r->job, r->r->vm, (unsigned long long)r->r->epoch,
             r->r->source_host,
             vm->held ? "paused until the job resumes" : "running");
    outbox_msg(&a->out, VMCKPT__MSG_TYPE__MSG_RESTORE_DONE, r->req, &d);
    restore_free(r);
    return;
fail_err:
    snprintf(r->error, sizeof(r->error), "%s", err.text);
fail:
    log_err("restore of %s/%s epoch %llu failed: %s", r->r->job, r->r->vm,
            (unsigned long long)r->r->epoch, r->error);
    e.code = VMCKPT__ERROR_CODE__ERR_INTERNAL;
    e.text = r->error;
    outbox_msg(&a->out, VMCKPT__MSG_TYPE__MSG_RESTORE_DONE, r->req, &d);
    restore_free(r);
}

void restore_start(struct agent *a, const Vmckpt__Envelope *env)
{
    struct restore_job *r = calloc(1, sizeof(*r));
    pthread_t t;

    if (r == NULL || env->restore->spec == NULL ||
        !image_valid_name(env->restore->job) ||
        !image_valid_name(env->restore->vm)) {
        free(r);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                     "restore: bad job/VM name or no VM spec");
        return;
    }
    r->r = wire_copy(env->restore);
    r->a = a;
    r->req = env->request_id;
    r->state_fd = -1;
    snprintf(r->ram, sizeof(r->ram), "%s/vmckpt-restore-%s-%s.ram",
             a->vmm.ram_dir, env->restore->job, env->restore->vm);
    if (r->r == NULL || pthread_create(&t, NULL, restore_main, r) != 0) {
        if (r->r != NULL)
            wire_free_message(r->r);
        free(r);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
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
    char job[65];
    uint64_t req;
    size_t n;
    struct {
        char vm[65];
        uint64_t keep_from;
    } v[]; /* the VMs, each with its own keep_from */
};

/* Sealed chains are not folded: say when one keeps older epochs. */
static void note_sealed_chain(const char *store, const char *job,
                              const char *vm, uint64_t keep_from)
{
    struct image_manifest m;
    uint64_t oldest = keep_from;
    size_t i;

    if (image_manifest_load(store, job, vm, &m, NULL) < 0)
        return;
    for (i = 0; i < m.n; i++)
        if (m.e[i].epoch < oldest)
            oldest = m.e[i].epoch;
    if (oldest < keep_from)
        log_info("store: %s/%s: epochs %llu to %llu kept, a kept sealed "
                 "epoch builds on them (sealed epochs are not folded)",
                 job, vm, (unsigned long long)oldest,
                 (unsigned long long)keep_from - 1);
}

static void *retain_main(void *arg)
{
    struct retain_job *r = arg;
    struct vmckpt_error err, first;
    char text[256];
    size_t i, nfail = 0;
    int removed = 0;

    for (i = 0; i < r->n; i++) {
        int n = image_retain(r->a->store.dir, r->job, r->v[i].vm,
                             r->v[i].keep_from, &err);

        if (n < 0) {
            /* the others still go; the coordinator hears of the first */
            log_err("store: retention of %s/%s: %s", r->job, r->v[i].vm,
                    err.text);
            if (nfail++ == 0)
                first = err;
            continue;
        }
        if (n > 0)
            log_info("store: %s/%s: kept epochs from %llu, removed %d", r->job,
                     r->v[i].vm, (unsigned long long)r->v[i].keep_from, n);
        note_sealed_chain(r->a->store.dir, r->job, r->v[i].vm,
                          r->v[i].keep_from);
        removed += n;
    }
    if (nfail > 0) {
        snprintf(text, sizeof(text), "%zu of %zu VM(s) of %s: %s", nfail, r->n,
                 r->job, first.text);
        outbox_error(&r->a->out, r->req, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     text);
    } else {
        Vmckpt__Ack ack = VMCKPT__ACK__INIT;

        snprintf(text, sizeof(text),
                 "%s: retention of %zu VM(s) done, %d epoch(s) removed", r->job,
                 r->n, removed);
        ack.text = text;
        outbox_msg(&r->a->out, VMCKPT__MSG_TYPE__MSG_ACK, r->req, &ack);
    }
    free(r);
    return NULL;
}

void restore_retain(struct agent *a, const Vmckpt__Envelope *env)
{
    const Vmckpt__StoreRetain *sr = env->store_retain;
    size_t i, n = sr->n_vms > 0 ? sr->n_vms : 1;
    struct retain_job *r = NULL;
    pthread_t t;
    int ok = image_valid_name(sr->job) && sr->n_keep_froms == sr->n_vms;

    for (i = 0; ok && i < sr->n_vms; i++)
        ok = image_valid_name(sr->vms[i]);
    if (ok && sr->n_vms == 0)
        ok = image_valid_name(sr->vm);
    if (!ok || (r = calloc(1, sizeof(*r) + n * sizeof(r->v[0]))) == NULL) {
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                     ok ? "store-retain: out of memory"
                        : "store-retain: bad job/VM name, or VMs and "
                          "keep_froms of different counts");
        return;
    }
    r->a = a;
    snprintf(r->job, sizeof(r->job), "%s", sr->job);
    r->n = n;
    for (i = 0; i < n; i++) {
        snprintf(r->v[i].vm, sizeof(r->v[i].vm), "%s",
                 sr->n_vms > 0 ? sr->vms[i] : sr->vm);
        r->v[i].keep_from = sr->n_vms > 0 ? sr->keep_froms[i] : sr->keep_from;
    }
    r->req = env->request_id;
    if (pthread_create(&t, NULL, retain_main, r) != 0) {
        free(r);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "cannot start retention");
        return;
    }
    pthread_detach(t);
}
