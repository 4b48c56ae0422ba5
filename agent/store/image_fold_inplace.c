/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Folding in place (docs/store.md): a kept delta whose parent is a base
 * that retention removes is written into that base, which becomes the
 * delta's own. Only the delta's pages are written and only the checksums
 * of the 1 MiB chunks they land in are computed again, where a fold by
 * copy writes the whole guest RAM. The parent is gone from the manifest
 * before its base changes; the manifest says "fold P" on the epoch until
 * it is done, and whatever stops the fold part way (a crash, an I/O
 * error) leaves what the next reader or retention needs to finish it:
 * the delta's page file, the parent's base (under either name) and the
 * checksum file, written before the manifest changed. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "image.h"
#include "image_int.h"

/* The VMs with readers of a base at work (few: restores and fetches). */
struct base_readers {
    struct base_readers *next;
    unsigned n;
    char dir[];
};
static struct base_readers *readers;
static unsigned uncounted; /* readers no entry could be made for: every
                            * VM counts them */

unsigned image_base_readers(const char *dir, int delta)
{
    struct base_readers **pp, *r;
    unsigned n;

    for (pp = &readers; *pp != NULL && strcmp((*pp)->dir, dir) != 0;
         pp = &(*pp)->next)
        ;
    r = *pp;
    if (r == NULL && delta > 0) {
        r = calloc(1, sizeof(*r) + strlen(dir) + 1);
        if (r == NULL)
            return ++uncounted;
        strcpy(r->dir, dir);
        *pp = r;
    }
    if (r == NULL) {
        if (delta < 0 && uncounted > 0)
            uncounted--;
        return uncounted;
    }
    r->n = delta < 0 && r->n > 0 ? r->n - 1 : r->n + (delta > 0);
    n = r->n;
    if (n == 0) {
        *pp = r->next;
        free(r);
    }
    return n + uncounted;
}
int (*image_fold_inplace_hook)(int step);

/* The fold at work in this process (under manifest_mu) and the count of
 * folds ended (under done_mu), which readers wait on. */
static struct {
    char dir[4096];
    uint64_t epoch;
} live;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static uint64_t done_gen;
static unsigned waiting; /* readers in image_fold_wait (under done_mu) */

int image_fold_live(const char *dir, const struct image_epoch *e, uint64_t *gen)
{
    if (live.epoch != e->epoch || strcmp(live.dir, dir) != 0)
        return 0;
    pthread_mutex_lock(&done_mu);
    *gen = done_gen;
    pthread_mutex_unlock(&done_mu);
    return 1;
}

void image_fold_wait(uint64_t gen)
{
    pthread_mutex_lock(&done_mu);
    waiting++;
    while (done_gen == gen)
        pthread_cond_wait(&done_cv, &done_mu);
    waiting--;
    pthread_mutex_unlock(&done_mu);
}

unsigned image_fold_waiting(void)
{
    unsigned n;

    pthread_mutex_lock(&done_mu);
    n = waiting;
    pthread_mutex_unlock(&done_mu);
    return n;
}

/* With manifest_mu held: no fold at work any more; wake its readers. */
static void live_end(void)
{
    live.epoch = 0;
    live.dir[0] = '\0';
    pthread_mutex_lock(&done_mu);
    done_gen++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

/* The names a fold of 'epoch' from 'from' uses in 'dir'. */
struct fold_names {
    char pbase[4200], psum[4200], pstate[4200], ppages[4200];
    char base[4200], sum[4200], sumtmp[4200], pages[4200];
};

static void names_of(struct fold_names *n, const char *dir, uint64_t epoch,
                     uint64_t from)
{
    snprintf(n->pbase, sizeof(n->pbase), "%s/e%" PRIu64 ".base", dir, from);
    snprintf(n->psum, sizeof(n->psum), "%s/e%" PRIu64 ".base.sum", dir, from);
    snprintf(n->pstate, sizeof(n->pstate), "%s/e%" PRIu64 ".state", dir, from);
    snprintf(n->ppages, sizeof(n->ppages), "%s/e%" PRIu64 ".pages", dir, from);
    snprintf(n->base, sizeof(n->base), "%s/e%" PRIu64 ".base", dir, epoch);
    snprintf(n->sum, sizeof(n->sum), "%s/e%" PRIu64 ".base.sum", dir, epoch);
    snprintf(n->sumtmp, sizeof(n->sumtmp), "%s/e%" PRIu64 ".base.sum.tmp", dir,
             epoch);
    snprintf(n->pages, sizeof(n->pages), "%s/e%" PRIu64 ".pages", dir, epoch);
}

void image_fold_forget(const char *dir, const struct image_epoch *e)
{
    struct fold_names n;

    names_of(&n, dir, e->epoch, e->fold_from);
    unlink(n.pbase);
    unlink(n.psum);
    unlink(n.pstate);
    unlink(n.ppages);
    unlink(n.sumtmp);
}

/* One fold in place: what its passes over the delta's batches share. */
struct fold_job {
    const char *job, *vm;
    struct fold_names n;
    uint64_t epoch, from, npages, nchunks;
    struct image_epoch delta; /* the page file: its epoch and size */
    int base_fd, pages_fd;
    uint8_t *touched; /* per 1 MiB chunk: the delta writes in it */
    uint8_t *alloc;   /* per page: a non-zero copy of it comes */
    unsigned written; /* batches written (the hook's step 3) */
    int stopped;      /* the hook stopped the fold */
    char why[256];    /* what failed in a pass's callback */
    uint8_t zero[BATCH_PAGE];
};

static int mark_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                      void *arg)
{
    struct fold_job *f = arg;
    size_t i;

    (void)msg;
    if (v->sealed) { /* (retention never folds a sealed chain) */
        errno = ENOKEY;
        return -1;
    }
    for (i = 0; i < v->n; i++) {
        f->touched[v->pages[i] * BATCH_PAGE / CHUNK] = 1;
        if (batch_view_page(v, i) != NULL)
            f->alloc[v->pages[i]] = 1;
    }
    return 0;
}

/* A zero page becomes a hole (which needs no block: a full disk cannot
 * stop the fold there), a non-zero one is written where fold_prepare
 * allocated it. */
static int write_page(struct fold_job *f, uint64_t pg, const uint8_t *data)
{
    off_t off = (off_t)(pg * BATCH_PAGE);

    if (data != NULL)
        return pwrite_all(f->base_fd, data, BATCH_PAGE, (uint64_t)off);
    if (fallocate(f->base_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
                  BATCH_PAGE) == 0)
        return 0;
    return errno == EOPNOTSUPP
               ? pwrite_all(f->base_fd, f->zero, BATCH_PAGE, (uint64_t)off)
               : -1;
}

static int write_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                       void *arg)
{
    struct fold_job *f = arg;
    size_t i;

    (void)msg;
    if (v->sealed) {
        errno = ENOKEY;
        return -1;
    }
    for (i = 0; i < v->n; i++) {
        f->touched[v->pages[i] * BATCH_PAGE / CHUNK] = 1;
        if (write_page(f, v->pages[i], batch_view_page(v, i)) < 0) {
            snprintf(f->why, sizeof(f->why), "page %llu of %s: %s",
                     (unsigned long long)v->pages[i], f->n.pbase,
                     strerror(errno));
            return -1;
        }
    }
    if (++f->written == 1 && image_fold_inplace_hook != NULL &&
        image_fold_inplace_hook(3)) {
        f->stopped = 1;
        errno = EINTR;
        return -1;
    }
    return 0;
}

/* Read the delta's page file through 'cb' (every batch verified). */
static int pass(struct fold_job *f, const char *dir,
                int (*cb)(const Vmckpt__PageBatch *, const struct batch_view *,
                          void *),
                struct vmckpt_error *err)
{
    uint8_t *scratch = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
    int rc;

    if (scratch == NULL)
        return errprintf_errno(err, "fold %s/%s", f->job, f->vm);
    rc = image_read_pages(f->pages_fd, dir, f->job, f->vm, &f->delta, f->npages,
                          cb, f, scratch, err);
    free(scratch);
    return rc;
}

static size_t chunk_len(const struct fold_job *f, uint64_t c)
{
    uint64_t ram = f->npages * BATCH_PAGE;

    return ram - c * CHUNK < CHUNK ? (size_t)(ram - c * CHUNK) : CHUNK;
}

/* The checksums of the chunks the delta wrote, computed from the base
 * and written into the checksum file 'sum_fd' in place; both durable. */
static int resum(struct fold_job *f, int sum_fd, struct vmckpt_error *err)
{
    uint8_t *chunk = malloc(CHUNK), le[8];
    uint64_t c;
    int k, rc = -1;

    if (chunk == NULL || fsync(f->base_fd) < 0)
        goto out;
    for (c = 0; c < f->nchunks; c++) {
        uint64_t sum;

        if (!f->touched[c])
            continue;
        if (pread_all(f->base_fd, chunk, chunk_len(f, c), c * CHUNK) < 0)
            goto out;
        sum = batch_xxh64(chunk, chunk_len(f, c));
        for (k = 0; k < 8; k++)
            le[k] = (uint8_t)(sum >> (8 * k));
        if (pwrite_all(sum_fd, le, sizeof(le), c * 8) < 0)
            goto out;
    }
    rc = fsync(sum_fd);
out:
    if (rc < 0)
        errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job, f->vm,
                        f->epoch, f->n.sumtmp);
    free(chunk);
    return rc;
}

/* With manifest_mu held: the files take their names, the manifest stops
 * saying "fold", the delta's and the parent's other files go. Each step
 * is one a stopped fold may already have done. */
static int fold_names_swap(const char *store, struct fold_job *f,
                           const char *dir, struct vmckpt_error *err)
{
    struct image_manifest m;
    size_t i;

    if ((access(f->n.sumtmp, F_OK) == 0 && rename(f->n.sumtmp, f->n.sum) < 0) ||
        (access(f->n.pbase, F_OK) == 0 && rename(f->n.pbase, f->n.base) < 0) ||
        fsync_dir(dir) < 0)
        return errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job,
                               f->vm, f->epoch, f->n.base);
    if (image_fold_inplace_hook != NULL && image_fold_inplace_hook(5)) {
        f->stopped = 1;
        errno = EINTR;
        return -1;
    }
    if (image_manifest_load(store, f->job, f->vm, &m, err) < 0)
        return -1;
    for (i = 0; i < m.n; i++)
        if (m.e[i].epoch == f->epoch)
            m.e[i].fold_from = 0;
    if (manifest_save(dir, &m, err) < 0)
        return -1;
    unlink(f->n.pages);
    unlink(f->n.psum);
    unlink(f->n.pstate);
    unlink(f->n.ppages);
    return 0;
}

static void fold_job_free(struct fold_job *f)
{
    if (f->base_fd >= 0)
        close(f->base_fd);
    if (f->pages_fd >= 0)
        close(f->pages_fd);
    free(f->touched);
    free(f->alloc);
    free(f);
}

static struct fold_job *fold_job_new(const char *dir, const char *job,
                                     const char *vm, uint64_t epoch,
                                     uint64_t from, uint64_t ram_bytes,
                                     struct vmckpt_error *err)
{
    struct fold_job *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        errprintf_errno(err, "fold %s/%s", job, vm);
        return NULL;
    }
    f->job = job;
    f->vm = vm;
    f->epoch = epoch;
    f->from = from;
    f->npages = ram_bytes / BATCH_PAGE;
    f->nchunks = (ram_bytes + CHUNK - 1) / CHUNK;
    f->base_fd = f->pages_fd = -1;
    names_of(&f->n, dir, epoch, from);
    f->touched = calloc(f->nchunks ? f->nchunks : 1, 1);
    f->alloc = calloc(f->npages ? f->npages : 1, 1);
    if (f->touched == NULL || f->alloc == NULL) {
        errprintf_errno(err, "fold %s/%s", job, vm);
        fold_job_free(f);
        return NULL;
    }
    return f;
}

/* Open the base (as 'base_name') and the delta's page file. */
static int fold_open(struct fold_job *f, const char *base_name,
                     struct vmckpt_error *err)
{
    struct stat st;

    f->base_fd = open(base_name, O_RDWR | O_CLOEXEC);
    if (f->base_fd < 0)
        return errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job,
                               f->vm, f->epoch, base_name);
    f->pages_fd = open(f->n.pages, O_RDONLY | O_CLOEXEC);
    if (f->pages_fd < 0 || fstat(f->pages_fd, &st) < 0)
        return errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job,
                               f->vm, f->epoch, f->n.pages);
    f->delta.epoch = f->epoch;
    f->delta.pages_bytes = (uint64_t)st.st_size;
    return 0;
}

/* Write the delta into the base and make the checksums of what it wrote;
 * then, under manifest_mu, the names. */
static int fold_write(const char *store, struct fold_job *f, const char *dir,
                      struct vmckpt_error *err)
{
    int sum_fd, rc;

    if (pass(f, dir, write_batch, err) < 0) {
        if (f->why[0] != '\0')
            errprefix(err, "%s", f->why); /* (the cause first) */
        return -1;
    }
    sum_fd = open(f->n.sumtmp, O_WRONLY | O_CLOEXEC);
    if (sum_fd < 0)
        return errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job,
                               f->vm, f->epoch, f->n.sumtmp);
    rc = resum(f, sum_fd, err);
    close(sum_fd);
    if (rc < 0)
        return -1;
    if (image_fold_inplace_hook != NULL && image_fold_inplace_hook(4)) {
        f->stopped = 1;
        errno = EINTR;
        return -1;
    }
    pthread_mutex_lock(&manifest_mu);
    rc = fold_names_swap(store, f, dir, err);
    pthread_mutex_unlock(&manifest_mu);
    return rc;
}

/* The fold's lock on the VM's directory, across processes (a tool
 * restoring from the agent's store): -1 (errno EWOULDBLOCK) when another
 * holds it. */
static int fold_lock(const char *dir)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/fold.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Copy file 'from' to 'to', durable. */
static int copy_file(const char *from, const char *to)
{
    uint8_t buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = -1;
    ssize_t n;

    if (in >= 0)
        out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    while (out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write_all(out, buf, (size_t)n) < 0)
            goto out;
    rc = out >= 0 && n == 0 ? fsync(out) : -1;
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Finish what the manifest says of 'f' with the lock held: only the
 * names when the checksums are in place; otherwise the delta written
 * again (a checksum file lost to a failed manifest save is made again
 * from the parent's first). */
static int finish_files(const char *store, struct fold_job *f, const char *dir,
                        struct vmckpt_error *err)
{
    if (access(f->n.sumtmp, F_OK) != 0 && access(f->n.sum, F_OK) == 0)
        return fold_names_swap(store, f, dir, err);
    if (access(f->n.sumtmp, F_OK) != 0 && copy_file(f->n.psum, f->n.sumtmp) < 0)
        return errprintf_errno(err, "%s from %s", f->n.sumtmp, f->n.psum);
    if (fold_open(f, access(f->n.pbase, F_OK) == 0 ? f->n.pbase : f->n.base,
                  err) < 0)
        return -1;
    return fold_write(store, f, dir, err);
}

int image_fold_finish(const char *store, const char *job, const char *vm,
                      uint64_t epoch, struct vmckpt_error *err)
{
    struct image_manifest m;
    const struct image_epoch *e;
    struct fold_job *f = NULL;
    char dir[4096];
    uint64_t from, gen = 0;
    int rc = -1, lock = -1;

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    pthread_mutex_lock(&manifest_mu);
    if (image_manifest_load(store, job, vm, &m, err) < 0) {
        pthread_mutex_unlock(&manifest_mu);
        return -1;
    }
    e = image_manifest_find(&m, epoch);
    if (e == NULL || e->fold_from == 0 || image_fold_live(dir, e, &gen)) {
        pthread_mutex_unlock(&manifest_mu);
        if (e != NULL && e->fold_from != 0)
            image_fold_wait(gen); /* another thread finishes it */
        return 0;
    }
    /* this thread finishes it, without the manifest lock (a pass over the
     * delta): readers of it wait meanwhile */
    from = e->fold_from;
    snprintf(live.dir, sizeof(live.dir), "%s", dir);
    live.epoch = epoch;
    pthread_mutex_unlock(&manifest_mu);
    lock = fold_lock(dir);
    if (lock < 0) {
        errprintf_errno(err, "the fold is at work in another process");
        errno = EAGAIN;
    } else {
        f = fold_job_new(dir, job, vm, epoch, from, m.ram_bytes, err);
        if (f != NULL)
            rc = finish_files(store, f, dir, err);
    }
    pthread_mutex_lock(&manifest_mu);
    live_end();
    pthread_mutex_unlock(&manifest_mu);
    if (rc < 0) {
        char why[sizeof(err->text)];
        int saved = errno;

        snprintf(why, sizeof(why), "%s", err->text);
        errprintf(err,
                  "%s/%s epoch %" PRIu64 ": its fold onto epoch %" PRIu64
                  "'s base stopped part way and cannot be finished: %s",
                  job, vm, epoch, from, why);
        errno = saved;
    }
    if (f != NULL)
        fold_job_free(f);
    if (lock >= 0)
        close(lock);
    return rc;
}

/* Before anything changes: the chunks of the parent's base the delta
 * writes in are checked against their checksums (what is left of them
 * is kept under a new checksum), the blocks its non-zero pages need are
 * allocated (a full disk fails here, not part way; its zero pages become
 * holes), and the checksum file starts as a copy of the parent's,
 * durable. 0, -1, or 1 when the file system cannot allocate ahead (fold
 * by copy then). */
static int fold_prepare(struct fold_job *f, const char *dir,
                        const struct image_epoch *parent,
                        struct vmckpt_error *err)
{
    uint64_t *sums, c, p, q;
    uint8_t *chunk = NULL, *le = NULL;
    int sum_fd = -1, rc = -1, k;

    if (pass(f, dir, mark_batch, err) < 0)
        return -1;
    sums = image_load_sums(dir, f->job, f->vm, parent, f->npages * BATCH_PAGE,
                           err);
    chunk = malloc(CHUNK);
    le = malloc(f->nchunks * 8 + 1);
    if (sums == NULL || chunk == NULL || le == NULL) {
        if (sums != NULL)
            errprintf_errno(err, "fold %s/%s", f->job, f->vm);
        goto out;
    }
    for (c = 0; c < f->nchunks; c++) {
        if (f->touched[c] &&
            (pread_all(f->base_fd, chunk, chunk_len(f, c), c * CHUNK) < 0 ||
             batch_xxh64(chunk, chunk_len(f, c)) != sums[c])) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": damaged base image %s in "
                      "the 1 MiB at offset %" PRIu64 " (checksum mismatch)",
                      f->job, f->vm, f->from, f->n.pbase, c * CHUNK);
            goto out;
        }
        for (k = 0; k < 8; k++)
            le[c * 8 + (size_t)k] = (uint8_t)(sums[c] >> (8 * k));
    }
    for (p = 0; p < f->npages; p = q + 1) {
        for (; p < f->npages && !f->alloc[p]; p++)
            ;
        for (q = p; q < f->npages && f->alloc[q]; q++)
            ;
        if (q > p && fallocate(f->base_fd, 0, (off_t)(p * BATCH_PAGE),
                               (off_t)((q - p) * BATCH_PAGE)) < 0) {
            if (errno == EOPNOTSUPP) { /* no room can be made sure of */
                rc = 1;
                goto out;
            }
            errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job,
                            f->vm, f->epoch, f->n.pbase);
            goto out;
        }
    }
    sum_fd = open(f->n.sumtmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sum_fd < 0 || write_all(sum_fd, le, f->nchunks * 8) < 0 ||
        fsync(sum_fd) < 0 || fsync_dir(dir) < 0) {
        errprintf_errno(err, "fold %s/%s epoch %" PRIu64 ": %s", f->job, f->vm,
                        f->epoch, f->n.sumtmp);
        unlink(f->n.sumtmp);
        goto out;
    }
    rc = 0;
out:
    if (sum_fd >= 0)
        close(sum_fd);
    free(sums);
    free(chunk);
    free(le);
    return rc;
}

/* Which fold 'm' allows for 'epoch': 1 and its parent's entry when the
 * parent is a base older than 'keep_from' that only 'epoch' builds on. */
static int foldable(const struct image_manifest *m, uint64_t epoch,
                    uint64_t keep_from, const struct image_epoch **pe,
                    const struct image_epoch **pp)
{
    const struct image_epoch *e = image_manifest_find(m, epoch), *p;
    size_t i;

    if (e == NULL || e->base || e->sealed || e->parent == 0 ||
        e->parent >= keep_from)
        return 0;
    p = image_manifest_find(m, e->parent);
    if (p == NULL || !p->base || p->sealed || p->fold_from != 0)
        return 0;
    for (i = 0; i < m->n; i++)
        if (m->e[i].parent == p->epoch && m->e[i].epoch != epoch)
            return 0;
    *pe = e;
    *pp = p;
    return 1;
}

/* Under manifest_mu: the manifest says the fold (the parent gone, the
 * epoch a base made from the parent's), if nothing changed since 'was'
 * and no reader has a base open. 0, 1 (a reader: fold by copy), -1. */
static int fold_begin(const char *store, struct fold_job *f, const char *dir,
                      const struct image_epoch *was, uint64_t keep_from,
                      struct vmckpt_error *err)
{
    struct image_manifest m;
    const struct image_epoch *ce, *cp;
    struct image_epoch *e;
    size_t i;

    if (image_manifest_load(store, f->job, f->vm, &m, err) < 0)
        return -1;
    if (!foldable(&m, f->epoch, keep_from, &ce, &cp) || cp->epoch != f->from ||
        ce->pages_bytes != was->pages_bytes ||
        ce->state_xxh64 != was->state_xxh64) {
        errno = ESTALE;
        return errprintf(err,
                         "%s/%s epoch %" PRIu64 " changed while it was folded",
                         f->job, f->vm, f->epoch);
    }
    if (image_base_readers(dir, 0) > 0)
        return 1;
    e = (struct image_epoch *)ce;
    /* its disks keep the parent's layers (image_disk_fold reads the chain
     * in 'm', so before the parent leaves it) */
    if (image_disk_fold(dir, &m, e, err) < 0)
        return -1;
    e->parent = 0;
    e->base = 1;
    e->fold_from = f->from;
    e->pages_bytes = m.ram_bytes;
    for (i = 0; i < m.n && m.e[i].epoch != f->from; i++)
        ;
    memmove(&m.e[i], &m.e[i + 1], (m.n - i - 1) * sizeof(m.e[0]));
    m.n--;
    if (manifest_save_epoch(store, f->job, f->vm, dir, &m, f->epoch, err) < 0) {
        image_fold_undo_disks(store, f->job, f->vm, dir);
        return -1;
    }
    image_disk_gc(dir, &m);
    snprintf(live.dir, sizeof(live.dir), "%s", dir);
    live.epoch = f->epoch;
    return 0;
}

/* Whether 'dir' is on a file system that writes every change to new
 * blocks (btrfs, ZFS, bcachefs). */
static int cow_fs(const char *dir)
{
    struct statfs st;

    if (statfs(dir, &st) < 0)
        return 1;
    switch ((unsigned long)st.f_type) {
    case 0x9123683eUL: /* btrfs */
    case 0x2fc12fc1UL: /* zfs */
    case 0xca451a4eUL: /* bcachefs */
        return 1;
    }
    return 0;
}

int image_fold_inplace(const char *store, const char *job, const char *vm,
                       uint64_t epoch, uint64_t keep_from,
                       struct vmckpt_error *err)
{
    struct image_manifest m;
    const struct image_epoch *e, *p;
    struct image_epoch was, parent;
    struct fold_job *f = NULL;
    char dir[4096];
    int rc = -1, lock = -1;

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    pthread_mutex_lock(&manifest_mu);
    rc = image_manifest_load(store, job, vm, &m, err);
    if (rc == 0 && (!foldable(&m, epoch, keep_from, &e, &p) ||
                    image_base_readers(dir, 0) > 0))
        rc = 1;
    pthread_mutex_unlock(&manifest_mu);
    if (rc != 0)
        return rc;
    was = *e;
    parent = *p;
    /* not on a file system that writes copies (what it overwrites needs
     * new room), nor when another process holds the VM's fold lock */
    if (cow_fs(dir) || (lock = fold_lock(dir)) < 0)
        return 1;
    rc = -1;
    f = fold_job_new(dir, job, vm, epoch, parent.epoch, m.ram_bytes, err);
    if (f == NULL || fold_open(f, f->n.pbase, err) < 0 ||
        (rc = fold_prepare(f, dir, &parent, err)) != 0)
        goto out;
    if (image_fold_inplace_hook != NULL && image_fold_inplace_hook(1)) {
        f->stopped = 1, errno = EINTR, rc = -1; /* (its .tmp left behind) */
        goto out;
    }
    pthread_mutex_lock(&manifest_mu);
    rc = fold_begin(store, f, dir, &was, keep_from, err);
    pthread_mutex_unlock(&manifest_mu);
    if (rc != 0) {
        unlink(f->n.sumtmp);
        goto out;
    }
    /* from here on, the manifest says it: what stops the fold leaves it
     * for image_fold_finish */
    if (image_fold_inplace_hook != NULL && image_fold_inplace_hook(2))
        f->stopped = 1, errno = EINTR, rc = -1;
    else
        rc = fold_write(store, f, dir, err);
    pthread_mutex_lock(&manifest_mu);
    live_end();
    pthread_mutex_unlock(&manifest_mu);
out:
    if (rc < 0 && f != NULL && f->stopped)
        errprintf(err, "%s/%s epoch %" PRIu64 ": fold stopped (test)", job, vm,
                  epoch);
    if (f != NULL)
        fold_job_free(f);
    if (lock >= 0)
        close(lock);
    return rc;
}
