/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pre-copy loop.
 *
 *   harvest (reset)            guest running
 *   round 0: send every non-zero page (full) or the pages written since
 *            the last cut (incremental)
 *   round k: harvest -> send the pages written during round k-1
 *   ... until the policy says CUT:
 *   pause; harvest; copy those pages to a staging buffer (memory speed);
 *   on_paused() (the disks' snapshot); save device state; on_cut() (the
 *   job-wide barrier); resume
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
    const struct precopy_policy *hooks; /* on_lane_start */
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

    if (L->hooks->on_lane_start != NULL)
        L->hooks->on_lane_start(L->hooks->arg, s->lane);
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
                      const struct precopy_sink *sink,
                      const struct precopy_policy *hooks,
                      struct vmckpt_error *err)
{
    unsigned i;

    memset(L, 0, sizeof(*L));
    L->n = n;
    L->hooks = hooks;
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
    if (hooks->on_lane_start != NULL)
        hooks->on_lane_start(hooks->arg, 0);
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

static uint64_t now_us(void)
{
    return clock_mono_ns() / 1000;
}

/* One checkpoint under way: what the steps below share. */
struct ckpt {
    const struct hv_ops *ops;
    struct hv_vm *vm;
    int full, stop_and_save;
    const struct precopy_sink *sink;
    const struct precopy_policy *policy;
    struct precopy_result *res;
    struct lanes *L;
    const uint8_t *ram;
    uint64_t npages, *bm; /* bm: the pages the next round sends */
    size_t words;
    uint64_t t0, tp; /* µs: the start, the pause request */
    int paused;
    unsigned round;
    /* the pages copied while paused, drained after the resume; room for
     * 'staging_cap' of them is made (and touched) before the pause */
    uint64_t *staged, nstaged, staging_cap;
    uint8_t *staging;
    int statefd;
    int64_t state_len;
    struct sender s; /* the lanes' totals */
};

static int check_args(const struct hv_ops *ops, unsigned streams,
                      struct vmckpt_error *err)
{
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
    return 0;
}

/* Map the guest's RAM, allocate the bitmap and start the lanes. */
static int ckpt_setup(struct ckpt *c, int lz4, unsigned streams,
                      struct vmckpt_error *err)
{
    if (c->ops->ram_map(c->vm, &c->ram, &c->npages, err) < 0)
        return -1;
    c->npages /= BATCH_PAGE;
    c->words = (size_t)((c->npages + 63) / 64);
    c->bm = calloc(c->words, sizeof(*c->bm));
    c->L = malloc(sizeof(*c->L));
    if (c->bm == NULL || c->L == NULL) {
        free(c->L);
        c->L = NULL;
        return errprintf_errno(err, "pre-copy");
    }
    if (lanes_init(c->L, streams, lz4, c->sink, c->policy, err) < 0)
        return -1;
    c->L->ram = c->ram;
    c->L->npages = c->npages;
    c->L->bitmap = c->bm;
    return 0;
}

static int pause_guest(struct ckpt *c, struct vmckpt_error *err)
{
    /* the pause counts from the stop request, like pause_us */
    c->tp = now_us();
    if (!c->stop_and_save)
        c->res->precopy_ms = (c->tp - c->t0) / 1000;
    c->res->paused_at_ns = clock_wall_ns();
    if (c->ops->pause(c->vm, err) < 0)
        return -1;
    c->paused = 1;
    c->res->stop_us = now_us() - c->tp;
    return 0;
}

/* Send the pages set in bm on every lane, then (unless the guest is
 * paused: then that was everything) harvest what the guest wrote
 * meanwhile into bm. Returns the pages sent, -1 with 'err', or -2 when
 * the policy cut mid-round (what was not sent is still set in bm). */
static int64_t send_round(struct ckpt *c, struct vmckpt_error *err)
{
    int64_t n;

    c->L->skip_zero = c->full && c->round == 0;
    c->L->round = c->round;
    c->L->pol = c->stop_and_save ? NULL : c->policy;
    n = lanes_run(c->L, err);
    if (n < 0)
        return n;
    memset(c->bm, 0, c->words * sizeof(*c->bm));
    if (!c->stop_and_save && c->ops->dirty_harvest(c->vm, c->bm, err) < 0)
        return -1;
    return n;
}

/* What round r did, from the lanes' totals before it (s0), its start
 * (ts, µs) and its outcome n. */
static void round_report(struct ckpt *c, const struct sender *s0, uint64_t ts,
                         int64_t n, struct precopy_round *r)
{
    uint64_t now;

    lanes_sum(c->L, &c->s);
    now = now_us();
    r->pages_sent = c->s.pages - s0->pages;
    r->bytes_sent = c->s.wire - s0->wire;
    r->pages_left = popcount(c->bm, c->words);
    r->round_ms = (now - ts) / 1000;
    r->elapsed_ms = (now - c->t0) / 1000;
    /* a round the cut ended left unsent pages, not newly written ones */
    r->dirty_rate = n >= 0 ? r->pages_left * 1000000 / (now - ts + 1) : 0;
    r->throughput = r->bytes_sent * 1000000 / (now - ts + 1);
}

/* The rounds with the guest running, until the policy cuts (or, for
 * stop-and-save, the one round with the guest paused). */
static int send_memory_live(struct ckpt *c, struct vmckpt_error *err)
{
    if (c->stop_and_save && pause_guest(c, err) < 0)
        return -1;
    /* what round 0 sends: everything, or what was written since the last
     * cut; the harvest also restarts tracking for round 1 */
    if (c->ops->dirty_harvest(c->vm, c->bm, err) < 0)
        return -1;
    if (c->full)
        memset(c->bm, 0xff, c->words * sizeof(*c->bm));
    for (;;) {
        struct precopy_round r = {.round = c->round};
        struct sender s0;
        uint64_t ts = now_us();
        int64_t n;

        lanes_sum(c->L, &s0);
        n = send_round(c, err);
        if (n == -1)
            return -1;
        if (n >= 0 && c->stop_and_save)
            return 0; /* everything was copied while paused */
        /* a round the cut ended early counts too (what it did not send
         * is still set in bm), so progress never misses its pages */
        round_report(c, &s0, ts, n, &r);
        c->res->rounds = ++c->round;
        if (c->policy->on_round != NULL)
            c->policy->on_round(&r, c->policy->arg);
        if (n == -2)
            return 0; /* cut now: what is left in bm is copied while paused */
        switch (c->policy->decide(&r, c->policy->arg)) {
        case PRECOPY_CONTINUE:
            continue;
        case PRECOPY_ABORT:
            errno = ECANCELED;
            return errprintf(err,
                             "pre-copy aborted by the policy after %u rounds",
                             c->round);
        case PRECOPY_CUT:
            break;
        }
        return 0;
    }
}

/* Room for 'n' staged pages (and their numbers); what the old room held
 * is not kept (no copy while paused). */
static int stage_alloc(struct ckpt *c, uint64_t n, struct vmckpt_error *err)
{
    if (n <= c->staging_cap && c->staging != NULL)
        return 0;
    free(c->staging);
    free(c->staged);
    c->staging_cap = 0;
    c->staging = malloc(n ? n * BATCH_PAGE : 1);
    c->staged = malloc(n ? n * sizeof(*c->staged) : 1);
    if (c->staging == NULL || c->staged == NULL)
        return errprintf_errno(err, "staging %llu pages",
                               (unsigned long long)n);
    c->staging_cap = n;
    return 0;
}

/* Before the pause: room for what the cut will likely stage (the pages
 * left after the last round, half again, and 1 MiB), its memory touched,
 * so the pause neither allocates nor faults it in; the state's file too.
 * A cut that finds more grows the room while paused. */
static int stage_reserve(struct ckpt *c, struct vmckpt_error *err)
{
    uint64_t left = popcount(c->bm, c->words);
    uint64_t want = left + left / 2 + BATCH_MAX_PAGES;

    if (want > c->npages)
        want = c->npages;
    if (stage_alloc(c, want, err) < 0)
        return -1;
    memset(c->staging, 0, want * BATCH_PAGE);
    memset(c->staged, 0, want * sizeof(*c->staged));
    c->statefd = memfd_create("vmckpt-state", MFD_CLOEXEC);
    if (c->statefd < 0)
        return errprintf_errno(err, "memfd");
    /* what saving the state needs besides the save, done now */
    if (c->ops->state_ready != NULL &&
        c->ops->state_ready(c->vm, c->statefd, err) < 0)
        return -1;
    return 0;
}

/* With the guest paused: copy the pages set in bm to staging, at memory
 * speed, so that their transfer can wait for the resume. */
static int stage_dirty(struct ckpt *c, struct vmckpt_error *err)
{
    uint64_t i, n = 0;

    c->nstaged = popcount(c->bm, c->words);
    if (stage_alloc(c, c->nstaged, err) < 0)
        return -1;
    for (i = 0; i < c->words; i++) {
        uint64_t bits = c->bm[i];

        while (bits) {
            uint64_t p = i * 64 + (uint64_t)__builtin_ctzll(bits);

            bits &= bits - 1;
            c->staged[n] = p;
            memcpy(c->staging + n * BATCH_PAGE, c->ram + p * BATCH_PAGE,
                   BATCH_PAGE);
            n++;
        }
    }
    return 0;
}

/* Paused, memory captured: what must be taken at the same instant (the
 * disks' snapshot), before save_state; with QEMU, the migration that saves
 * the state inactivates the guest's block nodes at its end. A failure is
 * the checkpoint's: ckpt_dispose resumes the guest. */
static int run_on_paused(struct ckpt *c, struct vmckpt_error *err)
{
    uint64_t t;
    int rc;

    if (c->policy->on_paused == NULL)
        return 0;
    t = now_us();
    rc = c->policy->on_paused(c->policy->arg, err);
    c->res->paused_hook_us = now_us() - t;
    return rc < 0 ? -1 : 0;
}

/* The cut: pause (unless stop-and-save already did), take the last
 * written pages, what on_paused takes, and the device state, hold for the
 * job (on_cut), resume. */
static int suspend_and_capture(struct ckpt *c, struct vmckpt_error *err)
{
    uint64_t th, t;

    if (!c->stop_and_save) {
        if (stage_reserve(c, err) < 0 || pause_guest(c, err) < 0)
            return -1;
        t = now_us();
        if (c->ops->dirty_harvest(c->vm, c->bm, err) < 0)
            return -1;
        c->res->harvest_us = now_us() - t;
        t = now_us();
        if (stage_dirty(c, err) < 0)
            return -1;
        c->res->stage_us = now_us() - t;
    } else {
        c->statefd = memfd_create("vmckpt-state", MFD_CLOEXEC);
        if (c->statefd < 0)
            return errprintf_errno(err, "memfd");
    }
    if (run_on_paused(c, err) < 0)
        return -1;
    t = now_us();
    c->state_len = c->ops->save_state(c->vm, c->statefd, err);
    if (c->state_len < 0)
        return -1;
    c->res->state_us = now_us() - t;
    th = now_us();
    if (c->policy->on_cut != NULL && c->policy->on_cut(c->policy->arg, err) < 0)
        return -1;
    c->res->hold_us = now_us() - th;
    t = now_us();
    if (c->ops->resume(c->vm, err) < 0)
        return -1;
    c->res->resume_us = now_us() - t;
    c->paused = 0;
    c->res->pause_us = now_us() - c->tp;
    c->res->resumed_at_ns = clock_wall_ns();
    return 0;
}

/* The device state to the sink in chunks of 1 MiB; 'state' gets the
 * buffer (freed by the caller). */
static int send_state(struct ckpt *c, uint8_t **state, struct vmckpt_error *err)
{
    uint64_t len = (uint64_t)c->state_len, i;

    *state = malloc(len ? (size_t)len : 1);
    if (*state == NULL ||
        pread(c->statefd, *state, (size_t)len, 0) != c->state_len)
        return errprintf_errno(err, "read device state");
    for (i = 0; i < len; i += 1u << 20) {
        size_t chunk = len - i > (1u << 20) ? (1u << 20) : (size_t)(len - i);

        if (c->sink->state(c->sink->arg, i, *state + i, chunk, err) < 0)
            return -1;
    }
    return 0;
}

/* With the guest running again: drain the staged pages, send the state,
 * end the stream (the sink makes it durable). */
static int send_staged_and_end(struct ckpt *c, struct vmckpt_error *err)
{
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    uint8_t *state = NULL;
    int rc = -1;

    c->L->drain = 1;
    c->L->round = c->round;
    c->L->staged = c->staged;
    c->L->staging = c->staging;
    c->L->nstaged = c->nstaged;
    if (lanes_run(c->L, err) < 0)
        goto out;
    lanes_sum(c->L, &c->s);
    if (send_state(c, &state, err) < 0)
        goto out;
    end.batches = c->s.batches;
    end.pages = c->s.pages;
    end.state_bytes = (uint64_t)c->state_len;
    end.state_xxh64 = batch_xxh64(state, (size_t)c->state_len);
    if (c->sink->end(c->sink->arg, &end, &c->res->disk_bytes, err) < 0)
        goto out;
    rc = 0;
out:
    free(state);
    return rc;
}

static void ckpt_dispose(struct ckpt *c)
{
    if (c->paused) {
        struct vmckpt_error e2;

        /* never leave the guest stopped because a checkpoint failed */
        (void)c->ops->resume(c->vm, &e2);
    }
    if (c->statefd >= 0)
        close(c->statefd);
    if (c->L != NULL)
        lanes_dispose(c->L);
    free(c->L);
    free(c->bm);
    free(c->staging);
    free(c->staged);
}

/*
 * The ladder:
 *
 *   ckpt_setup            map RAM, bitmap, lanes
 *   send_memory_live      round 0 .. round k, guest running
 *   suspend_and_capture   pause, stage the last pages, on_paused, state,
 *                         on_cut, resume
 *   send_staged_and_end   drain, state, end
 */
int precopy_checkpoint(const struct hv_ops *ops, struct hv_vm *vm, int full,
                       int stop_and_save, int lz4, unsigned streams,
                       const struct precopy_sink *sink,
                       const struct precopy_policy *policy,
                       struct precopy_result *res, struct vmckpt_error *err)
{
    struct ckpt c = {.ops = ops,
                     .vm = vm,
                     .full = full,
                     .stop_and_save = stop_and_save,
                     .sink = sink,
                     .policy = policy,
                     .res = res,
                     .statefd = -1};
    int rc = -1;

    memset(res, 0, sizeof(*res));
    if (check_args(ops, streams, err) < 0)
        return -1;
    c.t0 = now_us();
    if (ckpt_setup(&c, lz4, streams, err) < 0 ||
        send_memory_live(&c, err) < 0 || suspend_and_capture(&c, err) < 0 ||
        send_staged_and_end(&c, err) < 0)
        goto out;
    res->pages = c.s.pages;
    res->wire_bytes = c.s.wire;
    res->raw_bytes = c.s.raw;
    res->cut_pages = c.nstaged;
    res->state_bytes = (uint64_t)c.state_len;
    res->total_ms = (now_us() - c.t0) / 1000;
    rc = 0;
out:
    ckpt_dispose(&c);
    return rc;
}
