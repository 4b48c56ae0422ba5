/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The data keys of sealed images (docs/security.md, 'Images at rest'):
 * one secret of the coordinator, STATE_DIR/data.key, from which each job's
 * key is derived (HMAC-SHA256 over the job's name). Agents get a job's key
 * only in the requests that need it (a checkpoint's BEGIN, a RESTORE);
 * stores never do. */
#ifndef VMCKPT_COORD_DATAKEY_H
#define VMCKPT_COORD_DATAKEY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"

#define DATAKEY_BYTES 32

struct coord;

/* Read STATE_DIR/data.key, or make it (32 random bytes, mode 0600) when
 * 'seal' is set and there is none. With 'seal' off an existing file is
 * still read, so epochs sealed before stay readable. Checked against the
 * catalog (co->cat, open): its meta 'data_key_check' records the key's
 * check value; while committed epochs are sealed, another key is refused,
 * and so is a missing file with 'seal' set (not made anew). 0, or -1
 * with 'err'. */
int datakey_open(struct coord *co, const char *state_dir, int seal,
                 struct vmckpt_error *err);
/* Forget the secret (wiped). */
void datakey_close(struct coord *co);
/* Job 'job''s key into 'out' (wipe it after use): 1 when there is one,
 * 0 when new epochs are not sealed, -1 when it cannot be derived (then
 * nothing may be stored: the caller refuses). */
int datakey_for(const struct coord *co, const char *job,
                uint8_t out[DATAKEY_BYTES]);
/* The same for restoring an epoch stored sealed (1), or -1 when the
 * secret is not there (the epoch cannot be opened). */
int datakey_open_for(const struct coord *co, const char *job,
                     uint8_t out[DATAKEY_BYTES]);

#endif
