/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The [tls] section of vmckpt.conf (docs/man/vmckpt.conf.5). */
#ifndef VMCKPT_TLS_CONF_H
#define VMCKPT_TLS_CONF_H

#include "lib/util/conf.h"
#include "lib/util/error.h"

/* Flags of tls_setup_conf(): */
#define TLS_CONF_KTLS                                                          \
    1 /* kernel TLS if [tls] ktls = on (a daemon that                          \
       * ignores SIGPIPE) */
#define TLS_CONF_ADMIN                                                         \
    2                   /* an administrator's program: [tls] admin_cert and    \
                         * admin_key when set, else cert and key */
#define TLS_CONF_BULK 4 /* a program that moves images (tls.h, bulk) */

/* Set up TLS from [tls] ca, cert, key, crl, ciphersuites, ktls: 1 when
 * set up, 0 when the section names no credential (the cluster key's
 * handshake alone), -1 with 'err'. */
int tls_setup_conf(const struct conf *conf, int flags,
                   struct vmckpt_error *err);

#endif
