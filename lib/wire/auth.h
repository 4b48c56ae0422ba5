/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster key and the mutual HMAC-SHA256 challenge/response handshake
 * that opens every connection (docs/protocol.md, "Handshake"). This module
 * is the only user of OpenSSL libcrypto. */
#ifndef VMCKPT_AUTH_H
#define VMCKPT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/error.h"
#include "wire.h"

#define AUTH_NONCE_LEN   32
#define AUTH_MAC_LEN     32
#define AUTH_KEY_MIN     32
#define AUTH_KEY_MAX     4096
#define AUTH_KEY_GEN_LEN 64

struct auth_key {
    uint8_t *bytes;
    size_t len;
};

/* Read a key file. Refused (-1, 'err' says why) when the file is readable or
 * writable by group or other, is not a regular file, or holds fewer than
 * AUTH_KEY_MIN or more than AUTH_KEY_MAX bytes. */
int auth_key_load(struct auth_key *key, const char *path,
                  struct vmckpt_error *err);
/* Use 'len' bytes as the key (job tokens, tests). */
int auth_key_set(struct auth_key *key, const void *bytes, size_t len);
void auth_key_dispose(struct auth_key *key);

/* Write a new random key of AUTH_KEY_GEN_LEN bytes to 'path', mode 0600.
 * Refuses to replace an existing file unless 'force'. */
int auth_key_generate(const char *path, int force, struct vmckpt_error *err);

/* Fill 'buf' with cryptographically strong random bytes. 0 or -1. */
int auth_random(void *buf, size_t len);

/* Client side, blocking: send Hello, check the server's proof, send ours,
 * wait for AuthOk. 'server_name' (may be NULL) receives the server's name.
 * Over TLS 'key' is not used (may be NULL): the session's exported key
 * takes its place. */
int auth_client(struct wire_conn *c, const struct auth_key *key,
                Vmckpt__Role role, const char *name, int timeout_ms,
                char *server_name, size_t server_name_len,
                struct vmckpt_error *err);

/* Server side, driven by the caller's event loop, one message at a time. */
enum auth_state {
    AUTH_WAIT_HELLO,
    AUTH_WAIT_PROOF,
    AUTH_DONE,
    AUTH_FAILED,
};

struct auth_server {
    enum auth_state state;
    Vmckpt__Role role;
    char peer_name[128];
    uint8_t nonce_c[AUTH_NONCE_LEN];
    uint8_t nonce_s[AUTH_NONCE_LEN];
    const struct auth_key *key;
    const char *server_name;
    /* When set, the key is chosen by the peer's role and name once its
     * Hello arrives (a job's token on the ranks' endpoint); NULL from it
     * refuses the peer. It must outlive the handshake. */
    const struct auth_key *(*key_for)(void *arg, Vmckpt__Role role,
                                      const char *name);
    void *key_arg;
    /* Over TLS (lib/wire/tls.h): the key is the session's exported
     * material, and the peer's credential must allow its Hello's role and
     * name. */
    uint8_t bound[32];
    struct auth_key bound_key;
    int credential; /* enum tls_role of the peer's credential */
    char credential_name[128];
};

/* 'key' and 'server_name' must outlive the handshake. */
void auth_server_init(struct auth_server *as, const struct auth_key *key,
                      const char *server_name);

/* Feed one received envelope. Queues replies on 'c'. Returns 1 when the
 * peer is authenticated (as->role and as->peer_name are then valid), 0 when
 * more messages are needed, -1 when the peer is refused: 'err' says why
 * and an Error message has been queued for the peer. */
int auth_server_step(struct auth_server *as, struct wire_conn *c,
                     const Vmckpt__Envelope *env, struct vmckpt_error *err);

/* Printable role name. */
const char *auth_role_name(Vmckpt__Role role);

#endif
