/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Image store files. Page file: records of "VBAT", u32 length (little
 * endian), a packed PageBatch. Base file (a folded epoch): guest RAM with
 * page P at offset P x 4096 (zero pages are holes), and beside it the
 * XXH64 of every 1 MiB chunk (u64 little endian each). State file: the
 * device state as QEMU wrote it. Manifest: text, one durable epoch per
 * line (docs/store.md).
 *
 *   write epoch e:  e<e>.pages.tmp, e<e>.state.tmp   (nothing else touched)
 *   commit:         fsync both, rename to e<e>.pages / e<e>.state,
 *                   manifest.tmp = manifest + "epoch e ...", fsync,
 *                   rename over manifest, fsync the directory
 * A crash at any point leaves the old manifest naming only complete
 * epochs; stray .tmp files are removed by the next writer. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "image_int.h"
#include "lib/util/daemon.h"
#include "lib/util/io.h"
#include "lib/util/name.h"
#include "lib/wire/batch.h"

#define REC_MAGIC "VBAT"
#define REC_MAX   (BATCH_MAX_PAGES * BATCH_PAGE + 65536)
#define STATE_MAX (1ULL << 32)

struct image_writer {
    char dir[4096];
    char job[65], vm[65];
    uint64_t epoch, parent, ram_bytes;
    int pages_fd, state_fd;
    uint64_t batches, pages, state_bytes, pages_bytes;
    unsigned parts;
    uint8_t *scratch[WIRE_MAX_STREAMS]; /* one per part */
    pthread_mutex_t mu;                 /* the page file, the counts */
    struct image_disks_in *disks;       /* its disks' layers, or NULL */
    uint64_t disk_bytes;                /* disk chunks' data written */
    int sealed; /* a sealed batch or state came (the store has no key) */
};

/* Every change of a manifest (a commit, a fold, a drop, retention) is a
 * read-modify-write: one at a time in this process, or a commit racing a
 * retention could drop the other's epoch from the list. Recursive because
 * retention folds and drops. */
pthread_mutex_t manifest_mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

int image_valid_name(const char *s)
{
    return name_is_plain(s, 64) && s[0] != '.';
}

int vm_dir(const char *store, const char *job, const char *vm, char *buf,
           size_t len, struct vmckpt_error *err)
{
    if (!image_valid_name(job) || !image_valid_name(vm)) {
        errno = EINVAL;
        return errprintf(err,
                         "refused job/VM name '%.64s'/'%.64s': 1-64 "
                         "of letters, digits, '.', '_', '-', not "
                         "starting with '.'",
                         job ? job : "", vm ? vm : "");
    }
    if ((size_t)snprintf(buf, len, "%s/%s/%s", store, job, vm) >= len) {
        errno = ENAMETOOLONG;
        return errprintf(err, "store path too long");
    }
    return 0;
}

int image_incarnation_admit(const char *store, const char *job, const char *vm,
                            uint64_t inc, struct vmckpt_error *err)
{
    char dir[4096], path[4200], text[32];
    unsigned long long have = 0;
    FILE *f;

    if (inc == 0)
        return 0;
    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/incarnation", dir);
    f = fopen(path, "re");
    if (f == NULL && errno != ENOENT)
        return errprintf_errno(err, "cannot read %s", path);
    if (f != NULL) {
        int ok = fscanf(f, "%llu", &have) == 1;

        fclose(f);
        if (!ok) {
            errno = EINVAL;
            return errprintf(err, "%s: not an incarnation number", path);
        }
    }
    if (inc < have) {
        errno = ESTALE;
        return errprintf(err,
                         "%s/%s: a writer of incarnation %llu refused: this "
                         "store took incarnation %llu of the job since (a "
                         "stale copy of the guest)",
                         job, vm, (unsigned long long)inc, have);
    }
    if (inc == have)
        return 0;
    snprintf(text, sizeof(text), "%llu", (unsigned long long)inc);
    if (daemon_mkdirs(dir, 0700, err) < 0 ||
        daemon_write_file(path, text, err) < 0)
        return -1;
    return 0;
}

static void writer_free(struct image_writer *w)
{
    unsigned i;

    for (i = 0; i < w->parts; i++)
        free(w->scratch[i]);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void image_writer_abort(struct image_writer *w)
{
    char path[4200];
    int saved = errno;

    if (w == NULL)
        return;
    if (w->pages_fd >= 0)
        close(w->pages_fd);
    if (w->state_fd >= 0)
        close(w->state_fd);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".pages.tmp", w->dir, w->epoch);
    unlink(path);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".state.tmp", w->dir, w->epoch);
    unlink(path);
    image_disks_close(w->disks, w->dir, w->epoch);
    writer_free(w);
    errno = saved;
}

struct image_writer *image_writer_open(const char *store, const char *job,
                                       const char *vm, uint64_t epoch,
                                       uint64_t parent, uint64_t ram_bytes,
                                       unsigned parts, struct vmckpt_error *err)
{
    struct image_writer *w = calloc(1, sizeof(*w));
    struct image_manifest m;
    char path[4200];
    unsigned i;

    if (w == NULL) {
        errprintf_errno(err, "image writer");
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    w->pages_fd = w->state_fd = -1;
    w->epoch = epoch;
    w->parent = parent;
    w->ram_bytes = ram_bytes;
    if (vm_dir(store, job, vm, w->dir, sizeof(w->dir), err) < 0)
        goto fail;
    snprintf(w->job, sizeof(w->job), "%s", job);
    snprintf(w->vm, sizeof(w->vm), "%s", vm);
    errno = EINVAL;
    if (epoch == 0 || parent >= epoch) {
        errprintf(err, "%s/%s: epoch %" PRIu64 " with parent %" PRIu64, job, vm,
                  epoch, parent);
        goto fail;
    }
    if (ram_bytes == 0 || ram_bytes % BATCH_PAGE) {
        errprintf(err, "%s/%s: RAM size %" PRIu64 " is not whole pages", job,
                  vm, ram_bytes);
        goto fail;
    }
    if (daemon_mkdirs(w->dir, 0700, err) < 0 ||
        image_manifest_load(store, job, vm, &m, err) < 0)
        goto fail;
    errno = EEXIST;
    if (image_manifest_find(&m, epoch) != NULL) {
        errprintf(err, "%s/%s: epoch %" PRIu64 " is already durable", job, vm,
                  epoch);
        goto fail;
    }
    errno = ENOENT;
    if (parent != 0 && image_manifest_find(&m, parent) == NULL) {
        errprintf(err, "%s/%s: parent epoch %" PRIu64 " is not in this store",
                  job, vm, parent);
        goto fail;
    }
    errno = EINVAL;
    if (m.n > 0 && m.ram_bytes != ram_bytes) {
        errprintf(err,
                  "%s/%s: RAM size %" PRIu64 " differs from the "
                  "stored %" PRIu64,
                  job, vm, ram_bytes, m.ram_bytes);
        goto fail;
    }
    if (m.n == IMAGE_MAX_EPOCHS) {
        errprintf(err, "%s/%s: %d epochs stored; drop old ones first", job, vm,
                  IMAGE_MAX_EPOCHS);
        goto fail;
    }
    if (parts < 1 || parts > WIRE_MAX_STREAMS) {
        errprintf(err, "%s/%s: %u parallel streams: 1 to %d", job, vm, parts,
                  WIRE_MAX_STREAMS);
        goto fail;
    }
    for (i = 0; i < parts; i++) {
        w->scratch[i] = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
        w->parts = i + 1;
        if (w->scratch[i] == NULL) {
            errprintf_errno(err, "image writer");
            goto fail;
        }
    }
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".pages.tmp", w->dir, epoch);
    w->pages_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->pages_fd < 0) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".state.tmp", w->dir, epoch);
    w->state_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->state_fd < 0) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    return w;
fail:
    image_writer_abort(w);
    return NULL;
}

int write_all(int fd, const void *buf, size_t len)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return io_writev_all(fd, &iov, 1, -1);
}

int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    return io_writev_all(fd, &iov, 1, (int64_t)off);
}

/* Append one record (header + packed batch) to 'fd'; its size is added to
 * *bytes. 0, or -1 with errno (the caller names the file). */
static int append_record(int fd, const uint8_t *packed, size_t len,
                         uint64_t *bytes)
{
    struct iovec iov[2];
    uint8_t hdr[8];

    memcpy(hdr, REC_MAGIC, 4);
    hdr[4] = (uint8_t)len;
    hdr[5] = (uint8_t)(len >> 8);
    hdr[6] = (uint8_t)(len >> 16);
    hdr[7] = (uint8_t)(len >> 24);
    iov[0].iov_base = hdr;
    iov[0].iov_len = sizeof(hdr);
    iov[1].iov_base = (void *)packed;
    iov[1].iov_len = len;
    /* header and batch in one write */
    if (io_writev_all(fd, iov, 2, -1) < 0)
        return -1;
    *bytes += sizeof(hdr) + len;
    return 0;
}

int image_writer_batch(struct image_writer *w, unsigned part,
                       const Vmckpt__PageBatch *msg, struct vmckpt_error *err)
{
    return image_writer_batch_raw(w, part, msg, NULL, 0, err);
}

int image_writer_batch_raw(struct image_writer *w, unsigned part,
                           const Vmckpt__PageBatch *msg, const uint8_t *raw,
                           size_t raw_len, struct vmckpt_error *err)
{
    uint8_t *packed = NULL;
    struct batch_view v;
    uint64_t nth;
    int rc = 0;

    if (part >= w->parts) {
        errno = EINVAL;
        return errprintf(err, "%s/%s epoch %" PRIu64 ": no part %u", w->job,
                         w->vm, w->epoch, part);
    }
    /* each part verifies in its own scratch; records go in one at a time */
    if (batch_open(msg, w->ram_bytes / BATCH_PAGE, w->scratch[part], &v, err) <
        0) {
        pthread_mutex_lock(&w->mu);
        nth = w->batches + 1;
        pthread_mutex_unlock(&w->mu);
        return errprefix(err, "%s/%s epoch %" PRIu64 " batch %" PRIu64, w->job,
                         w->vm, w->epoch, nth);
    }
    /* verified: the batch is written as it came, or packed here */
    if (raw == NULL && wire_pack(msg, &packed, &raw_len, err) < 0)
        return -1;
    pthread_mutex_lock(&w->mu);
    if (append_record(w->pages_fd, raw != NULL ? raw : packed, raw_len,
                      &w->pages_bytes) < 0) {
        rc = errprintf_errno(err, "%s/%s epoch %" PRIu64 ": writing pages",
                             w->job, w->vm, w->epoch);
    } else {
        w->batches++;
        w->pages += v.n;
        w->sealed |= v.sealed;
    }
    pthread_mutex_unlock(&w->mu);
    free(packed);
    return rc;
}

int image_writer_state(struct image_writer *w, uint64_t offset,
                       const void *data, size_t len, struct vmckpt_error *err)
{
    errno = EINVAL;
    if (offset != w->state_bytes)
        return errprintf(err,
                         "%s/%s epoch %" PRIu64 ": state chunk at %" PRIu64
                         ", expected %" PRIu64,
                         w->job, w->vm, w->epoch, offset, w->state_bytes);
    if (w->state_bytes + len > STATE_MAX)
        return errprintf(err, "%s/%s: device state too large", w->job, w->vm);
    if (write_all(w->state_fd, data, len) < 0)
        return errprintf_errno(err, "%s/%s epoch %" PRIu64 ": writing state",
                               w->job, w->vm, w->epoch);
    if (offset == 0 && seal_state_is_sealed(data, len))
        w->sealed = 1;
    w->state_bytes += len;
    return 0;
}

/* XXH64 of a whole file. */
static int fd_xxh64(int fd, uint64_t *sum)
{
    struct stat st;
    uint8_t *buf;
    ssize_t n;

    if (fstat(fd, &st) < 0)
        return -1;
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (buf == NULL)
        return -1;
    n = pread(fd, buf, (size_t)st.st_size, 0);
    if (n != st.st_size) {
        free(buf);
        errno = EIO;
        return -1;
    }
    *sum = batch_xxh64(buf, (size_t)st.st_size);
    free(buf);
    return 0;
}

static int file_xxh64(const char *path, uint64_t *sum)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fd_xxh64(fd, sum);
    close(fd);
    return rc;
}

int image_writer_disks(struct image_writer *w, unsigned ndisks,
                       struct vmckpt_error *err)
{
    if (w->disks != NULL || ndisks == 0) {
        errno = EPROTO;
        return errprintf(err, "%s/%s epoch %" PRIu64 ": %u disks", w->job,
                         w->vm, w->epoch, ndisks);
    }
    w->disks = image_disks_open(ndisks, err);
    return w->disks != NULL ? 0 : -1;
}

int image_writer_disk_chunk(struct image_writer *w, const Vmckpt__DiskChunk *c,
                            struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&w->mu);
    if (w->disks == NULL) {
        errno = EPROTO;
        rc = errprintf(err, "a disk chunk for an epoch without disks");
    } else {
        rc = image_disks_chunk(w->disks, w->dir, w->epoch, c, err);
        if (rc == 0)
            w->disk_bytes += c->data.len;
    }
    pthread_mutex_unlock(&w->mu);
    if (rc < 0)
        errprefix(err, "%s/%s epoch %" PRIu64, w->job, w->vm, w->epoch);
    return rc;
}

/* The epoch's disk layers, durable and in place, described in 'e'; a
 * delta has its parent's disks. */
static int commit_disks(struct image_writer *w, const struct image_manifest *m,
                        const Vmckpt__StreamEnd *end, struct image_epoch *e,
                        struct vmckpt_error *err)
{
    const struct image_epoch *p =
        w->parent ? image_manifest_find(m, w->parent) : NULL;
    unsigned n = w->disks ? image_disks_count(w->disks) : 0;

    if (p != NULL && p->ndisks != n) {
        errno = EPROTO;
        return errprintf(err,
                         "%s/%s epoch %" PRIu64
                         ": %u disks, its parent %" PRIu64 " has %u",
                         w->job, w->vm, w->epoch, n, w->parent, p->ndisks);
    }
    if (w->disks == NULL)
        return 0;
    if (image_disks_commit(w->disks, w->dir, w->epoch, w->sealed, end, e, err) <
            0 ||
        fsync_dir(w->dir) < 0)
        return errprefix(err, "%s/%s epoch %" PRIu64, w->job, w->vm, w->epoch);
    return 0;
}

int image_writer_commit(struct image_writer *w, const Vmckpt__StreamEnd *end,
                        uint64_t *bytes, struct vmckpt_error *err)
{
    char tmp[4200], final[4200], store[4096];
    struct image_manifest m;
    uint64_t sum;
    const char *kind[2] = {"pages", "state"};
    int i;

    errno = EPROTO;
    if (end->batches != w->batches || end->pages != w->pages ||
        end->state_bytes != w->state_bytes) {
        errprintf(err,
                  "%s/%s epoch %" PRIu64 ": stream ended after %" PRIu64
                  " batches, %" PRIu64 " pages, %" PRIu64
                  " state bytes; the sender says %" PRIu64 ", %" PRIu64
                  ", %" PRIu64,
                  w->job, w->vm, w->epoch, w->batches, w->pages, w->state_bytes,
                  end->batches, end->pages, end->state_bytes);
        goto fail;
    }
    if (fsync(w->pages_fd) < 0 || fsync(w->state_fd) < 0) {
        errprintf_errno(err, "%s/%s epoch %" PRIu64 ": fsync", w->job, w->vm,
                        w->epoch);
        goto fail;
    }
    snprintf(tmp, sizeof(tmp), "%s/e%" PRIu64 ".state.tmp", w->dir, w->epoch);
    if (file_xxh64(tmp, &sum) < 0 || sum != end->state_xxh64) {
        errno = EBADMSG;
        errprintf(err,
                  "%s/%s epoch %" PRIu64 ": device state checksum "
                  "mismatch",
                  w->job, w->vm, w->epoch);
        goto fail;
    }
    for (i = 0; i < 2; i++) {
        snprintf(tmp, sizeof(tmp), "%s/e%" PRIu64 ".%s.tmp", w->dir, w->epoch,
                 kind[i]);
        snprintf(final, sizeof(final), "%s/e%" PRIu64 ".%s", w->dir, w->epoch,
                 kind[i]);
        if (rename(tmp, final) < 0) {
            errprintf_errno(err, "rename %s", tmp);
            goto fail;
        }
    }
    if (fsync_dir(w->dir) < 0) {
        errprintf_errno(err, "fsync %s", w->dir);
        goto fail;
    }
    /* the store directory is two levels up from the VM directory */
    snprintf(store, sizeof(store), "%s", w->dir);
    *strrchr(store, '/') = '\0';
    *strrchr(store, '/') = '\0';
    pthread_mutex_lock(&manifest_mu);
    if (image_manifest_load(store, w->job, w->vm, &m, err) < 0) {
        pthread_mutex_unlock(&manifest_mu);
        goto fail;
    }
    m.ram_bytes = w->ram_bytes;
    m.e[m.n].epoch = w->epoch;
    m.e[m.n].parent = w->parent;
    m.e[m.n].base = 0;
    m.e[m.n].sealed = w->sealed;
    m.e[m.n].pages_bytes = w->pages_bytes;
    m.e[m.n].state_bytes = w->state_bytes;
    m.e[m.n].state_xxh64 = sum;
    if (commit_disks(w, &m, end, &m.e[m.n], err) < 0) {
        pthread_mutex_unlock(&manifest_mu);
        goto fail;
    }
    m.n++;
    if (manifest_save(w->dir, &m, err) < 0) {
        pthread_mutex_unlock(&manifest_mu);
        goto fail;
    }
    pthread_mutex_unlock(&manifest_mu);
    *bytes = w->pages_bytes + w->state_bytes + w->disk_bytes;
    close(w->pages_fd);
    close(w->state_fd);
    image_disks_close(w->disks, w->dir, w->epoch);
    writer_free(w);
    return 0;
fail:
    /* renamed files of an epoch the manifest does not name are ignored,
     * and replaced by the next attempt at this epoch */
    image_writer_abort(w);
    return -1;
}

int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int image_read_pages(int fd, const char *dir, const char *job, const char *vm,
                     const struct image_epoch *e, uint64_t npages,
                     int (*cb)(const Vmckpt__PageBatch *,
                               const struct batch_view *, void *),
                     void *arg, uint8_t *scratch, struct vmckpt_error *err)
{
    char path[4200];
    uint8_t hdr[8], *rec = NULL;
    uint64_t off = 0;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".pages", dir, e->epoch);
    rec = malloc(REC_MAX);
    if (rec == NULL) {
        errprintf_errno(err, "read %s", path);
        goto out;
    }
    while (off < e->pages_bytes) {
        Vmckpt__PageBatch b;
        uint64_t pages[BATCH_MAX_PAGES];
        struct batch_view v;
        uint32_t len;

        if (pread_all(fd, hdr, sizeof(hdr), off) < 0 ||
            memcmp(hdr, REC_MAGIC, 4) != 0) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": damaged record header "
                      "in %s at offset %" PRIu64,
                      job, vm, e->epoch, path, off);
            goto out;
        }
        len = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 |
              (uint32_t)hdr[6] << 16 | (uint32_t)hdr[7] << 24;
        if (len > REC_MAX || off + 8 + len > e->pages_bytes ||
            pread_all(fd, rec, len, off + 8) < 0) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": damaged record length "
                      "in %s at offset %" PRIu64,
                      job, vm, e->epoch, path, off);
            goto out;
        }
        /* decoded in place, verified once */
        if (batch_decode(rec, len, &b, pages, err) < 0 ||
            batch_open(&b, npages, scratch, &v, err) < 0) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": damaged batch in %s at "
                      "offset %" PRIu64,
                      job, vm, e->epoch, path, off);
            goto out;
        }
        rc = cb(&b, &v, arg);
        if (rc < 0) {
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": batch at offset %" PRIu64
                      " not applied",
                      job, vm, e->epoch, off);
            goto out;
        }
        rc = -1;
        off += 8 + len;
    }
    rc = 0;
out:
    free(rec);
    return rc;
}

/* Verify and deliver a base image: each 1 MiB chunk against its checksum,
 * then as one batch of its pages (zero pages as zero bits), so every
 * reader takes a base like any other epoch. */
static int read_base(int fd, const uint64_t *sums, const char *dir,
                     const char *job, const char *vm,
                     const struct image_epoch *e, uint64_t npages,
                     int (*cb)(const Vmckpt__PageBatch *,
                               const struct batch_view *, void *),
                     void *arg, struct vmckpt_error *err)
{
    char path[4200];
    uint8_t *chunk = malloc(CHUNK);
    struct batch_builder b;
    uint64_t c, nchunks = (npages * BATCH_PAGE + CHUNK - 1) / CHUNK;
    int rc = -1, have_b = 0;

    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".base", dir, e->epoch);
    if (chunk == NULL || batch_builder_init(&b, 0) < 0) {
        errprintf_errno(err, "read %s", path);
        goto out;
    }
    have_b = 1;
    for (c = 0; c < nchunks; c++) {
        uint64_t off = c * CHUNK, p, first = off / BATCH_PAGE;
        size_t len = npages * BATCH_PAGE - off < CHUNK
                         ? (size_t)(npages * BATCH_PAGE - off)
                         : CHUNK;
        Vmckpt__PageBatch msg;
        struct batch_view v;

        if (pread_all(fd, chunk, len, off) < 0 ||
            batch_xxh64(chunk, len) != sums[c]) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": damaged base image %s in "
                      "the 1 MiB at offset %" PRIu64 " (checksum mismatch)",
                      job, vm, e->epoch, path, off);
            goto out;
        }
        batch_reset(&b, 0);
        for (p = 0; p < len / BATCH_PAGE; p++)
            batch_add(&b, first + p, chunk + p * BATCH_PAGE);
        vmckpt__page_batch__init(&msg);
        batch_finish(&b, &msg);
        /* built here from a verified chunk: no second check */
        batch_view_fill(&msg, msg.data.data, &v);
        if (cb(&msg, &v, arg) < 0) {
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": base chunk at offset %" PRIu64
                      " not applied",
                      job, vm, e->epoch, off);
            goto out;
        }
    }
    rc = 0;
out:
    if (have_b)
        batch_builder_dispose(&b);
    free(chunk);
    return rc;
}

uint64_t *image_load_sums(const char *dir, const char *job, const char *vm,
                          const struct image_epoch *e, uint64_t ram_bytes,
                          struct vmckpt_error *err)
{
    char path[4200];
    uint64_t n = (ram_bytes + CHUNK - 1) / CHUNK, i;
    uint8_t *raw = malloc(n * 8);
    uint64_t *sums = calloc(n ? n : 1, sizeof(*sums));
    int fd;

    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".base.sum", dir, e->epoch);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (raw == NULL || sums == NULL || fd < 0 ||
        pread_all(fd, raw, n * 8, 0) < 0) {
        errprintf_errno(err, "%s/%s epoch %" PRIu64 ": %s", job, vm, e->epoch,
                        path);
        if (fd >= 0)
            close(fd);
        free(raw);
        free(sums);
        return NULL;
    }
    close(fd);
    for (i = 0; i < n; i++) {
        int k;

        for (k = 7; k >= 0; k--)
            sums[i] = sums[i] << 8 | raw[i * 8 + (size_t)k];
    }
    free(raw);
    return sums;
}

/* With manifest_mu held: load the manifest, find the chain of 'epoch'
 * (newest first) and open its page files and its state file. 1 when an
 * epoch of the chain is being folded in place: '*fold' 0 and '*gen' when
 * a fold is at work (wait for it with image_fold_wait), else that epoch
 * (a fold stopped part way: image_fold_finish); then again. */
static int image_read_open(const char *store, const char *dir, const char *job,
                           const char *vm, uint64_t epoch,
                           struct image_manifest *m,
                           const struct image_epoch **chain, size_t *np,
                           int *fds, uint64_t **sums, int *state_fd,
                           uint64_t *gen, uint64_t *fold,
                           struct vmckpt_error *err)
{
    const struct image_epoch *e;
    char path[4200];
    size_t n = 0, i;
    if (image_manifest_load(store, job, vm, m, err) < 0)
        return -1;
    for (e = image_manifest_find(m, epoch); e != NULL;
         e = e->parent ? image_manifest_find(m, e->parent) : NULL) {
        if (n == IMAGE_MAX_EPOCHS)
            break;
        chain[n++] = e;
        if (e->parent != 0 && image_manifest_find(m, e->parent) == NULL) {
            errno = ENOENT;
            return errprintf(err,
                             "%s/%s: epoch %" PRIu64 " needs epoch "
                             "%" PRIu64 ", which is not stored",
                             job, vm, e->epoch, e->parent);
        }
    }
    if (n == 0) {
        errno = ENOENT;
        return errprintf(err,
                         "%s/%s: no durable epoch %" PRIu64 " in this store",
                         job, vm, epoch);
    }
    for (i = 0; i < n; i++) /* a fold in place at work, or left part way */
        if (chain[i]->fold_from != 0) {
            *gen = 0;
            if (!image_fold_live(dir, chain[i], gen))
                *fold = chain[i]->epoch; /* for image_fold_finish */
            return 1;
        }
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/e%" PRIu64 ".%s", dir, chain[i]->epoch,
                 chain[i]->base ? "base" : "pages");
        sums[i] = NULL;
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0)
            errprintf_errno(err, "%s/%s epoch %" PRIu64 ": %s", job, vm,
                            chain[i]->epoch, path);
        else if (chain[i]->base &&
                 (sums[i] = image_load_sums(dir, job, vm, chain[i],
                                            m->ram_bytes, err)) == NULL) {
            close(fds[i]);
            fds[i] = -1;
        }
        if (fds[i] < 0) {
            while (i-- > 0) {
                close(fds[i]);
                free(sums[i]);
            }
            return -1;
        }
    }
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".state", dir, chain[0]->epoch);
    *state_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*state_fd < 0) {
        errprintf_errno(err, "%s/%s epoch %" PRIu64 ": %s", job, vm, epoch,
                        path);
        for (i = 0; i < n; i++) {
            close(fds[i]);
            free(sums[i]);
        }
        return -1;
    }
    for (i = 0; i < n; i++)
        if (chain[i]->base)
            image_base_readers(dir, 1);
    *np = n;
    return 0;
}

int image_read(const char *store, const char *job, const char *vm,
               uint64_t epoch,
               int (*batch_cb)(const Vmckpt__PageBatch *msg,
                               const struct batch_view *v, void *arg),
               int (*state_cb)(uint64_t offset, const void *data, size_t len,
                               void *arg),
               void *arg, struct vmckpt_error *err)
{
    struct image_manifest m;
    const struct image_epoch *chain[IMAGE_MAX_EPOCHS], *e;
    char dir[4096], path[4200];
    uint8_t *scratch = NULL, *buf = NULL;
    size_t n = 0, i;
    uint64_t off = 0, *sums[IMAGE_MAX_EPOCHS];
    int fd = -1, rc = -1, fds[IMAGE_MAX_EPOCHS];

    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    /* the manifest and the files it names are taken together: a fold or
     * retention may replace or remove them right after, and the open
     * descriptors keep reading what this manifest describes */
    for (i = 0;; i++) {
        uint64_t gen = 0, fold = 0;

        pthread_mutex_lock(&manifest_mu);
        rc = image_read_open(store, dir, job, vm, epoch, &m, chain, &n, fds,
                             sums, &fd, &gen, &fold, err);
        pthread_mutex_unlock(&manifest_mu);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        if (fold == 0)
            image_fold_wait(gen); /* (seconds at most: a delta's pages) */
        else if (i > 8 || image_fold_finish(store, job, vm, fold, err) < 0)
            return i > 8 ? errprintf(err,
                                     "%s/%s epoch %" PRIu64 ": still being "
                                     "folded after its fold was finished",
                                     job, vm, fold)
                         : -1;
    }
    rc = -1;
    scratch = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
    buf = malloc(1 << 20);
    if (scratch == NULL || buf == NULL) {
        errprintf_errno(err, "read %s/%s", job, vm);
        goto out;
    }
    for (i = n; i-- > 0;)
        if ((chain[i]->base
                 ? read_base(fds[i], sums[i], dir, job, vm, chain[i],
                             m.ram_bytes / BATCH_PAGE, batch_cb, arg, err)
                 : image_read_pages(fds[i], dir, job, vm, chain[i],
                                    m.ram_bytes / BATCH_PAGE, batch_cb, arg,
                                    scratch, err)) < 0)
            goto out;
    e = chain[0];
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".state", dir, e->epoch);
    {
        uint64_t sum;

        if (fd_xxh64(fd, &sum) < 0 || sum != e->state_xxh64) {
            errno = EBADMSG;
            errprintf(err,
                      "%s/%s epoch %" PRIu64 ": device state %s is "
                      "damaged (checksum mismatch)",
                      job, vm, epoch, path);
            goto out;
        }
    }
    while (off < e->state_bytes) {
        size_t len = e->state_bytes - off > (1 << 20)
                         ? (1 << 20)
                         : (size_t)(e->state_bytes - off);

        if (pread_all(fd, buf, len, off) < 0 ||
            state_cb(off, buf, len, arg) < 0) {
            errprintf(err, "%s/%s epoch %" PRIu64 ": device state at %" PRIu64,
                      job, vm, epoch, off);
            goto out;
        }
        off += len;
    }
    rc = 0;
out:
    pthread_mutex_lock(&manifest_mu);
    for (i = 0; i < n; i++)
        if (chain[i]->base)
            image_base_readers(dir, -1);
    pthread_mutex_unlock(&manifest_mu);
    for (i = 0; i < n; i++) {
        close(fds[i]);
        free(sums[i]);
    }
    close(fd);
    free(scratch);
    free(buf);
    return rc;
}

struct restore_ctx {
    int ram_fd, state_fd;
    uint64_t bytes;        /* of page data and state read */
    struct sealer *sealer; /* the job's key, or NULL */
    uint8_t *scratch;      /* a sealed batch opened */
    struct vmckpt_error err;
    uint8_t zero[BATCH_PAGE];
};

static int restore_batch(const Vmckpt__PageBatch *msg,
                         const struct batch_view *v, void *arg)
{
    struct restore_ctx *r = arg;
    struct batch_view clear;

    r->bytes += msg->data.len;
    if (!v->sealed && r->sealer != NULL) { /* a key: all of it is sealed */
        errno = EBADMSG;
        return errprintf(&r->err, "a clear batch in an epoch stored sealed: "
                                  "refused");
    }
    if (v->sealed) {
        if (r->sealer == NULL) {
            errno = ENOKEY;
            return errprintf(&r->err, "the epoch is sealed and no key came "
                                      "with the restore");
        }
        if (sealer_open_batch(r->sealer, msg, r->scratch, &clear, &r->err) < 0)
            return -1;
        v = &clear;
    }
    return batch_view_write(v, r->ram_fd, r->zero);
}

static int restore_state(uint64_t off, const void *data, size_t len, void *arg)
{
    struct restore_ctx *r = arg;

    r->bytes += len;
    return pwrite(r->state_fd, data, len, (off_t)off) == (ssize_t)len ? 0 : -1;
}

int image_restore(const char *store, const char *job, const char *vm,
                  uint64_t epoch, const struct seal_key *key, int ram_fd,
                  int state_fd, uint64_t *bytes_read, struct vmckpt_error *err)
{
    struct restore_ctx *r = calloc(1, sizeof(*r));
    int rc = -1;

    if (r == NULL)
        return errprintf_errno(err, "restore");
    r->ram_fd = ram_fd;
    r->state_fd = state_fd;
    if (key != NULL &&
        ((r->sealer = sealer_new(key, job, vm, err)) == NULL ||
         (r->scratch = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE)) == NULL)) {
        if (r->sealer != NULL)
            errprintf_errno(err, "restore");
        goto out;
    }
    rc =
        image_read(store, job, vm, epoch, restore_batch, restore_state, r, err);
    if (rc < 0 && r->err.text[0] != '\0') { /* where, and the cause */
        char where[sizeof(err->text)];

        snprintf(where, sizeof(where), "%s", err->text);
        errprintf(err, "%s: %s", where, r->err.text);
    }
out:
    if (bytes_read != NULL)
        *bytes_read = r->bytes;
    sealer_free(r->sealer);
    free(r->scratch);
    free(r);
    return rc;
}
