/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Host topology through hwloc: cores, hardware threads, NUMA nodes, RAM. */
#include "config.h"

#include <errno.h>
#include <hwloc.h>
#include <string.h>

#include "topo.h"

int topo_probe(struct topo_info *info, struct vmckpt_error *err)
{
    hwloc_topology_t topo;
    hwloc_obj_t root;
    int n;

    memset(info, 0, sizeof(*info));
    if (hwloc_topology_init(&topo) < 0)
        return errprintf_errno(err, "hwloc_topology_init");
    if (hwloc_topology_load(topo) < 0) {
        errprintf_errno(err, "hwloc_topology_load");
        hwloc_topology_destroy(topo);
        return -1;
    }
    n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    info->cores = n > 0 ? (unsigned)n : 1;
    n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    info->pus = n > 0 ? (unsigned)n : info->cores;
    n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    info->numa_nodes = n > 0 ? (unsigned)n : 1;
    root = hwloc_get_root_obj(topo);
    if (root != NULL)
        info->memory_bytes = root->total_memory;
    hwloc_topology_destroy(topo);
    return 0;
}
