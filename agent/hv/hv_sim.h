/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The simulated back end (hv_sim.c, named "simulated"): a "guest" that is
 * an anonymous mapping of this process, written by a thread of its own.
 * For the engine's unit tests and the simulated agent of the scale tests
 * and benchmarks (hv_list_simulated.c); never in the list of back ends of
 * the agent that ships (hv_list.c). What tests need beyond hv_sim_ops. */
#ifndef VMCKPT_HV_SIM_H
#define VMCKPT_HV_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "hv.h"

extern const struct hv_ops hv_sim_ops;

/* The shape of a simulated guest. The writer writes whole pages, each
 * filled with a value made of the page number and the write's sequence
 * number (never all zero); it writes only while the guest runs. */
struct hv_sim_config {
    uint64_t pages; /* RAM size in pages of 4096 bytes, > 0 */
    /* Which pages the writer writes: [hot_first, hot_first + hot_pages);
     * hot_pages 0: all of RAM. In turn from hot_first (wrapping, the
     * position kept across pauses), or at random with 'seed' != 0. */
    uint64_t hot_first, hot_pages;
    uint64_t seed;
    /* 1: write from the start, at 'rate' pages/s (0: as fast as it can);
     * 0: write only the pages hv_sim_writes() asks for. */
    int free_running;
    uint64_t rate;
    /* 1 (with free_running and a rate): no writer thread; the writes due
     * at 'rate' are made when the guest is looked at (dirty_harvest,
     * pause), so that thousands of guests cost no thread each. */
    int lazy;
    int paused; /* 1: created paused (a restore target) */
    /* For the log ("" or NULL: none): with a name, the guest's release
     * logs what was done to it (its pauses, resumes and writes). */
    const char *name;
};

/* Read 'opts', "pages=N,hot=FIRST+N,seed=S,rate=R,run|lazy,paused" (every
 * option optional; 256 pages by default; NULL or "": the defaults), into
 * 'cfg'. 0, or -1 with EINVAL and 'err'. The simulated adopt reads its
 * hv_vm_spec.name so. */
int hv_sim_parse(const char *opts, struct hv_sim_config *cfg,
                 struct vmckpt_error *err);

/* Build a running guest; release it with hv_sim_ops.vm_release. Dirty
 * tracking is on from the start, with nothing dirty. NULL with 'err'. */
struct hv_vm *hv_sim_create(const struct hv_sim_config *cfg,
                            struct vmckpt_error *err);

/* The guest's RAM, writable (ram_map gives the same memory read-only).
 * Read it while the guest is paused or the writer idle. */
uint8_t *hv_sim_ram(struct hv_vm *vm);

/* Write page 'page' as the guest would: copy 4096 bytes from 'content'
 * (NULL: zero the page), then mark it dirty. Call it while the writer is
 * idle (not free running, or paused) so that the two do not race. */
void hv_sim_write(struct hv_vm *vm, uint64_t page, const void *content);

/* Let the writer write 'n' more pages and wait until it has (it writes
 * what the config says, in its thread). -1 with EAGAIN in 'err' if the
 * guest is paused, since they would never be written. */
int hv_sim_writes(struct hv_vm *vm, uint64_t n, struct vmckpt_error *err);

/* The hooks whose calls are counted and can be made to fail. */
enum hv_sim_hook {
    HV_SIM_PAUSE,
    HV_SIM_RESUME,
    HV_SIM_HARVEST,
    HV_SIM_SAVE_STATE,
    HV_SIM_NHOOKS,
};

/* Make the hook's call after the next 'skip' calls fail once with EIO
 * (skip 0: the next call), changing nothing. */
void hv_sim_fail(struct hv_vm *vm, enum hv_sim_hook hook, unsigned skip);

struct hv_sim_stats {
    uint64_t writes;                /* pages written, writer and tests */
    unsigned calls[HV_SIM_NHOOKS];  /* calls, failed ones included */
    unsigned failed[HV_SIM_NHOOKS]; /* calls made to fail */
    int paused;                     /* 1 while the guest is paused */
};
void hv_sim_stats(struct hv_vm *vm, struct hv_sim_stats *st);

/* The checksum save_state records and load_state checks: FNV-1a 64 over
 * the 64-bit words of 'buf' (host order), then its tail bytes. */
uint64_t hv_sim_checksum(const void *buf, size_t len);

/* The device state save_state writes (little endian, HV_SIM_STATE_LEN
 * bytes): magic "vmcksim1", pages, writes, the RAM's checksum. */
#define HV_SIM_STATE_LEN 32

#endif
