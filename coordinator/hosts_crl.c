/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The cluster CA's revocation list on its way to the agents (their stores
 * refuse revoked peers too), and the end of a host's connection that a new
 * list revokes (docs/security.md). */
#include "config.h"

#include <stdlib.h>

#include "hosts.h"
#include "server.h"
#include "lib/util/log.h"
#include "lib/wire/tls.h"

int hosts_crl_attach(struct conn *c, const char *host, uint64_t *sent,
                     ProtobufCBinaryData *out)
{
    uint8_t *pem;
    size_t len;
    uint64_t v;

    out->data = NULL;
    out->len = 0;
    if (!tls_enabled() || tls_crl_get(*sent, &pem, &len, &v) < 0 || v == *sent)
        return 0;
    if (*sent != 0 && tls_peer_revoked(&c->w)) {
        free(pem);
        log_warn("host %s: its credential is revoked by the new revocation "
                 "list: closing its connection",
                 host);
        server_error(c, 0, VMCKPT__ERROR_CODE__ERR_AUTH,
                     "this host's credential was revoked");
        c->closing = 1;
        return -1;
    }
    *sent = v;
    out->data = pem;
    out->len = len;
    return pem != NULL;
}
