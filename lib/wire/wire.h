/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The vmckpt wire: u32 big-endian length + one packed Envelope per frame
 * (docs/protocol.md). This module is the only user of the protobuf-c API;
 * the rest of the tree sees the generated message structs. */
#ifndef VMCKPT_WIRE_H
#define VMCKPT_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/vmckpt.pb-c.h"
#include "lib/util/error.h"

/* Protocol version carried in every envelope; a peer with another version
 * is refused with ERR_VERSION. */
#define WIRE_VERSION 1

/* TCP port of the coordinator when an address gives none. */
#define WIRE_DEFAULT_PORT 7470

/* Largest frame accepted by default (the length prefix excluded). */
#define WIRE_MAX_FRAME_DEFAULT (1u << 20)
/* Hard ceiling for any connection. */
#define WIRE_MAX_FRAME_LIMIT (64u << 20)
/* Most parallel streams of one VM's epoch (StreamOpen.parts). */
#define WIRE_MAX_STREAMS 8

/* One row of the type table: message type, its payload descriptor. */
struct wire_type {
    Vmckpt__MsgType type;
    const char *name;
    const ProtobufCMessageDescriptor *desc;
};

/* The row for 'type', or NULL if the type is unknown. */
const struct wire_type *wire_type_lookup(int type);
/* A printable name for any type number ("type 999" for unknown ones, in a
 * static buffer). */
const char *wire_type_name(int type);

/* Why a frame or envelope was refused; maps onto Vmckpt__ErrorCode. */
enum wire_fault {
    WIRE_OK = 0,
    WIRE_EPROTO = VMCKPT__ERROR_CODE__ERR_PROTOCOL,
    WIRE_EVERSION = VMCKPT__ERROR_CODE__ERR_VERSION,
    WIRE_ETYPE = VMCKPT__ERROR_CODE__ERR_UNKNOWN_TYPE,
};

/* Encode one frame (length prefix included) carrying 'payload', which must be
 * a message of the type's descriptor. *out is malloc'ed. 0 or -1. */
int wire_encode(int type, uint64_t request_id, const void *payload,
                uint8_t **out, size_t *outlen, struct vmckpt_error *err);

/* Decode the body of one frame (without the length prefix). Checks that the
 * bytes are a valid Envelope, that the version is WIRE_VERSION, that the type
 * is known and that the payload present is the type's. NULL with 'err' and
 * *fault set on failure. Free the result with wire_free(). */
Vmckpt__Envelope *wire_decode(const uint8_t *buf, size_t len,
                              enum wire_fault *fault, struct vmckpt_error *err);
void wire_free(Vmckpt__Envelope *env);

/* A layer under the frames (TLS, lib/wire/tls.h): read and write like
 * read(2) and send(2) (-1 with EAGAIN when it would block, 0 at the end of
 * the stream); 'why' says what failed when errno is EPROTO; 'close' frees
 * the layer (not the fd). */
struct wire_io {
    ssize_t (*read)(void *arg, void *buf, size_t len);
    ssize_t (*write)(void *arg, const void *buf, size_t len);
    const char *(*why)(void *arg);
    void (*close)(void *arg);
    /* optional: a layer that gathers what it was given before it sends
     * it. 'flush' sends what waits: 1 all sent, 0 the socket is full
     * (errno EAGAIN), -1 failed; 'waiting' is 1 while bytes wait. */
    int (*flush)(void *arg);
    int (*waiting)(void *arg);
    /* optional: 1 while the layer holds input read from the socket and
     * not yet handed out (a layer that reads ahead); the read buffer then
     * grows by up to WIRE_IO_AHEAD so that nothing stays there unseen by
     * poll */
    int (*pending)(void *arg);
};
#define WIRE_IO_AHEAD (320u << 10)

/* Free space a read through a layer needs: one whole TLS record's
 * plaintext, so that nothing read stays inside the layer unseen by poll. */
#define WIRE_IO_READ_MIN 16384

/* A connection's buffers. The fd is owned by the caller. */
struct wire_conn {
    int fd;
    const struct wire_io *io; /* NULL: the bytes go straight to fd */
    void *io_arg;
    size_t max_frame;
    uint8_t *rbuf;
    size_t roff, rlen, rcap; /* unread: rlen bytes from rbuf + roff */
    uint8_t *wbuf;
    size_t woff, wlen, wcap;
    int eof;
    int failed; /* the layer under the frames failed (eof is set too):
                 * c->io->why() says why */
};

void wire_conn_init(struct wire_conn *c, int fd, size_t max_frame);
/* Free the buffers (not the fd). Idempotent. */
void wire_conn_dispose(struct wire_conn *c);

/* Read what the socket has (non-blocking). Returns the number of bytes
 * read, 0 if none were available, -1 on error or end of stream (c->eof set,
 * errno ECONNRESET). */
ssize_t wire_conn_fill(struct wire_conn *c, struct vmckpt_error *err);

/* Take the next complete frame out of the read buffer: 1 and *env set, 0 if
 * more bytes are needed, -1 on a bad frame (oversized, undecodable, wrong
 * version, unknown type) with *fault and 'err' saying why. After -1 the
 * stream cannot be resynchronised: close it. */
int wire_conn_next(struct wire_conn *c, Vmckpt__Envelope **env,
                   enum wire_fault *fault, struct vmckpt_error *err);

/* Queue a message; call wire_conn_flush() to write it. 0 or -1. */
int wire_conn_send(struct wire_conn *c, int type, uint64_t request_id,
                   const void *payload, struct vmckpt_error *err);
/* Queue raw bytes (tests and relays). 0 or -1 with ENOMEM. */
int wire_conn_send_raw(struct wire_conn *c, const void *buf, size_t len);

/* Write what can be written now: 1 when the queue is empty, 0 if bytes are
 * still pending, -1 on a socket error. */
int wire_conn_flush(struct wire_conn *c, struct vmckpt_error *err);
int wire_conn_pending(const struct wire_conn *c);
/* 1 while the layer under the frames holds input it read ahead (poll
 * does not see it): fill again before waiting. */
int wire_conn_input_pending(const struct wire_conn *c);

/* Blocking helpers for clients: flush everything, or wait for the next
 * frame, within 'timeout_ms' (-1: no limit). -1 with errno ETIMEDOUT on
 * timeout. */
int wire_conn_flush_wait(struct wire_conn *c, int timeout_ms,
                         struct vmckpt_error *err);
int wire_conn_recv_wait(struct wire_conn *c, Vmckpt__Envelope **env,
                        int timeout_ms, struct vmckpt_error *err);

/* The payload pointer of a decoded envelope (NULL if none). */
void *wire_payload(const Vmckpt__Envelope *env);

/* Queue an Error message with 'code' and 'text'. */
int wire_conn_send_error(struct wire_conn *c, uint64_t request_id,
                         Vmckpt__ErrorCode code, const char *text);

/* The next frame as it came, not decoded: 1 with '*frame' pointing into
 * the connection's buffer (valid until the next call on 'c'), 0 if none
 * is complete yet, -1 with 'err' if it is too large. */
int wire_conn_next_frame(struct wire_conn *c, const uint8_t **frame,
                         size_t *len, struct vmckpt_error *err);
/* wire_conn_recv_wait() for a frame as it came. */
int wire_conn_recv_frame_wait(struct wire_conn *c, const uint8_t **frame,
                              size_t *len, int timeout_ms,
                              struct vmckpt_error *err);
/* 1 if 'frame' is an envelope of this version carrying a PageBatch and
 * nothing else: its request id and the packed batch's bytes (in 'frame').
 * 0 for anything else, valid or not: wire_decode() is its judge. */
int wire_peek_batch(const uint8_t *frame, size_t len, uint64_t *request_id,
                    const uint8_t **batch, size_t *batch_len);
/* A protobuf varint at *p (moved past it, below 'end'); -1 if cut short
 * or longer than 10 bytes. */
int wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Records outside envelopes (the image store keeps page batches as their
 * own packed encoding, read back by batch_decode()): pack any message
 * into a malloc'ed buffer. */
int wire_pack(const void *msg, uint8_t **out, size_t *len,
              struct vmckpt_error *err);

/* A deep copy of any message (NULL on failure); free it with
 * wire_free_message(). */
void *wire_copy(const void *msg);
void wire_free_message(void *msg);

#endif
