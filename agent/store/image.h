/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The on-disk image store of VM checkpoints (docs/store.md): per VM a
 * directory STORE/JOB/VM with one page file and one state file per epoch
 * and a manifest listing the durable epochs, replaced atomically. A new
 * epoch is written beside the others and never touches their files. */
#ifndef VMCKPT_IMAGE_H
#define VMCKPT_IMAGE_H

#include <stdint.h>

#include "lib/util/error.h"
#include "lib/wire/batch.h"
#include "lib/wire/seal.h"
#include "lib/wire/wire.h"

#define IMAGE_MAX_EPOCHS  64
#define IMAGE_MAX_DISKS   8  /* a guest's disks */
#define IMAGE_MAX_LAYERS  32 /* layer files one epoch carries per disk */
#define IMAGE_MAX_INHERIT 24 /* epochs whose layers a folded epoch names */

/* 1 if 's' may name a job or VM on disk: 1-64 of [A-Za-z0-9._-], not
 * starting with '.', so never "..", never a '/'. */
int image_valid_name(const char *s);

struct image_epoch {
    uint64_t epoch;
    uint64_t parent;    /* 0: a full image */
    int sealed;         /* its batches and state are sealed (never folded) */
    int base;           /* its pages are a raw base image at fixed offsets
                         * (e<N>.base, checksums in e<N>.base.sum), from a
                         * fold; else page records (e<N>.pages) */
    uint64_t fold_from; /* a base still being made in place from epoch
                         * fold_from's (docs/store.md, 'Folding in
                         * place'); 0 otherwise */
    uint64_t pages_bytes;
    uint64_t state_bytes;
    uint64_t state_xxh64;
    /* the guest's disks (docs/store.md, 'Disks'): how many, the layer
     * files e<N>.d<K>.l<I> this epoch carried per disk, and for a folded
     * epoch the epochs before it whose layer files its disks are made of
     * (kept for it), oldest first, with their counts */
    uint8_t ndisks;
    uint8_t disk_layers[IMAGE_MAX_DISKS];
    uint64_t disk_base[IMAGE_MAX_DISKS]; /* its base images' digests */
    uint8_t ninherit;
    uint64_t inherit[IMAGE_MAX_INHERIT];
    /* per lent epoch and disk: its layer count; with the bit
     * IMAGE_INHERIT_MERGED (image_int.h) the entry names that epoch's
     * merged files e<X>.d<K>.m instead (count 0 or 1) */
    uint8_t inherit_layers[IMAGE_MAX_INHERIT][IMAGE_MAX_DISKS];
};

struct image_manifest {
    uint64_t ram_bytes;
    size_t n;
    struct image_epoch e[IMAGE_MAX_EPOCHS];
};

/* A writer of JOB/VM of job incarnation 'inc' opens an epoch: refused (-1,
 * errno ESTALE, 'err' saying why) when STORE/JOB/VM/incarnation records a
 * newer incarnation (a stale copy of the guest writing); otherwise 0,
 * recording 'inc' when it is newer. 'inc' 0 (a writer outside any job
 * incarnation) is neither checked nor recorded. */
int image_incarnation_admit(const char *store, const char *job, const char *vm,
                            uint64_t inc, struct vmckpt_error *err);

/* Load STORE/JOB/VM/manifest; an absent manifest is an empty one (0).
 * -1 with 'err' on a malformed one. */
int image_manifest_load(const char *store, const char *job, const char *vm,
                        struct image_manifest *m, struct vmckpt_error *err);
const struct image_epoch *image_manifest_find(const struct image_manifest *m,
                                              uint64_t epoch);

struct image_writer;

/* Begin writing 'epoch' of JOB/VM: a delta of durable epoch 'parent' (0 for
 * a full image), arriving in 'parts' parallel streams (1 to
 * WIRE_MAX_STREAMS). Refused: bad names, an epoch already durable, a
 * parent that is not durable, a RAM size other than the parent's. */
struct image_writer *image_writer_open(const char *store, const char *job,
                                       const char *vm, uint64_t epoch,
                                       uint64_t parent, uint64_t ram_bytes,
                                       unsigned parts,
                                       struct vmckpt_error *err);
/* Verify one batch of stream 'part' and append it. Parts may call this
 * at once from their own threads (one thread per part); a page's copies
 * must come in one part, in order, as the pre-copy engine sends them. */
int image_writer_batch(struct image_writer *w, unsigned part,
                       const Vmckpt__PageBatch *msg, struct vmckpt_error *err);
/* The same for a batch received packed: 'msg' is its decoding (e.g.
 * batch_decode() of 'raw'), and once verified the 'raw_len' bytes at
 * 'raw' are the record, as they came (no second encoding). */
int image_writer_batch_raw(struct image_writer *w, unsigned part,
                           const Vmckpt__PageBatch *msg, const uint8_t *raw,
                           size_t raw_len, struct vmckpt_error *err);
/* Append device state; 'offset' must be where the state ends now. */
int image_writer_state(struct image_writer *w, uint64_t offset,
                       const void *data, size_t len, struct vmckpt_error *err);
/* The epoch carries the layers of 'ndisks' guest disks (part 0's
 * StreamOpen.disks), which come as DiskChunks before its end. */
int image_writer_disks(struct image_writer *w, unsigned ndisks,
                       struct vmckpt_error *err);
/* Verify one disk chunk and write it into its layer file. */
int image_writer_disk_chunk(struct image_writer *w, const Vmckpt__DiskChunk *c,
                            struct vmckpt_error *err);
/* Check the totals against 'end', make everything durable (fsync, rename,
 * fsync the directory), then list the epoch in the manifest. On success
 * *bytes is the epoch's size on disk and the writer is freed. */
int image_writer_commit(struct image_writer *w, const Vmckpt__StreamEnd *end,
                        uint64_t *bytes, struct vmckpt_error *err);
/* Drop an unfinished epoch and free the writer. NULL is fine. */
void image_writer_abort(struct image_writer *w);

/* Read epoch 'epoch' of JOB/VM and the epochs it builds on, oldest first:
 * every batch is verified and handed to 'batch_cb' with its verified view
 * (valid during the call), then the epoch's device
 * state to 'state_cb' in chunks. A damaged record stops the read with an
 * error naming the VM, the epoch, the file and the offset. */
int image_read(const char *store, const char *job, const char *vm,
               uint64_t epoch,
               int (*batch_cb)(const Vmckpt__PageBatch *msg,
                               const struct batch_view *v, void *arg),
               int (*state_cb)(uint64_t offset, const void *data, size_t len,
                               void *arg),
               void *arg, struct vmckpt_error *err);

/* Rebuild guest RAM of 'epoch' into 'ram_fd' (a file of ram_bytes) and its
 * device state into 'state_fd'; sealed batches opened with 'key' (NULL:
 * none, then a sealed epoch is refused; its device state stays sealed in
 * 'state_fd' for seal_state_open_fd()). The bytes of page data and state read
 * from the image files go to *bytes_read (may be NULL), also on failure. */
int image_restore(const char *store, const char *job, const char *vm,
                  uint64_t epoch, const struct seal_key *key, int ram_fd,
                  int state_fd, uint64_t *bytes_read, struct vmckpt_error *err);

/* The guest disks of epoch 'epoch' (docs/store.md, 'Disks'): per disk
 * the layer files its disk is made of, oldest first (its chain's and, for
 * a folded epoch, those it keeps). */
#define IMAGE_MAX_VIEW 64 /* layers of one disk at one epoch */
struct image_disk_sizes {
    unsigned ndisks;
    unsigned nlayers[IMAGE_MAX_DISKS];
    uint64_t bytes[IMAGE_MAX_DISKS][IMAGE_MAX_VIEW];
    uint64_t chunks[IMAGE_MAX_DISKS]; /* handed to the callback */
    uint64_t base[IMAGE_MAX_DISKS];   /* the bases' digests (0: unknown) */
};
/* A chunk of layer 'layer' (its place in the disk's list) of disk 'disk':
 * 'len' bytes at 'off' (a multiple of 1 MiB), 'xxh64' their checksum;
 * 'seal' its SEAL_DISK_BYTES of nonce and tag when the chunk is sealed
 * (then 'data' is the ciphertext), else NULL. 0, or -1 with 'err' to
 * stop. */
typedef int image_disk_chunk_fn(void *arg, unsigned disk, unsigned layer,
                                uint64_t off, const void *data, size_t len,
                                uint64_t xxh64, const uint8_t *seal,
                                struct vmckpt_error *err);
/* Read them: every 1 MiB verified against its checksum (a damaged one
 * stops the read, naming the file and offset), ranges of zeroes skipped,
 * the rest handed to 'chunk'; '*sz' says what the disks are made of
 * (ndisks 0: the guest has none). */
int image_disk_read(const char *store, const char *job, const char *vm,
                    uint64_t epoch, image_disk_chunk_fn *chunk, void *arg,
                    struct image_disk_sizes *sz, struct vmckpt_error *err);

/* Rewrite durable epoch 'epoch' as a base image with pages at fixed
 * offsets (parent 0), atomically, so the epochs it builds on are no longer
 * needed. */
int image_fold(const char *store, const char *job, const char *vm,
               uint64_t epoch, struct vmckpt_error *err);

/* Keep the epochs from 'keep_from' on: fold each kept epoch whose parent
 * is older, then remove the older epochs. Returns how many were removed,
 * or -1 (then nothing durable was lost: folding happens first, and an
 * epoch is removed only when nothing kept builds on it). */
int image_retain(const char *store, const char *job, const char *vm,
                 uint64_t keep_from, struct vmckpt_error *err);

/* Remove a durable epoch that no other durable epoch builds on. */
int image_drop(const char *store, const char *job, const char *vm,
               uint64_t epoch, struct vmckpt_error *err);

#endif
