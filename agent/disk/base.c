/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A disk's base image is the same file wherever the guest runs: its
 * digest (the XXH64 of the XXH64s of its every 1 MiB) is taken at the
 * guest's first checkpoint, checked again whenever the file's stat
 * changed, carried with each epoch to the store, and checked on the host
 * that restores the guest. */
#define _GNU_SOURCE /* posix_fadvise flags */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "lib/util/log.h"
#include "lib/wire/batch.h"

#define UNIT (1u << 20)
#define READ (8u << 20)

int disk_base_digest(const char *path, uint64_t *out, struct vmckpt_error *err)
{
    struct batch_hash *h = batch_hash_new();
    uint8_t *buf = malloc(READ);
    uint64_t off = 0, sum;
    ssize_t n;
    size_t i;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || h == NULL || buf == NULL) {
        errprintf_errno(err, "base image %s", path);
        goto fail;
    }
    for (;;) {
        n = pread(fd, buf, READ, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errprintf_errno(err, "reading base image %s", path);
            goto fail;
        }
        if (n == 0)
            break;
        for (i = 0; i < (size_t)n; i += UNIT) {
            size_t len = (size_t)n - i < UNIT ? (size_t)n - i : UNIT;

            sum = batch_xxh64(buf + i, len);
            batch_hash_update(h, &sum, sizeof(sum));
        }
        /* a base is read once: it need not stay in the page cache */
        (void)posix_fadvise(fd, (off_t)off, n, POSIX_FADV_DONTNEED);
        off += (uint64_t)n;
    }
    *out = batch_hash_done(h);
    free(buf);
    close(fd);
    return 0;
fail:
    if (h != NULL)
        (void)batch_hash_done(h);
    free(buf);
    if (fd >= 0)
        close(fd);
    return -1;
}

/* What identifies the file's content cheaply: device, inode, size and
 * both times. */
static int stat_key(const char *path, char *buf, size_t len,
                    struct vmckpt_error *err)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return errprintf_errno(err, "base image %s", path);
    snprintf(buf, len, "%llx:%llx:%llx:%lld.%09ld:%lld.%09ld",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec,
             st.st_ctim.tv_nsec);
    return 0;
}

int disk_check_bases(struct disk_chain *c, struct vmckpt_error *err)
{
    char key[sizeof(c->d[0].stat)];
    uint64_t digest;
    unsigned k;
    int changed = 0;

    for (k = 0; k < c->ndisks; k++) {
        struct disk_one *d = &c->d[k];

        if (stat_key(d->path, key, sizeof(key), err) < 0)
            return errprefix(err, "disk %u", k);
        if (d->digest != 0 && strcmp(key, d->stat) == 0)
            continue;
        if (disk_base_digest(d->path, &digest, err) < 0)
            return errprefix(err, "disk %u", k);
        if (d->digest != 0 && digest != d->digest) {
            errno = ESTALE;
            return errprintf(err,
                             "disk %u: base image %s changed since the guest "
                             "started (digest %016" PRIx64 ", now %016" PRIx64
                             "): its disks cannot be checkpointed",
                             k, d->path, d->digest, digest);
        }
        if (d->digest == 0)
            log_info("%s/%s disk %u: base image %s, digest %016" PRIx64, c->job,
                     c->vm, k, d->path, digest);
        d->digest = digest;
        snprintf(d->stat, sizeof(d->stat), "%s", key);
        changed = 1;
    }
    return changed ? disk_chain_save(c, err) : 0;
}
