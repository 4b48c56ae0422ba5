/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the guest table: shared by vms.c and vms_news.c only. */
#ifndef VMCKPT_VMS_INT_H
#define VMCKPT_VMS_INT_H

#include "vms.h"

struct pending;

/* The guests of one coordinator (co->vms). */
struct vms {
    struct vmrec *list;
    /* the same records by job and name (vms_find: a job epoch looks up
     * each of its VMs at every step), grown to keep buckets short */
    struct vmrec **buckets;
    size_t nbuckets, count;
    /* rows to write at the end of the loop's round (vms_save) */
    struct vmrec **dirty;
    size_t ndirty, capdirty;
    struct ev_timer flush;
    struct pending *pending; /* admin requests waiting for an agent */
    unsigned keep_epochs;    /* committed epochs kept per VM (0: all) */
    struct vms_epoch_hooks epoch;
    vms_cmdline_fn *cmdline;
    vms_exited_fn *exited;
};

/* vms_spec.c */
#define VMS_MAX_DISKS 8
/* Whether spec 's' may be started: ERR_NONE, or the code to answer with
 * and in 'why' (size 'len') the reason for the person who asked. */
Vmckpt__ErrorCode vms_check_spec(struct coord *co, const Vmckpt__VmSpec *s,
                                 char *why, size_t len);

/* vms_rows.c */
/* Index 'v' (new; the table doubled when it holds two per bucket). 0, or
 * -1 (ENOMEM). */
int vms_index_add(struct vms *vs, struct vmrec *v);
/* Set up the writing of rows at the end of a round (vms_create). */
void vms_rows_init(struct coord *co);
/* Write the rows saved in this round now, in one transaction (the end of
 * the round, and vms_destroy). */
void vms_rows_flush(struct coord *co);

/* Guest 'v' ended without anyone asking: "exited" with the reason shown
 * by 'vmckpt vm list', then the layer above is told. */
void vms_exited_now(struct coord *co, struct vmrec *v, const char *why);
/* Whether guest 'v' is believed to run (or to be about to): only such a
 * guest can end by itself. */
int vms_may_run(const struct vmrec *v);
/* The incarnation of the copy of 'v' its record stands for (its spec's). */
uint64_t vms_incarnation_of(const struct vmrec *v);

#endif
