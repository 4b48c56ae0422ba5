/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The metrics endpoint on the event loop. Written here rather than taken
 * from a library: libmicrohttpd (Debian's usual choice) runs its own
 * threads or wants its own select loop, while the coordinator's state is
 * single-threaded and both daemons already poll one loop; what a scrape
 * needs (one GET, one answer, close) is small enough to read in one file.
 *
 *   accept -> READ (head, at most max_head bytes) -> WRITE (the whole
 *   answer, built at once) -> shut the write side -> DRAIN (read until the
 *   client closes, so that unread bytes do not turn the close into a
 *   reset that loses the answer) -> close
 *
 * Each connection has one deadline from its accept; past it, it is closed
 * wherever it is. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "httpd.h"
#include "lib/util/log.h"
#include "lib/util/net.h"

#define DRAIN_MAX (64u << 10) /* bytes read after the answer, at most */

enum hc_state { HC_READ, HC_WRITE, HC_DRAIN };

struct hconn {
    struct httpd *h;
    int fd;
    struct ev_io io;
    struct ev_timer deadline;
    enum hc_state state;
    char *in;
    size_t inlen;
    char *out;
    size_t outlen, outoff, drained;
    char peer[96];
    struct hconn *next;
};

struct httpd {
    struct evloop *loop;
    int fd;
    struct ev_io io;
    struct ev_timer resume; /* accepting again after running out of fds */
    struct httpd_limits lim;
    httpd_render_fn *render;
    void *arg;
    struct hconn *conns;
    unsigned nconns;
};

static void conn_close(struct hconn *c)
{
    struct httpd *h = c->h;
    struct hconn **pp;

    for (pp = &h->conns; *pp != NULL; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    h->nconns--;
    ev_io_stop(h->loop, &c->io);
    ev_timer_stop(h->loop, &c->deadline);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Queue the whole answer: a head, then 'body' unless 'head_only'. */
static int queue_answer(struct hconn *c, int status, const char *ctype,
                        const char *body, size_t blen, const char *extra,
                        int head_only)
{
    char head[512];
    int n = http_head(head, sizeof(head), status, ctype, blen, extra);

    if (n < 0)
        return -1;
    if (head_only)
        blen = 0;
    c->out = malloc((size_t)n + blen);
    if (c->out == NULL)
        return -1;
    memcpy(c->out, head, (size_t)n);
    if (blen > 0)
        memcpy(c->out + n, body, blen);
    c->outlen = (size_t)n + blen;
    c->outoff = 0;
    c->state = HC_WRITE;
    ev_io_set_events(c->h->loop, &c->io, POLLOUT);
    return 0;
}

static int queue_error(struct hconn *c, int status, const char *why,
                       const char *extra, int head_only)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%d %s: %s\n", status,
                     http_reason(status), why);

    log_debug("metrics: %s: %d %s", c->peer, status, why);
    return queue_answer(c, status, "text/plain; charset=utf-8", body,
                        n < 0 ? 0 : (size_t)n, extra, head_only);
}

/* The metrics themselves, in the format the client asked for. */
static int queue_metrics(struct hconn *c, const struct http_request *req,
                         int head_only)
{
    int om = http_wants_openmetrics(req->accept);
    struct mtext t;
    const char *text;
    size_t len = 0;
    int rc;

    mtext_init(&t, om ? MTEXT_OPENMETRICS : MTEXT_PROMETHEUS);
    c->h->render(c->h->arg, &t);
    text = mtext_finish(&t, &len);
    if (text == NULL) {
        log_err("metrics: cannot render: %s", t.why);
        rc = queue_error(c, 500, "the metrics could not be rendered", NULL,
                         head_only);
    } else {
        rc = queue_answer(c, 200,
                          om ? "application/openmetrics-text; version=1.0.0; "
                               "charset=utf-8"
                             : "text/plain; version=0.0.4; charset=utf-8",
                          text, len, "Vary: Accept\r\n", head_only);
    }
    mtext_dispose(&t);
    return rc;
}

/* A complete, well-formed head: route it. */
static int answer(struct hconn *c, const struct http_request *req)
{
    int head_only = strcmp(req->method, "HEAD") == 0;

    if (strcmp(req->path, "/metrics") != 0)
        return queue_error(c, 404, "only /metrics is served here", NULL,
                           head_only);
    if (strcmp(req->method, "GET") != 0 && !head_only)
        return queue_error(c, 405, "/metrics answers GET and HEAD",
                           "Allow: GET, HEAD\r\n", 0);
    return queue_metrics(c, req, head_only);
}

static void on_read(struct hconn *c)
{
    size_t cap = c->h->lim.max_head;
    struct http_request req;
    const char *why;
    int status;
    ssize_t n;
    long rc;

    n = recv(c->fd, c->in + c->inlen, cap - c->inlen, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) { /* closed (or failed) before a whole request */
        conn_close(c);
        return;
    }
    c->inlen += (size_t)n;
    rc = http_parse(c->in, c->inlen, cap, &req, &status, &why);
    if (rc == 0)
        return;
    if ((rc < 0 ? queue_error(c, status, why, NULL, 0) : answer(c, &req)) < 0) {
        log_err("metrics: %s: out of memory", c->peer);
        conn_close(c);
    }
}

static void on_write(struct hconn *c)
{
    ssize_t n =
        send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->outoff += (size_t)n;
    if (c->outoff < c->outlen)
        return;
    shutdown(c->fd, SHUT_WR);
    c->state = HC_DRAIN;
    ev_io_set_events(c->h->loop, &c->io, POLLIN);
}

static void on_drain(struct hconn *c)
{
    char buf[4096];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0 || (c->drained += (size_t)n) > DRAIN_MAX)
        conn_close(c);
}

static void conn_ready(struct evloop *loop, struct ev_io *io, int revents)
{
    struct hconn *c = io->arg;

    (void)loop;
    if ((revents & (POLLERR | POLLNVAL)) != 0) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case HC_READ:
        on_read(c);
        break;
    case HC_WRITE:
        on_write(c);
        break;
    case HC_DRAIN:
        on_drain(c);
        break;
    }
}

static void conn_expired(struct evloop *loop, struct ev_timer *t)
{
    struct hconn *c = t->arg;

    (void)loop;
    log_debug("metrics: %s: closed after %u ms", c->peer, c->h->lim.timeout_ms);
    conn_close(c);
}

/* Too many connections: a short 503 if the socket takes it at once, then
 * close. */
static void refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n\r\n";

    (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

static void conn_new(struct httpd *h, int fd)
{
    struct hconn *c = calloc(1, sizeof(*c));

    if (c != NULL)
        c->in = malloc(h->lim.max_head);
    if (c == NULL || c->in == NULL) {
        log_err("metrics: out of memory for a connection");
        if (c != NULL)
            free(c);
        close(fd);
        return;
    }
    c->h = h;
    c->fd = fd;
    net_peer_name(fd, c->peer, sizeof(c->peer));
    ev_io_init(&c->io, fd, POLLIN, conn_ready, c);
    ev_timer_init(&c->deadline, conn_expired, c);
    if (ev_io_start(h->loop, &c->io) < 0) {
        log_errno("metrics: new connection");
        free(c->in);
        free(c);
        close(fd);
        return;
    }
    ev_timer_start(h->loop, &c->deadline, h->lim.timeout_ms);
    c->next = h->conns;
    h->conns = c;
    h->nconns++;
}

static void resume_accept(struct evloop *loop, struct ev_timer *t)
{
    struct httpd *h = t->arg;

    if (ev_io_start(loop, &h->io) < 0)
        ev_timer_start(loop, &h->resume, 1000);
}

/* accept failed (out of file descriptors, most likely): the socket stays
 * readable, so stop watching it for a second rather than spin */
static void pause_accept(struct httpd *h)
{
    log_warnno("metrics: accept (trying again in 1 s)");
    ev_io_stop(h->loop, &h->io);
    ev_timer_start(h->loop, &h->resume, 1000);
}

static void on_accept(struct evloop *loop, struct ev_io *io, int revents)
{
    struct httpd *h = io->arg;

    (void)loop;
    (void)revents;
    for (;;) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                pause_accept(h);
            return;
        }
        if (h->nconns >= h->lim.max_conns) {
            log_debug("metrics: %u connections open: one refused", h->nconns);
            refuse_busy(fd);
            continue;
        }
        conn_new(h, fd);
    }
}

struct httpd *httpd_start(struct evloop *loop, const char *addr,
                          const struct httpd_limits *lim,
                          httpd_render_fn *render, void *arg,
                          struct vmckpt_error *err)
{
    struct httpd *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        errprintf_errno(err, "metrics endpoint");
        return NULL;
    }
    h->loop = loop;
    h->render = render;
    h->arg = arg;
    h->lim.max_head = lim && lim->max_head ? lim->max_head : 8192;
    h->lim.max_conns = lim && lim->max_conns ? lim->max_conns : 16;
    h->lim.timeout_ms = lim && lim->timeout_ms ? lim->timeout_ms : 10000;
    h->fd = net_listen(addr, 0, err);
    if (h->fd < 0) {
        free(h);
        return NULL;
    }
    ev_io_init(&h->io, h->fd, POLLIN, on_accept, h);
    ev_timer_init(&h->resume, resume_accept, h);
    if (ev_io_start(loop, &h->io) < 0) {
        errprintf_errno(err, "metrics endpoint");
        close(h->fd);
        free(h);
        return NULL;
    }
    return h;
}

void httpd_stop(struct httpd *h)
{
    if (h == NULL)
        return;
    while (h->conns != NULL)
        conn_close(h->conns);
    ev_io_stop(h->loop, &h->io);
    ev_timer_stop(h->loop, &h->resume);
    close(h->fd);
    free(h);
}

void httpd_local_name(const struct httpd *h, char *buf, size_t len)
{
    net_local_name(h->fd, buf, len);
}

int httpd_check_addr(const char *key, const char *value,
                     struct vmckpt_error *err)
{
    char host[NET_ADDRSTRLEN];
    unsigned port;

    if (value[0] == '\0')
        return 0;
    if (net_split(value, 0, host, &port, err) < 0)
        return errprefix(err, "%s = %s", key, value);
    if (port == 0)
        return errprintf(err,
                         "%s = %s: give HOST:PORT, with a port from 1 to "
                         "65535",
                         key, value);
    return 0;
}
