/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host's CPU, memory and I/O layout, and where the agent's threads run
 * in it (docs/performance.md, "Thread placement"). The only user of hwloc. */
#ifndef VMCKPT_TOPO_H
#define VMCKPT_TOPO_H

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/util/error.h"

struct topo_info {
    unsigned cores;      /* physical cores */
    unsigned pus;        /* hardware threads */
    unsigned numa_nodes; /* at least 1 */
    uint64_t memory_bytes;
};

/* Probe this machine. 0, or -1 with 'err' if hwloc cannot load the
 * topology. */
int topo_probe(struct topo_info *info, struct vmckpt_error *err);

/* ---- a loaded topology ------------------------------------------------ */

struct topo;

/* This machine's topology; 'io': with its I/O devices (NICs, disks), which
 * the lookups of topo_iface_nodes() and topo_dir_nodes() need. NULL with
 * 'err' if hwloc cannot load it. */
struct topo *topo_load(int io, struct vmckpt_error *err);
/* A made-up machine for tests: an hwloc synthetic description ("pack:2
 * numa:2 core:4 pu:2": NUMA nodes 0-3, PUs 0-31 in order), or an hwloc XML
 * document (which may hold I/O devices). topo_bind_thread() refuses
 * them. */
struct topo *topo_load_synthetic(const char *desc, struct vmckpt_error *err);
struct topo *topo_load_xml(const char *xml, struct vmckpt_error *err);
/* Accepts NULL. */
void topo_destroy(struct topo *t);
void topo_get_info(const struct topo *t, struct topo_info *info);

/* A set of NUMA nodes: bit i is the node of OS index i (numactl's node i).
 * Nodes past 63 are not represented: a set that would hold one is
 * unknown. */
typedef uint64_t topo_nodes;
#define TOPO_NODES_UNKNOWN ((topo_nodes)0)

/* The nodes holding the pages of [addr, addr + len) in this process: up
 * to 64 pages spread over the area are sampled, each read once (so that a
 * shared mapping this process has not touched yet reports where its pages
 * are; a page not yet allocated may be allocated by the read). Unknown
 * when hwloc cannot tell (no move_pages, a foreign mapping) or on a
 * made-up topology. */
topo_nodes topo_memory_nodes(const struct topo *t, const void *addr,
                             size_t len);
/* The nodes nearest an OS device of the topology ("eth0", "nvme0n1",
 * "sda"): those of its first ancestor that is not an I/O object. Unknown
 * when the device is not in the topology or is local to the whole
 * machine (no locality: the usual case of a virtual machine). */
topo_nodes topo_osdev_nodes(const struct topo *t, const char *name);
/* The nodes nearest network interface 'ifname': of its own device, or
 * of the ports of a bridge and the lower devices of a bond or VLAN (read
 * in /sys). */
topo_nodes topo_iface_nodes(const struct topo *t, const char *ifname);
/* The nodes nearest the disk(s) holding directory 'dir' (its st_dev ->
 * /sys/dev/block -> the disk, see topo_dev_disks). Unknown for a file
 * system on no block device (tmpfs, NFS). */
topo_nodes topo_dir_nodes(const struct topo *t, const char *dir);
/* "0,2-3", or "unknown", into buf (always terminated). */
const char *topo_nodes_format(topo_nodes nodes, char *buf, size_t len);

/* ---- what the lookups read from the OS (not hwloc) -------------------- */

#define TOPO_NAME_MAX 64

/* The disks under block device 'dev' as 'sysfs' ("/sys", or a copy for
 * tests) describes them: a partition's disk, the devices under a
 * device-mapper or md device. Fills up to 'max' kernel names ("sda",
 * "nvme0n1") and returns how many; 0 when 'dev' is no block device. */
int topo_dev_disks(const char *sysfs, dev_t dev, char (*names)[TOPO_NAME_MAX],
                   int max);
/* The interfaces carrying 'ifname': the ports of a bridge, the lower
 * devices of a bond or VLAN (recursively), or itself. Returns how many
 * names it filled (up to 'max'). */
int topo_iface_lowers(const char *sysfs, const char *ifname,
                      char (*names)[TOPO_NAME_MAX], int max);
/* The interface this host sends to 'addr' ("HOST[:PORT]") through: the
 * one holding the local address of a UDP socket connected to it (no
 * packet is sent). 0, or -1 if unknown. */
int topo_iface_toward(const char *addr, char *ifname, size_t len);

/* ---- placement: pure decisions ---------------------------------------- */

#define TOPO_MAX_LANES 16

/* Where the lanes of one checkpoint run. */
struct topo_lanes {
    int pin; /* 0: leave them to the scheduler ('why' says why) */
    unsigned n;
    cpu_set_t cpus[TOPO_MAX_LANES]; /* lane i's CPUs, when pin */
    char why[240];                  /* the decision, for the log */
};

/* The lanes of a checkpoint of a guest whose memory is on 'mem', sending
 * through a NIC near 'nic' (either may be unknown), 'n' lanes. The rule
 * (docs/performance.md): the lanes read every page and send what remains
 * after compression, so they run on the CPUs of the memory's nodes; of
 * those, on the NIC's if it is near some of them and they are enough for
 * the lanes; where the memory is local to every CPU (spread over every
 * node) the NIC's node decides; no pinning on a one-node machine, with the
 * memory's node unknown, or where the rule leaves every CPU. */
void topo_place_lanes(const struct topo *t, topo_nodes mem, topo_nodes nic,
                      unsigned n, struct topo_lanes *out);

/* Where the store's writer threads run. */
struct topo_place {
    int pin;
    cpu_set_t cpus;
    char why[200];
};

/* Near the disk's nodes 'disk': their CPUs; no pinning on a one-node
 * machine, with the disk's node unknown or local to every CPU. */
void topo_place_writer(const struct topo *t, topo_nodes disk,
                       struct topo_place *out);

/* The CPUs of 'nodes' this process may use, into 'cpus'; 0, or -1 if a
 * node is not in 't' or none is left. */
int topo_nodes_cpus(const struct topo *t, topo_nodes nodes, cpu_set_t *cpus);

/* Run the calling thread on 'cpus' (hwloc_set_cpubind, one thread). 0, or
 * -1 with 'err' (ENOTSUP on a made-up topology). */
int topo_bind_thread(const struct topo *t, const cpu_set_t *cpus,
                     struct vmckpt_error *err);

/* ---- the agent's own placement ---------------------------------------- */
/* One per process: set up by main() before any thread starts, read-only
 * afterwards. */

/* Load this machine's topology into 'info'; with 'pin' and more than one
 * NUMA node, keep it (with its I/O devices) to place the threads; else
 * say why not, once, at debug level. 0, or -1 with 'err'. */
int topo_host_init(int pin, struct topo_info *info, struct vmckpt_error *err);
void topo_host_fini(void);
/* The topology threads are placed in, or NULL: no pinning. */
const struct topo *topo_host(void);
/* Decide, and log, where the store's writers run: near the disk holding
 * 'dir'. Before the store's first connection. */
void topo_host_plan_writer(const char *dir);
/* In a store writer's thread: pin it there, if anywhere. */
void topo_host_bind_writer(void);
/* The lanes of a checkpoint of the guest whose memory is mapped at [ram,
 * ram + len) here, streaming to store 'peer' (HOST[:PORT]): 'out' filled
 * by topo_place_lanes. Returns out->pin. */
int topo_host_plan_lanes(const void *ram, size_t len, const char *peer,
                         unsigned n, struct topo_lanes *out);
/* Pin the calling thread to 'cpus'; a failure is logged (a warning the
 * first time, then at debug level) and the thread runs on. */
void topo_host_bind(const cpu_set_t *cpus);

#endif
