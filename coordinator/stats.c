/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Counters of ended epochs and restores, for the metrics endpoint. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "stats.h"

int stats_create(struct coord *co)
{
    struct stats *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return -1;
    mhist_init(&s->vm_pause, mhist_pause_bounds, MHIST_PAUSE_N);
    mhist_init(&s->job_window, mhist_pause_bounds, MHIST_PAUSE_N);
    mhist_init(&s->restore, mhist_long_bounds, MHIST_LONG_N);
    co->stats = s;
    return 0;
}

void stats_destroy(struct coord *co)
{
    free(co->stats);
    co->stats = NULL;
}

static void count_vm(struct stats *s, const char *state, uint64_t pause_us,
                     uint64_t wire_bytes, uint64_t disk_bytes)
{
    if (strcmp(state, "aborted") == 0) {
        s->vm_aborted++;
    } else if (strcmp(state, "committed") == 0) {
        s->vm_committed++;
        s->wire_bytes += wire_bytes;
        s->disk_bytes += disk_bytes;
        mhist_observe(&s->vm_pause, (double)pause_us / 1e6);
    }
}

static void count_job(struct stats *s, const char *state, uint64_t window_us)
{
    if (strcmp(state, "aborted") == 0) {
        s->job_aborted++;
    } else if (strcmp(state, "committed") == 0) {
        s->job_committed++;
        mhist_observe(&s->job_window, (double)window_us / 1e6);
    }
}

static void load_vm(void *arg, const char *state, uint64_t pause_us,
                    uint64_t wire_bytes, uint64_t disk_bytes)
{
    count_vm(arg, state, pause_us, wire_bytes, disk_bytes);
}

static void load_job(void *arg, const char *state, uint64_t window_us)
{
    count_job(arg, state, window_us);
}

int stats_load(struct coord *co, struct vmckpt_error *err)
{
    struct stats *s = co->stats, fresh;

    if (s == NULL || s->loaded)
        return 0;
    /* into a copy, so that a failed read leaves nothing half counted */
    fresh = *s;
    if (catalog_epoch_totals(co->cat, load_vm, load_job, &fresh, err) < 0)
        return -1;
    *s = fresh;
    s->loaded = 1;
    return 0;
}

void stats_vm_epoch(struct coord *co, const char *state, uint64_t pause_us,
                    uint64_t wire_bytes, uint64_t disk_bytes)
{
    if (co->stats != NULL && co->stats->loaded)
        count_vm(co->stats, state, pause_us, wire_bytes, disk_bytes);
}

void stats_job_epoch(struct coord *co, const char *state, uint64_t window_us)
{
    if (co->stats != NULL && co->stats->loaded)
        count_job(co->stats, state, window_us);
}

void stats_restore(struct coord *co, int ok, uint64_t ms)
{
    struct stats *s = co->stats;

    if (s == NULL)
        return;
    if (!ok) {
        s->restores_failed++;
        return;
    }
    s->restores_ok++;
    mhist_observe(&s->restore, (double)ms / 1000);
}
