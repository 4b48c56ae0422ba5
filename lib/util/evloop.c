/* SPDX-License-Identifier: GPL-2.0-or-later */
/* epoll(7) event loop with timers and signalfd signals. A coordinator
 * watches one connection per host: each watcher is registered once (and
 * changed when its events do), so an iteration costs what is ready, not
 * what is watched. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "evloop.h"

#define MAX_SIGNALS 8
/* events taken from the kernel per epoll_wait */
#define MAX_EVENTS 256

struct sig_handler {
    int signo;
    ev_signal_cb cb;
    void *arg;
};

/*
 * Watchers live in ios[], at the slot the kernel's event carries. A slot
 * freed by ev_io_stop is reused only after the events of the current
 * round are dispatched (freed[] then joins spare[]), so an event never
 * reaches a watcher started after it was taken from the kernel.
 */
struct evloop {
    int epfd;
    struct ev_io **ios;
    size_t nios, capios;
    int *spare, *freed; /* slots free now; freed this round */
    size_t nspare, nfreed;
    struct ev_timer *timers;
    int stop;
    int sigfd;
    sigset_t sigmask;
    struct sig_handler sigs[MAX_SIGNALS];
    int nsigs;
    struct ev_io sigio;
};

struct evloop *evloop_create(void)
{
    struct evloop *loop = calloc(1, sizeof(*loop));

    if (loop == NULL)
        return NULL;
    loop->sigfd = -1;
    sigemptyset(&loop->sigmask);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    return loop;
}

void evloop_destroy(struct evloop *loop)
{
    int saved = errno;

    if (loop == NULL)
        return;
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    close(loop->epfd);
    free(loop->ios);
    free(loop->spare);
    free(loop->freed);
    free(loop);
    errno = saved;
}

void evloop_stop(struct evloop *loop)
{
    loop->stop = 1;
}

void ev_io_init(struct ev_io *io, int fd, short events, ev_io_cb cb, void *arg)
{
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->arg = arg;
    io->slot = -1;
}

/* Room for one more slot in ios[], spare[] and freed[]: 0 or -1. */
static int grow(struct evloop *loop)
{
    size_t cap = loop->capios ? loop->capios * 2 : 16;
    struct ev_io **n = realloc(loop->ios, cap * sizeof(*n));
    int *sp, *fr;

    if (n == NULL)
        return -1;
    loop->ios = n;
    sp = realloc(loop->spare, cap * sizeof(*sp));
    if (sp == NULL)
        return -1;
    loop->spare = sp;
    fr = realloc(loop->freed, cap * sizeof(*fr));
    if (fr == NULL)
        return -1;
    loop->freed = fr;
    loop->capios = cap;
    return 0;
}

int ev_io_start(struct evloop *loop, struct ev_io *io)
{
    struct epoll_event ev;
    int slot;

    if (io->slot >= 0)
        return 0;
    if (loop->nspare > 0) {
        slot = loop->spare[--loop->nspare];
    } else {
        if (loop->nios == loop->capios && grow(loop) < 0)
            return -1;
        slot = (int)loop->nios++;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = (uint32_t)io->events;
    ev.data.u64 = (uint64_t)slot;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0) {
        loop->ios[slot] = NULL;
        loop->spare[loop->nspare++] = slot;
        return -1;
    }
    io->slot = slot;
    loop->ios[slot] = io;
    return 0;
}

void ev_io_set_events(struct evloop *loop, struct ev_io *io, short events)
{
    struct epoll_event ev;

    if (io->events == events)
        return;
    io->events = events;
    if (io->slot < 0)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = (uint32_t)events;
    ev.data.u64 = (uint64_t)io->slot;
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void ev_io_stop(struct evloop *loop, struct ev_io *io)
{
    if (io->slot < 0)
        return;
    /* callers stop a watcher before closing its descriptor */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    loop->ios[io->slot] = NULL;
    loop->freed[loop->nfreed++] = io->slot;
    io->slot = -1;
}

void ev_timer_init(struct ev_timer *t, ev_timer_cb cb, void *arg)
{
    memset(t, 0, sizeof(*t));
    t->cb = cb;
    t->arg = arg;
}

void ev_timer_stop(struct evloop *loop, struct ev_timer *t)
{
    struct ev_timer **pp;

    if (!t->armed)
        return;
    for (pp = &loop->timers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    t->armed = 0;
    t->next = NULL;
}

void ev_timer_start(struct evloop *loop, struct ev_timer *t, uint64_t delay_ms)
{
    struct ev_timer **pp;

    ev_timer_stop(loop, t);
    t->due_ms = clock_mono_ms() + delay_ms;
    /* in order of due time (after those due at the same time), so that
     * the soonest is at the head */
    for (pp = &loop->timers; *pp != NULL && (*pp)->due_ms <= t->due_ms;
         pp = &(*pp)->next)
        ;
    t->next = *pp;
    *pp = t;
    t->armed = 1;
}

static void signal_ready(struct evloop *loop, struct ev_io *io, int revents)
{
    struct signalfd_siginfo si;
    int i;

    (void)revents;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        for (i = 0; i < loop->nsigs; i++) {
            if (loop->sigs[i].signo == (int)si.ssi_signo)
                loop->sigs[i].cb(loop, (int)si.ssi_signo, loop->sigs[i].arg);
        }
    }
}

int evloop_add_signal(struct evloop *loop, int signo, ev_signal_cb cb,
                      void *arg)
{
    if (loop->nsigs == MAX_SIGNALS) {
        errno = ENOSPC;
        return -1;
    }
    sigaddset(&loop->sigmask, signo);
    if (sigprocmask(SIG_BLOCK, &loop->sigmask, NULL) < 0)
        return -1;
    if (loop->sigfd >= 0) {
        /* widen the existing signalfd's mask */
        if (signalfd(loop->sigfd, &loop->sigmask, 0) < 0)
            return -1;
    } else {
        loop->sigfd = signalfd(-1, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (loop->sigfd < 0)
            return -1;
        ev_io_init(&loop->sigio, loop->sigfd, POLLIN, signal_ready, loop);
        if (ev_io_start(loop, &loop->sigio) < 0)
            return -1;
    }
    loop->sigs[loop->nsigs].signo = signo;
    loop->sigs[loop->nsigs].cb = cb;
    loop->sigs[loop->nsigs].arg = arg;
    loop->nsigs++;
    return 0;
}

/* Fire every timer that is due, soonest first; a callback may re-arm or
 * stop timers. */
static void run_timers(struct evloop *loop)
{
    uint64_t now = clock_mono_ms();

    while (loop->timers != NULL && loop->timers->due_ms <= now && !loop->stop) {
        struct ev_timer *t = loop->timers;

        ev_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

static int next_timeout(struct evloop *loop)
{
    uint64_t now = clock_mono_ms(), best;

    if (loop->timers == NULL)
        return -1;
    best = loop->timers->due_ms;
    if (best <= now)
        return 0;
    return best - now > 60000 ? 60000 : (int)(best - now);
}

int evloop_run(struct evloop *loop)
{
    struct epoll_event evs[MAX_EVENTS];

    loop->stop = 0;
    while (!loop->stop) {
        int i, n;

        n = epoll_wait(loop->epfd, evs, MAX_EVENTS, next_timeout(loop));
        if (n < 0 && errno != EINTR)
            return -1;
        for (i = 0; i < n && !loop->stop; i++) {
            struct ev_io *io = loop->ios[evs[i].data.u64];

            /* NULL if an earlier callback stopped it this round */
            if (io != NULL)
                io->cb(loop, io, (int)evs[i].events);
        }
        /* the slots stopped this round may serve new watchers now */
        while (loop->nfreed > 0)
            loop->spare[loop->nspare++] = loop->freed[--loop->nfreed];
        if (!loop->stop)
            run_timers(loop);
    }
    return 0;
}
