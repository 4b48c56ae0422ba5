/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of folding in place (docs/store.md): retention writes a kept
 * delta into the base it builds on instead of a new base, every epoch
 * restores to the bytes written, a fold stopped at any step (as a crash
 * would) is finished by the next reader or retention, a reader waits for
 * a fold at work, a base open for reading makes retention fold by copy,
 * and damage in the base is found before anything changes. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/store/image.h"
#include "agent/store/image_int.h"
#include "lib/wire/batch.h"
#include "store_testlib.h"

#define NPAGES 1000 /* four checksum chunks, the last 232 pages */
#define RAM    ((size_t)NPAGES * BATCH_PAGE)

static char store[64];
static uint8_t ram[RAM];

#define fill st_fill

static void put_epoch(uint64_t epoch, uint64_t parent, const uint64_t *pages,
                      size_t n, const char *state)
{
    struct vmckpt_error err;
    uint64_t bytes;

    ck_assert_msg(st_put_epoch(store, epoch, parent, ram, RAM, pages, n, state,
                               NULL, &bytes, &err) == 0,
                  "%s", err.text);
}

static int restore(uint64_t epoch, uint8_t *out, char *state,
                   struct vmckpt_error *err)
{
    return st_restore(store, epoch, RAM, out, state, err);
}

static void expect_restore(uint64_t epoch, const uint8_t *want,
                           const char *want_state)
{
    static uint8_t out[RAM];
    struct vmckpt_error err;
    char state[64];

    ck_assert_msg(restore(epoch, out, state, &err) == 0, "%s", err.text);
    ck_assert_mem_eq(out, want, RAM);
    ck_assert_str_eq(state, want_state);
}

static ino_t inode(const char *name)
{
    char path[256];
    struct stat st;

    snprintf(path, sizeof(path), "%s/j/v/%s", store, name);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static const struct image_epoch *manifest_epoch(struct image_manifest *m,
                                                uint64_t epoch)
{
    struct vmckpt_error err;

    ck_assert_msg(image_manifest_load(store, "j", "v", m, &err) == 0, "%s",
                  err.text);
    return image_manifest_find(m, epoch);
}

static uint8_t snap1[RAM], snap2[RAM], snap3[RAM];

/* Epoch 1 full and folded into a base (by copy: a full epoch of records),
 * epoch 2 a delta of two batches: a page rewritten in chunk 0, a page
 * zeroed, pages across the end of chunk 0, 300 pages from 300 on (the
 * last 88 of them holes of the base before) and page 600; nothing in
 * chunk 3. */
static void two_epochs(void)
{
    struct vmckpt_error err;
    uint64_t all[NPAGES], d2[NPAGES];
    size_t i, n = 0, k = 0;

    for (i = 0; i < NPAGES; i++)
        if (i % 3 != 0 && (i < 512 || i >= 700)) {
            fill(ram + i * BATCH_PAGE, (unsigned)i);
            all[n++] = i;
        }
    put_epoch(1, 0, all, n, "one");
    ck_assert_msg(image_retain(store, "j", "v", 1, &err) == 0, "%s", err.text);
    memcpy(snap1, ram, RAM);
    d2[k++] = 3, d2[k++] = 6, d2[k++] = 255, d2[k++] = 256;
    for (i = 300; i <= 600; i++)
        d2[k++] = i;
    for (i = 0; i < k; i++)
        fill(ram + d2[i] * BATCH_PAGE, (unsigned)d2[i] * 10);
    memset(ram + 6 * BATCH_PAGE, 0, BATCH_PAGE);
    put_epoch(2, 1, d2, k, "two");
    memcpy(snap2, ram, RAM);
}

/* Epoch 3, a delta of 2: a page in chunk 2 and the last page, in the
 * short chunk 3. */
static void third_epoch(void)
{
    static const uint64_t d3[] = {700, NPAGES - 1};

    fill(ram + 700 * BATCH_PAGE, 7000);
    fill(ram + (NPAGES - 1) * BATCH_PAGE, 9990);
    put_epoch(3, 2, d3, 2, "three");
    memcpy(snap3, ram, RAM);
}

static void setup(void)
{
    st_store_make(store, sizeof(store));
    memset(ram, 0, sizeof(ram));
    image_fold_inplace_hook = NULL;
}

static void teardown(void)
{
    st_store_remove(store);
}

/* Retention as after every commit: epoch 2 is written into epoch 1's
 * base (the same file, renamed), epoch 1 goes; every epoch left restores
 * to its bytes, and the next retention does it again. */
START_TEST(inplace_steady)
{
    struct vmckpt_error err;
    struct image_manifest m;
    const struct image_epoch *e;
    ino_t base1;
    char path[256];

    two_epochs();
    third_epoch();
    base1 = inode("e1.base");
    ck_assert_uint_ne(base1, 0);
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_uint_eq(inode("e2.base"), base1); /* written in place */
    ck_assert_uint_eq(inode("e1.base"), 0);
    ck_assert_uint_eq(inode("e1.base.sum"), 0);
    ck_assert_uint_eq(inode("e1.state"), 0);
    ck_assert_uint_eq(inode("e2.pages"), 0);
    ck_assert_uint_eq(inode("e2.base.sum.tmp"), 0);
    ck_assert_uint_ne(inode("e2.base.sum"), 0);
    e = manifest_epoch(&m, 2);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->base, 1);
    ck_assert_uint_eq(e->parent, 0);
    ck_assert_uint_eq(e->fold_from, 0);
    ck_assert_ptr_null(image_manifest_find(&m, 1));
    expect_restore(2, snap2, "two");
    expect_restore(3, snap3, "three");
    /* once more: epoch 3 onto epoch 2's base */
    ck_assert_msg(image_retain(store, "j", "v", 3, &err) == 1, "%s", err.text);
    ck_assert_uint_eq(inode("e3.base"), base1);
    expect_restore(3, snap3, "three");
    snprintf(path, sizeof(path), "%s/j/v/e3.base", store);
    ck_assert_int_eq(access(path, R_OK), 0);
}
END_TEST

/* The step a fold stops at (image_fold_inplace_hook). */
static int stop_at;

static int stop_hook(int step)
{
    return step == stop_at;
}

/* Retention (keeping epoch 2 on) with its fold stopped at 'step': it
 * fails saying so. */
static void retain_stopped(int step)
{
    struct vmckpt_error err;

    stop_at = step;
    image_fold_inplace_hook = stop_hook;
    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "fold stopped"));
    image_fold_inplace_hook = NULL;
}

/* A fold stopped after the manifest said it (steps 2 to 5: before any
 * write, half of the delta written, checksums written, files renamed)
 * leaves epoch 2 as "fold 1"; a restore finishes it (one test per step),
 * or the next retention does. */
START_TEST(inplace_stopped)
{
    struct vmckpt_error err;
    struct image_manifest m;
    const struct image_epoch *e;
    int by_retention = _i >= 4;

    two_epochs();
    third_epoch();
    retain_stopped(2 + _i % 4);
    e = manifest_epoch(&m, 2);
    ck_assert_uint_eq(e->fold_from, 1);
    ck_assert_ptr_null(image_manifest_find(&m, 1));
    if (by_retention)
        ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 0, "%s",
                      err.text);
    /* a restore of a delta on it finishes it too */
    expect_restore(3, snap3, "three");
    e = manifest_epoch(&m, 2);
    ck_assert_uint_eq(e->fold_from, 0);
    ck_assert_uint_eq(inode("e1.base"), 0);
    ck_assert_uint_eq(inode("e2.pages"), 0);
    ck_assert_uint_eq(inode("e2.base.sum.tmp"), 0);
    expect_restore(2, snap2, "two");
}
END_TEST

/* Stopped before the manifest changed (step 1): nothing changed but a
 * stray checksum file, and the next retention folds. */
START_TEST(inplace_stopped_early)
{
    struct vmckpt_error err;
    struct image_manifest m;

    two_epochs();
    retain_stopped(1);
    ck_assert_uint_eq(manifest_epoch(&m, 2)->parent, 1);
    ck_assert_int_eq(manifest_epoch(&m, 1)->base, 1);
    expect_restore(1, snap1, "one");
    expect_restore(2, snap2, "two");
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_int_eq(manifest_epoch(&m, 2)->base, 1);
    expect_restore(2, snap2, "two");
}
END_TEST

/* A restore started while the fold is at work (from its hook, steps 2
 * and 3) waits for it and restores the folded epoch exactly. */
struct reader {
    pthread_t t;
    uint64_t epoch;
    int rc;
    struct vmckpt_error err;
    uint8_t *out;
    char state[64];
};

static struct reader rd;

static void *read_epoch(void *arg)
{
    struct reader *r = arg;

    r->rc = restore(r->epoch, r->out, r->state, &r->err);
    return NULL;
}

/* Until a thread waits for the fold (image_fold_wait). */
static void wait_for_waiter(void)
{
    struct timespec t0, now;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (image_fold_waiting() == 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - t0.tv_sec < 60,
                      "nothing waited for the fold");
        sched_yield();
    }
}

static int start_reader(int step)
{
    if (step != stop_at)
        return 0;
    ck_assert_int_eq(pthread_create(&rd.t, NULL, read_epoch, &rd), 0);
    wait_for_waiter(); /* the fold goes on once the reader waits for it */
    return 0;
}

START_TEST(inplace_reader_waits)
{
    struct vmckpt_error err;
    static uint8_t out[RAM];

    stop_at = 2 + _i;
    two_epochs();
    rd.epoch = 2;
    rd.out = out;
    image_fold_inplace_hook = start_reader;
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_int_eq(pthread_join(rd.t, NULL), 0);
    ck_assert_msg(rd.rc == 0, "%s", rd.err.text);
    ck_assert_mem_eq(out, snap2, RAM);
    ck_assert_str_eq(rd.state, "two");
}
END_TEST

/* A reader holding a base open (its callback waits) makes retention fold
 * by copy: a new base file, and the reader still reads its epoch. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_in, gate_open;

static int slow_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                      void *arg)
{
    (void)msg, (void)arg;
    if (v->n > 0) {
        pthread_mutex_lock(&gate_mu);
        gate_in = 1;
        pthread_cond_broadcast(&gate_cv);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    return 0;
}

static int no_state(uint64_t off, const void *data, size_t len, void *arg)
{
    (void)off, (void)data, (void)len, (void)arg;
    return 0;
}

static void *slow_read(void *arg)
{
    struct reader *r = arg;

    r->rc = image_read(store, "j", "v", r->epoch, slow_batch, no_state, NULL,
                       &r->err);
    return NULL;
}

START_TEST(inplace_reader_open)
{
    struct vmckpt_error err;
    ino_t base1;

    two_epochs();
    base1 = inode("e1.base");
    rd.epoch = 2;
    ck_assert_int_eq(pthread_create(&rd.t, NULL, slow_read, &rd), 0);
    pthread_mutex_lock(&gate_mu);
    while (!gate_in)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_uint_ne(inode("e2.base"), 0);
    ck_assert_uint_ne(inode("e2.base"), base1); /* a new file */
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    ck_assert_int_eq(pthread_join(rd.t, NULL), 0);
    ck_assert_msg(rd.rc == 0, "%s", rd.err.text);
    expect_restore(2, snap2, "two");
}
END_TEST

/* A flipped byte in a chunk of the base the delta writes in: refused
 * before anything changes. In a chunk it does not write in: folded, and
 * the damage is still found by a restore. */
START_TEST(inplace_damage)
{
    struct vmckpt_error err;
    struct image_manifest m;
    static uint8_t out[RAM];
    char path[256], state[64];
    uint8_t byte;
    int fd;

    two_epochs();
    snprintf(path, sizeof(path), "%s/j/v/e1.base", store);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    /* chunk 0 (page 10): the delta writes page 3 in it */
    ck_assert_int_eq(pread(fd, &byte, 1, 10 * BATCH_PAGE + 5), 1);
    byte ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &byte, 1, 10 * BATCH_PAGE + 5), 1);
    ck_assert_int_eq(image_retain(store, "j", "v", 2, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "damaged base image"));
    ck_assert_ptr_nonnull(strstr(err.text, "offset 0 "));
    ck_assert_uint_eq(manifest_epoch(&m, 2)->parent, 1);
    ck_assert_ptr_nonnull(manifest_epoch(&m, 1));
    byte ^= 0x20; /* mended; now chunk 3 (page 800), which it does not */
    ck_assert_int_eq(pwrite(fd, &byte, 1, 10 * BATCH_PAGE + 5), 1);
    ck_assert_int_eq(pread(fd, &byte, 1, 800 * BATCH_PAGE + 5), 1);
    byte ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &byte, 1, 800 * BATCH_PAGE + 5), 1);
    close(fd);
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_int_eq(restore(2, out, state, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "damaged base image"));
    ck_assert_ptr_nonnull(strstr(err.text, "offset 3145728"));
}
END_TEST

/* An epoch left "fold 1" by a stopped fold, dropped: the files of epoch 1
 * it was made from go with it. */
START_TEST(inplace_drop_stopped)
{
    struct vmckpt_error err;
    struct image_manifest m;

    two_epochs();
    retain_stopped(3);
    ck_assert_msg(image_drop(store, "j", "v", 2, &err) == 0, "%s", err.text);
    ck_assert_ptr_null(manifest_epoch(&m, 2));
    ck_assert_uint_eq(m.n, 0);
    ck_assert_uint_eq(inode("e1.base"), 0);
    ck_assert_uint_eq(inode("e1.base.sum"), 0);
    ck_assert_uint_eq(inode("e2.base.sum.tmp"), 0);
    ck_assert_uint_eq(inode("e2.pages"), 0);
}
END_TEST

/* The checksum file of a fold that stopped after its manifest said it
 * lost (a save that failed after its rename removed it): finishing makes
 * it again from the parent's. */
START_TEST(inplace_lost_sums)
{
    char path[256];

    two_epochs();
    retain_stopped(2);
    snprintf(path, sizeof(path), "%s/j/v/e2.base.sum.tmp", store);
    ck_assert_int_eq(unlink(path), 0);
    expect_restore(2, snap2, "two");
    ck_assert_uint_eq(inode("e1.base.sum"), 0);
}
END_TEST

/* Dropping the epoch being folded (an abort that came late) waits for the
 * fold, then drops it with the parent's base it was folded into. */
static struct reader dropper;

static void *drop_epoch(void *arg)
{
    struct reader *r = arg;

    r->rc = image_drop(store, "j", "v", r->epoch, &r->err);
    return NULL;
}

static int start_dropper(int step)
{
    if (step == 3) {
        ck_assert_int_eq(pthread_create(&dropper.t, NULL, drop_epoch, &dropper),
                         0);
        wait_for_waiter();
    }
    return 0;
}

START_TEST(inplace_drop_waits)
{
    struct vmckpt_error err;
    struct image_manifest m;

    two_epochs();
    dropper.epoch = 2;
    image_fold_inplace_hook = start_dropper;
    ck_assert_msg(image_retain(store, "j", "v", 2, &err) == 1, "%s", err.text);
    ck_assert_int_eq(pthread_join(dropper.t, NULL), 0);
    ck_assert_msg(dropper.rc == 0, "%s", dropper.err.text);
    ck_assert_ptr_null(manifest_epoch(&m, 2));
    ck_assert_uint_eq(m.n, 0);
    ck_assert_uint_eq(inode("e1.base"), 0);
    ck_assert_uint_eq(inode("e2.base"), 0);
    ck_assert_uint_eq(inode("e2.base.sum"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fold");
    TCase *tc = tcase_create("inplace");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120); /* fsyncs on a busy disk, sanitizers */
    tcase_add_test(tc, inplace_steady);
    tcase_add_loop_test(tc, inplace_stopped, 0, 8);
    tcase_add_test(tc, inplace_stopped_early);
    tcase_add_loop_test(tc, inplace_reader_waits, 0, 2);
    tcase_add_test(tc, inplace_reader_open);
    tcase_add_test(tc, inplace_damage);
    tcase_add_test(tc, inplace_drop_stopped);
    tcase_add_test(tc, inplace_lost_sums);
    tcase_add_test(tc, inplace_drop_waits);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
