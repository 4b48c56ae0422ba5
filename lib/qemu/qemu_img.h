/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The qemu-img program, run synchronously for a guest's disk layers: read
 * an image's header, create a copy-on-write overlay, change or fold its
 * backing file, check it. */
#ifndef VMCKPT_QEMU_IMG_H
#define VMCKPT_QEMU_IMG_H

#include <stdint.h>

#include "lib/util/error.h"

/* Every call below runs 'prog' (a name looked up in PATH, or a path; the
 * agent passes [agent] qemu_img, "qemu-img" by default) with stdin from
 * /dev/null, waits for it and returns 0, or -1 with errno and 'err' (may
 * be NULL) saying what failed in words for an administrator, e.g.
 * "qemu-img info /x: Could not open '/x': No such file or directory"
 * (what the program wrote on stderr, up to 1 KiB of it) or
 * "qemu-img not found (install qemu-utils)" (errno ENOENT).
 *
 * The calls keep no state: they may run in several threads at once and
 * leak no descriptor into other threads' children. They wait for the one
 * child they started (never waitpid(-1)), so a SIGCHLD handler that reaps
 * every child, or SIGCHLD ignored, makes them fail with ECHILD. There is no
 * time limit: a call lasts as long as qemu-img does (a safe rebase copies
 * data).
 *
 * Image and backing names are passed to qemu-img as they are; a name with
 * ':' may be read by QEMU as a protocol ("nbd:...", "json:..."). */

struct qemu_img_info {
    char format[16];       /* "qcow2", "raw", ... */
    uint64_t virtual_size; /* bytes the guest sees */
    char backing[4096];    /* backing file as written in the header
                              (possibly relative to the image's
                              directory); "" none */
    uint64_t cluster_size; /* 0 when the format has none (raw) */
};

/* Read 'img''s header with "qemu-img info -U --output=json": -U
 * (force-share) so that an image a running QEMU holds can be read. 'fmt'
 * NULL lets qemu-img probe the format; a raw image that a guest wrote can
 * then pass for any format, so callers name it when they know it. -1 with
 * errno EPROTO when the output is not what qemu-img 7 prints or does not
 * fit 'out'. */
int qemu_img_info(const char *prog, const char *img, const char *fmt,
                  struct qemu_img_info *out, struct vmckpt_error *err);

/* Create the qcow2 overlay 'path' over 'backing' (of format
 * 'backing_fmt'), 'vsize' bytes (> 0): "qemu-img create -q -f qcow2 -u
 * -b BACKING -F FMT -o cluster_size=65536,extended_l2=on PATH VSIZE".
 * -u: the backing is not opened (a running QEMU may hold its lock), so
 * neither its existence nor its size is checked here. extended_l2 splits
 * each 64 KiB cluster into 32 subclusters of 2 KiB, which cuts the
 * copy-on-write amplification of a guest's small writes. An existing
 * 'path' is overwritten. */
int qemu_img_create_overlay(const char *prog, const char *path,
                            const char *backing, const char *backing_fmt,
                            uint64_t vsize, struct vmckpt_error *err);

/* Rewrite the backing file name and format in qcow2 'img''s header only
 * ("rebase -u"): the caller guarantees that the new backing holds the
 * same data as the old one. */
int qemu_img_rebase_unsafe(const char *prog, const char *img,
                           const char *backing, const char *backing_fmt,
                           struct vmckpt_error *err);

/* Make qcow2 'img' an overlay of 'backing' keeping the guest's view:
 * every cluster where the old and the new backing differ is copied into
 * 'img' first ("rebase" without -u). Needs 'img' writable and both
 * backing chains readable; the time it takes grows with the data. */
int qemu_img_rebase_safe(const char *prog, const char *img, const char *backing,
                         const char *backing_fmt, struct vmckpt_error *err);

/* Write qcow2 'img''s data into its backing file ("qemu-img commit -d":
 * 'img' itself is left as it was; the caller drops it). Needs the backing
 * file writable. */
int qemu_img_commit(const char *prog, const char *img,
                    struct vmckpt_error *err);

/* "qemu-img check -q" of 'img' ('fmt' NULL: probed). Any finding fails,
 * leaked clusters included; so does a format without checks (raw). */
int qemu_img_check(const char *prog, const char *img, const char *fmt,
                   struct vmckpt_error *err);

#endif
