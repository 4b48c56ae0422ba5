/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A small epoll(7) event loop for the daemons: file descriptor watchers
 * (events as poll(2) names them: POLLIN, POLLOUT), one-shot timers and
 * signals (through signalfd), all on one thread. */
#ifndef VMCKPT_EVLOOP_H
#define VMCKPT_EVLOOP_H

#include <stdint.h>

struct evloop;
struct ev_io;
struct ev_timer;

typedef void (*ev_io_cb)(struct evloop *loop, struct ev_io *io, int revents);
typedef void (*ev_timer_cb)(struct evloop *loop, struct ev_timer *t);
typedef void (*ev_signal_cb)(struct evloop *loop, int signo, void *arg);

/* Embedded in the caller's object; the loop keeps only a pointer to it, so
 * the object must stay alive until ev_io_stop(). */
struct ev_io {
    int fd;
    short events; /* POLLIN | POLLOUT */
    ev_io_cb cb;
    void *arg;
    int slot; /* index in the loop's table, -1 when stopped */
};

struct ev_timer {
    uint64_t due_ms; /* on the monotonic clock */
    ev_timer_cb cb;
    void *arg;
    struct ev_timer *next; /* loop's list of armed timers, soonest first */
    int armed;
};

/* Create a loop; NULL with errno on failure. */
struct evloop *evloop_create(void);
/* Destroy the loop; watchers are forgotten, not closed. NULL is fine. */
void evloop_destroy(struct evloop *loop);

/* Run until evloop_stop(); returns 0, or -1 with errno on a failure of
 * epoll_wait. */
int evloop_run(struct evloop *loop);
void evloop_stop(struct evloop *loop);

void ev_io_init(struct ev_io *io, int fd, short events, ev_io_cb cb, void *arg);
int ev_io_start(struct evloop *loop, struct ev_io *io);
/* Change the events watched; the watcher must be started. */
void ev_io_set_events(struct evloop *loop, struct ev_io *io, short events);
/* Stop watching; safe on a stopped watcher and from inside callbacks.
 * Stop a watcher before closing its descriptor; one watcher per
 * descriptor. */
void ev_io_stop(struct evloop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg);
/* Arm (or re-arm) the timer to fire once after 'delay_ms'. */
void ev_timer_start(struct evloop *loop, struct ev_timer *t, uint64_t delay_ms);
void ev_timer_stop(struct evloop *loop, struct ev_timer *t);

/* Deliver 'signo' through the loop instead of asynchronously. The signal is
 * blocked for the calling thread. Returns 0 or -1 with errno. */
int evloop_add_signal(struct evloop *loop, int signo, ev_signal_cb cb,
                      void *arg);

#endif
