/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks_log.h"

static char prefix[64] = "vmckpt-mpi";

void hooks_log_prefix(const char *p)
{
    snprintf(prefix, sizeof(prefix), "%s", p);
}

static void out(const char *fmt, va_list ap)
{
    char line[512];

    vsnprintf(line, sizeof(line), fmt, ap);
    /* one write, so lines of several ranks do not interleave */
    fprintf(stderr, "%s: %s\n", prefix, line);
}

void hooks_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    out(fmt, ap);
    va_end(ap);
}

void hooks_debug(const char *fmt, ...)
{
    const char *d = getenv("VMCKPT_MPI_DEBUG");
    va_list ap;

    if (d == NULL || strcmp(d, "1") != 0)
        return;
    va_start(ap, fmt);
    out(fmt, ap);
    va_end(ap);
}
