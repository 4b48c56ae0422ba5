/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Store tickets: the run's secret, and tickets made with the key each
 * store host got at registration (hosts.c, ticket_key_derive()). */
#include "config.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hosts.h"
#include "tickets.h"
#include "lib/util/log.h"

int tickets_init(struct coord *co, struct vmckpt_error *err)
{
    if (RAND_bytes(co->ticket_secret, sizeof(co->ticket_secret)) != 1)
        return errprintf(err, "no random bytes for the store tickets' secret");
    return 0;
}

void tickets_fini(struct coord *co)
{
    OPENSSL_cleanse(co->ticket_secret, sizeof(co->ticket_secret));
}

int tickets_make(struct coord *co, const char *store, enum ticket_op op,
                 const char *job, const char *vm, uint64_t epoch,
                 const char *client, uint8_t buf[TICKET_LEN],
                 ProtobufCBinaryData *out)
{
    const uint8_t *key = hosts_ticket_key(co, store);

    out->data = NULL;
    out->len = 0;
    if (key == NULL || ticket_make(key, op, job, vm, epoch, client, buf) < 0) {
        log_err("%s/%s epoch %llu: no ticket for %s to %s at the store of %s%s",
                job, vm, (unsigned long long)epoch, client, ticket_op_name(op),
                store,
                key == NULL ? " (it has no ticket key: not registered since "
                              "this coordinator started)"
                            : "");
        return -1;
    }
    out->data = buf;
    out->len = TICKET_LEN;
    return 0;
}
