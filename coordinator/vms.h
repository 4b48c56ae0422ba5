/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guests as the coordinator knows them, and the single-VM requests of the
 * console (start, stop, checkpoint, restore) relayed to agents. Sits on
 * the host registry; agent messages that belong to a job epoch are handed
 * to the hooks the layer above registered (vms_set_epoch_hooks). */
#ifndef VMCKPT_COORD_VMS_H
#define VMCKPT_COORD_VMS_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* A guest. Owned by the vms module (freed by vms_destroy); the job layer
 * reads it and updates its checkpoint fields. */
struct vmrec {
    char job[65], name[65], host[64], state[16];
    Vmckpt__VmSpec *spec; /* owned; NULL when the catalog had none */
    uint64_t last_epoch;  /* last committed */
    uint64_t chain_epoch; /* last epoch written by its current QEMU */
    char chain_store[64]; /* where that epoch is: deltas stay on it */
    unsigned chain_len;   /* deltas committed since its last full epoch */
    int chain_sealed;     /* that chain is sealed */
    /* live progress of a checkpoint in flight */
    char phase[16];
    uint32_t round;
    uint64_t pages_left, dirty_rate, throughput, last_pause_us, bytes_sent;
    char tracking[16];     /* "uffd-wp", "qemu-migration", "" unknown */
    char exit_reason[256]; /* state "exited": why it ended ("" otherwise) */
    /* the job layer's: the epoch an automatic restart after this VM's
     * exit restored (0: none), so that a guest that ends again before a
     * newer epoch is not restarted in a loop */
    uint64_t auto_restarted_from;
    struct vmrec *next;
    struct vmrec *hnext; /* in its bucket of the index by job and name */
    int dirty;           /* its row waits for the end of the round */
};

/* The job layer's part in messages of agents. Each runs inside the
 * handler of the message; the envelope and its payload belong to the
 * server and are valid during the call only. */
struct vms_epoch_hooks {
    /* An Ack, Error, CkptDurable, CkptAbort or RestoreDone no single-VM
     * request waits for: 1 if it belonged to a job epoch or restart. */
    int (*reply)(struct conn *c, const Vmckpt__Envelope *env);
    /* Pre-copy progress of one VM (after the VM's record took it). */
    void (*stats)(struct coord *co, const Vmckpt__CkptStats *st);
    /* One VM is paused and staged (after the VM's record took it). */
    void (*cut_done)(struct coord *co, const Vmckpt__CkptCutDone *cd);
    /* The incarnation of job 'job' (0: no such job), bumped first when
     * 'bump' is set: a copy of one of its VMs starts elsewhere. */
    uint64_t (*incarnation)(struct coord *co, const char *job, int bump);
    /* A stale copy of 'v' (of incarnation 'inc') on 'host' was ordered
     * destroyed, for the job's status. */
    void (*stale)(struct coord *co, const struct vmrec *v, const char *host,
                  uint64_t inc);
    /* The committed epochs job 'job' keeps per VM (0: all; -1: the
     * configuration's keep_epochs). */
    int (*keep)(struct coord *co, const char *job);
};

/* A guest ended without anyone asking: its agent reported it
 * (VmExited), or did not list it when it registered again. 'v' is in
 * state "exited" with v->exit_reason set to 'why' when this runs, on the
 * event loop, inside the handler of the agent's message; it may restore
 * guests, not free them. */
typedef void vms_exited_fn(struct coord *co, struct vmrec *v, const char *why);

/* The kernel command line a guest of job 'job' starts with, from the one
 * the console gave: malloc'd (the caller frees), NULL when out of memory;
 * and in *token the secret its ranks prove (hex, the job's; "" none),
 * which goes to the guest beside its command line, never on it. Called
 * before every start is relayed. */
typedef char *vms_cmdline_fn(struct coord *co, const char *job,
                             const char *cmdline, const char **token);

/* Create the guest table of 'co' (co->vms), keeping 'keep_epochs'
 * committed epochs per VM (0: all). Registers its close hook with the
 * server. 0, or -1 (errno). */
int vms_create(struct coord *co, unsigned keep_epochs);
/* Free every guest and relayed request (NULL-safe); after server_stop(). */
void vms_destroy(struct coord *co);
/* Who takes the agents' job-epoch messages; 'h' is copied. */
void vms_set_epoch_hooks(struct coord *co, const struct vms_epoch_hooks *h);
/* Who builds a starting guest's command line; without one, the console's
 * is used as given. */
void vms_set_cmdline_hook(struct coord *co, vms_cmdline_fn *fn);
/* Who hears of guests that ended by themselves; without one, they are
 * only marked "exited". */
void vms_set_exited_hook(struct coord *co, vms_exited_fn *fn);
/* Load the guests of the catalog. 0, or -1 with 'err'. */
int vms_load(struct coord *co, struct vmckpt_error *err);

/* Every guest, for iteration with ->next; NULL if none. */
struct vmrec *vms_first(struct coord *co);
/* Guest job/name, or NULL. */
struct vmrec *vms_find(struct coord *co, const char *job, const char *name);
/* Where an epoch's pages of job/vm came from, for the catalog:
 * "qemu-migration", or the tracking its agent reported ("uffd-wp",
 * "xen-logdirty"). A static or the VM's own string. */
const char *vms_source(struct coord *co, const char *job, const char *vm,
                       int qemu_stream);
/* After a durable checkpoint: the VM's tracking as that checkpoint showed
 * it (QEMU's stream, or the agent's own tracking). */
void vms_note_tracking(struct vmrec *v, int qemu_stream);
/* Sealed epochs are never folded into a base (a store has no key): a
 * sealed VM's chain takes a full epoch after this many deltas, so that
 * retention can drop what came before. */
#define VMS_SEALED_CHAIN 8
/* The parent of v's next epoch on 'store', sealed or not: the last epoch
 * of its chain when that is on the same store and sealed alike (a chain
 * is sealed whole or not at all, so that a restore with the key refuses
 * anything clear), else 0 (full); 0 too when 'sealed' and the chain has
 * VMS_SEALED_CHAIN deltas. */
uint64_t vms_parent_for(const struct vmrec *v, const char *store, int sealed);
/* v committed 'epoch' (a delta of 'parent', 0: full; sealed or not) on
 * 'store'. */
void vms_chain_commit(struct vmrec *v, uint64_t epoch, uint64_t parent,
                      const char *store, int sealed);
/* Write the VM's row to the catalog (errors are logged): at the end of
 * this round of the event loop, in one transaction with every other row
 * changed in it (a job of thousands of guests starting at once made one
 * fsync per guest and state, and stalled the loop past the heartbeats). */
void vms_save(struct coord *co, struct vmrec *v);
/* Every VM state change: logs old -> new, writes the catalog; a state
 * other than "exited" clears v->exit_reason. */
void vms_set_state(struct coord *co, struct vmrec *v, const char *state);
/* An agent registered with the guests it runs (vms[0..n-1], "job/vm", or
 * "job/vm!" when held paused; incs[i] the incarnation of vms[i], 0
 * unknown; incs may be NULL): reconcile states and hosts. A copy on a
 * host other than the VM's, or of an older incarnation, is stale: the
 * agent is ordered to destroy it. A guest
 * believed to run there that the agent does not list has ended: it
 * exits as if the agent had reported it (the exited hook runs, after
 * every guest of the list is reconciled). */
void vms_on_host_vms(struct coord *co, const char *host, char **vms,
                     const uint64_t *incs, size_t n);
/* The configuration's keep_epochs (0: all). */
unsigned vms_keep_epochs(struct coord *co);
/* Retention after a commit: keep the newest epochs the job's policy says
 * (the keep hook; else the configuration's keep_epochs) of job/vm ('vm'
 * non-NULL), of the VMs in job epoch 'epoch' (non-zero), or of every VM
 * of the job; older ones are expired in the catalog, then each store that
 * held one, and each that holds a VM's newest epoch or its host's local
 * copy of it, is told to fold and delete: one StoreRetain per store. */
void vms_retain_some(struct coord *co, const char *job, const char *vm,
                     uint64_t epoch);

/* Handlers of the console's messages (server routes). vms_on_checkpoint
 * serves a checkpoint of one VM (one target). */
int vms_on_start(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_stop(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_query(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_restore(struct conn *c, const Vmckpt__Envelope *env);
/* Handlers of the agents' messages (server routes). */
int vms_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_stats(struct conn *c, const Vmckpt__Envelope *env);
int vms_on_cut_done(struct conn *c, const Vmckpt__Envelope *env);
/* VmExited: a guest ended by itself on the sender's host. */
int vms_on_exited(struct conn *c, const Vmckpt__Envelope *env);

#endif
