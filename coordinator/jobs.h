/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Jobs: the coordinated checkpoint of all VMs of a job (the epoch
 * protocol, docs/consistency.md), its restart from one epoch, the periodic
 * policy, and the console's job requests. Sits on the guests (vms.h), the
 * host registry (hosts.h), the connections and the catalog, and registers
 * itself with them as the listener of hosts and the taker of job-epoch
 * messages. The MPI alignment step is done by the layer above (ranks.h)
 * through the ops it registers (jobs_set_ranks_ops). */
#ifndef VMCKPT_COORD_JOBS_H
#define VMCKPT_COORD_JOBS_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

struct jrestart;
struct job;

/* A test_hold_file hold (jobs_hold.c) of an epoch or a restart. */
struct jhold {
    int holding, done;
    struct ev_timer timer;
    struct job *job;
    void (*cont)(struct job *); /* what the phase's end does */
    char phase[12];
};

/* One VM's part in an epoch in flight. */
struct jvm {
    char vm[65], host[64], store_host[64], store_addr[128];
    uint64_t parent, req;
    int converged, cut_done, durable;
    int fresh; /* reported a round since the ranks were aligned */
    uint64_t pages, wire_bytes, disk_bytes, pause_us, total_ms, rounds;
    uint64_t paused_at_ns, resumed_at_ns, slowdown_ms, used_parent;
    int qemu_stream;
    int sealed; /* its BEGIN carried the job's data key */
};

/* The epoch in flight of a job; owned by the job. */
/* An instant of an epoch at the coordinator: clock_mono_ns, and the CPU
 * time the coordinator had used then (CLOCK_THREAD_CPUTIME_ID: what it
 * spent, whatever else runs on its machine). */
struct jstamp {
    uint64_t wall, cpu;
};
/* Where an epoch's time went at the coordinator, for the log line of its
 * commit and bench/scale: the protocol's own cost, apart from the agents'
 * pre-copy and the stores' drain. */
struct jtiming {
    struct jstamp begin, begun;  /* jobs_begin called; every BEGIN sent */
    struct jstamp cut, cut_sent; /* the cut decided; every CUT written */
    struct jstamp all_cut;       /* the last CUT-DONE in */
    struct jstamp resumed;       /* every RESUME sent */
    struct jstamp durable, done; /* the last DURABLE in; the commit done */
    uint64_t catalog_ns;         /* in catalog calls, all phases */
};
struct jepoch {
    uint64_t epoch;
    struct jtiming tm;
    char phase[12];          /* precopy, align, cut, drain */
    uint64_t t_begin, t_cut; /* monotonic ms */
    int64_t started_at;      /* unix s */
    size_t n, ncut, ndurable, nconverged;
    struct jvm *v;         /* sorted by VM name (jobs_jvm_find) */
    struct ev_timer timer; /* pre-copy limit, then the overall timeout */
    int timed_cut;         /* the cut came from max_precopy_ms */
    /* MPI alignment (ranks.c): asked, how many ranks, and the outcome */
    int aligning, settling;
    struct ev_timer align_timer; /* then the settle time; stopped by jobs
                                  * when the epoch ends */
    uint64_t t_align;            /* monotonic ms when the ranks were asked */
    char align[160];             /* "" no ranks, "aligned", "unaligned: why" */
    char barriers[1024];
    struct jhold hold; /* test_hold_file */
    char hold_why[80]; /* the cut's reason, kept over a hold */
};

/* A job; owned by the jobs module (freed by jobs_destroy). */
struct job {
    struct coord *co;
    char name[65], state[16], interval[16], last_error[256];
    int auto_restart;
    int lz4;         /* page batches LZ4-compressed on the wire and on disk */
    int keep_epochs; /* committed epochs kept per VM (0: all, -1: the
                      * coordinator's keep_epochs) */
    /* where auto_restart brings every VM back ("H1,H2,...": each on its
     * own host when listed and up, else on a listed host no other VM
     * took, e.g. a batch job's spare node); "": any host */
    char restart_hosts[1024];
    uint64_t mtbf_s, cost_ms, last_epoch, last_window_us;
    struct jepoch *cur;
    struct jrestart *rs; /* a restart in flight */
    struct ev_timer periodic;
    struct ev_timer lease_wait; /* an automatic restart waits for a lease */
    uint64_t next_due_ms;       /* monotonic; 0: none */
    /* MPI: the token of the job's ranks, the run the wrapper announced,
     * and the epoch of the last restart */
    struct auth_key token;
    char token_hex[2 * 32 + 1];
    uint32_t nranks;       /* ranks announced by the wrapper; 0: none */
    uint64_t mpi_since_ms; /* monotonic, when announced */
    uint64_t restored_epoch;
    uint64_t run; /* the latest MPI run announced (ranks of older ones are
                   * refused) */
    char last_align[160]; /* of the last commit */
    /* bumped by every restart of the job (and restore of one of its VMs);
     * each VM's copy runs under the one its spec says */
    uint64_t incarnation;
    char stale[200]; /* the last stale copies destroyed, for status */
    struct job *next;
};

/* The MPI ranks' part in a job's epochs, registered by the layer above.
 * Without them an epoch is cut as soon as its VMs are ready. */
struct jobs_ranks_ops {
    /* Every VM of j->cur is ready to cut ('why'): align the ranks, then
     * call jobs_cut() (at once, or later from a timer or a message). */
    void (*align)(struct job *j, const char *why);
    /* While j->cur->settling: a VM reported a pre-copy round (its
     * 'converged' and 'fresh' updated); may call jobs_cut(). */
    void (*settle_check)(struct job *j);
    /* The VMs resumed after the cut, or the epoch was aborted: ranks
     * waiting for 'epoch' go on. */
    void (*release)(struct job *j, uint64_t epoch);
    /* A restart restored every VM of j, paused: the ranks connected now
     * are from the guests that were replaced. */
    void (*replaced)(struct job *j);
    /* Ranks of j connected now, and the protection text shown in status
     * (written into buf[len], which it returns). */
    unsigned (*count)(struct job *j);
    const char *(*protection)(struct job *j, char *buf, size_t len);
};

/* Create the job table of 'co' (co->jobs): epochs are cut after
 * 'max_precopy_ms' of pre-copy at most, aborted when not committed after
 * 'ckpt_timeout_ms'; 'mtbf_s' is the default MTBF of interval = auto.
 * Registers with the server (close hook), the host registry (events) and
 * the guests (epoch hooks): call after hosts_create() and vms_create().
 * 0, or -1 (errno). */
int jobs_create(struct coord *co, unsigned max_precopy_ms,
                unsigned ckpt_timeout_ms, uint64_t mtbf_s);
/* test_hold_file (fault-injection tests only, jobs_hold.c): PATH names
 * a phase where every epoch or restart waits a while ("" or NULL: none).
 * 0, or -1 (ENOMEM). */
int jobs_set_hold_file(struct coord *co, const char *path);
/* Free every job (NULL-safe); after server_stop(), before vms_destroy(). */
void jobs_destroy(struct coord *co);
/* The MPI layer's ops; 'ops' must outlive the jobs. */
void jobs_set_ranks_ops(struct coord *co, const struct jobs_ranks_ops *ops);
/* Load the jobs of the catalog; epochs left in flight by an earlier
 * coordinator are aborted (hosts told when they register). 0, or -1 with
 * 'err'. */
int jobs_load(struct coord *co, struct vmckpt_error *err);

/* Every job, for iteration with ->next; NULL if none. */
struct job *jobs_first(struct coord *co);
/* Job 'name', or NULL. */
struct job *jobs_find(struct coord *co, const char *name);
/* How many guests of job 'name' are not stopped (may run, or will again
 * after a restart); -1 if it cannot tell. */
int jobs_guests(struct coord *co, const char *name);
/* Job 'name', created (state running, default policies) if new; NULL when
 * out of memory. */
struct job *jobs_touch(struct coord *co, const char *name);
/* Write the job's row to the catalog (errors are logged). */
void jobs_save(struct job *j);
/* Re-arm the periodic checkpoint of j from its interval. */
void jobs_schedule(struct job *j);
/* The cut of j->cur, once alignment is done or skipped: every VM is
 * paused and staged; 'why' for the log. */
void jobs_cut(struct job *j, const char *why);

/* Handlers of the console's messages (server routes). jobs_on_checkpoint
 * serves a checkpoint of a whole job (no target). */
int jobs_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_register(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_query(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_epochs(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_cancel(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_restart(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_gc(struct conn *c, const Vmckpt__Envelope *env);
/* An agent's CkptStats or CkptCutDone (server route): taken (handed to
 * the guests, vms_on_stats / vms_on_cut_done) only from the agent
 * connection of the host that holds the VM for that epoch; from any other
 * it is refused with an Error saying why, and changes nothing. */
int jobs_on_report(struct conn *c, const Vmckpt__Envelope *env);

#endif
