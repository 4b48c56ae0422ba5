/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An in-memory sink for the pre-copy engine (tests); see mem_sink.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire/batch.h"
#include "mem_sink.h"

static void record_page(struct mem_sink *ms, unsigned lane, uint32_t round,
                        const struct batch_view *v, size_t i)
{
    uint64_t p = v->pages[i];
    const uint8_t *data = batch_view_page(v, i);

    if (ms->lane_of[p] >= 0 && ms->lane_of[p] != (int8_t)lane)
        ms->errors++;
    ms->lane_of[p] = (int8_t)lane;
    ms->sent[(uint64_t)round * ms->npages + p]++;
    if (data == NULL) {
        memset(ms->image + p * BATCH_PAGE, 0, BATCH_PAGE);
        ms->zero_pages++;
    } else {
        memcpy(ms->image + p * BATCH_PAGE, data, BATCH_PAGE);
        ms->data_pages++;
    }
}

static int sink_batch(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                      struct vmckpt_error *err)
{
    struct mem_sink *ms = arg;
    struct batch_view v;
    int rc = 0;
    size_t i;

    pthread_mutex_lock(&ms->mu);
    if (++ms->batches == ms->fail_batch) {
        errno = EIO;
        rc = errprintf(err, "simulated sink failure at batch %llu",
                       (unsigned long long)ms->batches);
        goto out;
    }
    if (msg->round >= MEM_SINK_ROUNDS || lane >= PRECOPY_MAX_STREAMS ||
        batch_open(msg, ms->npages, ms->scratch, &v, err) < 0) {
        ms->errors++;
        goto out;
    }
    while (ms->rounds_seen <= msg->round) {
        if (ms->round_start != NULL)
            ms->round_start(ms->round_arg, ms->rounds_seen);
        ms->rounds_seen++;
    }
    for (i = 0; i < v.n; i++)
        record_page(ms, lane, msg->round, &v, i);
    ms->pages += v.n;
    ms->lane_pages[lane] += v.n;
out:
    pthread_mutex_unlock(&ms->mu);
    return rc;
}

static int sink_state(void *arg, uint64_t offset, const void *data, size_t len,
                      struct vmckpt_error *err)
{
    struct mem_sink *ms = arg;
    uint8_t *s;

    if (ms->fail_state) {
        errno = EIO;
        return errprintf(err, "simulated sink failure at the state");
    }
    if (offset != ms->state_len ||
        (s = realloc(ms->state, ms->state_len + len)) == NULL) {
        ms->errors++;
        return errprintf(err, "state out of order");
    }
    memcpy(s + offset, data, len);
    ms->state = s;
    ms->state_len += len;
    return 0;
}

static int sink_end(void *arg, const Vmckpt__StreamEnd *end, uint64_t *bytes,
                    struct vmckpt_error *err)
{
    struct mem_sink *ms = arg;

    if (ms->fail_end) {
        errno = EIO;
        return errprintf(err, "simulated sink failure at the end");
    }
    ms->ended = 1;
    ms->end = *end;
    *bytes = ms->npages * BATCH_PAGE;
    return 0;
}

struct mem_sink *mem_sink_create(uint64_t npages)
{
    struct mem_sink *ms = calloc(1, sizeof(*ms));

    if (ms == NULL)
        return NULL;
    ms->npages = npages;
    ms->image = calloc(npages, BATCH_PAGE);
    ms->sent = calloc(MEM_SINK_ROUNDS, npages);
    ms->lane_of = malloc(npages);
    ms->scratch = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
    pthread_mutex_init(&ms->mu, NULL);
    ms->sink.batch = sink_batch;
    ms->sink.state = sink_state;
    ms->sink.end = sink_end;
    ms->sink.arg = ms;
    if (ms->image == NULL || ms->sent == NULL || ms->lane_of == NULL ||
        ms->scratch == NULL) {
        mem_sink_destroy(ms);
        return NULL;
    }
    mem_sink_epoch(ms);
    return ms;
}

void mem_sink_destroy(struct mem_sink *ms)
{
    if (ms == NULL)
        return;
    pthread_mutex_destroy(&ms->mu);
    free(ms->image);
    free(ms->sent);
    free(ms->lane_of);
    free(ms->scratch);
    free(ms->state);
    free(ms);
}

void mem_sink_epoch(struct mem_sink *ms)
{
    memset(ms->sent, 0, (size_t)MEM_SINK_ROUNDS * ms->npages);
    memset(ms->lane_of, -1, ms->npages);
    ms->batches = ms->pages = ms->zero_pages = ms->data_pages = 0;
    memset(ms->lane_pages, 0, sizeof(ms->lane_pages));
    ms->errors = 0;
    ms->rounds_seen = 0;
    free(ms->state);
    ms->state = NULL;
    ms->state_len = 0;
    ms->ended = 0;
    memset(&ms->end, 0, sizeof(ms->end));
}

unsigned mem_sink_sent(const struct mem_sink *ms, unsigned round, uint64_t page)
{
    return round < MEM_SINK_ROUNDS
               ? ms->sent[(uint64_t)round * ms->npages + page]
               : 0;
}

uint64_t mem_sink_batches(struct mem_sink *ms)
{
    uint64_t n;

    pthread_mutex_lock(&ms->mu);
    n = ms->batches;
    pthread_mutex_unlock(&ms->mu);
    return n;
}
