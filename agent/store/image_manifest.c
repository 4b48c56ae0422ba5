/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The manifest of a VM's images (docs/store.md, 'Manifest'): the durable
 * epochs, read and replaced atomically. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "image_int.h"

int image_manifest_load(const char *store, const char *job, const char *vm,
                        struct image_manifest *m, struct vmckpt_error *err)
{
    /* a disks line with 8 disks and 24 lent epochs is ~1.3 KiB */
    char dir[4096], path[4200], line[4096];
    unsigned lineno = 0;
    FILE *f;

    memset(m, 0, sizeof(*m));
    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/manifest", dir);
    f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : errprintf_errno(err, "%s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        struct image_epoch e;

        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f))
            goto bad; /* longer than any line the store writes */
        if (lineno == 1) {
            if (sscanf(line, "vmckpt-store 1 ram_bytes %" SCNu64,
                       &m->ram_bytes) != 1)
                goto bad;
            continue;
        }
        if (strncmp(line, "disks ", 6) == 0) {
            if (image_disk_parse(m, line) < 0)
                goto bad;
            continue;
        }
        memset(&e, 0, sizeof(e));
        if (sscanf(line,
                   "epoch %" SCNu64 " parent %" SCNu64 " pages %" SCNu64
                   " state %" SCNu64 " state_xxh64 %" SCNx64 " base %d",
                   &e.epoch, &e.parent, &e.pages_bytes, &e.state_bytes,
                   &e.state_xxh64, &e.base) < 5 ||
            m->n == IMAGE_MAX_EPOCHS || (e.base != 0 && e.base != 1) ||
            (e.base && e.parent != 0))
            goto bad;
        e.sealed = strstr(line, " sealed 1") != NULL;
        if (strstr(line, " fold ") != NULL &&
            (sscanf(strstr(line, " fold "), " fold %" SCNu64, &e.fold_from) !=
                 1 ||
             !e.base || e.fold_from == 0 || e.fold_from >= e.epoch))
            goto bad;
        m->e[m->n++] = e;
    }
    fclose(f);
    return 0;
bad:
    fclose(f);
    errno = EINVAL;
    return errprintf(err, "%s:%u: malformed manifest line", path, lineno);
}

const struct image_epoch *image_manifest_find(const struct image_manifest *m,
                                              uint64_t epoch)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        if (m->e[i].epoch == epoch)
            return &m->e[i];
    return NULL;
}

/* Replace the manifest with 'm': write, fsync, rename, fsync dir. */
int manifest_save(const char *dir, const struct image_manifest *m,
                  struct vmckpt_error *err)
{
    char tmp[4200], path[4200];
    FILE *f;
    size_t i;

    snprintf(tmp, sizeof(tmp), "%s/manifest.tmp", dir);
    snprintf(path, sizeof(path), "%s/manifest", dir);
    f = fopen(tmp, "we");
    if (f == NULL)
        return errprintf_errno(err, "%s", tmp);
    fprintf(f, "vmckpt-store 1 ram_bytes %" PRIu64 "\n", m->ram_bytes);
    for (i = 0; i < m->n; i++) {
        fprintf(f,
                "epoch %" PRIu64 " parent %" PRIu64 " pages %" PRIu64
                " state %" PRIu64 " state_xxh64 %016" PRIx64 "%s%s",
                m->e[i].epoch, m->e[i].parent, m->e[i].pages_bytes,
                m->e[i].state_bytes, m->e[i].state_xxh64,
                m->e[i].base ? " base 1" : "",
                m->e[i].sealed ? " sealed 1" : "");
        if (m->e[i].fold_from != 0)
            fprintf(f, " fold %" PRIu64, m->e[i].fold_from);
        fputc('\n', f);
        image_disk_print(f, &m->e[i]);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        errprintf_errno(err, "%s", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0 || fsync_dir(dir) != 0) {
        errprintf_errno(err, "%s", path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

int manifest_save_epoch(const char *store, const char *job, const char *vm,
                        const char *dir, const struct image_manifest *m,
                        uint64_t epoch, struct vmckpt_error *err)
{
    const struct image_epoch *want = image_manifest_find(m, epoch), *now;
    struct image_manifest cur;
    int saved;

    if (manifest_save(dir, m, err) == 0)
        return 0;
    saved = errno;
    if (want != NULL && image_manifest_load(store, job, vm, &cur, NULL) == 0 &&
        (now = image_manifest_find(&cur, epoch)) != NULL &&
        now->parent == want->parent && now->base == want->base &&
        now->fold_from == want->fold_from)
        return 0;
    errno = saved;
    return -1;
}
