/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An in-memory sink for the pre-copy engine (tests): keeps the image it
 * was sent page by page, with what arrived in which round and lane, the
 * device state and the end record, so that a test can compare the image
 * with the guest's memory at the cut. */
#ifndef VMCKPT_MEM_SINK_H
#define VMCKPT_MEM_SINK_H

#include <pthread.h>
#include <stdint.h>

#include "agent/engine/precopy.h"

/* Rounds recorded one by one; batches of later rounds count as errors. */
#define MEM_SINK_ROUNDS 16

struct mem_sink {
    struct precopy_sink sink; /* the hooks, arg = this */
    uint64_t npages;
    uint8_t *image; /* npages pages: the last contents received */
    /* this epoch (reset by mem_sink_epoch) */
    uint8_t *sent;   /* [round * npages + page]: arrivals */
    int8_t *lane_of; /* the lane a page came on, -1 before it came */
    uint64_t batches, pages, zero_pages, data_pages;
    uint64_t lane_pages[PRECOPY_MAX_STREAMS];
    uint64_t errors;      /* bad batch, round out of range, lane changed */
    unsigned rounds_seen; /* highest round + 1 */
    uint8_t *state;
    uint64_t state_len;
    int ended;
    Vmckpt__StreamEnd end;
    /* set by the test */
    uint64_t fail_batch; /* the n-th batch of the epoch fails (0: none) */
    int fail_state, fail_end;
    /* called (under the sink's lock, from a lane's thread) at the first
     * batch of each round, before it is recorded: the guest writing while
     * a round is sent */
    void (*round_start)(void *arg, unsigned round);
    void *round_arg;

    pthread_mutex_t mu;
    uint8_t *scratch;
};

/* NULL on failure. */
struct mem_sink *mem_sink_create(uint64_t npages);
void mem_sink_destroy(struct mem_sink *ms);
/* Start an epoch: forget what arrived, keep the image (so an incremental
 * epoch lands on the one before it) and the test's settings. */
void mem_sink_epoch(struct mem_sink *ms);
/* Arrivals of 'page' in 'round' of this epoch. */
unsigned mem_sink_sent(const struct mem_sink *ms, unsigned round,
                       uint64_t page);
/* Batches so far (for cut_now, from any thread). */
uint64_t mem_sink_batches(struct mem_sink *ms);

#endif
