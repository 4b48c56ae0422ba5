/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the store's merge of a disk's lent layers: real qcow2
 * layers made with qemu-img and qemu-io over a base, stored as epochs,
 * folded with retention; what a restore reads back, put over the base as
 * a restoring agent does, must be the disk the original chain was. A
 * merge that fails changes nothing. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/store/image.h"
#include "agent/store/image_int.h"
#include "lib/wire/batch.h"

#define RAM        (64 * BATCH_PAGE)
#define DISK_BYTES (600u << 20) /* 3 L2 tables of a merged file */
#define MIB        (1u << 20)

static char top[64], store[128], work[128];
static uint8_t ram[RAM];

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command; it must succeed. */
static void sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static int exists(const char *name)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), "%s/j/v/%s", store, name);
    return stat(p, &st) == 0;
}

static void setup(void)
{
    snprintf(top, sizeof(top), "/tmp/vmckpt-merge-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    snprintf(store, sizeof(store), "%s/store", top);
    snprintf(work, sizeof(work), "%s/w", top);
    ck_assert_int_eq(mkdir(store, 0700), 0);
    ck_assert_int_eq(mkdir(work, 0700), 0);
}

static void teardown(void)
{
    sh("rm -rf %s", top);
}

/* ---- the guest's chain on its host ------------------------------------- */

/* Disk 0: base0.raw (patterns at 0-7 MiB and 300-301 MiB) under overlays
 * l1 ... l<n>. Disk 1: base1.raw, never written over. */
static void make_bases(void)
{
    sh("cd %s && qemu-img create -q -f raw base0.raw %u && "
       "qemu-io -f raw -c 'write -P 0xaa 0 7m' -c 'write -P 0xbb 300m 1m' "
       "base0.raw >/dev/null && "
       "qemu-img create -q -f raw base1.raw 1m && "
       "qemu-io -f raw -c 'write -P 0x55 4k 8k' base1.raw >/dev/null",
       work, DISK_BYTES);
}

/* Overlay l<i> over the one before it (the first over base0.raw), written
 * the ways a guest writes: whole clusters, single 2 KiB subclusters, a
 * 512-byte sector (its subcluster copied up from below), zeroes over data,
 * writes across clusters and MiBs, some over what older layers wrote. */
static void make_layer(unsigned i)
{
    unsigned a = (i * 37) % 96, p = 0x10 + i;
    char below[32], io[1024];

    snprintf(below, sizeof(below),
             i == 1 ? "base0.raw -F raw" : "l%u.qcow2 -F qcow2", i - 1);
    /* the last four: across the first L2 table's end, over and under the
     * base's data at 300 MiB, the disk's last 8 KiB */
    snprintf(io, sizeof(io),
             "-c 'write -P %u %uk 2k' -c 'write -P %u %uk 512' "
             "-c 'write -P %u %uk 130k' -c 'write -z %uk 6k' "
             "-c 'write -P %u %uk 64k' -c 'write -P %u 8184k 8k' "
             "-c 'write -P %u %u 3000' -c 'write -P %u %uk 8k' "
             "-c 'write -P %u %uk 2k' -c 'write -z %uk 2k' "
             "-c 'write -P %u %uk 8k'",
             p, 64 * a + 2 * (i % 32), p + 1, 64 * ((a + 5) % 96) + 3, p + 2,
             1000 + 60 * i, 3000 + 10 * i, p + 3, 64 * (i % 4) + 1024, p + 4,
             p + 5, 6 * MIB + i * 4096 + 1000, p + 6, 262144 - 4 - 2 * (i % 4),
             p + 7, 307200 + 6 * i, 307200 + 4 + 6 * (i % 5), p + 8,
             DISK_BYTES / 1024 - 8);
    sh("cd %s && qemu-img create -q -f qcow2 -u -b %s -o "
       "cluster_size=65536,extended_l2=on l%u.qcow2 %u && "
       "qemu-io -f qcow2 %s l%u.qcow2 >/dev/null",
       work, below, i, DISK_BYTES, io, i);
}

/* ---- epochs holding files as layers -------------------------------------- */

/* Send file 'path' as layer 'l' of disk 'k': its non-zero MiBs. */
static void send_file(struct image_writer *w, unsigned k, unsigned l,
                      const char *path, uint64_t *bytes, uint64_t *chunks)
{
    static uint8_t buf[MIB];
    struct vmckpt_error err;
    struct stat st;
    uint64_t off;
    int fd = open(path, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    *bytes = (uint64_t)st.st_size;
    for (off = 0; off < *bytes; off += MIB) {
        Vmckpt__DiskChunk c = VMCKPT__DISK_CHUNK__INIT;
        size_t len = *bytes - off < MIB ? (size_t)(*bytes - off) : MIB;

        ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
        if (batch_bytes_are_zero(buf, len))
            continue;
        c.disk = k;
        c.layer = l;
        c.offset = off;
        c.data.data = buf;
        c.data.len = len;
        c.xxh64 = batch_xxh64(buf, len);
        ck_assert_msg(image_writer_disk_chunk(w, &c, &err) == 0, "%s",
                      err.text);
        (*chunks)++;
    }
    close(fd);
}

/* Epoch 'epoch' of j/v: disk 0 carries the files 'l0' (names in the work
 * directory, 'n0' of them), disk 1 base1.raw when 'full'. */
static void put_epoch(uint64_t epoch, uint64_t parent, const char *const *l0,
                      unsigned n0, int full)
{
    struct vmckpt_error err;
    struct image_writer *w =
        image_writer_open(store, "j", "v", epoch, parent, RAM, 1, &err);
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    Vmckpt__DiskLayers dl[2] = {VMCKPT__DISK_LAYERS__INIT,
                                VMCKPT__DISK_LAYERS__INIT};
    Vmckpt__DiskLayers *dlp[2] = {&dl[0], &dl[1]};
    uint64_t sizes[2][8], bytes;
    char path[512];
    struct batch_builder b;
    Vmckpt__PageBatch msg;
    unsigned l;

    ck_assert_msg(w != NULL, "%s", err.text);
    ck_assert_int_eq(batch_builder_init(&b, 1), 0);
    batch_reset(&b, 0);
    batch_add(&b, 0, ram);
    vmckpt__page_batch__init(&msg);
    batch_finish(&b, &msg);
    ck_assert_int_eq(image_writer_batch(w, 0, &msg, &err), 0);
    batch_builder_dispose(&b);
    end.batches = 1;
    end.pages = 1;
    end.state_xxh64 = batch_xxh64("", 0);
    ck_assert_int_eq(image_writer_disks(w, 2, &err), 0);
    for (l = 0; l < n0; l++) {
        snprintf(path, sizeof(path), "%s/%s", work, l0[l]);
        send_file(w, 0, l, path, &sizes[0][l], &dl[0].chunks);
    }
    if (full) {
        snprintf(path, sizeof(path), "%s/base1.raw", work);
        send_file(w, 1, 0, path, &sizes[1][0], &dl[1].chunks);
    }
    dl[0].layer_bytes = sizes[0];
    dl[0].n_layer_bytes = n0;
    dl[1].layer_bytes = sizes[1];
    dl[1].n_layer_bytes = full ? 1 : 0;
    end.disks = dlp;
    end.n_disks = 2;
    ck_assert_msg(image_writer_commit(w, &end, &bytes, &err) == 0, "%s",
                  err.text);
}

/* Epoch 1 full (disk 0: base0.raw, as with base=copy, and l1), then
 * epochs 2 ... n, each with its one layer l<i>; the layers made first. */
static void put_epochs(unsigned from, unsigned n)
{
    char name[32];
    const char *one[1] = {name};
    const char *first[2] = {"base0.raw", "l1.qcow2"};
    unsigned i;

    for (i = from; i <= n; i++) {
        make_layer(i);
        if (i == 1) {
            put_epoch(1, 0, first, 2, 1);
            continue;
        }
        snprintf(name, sizeof(name), "l%u.qcow2", i);
        put_epoch(i, i - 1, one, 1, 0);
    }
}

/* ---- reading an epoch back as a restore does ------------------------------
 */

struct out {
    int fd[2][16];
};

static int got_chunk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                     const void *data, size_t len, uint64_t xxh64,
                     const uint8_t *seal, struct vmckpt_error *err)
{
    struct out *o = arg;
    char path[512];

    (void)err;
    ck_assert_ptr_null(seal);
    ck_assert_uint_lt(disk, 2);
    ck_assert_uint_lt(layer, 16);
    ck_assert_uint_eq(batch_xxh64(data, len), xxh64);
    if (o->fd[disk][layer] < 0) {
        snprintf(path, sizeof(path), "%s/r%u.%u", work, disk, layer);
        o->fd[disk][layer] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(o->fd[disk][layer], 0);
    }
    ck_assert_int_eq(pwrite(o->fd[disk][layer], data, len, (off_t)off),
                     (ssize_t)len);
    return 0;
}

/* Read epoch 'epoch' into r<K>.<L>, put each layer of disk 0 over the one
 * before (the first, a raw base), and check that the disks are the
 * original chain's top l<top> and base1.raw; 'nlayers' of disk 0. */
static void check_restore(uint64_t epoch, unsigned nlayers, unsigned ltop)
{
    static struct image_disk_sizes sz;
    struct vmckpt_error err;
    struct out o;
    char path[512];
    unsigned k, l;

    memset(o.fd, -1, sizeof(o.fd));
    ck_assert_msg(
        image_disk_read(store, "j", "v", epoch, got_chunk, &o, &sz, &err) == 0,
        "%s", err.text);
    ck_assert_uint_eq(sz.ndisks, 2);
    ck_assert_uint_eq(sz.nlayers[0], nlayers);
    ck_assert_uint_eq(sz.nlayers[1], 1);
    for (k = 0; k < 2; k++)
        for (l = 0; l < sz.nlayers[k]; l++) {
            snprintf(path, sizeof(path), "%s/r%u.%u", work, k, l);
            if (o.fd[k][l] < 0)
                o.fd[k][l] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
            ck_assert_int_eq(ftruncate(o.fd[k][l], (off_t)sz.bytes[k][l]), 0);
            close(o.fd[k][l]);
        }
    for (l = 1; l < nlayers; l++)
        sh("cd %s && qemu-img rebase -q -u -f qcow2 -b r0.%u -F %s r0.%u", work,
           l - 1, l == 1 ? "raw" : "qcow2", l);
    sh("cd %s && qemu-img compare -q -f qcow2 -F qcow2 r0.%u l%u.qcow2", work,
       nlayers - 1, ltop);
    sh("cd %s && cmp -s r1.0 base1.raw", work);
}

/* The names of the files of j/v, sorted, into 'buf'. */
static void listing(char *buf, size_t len)
{
    char cmd[512];
    FILE *f;
    size_t n;

    snprintf(cmd, sizeof(cmd), "ls %s/j/v | sort", store);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    pclose(f);
}

static void slurp(const char *name, char *buf, size_t len)
{
    char path[512];
    int fd;
    ssize_t n;

    snprintf(path, sizeof(path), "%s/j/v/%s", store, name);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    n = read(fd, buf, len - 1);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    close(fd);
}

/* ---- the tests ------------------------------------------------------------
 */

/* 12 epochs folded: the layers of 1 (but the base) to 11 become e11.d0.m;
 * the restore is the guest's disk; the merged-away files go. 2 more and a
 * fold that lends them as they are, the merged file kept; 6 more and a
 * fold again: the merged file and the newer layers become e19.d0.m. */
START_TEST(merge_on_fold)
{
    struct vmckpt_error err;
    static struct image_manifest m;
    const struct image_epoch *e;
    static char text[8192];
    char name[64];
    unsigned i;

    make_bases();
    put_epochs(1, 12);
    check_restore(12, 13, 12);
    ck_assert_msg(image_retain(store, "j", "v", 12, &err) == 11, "%s",
                  err.text);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 1);
    e = image_manifest_find(&m, 12);
    ck_assert_uint_eq(e->ninherit, 2);
    ck_assert_uint_eq(e->inherit[0], 1);
    ck_assert_uint_eq(e->inherit_layers[0][0], 1);
    ck_assert_uint_eq(e->inherit_layers[0][1], 1);
    ck_assert_uint_eq(e->inherit[1], 11);
    ck_assert_uint_eq(e->inherit_layers[1][0], 1 | IMAGE_INHERIT_MERGED);
    ck_assert_uint_eq(e->inherit_layers[1][1], 0 | IMAGE_INHERIT_MERGED);
    slurp("manifest", text, sizeof(text));
    ck_assert_msg(strstr(text, "disks 12 2 1 0 2 1 1 1 m11 1 0 bases") != NULL,
                  "%s", text);
    /* the base copy stays, the rest of epoch 1 and 2 ... 11 go */
    ck_assert(exists("e1.d0.l0") && exists("e1.d1.l0"));
    ck_assert(exists("e11.d0.m") && exists("e11.d0.m.sum"));
    ck_assert(!exists("e11.d1.m") && !exists("e11.d0.m.tmp"));
    ck_assert(!exists("e1.d0.l1") && !exists("e1.d0.l1.sum"));
    for (i = 2; i <= 11; i++) {
        snprintf(name, sizeof(name), "e%u.d0.l0", i);
        ck_assert_msg(!exists(name), "%s", name);
    }
    check_restore(12, 3, 12);
    sh("cd %s && qemu-img check -q -f qcow2 r0.1", work);

    /* a fold that lends few entries keeps the merged one merged */
    put_epochs(13, 14);
    ck_assert_msg(image_retain(store, "j", "v", 14, &err) == 2, "%s", err.text);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    e = image_manifest_find(&m, 14);
    ck_assert_uint_eq(e->ninherit, 4);
    ck_assert_uint_eq(e->inherit[1], 11);
    ck_assert_uint_eq(e->inherit_layers[1][0], 1 | IMAGE_INHERIT_MERGED);
    ck_assert(exists("e11.d0.m") && exists("e11.d0.m.sum"));
    check_restore(14, 5, 14);

    /* a second merge: the merged file and the newer layers */
    put_epochs(15, 20);
    ck_assert_msg(image_retain(store, "j", "v", 20, &err) == 6, "%s", err.text);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    e = image_manifest_find(&m, 20);
    ck_assert_uint_eq(e->ninherit, 2);
    ck_assert_uint_eq(e->inherit[0], 1);
    ck_assert_uint_eq(e->inherit[1], 19);
    ck_assert(exists("e19.d0.m") && !exists("e11.d0.m") &&
              !exists("e11.d0.m.sum") && !exists("e12.d0.l0"));
    check_restore(20, 3, 20);
    sh("cd %s && qemu-img check -q -f qcow2 r0.1", work);
}
END_TEST

/* A layer the merge finds damaged, then a file size limit while it
 * writes: the retention fails, the manifest and files are as they were;
 * once the damage is gone and there is room it merges. */
START_TEST(merge_failures)
{
    struct vmckpt_error err;
    static char before[8192], after[8192], mbefore[8192], mafter[8192];
    struct rlimit old, small;
    char path[512];
    uint8_t c;
    int fd;

    make_bases();
    put_epochs(1, 10);
    listing(before, sizeof(before));
    slurp("manifest", mbefore, sizeof(mbefore));

    snprintf(path, sizeof(path), "%s/j/v/e5.d0.l0", store);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, 100), 1);
    c ^= 1;
    ck_assert_int_eq(pwrite(fd, &c, 1, 100), 1);
    ck_assert_int_eq(image_retain(store, "j", "v", 10, &err), -1);
    ck_assert_msg(strstr(err.text, "e5.d0.l0") != NULL &&
                      strstr(err.text, "checksum mismatch") != NULL,
                  "%s", err.text);
    listing(after, sizeof(after));
    slurp("manifest", mafter, sizeof(mafter));
    ck_assert_str_eq(after, before);
    ck_assert_str_eq(mafter, mbefore);
    c ^= 1;
    ck_assert_int_eq(pwrite(fd, &c, 1, 100), 1);
    close(fd);

    /* room for the RAM's base image, not for the merged layer */
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = 512 * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
    ck_assert_int_eq(image_retain(store, "j", "v", 10, &err), -1);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_msg(strstr(err.text, "merging") != NULL, "%s", err.text);
    listing(after, sizeof(after));
    slurp("manifest", mafter, sizeof(mafter));
    ck_assert_str_eq(after, before);
    ck_assert_str_eq(mafter, mbefore);

    ck_assert_msg(image_retain(store, "j", "v", 10, &err) == 9, "%s", err.text);
    ck_assert(exists("e9.d0.m"));
    check_restore(10, 3, 10);
}
END_TEST

/* Layers that are no qcow2 (or not merged for another reason) are lent as
 * they are, as before merging existed. */
START_TEST(unmergeable_lent)
{
    struct vmckpt_error err;
    static struct image_manifest m;
    const char *one[1] = {"junk"};
    unsigned i;

    sh("cd %s && head -c 3000000 /dev/urandom >junk && "
       "qemu-img create -q -f raw base1.raw 1m",
       work);
    put_epoch(1, 0, one, 1, 1);
    for (i = 2; i <= 10; i++)
        put_epoch(i, i - 1, one, 1, 0);
    ck_assert_msg(image_retain(store, "j", "v", 10, &err) == 9, "%s", err.text);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(image_manifest_find(&m, 10)->ninherit, 9);
    ck_assert(!exists("e9.d0.m") && exists("e2.d0.l0"));
}
END_TEST

/* The manifest's merged entries: "m<X>", counts 0 or 1, in order. */
START_TEST(manifest_merged_entries)
{
    static const char *const bad[] = {
        "disks 5 1 1 2 1 1 m3 2 bases 0000000000000001\n",
        "disks 5 1 1 2 1 1 m 3 1 bases 0000000000000001\n",
        "disks 5 1 1 2 1 1 mx 1 bases 0000000000000001\n",
        "disks 5 1 1 2 1 1 m5 1 bases 0000000000000001\n",
        "disks 5 1 1 2 m3 1 2 1 bases 0000000000000001\n",
        "disks 5 1 1 2 1 1 m-3 1 bases 0000000000000001\n",
    };
    static struct image_manifest m;
    struct vmckpt_error err;
    char path[512];
    size_t i;
    FILE *f;

    snprintf(path, sizeof(path), "%s/j", store);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/j/v", store);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/j/v/manifest", store);
    for (i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "vmckpt-store 1 ram_bytes %u\n"
                "epoch 5 parent 0 pages %u state 0 state_xxh64 "
                "0000000000000000 base 1\n%s",
                RAM, RAM,
                i < sizeof(bad) / sizeof(bad[0])
                    ? bad[i]
                    : "disks 5 1 1 2 1 1 m3 1 bases 0000000000000001\n");
        fclose(f);
        if (i < sizeof(bad) / sizeof(bad[0])) {
            ck_assert_msg(image_manifest_load(store, "j", "v", &m, &err) < 0,
                          "accepted %s", bad[i]);
            continue;
        }
        ck_assert_msg(image_manifest_load(store, "j", "v", &m, &err) == 0, "%s",
                      err.text);
        ck_assert_uint_eq(m.e[0].ninherit, 2);
        ck_assert_uint_eq(m.e[0].inherit_layers[1][0],
                          1 | IMAGE_INHERIT_MERGED);
    }
}
END_TEST

static int have(const char *prog)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "%s --version >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

int main(void)
{
    Suite *s = suite_create("merge");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, unmergeable_lent);
    tcase_add_test(tc, manifest_merged_entries);
    if (have("qemu-img") && have("qemu-io")) {
        tcase_add_test(tc, merge_on_fold);
        tcase_add_test(tc, merge_failures);
    } else {
        printf("qemu-img or qemu-io not installed: no merge tests\n");
    }
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
