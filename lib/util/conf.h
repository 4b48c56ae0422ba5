/* SPDX-License-Identifier: GPL-2.0-or-later */
/* INI configuration files (parsed by inih): typed look-ups with defaults and
 * errors that name the file, line and key. */
#ifndef VMCKPT_CONF_H
#define VMCKPT_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct conf;

/* Parse 'path'. NULL with 'err' filled on a missing file or syntax error. */
struct conf *conf_load(const char *path, struct vmckpt_error *err);
/* An empty configuration (all look-ups give their defaults). */
struct conf *conf_create(void);
void conf_destroy(struct conf *conf);

/* Set or replace a value (command-line overrides). 0 or -1 on ENOMEM. */
int conf_set(struct conf *conf, const char *section, const char *key,
             const char *value);

/* The raw value, or 'def' when the key is absent. Never fails. */
const char *conf_get(const struct conf *conf, const char *section,
                     const char *key, const char *def);

/* Typed look-ups: 0 and *out set (to 'def' when absent), or -1 with 'err'
 * naming the file, line and key when the value is malformed or outside
 * [min, max]. */
int conf_get_uint(const struct conf *conf, const char *section, const char *key,
                  uint64_t def, uint64_t min, uint64_t max, uint64_t *out,
                  struct vmckpt_error *err);
int conf_get_bool(const struct conf *conf, const char *section, const char *key,
                  bool def, bool *out, struct vmckpt_error *err);

/* Refuse keys of 'section' not in the NULL-terminated 'allowed' list, and
 * sections not in 'sections' (NULL-terminated); -1 with 'err' naming the
 * first offender. */
int conf_check(const struct conf *conf, const char *const sections[],
               const char *section, const char *const allowed[],
               struct vmckpt_error *err);

/* The file the configuration came from, or "(defaults)". */
const char *conf_path(const struct conf *conf);

#endif
