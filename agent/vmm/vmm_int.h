/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by vmm.c (what every guest has: names, records, the list) and
 * the launchers, one per hypervisor: vmm_qemu.c, vmm_xen.c. */
#ifndef VMCKPT_VMM_INT_H
#define VMCKPT_VMM_INT_H

#include "vmm.h"

/* How guests of one hypervisor are launched, taken over and stopped.
 * vmm.c picks the launcher by spec.hypervisor, keeps the list and the
 * records in run_dir, and calls these; a launcher never lists or frees a
 * guest. 'vm' always has job, name, log, ram and spec set. */
struct vmm_launcher {
    /* spec.hypervisor it serves ("" is taken as "qemu"). */
    const char *name;
    /* 1: it runs guests with disks (spec.disks) on the agent's chains. */
    int disks;
    /* Before start and adopt: set the guest's own names (QMP socket,
     * tap, domain) from vm->spec. -1 with 'err' if one cannot be (a
     * socket path too long): nothing was created. */
    int (*name_vm)(struct vmm *m, struct vmm_vm *vm, struct vmckpt_error *err);
    /* Launch the guest (with 'ram_image', waiting for its state on that
     * RAM, see vmm_start) and adopt it: vm->ops, vm->hv, vm->where (and
     * vm->pid) set, logged. On failure nothing is left on the host. */
    int (*start)(struct vmm *m, struct vmm_vm *vm, const char *ram_image,
                 struct vmckpt_error *err);
    /* Take over the guest of an earlier agent ('vm' from its record):
     * 1 if it runs (adopted, vm->where set), 0 if it is gone (logged;
     * the caller removes its traces), -1 if it cannot be taken over
     * (logged; its traces stay). */
    int (*adopt)(struct vmm *m, struct vmm_vm *vm, struct vmckpt_error *err);
    /* Make the guest end ('hard': at once, as at agent exit); its back end
     * has let go of it. NULL: cleanup ends it. */
    void (*halt)(struct vmm *m, struct vmm_vm *vm, int hard);
    /* 1 once the guest has ended after halt (does not block). */
    int (*ended)(struct vmm_vm *vm);
    /* 1 if the guest ended behind the agent's back (logged). */
    int (*lost)(struct vmm_vm *vm);
    /* The guest is gone or going: what it had on the host goes (tap, RAM
     * file, socket; a domain still there is destroyed). */
    void (*cleanup)(struct vmm *m, struct vmm_vm *vm);
    /* vmm_vm_loaded; NULL: nothing to do. */
    void (*loaded)(struct vmm_vm *vm);
    /* vmm_vm_tracking. */
    const char *(*tracking)(const struct vmm_vm *vm);
};

extern const struct vmm_launcher vmm_qemu_launcher;
extern const struct vmm_launcher vmm_xen_launcher;

/* The launchers of this program, NULL-terminated: defined by the list file
 * it is built with, vmm_list.c (the agent that ships: qemu, xen) or
 * vmm_simulated.c (the simulated agent: "simulated" alone). */
extern const struct vmm_launcher *const vmm_launchers[];

/* Run a command, its output to 'out' (-1: discarded), and wait for it;
 * 0 if it exited 0. */
int vmm_run_to(char *const argv[], int out);
int vmm_run(char *const argv[]);
/* /proc/PID/WHAT into 'buf' (NUL-terminated); its length, <= 0 if
 * unreadable. */
ssize_t vmm_read_proc(pid_t pid, const char *what, char *buf, size_t len);
/* run_dir/JOB-VM.EXT into 'buf', for a UNIX socket ('what' names it for
 * the error): -1 with 'err' if the path is longer than
 * VMM_SOCKET_PATH_MAX, saying which setting makes it shorter. */
int vmm_socket_path(const struct vmm *m, const struct vmm_vm *vm,
                    const char *ext, const char *what, char *buf, size_t len,
                    struct vmckpt_error *err);
/* run_dir/JOB-VM.EXT into 'buf' (records, configurations). */
void vmm_run_path(const struct vmm *m, const struct vmm_vm *vm, const char *ext,
                  char *buf, size_t len);
/* The pid run_dir/JOB-VM.pid recorded, 0 if none. */
pid_t vmm_recorded_pid(const struct vmm *m, const struct vmm_vm *vm);

#endif
