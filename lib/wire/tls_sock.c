/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The socket under TLS (tls_int.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/bio.h>

#include "tls_int.h"

/* ---- the socket under TLS: send() with MSG_NOSIGNAL, so that a peer's
 * close never kills a program that did not ignore SIGPIPE (the MPI hooks
 * live in the user's program). */

static BIO_METHOD *sock_method;

static int sock_write(BIO *b, const char *buf, size_t len, size_t *done)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do {
        n = send(fd, buf, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        return 0;
    }
    *done = (size_t)n;
    return 1;
}

static int sock_read(BIO *b, char *buf, size_t len, size_t *done)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    do {
        n = recv(fd, buf, len, 0);
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
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sock_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

BIO *tls_sock_bio(int fd)
{
    BIO *b;

    if (sock_method == NULL)
        return NULL;
    b = BIO_new(sock_method);
    if (b != NULL)
        BIO_set_data(b, (void *)(intptr_t)fd);
    return b;
}

static void make_sock_method(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "vmckpt socket");

    if (m == NULL || !BIO_meth_set_write_ex(m, sock_write) ||
        !BIO_meth_set_read_ex(m, sock_read) ||
        !BIO_meth_set_ctrl(m, sock_ctrl) ||
        !BIO_meth_set_create(m, sock_create)) {
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
