/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest disks in the image store (docs/store.md, 'Disks'): per epoch and
 * disk the layer files it carried, e<N>.d<K>.l<I> (byte copies of the
 * qcow2 overlays the guest's host froze at its cuts) with the XXH64 of
 * every 1 MiB in e<N>.d<K>.l<I>.sum (and, sealed, the nonce and tag of
 * every 1 MiB in e<N>.d<K>.l<I>.seal); the manifest's disks lines; the
 * layers an epoch's disk is made of (its chain's, oldest first); what a
 * fold keeps and what may go. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_int.h"

/* A layer's largest size: far past any disk a guest has. */
#define LAYER_MAX_BYTES (1ULL << 42)

/* ---- the manifest's lines ------------------------------------------- */

void image_disk_print(FILE *f, const struct image_epoch *e)
{
    unsigned k, i;

    if (e->ndisks == 0)
        return;
    fprintf(f, "disks %" PRIu64 " %u", e->epoch, e->ndisks);
    for (k = 0; k < e->ndisks; k++)
        fprintf(f, " %u", e->disk_layers[k]);
    fprintf(f, " %u", e->ninherit);
    for (i = 0; i < e->ninherit; i++) {
        /* "m<X>": merged files */
        fprintf(f, " %s%" PRIu64,
                e->inherit_layers[i][0] & IMAGE_INHERIT_MERGED ? "m" : "",
                e->inherit[i]);
        for (k = 0; k < e->ndisks; k++)
            fprintf(f, " %u",
                    e->inherit_layers[i][k] & ~IMAGE_INHERIT_MERGED & 0xff);
    }
    fprintf(f, " bases");
    for (k = 0; k < e->ndisks; k++)
        fprintf(f, " %016" PRIx64, e->disk_base[k]);
    fputc('\n', f);
}

static int next_u64(char **p, uint64_t *v)
{
    char *end;

    errno = 0;
    *v = strtoull(*p, &end, 10);
    if (end == *p || errno != 0 || (*end != ' ' && *end != '\n' && *end))
        return -1;
    *p = end;
    return 0;
}

/* 'n' layer counts, one per disk, into 'out'. */
static int parse_counts(char **p, unsigned n, uint8_t *out)
{
    uint64_t v;
    unsigned k;

    for (k = 0; k < n; k++) {
        if (next_u64(p, &v) < 0 || v > IMAGE_MAX_LAYERS)
            return -1;
        out[k] = (uint8_t)v;
    }
    return 0;
}

/* An inherit entry: "<X> <counts>", or "m<X> <counts>" (merged files, a
 * count of 0 or 1 per disk). */
static int parse_inherit(char **p, struct image_epoch *e, unsigned i)
{
    int merged = (*p)[0] == ' ' && (*p)[1] == 'm';
    unsigned k;

    if (merged) {
        (*p) += 2;
        if (**p < '0' || **p > '9')
            return -1;
    }
    if (next_u64(p, &e->inherit[i]) < 0 || e->inherit[i] >= e->epoch ||
        (i > 0 && e->inherit[i] <= e->inherit[i - 1]) ||
        parse_counts(p, e->ndisks, e->inherit_layers[i]) < 0)
        return -1;
    for (k = 0; merged && k < e->ndisks; k++) {
        if (e->inherit_layers[i][k] > 1)
            return -1;
        e->inherit_layers[i][k] |= IMAGE_INHERIT_MERGED;
    }
    return 0;
}

int image_disk_parse(struct image_manifest *m, char *line)
{
    struct image_epoch *e = m->n > 0 ? &m->e[m->n - 1] : NULL;
    uint64_t epoch, n;
    char *p = line + 6;
    unsigned i;

    if (strncmp(line, "disks ", 6) != 0 || e == NULL || e->ndisks != 0 ||
        next_u64(&p, &epoch) < 0 || epoch != e->epoch || next_u64(&p, &n) < 0 ||
        n == 0 || n > IMAGE_MAX_DISKS)
        return -1;
    e->ndisks = (uint8_t)n;
    if (parse_counts(&p, e->ndisks, e->disk_layers) < 0 ||
        next_u64(&p, &n) < 0 || n > IMAGE_MAX_INHERIT ||
        (n > 0 && e->parent != 0))
        return -1;
    e->ninherit = (uint8_t)n;
    for (i = 0; i < n; i++)
        if (parse_inherit(&p, e, i) < 0)
            return -1;
    if (strncmp(p, " bases", 6) != 0)
        return -1;
    p += 6;
    for (i = 0; i < e->ndisks; i++) {
        char *end;

        errno = 0;
        e->disk_base[i] = strtoull(p, &end, 16);
        if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end))
            return -1;
        p = end;
    }
    return *p == '\0' || *p == '\n' ? 0 : -1;
}

/* ---- which files an epoch's disk is made of --------------------------- */

/* The epochs whose own layers make up 'e''s disks, oldest first, with
 * their layer counts per disk, into 'v' (an entry of merged files:
 * 'merged', its counts 0 or 1). Their number, or -1 if the chain is
 * broken or its disks differ. */
struct view {
    uint64_t epoch;
    int merged;
    uint8_t layers[IMAGE_MAX_DISKS];
};

/* The name of layer 'l' of disk 'k' of view entry 'v'. */
static void view_name(char *buf, size_t len, const struct view *v, unsigned k,
                      unsigned l)
{
    if (v->merged)
        snprintf(buf, len, "e%" PRIu64 ".d%u.m", v->epoch, k);
    else
        snprintf(buf, len, "e%" PRIu64 ".d%u.l%u", v->epoch, k, l);
}

static int view_epochs(const struct image_manifest *m,
                       const struct image_epoch *e, struct view *v)
{
    const struct image_epoch *chain[IMAGE_MAX_EPOCHS];
    size_t n = 0, i;
    int c = 0;

    while (e != NULL && n < IMAGE_MAX_EPOCHS) {
        chain[n++] = e;
        if (e->parent == 0)
            break;
        e = image_manifest_find(m, e->parent);
    }
    if (e == NULL || n == 0 || chain[n - 1]->parent != 0)
        return -1;
    for (i = 0; i < chain[n - 1]->ninherit; i++, c++) {
        unsigned k;

        v[c].epoch = chain[n - 1]->inherit[i];
        v[c].merged =
            (chain[n - 1]->inherit_layers[i][0] & IMAGE_INHERIT_MERGED) != 0;
        for (k = 0; k < IMAGE_MAX_DISKS; k++)
            v[c].layers[k] = chain[n - 1]->inherit_layers[i][k] &
                             ~IMAGE_INHERIT_MERGED & 0xff;
    }
    for (i = n; i-- > 0; c++) {
        if (chain[i]->ndisks != chain[0]->ndisks)
            return -1;
        v[c].epoch = chain[i]->epoch;
        v[c].merged = 0;
        memcpy(v[c].layers, chain[i]->disk_layers, sizeof(v[c].layers));
    }
    return c;
}

/* The files of disk 'k' a merge of the lent entries 'v' (n of them)
 * takes: all but the very first (with base=copy, the base itself). Their
 * number, or -1 past IMAGE_MAX_VIEW. */
static int merge_sources(const struct view *v, int n, unsigned k,
                         char (*names)[64])
{
    int i, c = 0;
    unsigned l;

    for (i = 0; i < n; i++)
        for (l = i == 0; l < v[i].layers[k]; l++) {
            if (c == IMAGE_MAX_VIEW)
                return -1;
            view_name(names[c++], sizeof(names[0]), &v[i], k, l);
        }
    return c;
}

/* 1 if 'm' names the merged files of epoch 'x' (a sibling's fold made
 * them, of the same layers). */
static int merged_named(const struct image_manifest *m, uint64_t x)
{
    size_t i, j;

    for (i = 0; i < m->n; i++)
        for (j = 0; j < m->e[i].ninherit; j++)
            if (m->e[i].inherit[j] == x &&
                (m->e[i].inherit_layers[j][0] & IMAGE_INHERIT_MERGED))
                return 1;
    return 0;
}

static void merged_unlink(const char *dir, uint64_t x, unsigned k)
{
    char path[4400];
    int saved = errno;

    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".d%u.m", dir, x, k);
    unlink(path);
    snprintf(path, sizeof(path), "%s/e%" PRIu64 ".d%u.m.sum", dir, x, k);
    unlink(path);
    errno = saved;
}

/* The lent entries 'v' ('n') of 'e''s disks become two: the first layer
 * of each disk as it is, then e<X>.d<K>.m, every other layer merged (X:
 * the newest lent epoch). */
static int merge_lent(const char *dir, const struct image_manifest *m,
                      struct image_epoch *e, const struct view *v, int n,
                      struct vmckpt_error *err)
{
    char names[IMAGE_MAX_VIEW][64], merged[64];
    const char *src[IMAGE_MAX_VIEW];
    uint64_t x = v[n - 1].epoch;
    uint8_t count[IMAGE_MAX_DISKS];
    unsigned k, made = 0;
    int c, i, reuse = merged_named(m, x);

    errno = ENOTSUP;
    for (k = 0; k < e->ndisks; k++)
        if (v[0].merged || v[n - 1].merged || v[0].layers[k] == 0)
            return errprintf(err, "disk %u: no first layer of its own", k);
    for (k = 0; k < e->ndisks; k++) {
        c = merge_sources(v, n, k, names);
        if (c < 0) {
            errno = E2BIG;
            errprintf(err, "disk %u: over %d layers", k, IMAGE_MAX_VIEW);
            goto fail;
        }
        count[k] = c > 0;
        if (c == 0 || reuse)
            continue;
        for (i = 0; i < c; i++)
            src[i] = names[i];
        snprintf(merged, sizeof(merged), "e%" PRIu64 ".d%u.m", x, k);
        if (image_disk_merge(dir, src, (unsigned)c, merged, err) < 0)
            goto fail;
        made |= 1U << k;
    }
    e->inherit[0] = v[0].epoch;
    e->inherit[1] = x;
    for (k = 0; k < e->ndisks; k++) {
        e->inherit_layers[0][k] = 1;
        e->inherit_layers[1][k] = count[k] | IMAGE_INHERIT_MERGED;
    }
    e->ninherit = 2;
    return 0;
fail:
    for (k = 0; k < e->ndisks; k++)
        if (made & 1U << k)
            merged_unlink(dir, x, k);
    return -1;
}

int image_disk_fold(const char *dir, const struct image_manifest *m,
                    struct image_epoch *e, struct vmckpt_error *err)
{
    struct view v[IMAGE_MAX_INHERIT + IMAGE_MAX_EPOCHS];
    int n, i;

    if (e->ndisks == 0 || e->parent == 0)
        return 0;
    n = view_epochs(m, e, v);
    if (n < 0) {
        errno = EINVAL;
        return errprintf(err, "epoch %" PRIu64 ": its chain is broken",
                         e->epoch);
    }
    if (n - 1 > IMAGE_MERGE_FROM) {
        if (merge_lent(dir, m, e, v, n - 1, err) == 0)
            return 0;
        if (errno != ENOTSUP || n - 1 > IMAGE_MAX_INHERIT)
            return errprefix(err,
                             "epoch %" PRIu64 ": its disks are made of the "
                             "layers of %d epochs",
                             e->epoch, n);
        /* layers it cannot merge are lent as they are, up to the limit */
    }
    if (n - 1 > IMAGE_MAX_INHERIT) {
        errno = E2BIG;
        return errprintf(err,
                         "epoch %" PRIu64 ": its disks are made of the layers "
                         "of %d epochs, over the %d a folded epoch keeps",
                         e->epoch, n, IMAGE_MAX_INHERIT + 1);
    }
    /* the layers stay where they are; the folded epoch names them (a
     * merged entry stays merged: its files are e<X>.d<K>.m) */
    for (i = 0; i + 1 < n; i++) {
        unsigned k;

        e->inherit[i] = v[i].epoch;
        memset(e->inherit_layers[i], 0, sizeof(e->inherit_layers[i]));
        for (k = 0; k < e->ndisks; k++)
            e->inherit_layers[i][k] =
                (uint8_t)(v[i].layers[k] |
                          (v[i].merged ? IMAGE_INHERIT_MERGED : 0));
    }
    e->ninherit = (uint8_t)(n - 1);
    return 0;
}

/* 1 if layer 'l' of disk 'k' of epoch 'x' (or, 'merged', the merged
 * file e<X>.d<K>.m) is still named by 'm'. */
static int file_needed(const struct image_manifest *m, uint64_t x, unsigned k,
                       unsigned l, int merged)
{
    size_t i, j;

    if (k >= IMAGE_MAX_DISKS)
        return 1; /* no file of the store's: left alone */
    for (i = 0; i < m->n; i++) {
        if (m->e[i].epoch == x && !merged)
            return 1;
        for (j = 0; j < m->e[i].ninherit; j++) {
            unsigned c = m->e[i].inherit_layers[j][k];

            if (m->e[i].inherit[j] == x &&
                ((c & IMAGE_INHERIT_MERGED) != 0) == merged &&
                (c & ~IMAGE_INHERIT_MERGED) > (merged ? 0 : l))
                return 1;
        }
    }
    return 0;
}

/* A layer file's name: e<X>.d<K>.l<I> or e<X>.d<K>.m (merged), alone or
 * with ".sum" or ".seal"; a merged one's ".tmp" and ".tmp.sum" too (only a fold
 * writes them, under manifest_mu: '*tmp' set). 0 for any other name. */
static int layer_file_name(const char *name, uint64_t *x, unsigned *k,
                           unsigned *l, int *merged, int *tmp)
{
    const char *rest;
    int used = 0;

    *l = 0;
    *merged = *tmp = 0;
    if (sscanf(name, "e%" SCNu64 ".d%u.l%u%n", x, k, l, &used) != 3 ||
        used == 0) {
        used = 0;
        if (sscanf(name, "e%" SCNu64 ".d%u.m%n", x, k, &used) != 2 || used == 0)
            return 0;
        *merged = 1;
    }
    rest = name + used;
    if (*rest == '\0' || strcmp(rest, ".sum") == 0 ||
        strcmp(rest, ".seal") == 0)
        return 1;
    *tmp =
        *merged && (strcmp(rest, ".tmp") == 0 || strcmp(rest, ".tmp.sum") == 0);
    return *tmp;
}

void image_disk_gc(const char *dir, const struct image_manifest *m)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[4400];
    uint64_t x;
    unsigned k, l;
    int merged, tmp;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        /* committed layers and their sums only, never an epoch's .tmp
         * (a merge's .tmp: a fold's that failed, under this lock too) */
        if (!layer_file_name(de->d_name, &x, &k, &l, &merged, &tmp) ||
            (!tmp && file_needed(m, x, k, l, merged)))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

/* ---- writing an epoch's layers ---------------------------------------- */

struct disk_layer_in {
    int fd;
    int seal_fd; /* the nonce and tag of sealed chunks, per 1 MiB */
    /* the one chunk shorter than CHUNK (the file's end): its index + 1
     * (0: none yet) and length */
    size_t short_at, short_len;
    uint64_t *sums; /* per 1 MiB; 0 with have[i] unset: not received */
    uint8_t *have;
    size_t nsums;
};

struct image_disks_in {
    unsigned ndisks;
    int sealed; /* -1: no chunk yet; else whether they are (all alike) */
    uint64_t chunks[IMAGE_MAX_DISKS];
    struct disk_layer_in l[IMAGE_MAX_DISKS][IMAGE_MAX_LAYERS];
};

static void layer_name(char *buf, size_t len, const char *dir, uint64_t epoch,
                       unsigned k, unsigned l, const char *suffix)
{
    snprintf(buf, len, "%s/e%" PRIu64 ".d%u.l%u%s", dir, epoch, k, l, suffix);
}

struct image_disks_in *image_disks_open(unsigned ndisks,
                                        struct vmckpt_error *err)
{
    struct image_disks_in *in;
    unsigned k, l;

    if (ndisks > IMAGE_MAX_DISKS) {
        errno = E2BIG;
        errprintf(err, "%u disks: a guest has at most %d", ndisks,
                  IMAGE_MAX_DISKS);
        return NULL;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        errprintf_errno(err, "disk writer");
        return NULL;
    }
    in->ndisks = ndisks;
    in->sealed = -1;
    for (k = 0; k < IMAGE_MAX_DISKS; k++)
        for (l = 0; l < IMAGE_MAX_LAYERS; l++)
            in->l[k][l].fd = in->l[k][l].seal_fd = -1;
    return in;
}

/* Grow layer 'y''s checksum table to hold chunk 'i'. */
static int sums_room(struct disk_layer_in *y, size_t i)
{
    size_t n = y->nsums ? y->nsums : 16;
    uint64_t *s;
    uint8_t *h;

    if (i < y->nsums)
        return 0;
    while (n <= i)
        n *= 2;
    s = realloc(y->sums, n * sizeof(*s));
    if (s == NULL)
        return -1;
    y->sums = s;
    h = realloc(y->have, n);
    if (h == NULL)
        return -1;
    y->have = h;
    memset(y->sums + y->nsums, 0, (n - y->nsums) * sizeof(*s));
    memset(y->have + y->nsums, 0, n - y->nsums);
    y->nsums = n;
    return 0;
}

/* A sealed chunk's nonce and tag at its place in the layer's .seal. */
static int seal_put(struct disk_layer_in *y, const char *dir, uint64_t epoch,
                    const Vmckpt__DiskChunk *c, size_t i,
                    struct vmckpt_error *err)
{
    char path[4400];

    if (y->seal_fd < 0) {
        layer_name(path, sizeof(path), dir, epoch, c->disk, c->layer,
                   ".tmp.seal");
        y->seal_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (y->seal_fd < 0)
            return errprintf_errno(err, "%s", path);
    }
    if (pwrite_all(y->seal_fd, c->seal.data, SEAL_DISK_BYTES,
                   (off_t)(i * SEAL_DISK_BYTES)) < 0)
        return errprintf_errno(err, "disk %u layer %u: its seals", c->disk,
                               c->layer);
    return 0;
}

int image_disks_chunk(struct image_disks_in *in, const char *dir,
                      uint64_t epoch, const Vmckpt__DiskChunk *c,
                      struct vmckpt_error *err)
{
    struct disk_layer_in *y;
    char path[4400];
    size_t i;

    errno = EPROTO;
    if (c->disk >= in->ndisks || c->layer >= IMAGE_MAX_LAYERS ||
        c->offset % CHUNK != 0 || c->data.len == 0 || c->data.len > CHUNK ||
        c->offset >= LAYER_MAX_BYTES)
        return errprintf(err,
                         "disk chunk of disk %u layer %u at %" PRIu64
                         " (%zu bytes) is out of bounds",
                         c->disk, c->layer, c->offset, c->data.len);
    if (batch_xxh64(c->data.data, c->data.len) != c->xxh64) {
        errno = EBADMSG;
        return errprintf(err,
                         "disk %u layer %u: the chunk at %" PRIu64
                         " is damaged (checksum mismatch)",
                         c->disk, c->layer, c->offset);
    }
    if (c->seal.len != 0 && c->seal.len != SEAL_DISK_BYTES)
        return errprintf(err,
                         "disk %u layer %u: the chunk at %" PRIu64 " has a "
                         "seal of %zu bytes (0 or %u expected)",
                         c->disk, c->layer, c->offset, c->seal.len,
                         (unsigned)SEAL_DISK_BYTES);
    if (in->sealed >= 0 && in->sealed != (c->seal.len != 0))
        return errprintf(err,
                         "disk %u layer %u: the chunk at %" PRIu64 " came %s, "
                         "the epoch's chunks before it %s",
                         c->disk, c->layer, c->offset,
                         c->seal.len ? "sealed" : "clear",
                         in->sealed ? "sealed" : "clear");
    in->sealed = c->seal.len != 0;
    y = &in->l[c->disk][c->layer];
    i = (size_t)(c->offset / CHUNK);
    if (sums_room(y, i) < 0)
        return errprintf_errno(err, "disk writer");
    if (y->have[i] || (c->data.len < CHUNK && y->short_at != 0)) {
        errno = EPROTO;
        return errprintf(err,
                         "disk %u layer %u: the chunk at %" PRIu64 " came "
                         "twice, or a second short one",
                         c->disk, c->layer, c->offset);
    }
    if (c->data.len < CHUNK) {
        y->short_at = i + 1;
        y->short_len = c->data.len;
    }
    if (y->fd < 0) {
        layer_name(path, sizeof(path), dir, epoch, c->disk, c->layer, ".tmp");
        y->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (y->fd < 0)
            return errprintf_errno(err, "%s", path);
    }
    if (pwrite_all(y->fd, c->data.data, c->data.len, c->offset) < 0)
        return errprintf_errno(err,
                               "disk %u layer %u: writing %zu bytes at "
                               "%" PRIu64,
                               c->disk, c->layer, c->data.len, c->offset);
    if (in->sealed && seal_put(y, dir, epoch, c, i, err) < 0)
        return -1;
    y->sums[i] = c->xxh64;
    y->have[i] = 1;
    in->chunks[c->disk]++;
    return 0;
}

/* Layer 'y' ends at 'bytes': the file cut there, every chunk past it
 * refused, the checksums of the ranges not sent (zeroes) filled in and
 * written beside it, both fsynced. */
static int layer_finish(struct disk_layer_in *y, const char *tmp,
                        uint64_t bytes, struct vmckpt_error *err)
{
    size_t n = (size_t)((bytes + CHUNK - 1) / CHUNK), i;
    static const uint8_t zero[CHUNK];
    uint64_t zero_sum = 0;
    char sum[4400];
    int fd;

    for (i = n; i < y->nsums; i++)
        if (y->have[i]) {
            errno = EPROTO;
            return errprintf(err, "%s: a chunk past its end (%" PRIu64 ")", tmp,
                             bytes);
        }
    /* every chunk but the last is whole; the last ends at 'bytes' */
    if ((y->short_at != 0 &&
         (y->short_at != n || y->short_len != bytes - (n - 1) * CHUNK)) ||
        (y->short_at == 0 && bytes % CHUNK != 0 && n <= y->nsums &&
         y->have[n - 1])) {
        errno = EPROTO;
        return errprintf(err,
                         "%s: its chunks do not end where the layer does "
                         "(%" PRIu64 " bytes)",
                         tmp, bytes);
    }
    if (sums_room(y, n) < 0)
        return errprintf_errno(err, "disk writer");
    for (i = 0; i < n; i++)
        if (!y->have[i]) {
            size_t len = i + 1 < n || bytes % CHUNK == 0
                             ? CHUNK
                             : (size_t)(bytes % CHUNK);

            if (len == CHUNK && zero_sum == 0)
                zero_sum = batch_xxh64(zero, CHUNK);
            /* a sparse layer (a copied base) has many: hashed once */
            y->sums[i] = len == CHUNK ? zero_sum : batch_xxh64(zero, len);
        }
    if (y->fd < 0)
        y->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (y->fd < 0 || ftruncate(y->fd, (off_t)bytes) < 0 || fsync(y->fd) < 0)
        return errprintf_errno(err, "%s", tmp);
    snprintf(sum, sizeof(sum), "%.4390s.sum", tmp);
    fd = open(sum, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, y->sums, n * sizeof(uint64_t)) < 0 ||
        fsync(fd) < 0) {
        errprintf_errno(err, "%s", sum);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (y->seal_fd >= 0 &&
        (ftruncate(y->seal_fd, (off_t)(n * SEAL_DISK_BYTES)) < 0 ||
         fsync(y->seal_fd) < 0))
        return errprintf_errno(err, "%s.seal", tmp);
    return 0;
}

int image_disks_commit(struct image_disks_in *in, const char *dir,
                       uint64_t epoch, int sealed, const Vmckpt__StreamEnd *end,
                       struct image_epoch *e, struct vmckpt_error *err)
{
    char tmp[4400], final[4400], stmp[4500], sfinal[4500];
    unsigned k, l;

    errno = EPROTO;
    /* a sealed epoch is sealed whole: its pages, state and disks */
    if (in->sealed >= 0 && in->sealed != (sealed != 0))
        return errprintf(err,
                         "its disk chunks came %s, its pages and state "
                         "%s",
                         in->sealed ? "sealed" : "clear",
                         sealed ? "sealed" : "clear");
    if (end->n_disks != in->ndisks)
        return errprintf(err, "the stream ended with %zu disks, not %u",
                         end->n_disks, in->ndisks);
    for (k = 0; k < in->ndisks; k++) {
        const Vmckpt__DiskLayers *d = end->disks[k];

        errno = EPROTO;
        if (d->n_layer_bytes > IMAGE_MAX_LAYERS || d->chunks != in->chunks[k])
            return errprintf(err,
                             "disk %u: %" PRIu64 " chunks came, the sender "
                             "says %" PRIu64 " (%zu layers)",
                             k, in->chunks[k], d->chunks, d->n_layer_bytes);
        for (l = 0; l < IMAGE_MAX_LAYERS; l++)
            if (l >= d->n_layer_bytes && in->l[k][l].fd >= 0)
                return errprintf(err,
                                 "disk %u: chunks of layer %u, which "
                                 "the sender does not count",
                                 k, l);
        for (l = 0; l < d->n_layer_bytes; l++) {
            if (d->layer_bytes[l] > LAYER_MAX_BYTES) {
                errno = EPROTO;
                return errprintf(err, "disk %u layer %u: %" PRIu64 " bytes", k,
                                 l, d->layer_bytes[l]);
            }
            layer_name(tmp, sizeof(tmp), dir, epoch, k, l, ".tmp");
            if (layer_finish(&in->l[k][l], tmp, d->layer_bytes[l], err) < 0)
                return -1;
        }
        e->disk_layers[k] = (uint8_t)d->n_layer_bytes;
        e->disk_base[k] = d->base_digest;
    }
    for (k = 0; k < in->ndisks; k++)
        for (l = 0; l < e->disk_layers[k]; l++) {
            layer_name(tmp, sizeof(tmp), dir, epoch, k, l, ".tmp");
            layer_name(final, sizeof(final), dir, epoch, k, l, "");
            snprintf(stmp, sizeof(stmp), "%s.sum", tmp);
            snprintf(sfinal, sizeof(sfinal), "%s.sum", final);
            if (rename(stmp, sfinal) < 0)
                return errprintf_errno(err, "rename %s", stmp);
            /* a reader takes a layer with a .seal as sealed: one left by
             * an earlier try of the epoch that did not commit goes */
            snprintf(stmp, sizeof(stmp), "%s.seal", tmp);
            snprintf(sfinal, sizeof(sfinal), "%s.seal", final);
            if (in->l[k][l].seal_fd >= 0
                    ? rename(stmp, sfinal) < 0
                    : unlink(sfinal) < 0 && errno != ENOENT)
                return errprintf_errno(err, "%s", sfinal);
            if (rename(tmp, final) < 0)
                return errprintf_errno(err, "rename %s", tmp);
        }
    e->ndisks = (uint8_t)in->ndisks;
    e->ninherit = 0;
    return 0;
}

void image_disks_close(struct image_disks_in *in, const char *dir,
                       uint64_t epoch)
{
    char path[4400], sum[4500];
    unsigned k, l;

    if (in == NULL)
        return;
    for (k = 0; k < IMAGE_MAX_DISKS; k++)
        for (l = 0; l < IMAGE_MAX_LAYERS; l++) {
            struct disk_layer_in *y = &in->l[k][l];

            if (y->fd >= 0)
                close(y->fd);
            if (y->seal_fd >= 0)
                close(y->seal_fd);
            free(y->sums);
            free(y->have);
            if (k < in->ndisks) {
                layer_name(path, sizeof(path), dir, epoch, k, l, ".tmp");
                snprintf(sum, sizeof(sum), "%s.sum", path);
                unlink(path);
                unlink(sum);
                snprintf(sum, sizeof(sum), "%s.seal", path);
                unlink(sum);
            }
        }
    free(in);
}

/* ---- reading an epoch's disks ------------------------------------------ */

struct open_layer {
    unsigned disk, layer;
    int fd, sum_fd, seal_fd; /* seal_fd -1: a clear layer */
    char name[64];
};

/* Under manifest_mu: the layer files of 'epoch''s disks, oldest first per
 * disk, opened (a fold or drop after this keeps them readable). */
static int open_layers(const char *store, const char *dir, const char *job,
                       const char *vm, uint64_t epoch,
                       struct image_disk_sizes *sz, struct open_layer *ol,
                       size_t *nol, struct vmckpt_error *err)
{
    struct image_manifest m;
    const struct image_epoch *e;
    struct view v[IMAGE_MAX_INHERIT + IMAGE_MAX_EPOCHS];
    char path[4400];
    int n, i;
    unsigned k, l;

    if (image_manifest_load(store, job, vm, &m, err) < 0)
        return -1;
    e = image_manifest_find(&m, epoch);
    if (e == NULL) {
        errno = ENOENT;
        return errprintf(err, "%s/%s: no epoch %" PRIu64, job, vm, epoch);
    }
    memset(sz, 0, sizeof(*sz));
    sz->ndisks = e->ndisks;
    memcpy(sz->base, e->disk_base, sizeof(sz->base));
    if (e->ndisks == 0)
        return 0;
    n = view_epochs(&m, e, v);
    if (n < 0) {
        errno = EINVAL;
        return errprintf(err, "%s/%s epoch %" PRIu64 ": its chain is broken",
                         job, vm, epoch);
    }
    for (k = 0; k < e->ndisks; k++)
        for (i = 0; i < n; i++)
            for (l = 0; l < v[i].layers[k]; l++) {
                struct open_layer *o = &ol[*nol];

                if (sz->nlayers[k] == IMAGE_MAX_VIEW) {
                    errno = E2BIG;
                    return errprintf(err,
                                     "%s/%s epoch %" PRIu64 " disk %u: "
                                     "over %d layers",
                                     job, vm, epoch, k, IMAGE_MAX_VIEW);
                }
                o->disk = k;
                o->layer = sz->nlayers[k]++;
                view_name(o->name, sizeof(o->name), &v[i], k, l);
                snprintf(path, sizeof(path), "%s/%s", dir, o->name);
                o->fd = open(path, O_RDONLY | O_CLOEXEC);
                snprintf(path, sizeof(path), "%s/%s.sum", dir, o->name);
                o->sum_fd = open(path, O_RDONLY | O_CLOEXEC);
                snprintf(path, sizeof(path), "%s/%s.seal", dir, o->name);
                o->seal_fd = open(path, O_RDONLY | O_CLOEXEC);
                (*nol)++;
                if (o->fd < 0 || o->sum_fd < 0 ||
                    (o->seal_fd < 0 && errno != ENOENT))
                    return errprintf_errno(
                        err, "%s/%s epoch %" PRIu64 ": disk %u layer %s", job,
                        vm, epoch, k, o->name);
            }
    return 0;
}

/* Send one layer: every 1 MiB checked against its sum, zeroes skipped;
 * a sealed one's nonce and tag with it. */
static int read_layer(const struct open_layer *o, const char *job,
                      const char *vm, uint64_t epoch, uint8_t *buf,
                      struct image_disk_sizes *sz, image_disk_chunk_fn *chunk,
                      void *arg, struct vmckpt_error *err)
{
    uint8_t seal[SEAL_DISK_BYTES];
    struct stat st;
    uint64_t off, sum, h;
    ssize_t n;

    if (fstat(o->fd, &st) < 0)
        return errprintf_errno(err, "%s", o->name);
    sz->bytes[o->disk][o->layer] = (uint64_t)st.st_size;
    for (off = 0; off < (uint64_t)st.st_size; off += CHUNK) {
        size_t len = (uint64_t)st.st_size - off < CHUNK
                         ? (size_t)((uint64_t)st.st_size - off)
                         : CHUNK;

        n = pread(o->fd, buf, len, (off_t)off);
        if (n != (ssize_t)len ||
            pread(o->sum_fd, &sum, sizeof(sum),
                  (off_t)(off / CHUNK * sizeof(sum))) != sizeof(sum))
            return errprintf_errno(err,
                                   "%s/%s epoch %" PRIu64 ": reading disk %u "
                                   "layer %s at %" PRIu64,
                                   job, vm, epoch, o->disk, o->name, off);
        h = batch_xxh64(buf, len);
        if (h != sum) {
            errno = EBADMSG;
            return errprintf(err,
                             "%s/%s epoch %" PRIu64 ": damaged disk %u layer "
                             "%s at offset %" PRIu64 " (checksum mismatch)",
                             job, vm, epoch, o->disk, o->name, off);
        }
        if (batch_bytes_are_zero(buf, len))
            continue;
        if (o->seal_fd >= 0 &&
            (n = pread(o->seal_fd, seal, sizeof(seal),
                       (off_t)(off / CHUNK * sizeof(seal)))) != sizeof(seal)) {
            if (n >= 0)
                errno = EBADMSG; /* short */
            return errprintf_errno(err,
                                   "%s/%s epoch %" PRIu64 ": reading %s.seal "
                                   "(disk %u) at %" PRIu64,
                                   job, vm, epoch, o->name, o->disk, off);
        }
        if (chunk(arg, o->disk, o->layer, off, buf, len, h,
                  o->seal_fd >= 0 ? seal : NULL, err) < 0)
            return errprefix(err, "%s/%s epoch %" PRIu64 " (%s)", job, vm,
                             epoch, o->name);
        sz->chunks[o->disk]++;
    }
    return 0;
}

int image_disk_read(const char *store, const char *job, const char *vm,
                    uint64_t epoch, image_disk_chunk_fn *chunk, void *arg,
                    struct image_disk_sizes *sz, struct vmckpt_error *err)
{
    struct open_layer *ol =
        calloc(IMAGE_MAX_DISKS * IMAGE_MAX_VIEW, sizeof(*ol));
    char dir[4096];
    uint8_t *buf = malloc(CHUNK);
    size_t nol = 0, i;
    int rc = -1;

    if (ol == NULL || buf == NULL) {
        errprintf_errno(err, "read %s/%s", job, vm);
        goto out;
    }
    if (vm_dir(store, job, vm, dir, sizeof(dir), err) < 0)
        goto out;
    pthread_mutex_lock(&manifest_mu);
    rc = open_layers(store, dir, job, vm, epoch, sz, ol, &nol, err);
    pthread_mutex_unlock(&manifest_mu);
    for (i = 0; rc == 0 && i < nol; i++)
        rc = read_layer(&ol[i], job, vm, epoch, buf, sz, chunk, arg, err);
out:
    for (i = 0; i < nol; i++) {
        if (ol[i].fd >= 0)
            close(ol[i].fd);
        if (ol[i].sum_fd >= 0)
            close(ol[i].sum_fd);
        if (ol[i].seal_fd >= 0)
            close(ol[i].seal_fd);
    }
    free(ol);
    free(buf);
    return rc;
}

unsigned image_disks_count(const struct image_disks_in *in)
{
    return in->ndisks;
}
