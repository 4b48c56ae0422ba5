/* SPDX-License-Identifier: GPL-2.0-or-later */
/* bench/restore-rate: how fast a restore from this host's store fills a
 * guest's RAM file, against baselines measured in the same run.
 *
 *   restore-rate [--mib N] [--dir DIR] [--zero PERCENT]
 *
 * A synthetic guest RAM of N MiB (default 1024; PERCENT of its pages zero,
 * default 25, the others distinct data) is written as one full epoch into
 * a store under DIR (default /dev/shm, where the agent keeps guest RAM) by
 * the store's own writer, then read back four ways, each into a fresh RAM
 * file in DIR:
 *
 *   copy      the same bytes from memory, 1 MiB per pwrite: the ceiling
 *   verify    the store's reader (records read, checksums, no writes)
 *   per-page  the reader and one pwrite per page (restores before runs)
 *   restore   image_restore, the agent's path: runs of pages per pwritev
 *
 * Each prints GiB/s of guest RAM; the restore's ratio to the copy and to
 * one write per page. The restored file is compared with the RAM. The
 * store's files are warm (just written): a restore after a crash may read
 * them from disk first. Not a test: docs/performance.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/store/image.h"
#include "lib/wire/batch.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct vmckpt_error *err)
{
    fprintf(stderr, "restore-rate: %s: %s\n", what,
            err != NULL ? err->text : strerror(errno));
    exit(1);
}

/* The guest RAM: 'zero_pct' % of the pages zero, spread evenly. */
static uint8_t *make_ram(uint64_t bytes, unsigned zero_pct)
{
    uint8_t *ram = calloc(1, bytes);
    uint64_t p, i;

    if (ram == NULL)
        die("guest RAM", NULL);
    for (p = 0; p < bytes / BATCH_PAGE; p++) {
        uint64_t *w = (uint64_t *)(ram + p * BATCH_PAGE);

        if ((p * 37) % 100 < zero_pct)
            continue;
        for (i = 0; i < BATCH_PAGE / 8; i++)
            w[i] =
                (p + 1) * 0x9e3779b97f4a7c15ull ^ (i * 0xbf58476d1ce4e5b9ull);
    }
    return ram;
}

/* One full epoch of 'ram' into the store, in batches of BATCH_MAX_PAGES. */
static void write_epoch(const char *store, const uint8_t *ram, uint64_t bytes)
{
    struct vmckpt_error err;
    struct image_writer *w =
        image_writer_open(store, "bench", "vm", 1, 0, bytes, 1, &err);
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    struct batch_builder b;
    const char state[] = "device state";
    uint64_t p, npages = bytes / BATCH_PAGE, written;

    if (w == NULL || batch_builder_init(&b, 0) < 0)
        die("store writer", &err);
    batch_reset(&b, 0);
    for (p = 0; p < npages; p++) {
        if (!batch_add(&b, p, ram + p * BATCH_PAGE) && p + 1 < npages)
            continue;
        Vmckpt__PageBatch msg;

        vmckpt__page_batch__init(&msg);
        batch_finish(&b, &msg);
        if (image_writer_batch(w, 0, &msg, &err) < 0)
            die("store batch", &err);
        end.batches++;
        end.pages += msg.n_pages;
        batch_reset(&b, 0);
    }
    batch_builder_dispose(&b);
    if (image_writer_state(w, 0, state, sizeof(state), &err) < 0)
        die("store state", &err);
    end.state_bytes = sizeof(state);
    end.state_xxh64 = batch_xxh64(state, sizeof(state));
    if (image_writer_commit(w, &end, &written, &err) < 0)
        die("store commit", &err);
}

/* A fresh RAM file (and state file) in 'dir'. */
static void fresh(const char *dir, uint64_t bytes, int *ram_fd, int *state_fd)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/ram", dir);
    unlink(path);
    *ram_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    snprintf(path, sizeof(path), "%s/state", dir);
    *state_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (*ram_fd < 0 || *state_fd < 0 || ftruncate(*ram_fd, (off_t)bytes) < 0)
        die("RAM file", NULL);
}

struct per_page {
    int fd;
    uint8_t zero[BATCH_PAGE];
};

static int cb_none(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                   void *arg)
{
    (void)msg;
    (void)v;
    (void)arg;
    return 0;
}

static int cb_per_page(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                       void *arg)
{
    struct per_page *pp = arg;
    size_t i;

    (void)msg;
    for (i = 0; i < v->n; i++) {
        const uint8_t *p = batch_view_page(v, i);

        if (pwrite(pp->fd, p ? p : pp->zero, BATCH_PAGE,
                   (off_t)(v->pages[i] * BATCH_PAGE)) != BATCH_PAGE)
            return -1;
    }
    return 0;
}

static int cb_state(uint64_t off, const void *data, size_t len, void *arg)
{
    (void)off;
    (void)data;
    (void)len;
    (void)arg;
    return 0;
}

/* The RAM file holds 'ram'. */
static void check_file(int fd, const uint8_t *ram, uint64_t bytes,
                       const char *what)
{
    uint8_t *buf = malloc(1u << 20);
    uint64_t off;

    for (off = 0; buf != NULL && off < bytes; off += 1u << 20)
        if (pread(fd, buf, 1u << 20, (off_t)off) != 1 << 20 ||
            memcmp(buf, ram + off, 1u << 20) != 0) {
            fprintf(stderr,
                    "restore-rate: %s: the RAM file differs at %" PRIu64 "\n",
                    what, off);
            exit(1);
        }
    free(buf);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static double gibs(uint64_t bytes, double s)
{
    return (double)bytes / (1u << 30) / s;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"mib", required_argument, NULL, 'm'},
                                       {"dir", required_argument, NULL, 'd'},
                                       {"zero", required_argument, NULL, 'z'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *base = "/dev/shm";
    unsigned long mib = 1024, zero = 25;
    char dir[4096], store[4200];
    struct vmckpt_error err;
    struct per_page *pp;
    double t, copy_s, verify_s, page_s, restore_s;
    uint64_t bytes, off;
    uint8_t *ram;
    int c, rfd, sfd;

    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'm')
            mib = strtoul(optarg, NULL, 10);
        else if (c == 'd')
            base = optarg;
        else if (c == 'z')
            zero = strtoul(optarg, NULL, 10);
        else {
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: restore-rate [--mib N] [--dir DIR] "
                    "[--zero PERCENT]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (mib < 1 || mib > 65536 || zero > 100) {
        fprintf(stderr, "restore-rate: --mib 1..65536, --zero 0..100\n");
        return 2;
    }
    bytes = (uint64_t)mib << 20;
    snprintf(dir, sizeof(dir), "%s/restore-rate.XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        die(dir, NULL);
    snprintf(store, sizeof(store), "%s/store", dir);
    if (mkdir(store, 0700) < 0)
        die(store, NULL);
    ram = make_ram(bytes, (unsigned)zero);
    printf("restore-rate: %lu MiB of guest RAM (%lu%% zero pages), store and "
           "RAM files in %s\n",
           mib, zero, base);
    t = now_s();
    write_epoch(store, ram, bytes);
    printf("  the store's writer took %.2f s\n", now_s() - t);

    fresh(dir, bytes, &rfd, &sfd);
    t = now_s();
    for (off = 0; off < bytes; off += 1u << 20)
        if (pwrite(rfd, ram + off, 1u << 20, (off_t)off) != 1 << 20)
            die("copy", NULL);
    copy_s = now_s() - t;
    close(rfd);
    close(sfd);

    t = now_s();
    if (image_read(store, "bench", "vm", 1, cb_none, cb_state, NULL, &err) < 0)
        die("verify", &err);
    verify_s = now_s() - t;

    pp = calloc(1, sizeof(*pp));
    if (pp == NULL)
        die("per-page", NULL);
    fresh(dir, bytes, &pp->fd, &sfd);
    t = now_s();
    if (image_read(store, "bench", "vm", 1, cb_per_page, cb_state, pp, &err) <
        0)
        die("per-page", &err);
    page_s = now_s() - t;
    check_file(pp->fd, ram, bytes, "per-page");
    close(pp->fd);
    close(sfd);
    free(pp);

    fresh(dir, bytes, &rfd, &sfd);
    t = now_s();
    if (image_restore(store, "bench", "vm", 1, NULL, rfd, sfd, NULL, &err) < 0)
        die("restore", &err);
    restore_s = now_s() - t;
    check_file(rfd, ram, bytes, "restore");
    close(rfd);
    close(sfd);

    printf("  %-9s %6.2f GiB/s  (%.3f s)\n", "copy", gibs(bytes, copy_s),
           copy_s);
    printf("  %-9s %6.2f GiB/s  (%.3f s)\n", "verify", gibs(bytes, verify_s),
           verify_s);
    printf("  %-9s %6.2f GiB/s  (%.3f s)\n", "per-page", gibs(bytes, page_s),
           page_s);
    printf("  %-9s %6.2f GiB/s  (%.3f s)\n", "restore", gibs(bytes, restore_s),
           restore_s);
    printf("restore / copy %.2f, restore / per-page %.2f, verify's share of "
           "the restore %.0f%%; the restored RAM matches\n",
           copy_s / restore_s, page_s / restore_s,
           100.0 * verify_s / restore_s);
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        fprintf(stderr, "restore-rate: %s not removed\n", dir);
    free(ram);
    return 0;
}
