/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the jobs module only (jobs.c: the epoch protocol, failures and
 * the periodic policy; jobs_restart.c: restarts; jobs_admin.c: console
 * requests). */
#ifndef VMCKPT_COORD_JOBS_INT_H
#define VMCKPT_COORD_JOBS_INT_H

#include "catalog.h"
#include "hosts.h"
#include "jobs.h"
#include "stats.h"
#include "vms.h"
#include "tickets.h" /* BEGIN and RESTORE carry store tickets */

/* A restart in flight: every VM restored paused, then resumed at once. */
struct jrestart {
    uint64_t epoch;
    size_t n, ndone, nfail;
    int fault;   /* a host or guest failed, not an image: no earlier epoch */
    int retry;   /* and auto_restart tries this epoch again at the end */
    int give_up; /* a guest ended again after a retry: no auto_restart */
    struct {
        char vm[65], host[64];
        char from[64]; /* whose store the image is read from */
        char alt[64];  /* the other copy, not tried yet ("" none) */
        int qemu_stream, sealed;
        uint64_t req;
        uint64_t sent_ms; /* monotonic, when the restore was sent */
        int done, failed;
    } * v;
    struct conn *admin; /* NULL once the console went away */
    uint64_t admin_id;
    char error[256];
    char note[600];    /* the copies and epochs given up on, for status */
    struct jhold hold; /* test_hold_file */
};

/* A host that missed an abort (it was away): told when it registers. */
struct clean_note {
    char job[65], host[64];
    uint64_t epoch;
    struct clean_note *next;
};

/* The jobs of one coordinator (co->jobs). */
struct jobs {
    struct job *list;
    struct clean_note *to_clean; /* aborts not yet told to a host */
    unsigned max_precopy_ms;     /* a job epoch is cut after this at most */
    unsigned ckpt_timeout_ms;    /* and aborted if not committed after this */
    uint64_t mtbf_s;             /* default MTBF for interval = auto */
    const struct jobs_ranks_ops *ranks; /* NULL: no MPI layer */
    char *hold_file;                    /* test_hold_file (NULL: none) */
};

/* Give the job the token its ranks prove (jobs_admin.c): from its
 * catalog hex, or new when there is none (or it does not parse). 0 or -1. */
int jobs_token_init(struct job *j, const char *hex);
/* test_hold_file (jobs_hold.c): 1 when the job must stop here at the end
 * of 'phase' ('cont' goes on when the hold is over), 0 to go on now. */
int jobs_hold(struct job *j, struct jhold *h, const char *phase,
              void (*cont)(struct job *));
/* The epoch or restart that holds 'h' ends: no hold goes on. */
void jobs_hold_end(struct job *j, struct jhold *h);

/* Every change of a job's state: logs old -> new, writes the catalog;
 * 'why' (may be NULL) becomes last_error unless the job runs. */
void jobs_set_state(struct job *j, const char *state, const char *why);
/* The VMs of job (not stopped), however many: *out is a malloc'd array
 * the caller frees. How many, or -1 (ENOMEM, *out NULL). */
int jobs_vms(struct coord *co, const char *job, struct vmrec ***out);
/* Sort names[0..n-1] and keep each name once, at the front: how many
 * distinct names there are. The strings are not copied. */
size_t jobs_distinct(const char **names, size_t n);
/* Start an epoch of 'j', 'streams' per VM (0: each agent's setting);
 * 0, or -1 with 'why'. */
int jobs_begin(struct job *j, unsigned streams, char *why, size_t wlen);
/* VM 'vm' of the epoch in flight of 'j' (NULL-safe) if that is 'epoch';
 * else NULL. */
struct jvm *jobs_jvm_find(struct job *j, uint64_t epoch, const char *vm);
/* Every VM of j->cur is durable: one catalog transaction commits the
 * epoch, then the agents are told (or the epoch is aborted). */
void jobs_commit(struct job *j);
/* The guests' hook (jobs_report.c): an agent's reply that no single-VM
 * request of its connection waits for; 1 if it was an epoch's or a
 * restart's, or was refused as coming from a host that does not hold the
 * VM. */
int jobs_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env);
/* Abort the epoch in flight everywhere; the previous commit stays. */
void jobs_abort(struct job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The periodic interval in effect (s, 0: none). */
uint64_t jobs_interval_s(const struct job *j);
/* Deliver the aborts noted for 'host' if it is up (jobs_fail.c). */
void jobs_host_up(struct coord *co, const char *host);
/* The MPI layer's view of j, or its absence. */
unsigned jobs_rank_count(struct job *j);
const char *jobs_rank_protection(struct job *j, char *buf, size_t len);

/* jobs_timing.c */
/* Now, on the wall clock and the coordinator's CPU clock. */
void jobs_stamp(struct jstamp *s);
/* Log where the committed epoch j->cur spent its time (its pause window
 * 'window_us'): the line bench/scale reads. */
void jobs_log_timing(const struct job *j, uint64_t window_us);

/* jobs_fail.c */
/* Listen to the host registry and the server's closes (jobs_create). 0,
 * or -1 (errno). */
int jobs_fail_watch(struct coord *co);

/* Set up j->lease_wait (jobs_fail.c), from job_new. */
void jobs_lease_wait_init(struct job *j);
/* The VM layer's hooks (jobs_fail.c): a job's incarnation (bumped first
 * when 'bump'), and news of a stale copy destroyed, for status. */
uint64_t jobs_incarnation(struct coord *co, const char *job, int bump);
void jobs_stale_copy(struct coord *co, const struct vmrec *v, const char *host,
                     uint64_t inc);

/* jobs_restart.c */
/* The restore of the i-th VM of j's restart failed ('why'): 1 if it was
 * sent again from the other copy of its image, 0 if there is none. */
int jobs_restart_retry(struct job *j, size_t i, const char *why);
/* Whether a restart of 'j' now could put a second copy of a guest next to
 * one still running: the latest instant (clock_mono_ms) at which the lease
 * of a host of j's guests that is not up may still hold, with that host in
 * host[hlen] and its last grant in *last_ack; 0 if none does (every such
 * lease has surely ended, or the host was fenced by hand). */
uint64_t jobs_lease_pending(struct job *j, char *host, size_t hlen,
                            uint64_t *last_ack);
/* Restart 'j' from 'epoch' (0: the last committed); lost VMs go to
 * hosts[0..nhosts-1] in turn if given, else to the host holding their
 * image. 'admin' (may be NULL) is answered when every VM is back. 0, or
 * -1 with 'why' (nothing was started). */
int jobs_restart(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                 struct conn *admin, uint64_t admin_id, char *why, size_t wlen);
/* The same for every VM of 'j', those stopped since included (a batch
 * system stops a requeued job's VMs and names the hosts of its next run):
 * each goes to hosts[0..nhosts-1] (at most 64), to its own host when that
 * is listed, else to the first listed host no other VM took. */
int jobs_restart_all(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                     struct conn *admin, uint64_t admin_id, char *why,
                     size_t wlen);
/* auto_restart of 'j' on its restart_hosts: its VMs not stopped from the
 * last committed epoch, placed as jobs_restart_all places them. */
int jobs_restart_on(struct job *j, char **hosts, size_t nhosts, char *why,
                    size_t wlen);
/* Every VM of a restart answered: resume them all, or fail the job.
 * Frees j->rs. */
void jobs_restart_finish(struct job *j);
/* The guests of j's restart on 'host' (only VM 'vm' there if not NULL)
 * can no longer be resumed: their host was lost, its agent went away, or
 * the guest ended while restored and paused. The restart fails as soon as
 * no VM is awaited any more, never for an earlier epoch (the image was
 * not at fault); with 'retry' (the host is lost, or the guest ended),
 * auto_restart then tries the same epoch again. A host whose agent only
 * went away is retried when it is declared lost. */
void jobs_restart_fault(struct job *j, const char *host, const char *vm,
                        const char *why, int retry);
/* Split the comma-separated host names of 'list' (changed) into
 * hosts[0..max-1]: how many, or -1 if there are more or one is not a
 * plain name. */
int jobs_split_hosts(char *list, char **hosts, size_t max);
/* The vms layer's keep hook (jobs_admin.c): job 'job''s retention. */
int jobs_keep_epochs(struct coord *co, const char *job);
/* jobs_fail.c: restart 'j' from its last committed epoch if its policy
 * says so (once the leases of its hosts away have ended). */
void jobs_auto_restart(struct job *j);

#endif
