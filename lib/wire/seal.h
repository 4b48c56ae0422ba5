/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sealing of stored images (docs/security.md, 'Images at rest'): page
 * batch data and device state under AES-256-GCM, bound to their job, VM,
 * batch header or state offset. The only direct user of EVP ciphers. */
#ifndef VMCKPT_SEAL_H
#define VMCKPT_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "lib/util/error.h"

#define SEAL_KEY_BYTES 32
/* A sealed state record: "SST1" | u32 LE length L | 12-byte nonce |
 * L bytes of ciphertext | 16-byte tag */
#define SEAL_STATE_MAGIC  "SST1"
#define SEAL_STATE_HEADER 20u
#define SEAL_STATE_MAX    (64u << 20) /* L at most */

struct seal_key {
    uint8_t k[SEAL_KEY_BYTES];
};

/* A key from 'len' bytes at 'p' (exactly SEAL_KEY_BYTES). 0, or -1 with
 * errno EINVAL and 'err'. */
int seal_key_from_bytes(const void *p, size_t len, struct seal_key *k,
                        struct vmckpt_error *err);
/* A new random key. 0, or -1 with 'err'. */
int seal_key_random(struct seal_key *k, struct vmckpt_error *err);

/* One per thread (no locking inside): the cipher contexts with the key,
 * buffers, the job and VM every sealed thing is bound to. */
struct sealer;

/* A sealer for the images of JOB/VM under key 'k' (copied into the
 * cipher contexts; the caller may wipe its own). NULL with 'err'. */
struct sealer *sealer_new(const struct seal_key *k, const char *job,
                          const char *vm, struct vmckpt_error *err);
/* NULL ok; wipes the key schedule. Keeps errno. */
void sealer_free(struct sealer *s);

/* Seal a clear batch made by batch_finish(): msg->data then points into
 * the sealer's buffer (ciphertext | tag), msg->nonce to 12 random bytes,
 * both valid until the next call on 's'; msg->xxh64 is over the sealed
 * data. The other fields stay and are authenticated. 0, or -1 with
 * 'err'. */
int sealer_batch(struct sealer *s, Vmckpt__PageBatch *msg,
                 struct vmckpt_error *err);

/* Open a sealed batch that batch_open() accepted (v->sealed): check the
 * tag, decrypt, decompress into 'scratch' (BATCH_MAX_PAGES * BATCH_PAGE
 * bytes) when LZ4, fill 'v' as batch_open() does for a clear batch
 * (v->data in 'scratch' or the sealer's buffer, valid until the next call
 * on 's'). A wrong key, another VM's batch, altered header fields or data:
 * -1 with errno EBADMSG and 'err'. msg->xxh64 is not checked again. */
int sealer_open_batch(struct sealer *s, const Vmckpt__PageBatch *msg,
                      uint8_t *scratch, struct batch_view *v,
                      struct vmckpt_error *err);

/* Device state, sender side: seal the 'len' bytes at 'data' (at most
 * SEAL_STATE_MAX) into one record; *rec, *rec_len point into the sealer's
 * buffer until the next call on 's'. 'off' is the plaintext offset: 0
 * starts a new state, any other must equal the bytes sealed since.
 * The stored state is the concatenation of the records. 0, or -1 with
 * 'err'. */
int sealer_state(struct sealer *s, uint64_t off, const void *data, size_t len,
                 const uint8_t **rec, size_t *rec_len,
                 struct vmckpt_error *err);

/* Device state, reader side: feed the stored bytes in order, in pieces of
 * any size; each whole record is checked, decrypted and handed to
 * out(arg, plaintext offset, data, len), which returns 0 or -1 with errno.
 * A record longer than SEAL_STATE_MAX, a bad magic, a record that does not
 * open (wrong key, altered, moved), out() failing: -1 with 'err', and so
 * every later call until sealer_state_end(). */
int sealer_state_feed(struct sealer *s, const void *data, size_t len,
                      int (*out)(void *arg, uint64_t off, const void *data,
                                 size_t len),
                      void *arg, struct vmckpt_error *err);
/* After the last feed: -1 with 'err' if a record is left unfinished or a
 * feed failed. Either way the reader starts again at offset 0. A state
 * cut after a whole record is not seen here: compare the plaintext bytes
 * handed out with the expected size. */
int sealer_state_end(struct sealer *s, struct vmckpt_error *err);

/* Disk chunks (DiskChunk.seal): the ciphertext is as long as the clear
 * chunk, so the layer files keep their layout; the nonce and tag go
 * beside it. */
#define SEAL_DISK_BYTES (BATCH_NONCE_BYTES + BATCH_TAG_BYTES)
#define SEAL_DISK_MAX   (1u << 20) /* a chunk's length at most */

/* Seal the 'len' bytes at 'data' (1 to SEAL_DISK_MAX) in place as disk
 * 'disk''s chunk at byte 'off' of its layer; its nonce and tag into
 * 'seal' (SEAL_DISK_BYTES). 0, or -1 with 'err'. */
int sealer_disk_chunk(struct sealer *s, unsigned disk, uint64_t off,
                      uint8_t *data, size_t len, uint8_t *seal,
                      struct vmckpt_error *err);
/* Open a chunk sealed so: the clear bytes, in the sealer's buffer until the
 * next call on 's'. Another key, VM, disk or offset, altered bytes: NULL
 * with errno EBADMSG and 'err'. */
const uint8_t *sealer_open_disk_chunk(struct sealer *s, unsigned disk,
                                      uint64_t off, const uint8_t *data,
                                      size_t len, const uint8_t *seal,
                                      struct vmckpt_error *err);

/* 1 if the stored state bytes at 'p' begin a sealed state record. */
int seal_state_is_sealed(const void *p, size_t len);

#endif
