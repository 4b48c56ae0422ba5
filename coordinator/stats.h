/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's counters for its metrics (docs/metrics.md): epochs
 * ended, their pauses and bytes, restores. Kept where the events happen
 * (the guests' and the jobs' code call in, right after the catalog took
 * the change), started from the catalog's totals so that they survive a
 * restart and agree with it. Knows only the catalog; the endpoint above
 * (metrics.c) reads it. Off (every call a no-op) unless metrics are
 * served. */
#ifndef VMCKPT_COORD_STATS_H
#define VMCKPT_COORD_STATS_H

#include <stdint.h>

#include "server.h"
#include "lib/metrics/mtext.h"

struct stats {
    int loaded; /* the catalog's totals are in; events count from then */
    uint64_t vm_committed, vm_aborted;   /* epochs of one VM (rows) */
    uint64_t job_committed, job_aborted; /* epochs of a job as a whole */
    uint64_t wire_bytes, disk_bytes;     /* of committed VM epochs */
    struct mhist vm_pause;               /* seconds, committed VM epochs */
    struct mhist job_window;             /* seconds, committed job epochs */
    /* since this coordinator started (not in the catalog) */
    uint64_t restores_ok, restores_failed;
    struct mhist restore; /* seconds, request to the guest restored */
};

/* Turn the counters on (co->stats); 0, or -1 (ENOMEM). */
int stats_create(struct coord *co);
void stats_destroy(struct coord *co);
/* Start from the catalog's totals, once (the first scrape). Events before
 * that are in the catalog already, so they are not counted twice. 0, or
 * -1 with 'err' (then tried again at the next scrape). */
int stats_load(struct coord *co, struct vmckpt_error *err);

/* The catalog took the end of an epoch of one VM ("committed" or
 * "aborted"; other states are ignored) with its pause and bytes. */
void stats_vm_epoch(struct coord *co, const char *state, uint64_t pause_us,
                    uint64_t wire_bytes, uint64_t disk_bytes);
/* The catalog took the end of a job epoch, with its pause window. */
void stats_job_epoch(struct coord *co, const char *state, uint64_t window_us);
/* A guest's restore ended ('ok' or not) 'ms' after it was asked for. */
void stats_restore(struct coord *co, int ok, uint64_t ms);

#endif
