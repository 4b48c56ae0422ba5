/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A rank's channel to the coordinator's ranks' endpoint (docs/mpi.md):
 * where the job, its token and the endpoint come from, and one thread
 * that keeps the connection, hears CkptAlign / RankRelease, sends
 * RankReady, and reconnects when the connection dies (after a restore the
 * old one is gone). Used by the hooks and by vmckpt-mpirun. */
#ifndef VMCKPT_MPI_CHANNEL_H
#define VMCKPT_MPI_CHANNEL_H

#include <stdint.h>

#include "lib/util/error.h"
#include "lib/wire/auth.h"

/* Where to reach the coordinator as a member of a job. */
struct chan_target {
    char job[65];
    char addr[160];
    struct auth_key token;
};

/* Fill 't' from VMCKPT_JOB, VMCKPT_TOKEN (hex) and VMCKPT_COORDINATOR, or
 * else from the kernel command line (vmckpt.job=, vmckpt.token=,
 * vmckpt.coordinator=, which the coordinator gives a job's guests).
 * 1 when all three are known, 0 when there is no job here, -1 with 'err'
 * when they are there but malformed. */
int chan_target_get(struct chan_target *t, struct vmckpt_error *err);
void chan_target_dispose(struct chan_target *t);

/* The per-process channel of an MPI rank. */
struct chan_rank {
    uint32_t rank, size;
    char host[64], vm[64];
    uint64_t run; /* VMCKPT_RUN from the wrapper, 0 if none */
};

/* Open the channel and register the rank, waiting at most 'timeout_ms'
 * for the first connection. Whether or not that worked the thread keeps
 * trying in the background; 0 if registered now, -1 with 'err' if not. */
int chan_start(const struct chan_target *t, const struct chan_rank *r,
               int timeout_ms, struct vmckpt_error *err);
/* The highest epoch a cut was asked for, not yet released (0: none). */
uint64_t chan_pending(void);
/* Report READY at barrier 'count' for 'epoch' and wait for RELEASE (or a
 * restore of this rank, or losing the coordinator for good). Returns the
 * epoch this rank was restored from, or 0. */
uint64_t chan_wait(uint64_t epoch, uint64_t count);
/* The coordinator refused the rank (it does not try again). */
int chan_refused(void);
void chan_stop(void);

#endif
