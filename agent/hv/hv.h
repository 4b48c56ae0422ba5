/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Hypervisor back ends of the agent, each behind one ops table: hv_qemu.c
 * (QEMU/KVM, the default), hv_xen.c (Xen through libxenctrl, built with
 * --with-xen). The pre-copy engine's hooks join this table as it lands. */
#ifndef VMCKPT_HV_H
#define VMCKPT_HV_H

#include <stdint.h>
#include <sys/types.h>

#include "lib/util/conf.h"

/* What a back end found on this host. */
struct hv_probe {
    char version[64]; /* hypervisor version, "" if unknown */
    char accel[16];   /* qemu: "kvm" or "tcg"; xen: "hap" or "shadow" */
    int usable;       /* 0: present in the build but unusable here */
    char detail[200]; /* why unusable, or a note an admin should see */
};

/* A running guest the back end controls (private to the back end). */
struct hv_vm;
/* jansson's JSON value (the monitor hook's arguments and reply). */
struct json_t;

/* How to find a running guest. */
struct hv_vm_spec {
    const char *name;
    pid_t pid;            /* qemu: the QEMU process */
    const char *qmp_path; /* qemu: its QMP socket */
    const char *ram_path; /* qemu: the file backing guest RAM; xen: with
                             track -1, the image's RAM that load_state
                             writes into a domain built paused */
    int uffd_fd;          /* qemu: libvmckpt-uffd.so's descriptor */
};

struct hv_ops {
    /* Short name as registered and shown by 'vmckpt hosts'. */
    const char *name;
    /* Called once at agent start-up, before the agent registers. Fills
     * 'out'; never fails: an unusable hypervisor is reported with usable=0
     * and the reason in 'detail'. 'conf' is the agent's configuration
     * (read-only, for back-end keys such as [agent] qemu). */
    void (*probe)(const struct conf *conf, struct hv_probe *out);

    /* The hooks of the pre-copy engine (precopy.c), for one guest. */

    /* Take control of a running guest. 'track' 1: start dirty tracking
     * afresh; 0: continue the tracking an earlier owner left on; -1: no
     * tracking (a restore target). NULL with 'err' on failure. The guest
     * keeps running. */
    struct hv_vm *(*vm_adopt)(const struct hv_vm_spec *spec, int track,
                              struct vmckpt_error *err);
    /* Let go of the guest (it keeps running). NULL is fine. */
    void (*vm_release)(struct hv_vm *vm);
    /* 1 while the guest exists and runs (or is paused); NULL: the agent
     * watches the guest's process instead (QEMU). */
    int (*vm_alive)(struct hv_vm *vm);
    /* Guest RAM as the agent sees it: a read-only mapping owned by 'vm',
     * valid until vm_release. */
    int (*ram_map)(struct hv_vm *vm, const uint8_t **base, uint64_t *len,
                   struct vmckpt_error *err);
    /* Set bit i of 'bitmap' for each page written since the last call (or
     * since tracking started) and restart tracking of those pages.
     * Returns the number of pages, or -1. */
    int64_t (*dirty_harvest)(struct hv_vm *vm, uint64_t *bitmap,
                             struct vmckpt_error *err);
    /* Stop and restart the vCPUs. */
    int (*pause)(struct hv_vm *vm, struct vmckpt_error *err);
    int (*resume)(struct hv_vm *vm, struct vmckpt_error *err);
    /* With the guest paused: write its vCPU and device state (not its RAM)
     * to 'fd' from offset 0. Returns the size, or -1. */
    int64_t (*save_state)(struct hv_vm *vm, int fd, struct vmckpt_error *err);
    /* Before the pause (NULL: nothing to do): make ready what save_state
     * on 'fd' needs, so that the pause does not wait for it (QEMU: the
     * descriptor handed over and the migration's capabilities set). */
    int (*state_ready)(struct hv_vm *vm, int fd, struct vmckpt_error *err);
    /* Load state from 'fd' into a guest started waiting for it (QEMU's
     * -incoming defer) whose RAM already holds the image; the guest is left
     * paused. Xen: into a domain built paused, adopted with track -1 and
     * the image's RAM file as ram_path, whose pages this writes; the
     * resume that follows unpauses it and starts tracking. */
    int (*load_state)(struct hv_vm *vm, int fd, struct vmckpt_error *err);

    /* Without dirty tracking: the hypervisor's own live transfer of the
     * whole guest (RAM included) into 'fd' (a pipe), pre-copy and all; it
     * returns with the guest paused at the end of it and *downtime_ms as
     * the hypervisor measured the pause so far. 'at_pause' (NULL: none)
     * is called once, with 'at_pause_arg', when the hypervisor has
     * stopped the guest for the last round and drained its I/O, before
     * the device state goes and the disks are handed over (QEMU: the
     * migration's pre-switchover state); if it fails, the transfer is
     * cancelled, the guest resumed and save_full fails with the hook's
     * 'err'. NULL if there is none. */
    int (*save_full)(struct hv_vm *vm, int fd, uint64_t *downtime_ms,
                     int (*at_pause)(void *arg, struct vmckpt_error *err),
                     void *at_pause_arg, struct vmckpt_error *err);
    /* Load such a stream (from offset 0 of 'fd') into a guest started to
     * wait for it. */
    int (*load_full)(struct hv_vm *vm, int fd, struct vmckpt_error *err);

    /* Run one command 'cmd' on the guest's monitor (QEMU: QMP) with
     * 'args' (a JSON object, or NULL; not stolen). 0 and, if 'ret' is not
     * NULL, the reply's value in '*ret' (the caller decrefs); -1 with
     * 'err' (a refused command: its error class and text). Called only
     * by the checkpoint or restore thread that owns the guest (the
     * monitor connection is not shared between threads), from save_full's
     * at_pause too. QEMU only; NULL for Xen and the simulated back end. */
    int (*monitor)(struct hv_vm *vm, const char *cmd, struct json_t *args,
                   struct json_t **ret, struct vmckpt_error *err);
};

/* NULL-terminated list of the back ends built into this agent. Callers
 * reach every back end through it (or hv_find), never by its ops' name.
 * Defined by the list file the program is built with: hv_list.c (the
 * agent that ships: qemu, xen), hv_list_simulated.c (the simulated agent
 * of the scale tests: "simulated" alone). */
const struct hv_ops *const *hv_backends(void);
/* The back end called 'name' ("qemu", "xen"), or NULL if this agent was
 * built without it. */
const struct hv_ops *hv_find(const char *name);

#endif
