/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A restore's disks: the layer files of the epoch, as a store sends them,
 * written into a new chain beside the guest's (DISK_DIR/JOB/.VM.restore),
 * each layer put over the one before it (the oldest over the base), an
 * empty acc and an active overlay on top; installed in the guest's place
 * just before its QEMU starts. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "disk.h"
#include "lib/qemu/qemu_img.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"

/* Restored layers a chain takes: room is left above them for acc, the
 * active layer, a frozen layer waiting for its commit and the overlay the
 * next cut prepares. */
#define RESTORED_MAX (DISK_MAX_LAYERS - 4)

struct disk_recv {
    struct disk_chain *c; /* dir: the new chain's own, until installed */
    char disk_dir[4096];
    char final[4096]; /* the guest's chain dir */
    uint64_t epoch;
    int fds[DISK_MAX][IMAGE_MAX_VIEW];
    /* per layer, which 1 MiB chunks came (a chunk twice is refused: with
     * another missing, the count at the end would still match) */
    uint8_t *seen[DISK_MAX][IMAGE_MAX_VIEW];
    size_t nseen[DISK_MAX][IMAGE_MAX_VIEW];
    int installed;
};

/* Note chunk 'off' of layer 'l' of disk 'k': 0, 1 when it came before,
 * -1 (ENOMEM). */
static int chunk_seen(struct disk_recv *r, unsigned k, unsigned l, uint64_t off)
{
    uint64_t i = off >> 20;
    size_t *n = &r->nseen[k][l];

    if (i >= *n) {
        size_t want = (size_t)i + 1 > 2 * *n ? (size_t)i + 1 : 2 * *n;
        uint8_t *p = realloc(r->seen[k][l], want);

        if (p == NULL)
            return -1;
        memset(p + *n, 0, want - *n);
        r->seen[k][l] = p;
        *n = want;
    }
    if (r->seen[k][l][i])
        return 1;
    r->seen[k][l][i] = 1;
    return 0;
}

struct disk_recv *disk_recv_open(const char *disk_dir, const char *qemu_img,
                                 const Vmckpt__VmSpec *spec, uint64_t epoch,
                                 struct vmckpt_error *err)
{
    struct disk_recv *r = calloc(1, sizeof(*r));
    char tmpname[140];
    unsigned k, l;

    if (r == NULL) {
        errprintf_errno(err, "disk restore");
        return NULL;
    }
    for (k = 0; k < DISK_MAX; k++)
        for (l = 0; l < IMAGE_MAX_VIEW; l++)
            r->fds[k][l] = -1;
    r->epoch = epoch;
    snprintf(r->disk_dir, sizeof(r->disk_dir), "%s", disk_dir);
    snprintf(tmpname, sizeof(tmpname), ".%s.restore", spec->name);
    r->c = disk_chain_plan(disk_dir, qemu_img, spec, err);
    if (r->c == NULL) {
        free(r);
        return NULL;
    }
    snprintf(r->final, sizeof(r->final), "%s", r->c->dir);
    snprintf(r->c->dir, sizeof(r->c->dir), "%s/%s/%s", disk_dir, spec->job,
             tmpname);
    disk_dir_remove(r->c->dir);
    if (daemon_mkdirs(r->c->dir, 0700, err) < 0) {
        disk_chain_destroy(r->c);
        free(r);
        return NULL;
    }
    return r;
}

/* Restored layer 'l' of disk 'k': its file in the new chain. */
static void layer_file(unsigned k, unsigned l, char *buf, size_t len)
{
    snprintf(buf, len, "r%u.%u.qcow2", k, l);
}

int disk_recv_chunk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                    const void *data, size_t len, uint64_t xxh64,
                    const uint8_t *seal, struct vmckpt_error *err)
{
    struct disk_recv *r = arg;
    char name[64], path[4200];
    int *fd;

    /* its callers checked the chunk against its checksum (a fetch as it
     * came, a local read against the layer's .sum) and opened it */
    (void)xxh64;
    if (seal != NULL) {
        errno = EPROTO;
        return errprintf(err,
                         "disk %u layer %u: a sealed chunk at %" PRIu64
                         " was not opened",
                         disk, layer, off);
    }
    if (disk >= r->c->ndisks || layer >= IMAGE_MAX_VIEW) {
        errno = EPROTO;
        return errprintf(err,
                         "disk %u layer %u: beyond the %u disks and %d "
                         "layers a restored chain holds",
                         disk, layer, r->c->ndisks, IMAGE_MAX_VIEW);
    }
    switch (chunk_seen(r, disk, layer, off)) {
    case -1:
        return errprintf_errno(err, "disk restore");
    case 1:
        errno = EPROTO;
        return errprintf(
            err, "disk %u layer %u: the chunk at %" PRIu64 " came twice", disk,
            layer, off);
    }
    fd = &r->fds[disk][layer];
    if (*fd < 0) {
        layer_file(disk, layer, name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", r->c->dir, name);
        *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (*fd < 0)
            return errprintf_errno(err, "%s", path);
    }
    if (pwrite(*fd, data, len, (off_t)off) != (ssize_t)len)
        return errprintf_errno(err, "disk %u layer %u: writing at %" PRIu64,
                               disk, layer, off);
    return 0;
}

/* Restored layer file 'l' of disk 'k', cut to its size and durable. */
static int finish_file(struct disk_recv *r, unsigned k, unsigned l,
                       uint64_t bytes, char *path, size_t len,
                       struct vmckpt_error *err)
{
    char name[64];
    int fd;

    layer_file(k, l, name, sizeof(name));
    snprintf(path, len, "%s/%s", r->c->dir, name);
    fd = r->fds[k][l];
    if (fd < 0) /* nothing but zeroes came: not a qcow2 file */
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0 || fsync(fd) < 0) {
        if (fd >= 0 && r->fds[k][l] < 0)
            close(fd);
        return errprintf_errno(err, "%s", path);
    }
    if (r->fds[k][l] < 0)
        close(fd);
    return 0;
}

/* More layers than a chain takes: each one after 'first' is put over it
 * and written into it (qemu-img commit), oldest first, so that 'first'
 * holds them all; the others go. */
static int collapse(struct disk_recv *r, unsigned k, unsigned first, unsigned n,
                    struct vmckpt_error *err)
{
    char into[64], name[64], path[4200];
    unsigned l;

    layer_file(k, first, into, sizeof(into));
    for (l = first + 1; l < n; l++) {
        layer_file(k, l, name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", r->c->dir, name);
        if (qemu_img_rebase_unsafe(r->c->qemu_img, path, into, "qcow2", err) <
                0 ||
            qemu_img_commit(r->c->qemu_img, path, err) < 0)
            return errprefix(err, "disk %u, restored layer %u", k, l);
        unlink(path);
    }
    log_info("%s/%s disk %u: %u restored layers written into one", r->c->job,
             r->c->vm, k, n - first);
    return 0;
}

/* The base here must be the one the guest ran on: its layers hold only
 * what the guest changed over it. 'path': the base to read (a copied
 * base's file before its chain is installed). */
static int check_digest(struct disk_recv *r, unsigned k, const char *path,
                        uint64_t want, struct vmckpt_error *err)
{
    struct disk_one *d = &r->c->d[k];
    uint64_t have;

    if (want == 0) /* not taken (an epoch of an older agent) */
        return 0;
    if (disk_base_digest(path, &have, err) < 0)
        return errprefix(err, "disk %u", k);
    if (have != want) {
        errno = ESTALE;
        if (strcmp(d->base, "copy") == 0)
            return errprintf(err,
                             "disk %u: the base image the store kept has "
                             "digest %016" PRIx64
                             ", the epoch says %016" PRIx64,
                             k, have, want);
        return errprintf(err,
                         "disk %u: base image %s on this host differs from "
                         "the one the guest ran on (digest %016" PRIx64
                         ", the image's %016" PRIx64 ")",
                         k, d->path, have, want);
    }
    d->digest = have;
    return 0;
}

/* base=copy: the restore's first layer of disk 'k' is the base itself.
 * It becomes the chain's base file (base<K>.<format>, in the chain's dir
 * once installed), checked like an administrator's base and by digest. */
static int copied_base(struct disk_recv *r, unsigned k, uint64_t want,
                       char *name, size_t len, struct vmckpt_error *err)
{
    struct disk_one *d = &r->c->d[k];
    char from[4200], to[4200], l0[64];

    layer_file(k, 0, l0, sizeof(l0));
    snprintf(name, len, "base%u.%s", k, d->format);
    snprintf(from, sizeof(from), "%s/%s", r->c->dir, l0);
    snprintf(to, sizeof(to), "%s/%s", r->c->dir, name);
    if (rename(from, to) < 0)
        return errprintf_errno(err, "disk %u: copied base %s", k, to);
    if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s", r->final, name) >=
        sizeof(d->path)) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "disk %u: copied base in %s", k, r->final);
    }
    if (disk_chain_check_base(r->c, k, to, err) < 0 ||
        check_digest(r, k, to, want, err) < 0)
        return -1;
    log_info("%s/%s disk %u: its base came with the image (base=copy)",
             r->c->job, r->c->vm, k);
    return 0;
}

/* Disk 'k''s restored layers as the bottom of its chain: each file cut
 * to its size and put over the layer before it (the first over the base;
 * relative names, so that the chain may move), then acc and active. With
 * base=copy the first of the 'n' layers is the base. */
static int build_disk(struct disk_recv *r, unsigned k, unsigned n,
                      const uint64_t *bytes, uint64_t want,
                      struct vmckpt_error *err)
{
    struct disk_one *d = &r->c->d[k];
    unsigned first = strcmp(d->base, "copy") == 0, l, kept;
    char path[4200], base[64];

    for (l = 0; l < n; l++)
        if (finish_file(r, k, l, bytes[l], path, sizeof(path), err) < 0)
            return -1;
    if (first ? copied_base(r, k, want, base, sizeof(base), err) < 0
              : check_digest(r, k, d->path, want, err) < 0)
        return -1;
    kept = n - first > RESTORED_MAX ? 1 : n - first;
    for (l = first; l < n; l++) {
        char name[64], below[64];

        layer_file(k, l, name, sizeof(name));
        layer_file(k, l - 1, below, sizeof(below));
        snprintf(path, sizeof(path), "%s/%s", r->c->dir, name);
        if (qemu_img_rebase_unsafe(r->c->qemu_img, path,
                                   l > first ? below
                                   : first   ? base
                                             : d->path,
                                   l > first ? "qcow2" : d->format, err) < 0)
            return errprefix(err, "disk %u, restored layer %u", k, l);
        if (kept == 1 && n - first > 1) /* the others go over the first */
            break;
    }
    if (kept == 1 && n - first > 1 && collapse(r, k, first, n, err) < 0)
        return -1;
    for (l = first; l < first + kept; l++) {
        struct disk_layer *y = &d->layers[d->nlayers];

        memset(y, 0, sizeof(*y));
        y->gen = ++d->next_gen;
        y->role = DISK_RESTORED;
        y->label = r->epoch;
        layer_file(k, l, y->file, sizeof(y->file));
        d->nlayers++;
    }
    if (disk_chain_add_overlay(r->c, k, DISK_ACC, err) < 0 ||
        disk_chain_add_overlay(r->c, k, DISK_ACTIVE, err) < 0)
        return -1;
    d->layers[d->nlayers - 2].label = r->epoch;
    return 0;
}

int disk_recv_finish(void *arg, const struct image_disk_sizes *sz,
                     struct vmckpt_error *err)
{
    struct disk_recv *r = arg;
    unsigned k;

    if (sz->ndisks != r->c->ndisks) {
        errno = EPROTO;
        return errprintf(err, "the image has %u disks, the guest's spec %u",
                         sz->ndisks, r->c->ndisks);
    }
    for (k = 0; k < sz->ndisks; k++) {
        if (sz->nlayers[k] == 0 || sz->nlayers[k] > IMAGE_MAX_VIEW) {
            errno = E2BIG;
            return errprintf(err,
                             "disk %u is made of %u layers at this epoch; a "
                             "restored chain holds 1 to %d",
                             k, sz->nlayers[k], IMAGE_MAX_VIEW);
        }
        if (build_disk(r, k, sz->nlayers[k], sz->bytes[k], sz->base[k], err) <
            0)
            return -1;
    }
    return disk_chain_save(r->c, err);
}

struct disk_chain *disk_recv_install(struct disk_recv *r,
                                     struct vmckpt_error *err)
{
    disk_dir_remove(r->final);
    if (rename(r->c->dir, r->final) < 0) {
        errprintf_errno(err, "disk chain %s", r->final);
        return NULL;
    }
    r->installed = 1;
    return disk_chain_load(r->disk_dir, r->c->qemu_img, r->c->job, r->c->vm,
                           err);
}

void disk_recv_close(struct disk_recv *r)
{
    unsigned k, l;

    if (r == NULL)
        return;
    for (k = 0; k < DISK_MAX; k++)
        for (l = 0; l < IMAGE_MAX_VIEW; l++) {
            if (r->fds[k][l] >= 0)
                close(r->fds[k][l]);
            free(r->seen[k][l]);
        }
    if (!r->installed)
        disk_dir_remove(r->c->dir);
    disk_chain_destroy(r->c);
    free(r);
}
