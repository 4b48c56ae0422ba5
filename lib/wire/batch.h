/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Page batches of the image stream (proto PageBatch): zero pages as a bit,
 * the other pages' contents optionally LZ4-compressed, an XXH64 over the
 * whole; their data possibly sealed (seal.h). The only user of xxHash and
 * LZ4. */
#ifndef VMCKPT_BATCH_H
#define VMCKPT_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "wire.h"

#define BATCH_PAGE      4096u
#define BATCH_MAX_PAGES 256u
/* A sealed batch: 'nonce' of this size, 'data' ends with the GCM tag */
#define BATCH_NONCE_BYTES 12u
#define BATCH_TAG_BYTES   16u

/* Sender side: collect pages, then finish into a PageBatch message. */
struct batch_builder {
    uint32_t round;
    int lz4;
    size_t n;  /* pages collected */
    size_t nz; /* of which non-zero */
    uint64_t pages[BATCH_MAX_PAGES];
    uint8_t zero[BATCH_MAX_PAGES / 8];
    uint8_t *data;   /* nz pages */
    uint8_t *packed; /* LZ4 output */
    size_t packed_cap;
};

int batch_builder_init(struct batch_builder *b, int lz4);
void batch_builder_dispose(struct batch_builder *b);
/* Start a new batch for 'round'. */
void batch_reset(struct batch_builder *b, uint32_t round);
/* Add page number 'page' with the 4096 bytes at 'content'. Returns 1 if
 * the batch is now full (finish it before adding more), else 0. */
int batch_add(struct batch_builder *b, uint64_t page, const void *content);
/* Fill 'msg' (initialised by the caller) with pointers into 'b'; valid
 * until the next batch_reset(). Returns the payload size in bytes. */
size_t batch_finish(struct batch_builder *b, Vmckpt__PageBatch *msg);

/* 1 if the 4096 bytes at 'p' are all zero. */
int batch_page_is_zero(const void *p);
/* 1 if the 'len' bytes at 'p' are all zero (any length: a disk chunk). */
int batch_bytes_are_zero(const void *p, size_t len);

/* Receiver side: a verified view of a received batch. */
struct batch_view {
    size_t n;
    const uint64_t *pages;
    const uint8_t *zero;
    const uint8_t *data;          /* uncompressed non-zero pages, in order */
    size_t offs[BATCH_MAX_PAGES]; /* data offset of entry i, or SIZE_MAX */
    /* 1: the batch is sealed and its contents unknown here: 'data' is
     * NULL and every 'offs' SIZE_MAX; only n, pages and zero tell */
    int sealed;
};

/* Decode a packed PageBatch without copying: 'msg' gets pointers into
 * 'buf' (which must outlive it) and its page numbers in 'pages'. Faster
 * than protobuf-c's unpack, which copies the data; the same checks of the
 * encoding (batch_open() checks the contents). 0, or -1 with 'err'. */
int batch_decode(const uint8_t *buf, size_t len, Vmckpt__PageBatch *msg,
                 uint64_t pages[BATCH_MAX_PAGES], struct vmckpt_error *err);

/* Check 'msg' (page count, bitmap size, lengths, every page number below
 * 'npages', the checksum) and decompress into 'scratch' (BATCH_MAX_PAGES *
 * BATCH_PAGE bytes) when needed. -1 with 'err' saying what is wrong.
 * A sealed batch (msg->nonce set) gets the same checks, its checksum over
 * the sealed data, and a view with v->sealed = 1 and no contents
 * (sealer_open_batch() opens it with the key). */
int batch_open(const Vmckpt__PageBatch *msg, uint64_t npages, uint8_t *scratch,
               struct batch_view *v, struct vmckpt_error *err);

/* For seal.c: open 'msg' whose clear data (what msg->data holds unsealed:
 * LZ4 or raw as msg->lz4 says) is the 'len' bytes at 'data' (may be
 * 'scratch' when raw), authenticated already: the checks of batch_open()
 * but the page range and the checksum. 0, or -1 with 'err'. */
int batch_open_clear(const Vmckpt__PageBatch *msg, const uint8_t *data,
                     size_t len, uint8_t *scratch, struct batch_view *v,
                     struct vmckpt_error *err);

/* The checksum of a batch (PageBatch.xxh64): XXH64 of the page numbers
 * (u64 little endian), the zero bitmap and the data as carried (clear, or
 * sealed for a sealed batch). */
uint64_t batch_checksum(const uint64_t *pages, size_t n, const uint8_t *zero,
                        size_t zlen, const uint8_t *data, size_t dlen);

/* The view of a batch this process built (uncompressed 'data'): no
 * checks, no checksum; batch_open() is for what was received or read. */
void batch_view_fill(const Vmckpt__PageBatch *msg, const uint8_t *data,
                     struct batch_view *v);

/* The contents of entry i of a view, or NULL for a zero page. */
static inline const uint8_t *batch_view_page(const struct batch_view *v,
                                             size_t i)
{
    return v->offs[i] == (size_t)-1 ? NULL : v->data + v->offs[i];
}

/* Write the pages of a view into the guest RAM file 'fd' (page P at P x
 * 4096; a zero page as the 4096 zero bytes at 'zero'), each run of
 * consecutive page numbers in one pwritev. 0, or -1 with errno (EINVAL
 * for a sealed view). */
int batch_view_write(const struct batch_view *v, int fd, const uint8_t *zero);

/* XXH64 of a buffer, for device state and files. */
uint64_t batch_xxh64(const void *buf, size_t len);

/* The same over data that arrives in pieces (a stream). */
struct batch_hash;
struct batch_hash *batch_hash_new(void);
void batch_hash_update(struct batch_hash *h, const void *buf, size_t len);
/* The digest; frees 'h'. */
uint64_t batch_hash_done(struct batch_hash *h);

#endif
