/* SPDX-License-Identifier: GPL-2.0-or-later */
/* How the console shows a job: a JSON object and a row of the jobs table,
 * shared by 'jobs' and 'status JOB'. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "show.h"

json_t *show_job_json(const Vmckpt__JobInfo *j)
{
    return json_pack(
        "{s:s, s:s, s:I, s:i, s:s, s:I, s:b, s:I, s:I, s:I, s:s, s:I, s:s, "
        "s:I, s:i, s:i, s:s, s:s, s:b, s:I, s:s, s:I, s:b, s:s}",
        "job", j->job, "state", j->state, "last_epoch",
        (json_int_t)j->last_epoch, "vms", (int)j->nvms, "interval", j->interval,
        "interval_s", (json_int_t)j->interval_s, "auto_restart",
        j->auto_restart, "mtbf_s", (json_int_t)j->mtbf_s, "cost_ms",
        (json_int_t)j->cost_ms, "epoch_in_flight", (json_int_t)j->epoch,
        "phase", j->phase, "next_checkpoint_in_ms", (json_int_t)j->next_in_ms,
        "last_error", j->last_error, "last_pause_window_us",
        (json_int_t)j->last_window_us, "ranks", (int)j->ranks, "nranks",
        (int)j->nranks, "protection", j->protection, "last_align",
        j->last_align, "lz4", j->lz4, "incarnation", (json_int_t)j->incarnation,
        "stale_copies_destroyed", j->stale, "keep_epochs",
        (json_int_t)j->keep_epochs, "keep_default", j->keep_default,
        "restart_hosts", j->restart_hosts);
}

void show_job_row(const Vmckpt__JobInfo *j, int header)
{
    char next[32], inflight[48], iv[32];

    if (header)
        printf("%-12s %-10s %4s %6s %-14s %8s %9s %-16s %s\n", "JOB", "STATE",
               "VMS", "EPOCH", "INTERVAL", "NEXT", "WINDOW-ms", "IN-FLIGHT",
               "LAST-ERROR");
    if (j->next_in_ms >= 0)
        snprintf(next, sizeof(next), "%llds",
                 (long long)((j->next_in_ms + 999) / 1000));
    else
        snprintf(next, sizeof(next), "-");
    if (j->epoch)
        snprintf(inflight, sizeof(inflight), "%llu %s",
                 (unsigned long long)j->epoch, j->phase);
    else
        snprintf(inflight, sizeof(inflight), "%s",
                 j->phase[0] ? j->phase : "-");
    if (strcmp(j->interval, "auto") == 0)
        snprintf(iv, sizeof(iv), "auto=%llus",
                 (unsigned long long)j->interval_s);
    else if (strcmp(j->interval, "off") == 0)
        snprintf(iv, sizeof(iv), "off");
    else
        snprintf(iv, sizeof(iv), "%ss", j->interval);
    printf("%-12s %-10s %4u %6llu %-14s %8s %9.1f %-16s %s\n", j->job, j->state,
           j->nvms, (unsigned long long)j->last_epoch, iv, next,
           (double)j->last_window_us / 1000, inflight,
           j->last_error[0] ? j->last_error : "-");
}
