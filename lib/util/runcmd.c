/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Site commands run from the event loop (runcmd.h). The child reads
 * nothing and writes into a pipe the loop drains; once the pipe is closed
 * the child is reaped by polling waitpid(WNOHANG), so that a command that
 * closes its output and runs on cannot block the loop; past its time its
 * process group is killed. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "runcmd.h"

/* how often a child whose output is closed is polled for its end */
#define REAP_POLL_MS 20

struct runcmd {
    struct evloop *loop;
    pid_t pid;
    int fd; /* the pipe's read end; -1 once closed */
    struct ev_io io;
    struct ev_timer deadline, reap;
    uint64_t started_ms;
    char out[RUNCMD_OUT_MAX + 1];
    size_t len;
    runcmd_done_fn *done;
    void *arg;
};

static void close_pipe(struct runcmd *r)
{
    if (r->fd >= 0) {
        ev_io_stop(r->loop, &r->io);
        close(r->fd);
        r->fd = -1;
    }
}

static void finish(struct runcmd *r, int status, int timed_out)
{
    close_pipe(r);
    ev_timer_stop(r->loop, &r->deadline);
    ev_timer_stop(r->loop, &r->reap);
    while (r->len > 0 &&
           (r->out[r->len - 1] == '\n' || r->out[r->len - 1] == '\r'))
        r->len--;
    r->out[r->len] = '\0';
    r->done(r->arg, status, timed_out, r->out, clock_mono_ms() - r->started_ms);
    free(r);
}

/* 1 and the status when the child has ended. */
static int reaped(struct runcmd *r, int *status)
{
    pid_t p;

    do
        p = waitpid(r->pid, status, WNOHANG);
    while (p < 0 && errno == EINTR);
    return p == r->pid || (p < 0 && errno == ECHILD);
}

static void on_reap(struct evloop *loop, struct ev_timer *t)
{
    struct runcmd *r = t->arg;
    int status = 0;

    if (reaped(r, &status))
        finish(r, status, 0);
    else
        ev_timer_start(loop, &r->reap, REAP_POLL_MS);
}

static void on_output(struct evloop *loop, struct ev_io *io, int revents)
{
    struct runcmd *r = io->arg;
    char buf[512];
    ssize_t n;

    (void)revents;
    n = read(r->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        size_t take = (size_t)n;

        if (take > RUNCMD_OUT_MAX - r->len)
            take = RUNCMD_OUT_MAX - r->len; /* the rest is dropped */
        memcpy(r->out + r->len, buf, take);
        r->len += take;
        return;
    }
    /* end of output (or a read error): wait for the process itself */
    close_pipe(r);
    on_reap(loop, &r->reap);
}

static void on_deadline(struct evloop *loop, struct ev_timer *t)
{
    struct runcmd *r = t->arg;
    int status = 0;

    (void)loop;
    kill(-r->pid, SIGKILL);
    while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
        ;
    finish(r, status, 1);
}

/* In the child: never returns. */
static void child(int out_fd, const char *command, const char *arg)
{
    char script[4200];
    sigset_t none;
    int null_fd;

    setpgid(0, 0);
    /* the daemon blocks the signals its loop takes: the command gets the
     * default mask and dispositions */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
        dup2(out_fd, 2) < 0)
        _exit(126);
    snprintf(script, sizeof(script), "%s \"$1\"", command);
    execl("/bin/sh", "sh", "-c", script, "vmckpt", arg, (char *)NULL);
    _exit(127);
}

struct runcmd *runcmd_start(struct evloop *loop, const char *command,
                            const char *arg, unsigned timeout_ms,
                            runcmd_done_fn *done, void *cbarg,
                            struct vmckpt_error *err)
{
    struct runcmd *r;
    int p[2];

    if (strlen(command) > 4000) {
        errno = ENAMETOOLONG;
        errprintf(err, "command of %zu bytes: at most 4000", strlen(command));
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL || pipe2(p, O_CLOEXEC) < 0) {
        errprintf_errno(err, "cannot run '%s'", command);
        free(r);
        return NULL;
    }
    r->pid = fork();
    if (r->pid < 0) {
        errprintf_errno(err, "cannot run '%s'", command);
        close(p[0]);
        close(p[1]);
        free(r);
        return NULL;
    }
    if (r->pid == 0)
        child(p[1], command, arg);
    setpgid(r->pid, r->pid); /* as the child does: whoever runs first */
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    r->loop = loop;
    r->fd = p[0];
    r->done = done;
    r->arg = cbarg;
    r->started_ms = clock_mono_ms();
    ev_io_init(&r->io, r->fd, POLLIN, on_output, r);
    ev_timer_init(&r->deadline, on_deadline, r);
    ev_timer_init(&r->reap, on_reap, r);
    if (ev_io_start(loop, &r->io) < 0) {
        errprintf_errno(err, "cannot watch '%s'", command);
        kill(-r->pid, SIGKILL);
        close(r->fd);
        while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        free(r);
        return NULL;
    }
    ev_timer_start(loop, &r->deadline, timeout_ms);
    return r;
}

void runcmd_cancel(struct runcmd *r)
{
    if (r == NULL)
        return;
    close_pipe(r);
    ev_timer_stop(r->loop, &r->deadline);
    ev_timer_stop(r->loop, &r->reap);
    kill(-r->pid, SIGKILL);
    while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    free(r);
}

const char *runcmd_describe(int status, int timed_out, unsigned timeout_ms,
                            char *buf, size_t len)
{
    if (timed_out)
        snprintf(buf, len, "timed out after %u ms", timeout_ms);
    else if (WIFEXITED(status))
        snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "wait status %d", status);
    return buf;
}
