/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of libtopo: placement decisions on hwloc's made-up machines
 * (two packages of two NUMA nodes), device lookups on an XML topology and
 * a copy of /sys, and on this machine the memory lookup and the binding. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/topo/topo.h"

/* NUMA nodes 0-3, 8 PUs each: node i holds PUs 8i..8i+7 */
#define TWO_PACKAGES "pack:2 numa:2 core:4 pu:2"

#define NODE(i) ((topo_nodes)1 << (i))

static struct topo *synthetic(const char *desc)
{
    struct vmckpt_error err;
    struct topo *t = topo_load_synthetic(desc, &err);

    ck_assert_msg(t != NULL, "%s: %s", desc, err.text);
    return t;
}

/* 'cpus' is exactly PUs first..last */
static void assert_cpus(const cpu_set_t *cpus, int first, int last)
{
    int i;

    ck_assert_int_eq(CPU_COUNT(cpus), last - first + 1);
    for (i = first; i <= last; i++)
        ck_assert_msg(CPU_ISSET(i, cpus), "CPU %d not in the set", i);
}

static void assert_lanes(const struct topo_lanes *l, unsigned n, int first,
                         int last)
{
    unsigned i;

    ck_assert_msg(l->pin, "not pinned: %s", l->why);
    ck_assert_uint_eq(l->n, n);
    for (i = 0; i < n; i++)
        assert_cpus(&l->cpus[i], first, last);
}

START_TEST(synthetic_info)
{
    struct topo *t = synthetic(TWO_PACKAGES);
    struct topo_info info;
    cpu_set_t cpus;

    topo_get_info(t, &info);
    ck_assert_uint_eq(info.numa_nodes, 4);
    ck_assert_uint_eq(info.cores, 16);
    ck_assert_uint_eq(info.pus, 32);
    ck_assert_int_eq(topo_nodes_cpus(t, NODE(3), &cpus), 0);
    assert_cpus(&cpus, 24, 31);
    ck_assert_int_eq(topo_nodes_cpus(t, NODE(1) | NODE(2), &cpus), 0);
    assert_cpus(&cpus, 8, 23);
    ck_assert_int_eq(topo_nodes_cpus(t, NODE(4), &cpus), -1);
    ck_assert_int_eq(topo_nodes_cpus(t, TOPO_NODES_UNKNOWN, &cpus), -1);
    topo_destroy(t);
}
END_TEST

START_TEST(lanes_near_memory)
{
    /* memory on node 3, the NIC on node 0 (the other package): every lane
     * reads near the memory */
    struct topo *t = synthetic(TWO_PACKAGES);
    struct topo_lanes l;

    topo_place_lanes(t, NODE(3), NODE(0), 4, &l);
    assert_lanes(&l, 4, 24, 31);
    ck_assert_msg(strstr(l.why, "cross") != NULL, "%s", l.why);
    /* the NIC's node unknown: the same */
    topo_place_lanes(t, NODE(3), TOPO_NODES_UNKNOWN, 8, &l);
    assert_lanes(&l, 8, 24, 31);
    /* the NIC near the memory: the same */
    topo_place_lanes(t, NODE(3), NODE(2) | NODE(3), 2, &l);
    assert_lanes(&l, 2, 24, 31);
    topo_destroy(t);
}
END_TEST

START_TEST(lanes_memory_and_nic)
{
    /* memory on nodes 2 and 3, the NIC near 3: lanes on node 3, where the
     * sends are local too, if its 8 CPUs are enough for the lanes */
    struct topo *t = synthetic(TWO_PACKAGES);
    struct topo_lanes l;

    topo_place_lanes(t, NODE(2) | NODE(3), NODE(3), 4, &l);
    assert_lanes(&l, 4, 24, 31);
    topo_place_lanes(t, NODE(2) | NODE(3), NODE(3), 9, &l);
    assert_lanes(&l, 9, 16, 31);
    /* the NIC on the other package: the memory's nodes */
    topo_place_lanes(t, NODE(2) | NODE(3), NODE(0), 4, &l);
    assert_lanes(&l, 4, 16, 31);
    topo_destroy(t);
}
END_TEST

START_TEST(lanes_memory_everywhere)
{
    /* memory on every node: the NIC decides, or nothing is pinned */
    struct topo *t = synthetic(TWO_PACKAGES);
    topo_nodes all = NODE(0) | NODE(1) | NODE(2) | NODE(3);
    struct topo_lanes l;

    topo_place_lanes(t, all, NODE(1), 4, &l);
    assert_lanes(&l, 4, 8, 15);
    topo_place_lanes(t, all, TOPO_NODES_UNKNOWN, 4, &l);
    ck_assert_int_eq(l.pin, 0);
    topo_place_lanes(t, all, all, 4, &l);
    ck_assert_int_eq(l.pin, 0);
    topo_destroy(t);
}
END_TEST

START_TEST(lanes_unknown)
{
    /* what is unknown or impossible pins nothing, and says why */
    struct topo *t = synthetic(TWO_PACKAGES);
    struct topo_lanes l;

    topo_place_lanes(t, TOPO_NODES_UNKNOWN, NODE(0), 4, &l);
    ck_assert_int_eq(l.pin, 0);
    ck_assert_msg(strstr(l.why, "unknown") != NULL, "%s", l.why);
    topo_place_lanes(t, NODE(7), NODE(0), 4, &l); /* no node 7 */
    ck_assert_int_eq(l.pin, 0);
    topo_place_lanes(t, NODE(3), NODE(0), 0, &l);
    ck_assert_int_eq(l.pin, 0);
    topo_place_lanes(t, NODE(3), NODE(0), TOPO_MAX_LANES + 1, &l);
    ck_assert_int_eq(l.pin, 0);
    topo_place_lanes(NULL, NODE(3), NODE(0), 4, &l);
    ck_assert_int_eq(l.pin, 0);
    topo_destroy(t);
}
END_TEST

START_TEST(one_node)
{
    /* one NUMA node: nothing is pinned, whatever the nodes say (a
     * description without a NUMA level makes hwloc 2.9 copy memory onto
     * itself: valgrind and ASan would say so) */
    static const char *const descs[] = {"pack:1 numa:1 core:4 pu:2",
                                        "numa:1 pack:2 core:4 pu:2", NULL};
    const char *const *d;

    for (d = descs; *d != NULL; d++) {
        struct topo *t = synthetic(*d);
        struct topo_place w;
        struct topo_lanes l;
        struct topo_info info;

        topo_get_info(t, &info);
        ck_assert_uint_eq(info.numa_nodes, 1);
        topo_place_lanes(t, NODE(0), NODE(0), 2, &l);
        ck_assert_int_eq(l.pin, 0);
        ck_assert_str_eq(l.why, "one NUMA node");
        topo_place_writer(t, NODE(0), &w);
        ck_assert_int_eq(w.pin, 0);
        topo_destroy(t);
    }
}
END_TEST

START_TEST(writer_near_disk)
{
    struct topo *t = synthetic(TWO_PACKAGES);
    struct topo_place w;

    topo_place_writer(t, NODE(2), &w);
    ck_assert_msg(w.pin, "%s", w.why);
    assert_cpus(&w.cpus, 16, 23);
    topo_place_writer(t, NODE(0) | NODE(1), &w);
    ck_assert_msg(w.pin, "%s", w.why);
    assert_cpus(&w.cpus, 0, 15);
    topo_place_writer(t, TOPO_NODES_UNKNOWN, &w);
    ck_assert_int_eq(w.pin, 0);
    topo_place_writer(t, NODE(0) | NODE(1) | NODE(2) | NODE(3), &w);
    ck_assert_int_eq(w.pin, 0); /* every CPU: nothing to gain */
    topo_destroy(t);
}
END_TEST

/* 'xml' with 'what' inserted after the first line holding 'after' (or,
 * with 'before', at the start of that line). */
static char *insert_at(char *xml, const char *after, int before,
                       const char *what)
{
    char *at = strstr(xml, after), *out;
    size_t head;

    ck_assert_ptr_nonnull(at);
    at = before ? at : strchr(at, '\n') + 1;
    head = (size_t)(at - xml);
    out = malloc(strlen(xml) + strlen(what) + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, xml, head);
    strcpy(out + head, what);
    strcat(out, xml + head);
    free(xml);
    return out;
}

/* TWO_PACKAGES with I/O devices: a NIC eth7 on package 1 (nodes 2-3), a
 * disk nvme1n1 in the group of node 0, a NIC eth9 on the whole machine. */
static struct topo *with_devices(void)
{
    hwloc_topology_t h;
    struct vmckpt_error err;
    struct topo *t;
    char *buf, *xml;
    int len;

    ck_assert_int_eq(hwloc_topology_init(&h), 0);
    ck_assert_int_eq(hwloc_topology_set_synthetic(h, TWO_PACKAGES), 0);
    ck_assert_int_eq(hwloc_topology_load(h), 0);
    ck_assert_int_eq(hwloc_topology_export_xmlbuffer(h, &buf, &len, 0), 0);
    xml = strdup(buf);
    hwloc_free_xmlbuffer(h, buf);
    hwloc_topology_destroy(h);
    xml = insert_at(xml, "<object type=\"Package\" os_index=\"1\"", 0,
                    "<object type=\"OSDev\" name=\"eth7\" "
                    "osdev_type=\"2\"/>\n");
    xml = insert_at(xml, "<object type=\"Group\"", 0,
                    "<object type=\"OSDev\" name=\"nvme1n1\" "
                    "osdev_type=\"0\"/>\n");
    /* the machine's last child */
    xml = insert_at(xml, "  </object>\n  <support", 1,
                    "<object type=\"OSDev\" name=\"eth9\" "
                    "osdev_type=\"2\"/>\n");
    t = topo_load_xml(xml, &err);
    ck_assert_msg(t != NULL, "%s", err.text);
    free(xml);
    return t;
}

START_TEST(device_nodes)
{
    struct topo *t = with_devices();
    struct topo_lanes l;
    struct topo_place w;

    ck_assert_uint_eq(topo_osdev_nodes(t, "eth7"), NODE(2) | NODE(3));
    ck_assert_uint_eq(topo_osdev_nodes(t, "nvme1n1"), NODE(0));
    ck_assert_uint_eq(topo_osdev_nodes(t, "eth9"), TOPO_NODES_UNKNOWN);
    ck_assert_uint_eq(topo_osdev_nodes(t, "eth0"), TOPO_NODES_UNKNOWN);
    /* a guest on node 1 sending through eth7, the store on nvme1n1 */
    topo_place_lanes(t, NODE(1), topo_osdev_nodes(t, "eth7"), 4, &l);
    assert_lanes(&l, 4, 8, 15);
    topo_place_writer(t, topo_osdev_nodes(t, "nvme1n1"), &w);
    ck_assert(w.pin);
    assert_cpus(&w.cpus, 0, 7);
    topo_destroy(t);
}
END_TEST

START_TEST(made_up_memory_and_binding)
{
    /* a made-up machine holds no memory of this process and binds
     * nothing */
    struct topo *t = synthetic(TWO_PACKAGES);
    struct vmckpt_error err;
    char buf[4096] = {1};
    cpu_set_t cpus;

    ck_assert_uint_eq(topo_memory_nodes(t, buf, sizeof(buf)),
                      TOPO_NODES_UNKNOWN);
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    errno = 0;
    ck_assert_int_eq(topo_bind_thread(t, &cpus, &err), -1);
    ck_assert_int_eq(errno, ENOTSUP);
    topo_destroy(t);
}
END_TEST

START_TEST(nodes_format)
{
    char buf[64];

    ck_assert_str_eq(topo_nodes_format(TOPO_NODES_UNKNOWN, buf, sizeof(buf)),
                     "unknown");
    ck_assert_str_eq(topo_nodes_format(NODE(3), buf, sizeof(buf)), "3");
    ck_assert_str_eq(topo_nodes_format(NODE(0) | NODE(2) | NODE(3) | NODE(63),
                                       buf, sizeof(buf)),
                     "0,2-3,63");
}
END_TEST

/* ---- a copy of /sys ---------------------------------------------------- */

static char sysroot[64];

static void mk(const char *rel, int dir)
{
    char path[256], *slash;

    snprintf(path, sizeof(path), "%s/%s", sysroot, rel);
    for (slash = strchr(path + strlen(sysroot) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        (void)mkdir(path, 0700);
        *slash = '/';
    }
    if (dir)
        ck_assert_int_eq(mkdir(path, 0700), 0);
    else
        ck_assert_int_eq(close(creat(path, 0600)), 0);
}

static void ln(const char *target, const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", sysroot, rel);
    ck_assert_int_eq(symlink(target, path), 0);
}

static void make_sysfs(void)
{
    snprintf(sysroot, sizeof(sysroot), "/tmp/vmckpt-sysfs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sysroot));
    /* sda with partition sda1; sdb; nvme0n1; dm-0 over sdb and nvme0n1 */
    mk("devices/pci0/block/sda/sda1/partition", 0);
    mk("devices/pci0/block/sdb", 1);
    mk("devices/pci1/nvme/nvme0/nvme0n1", 1);
    mk("devices/virtual/block/dm-0/slaves/sdb", 1);
    mk("devices/virtual/block/dm-0/slaves/nvme0n1", 1);
    mk("dev/block/.keep", 0);
    mk("class/block/.keep", 0);
    ln("../../devices/pci0/block/sda/sda1", "dev/block/8:1");
    ln("../../devices/pci0/block/sda", "dev/block/8:0");
    ln("../../devices/virtual/block/dm-0", "dev/block/253:0");
    ln("../../devices/pci0/block/sdb", "class/block/sdb");
    ln("../../devices/pci1/nvme/nvme0/nvme0n1", "class/block/nvme0n1");
    /* br0 over bond0 (eth0, eth1) and tap3 */
    mk("class/net/br0/brif/bond0", 1);
    mk("class/net/br0/brif/tap3", 1);
    mk("class/net/bond0/lower_eth0", 1);
    mk("class/net/bond0/lower_eth1", 1);
    mk("class/net/eth0/device", 1);
    mk("class/net/eth1/device", 1);
    mk("class/net/tap3", 1);
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_sysfs(void)
{
    ck_assert_int_eq(nftw(sysroot, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static int has_name(char (*names)[TOPO_NAME_MAX], int n, const char *name)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

START_TEST(dev_disks)
{
    char names[8][TOPO_NAME_MAX];
    int n;

    make_sysfs();
    ck_assert_int_eq(topo_dev_disks(sysroot, makedev(8, 1), names, 8), 1);
    ck_assert_str_eq(names[0], "sda");
    ck_assert_int_eq(topo_dev_disks(sysroot, makedev(8, 0), names, 8), 1);
    ck_assert_str_eq(names[0], "sda");
    n = topo_dev_disks(sysroot, makedev(253, 0), names, 8);
    ck_assert_int_eq(n, 2);
    ck_assert(has_name(names, n, "sdb") && has_name(names, n, "nvme0n1"));
    ck_assert_int_eq(topo_dev_disks(sysroot, makedev(253, 0), names, 1), 1);
    ck_assert_int_eq(topo_dev_disks(sysroot, makedev(0, 20), names, 8), 0);
    remove_sysfs();
}
END_TEST

START_TEST(iface_lowers)
{
    char names[8][TOPO_NAME_MAX];
    int n;

    make_sysfs();
    n = topo_iface_lowers(sysroot, "br0", names, 8);
    ck_assert_int_eq(n, 3);
    ck_assert(has_name(names, n, "eth0") && has_name(names, n, "eth1") &&
              has_name(names, n, "tap3"));
    ck_assert_int_eq(topo_iface_lowers(sysroot, "bond0", names, 8), 2);
    ck_assert_int_eq(topo_iface_lowers(sysroot, "eth1", names, 8), 1);
    ck_assert_str_eq(names[0], "eth1");
    ck_assert_int_eq(topo_iface_lowers(sysroot, "../x", names, 8), 0);
    remove_sysfs();
}
END_TEST

/* ---- this machine ----------------------------------------------------- */

START_TEST(real_memory_node)
{
    /* memory this thread wrote: on a node of this machine (node 0 on a
     * machine of one); a shared mapping not touched here yet as well */
    struct vmckpt_error err;
    struct topo *t = topo_load(0, &err);
    struct topo_info info;
    size_t len = 16u << 20;
    uint8_t *p = malloc(len), *shared, *view;
    topo_nodes n;
    int fd;

    ck_assert_msg(t != NULL, "%s", err.text);
    ck_assert_ptr_nonnull(p);
    topo_get_info(t, &info);
    memset(p, 0x5a, len);
    n = topo_memory_nodes(t, p + 1, len - 1);
    ck_assert_uint_ne(n, TOPO_NODES_UNKNOWN);
    if (info.numa_nodes == 1)
        ck_assert_uint_eq(n, NODE(0));
    fd = memfd_create("topo-test", 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
    shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    view = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    ck_assert(shared != MAP_FAILED && view != MAP_FAILED);
    memset(shared, 0x33, len);
    ck_assert_uint_eq(topo_memory_nodes(t, view, len), n);
    ck_assert_uint_eq(topo_memory_nodes(t, view, 0), TOPO_NODES_UNKNOWN);
    munmap(shared, len);
    munmap(view, len);
    close(fd);
    free(p);
    topo_destroy(t);
}
END_TEST

struct bind_case {
    struct topo *t;
    int cpu;
    int rc;
    cpu_set_t got;
};

static void *bind_thread(void *arg)
{
    struct bind_case *c = arg;
    struct vmckpt_error err;
    cpu_set_t cpus;

    CPU_ZERO(&cpus);
    CPU_SET(c->cpu, &cpus);
    c->rc = topo_bind_thread(c->t, &cpus, &err);
    CPU_ZERO(&c->got);
    if (c->rc == 0 && sched_getaffinity(0, sizeof(c->got), &c->got) < 0)
        c->rc = -2;
    return NULL;
}

START_TEST(real_binding)
{
    /* a thread bound to one CPU, then another, runs there only (the
     * kernel's own view); the test thread stays where it was */
    struct vmckpt_error err;
    struct bind_case c = {.t = topo_load(0, &err)};
    cpu_set_t before, after;
    pthread_t th;
    int i, n = 0;

    ck_assert_msg(c.t != NULL, "%s", err.text);
    ck_assert_int_eq(sched_getaffinity(0, sizeof(before), &before), 0);
    for (i = CPU_SETSIZE - 1; i >= 0 && n < 2; i--) {
        if (!CPU_ISSET(i, &before))
            continue;
        n++;
        c.cpu = i;
        ck_assert_int_eq(pthread_create(&th, NULL, bind_thread, &c), 0);
        pthread_join(th, NULL);
        ck_assert_int_eq(c.rc, 0);
        ck_assert_int_eq(CPU_COUNT(&c.got), 1);
        ck_assert(CPU_ISSET(i, &c.got));
    }
    ck_assert_int_ge(n, 1);
    ck_assert_int_eq(sched_getaffinity(0, sizeof(after), &after), 0);
    ck_assert(CPU_EQUAL(&before, &after));
    topo_destroy(c.t);
}
END_TEST

START_TEST(real_devices)
{
    /* this machine: the interface toward 127.0.0.1 is lo; the directory
     * '/' is on a disk when /sys knows its device */
    char ifname[TOPO_NAME_MAX], names[8][TOPO_NAME_MAX], path[64];
    struct stat st;

    ck_assert_int_eq(
        topo_iface_toward("127.0.0.1:7471", ifname, sizeof(ifname)), 0);
    ck_assert_str_eq(ifname, "lo");
    ck_assert_int_eq(
        topo_iface_toward("no-such-host.invalid", ifname, sizeof(ifname)), -1);
    ck_assert_int_eq(stat("/", &st), 0);
    snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(st.st_dev),
             minor(st.st_dev));
    if (access(path, F_OK) == 0) {
        char cls[128];

        ck_assert_int_ge(topo_dev_disks("/sys", st.st_dev, names, 8), 1);
        snprintf(cls, sizeof(cls), "/sys/class/block/%s", names[0]);
        ck_assert_msg(access(cls, F_OK) == 0, "%s", cls);
    }
}
END_TEST

START_TEST(host_placement)
{
    /* off, or one node: no topology kept, nothing pinned */
    struct topo_info info;
    struct vmckpt_error err;
    struct topo_lanes l;
    char buf[4096] = {1};

    ck_assert_int_eq(topo_host_init(0, &info, &err), 0);
    ck_assert_ptr_null(topo_host());
    ck_assert_uint_ge(info.numa_nodes, 1);
    ck_assert_int_eq(topo_host_plan_lanes(buf, sizeof(buf), "127.0.0.1", 2, &l),
                     0);
    ck_assert_int_eq(l.pin, 0);
    topo_host_fini();
    ck_assert_int_eq(topo_host_init(1, &info, &err), 0);
    if (info.numa_nodes == 1)
        ck_assert_ptr_null(topo_host());
    else
        ck_assert_ptr_nonnull(topo_host());
    topo_host_plan_writer("/");
    topo_host_bind_writer();
    topo_host_fini();
    ck_assert_ptr_null(topo_host());
}
END_TEST

int main(void)
{
    Suite *s = suite_create("topo");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    /* hwloc loads (I/O discovery included) under a sanitizer, loaded */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, synthetic_info);
    tcase_add_test(tc, lanes_near_memory);
    tcase_add_test(tc, lanes_memory_and_nic);
    tcase_add_test(tc, lanes_memory_everywhere);
    tcase_add_test(tc, lanes_unknown);
    tcase_add_test(tc, one_node);
    tcase_add_test(tc, writer_near_disk);
    tcase_add_test(tc, device_nodes);
    tcase_add_test(tc, made_up_memory_and_binding);
    tcase_add_test(tc, nodes_format);
    tcase_add_test(tc, dev_disks);
    tcase_add_test(tc, iface_lowers);
    tcase_add_test(tc, real_memory_node);
    tcase_add_test(tc, real_binding);
    tcase_add_test(tc, real_devices);
    tcase_add_test(tc, host_placement);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
