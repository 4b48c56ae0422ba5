/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the pre-copy engine over the simulated back end (hv_sim)
 * and an in-memory sink: rounds, the cut policy, the image against the
 * memory at the cut, incremental epochs, zero pages, lanes, failures. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/engine/precopy.h"
#include "agent/hv/hv_sim.h"
#include "lib/wire/batch.h"
#include "mem_sink.h"
#include "timed_ops.h"

/* One checkpoint's fixture: the guest, the sink, the policy's records. */
struct run {
    struct hv_vm *vm;
    struct mem_sink *ms;
    uint64_t npages;
    struct precopy_limits lim;
    struct precopy_policy pol;
    struct precopy_round rounds[MEM_SINK_ROUNDS];
    unsigned nrounds;
    uint8_t *snap; /* RAM at the cut (taken in on_cut) */
    int cuts;
    uint64_t writes_at_cut;
    /* pages the writer writes at the start of round i (first batch) */
    uint64_t writes_in_round[MEM_SINK_ROUNDS];
    /* pages it writes after round i's harvest (in on_round), which only
     * the harvest of the next round or of the cut finds */
    uint64_t writes_after_round[MEM_SINK_ROUNDS];
    uint64_t write_errors;
    int fail_cut, abort_policy;
    uint64_t cut_after_batches; /* cut_now once the sink has this many */
    const struct hv_ops *ops;   /* the back end: hv_sim_ops or a wrapper */
    /* on_paused: calls, and what it saw at its (last) call */
    int paused_calls, fail_paused;
    struct hv_sim_stats at_paused;
    uint64_t sent_at_paused; /* pages the sink had */
    int cuts_at_paused;
};

static enum precopy_decision run_decide(const struct precopy_round *r,
                                        void *arg)
{
    struct run *t = arg;

    if (t->abort_policy)
        return PRECOPY_ABORT;
    return precopy_limits_decide(r, &t->lim);
}

static void run_on_round(const struct precopy_round *r, void *arg)
{
    struct run *t = arg;
    struct vmckpt_error err;

    if (t->nrounds < MEM_SINK_ROUNDS)
        t->rounds[t->nrounds++] = *r;
    if (r->round < MEM_SINK_ROUNDS && t->writes_after_round[r->round] != 0 &&
        hv_sim_writes(t->vm, t->writes_after_round[r->round], &err) < 0)
        t->write_errors++;
}

static int run_on_cut(void *arg, struct vmckpt_error *err)
{
    struct run *t = arg;
    struct hv_sim_stats st;

    /* the guest is paused: this is the memory the image must hold */
    hv_sim_stats(t->vm, &st);
    t->cuts++;
    t->writes_at_cut = st.writes;
    if (!st.paused)
        t->write_errors++;
    memcpy(t->snap, hv_sim_ram(t->vm), t->npages * BATCH_PAGE);
    if (t->fail_cut) {
        errno = ETIMEDOUT;
        return errprintf(err, "the job's cut failed");
    }
    return 0;
}

static int run_on_paused(void *arg, struct vmckpt_error *err)
{
    struct run *t = arg;

    t->paused_calls++;
    hv_sim_stats(t->vm, &t->at_paused);
    t->sent_at_paused = t->ms->pages;
    t->cuts_at_paused = t->cuts;
    usleep(2000); /* for paused_hook_us */
    if (t->fail_paused) {
        errno = EBUSY;
        return errprintf(err, "the disks' snapshot failed");
    }
    return 0;
}

static int run_cut_now(void *arg)
{
    struct run *t = arg;

    return t->cut_after_batches != 0 &&
           mem_sink_batches(t->ms) >= t->cut_after_batches;
}

static void run_round_start(void *arg, unsigned round)
{
    struct run *t = arg;
    struct vmckpt_error err;

    if (t->writes_in_round[round] != 0 &&
        hv_sim_writes(t->vm, t->writes_in_round[round], &err) < 0)
        t->write_errors++;
}

/* Fill page p with a pattern of its own (never zero). */
static void pattern(uint8_t *page, uint64_t p)
{
    size_t i;

    for (i = 0; i < BATCH_PAGE; i++)
        page[i] = (uint8_t)(p * 13 + i * 7 + 1) | 1;
}

/* Write every page but those 'zero_every' divides (0: none left zero). */
static void prefill(struct run *t, unsigned zero_every)
{
    uint8_t page[BATCH_PAGE];
    uint64_t p;

    for (p = 0; p < t->npages; p++) {
        if (zero_every != 0 && p % zero_every == 0)
            continue;
        pattern(page, p);
        hv_sim_write(t->vm, p, page);
    }
}

static void run_init(struct run *t, const struct hv_sim_config *cfg)
{
    struct vmckpt_error err;

    memset(t, 0, sizeof(*t));
    t->npages = cfg->pages;
    t->vm = hv_sim_create(cfg, &err);
    ck_assert_msg(t->vm != NULL, "%s", err.text);
    t->ms = mem_sink_create(cfg->pages);
    ck_assert_ptr_nonnull(t->ms);
    t->ms->round_start = run_round_start;
    t->ms->round_arg = t;
    t->snap = malloc(cfg->pages * BATCH_PAGE);
    ck_assert_ptr_nonnull(t->snap);
    t->ops = &hv_sim_ops;
    t->lim = (struct precopy_limits){
        .cut_pages = 0, .max_rounds = 8, .max_ms = 600000};
    t->pol = (struct precopy_policy){.decide = run_decide,
                                     .on_cut = run_on_cut,
                                     .cut_now = run_cut_now,
                                     .on_round = run_on_round,
                                     .arg = t};
}

static void run_dispose(struct run *t)
{
    hv_sim_ops.vm_release(t->vm);
    mem_sink_destroy(t->ms);
    free(t->snap);
}

static int run_ckpt(struct run *t, int full, int stop_and_save, int lz4,
                    unsigned streams, struct precopy_result *res,
                    struct vmckpt_error *err)
{
    t->nrounds = 0;
    memset(err, 0, sizeof(*err));
    return precopy_checkpoint(t->ops, t->vm, full, stop_and_save, lz4, streams,
                              &t->ms->sink, &t->pol, res, err);
}

/* The sink's image is the memory at the cut, and its end record and
 * device state match what it received. */
static void check_image(struct run *t, const struct precopy_result *res)
{
    uint64_t p;

    ck_assert_int_eq(t->cuts, 1);
    ck_assert_uint_eq(t->ms->errors, 0);
    ck_assert_uint_eq(t->write_errors, 0);
    for (p = 0; p < t->npages; p++)
        ck_assert_msg(memcmp(t->ms->image + p * BATCH_PAGE,
                             t->snap + p * BATCH_PAGE, BATCH_PAGE) == 0,
                      "page %llu differs from the memory at the cut",
                      (unsigned long long)p);
    ck_assert_int_eq(t->ms->ended, 1);
    ck_assert_uint_eq(t->ms->end.pages, t->ms->pages);
    ck_assert_uint_eq(t->ms->end.batches, t->ms->batches);
    ck_assert_uint_eq(res->pages, t->ms->pages);
    ck_assert_uint_eq(t->ms->state_len, HV_SIM_STATE_LEN);
    ck_assert_uint_eq(t->ms->end.state_bytes, HV_SIM_STATE_LEN);
    ck_assert_uint_eq(t->ms->end.state_xxh64,
                      batch_xxh64(t->ms->state, t->ms->state_len));
}

/* The guest runs: not paused, as many resumes as pauses, and its writer
 * still writes. */
static void check_running(struct run *t)
{
    struct hv_sim_stats st, st2;
    struct vmckpt_error err;

    hv_sim_stats(t->vm, &st);
    ck_assert_int_eq(st.paused, 0);
    ck_assert_uint_eq(st.calls[HV_SIM_PAUSE] - st.failed[HV_SIM_PAUSE],
                      st.calls[HV_SIM_RESUME] - st.failed[HV_SIM_RESUME]);
    ck_assert_int_eq(hv_sim_writes(t->vm, 3, &err), 0);
    hv_sim_stats(t->vm, &st2);
    ck_assert_uint_eq(st2.writes, st.writes + 3);
}

START_TEST(limits_decide)
{
    /* precopy_limits_decide cuts on each of its three limits, and only
     * then */
    struct precopy_limits l = {.cut_pages = 10, .max_rounds = 5, .max_ms = 100};
    struct precopy_round r = {.round = 0, .pages_left = 11, .elapsed_ms = 99};

    ck_assert_int_eq(precopy_limits_decide(&r, &l), PRECOPY_CONTINUE);
    r.pages_left = 10;
    ck_assert_int_eq(precopy_limits_decide(&r, &l), PRECOPY_CUT);
    r.pages_left = 1000;
    r.round = 3;
    ck_assert_int_eq(precopy_limits_decide(&r, &l), PRECOPY_CONTINUE);
    r.round = 4;
    ck_assert_int_eq(precopy_limits_decide(&r, &l), PRECOPY_CUT);
    r.round = 0;
    r.elapsed_ms = 100;
    ck_assert_int_eq(precopy_limits_decide(&r, &l), PRECOPY_CUT);
}
END_TEST

START_TEST(rounds_send_what_was_written)
{
    /* round 0 sends every page, each later round exactly the pages
     * written during the one before; the policy converges below its
     * threshold; the pages left and those written up to the pause go at
     * the cut */
    struct hv_sim_config cfg = {.pages = 1024};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    uint64_t p;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_in_round[0] = 300; /* the writer goes in turn from page 0 */
    t.writes_in_round[1] = 100;
    t.writes_in_round[2] = 10;
    t.writes_after_round[2] = 5; /* 410..414, found by the cut */
    t.lim.cut_pages = 20;
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 3);
    ck_assert_uint_eq(t.nrounds, 3);
    ck_assert_uint_eq(t.rounds[0].pages_sent, 1024);
    ck_assert_uint_eq(t.rounds[0].pages_left, 300);
    ck_assert_uint_eq(t.rounds[1].pages_sent, 300);
    ck_assert_uint_eq(t.rounds[1].pages_left, 100);
    ck_assert_uint_eq(t.rounds[2].pages_sent, 100);
    ck_assert_uint_eq(t.rounds[2].pages_left, 10);
    ck_assert_uint_eq(res.cut_pages, 15);
    ck_assert_uint_eq(res.pages, 1024 + 300 + 100 + 15);
    for (p = 0; p < 1024; p++) {
        ck_assert_uint_eq(mem_sink_sent(t.ms, 0, p), 1);
        ck_assert_uint_eq(mem_sink_sent(t.ms, 1, p), p < 300);
        ck_assert_uint_eq(mem_sink_sent(t.ms, 2, p), p >= 300 && p < 400);
        ck_assert_uint_eq(mem_sink_sent(t.ms, 3, p), p >= 400 && p < 415);
    }
    check_image(&t, &res);
    check_running(&t);
    run_dispose(&t);
}
END_TEST

START_TEST(cut_after_round_limit)
{
    /* a guest that writes faster than the threshold is cut after
     * max_rounds, with its pages left copied while paused */
    struct hv_sim_config cfg = {
        .pages = 1024, .hot_first = 100, .hot_pages = 200};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    unsigned i;

    run_init(&t, &cfg);
    prefill(&t, 0);
    for (i = 0; i < MEM_SINK_ROUNDS; i++)
        t.writes_in_round[i] = 200;
    t.lim.cut_pages = 10;
    t.lim.max_rounds = 3;
    ck_assert_msg(run_ckpt(&t, 1, 0, 1, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 3);
    ck_assert_uint_eq(t.rounds[2].pages_left, 200);
    ck_assert_uint_eq(res.cut_pages, 200);
    ck_assert_uint_eq(mem_sink_sent(t.ms, 3, 100), 1);
    ck_assert_uint_eq(mem_sink_sent(t.ms, 3, 99), 0);
    check_image(&t, &res);
    run_dispose(&t);
}
END_TEST

START_TEST(staging_grows_while_paused)
{
    /* the room for the cut's pages is made before the pause from what the
     * last round left (nothing here); pages written after that round's
     * harvest, found only at the pause, make it grow, and the image is
     * still the memory at the cut */
    struct hv_sim_config cfg = {.pages = 4096, .hot_first = 0, .hot_pages = 0};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_after_round[0] = 3000;
    t.lim.cut_pages = 4096; /* cut after round 0 */
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 2, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 1);
    ck_assert_uint_eq(t.rounds[0].pages_left, 0);
    ck_assert_uint_gt(res.cut_pages, BATCH_MAX_PAGES);
    check_image(&t, &res);
    check_running(&t);
    run_dispose(&t);
}
END_TEST

START_TEST(cut_after_time_limit)
{
    /* the time limit cuts with pages left even when rounds remain */
    struct hv_sim_config cfg = {.pages = 512};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_in_round[0] = 64;
    t.writes_in_round[1] = 64;
    t.lim.max_rounds = 100;
    t.lim.max_ms = 0;
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 1);
    ck_assert_uint_eq(t.rounds[0].pages_left, 64);
    ck_assert_uint_eq(res.cut_pages, 64);
    check_image(&t, &res);
    run_dispose(&t);
}
END_TEST

START_TEST(policy_abort)
{
    /* a policy that gives up ends the checkpoint with ECANCELED and never
     * pauses the guest */
    struct hv_sim_config cfg = {.pages = 256};
    struct precopy_result res;
    struct vmckpt_error err;
    struct hv_sim_stats st;
    struct run t;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.abort_policy = 1;
    errno = 0;
    ck_assert_int_eq(run_ckpt(&t, 1, 0, 0, 2, &res, &err), -1);
    ck_assert_int_eq(errno, ECANCELED);
    ck_assert_ptr_nonnull(strstr(err.text, "aborted"));
    hv_sim_stats(t.vm, &st);
    ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 0);
    ck_assert_int_eq(t.ms->ended, 0);
    check_running(&t);
    run_dispose(&t);
}
END_TEST

/* The writer runs freely (at random in a hot set, or at a rate) while the
 * engine copies: the image must still be the memory at the cut. */
static void image_under_writes(uint64_t rate, int lz4, unsigned streams)
{
    struct hv_sim_config cfg = {.pages = 2048,
                                .hot_first = 64,
                                .hot_pages = 1500,
                                .seed = 7,
                                .free_running = 1,
                                .rate = rate};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    struct hv_vm *vm2;
    int fd;

    run_init(&t, &cfg);
    t.lim.max_rounds = 4;
    ck_assert_msg(run_ckpt(&t, 1, 0, lz4, streams, &res, &err) == 0, "%s",
                  err.text);
    check_image(&t, &res);
    /* the state names the writes and the RAM of the cut */
    ck_assert_mem_eq(t.ms->state, "vmcksim1", 8);
    ck_assert_uint_eq(res.state_bytes, HV_SIM_STATE_LEN);
    /* and a second guest given the image accepts that state, but not
     * with one byte changed */
    cfg.free_running = 0;
    vm2 = hv_sim_create(&cfg, &err);
    ck_assert_ptr_nonnull(vm2);
    memcpy(hv_sim_ram(vm2), t.ms->image, cfg.pages * BATCH_PAGE);
    fd = memfd_create("state", 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, t.ms->state, t.ms->state_len),
                     (ssize_t)t.ms->state_len);
    ck_assert_msg(hv_sim_ops.load_state(vm2, fd, &err) == 0, "%s", err.text);
    hv_sim_ram(vm2)[5 * BATCH_PAGE + 17] ^= 1;
    ck_assert_int_eq(hv_sim_ops.load_state(vm2, fd, &err), -1);
    close(fd);
    hv_sim_ops.vm_release(vm2);
    run_dispose(&t);
}

START_TEST(image_is_memory_at_cut)
{
    /* with the guest writing all the while, one stream and several, with
     * and without LZ4, the image equals the memory at the cut */
    image_under_writes(0, 0, 1);
    image_under_writes(0, 1, 3);
    image_under_writes(200000, 1, 2);
}
END_TEST

START_TEST(stop_and_save)
{
    /* stop-and-save pauses first and copies everything paused: the image
     * is the memory at the pause, sent in one round, zero pages skipped */
    struct hv_sim_config cfg = {
        .pages = 1024, .hot_first = 512, .hot_pages = 512, .free_running = 1};
    uint8_t page[BATCH_PAGE];
    struct precopy_result res;
    struct vmckpt_error err;
    struct hv_sim_stats st;
    struct run t;
    uint64_t p, nonzero = 0;

    run_init(&t, &cfg);
    /* the low half by hand, every third page left zero; the writer
     * keeps to the high half */
    for (p = 0; p < 512; p++) {
        if (p % 3 == 0)
            continue;
        pattern(page, p);
        hv_sim_write(t.vm, p, page);
    }
    ck_assert_msg(run_ckpt(&t, 1, 1, 0, 2, &res, &err) == 0, "%s", err.text);
    check_image(&t, &res);
    for (p = 0; p < t.npages; p++)
        nonzero += !batch_page_is_zero(t.snap + p * BATCH_PAGE);
    ck_assert_uint_eq(res.pages, nonzero);
    ck_assert_uint_eq(res.cut_pages, 0);
    ck_assert_uint_eq(t.ms->rounds_seen, 1);
    hv_sim_stats(t.vm, &st);
    ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 1);
    ck_assert_uint_eq(st.calls[HV_SIM_RESUME], 1);
    ck_assert_int_eq(st.paused, 0);
    run_dispose(&t);
}
END_TEST

START_TEST(cut_now_mid_round)
{
    /* cut_now ends a round between batches; what it did not send is
     * copied while paused, every page exactly once in all */
    struct hv_sim_config cfg = {.pages = 2048};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    uint64_t p;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.cut_after_batches = 1;
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 1);
    ck_assert_uint_eq(t.rounds[0].pages_sent, BATCH_MAX_PAGES);
    ck_assert_uint_eq(res.cut_pages, 2048 - BATCH_MAX_PAGES);
    for (p = 0; p < t.npages; p++)
        ck_assert_uint_eq(mem_sink_sent(t.ms, 0, p) + mem_sink_sent(t.ms, 1, p),
                          1);
    check_image(&t, &res);
    run_dispose(&t);
}
END_TEST

START_TEST(zero_pages)
{
    /* zero pages: round 0 of a full epoch skips them, later rounds flag
     * them (no data) */
    struct hv_sim_config cfg = {.pages = 1024};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    uint64_t p;

    run_init(&t, &cfg);
    prefill(&t, 4); /* 256 zero pages */
    t.ms->round_start = NULL;
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(t.rounds[0].pages_sent, 768);
    for (p = 0; p < t.npages; p += 4)
        ck_assert_uint_eq(mem_sink_sent(t.ms, 0, p), 0);
    ck_assert_uint_eq(t.ms->zero_pages, 0);
    check_image(&t, &res);

    /* pages written to zero since: flagged, with no data */
    mem_sink_epoch(t.ms);
    t.cuts = 0;
    hv_sim_write(t.vm, 1, NULL);
    hv_sim_write(t.vm, 2, NULL);
    hv_sim_write(t.vm, 8, NULL); /* zero already: still sent, as zero */
    ck_assert_msg(run_ckpt(&t, 0, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(t.ms->pages, 3);
    ck_assert_uint_eq(t.ms->zero_pages, 3);
    ck_assert_uint_eq(t.ms->data_pages, 0);
    ck_assert_uint_eq(res.raw_bytes, 0);
    check_image(&t, &res);
    run_dispose(&t);
}
END_TEST

START_TEST(incremental_epoch)
{
    /* an incremental checkpoint sends only what was written since the
     * cut before, and the two images together are the memory now */
    struct hv_sim_config cfg = {.pages = 1024};
    struct precopy_result res;
    struct vmckpt_error err;
    uint8_t page[BATCH_PAGE];
    struct run t;
    uint64_t p;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_in_round[0] = 50; /* pages 0..49, during round 0 */
    ck_assert_msg(run_ckpt(&t, 1, 0, 1, 2, &res, &err) == 0, "%s", err.text);
    check_image(&t, &res);
    ck_assert_uint_eq(res.rounds, 2);

    /* after the resume: pages 50..199 by the writer, two by hand */
    ck_assert_int_eq(hv_sim_writes(t.vm, 150, &err), 0);
    hv_sim_write(t.vm, 500, NULL);
    memset(page, 0xa5, sizeof(page));
    hv_sim_write(t.vm, 700, page);
    mem_sink_epoch(t.ms);
    memset(t.writes_in_round, 0, sizeof(t.writes_in_round));
    t.cuts = 0;
    ck_assert_msg(run_ckpt(&t, 0, 0, 1, 2, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 1);
    ck_assert_uint_eq(res.pages, 152);
    for (p = 0; p < t.npages; p++)
        ck_assert_uint_eq(mem_sink_sent(t.ms, 0, p),
                          (p >= 50 && p < 200) || p == 500 || p == 700);
    ck_assert_uint_eq(t.ms->zero_pages, 1);
    check_image(&t, &res);
    ck_assert_mem_eq(t.ms->image + 700 * BATCH_PAGE, page, BATCH_PAGE);
    run_dispose(&t);
}
END_TEST

START_TEST(lanes)
{
    /* with four streams each page travels once per round, always on the
     * lane of its 4 MiB chunk, and every lane carries its share */
    static const uint64_t lane_pages[4] = {3072, 3072, 3072, 2476};
    struct hv_sim_config cfg = {.pages = 8192};
    struct precopy_result res;
    struct vmckpt_error err;
    struct run t;
    unsigned i;
    uint64_t p;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_in_round[0] = 3000; /* chunks 0-2 */
    t.writes_in_round[1] = 500;  /* pages 3000..3499: chunks 2-3 */
    t.lim.cut_pages = 1000;
    ck_assert_msg(run_ckpt(&t, 1, 0, 1, 4, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.rounds, 2);
    ck_assert_uint_eq(res.cut_pages, 500);
    for (p = 0; p < t.npages; p++) {
        ck_assert_uint_eq(mem_sink_sent(t.ms, 0, p), 1);
        ck_assert_uint_eq(mem_sink_sent(t.ms, 1, p), p < 3000);
        ck_assert_uint_eq(mem_sink_sent(t.ms, 2, p), p >= 3000 && p < 3500);
        ck_assert_int_eq(t.ms->lane_of[p], (int)((p >> 10) % 4));
    }
    /* round 0: 2048 each; round 1: 0-2999 (1024, 1024, 952); the cut:
     * 3000-3499 (72 on lane 2, 428 on lane 3) */
    for (i = 0; i < 4; i++)
        ck_assert_uint_eq(t.ms->lane_pages[i], lane_pages[i]);
    check_image(&t, &res);
    run_dispose(&t);
}
END_TEST

/* on_lane_start: each lane's thread pins itself to a CPU of its own (as
 * agent/ckpt.c does through lib/topo); its batches must then come from
 * that thread, running on that CPU only. */
static struct lane_check {
    struct precopy_sink inner;
    pthread_t caller, thread[PRECOPY_MAX_STREAMS];
    int cpu[PRECOPY_MAX_STREAMS];
    unsigned started[PRECOPY_MAX_STREAMS];
    unsigned bad; /* batches from another thread or CPU */
} lc;

static void lane_started(void *arg, unsigned lane)
{
    cpu_set_t cpus;

    (void)arg;
    __atomic_add_fetch(&lc.started[lane], 1, __ATOMIC_RELAXED);
    lc.thread[lane] = pthread_self();
    CPU_ZERO(&cpus);
    CPU_SET(lc.cpu[lane], &cpus);
    if (sched_setaffinity(0, sizeof(cpus), &cpus) < 0)
        __atomic_add_fetch(&lc.bad, 1, __ATOMIC_RELAXED);
}

static int lane_batch(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                      struct vmckpt_error *err)
{
    cpu_set_t cpus;

    (void)arg;
    if (!pthread_equal(pthread_self(), lc.thread[lane]) ||
        sched_getaffinity(0, sizeof(cpus), &cpus) < 0 ||
        CPU_COUNT(&cpus) != 1 || !CPU_ISSET(lc.cpu[lane], &cpus))
        __atomic_add_fetch(&lc.bad, 1, __ATOMIC_RELAXED);
    return lc.inner.batch(lc.inner.arg, lane, msg, err);
}

START_TEST(lanes_start_pinned)
{
    struct hv_sim_config cfg = {.pages = 8192};
    struct precopy_sink sink;
    struct precopy_result res;
    struct vmckpt_error err;
    cpu_set_t mine;
    struct run t;
    int i, ncpu = 0, cpus[CPU_SETSIZE];

    ck_assert_int_eq(sched_getaffinity(0, sizeof(mine), &mine), 0);
    for (i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &mine))
            cpus[ncpu++] = i;
    memset(&lc, 0, sizeof(lc));
    for (i = 0; i < 4; i++)
        lc.cpu[i] = cpus[ncpu - 1 - i % ncpu];
    lc.caller = pthread_self();
    run_init(&t, &cfg);
    prefill(&t, 0);
    lc.inner = t.ms->sink;
    sink = t.ms->sink;
    sink.batch = lane_batch;
    t.pol.on_lane_start = lane_started;
    ck_assert_msg(precopy_checkpoint(t.ops, t.vm, 1, 0, 1, 4, &sink, &t.pol,
                                     &res, &err) == 0,
                  "%s", err.text);
    for (i = 0; i < 4; i++)
        ck_assert_uint_eq(lc.started[i], 1);
    ck_assert(pthread_equal(lc.thread[0], lc.caller));
    for (i = 1; i < 4; i++)
        ck_assert(!pthread_equal(lc.thread[i], lc.caller));
    ck_assert_uint_eq(lc.bad, 0);
    for (i = 0; i < 4; i++)
        ck_assert_uint_gt(t.ms->lane_pages[i], 0);
    check_image(&t, &res);
    run_dispose(&t);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(mine), &mine), 0);
}
END_TEST

START_TEST(streams_out_of_range)
{
    /* 0 streams or more than PRECOPY_MAX_STREAMS: EINVAL, guest untouched */
    struct hv_sim_config cfg = {.pages = 64};
    struct precopy_result res;
    struct vmckpt_error err;
    struct hv_sim_stats st;
    struct run t;

    run_init(&t, &cfg);
    errno = 0;
    ck_assert_int_eq(run_ckpt(&t, 1, 0, 0, 0, &res, &err), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(run_ckpt(&t, 1, 0, 0, PRECOPY_MAX_STREAMS + 1, &res, &err),
                     -1);
    ck_assert_int_eq(errno, EINVAL);
    hv_sim_stats(t.vm, &st);
    ck_assert_uint_eq(st.calls[HV_SIM_HARVEST], 0);
    ck_assert_uint_eq(t.ms->batches, 0);
    run_dispose(&t);
}
END_TEST

/* Run a checkpoint expected to fail with 'text' in its error; the guest
 * must be running afterwards. */
static void expect_failure(struct run *t, unsigned streams, const char *text)
{
    struct precopy_result res;
    struct vmckpt_error err;

    ck_assert_int_eq(run_ckpt(t, 1, 0, 1, streams, &res, &err), -1);
    ck_assert_msg(strstr(err.text, text) != NULL, "error '%s', not '%s'",
                  err.text, text);
    ck_assert_int_eq(t->ms->ended, 0);
    check_running(t);
}

START_TEST(sink_fails_mid_round)
{
    /* the sink failing mid-round (one lane or four) or in the drain
     * after the resume ends the checkpoint; the guest runs on */
    struct hv_sim_config cfg = {.pages = 8192};
    struct hv_sim_stats st;
    struct run t;
    unsigned streams;

    for (streams = 1; streams <= 4; streams += 3) {
        run_init(&t, &cfg);
        prefill(&t, 0);
        t.ms->fail_batch = 5;
        expect_failure(&t, streams, "simulated sink failure at batch 5");
        hv_sim_stats(t.vm, &st);
        ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 0);
        ck_assert_int_eq(t.cuts, 0);
        run_dispose(&t);
    }
    /* 32 batches in round 0; round 1 (the drain) fails on its first */
    run_init(&t, &cfg);
    prefill(&t, 0);
    t.writes_in_round[0] = 10;
    t.lim.cut_pages = 100;
    t.ms->fail_batch = 33;
    expect_failure(&t, 1, "simulated sink failure at batch 33");
    ck_assert_int_eq(t.cuts, 1);
    hv_sim_stats(t.vm, &st);
    ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 1);
    run_dispose(&t);
}
END_TEST

START_TEST(cut_fails)
{
    /* on_cut failing (the job's cut did not happen): the guest is
     * resumed and the stream never ends */
    struct hv_sim_config cfg = {.pages = 512};
    struct hv_sim_stats st;
    struct run t;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.fail_cut = 1;
    expect_failure(&t, 2, "the job's cut failed");
    hv_sim_stats(t.vm, &st);
    ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 1);
    ck_assert_uint_eq(st.calls[HV_SIM_RESUME], 1);
    ck_assert_uint_eq(t.ms->state_len, 0);
    run_dispose(&t);
}
END_TEST

START_TEST(backend_fails)
{
    /* pause, the harvest at the cut, save_state or resume failing: an
     * error, and the guest left running */
    static const struct {
        enum hv_sim_hook hook;
        unsigned skip;
        const char *text;
        int cuts; /* on_cut reached */
    } cases[] = {
        {HV_SIM_PAUSE, 0, "simulated pause failure", 0},
        {HV_SIM_HARVEST, 0, "simulated harvest failure", 0}, /* the first */
        {HV_SIM_HARVEST, 2, "simulated harvest failure", 0}, /* at the cut */
        {HV_SIM_SAVE_STATE, 0, "simulated save_state failure", 0},
        {HV_SIM_RESUME, 0, "simulated resume failure", 1}, /* after on_cut */
    };
    struct hv_sim_config cfg = {.pages = 512};
    struct hv_sim_stats st;
    struct run t;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_init(&t, &cfg);
        prefill(&t, 0);
        hv_sim_fail(t.vm, cases[i].hook, cases[i].skip);
        expect_failure(&t, 1, cases[i].text);
        hv_sim_stats(t.vm, &st);
        ck_assert_uint_eq(st.failed[cases[i].hook], 1);
        ck_assert_int_eq(t.cuts, cases[i].cuts);
        run_dispose(&t);
    }
}
END_TEST

START_TEST(on_paused_order)
{
    /* on_paused runs once, live and stop-and-save, with the guest paused,
     * after the last harvest and staging (stop-and-save: after all its
     * memory), before save_state and on_cut; stop_us, paused_hook_us,
     * state_us and resume_us measure the pause op, the hook, the state's
     * save and the resume, within pause_us with the cut's harvest and
     * staging */
    struct hv_ops slow;
    struct hv_sim_config cfg = {.pages = 1024};
    struct precopy_result res;
    struct vmckpt_error err;
    struct hv_sim_stats st;
    struct run t;
    int sas;

    for (sas = 0; sas <= 1; sas++) {
        timed_ops_get(&slow);
        run_init(&t, &cfg);
        prefill(&t, 0);
        t.ops = &slow;
        t.pol.on_paused = run_on_paused;
        if (!sas) { /* a paused guest cannot write */
            t.writes_in_round[0] = 100;
            t.writes_after_round[1] = 20; /* found by the cut's harvest */
        }
        t.lim.cut_pages = 50;
        ck_assert_msg(run_ckpt(&t, 1, sas, 0, 2, &res, &err) == 0, "%s",
                      err.text);
        check_image(&t, &res);
        check_running(&t);
        hv_sim_stats(t.vm, &st);
        ck_assert_int_eq(t.paused_calls, 1);
        ck_assert_int_eq(t.at_paused.paused, 1);
        ck_assert_uint_eq(t.at_paused.calls[HV_SIM_PAUSE], 1);
        ck_assert_uint_eq(t.at_paused.calls[HV_SIM_RESUME], 0);
        ck_assert_uint_eq(t.at_paused.calls[HV_SIM_SAVE_STATE], 0);
        ck_assert_uint_eq(st.calls[HV_SIM_SAVE_STATE], 1);
        ck_assert_int_eq(t.cuts_at_paused, 0);
        /* no harvest after it: the cut's came before */
        ck_assert_uint_eq(t.at_paused.calls[HV_SIM_HARVEST],
                          st.calls[HV_SIM_HARVEST]);
        /* the staged pages not sent yet; stop-and-save sent all */
        ck_assert_uint_eq(res.cut_pages, sas ? 0 : 20);
        ck_assert_uint_eq(t.sent_at_paused, res.pages - res.cut_pages);
        ck_assert_uint_ge(res.stop_us, 3000);
        ck_assert_uint_ge(res.paused_hook_us, 2000);
        /* live: state_ready before the pause, on save_state's fd */
        ck_assert_int_eq(timed_notes.ready_paused, sas ? -1 : 0);
        ck_assert_int_eq(timed_notes.ready_same, !sas);
        ck_assert_uint_ge(res.state_us, 2000);
        ck_assert_uint_ge(res.resume_us, 1000);
        /* pre-copy: live until the pause request (state_ready's 2 ms in
         * it), none for stop-and-save */
        if (sas)
            ck_assert_uint_eq(res.precopy_ms, 0);
        else
            ck_assert_uint_ge(res.precopy_ms, 2);
        ck_assert_uint_le(res.precopy_ms, res.total_ms);
        ck_assert_uint_le(res.stop_us + res.paused_hook_us + res.harvest_us +
                              res.stage_us + res.state_us + res.resume_us,
                          res.pause_us);
        run_dispose(&t);
    }
    /* without the hook: none measured */
    run_init(&t, &cfg);
    prefill(&t, 0);
    ck_assert_msg(run_ckpt(&t, 1, 0, 0, 1, &res, &err) == 0, "%s", err.text);
    ck_assert_uint_eq(res.paused_hook_us, 0);
    ck_assert_uint_le(res.stop_us, res.pause_us);
    run_dispose(&t);
}
END_TEST

START_TEST(on_paused_fails)
{
    /* on_paused failing, live or stop-and-save, fails the checkpoint with
     * its error: no state saved, no on_cut, the stream never ends, the
     * guest resumed */
    struct hv_sim_config cfg = {.pages = 512};
    struct precopy_result res;
    struct vmckpt_error err;
    struct hv_sim_stats st;
    struct run t;
    int sas;

    for (sas = 0; sas <= 1; sas++) {
        run_init(&t, &cfg);
        prefill(&t, 0);
        t.pol.on_paused = run_on_paused;
        t.fail_paused = 1;
        errno = 0;
        ck_assert_int_eq(run_ckpt(&t, 1, sas, 0, 2, &res, &err), -1);
        ck_assert_int_eq(errno, EBUSY);
        ck_assert_str_eq(err.text, "the disks' snapshot failed");
        ck_assert_int_eq(t.paused_calls, 1);
        ck_assert_int_eq(t.cuts, 0);
        ck_assert_int_eq(t.ms->ended, 0);
        ck_assert_uint_eq(t.ms->state_len, 0);
        hv_sim_stats(t.vm, &st);
        ck_assert_uint_eq(st.calls[HV_SIM_SAVE_STATE], 0);
        ck_assert_uint_eq(st.calls[HV_SIM_PAUSE], 1);
        ck_assert_uint_eq(st.calls[HV_SIM_RESUME], 1);
        check_running(&t);
        run_dispose(&t);
    }
}
END_TEST

START_TEST(sink_end_fails)
{
    /* the state or the end refused by the sink: an error after the
     * resume, the guest running */
    struct hv_sim_config cfg = {.pages = 256};
    struct run t;

    run_init(&t, &cfg);
    prefill(&t, 0);
    t.ms->fail_state = 1;
    expect_failure(&t, 1, "simulated sink failure at the state");
    run_dispose(&t);
    run_init(&t, &cfg);
    prefill(&t, 0);
    t.ms->fail_end = 1;
    expect_failure(&t, 3, "simulated sink failure at the end");
    ck_assert_uint_eq(t.ms->state_len, HV_SIM_STATE_LEN);
    run_dispose(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limits_decide);
    tcase_add_test(tc, rounds_send_what_was_written);
    tcase_add_test(tc, cut_after_round_limit);
    tcase_add_test(tc, staging_grows_while_paused);
    tcase_add_test(tc, cut_after_time_limit);
    tcase_add_test(tc, policy_abort);
    tcase_add_test(tc, image_is_memory_at_cut);
    tcase_add_test(tc, stop_and_save);
    tcase_add_test(tc, cut_now_mid_round);
    tcase_add_test(tc, zero_pages);
    tcase_add_test(tc, incremental_epoch);
    tcase_add_test(tc, lanes);
    tcase_add_test(tc, lanes_start_pinned);
    tcase_add_test(tc, streams_out_of_range);
    tcase_add_test(tc, sink_fails_mid_round);
    tcase_add_test(tc, cut_fails);
    tcase_add_test(tc, backend_fails);
    tcase_add_test(tc, on_paused_order);
    tcase_add_test(tc, on_paused_fails);
    tcase_add_test(tc, sink_end_fails);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
