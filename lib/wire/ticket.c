/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Store tickets: see ticket.h. The MAC input is a label, the operation as
 * one byte, then job, VM and host each with its length (one byte: a name
 * of up to 255 bytes; the protocol's are at most 64), and the epoch as 8
 * bytes little endian, so no two tickets' inputs run into each other. */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ticket.h"

#define TICKET_LABEL     "vmckpt-1 store ticket"
#define TICKET_KEY_LABEL "vmckpt-1 store ticket key"

static int put_name(uint8_t *buf, size_t *off, const char *s)
{
    size_t n = strlen(s);

    if (n > 255)
        return -1;
    buf[(*off)++] = (uint8_t)n;
    memcpy(buf + *off, s, n);
    *off += n;
    return 0;
}

int ticket_make(const uint8_t key[TICKET_KEY_LEN], enum ticket_op op,
                const char *job, const char *vm, uint64_t epoch,
                const char *host, uint8_t out[TICKET_LEN])
{
    uint8_t in[sizeof(TICKET_LABEL) + 1 + 3 * 256 + 8];
    size_t off = 0;
    unsigned maclen = 0;
    int i;

    memcpy(in, TICKET_LABEL, sizeof(TICKET_LABEL)); /* with its NUL */
    off = sizeof(TICKET_LABEL);
    in[off++] = (uint8_t)op;
    if (put_name(in, &off, job) < 0 || put_name(in, &off, vm) < 0 ||
        put_name(in, &off, host) < 0)
        return -1;
    for (i = 0; i < 8; i++)
        in[off++] = (uint8_t)(epoch >> (8 * i));
    if (HMAC(EVP_sha256(), key, TICKET_KEY_LEN, in, off, out, &maclen) ==
            NULL ||
        maclen != TICKET_LEN)
        return -1;
    return 0;
}

int ticket_check(const uint8_t key[TICKET_KEY_LEN], enum ticket_op op,
                 const char *job, const char *vm, uint64_t epoch,
                 const char *host, const uint8_t *t, size_t len)
{
    uint8_t want[TICKET_LEN];
    int rc;

    if (t == NULL || len != TICKET_LEN ||
        ticket_make(key, op, job, vm, epoch, host, want) < 0)
        return -1;
    rc = CRYPTO_memcmp(want, t, TICKET_LEN) == 0 ? 0 : -1;
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

int ticket_key_derive(const uint8_t secret[TICKET_KEY_LEN], const char *host,
                      uint8_t out[TICKET_KEY_LEN])
{
    uint8_t in[sizeof(TICKET_KEY_LABEL) + 255];
    size_t n = strlen(host);
    unsigned len = 0;

    if (n > 255)
        return -1;
    memcpy(in, TICKET_KEY_LABEL, sizeof(TICKET_KEY_LABEL)); /* with its NUL */
    memcpy(in + sizeof(TICKET_KEY_LABEL), host, n);
    if (HMAC(EVP_sha256(), secret, TICKET_KEY_LEN, in,
             sizeof(TICKET_KEY_LABEL) + n, out, &len) == NULL ||
        len != TICKET_KEY_LEN)
        return -1;
    return 0;
}

const char *ticket_op_name(enum ticket_op op)
{
    return op == TICKET_WRITE ? "write" : op == TICKET_FETCH ? "fetch" : "?";
}
