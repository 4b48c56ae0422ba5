/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The MPI ranks of jobs (docs/mpi.md): the ranks' endpoint (job tokens,
 * rank messages only) and the barrier alignment of a job epoch. Sits
 * above the jobs: it calls their API (jobs_find, jobs_cut, ...) and
 * registers itself as their alignment step (jobs_set_ranks_ops) and as
 * the guests' command-line builder (vms_set_cmdline_hook). */
#ifndef VMCKPT_COORD_RANKS_H
#define VMCKPT_COORD_RANKS_H

#include "server.h"

struct ranks_conf {
    const char *addr;          /* what guests are told to connect to; "":
                                * the endpoint is off */
    unsigned align_timeout_ms; /* ranks not at a barrier: cut unaligned */
    unsigned align_settle_ms;  /* pre-copy while aligned ranks are idle */
    unsigned grace_ms;         /* ranks missing after this: unprotected */
};

/* Create the ranks' side of 'co' (co->ranks) and register it with the
 * jobs, the guests and the server (close hook): call after
 * jobs_create(). 'conf' is copied. 0, or -1 (errno). */
int ranks_create(struct coord *co, const struct ranks_conf *conf);
/* Free it (NULL-safe); after server_stop(). */
void ranks_destroy(struct coord *co);

/* The key a peer of the ranks' endpoint proves (server_start_ranks, with
 * 'arg' the coordinator): the token of the job it names, for role RANK
 * only; NULL otherwise. The job owns the key. */
const struct auth_key *ranks_key_for(void *arg, Vmckpt__Role role,
                                     const char *name);

/* Handlers of the messages of ranks and of the mpirun wrapper (server
 * routes, role RANK). */
int ranks_on_register(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_ready(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_job_register(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_job_deregister(struct conn *c, const Vmckpt__Envelope *env);

#endif
