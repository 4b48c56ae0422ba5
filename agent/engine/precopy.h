/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pre-copy engine: checkpoints a running guest through its back end's
 * ops (hv.h) into a sink (a peer's store), pausing it only for the last
 * dirty pages and its device state. */
#ifndef VMCKPT_PRECOPY_H
#define VMCKPT_PRECOPY_H

#include <stdint.h>

#include "agent/hv/hv.h"
#include "lib/wire/wire.h"

/* Most parallel streams of one checkpoint. */
#define PRECOPY_MAX_STREAMS WIRE_MAX_STREAMS

/* Where the image goes. Each hook returns 0 or -1 with 'err'. With several
 * streams, 'batch' is called for stream 'lane' (0..streams-1) from that
 * stream's own thread, for several lanes at once; a page always travels in
 * the same lane, so its copies arrive in the order they were taken. The
 * state and the end come after every lane is done. */
struct precopy_sink {
    int (*batch)(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                 struct vmckpt_error *err);
    int (*state)(void *arg, uint64_t offset, const void *data, size_t len,
                 struct vmckpt_error *err);
    /* All sent: make it durable; *bytes = size on disk. */
    int (*end)(void *arg, const Vmckpt__StreamEnd *end, uint64_t *bytes,
               struct vmckpt_error *err);
    void *arg;
};

/* What a round did, for the policy and for status. */
struct precopy_round {
    unsigned round;
    uint64_t pages_sent; /* this round */
    uint64_t bytes_sent; /* this round, on the wire */
    uint64_t pages_left; /* written while the round ran */
    uint64_t dirty_rate; /* pages/s written during the round */
    uint64_t throughput; /* bytes/s sent during the round */
    uint64_t round_ms;
    uint64_t elapsed_ms; /* since the checkpoint began */
};

enum precopy_decision {
    PRECOPY_CONTINUE, /* one more round */
    PRECOPY_CUT,      /* pause and finish */
    PRECOPY_ABORT,    /* give up; the guest keeps running */
};

struct precopy_policy {
    /* Called after every round with the guest running. */
    enum precopy_decision (*decide)(const struct precopy_round *r, void *arg);
    /* Called with the guest paused and its state captured; return 0 to
     * resume it and finish (a coordinator holds here until every VM of the
     * job is paused), -1 with 'err' to resume it and give up. NULL: resume
     * at once. */
    int (*on_cut)(void *arg, struct vmckpt_error *err);
    /* Called once per checkpoint with the guest paused and its last dirty
     * pages staged (stop-and-save: all its memory copied), before its
     * device state is saved: what must be taken at the same instant as
     * the memory (the disks' snapshot). 0 to go on; -1 with 'err' fails
     * the checkpoint, 'err' as the hook left it, and the guest is resumed
     * (on_cut is not called). NULL: nothing. */
    int (*on_paused)(void *arg, struct vmckpt_error *err);
    /* Checked between batches of a round (from every stream's thread):
     * nonzero ends the round early and cuts now (what it did not send is
     * copied while paused). May be NULL. */
    int (*cut_now)(void *arg);
    /* Called after every round and at the end, for progress. May be NULL. */
    void (*on_round)(const struct precopy_round *r, void *arg);
    /* Called once per checkpoint in each lane's thread before it reads a
     * page: lane 0 in the caller's thread (before the other lanes' threads
     * start, which inherit what it sets), the others in their own; to pin
     * them near the guest's memory (lib/topo). May be NULL. */
    void (*on_lane_start)(void *arg, unsigned lane);
    void *arg;
};

/* A policy for single VMs: cut when fewer than 'cut_pages' are left, or
 * after 'max_rounds' rounds or 'max_ms' of pre-copy. */
struct precopy_limits {
    uint64_t cut_pages;
    unsigned max_rounds;
    uint64_t max_ms;
};
enum precopy_decision precopy_limits_decide(const struct precopy_round *r,
                                            void *arg);

struct precopy_result {
    unsigned rounds;
    uint64_t pages;      /* all rounds, the cut included */
    uint64_t wire_bytes; /* page data on the wire */
    uint64_t raw_bytes;  /* the non-zero pages' contents before LZ4 */
    uint64_t cut_pages;  /* copied while paused */
    uint64_t state_bytes;
    uint64_t pause_us;   /* from pause to resume */
    uint64_t total_ms;   /* from begin to durable */
    uint64_t precopy_ms; /* from begin to the pause request (live only) */
    uint64_t disk_bytes; /* reported by the sink */
    uint64_t paused_at_ns, resumed_at_ns; /* CLOCK_REALTIME */
    uint64_t hold_us; /* of pause_us, waiting in on_cut (the job's cut) */
    /* of pause_us: the back end's pause op itself (QEMU's stop drains and
     * flushes the guest's block I/O), and the time in on_paused */
    uint64_t stop_us;
    uint64_t paused_hook_us;
    /* of pause_us, the rest: the last harvest of dirty pages, their copy
     * to staging (cut_pages of them), the device state saved, the resume
     * (the back end's op) */
    uint64_t harvest_us, stage_us, state_us, resume_us;
};

/* Checkpoint 'vm'. 'full': send every non-zero page (first epoch of a
 * chain); otherwise the first round sends only the pages written since the
 * previous cut (tracking stays on between checkpoints). 'stop_and_save':
 * pause first and copy everything while paused (the traditional checkpoint,
 * for comparison). 'lz4' compresses batches. 'streams' (1 to
 * PRECOPY_MAX_STREAMS) lanes build and send batches in parallel, each
 * taking the pages of every streams-th 4 MiB of RAM. While paused, in
 * this order: the last pages staged, policy->on_paused, the device state
 * (ops->save_state), policy->on_cut, resume. 'res' is filled on success
 * (zeroed first). Returns 0, or -1 with 'err'; on failure the guest is
 * resumed if the engine paused it. */
int precopy_checkpoint(const struct hv_ops *ops, struct hv_vm *vm, int full,
                       int stop_and_save, int lz4, unsigned streams,
                       const struct precopy_sink *sink,
                       const struct precopy_policy *policy,
                       struct precopy_result *res, struct vmckpt_error *err);

#endif
