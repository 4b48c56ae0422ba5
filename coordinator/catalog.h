/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's catalog: an SQLite database (WAL) that survives
 * restarts. The only user of SQLite. This first schema holds hosts; jobs,
 * VMs and epochs join it as the checkpoint protocol lands. */
#ifndef VMCKPT_CATALOG_H
#define VMCKPT_CATALOG_H

#include <stdint.h>

#include "lib/util/error.h"

struct catalog;

/* A host row. Strings are owned by the struct (catalog_host_dispose). */
struct catalog_host {
    char *name;
    char *addr;
    char *store_addr;
    char *software;
    char *hypervisors; /* "name/version/accel/usable;..." as registered */
    unsigned cores, pus, numa_nodes;
    uint64_t memory_bytes;
    char *state;
    int64_t registered_at; /* unix seconds */
    int64_t last_seen;     /* unix seconds of the last heartbeat */
};

/* Open or create the catalog at 'path'. NULL with 'err' on failure, e.g. a
 * file that is not a vmckpt catalog or is of a newer schema. */
struct catalog *catalog_open(const char *path, struct vmckpt_error *err);
void catalog_close(struct catalog *cat);

/* Insert or replace the row of h->name. */
int catalog_host_put(struct catalog *cat, const struct catalog_host *h,
                     struct vmckpt_error *err);
/* Update state and last_seen of one host. */
int catalog_host_touch(struct catalog *cat, const char *name, const char *state,
                       int64_t last_seen, struct vmckpt_error *err);
/* Call 'fn' for each host row, ordered by name. Stops at fn() < 0. */
int catalog_host_each(struct catalog *cat,
                      int (*fn)(const struct catalog_host *h, void *arg),
                      void *arg, struct vmckpt_error *err);
void catalog_host_dispose(struct catalog_host *h);

#endif
