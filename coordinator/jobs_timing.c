/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where a job epoch's time went at the coordinator: the instants jobs.c
 * stamps, and the line its commit logs (bench/scale reads it). */
#include "config.h"

#include <time.h>

#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

void jobs_stamp(struct jstamp *s)
{
    s->wall = clock_mono_ns();
    s->cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Milliseconds of wall clock ('cpu' 0) or of the coordinator's CPU from
 * 'a' to 'b' (0 if either was not reached). */
static double ms_between(const struct jstamp *a, const struct jstamp *b,
                         int cpu)
{
    uint64_t from = cpu ? a->cpu : a->wall, to = cpu ? b->cpu : b->wall;

    return a->wall && b->wall && to > from ? (double)(to - from) / 1e6 : 0;
}

/*
 * The phases, between the stamps of jobs.c:
 *
 *   begin -- begun ...... cut -- cut_sent ... all_cut -- resumed ......
 *   BEGIN fan-out  pre-copy  CUT fan-out  gather    RESUME fan-out drain
 *   ...... durable -- done
 *          commit
 *
 * The protocol's own cost is the fan-outs, the gather (the agents pause
 * their guests in it) and the commit; pre-copy and drain are the agents'
 * and the stores' work.
 */
void jobs_log_timing(const struct job *j, uint64_t window_us)
{
    const struct jepoch *e = j->cur;
    const struct jtiming *t = &e->tm;
    uint64_t longest = 0;
    size_t i;

    for (i = 0; i < e->n; i++)
        if (e->v[i].pause_us > longest)
            longest = e->v[i].pause_us;
    log_info("epoch %s/%llu timing: %zu VM(s); begin fan-out %.3f ms, "
             "pre-copy %.3f ms, cut gather %.3f ms (fan-out %.3f ms), resume "
             "fan-out %.3f ms, drain %.3f ms, commit %.3f ms, catalog %.3f "
             "ms; window %llu us, longest VM pause %llu us; cpu: begin %.3f "
             "ms, gather %.3f ms, resume %.3f ms, commit %.3f ms",
             j->name, (unsigned long long)e->epoch, e->n,
             ms_between(&t->begin, &t->begun, 0),
             ms_between(&t->begun, &t->cut, 0),
             ms_between(&t->cut, &t->all_cut, 0),
             ms_between(&t->cut, &t->cut_sent, 0),
             ms_between(&t->all_cut, &t->resumed, 0),
             ms_between(&t->resumed, &t->durable, 0),
             ms_between(&t->durable, &t->done, 0), (double)t->catalog_ns / 1e6,
             (unsigned long long)window_us, (unsigned long long)longest,
             ms_between(&t->begin, &t->begun, 1),
             ms_between(&t->cut, &t->all_cut, 1),
             ms_between(&t->all_cut, &t->resumed, 1),
             ms_between(&t->durable, &t->done, 1));
}
