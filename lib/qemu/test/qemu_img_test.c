/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of the qemu-img runner against the installed qemu-img, in a
 * private temporary directory; SKIP (exit 77) without qemu-img. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/qemu/qemu_img.h"

#define PROG "qemu-img"
#define MIB  (1024 * 1024ull)

static char dir[PATH_MAX];

/* 'buf' = dir/name */
static const char *at(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", dir, name);
    return buf;
}

/* A raw image of 'size' bytes, holes only, as truncate(1) makes it. */
static const char *raw_image(char *buf, const char *name, off_t size)
{
    int fd = open(at(buf, name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, size), 0);
    close(fd);
    return buf;
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/qemu_img_test.XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* An overlay made over a raw base reads back as qcow2 over that base,
 * with the size and cluster size asked for. */
START_TEST(create_and_info)
{
    char base[PATH_MAX], ov[PATH_MAX];
    struct qemu_img_info info;
    struct vmckpt_error err = {""};

    raw_image(base, "base.raw", 64 * MIB);
    at(ov, "d0.g1.qcow2");
    ck_assert_msg(
        qemu_img_create_overlay(PROG, ov, base, "raw", 64 * MIB, &err) == 0,
        "%s", err.text);
    ck_assert_msg(qemu_img_info(PROG, ov, NULL, &info, &err) == 0, "%s",
                  err.text);
    ck_assert_str_eq(info.format, "qcow2");
    ck_assert_str_eq(info.backing, base);
    ck_assert_uint_eq(info.virtual_size, 64 * MIB);
    ck_assert_uint_eq(info.cluster_size, 65536);
    ck_assert_msg(qemu_img_info(PROG, base, "raw", &info, &err) == 0, "%s",
                  err.text);
    ck_assert_str_eq(info.format, "raw");
    ck_assert_str_eq(info.backing, "");
    ck_assert_uint_eq(info.cluster_size, 0);
    ck_assert_uint_eq(info.virtual_size, 64 * MIB);
    ck_assert_msg(qemu_img_check(PROG, ov, "qcow2", &err) == 0, "%s", err.text);
}
END_TEST

/* An unsafe rebase only rewrites the header (the new backing need not
 * exist); a safe one needs both and keeps the image valid. */
START_TEST(rebase)
{
    char base[PATH_MAX], base2[PATH_MAX], ov[PATH_MAX], gone[PATH_MAX];
    struct qemu_img_info info;
    struct vmckpt_error err = {""};

    raw_image(base, "base.raw", 8 * MIB);
    raw_image(base2, "base2.raw", 8 * MIB);
    at(ov, "ov.qcow2");
    at(gone, "gone.raw");
    ck_assert_int_eq(
        qemu_img_create_overlay(PROG, ov, base, "raw", 8 * MIB, &err), 0);
    ck_assert_msg(qemu_img_rebase_unsafe(PROG, ov, gone, "raw", &err) == 0,
                  "%s", err.text);
    ck_assert_int_eq(qemu_img_info(PROG, ov, "qcow2", &info, &err), 0);
    ck_assert_str_eq(info.backing, gone);
    ck_assert_msg(qemu_img_rebase_unsafe(PROG, ov, base2, "raw", &err) == 0,
                  "%s", err.text);
    ck_assert_int_eq(qemu_img_info(PROG, ov, "qcow2", &info, &err), 0);
    ck_assert_str_eq(info.backing, base2);
    ck_assert_msg(qemu_img_check(PROG, ov, "qcow2", &err) == 0, "%s", err.text);
    ck_assert_msg(qemu_img_rebase_safe(PROG, ov, base, "raw", &err) == 0, "%s",
                  err.text);
    ck_assert_int_eq(qemu_img_info(PROG, ov, "qcow2", &info, &err), 0);
    ck_assert_str_eq(info.backing, base);
    ck_assert_int_eq(qemu_img_check(PROG, ov, "qcow2", &err), 0);
    /* a safe rebase must read the new backing */
    ck_assert_int_eq(qemu_img_rebase_safe(PROG, ov, gone, "raw", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, gone));
    ck_assert_ptr_nonnull(strstr(err.text, "No such file or directory"));
}
END_TEST

/* Failures say what was run on what, and qemu-img's reason once. */
START_TEST(errors)
{
    char missing[PATH_MAX], junk[PATH_MAX], msg[600];
    struct qemu_img_info info;
    struct vmckpt_error err = {""};
    int fd;

    at(missing, "missing.raw");
    ck_assert_int_eq(qemu_img_info(PROG, missing, NULL, &info, &err), -1);
    snprintf(msg, sizeof(msg),
             "qemu-img info %s: Could not open '%s': No such file or "
             "directory",
             missing, missing);
    ck_assert_str_eq(err.text, msg);

    ck_assert_int_eq(
        qemu_img_info("/nonexistent/qemu-img", missing, NULL, &info, &err), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(err.text,
                     "/nonexistent/qemu-img not found (install qemu-utils)");

    /* not a qcow2 image */
    fd = open(at(junk, "junk.qcow2"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not an image\n", 13), 13);
    close(fd);
    ck_assert_int_eq(qemu_img_info(PROG, junk, "qcow2", &info, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, junk));
    ck_assert_ptr_nonnull(strstr(err.text, "qcow2"));

    /* raw has no checks: a failure that says so */
    ck_assert_int_eq(qemu_img_check(PROG, junk, "raw", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.text, "(exit 63)"));

    ck_assert_int_eq(
        qemu_img_create_overlay(PROG, junk, missing, "raw", 0, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* Output that is not qemu-img's JSON, or a program that fails silently,
 * is refused with a reason. */
START_TEST(odd_programs)
{
    struct qemu_img_info info;
    struct vmckpt_error err = {""};

    if (access("/bin/echo", X_OK) != 0 || access("/bin/false", X_OK) != 0)
        return;
    ck_assert_int_eq(qemu_img_info("/bin/echo", "/x", NULL, &info, &err), -1);
    ck_assert_int_eq(errno, EPROTO);
    ck_assert_str_eq(err.text, "/bin/echo info /x: unexpected output (not a "
                               "JSON object)");
    ck_assert_int_eq(qemu_img_check("/bin/false", "/x", NULL, &err), -1);
    ck_assert_str_eq(err.text, "/bin/false check /x: exit 1");
}
END_TEST

static void *info_loop(void *arg)
{
    const char *img = arg;
    struct qemu_img_info info;
    struct vmckpt_error err;
    int i;

    for (i = 0; i < 5; i++)
        if (qemu_img_info(PROG, img, "raw", &info, &err) < 0 ||
            info.virtual_size != MIB)
            return (void *)1;
    return NULL;
}

/* Runs from several threads at once each get their own answer. */
START_TEST(threads)
{
    char base[PATH_MAX];
    pthread_t t[4];
    void *rc;
    int i;

    raw_image(base, "t.raw", MIB);
    for (i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, info_loop, base), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(t[i], &rc), 0);
        ck_assert_ptr_null(rc);
    }
}
END_TEST

/* 1 when 'name' is an executable in PATH. */
static int in_path(const char *name)
{
    const char *path = getenv("PATH");
    char buf[PATH_MAX];

    while (path != NULL && *path != '\0') {
        const char *end = strchr(path, ':');
        size_t n = end != NULL ? (size_t)(end - path) : strlen(path);

        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
        if (n > 0 && access(buf, X_OK) == 0)
            return 1;
        path = end != NULL ? end + 1 : NULL;
    }
    return 0;
}

int main(void)
{
    Suite *su;
    TCase *tc;
    SRunner *sr;
    int failed;

    if (!in_path(PROG)) {
        printf("SKIP: qemu_img_test: no %s in PATH (install qemu-utils)\n",
               PROG);
        return 77;
    }
    su = suite_create("qemu_img");
    tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    /* a loaded machine (the scale tests beside) may take seconds */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, create_and_info);
    tcase_add_test(tc, rebase);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, odd_programs);
    tcase_add_test(tc, threads);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
