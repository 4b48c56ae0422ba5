/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The pipe from the agent's worker threads to its event loop (outbox.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include "outbox.h"
#include "lib/util/log.h"

/* One item through the pipe (its pointer is what is written). */
struct item {
    uint8_t *frame; /* to send, or NULL */
    size_t len;
    outbox_fn run, drop; /* run before the frame is sent */
    void *arg;
};

static int post(struct outbox *o, struct item *it)
{
    if (write(o->pipe[1], &it, sizeof(it)) == (ssize_t)sizeof(it))
        return 0;
    log_errno("outbox");
    if (it->drop != NULL)
        it->drop(it->arg);
    free(it->frame);
    free(it);
    return -1;
}

/* Frames go out as they come; after an item that runs code in the loop
 * (a restore's finish starts a QEMU and loads its state), the loop turns
 * before the next one, so heartbeats and lease grants are not held up by
 * several such items in a row (the pipe stays readable). */
static void on_pipe(struct evloop *loop, struct ev_io *io, int revents)
{
    struct outbox *o = io->arg;
    struct item *it;

    (void)loop;
    (void)revents;
    while (read(o->pipe[0], &it, sizeof(it)) == (ssize_t)sizeof(it)) {
        int ran = it->run != NULL;

        if (ran)
            it->run(it->arg);
        if (it->frame != NULL)
            o->send(o->send_arg, it->frame, it->len);
        free(it);
        if (ran)
            break;
    }
}

int outbox_init(struct outbox *o, struct evloop *loop, outbox_send_fn send,
                void *send_arg, struct vmckpt_error *err)
{
    o->loop = loop;
    o->send = send;
    o->send_arg = send_arg;
    if (pipe2(o->pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return errprintf_errno(err, "outbox pipe");
    ev_io_init(&o->io, o->pipe[0], POLLIN, on_pipe, o);
    if (ev_io_start(loop, &o->io) < 0) {
        close(o->pipe[0]);
        close(o->pipe[1]);
        return errprintf_errno(err, "outbox pipe");
    }
    return 0;
}

void outbox_fini(struct outbox *o)
{
    struct item *it;

    ev_io_stop(o->loop, &o->io);
    /* what threads posted after the loop's last turn is dropped, not
     * leaked (the coordinator sees the link close) */
    while (read(o->pipe[0], &it, sizeof(it)) == (ssize_t)sizeof(it)) {
        if (it->drop != NULL)
            it->drop(it->arg);
        free(it->frame);
        free(it);
    }
    close(o->pipe[0]);
    close(o->pipe[1]);
}

int outbox_run(struct outbox *o, outbox_fn run, outbox_fn drop, void *arg)
{
    struct item *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        log_errno("outbox");
        if (drop != NULL)
            drop(arg);
        return -1;
    }
    it->run = run;
    it->drop = drop;
    it->arg = arg;
    return post(o, it);
}

void outbox_msg_run(struct outbox *o, int type, uint64_t id,
                    const void *payload, outbox_fn run, outbox_fn drop,
                    void *arg)
{
    struct item *it = calloc(1, sizeof(*it));
    struct vmckpt_error err;

    if (it == NULL) {
        log_errno("outbox");
        if (drop != NULL)
            drop(arg);
        return;
    }
    it->run = run;
    it->drop = drop;
    it->arg = arg;
    if (wire_encode(type, id, payload, &it->frame, &it->len, &err) < 0) {
        log_err("%s", err.text);
        it->frame = NULL;
        if (run == NULL) {
            free(it);
            return;
        }
    }
    (void)post(o, it);
}

void outbox_msg(struct outbox *o, int type, uint64_t id, const void *payload)
{
    outbox_msg_run(o, type, id, payload, NULL, NULL, NULL);
}

void outbox_error(struct outbox *o, uint64_t id, Vmckpt__ErrorCode code,
                  const char *text)
{
    Vmckpt__Error e = VMCKPT__ERROR__INIT;

    e.code = code;
    e.text = (char *)text;
    outbox_msg(o, VMCKPT__MSG_TYPE__MSG_ERROR, id, &e);
}

void outbox_ack(struct outbox *o, uint64_t id, const char *text)
{
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;

    ack.text = (char *)text;
    outbox_msg(o, VMCKPT__MSG_TYPE__MSG_ACK, id, &ack);
}
