/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's own placement: this host's topology, kept when its threads
 * are to be pinned, and where the store's writers run. One per process,
 * set up before any thread starts and only read afterwards. */
#include "config.h"

#include <string.h>

#include "lib/util/log.h"
#include "topo_int.h"

static struct topo *host;
static struct topo_place writer;
static int bind_warned;

int topo_host_init(int pin, struct topo_info *info, struct vmckpt_error *err)
{
    if (topo_probe(info, err) < 0)
        return -1;
    if (!pin || info->numa_nodes < 2) {
        log_debug("threads are not pinned: %s",
                  pin ? "one NUMA node" : "[agent] pin_threads = off");
        return 0;
    }
    /* the devices too, now that they matter (their discovery is the
     * slower part of a load) */
    host = topo_load(1, err);
    return host != NULL ? 0 : -1;
}

void topo_host_fini(void)
{
    topo_destroy(host);
    host = NULL;
    memset(&writer, 0, sizeof(writer));
}

const struct topo *topo_host(void)
{
    return host;
}

void topo_host_plan_writer(const char *dir)
{
    if (host == NULL)
        return;
    topo_place_writer(host, topo_dir_nodes(host, dir), &writer);
    if (writer.pin)
        log_info("store writers run %s", writer.why);
    else
        log_debug("store writers are not pinned: %s", writer.why);
}

void topo_host_bind_writer(void)
{
    if (host != NULL && writer.pin)
        topo_host_bind(&writer.cpus);
}

int topo_host_plan_lanes(const void *ram, size_t len, const char *peer,
                         unsigned n, struct topo_lanes *out)
{
    topo_nodes nic = TOPO_NODES_UNKNOWN;
    char ifname[TOPO_NAME_MAX];

    if (host == NULL) {
        memset(out, 0, sizeof(*out));
        out->n = n;
        return 0;
    }
    if (topo_iface_toward(peer, ifname, sizeof(ifname)) == 0)
        nic = topo_iface_nodes(host, ifname);
    topo_place_lanes(host, topo_memory_nodes(host, ram, len), nic, n, out);
    return out->pin;
}

void topo_host_bind(const cpu_set_t *cpus)
{
    struct vmckpt_error err;

    if (host == NULL || topo_bind_thread(host, cpus, &err) == 0)
        return;
    /* a container may forbid it: say so once, run on */
    if (!__atomic_exchange_n(&bind_warned, 1, __ATOMIC_RELAXED))
        log_warn("%s; threads run where the scheduler puts them", err.text);
    else
        log_debug("%s", err.text);
}
