/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The list of back ends of the simulated agent (vmckpt-agent-simulated,
 * for the scale tests and bench/scale; never installed): the simulated
 * one alone (hv_sim.c), so that a simulated host probes no hypervisor.
 * The agent that ships takes hv_list.c instead, so no user can pick
 * "simulated". */
#include "config.h"

#include <stddef.h>

#include "hv.h"
#include "hv_sim.h"

static const struct hv_ops *const backends[] = {
    &hv_sim_ops,
    NULL,
};

const struct hv_ops *const *hv_backends(void)
{
    return backends;
}
