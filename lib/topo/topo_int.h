/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the files of lib/topo share: the loaded topology. */
#ifndef VMCKPT_TOPO_INT_H
#define VMCKPT_TOPO_INT_H

#include <hwloc.h>

#include "topo.h"

struct topo {
    hwloc_topology_t h;
    /* the CPUs this process may run on: the topology's allowed ones, and
     * on this machine those the process was bound to when it loaded it */
    cpu_set_t allowed;
};

/* hwloc's set and glibc's: 0, or -1 (a CPU past CPU_SETSIZE). */
int topo_bitmap_to_cpus(hwloc_const_bitmap_t set, cpu_set_t *cpus);
void topo_cpus_to_bitmap(const cpu_set_t *cpus, hwloc_bitmap_t set);
/* "0-7,16", into buf (always terminated). */
const char *topo_cpus_format(const cpu_set_t *cpus, char *buf, size_t len);

#endif
