/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A blocking, authenticated connection to a vmckpt daemon, for the admin
 * console, the agent's coordinator link and tests: open, call, close. */
#ifndef VMCKPT_CLIENT_H
#define VMCKPT_CLIENT_H

#include "lib/util/error.h"
#include "lib/wire/auth.h"
#include "lib/wire/wire.h"

struct client {
    int fd;
    struct wire_conn conn;
    uint64_t next_id;
    int timeout_ms;
    char server_name[128];
    char addr[128];
};

/* Connect to 'addr' ("host[:port]") and authenticate with 'key' as 'role'
 * named 'name'. NULL with 'err' filled on failure. */
struct client *client_open(const char *addr, const struct auth_key *key,
                           Vmckpt__Role role, const char *name, int timeout_ms,
                           struct vmckpt_error *err);
/* client_open() to a server that must prove the credential of 'server'
 * (over TLS; NULL: any of its role), e.g. the host a store should be. */
struct client *client_open_to(const char *addr, const char *server,
                              const struct auth_key *key, Vmckpt__Role role,
                              const char *name, int timeout_ms,
                              struct vmckpt_error *err);
/* Close the connection and free. NULL is fine. */
void client_close(struct client *cl);

/* Send a request and wait for the reply with the same request id. An Error
 * reply, or a reply of another type than 'reply_type', fails with 'err'
 * holding the server's text. On success *reply must be freed with
 * wire_free(). */
int client_call(struct client *cl, int type, const void *payload,
                int reply_type, Vmckpt__Envelope **reply,
                struct vmckpt_error *err);

/* Send one message without waiting for a reply. */
int client_send(struct client *cl, int type, const void *payload,
                struct vmckpt_error *err);

#endif
