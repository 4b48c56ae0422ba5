/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The socket under TLS and a connection's wire layer (tls_int.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

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

/* ---- a connection's layer ---- */

/* Why the connection failed, kept for wire_io.why. */
void tls_note_failure(struct tls_conn *t, int e)
{
    long v = SSL_get_verify_result(t->ssl);
    char reason[200];

    t->failed = 1;
    if (t->why[0] != '\0')
        return; /* the PSK lookup said it */
    if (v != X509_V_OK)
        snprintf(t->why, sizeof(t->why), "TLS: the peer's certificate: %s",
                 X509_verify_cert_error_string(v));
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0)
        snprintf(t->why, sizeof(t->why), "TLS: %s", strerror(errno));
    else
        snprintf(t->why, sizeof(t->why), "TLS: %s",
                 ssl_reason(reason, sizeof(reason)));
    ERR_clear_error();
}

/* -1 with errno set like the socket calls for an SSL_* failure 'rc'. */
static ssize_t io_failed(struct tls_conn *t, int rc, int writing)
{
    int e = SSL_get_error(t->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            /* the socket's own failure: the peer went away. A write
             * that fails so leaves reading open: a peer that refused what
             * we sent said why before it closed, and that is still to be
             * read (client.c why_refused) */
            int saved = errno;

            if (!writing)
                t->failed = 1;
            if (saved == 0)
                return 0; /* an end without close_notify */
            errno = saved;
            return -1;
        }
        /* fall through */
    default:
        tls_note_failure(t, e);
        errno = EPROTO;
        return -1;
    }
}

static ssize_t io_read(void *arg, void *buf, size_t len)
{
    struct tls_conn *t = arg;
    size_t n = 0;
    int rc;

    if (t->failed) {
        errno = EPROTO;
        return -1;
    }
    ERR_clear_error();
    rc = SSL_read_ex(t->ssl, buf, len, &n);
    t->starved = rc != 1 && SSL_get_error(t->ssl, rc) == SSL_ERROR_WANT_READ;
    return rc == 1 ? (ssize_t)n : io_failed(t, rc, 0);
}

static ssize_t io_write(void *arg, const void *buf, size_t len)
{
    struct tls_conn *t = arg;
    size_t n = 0;
    int rc;

    if (t->failed) {
        errno = EPROTO;
        return -1;
    }
    ERR_clear_error();
    rc = SSL_write_ex(t->ssl, buf, len, &n);
    return rc == 1 ? (ssize_t)n : io_failed(t, rc, 1);
}

/* What the socket BIO gathered (tls_sock.c), sent. */
static int io_flush(void *arg)
{
    struct tls_conn *t = arg;
    BIO *b = SSL_get_wbio(t->ssl);

    if (t->failed) {
        errno = EPROTO;
        return -1;
    }
    if (BIO_flush(b) > 0)
        return 1;
    if (BIO_should_retry(b)) {
        errno = EAGAIN;
        return 0;
    }
    if (errno == 0)
        errno = EPIPE;
    return -1;
}

static int io_waiting(void *arg)
{
    struct tls_conn *t = arg;

    return !t->failed && BIO_wpending(SSL_get_wbio(t->ssl)) > 0;
}

static const char *io_why(void *arg)
{
    struct tls_conn *t = arg;

    return t->why[0] ? t->why : "TLS: connection failed";
}

static void io_close(void *arg)
{
    struct tls_conn *t = arg;

    if (!t->failed && SSL_is_init_finished(t->ssl)) {
        (void)SSL_shutdown(t->ssl); /* close_notify, not waited for */
        (void)BIO_flush(SSL_get_wbio(t->ssl));
    }
    ERR_clear_error();
    SSL_free(t->ssl);
    free(t);
}

/* Records read ahead (tls.h, bulk) and not handed out yet. Not when the
 * last read wanted more: what OpenSSL holds then is part of a record, and
 * poll sees the rest come (reading again would spin). */
static int io_pending(void *arg)
{
    struct tls_conn *t = arg;

    return !t->failed && !t->starved && SSL_has_pending(t->ssl);
}

const struct wire_io tls_io = {
    .read = io_read,
    .write = io_write,
    .why = io_why,
    .close = io_close,
    .flush = io_flush,
    .waiting = io_waiting,
    .pending = io_pending,
};
