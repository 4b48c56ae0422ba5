/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hypervisor back ends of the agent, each behind one ops table: hv_qemu.c
 * (QEMU/KVM, the default), hv_xen.c (Xen through libxenctrl, built with
 * --with-xen). The pre-copy engine's hooks join this table as it lands. */
#ifndef VMCKPT_HV_H
#define VMCKPT_HV_H

#include "lib/util/conf.h"

/* What a back end found on this host. */
struct hv_probe {
    char version[64]; /* hypervisor version, "" if unknown */
    char accel[16];   /* qemu: "kvm" or "tcg"; xen: "hap" or "shadow" */
    int usable;       /* 0: present in the build but unusable here */
    char detail[200]; /* why unusable, or a note an admin should see */
};

struct hv_ops {
    /* Short name as registered and shown by 'vmckpt hosts'. */
    const char *name;
    /* Called once at agent start-up, before the agent registers. Fills
     * 'out'; never fails: an unusable hypervisor is reported with usable=0
     * and the reason in 'detail'. 'conf' is the agent's configuration
     * (read-only, for back-end keys such as [agent] qemu). */
    void (*probe)(const struct conf *conf, struct hv_probe *out);
};

extern const struct hv_ops hv_qemu_ops;
extern const struct hv_ops hv_xen_ops;

/* NULL-terminated list of the back ends built into this agent. */
const struct hv_ops *const *hv_backends(void);

#endif
