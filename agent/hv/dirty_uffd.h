/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Dirty-page tracking of another process's memory (QEMU's guest RAM) with
 * userfaultfd write-protection in asynchronous mode, harvested with one
 * PAGEMAP_SCAN ioctl per round on /proc/PID/pagemap (Linux >= 6.7).
 * Writes to a protected page are resolved by the kernel without any
 * message; the scan reports the written pages and protects them again in
 * the same pass, so nothing written after the scan is lost. */
#ifndef VMCKPT_DIRTY_UFFD_H
#define VMCKPT_DIRTY_UFFD_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/util/error.h"

struct dirty_uffd;

/* Take the userfaultfd at descriptor 'remote_fd' of process 'pid' (made by
 * libvmckpt-uffd.so), enable asynchronous write-protection, register
 * [start, start+len) of that process. With 'reset', protect the whole
 * range: tracking starts now. Without, pages written since an earlier
 * tracker's last harvest stay reported (a restarted agent continues an
 * incremental chain). NULL with 'err' saying what this kernel or process
 * lacks. */
struct dirty_uffd *dirty_uffd_open(pid_t pid, int remote_fd, uint64_t start,
                                   uint64_t len, int reset,
                                   struct vmckpt_error *err);
void dirty_uffd_close(struct dirty_uffd *d);

/* Set bit i of 'bitmap' (len/4096 bits, caller-zeroed or not: bits are only
 * set) for every page written since the last harvest (or open), and
 * protect those pages again. Returns the number of pages reported, or -1. */
int64_t dirty_uffd_harvest(struct dirty_uffd *d, uint64_t *bitmap,
                           struct vmckpt_error *err);

/* The mapping of 'pid' whose path (or memfd name) contains 'name':
 * 0 and its range, or -1 with 'err'. */
int dirty_find_mapping(pid_t pid, const char *name, uint64_t *start,
                       uint64_t *len, struct vmckpt_error *err);

#endif
