/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sealed images on the agent's side (docs/security.md, 'Images at rest'):
 * a checkpoint's sink that seals page batches and device state with the
 * job's key before they leave for a store (and the local copy), and the
 * device state of a restore opened again. The stores never see the key. */
#ifndef VMCKPT_SEALED_H
#define VMCKPT_SEALED_H

#include "agent/engine/precopy.h"
#include "lib/wire/seal.h"

struct seal_sink;

/* A sink for the engine (*out) that seals what it is given with 'key'
 * for JOB/VM and passes it to 'inner' (which must outlive it): a sealer
 * per lane (1 to PRECOPY_MAX_STREAMS), one for the device state. NULL
 * with 'err'. */
struct seal_sink *seal_sink_new(const struct seal_key *key, const char *job,
                                const char *vm, unsigned lanes,
                                const struct precopy_sink *inner,
                                struct precopy_sink *out,
                                struct vmckpt_error *err);
void seal_sink_free(struct seal_sink *s);

/* The device state a restore wrote to 'fd' (from offset 0, 'len' bytes):
 * when it is sealed, opened with 'key' in place (the file then holds the
 * clear state, *clear bytes). A sealed state without a key, or a clear
 * one with a key (the epoch was stored sealed), is refused. 0, or -1
 * with 'err'. */
int seal_state_open_fd(int fd, uint64_t len, const struct seal_key *key,
                       const char *job, const char *vm, uint64_t *clear,
                       struct vmckpt_error *err);

/* A restore's disk chunk (DiskChunk.seal, or a store's .seal: 'seal' NULL
 * if it is clear): with a sealer every chunk must be sealed and is opened
 * (*data then points to the clear bytes, in the sealer's buffer); without
 * one every chunk must be clear. 0, or -1 with errno EBADMSG and 'err'. */
int seal_disk_chunk_open(struct sealer *s, unsigned disk, uint64_t off,
                         const uint8_t **data, size_t len, const uint8_t *seal,
                         struct vmckpt_error *err);

#endif
