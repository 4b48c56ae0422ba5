/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the guest table: shared by vms.c and vms_news.c only. */
#ifndef VMCKPT_VMS_INT_H
#define VMCKPT_VMS_INT_H

#include "vms.h"

struct pending;

/* The guests of one coordinator (co->vms). */
struct vms {
    struct vmrec *list;
    struct pending *pending; /* admin requests waiting for an agent */
    unsigned keep_epochs;    /* committed epochs kept per VM (0: all) */
    struct vms_epoch_hooks epoch;
    vms_cmdline_fn *cmdline;
    vms_exited_fn *exited;
};

/* Guest 'v' ended without anyone asking: "exited" with the reason shown
 * by 'vmckpt vm list', then the layer above is told. */
void vms_exited_now(struct coord *co, struct vmrec *v, const char *why);
/* Whether guest 'v' is believed to run (or to be about to): only such a
 * guest can end by itself. */
int vms_may_run(const struct vmrec *v);
/* The incarnation of the copy of 'v' its record stands for (its spec's). */
uint64_t vms_incarnation_of(const struct vmrec *v);

#endif
