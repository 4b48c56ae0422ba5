/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Blocking request/reply over an authenticated wire connection. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"
#include "lib/util/net.h"
#include "lib/wire/tls.h"

/* TLS under the connection: a rank's with its job's token, everyone
 * else's with this host's credential when it has one. */
static int client_secure(struct wire_conn *c, const char *server,
                         const struct auth_key *key, Vmckpt__Role role,
                         const char *name, int timeout_ms,
                         struct vmckpt_error *err)
{
    if (role == VMCKPT__ROLE__ROLE_RANK)
        return tls_client_attach_psk(c, name, key, timeout_ms, err);
    if (!tls_enabled())
        return 0;
    return tls_client_attach(
        c,
        role == VMCKPT__ROLE__ROLE_PEER ? TLS_ROLE_AGENT : TLS_ROLE_COORDINATOR,
        NULL, timeout_ms, err);
}

struct client *client_open(const char *addr, const struct auth_key *key,
                           Vmckpt__Role role, const char *name, int timeout_ms,
                           struct vmckpt_error *err)
{
    return client_open_to(addr, NULL, key, role, name, timeout_ms, err);
}

struct client *client_open_to(const char *addr, const char *server,
                              const struct auth_key *key, Vmckpt__Role role,
                              const char *name, int timeout_ms,
                              struct vmckpt_error *err)
{
    struct client *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        errprintf_errno(err, "client");
        return NULL;
    }
    cl->timeout_ms = timeout_ms;
    cl->next_id = 1;
    snprintf(cl->addr, sizeof(cl->addr), "%s", addr);
    cl->fd = net_connect(addr, WIRE_DEFAULT_PORT, timeout_ms, err);
    if (cl->fd < 0) {
        free(cl);
        return NULL;
    }
    wire_conn_init(&cl->conn, cl->fd, 0);
    if (client_secure(&cl->conn, server, key, role, name, timeout_ms, err) <
            0 ||
        auth_client(&cl->conn, key, role, name, timeout_ms, cl->server_name,
                    sizeof(cl->server_name), err) < 0) {
        errprefix(err, "%s", addr);
        client_close(cl);
        return NULL;
    }
    return cl;
}

void client_close(struct client *cl)
{
    int saved = errno;

    if (cl == NULL)
        return;
    wire_conn_dispose(&cl->conn);
    if (cl->fd >= 0)
        close(cl->fd);
    free(cl);
    errno = saved;
}

/* A send failed: a peer that refused what we sent says why in an Error
 * before it closes, and that reason is already in our receive buffer. Use
 * it rather than the bare 'connection reset'. Returns -1. */
static int why_refused(struct client *cl, struct vmckpt_error *err)
{
    struct vmckpt_error e2;
    Vmckpt__Envelope *env = NULL;
    int saved = errno;

    while (wire_conn_recv_wait(&cl->conn, &env, 100, &e2) == 0) {
        if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
            errprintf(err, "refused: %s", env->error->text);
            wire_free(env);
            errno = EREMOTEIO;
            return -1;
        }
        wire_free(env);
    }
    errno = saved;
    return -1;
}

int client_send(struct client *cl, int type, const void *payload,
                struct vmckpt_error *err)
{
    if (wire_conn_send(&cl->conn, type, cl->next_id++, payload, err) < 0 ||
        wire_conn_flush_wait(&cl->conn, cl->timeout_ms, err) < 0)
        return why_refused(cl, err);
    return 0;
}

int client_call(struct client *cl, int type, const void *payload,
                int reply_type, Vmckpt__Envelope **reply,
                struct vmckpt_error *err)
{
    uint64_t id = cl->next_id++;
    Vmckpt__Envelope *env = NULL;

    *reply = NULL;
    if (wire_conn_send(&cl->conn, type, id, payload, err) < 0 ||
        wire_conn_flush_wait(&cl->conn, cl->timeout_ms, err) < 0)
        return why_refused(cl, err);
    for (;;) {
        if (wire_conn_recv_wait(&cl->conn, &env, cl->timeout_ms, err) < 0)
            return errprefix(err, "%s: waiting for the reply to %s", cl->addr,
                             wire_type_name(type));
        if (env->request_id == id)
            break;
        /* the refusal of something sent before this (a store that could
         * not write a batch says so and closes): that is the answer */
        if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
            errprintf(err, "refused: %s", env->error->text);
            errno = EREMOTEIO;
            wire_free(env);
            return -1;
        }
        /* nothing else unsolicited is expected on a client connection */
        wire_free(env);
    }
    if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
        errprintf(err, "%s", env->error->text);
        errno = EREMOTEIO;
        wire_free(env);
        return -1;
    }
    if ((int)env->type != reply_type) {
        errprintf(err, "%s answered %s with %s", cl->addr, wire_type_name(type),
                  wire_type_name(env->type));
        errno = EPROTO;
        wire_free(env);
        return -1;
    }
    *reply = env;
    return 0;
}
