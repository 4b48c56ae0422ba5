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

/* Index of argument 'a' in 'v', or -1. */
static int find(char **v, const char *a)
{
    int i;

    for (i = 0; v[i] != NULL; i++)
        if (strcmp(v[i], a) == 0)
            return i;
    return -1;
}

/* A raw base under a qcow2 overlay: file and format nodes per layer, the
 * read-only base with no backing of its own, the writable overlay on top
 * of it, the device on slot 0x10 + K. */
START_TEST(disk_chain)
{
    const struct qemu_layer layers[] = {
        {.path = "/img/root.raw",
         .format = "raw",
         .node = "d2l0",
         .read_only = 1},
        {.path = "/run/vm/d2.g2.qcow2", .format = "qcow2", .node = "d2l1"}};
    const struct qemu_disk disk = {.layers = layers, .nlayers = 2, .index = 2};
    const char *expect[] = {
        "-blockdev",
        "driver=file,node-name=d2l0f,filename=/img/root.raw,read-only=on",
        "-blockdev",
        "driver=raw,node-name=d2l0,file=d2l0f,read-only=on",
        "-blockdev",
        "driver=file,node-name=d2l1f,filename=/run/vm/d2.g2.qcow2,"
        "read-only=off",
        "-blockdev",
        "driver=qcow2,node-name=d2l1,file=d2l1f,read-only=off,backing=d2l0",
        "-device",
        "virtio-blk-pci,drive=d2l1,id=vd2,addr=0x12,serial=vmckpt-d2",
        NULL};
    struct qemu_spec s = {.name = "g",
                          .mem_mb = 64,
                          .vcpus = 1,
                          .accel = "tcg",
                          .kernel = "/k",
                          .qmp_path = "/q",
                          .disks = &disk,
                          .ndisks = 1};
    struct vmckpt_error err;
    char **v = qemu_argv_build(&s, &err);
    int i, at;

    ck_assert_ptr_nonnull(v);
    at = find(v, "-blockdev");
    ck_assert_int_ge(at, 0);
    for (i = 0; expect[i] != NULL; i++) {
        ck_assert_ptr_nonnull(v[at + i]);
        ck_assert_str_eq(v[at + i], expect[i]);
    }
    ck_assert_ptr_null(v[at + i]);
    qemu_argv_free(v);
}
END_TEST

/* A qcow2 base is told to open no backing file of its own (in JSON:
 * key=value has no null). */
START_TEST(disk_qcow2_base)
{
    const struct qemu_layer base = {
        .path = "/b.qcow2", .format = "qcow2", .node = "b"};
    const struct qemu_disk disk = {.layers = &base, .nlayers = 1};
    struct qemu_spec s = {.name = "g",
                          .mem_mb = 64,
                          .vcpus = 1,
                          .accel = "tcg",
                          .kernel = "/k",
                          .qmp_path = "/q",
                          .disks = &disk,
                          .ndisks = 1};
    struct vmckpt_error err;
    char **v = qemu_argv_build(&s, &err);

    ck_assert_ptr_nonnull(v);
    ck_assert(has(v, "-blockdev",
                  "{\"driver\":\"qcow2\",\"node-name\":\"b\",\"file\":\"bf\","
                  "\"read-only\":false,\"backing\":null}"));
    ck_assert(has(v, "-device",
                  "virtio-blk-pci,drive=b,id=vd0,addr=0x10,"
                  "serial=vmckpt-d0"));
    qemu_argv_free(v);
}
END_TEST

/* Node names, paths, formats and counts QEMU would refuse or misread. */
START_TEST(disk_refused)
{
    struct qemu_layer l[2] = {
        {.path = "/b.raw", .format = "raw", .node = "b"},
        {.path = "/o.qcow2", .format = "qcow2", .node = "o"}};
    struct qemu_disk d[2] = {{.layers = l, .nlayers = 2, .index = 0},
                             {.layers = l, .nlayers = 1, .index = 1}};
    struct qemu_spec s = {.name = "g",
                          .mem_mb = 64,
                          .vcpus = 1,
                          .accel = "tcg",
                          .kernel = "/k",
                          .qmp_path = "/q",
                          .disks = d,
                          .ndisks = 1};
    struct vmckpt_error err;
    char **v;

    v = qemu_argv_build(&s, &err);
    ck_assert_ptr_nonnull(v);
    qemu_argv_free(v);
    l[1].node = "1o";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "node name '1o'"));
    l[1].node = "o,file.filename=/etc/shadow";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    l[1].node = "o23456789012345678901234567890"; /* 30: the most */
    v = qemu_argv_build(&s, &err);
    ck_assert_ptr_nonnull(v);
    qemu_argv_free(v);
    l[1].node = "o234567890123456789012345678901";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    l[1].node = "bf"; /* the base's file node */
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "used twice"));
    l[1].node = "o";
    l[1].path = "/o,x.qcow2";
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "contains ','"));
    l[1].path = "/o.qcow2";
    l[1].format = "raw"; /* a raw image has no backing */
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "format 'raw'"));
    l[1].format = "qcow2";
    s.ndisks = 2; /* disk 1 reuses disk 0's base node */
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "used twice"));
    d[1].index = 0;
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    ck_assert_ptr_nonnull(strstr(err.text, "index 0 used twice"));
    s.ndisks = 1;
    d[0].index = 8;
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    d[0].index = 0;
    d[0].nlayers = 0;
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    d[0].nlayers = 17;
    ck_assert_ptr_null(qemu_argv_build(&s, &err));
    d[0].nlayers = 2;
    s.ndisks = 9;
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

    /* a loaded machine (the scale tests beside) may take seconds */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, lab_guest);
    tcase_add_test(tc, restore_guest);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, mac_for_name);
    tcase_add_test(tc, disk_chain);
    tcase_add_test(tc, disk_qcow2_base);
    tcase_add_test(tc, disk_refused);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
