/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's connection layer, the lowest of its modules: listening
 * sockets, accepted connections, the handshake, and the hand-over of each
 * message to a handler. It knows nothing of hosts, guests or jobs: the
 * layers above register the message routes and the hooks run when a
 * connection closes. */
#ifndef VMCKPT_COORD_SERVER_H
#define VMCKPT_COORD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/util/error.h"
#include "lib/util/evloop.h"
#include "lib/wire/auth.h"
#include "lib/wire/wire.h"

struct catalog;
struct coord;
struct hosts;
struct vms;
struct jobs;
struct ranks;
struct stats;
struct metrics;

/* One accepted connection; owned by the server, freed when it closes
 * (after every close hook ran). Others keep pointers to it only until
 * their close hook is called. */
struct conn {
    struct coord *co;
    int fd;
    struct ev_io io;
    struct wire_conn w;
    struct auth_server auth;
    struct ev_timer auth_timer; /* handshake deadline */
    char peer[96];              /* address, for logs */
    int closing;                /* flush what is queued, then close */
    int guest;                  /* accepted on the ranks' endpoint */
    void *host; /* hosts.c: the host that registered on it, or NULL */
    struct conn *next;
};

/* A message handler: 0 when the message was handled (answered or not),
 * -1 when no reply could be queued (the server then drops 'c'). 'env' is
 * the server's; it is freed after the call. */
typedef int (*server_handler_fn)(struct conn *c, const Vmckpt__Envelope *env);

/* Which roles may send a message type, and who handles it. */
struct server_route {
    Vmckpt__MsgType type;
    unsigned roles; /* SERVER_ROLE(AGENT) | ... */
    server_handler_fn fn;
};
#define SERVER_ROLE(r) (1u << VMCKPT__ROLE__ROLE_##r)

/* Called once for every connection that closes, before it is freed: the
 * layer above forgets it (requests relayed through it, its host, its
 * rank). */
typedef void (*server_close_fn)(struct coord *co, struct conn *c);
#define SERVER_MAX_CLOSE_HOOKS 8

/* The key a peer of the ranks' endpoint must prove, chosen by the role and
 * name its Hello gives; NULL refuses it. */
typedef const struct auth_key *server_key_fn(void *arg, Vmckpt__Role role,
                                             const char *name);

/* The coordinator as one process: set up by main(). The server owns the
 * fields of its block; every other module keeps its state behind its own
 * pointer and is the only one to look inside. */
struct coord {
    struct evloop *loop;
    struct catalog *cat;
    uint64_t next_req; /* request id of the next message to an agent */

    /* server.c */
    struct auth_key key;
    char name[128];
    unsigned auth_timeout_ms;
    size_t max_frame;
    int listen_fd;
    struct ev_io listen_io;
    int rank_fd; /* the ranks' endpoint, -1 when off */
    struct ev_io rank_io;
    server_key_fn *rank_key_for; /* the key a guest's peer proves */
    void *rank_key_arg;
    struct conn *conns;
    const struct server_route *routes;
    size_t nroutes;
    server_close_fn on_close[SERVER_MAX_CLOSE_HOOKS];
    size_t nclose;
    int corked; /* server_cork depth: server_send only queues */

    struct hosts *hosts; /* hosts.c */
    struct vms *vms;     /* vms.c */
    struct jobs *jobs;   /* jobs*.c */
    struct ranks *ranks; /* ranks.c */

    /* datakey.c: the secret sealed images' keys come from */
    int seal_images, have_datakey;
    uint8_t datakey[32];
    /* tickets.c: this run's secret the stores' ticket keys come from */
    uint8_t ticket_secret[32];

    /* metrics.c and its counters (stats.c); NULL while metrics are off */
    struct metrics *metrics;
    struct stats *stats;
};

/* Set up the server's block of 'co' (no socket yet). */
void server_init(struct coord *co, unsigned auth_timeout_ms, size_t max_frame);
/* The routes of every message; 'routes' (n of them) must outlive the
 * server. A type not in the table is answered with ERR_NOT_ALLOWED, so is
 * a type sent by a role the table does not allow. */
void server_set_routes(struct coord *co, const struct server_route *routes,
                       size_t n);
/* Add a close hook; hooks run in the order they were added. 0, or -1
 * when there are SERVER_MAX_CLOSE_HOOKS already. */
int server_on_close(struct coord *co, server_close_fn fn);
/* Listen on 'listen_addr' for agents and consoles (cluster key). 0, or -1
 * with 'err'. */
int server_start(struct coord *co, const char *listen_addr,
                 struct vmckpt_error *err);
/* The ranks' endpoint, for guests; 'addr' "" leaves it off (0). A guest
 * proves the key 'key_for' returns for the name it gives (the job's
 * token), never the cluster key. 0, or -1 with 'err'. */
int server_start_ranks(struct coord *co, const char *addr,
                       server_key_fn *key_for, void *arg,
                       struct vmckpt_error *err);
/* Close every connection (running the close hooks) and both sockets. */
void server_stop(struct coord *co);

/* Drop a connection now, logging 'why'; 'c' is freed. */
void server_drop(struct conn *c, const char *why);
/* Hold the writes of server_send (it only queues) until the matching
 * server_uncork, which writes what every connection queued: a fan-out of
 * several messages to each host (a BEGIN per guest) goes out in one write
 * per host rather than one per message. Nests. */
void server_cork(struct coord *co);
void server_uncork(struct coord *co);
/* Queue a message and try to write it (unless corked). 0, or -1 when it
 * cannot be queued (logged: the caller's handler then returns -1 and 'c'
 * is dropped) or when 'c' is NULL (a host not connected, not logged). */
int server_send(struct conn *c, int type, uint64_t request_id,
                const void *payload);
/* Queue an Error reply, logged with the peer's name. Returns 0, so a
 * handler can 'return server_error(...)'. */
int server_error(struct conn *c, uint64_t request_id, Vmckpt__ErrorCode code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
