/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TLS 1.3 under the wire (docs/protocol.md, "Transport security"). Two
 * kinds of endpoint:
 * - certificates: each host holds a credential issued by the cluster's CA
 *   (`vmckpt cert`), subject OU = its role (coordinator, agent, admin) and
 *   CN = its name; both sides prove theirs and check the other's against
 *   the CA and its revocation list;
 * - a job's token (the ranks' endpoint): TLS 1.3 with an external PSK
 *   derived from the token, identity = the job's name, (EC)DHE always.
 * The handshake of docs/protocol.md runs above it with the key the TLS
 * session exports (tls_binding()), so a proof cannot be relayed over
 * another connection. This module is the only user of libssl. */
#ifndef VMCKPT_TLS_H
#define VMCKPT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "auth.h"
#include "wire.h"

/* The files of a host's credential ([tls] in vmckpt.conf). */
struct tls_files {
    const char *ca;           /* the cluster CA's certificate */
    const char *cert, *key;   /* this host's certificate and key */
    const char *crl;          /* revocation list (NULL: none), reread when
                               * it changes */
    const char *ciphersuites; /* NULL: OpenSSL's TLS 1.3 default */
    int ktls;                 /* ask for kernel TLS (socket BIO: the
                               * process must ignore SIGPIPE) */
    int bulk; /* connections carry images (an agent): OpenSSL reads ahead,
               * TLS_BULK_READ bytes at a time, not a record header and
               * then its body */
};
#define TLS_BULK_READ (256u << 10)

/* What a peer's credential says it is. */
enum tls_role {
    TLS_ROLE_NONE = 0,
    TLS_ROLE_COORDINATOR,
    TLS_ROLE_AGENT,
    TLS_ROLE_ADMIN,
    TLS_ROLE_JOB, /* a job's token (PSK) */
};

#define TLS_BINDING_LEN 32

/* Load this process's credential, once, before any connection. 0 or -1
 * with 'err' naming the file and what is wrong with it. */
int tls_setup(const struct tls_files *f, struct vmckpt_error *err);
/* 1 once tls_setup() succeeded: connections of certificates use TLS. */
int tls_enabled(void);
/* This host's own identity from its certificate (after tls_setup()). */
int tls_self(enum tls_role *role, char *name, size_t len);
void tls_cleanup(void);

const char *tls_role_name(enum tls_role role);
/* "coordinator" -> TLS_ROLE_COORDINATOR ...; TLS_ROLE_NONE if unknown. */
enum tls_role tls_role_parse(const char *s);

/* Server side: put TLS under an accepted, non-blocking connection. The
 * handshake runs inside the first reads; a peer without a valid credential
 * makes wire_conn_fill() fail with the reason. */
int tls_server_attach(struct wire_conn *c, struct vmckpt_error *err);
/* The same for an endpoint of jobs' tokens: 'key_for' (called during the
 * handshake with ROLE_RANK and the job named by the PSK identity) gives
 * the job's token, NULL refuses. */
int tls_server_attach_psk(struct wire_conn *c,
                          const struct auth_key *(*key_for)(void *arg,
                                                            Vmckpt__Role role,
                                                            const char *name),
                          void *arg, struct vmckpt_error *err);

/* Client side, blocking within 'timeout_ms': the TLS handshake over c->fd;
 * the server must prove a credential of role 'want' (and name 'want_name'
 * unless NULL). */
int tls_client_attach(struct wire_conn *c, enum tls_role want,
                      const char *want_name, int timeout_ms,
                      struct vmckpt_error *err);
/* The same with job 'job''s token as the PSK (no certificates). */
int tls_client_attach_psk(struct wire_conn *c, const char *job,
                          const struct auth_key *token, int timeout_ms,
                          struct vmckpt_error *err);

/* 1 if 'c' runs over TLS. */
int tls_on(const struct wire_conn *c);
/* The peer's proven identity once the handshake is done: its role and
 * name (the certificate's CN, or the PSK's job). 0, or -1 if unknown. */
int tls_peer(const struct wire_conn *c, enum tls_role *role, char *name,
             size_t len);
/* Keying material of this TLS session (RFC 8446 exporter) for the
 * handshake above it. 0 or -1. */
int tls_binding(const struct wire_conn *c, uint8_t out[TLS_BINDING_LEN]);
/* The negotiated suite ("TLS_AES_256_GCM_SHA384"), and whether the kernel
 * does the record layer in each direction. */
const char *tls_cipher(const struct wire_conn *c);
int tls_kernel(const struct wire_conn *c, int *send, int *recv);

/* ---- the revocation list, passed from the coordinator to the agents ---- */

#define TLS_CRL_MAX (16u << 20)

/* The revocation list this process reads ([tls] crl): the version of
 * the file now (it changes with it) and, unless that is 'known', a
 * malloc'ed copy of it. 0 (*pem NULL and *len 0 when there is none or it
 * is the known one), -1 when it cannot be read. */
int tls_crl_get(uint64_t known, uint8_t **pem, size_t *len, uint64_t *version);
/* 1 if the credential the peer of 'c' proved is revoked by the list as it
 * is now (a connection made before its revocation). */
int tls_peer_revoked(const struct wire_conn *c);
/* A list received from the coordinator: refused unless the cluster CA
 * signed it; written to 'path' (atomically) and read for every new
 * connection from now on. 0 or -1. */
int tls_crl_install(const uint8_t *pem, size_t len, const char *path,
                    struct vmckpt_error *err);

#endif
