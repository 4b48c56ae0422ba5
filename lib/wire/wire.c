/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Framing, the type table and envelope checks (docs/protocol.md). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/evloop.h"
#include "wire.h"

#define T(TYPE, name, desc)                                                    \
    {                                                                          \
        VMCKPT__MSG_TYPE__MSG_##TYPE, name, &vmckpt__##desc##__descriptor      \
    }

/* The one table from message type to payload descriptor. The envelope's
 * oneof field for a type has the type's number (rule in vmckpt.proto). */
static const struct wire_type wire_types[] = {
    T(HELLO, "hello", hello),
    T(CHALLENGE, "challenge", challenge),
    T(AUTH_PROOF, "auth-proof", auth_proof),
    T(AUTH_OK, "auth-ok", auth_ok),
    T(ERROR, "error", error),
    T(AGENT_REGISTER, "agent-register", agent_register),
    T(AGENT_REGISTERED, "agent-registered", agent_registered),
    T(HEARTBEAT, "heartbeat", heartbeat),
    T(HEARTBEAT_ACK, "heartbeat-ack", heartbeat_ack),
    T(AGENT_GOODBYE, "agent-goodbye", agent_goodbye),
    T(VM_EXITED, "vm-exited", vm_exited),
    T(LEASE_RESUME, "lease-resume", lease_resume),
    T(JOB_REGISTER, "job-register", job_register),
    T(JOB_REGISTERED, "job-registered", job_registered),
    T(JOB_DEREGISTER, "job-deregister", job_deregister),
    T(ACK, "ack", ack),
    T(VM_START, "vm-start", vm_start),
    T(VM_STOP, "vm-stop", vm_stop),
    T(JOB_CANCEL, "job-cancel", job_cancel),
    T(JOB_RESTART, "job-restart", job_restart),
    T(CKPT_BEGIN, "ckpt-begin", ckpt_begin),
    T(CKPT_STATS, "ckpt-stats", ckpt_stats),
    T(CKPT_ALIGN, "ckpt-align", ckpt_align),
    T(CKPT_CUT, "ckpt-cut", ckpt_cut),
    T(CKPT_CUT_DONE, "ckpt-cut-done", ckpt_cut_done),
    T(CKPT_RESUME, "ckpt-resume", ckpt_resume),
    T(CKPT_DURABLE, "ckpt-durable", ckpt_durable),
    T(CKPT_COMMIT, "ckpt-commit", ckpt_commit),
    T(CKPT_ABORT, "ckpt-abort", ckpt_abort),
    T(RESTORE, "restore", restore),
    T(RESTORE_DONE, "restore-done", restore_done),
    T(RANK_REGISTER, "rank-register", rank_register),
    T(RANK_REGISTERED, "rank-registered", rank_registered),
    T(RANK_READY, "rank-ready", rank_ready),
    T(RANK_RELEASE, "rank-release", rank_release),
    T(HOSTS_QUERY, "hosts-query", hosts_query),
    T(HOSTS_REPLY, "hosts-reply", hosts_reply),
    T(JOBS_QUERY, "jobs-query", jobs_query),
    T(JOBS_REPLY, "jobs-reply", jobs_reply),
    T(VMS_QUERY, "vms-query", vms_query),
    T(VMS_REPLY, "vms-reply", vms_reply),
    T(EPOCHS_QUERY, "epochs-query", epochs_query),
    T(EPOCHS_REPLY, "epochs-reply", epochs_reply),
    T(GC, "gc", gc),
    T(HOST_FENCE, "host-fence", host_fence),
    T(STREAM_OPEN, "stream-open", stream_open),
    T(PAGE_BATCH, "page-batch", page_batch),
    T(STATE_CHUNK, "state-chunk", state_chunk),
    T(STREAM_END, "stream-end", stream_end),
    T(STREAM_DURABLE, "stream-durable", stream_durable),
    T(STREAM_ABORT, "stream-abort", stream_abort),
    T(FETCH_EPOCH, "fetch-epoch", fetch_epoch),
    T(STORE_RETAIN, "store-retain", store_retain),
    T(DISK_CHUNK, "disk-chunk", disk_chunk),
};
#undef T

const struct wire_type *wire_type_lookup(int type)
{
    size_t i;

    for (i = 0; i < sizeof(wire_types) / sizeof(wire_types[0]); i++) {
        if ((int)wire_types[i].type == type)
            return &wire_types[i];
    }
    return NULL;
}

const char *wire_type_name(int type)
{
    static __thread char buf[24];
    const struct wire_type *t = wire_type_lookup(type);

    if (t != NULL)
        return t->name;
    snprintf(buf, sizeof(buf), "type %d", type);
    return buf;
}

/* The envelope's oneof field descriptor for 'type'. */
static const ProtobufCFieldDescriptor *payload_field(int type)
{
    if (type <= 0)
        return NULL;
    return protobuf_c_message_descriptor_get_field(
        &vmckpt__envelope__descriptor, (unsigned)type);
}

void *wire_payload(const Vmckpt__Envelope *env)
{
    const ProtobufCFieldDescriptor *f;

    if (env == NULL || env->payload_case == VMCKPT__ENVELOPE__PAYLOAD__NOT_SET)
        return NULL;
    f = payload_field((int)env->payload_case);
    if (f == NULL)
        return NULL;
    return *(void *const *)((const char *)env + f->offset);
}

int wire_encode(int type, uint64_t request_id, const void *payload,
                uint8_t **out, size_t *outlen, struct vmckpt_error *err)
{
    const struct wire_type *t = wire_type_lookup(type);
    const ProtobufCFieldDescriptor *f = payload_field(type);
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    const ProtobufCMessage *msg = payload;
    size_t n;
    uint8_t *buf;

    if (t == NULL || f == NULL || payload == NULL) {
        errno = EINVAL;
        return errprintf(err, "cannot encode %s: unknown type or no payload",
                         wire_type_name(type));
    }
    if (msg->descriptor != t->desc) {
        errno = EINVAL;
        return errprintf(err, "cannot encode %s: payload is a %s", t->name,
                         msg->descriptor->name);
    }
    env.version = WIRE_VERSION;
    env.type = (Vmckpt__MsgType)type;
    env.request_id = request_id;
    env.payload_case = (Vmckpt__Envelope__PayloadCase)type;
    *(const void **)((char *)&env + f->offset) = payload;
    n = protobuf_c_message_get_packed_size(&env.base);
    if (n > WIRE_MAX_FRAME_LIMIT) {
        errno = EMSGSIZE;
        return errprintf(err, "%s message of %zu bytes exceeds the limit",
                         t->name, n);
    }
    buf = malloc(n + 4);
    if (buf == NULL)
        return errprintf_errno(err, "encode %s", t->name);
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    protobuf_c_message_pack(&env.base, buf + 4);
    *out = buf;
    *outlen = n + 4;
    return 0;
}

void wire_free(Vmckpt__Envelope *env)
{
    int saved = errno;

    if (env != NULL)
        vmckpt__envelope__free_unpacked(env, NULL);
    errno = saved;
}

Vmckpt__Envelope *wire_decode(const uint8_t *buf, size_t len,
                              enum wire_fault *fault, struct vmckpt_error *err)
{
    Vmckpt__Envelope *env;

    *fault = WIRE_EPROTO;
    env = vmckpt__envelope__unpack(NULL, len, buf);
    if (env == NULL) {
        errno = EPROTO;
        errprintf(err,
                  "malformed envelope (%zu bytes are not a valid "
                  "protobuf Envelope)",
                  len);
        return NULL;
    }
    if (env->version != WIRE_VERSION) {
        *fault = WIRE_EVERSION;
        errno = EPROTO;
        errprintf(err,
                  "protocol version %u not supported (this side speaks "
                  "version %u)",
                  env->version, WIRE_VERSION);
        goto fail;
    }
    if (wire_type_lookup((int)env->type) == NULL) {
        *fault = WIRE_ETYPE;
        errno = EPROTO;
        errprintf(err, "unknown message type %d", (int)env->type);
        goto fail;
    }
    if ((int)env->payload_case != (int)env->type || wire_payload(env) == NULL) {
        errno = EPROTO;
        errprintf(err, "%s message carries %s", wire_type_name((int)env->type),
                  env->payload_case == VMCKPT__ENVELOPE__PAYLOAD__NOT_SET
                      ? "no payload"
                      : "the payload of another type");
        goto fail;
    }
    *fault = WIRE_OK;
    return env;
fail:
    wire_free(env);
    return NULL;
}

void wire_conn_init(struct wire_conn *c, int fd, size_t max_frame)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    if (max_frame == 0)
        max_frame = WIRE_MAX_FRAME_DEFAULT;
    c->max_frame =
        max_frame > WIRE_MAX_FRAME_LIMIT ? WIRE_MAX_FRAME_LIMIT : max_frame;
}

void wire_conn_dispose(struct wire_conn *c)
{
    int saved = errno;

    if (c->io != NULL && c->io->close != NULL)
        c->io->close(c->io_arg);
    c->io = NULL;
    c->io_arg = NULL;
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
    c->roff = c->rlen = c->rcap = c->woff = c->wlen = c->wcap = 0;
    errno = saved;
}

ssize_t wire_conn_fill(struct wire_conn *c, struct vmckpt_error *err)
{
    size_t want = c->io != NULL ? WIRE_IO_READ_MIN : 4096;
    ssize_t total = 0;

    for (;;) {
        ssize_t n;

        if (c->roff > 0 && c->rcap - c->roff - c->rlen < want) {
            /* frames taken from the front: what is left moves up once
             * per fill, not once per frame */
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
            c->roff = 0;
        }
        if (c->rcap - c->rlen < want) {
            /* never hold more than one maximal frame plus its prefix and a
             * read's worth of the next one */
            size_t cap = c->rcap ? c->rcap * 2 : 16384;
            size_t limit = c->max_frame + 4 + 65536;
            uint8_t *b;

            /* what a layer read ahead must come out before poll */
            if (wire_conn_input_pending(c))
                limit += WIRE_IO_AHEAD;
            if (cap > limit)
                cap = limit;
            if (cap <= c->rcap)
                return total; /* full: caller must consume frames first */
            b = realloc(c->rbuf, cap);
            if (b == NULL)
                return errprintf_errno(err, "read buffer");
            c->rbuf = b;
            c->rcap = cap;
        }
        n = c->io != NULL ? c->io->read(c->io_arg, c->rbuf + c->roff + c->rlen,
                                        c->rcap - c->roff - c->rlen)
                          : read(c->fd, c->rbuf + c->roff + c->rlen,
                                 c->rcap - c->roff - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            total += n;
            continue;
        }
        if (n == 0) {
            c->eof = 1;
            errno = ECONNRESET;
            return errprintf(err, "connection closed by peer");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return total;
        c->eof = 1;
        if (errno == EPROTO && c->io != NULL && c->io->why != NULL) {
            c->failed = 1;
            return errprintf(err, "%s", c->io->why(c->io_arg));
        }
        return errprintf_errno(err, "read");
    }
}

int wire_conn_next_frame(struct wire_conn *c, const uint8_t **frame,
                         size_t *len, struct vmckpt_error *err)
{
    const uint8_t *p;
    uint32_t n;

    if (c->rlen < 4)
        return 0;
    p = c->rbuf + c->roff;
    n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
        p[3];
    if (n > c->max_frame) {
        errno = EMSGSIZE;
        return errprintf(err, "frame of %u bytes exceeds the maximum of %zu", n,
                         c->max_frame);
    }
    if (c->rlen < 4 + (size_t)n)
        return 0;
    /* consumed; the bytes stay where they are until the next fill */
    *frame = p + 4;
    *len = n;
    c->rlen -= 4 + (size_t)n;
    c->roff = c->rlen > 0 ? c->roff + 4 + (size_t)n : 0;
    return 1;
}

int wire_conn_next(struct wire_conn *c, Vmckpt__Envelope **env,
                   enum wire_fault *fault, struct vmckpt_error *err)
{
    const uint8_t *frame;
    size_t n;
    int rc;

    *fault = WIRE_OK;
    *env = NULL;
    rc = wire_conn_next_frame(c, &frame, &n, err);
    if (rc <= 0) {
        if (rc < 0)
            *fault = WIRE_EPROTO;
        return rc;
    }
    *env = wire_decode(frame, n, fault, err);
    return *env ? 1 : -1;
}

/* ---- a page batch read in place ---------------------------------------- */

int wire_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift;

    for (shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;

        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int wire_peek_batch(const uint8_t *frame, size_t len, uint64_t *request_id,
                    const uint8_t **batch, size_t *batch_len)
{
    const uint8_t *p = frame, *end = frame + len;
    uint64_t key, v, version = 0, type = 0;

    *batch = NULL;
    *request_id = 0;
    while (p < end) {
        if (wire_get_varint(&p, end, &key) < 0)
            return 0;
        if ((key & 7) == 0) {
            if (wire_get_varint(&p, end, &v) < 0)
                return 0;
            if (key >> 3 == 1)
                version = v;
            else if (key >> 3 == 2)
                type = v;
            else if (key >> 3 == 3)
                *request_id = v;
        } else if ((key & 7) == 2) {
            if (wire_get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
                return 0;
            if (key >> 3 != VMCKPT__ENVELOPE__PAYLOAD_PAGE_BATCH ||
                *batch != NULL)
                return 0; /* another payload: the full decoder's */
            *batch = p;
            *batch_len = (size_t)v;
            p += v;
        } else {
            return 0;
        }
    }
    return version == WIRE_VERSION &&
           type == VMCKPT__MSG_TYPE__MSG_PAGE_BATCH && *batch != NULL;
}

int wire_conn_send_raw(struct wire_conn *c, const void *buf, size_t len)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 4096;
        uint8_t *b;

        while (cap < c->wlen + len)
            cap *= 2;
        b = realloc(c->wbuf, cap);
        if (b == NULL)
            return -1;
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    return 0;
}

int wire_conn_send(struct wire_conn *c, int type, uint64_t request_id,
                   const void *payload, struct vmckpt_error *err)
{
    uint8_t *frame;
    size_t len;
    int rc;

    if (wire_encode(type, request_id, payload, &frame, &len, err) < 0)
        return -1;
    rc = wire_conn_send_raw(c, frame, len);
    free(frame);
    if (rc < 0)
        return errprintf_errno(err, "queue %s", wire_type_name(type));
    return 0;
}

int wire_conn_send_error(struct wire_conn *c, uint64_t request_id,
                         Vmckpt__ErrorCode code, const char *text)
{
    Vmckpt__Error e = VMCKPT__ERROR__INIT;

    e.code = code;
    e.text = (char *)text;
    return wire_conn_send(c, VMCKPT__MSG_TYPE__MSG_ERROR, request_id, &e, NULL);
}

int wire_conn_pending(const struct wire_conn *c)
{
    return c->wlen > c->woff || (c->io != NULL && c->io->waiting != NULL &&
                                 c->io->waiting(c->io_arg));
}

int wire_conn_input_pending(const struct wire_conn *c)
{
    return c->io != NULL && c->io->pending != NULL && !c->eof &&
           c->io->pending(c->io_arg);
}

int wire_conn_flush(struct wire_conn *c, struct vmckpt_error *err)
{
    while (c->woff < c->wlen) {
        ssize_t n = c->io != NULL ? c->io->write(c->io_arg, c->wbuf + c->woff,
                                                 c->wlen - c->woff)
                                  : send(c->fd, c->wbuf + c->woff,
                                         c->wlen - c->woff, MSG_NOSIGNAL);

        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EPROTO && c->io != NULL && c->io->why != NULL) {
            c->failed = 1;
            return errprintf(err, "%s", c->io->why(c->io_arg));
        }
        return errprintf_errno(err, "write");
    }
    c->woff = c->wlen = 0;
    if (c->io != NULL && c->io->flush != NULL) {
        int rc = c->io->flush(c->io_arg);

        if (rc < 0 && errno == EPROTO && c->io->why != NULL) {
            c->failed = 1;
            return errprintf(err, "%s", c->io->why(c->io_arg));
        }
        if (rc < 0)
            return errprintf_errno(err, "write");
        return rc;
    }
    return 1;
}

static int wait_fd(int fd, short events, uint64_t deadline, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int left = -1, rc;

    if (timeout_ms >= 0) {
        uint64_t now = clock_mono_ms();

        left = now >= deadline ? 0 : (int)(deadline - now);
    }
    do {
        rc = poll(&pfd, 1, left);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        errno = ETIMEDOUT;
    return rc > 0 ? 0 : -1;
}

int wire_conn_flush_wait(struct wire_conn *c, int timeout_ms,
                         struct vmckpt_error *err)
{
    uint64_t deadline =
        clock_mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);

    for (;;) {
        int rc = wire_conn_flush(c, err);

        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (wait_fd(c->fd, POLLOUT, deadline, timeout_ms) < 0)
            return errprintf_errno(err, "write");
    }
}

/* Wait for the next frame (raw: 'frame'/'len', or decoded into 'env'). */
static int recv_wait(struct wire_conn *c, Vmckpt__Envelope **env,
                     const uint8_t **frame, size_t *len, int timeout_ms,
                     struct vmckpt_error *err)
{
    uint64_t deadline =
        clock_mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    enum wire_fault fault;

    for (;;) {
        int rc = env != NULL ? wire_conn_next(c, env, &fault, err)
                             : wire_conn_next_frame(c, frame, len, err);

        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (c->eof) {
            errno = ECONNRESET;
            if (c->failed)
                return errprintf(err, "%s", c->io->why(c->io_arg));
            return errprintf(err, "connection closed by peer");
        }
        if (!wire_conn_input_pending(c) &&
            wait_fd(c->fd, POLLIN, deadline, timeout_ms) < 0) {
            if (errno == ETIMEDOUT)
                return errprintf(err, "no answer within %d ms", timeout_ms);
            return errprintf_errno(err, "poll");
        }
        /* on end of stream c->eof is set; a frame already buffered is
         * still delivered by the next wire_conn_next() */
        (void)wire_conn_fill(c, NULL);
    }
}

int wire_conn_recv_wait(struct wire_conn *c, Vmckpt__Envelope **env,
                        int timeout_ms, struct vmckpt_error *err)
{
    return recv_wait(c, env, NULL, NULL, timeout_ms, err);
}

int wire_conn_recv_frame_wait(struct wire_conn *c, const uint8_t **frame,
                              size_t *len, int timeout_ms,
                              struct vmckpt_error *err)
{
    return recv_wait(c, NULL, frame, len, timeout_ms, err);
}

int wire_pack(const void *msg, uint8_t **out, size_t *len,
              struct vmckpt_error *err)
{
    const ProtobufCMessage *m = msg;
    size_t n = protobuf_c_message_get_packed_size(m);

    *out = malloc(n ? n : 1);
    if (*out == NULL)
        return errprintf_errno(err, "pack %s", m->descriptor->name);
    *len = protobuf_c_message_pack(m, *out);
    return 0;
}

void *wire_copy(const void *msg)
{
    const ProtobufCMessage *m = msg;
    uint8_t *buf;
    size_t len;
    void *c;

    if (wire_pack(msg, &buf, &len, NULL) < 0)
        return NULL;
    c = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
    free(buf);
    return c;
}

void wire_free_message(void *msg)
{
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
}
