/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the TLS layer: tls.c (contexts, handshakes, identities) and
 * tls_sock.c (the socket BIO and the wire layer of a connection). */
#ifndef VMCKPT_TLS_INT_H
#define VMCKPT_TLS_INT_H

#include <stddef.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "auth.h"
#include "wire.h"

/* One connection's layer. */
struct tls_conn {
    SSL *ssl;
    int failed; /* a fatal error: no close_notify, no more I/O */
    /* an endpoint of jobs' tokens */
    const struct auth_key *(*key_for)(void *, Vmckpt__Role, const char *);
    void *key_arg;
    const struct auth_key *token; /* a rank's own, client side */
    char job[128];                /* the PSK identity */
    char why[256];                /* what the last failure was */
    int starved; /* the last read wanted more from the socket: what
                  * OpenSSL holds is part of a record, poll sees the rest */
};

/* Make the BIO method once (idempotent, thread-safe). */
void tls_sock_init(void);
/* A BIO over socket 'fd' whose writes never raise SIGPIPE and are
 * gathered until a flush; NULL if tls_sock_init() could not make the
 * method. */
BIO *tls_sock_bio(int fd);

/* The wire layer of a TLS connection (c->io). */
extern const struct wire_io tls_io;
/* Why the connection failed (SSL_get_error's 'e'), kept for why(). */
void tls_note_failure(struct tls_conn *t, int e);
/* The reason of OpenSSL's last error, in buf. */
const char *ssl_reason(char *buf, size_t len);

#endif
