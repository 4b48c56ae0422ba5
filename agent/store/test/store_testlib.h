/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the image store's unit tests share: a scratch store directory,
 * page contents, and epochs of a model RAM written (one stream, as an
 * agent sends them) and restored. The VM is always j/v. */
#ifndef VMCKPT_STORE_TESTLIB_H
#define VMCKPT_STORE_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "agent/store/image.h"

/* A page's worth of bytes from 'seed'. */
void st_fill(uint8_t *p, unsigned seed);
/* A new empty store under /tmp, its path in 'store' ('len' >= 32). */
void st_store_make(char *store, size_t len);
void st_store_remove(const char *store);
/* Write epoch 'epoch' of j/v (a delta of 'parent'; 0: full) holding the
 * pages 'pages' of 'ram' ('ram_bytes'), in batches of at most
 * BATCH_MAX_PAGES, and device state 'state'; sealed with 'key' as an
 * agent does (NULL: clear). A refused batch fails the test; the commit's
 * result is returned (-1 with 'err' also when the epoch cannot open). */
int st_put_epoch(const char *store, uint64_t epoch, uint64_t parent,
                 const uint8_t *ram, uint64_t ram_bytes, const uint64_t *pages,
                 size_t n, const char *state, const struct seal_key *key,
                 uint64_t *bytes, struct vmckpt_error *err);
/* Restore epoch 'epoch' of j/v ('ram_bytes' of RAM): 0 with 'out' and
 * 'state' (64 bytes, a string) filled, or -1 with 'err'. */
int st_restore(const char *store, uint64_t epoch, uint64_t ram_bytes,
               uint8_t *out, char *state, struct vmckpt_error *err);

#endif
