/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest disks' part of a checkpoint thread (agent/disk does the
 * chain's work): before the pause, committed layers merged and the next
 * overlays made; inside it, the disks' snapshot; after the resume, the
 * layers the epoch carries sent as disk chunks before the stream's end. */
#ifndef VMCKPT_CKPT_DISK_H
#define VMCKPT_CKPT_DISK_H

#include <stdint.h>

#include "agent/vmm/vmm.h"
#include "lib/util/error.h"
#include "lib/wire/wire.h"

struct sealer;

struct ckpt_disks;

/* Set up epoch 'epoch' of guest 'vm' (its checkpoint thread owns it):
 * merge the layers of epochs up to 'committed', prepare the cut. 0 with
 * *out NULL for a guest without disks; -1 with 'err' if its disks cannot
 * be checkpointed (the guest runs on untouched). */
int ckpt_disks_begin(struct vmm_vm *vm, uint64_t epoch, uint64_t committed,
                     struct ckpt_disks **out, struct vmckpt_error *err);
/* How many disks (StreamOpen.disks). */
unsigned ckpt_disks_count(const struct ckpt_disks *d);
/* The engine's on_paused hook (and save_full's at_pause): the disks'
 * snapshot, with the guest paused. */
int ckpt_disks_cut(struct ckpt_disks *d, struct vmckpt_error *err);
/* One disk chunk for the peer's store and the local copy. */
typedef int ckpt_disk_chunk_fn(void *arg, const Vmckpt__DiskChunk *c,
                               struct vmckpt_error *err);
/* After the resume: send the layers the epoch carries (a delta of
 * 'parent': the layers frozen since; a full epoch, 0: every layer under
 * the active one) through 'chunk'; then 'end' (the stream's end, its
 * disks filled in, valid until ckpt_disks_end) says their sizes. Also
 * counts the bytes sent. With a sealer (a sealed epoch), every chunk is
 * sealed with it (DiskChunk.seal). */
int ckpt_disks_send(struct ckpt_disks *d, uint64_t parent, struct sealer *s,
                    ckpt_disk_chunk_fn *chunk, void *arg,
                    Vmckpt__StreamEnd *end, struct vmckpt_error *err);
/* The disk bytes sent and how long the snapshot took, for the log. */
uint64_t ckpt_disks_bytes(const struct ckpt_disks *d);
uint64_t ckpt_disks_cut_us(const struct ckpt_disks *d);
/* The checkpoint is over: a cut never taken is undone; freed. NULL is
 * fine. */
void ckpt_disks_end(struct ckpt_disks *d);

#endif
