/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The sections and keys of vmckpt.conf: the tables each program checks its
 * file against, and their listing for --config-keys (the man page test
 * compares that listing with vmckpt.conf(5)). */
#ifndef VMCKPT_CONF_KEYS_H
#define VMCKPT_CONF_KEYS_H

#include <stdio.h>

#include "conf.h"

/* One section a program owns: its name and its NULL-terminated keys. A
 * program's list of sections ends with a NULL name. */
struct conf_section {
    const char *name;
    const char *const *keys;
};

/* Every section a vmckpt.conf may have (NULL-terminated). One file serves
 * every program; each checks the keys of its own sections only. */
extern const char *const conf_sections[];

/* The keys of [cluster], which every program reads (NULL-terminated). */
extern const char *const conf_cluster_keys[];

/* The keys of [tls], the host's credential (lib/wire/tls.h). */
extern const char *const conf_tls_keys[];

/* conf_check() of each section of 'own' with conf_sections as the known
 * sections: 0, or -1 with 'err' naming the first unknown section or key. */
int conf_check_sections(const struct conf *conf,
                        const struct conf_section own[],
                        struct vmckpt_error *err);

/* Print one "section.key" line per key of 'own' to 'out', in table order. */
void conf_print_keys(FILE *out, const struct conf_section own[]);

#endif
