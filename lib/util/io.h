/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Writing all of a gather list to a file, whatever short writes the
 * kernel makes. */
#ifndef VMCKPT_IO_H
#define VMCKPT_IO_H

#include <stdint.h>
#include <sys/uio.h>

/* Write the 'n' buffers of 'iov' to 'fd' at offset 'off' (pwritev), or
 * at its position when 'off' is negative (writev), going on after a short
 * write; 'iov' is used up. 0, or -1 with errno (EIO for a write of 0). */
int io_writev_all(int fd, struct iovec *iov, int n, int64_t off);

/* fsync the directory 'dir' (a name made or removed in it is durable).
 * 0, or -1 with errno. */
int fsync_dir(const char *dir);

#endif
