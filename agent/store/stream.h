/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sending and fetching ends of image streams: an agent writing an
 * epoch to a peer's store, or reading one back from it for a restore. */
#ifndef VMCKPT_STREAM_H
#define VMCKPT_STREAM_H

#include "lib/client/client.h"
#include "agent/engine/precopy.h"
#include "agent/store/image.h"

struct stream_out;

/* What an image stream writes: epoch 'epoch' (parent 0: full) of
 * JOB/VM, a guest of 'ram_bytes', written by a copy of the guest of job
 * incarnation 'incarnation' (0: none), in 'streams' parallel connections
 * (1 to PRECOPY_MAX_STREAMS). */
struct stream_what {
    const char *job, *vm;
    uint64_t epoch, parent, ram_bytes, incarnation;
    unsigned streams;
    unsigned disks; /* the guest's disks: their layers come before the end */
    const char *store_host; /* the store's host, its credential's name
                             * (NULL: any agent's) */
    const uint8_t *ticket;  /* the coordinator's for this write (NULL: */
    size_t ticket_len;      /* none, for a store that requires none) */
};

/* Connect to the store at 'addr' as peer 'name' and open the epoch 'w'
 * names. NULL with 'err' (the store's refusal text when it refused). */
struct stream_out *stream_out_open(const char *addr, const struct auth_key *key,
                                   const char *name,
                                   const struct stream_what *w,
                                   struct vmckpt_error *err);
/* A precopy sink writing to 'so': lane i on connection i. */
void stream_out_sink(struct stream_out *so, struct precopy_sink *sink);
/* Send one chunk of a disk layer (on stream 0, after the state). */
int stream_out_disk(struct stream_out *so, const Vmckpt__DiskChunk *c,
                    struct vmckpt_error *err);
/* Tell the store the epoch is abandoned (best effort) and close. */
void stream_out_abort(struct stream_out *so, const char *reason);
/* Close after a successful end. NULL is fine. */
void stream_out_close(struct stream_out *so);

/* Where a fetch's disk layers go (agent/disk): each chunk as it comes,
 * then what the disks are made of, from the stream's end. */
struct stream_disks {
    image_disk_chunk_fn *chunk;
    int (*end)(void *arg, const struct image_disk_sizes *sz,
               struct vmckpt_error *err);
    void *arg;
};

/* Where a fetch reads from: the store at 'addr' on host 'host' (its
 * credential's name; NULL: any agent's), with the coordinator's ticket
 * (NULL: none, for a store that requires none). */
struct stream_source {
    const char *addr, *host;
    const uint8_t *ticket;
    size_t ticket_len;
};

/* Fetch epoch 'epoch' of JOB/VM from the store 'src' into 'ram_fd' (a
 * file of the guest's RAM size, zero-filled) and 'state_fd', verifying
 * every batch and the state checksum; its disks' layers into 'disks'
 * (NULL: the guest has none; an epoch with disks is then refused). Sealed
 * batches are opened with 'data_key' (NULL: refused); a sealed device
 * state stays sealed in 'state_fd' (seal_state_open_fd()). */
int stream_fetch(const struct stream_source *src, const struct auth_key *key,
                 const char *name, const char *job, const char *vm,
                 uint64_t epoch, const struct seal_key *data_key, int ram_fd,
                 int state_fd, const struct stream_disks *disks,
                 struct vmckpt_error *err);

#endif
