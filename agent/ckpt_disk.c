/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest disks' part of a checkpoint thread: see ckpt_disk.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/disk/disk.h"
#include "ckpt_disk.h"
#include "lib/util/log.h"
#include "lib/wire/batch.h"
#include "lib/wire/seal.h"

#define DCHUNK (1u << 20) /* the store's checksum unit */

struct ckpt_disks {
    struct vmm_vm *vm;
    struct disk_chain *c;
    uint64_t epoch, bytes, cut_us;
    int cut; /* the snapshot was taken */
    Vmckpt__DiskLayers dl[DISK_MAX], *dlp[DISK_MAX];
    uint64_t sizes[DISK_MAX][DISK_MAX_LAYERS + 1]; /* and a copied base */
};

/* The chain's QMP commands go through the guest's back end. */
static int monitor(void *arg, const char *cmd, struct json_t *args,
                   struct json_t **ret, struct vmckpt_error *err)
{
    struct vmm_vm *vm = arg;

    if (vm->ops->monitor == NULL) {
        errno = ENOTSUP;
        return errprintf(err, "the %s back end has no monitor", vm->where);
    }
    return vm->ops->monitor(vm->hv, cmd, args, ret, err);
}

int ckpt_disks_begin(struct vmm_vm *vm, uint64_t epoch, uint64_t committed,
                     struct ckpt_disks **out, struct vmckpt_error *err)
{
    struct ckpt_disks *d;

    *out = NULL;
    if (vm->spec->n_disks == 0)
        return 0;
    if (vm->disks == NULL) {
        errno = ENOENT;
        return errprintf(err,
                         "%s/%s has disks but no chain record (see the "
                         "agent's log): its checkpoints are refused",
                         vm->job, vm->name);
    }
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return errprintf_errno(err, "disk checkpoint");
    d->vm = vm;
    d->c = vm->disks;
    d->epoch = epoch;
    if (disk_check_bases(d->c, err) < 0 ||
        disk_merge(d->c, monitor, vm, committed, err) < 0 ||
        disk_prepare_cut(d->c, monitor, vm, err) < 0) {
        disk_cut_abandon(d->c, monitor, vm);
        free(d);
        return errprefix(err, "%s/%s", vm->job, vm->name);
    }
    *out = d;
    return 0;
}

unsigned ckpt_disks_count(const struct ckpt_disks *d)
{
    return d->c->ndisks;
}

int ckpt_disks_cut(struct ckpt_disks *d, struct vmckpt_error *err)
{
    if (disk_cut(d->c, monitor, d->vm, d->epoch, &d->cut_us, err) < 0)
        return errprefix(err, "%s/%s", d->vm->job, d->vm->name);
    d->cut = 1;
    return 0;
}

/* What a layer goes through: the sealer (NULL: clear) and the sink. */
struct chunk_out {
    struct sealer *s;
    ckpt_disk_chunk_fn *chunk;
    void *arg;
};

/* Layer file 'path' as disk 'k''s layer 'l' of the epoch: its size, and
 * every 1 MiB that is not all zeroes as a chunk (sealed in 'buf' when the
 * epoch is). */
static int send_layer(struct ckpt_disks *d, const char *path, unsigned k,
                      unsigned l, uint8_t *buf, const struct chunk_out *out,
                      struct vmckpt_error *err)
{
    Vmckpt__DiskChunk c = VMCKPT__DISK_CHUNK__INIT;
    uint8_t seal[SEAL_DISK_BYTES];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t off, size;
    off_t end;
    ssize_t n;

    if (fd < 0 || (end = lseek(fd, 0, SEEK_END)) < 0) {
        errprintf_errno(err, "disk %u layer %s", k, path);
        goto fail;
    }
    size = (uint64_t)end;
    d->sizes[k][l] = size;
    for (off = 0; off < size; off += DCHUNK) {
        size_t len = size - off < DCHUNK ? (size_t)(size - off) : DCHUNK;

        n = pread(fd, buf, len, (off_t)off);
        if (n != (ssize_t)len) {
            errprintf_errno(err, "disk %u: reading %s at %llu", k, path,
                            (unsigned long long)off);
            goto fail;
        }
        if (batch_bytes_are_zero(buf, len))
            continue;
        if (out->s != NULL) {
            if (sealer_disk_chunk(out->s, k, off, buf, len, seal, err) < 0)
                goto fail;
            c.seal.data = seal;
            c.seal.len = sizeof(seal);
        }
        c.disk = k;
        c.layer = l;
        c.offset = off;
        c.data.data = buf;
        c.data.len = len;
        c.xxh64 = batch_xxh64(buf, len);
        if (out->chunk(out->arg, &c, err) < 0)
            goto fail;
        d->dl[k].chunks++;
        d->bytes += len;
    }
    close(fd);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Whether layer 'y' goes in an epoch that is a delta of 'parent' (0:
 * full): every layer under the active one, or those frozen since. */
static int carried(const struct disk_layer *y, uint64_t parent)
{
    if (y->role == DISK_ACTIVE)
        return 0;
    return parent == 0 || (y->role == DISK_FROZEN && y->label > parent);
}

int ckpt_disks_send(struct ckpt_disks *d, uint64_t parent, struct sealer *s,
                    ckpt_disk_chunk_fn *chunk, void *arg,
                    Vmckpt__StreamEnd *end, struct vmckpt_error *err)
{
    const struct chunk_out out = {.s = s, .chunk = chunk, .arg = arg};
    uint8_t *buf = malloc(DCHUNK);
    char path[4200];
    unsigned k, i, l;

    if (buf == NULL)
        return errprintf_errno(err, "disk chunks");
    for (k = 0; k < d->c->ndisks; k++) {
        const struct disk_one *one = &d->c->d[k];

        vmckpt__disk_layers__init(&d->dl[k]);
        l = 0;
        /* base=copy: a full epoch starts with the base itself, so that
         * the store can give a restore the whole disk */
        if (parent == 0 && strcmp(one->base, "copy") == 0) {
            if (send_layer(d, one->path, k, l, buf, &out, err) < 0) {
                free(buf);
                return errprefix(err, "%s/%s epoch %llu: base", d->vm->job,
                                 d->vm->name, (unsigned long long)d->epoch);
            }
            l++;
        }
        for (i = 0; i < one->nlayers; i++) {
            if (!carried(&one->layers[i], parent))
                continue;
            disk_layer_path(d->c, &one->layers[i], path, sizeof(path));
            if (send_layer(d, path, k, l, buf, &out, err) < 0) {
                free(buf);
                return errprefix(err, "%s/%s epoch %llu", d->vm->job,
                                 d->vm->name, (unsigned long long)d->epoch);
            }
            l++;
        }
        d->dl[k].layer_bytes = d->sizes[k];
        d->dl[k].n_layer_bytes = l;
        d->dl[k].base_digest = one->digest;
        d->dlp[k] = &d->dl[k];
    }
    free(buf);
    end->disks = d->dlp;
    end->n_disks = d->c->ndisks;
    return 0;
}

uint64_t ckpt_disks_bytes(const struct ckpt_disks *d)
{
    return d->bytes;
}

uint64_t ckpt_disks_cut_us(const struct ckpt_disks *d)
{
    return d->cut_us;
}

void ckpt_disks_end(struct ckpt_disks *d)
{
    if (d == NULL)
        return;
    if (!d->cut)
        disk_cut_abandon(d->c, monitor, d->vm);
    free(d);
}
