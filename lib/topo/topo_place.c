/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where the agent's threads run: pure decisions from a topology and the
 * nodes of the memory, the NIC and the disk they work with, so that they
 * can be tested on made-up machines (docs/performance.md). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "topo_int.h"

static unsigned numa_nodes(const struct topo *t)
{
    int n = hwloc_get_nbobjs_by_type(t->h, HWLOC_OBJ_NUMANODE);

    return n > 0 ? (unsigned)n : 1;
}

/* The CPUs of 'nodes' as a placement: 0, or -1 when they are unknown, not
 * in the topology, or every CPU (pinning there changes nothing). */
static int local_cpus(const struct topo *t, topo_nodes nodes, cpu_set_t *cpus)
{
    return topo_nodes_cpus(t, nodes, cpus) < 0 || CPU_EQUAL(cpus, &t->allowed)
               ? -1
               : 0;
}

/* No pinning, and why: -1. */
static int no_pin(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int no_pin(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* Where the NIC is, as seen from lanes on the memory's nodes. */
static const char *nic_text(topo_nodes mem, topo_nodes nic, char *buf,
                            size_t len)
{
    char nn[64];

    if (nic == TOPO_NODES_UNKNOWN)
        snprintf(buf, len, "the NIC's node is unknown");
    else if ((nic & ~mem) == 0)
        snprintf(buf, len, "the NIC is near them");
    else
        snprintf(buf, len, "the NIC is on node(s) %s: batches cross to it",
                 topo_nodes_format(nic, nn, sizeof(nn)));
    return buf;
}

/* The lanes' CPUs and the sentence saying why, or -1 (no pinning, 'why'
 * filled). The rule of topo.h. */
static int lanes_cpus(const struct topo *t, topo_nodes mem, topo_nodes nic,
                      unsigned n, cpu_set_t *cpus, char *why, size_t len)
{
    char mn[64], nn[64], list[128], nt[96];
    cpu_set_t both;

    topo_nodes_format(mem, mn, sizeof(mn));
    topo_nodes_format(nic, nn, sizeof(nn));
    if (mem == TOPO_NODES_UNKNOWN)
        return no_pin(why, len, "the node of the guest's memory is unknown");
    if (topo_nodes_cpus(t, mem, cpus) < 0)
        return no_pin(why, len,
                      "the guest's memory is on node(s) %s, which have no "
                      "CPU this agent may use",
                      mn);
    if (CPU_EQUAL(cpus, &t->allowed)) {
        /* the memory is as near (or as far) from every CPU: the sends
         * decide */
        if (local_cpus(t, nic, cpus) < 0)
            return no_pin(why, len,
                          "neither the guest's memory (node(s) %s) nor the "
                          "NIC (node(s) %s) is nearer some CPUs than others",
                          mn, nn);
        snprintf(why, len,
                 "the guest's memory (node(s) %s) is local to every CPU: "
                 "lanes near the NIC, node(s) %s (CPUs %s)",
                 mn, nn, topo_cpus_format(cpus, list, sizeof(list)));
        return 0;
    }
    /* memory over several nodes, the NIC near some of them: there the
     * sends are local too and the reads no farther */
    if ((mem & nic) != 0 && (mem & nic) != mem &&
        local_cpus(t, mem & nic, &both) == 0 &&
        (unsigned)CPU_COUNT(&both) >= n) {
        *cpus = both;
        snprintf(why, len,
                 "lanes on node(s) %s (CPUs %s): of the guest's memory "
                 "(node(s) %s) and of the NIC",
                 topo_nodes_format(mem & nic, nn, sizeof(nn)),
                 topo_cpus_format(cpus, list, sizeof(list)), mn);
        return 0;
    }
    snprintf(why, len, "lanes on node(s) %s (CPUs %s), the guest's memory; %s",
             mn, topo_cpus_format(cpus, list, sizeof(list)),
             nic_text(mem, nic, nt, sizeof(nt)));
    return 0;
}

void topo_place_lanes(const struct topo *t, topo_nodes mem, topo_nodes nic,
                      unsigned n, struct topo_lanes *out)
{
    cpu_set_t cpus;
    unsigned i;

    memset(out, 0, sizeof(*out));
    out->n = n;
    if (t == NULL || numa_nodes(t) < 2) {
        snprintf(out->why, sizeof(out->why), "one NUMA node");
        return;
    }
    if (n == 0 || n > TOPO_MAX_LANES) {
        snprintf(out->why, sizeof(out->why), "%u lanes: 1 to %d", n,
                 TOPO_MAX_LANES);
        return;
    }
    if (lanes_cpus(t, mem, nic, n, &cpus, out->why, sizeof(out->why)) < 0)
        return;
    /* all of them on all those CPUs, not one each: the guest's vCPUs run
     * there too, and the scheduler balances the two */
    for (i = 0; i < n; i++)
        out->cpus[i] = cpus;
    out->pin = 1;
}

void topo_place_writer(const struct topo *t, topo_nodes disk,
                       struct topo_place *out)
{
    char dn[64], list[128];

    memset(out, 0, sizeof(*out));
    topo_nodes_format(disk, dn, sizeof(dn));
    if (t == NULL || numa_nodes(t) < 2)
        snprintf(out->why, sizeof(out->why), "one NUMA node");
    else if (disk == TOPO_NODES_UNKNOWN)
        snprintf(out->why, sizeof(out->why),
                 "the node of the store's disk is unknown");
    else if (local_cpus(t, disk, &out->cpus) < 0)
        snprintf(out->why, sizeof(out->why),
                 "the store's disk is near node(s) %s: every CPU or none "
                 "this agent may use",
                 dn);
    else {
        out->pin = 1;
        snprintf(out->why, sizeof(out->why),
                 "near the store's disk, node(s) %s (CPUs %s)", dn,
                 topo_cpus_format(&out->cpus, list, sizeof(list)));
    }
}
