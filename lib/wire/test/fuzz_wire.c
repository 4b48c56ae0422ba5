/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: arbitrary bytes arriving on a connection go through the
 * frame reader and envelope decoder; nothing may crash, leak or read out
 * of bounds, and every refusal must come with an error text. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_conn c;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__Envelope *env;
    int rc;

    err.text[0] = '\0';
    wire_conn_init(&c, -1, 4096);
    c.rbuf = malloc(size + 1);
    if (c.rbuf == NULL)
        return 0;
    memcpy(c.rbuf, data, size);
    c.rlen = size;
    c.rcap = size + 1;
    while ((rc = wire_conn_next(&c, &env, &fault, &err)) == 1) {
        /* a decoded envelope must carry the payload of its type */
        if (wire_payload(env) == NULL || wire_type_lookup(env->type) == NULL)
            abort();
        wire_free(env);
    }
    if (rc < 0 && (fault == WIRE_OK || err.text[0] == '\0'))
        abort();
    wire_conn_dispose(&c);
    return 0;
}
