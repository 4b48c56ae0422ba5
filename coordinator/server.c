/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's connections: accept, authenticate, then hand each
 * message to its handler through the routes registered from above. A peer that
 * sends a bad frame is told why (when the stream still allows it), logged and
 * dropped; the coordinator itself carries on. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"
#include "lib/util/log.h"
#include "lib/util/net.h"
#include "lib/wire/tls.h"

static void conn_free(struct conn *c)
{
    struct coord *co = c->co;
    struct conn **pp;
    size_t i;

    for (pp = &co->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    for (i = 0; i < co->nclose; i++)
        co->on_close[i](co, c);
    ev_io_stop(co->loop, &c->io);
    ev_timer_stop(co->loop, &c->auth_timer);
    wire_conn_dispose(&c->w);
    close(c->fd);
    free(c);
}

void server_drop(struct conn *c, const char *why)
{
    if (c->auth.state == AUTH_DONE)
        log_warn("dropping %s %s (%s): %s", auth_role_name(c->auth.role),
                 c->auth.peer_name, c->peer, why);
    else
        log_warn("dropping connection from %s: %s", c->peer, why);
    /* best effort: the peer may read a queued Error before the close */
    (void)wire_conn_flush(&c->w, NULL);
    conn_free(c);
}

static void update_events(struct conn *c)
{
    ev_io_set_events(c->co->loop, &c->io,
                     POLLIN | (wire_conn_pending(&c->w) ? POLLOUT : 0));
}

int server_send(struct conn *c, int type, uint64_t request_id,
                const void *payload)
{
    struct vmckpt_error err;

    if (c == NULL) /* (a host whose connection is gone) */
        return -1;
    if (wire_conn_send(&c->w, type, request_id, payload, &err) < 0) {
        log_err("%s", err.text);
        return -1;
    }
    if (c->co->corked)
        return 0; /* server_uncork writes it */
    /* written now if the socket takes it (a fan-out to every host is then
     * on the wire when it returns, and a heartbeat's ack costs no round
     * of the loop); the rest, or a write error, waits for POLLOUT */
    (void)wire_conn_flush(&c->w, NULL);
    update_events(c);
    return 0;
}

void server_cork(struct coord *co)
{
    co->corked++;
}

void server_uncork(struct coord *co)
{
    struct conn *c;

    if (co->corked == 0 || --co->corked > 0)
        return;
    for (c = co->conns; c != NULL; c = c->next)
        if (wire_conn_pending(&c->w)) {
            (void)wire_conn_flush(&c->w, NULL);
            update_events(c);
        }
}

int server_error(struct conn *c, uint64_t request_id, Vmckpt__ErrorCode code,
                 const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    log_warn("%s %s: %s", auth_role_name(c->auth.role), c->auth.peer_name,
             text);
    wire_conn_send_error(&c->w, request_id, code, text);
    update_events(c);
    return 0;
}

static int dispatch_msg(struct conn *c, const Vmckpt__Envelope *env)
{
    size_t i;

    int known = 0;

    for (i = 0; i < c->co->nroutes; i++) {
        const struct server_route *r = &c->co->routes[i];

        if (r->type != env->type)
            continue;
        known = 1;
        if (r->roles & (1u << c->auth.role))
            return r->fn(c, env);
    }
    if (known)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                            "%s may not send %s", auth_role_name(c->auth.role),
                            wire_type_name(env->type));
    return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                        "the coordinator does not serve %s",
                        wire_type_name(env->type));
}

/* Handle every complete frame in the buffer. Returns -1 when the
 * connection was dropped. */
static int process(struct conn *c)
{
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    enum wire_fault fault;
    int rc;

    while (!c->closing &&
           (rc = wire_conn_next(&c->w, &env, &fault, &err)) != 0) {
        if (rc < 0) {
            wire_conn_send_error(&c->w, 0, (Vmckpt__ErrorCode)fault, err.text);
            server_drop(c, err.text);
            return -1;
        }
        if (c->auth.state != AUTH_DONE) {
            rc = auth_server_step(&c->auth, &c->w, env, &err);
            wire_free(env);
            if (rc < 0) {
                server_drop(c, err.text);
                return -1;
            }
            if (rc == 1) {
                ev_timer_stop(c->co->loop, &c->auth_timer);
                log_debug("%s %s authenticated from %s",
                          auth_role_name(c->auth.role), c->auth.peer_name,
                          c->peer);
                if (c->guest != (c->auth.role == VMCKPT__ROLE__ROLE_RANK) ||
                    c->auth.role == VMCKPT__ROLE__ROLE_PEER) {
                    server_error(c, 0, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                                 "role %s is not served on the coordinator's "
                                 "%s endpoint",
                                 auth_role_name(c->auth.role),
                                 c->guest ? "ranks'" : "host");
                    server_drop(c, "role not served here");
                    return -1;
                }
            }
            update_events(c);
            continue;
        }
        rc = dispatch_msg(c, env);
        wire_free(env);
        if (rc < 0) {
            server_drop(c, "cannot queue a reply");
            return -1;
        }
    }
    return 0;
}

static void conn_ready(struct evloop *loop, struct ev_io *io, int revents)
{
    struct conn *c = io->arg;
    struct vmckpt_error err;

    (void)loop;
    if (revents & POLLOUT) {
        if (wire_conn_flush(&c->w, &err) < 0) {
            server_drop(c, err.text);
            return;
        }
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (wire_conn_fill(&c->w, &err) < 0 && (!c->w.eof || c->w.failed)) {
            server_drop(c, err.text);
            return;
        }
        if (process(c) < 0)
            return;
        if (c->w.eof) {
            if (c->w.rlen > 0)
                server_drop(c, "connection closed in the middle of a frame "
                               "(truncated frame)");
            else if (c->auth.state != AUTH_DONE)
                server_drop(c, "connection closed during the handshake");
            else {
                log_debug("%s %s closed the connection",
                          auth_role_name(c->auth.role), c->auth.peer_name);
                conn_free(c);
            }
            return;
        }
    }
    if (c->closing && !wire_conn_pending(&c->w)) {
        conn_free(c);
        return;
    }
    update_events(c);
}

static void auth_expired(struct evloop *loop, struct ev_timer *t)
{
    struct conn *c = t->arg;

    (void)loop;
    server_drop(c, "handshake not completed in time");
}

/* TLS under a new connection: always on the ranks' endpoint (the job's
 * token is the key), with the credentials where the cluster has them. */
static int secure(struct coord *co, struct conn *c, int guest)
{
    struct vmckpt_error err;
    int rc = 0;

    if (guest)
        rc = tls_server_attach_psk(&c->w, co->rank_key_for, co->rank_key_arg,
                                   &err);
    else if (tls_enabled())
        rc = tls_server_attach(&c->w, &err);
    if (rc < 0)
        log_warn("refusing %s: %s", c->peer, err.text);
    return rc;
}

static void accept_on(struct evloop *loop, struct coord *co, int lfd, int guest)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warnno("accept");
            return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            log_errno("new connection");
            close(fd);
            continue;
        }
        c->co = co;
        c->fd = fd;
        net_peer_name(fd, c->peer, sizeof(c->peer));
        wire_conn_init(&c->w, fd, co->max_frame);
        if (secure(co, c, guest) < 0) {
            free(c);
            close(fd);
            continue;
        }
        auth_server_init(&c->auth, &co->key, co->name);
        c->guest = guest;
        if (guest) {
            /* a guest proves the token of the job it names, never the
             * cluster key */
            c->auth.key = NULL;
            c->auth.key_for = co->rank_key_for;
            c->auth.key_arg = co->rank_key_arg;
        }
        ev_io_init(&c->io, fd, POLLIN, conn_ready, c);
        ev_timer_init(&c->auth_timer, auth_expired, c);
        if (ev_io_start(loop, &c->io) < 0) {
            log_errno("new connection");
            wire_conn_dispose(&c->w);
            close(fd);
            free(c);
            continue;
        }
        ev_timer_start(loop, &c->auth_timer, co->auth_timeout_ms);
        c->next = co->conns;
        co->conns = c;
        log_debug("connection from %s%s", c->peer, guest ? " (ranks)" : "");
    }
}

static void on_accept(struct evloop *loop, struct ev_io *io, int revents)
{
    struct coord *co = io->arg;

    (void)revents;
    accept_on(loop, co, co->listen_fd, 0);
}

static void on_accept_rank(struct evloop *loop, struct ev_io *io, int revents)
{
    struct coord *co = io->arg;

    (void)revents;
    accept_on(loop, co, co->rank_fd, 1);
}

void server_init(struct coord *co, unsigned auth_timeout_ms, size_t max_frame)
{
    co->listen_fd = -1;
    co->rank_fd = -1;
    co->auth_timeout_ms = auth_timeout_ms;
    co->max_frame = max_frame;
}

void server_set_routes(struct coord *co, const struct server_route *routes,
                       size_t n)
{
    co->routes = routes;
    co->nroutes = n;
}

int server_on_close(struct coord *co, server_close_fn fn)
{
    if (co->nclose == SERVER_MAX_CLOSE_HOOKS) {
        errno = ENOSPC;
        return -1;
    }
    co->on_close[co->nclose++] = fn;
    return 0;
}

int server_start_ranks(struct coord *co, const char *addr,
                       server_key_fn *key_for, void *arg,
                       struct vmckpt_error *err)
{
    if (addr[0] == '\0')
        return 0;
    co->rank_key_for = key_for;
    co->rank_key_arg = arg;
    co->rank_fd = net_listen(addr, WIRE_DEFAULT_PORT + 1, err);
    if (co->rank_fd < 0)
        return -1;
    ev_io_init(&co->rank_io, co->rank_fd, POLLIN, on_accept_rank, co);
    if (ev_io_start(co->loop, &co->rank_io) < 0)
        return errprintf_errno(err, "listen");
    return 0;
}

int server_start(struct coord *co, const char *listen_addr,
                 struct vmckpt_error *err)
{
    co->listen_fd = net_listen(listen_addr, WIRE_DEFAULT_PORT, err);
    if (co->listen_fd < 0)
        return -1;
    ev_io_init(&co->listen_io, co->listen_fd, POLLIN, on_accept, co);
    if (ev_io_start(co->loop, &co->listen_io) < 0)
        return errprintf_errno(err, "listen");
    return 0;
}

void server_stop(struct coord *co)
{
    while (co->conns != NULL)
        conn_free(co->conns);
    if (co->listen_fd >= 0) {
        ev_io_stop(co->loop, &co->listen_io);
        close(co->listen_fd);
        co->listen_fd = -1;
    }
    if (co->rank_fd >= 0) {
        ev_io_stop(co->loop, &co->rank_io);
        close(co->rank_fd);
        co->rank_fd = -1;
    }
}
