/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SQLite catalog with a numbered schema; WAL so readers never block the
 * coordinator, synchronous=FULL so a committed row survives a crash. */
#include "config.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

#define SCHEMA_VERSION 1

struct catalog {
    sqlite3 *db;
    char *path;
};

static const char schema_v1[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE hosts ("
    "  name TEXT PRIMARY KEY,"
    "  addr TEXT NOT NULL DEFAULT '',"
    "  store_addr TEXT NOT NULL DEFAULT '',"
    "  software TEXT NOT NULL DEFAULT '',"
    "  hypervisors TEXT NOT NULL DEFAULT '',"
    "  cores INTEGER NOT NULL DEFAULT 0,"
    "  pus INTEGER NOT NULL DEFAULT 0,"
    "  numa_nodes INTEGER NOT NULL DEFAULT 0,"
    "  memory_bytes INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT 'unknown',"
    "  registered_at INTEGER NOT NULL DEFAULT 0,"
    "  last_seen INTEGER NOT NULL DEFAULT 0);"
    "INSERT INTO meta VALUES ('schema', '1');"
    "INSERT INTO meta VALUES ('application', 'vmckpt');";

static int exec(struct catalog *cat, const char *sql, struct vmckpt_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(cat->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        errprintf(err, "catalog %s: %s", cat->path, msg ? msg : "error");
        sqlite3_free(msg);
        errno = EIO;
        return -1;
    }
    return 0;
}

static int schema_version(struct catalog *cat, int *version,
                          struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    *version = 0;
    rc = sqlite3_prepare_v2(cat->db,
                            "SELECT count(*) FROM sqlite_master WHERE "
                            "type='table' AND name='meta'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 0) {
        sqlite3_finalize(st);
        /* no meta table: empty database, or some other application's */
        rc = sqlite3_prepare_v2(cat->db, "SELECT count(*) FROM sqlite_master",
                                -1, &st, NULL);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
            goto fail;
        if (sqlite3_column_int(st, 0) != 0) {
            sqlite3_finalize(st);
            errno = EINVAL;
            return errprintf(err, "%s is not a vmckpt catalog", cat->path);
        }
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    rc = sqlite3_prepare_v2(
        cat->db, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = atoi((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
fail:
    errno = EIO;
    return errprintf(err, "catalog %s: %s", cat->path, sqlite3_errmsg(cat->db));
}

void catalog_close(struct catalog *cat)
{
    int saved = errno;

    if (cat == NULL)
        return;
    sqlite3_close(cat->db);
    free(cat->path);
    free(cat);
    errno = saved;
}

struct catalog *catalog_open(const char *path, struct vmckpt_error *err)
{
    struct catalog *cat = calloc(1, sizeof(*cat));
    int version;

    if (cat == NULL || (cat->path = strdup(path)) == NULL) {
        errprintf_errno(err, "catalog");
        free(cat);
        return NULL;
    }
    if (sqlite3_open_v2(path, &cat->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        errno = EIO;
        errprintf(err, "cannot open catalog %s: %s", path,
                  cat->db ? sqlite3_errmsg(cat->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(cat->db, 5000);
    if (exec(cat, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) <
            0 ||
        schema_version(cat, &version, err) < 0)
        goto fail;
    if (version == 0) {
        if (exec(cat, "BEGIN", err) < 0)
            goto fail;
        if (exec(cat, schema_v1, err) < 0) {
            exec(cat, "ROLLBACK", NULL);
            goto fail;
        }
        if (exec(cat, "COMMIT", err) < 0)
            goto fail;
    } else if (version > SCHEMA_VERSION) {
        errno = EINVAL;
        errprintf(err,
                  "catalog %s has schema %d; this coordinator knows "
                  "up to %d (newer vmckpt?)",
                  path, version, SCHEMA_VERSION);
        goto fail;
    }
    return cat;
fail:
    catalog_close(cat);
    return NULL;
}

static int step_done(struct catalog *cat, sqlite3_stmt *st,
                     struct vmckpt_error *err)
{
    int rc = sqlite3_step(st);

    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        errno = EIO;
        return errprintf(err, "catalog %s: %s", cat->path,
                         sqlite3_errmsg(cat->db));
    }
    return 0;
}

int catalog_host_put(struct catalog *cat, const struct catalog_host *h,
                     struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(
            cat->db,
            "INSERT OR REPLACE INTO hosts (name, addr, store_addr, software,"
            " hypervisors, cores, pus, numa_nodes, memory_bytes, state,"
            " registered_at, last_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            -1, &st, NULL) != SQLITE_OK) {
        errno = EIO;
        return errprintf(err, "catalog: %s", sqlite3_errmsg(cat->db));
    }
    sqlite3_bind_text(st, 1, h->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, h->addr ? h->addr : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, h->store_addr ? h->store_addr : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 4, h->software ? h->software : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, h->hypervisors ? h->hypervisors : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, h->cores);
    sqlite3_bind_int64(st, 7, h->pus);
    sqlite3_bind_int64(st, 8, h->numa_nodes);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)h->memory_bytes);
    sqlite3_bind_text(st, 10, h->state ? h->state : "unknown", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, h->registered_at);
    sqlite3_bind_int64(st, 12, h->last_seen);
    return step_done(cat, st, err);
}

int catalog_host_touch(struct catalog *cat, const char *name, const char *state,
                       int64_t last_seen, struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (sqlite3_prepare_v2(cat->db,
                           "UPDATE hosts SET state=?, last_seen=? WHERE "
                           "name=?",
                           -1, &st, NULL) != SQLITE_OK) {
        errno = EIO;
        return errprintf(err, "catalog: %s", sqlite3_errmsg(cat->db));
    }
    sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, last_seen);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
    return step_done(cat, st, err);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);

    return strdup(s ? (const char *)s : "");
}

void catalog_host_dispose(struct catalog_host *h)
{
    free(h->name);
    free(h->addr);
    free(h->store_addr);
    free(h->software);
    free(h->hypervisors);
    free(h->state);
    memset(h, 0, sizeof(*h));
}

int catalog_host_each(struct catalog *cat,
                      int (*fn)(const struct catalog_host *h, void *arg),
                      void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc, ret = 0;

    if (sqlite3_prepare_v2(
            cat->db,
            "SELECT name, addr, store_addr, software, hypervisors, cores,"
            " pus, numa_nodes, memory_bytes, state, registered_at, last_seen"
            " FROM hosts ORDER BY name",
            -1, &st, NULL) != SQLITE_OK) {
        errno = EIO;
        return errprintf(err, "catalog: %s", sqlite3_errmsg(cat->db));
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct catalog_host h;

        h.name = col_dup(st, 0);
        h.addr = col_dup(st, 1);
        h.store_addr = col_dup(st, 2);
        h.software = col_dup(st, 3);
        h.hypervisors = col_dup(st, 4);
        h.cores = (unsigned)sqlite3_column_int64(st, 5);
        h.pus = (unsigned)sqlite3_column_int64(st, 6);
        h.numa_nodes = (unsigned)sqlite3_column_int64(st, 7);
        h.memory_bytes = (uint64_t)sqlite3_column_int64(st, 8);
        h.state = col_dup(st, 9);
        h.registered_at = sqlite3_column_int64(st, 10);
        h.last_seen = sqlite3_column_int64(st, 11);
        if (h.name == NULL || h.addr == NULL || h.store_addr == NULL ||
            h.software == NULL || h.hypervisors == NULL || h.state == NULL) {
            catalog_host_dispose(&h);
            ret = errprintf_errno(err, "catalog");
            break;
        }
        ret = fn(&h, arg);
        catalog_host_dispose(&h);
        if (ret < 0) {
            errprintf(err, "catalog: host callback failed");
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        errno = EIO;
        ret = errprintf(err, "catalog: %s", sqlite3_errmsg(cat->db));
    }
    sqlite3_finalize(st);
    return ret;
}
