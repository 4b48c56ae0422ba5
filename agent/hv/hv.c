/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The list of hypervisor back ends built into this agent. */
#include "config.h"

#include <stddef.h>

#include "hv.h"

static const struct hv_ops *const backends[] = {
    &hv_qemu_ops,
#ifdef HAVE_XEN
    &hv_xen_ops,
#endif
    NULL,
};

const struct hv_ops *const *hv_backends(void)
{
    return backends;
}
