/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the guest command-line builder. */
#include "config.h"

#include <check.h>
#include <string.h>

#include "lib/qemu/qemu_argv.h"

static int has(char **v, const char *a, const char *b)
{
    int i;

    for (i = 0; v[i] != NULL && v[i + 1] != NULL; i++)
        if (strcmp(v[i], a) == 0 && (b == NULL || strcmp(v[i + 1], b) == 0))
            return 1;
    return 0;
}

/* A lab guest: file-backed shared RAM, QMP, serial socket with log, tap. */
START_TEST(lab_guest)
{
    struct qemu_spec s = {.name = "g1",
                          .mem_mb = 512,
                          .vcpus = 1,
                          .accel = "tcg",
                          .kernel = "/k/vmlinux",
                          .initrd = "/k/initrd",
                          .append = "x=1",
                          .ram_path = "/dev/shm/g1.ram",
                          .qmp_path = "/r/g1.qmp",
                          .serial_path = "/r/g1.ser",
                          .serial_log = "/r/g1.log",
                          .tap = "tg1",
                          .mac = "52:54:00:00:00:01"};
    struct vmckpt_error err;
    char **v = qemu_argv_build(&s, &err);

    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(v[0], "qemu-system-x86_64");
    ck_assert(has(v, "-object",
                  "memory-backend-file,id=ram0,size=512M,"
                  "mem-path=/dev/shm/g1.ram,share=on,"
                  "prealloc=off"));
    ck_assert(has(v, "-machine", "pc,memory-backend=ram0"));
    ck_assert(has(v, "-accel", "tcg"));
    ck_assert(has(v, "-cpu", "max"));
    ck_assert(has(v, "-qmp", "unix:/r/g1.qmp,server=on,wait=off"));
    ck_assert(has(v, "-netdev",
                  "tap,id=net0,ifname=tg1,script=no,"
                  "downscript=no"));
    ck_assert(has(v, "-device",
                  "virtio-net-pci,netdev=net0,"
                  "mac=52:54:00:00:00:01"));
    ck_assert(has(v, "-chardev",
                  "socket,id=ser0,path=/r/g1.ser,server=on,"
                  "wait=off,logfile=/r/g1.log,logappend=off"));
    ck_assert(!has(v, "-incoming", NULL));
    qemu_argv_free(v);
}
END_TEST

/* A restore target: memfd RAM, KVM, -incoming defer, no network. */
START_TEST(restore_guest)
{
    struct qemu_spec s = {.name = "vm-2",
                          .mem_mb = 256,
                          .vcpus = 2,
                          .accel = "kvm",
                          .kernel = "/k",
                          .qmp_path = "/q",
                          .incoming_defer = 1};
    struct vmckpt_error err;
    char **v = qemu_argv_build(&s, &err);

    ck_assert_ptr_nonnull(v);
    ck_assert(has(v, "-object",
                  "memory-backend-memfd,id=ram0,size=256M,"
                  "share=on,hugetlb=off"));
    ck_assert(has(v, "-cpu", "host"));
    ck_assert(has(v, "-incoming", "defer"));
    ck_assert(!has(v, "-netdev", NULL));
    qemu_argv_free(v);
}
END_TEST

/* Names, sizes, accelerators and paths that would be misread are refused. */
START_TEST(refused)
{
    struct qemu_spec ok = {.name = "g",
                           .mem_mb = 64,
                           .vcpus = 1,
                           .accel = "tcg",
                           .kernel = "/k",
                           .qmp_path = "/q"};
    struct qemu_spec s;
    struct vmckpt_error err;

    s = ok;
    s.name = "../x";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "guest name"));
    s = ok;
    s.mem_mb = 1;
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    s = ok;
    s.accel = "hvf";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    s = ok;
    s.ram_path = "/a,share=off";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "contains ','"));
    s = ok;
    s.tap = "t0";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
}
END_TEST

/* MACs are stable per name, distinct across names, locally administered. */
START_TEST(mac_for_name)
{
    char a[18], b[18], c[18];

    qemu_mac_for_name("g1", a);
    qemu_mac_for_name("g1", b);
    qemu_mac_for_name("g2", c);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_int_eq(strncmp(a, "52:54:00:", 9), 0);
    ck_assert_uint_eq(strlen(a), 17);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("qemu_argv");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, lab_guest);
    tcase_add_test(tc, restore_guest);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, mac_for_name);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
