/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guests an agent owns: launched from a VM spec by the launcher of
 * its hypervisor (vmm_qemu.c: a QEMU process with one tap on the host's
 * bridge, guest RAM in a shared file, QMP, dirty tracking preloaded;
 * vmm_xen.c, for spec.hypervisor "xen": a Xen PVH domain built by
 * 'xl create'); stopped, listed, taken over, restored from an image. */
#ifndef VMCKPT_VMM_H
#define VMCKPT_VMM_H

#include <stdint.h>
#include <sys/types.h>

#include "agent/hv/hv.h"
#include "lib/util/conf.h"
#include "lib/wire/wire.h"

struct vmm_launcher; /* vmm_int.h */
struct disk_chain;   /* agent/disk/disk.h */

struct vmm_vm {
    char job[65], name[65];
    pid_t pid; /* qemu: its process; 0 for a guest without one */
    char qmp[4200], ram[4200], log[4200], tap[16];
    char where[96]; /* for people: "pid N", "Xen domain D" */
    const struct vmm_launcher *launcher; /* of its spec.hypervisor */
    const struct hv_ops *ops;            /* its back end */
    char domain[80];                     /* xen: spec.domain, or JOB-VM */
    struct hv_vm *hv;                    /* adopted, dirty tracking on */
    uint64_t last_epoch;    /* last epoch written from this QEMU (delta base) */
    uint64_t pending_epoch; /* durable job epoch, a base once committed */
    uint64_t restored_epoch; /* the epoch it was restored from */
    int held;                /* restored paused: waits for the job's RESUME */
    int busy;                /* a checkpoint or restore thread owns it */
    int destroy_pending;     /* a stale copy: destroyed when not busy */
    int stopping;            /* SIGTERM sent; cleaned up when reaped */
    int fenced;      /* paused when the agent's lease ended (the daemon's) */
    int adopted;     /* found running at start: not our child */
    int qemu_stream; /* no dirty tracking: QEMU's own stream */
    /* CPU QEMU used (ms per s) over the last heartbeat period; sampled by
     * the loop, read by checkpoint threads */
    uint64_t cpu_prev, cpu_at, cpu_rate;
    char no_track_why[256]; /* why not, for the log */
    Vmckpt__VmSpec *spec;   /* as received */
    /* its disks' chains (NULL: none); removed with the guest: a restore
     * builds its chain anew from the store's layers */
    struct disk_chain *disks;
    struct vmm_vm *next;
};

struct vmm {
    char run_dir[4096];
    char ram_dir[3900]; /* the guests' RAM files (a tmpfs) */
    char bridge[16];
    char preload[4096];
    char qemu[256];
    char accel[8];
    char tracking[16];   /* auto, uffd, qemu-migration */
    char xl[256];        /* the xl command */
    char xl_extra[4096]; /* lines appended to each domain's config */
    char disk_dir[3900]; /* guests' disk chains (agent/disk) */
    char qemu_img[256];
    struct vmm_vm *vms;
    /* Set by the daemon after vmm_init (NULL: nobody): told by
     * vmm_check_adopted of a guest that ended behind the agent's back and
     * that it was not stopping, before the guest is freed. */
    void (*on_gone)(void *arg, const struct vmm_vm *vm);
    void *on_gone_arg;
};

/* Read [agent] run_dir, disk_dir, qemu_img, bridge, uffd_preload, qemu,
 * dirty_tracking, xl, xl_extra; 'accel' as probed. run_dir holds the guests'
 * records, logs and QMP sockets: a guest whose socket path would be longer than
 * a UNIX socket path may be (VMM_SOCKET_PATH_MAX) is refused at start. */
int vmm_init(struct vmm *m, const struct conf *conf, const char *state_dir,
             const char *accel, struct vmckpt_error *err);
/* Take over the guests an earlier agent of this host left running (its
 * run_dir holds their specs and pids): dirty tracking continues, a guest
 * it left paused in a cut runs again. Returns how many, or -1. */
int vmm_adopt_all(struct vmm *m, struct vmckpt_error *err);
/* Forget guests whose QEMU is gone without vmm_reaped (adopted ones are
 * not our children, so no SIGCHLD tells; a child reaped while busy) and Xen
 * domains that are gone or shut down; on_gone hears of each. Returns how
 * many. */
int vmm_check_adopted(struct vmm *m);
/* Mark guest 'vm' paused by the fence ('on') or not: vm->fenced, and a
 * marker in run_dir (JOB-VM.fenced) so that an agent taking the guest
 * over after this one died keeps it paused until its fence is lifted. */
void vmm_set_fenced(struct vmm *m, struct vmm_vm *vm, int on);
/* 1 if process 'pid' is stopped (SIGSTOP, e.g. by the fence guard), else
 * 0. */
int vmm_pid_stopped(pid_t pid);
/* 1 if process 'pid' has ended (gone, or a zombie not reaped yet). */
int vmm_pid_ended(pid_t pid);
/* CPU time (ms) process 'pid' has used so far; 0 if unreadable. */
uint64_t vmm_cpu_ms(pid_t pid);
/* Update each guest's cpu_rate (called every heartbeat period). */
void vmm_sample_cpu(struct vmm *m);
/* Stop every guest (SIGTERM to QEMU, a Xen domain destroyed) and forget
 * them. */
void vmm_fini(struct vmm *m);

struct vmm_vm *vmm_find(struct vmm *m, const char *job, const char *name);
/* How the guest's writes are tracked, as reported to the coordinator:
 * "uffd-wp", "qemu-migration" (none: QEMU's own stream) or
 * "xen-logdirty". */
const char *vmm_vm_tracking(const struct vmm_vm *vm);
/* The job incarnation this copy runs under (its spec's; 0: none given). */
uint64_t vmm_vm_incarnation(const struct vmm_vm *vm);
/* A restore loaded the image into the guest (load_state or load_full
 * done): what the launcher kept for it and needs no more goes (a Xen
 * domain holds its RAM now, the image's RAM file is deleted; QEMU's RAM
 * file is the guest's memory and stays). */
void vmm_vm_loaded(struct vmm_vm *vm);

/* The longest UNIX socket path QEMU (and the kernel) accept, in bytes:
 * sun_path less its NUL. */
#define VMM_SOCKET_PATH_MAX 107

/* Launch a guest of spec.hypervisor ("" or "qemu", "xen"). With
 * 'ram_image' (a file of the guest's RAM), start it waiting for its device
 * state (-incoming defer) on that RAM; a Xen domain is built paused and
 * load_state writes that RAM into it. NULL with 'err' (for the person who
 * asked) if it cannot be: a bad name, a guest of that name already here,
 * a hypervisor this agent lacks, a socket path too long for [agent]
 * run_dir, a launch that failed. 'disks': its disks' chains as a restore
 * built them (taken over, also on failure; their files stay), or NULL:
 * made now from spec.disks. */
struct vmm_vm *vmm_start(struct vmm *m, const Vmckpt__VmSpec *spec,
                         const char *ram_image, struct disk_chain *disks,
                         struct vmckpt_error *err);
/* Stop a guest (SIGTERM to QEMU, a Xen domain destroyed) and remove what
 * it left on the host (tap, RAM file, socket, configuration). Waits at
 * most 'wait_ms' for QEMU to exit: 1 if it did and all is cleaned up
 * ('vm' is freed), 0 if the cleanup happens when it is reaped
 * (vmm_reaped), -1 with 'err' if the guest is busy. */
int vmm_stop(struct vmm *m, struct vmm_vm *vm, int wait_ms,
             struct vmckpt_error *err);
/* A QEMU process 'pid' ended: forget its guest. Returns it, unlinked and
 * stopped (caller frees with vmm_free), or NULL. */
struct vmm_vm *vmm_reaped(struct vmm *m, pid_t pid);
void vmm_free(struct vmm_vm *vm);

#endif
