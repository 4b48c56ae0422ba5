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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/evloop.h"
#include "lib/wire/batch.h"
#include "precopy.h"

enum precopy_decision precopy_limits_decide(const struct precopy_round *r,
                                            void *arg)
{
    const struct precopy_limits *l = arg;

    if (r->pages_left <= l->cut_pages || r->round + 1 >= l->max_rounds ||
        r->elapsed_ms >= l->max_ms)
        return PRECOPY_CUT;
    return PRECOPY_CONTINUE;
}

struct lanes;

struct sender {
    const struct precopy_sink *sink;
    struct lanes *L;
    unsigned lane;
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
    if (s->sink->batch(s->sink->arg, s->lane, &msg, err) < 0)
        return -1;
    s->batches++;
    s->pages += s->b.n;
    batch_reset(&s->b, s->b.round);
    return 0;
}

/* Pages are dealt to lanes in chunks of 1 << LANE_SHIFT pages (4 MiB):
 * 16 words of a dirty bitmap. */
#define LANE_SHIFT 10
#define LANE_WORDS ((1u << LANE_SHIFT) / 64)

/* The lanes of one checkpoint: lane 0 runs in the engine's thread, the
 * others in threads of their own that wait for a task, run their share of
 * it and report back. One task at a time: a round (the bits of a dirty
 * bitmap) or the drain of the pages staged at the cut. */
struct lanes {
    unsigned n;
    struct sender s[PRECOPY_MAX_STREAMS];
    pthread_t t[PRECOPY_MAX_STREAMS];
    unsigned started; /* threads running */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen, busy;
    int quit;
    /* the task */
    int drain;
    const uint8_t *ram;
    uint64_t npages, *bitmap;
    int skip_zero;
    unsigned round;
    const struct precopy_policy *pol;
    const uint64_t *staged;
    const uint8_t *staging;
    uint64_t nstaged;
    /* per lane: pages sent, or -1 (error in err[]), or -2 (cut now) */
    int64_t sent[PRECOPY_MAX_STREAMS];
    struct vmckpt_error err[PRECOPY_MAX_STREAMS];
    int stop; /* a lane failed or the policy cut: the others stop too */
};

static int lane_should_stop(struct lanes *L)
{
    if (__atomic_load_n(&L->stop, __ATOMIC_RELAXED))
        return 1;
    if (!L->drain && L->pol != NULL && L->pol->cut_now != NULL &&
        L->pol->cut_now(L->pol->arg)) {
        __atomic_store_n(&L->stop, 1, __ATOMIC_RELAXED);
        return 1;
    }
    return 0;
}

/* Add page 'p' to the lane's batch, sending the batch when full; 0, -1
 * with 'err', or -2 when the lane must stop. */
static int lane_add(struct lanes *L, struct sender *s, uint64_t p,
                    const uint8_t *page, struct vmckpt_error *err)
{
    if (!batch_add(&s->b, p, page))
        return 0;
    if (flush_batch(s, err) < 0)
        return -1;
    return lane_should_stop(L) ? -2 : 0;
}

/* Send this lane's share of the bitmap (skipping zero pages if asked),
 * clearing the bits it sent; -2 when told to stop between two batches
 * (the bits of what was not sent stay set). */
static int64_t lane_round(struct lanes *L, struct sender *s,
                          struct vmckpt_error *err)
{
    uint64_t words = (L->npages + 63) / 64, c, w, sent = 0;
    int rc;

    batch_reset(&s->b, L->round);
    for (c = s->lane; c * LANE_WORDS < words; c += L->n) {
        uint64_t wend = c * LANE_WORDS + LANE_WORDS;

        for (w = c * LANE_WORDS; w < wend && w < words; w++) {
            uint64_t bits = L->bitmap[w];

            while (bits) {
                uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(bits);
                const uint8_t *page = L->ram + p * BATCH_PAGE;

                bits &= bits - 1;
                if (p >= L->npages)
                    break;
                L->bitmap[w] &= ~(1ULL << (p % 64));
                if (L->skip_zero && batch_page_is_zero(page))
                    continue;
                sent++;
                if ((rc = lane_add(L, s, p, page, err)) < 0)
                    return rc;
            }
        }
    }
    return flush_batch(s, err) < 0 ? -1 : (int64_t)sent;
}

/* Send this lane's share of the staged pages; -2 when another lane
 * failed. */
static int64_t lane_drain(struct lanes *L, struct sender *s,
                          struct vmckpt_error *err)
{
    uint64_t i, sent = 0;
    int rc;

    batch_reset(&s->b, L->round);
    for (i = 0; i < L->nstaged; i++) {
        if ((L->staged[i] >> LANE_SHIFT) % L->n != s->lane)
            continue;
        sent++;
        if ((rc = lane_add(L, s, L->staged[i], L->staging + i * BATCH_PAGE,
                           err)) < 0)
            return rc;
    }
    return flush_batch(s, err) < 0 ? -1 : (int64_t)sent;
}

static void lane_run(struct lanes *L, unsigned lane)
{
    struct sender *s = &L->s[lane];
    int64_t n = L->drain ? lane_drain(L, s, &L->err[lane])
                         : lane_round(L, s, &L->err[lane]);

    if (n == -1)
        __atomic_store_n(&L->stop, 1, __ATOMIC_RELAXED);
    L->sent[lane] = n;
}

static void *lane_main(void *arg)
{
    struct sender *s = arg;
    struct lanes *L = s->L;
    unsigned seen = 0;

    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (L->gen == seen && !L->quit)
            pthread_cond_wait(&L->go, &L->mu);
        if (L->quit)
            break;
        seen = L->gen;
        pthread_mutex_unlock(&L->mu);
        lane_run(L, s->lane);
        pthread_mutex_lock(&L->mu);
        if (--L->busy == 0)
            pthread_cond_signal(&L->done);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static int lanes_init(struct lanes *L, unsigned n, int lz4,
                      const struct precopy_sink *sink, struct vmckpt_error *err)
{
    unsigned i;

    memset(L, 0, sizeof(*L));
    L->n = n;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->go, NULL);
    pthread_cond_init(&L->done, NULL);
    for (i = 0; i < n; i++) {
        L->s[i].sink = sink;
        L->s[i].L = L;
        L->s[i].lane = i;
        if (batch_builder_init(&L->s[i].b, lz4) < 0)
            return errprintf_errno(err, "pre-copy");
    }
    for (i = 1; i < n; i++) {
        if (pthread_create(&L->t[i], NULL, lane_main, &L->s[i]) != 0) {
            errno = EAGAIN;
            return errprintf(err, "cannot start stream thread %u", i);
        }
        L->started = i;
    }
    return 0;
}

static void lanes_dispose(struct lanes *L)
{
    unsigned i;

    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    pthread_cond_broadcast(&L->go);
    pthread_mutex_unlock(&L->mu);
    for (i = 1; i <= L->started; i++)
        pthread_join(L->t[i], NULL);
    for (i = 0; i < L->n; i++)
        batch_builder_dispose(&L->s[i].b);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->go);
    pthread_cond_destroy(&L->done);
}

/* Run the task set in L on every lane; returns the pages sent, -1 with
 * 'err' (a failed lane's error: the lanes it stopped return -2), or -2
 * when the policy cut. */
static int64_t lanes_run(struct lanes *L, struct vmckpt_error *err)
{
    int64_t total = 0;
    int cut = 0;
    unsigned i;

    L->stop = 0;
    pthread_mutex_lock(&L->mu);
    L->busy = L->n - 1;
    L->gen++;
    pthread_cond_broadcast(&L->go);
    pthread_mutex_unlock(&L->mu);
    lane_run(L, 0);
    pthread_mutex_lock(&L->mu);
    while (L->busy > 0)
        pthread_cond_wait(&L->done, &L->mu);
    pthread_mutex_unlock(&L->mu);
    for (i = 0; i < L->n; i++) {
        if (L->sent[i] == -1) {
            *err = L->err[i];
            return -1;
        }
        if (L->sent[i] == -2)
            cut = 1;
        else
            total += L->sent[i];
    }
    return cut ? -2 : total;
}

/* The lanes' totals, into s. */
static void lanes_sum(const struct lanes *L, struct sender *s)
{
    unsigned i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < L->n; i++) {
        s->batches += L->s[i].batches;
        s->pages += L->s[i].pages;
        s->wire += L->s[i].wire;
        s->raw += L->s[i].raw;
    }
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
                       int stop_and_save, int lz4, unsigned streams,
                       const struct precopy_sink *sink,
                       const struct precopy_policy *policy,
                       struct precopy_result *res, struct vmckpt_error *err)
{
    struct lanes *L = NULL;
    struct sender s;
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    const uint8_t *ram;
    uint64_t ram_len, npages, t0 = (clock_mono_ns() / 1000), tp = 0, *bm = NULL;
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
    if (streams < 1 || streams > PRECOPY_MAX_STREAMS) {
        errno = EINVAL;
        return errprintf(err, "%u streams: 1 to %d", streams,
                         PRECOPY_MAX_STREAMS);
    }
    if (ops->ram_map(vm, &ram, &ram_len, err) < 0)
        return -1;
    npages = ram_len / BATCH_PAGE;
    words = (size_t)((npages + 63) / 64);
    bm = calloc(words, sizeof(*bm));
    L = malloc(sizeof(*L));
    if (bm == NULL || L == NULL) {
        errprintf_errno(err, "pre-copy");
        free(L);
        L = NULL;
        goto out;
    }
    if (lanes_init(L, streams, lz4, sink, err) < 0)
        goto out;
    L->ram = ram;
    L->npages = npages;
    L->bitmap = bm;
    if (stop_and_save) {
        tp = (clock_mono_ns() / 1000);
        res->paused_at_ns = clock_wall_ns();
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
        uint64_t ts = (clock_mono_ns() / 1000), wire0, pages0;

        lanes_sum(L, &s);
        wire0 = s.wire;
        pages0 = s.pages;
        L->skip_zero = full && round == 0;
        L->round = round;
        L->pol = stop_and_save ? NULL : policy;
        n = lanes_run(L, err);
        if (n == -1)
            goto out;
        if (n >= 0) {
            memset(bm, 0, words * sizeof(*bm));
            if (stop_and_save)
                break; /* everything was copied while paused */
            if (ops->dirty_harvest(vm, bm, err) < 0)
                goto out;
        }
        /* a round the cut ended early counts too (what it did not send
         * is still set in bm), so progress never misses its pages */
        lanes_sum(L, &s);
        r.pages_sent = s.pages - pages0;
        r.bytes_sent = s.wire - wire0;
        r.pages_left = popcount(bm, words);
        r.round_ms = ((clock_mono_ns() / 1000) - ts) / 1000;
        r.elapsed_ms = ((clock_mono_ns() / 1000) - t0) / 1000;
        /* a round the cut ended left unsent pages, not newly written ones */
        r.dirty_rate = n >= 0 ? r.pages_left * 1000000 /
                                    ((clock_mono_ns() / 1000) - ts + 1)
                              : 0;
        r.throughput =
            r.bytes_sent * 1000000 / ((clock_mono_ns() / 1000) - ts + 1);
        res->rounds = ++round;
        if (policy->on_round != NULL)
            policy->on_round(&r, policy->arg);
        if (n == -2)
            break; /* cut now: what is left in bm is copied while paused */
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
        tp = (clock_mono_ns() / 1000);
        res->paused_at_ns = clock_wall_ns();
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
        uint64_t th = (clock_mono_ns() / 1000);

        if (policy->on_cut != NULL && policy->on_cut(policy->arg, err) < 0)
            goto out;
        res->hold_us = (clock_mono_ns() / 1000) - th;
    }
    if (ops->resume(vm, err) < 0)
        goto out;
    paused = 0;
    res->pause_us = (clock_mono_ns() / 1000) - tp;
    res->resumed_at_ns = clock_wall_ns();

    /* drain with the guest running */
    L->drain = 1;
    L->round = round;
    L->staged = staged;
    L->staging = staging;
    L->nstaged = nstaged;
    if (lanes_run(L, err) < 0)
        goto out;
    lanes_sum(L, &s);
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
    res->total_ms = ((clock_mono_ns() / 1000) - t0) / 1000;
    rc = 0;
out:
    if (paused) {
        struct vmckpt_error e2;

        /* never leave the guest stopped because a checkpoint failed */
        (void)ops->resume(vm, &e2);
    }
    if (statefd >= 0)
        close(statefd);
    if (L != NULL)
        lanes_dispose(L);
    free(L);
    free(bm);
    free(staging);
    free(staged);
    free(state);
    return rc;
}
