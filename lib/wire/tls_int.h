/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the TLS layer (tls.c): its socket BIO (tls_sock.c). */
#ifndef VMCKPT_TLS_INT_H
#define VMCKPT_TLS_INT_H

#include <openssl/bio.h>

/* Make the BIO method once (idempotent, thread-safe). */
void tls_sock_init(void);
/* A BIO over socket 'fd' whose writes never raise SIGPIPE; NULL if
 * tls_sock_init() could not make the method. */
BIO *tls_sock_bio(int fd);

#endif
