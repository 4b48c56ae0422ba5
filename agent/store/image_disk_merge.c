/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Merging a disk's layer files in the image store (docs/store.md, 'Disks'):
 * qcow2 overlays whose backing files are on another host become one qcow2
 * file holding what each of them allocated, the newest winning per 2 KiB
 * subcluster; what none of them holds stays unallocated and reads, once
 * the file is put over a backing, from the backing. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image_int.h"

/* qcow2 (QEMU's docs/interop/qcow2.txt). The layers the agent makes have
 * 64 KiB clusters of 32 subclusters (extended L2 entries); so has the
 * merged file. */
#define QCOW_MAGIC    0x514649fbU
#define CLUSTER_BITS  16
#define CLUSTER       (1U << CLUSTER_BITS)
#define SUB           (CLUSTER / 32)        /* a subcluster: 2 KiB */
#define OUT_L2        (CLUSTER / 16)        /* entries of a merged L2 */
#define OFF_MASK      0x00fffffffffffe00ULL /* bits 9-55: an offset */
#define COPIED        (1ULL << 63)          /* refcount 1 */
#define COMPRESSED    (1ULL << 62)
#define F_DIRTY       1U /* incompatible features */
#define F_COMPRESSION 8U
#define F_EXTL2       16U
#define L1_MAX        (4U << 20) /* QEMU's: 32 MiB of L1 */
#define HEADER_V3     104
#define REFS          (CLUSTER / 2) /* 16-bit refcounts a block */

/* One layer file being read. */
struct src {
    const char *name;
    int fd, sum_fd;
    uint64_t size;
    uint8_t *checked; /* per 1 MiB: verified against its sum */
    int v3, ext;
    uint64_t vsize;
    uint32_t l1_size;
    uint64_t *l1;
    uint8_t *l2;    /* the L2 table read last */
    uint64_t l2_at; /* its offset, 0: none */
    uint64_t host;  /* the cluster looked up last: its offset */
};

/* What the merged file holds at one virtual cluster. */
struct cl {
    uint32_t data, zero; /* per subcluster: bytes / reads as zeroes */
    uint8_t from[32];    /* the layer whose bytes a data subcluster has */
};

struct merge {
    const char *dir;
    struct src *s;
    unsigned n;
    uint64_t vsize, nclusters;
    uint32_t l1_size; /* the merged file's */
    uint8_t *need_l2; /* per L1 entry: an L2 table */
    uint64_t *l1;
    uint64_t n_l2, n_data, total; /* clusters */
    uint64_t rt, rb, l1c;         /* refcount table/blocks, L1: clusters */
    uint8_t *chunk;               /* 1 MiB: checksums */
    uint8_t *buf;                 /* a cluster */
    int fd;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static int unsupported(struct vmckpt_error *err, const struct src *s,
                       const char *why)
{
    errno = ENOTSUP;
    return errprintf(err, "layer %s: %s, not merged", s->name, why);
}

static int corrupt(struct vmckpt_error *err, const struct src *s,
                   const char *what, uint64_t at)
{
    errno = EBADMSG;
    return errprintf(err, "layer %s: %s at %" PRIu64, s->name, what, at);
}

/* 'len' bytes of layer 's' at 'off', every 1 MiB they touch checked once
 * against its sum; past the file's end zeroes (as QEMU reads them). */
static int src_read(struct merge *g, struct src *s, uint64_t off, void *buf,
                    size_t len, struct vmckpt_error *err)
{
    uint64_t c, end = off + len < s->size ? off + len : s->size, sum;
    size_t have = off < s->size ? (size_t)(end - off) : 0, clen;

    for (c = off / CHUNK; c * CHUNK < end; c++) {
        if (s->checked[c])
            continue;
        clen =
            s->size - c * CHUNK < CHUNK ? (size_t)(s->size - c * CHUNK) : CHUNK;
        errno = 0;
        if (pread(s->fd, g->chunk, clen, (off_t)(c * CHUNK)) != (ssize_t)clen ||
            pread(s->sum_fd, &sum, sizeof(sum), (off_t)(c * sizeof(sum))) !=
                sizeof(sum)) {
            if (errno == 0)
                errno = EIO; /* a short file */
            return errprintf_errno(err, "layer %s: reading at %" PRIu64,
                                   s->name, c * CHUNK);
        }
        if (batch_xxh64(g->chunk, clen) != sum)
            return corrupt(err, s, "damaged (checksum mismatch) 1 MiB",
                           c * CHUNK);
        s->checked[c] = 1;
    }
    if (have > 0 && pread(s->fd, buf, have, (off_t)off) != (ssize_t)have)
        return errprintf_errno(err, "layer %s: reading at %" PRIu64, s->name,
                               off);
    memset((uint8_t *)buf + have, 0, len - have);
    return 0;
}

/* The header of 's' and its L1 table: a qcow2 image of 64 KiB clusters
 * that is neither encrypted nor split into an external data file. */
static int src_header(struct merge *g, struct src *s, struct vmckpt_error *err)
{
    uint8_t h[HEADER_V3];
    uint32_t version, i;
    uint64_t incompat = 0, l1_off, need;

    if (src_read(g, s, 0, h, sizeof(h), err) < 0)
        return -1;
    version = be32(h + 4);
    if (be32(h) != QCOW_MAGIC || version < 2 || version > 3)
        return unsupported(err, s, "not a qcow2 image");
    if (be32(h + 20) != CLUSTER_BITS)
        return unsupported(err, s, "clusters other than 64 KiB");
    if (be32(h + 32) != 0)
        return unsupported(err, s, "encrypted");
    s->v3 = version == 3;
    if (s->v3)
        incompat = be64(h + 72);
    if (incompat & ~(uint64_t)(F_DIRTY | F_COMPRESSION | F_EXTL2))
        return unsupported(err, s, "qcow2 features it does not know");
    s->ext = (incompat & F_EXTL2) != 0;
    s->vsize = be64(h + 24);
    s->l1_size = be32(h + 36);
    l1_off = be64(h + 40);
    need = (s->vsize + CLUSTER - 1) / CLUSTER;
    need = (need + CLUSTER / (s->ext ? 16 : 8) - 1) /
           (CLUSTER / (s->ext ? 16 : 8));
    if (s->vsize == 0 || s->vsize > (1ULL << 50) || s->l1_size > L1_MAX ||
        s->l1_size < need || l1_off % CLUSTER != 0)
        return corrupt(err, s, "impossible size or L1 table", l1_off);
    s->l1 = malloc((s->l1_size + 1) * sizeof(*s->l1));
    s->l2 = malloc(CLUSTER);
    if (s->l1 == NULL || s->l2 == NULL)
        return errprintf_errno(err, "layer %s", s->name);
    if (src_read(g, s, l1_off, s->l1, s->l1_size * sizeof(*s->l1), err) < 0)
        return -1;
    for (i = 0; i < s->l1_size; i++)
        s->l1[i] = be64((uint8_t *)&s->l1[i]);
    return 0;
}

static int src_open(struct merge *g, struct src *s, const char *name,
                    struct vmckpt_error *err)
{
    char path[4400];
    struct stat st;

    s->name = name;
    s->fd = s->sum_fd = -1;
    snprintf(path, sizeof(path), "%s/%s", g->dir, name);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0 || fstat(s->fd, &st) < 0)
        return errprintf_errno(err, "layer %s", name);
    snprintf(path, sizeof(path), "%s/%s.sum", g->dir, name);
    s->sum_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->sum_fd < 0)
        return errprintf_errno(err, "layer %s.sum", name);
    s->size = (uint64_t)st.st_size;
    s->checked = calloc(s->size / CHUNK + 1, 1);
    if (s->checked == NULL)
        return errprintf_errno(err, "layer %s", name);
    return src_header(g, s, err);
}

static void src_close(struct src *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->sum_fd >= 0)
        close(s->sum_fd);
    free(s->checked);
    free(s->l1);
    free(s->l2);
}

/* What layer 's' holds of virtual cluster 'ci': per subcluster its own
 * bytes ('*data', at s->host) or zeroes ('*zero'); neither, it is not
 * allocated there. */
static int src_cluster(struct merge *g, struct src *s, uint64_t ci,
                       uint32_t *data, uint32_t *zero, struct vmckpt_error *err)
{
    unsigned esize = s->ext ? 16 : 8, per = CLUSTER / esize;
    uint64_t l1i = ci / per, l2_at, e, bm = 0;
    const uint8_t *p;

    *data = *zero = 0;
    s->host = 0;
    if (l1i >= s->l1_size || (l2_at = s->l1[l1i] & OFF_MASK) == 0)
        return 0;
    if (l2_at % CLUSTER != 0)
        return corrupt(err, s, "misaligned L2 table", l2_at);
    if (s->l2_at != l2_at) {
        s->l2_at = 0;
        if (src_read(g, s, l2_at, s->l2, CLUSTER, err) < 0)
            return -1;
        s->l2_at = l2_at;
    }
    p = s->l2 + (ci % per) * esize;
    e = be64(p);
    if (s->ext)
        bm = be64(p + 8);
    if (e & COMPRESSED)
        return unsupported(err, s, "compressed clusters");
    s->host = e & OFF_MASK;
    if (s->host % CLUSTER != 0)
        return corrupt(err, s, "misaligned cluster", s->host);
    if (s->ext) {
        *data = (uint32_t)bm;
        *zero = (uint32_t)(bm >> 32);
        if ((*data & *zero) != 0 || (*data != 0 && s->host == 0))
            return corrupt(err, s, "bad L2 entry of virtual offset",
                           ci * CLUSTER);
    } else if (s->v3 && (e & 1)) {
        *zero = ~0U;
    } else if (s->host != 0) {
        *data = ~0U;
    }
    return 0;
}

/* Cluster 'ci' merged: per subcluster, the newest layer that allocated it
 * decides (its bytes, or zeroes). */
static int merge_cluster(struct merge *g, uint64_t ci, struct cl *c,
                         struct vmckpt_error *err)
{
    uint32_t open = ~0U, d, z, take;
    unsigned i, j;

    c->data = c->zero = 0;
    for (i = g->n; i-- > 0 && open != 0;) {
        if (src_cluster(g, &g->s[i], ci, &d, &z, err) < 0)
            return -1;
        take = d & open;
        for (j = 0; j < 32; j++)
            if (take >> j & 1)
                c->from[j] = (uint8_t)i;
        c->data |= take;
        c->zero |= z & open;
        open &= ~(d | z);
    }
    return 0;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* 1 if no layer has an L2 table for the clusters of merged L1 entry 'i'
 * (256 MiB): nothing to look up there. */
static int region_empty(const struct merge *g, uint64_t i)
{
    uint64_t first = i * OUT_L2, last = first + OUT_L2 - 1, j;
    unsigned n;

    for (n = 0; n < g->n; n++) {
        const struct src *s = &g->s[n];
        uint64_t per = CLUSTER / (s->ext ? 16 : 8);

        for (j = first / per; j <= last / per && j < s->l1_size; j++)
            if ((s->l1[j] & OFF_MASK) != 0)
                return 0;
    }
    return 1;
}

/* First pass: how many data clusters and L2 tables the merged file has,
 * then where everything goes, in clusters:
 *
 *   0  header: v3, extended L2, no backing file (a restore names one)
 *   1  refcount table | refcount blocks (16 bits, every cluster's 1)
 *      | L1 table | L2 tables, one per 256 MiB that holds anything
 *      | data clusters, in virtual order (what no layer holds: holes)
 */
static int merge_plan(struct merge *g, struct vmckpt_error *err)
{
    uint64_t ci, fixed, rb, rt;
    uint32_t i;
    struct cl c;

    g->l1_size = (uint32_t)div_up(g->nclusters, OUT_L2);
    g->need_l2 = calloc(g->l1_size, 1);
    g->l1 = calloc(g->l1_size, sizeof(*g->l1));
    if (g->need_l2 == NULL || g->l1 == NULL)
        return errprintf_errno(err, "merge");
    for (i = 0; i < g->l1_size; i++) {
        if (region_empty(g, i))
            continue;
        for (ci = (uint64_t)i * OUT_L2;
             ci < g->nclusters && ci < ((uint64_t)i + 1) * OUT_L2; ci++) {
            if (merge_cluster(g, ci, &c, err) < 0)
                return -1;
            if (c.data != 0)
                g->n_data++;
            if ((c.data | c.zero) != 0 && !g->need_l2[i]) {
                g->need_l2[i] = 1;
                g->n_l2++;
            }
        }
    }
    g->l1c = div_up((uint64_t)g->l1_size * 8, CLUSTER);
    fixed = 1 + g->l1c + g->n_l2 + g->n_data;
    /* the refcounts cover every cluster, their own included */
    for (rb = rt = 0;;) {
        uint64_t nrb = div_up(fixed + rb + rt, REFS),
                 nrt = div_up(nrb * 8, CLUSTER);

        if (nrb == rb && nrt == rt)
            break;
        rb = nrb;
        rt = nrt;
    }
    g->rb = rb;
    g->rt = rt;
    g->total = fixed + rb + rt;
    return 0;
}

/* Write the data subclusters of 'c' into the cluster at 'host'. */
static int copy_data(struct merge *g, const struct cl *c, uint64_t host,
                     struct vmckpt_error *err)
{
    unsigned j = 0, k;

    while (j < 32) {
        if (!(c->data >> j & 1)) {
            j++;
            continue;
        }
        for (k = j + 1;
             k < 32 && (c->data >> k & 1) && c->from[k] == c->from[j]; k++)
            ;
        if (src_read(g, &g->s[c->from[j]], g->s[c->from[j]].host + j * SUB,
                     g->buf + j * SUB, (k - j) * SUB, err) < 0)
            return -1;
        j = k;
    }
    for (j = 0; j < 32; j = k) {
        for (k = j; k < 32 && (c->data >> k & 1); k++)
            ;
        if (k > j && pwrite_all(g->fd, g->buf + j * SUB, (k - j) * SUB,
                                host + j * SUB) < 0)
            return errprintf_errno(err, "merged layer");
        if (k == j)
            k++;
    }
    return 0;
}

/* Second pass: the data clusters and the L2 tables, in the plan's order.
 * The host offsets of the sources are those of the cluster looked up
 * last, so each cluster is merged again just before it is copied. */
static int merge_write(struct merge *g, struct vmckpt_error *err)
{
    uint64_t l2_next = (1 + g->rt + g->rb + g->l1c) * CLUSTER;
    uint64_t data_next = l2_next + g->n_l2 * CLUSTER, ci, at = 0;
    uint8_t *l2 = NULL;
    struct cl c;
    uint32_t i;

    l2 = malloc(CLUSTER);
    if (l2 == NULL)
        return errprintf_errno(err, "merge");
    for (i = 0; i < g->l1_size; i++) {
        if (!g->need_l2[i])
            continue;
        memset(l2, 0, CLUSTER);
        for (ci = (uint64_t)i * OUT_L2;
             ci < g->nclusters && ci < ((uint64_t)i + 1) * OUT_L2; ci++) {
            uint64_t std = 0;

            if (merge_cluster(g, ci, &c, err) < 0)
                goto fail;
            if ((c.data | c.zero) == 0)
                continue;
            if (c.data != 0) {
                if (copy_data(g, &c, data_next, err) < 0)
                    goto fail;
                std = data_next | COPIED;
                data_next += CLUSTER;
                at++;
            }
            put64(l2 + (ci % OUT_L2) * 16, std);
            put64(l2 + (ci % OUT_L2) * 16 + 8, c.data | (uint64_t)c.zero << 32);
        }
        if (pwrite_all(g->fd, l2, CLUSTER, l2_next) < 0) {
            errprintf_errno(err, "merged layer");
            goto fail;
        }
        g->l1[i] = l2_next | COPIED;
        l2_next += CLUSTER;
    }
    free(l2);
    if (at != g->n_data) {
        errno = EIO;
        return errprintf(err, "merge: the layers changed while merged");
    }
    return 0;
fail:
    free(l2);
    return -1;
}

/* The header, the refcounts (1 for every cluster) and the L1 table. */
static int write_meta(struct merge *g, struct vmckpt_error *err)
{
    uint64_t rt_at = CLUSTER, rb_at = rt_at + g->rt * CLUSTER;
    uint64_t l1_at = rb_at + g->rb * CLUSTER, b, i;
    uint8_t *p = g->buf;

    memset(p, 0, CLUSTER);
    put32(p, QCOW_MAGIC);
    put32(p + 4, 3);
    put32(p + 20, CLUSTER_BITS);
    put64(p + 24, g->vsize);
    put32(p + 36, g->l1_size);
    put64(p + 40, l1_at);
    put64(p + 48, rt_at);
    put32(p + 56, (uint32_t)g->rt);
    put64(p + 72, F_EXTL2);
    put32(p + 96, 4); /* refcount_order: 16 bits */
    put32(p + 100, HEADER_V3);
    /* then the end of the header extensions: 8 zero bytes */
    if (pwrite_all(g->fd, p, HEADER_V3 + 8, 0) < 0)
        return errprintf_errno(err, "merged layer");
    for (b = 0; b < g->rb; b++) {
        memset(p, 0, CLUSTER);
        for (i = 0; i < REFS && b * REFS + i < g->total; i++)
            p[2 * i + 1] = 1;
        if (pwrite_all(g->fd, p, CLUSTER, rb_at + b * CLUSTER) < 0)
            return errprintf_errno(err, "merged layer");
        put64(p, rb_at + b * CLUSTER);
        if (pwrite_all(g->fd, p, 8, rt_at + b * 8) < 0)
            return errprintf_errno(err, "merged layer");
    }
    for (i = 0; i < g->l1_size; i++) {
        put64(p, g->l1[i]);
        if (pwrite_all(g->fd, p, 8, l1_at + i * 8) < 0)
            return errprintf_errno(err, "merged layer");
    }
    if (ftruncate(g->fd, (off_t)(g->total * CLUSTER)) < 0 || fsync(g->fd) < 0)
        return errprintf_errno(err, "merged layer");
    return 0;
}

/* The sum file of the merged layer, read back: XXH64 of every 1 MiB, as a
 * received layer's. */
static int write_sums(struct merge *g, const char *sum_path,
                      struct vmckpt_error *err)
{
    uint64_t size = g->total * CLUSTER, off, h;
    int fd = open(sum_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len;

    if (fd < 0)
        return errprintf_errno(err, "%s", sum_path);
    for (off = 0; off < size; off += CHUNK) {
        len = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        if (pread(g->fd, g->chunk, len, (off_t)off) != (ssize_t)len)
            goto fail;
        h = batch_xxh64(g->chunk, len);
        if (write_all(fd, &h, sizeof(h)) < 0)
            goto fail;
    }
    if (fsync(fd) < 0)
        goto fail;
    close(fd);
    return 0;
fail:
    errprintf_errno(err, "%s", sum_path);
    close(fd);
    return -1;
}

/* Open the layers, all of one size; the merged file's geometry. */
static int merge_open(struct merge *g, const char *const *layers, unsigned n,
                      struct vmckpt_error *err)
{
    unsigned i;

    g->s = calloc(n, sizeof(*g->s));
    g->chunk = malloc(CHUNK);
    g->buf = malloc(CLUSTER);
    if (g->s == NULL || g->chunk == NULL || g->buf == NULL)
        return errprintf_errno(err, "merge");
    for (i = 0; i < n; i++)
        g->s[i].fd = g->s[i].sum_fd = -1;
    g->n = n;
    for (i = 0; i < n; i++) {
        if (src_open(g, &g->s[i], layers[i], err) < 0)
            return -1;
        if (g->s[i].vsize != g->s[0].vsize)
            return unsupported(err, &g->s[i],
                               "of another size than the others");
    }
    g->vsize = g->s[0].vsize;
    g->nclusters = div_up(g->vsize, CLUSTER);
    return 0;
}

int image_disk_merge(const char *dir, const char *const *layers, unsigned n,
                     const char *name, struct vmckpt_error *err)
{
    struct merge g = {.dir = dir, .fd = -1};
    char tmp[4400], stmp[4500], final[4400], sfinal[4500];
    unsigned i;
    int rc = -1, saved;

    snprintf(final, sizeof(final), "%s/%s", dir, name);
    snprintf(sfinal, sizeof(sfinal), "%s.sum", final);
    snprintf(tmp, sizeof(tmp), "%s.tmp", final);
    snprintf(stmp, sizeof(stmp), "%s.sum", tmp);
    if (n == 0 || n > 255) {
        errno = EINVAL;
        return errprintf(err, "merge of %u layers into %s", n, name);
    }
    if (merge_open(&g, layers, n, err) < 0 || merge_plan(&g, err) < 0)
        goto out;
    g.fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (g.fd < 0) {
        errprintf_errno(err, "%s", tmp);
        goto out;
    }
    if (merge_write(&g, err) < 0 || write_meta(&g, err) < 0 ||
        write_sums(&g, stmp, err) < 0)
        goto out;
    if (rename(stmp, sfinal) < 0) {
        errprintf_errno(err, "%s", sfinal);
        goto out;
    }
    if (rename(tmp, final) < 0 || fsync_dir(dir) < 0) {
        errprintf_errno(err, "%s", final);
        saved = errno;
        unlink(final);
        unlink(sfinal);
        errno = saved;
        goto out;
    }
    rc = 0;
out:
    saved = errno;
    if (g.fd >= 0)
        close(g.fd);
    if (rc < 0) {
        unlink(tmp);
        unlink(stmp);
        errprefix(err, "merging %u layers into %s", n, name);
    }
    for (i = 0; g.s != NULL && i < g.n; i++)
        src_close(&g.s[i]);
    free(g.s);
    free(g.need_l2);
    free(g.l1);
    free(g.chunk);
    free(g.buf);
    errno = saved;
    return rc;
}
