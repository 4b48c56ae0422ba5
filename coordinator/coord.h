/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's shared state: configuration, the loop, the catalog,
 * the connections and the host registry. */
#ifndef VMCKPT_COORD_H
#define VMCKPT_COORD_H

#include <stdint.h>

#include "catalog.h"
#include "lib/util/evloop.h"
#include "lib/wire/auth.h"
#include "lib/wire/wire.h"

struct host;
struct pending;
struct job;
struct clean_note;

/* A guest as the coordinator knows it. */
struct vmrec {
    char job[65], name[65], host[64], state[16];
    Vmckpt__VmSpec *spec;
    uint64_t last_epoch;  /* last committed */
    uint64_t chain_epoch; /* last epoch written by its current QEMU */
    char chain_store[64]; /* where that epoch is: deltas stay on it */
    /* live progress of a checkpoint in flight */
    char phase[16];
    uint32_t round;
    uint64_t pages_left, dirty_rate, throughput, last_pause_us, bytes_sent;
    char tracking[16]; /* "uffd-wp", "qemu-migration", "" unknown */
    struct vmrec *next;
};

/* One accepted connection. */
struct conn {
    struct coord *co;
    int fd;
    struct ev_io io;
    struct wire_conn w;
    struct auth_server auth;
    struct ev_timer auth_timer; /* handshake deadline */
    char peer[96];              /* address, for logs */
    struct host *host;          /* set once an agent registered */
    int closing;                /* flush what is queued, then close */
    int guest;                  /* accepted on the ranks' endpoint */
    /* an MPI rank, once registered (ranks.c) */
    struct job *rank_job;
    uint32_t rank;
    uint64_t barrier_count, ready_epoch;
    char rank_where[140]; /* host/vm, for logs */
    struct conn *next;
};

struct coord {
    struct evloop *loop;
    struct catalog *cat;
    struct auth_key key;
    char name[128];
    int listen_fd;
    struct ev_io listen_io;
    struct conn *conns;
    struct host *hosts;
    uint64_t next_host_id;
    unsigned heartbeat_ms;
    unsigned heartbeat_timeout_ms;
    unsigned auth_timeout_ms;
    size_t max_frame;
    struct ev_timer sweep_timer;
    struct vmrec *vms;
    struct pending *pending; /* admin requests waiting for an agent */
    uint64_t next_req;       /* request ids of messages to agents */
    unsigned keep_epochs;    /* committed epochs kept per VM (0: all) */
    struct job *jobs;
    unsigned max_precopy_ms;     /* a job epoch is cut after this at most */
    unsigned ckpt_timeout_ms;    /* and aborted if not committed after this */
    uint64_t mtbf_s;             /* default MTBF for interval = auto */
    struct clean_note *to_clean; /* aborts not yet told to a host */
    /* the ranks' endpoint (guests): job tokens, rank messages only */
    int rank_fd;
    struct ev_io rank_io;
    char rank_addr[128];       /* what guests are told to connect to */
    unsigned align_timeout_ms; /* ranks not at a barrier: cut unaligned */
    unsigned align_settle_ms;  /* pre-copy while aligned ranks are idle */
    unsigned rank_grace_ms;    /* ranks missing after this: unprotected */
};

/* server.c: listening socket, connections, handshake, dispatch. */
int server_start(struct coord *co, const char *listen_addr,
                 struct vmckpt_error *err);
/* The ranks' endpoint, for guests; 'addr' "" leaves it off. */
int server_start_ranks(struct coord *co, const char *addr,
                       struct vmckpt_error *err);
void server_stop(struct coord *co);
/* Drop a connection now, logging 'why'. */
void conn_drop(struct conn *c, const char *why);
/* Queue a message and try to write it; drops the connection on failure. */
int conn_send(struct conn *c, int type, uint64_t request_id,
              const void *payload);
/* Queue an Error reply. */
int conn_error(struct conn *c, uint64_t request_id, Vmckpt__ErrorCode code,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* hosts.c: the host registry. */
int hosts_load(struct coord *co, struct vmckpt_error *err);
void hosts_free(struct coord *co);
void hosts_start_sweep(struct coord *co);
/* A connection of an agent went away without a goodbye. */
void hosts_conn_lost(struct coord *co, struct conn *c);
int hosts_on_register(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_heartbeat(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_goodbye(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_query(struct conn *c, const Vmckpt__Envelope *env);
/* The connection of an up host, or NULL. */
struct conn *hosts_conn(struct coord *co, const char *name);
/* The store address of host 'name' ("" if none) and, for 'after', the
 * next up host in name order (a ring), other than 'after'; NULL if none. */
const char *hosts_store_addr(struct coord *co, const char *name);
const char *hosts_next_up(struct coord *co, const char *after);
/* 1 if host 'name' registered hypervisor back end 'hv' ("qemu", "xen";
 * "" means qemu) as usable. */
int hosts_offers(struct coord *co, const char *name, const char *hv);

/* vms.c: guests, their checkpoints and restores. */
struct vmrec *vms_find(struct coord *co, const char *job, const char *name);
/* Where an epoch's pages of job/vm came from, for the catalog:
 * "qemu-migration", or the tracking its agent reported ("uffd-wp",
 * "xen-logdirty"). */
const char *vms_source(struct coord *co, const char *job, const char *vm,
                       int qemu_stream);
/* After a durable checkpoint: the VM's tracking as that checkpoint showed
 * it (QEMU's stream, or the agent's own tracking). */
void vms_note_tracking(struct vmrec *v, int qemu_stream);
void vms_save(struct coord *co, struct vmrec *v);
/* Every VM state change: logs old -> new, writes the catalog. */
void vms_set_state(struct coord *co, struct vmrec *v, const char *state);
/* An agent registered with the guests it runs: reconcile. */
void vms_on_host_vms(struct coord *co, const char *host, char **vms, size_t n);
int vms_load(struct coord *co, struct vmckpt_error *err);
void vms_free(struct coord *co);
/* A connection ends: requests relayed through it fail or lose their
 * asker. */
void vms_conn_gone(struct coord *co, struct conn *c);
int vms_on_start(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_stop(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_query(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_restore(struct conn *c, const Vmckpt__Envelope *env);
/* From agents. */
int vms_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_stats(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_cut_done(struct conn *c, const Vmckpt__Envelope *env);

/* jobs.c: jobs, the coordinated checkpoint protocol, restart. */
int jobs_load(struct coord *co, struct vmckpt_error *err);
void jobs_free(struct coord *co);
/* The job of a new VM exists (created with default policies). */
struct job *jobs_touch(struct coord *co, const char *name);
/* Hooks from hosts.c and server.c. */
void jobs_host_up(struct coord *co, const char *host);
/* Guests were reported running again: a failed job whose VMs all run is
 * running again. */
void jobs_vms_back(struct coord *co);
void jobs_host_lost(struct coord *co, const char *host, const char *why);
void jobs_conn_gone(struct coord *co, struct conn *c);
/* 1 if the message belonged to a job epoch or restart. */
int jobs_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env);
void jobs_on_stats(struct coord *co, const Vmckpt__CkptStats *st);
void jobs_on_cut_done(struct coord *co, const Vmckpt__CkptCutDone *cd);
int jobs_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_register(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_query(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_epochs(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_cancel(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_restart(struct conn *c, const Vmckpt__Envelope *env);
int jobs_on_gc(struct conn *c, const Vmckpt__Envelope *env);
/* From MPI ranks and the wrapper, on the ranks' endpoint (ranks.c). */
int ranks_on_register(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_ready(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_job_register(struct conn *c, const Vmckpt__Envelope *env);
int ranks_on_job_deregister(struct conn *c, const Vmckpt__Envelope *env);
/* The key of job 'name' for the ranks' endpoint (auth key_for). */
const struct auth_key *ranks_key_for(void *co, Vmckpt__Role role,
                                     const char *name);
/* A guest's kernel command line gets what its ranks need to reach us. */
char *ranks_cmdline(struct coord *co, struct job *j, const char *cmdline);
/* Retention of job/vm after a commit (vms.c). */
void vms_retain(struct coord *co, const char *job, const char *vm,
                const char *current_store);

#endif
