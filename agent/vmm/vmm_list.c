/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The launchers of the agent that ships, by spec.hypervisor: QEMU and
 * Xen. (The simulated agent of the scale tests has its own list, in
 * vmm_simulated.c.) */
#include "config.h"

#include <stddef.h>

#include "vmm_int.h"

const struct vmm_launcher *const vmm_launchers[] = {
    &vmm_qemu_launcher,
    &vmm_xen_launcher,
    NULL,
};
