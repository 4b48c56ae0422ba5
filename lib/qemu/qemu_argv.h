/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one builder of a guest's QEMU command line, shared by the lab tool
 * and the agent's QEMU back end: guest RAM in a shared memory backend, a
 * QMP socket, the serial console on a socket with a log file, tap
 * networking. */
#ifndef VMCKPT_QEMU_ARGV_H
#define VMCKPT_QEMU_ARGV_H

#include <stddef.h>

#include "lib/util/error.h"

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
