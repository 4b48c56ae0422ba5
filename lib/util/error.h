/* SPDX-License-Identifier: GPL-2.0-or-later */
/* An error text a caller can show a person: filled by errprintf(), which
 * returns -1 so a failure reads "return errprintf(err, ...)". */
#ifndef VMCKPT_ERROR_H
#define VMCKPT_ERROR_H

struct vmckpt_error {
    char text[512];
};

/* Format a message into 'err' (may be NULL) and return -1. errno is kept. */
int errprintf(struct vmckpt_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Same, appending ": strerror(errno)". */
int errprintf_errno(struct vmckpt_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the message already in 'err' with more context; returns -1. */
int errprefix(struct vmckpt_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
