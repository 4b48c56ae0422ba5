/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one builder of a guest's QEMU command line, shared by the lab tool
 * and the agent's QEMU back end: guest RAM in a shared memory backend, a
 * QMP socket, the serial console on a socket with a log file, tap
 * networking, and disks as chains of block nodes. */
#ifndef VMCKPT_QEMU_ARGV_H
#define VMCKPT_QEMU_ARGV_H

#include <stddef.h>

#include "lib/util/error.h"

/* One image of a disk's chain. */
struct qemu_layer {
    const char *path;   /* the image file */
    const char *format; /* "raw" (the base only) or "qcow2" */
    const char *node;   /* block node name: a letter, then [A-Za-z0-9_.-],
                           at most 30 chars (QEMU's 31 less the 'f' of the
                           file node <node>f); unique in the spec */
    int read_only;      /* open it read-only: the base and the layers
                           below the active one that no block job will
                           write (a merge target stays read-write) */
};

/* A guest disk: device vd<K> (K = index) on the fixed PCI slot 0x10 + K,
 * so that its migration section is the same in every QEMU that runs the
 * guest; serial "vmckpt-d<K>". */
struct qemu_disk {
    const struct qemu_layer *layers; /* base first, active last; each
                                        layer's backing is the one
                                        before it, whatever its header
                                        says; the base opens no backing */
    size_t nlayers;                  /* 1-16 */
    unsigned index;                  /* K: 0-7, unique in the spec */
};

struct qemu_spec {
    const char *qemu; /* binary, default "qemu-system-x86_64" */
    const char *name; /* guest name: [A-Za-z0-9_-], 1-32 chars */
    unsigned mem_mb;  /* guest RAM */
    unsigned vcpus;
    const char *accel;       /* "kvm" or "tcg" */
    const char *kernel;      /* vmlinux (PVH entry) or bzImage */
    const char *initrd;      /* may be NULL */
    const char *append;      /* kernel command line, may be NULL */
    const char *ram_path;    /* file for guest RAM (share=on); NULL: memfd */
    const char *qmp_path;    /* unix socket for QMP */
    const char *serial_path; /* unix socket of the serial console */
    const char *serial_log;  /* everything the console prints */
    int log_append;          /* keep what the log held (a restored guest) */
    const char *tap;         /* tap interface name, NULL: no network */
    const char *mac;         /* "52:54:00:xx:xx:xx" */
    const char *pidfile;     /* may be NULL */
    int incoming_defer;      /* start with -incoming defer (restore) */
    int paused;              /* start stopped (-S) */
    const char *token_path;  /* fw_cfg opt/vmckpt/token from this file (the
                                job's rank token); may be NULL */
    const struct qemu_disk *disks; /* may be NULL */
    size_t ndisks;                 /* 0-8 */
};

/* Build a NULL-terminated argv. The strings and the array are allocated;
 * free with qemu_argv_free(). NULL with 'err' on an invalid spec. */
char **qemu_argv_build(const struct qemu_spec *spec, struct vmckpt_error *err);
void qemu_argv_free(char **argv);

/* The MAC address the lab and the agent derive from a guest name
 * (locally administered 52:54:00 prefix, 3 bytes of a hash of the name)
 * into 'buf' (18 bytes). */
void qemu_mac_for_name(const char *name, char *buf);

#endif
