/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Names that come from outside (hosts, jobs, VMs) and end up in paths,
 * command lines or look-ups: one rule for the characters they may use. */
#ifndef VMCKPT_NAME_H
#define VMCKPT_NAME_H

#include <stddef.h>

/* 's' is 1 to 'max' characters of letters, digits, '.', '_' and '-'. */
int name_is_plain(const char *s, size_t max);

#endif
