/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The socket under TLS (tls_int.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "tls_int.h"

/* ---- the socket under TLS: send() with MSG_NOSIGNAL, so that a peer's
 * close never kills a program that did not ignore SIGPIPE (the MPI hooks
 * live in the user's program).
 *
 * Records are gathered before they go: OpenSSL writes one 16 KiB record
 * at a time, and one send() each (TCP_NODELAY) made a page stream a send
 * and a packet per record. Up to SOCK_GATHER bytes wait here until the
 * writer flushes (BIO_flush: the wire layer after each write, OpenSSL
 * after each handshake flight), or go as soon as that much is waiting;
 * tls.c reports what waits, so that the wire layer polls for it. */

#define SOCK_GATHER (256u << 10)

struct sock {
    int fd;
    uint8_t *buf;    /* SOCK_GATHER bytes, once a write came */
    size_t off, len; /* waiting: len bytes from buf + off */
};

static BIO_METHOD *sock_method;

/* Send what waits. 1 when all went, 0 when the socket is full (the rest
 * waits), -1 on an error (errno). */
static int drain(struct sock *s)
{
    while (s->len > 0) {
        ssize_t n = send(s->fd, s->buf + s->off, s->len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        s->off += (size_t)n;
        s->len -= (size_t)n;
    }
    s->off = 0;
    return 1;
}

static int sock_write(BIO *b, const char *buf, size_t len, size_t *done)
{
    struct sock *s = BIO_get_data(b);
    int rc;

    BIO_clear_retry_flags(b);
    if (s->buf == NULL && (s->buf = malloc(SOCK_GATHER)) == NULL)
        return 0;
    if (s->off + s->len + len > SOCK_GATHER) {
        rc = drain(s);
        if (rc < 0)
            return 0;
        if (rc == 0 && s->off > 0) { /* room at the front */
            memmove(s->buf, s->buf + s->off, s->len);
            s->off = 0;
        }
    }
    if (s->len + len > SOCK_GATHER) {
        if (s->len > 0) { /* the socket is full and so is the buffer */
            BIO_set_retry_write(b);
            return 0;
        }
        len = SOCK_GATHER; /* larger than any record: in pieces */
    }
    memcpy(s->buf + s->off + s->len, buf, len);
    s->len += len;
    *done = len;
    if (s->off + s->len == SOCK_GATHER && drain(s) < 0)
        return 0; /* what was taken is lost with the connection */
    return 1;
}

static int sock_read(BIO *b, char *buf, size_t len, size_t *done)
{
    struct sock *s = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do {
        n = recv(s->fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        return 0;
    }
    *done = (size_t)n;
    return n > 0;
}

static long sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct sock *s = BIO_get_data(b);
    int rc;

    (void)num, (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        BIO_clear_retry_flags(b);
        rc = drain(s);
        if (rc == 0)
            BIO_set_retry_write(b);
        return rc > 0;
    case BIO_CTRL_WPENDING:
        return (long)s->len;
    default:
        return 0;
    }
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int sock_destroy(BIO *b)
{
    struct sock *s = BIO_get_data(b);

    if (s != NULL) {
        free(s->buf);
        free(s);
    }
    BIO_set_data(b, NULL);
    return 1;
}

BIO *tls_sock_bio(int fd)
{
    struct sock *s;
    BIO *b;

    if (sock_method == NULL || (s = calloc(1, sizeof(*s))) == NULL)
        return NULL;
    s->fd = fd;
    b = BIO_new(sock_method);
    if (b == NULL) {
        free(s);
        return NULL;
    }
    BIO_set_data(b, s);
    return b;
}

static void make_sock_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "vmckpt socket");

    if (m == NULL || !BIO_meth_set_write_ex(m, sock_write) ||
        !BIO_meth_set_read_ex(m, sock_read) ||
        !BIO_meth_set_ctrl(m, sock_ctrl) ||
        !BIO_meth_set_create(m, sock_create) ||
        !BIO_meth_set_destroy(m, sock_destroy)) {
        BIO_meth_free(m);
        return;
    }
    sock_method = m;
}

void tls_sock_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, make_sock_method);
}
