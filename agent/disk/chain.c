/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A guest's disk chains on its host: made at its start, recorded in a
 * text file replaced atomically, loaded again by an agent that takes the
 * guest over, removed when the guest is stopped for good. */
#define _GNU_SOURCE /* nftw's FTW_ACTIONRETVAL-free flags, O_DIRECTORY */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"
#include "lib/qemu/qemu_argv.h"
#include "lib/qemu/qemu_img.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"

#define RECORD       "chain"
#define RECORD_MAGIC "vmckpt-chain 1"

static const char *const role_names[] = {"restored", "acc", "frozen", "active"};

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) < 0 && errno != ENOENT)
        log_warn("cannot remove %s: %s", path, strerror(errno));
    return 0;
}

/* rm -r 'dir' (a chain's files only: no symlink is followed). */
static void remove_tree(const char *dir)
{
    struct stat st;

    if (lstat(dir, &st) == 0)
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void disk_node_name(unsigned k, const struct disk_layer *l, char *buf,
                    size_t len)
{
    snprintf(buf, len, "d%ug%u", k, l->gen);
}

void disk_layer_path(const struct disk_chain *c, const struct disk_layer *l,
                     char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", c->dir, l->file);
}

/* Check base 'd' (path, format as stated) and learn its size: a regular
 * file or block device we can read, of the stated format, with no backing
 * file of its own (the guest's chain is all the agent's). */
static int check_base(const char *qemu_img, unsigned k, struct disk_one *d,
                      struct vmckpt_error *err)
{
    struct qemu_img_info info;
    struct stat st;
    int fd;

    fd = open(d->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errprintf_errno(err, "disk %u: base image %s", k, d->path);
    if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return errprintf_errno(err, "disk %u: base image %s", k, d->path);
    }
    close(fd);
    /* probed, not told: a qcow2 file given as raw would show the guest
     * qcow2's own bytes, and be written through by no one */
    if (qemu_img_info(qemu_img, d->path, NULL, &info, err) < 0)
        return errprefix(err, "disk %u: base image %s", k, d->path);
    if (strcmp(info.format, d->format) != 0)
        return errprintf(err, "disk %u: base image %s is a %s image, not %s", k,
                         d->path, info.format, d->format);
    if (info.backing[0] != '\0')
        return errprintf(err,
                         "disk %u: base image %s has a backing file (%s): "
                         "give a self-contained image",
                         k, d->path, info.backing);
    if (info.virtual_size == 0)
        return errprintf(err, "disk %u: base image %s is empty", k, d->path);
    d->vsize = info.virtual_size;
    return 0;
}

int disk_chain_add_overlay(struct disk_chain *c, unsigned k,
                           enum disk_role role, struct vmckpt_error *err)
{
    struct disk_one *d = &c->d[k];
    struct disk_layer *l;
    char path[4200], below[4200];
    const char *below_fmt = "qcow2";

    if (d->nlayers == DISK_MAX_LAYERS) {
        errno = E2BIG;
        return errprintf(err, "disk %u: its chain has %d layers already", k,
                         DISK_MAX_LAYERS);
    }
    l = &d->layers[d->nlayers];
    memset(l, 0, sizeof(*l));
    l->gen = ++d->next_gen;
    l->role = role;
    snprintf(l->file, sizeof(l->file), "d%u.g%u.qcow2", k, l->gen);
    disk_layer_path(c, l, path, sizeof(path));
    /* the layer below by its name in the chain's dir: the chain may move
     * (a restore's is made beside the guest's, then put in its place) */
    if (d->nlayers == 0) {
        snprintf(below, sizeof(below), "%s", d->path);
        below_fmt = d->format;
    } else {
        snprintf(below, sizeof(below), "%s", d->layers[d->nlayers - 1].file);
    }
    if (qemu_img_create_overlay(c->qemu_img, path, below, below_fmt, d->vsize,
                                err) < 0)
        return errprefix(err, "disk %u", k);
    d->nlayers++;
    return 0;
}

static int copy_spec(struct disk_chain *c, const Vmckpt__VmSpec *spec,
                     struct vmckpt_error *err)
{
    size_t i;

    if (spec->n_disks > DISK_MAX) {
        errno = E2BIG;
        return errprintf(err, "%zu disks: a guest has at most %d",
                         spec->n_disks, DISK_MAX);
    }
    for (i = 0; i < spec->n_disks; i++) {
        const Vmckpt__DiskSpec *s = spec->disks[i];
        struct disk_one *d = &c->d[i];

        if (s->path[0] != '/' || strlen(s->path) >= sizeof(d->path) ||
            strpbrk(s->path, ", \t\r\n\"'\\") != NULL) {
            errno = EINVAL;
            return errprintf(err,
                             "disk %zu: the base image must be an absolute "
                             "path without ',', blanks or quotes",
                             i);
        }
        snprintf(d->path, sizeof(d->path), "%s", s->path);
        snprintf(d->format, sizeof(d->format), "%s",
                 s->format[0] ? s->format : "qcow2");
        snprintf(d->base, sizeof(d->base), "%s",
                 s->base_mode[0] ? s->base_mode : "shared");
        if ((strcmp(d->format, "raw") != 0 &&
             strcmp(d->format, "qcow2") != 0) ||
            (strcmp(d->base, "shared") != 0 && strcmp(d->base, "copy") != 0)) {
            errno = EINVAL;
            return errprintf(err,
                             "disk %zu: format %s / base %s: give "
                             "raw|qcow2 and shared|copy",
                             i, d->format, d->base);
        }
    }
    c->ndisks = (unsigned)spec->n_disks;
    return 0;
}

static struct disk_chain *chain_alloc(const char *disk_dir,
                                      const char *qemu_img, const char *job,
                                      const char *vm, struct vmckpt_error *err)
{
    struct disk_chain *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        errprintf_errno(err, "disk chain");
        return NULL;
    }
    snprintf(c->qemu_img, sizeof(c->qemu_img), "%s", qemu_img);
    snprintf(c->job, sizeof(c->job), "%s", job);
    snprintf(c->vm, sizeof(c->vm), "%s", vm);
    if ((size_t)snprintf(c->dir, sizeof(c->dir), "%s/%s/%s", disk_dir, job,
                         vm) >= sizeof(c->dir)) {
        errno = ENAMETOOLONG;
        errprintf_errno(err, "disk dir %s", disk_dir);
        free(c);
        return NULL;
    }
    return c;
}

struct disk_chain *disk_chain_plan(const char *disk_dir, const char *qemu_img,
                                   const Vmckpt__VmSpec *spec,
                                   struct vmckpt_error *err)
{
    struct disk_chain *c;
    unsigned k;

    c = chain_alloc(disk_dir, qemu_img, spec->job, spec->name, err);
    if (c == NULL)
        return NULL;
    if (copy_spec(c, spec, err) < 0)
        goto fail;
    /* a copied base comes with the restore's layers, not from this host */
    for (k = 0; k < c->ndisks; k++)
        if (strcmp(c->d[k].base, "copy") != 0 &&
            check_base(qemu_img, k, &c->d[k], err) < 0)
            goto fail;
    return c;
fail:
    free(c);
    return NULL;
}

int disk_chain_check_base(struct disk_chain *c, unsigned k, const char *path,
                          struct vmckpt_error *err)
{
    struct disk_one probe = c->d[k];

    snprintf(probe.path, sizeof(probe.path), "%s", path);
    if (check_base(c->qemu_img, k, &probe, err) < 0)
        return -1;
    c->d[k].vsize = probe.vsize;
    return 0;
}

struct disk_chain *disk_chain_create(const char *disk_dir, const char *qemu_img,
                                     const Vmckpt__VmSpec *spec,
                                     struct vmckpt_error *err)
{
    struct disk_chain *c;
    unsigned k;

    c = disk_chain_plan(disk_dir, qemu_img, spec, err);
    if (c == NULL)
        return NULL;
    for (k = 0; k < c->ndisks; k++)
        if (strcmp(c->d[k].base, "copy") == 0 &&
            disk_chain_check_base(c, k, c->d[k].path, err) < 0)
            goto fail;
    /* a new guest of this name: what an earlier one left is not its */
    remove_tree(c->dir);
    if (daemon_mkdirs(c->dir, 0700, err) < 0)
        goto fail;
    for (k = 0; k < c->ndisks; k++)
        if (disk_chain_add_overlay(c, k, DISK_ACC, err) < 0 ||
            disk_chain_add_overlay(c, k, DISK_ACTIVE, err) < 0)
            goto fail_files;
    if (disk_chain_save(c, err) < 0)
        goto fail_files;
    log_info("guest %s/%s: %u disk%s on its chain in %s", c->job, c->vm,
             c->ndisks, c->ndisks == 1 ? "" : "s", c->dir);
    return c;
fail_files:
    remove_tree(c->dir);
fail:
    free(c);
    return NULL;
}

void disk_dir_remove(const char *dir)
{
    remove_tree(dir);
}

/* Sweep one job's directory; 1 if it is left empty. */
static unsigned sweep_job(const char *disk_dir, const char *job,
                          disk_keep_fn *keep, void *arg)
{
    char path[4400];
    struct dirent *de;
    unsigned n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "%s/%s", disk_dir, job);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        /* a restore's .VM.restore that an earlier agent left: its
         * restore failed with it; a guest's chain no guest runs on */
        if (de->d_name[0] != '.' && keep(arg, job, de->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s/%s", disk_dir, job, de->d_name);
        log_info("disk chain %s: no guest of this agent runs on it, removed",
                 path);
        remove_tree(path);
        n++;
    }
    closedir(d);
    snprintf(path, sizeof(path), "%s/%s", disk_dir, job);
    (void)rmdir(path); /* only if empty */
    return n;
}

unsigned disk_dir_sweep(const char *disk_dir, disk_keep_fn *keep, void *arg)
{
    struct dirent *de;
    unsigned n = 0;
    DIR *d = opendir(disk_dir);

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n += sweep_job(disk_dir, de->d_name, keep, arg);
    closedir(d);
    return n;
}

void disk_chain_remove_at(const char *disk_dir, const char *job, const char *vm)
{
    struct disk_chain *c = chain_alloc(disk_dir, "", job, vm, NULL);

    disk_chain_remove(c);
    free(c);
}

int disk_chain_save(const struct disk_chain *c, struct vmckpt_error *err)
{
    char path[4200], tmp[4300];
    unsigned k, i;
    FILE *f;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", c->dir, RECORD);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    if (f == NULL)
        return errprintf_errno(err, "disk chain record %s", tmp);
    fprintf(f, "%s\n", RECORD_MAGIC);
    for (k = 0; k < c->ndisks; k++) {
        const struct disk_one *d = &c->d[k];

        fprintf(f,
                "disk %u format %s base %s vsize %" PRIu64
                " next %u digest %016" PRIx64 " stat %s path %s\n",
                k, d->format, d->base, d->vsize, d->next_gen, d->digest,
                d->stat[0] ? d->stat : "-", d->path);
        for (i = 0; i < d->nlayers; i++)
            fprintf(f, "layer %u %u %s %" PRIu64 " %s\n", k, d->layers[i].gen,
                    role_names[d->layers[i].role], d->layers[i].label,
                    d->layers[i].file);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        errprintf_errno(err, "writing disk chain record %s", tmp);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) < 0) {
        errprintf_errno(err, "writing disk chain record %s", path);
        unlink(tmp);
        return -1;
    }
    fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    return 0;
}

static int role_of(const char *s, enum disk_role *r)
{
    unsigned i;

    for (i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++)
        if (strcmp(s, role_names[i]) == 0) {
            *r = (enum disk_role)i;
            return 0;
        }
    return -1;
}

/* A layer's file name: a plain name in the chain's dir or one level
 * below (a restore's), no "..". */
static int file_ok(const char *s)
{
    const char *slash = strchr(s, '/');

    return s[0] != '\0' && s[0] != '.' && strlen(s) < DISK_FILE_MAX &&
           strstr(s, "..") == NULL &&
           (slash == NULL || strchr(slash + 1, '/') == NULL);
}

/* One line of the record into 'c'. 0, or -1 (malformed). */
static int parse_line(struct disk_chain *c, char *line)
{
    char fmt[16], base[16], role[16], file[256], path[1100], st[128];
    unsigned k, gen, next;
    uint64_t vsize, label, digest;
    struct disk_one *d;
    struct disk_layer *l;

    if (sscanf(line,
               "disk %u format %15s base %15s vsize %" SCNu64
               " next %u digest %" SCNx64 " stat %127s path %1099s",
               &k, fmt, base, &vsize, &next, &digest, st, path) == 8) {
        if (k != c->ndisks || k >= DISK_MAX || strlen(fmt) >= 8 ||
            strlen(base) >= 8 || path[0] != '/' || strlen(path) >= 1024 ||
            strlen(st) >= sizeof(c->d[0].stat))
            return -1;
        d = &c->d[k];
        d->digest = digest;
        snprintf(d->stat, sizeof(d->stat), "%s", strcmp(st, "-") ? st : "");
        snprintf(d->format, sizeof(d->format), "%s", fmt);
        snprintf(d->base, sizeof(d->base), "%s", base);
        snprintf(d->path, sizeof(d->path), "%s", path);
        d->vsize = vsize;
        d->next_gen = next;
        c->ndisks++;
        return 0;
    }
    if (sscanf(line, "layer %u %u %15s %" SCNu64 " %255s", &k, &gen, role,
               &label, file) == 5) {
        if (k + 1 != c->ndisks || c->d[k].nlayers == DISK_MAX_LAYERS ||
            gen == 0 || gen > c->d[k].next_gen || !file_ok(file))
            return -1;
        d = &c->d[k];
        l = &d->layers[d->nlayers];
        if (role_of(role, &l->role) < 0)
            return -1;
        l->gen = gen;
        l->label = label;
        snprintf(l->file, sizeof(l->file), "%s", file);
        d->nlayers++;
        return 0;
    }
    return -1;
}

/* Every disk ends in exactly one active layer, and has no other. */
static int chain_whole(const struct disk_chain *c)
{
    unsigned k, i;

    if (c->ndisks == 0)
        return 0;
    for (k = 0; k < c->ndisks; k++) {
        const struct disk_one *d = &c->d[k];

        if (d->nlayers == 0 || d->layers[d->nlayers - 1].role != DISK_ACTIVE)
            return 0;
        for (i = 0; i + 1 < d->nlayers; i++)
            if (d->layers[i].role == DISK_ACTIVE)
                return 0;
    }
    return 1;
}

struct disk_chain *disk_chain_load(const char *disk_dir, const char *qemu_img,
                                   const char *job, const char *vm,
                                   struct vmckpt_error *err)
{
    struct disk_chain *c = chain_alloc(disk_dir, qemu_img, job, vm, err);
    char path[4200], line[1400];
    unsigned n = 0;
    FILE *f;

    if (c == NULL)
        return NULL;
    snprintf(path, sizeof(path), "%s/%s", c->dir, RECORD);
    f = fopen(path, "re");
    if (f == NULL) {
        errprintf_errno(err, "disk chain record %s", path);
        free(c);
        return NULL;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        n++;
        if (n == 1 ? strcmp(line, RECORD_MAGIC) != 0
                   : parse_line(c, line) < 0) {
            fclose(f);
            errno = EINVAL;
            errprintf(err, "disk chain record %s: line %u is malformed", path,
                      n);
            free(c);
            return NULL;
        }
    }
    fclose(f);
    if (!chain_whole(c)) {
        errno = EINVAL;
        errprintf(err, "disk chain record %s: a disk without its active layer",
                  path);
        free(c);
        return NULL;
    }
    return c;
}

void disk_chain_remove(struct disk_chain *c)
{
    char parent[4200], *slash;

    if (c == NULL)
        return;
    remove_tree(c->dir);
    /* DISK_DIR/JOB goes with its last guest */
    snprintf(parent, sizeof(parent), "%s", c->dir);
    slash = strrchr(parent, '/');
    if (slash != NULL) {
        *slash = '\0';
        (void)rmdir(parent);
    }
}

void disk_chain_destroy(struct disk_chain *c)
{
    free(c);
}

struct disk_argv {
    struct qemu_disk disks[DISK_MAX];
    struct qemu_layer layers[DISK_MAX][DISK_MAX_LAYERS + 1];
    char paths[DISK_MAX][DISK_MAX_LAYERS + 1][4200];
    char nodes[DISK_MAX][DISK_MAX_LAYERS + 1][32];
    size_t n;
};

struct disk_argv *disk_argv_create(const struct disk_chain *c,
                                   struct vmckpt_error *err)
{
    struct disk_argv *a = calloc(1, sizeof(*a));
    unsigned k, i;

    if (a == NULL) {
        errprintf_errno(err, "disk arguments");
        return NULL;
    }
    for (k = 0; k < c->ndisks; k++) {
        const struct disk_one *d = &c->d[k];
        struct qemu_layer *q = a->layers[k];

        /* the base first: read-only, no chain of its own */
        snprintf(a->paths[k][0], sizeof(a->paths[k][0]), "%s", d->path);
        snprintf(a->nodes[k][0], sizeof(a->nodes[k][0]), "d%ub", k);
        q[0].path = a->paths[k][0];
        q[0].format = d->format;
        q[0].node = a->nodes[k][0];
        q[0].read_only = 1;
        for (i = 0; i < d->nlayers; i++) {
            disk_layer_path(c, &d->layers[i], a->paths[k][i + 1],
                            sizeof(a->paths[k][i + 1]));
            disk_node_name(k, &d->layers[i], a->nodes[k][i + 1],
                           sizeof(a->nodes[k][i + 1]));
            q[i + 1].path = a->paths[k][i + 1];
            q[i + 1].format = "qcow2";
            q[i + 1].node = a->nodes[k][i + 1];
            /* acc is written by merges (block-commit into it) */
            q[i + 1].read_only = d->layers[i].role != DISK_ACTIVE &&
                                 d->layers[i].role != DISK_ACC;
        }
        a->disks[k].layers = q;
        a->disks[k].nlayers = d->nlayers + 1;
        a->disks[k].index = k;
    }
    a->n = c->ndisks;
    return a;
}

const struct qemu_disk *disk_argv_disks(const struct disk_argv *a, size_t *n)
{
    *n = a->n;
    return a->disks;
}

void disk_argv_destroy(struct disk_argv *a)
{
    free(a);
}
