/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The outbox: how the agent's worker threads (checkpoints, restores,
 * retention) reach the event loop, which alone owns the coordinator link
 * and the guests' bookkeeping. An item is written to a pipe as a pointer;
 * the loop sends its frame, then runs its function. */
#ifndef VMCKPT_OUTBOX_H
#define VMCKPT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "lib/util/evloop.h"
#include "lib/wire/wire.h"

/* Hands an encoded frame to whoever sends it (the link); takes ownership
 * of 'frame'. Called in the loop. */
typedef void (*outbox_send_fn)(void *arg, uint8_t *frame, size_t len);
/* Work that must happen in the loop, or its clean-up when the loop is
 * gone before it ran. */
typedef void (*outbox_fn)(void *arg);

struct outbox {
    int pipe[2];
    struct ev_io io;
    struct evloop *loop;
    outbox_send_fn send;
    void *send_arg;
};

/* Set up the pipe and watch it in 'loop'; frames go to send(send_arg, ...).
 * Returns 0, or -1 with 'err'. */
int outbox_init(struct outbox *o, struct evloop *loop, outbox_send_fn send,
                void *send_arg, struct vmckpt_error *err);
/* Stop watching; items still queued are dropped (their 'drop' runs, their
 * frames are freed). */
void outbox_fini(struct outbox *o);

/* From any thread: have the loop run run(arg); if the outbox is torn down
 * first, drop(arg) runs instead (either may be NULL). If the item cannot
 * be queued, drop(arg) runs at once and -1 is returned. */
int outbox_run(struct outbox *o, outbox_fn run, outbox_fn drop, void *arg);
/* From any thread: encode and queue a message for the coordinator. */
void outbox_msg(struct outbox *o, int type, uint64_t id, const void *payload);
/* The same, and have the loop run run(arg) first, in the same turn: what
 * the message reports is in place before the loop can read an answer to
 * it. drop(arg) as for outbox_run(); if the message cannot be encoded,
 * run(arg) still runs. */
void outbox_msg_run(struct outbox *o, int type, uint64_t id,
                    const void *payload, outbox_fn run, outbox_fn drop,
                    void *arg);
/* Queue an Error reply to request 'id', or an Ack with 'text'. */
void outbox_error(struct outbox *o, uint64_t id, Vmckpt__ErrorCode code,
                  const char *text);
void outbox_ack(struct outbox *o, uint64_t id, const char *text);

#endif
