/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host's CPU and memory layout. The only user of hwloc. */
#ifndef VMCKPT_TOPO_H
#define VMCKPT_TOPO_H

#include <stdint.h>

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

#endif
