/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the image store: full and delta epochs restore to the
 * bytes that were written, damage is refused with its place, names from
 * the network never become paths, a commit needs matching totals. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/store/image.h"
#include "agent/store/image_int.h"
#include "agent/store/sealed.h"
#include "lib/wire/batch.h"
#include "store_testlib.h"

#define NPAGES 64
#define RAM    (NPAGES * BATCH_PAGE)

static char store[64];
static uint8_t ram[RAM];

#define fill st_fill

/* Write 'epoch' of j/v holding 'pages' of the model RAM; sealed with
 * 'key' as an agent does (NULL: clear). */
static int put_epoch_k(uint64_t epoch, uint64_t parent, const uint64_t *pages,
                       size_t n, const char *state, const struct seal_key *key,
                       uint64_t *bytes, struct vmckpt_error *err)
{
    return st_put_epoch(store, epoch, parent, ram, RAM, pages, n, state, key,
                        bytes, err);
}

static int put_epoch(uint64_t epoch, uint64_t parent, const uint64_t *pages,
                     size_t n, const char *state, uint64_t *bytes,
                     struct vmckpt_error *err)
{
    return put_epoch_k(epoch, parent, pages, n, state, NULL, bytes, err);
}

static void restore_into(uint64_t epoch, uint8_t *out, char *state,
                         int expect_rc, struct vmckpt_error *err)
{
    ck_assert_int_eq(st_restore(store, epoch, RAM, out, state, err), expect_rc);
}

static void setup(void)
{
    st_store_make(store, sizeof(store));
    memset(ram, 0, sizeof(ram));
}

static void teardown(void)
{
    st_store_remove(store);
}

/* Epoch 1 full, epoch 2 a delta: each restores to its own RAM and state. */
START_TEST(full_and_delta)
{
    struct vmckpt_error err;
    uint64_t all[NPAGES], d[2] = {3, 9}, bytes;
    static uint8_t snap1[RAM], out[RAM];
    char state[64];
    size_t i, n = 0;

    for (i = 0; i < NPAGES; i += 2) {
        fill(ram + i * BATCH_PAGE, (unsigned)i);
        all[n++] = i;
    }
    ck_assert_int_eq(put_epoch(1, 0, all, n, "state-one", &bytes, &err), 0);
    ck_assert_uint_gt(bytes, 0);
    memcpy(snap1, ram, RAM);
    fill(ram + 3 * BATCH_PAGE, 1000);            /* written */
    memset(ram + 9 * BATCH_PAGE, 0, BATCH_PAGE); /* zeroed */
    ck_assert_int_eq(put_epoch(2, 1, d, 2, "state-two", &bytes, &err), 0);

    restore_into(2, out, state, 0, &err);
    ck_assert_mem_eq(out, ram, RAM);
    ck_assert_str_eq(state, "state-two");
    restore_into(1, out, state, 0, &err);
    ck_assert_mem_eq(out, snap1, RAM);
    ck_assert_str_eq(state, "state-one");
}
END_TEST

/* A flipped byte in a stored page file: restore refuses and says where. */
START_TEST(flipped_byte)
{
    struct vmckpt_error err;
    uint64_t p[1] = {5}, bytes;
    static uint8_t out[RAM];
    char state[64], path[128];
    uint8_t c;
    int fd;

    fill(ram + 5 * BATCH_PAGE, 5);
    ck_assert_int_eq(put_epoch(1, 0, p, 1, "s", &bytes, &err), 0);
    snprintf(path, sizeof(path), "%s/j/v/e1.pages", store);
    fd = open(path, O_RDWR);
    ck_assert_int_eq(pread(fd, &c, 1, 100), 1);
    c ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &c, 1, 100), 1);
    close(fd);
    restore_into(1, out, state, -1, &err);
    ck_assert_ptr_nonnull(strstr(err.text, "j/v epoch 1: damaged batch in"));
    ck_assert_ptr_nonnull(strstr(err.text, "at offset 0"));
}
END_TEST

/* Job and VM names with '/' or '..' are refused before any path exists. */
START_TEST(bad_names)
{
    struct vmckpt_error err;
    struct stat st;
    char path[128];

    ck_assert_ptr_null(
        image_writer_open(store, "../x", "v", 1, 0, RAM, 1, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "refused job/VM name"));
    ck_assert_ptr_null(
        image_writer_open(store, "j", "a/b", 1, 0, RAM, 1, &err));
    ck_assert_ptr_null(image_writer_open(store, "j", "..", 1, 0, RAM, 1, &err));
    ck_assert_ptr_null(image_writer_open(store, "", "v", 1, 0, RAM, 1, &err));
    ck_assert(!image_valid_name(".hidden"));
    ck_assert(image_valid_name("job-1.a_b"));
    snprintf(path, sizeof(path), "%s/x", store);
    ck_assert_int_eq(stat(path, &st), -1);
}
END_TEST

/* Missing parent, duplicate epoch, wrong totals or state checksum: refused;
 * nothing of a refused epoch stays behind. */
START_TEST(refusals)
{
    struct vmckpt_error err;
    struct image_writer *w;
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    uint64_t p[1] = {1}, bytes;
    struct image_manifest m;
    char path[128];

    fill(ram + BATCH_PAGE, 1);
    ck_assert_ptr_null(image_writer_open(store, "j", "v", 2, 1, RAM, 1, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "not in this store"));
    ck_assert_int_eq(put_epoch(1, 0, p, 1, "s", &bytes, &err), 0);
    ck_assert_ptr_null(image_writer_open(store, "j", "v", 1, 0, RAM, 1, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "already durable"));
    ck_assert_ptr_null(
        image_writer_open(store, "j", "v", 2, 1, 2 * RAM, 1, &err));

    w = image_writer_open(store, "j", "v", 2, 1, RAM, 1, &err);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(image_writer_state(w, 0, "abc", 3, &err), 0);
    ck_assert_int_eq(image_writer_state(w, 7, "abc", 3, &err), -1);
    end.state_bytes = 3;
    end.state_xxh64 = 42;
    ck_assert_int_eq(image_writer_commit(w, &end, &bytes, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
    snprintf(path, sizeof(path), "%s/j/v/e2.state.tmp", store);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 1);

    /* the base of a durable epoch cannot be dropped; the tip can */
    ck_assert_int_eq(put_epoch(2, 1, p, 1, "t", &bytes, &err), 0);
    ck_assert_int_eq(image_drop(store, "j", "v", 1, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "is the base of"));
    ck_assert_int_eq(image_drop(store, "j", "v", 2, &err), 0);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 1);
    snprintf(path, sizeof(path), "%s/j/v/e2.pages", store);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* Retention: keep epochs 2 and 3 of a chain 1 <- 2 <- 3: epoch 2 is folded
 * into a full image, epoch 1 goes, and 2 and 3 still restore exactly, even
 * a page that a delta zeroed. */
START_TEST(retain_folds)
{
    struct vmckpt_error err;
    struct image_manifest m;
    uint64_t all[NPAGES], d2[2] = {4, 6}, d3[1] = {8}, bytes;
    static uint8_t snap2[RAM], out[RAM];
    char state[64];
    size_t i, n = 0;

    for (i = 0; i < NPAGES; i += 2) {
        fill(ram + i * BATCH_PAGE, (unsigned)i);
        all[n++] = i;
    }
    ck_assert_int_eq(put_epoch(1, 0, all, n, "one", &bytes, &err), 0);
    fill(ram + 4 * BATCH_PAGE, 400);
    memset(ram + 6 * BATCH_PAGE, 0, BATCH_PAGE); /* zeroed by a delta */
    ck_assert_int_eq(put_epoch(2, 1, d2, 2, "two", &bytes, &err), 0);
    memcpy(snap2, ram, RAM);
    fill(ram + 8 * BATCH_PAGE, 800);
    ck_assert_int_eq(put_epoch(3, 2, d3, 1, "three", &bytes, &err), 0);

    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), 1);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_ptr_null(image_manifest_find(&m, 1));
    ck_assert_uint_eq(image_manifest_find(&m, 2)->parent, 0);
    ck_assert_uint_eq(image_manifest_find(&m, 3)->parent, 2);
    restore_into(3, out, state, 0, &err);
    ck_assert_mem_eq(out, ram, RAM);
    ck_assert_str_eq(state, "three");
    restore_into(2, out, state, 0, &err);
    ck_assert_mem_eq(out, snap2, RAM);
    /* idempotent */
    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), 0);
}
END_TEST

/* What a test does in a fold's window (image_fold_window): commit epoch
 * 'window_epoch' (a delta of the one before) or drop it, from another
 * thread, while the fold waits for it. */
static uint64_t window_epoch, window_pg;
static int window_drop, window_rc;
static struct vmckpt_error window_err;

static void *window_work(void *arg)
{
    uint64_t bytes;

    (void)arg;
    window_rc = window_drop
                    ? image_drop(store, "j", "v", window_epoch, &window_err)
                    : put_epoch(window_epoch, window_epoch - 1, &window_pg, 1,
                                "w", &bytes, &window_err);
    return NULL;
}

static void in_window(const char *st, const char *job, const char *vm,
                      uint64_t epoch)
{
    pthread_t t;

    (void)st, (void)job, (void)vm, (void)epoch;
    image_fold_window = NULL; /* once */
    ck_assert_int_eq(pthread_create(&t, NULL, window_work, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* A fold does not hold the manifest while it reads and writes: an epoch
 * committed by another thread meanwhile (a delta of the one folded) is
 * kept and restores; an epoch dropped meanwhile (after an abort) makes
 * retention start over, and it succeeds. */
START_TEST(fold_window)
{
    struct vmckpt_error err;
    struct image_manifest m;
    uint64_t all[NPAGES], d2 = 5, bytes;
    static uint8_t out[RAM];
    char state[64];
    size_t i;

    for (i = 0; i < NPAGES; i++) {
        fill(ram + i * BATCH_PAGE, (unsigned)i);
        all[i] = i;
    }
    ck_assert_int_eq(put_epoch(1, 0, all, NPAGES, "e1", &bytes, &err), 0);
    fill(ram + d2 * BATCH_PAGE, 500);
    ck_assert_int_eq(put_epoch(2, 1, &d2, 1, "e2", &bytes, &err), 0);
    window_epoch = 3, window_pg = 9, window_drop = 0;
    fill(ram + window_pg * BATCH_PAGE, 900);
    image_fold_window = in_window;
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_msg(window_rc == 0, "%s", window_err.text);
    ck_assert_ptr_null(image_fold_window); /* the window came */
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_int_eq(image_manifest_find(&m, 2)->base, 1);
    ck_assert_uint_eq(image_manifest_find(&m, 3)->parent, 2);
    restore_into(3, out, state, 0, &err);
    ck_assert_mem_eq(out, ram, RAM);
    ck_assert_str_eq(state, "w");
    /* a full epoch 4 in page records, dropped while retention folds it */
    ck_assert_int_eq(put_epoch(4, 0, all, NPAGES, "e4", &bytes, &err), 0);
    window_epoch = 4, window_drop = 1;
    image_fold_window = in_window;
    ck_assert_msg(image_retain(store, "j", "v", 4, &err) == 2, "%s", err.text);
    ck_assert_msg(window_rc == 0, "%s", window_err.text);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 0);
}
END_TEST

/* A fold writes a base image: page P at offset P x 4096, zero pages as
 * holes, the old page file gone; it restores exactly, and a flipped byte
 * in it is refused with the place of the damage. */
START_TEST(fold_to_base)
{
    struct vmckpt_error err;
    struct image_manifest m;
    uint64_t all[NPAGES], d2[2] = {4, 6}, bytes;
    static uint8_t snap2[RAM], out[RAM], page[BATCH_PAGE];
    char state[64], path[128];
    struct stat st;
    size_t i, n = 0;
    int fd;

    for (i = 0; i < NPAGES; i += 2) {
        fill(ram + i * BATCH_PAGE, (unsigned)i + 1000);
        all[n++] = i;
    }
    ck_assert_int_eq(put_epoch(1, 0, all, n, "one", &bytes, &err), 0);
    fill(ram + 4 * BATCH_PAGE, 4000);
    memset(ram + 6 * BATCH_PAGE, 0, BATCH_PAGE);
    ck_assert_int_eq(put_epoch(2, 1, d2, 2, "two", &bytes, &err), 0);
    memcpy(snap2, ram, RAM);

    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), 1);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 1);
    ck_assert_int_eq(image_manifest_find(&m, 2)->base, 1);
    ck_assert_uint_eq(image_manifest_find(&m, 2)->parent, 0);
    snprintf(path, sizeof(path), "%s/j/v/e2.pages", store);
    ck_assert_int_eq(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/j/v/e2.base", store);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, RAM);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, page, BATCH_PAGE, 4 * BATCH_PAGE), BATCH_PAGE);
    ck_assert_mem_eq(page, snap2 + 4 * BATCH_PAGE, BATCH_PAGE);
    ck_assert_int_eq(pread(fd, page, BATCH_PAGE, 10 * BATCH_PAGE), BATCH_PAGE);
    ck_assert_mem_eq(page, snap2 + 10 * BATCH_PAGE, BATCH_PAGE);
    restore_into(2, out, state, 0, &err);
    ck_assert_mem_eq(out, snap2, RAM);
    ck_assert_str_eq(state, "two");
    /* the base is the new full epoch: a later full epoch of records is
     * folded too, a base is left as it is */
    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), 0);

    page[100] ^= 0x40;
    ck_assert_int_eq(pwrite(fd, page, BATCH_PAGE, 10 * BATCH_PAGE), BATCH_PAGE);
    close(fd);
    restore_into(2, out, state, -1, &err);
    ck_assert_ptr_nonnull(strstr(err.text, "damaged base image"));
    ck_assert_ptr_nonnull(strstr(err.text, "e2.base"));
    ck_assert_ptr_nonnull(strstr(err.text, "offset 0"));
}
END_TEST

/* Parts writing at once, one thread each: every page travels in one part
 * (page % PARTS), its second copy after its first; the restore has the
 * last copy of every page, and a part out of range is refused. */
#define PARTS 4

struct part_arg {
    struct image_writer *w;
    unsigned part;
    int rc;
};

static void *write_part(void *arg)
{
    struct part_arg *pa = arg;
    struct batch_builder b;
    Vmckpt__PageBatch msg;
    struct vmckpt_error err;
    uint8_t page[BATCH_PAGE];
    unsigned round, p;

    pa->rc = batch_builder_init(&b, pa->part % 2);
    for (round = 0; round < 2 && pa->rc == 0; round++)
        for (p = pa->part; p < NPAGES && pa->rc == 0; p += PARTS) {
            /* one page per batch: the parts' records interleave */
            fill(page, p * 2 + round);
            batch_reset(&b, round);
            batch_add(&b, p, page);
            vmckpt__page_batch__init(&msg);
            batch_finish(&b, &msg);
            pa->rc = image_writer_batch(pa->w, pa->part, &msg, &err);
        }
    batch_builder_dispose(&b);
    return NULL;
}

START_TEST(parallel_parts)
{
    struct vmckpt_error err;
    struct image_writer *w =
        image_writer_open(store, "j", "v", 1, 0, RAM, PARTS, &err);
    struct part_arg pa[PARTS];
    pthread_t t[PARTS];
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    Vmckpt__PageBatch msg;
    struct batch_builder b;
    static uint8_t out[RAM];
    char state[64];
    uint64_t bytes;
    unsigned i;

    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(batch_builder_init(&b, 0), 0);
    batch_reset(&b, 0);
    batch_add(&b, 0, ram);
    vmckpt__page_batch__init(&msg);
    batch_finish(&b, &msg);
    ck_assert_int_eq(image_writer_batch(w, PARTS, &msg, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "no part 4"));
    batch_builder_dispose(&b);
    for (i = 0; i < PARTS; i++) {
        pa[i].w = w;
        pa[i].part = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, write_part, &pa[i]), 0);
    }
    for (i = 0; i < PARTS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(pa[i].rc, 0);
    }
    ck_assert_int_eq(image_writer_state(w, 0, "par", 3, &err), 0);
    end.batches = 2 * NPAGES;
    end.pages = 2 * NPAGES;
    end.state_bytes = 3;
    end.state_xxh64 = batch_xxh64("par", 3);
    ck_assert_int_eq(image_writer_commit(w, &end, &bytes, &err), 0);
    restore_into(1, out, state, 0, &err);
    for (i = 0; i < NPAGES; i++) {
        uint8_t page[BATCH_PAGE];

        fill(page, i * 2 + 1);
        ck_assert_mem_eq(out + (size_t)i * BATCH_PAGE, page, BATCH_PAGE);
    }
    ck_assert_str_eq(state, "par");
}
END_TEST

/* ---- guest disks: layer files carried by epochs ------------------------ */

#define LAYER_MAX (3u << 20) /* the test's layers: up to 3 MiB */

/* Layer 'l' of epoch 'e' in the model: 'size' bytes, each 1 MiB chunk
 * 'c' filled with a byte of (e, l, c), the second chunk left zero. */
static void layer_bytes(uint8_t *buf, uint64_t e, unsigned l, size_t size)
{
    size_t c;

    memset(buf, 0, size);
    for (c = 0; c * (1u << 20) < size; c++) {
        size_t len = size - c * (1u << 20) < (1u << 20) ? size - c * (1u << 20)
                                                        : (1u << 20);

        if (c != 1)
            memset(buf + c * (1u << 20), (int)(e * 16 + l * 4 + c + 1), len);
    }
}

/* With it, put_disk_epoch seals the chunks it sends. */
static struct sealer *put_sealer;

/* Write epoch 'epoch' (no pages) with one disk of 'nl' layers of the
 * sizes in 'sizes'; 'bad' 1 sends a chunk whose checksum is wrong, 2
 * states one chunk more at the end than were sent, 3 states the first
 * layer 4 KiB longer than its chunks end, 4 (with put_sealer) sends
 * every chunk after the first clear, 5 (with put_sealer) its page
 * batch clear. */
static int put_disk_epoch(uint64_t epoch, uint64_t parent, unsigned nl,
                          const uint64_t *sizes, int bad,
                          struct vmckpt_error *err)
{
    struct image_writer *w =
        image_writer_open(store, "j", "v", epoch, parent, RAM, 1, err);
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    Vmckpt__DiskLayers dl = VMCKPT__DISK_LAYERS__INIT, *dlp[1] = {&dl};
    static uint8_t buf[LAYER_MAX];
    uint64_t bytes, off, chunks = 0, stated[8];
    unsigned l;

    struct batch_builder b;
    Vmckpt__PageBatch msg;

    if (w == NULL)
        return -1;
    /* one page of memory, as every epoch has */
    ck_assert_int_eq(batch_builder_init(&b, 1), 0);
    batch_reset(&b, 0);
    batch_add(&b, 0, ram);
    vmckpt__page_batch__init(&msg);
    batch_finish(&b, &msg);
    /* a sealed epoch is sealed whole ('bad' 5: but its pages) */
    if (put_sealer != NULL && bad != 5)
        ck_assert_int_eq(sealer_batch(put_sealer, &msg, err), 0);
    ck_assert_int_eq(image_writer_batch(w, 0, &msg, err), 0);
    batch_builder_dispose(&b);
    end.batches = 1;
    end.pages = 1;
    ck_assert_int_eq(image_writer_disks(w, 1, err), 0);
    for (l = 0; l < nl; l++) {
        layer_bytes(buf, epoch, l, sizes[l]);
        for (off = 0; off < sizes[l]; off += 1u << 20) {
            Vmckpt__DiskChunk c = VMCKPT__DISK_CHUNK__INIT;
            size_t len =
                sizes[l] - off < (1u << 20) ? sizes[l] - off : (1u << 20);

            if (off == (1u << 20))
                continue; /* zeroes are not sent */
            static uint8_t sealed[1u << 20], seal[SEAL_DISK_BYTES];

            c.layer = l;
            c.offset = off;
            c.data.data = buf + off;
            c.data.len = len;
            if (put_sealer != NULL && (bad != 4 || chunks == 0)) {
                memcpy(sealed, buf + off, len);
                ck_assert_int_eq(sealer_disk_chunk(put_sealer, 0, off, sealed,
                                                   len, seal, err),
                                 0);
                c.data.data = sealed;
                c.seal.data = seal;
                c.seal.len = sizeof(seal);
            }
            c.xxh64 = batch_xxh64(c.data.data, len) ^ (bad == 1);
            if (image_writer_disk_chunk(w, &c, err) < 0) {
                image_writer_abort(w);
                return -1;
            }
            chunks++;
        }
    }
    memcpy(stated, sizes, nl * sizeof(*sizes));
    stated[0] += bad == 3 ? 4096 : 0;
    dl.layer_bytes = stated;
    dl.n_layer_bytes = nl;
    dl.chunks = chunks + (bad == 2);
    dl.base_digest = 0x1234567890abcdefULL + epoch;
    end.disks = dlp;
    end.n_disks = 1;
    end.state_xxh64 = batch_xxh64("", 0);
    return image_writer_commit(w, &end, &bytes, err);
}

struct got {
    struct sealer *opener; /* opens sealed chunks; NULL: counts them */
    unsigned sealed;
    unsigned n;
    uint64_t size[8];
    uint8_t data[8][LAYER_MAX];
};

static int got_chunk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                     const void *data, size_t len, uint64_t xxh64,
                     const uint8_t *seal, struct vmckpt_error *err)
{
    struct got *g = arg;

    ck_assert_uint_eq(disk, 0);
    ck_assert_uint_lt(layer, 8);
    ck_assert_uint_eq(batch_xxh64(data, len), xxh64);
    g->sealed += seal != NULL;
    if (seal != NULL && g->opener != NULL &&
        (data = sealer_open_disk_chunk(g->opener, disk, off, data, len, seal,
                                       err)) == NULL)
        return -1;
    memcpy(g->data[layer] + off, data, len);
    return 0;
}

/* Read epoch 'epoch''s disk and check it is made of the layers 'want'
 * (epoch, layer, size), oldest first; sealed chunks opened with
 * 'opener'. */
static void check_disk_with(uint64_t epoch, unsigned n,
                            const uint64_t (*want)[3], struct sealer *opener)
{
    static struct got g;
    static struct image_disk_sizes sz;
    static uint8_t expect[LAYER_MAX];
    struct vmckpt_error err;
    unsigned i;

    memset(&g, 0, sizeof(g));
    g.opener = opener;
    ck_assert_msg(
        image_disk_read(store, "j", "v", epoch, got_chunk, &g, &sz, &err) == 0,
        "%s", err.text);
    ck_assert_uint_eq(sz.ndisks, 1);
    ck_assert_uint_eq(sz.nlayers[0], n);
    ck_assert_uint_eq(sz.base[0], 0x1234567890abcdefULL + epoch);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(sz.bytes[0][i], want[i][2]);
        layer_bytes(expect, want[i][0], (unsigned)want[i][1], want[i][2]);
        ck_assert_mem_eq(g.data[i], expect, want[i][2]);
    }
    ck_assert_uint_eq(g.sealed > 0, opener != NULL);
}

static void check_disk(uint64_t epoch, unsigned n, const uint64_t (*want)[3])
{
    check_disk_with(epoch, n, want, NULL);
}

START_TEST(disk_layers)
{
    struct vmckpt_error err;
    const uint64_t s1[2] = {(3u << 20) - 512, 65536}, s2[1] = {(1u << 20) + 7},
                   s3[1] = {4096};
    const uint64_t v1[2][3] = {{1, 0, (3u << 20) - 512}, {1, 1, 65536}};
    const uint64_t v2[3][3] = {
        {1, 0, (3u << 20) - 512}, {1, 1, 65536}, {2, 0, (1u << 20) + 7}};
    const uint64_t v3[4][3] = {{1, 0, (3u << 20) - 512},
                               {1, 1, 65536},
                               {2, 0, (1u << 20) + 7},
                               {3, 0, 4096}};
    char path[256];
    struct stat st;

    ck_assert_msg(put_disk_epoch(1, 0, 2, s1, 0, &err) == 0, "%s", err.text);
    ck_assert_msg(put_disk_epoch(2, 1, 1, s2, 0, &err) == 0, "%s", err.text);
    check_disk(1, 2, v1);
    check_disk(2, 3, v2);
    /* a delta with no disks, of an epoch with disks, is refused */
    ck_assert_int_ne(
        put_epoch(3, 2, (uint64_t[]){5}, 1, "x", &(uint64_t){0}, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.text, "0 disks, its parent 2 has 1"));
    /* a damaged chunk, a count that does not match: refused, nothing left */
    ck_assert_int_ne(put_disk_epoch(3, 2, 1, s3, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.text, "checksum mismatch"));
    ck_assert_int_ne(put_disk_epoch(3, 2, 1, s3, 2, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.text, "1 chunks came, the sender says 2"));
    snprintf(path, sizeof(path), "%s/j/v/e3.d0.l0.tmp", store);
    ck_assert_int_ne(stat(path, &st), 0);
    ck_assert_msg(put_disk_epoch(3, 2, 1, s3, 0, &err) == 0, "%s", err.text);
    check_disk(3, 4, v3);

    /* retention from 3: epoch 3 folded keeps 1's and 2's layers */
    ck_assert_msg(image_retain(store, "j", "v", 3, &err) == 2, "%s", err.text);
    check_disk(3, 4, v3);
    snprintf(path, sizeof(path), "%s/j/v/e1.d0.l1", store);
    ck_assert_int_eq(stat(path, &st), 0);
    /* a new full epoch 4, then 3 dropped: the old layers go */
    ck_assert_msg(put_disk_epoch(4, 0, 1, s3, 0, &err) == 0, "%s", err.text);
    ck_assert_int_eq(image_drop(store, "j", "v", 3, &err), 0);
    ck_assert_int_ne(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/j/v/e4.d0.l0.sum", store);
    ck_assert_int_eq(stat(path, &st), 0);
}
END_TEST

START_TEST(disk_damage)
{
    struct vmckpt_error err;
    const uint64_t s1[1] = {2u << 20};
    static struct got g;
    static struct image_disk_sizes sz;
    char path[256];
    int fd;

    ck_assert_msg(put_disk_epoch(1, 0, 1, s1, 0, &err) == 0, "%s", err.text);
    snprintf(path, sizeof(path), "%s/j/v/e1.d0.l0", store);
    fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "X", 1, (1u << 20) + 100), 1);
    close(fd);
    ck_assert_int_ne(
        image_disk_read(store, "j", "v", 1, got_chunk, &g, &sz, &err), 0);
    ck_assert_msg(strstr(err.text, "damaged disk 0 layer e1.d0.l0 at offset "
                                   "1048576") != NULL,
                  "%s", err.text);
    /* chunks that do not end where the sender says the layer does */
    {
        const uint64_t s2[1] = {(2u << 20) + (1u << 19)};

        ck_assert_int_ne(put_disk_epoch(2, 0, 1, s2, 3, &err), 0);
        ck_assert_msg(strstr(err.text, "do not end where the layer does"), "%s",
                      err.text);
        ck_assert_msg(put_disk_epoch(2, 0, 1, s2, 0, &err) == 0, "%s",
                      err.text);
    }
}
END_TEST

/* 1 if the file at 'path' holds the 64 bytes at 'p' anywhere. */
static int file_holds(const char *path, const uint8_t *p)
{
    static uint8_t buf[LAYER_MAX];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
    size_t i;

    if (fd >= 0)
        close(fd);
    ck_assert_int_gt(n, 0);
    for (i = 0; i + 64 <= (size_t)n; i++)
        if (memcmp(buf + i, p, 64) == 0)
            return 1;
    return 0;
}

/* Sealed disk layers: the layer files hold ciphertext laid out as the
 * clear layer would be, the nonces and tags in a .seal file beside; they
 * read back opened with the key, and do not open with another, moved or
 * with a seal altered; an epoch mixing sealed and clear chunks is
 * refused; the .seal files go with their layers. */
START_TEST(sealed_disk)
{
    struct vmckpt_error err;
    const uint64_t s1[2] = {(3u << 20) - 512, 65536}, s2[1] = {4096};
    const uint64_t v1[2][3] = {{1, 0, (3u << 20) - 512}, {1, 1, 65536}};
    const uint64_t v2[3][3] = {
        {1, 0, (3u << 20) - 512}, {1, 1, 65536}, {2, 0, 4096}};
    static uint8_t clear[LAYER_MAX];
    static struct got g;
    static struct image_disk_sizes sz;
    struct image_manifest m;
    struct seal_key key, other;
    struct sealer *opener, *wrong;
    char path[256];
    struct stat st;
    uint8_t tag;
    int fd;

    ck_assert_int_eq(seal_key_random(&key, &err), 0);
    ck_assert_int_eq(seal_key_random(&other, &err), 0);
    put_sealer = sealer_new(&key, "j", "v", &err);
    opener = sealer_new(&key, "j", "v", &err);
    wrong = sealer_new(&other, "j", "v", &err);
    ck_assert_ptr_nonnull(put_sealer);
    ck_assert_ptr_nonnull(opener);
    ck_assert_ptr_nonnull(wrong);
    ck_assert_msg(put_disk_epoch(1, 0, 2, s1, 0, &err) == 0, "%s", err.text);
    /* the layer keeps its layout and size, and no byte of it is clear */
    layer_bytes(clear, 1, 0, s1[0]);
    snprintf(path, sizeof(path), "%s/j/v/e1.d0.l0", store);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)s1[0]);
    ck_assert_int_eq(file_holds(path, clear), 0);
    ck_assert_int_eq(file_holds(path, clear + (2u << 20)), 0);
    snprintf(path, sizeof(path), "%s/j/v/e1.d0.l0.seal", store);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 3 * SEAL_DISK_BYTES);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_int_eq(image_manifest_find(&m, 1)->sealed, 1);
    check_disk_with(1, 2, v1, opener);
    /* without the key the reader gets every chunk with its seal (the
     * restore refuses it); another key does not open it */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(
        image_disk_read(store, "j", "v", 1, got_chunk, &g, &sz, &err), 0);
    ck_assert_uint_eq(g.sealed, 3); /* 2 MiB of l0 are zeroes, not sent */
    ck_assert_int_ne(memcmp(g.data[0], clear, 1u << 20), 0);
    memset(&g, 0, sizeof(g));
    g.opener = wrong;
    ck_assert_int_ne(
        image_disk_read(store, "j", "v", 1, got_chunk, &g, &sz, &err), 0);
    ck_assert_msg(strstr(err.text, "does not open") != NULL, "%s", err.text);
    /* a seal altered (the store's .seal, not covered by its checksums) */
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &tag, 1, SEAL_DISK_BYTES - 1), 1);
    tag ^= 1;
    ck_assert_int_eq(pwrite(fd, &tag, 1, SEAL_DISK_BYTES - 1), 1);
    memset(&g, 0, sizeof(g));
    g.opener = opener;
    ck_assert_int_ne(
        image_disk_read(store, "j", "v", 1, got_chunk, &g, &sz, &err), 0);
    ck_assert_msg(strstr(err.text, "does not open") != NULL, "%s", err.text);
    tag ^= 1;
    ck_assert_int_eq(pwrite(fd, &tag, 1, SEAL_DISK_BYTES - 1), 1);
    close(fd);
    /* sealed and clear chunks in one epoch: refused, nothing left */
    ck_assert_int_ne(put_disk_epoch(2, 1, 1, (uint64_t[]){3u << 20}, 4, &err),
                     0);
    ck_assert_msg(strstr(err.text, "came clear, the epoch's chunks before "
                                   "it sealed"),
                  "%s", err.text);
    snprintf(path, sizeof(path), "%s/j/v/e2.d0.l0.tmp.seal", store);
    ck_assert_int_ne(stat(path, &st), 0);
    /* sealed disks in an epoch whose pages came clear: refused */
    ck_assert_int_ne(put_disk_epoch(2, 1, 1, s2, 5, &err), 0);
    ck_assert_msg(strstr(err.text, "disk chunks came sealed, its pages and "
                                   "state clear"),
                  "%s", err.text);
    ck_assert_msg(put_disk_epoch(2, 1, 1, s2, 0, &err) == 0, "%s", err.text);
    check_disk_with(2, 3, v2, opener);
    /* retention keeps the sealed chain (and its seals) whole */
    ck_assert_int_ge(image_retain(store, "j", "v", 2, &err), 0);
    check_disk_with(2, 3, v2, opener);
    /* a new full epoch, 2 dropped: the old layers and seals go */
    ck_assert_msg(put_disk_epoch(3, 0, 1, s2, 0, &err) == 0, "%s", err.text);
    ck_assert_int_eq(image_drop(store, "j", "v", 2, &err), 0);
    ck_assert_int_ge(image_retain(store, "j", "v", 3, &err), 0);
    snprintf(path, sizeof(path), "%s/j/v/e1.d0.l0.seal", store);
    ck_assert_int_ne(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/j/v/e3.d0.l0.seal", store);
    ck_assert_int_eq(stat(path, &st), 0);
    sealer_free(put_sealer);
    put_sealer = NULL;
    /* a .seal left by a try of epoch 4 that did not commit: the epoch
     * committed clear reads clear */
    snprintf(path, sizeof(path), "%s/j/v/e4.d0.l0.seal", store);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, clear, 3 * SEAL_DISK_BYTES),
                     3 * SEAL_DISK_BYTES);
    close(fd);
    ck_assert_msg(put_disk_epoch(4, 0, 1, s2, 0, &err) == 0, "%s", err.text);
    ck_assert_int_ne(stat(path, &st), 0);
    check_disk(4, 1, (const uint64_t[][3]){{4, 0, 4096}});
    sealer_free(opener);
    sealer_free(wrong);
}
END_TEST

/* Sealed epochs (as an agent with its job's key writes them): the page
 * file holds no byte of a page as it was; the store keeps them without
 * the key, never folds them, and retention keeps the chain a kept epoch
 * builds on until a full epoch starts a new one. They restore with the
 * key, and are refused without it or with another. */
START_TEST(sealed_chain)
{
    struct vmckpt_error err;
    struct image_manifest m;
    struct seal_key key, other;
    uint64_t all[NPAGES], d[1] = {5}, bytes, clear;
    static uint8_t out[RAM], file[RAM * 2];
    char state[64], path[128];
    size_t i, n = 0;
    ssize_t len;
    int fd, sfd;

    ck_assert_int_eq(seal_key_random(&key, &err), 0);
    ck_assert_int_eq(seal_key_random(&other, &err), 0);
    for (i = 0; i < NPAGES; i++) {
        fill(ram + i * BATCH_PAGE, (unsigned)i + 77);
        all[n++] = i;
    }
    ck_assert_int_eq(put_epoch_k(1, 0, all, n, "one", &key, &bytes, &err), 0);
    for (i = 2; i <= 3; i++) {
        fill(ram + 5 * BATCH_PAGE, (unsigned)i + 500);
        ck_assert_int_eq(
            put_epoch_k(i, i - 1, d, 1, "more", &key, &bytes, &err), 0);
    }
    /* no 64 bytes of any page in the page file */
    snprintf(path, sizeof(path), "%s/j/v/e1.pages", store);
    fd = open(path, O_RDONLY);
    len = read(fd, file, sizeof(file));
    close(fd);
    ck_assert_int_gt(len, 0);
    for (i = 0; i < NPAGES; i++)
        ck_assert_ptr_null(memmem(file, (size_t)len, ram + i * BATCH_PAGE, 64));
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(m.e[i].sealed, 1);
    /* keep from 2: 2 builds on 1, nothing goes, nothing is folded */
    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), 0);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 3);
    for (i = 0; i < 3; i++)
        ck_assert_int_eq(m.e[i].base, 0);
    /* with the key: the RAM and the state as they were */
    snprintf(path, sizeof(path), "%s/ram.out", store);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_eq(ftruncate(fd, RAM), 0);
    sfd = memfd_create("state", 0);
    ck_assert_msg(
        image_restore(store, "j", "v", 3, &key, fd, sfd, NULL, &err) == 0, "%s",
        err.text);
    ck_assert_int_eq(pread(fd, out, RAM, 0), RAM);
    ck_assert_mem_eq(out, ram, RAM);
    ck_assert_int_eq(seal_state_open_fd(sfd, (uint64_t)lseek(sfd, 0, SEEK_END),
                                        &key, "j", "v", &clear, &err),
                     0);
    ck_assert_uint_eq(clear, 4);
    ck_assert_int_eq(pread(sfd, state, 4, 0), 4);
    ck_assert_mem_eq(state, "more", 4);
    close(sfd);
    /* without a key, with another: refused, saying why */
    ck_assert_int_eq(
        image_restore(store, "j", "v", 3, NULL, fd, -1, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "sealed"));
    ck_assert_int_eq(
        image_restore(store, "j", "v", 3, &other, fd, -1, NULL, &err), -1);
    /* named where it failed: the chain's first epoch */
    ck_assert_ptr_nonnull(strstr(err.text, "j/v epoch 1"));
    ck_assert_ptr_nonnull(strstr(err.text, "does not open"));
    close(fd);
    /* a new full epoch: what came before it goes */
    ck_assert_int_eq(put_epoch_k(4, 0, all, n, "four", &key, &bytes, &err), 0);
    ck_assert_int_eq(image_retain(store, "j", "v", 4, &err), 3);
    ck_assert_int_eq(image_manifest_load(store, "j", "v", &m, &err), 0);
    ck_assert_uint_eq(m.n, 1);
    /* a clear epoch where the key says sealed (a store that put clear
     * pages of its own there): refused */
    ck_assert_int_eq(put_epoch(5, 4, d, 1, "five", &bytes, &err), 0);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_eq(ftruncate(fd, RAM), 0);
    ck_assert_int_eq(
        image_restore(store, "j", "v", 5, &key, fd, -1, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "a clear batch in an epoch stored "
                                           "sealed"));
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    /* fsyncs of many files: seconds on a busy disk under a sanitizer */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, full_and_delta);
    tcase_add_test(tc, flipped_byte);
    tcase_add_test(tc, bad_names);
    tcase_add_test(tc, refusals);
    tcase_add_test(tc, retain_folds);
    tcase_add_test(tc, fold_window);
    tcase_add_test(tc, fold_to_base);
    tcase_add_test(tc, parallel_parts);
    tcase_add_test(tc, disk_layers);
    tcase_add_test(tc, disk_damage);
    tcase_add_test(tc, sealed_chain);
    tcase_add_test(tc, sealed_disk);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
