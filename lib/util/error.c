/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Error texts for callers that must tell a person what went wrong. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int errprintf(struct vmckpt_error *err, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    errno = saved;
    return -1;
}

int errprintf_errno(struct vmckpt_error *err, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    if (err != NULL) {
        size_t n;

        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
        n = strlen(err->text);
        snprintf(err->text + n, sizeof(err->text) - n, ": %s", strerror(saved));
    }
    errno = saved;
    return -1;
}

int errprefix(struct vmckpt_error *err, const char *fmt, ...)
{
    int saved = errno;
    char prefix[256];
    char old[sizeof(err->text)];
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof(prefix), fmt, ap);
        va_end(ap);
        memcpy(old, err->text, sizeof(old));
        snprintf(err->text, sizeof(err->text), "%s: %s", prefix, old);
    }
    errno = saved;
    return -1;
}
