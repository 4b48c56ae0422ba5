/* SPDX-License-Identifier: GPL-2.0-or-later */
/* poll(2) event loop with timers and signalfd signals. Tables are small
 * (a coordinator has one connection per host and console), so watchers
 * live in an array rebuilt into a pollfd set on each iteration. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "evloop.h"

#define MAX_SIGNALS 8

struct sig_handler {
    int signo;
    ev_signal_cb cb;
    void *arg;
};

struct evloop {
    struct ev_io **ios;
    size_t nios, capios;
    struct pollfd *pfds;
    size_t cappfds;
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
    return loop;
}

void evloop_destroy(struct evloop *loop)
{
    int saved = errno;

    if (loop == NULL)
        return;
    if (loop->sigfd >= 0)
        close(loop->sigfd);
    free(loop->ios);
    free(loop->pfds);
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

int ev_io_start(struct evloop *loop, struct ev_io *io)
{
    if (io->slot >= 0)
        return 0;
    if (loop->nios == loop->capios) {
        size_t cap = loop->capios ? loop->capios * 2 : 16;
        struct ev_io **n = realloc(loop->ios, cap * sizeof(*n));

        if (n == NULL)
            return -1;
        loop->ios = n;
        loop->capios = cap;
    }
    io->slot = (int)loop->nios;
    loop->ios[loop->nios++] = io;
    return 0;
}

void ev_io_set_events(struct evloop *loop, struct ev_io *io, short events)
{
    (void)loop;
    io->events = events;
}

void ev_io_stop(struct evloop *loop, struct ev_io *io)
{
    size_t i;

    if (io->slot < 0)
        return;
    i = (size_t)io->slot;
    /* Leave a hole; evloop_run compacts after dispatching, so a callback
     * may stop any watcher, itself included. */
    loop->ios[i] = NULL;
    io->slot = -1;
}

static void compact(struct evloop *loop)
{
    size_t i, j = 0;

    for (i = 0; i < loop->nios; i++) {
        if (loop->ios[i] == NULL)
            continue;
        loop->ios[j] = loop->ios[i];
        loop->ios[j]->slot = (int)j;
        j++;
    }
    loop->nios = j;
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
    ev_timer_stop(loop, t);
    t->due_ms = clock_mono_ms() + delay_ms;
    t->next = loop->timers;
    loop->timers = t;
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

/* Fire every timer that is due; a callback may re-arm or stop timers. */
static void run_timers(struct evloop *loop)
{
    uint64_t now = clock_mono_ms();
    int fired;

    do {
        struct ev_timer *t;

        fired = 0;
        for (t = loop->timers; t != NULL; t = t->next) {
            if (t->due_ms <= now) {
                ev_timer_stop(loop, t);
                t->cb(loop, t);
                fired = 1;
                break; /* the list may have changed */
            }
        }
    } while (fired && !loop->stop);
}

static int next_timeout(struct evloop *loop)
{
    uint64_t now = clock_mono_ms(), best = UINT64_MAX;
    struct ev_timer *t;

    for (t = loop->timers; t != NULL; t = t->next) {
        if (t->due_ms < best)
            best = t->due_ms;
    }
    if (best == UINT64_MAX)
        return -1;
    if (best <= now)
        return 0;
    return best - now > 60000 ? 60000 : (int)(best - now);
}

int evloop_run(struct evloop *loop)
{
    loop->stop = 0;
    while (!loop->stop) {
        size_t i, n;
        int rc;

        compact(loop);
        n = loop->nios;
        if (n > loop->cappfds) {
            struct pollfd *p = realloc(loop->pfds, n * sizeof(*p));

            if (p == NULL)
                return -1;
            loop->pfds = p;
            loop->cappfds = n;
        }
        for (i = 0; i < n; i++) {
            loop->pfds[i].fd = loop->ios[i]->fd;
            loop->pfds[i].events = loop->ios[i]->events;
            loop->pfds[i].revents = 0;
        }
        rc = poll(loop->pfds, n, next_timeout(loop));
        if (rc < 0 && errno != EINTR)
            return -1;
        for (i = 0; rc > 0 && i < n && !loop->stop; i++) {
            struct ev_io *io = loop->ios[i];

            /* io is NULL if an earlier callback stopped it this round */
            if (io == NULL || loop->pfds[i].revents == 0)
                continue;
            io->cb(loop, io, loop->pfds[i].revents);
        }
        if (!loop->stop)
            run_timers(loop);
    }
    return 0;
}
