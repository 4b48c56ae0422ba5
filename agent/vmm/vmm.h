/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guests an agent owns: launched from a VM spec through the QEMU back
 * end (one tap on the host's bridge, guest RAM in a shared file, QMP,
 * dirty tracking preloaded) or, for spec.hypervisor "xen", as a Xen PVH
 * domain built by 'xl create'; stopped, listed, restored from an image. */
#ifndef VMCKPT_VMM_H
#define VMCKPT_VMM_H

#include <stdint.h>
#include <sys/types.h>

#include "agent/hv/hv.h"
#include "lib/util/conf.h"
#include "lib/wire/wire.h"

struct vmm_vm {
    char job[65], name[65];
    pid_t pid;
    char qmp[4200], ram[4200], log[4200], tap[16];
    const struct hv_ops *ops; /* its back end */
    char domain[80];          /* xen: spec.domain, or JOB-VM */
    struct hv_vm *hv;         /* adopted, dirty tracking on */
    uint64_t last_epoch;    /* last epoch written from this QEMU (delta base) */
    uint64_t pending_epoch; /* durable job epoch, a base once committed */
    uint64_t restored_epoch; /* the epoch it was restored from */
    int held;                /* restored paused: waits for the job's RESUME */
    int busy;                /* a checkpoint or restore thread owns it */
    int stopping;            /* SIGTERM sent; cleaned up when reaped */
    int adopted;             /* found running at start: not our child */
    int qemu_stream;         /* no dirty tracking: QEMU's own stream */
    /* CPU QEMU used (ms per s) over the last heartbeat period; sampled by
     * the loop, read by checkpoint threads */
    uint64_t cpu_prev, cpu_at, cpu_rate;
    char no_track_why[256]; /* why not, for the log */
    Vmckpt__VmSpec *spec;   /* as received */
    struct vmm_vm *next;
};

struct vmm {
    char run_dir[4096];
    char bridge[16];
    char preload[4096];
    char qemu[256];
    char accel[8];
    char tracking[16];        /* auto, uffd, qemu-migration */
    const struct hv_ops *xen; /* NULL: built without the Xen back end */
    char xl[256];             /* the xl command */
    char xl_extra[4096];      /* lines appended to each domain's config */
    struct vmm_vm *vms;
};

/* Read [agent] run_dir, bridge, uffd_preload, qemu, dirty_tracking, xl,
 * xl_extra; 'accel' as probed. */
int vmm_init(struct vmm *m, const struct conf *conf, const char *state_dir,
             const char *accel, struct vmckpt_error *err);
/* Take over the guests an earlier agent of this host left running (its
 * run_dir holds their specs and pids): dirty tracking continues, a guest
 * it left paused in a cut runs again. Returns how many, or -1. */
int vmm_adopt_all(struct vmm *m, struct vmckpt_error *err);
/* Forget adopted guests whose QEMU is gone (they are not our children, so
 * no SIGCHLD tells) and Xen domains that are gone or shut down. Returns
 * how many. */
int vmm_check_adopted(struct vmm *m);
/* CPU time (ms) process 'pid' has used so far; 0 if unreadable. */
uint64_t vmm_cpu_ms(pid_t pid);
/* Update each guest's cpu_rate (called every heartbeat period). */
void vmm_sample_cpu(struct vmm *m);
/* Stop every guest (SIGTERM to QEMU) and forget them. */
void vmm_fini(struct vmm *m);

struct vmm_vm *vmm_find(struct vmm *m, const char *job, const char *name);
/* 1 if the guest is a Xen domain (spec.hypervisor "xen"). */
int vmm_is_xen(const struct vmm_vm *vm);

/* Launch a guest. With 'ram_image' (a file of the guest's RAM), start it
 * waiting for its device state (-incoming defer) on that RAM; a Xen domain
 * is built paused and load_state writes that RAM into it. */
struct vmm_vm *vmm_start(struct vmm *m, const Vmckpt__VmSpec *spec,
                         const char *ram_image, struct vmckpt_error *err);
/* Stop a guest (SIGTERM to QEMU) and remove its tap and RAM file. Waits
 * at most 'wait_ms' for QEMU to exit: 1 if it did and all is cleaned up
 * ('vm' is freed), 0 if the cleanup happens when it is reaped
 * (vmm_reaped), -1 with 'err' if the guest is busy. */
int vmm_stop(struct vmm *m, struct vmm_vm *vm, int wait_ms,
             struct vmckpt_error *err);
/* A QEMU process 'pid' ended: forget its guest. Returns it, unlinked and
 * stopped (caller frees with vmm_free), or NULL. */
struct vmm_vm *vmm_reaped(struct vmm *m, pid_t pid);
void vmm_free(struct vmm_vm *vm);

#endif
