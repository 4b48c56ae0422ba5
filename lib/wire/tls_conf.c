/* SPDX-License-Identifier: GPL-2.0-or-later */
/* [tls] of vmckpt.conf: the host's credential (tls_conf.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "tls.h"
#include "tls_conf.h"

int tls_setup_conf(const struct conf *conf, int flags, struct vmckpt_error *err)
{
    const char *acert = conf_get(conf, "tls", "admin_cert", NULL);
    const char *akey = conf_get(conf, "tls", "admin_key", NULL);
    struct tls_files f = {
        .ca = conf_get(conf, "tls", "ca", NULL),
        .cert = conf_get(conf, "tls", "cert", NULL),
        .key = conf_get(conf, "tls", "key", NULL),
        .crl = conf_get(conf, "tls", "crl", NULL),
        .ciphersuites = conf_get(conf, "tls", "ciphersuites", NULL),
    };
    const char *ktls = conf_get(conf, "tls", "ktls", "off");

    if ((acert == NULL) != (akey == NULL)) {
        errno = EINVAL;
        return errprintf(err, "[tls] admin_cert and admin_key go together");
    }
    if (flags & TLS_CONF_ADMIN && acert != NULL) {
        f.cert = acert;
        f.key = akey;
    }

    if (f.ca == NULL && f.cert == NULL && f.key == NULL) {
        if (f.crl != NULL || f.ciphersuites != NULL) {
            errno = EINVAL;
            return errprintf(err, "[tls] needs ca, cert and key");
        }
        return 0;
    }
    if (strcmp(ktls, "on") == 0)
        f.ktls = !!(flags & TLS_CONF_KTLS);
    else if (strcmp(ktls, "off") != 0) {
        errno = EINVAL;
        return errprintf(err, "[tls] ktls must be on or off, not '%s'", ktls);
    }
    f.bulk = !!(flags & TLS_CONF_BULK);
    if (tls_setup(&f, err) < 0)
        return errprefix(err, "[tls]");
    return 1;
}
