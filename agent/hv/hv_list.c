/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The list of hypervisor back ends built into the agent that ships: the
 * one place that names them. A program linked with libhv.a takes this
 * file (or another list) among its own sources. */
#include "config.h"

#include <stddef.h>

#include "hv.h"

/* Defined by hv_qemu.c and hv_xen.c; reached from outside through the
 * list only. */
extern const struct hv_ops hv_qemu_ops;
#ifdef HAVE_XEN
extern const struct hv_ops hv_xen_ops;
#endif

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
