/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A site's command run for one argument from a daemon's event loop,
 * without blocking it: /bin/sh -c 'COMMAND "$1"' with ARG as $1, stdin
 * from /dev/null, stdout and stderr collected (the first RUNCMD_OUT_MAX
 * bytes), the whole process group killed when it runs past its time. */
#ifndef VMCKPT_RUNCMD_H
#define VMCKPT_RUNCMD_H

#include <stdint.h>

#include "error.h"
#include "evloop.h"

#define RUNCMD_OUT_MAX 1024

struct runcmd;

/* How it ended, called once on the loop: 'status' the wait status (see
 * waitpid; meaningful when !timed_out), 'output' what it printed (NUL
 * terminated, trailing newlines removed), 'ms' how long it ran. The
 * runcmd is freed after the call returns. */
typedef void runcmd_done_fn(void *arg, int status, int timed_out,
                            const char *output, uint64_t ms);

/* Start 'command' for 'arg'; NULL with 'err' when it could not be
 * started (no callback then). */
struct runcmd *runcmd_start(struct evloop *loop, const char *command,
                            const char *arg, unsigned timeout_ms,
                            runcmd_done_fn *done, void *cbarg,
                            struct vmckpt_error *err);
/* Kill it (its process group) and free it without calling back; NULL is
 * fine. */
void runcmd_cancel(struct runcmd *r);
/* "exit 0", "exit 3", "killed by signal 9", "timed out after N ms". */
const char *runcmd_describe(int status, int timed_out, unsigned timeout_ms,
                            char *buf, size_t len);

#endif
