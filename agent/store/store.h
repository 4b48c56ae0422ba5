/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The store an agent runs for its peers: accepts authenticated image
 * streams (ROLE_PEER) and writes them with image.c; serves stored epochs
 * back for restores. One thread per peer connection, so disk writes never
 * stall the agent's event loop. */
#ifndef VMCKPT_STORE_H
#define VMCKPT_STORE_H

#include <pthread.h>
#include <stdint.h>

#include "lib/util/evloop.h"
#include "lib/wire/auth.h"
#include "lib/wire/ticket.h"

#define STORE_DEFAULT_PORT 7471
#define STORE_MAX_FRAME    (4u << 20)

struct store_busy;

struct store {
    char dir[4096];
    const struct auth_key *key;
    char name[64];
    int listen_fd;
    struct ev_io io;
    pthread_mutex_t lock;
    struct store_busy *busy; /* job/VM pairs being written */
    int threads;             /* live peer threads */
    int stopping;
    /* bytes of image data written (epochs made durable: peers' streams
     * and this host's local copies) and read (restores: peers' fetches
     * and local ones); updated by any thread with store_count() */
    uint64_t written, read;
    /* store tickets (lib/wire/ticket.h): required unless 'tickets' is 0
     * (the agent's store_tickets = no); the key from the coordinator's
     * registration, under 'lock' */
    int tickets, have_ticket_key;
    uint8_t ticket_key[TICKET_KEY_LEN];
};

/* Listen on 'addr' and serve peers from 'loop'. 0 or -1 with 'err'. */
int store_start(struct store *s, struct evloop *loop, const char *dir,
                const char *addr, const struct auth_key *key, const char *name,
                struct vmckpt_error *err);
/* The ticket key the coordinator gave at registration ('len' must be
 * TICKET_KEY_LEN; anything else leaves the store without one, refusing
 * every write and fetch while tickets are required). 1 when the key
 * changed, 0 when it is the one the store had, -1 when it is none. */
int store_set_ticket_key(struct store *s, const uint8_t *key, size_t len);
/* Add to s->written and s->read (atomically: from any thread). */
void store_count(struct store *s, uint64_t written, uint64_t read);

/* Stop accepting and wait (a bounded time) for peer threads to end. */
void store_stop(struct store *s, struct evloop *loop);

#endif
