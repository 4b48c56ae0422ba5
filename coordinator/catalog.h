/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's catalog: an SQLite database (WAL) that survives
 * restarts. The only user of SQLite. This first schema holds hosts; jobs,
 * VMs and epochs join it as the checkpoint protocol lands. */
#ifndef VMCKPT_CATALOG_H
#define VMCKPT_CATALOG_H

#include <stdint.h>

#include "lib/util/error.h"

struct catalog;

/* A host row. Strings are owned by the struct (catalog_host_dispose). */
struct catalog_host {
    char *name;
    char *addr;
    char *store_addr;
    char *software;
    char *hypervisors; /* "name/version/accel/usable;..." as registered */
    unsigned cores, pus, numa_nodes;
    uint64_t memory_bytes;
    char *state;
    int64_t registered_at; /* unix seconds */
    int64_t last_seen;     /* unix seconds of the last heartbeat */
};

/* Open or create the catalog at 'path'. NULL with 'err' on failure, e.g. a
 * file that is not a vmckpt catalog or is of a newer schema. */
struct catalog *catalog_open(const char *path, struct vmckpt_error *err);
void catalog_close(struct catalog *cat);

/* Insert or replace the row of h->name. */
int catalog_host_put(struct catalog *cat, const struct catalog_host *h,
                     struct vmckpt_error *err);
/* Update state and last_seen of one host. */
int catalog_host_touch(struct catalog *cat, const char *name, const char *state,
                       int64_t last_seen, struct vmckpt_error *err);
/* Call 'fn' for each host row, ordered by name. Stops at fn() < 0. */
int catalog_host_each(struct catalog *cat,
                      int (*fn)(const struct catalog_host *h, void *arg),
                      void *arg, struct vmckpt_error *err);
void catalog_host_dispose(struct catalog_host *h);

/* A VM row: its spec is an opaque blob (the packed VmSpec). */
struct catalog_vm {
    const char *job, *name, *host, *state;
    const void *spec;
    size_t spec_len;
    uint64_t last_epoch;
};
int catalog_vm_put(struct catalog *cat, const struct catalog_vm *v,
                   struct vmckpt_error *err);
int catalog_vm_delete(struct catalog *cat, const char *job, const char *name,
                      struct vmckpt_error *err);
/* Call 'fn' for each VM row; strings and blob valid during the call. */
int catalog_vm_each(struct catalog *cat,
                    int (*fn)(const struct catalog_vm *v, void *arg), void *arg,
                    struct vmckpt_error *err);

/* An epoch of one VM. state: "running", "committed", "aborted". */
struct catalog_epoch {
    const char *job, *vm, *state, *host, *store_host, *store_addr, *note;
    uint64_t epoch, parent, pages, wire_bytes, disk_bytes, pause_us;
    uint64_t total_ms, rounds;
    int64_t started_at, ended_at;
    uint64_t paused_at_ns, resumed_at_ns; /* wall clock of the VM's host */
    const char *source;                   /* "uffd-wp" or "qemu-migration" */
    const char *align, *barriers;         /* of the job epoch (read only) */
    int sealed; /* sealed with the job's data key (put, get) */
};
int catalog_epoch_put(struct catalog *cat, const struct catalog_epoch *e,
                      struct vmckpt_error *err);
/* Retention of job's VMs ('keep' 0: keep all, nothing done).
 * - At the commit of job epoch 'epoch' ('vm' NULL): keep_from is the
 *   keep-th newest committed job epoch; for each VM of 'epoch' with at
 *   least 'keep' committed epochs from keep_from on, 'fn' for each host
 *   that holds one of its older epochs (the store, and for a job epoch
 *   the VM's host with its local copy), then those are marked expired.
 * - Else (one VM 'vm', or every VM of the job; 'epoch' unused): for each
 *   VM whose committed epochs are at least 'keep', keep_from the oldest
 *   of its newest 'keep': 'fn' once per host to tell, namely the store
 *   of its newest epoch, the VM's host for its local copy when that is a
 *   job epoch, and the same two of every older epoch; then the epochs
 *   older than keep_from are marked expired. */
typedef void (*catalog_retain_fn)(const char *vm, uint64_t keep_from,
                                  const char *host, void *arg);
int catalog_retain(struct catalog *cat, const char *job, const char *vm,
                   uint64_t epoch, unsigned keep, catalog_retain_fn fn,
                   void *arg, struct vmckpt_error *err);
/* The next epoch number of job (max + 1, from 1) into *next. 0, or -1
 * with 'err' when the catalog could not be read (*next is then 0: no
 * number is given that might already be used). */
int catalog_epoch_next(struct catalog *cat, const char *job, uint64_t *next,
                       struct vmckpt_error *err);
/* The newest job epoch of 'job' before 'epoch' that is committed with
 * every VM image of it still committed (not expired), into *prev (0:
 * none). 0, or -1 with 'err'. */
int catalog_job_epoch_before(struct catalog *cat, const char *job,
                             uint64_t epoch, uint64_t *prev,
                             struct vmckpt_error *err);
/* Epoch 'epoch' (0: the last committed) of job/vm: 1 found (copied into
 * the caller's buffers via 'fn'), 0 none, -1 error. */
int catalog_epoch_get(struct catalog *cat, const char *job, const char *vm,
                      uint64_t epoch,
                      void (*fn)(const struct catalog_epoch *e, void *arg),
                      void *arg, struct vmckpt_error *err);

/* The epoch rows of 'job' after (after_epoch, after_vm), in that order
 * (epoch, then VM), with the pause window of its job epoch (0 for a
 * single-VM epoch), until 'fn' answers non-zero. */
int catalog_epoch_each(struct catalog *cat, const char *job,
                       uint64_t after_epoch, const char *after_vm,
                       int (*fn)(const struct catalog_epoch *e,
                                 uint64_t window_us, void *arg),
                       void *arg, struct vmckpt_error *err);

/* Transactions: a job epoch commits all its rows at once. */
int catalog_begin(struct catalog *cat, struct vmckpt_error *err);
int catalog_commit(struct catalog *cat, struct vmckpt_error *err);
void catalog_rollback(struct catalog *cat);

/* A job and its policies. */
struct catalog_job {
    const char *name, *state, *interval, *last_error;
    const char *token;         /* hex, for the job's ranks */
    const char *restart_hosts; /* "H1,H2,..." for auto_restart; "" any */
    int auto_restart, lz4;
    int keep_epochs; /* committed epochs kept per VM (0: all, -1: default) */
    uint64_t mtbf_s, cost_ms, last_epoch;
    uint64_t incarnation; /* bumped by every restart of the job */
};
int catalog_job_put(struct catalog *cat, const struct catalog_job *j,
                    struct vmckpt_error *err);
int catalog_job_each(struct catalog *cat,
                     int (*fn)(const struct catalog_job *j, void *arg),
                     void *arg, struct vmckpt_error *err);

/* One epoch of a job as a whole. */
struct catalog_job_epoch {
    const char *job, *state, *note;
    const char *align;    /* "" (no ranks), "aligned", "unaligned: why" */
    const char *barriers; /* "rank:count ..." of the ranks that stopped */
    uint64_t epoch, nvms, precopy_ms, window_us, max_pause_us, cost_ms;
    int64_t started_at, ended_at;
};
int catalog_job_epoch_put(struct catalog *cat,
                          const struct catalog_job_epoch *e,
                          struct vmckpt_error *err);

/* At start: every epoch still 'running' was cut short by a restart of the
 * coordinator. Calls 'fn' for each (job, epoch, host) involved (VM hosts
 * and store hosts), then marks them aborted. */
int catalog_abort_in_flight(struct catalog *cat,
                            void (*fn)(const char *job, uint64_t epoch,
                                       const char *host, void *arg),
                            void *arg, struct vmckpt_error *err);

/* The ended epochs the metrics count from (coordinator/stats.c): every VM
 * epoch row that was committed (state "committed" or, since, "expired")
 * or aborted, through vm_fn with "committed" or "aborted" and its pause
 * and bytes; every job epoch committed or aborted, through job_fn with
 * its pause window. 0, or -1 with 'err'. */
int catalog_epoch_totals(struct catalog *cat,
                         void (*vm_fn)(void *arg, const char *state,
                                       uint64_t pause_us, uint64_t wire_bytes,
                                       uint64_t disk_bytes),
                         void (*job_fn)(void *arg, const char *state,
                                        uint64_t window_us),
                         void *arg, struct vmckpt_error *err);

/* The meta table's value of 'key' into 'out': 1, or 0 when there is
 * none; -1 with 'err'. */
int catalog_meta_get(struct catalog *cat, const char *key, char *out,
                     size_t len, struct vmckpt_error *err);
/* Set it. 0, or -1 with 'err'. */
int catalog_meta_put(struct catalog *cat, const char *key, const char *value,
                     struct vmckpt_error *err);
/* How many committed epochs are stored sealed, into '*n'. 0, or -1. */
int catalog_sealed_count(struct catalog *cat, uint64_t *n,
                         struct vmckpt_error *err);

#endif
