/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The checks of a guest's spec before the coordinator relays its start:
 * what the spec must hold, which back end runs it, and its disks. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hosts.h"
#include "vms_int.h"

static Vmckpt__ErrorCode refuse(char *why, size_t len, Vmckpt__ErrorCode code,
                                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static Vmckpt__ErrorCode refuse(char *why, size_t len, Vmckpt__ErrorCode code,
                                const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return code;
}

/* A path QEMU's -blockdev and the agent's chain record can carry as it
 * is: absolute, no ',' (QEMU's option separator), no blank or quote. */
static int disk_path_ok(const char *p)
{
    size_t n = strlen(p);

    return p[0] == '/' && n < 1024 && strpbrk(p, ", \t\r\n\"'\\") == NULL;
}

static Vmckpt__ErrorCode check_disks(const Vmckpt__VmSpec *s, char *why,
                                     size_t len)
{
    const Vmckpt__ErrorCode inval = VMCKPT__ERROR_CODE__ERR_INVALID;
    size_t i;

    if (s->n_disks == 0)
        return VMCKPT__ERROR_CODE__ERR_NONE;
    if (s->n_disks > VMS_MAX_DISKS)
        return refuse(why, len, inval, "%zu disks: a guest has at most %d",
                      s->n_disks, VMS_MAX_DISKS);
    /* a Xen guest's disks would need a snapshot in its disk back end
     * (docs/xen.md, 'Disks'); any other back end has none either */
    if (s->hypervisor[0] != '\0' && strcmp(s->hypervisor, "qemu") != 0)
        return refuse(why, len, inval,
                      "guest disks are not supported for %.32s guests yet "
                      "(see docs/xen.md, 'Disks'): give --hypervisor qemu "
                      "or no --disk",
                      s->hypervisor);
    for (i = 0; i < s->n_disks; i++) {
        const Vmckpt__DiskSpec *d = s->disks[i];

        if (d == NULL || !disk_path_ok(d->path))
            return refuse(why, len, inval,
                          "disk %zu: the base image must be an absolute path "
                          "without ',', blanks or quotes",
                          i);
        if (d->format[0] != '\0' && strcmp(d->format, "qcow2") != 0 &&
            strcmp(d->format, "raw") != 0)
            return refuse(why, len, inval,
                          "disk %zu (%s): format '%.16s': give raw or qcow2", i,
                          d->path, d->format);
        if (d->base_mode[0] != '\0' && strcmp(d->base_mode, "shared") != 0 &&
            strcmp(d->base_mode, "copy") != 0)
            return refuse(why, len, inval,
                          "disk %zu (%s): base '%.16s': give shared or copy", i,
                          d->path, d->base_mode);
    }
    return VMCKPT__ERROR_CODE__ERR_NONE;
}

Vmckpt__ErrorCode vms_check_spec(struct coord *co, const Vmckpt__VmSpec *s,
                                 char *why, size_t len)
{
    const Vmckpt__ErrorCode inval = VMCKPT__ERROR_CODE__ERR_INVALID;

    if (s == NULL || s->name[0] == '\0' || s->job[0] == '\0' ||
        s->host[0] == '\0' || s->memory_mb < 16 ||
        (s->kernel[0] == '\0' && s->xl_config[0] == '\0'))
        return refuse(why, len, inval,
                      "vm start needs a job, a name, a host, a kernel (or, "
                      "for Xen, an xl configuration) and at least 16 MiB");
    if ((s->xl_config[0] != '\0' || s->domain[0] != '\0') &&
        strcmp(s->hypervisor, "xen") != 0)
        return refuse(why, len, inval,
                      "an xl configuration or a domain to take over is for "
                      "--hypervisor xen");
    if (s->domain[0] != '\0' && s->xl_config[0] == '\0')
        return refuse(why, len, inval,
                      "taking over domain %s needs its xl configuration "
                      "(--xl-config), to restore it",
                      s->domain);
    /* another name: a back end the host registered (the simulated hosts
     * of the scale tests offer "simulated") */
    if (s->hypervisor[0] != '\0' && strcmp(s->hypervisor, "qemu") != 0 &&
        strcmp(s->hypervisor, "xen") != 0 &&
        !hosts_offers(co, s->host, s->hypervisor))
        return refuse(why, len, inval, "hypervisor '%.32s': give qemu or xen",
                      s->hypervisor);
    if (strcmp(s->hypervisor, "xen") == 0 && hosts_conn(co, s->host) != NULL &&
        !hosts_offers(co, s->host, "xen"))
        return refuse(why, len, inval,
                      "host %s has no usable Xen back end (see 'vmckpt "
                      "hosts')",
                      s->host);
    return check_disks(s, why, len);
}
