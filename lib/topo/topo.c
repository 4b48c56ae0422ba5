/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host topology through hwloc: cores, hardware threads, NUMA nodes, RAM;
 * the nodes a memory area, a NIC or a disk is near; binding a thread. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "topo_int.h"

/* ---- sets ------------------------------------------------------------- */

int topo_bitmap_to_cpus(hwloc_const_bitmap_t set, cpu_set_t *cpus)
{
    int i, rc = 0;

    CPU_ZERO(cpus);
    if (hwloc_bitmap_weight(set) < 0)
        return -1; /* infinite */
    hwloc_bitmap_foreach_begin(i, set)
    {
        if (i >= CPU_SETSIZE)
            rc = -1;
        else
            CPU_SET(i, cpus);
    }
    hwloc_bitmap_foreach_end();
    return rc;
}

void topo_cpus_to_bitmap(const cpu_set_t *cpus, hwloc_bitmap_t set)
{
    int i;

    hwloc_bitmap_zero(set);
    for (i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, cpus))
            hwloc_bitmap_set(set, (unsigned)i);
}

/* A nodeset as topo_nodes: unknown if empty, infinite or past node 63. */
static topo_nodes nodeset_to_nodes(hwloc_const_nodeset_t set)
{
    topo_nodes n = 0;
    int i;

    if (hwloc_bitmap_weight(set) <= 0 || hwloc_bitmap_last(set) > 63)
        return TOPO_NODES_UNKNOWN;
    hwloc_bitmap_foreach_begin(i, set)
    {
        n |= (topo_nodes)1 << i;
    }
    hwloc_bitmap_foreach_end();
    return n;
}

/* A list of the bits set in 'bits' of 'n' ("0,2-3") into buf. */
static void format_bits(int (*isset)(const void *, int), const void *arg, int n,
                        char *buf, size_t len)
{
    size_t at = 0;
    int i = 0, j;

    buf[0] = '\0';
    while (i < n && at < len) {
        if (!isset(arg, i)) {
            i++;
            continue;
        }
        for (j = i; j + 1 < n && isset(arg, j + 1); j++)
            ;
        at += (size_t)snprintf(buf + at, len - at, j > i ? "%s%d-%d" : "%s%d",
                               at ? "," : "", i, j);
        i = j + 1;
    }
}

static int nodes_isset(const void *arg, int i)
{
    return (*(const topo_nodes *)arg >> i) & 1;
}

static int cpus_isset(const void *arg, int i)
{
    return CPU_ISSET(i, (const cpu_set_t *)arg);
}

const char *topo_nodes_format(topo_nodes nodes, char *buf, size_t len)
{
    if (nodes == TOPO_NODES_UNKNOWN)
        snprintf(buf, len, "unknown");
    else
        format_bits(nodes_isset, &nodes, 64, buf, len);
    return buf;
}

const char *topo_cpus_format(const cpu_set_t *cpus, char *buf, size_t len)
{
    format_bits(cpus_isset, cpus, CPU_SETSIZE, buf, len);
    return buf;
}

/* ---- loading ---------------------------------------------------------- */

/* Load 't->h' (set up by the caller) and note the CPUs allowed. */
static struct topo *finish_load(struct topo *t, struct vmckpt_error *err)
{
    hwloc_bitmap_t set;

    if (hwloc_topology_load(t->h) < 0) {
        errprintf_errno(err, "hwloc_topology_load");
        topo_destroy(t);
        return NULL;
    }
    set = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(t->h));
    if (set == NULL) {
        errprintf_errno(err, "hwloc");
        topo_destroy(t);
        return NULL;
    }
    if (hwloc_topology_is_thissystem(t->h)) {
        hwloc_bitmap_t bound = hwloc_bitmap_alloc();

        /* a process started on some CPUs (taskset, systemd's
         * CPUAffinity) keeps its threads there */
        if (bound != NULL && hwloc_get_cpubind(t->h, bound, 0) == 0 &&
            hwloc_bitmap_intersects(bound, set))
            hwloc_bitmap_and(set, set, bound);
        hwloc_bitmap_free(bound);
    }
    (void)topo_bitmap_to_cpus(set, &t->allowed);
    hwloc_bitmap_free(set);
    return t;
}

static struct topo *topo_new(struct vmckpt_error *err)
{
    struct topo *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        errprintf_errno(err, "topology");
        return NULL;
    }
    if (hwloc_topology_init(&t->h) < 0) {
        errprintf_errno(err, "hwloc_topology_init");
        free(t);
        return NULL;
    }
    return t;
}

struct topo *topo_load(int io, struct vmckpt_error *err)
{
    struct topo *t = topo_new(err);

    if (t == NULL)
        return NULL;
    /* the NICs and disks with their PCI parents, not every bridge */
    if (io)
        hwloc_topology_set_io_types_filter(t->h,
                                           HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    return finish_load(t, err);
}

struct topo *topo_load_synthetic(const char *desc, struct vmckpt_error *err)
{
    struct topo *t = topo_new(err);

    if (t == NULL)
        return NULL;
    if (hwloc_topology_set_synthetic(t->h, desc) < 0) {
        errprintf_errno(err, "hwloc synthetic topology '%s'", desc);
        topo_destroy(t);
        return NULL;
    }
    return finish_load(t, err);
}

struct topo *topo_load_xml(const char *xml, struct vmckpt_error *err)
{
    struct topo *t = topo_new(err);

    if (t == NULL)
        return NULL;
    hwloc_topology_set_io_types_filter(t->h, HWLOC_TYPE_FILTER_KEEP_ALL);
    if (hwloc_topology_set_xmlbuffer(t->h, xml, (int)strlen(xml) + 1) < 0) {
        errprintf_errno(err, "hwloc XML topology");
        topo_destroy(t);
        return NULL;
    }
    return finish_load(t, err);
}

void topo_destroy(struct topo *t)
{
    int e = errno;

    if (t == NULL)
        return;
    hwloc_topology_destroy(t->h);
    free(t);
    errno = e;
}

void topo_get_info(const struct topo *t, struct topo_info *info)
{
    hwloc_obj_t root;
    int n;

    memset(info, 0, sizeof(*info));
    n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_CORE);
    info->cores = n > 0 ? (unsigned)n : 1;
    n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_PU);
    info->pus = n > 0 ? (unsigned)n : info->cores;
    n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE);
    info->numa_nodes = n > 0 ? (unsigned)n : 1;
    root = hwloc_get_root_obj(t->h);
    if (root != NULL)
        info->memory_bytes = root->total_memory;
}

int topo_probe(struct topo_info *info, struct vmckpt_error *err)
{
    struct topo *t = topo_load(0, err);

    memset(info, 0, sizeof(*info));
    if (t == NULL)
        return -1;
    topo_get_info(t, info);
    topo_destroy(t);
    return 0;
}

/* ---- lookups ---------------------------------------------------------- */

#define MEM_SAMPLES 64

topo_nodes topo_memory_nodes(const struct topo *t, const void *addr, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages, i, step;
    uintptr_t base = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    hwloc_nodeset_t set, one;
    topo_nodes n = TOPO_NODES_UNKNOWN;

    if (len == 0 || !hwloc_topology_is_thissystem(t->h))
        return TOPO_NODES_UNKNOWN;
    pages = ((uintptr_t)addr + len - base + page - 1) / page;
    step = pages > MEM_SAMPLES ? pages / MEM_SAMPLES : 1;
    set = hwloc_bitmap_alloc();
    one = hwloc_bitmap_alloc();
    /* a sample: hwloc asks the kernel page by page (move_pages), which
     * for a guest of many GiB would take long */
    for (i = 0; set != NULL && one != NULL && i < pages; i += step) {
        const volatile uint8_t *p = (const volatile uint8_t *)(base + i * page);

        if ((uintptr_t)p < (uintptr_t)addr)
            p = addr;
        (void)*p; /* mapped here, so that the kernel can tell */
        if (hwloc_get_area_memlocation(t->h, (const void *)(base + i * page),
                                       page, one, HWLOC_MEMBIND_BYNODESET) == 0)
            hwloc_bitmap_or(set, set, one);
    }
    if (set != NULL && one != NULL)
        n = nodeset_to_nodes(set);
    hwloc_bitmap_free(set);
    hwloc_bitmap_free(one);
    return n;
}

topo_nodes topo_osdev_nodes(const struct topo *t, const char *name)
{
    hwloc_obj_t o = NULL, a;

    while ((o = hwloc_get_next_osdev(t->h, o)) != NULL)
        if (o->name != NULL && strcmp(o->name, name) == 0)
            break;
    if (o == NULL || (a = hwloc_get_non_io_ancestor_obj(t->h, o)) == NULL ||
        a->nodeset == NULL)
        return TOPO_NODES_UNKNOWN;
    /* a device hwloc puts under the whole machine has no locality */
    if (a->parent == NULL &&
        hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE) > 1)
        return TOPO_NODES_UNKNOWN;
    return nodeset_to_nodes(a->nodeset);
}

#define MAX_DEVS 16

topo_nodes topo_iface_nodes(const struct topo *t, const char *ifname)
{
    char names[MAX_DEVS][TOPO_NAME_MAX];
    topo_nodes n = TOPO_NODES_UNKNOWN;
    int i, k = topo_iface_lowers("/sys", ifname, names, MAX_DEVS);

    for (i = 0; i < k; i++)
        n |= topo_osdev_nodes(t, names[i]);
    return n;
}

topo_nodes topo_dir_nodes(const struct topo *t, const char *dir)
{
    char names[MAX_DEVS][TOPO_NAME_MAX];
    topo_nodes n = TOPO_NODES_UNKNOWN;
    struct stat st;
    int i, k;

    if (stat(dir, &st) < 0)
        return TOPO_NODES_UNKNOWN;
    k = topo_dev_disks("/sys", st.st_dev, names, MAX_DEVS);
    for (i = 0; i < k; i++)
        n |= topo_osdev_nodes(t, names[i]);
    return n;
}

int topo_nodes_cpus(const struct topo *t, topo_nodes nodes, cpu_set_t *cpus)
{
    hwloc_bitmap_t set;
    hwloc_obj_t o;
    cpu_set_t c;
    unsigned i;
    int rc = -1;

    CPU_ZERO(cpus);
    if (nodes == TOPO_NODES_UNKNOWN || (set = hwloc_bitmap_alloc()) == NULL)
        return -1;
    for (i = 0; i < 64; i++) {
        if (!((nodes >> i) & 1))
            continue;
        o = hwloc_get_numanode_obj_by_os_index(t->h, i);
        if (o == NULL || o->cpuset == NULL)
            goto out;
        hwloc_bitmap_or(set, set, o->cpuset);
    }
    if (topo_bitmap_to_cpus(set, &c) < 0)
        goto out;
    CPU_AND(cpus, &c, &t->allowed);
    rc = CPU_COUNT(cpus) > 0 ? 0 : -1;
out:
    hwloc_bitmap_free(set);
    return rc;
}

int topo_bind_thread(const struct topo *t, const cpu_set_t *cpus,
                     struct vmckpt_error *err)
{
    hwloc_bitmap_t set;
    int rc;

    if (!hwloc_topology_is_thissystem(t->h)) {
        errno = ENOTSUP;
        return errprintf(err, "not this machine's topology");
    }
    set = hwloc_bitmap_alloc();
    if (set == NULL)
        return errprintf_errno(err, "hwloc");
    topo_cpus_to_bitmap(cpus, set);
    rc = hwloc_set_cpubind(t->h, set, HWLOC_CPUBIND_THREAD);
    if (rc < 0) {
        char list[256];

        errprintf_errno(err, "binding a thread to CPUs %s",
                        topo_cpus_format(cpus, list, sizeof(list)));
    }
    hwloc_bitmap_free(set);
    return rc < 0 ? -1 : 0;
}
