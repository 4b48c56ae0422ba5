/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pre-copy loop.
 *
 *   harvest (reset)            guest running
 *   round 0: send every non-zero page (full) or the pages written since
 *            the last cut (incremental)
 *   round k: harvest -> send the pages written during round k-1
 *   ... until the policy says CUT:
 *   pause; harvest; copy those pages to a staging buffer (memory speed);
 *   save device state; on_cut() (the job-wide barrier); resume
 *   drain staging to the sink; send the state; end -> durable
 *
 * The pause covers only the staging copy and the state capture; the
 * network transfer of the last pages happens with the guest running. The
 * harvest that ends the pause re-protects the pages, so writes after the
 * resume belong to the next epoch. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/evloop.h"
#include "lib/wire/batch.h"
#include "precopy.h"

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

enum precopy_decision precopy_limits_decide(const struct precopy_round *r,
                                            void *arg)
{
    const struct precopy_limits *l = arg;

    if (r->pages_left <= l->cut_pages || r->round + 1 >= l->max_rounds ||
        r->elapsed_ms >= l->max_ms)
        return PRECOPY_CUT;
    return PRECOPY_CONTINUE;
}

struct sender {
    const struct precopy_sink *sink;
    struct batch_builder b;
    uint64_t batches, pages, wire, raw;
};

static int flush_batch(struct sender *s, struct vmckpt_error *err)
{
    Vmckpt__PageBatch msg;

    if (s->b.n == 0)
        return 0;
    vmckpt__page_batch__init(&msg);
    s->wire += batch_finish(&s->b, &msg);
    s->raw += msg.raw_len;
    if (s->sink->batch(s->sink->arg, &msg, err) < 0)
        return -1;
    s->batches++;
    s->pages += s->b.n;
    batch_reset(&s->b, s->b.round);
    return 0;
}

/* Send the pages set in 'bitmap' (skipping zero pages if 'skip_zero')
 * from 'ram', clearing their bits; returns the number sent, -1, or -2 when
 * the policy asked for the cut between two batches (the bits of what was
 * not sent stay set). */
static int64_t send_pages(struct sender *s, const uint8_t *ram, uint64_t npages,
                          uint64_t *bitmap, int skip_zero, unsigned round,
                          const struct precopy_policy *pol,
                          struct vmckpt_error *err)
{
    uint64_t w, sent = 0;

    batch_reset(&s->b, round);
    for (w = 0; w < (npages + 63) / 64; w++) {
        uint64_t bits = bitmap[w];

        while (bits) {
            uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);
            const uint8_t *page = ram + p * BATCH_PAGE;

            bits &= bits - 1;
            if (p >= npages)
                break;
            bitmap[w] &= ~(1ULL << (p % 64));
            if (skip_zero && batch_page_is_zero(page))
                continue;
            sent++;
            if (batch_add(&s->b, p, page)) {
                if (flush_batch(s, err) < 0)
                    return -1;
                if (pol != NULL && pol->cut_now != NULL &&
                    pol->cut_now(pol->arg))
                    return -2;
            }
        }
    }
    if (flush_batch(s, err) < 0)
        return -1;
    return (int64_t)sent;
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t popcount(const uint64_t *bm, size_t words)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(bm[i]);
    return n;
}

int precopy_checkpoint(const struct hv_ops *ops, struct hv_vm *vm, int full,
                       int stop_and_save, int lz4,
                       const struct precopy_sink *sink,
                       const struct precopy_policy *policy,
                       struct precopy_result *res, struct vmckpt_error *err)
{
    struct sender s = {.sink = sink};
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    const uint8_t *ram;
    uint64_t ram_len, npages, t0 = now_us(), tp = 0, *bm = NULL;
    uint8_t *staging = NULL, *state = NULL;
    uint64_t *staged = NULL, nstaged = 0, i;
    size_t words;
    int paused = 0, statefd = -1, rc = -1;
    int64_t n, state_len;
    unsigned round = 0;

    memset(res, 0, sizeof(*res));
    if (ops->vm_adopt == NULL || ops->dirty_harvest == NULL) {
        errno = ENOTSUP;
        return errprintf(err, "the %s back end cannot checkpoint live",
                         ops->name);
    }
    if (ops->ram_map(vm, &ram, &ram_len, err) < 0)
        return -1;
    npages = ram_len / BATCH_PAGE;
    words = (size_t)((npages + 63) / 64);
    bm = calloc(words, sizeof(*bm));
    if (bm == NULL || batch_builder_init(&s.b, lz4) < 0) {
        errprintf_errno(err, "pre-copy");
        goto out;
    }
    if (stop_and_save) {
        tp = now_us();
        res->paused_at_ns = realtime_ns();
        if (ops->pause(vm, err) < 0)
            goto out;
        paused = 1;
    }
    /* what round 0 sends: everything, or what was written since the last
     * cut; the harvest also restarts tracking for round 1 */
    if (ops->dirty_harvest(vm, bm, err) < 0)
        goto out;
    if (full)
        memset(bm, 0xff, words * sizeof(*bm));
    for (;;) {
        struct precopy_round r = {.round = round};
        uint64_t ts = now_us(), wire0 = s.wire;

        n = send_pages(&s, ram, npages, bm, full && round == 0, round,
                       stop_and_save ? NULL : policy, err);
        if (n == -2)
            break; /* cut now: what is left in bm is copied while paused */
        if (n < 0)
            goto out;
        memset(bm, 0, words * sizeof(*bm));
        if (stop_and_save)
            break; /* everything was copied while paused */
        if (ops->dirty_harvest(vm, bm, err) < 0)
            goto out;
        r.pages_sent = (uint64_t)n;
        r.bytes_sent = s.wire - wire0;
        r.pages_left = popcount(bm, words);
        r.round_ms = (now_us() - ts) / 1000;
        r.elapsed_ms = (now_us() - t0) / 1000;
        r.dirty_rate = r.pages_left * 1000000 / (now_us() - ts + 1);
        r.throughput = r.bytes_sent * 1000000 / (now_us() - ts + 1);
        res->rounds = ++round;
        if (policy->on_round != NULL)
            policy->on_round(&r, policy->arg);
        switch (policy->decide(&r, policy->arg)) {
        case PRECOPY_CONTINUE:
            continue;
        case PRECOPY_ABORT:
            errno = ECANCELED;
            errprintf(err, "pre-copy aborted by the policy after %u rounds",
                      round);
            goto out;
        case PRECOPY_CUT:
            break;
        }
        break;
    }
    if (!stop_and_save) {
        /* the cut: pause, take the last written pages into memory */
        /* the pause counts from the stop request, like pause_us */
        tp = now_us();
        res->paused_at_ns = realtime_ns();
        if (ops->pause(vm, err) < 0)
            goto out;
        paused = 1;
        if (ops->dirty_harvest(vm, bm, err) < 0)
            goto out;
        nstaged = popcount(bm, words);
        staging = malloc(nstaged ? nstaged * BATCH_PAGE : 1);
        staged = malloc(nstaged ? nstaged * sizeof(*staged) : 1);
        if (staging == NULL || staged == NULL) {
            errprintf_errno(err, "staging %llu pages",
                            (unsigned long long)nstaged);
            goto out;
        }
        for (i = 0, n = 0; i < words; i++) {
            uint64_t bits = bm[i];

            while (bits) {
                uint64_t p = i * 64 + (uint64_t)__builtin_ctzll(bits);

                bits &= bits - 1;
                staged[n] = p;
                memcpy(staging + (uint64_t)n * BATCH_PAGE, ram + p * BATCH_PAGE,
                       BATCH_PAGE);
                n++;
            }
        }
    }
    statefd = memfd_create("vmckpt-state", MFD_CLOEXEC);
    if (statefd < 0) {
        errprintf_errno(err, "memfd");
        goto out;
    }
    state_len = ops->save_state(vm, statefd, err);
    if (state_len < 0)
        goto out;
    {
        uint64_t th = now_us();

        if (policy->on_cut != NULL && policy->on_cut(policy->arg, err) < 0)
            goto out;
        res->hold_us = now_us() - th;
    }
    if (ops->resume(vm, err) < 0)
        goto out;
    paused = 0;
    res->pause_us = now_us() - tp;
    res->resumed_at_ns = realtime_ns();

    /* drain with the guest running */
    batch_reset(&s.b, round);
    for (i = 0; i < nstaged; i++)
        if (batch_add(&s.b, staged[i], staging + i * BATCH_PAGE) &&
            flush_batch(&s, err) < 0)
            goto out;
    if (flush_batch(&s, err) < 0)
        goto out;
    state = malloc(state_len ? (size_t)state_len : 1);
    if (state == NULL ||
        pread(statefd, state, (size_t)state_len, 0) != state_len) {
        errprintf_errno(err, "read device state");
        goto out;
    }
    for (i = 0; i < (uint64_t)state_len; i += 1u << 20) {
        size_t len = (uint64_t)state_len - i > (1u << 20)
                         ? (1u << 20)
                         : (size_t)((uint64_t)state_len - i);

        if (sink->state(sink->arg, i, state + i, len, err) < 0)
            goto out;
    }
    end.batches = s.batches;
    end.pages = s.pages;
    end.state_bytes = (uint64_t)state_len;
    end.state_xxh64 = batch_xxh64(state, (size_t)state_len);
    if (sink->end(sink->arg, &end, &res->disk_bytes, err) < 0)
        goto out;
    res->pages = s.pages;
    res->wire_bytes = s.wire;
    res->raw_bytes = s.raw;
    res->cut_pages = nstaged;
    res->state_bytes = (uint64_t)state_len;
    res->total_ms = (now_us() - t0) / 1000;
    rc = 0;
out:
    if (paused) {
        struct vmckpt_error e2;

        /* never leave the guest stopped because a checkpoint failed */
        (void)ops->resume(vm, &e2);
    }
    if (statefd >= 0)
        close(statefd);
    batch_builder_dispose(&s.b);
    free(bm);
    free(staging);
    free(staged);
    free(state);
    return rc;
}
