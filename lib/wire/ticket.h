/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Store tickets (docs/security.md, 'Stores'): the coordinator's word that
 * host H may write, or fetch, epoch E of JOB/VM at one store. A ticket is
 * HMAC-SHA256 under that store's ticket key, which only the coordinator
 * and the store's agent hold (the agent gets it when it registers), over
 * the operation, the job, the VM, the epoch and H. The store checks it
 * against the name the peer's credential proved, so a host cannot use a
 * ticket issued to another, nor one for another VM or epoch. */
#ifndef VMCKPT_WIRE_TICKET_H
#define VMCKPT_WIRE_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define TICKET_LEN     32
#define TICKET_KEY_LEN 32

enum ticket_op {
    TICKET_WRITE = 1, /* open a stream of the epoch (any of its parts) */
    TICKET_FETCH = 2, /* read the epoch back (its chain) */
};

/* The ticket for 'host' to do 'op' on epoch 'epoch' of JOB/VM at the
 * store whose key is 'key', into 'out'. 0, or -1 (a name too long for the
 * protocol, or the MAC failed). */
int ticket_make(const uint8_t key[TICKET_KEY_LEN], enum ticket_op op,
                const char *job, const char *vm, uint64_t epoch,
                const char *host, uint8_t out[TICKET_LEN]);

/* 0 when 't' ('len' bytes) is that ticket, -1 otherwise (compared in
 * constant time). */
int ticket_check(const uint8_t key[TICKET_KEY_LEN], enum ticket_op op,
                 const char *job, const char *vm, uint64_t epoch,
                 const char *host, const uint8_t *t, size_t len);

/* The ticket key of host 'host's store: HMAC-SHA256 of 'secret' (the
 * coordinator's, TICKET_KEY_LEN bytes) over a label and the name. 0, or
 * -1 (a name over 255 bytes, or the MAC failed). */
int ticket_key_derive(const uint8_t secret[TICKET_KEY_LEN], const char *host,
                      uint8_t out[TICKET_KEY_LEN]);

/* Printable name of 'op' ("write", "fetch"). */
const char *ticket_op_name(enum ticket_op op);

#endif
