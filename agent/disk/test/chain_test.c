/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of a guest's disk chains: made over a base with the real
 * qemu-img, recorded and loaded again, turned into QEMU's disks; bad bases
 * and damaged records refused with their reason, nothing left behind. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/disk/disk.h"
#include "lib/qemu/qemu_argv.h"
#include "lib/qemu/qemu_img.h"
#include "lib/qemu/qmp.h"
#include "lib/wire/batch.h"

#define BASE_BYTES (64ULL << 20)

static char top[64], disks[1024], base[128];

static void setup(void)
{
    int fd;

    snprintf(top, sizeof(top), "/tmp/vmckpt-chain-test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    snprintf(disks, sizeof(disks), "%s/disks", top);
    snprintf(base, sizeof(base), "%s/base.img", top);
    fd = open(base, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)BASE_BYTES), 0);
    close(fd);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    ck_assert_int_eq(system(cmd), 0);
}

/* A spec of job j1, guest g1, with the one disk 'path' of 'format'. */
static void one_disk(Vmckpt__VmSpec *s, Vmckpt__DiskSpec *d,
                     Vmckpt__DiskSpec **dp, const char *path,
                     const char *format)
{
    vmckpt__vm_spec__init(s);
    vmckpt__disk_spec__init(d);
    s->job = "j1";
    s->name = "g1";
    d->path = (char *)path;
    d->format = (char *)format;
    dp[0] = d;
    s->disks = dp;
    s->n_disks = 1;
}

static int exists(const char *fmt, const char *a)
{
    char p[512];
    struct stat st;

    snprintf(p, sizeof(p), fmt, a);
    return stat(p, &st) == 0;
}

START_TEST(create_and_load)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c, *l;
    struct qemu_img_info info;
    struct disk_argv *a;
    const struct qemu_disk *qd;
    char path[512];
    size_t n;

    one_disk(&s, &d, dp, base, "raw");
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert_uint_eq(c->ndisks, 1);
    ck_assert_uint_eq(c->d[0].vsize, BASE_BYTES);
    ck_assert_uint_eq(c->d[0].nlayers, 2);
    ck_assert_int_eq(c->d[0].layers[0].role, DISK_ACC);
    ck_assert_int_eq(c->d[0].layers[1].role, DISK_ACTIVE);
    ck_assert_str_eq(c->d[0].base, "shared");

    /* the active overlay is over acc, acc over the base */
    snprintf(path, sizeof(path), "%s/j1/g1/%s", disks, c->d[0].layers[1].file);
    ck_assert_int_eq(qemu_img_info("qemu-img", path, "qcow2", &info, &err), 0);
    ck_assert_str_eq(info.format, "qcow2");
    ck_assert_uint_eq(info.virtual_size, BASE_BYTES);
    ck_assert_str_eq(info.backing, c->d[0].layers[0].file); /* relative */
    snprintf(path, sizeof(path), "%s/j1/g1/%s", disks, c->d[0].layers[0].file);
    ck_assert_int_eq(qemu_img_info("qemu-img", path, "qcow2", &info, &err), 0);
    ck_assert_str_eq(info.backing, base);

    l = disk_chain_load(disks, "qemu-img", "j1", "g1", &err);
    ck_assert_msg(l != NULL, "%s", err.text);
    ck_assert_mem_eq(l->d, c->d, sizeof(c->d));
    ck_assert_uint_eq(l->ndisks, c->ndisks);

    a = disk_argv_create(l, &err);
    ck_assert_ptr_nonnull(a);
    qd = disk_argv_disks(a, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(qd[0].nlayers, 3);
    ck_assert_str_eq(qd[0].layers[0].path, base);
    ck_assert_str_eq(qd[0].layers[0].format, "raw");
    ck_assert_int_eq(qd[0].layers[0].read_only, 1);
    ck_assert_str_eq(qd[0].layers[1].node, "d0g1");
    ck_assert_int_eq(qd[0].layers[1].read_only, 0); /* acc: merges write */
    ck_assert_str_eq(qd[0].layers[2].node, "d0g2");
    ck_assert_int_eq(qd[0].layers[2].read_only, 0);
    disk_argv_destroy(a);

    disk_chain_remove(l);
    ck_assert(!exists("%s/j1", disks));
    disk_chain_destroy(l);
    disk_chain_destroy(c);
}
END_TEST

/* A refusal whose text holds 'want', and no chain left on the host. */
static void refused(const char *path, const char *format, const char *want)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c;

    one_disk(&s, &d, dp, path, format);
    memset(&err, 0, sizeof(err));
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.text, want) != NULL, "'%s' lacks '%s'", err.text,
                  want);
    ck_assert(!exists("%s/j1/g1", disks));
}

START_TEST(bad_bases)
{
    char other[160], cmd[512];

    refused("/nonexistent/base.img", "raw",
            "disk 0: base image /nonexistent/base.img: No such file");
    refused(top, "raw", "Is a directory");
    refused(base, "qcow2", "is a raw image, not qcow2");
    /* a qcow2 base with a backing file of its own is not self-contained */
    snprintf(other, sizeof(other), "%s/over.qcow2", top);
    snprintf(cmd, sizeof(cmd),
             "qemu-img create -q -f qcow2 -b %s -F raw %s >/dev/null", base,
             other);
    ck_assert_int_eq(system(cmd), 0);
    refused(other, "qcow2", "has a backing file");
    refused(other, "raw", "is a qcow2 image, not raw");
    snprintf(other, sizeof(other), "%s,x", base);
    refused(other, "raw", "absolute path without");
    refused("relative.img", "raw", "absolute path");
}
END_TEST

static void write_record(const char *text)
{
    char p[512];
    FILE *f;

    snprintf(p, sizeof(p), "%s/j1/g1/chain", disks);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(damaged_records)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c;

    /* none at all */
    ck_assert_ptr_null(disk_chain_load(disks, "qemu-img", "j1", "g1", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "No such file"));

    one_disk(&s, &d, dp, base, "raw");
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    write_record(
        "vmckpt-chain 1\ndisk 0 format raw base shared vsize 1 "
        "next 2 digest 0 stat - path /x\nlayer 0 9 active 0 d0.g9.qcow2\n");
    ck_assert_ptr_null(disk_chain_load(disks, "qemu-img", "j1", "g1", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "line 3 is malformed"));
    write_record(
        "vmckpt-chain 1\ndisk 0 format raw base shared vsize 1 "
        "next 2 digest 0 stat - path /x\nlayer 0 1 acc 0 ../../etc/passwd\n");
    ck_assert_ptr_null(disk_chain_load(disks, "qemu-img", "j1", "g1", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "line 3 is malformed"));
    write_record(
        "vmckpt-chain 1\ndisk 0 format raw base shared vsize 1 "
        "next 2 digest 0 stat - path /x\nlayer 0 1 acc 0 d0.g1.qcow2\n");
    ck_assert_ptr_null(disk_chain_load(disks, "qemu-img", "j1", "g1", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "without its active layer"));
    write_record("vmckpt-chain 2\n");
    ck_assert_ptr_null(disk_chain_load(disks, "qemu-img", "j1", "g1", &err));
    ck_assert_ptr_nonnull(strstr(err.text, "line 1 is malformed"));
    disk_chain_remove(c);
    disk_chain_destroy(c);
}
END_TEST

START_TEST(new_guest_starts_afresh)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c;
    char p[512];
    int fd;

    one_disk(&s, &d, dp, base, "raw");
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    snprintf(p, sizeof(p), "%s/j1/g1/leftover", disks);
    fd = open(p, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    disk_chain_destroy(c);
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert(!exists("%s/j1/g1/leftover", disks));
    ck_assert_uint_eq(c->d[0].layers[1].gen, 2);
    disk_chain_remove(c);
    disk_chain_destroy(c);
}
END_TEST

static int keep_g1(void *arg, const char *job, const char *vm)
{
    (void)arg;
    return strcmp(job, "j1") == 0 && strcmp(vm, "g1") == 0;
}

/* An agent's start: chains no guest of its runs on go, and unfinished
 * restores; the kept one stays whole; an emptied job dir goes. */
START_TEST(sweep_orphans)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c[3];
    char p[512];
    unsigned i;

    one_disk(&s, &d, dp, base, "raw");
    for (i = 0; i < 3; i++) {
        s.job = i < 2 ? "j1" : "j2";
        s.name = i == 0 ? "g1" : "g2";
        c[i] = disk_chain_create(disks, "qemu-img", &s, &err);
        ck_assert_msg(c[i] != NULL, "%s", err.text);
    }
    snprintf(p, sizeof(p), "%s/j1/.g3.restore", disks);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    ck_assert_uint_eq(disk_dir_sweep(disks, keep_g1, NULL), 3);
    ck_assert(exists("%s/j1/g1/chain", disks));
    ck_assert(!exists("%s/j1/g2", disks));
    ck_assert(!exists("%s/j1/.g3.restore", disks));
    ck_assert(!exists("%s/j2", disks));
    ck_assert_uint_eq(disk_dir_sweep(disks, keep_g1, NULL), 0);
    disk_chain_remove(c[0]);
    for (i = 0; i < 3; i++)
        disk_chain_destroy(c[i]);
}
END_TEST

/* The base's digest: taken once, trusted while its stat is the same,
 * taken again when it changed; different content refuses. */
START_TEST(base_digest)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c, *l;
    uint64_t d1;
    int fd;

    one_disk(&s, &d, dp, base, "raw");
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert_uint_eq(c->d[0].digest, 0);
    ck_assert_msg(disk_check_bases(c, &err) == 0, "%s", err.text);
    d1 = c->d[0].digest;
    ck_assert_uint_ne(d1, 0);
    ck_assert_int_eq(disk_base_digest(base, &d1, &err), 0);
    ck_assert_uint_eq(d1, c->d[0].digest);
    /* recorded: a new agent knows it */
    l = disk_chain_load(disks, "qemu-img", "j1", "g1", &err);
    ck_assert_msg(l != NULL, "%s", err.text);
    ck_assert_uint_eq(l->d[0].digest, d1);
    ck_assert_str_eq(l->d[0].stat, c->d[0].stat);
    /* touched, same content: fine, the new stat recorded */
    fd = open(base, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\0", 1, 4096), 1);
    ck_assert_msg(disk_check_bases(l, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(l->d[0].digest, d1);
    /* one byte changed: refused */
    ck_assert_int_eq(pwrite(fd, "x", 1, (3u << 20) + 5), 1);
    close(fd);
    ck_assert_int_ne(disk_check_bases(l, &err), 0);
    ck_assert_msg(strstr(err.text, "changed since the guest started") != NULL,
                  "%s", err.text);
    disk_chain_destroy(l);
    disk_chain_remove(c);
    disk_chain_destroy(c);
}
END_TEST

/* Send file 'src' to 'r' as disk 0's layer 'l' of a restore, as a store
 * would; its size into 'sz'. */
static void send_file(struct disk_recv *r, const char *src, unsigned l,
                      struct image_disk_sizes *sz)
{
    static uint8_t buf[1u << 20];
    struct vmckpt_error err;
    struct stat st;
    uint64_t off;
    int fd = open(src, O_RDONLY);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    sz->bytes[0][l] = (uint64_t)st.st_size;
    for (off = 0; off < (uint64_t)st.st_size; off += sizeof(buf)) {
        ssize_t got = pread(fd, buf, sizeof(buf), (off_t)off);

        ck_assert_int_gt(got, 0);
        ck_assert_int_eq(disk_recv_chunk(r, 0, l, off, buf, (size_t)got,
                                         batch_xxh64(buf, (size_t)got), NULL,
                                         &err),
                         0);
    }
    close(fd);
}

/* qemu-io reads 'len' bytes of 'file' at 'off' and finds them all 'pat'. */
static int reads_as(const char *file, unsigned pat, unsigned off, unsigned len)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd),
             "qemu-io -r -f qcow2 -c 'read -P %u %u %u' %s >%s/io 2>&1 && "
             "grep -q 'read %u/%u' %s/io && ! grep -qi fail %s/io",
             pat, off, len, file, top, len, len, top, top);
    return system(cmd) == 0;
}

/* A restore's chain from a store's layers: 'n' layers, each written
 * over the one before (layer i sets 64 KiB at i x 64 KiB to 0x10 + i and
 * the first 4 KiB to its own value); more than a chain takes are written
 * into one. The disk reads the same either way. 'copy': base=copy, the
 * base (0x42 at 32 MiB) sent first, the spec's path absent here. */
static struct disk_chain *restore_layers(unsigned n, int copy, int keep)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_recv *r;
    struct disk_chain *c;
    static struct image_disk_sizes sz;
    char src[1200], prev[256], cmd[1024], top_file[1200], gone[256];
    unsigned i;

    memset(&sz, 0, sizeof(sz));
    snprintf(cmd, sizeof(cmd),
             "qemu-io -f raw -c 'write -P 66 32m 64k' %s >/dev/null", base);
    ck_assert_int_eq(system(cmd), 0);
    for (i = 0; i < n; i++) {
        snprintf(src, sizeof(src), "%s/l%u.qcow2", top, i);
        snprintf(cmd, sizeof(cmd),
                 "qemu-img create -q -f qcow2 -b %s -F %s %s %llu && "
                 "qemu-io -f qcow2 -c 'write -P %u %u 64k' -c 'write -P %u 0 "
                 "4k' %s >/dev/null",
                 i ? prev : base, i ? "qcow2" : "raw", src,
                 (unsigned long long)BASE_BYTES, 0x10 + i, i * 65536, 0x80 + i,
                 src);
        ck_assert_int_eq(system(cmd), 0);
        snprintf(prev, sizeof(prev), "%s", src);
    }
    snprintf(gone, sizeof(gone), "%s/not-on-this-host.img", top);
    one_disk(&s, &d, dp, copy ? gone : base, "raw");
    d.base_mode = copy ? "copy" : "shared";
    r = disk_recv_open(disks, "qemu-img", &s, 7, &err);
    ck_assert_msg(r != NULL, "%s", err.text);
    sz.ndisks = 1;
    sz.nlayers[0] = n + (copy ? 1 : 0);
    ck_assert_int_eq(disk_base_digest(base, &sz.base[0], &err), 0);
    if (copy)
        send_file(r, base, 0, &sz);
    for (i = 0; i < n; i++) {
        snprintf(src, sizeof(src), "%s/l%u.qcow2", top, i);
        send_file(r, src, i + (copy ? 1 : 0), &sz);
    }
    ck_assert_msg(disk_recv_finish(r, &sz, &err) == 0, "%s", err.text);
    c = disk_recv_install(r, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    ck_assert_uint_eq(c->d[0].nlayers, n > 12 ? 3 : n + 2);
    if (copy) { /* the chain's own base, the one sent */
        snprintf(src, sizeof(src), "%s/base0.raw", c->dir);
        ck_assert_str_eq(c->d[0].path, src);
        ck_assert_uint_eq(c->d[0].vsize, BASE_BYTES);
        ck_assert_int_eq(access(gone, F_OK), -1);
    }
    disk_layer_path(c, &c->d[0].layers[c->d[0].nlayers - 1], top_file,
                    sizeof(top_file));
    for (i = 0; i < n; i++)
        ck_assert_msg(reads_as(top_file, 0x10 + i, i * 65536 + 4096, 61440),
                      "layer %u's data", i);
    ck_assert_msg(reads_as(top_file, 0x80 + n - 1, 0, 4096),
                  "the newest layer wins");
    ck_assert_msg(reads_as(top_file, 66, 32u << 20, 65536), "the base's data");
    disk_recv_close(r);
    if (keep)
        return c;
    disk_chain_remove(c);
    disk_chain_destroy(c);
    return NULL;
}

START_TEST(restore_few_layers)
{
    (void)restore_layers(3, 0, 0);
}
END_TEST

START_TEST(restore_many_layers)
{
    (void)restore_layers(14, 0, 0);
}
END_TEST

START_TEST(restore_copied_base)
{
    (void)restore_layers(3, 1, 0);
    (void)restore_layers(14, 1, 0);
}
END_TEST

/* A copied base that is not the one the epoch names is refused, and
 * nothing is left of the restore; so is a chunk sent twice. */
START_TEST(restore_copied_base_differs)
{
    static uint8_t one[4096];
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_recv *r;
    static struct image_disk_sizes sz;
    char gone[256];

    memset(&sz, 0, sizeof(sz));
    snprintf(gone, sizeof(gone), "%s/not-on-this-host.img", top);
    one_disk(&s, &d, dp, gone, "raw");
    d.base_mode = "copy";
    r = disk_recv_open(disks, "qemu-img", &s, 7, &err);
    ck_assert_msg(r != NULL, "%s", err.text);
    sz.ndisks = 1;
    sz.nlayers[0] = 1;
    ck_assert_int_eq(disk_base_digest(base, &sz.base[0], &err), 0);
    sz.base[0] ^= 1;
    send_file(r, base, 0, &sz);
    /* a chunk that came already is refused (with another one missing,
     * the count at the end would match) */
    ck_assert_int_eq(disk_recv_chunk(r, 0, 0, 1u << 20, one, sizeof(one),
                                     batch_xxh64(one, sizeof(one)), NULL, &err),
                     -1);
    ck_assert_msg(strstr(err.text, "layer 0: the chunk at 1048576 came twice"),
                  "%s", err.text);
    ck_assert_int_eq(disk_recv_finish(r, &sz, &err), -1);
    ck_assert_msg(strstr(err.text, "the base image the store kept has digest"),
                  "%s", err.text);
    disk_recv_close(r);
    ck_assert(!exists("%s/disks/j1/.g1.restore", top));
    ck_assert(!exists("%s/disks/j1/g1", top));
}
END_TEST

/* ---- the cut and the merge, on a real QEMU (no guest: vCPUs stopped
 * from the start, writes made by QEMU's own qemu-io on the active node) */

static pid_t qemu_pid;
static struct qmp *mon;

static int qmp_cb(void *arg, const char *cmd, json_t *args, json_t **ret,
                  struct vmckpt_error *err)
{
    return qmp_execute(arg, cmd, args, ret, err);
}

/* Start QEMU on chain 'c' with the argv the agent would use, less the
 * kernel (no guest is booted), and connect to its monitor. */
static void start_qemu(const struct disk_chain *c)
{
    struct qemu_spec q;
    struct disk_argv *da;
    struct vmckpt_error err;
    char qmp_path[128], log[128], **argv, *keep[128];
    size_t i, n = 0;

    snprintf(qmp_path, sizeof(qmp_path), "%s/qmp.sock", top);
    snprintf(log, sizeof(log), "%s/qemu.log", top);
    da = disk_argv_create(c, &err);
    ck_assert_ptr_nonnull(da);
    memset(&q, 0, sizeof(q));
    q.name = "g1";
    q.mem_mb = 64;
    q.vcpus = 1;
    q.accel = "tcg";
    q.kernel = "/dev/null";
    q.qmp_path = qmp_path;
    q.serial_log = log;
    q.paused = 1;
    q.disks = disk_argv_disks(da, &q.ndisks);
    argv = qemu_argv_build(&q, &err);
    ck_assert_msg(argv != NULL, "%s", err.text);
    for (i = 0; argv[i] != NULL && n + 1 < 128; i++) {
        if (strcmp(argv[i], "-kernel") == 0 ||
            strcmp(argv[i], "-append") == 0) {
            i++;
            continue;
        }
        keep[n++] = argv[i];
    }
    keep[n] = NULL;
    qemu_pid = fork();
    ck_assert_int_ge(qemu_pid, 0);
    if (qemu_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

        dup2(fd, 1);
        dup2(fd, 2);
        execvp(keep[0], keep);
        _exit(127);
    }
    qemu_argv_free(argv);
    disk_argv_destroy(da);
    for (i = 0; i < 400; i++) {
        mon = qmp_open(qmp_path, 1000, &err);
        if (mon != NULL)
            break;
        ck_assert_int_eq(waitpid(qemu_pid, NULL, WNOHANG), 0);
        usleep(25000);
    }
    ck_assert_msg(mon != NULL, "QMP: %s", err.text);
}

static void stop_qemu(void)
{
    qmp_close(mon);
    kill(qemu_pid, SIGKILL);
    waitpid(qemu_pid, NULL, 0);
}

/* QEMU's qemu-io on node 'node' (or, "-d vd0", the guest's device):
 * "write -P 0xab 0 64k", "read -P ...". Returns what it printed. */
static char *qemu_io(const char *node, const char *cmd)
{
    static char out[1024];
    struct vmckpt_error err;
    char line[256];
    json_t *args, *ret = NULL;

    snprintf(line, sizeof(line), "qemu-io %s \"%s\"", node, cmd);
    args = json_pack("{s:s}", "command-line", line);
    ck_assert_msg(qmp_execute(mon, "human-monitor-command", args, &ret, &err) ==
                      0,
                  "%s", err.text);
    snprintf(out, sizeof(out), "%s", json_string_value(ret));
    json_decref(args);
    json_decref(ret);
    return out;
}

/* 1 if the QEMU under test has 'path' open (deleted or not). */
static int holds_file(const char *path)
{
    char dir[64], link[512], to[1024];
    struct dirent *de;
    DIR *d;
    int found = 0;
    ssize_t n;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)qemu_pid);
    d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    while (!found && (de = readdir(d)) != NULL) {
        snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
        n = readlink(link, to, sizeof(to) - 1);
        if (n <= 0)
            continue;
        to[n] = '\0';
        found = strncmp(to, path, strlen(path)) == 0;
    }
    closedir(d);
    return found;
}

START_TEST(cut_and_merge)
{
    Vmckpt__VmSpec s;
    Vmckpt__DiskSpec d, *dp[1];
    struct vmckpt_error err;
    struct disk_chain *c, *l;
    char node[32], path[512], frozen1[512];
    uint64_t us;

    one_disk(&s, &d, dp, base, "raw");
    c = disk_chain_create(disks, "qemu-img", &s, &err);
    ck_assert_msg(c != NULL, "%s", err.text);
    start_qemu(c);
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "write -P 0xab 0 64k"),
                     "");

    /* epoch 1: the overlay prepared, then the transaction */
    ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s", err.text);
    ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(c->d[0].nlayers, 2);
    ck_assert_msg(disk_cut(c, qmp_cb, mon, 1, &us, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(c->d[0].nlayers, 3);
    ck_assert_int_eq(c->d[0].layers[1].role, DISK_FROZEN);
    ck_assert_uint_eq(c->d[0].layers[1].label, 1);
    ck_assert_int_eq(c->d[0].layers[2].role, DISK_ACTIVE);
    disk_layer_path(c, &c->d[0].layers[1], frozen1, sizeof(frozen1));
    /* the guest writes to the new top; the frozen layer keeps epoch 1 */
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "write -P 0xcd 64k 64k"),
                     "");
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "write -P 0xee 0 4k"),
                     "");

    /* the record says what QEMU runs */
    l = disk_chain_load(disks, "qemu-img", "j1", "g1", &err);
    ck_assert_msg(l != NULL, "%s", err.text);
    ck_assert_mem_eq(l->d[0].layers, c->d[0].layers, sizeof(c->d[0].layers));
    disk_chain_destroy(l);

    /* epoch 2 cut, then a prepared overlay abandoned (a failed epoch 3) */
    ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s", err.text);
    ck_assert_msg(disk_cut(c, qmp_cb, mon, 2, &us, &err) == 0, "%s", err.text);
    ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s", err.text);
    snprintf(path, sizeof(path), "%s/j1/g1/d0.g%u.qcow2", disks,
             c->d[0].prep_gen);
    ck_assert(access(path, F_OK) == 0);
    disk_cut_abandon(c, qmp_cb, mon);
    ck_assert(access(path, F_OK) < 0);
    ck_assert_uint_eq(c->d[0].prep_gen, 0);

    /* epoch 1 committed: its layer merged into acc, its file gone; epoch
     * 2's stays (not committed); the guest's view is unchanged */
    ck_assert_msg(disk_merge(c, qmp_cb, mon, 1, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(c->d[0].nlayers, 3);
    ck_assert_int_eq(c->d[0].layers[0].role, DISK_ACC);
    ck_assert_uint_eq(c->d[0].layers[0].label, 1);
    ck_assert_int_eq(c->d[0].layers[1].role, DISK_FROZEN);
    ck_assert_uint_eq(c->d[0].layers[1].label, 2);
    ck_assert(access(frozen1, F_OK) < 0);
    ck_assert_msg(!holds_file(frozen1), "QEMU still holds %s open", frozen1);
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 0xee 0 4k"),
                     "");
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 0xab 4k 60k"),
                     "");
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 0xcd 64k 64k"),
                     "");
    /* and acc alone holds epoch 1's writes */
    disk_node_name(0, &c->d[0].layers[0], node, sizeof(node));
    ck_assert_str_eq(qemu_io(node, "read -P 0xab 0 64k"), "");
    ck_assert_msg(disk_merge(c, qmp_cb, mon, 2, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(c->d[0].nlayers, 2);

    /* an agent that died after preparing: the next one (its record) finds
     * the unused overlay and replaces it */
    ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s", err.text);
    l = disk_chain_load(disks, "qemu-img", "j1", "g1", &err);
    ck_assert_msg(l != NULL, "%s", err.text);
    ck_assert_msg(disk_prepare_cut(l, qmp_cb, mon, &err) == 0, "%s", err.text);
    /* one that died after the transaction, before the record: refused
     * (the record before the cut put back) */
    snprintf(path, sizeof(path), "cp %s/j1/g1/chain %s/chain.before", disks,
             top);
    ck_assert_int_eq(system(path), 0);
    ck_assert_msg(disk_cut(l, qmp_cb, mon, 3, &us, &err) == 0, "%s", err.text);
    snprintf(path, sizeof(path), "mv %s/chain.before %s/j1/g1/chain", top,
             disks);
    ck_assert_int_eq(system(path), 0);
    disk_chain_destroy(l);
    l = disk_chain_load(disks, "qemu-img", "j1", "g1", &err);
    ck_assert_msg(l != NULL, "%s", err.text);
    ck_assert_int_ne(disk_prepare_cut(l, qmp_cb, mon, &err), 0);
    ck_assert_msg(strstr(err.text, "not in its record") != NULL, "%s",
                  err.text);
    disk_chain_destroy(l);
    stop_qemu();
    disk_chain_remove(c);
    disk_chain_destroy(c);
}
END_TEST

/* A merge in a chain dir of a long path (installs put clusters' state
 * dirs deep): the layer above the merged one gets acc's short name as its
 * backing, not QEMU's "json:{...}" of the chain, which passes the 1023
 * bytes qcow2 takes and failed the merge. */
START_TEST(merge_at_long_path)
{
    struct vmckpt_error err;
    struct disk_chain *c;
    char cmd[1200];
    uint64_t us;
    unsigned i, len;

    len = (unsigned)strlen(disks);
    for (i = 0; i < 6; i++) /* ~700 characters */
        len += (unsigned)snprintf(disks + len, sizeof(disks) - len,
                                  "/a-directory-name-of-a-deep-install-path-"
                                  "for-the-disk-chains-%u-%s",
                                  i, "with-some-more-words-in-it-too");
    snprintf(cmd, sizeof(cmd), "mkdir -p %s", disks);
    ck_assert_int_eq(system(cmd), 0);
    /* as after a restore: a copied base, three restored layers */
    c = restore_layers(3, 1, 1);
    start_qemu(c);
    for (i = 1; i <= 2; i++) {
        ck_assert_str_eq(
            qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                    i == 1 ? "write -P 0x11 0 64k" : "write -P 0x22 64k 64k"),
            "");
        ck_assert_msg(disk_prepare_cut(c, qmp_cb, mon, &err) == 0, "%s",
                      err.text);
        ck_assert_msg(disk_cut(c, qmp_cb, mon, 7 + i, &us, &err) == 0, "%s",
                      err.text);
    }
    ck_assert_msg(disk_merge(c, qmp_cb, mon, 8, &err) == 0, "%s", err.text);
    ck_assert_int_eq(waitpid(qemu_pid, NULL, WNOHANG), 0); /* alive */
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 0x11 0 64k"),
                     "");
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 0x22 64k 64k"),
                     "");
    ck_assert_str_eq(qemu_io("-d /machine/peripheral/vd0/virtio-backend",
                             "read -P 66 32m 64k"),
                     "");
    stop_qemu();
    disk_chain_remove(c);
    disk_chain_destroy(c);
}
END_TEST

/* 1 if qemu-img runs here. */
static int have_qemu_img(void)
{
    return system("qemu-img --version >/dev/null 2>&1") == 0;
}

int main(void)
{
    Suite *s = suite_create("chain");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    if (!have_qemu_img()) {
        printf("SKIP: qemu-img not installed (apt-get install qemu-utils)\n");
        return 77;
    }
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_and_load);
    tcase_add_test(tc, bad_bases);
    tcase_add_test(tc, damaged_records);
    tcase_add_test(tc, new_guest_starts_afresh);
    tcase_add_test(tc, sweep_orphans);
    tcase_add_test(tc, base_digest);
    if (system("qemu-io --version >/dev/null 2>&1") == 0) {
        tcase_add_test(tc, restore_few_layers);
        tcase_add_test(tc, restore_many_layers);
        tcase_add_test(tc, restore_copied_base);
        tcase_add_test(tc, restore_copied_base_differs);
    } else {
        printf("qemu-io not installed: no restore tests\n");
    }
    if (system("qemu-system-x86_64 --version >/dev/null 2>&1") == 0) {
        tcase_add_test(tc, cut_and_merge);
        tcase_add_test(tc, merge_at_long_path);
    } else {
        printf("qemu-system-x86_64 not installed: no cut test\n");
    }
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
