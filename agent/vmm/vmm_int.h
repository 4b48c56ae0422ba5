/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by vmm.c (guests in general, QEMU's) and vmm_xen.c (Xen
 * domains built with xl). */
#ifndef VMCKPT_VMM_INT_H
#define VMCKPT_VMM_INT_H

#include <string.h>

#include "vmm.h"

/* A spec for a Xen domain (hypervisor "xen"). */
static inline int vmm_spec_is_xen(const Vmckpt__VmSpec *spec)
{
    return spec != NULL && strcmp(spec->hypervisor, "xen") == 0;
}

/* Run a command, its output to 'out' (-1: discarded), and wait for it;
 * 0 if it exited 0. */
int vmm_run_to(char *const argv[], int out);
int vmm_run(char *const argv[]);
/* run_dir/JOB-VM.spec and .pid: what a restarted agent takes over. */
void vmm_save_record(const struct vmm *m, const struct vmm_vm *vm);
void vmm_drop_record(const struct vmm *m, const struct vmm_vm *vm);
/* A guest of an earlier agent, adopted: resumed if that agent's cut left
 * it paused, listed, logged ('what': "pid N", "domain D"). */
void vmm_taken_over(struct vmm *m, struct vmm_vm *vm, const char *what);
/* Take 'vm' out of the agent's list. */
void vmm_unlink(struct vmm *m, struct vmm_vm *vm);

/* vmm_xen.c. The name of the guest's domain: spec.domain, or JOB-VM. */
void vmm_xen_name(struct vmm_vm *vm, const Vmckpt__VmSpec *spec);
/* Build the domain of 'spec' with xl (paused on the RAM of
 * 'ram_image' for a restore) and adopt it; 'vm' has its names set. */
int vmm_xen_start(struct vmm *m, struct vmm_vm *vm, const Vmckpt__VmSpec *spec,
                  const char *ram_image, struct vmckpt_error *err);
/* Destroy the domain and forget the guest; 'vm' is freed. */
void vmm_xen_stop(struct vmm *m, struct vmm_vm *vm);
/* Take over a domain of an earlier agent ('vm' from its record): 1 if it
 * runs (listed), 0 if it is gone (cleaned up, 'vm' freed). */
int vmm_xen_adopt(struct vmm *m, struct vmm_vm *vm, struct vmckpt_error *err);
/* 1 if the guest's domain is gone or shut down: then it is destroyed,
 * unlisted and freed. */
int vmm_xen_check(struct vmm *m, struct vmm_vm *vm);

#endif
