/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: arbitrary bytes arriving on a connection go through the
 * frame reader and envelope decoder, and the store's in-place reading of
 * page batches (wire_peek_batch, batch_decode, batch_open); nothing may
 * crash, leak or read out of bounds, and every refusal must come with an
 * error text. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire/batch.h"
#include "lib/wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[BATCH_MAX_PAGES * BATCH_PAGE];

/* A frame as the store reads a page batch in place. */
static void batch_in_place(const uint8_t *frame, size_t len)
{
    uint64_t pages[BATCH_MAX_PAGES], rid;
    struct vmckpt_error err;
    Vmckpt__PageBatch msg;
    struct batch_view v;
    const uint8_t *raw;
    size_t raw_len;

    if (!wire_peek_batch(frame, len, &rid, &raw, &raw_len)) {
        /* the bytes as a stored record */
        raw = frame;
        raw_len = len;
    } else if (raw < frame || raw + raw_len > frame + len) {
        abort();
    }
    err.text[0] = '\0';
    if (batch_decode(raw, raw_len, &msg, pages, &err) < 0) {
        if (err.text[0] == '\0')
            abort();
        return;
    }
    if (msg.n_pages > BATCH_MAX_PAGES ||
        (msg.data.len > 0 &&
         (msg.data.data < raw || msg.data.data + msg.data.len > raw + raw_len)))
        abort();
    err.text[0] = '\0';
    if (batch_open(&msg, 1u << 20, scratch, &v, &err) < 0) {
        if (err.text[0] == 0)
            abort();
        return;
    }
    /* a sealed view shows no contents */
    if (v.sealed && (v.data != NULL || batch_view_page(&v, 0) != NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_conn c;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    int rc;

    batch_in_place(data, size);
    err.text[0] = '\0';
    wire_conn_init(&c, -1, 4096);
    c.rbuf = malloc(size + 1);
    if (c.rbuf == NULL)
        return 0;
    memcpy(c.rbuf, data, size);
    c.rlen = size;
    c.rcap = size + 1;
    while ((rc = wire_conn_next(&c, &env, &fault, &err)) == 1) {
        /* a decoded envelope must carry the payload of its type */
        if (wire_payload(env) == NULL || wire_type_lookup(env->type) == NULL)
            abort();
        wire_free(env);
    }
    if (rc < 0 && (fault == WIRE_OK || err.text[0] == '\0'))
        abort();
    wire_conn_dispose(&c);
    return 0;
}
