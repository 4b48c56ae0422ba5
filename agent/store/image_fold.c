/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The image store's maintenance (docs/store.md): dropping an epoch,
 * folding one into a base image at fixed offsets, and retention, which
 * folds what must stay and then drops what may go. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "image_int.h"
#include "lib/wire/batch.h"

/* 1 (and '*gen') when a fold in place is at work on it: wait for it. */
static int image_drop_locked(const char *store, const char *job, const char *vm,
                             uint64_t epoch, uint64_t *gen,
                             struct vmckpt_error *err)
{
    struct image_manifest m;
    struct image_epoch gone;
    char dir[4096], path[4200];
    size_t i, j;

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0 ||
        image_manifest_load(store, job, vm, &m, err) < 0)
        return -1;
    for (i = 0; i < m.n && m.e[i].epoch != epoch; i++)
        ;
    if (i == m.n) {
        errno = ENOENT;
        return errprintf(err, "%s/%s: no epoch %" PRIu64, job, vm, epoch);
    }
    for (j = 0; j < m.n; j++) {
        if (m.e[j].parent == epoch) {
            errno = EBUSY;
            return errprintf(err,
                             "%s/%s: epoch %" PRIu64 " is the base of "
                             "epoch %" PRIu64,
                             job, vm, epoch, m.e[j].epoch);
        }
    }
    if (m.e[i].fold_from != 0 && image_fold_live(dir, &m.e[i], gen))
        return 1; /* image_drop waits for it */
    gone = m.e[i];
    /* first forget it, then delete its files */
    memmove(&m.e[i], &m.e[i + 1], (m.n - i - 1) * sizeof(m.e[0]));
    m.n--;
    if (manifest_save(dir, &m, err) < 0)
        return -1;
    if (gone.fold_from != 0)
        image_fold_forget(dir, &gone);
    image_disk_gc(dir,
                  &m); /* its disk layers, unless a later epoch keeps them */
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".pages", dir, epoch);
    unlink(path);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".base", dir, epoch);
    unlink(path);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".base.sum", dir, epoch);
    unlink(path);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".base.sum.tmp", dir, epoch);
    unlink(path); /* (a fold in place stopped before it began) */
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".state", dir, epoch);
    unlink(path);
    return 0;
}

/* Folding: rewrite epoch 'epoch' as a base image (parent 0), so the
 * epochs it was built on can go. The chain is read (every record
 * verified) into memory, the RAM it builds is written at fixed offsets
 * (zero pages left as holes) with the checksum of every 1 MiB, both files
 * fsynced and renamed into place, the directory fsynced, and only then
 * does the manifest say "base". Its old page file goes last; a reader that
 * had it open keeps reading it. */
struct fold_ctx {
    uint64_t npages;
    uint8_t *ram; /* the guest RAM the chain builds */
};

static int fold_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                      void *arg)
{
    struct fold_ctx *f = arg;
    size_t i;

    (void)msg;
    if (v->sealed) { /* retention never asks: retain_epochs */
        errno = ENOKEY;
        return -1;
    }
    for (i = 0; i < v->n; i++) {
        const uint8_t *p = batch_view_page(v, i);
        uint64_t pg = v->pages[i];

        if (p != NULL)
            memcpy(f->ram + pg * BATCH_PAGE, p, BATCH_PAGE);
        else
            memset(f->ram + pg * BATCH_PAGE, 0, BATCH_PAGE);
    }
    return 0;
}

static int fold_state(uint64_t off, const void *data, size_t len, void *arg)
{
    (void)off;
    (void)data;
    (void)len;
    (void)arg;
    return 0; /* the state file of the epoch stays as it is */
}

/* Write the base of 'ram' to 'fd' (holes for zero pages) and its chunk
 * checksums to 'sum_fd'. */
static int write_base(int fd, int sum_fd, const uint8_t *ram,
                      uint64_t ram_bytes)
{
    uint64_t off, p = 0, q, npages = ram_bytes / BATCH_PAGE;

    if (ftruncate(fd, (off_t)ram_bytes) < 0)
        return -1;
    /* each run of non-zero pages in one write; zero pages stay holes */
    while (p < npages) {
        if (batch_page_is_zero(ram + p * BATCH_PAGE)) {
            p++;
            continue;
        }
        for (q = p + 1; q < npages && !batch_page_is_zero(ram + q * BATCH_PAGE);
             q++)
            ;
        if (pwrite_all(fd, ram + p * BATCH_PAGE, (q - p) * BATCH_PAGE,
                       p * BATCH_PAGE) < 0)
            return -1;
        p = q;
    }
    for (off = 0; off < ram_bytes; off += CHUNK) {
        uint64_t sum = batch_xxh64(ram + off, ram_bytes - off < CHUNK
                                                  ? (size_t)(ram_bytes - off)
                                                  : CHUNK);
        uint8_t le[8];
        int k;

        for (k = 0; k < 8; k++)
            le[k] = (uint8_t)(sum >> (8 * k));
        if (write_all(sum_fd, le, sizeof(le)) < 0)
            return -1;
    }
    return fsync(fd) < 0 || fsync(sum_fd) < 0 ? -1 : 0;
}

/* A fold its manifest did not take: the disk files it merged, which only
 * that manifest would have named, go. */
void image_fold_undo_disks(const char *store, const char *job, const char *vm,
                           const char *dir)
{
    struct image_manifest cur;
    int saved = errno;

    if (image_manifest_load(store, job, vm, &cur, NULL) == 0)
        image_disk_gc(dir, &cur);
    errno = saved;
}

/* One retention (or fold) at a time in this process. A fold reads its
 * chain and writes the base without manifest_mu, so that commits, reads
 * and fetches of every VM go on meanwhile (a fold of a large guest takes
 * seconds); this keeps two folds or drops of retention apart. */
static pthread_mutex_t retain_mu = PTHREAD_MUTEX_INITIALIZER;

void (*image_fold_window)(const char *store, const char *job, const char *vm,
                          uint64_t epoch);

/* Epoch 'epoch' in 'm', or NULL. */
static struct image_epoch *epoch_in(struct image_manifest *m, uint64_t epoch)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (m->e[i].epoch == epoch)
            return &m->e[i];
    return NULL;
}

/* The manifest of JOB/VM, read under manifest_mu. */
static int manifest_get(const char *store, const char *job, const char *vm,
                        struct image_manifest *m, struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&manifest_mu);
    rc = image_manifest_load(store, job, vm, m, err);
    pthread_mutex_unlock(&manifest_mu);
    return rc;
}

/* The fold's last step, under manifest_mu: the base files named, the
 * epoch's disks folded and the manifest saying "base", if the epoch is
 * still what was read ('was'; not dropped, or written again, meanwhile). */
static int fold_swap(const char *store, const char *job, const char *vm,
                     const char *dir, const struct image_epoch *was,
                     const char *const names[5], struct vmckpt_error *err)
{
    struct image_manifest m;
    struct image_epoch *e;
    uint64_t epoch = was->epoch;

    if (image_manifest_load(store, job, vm, &m, err) < 0)
        return -1;
    e = epoch_in(&m, epoch);
    if (e == NULL || e->base || e->parent != was->parent ||
        e->pages_bytes != was->pages_bytes ||
        e->state_xxh64 != was->state_xxh64) {
        errno = ESTALE;
        return errprintf(err,
                         "%s/%s epoch %" PRIu64 " changed while it was folded",
                         job, vm, epoch);
    }
    if (rename(names[1], names[3]) < 0 || rename(names[0], names[2]) < 0 ||
        fsync_dir(dir) < 0) {
        errprintf_errno(err, "%s", names[2]);
        unlink(names[2]); /* (the manifest never named them) */
        unlink(names[3]);
        return -1;
    }
    /* the base is durable; only now does the manifest say so (and that
     * its disks keep the layers of the epochs it was built on, merged
     * into durable files first when there are many) */
    if (image_disk_fold(dir, &m, e, err) < 0) {
        unlink(names[2]);
        unlink(names[3]);
        return -1;
    }
    e->parent = 0;
    e->base = 1;
    e->pages_bytes = m.ram_bytes;
    if (manifest_save_epoch(store, job, vm, dir, &m, epoch, err) < 0) {
        unlink(names[2]);
        unlink(names[3]);
        image_fold_undo_disks(store, job, vm, dir);
        return -1;
    }
    unlink(names[4]);
    return 0;
}

/* With retain_mu held. */
static int fold_epoch(const char *store, const char *job, const char *vm,
                      uint64_t epoch, struct vmckpt_error *err)
{
    struct image_manifest m;
    struct image_epoch *e, was;
    struct fold_ctx f = {0};
    char dir[4096], tmp[4200] = "", stmp[4200] = "", final[4200], sfinal[4200];
    char old[4200];
    const char *names[5] = {tmp, stmp, final, sfinal, old};
    int fd = -1, sfd = -1, rc = -1, saved;

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0 ||
        manifest_get(store, job, vm, &m, err) < 0)
        return -1;
    e = epoch_in(&m, epoch);
    if (e == NULL) {
        errno = ENOENT;
        return errprintf(err, "%s/%s: no epoch %" PRIu64 " to fold", job, vm,
                         epoch);
    }
    if (e->base)
        return 0;
    was = *e;
    f.npages = m.ram_bytes / BATCH_PAGE;
    f.ram = mmap(NULL, m.ram_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (f.ram == MAP_FAILED) {
        errprintf_errno(err, "fold %s/%s epoch %" PRIu64, job, vm, epoch);
        goto out;
    }
    if (image_read(store, job, vm, epoch, fold_batch, fold_state, &f, err) < 0)
        goto out;
    snprintf(tmp, sizeof(tmp), "%s/e%" PRIu64 ".base.tmp", dir, epoch);
    snprintf(stmp, sizeof(stmp), "%s/e%" PRIu64 ".base.sum.tmp", dir, epoch);
    snprintf(final, sizeof(final), "%s/e%" PRIu64 ".base", dir, epoch);
    snprintf(sfinal, sizeof(sfinal), "%s/e%" PRIu64 ".base.sum", dir, epoch);
    snprintf(old, sizeof(old), "%s/e%" PRIu64 ".pages", dir, epoch);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    sfd = open(stmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || sfd < 0 || write_base(fd, sfd, f.ram, m.ram_bytes) < 0) {
        errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", job, vm, epoch,
                        tmp);
        goto out;
    }
    if (image_fold_window != NULL)
        image_fold_window(store, job, vm, epoch);
    pthread_mutex_lock(&manifest_mu);
    rc = fold_swap(store, job, vm, dir, &was, names, err);
    pthread_mutex_unlock(&manifest_mu);
out:
    saved = errno; /* the cause (ENOKEY: a sealed batch), not the cleanup's */
    if (fd >= 0)
        close(fd);
    if (sfd >= 0)
        close(sfd);
    if (rc < 0 && tmp[0] != '\0') { /* (not named before the read) */
        unlink(tmp);
        unlink(stmp);
    }
    if (f.ram != NULL && f.ram != MAP_FAILED)
        munmap(f.ram, m.ram_bytes);
    errno = saved;
    return rc;
}

/* The oldest epoch the chain of 'e' reaches, and whether any epoch of it
 * is sealed (the store cannot fold it: it has no key). */
static uint64_t chain_root(const struct image_manifest *m,
                           const struct image_epoch *e, int *sealed)
{
    uint64_t root = e->epoch;
    size_t hops = 0;

    *sealed = e->sealed;
    while (e != NULL && e->parent != 0 && hops++ < IMAGE_MAX_EPOCHS) {
        root = e->parent;
        e = image_manifest_find(m, e->parent);
        if (e != NULL)
            *sealed |= e->sealed;
    }
    return root;
}

/* Epoch 'epoch' (whose chain met a sealed batch in a fold) is sealed. */
static int mark_sealed(const char *store, const char *job, const char *vm,
                       uint64_t epoch, struct vmckpt_error *err)
{
    struct image_manifest m;
    struct image_epoch *e;
    char dir[4096];
    int rc = -1;

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    pthread_mutex_lock(&manifest_mu);
    if (image_manifest_load(store, job, vm, &m, err) < 0)
        goto out;
    e = epoch_in(&m, epoch);
    if (e != NULL && e->sealed) { /* no progress: never loop */
        errno = ENOKEY;
        errprintf(err, "%s/%s epoch %" PRIu64 ": sealed", job, vm, epoch);
        goto out;
    }
    if (e != NULL)
        e->sealed = 1;
    rc = manifest_save(dir, &m, err);
out:
    pthread_mutex_unlock(&manifest_mu);
    return rc;
}

static int chain_sealed(const struct image_manifest *m,
                        const struct image_epoch *e)
{
    int sealed;

    chain_root(m, e, &sealed);
    return sealed;
}

/* The manifest of JOB/VM, a fold in place that stopped part way (the
 * agent killed in it) finished first. */
static int finish_stopped(const char *store, const char *job, const char *vm,
                          struct image_manifest *m, struct vmckpt_error *err)
{
    size_t i;
    int rc;

    char dir[4096], path[4200];

    rc = manifest_get(store, job, vm, m, err);
    for (i = 0; rc == 0 && i < m->n; i++)
        if (m->e[i].fold_from != 0 &&
            (rc = image_fold_finish(store, job, vm, m->e[i].epoch, err)) == 0)
            rc = manifest_get(store, job, vm, m, err);
    /* a base has no page file: one left by a fold that stopped after its
     * manifest said "base" goes now */
    for (i = 0; rc == 0 && i < m->n; i++)
        if (m->e[i].base &&
            vm_dir(store, job, vm, dir, sizeof(dir), NULL) == 0) {
            snprintf(path, sizeof(path), "%s/e%" PRIu64 ".pages", dir,
                     m->e[i].epoch);
            unlink(path);
        }
    return rc;
}

/* With retain_mu held. 'again': how many more times an epoch that
 * changed while it was folded (dropped after an abort) starts it over. */
static int retain_epochs(const char *store, const char *job, const char *vm,
                         uint64_t keep_from, int again,
                         struct vmckpt_error *err)
{
    struct image_manifest m;
    uint64_t floor = keep_from;
    size_t i;
    int dropped = 0, sealed;

    if (finish_stopped(store, job, vm, &m, err) < 0)
        return -1;
    /* a kept epoch of a sealed chain keeps the whole chain it builds on:
     * nothing at or after the oldest epoch such a chain reaches goes */
    for (i = 0; i < m.n; i++)
        if (m.e[i].epoch >= keep_from) {
            uint64_t root = chain_root(&m, &m.e[i], &sealed);

            if (sealed && root < floor)
                floor = root;
        }
    /* a kept epoch becomes a base image when what it builds on goes, and
     * so does a full epoch of page records (not one of QEMU's own streams,
     * which has no pages): per VM, a base at fixed offsets and deltas */
    for (i = 0; i < m.n; i++) {
        int rc = 0;

        if (m.e[i].epoch < keep_from || m.e[i].base ||
            chain_sealed(&m, &m.e[i]) ||
            (m.e[i].parent == 0 ? m.e[i].pages_bytes == 0
                                : m.e[i].parent >= keep_from))
            continue;
        /* a delta on a base that goes: written into that base (its
         * pages only); anything else, or when that cannot be now, a new
         * base from the whole chain */
        if (m.e[i].parent != 0)
            rc = image_fold_inplace(store, job, vm, m.e[i].epoch, keep_from,
                                    err);
        if (rc == 0 && m.e[i].parent != 0)
            dropped++; /* (its parent went with it) */
        if ((m.e[i].parent == 0 || rc == 1) &&
            (rc = fold_epoch(store, job, vm, m.e[i].epoch, err)) == 1)
            rc = -1; /* (fold_epoch: 0 or -1) */
        if (rc < 0) {
            if (errno == ESTALE && again > 0)
                return retain_epochs(store, job, vm, keep_from, again - 1, err);
            /* sealed, though the manifest did not say so (written by a
             * store from before): say so now, and start again */
            if (errno != ENOKEY ||
                mark_sealed(store, job, vm, m.e[i].epoch, err) < 0)
                return -1;
            return retain_epochs(store, job, vm, keep_from, again, err);
        }
    }
    /* newest first: a delta goes before the epoch it was built on */
    for (;;) {
        uint64_t victim = 0;

        if (manifest_get(store, job, vm, &m, err) < 0)
            return -1;
        for (i = 0; i < m.n; i++)
            if (m.e[i].epoch < floor && m.e[i].epoch > victim)
                victim = m.e[i].epoch;
        if (victim == 0)
            return dropped;
        if (image_drop(store, job, vm, victim, err) < 0)
            return -1;
        dropped++;
    }
}

int image_drop(const char *store, const char *job, const char *vm,
               uint64_t epoch, struct vmckpt_error *err)
{
    uint64_t gen = 0;
    int rc;

    for (;;) {
        pthread_mutex_lock(&manifest_mu);
        rc = image_drop_locked(store, job, vm, epoch, &gen, err);
        pthread_mutex_unlock(&manifest_mu);
        if (rc != 1)
            return rc;
        image_fold_wait(gen);
    }
}

int image_fold(const char *store, const char *job, const char *vm,
               uint64_t epoch, struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&retain_mu);
    rc = fold_epoch(store, job, vm, epoch, err);
    pthread_mutex_unlock(&retain_mu);
    return rc;
}

int image_retain(const char *store, const char *job, const char *vm,
                 uint64_t keep_from, struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&retain_mu);
    rc = retain_epochs(store, job, vm, keep_from, 3, err);
    pthread_mutex_unlock(&retain_mu);
    return rc;
}
