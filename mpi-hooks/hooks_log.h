/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Messages of the MPI hooks and the wrapper, on stderr with a prefix
 * ("vmckpt-mpi[rank 3]: ..."); debug ones only with VMCKPT_MPI_DEBUG=1. */
#ifndef VMCKPT_HOOKS_LOG_H
#define VMCKPT_HOOKS_LOG_H

void hooks_log_prefix(const char *prefix);
void hooks_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hooks_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
