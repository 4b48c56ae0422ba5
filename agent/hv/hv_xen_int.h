/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the Xen back end: hv_xen.c (adoption, memory map, log-dirty,
 * suspend and resume) and hv_xen_state.c (the state record, restore,
 * libxenguest's save for comparison). Nothing else includes this. */
#ifndef VMCKPT_HV_XEN_INT_H
#define VMCKPT_HV_XEN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenstore.h>

#include "hv.h"

#define PAGE          4096
#define MAX_RANGES    32
#define SUSPEND_MS    30000
#define STATE_MAGIC   "VMCKXEN1"
#define STATE_VERSION 1
/* vm_adopt's 'track' for a domain a restore writes into */
#define RESTORE_TARGET -2

struct range {
    uint64_t gfn, count;
};

struct hv_vm {
    xc_interface *xch;
    xentoollog_logger *log;
    xenforeignmemory_handle *fmem;
    struct xs_handle *xs;
    uint32_t domid;
    char name[65];
    int hvm;
    size_t nranges;
    struct range range[MAX_RANGES];
    uint64_t npages;
    uint8_t *map;      /* npages pages, the ranges one after another */
    uint64_t *holes;   /* bit i: page i is not populated (reads zeroes) */
    uint64_t p2m_size; /* page numbers 0..p2m_size-1 (largest + 1) */
    xc_hypercall_buffer_t hbuf;
    unsigned long *dirty; /* hbuf's pages */
    int hbuf_pages;
    int tracking;
    /* a domain built paused to restore into (the agent's restore): the
     * image's RAM file, read by load_state; 'restored' once it is loaded
     * and the domain waits to be unpaused */
    char ram_path[4096];
    int restored;
};

/* hv_xen.c */
struct hv_vm *hvx_adopt(const struct hv_vm_spec *spec, int track,
                        struct vmckpt_error *err);
void hvx_release(struct hv_vm *vm);
int hvx_pause(struct hv_vm *vm, struct vmckpt_error *err);
int hvx_resume(struct hv_vm *vm, struct vmckpt_error *err);
/* Append a range of page numbers to the domain's view. */
int hvx_add_range(struct hv_vm *vm, uint64_t gfn, uint64_t count,
                  struct vmckpt_error *err);
/* Map the view (PROT_READ, or writable for a restore); holes read as
 * zeroes and are marked in vm->holes. */
int hvx_map_ranges(struct hv_vm *vm, int prot, struct vmckpt_error *err);

/* hv_xen_state.c */
int64_t hvx_save_state(struct hv_vm *vm, int fd, struct vmckpt_error *err);
int hvx_load_state(struct hv_vm *vm, int fd, struct vmckpt_error *err);

#endif
