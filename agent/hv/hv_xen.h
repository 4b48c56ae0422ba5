/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the Xen back end offers beyond the ops table, for vmckpt-vmtool. */
#ifndef VMCKPT_HV_XEN_H
#define VMCKPT_HV_XEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/util/error.h"

struct hv_vm;

/* One line about the adopted domain and one per memory range it covers. */
int hv_xen_describe(struct hv_vm *vm, FILE *out);

/* Restore an epoch into domain 'name', built paused (xl create -p) from
 * the checkpointed guest's configuration: 'ram_fd' holds the epoch's
 * pages (the engine's pages, end to end), 'state' its state record. The
 * domain stays paused; unpaused, the guest resumes from its suspend. */
int hv_xen_restore(const char *name, int ram_fd, const uint8_t *state,
                   size_t state_len, struct vmckpt_error *err);

/* libxenguest's own live save of domain 'name' into 'fd' (its pre-copy,
 * its policy, the same cooperative suspend as ours), for comparison: the
 * pause from the suspend request to the resume, and the whole time. */
int hv_xen_libxc_save(const char *name, int fd, uint64_t *pause_us,
                      uint64_t *total_ms, struct vmckpt_error *err);

#endif
