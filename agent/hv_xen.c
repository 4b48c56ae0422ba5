/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Xen back end: the agent's only user of libxenctrl. Finds whether this
 * host is a Xen dom0, the hypervisor version and its paging support. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xenctrl.h>

#include "hv.h"

static void xen_probe(const struct conf *conf, struct hv_probe *out)
{
    xentoollog_logger_stdiostream *quiet;
    xc_interface *xch;
    xen_extraversion_t extra;
    xc_physinfo_t info;
    int ver;

    (void)conf;
    memset(out, 0, sizeof(*out));
    /* libxenctrl prints its own errors; on a host that is not a dom0 the
     * probe's one line below says it better */
    quiet = xtl_createlogger_stdiostream(stderr, XTL_CRITICAL, 0);
    xch = xc_interface_open((xentoollog_logger *)quiet, NULL, 0);
    if (xch == NULL) {
        int saved = errno;

        if (quiet != NULL)
            xtl_logger_destroy((xentoollog_logger *)quiet);
        errno = saved;
        snprintf(out->detail, sizeof(out->detail),
                 "not a Xen dom0 (cannot open the Xen control interface: "
                 "%s)",
                 strerror(errno));
        return;
    }
    ver = xc_version(xch, XENVER_version, NULL);
    memset(extra, 0, sizeof(extra));
    if (xc_version(xch, XENVER_extraversion, &extra) < 0)
        extra[0] = '\0';
    snprintf(out->version, sizeof(out->version), "%d.%d%.*s", ver >> 16,
             ver & 0xffff, (int)sizeof(extra), extra);
    memset(&info, 0, sizeof(info));
    if (xc_physinfo(xch, &info) == 0) {
        if (info.capabilities & XEN_SYSCTL_PHYSCAP_hap)
            snprintf(out->accel, sizeof(out->accel), "hap");
        else if (info.capabilities & XEN_SYSCTL_PHYSCAP_shadow)
            snprintf(out->accel, sizeof(out->accel), "shadow");
        else
            snprintf(out->detail, sizeof(out->detail),
                     "neither HAP nor shadow paging: no live checkpoint");
    }
    out->usable = 1;
    xc_interface_close(xch);
    if (quiet != NULL)
        xtl_logger_destroy((xentoollog_logger *)quiet);
}

const struct hv_ops hv_xen_ops = {
    .name = "xen",
    .probe = xen_probe,
};
