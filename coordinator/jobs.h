/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the coordinator's job code (jobs.c: the epoch protocol and the
 * policies; jobs_restart.c: restarts; jobs_admin.c: console requests). */
#ifndef VMCKPT_JOBS_H
#define VMCKPT_JOBS_H

#include "coord.h"

/* One VM's part in an epoch in flight. */
struct jvm {
    char vm[65], host[64], store_host[64], store_addr[128];
    uint64_t parent, req;
    int converged, cut_done, durable;
    int fresh; /* reported a round since the ranks were aligned */
    uint64_t pages, wire_bytes, disk_bytes, pause_us, total_ms, rounds;
    uint64_t paused_at_ns, resumed_at_ns, slowdown_ms, used_parent;
    int qemu_stream;
};

struct jepoch {
    uint64_t epoch;
    char phase[12];          /* precopy, cut, drain */
    uint64_t t_begin, t_cut; /* monotonic ms */
    int64_t started_at;      /* unix s */
    size_t n, ncut, ndurable;
    struct jvm *v;
    struct ev_timer timer; /* pre-copy limit, then the overall timeout */
    int timed_cut;         /* the cut came from max_precopy_ms */
    /* MPI alignment (ranks.c): asked, how many ranks, and the outcome */
    int aligning, settling;
    struct ev_timer align_timer; /* then the settle time */
    uint64_t t_align;            /* monotonic ms when the ranks were asked */
    char align[160];             /* "" no ranks, "aligned", "unaligned: why" */
    char barriers[1024];
};

/* A restart in flight: every VM restored paused, then resumed at once. */
struct jrestart {
    uint64_t epoch;
    size_t n, ndone, nfail;
    struct {
        char vm[65], host[64];
        uint64_t req;
        int done;
    } * v;
    struct conn *admin;
    uint64_t admin_id;
    char error[256];
};

struct job {
    struct coord *co;
    char name[65], state[16], interval[16], last_error[256];
    int auto_restart;
    int lz4; /* page batches LZ4-compressed on the wire and on disk */
    uint64_t mtbf_s, cost_ms, last_epoch, last_window_us;
    struct jepoch *cur;
    struct jrestart *rs;
    struct ev_timer periodic;
    uint64_t next_due_ms; /* monotonic; 0: none */
    /* MPI (ranks.c): the token of the job's ranks, the run the wrapper
     * announced, and the epoch of the last restart */
    struct auth_key token;
    char token_hex[2 * 32 + 1];
    uint32_t nranks;       /* ranks announced by the wrapper; 0: none */
    uint64_t mpi_since_ms; /* monotonic, when announced */
    uint64_t restored_epoch;
    uint64_t run; /* the latest MPI run announced (ranks of older ones are
                   * refused) */
    char last_align[160]; /* of the last commit */
    struct job *next;
};

/* A host that missed an abort (it was away): told when it registers. */
struct clean_note {
    char job[65], host[64];
    uint64_t epoch;
    struct clean_note *next;
};

struct job *job_find(struct coord *co, const char *name);
void job_save(struct job *j);
/* Every change of a job's state: logs old -> new, writes the catalog. */
void job_set_state(struct job *j, const char *state, const char *why);
/* The VMs of job (not stopped) into out[max]; how many. */
int job_vms(struct coord *co, const char *job, struct vmrec **out, size_t max);
/* Start an epoch of 'j', 'streams' per VM (0: each agent's setting);
 * 0, or -1 with 'why'. */
int job_begin(struct job *j, unsigned streams, char *why, size_t wlen);
/* Abort the epoch in flight everywhere; the previous commit stays. */
void job_abort(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The periodic interval in effect (s, 0: none) and its timer. */
uint64_t interval_s(const struct job *j);
void schedule(struct job *j);
/* Restart 'j' from 'epoch' (0: the last committed); lost VMs go to
 * 'hosts' in turn if given, else to the host holding their image. */
int job_restart(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                struct conn *admin, uint64_t admin_id, char *why, size_t wlen);
/* Every VM of a restart answered: resume them all, or fail the job. */
void restart_finish(struct job *j);
/* The cut itself (jobs.c), once alignment is done or skipped. */
void do_cut(struct job *j, const char *why);

/* ranks.c: MPI ranks of a job, barrier alignment. */
/* Give the job a token (new, or from its catalog hex). 0 or -1. */
int ranks_token_init(struct job *j, const char *hex);
/* Ask the job's ranks to stop at a barrier; cut when all wait there, or
 * unaligned after align_timeout_ms; at once when the job has no ranks. */
void ranks_align(struct job *j, const char *why);
/* Every connected rank is READY (or gone): cut. */
void ranks_check(struct job *j);
/* While aligned ranks are held: a VM reported a round; cut once every VM
 * has (or converged). */
void ranks_settle_check(struct job *j);
/* After RESUME or an abort: every rank waiting for epoch e goes on. */
void ranks_release(struct job *j, uint64_t epoch);
/* Ranks connected now, and the protection text for status. */
unsigned ranks_count(struct job *j);
const char *ranks_protection(struct job *j, char *buf, size_t len);
/* A restart from 'epoch' begins: ranks that reconnect waiting for it
 * learn they were restored. */
void ranks_restarted(struct job *j, uint64_t epoch);
/* Every VM of the job is restored, not yet resumed: the rank connections
 * are from the guests that were replaced; drop them. */
void ranks_replaced(struct job *j);

#endif
