/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the catalog module (catalog.c, catalog_retain.c): the handle and
 * its prepared statements. */
#ifndef VMCKPT_COORDINATOR_CATALOG_INT_H
#define VMCKPT_COORDINATOR_CATALOG_INT_H

#include <sqlite3.h>

#include "lib/util/error.h"

/* Statements kept prepared, by their SQL (a string constant of the
 * module: its address is the key). A commit of a large job runs a few
 * statements per VM: compiled each time, they took most of its time. */
#define STMT_CACHE 32
struct cached_stmt {
    const char *sql;
    sqlite3_stmt *st;
    int busy; /* handed out by prep, not yet given back by unprep */
};

struct catalog {
    sqlite3 *db;
    char *path;
    struct cached_stmt cache[STMT_CACHE];
};

/* A prepared statement of 'sql' (a string constant: kept by its address),
 * from the cache when there; given back with catalog_unprep. */
int catalog_prep(struct catalog *cat, const char *sql, sqlite3_stmt **st,
                 struct vmckpt_error *err);
void catalog_unprep(struct catalog *cat, sqlite3_stmt *st);
/* Step 'st' once, expecting no row; give it back. 0 or -1 with 'err'. */
int catalog_step_done(struct catalog *cat, sqlite3_stmt *st,
                      struct vmckpt_error *err);

#endif
