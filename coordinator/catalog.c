/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SQLite catalog with a numbered schema; WAL so readers never block the
 * coordinator, synchronous=FULL so a committed row survives a crash. */
#include "config.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_int.h"

#define SCHEMA_VERSION 8

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

static const char schema_v2[] =
    "CREATE TABLE vms ("
    "  job TEXT NOT NULL, name TEXT NOT NULL, host TEXT NOT NULL,"
    "  state TEXT NOT NULL, spec BLOB, last_epoch INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (job, name));"
    "CREATE TABLE epochs ("
    "  job TEXT NOT NULL, vm TEXT NOT NULL, epoch INTEGER NOT NULL,"
    "  parent INTEGER NOT NULL, state TEXT NOT NULL, host TEXT NOT NULL,"
    "  store_host TEXT NOT NULL, store_addr TEXT NOT NULL,"
    "  pages INTEGER, wire_bytes INTEGER, disk_bytes INTEGER,"
    "  pause_us INTEGER, total_ms INTEGER, rounds INTEGER,"
    "  started_at INTEGER, ended_at INTEGER, note TEXT,"
    "  PRIMARY KEY (job, vm, epoch));"
    "UPDATE meta SET value = '2' WHERE key = 'schema';";

/* v3: jobs with their policies, one row per job epoch, and each VM's
 * pause interval (wall clock of its host) in an epoch. */
static const char schema_v3[] =
    "CREATE TABLE jobs ("
    "  name TEXT PRIMARY KEY, state TEXT NOT NULL,"
    "  interval TEXT NOT NULL DEFAULT 'off',"
    "  auto_restart INTEGER NOT NULL DEFAULT 0,"
    "  mtbf_s INTEGER NOT NULL DEFAULT 0,"
    "  cost_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_epoch INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE job_epochs ("
    "  job TEXT NOT NULL, epoch INTEGER NOT NULL, state TEXT NOT NULL,"
    "  nvms INTEGER NOT NULL, started_at INTEGER, ended_at INTEGER,"
    "  precopy_ms INTEGER, window_us INTEGER, max_pause_us INTEGER,"
    "  cost_ms INTEGER, note TEXT,"
    "  PRIMARY KEY (job, epoch));"
    "ALTER TABLE epochs ADD COLUMN paused_at_ns INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE epochs ADD COLUMN resumed_at_ns INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET value = '3' WHERE key = 'schema';";

/* v4: where an epoch's pages came from: "uffd-wp" (the agent's own
 * pre-copy) or "qemu-migration" (QEMU's stream, no dirty tracking). */
static const char schema_v4[] =
    "ALTER TABLE epochs ADD COLUMN source TEXT NOT NULL DEFAULT 'uffd-wp';"
    "UPDATE meta SET value = '4' WHERE key = 'schema';";

/* v5: MPI ranks and compression. Each job's token (hex) for its ranks'
 * endpoint and its LZ4 policy; each job
 * epoch's alignment ("" no ranks, "aligned", "unaligned: why") and the
 * barrier count every rank stopped at ("rank:count ..."). */
static const char schema_v5[] =
    "ALTER TABLE jobs ADD COLUMN token TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE jobs ADD COLUMN lz4 INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE job_epochs ADD COLUMN align TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE job_epochs ADD COLUMN barriers TEXT NOT NULL DEFAULT '';"
    "UPDATE meta SET value = '5' WHERE key = 'schema';";

/* v6: each job's incarnation, bumped by every restart (a VM's own is in
 * its spec). */
static const char schema_v6[] =
    "ALTER TABLE jobs ADD COLUMN incarnation INTEGER NOT NULL DEFAULT 1;"
    "UPDATE meta SET value = '6' WHERE key = 'schema';";

/* v7: each job's retention (-1: the coordinator's keep_epochs) and the
 * hosts its automatic restarts use ("" any). */
static const char schema_v7[] =
    "ALTER TABLE jobs ADD COLUMN keep_epochs INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE jobs ADD COLUMN restart_hosts TEXT NOT NULL DEFAULT '';"
    "UPDATE meta SET value = '7' WHERE key = 'schema';";

/* v8: whether an epoch's image is sealed (its restore needs the job's
 * data key and refuses anything clear). */
static const char schema_v8[] =
    "ALTER TABLE epochs ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET value = '8' WHERE key = 'schema';";

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
    size_t i;

    if (cat == NULL)
        return;
    for (i = 0; i < STMT_CACHE; i++)
        sqlite3_finalize(cat->cache[i].st);
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
    if (version < SCHEMA_VERSION) {
        if (exec(cat, "BEGIN", err) < 0)
            goto fail;
        if ((version < 1 && exec(cat, schema_v1, err) < 0) ||
            (version < 2 && exec(cat, schema_v2, err) < 0) ||
            (version < 3 && exec(cat, schema_v3, err) < 0) ||
            (version < 4 && exec(cat, schema_v4, err) < 0) ||
            (version < 5 && exec(cat, schema_v5, err) < 0) ||
            (version < 6 && exec(cat, schema_v6, err) < 0) ||
            (version < 7 && exec(cat, schema_v7, err) < 0) ||
            (version < 8 && exec(cat, schema_v8, err) < 0)) {
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

/* The statement for 'sql' (a string constant), from the cache when it
 * is there and not in use; give it back with unprep. 0, or -1 with
 * 'err'. */
int catalog_prep(struct catalog *cat, const char *sql, sqlite3_stmt **st,
                 struct vmckpt_error *err)
{
    struct cached_stmt *free_slot = NULL;
    size_t i;

    for (i = 0; i < STMT_CACHE; i++) {
        struct cached_stmt *c = &cat->cache[i];

        if (c->sql == sql && !c->busy) {
            c->busy = 1;
            *st = c->st;
            return 0;
        }
        if (c->sql == NULL && free_slot == NULL)
            free_slot = c;
    }
    if (sqlite3_prepare_v3(cat->db, sql, -1,
                           free_slot ? SQLITE_PREPARE_PERSISTENT : 0, st,
                           NULL) != SQLITE_OK) {
        errno = EIO;
        return errprintf(err, "catalog: %s", sqlite3_errmsg(cat->db));
    }
    if (free_slot != NULL) {
        free_slot->sql = sql;
        free_slot->st = *st;
        free_slot->busy = 1;
    }
    return 0;
}

/* Give back a statement of prep: reset for its next use if cached, else
 * finalized. */
void catalog_unprep(struct catalog *cat, sqlite3_stmt *st)
{
    size_t i;

    for (i = 0; i < STMT_CACHE; i++)
        if (cat->cache[i].st == st && cat->cache[i].busy) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            cat->cache[i].busy = 0;
            return;
        }
    sqlite3_finalize(st);
}

int catalog_step_done(struct catalog *cat, sqlite3_stmt *st,
                      struct vmckpt_error *err)
{
    int rc = sqlite3_step(st);

    catalog_unprep(cat, st);
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
    return catalog_step_done(cat, st, err);
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
    return catalog_step_done(cat, st, err);
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
    catalog_unprep(cat, st);
    return ret;
}

int catalog_vm_put(struct catalog *cat, const struct catalog_vm *v,
                   struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(cat,
                     "INSERT OR REPLACE INTO vms (job, name, host, state, spec,"
                     " last_epoch) VALUES (?,?,?,?,?,?)",
                     &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, v->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, v->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, v->state, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, v->spec, (int)v->spec_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)v->last_epoch);
    return catalog_step_done(cat, st, err);
}

int catalog_vm_delete(struct catalog *cat, const char *job, const char *name,
                      struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(cat, "DELETE FROM vms WHERE job=? AND name=?", &st, err) <
        0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return catalog_step_done(cat, st, err);
}

int catalog_vm_each(struct catalog *cat,
                    int (*fn)(const struct catalog_vm *v, void *arg), void *arg,
                    struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    if (catalog_prep(cat,
                     "SELECT job, name, host, state, spec, last_epoch FROM vms"
                     " ORDER BY job, name",
                     &st, err) < 0)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct catalog_vm v;

        v.job = (const char *)sqlite3_column_text(st, 0);
        v.name = (const char *)sqlite3_column_text(st, 1);
        v.host = (const char *)sqlite3_column_text(st, 2);
        v.state = (const char *)sqlite3_column_text(st, 3);
        v.spec = sqlite3_column_blob(st, 4);
        v.spec_len = (size_t)sqlite3_column_bytes(st, 4);
        v.last_epoch = (uint64_t)sqlite3_column_int64(st, 5);
        if (fn(&v, arg) < 0)
            break;
    }
    catalog_unprep(cat, st);
    return 0;
}

int catalog_epoch_put(struct catalog *cat, const struct catalog_epoch *e,
                      struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(
            cat,
            "INSERT OR REPLACE INTO epochs (job, vm, epoch, parent, state,"
            " host, store_host, store_addr, pages, wire_bytes, disk_bytes,"
            " pause_us, total_ms, rounds, started_at, ended_at, note,"
            " paused_at_ns, resumed_at_ns, source, sealed)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, e->job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->vm, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)e->epoch);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)e->parent);
    sqlite3_bind_text(st, 5, e->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, e->store_host, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, e->store_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)e->pages);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)e->wire_bytes);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)e->disk_bytes);
    sqlite3_bind_int64(st, 12, (sqlite3_int64)e->pause_us);
    sqlite3_bind_int64(st, 13, (sqlite3_int64)e->total_ms);
    sqlite3_bind_int64(st, 14, (sqlite3_int64)e->rounds);
    sqlite3_bind_int64(st, 15, e->started_at);
    sqlite3_bind_int64(st, 16, e->ended_at);
    sqlite3_bind_text(st, 17, e->note ? e->note : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 18, (sqlite3_int64)e->paused_at_ns);
    sqlite3_bind_int64(st, 19, (sqlite3_int64)e->resumed_at_ns);
    sqlite3_bind_text(st, 20, e->source ? e->source : "uffd-wp", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 21, e->sealed);
    return catalog_step_done(cat, st, err);
}

int catalog_epoch_next(struct catalog *cat, const char *job, uint64_t *next,
                       struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    *next = 0;
    if (catalog_prep(cat, "SELECT max(epoch) FROM epochs WHERE job=?", &st,
                     err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *next = (uint64_t)sqlite3_column_int64(st, 0) + 1;
    else
        errprintf(err, "catalog %s: the last epoch of job %s: %s", cat->path,
                  job, sqlite3_errmsg(cat->db));
    catalog_unprep(cat, st);
    if (rc != SQLITE_ROW) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int catalog_job_epoch_before(struct catalog *cat, const char *job,
                             uint64_t epoch, uint64_t *prev,
                             struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    *prev = 0;
    if (catalog_prep(
            cat,
            "SELECT coalesce(max(j.epoch), 0) FROM job_epochs j WHERE"
            " j.job=? AND j.epoch<? AND j.state='committed' AND NOT EXISTS"
            " (SELECT 1 FROM epochs e WHERE e.job=j.job AND e.epoch=j.epoch"
            " AND e.state<>'committed')",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *prev = (uint64_t)sqlite3_column_int64(st, 0);
    else
        errprintf(err, "catalog %s: the epochs of job %s: %s", cat->path, job,
                  sqlite3_errmsg(cat->db));
    catalog_unprep(cat, st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int catalog_epoch_get(struct catalog *cat, const char *job, const char *vm,
                      uint64_t epoch,
                      void (*fn)(const struct catalog_epoch *e, void *arg),
                      void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int found = 0;

    if (catalog_prep(
            cat,
            epoch ? "SELECT epoch, parent, state, host, store_host,"
                    " store_addr, pages, wire_bytes, disk_bytes, pause_us,"
                    " total_ms, rounds, source, sealed FROM epochs WHERE"
                    " job=? AND vm=? AND epoch=?"
                  : "SELECT epoch, parent, state, host, store_host,"
                    " store_addr, pages, wire_bytes, disk_bytes, pause_us,"
                    " total_ms, rounds, source, sealed FROM epochs WHERE"
                    " job=? AND vm=? AND state='committed'"
                    " ORDER BY epoch DESC LIMIT 1",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vm, -1, SQLITE_STATIC);
    if (epoch)
        sqlite3_bind_int64(st, 3, (sqlite3_int64)epoch);
    if (sqlite3_step(st) == SQLITE_ROW) {
        struct catalog_epoch e;

        memset(&e, 0, sizeof(e));
        e.job = job;
        e.vm = vm;
        e.epoch = (uint64_t)sqlite3_column_int64(st, 0);
        e.parent = (uint64_t)sqlite3_column_int64(st, 1);
        e.state = (const char *)sqlite3_column_text(st, 2);
        e.host = (const char *)sqlite3_column_text(st, 3);
        e.store_host = (const char *)sqlite3_column_text(st, 4);
        e.store_addr = (const char *)sqlite3_column_text(st, 5);
        e.pages = (uint64_t)sqlite3_column_int64(st, 6);
        e.wire_bytes = (uint64_t)sqlite3_column_int64(st, 7);
        e.disk_bytes = (uint64_t)sqlite3_column_int64(st, 8);
        e.pause_us = (uint64_t)sqlite3_column_int64(st, 9);
        e.total_ms = (uint64_t)sqlite3_column_int64(st, 10);
        e.rounds = (uint64_t)sqlite3_column_int64(st, 11);
        e.source = (const char *)sqlite3_column_text(st, 12);
        e.sealed = sqlite3_column_int(st, 13);
        fn(&e, arg);
        found = 1;
    }
    catalog_unprep(cat, st);
    return found;
}

int catalog_begin(struct catalog *cat, struct vmckpt_error *err)
{
    return exec(cat, "BEGIN IMMEDIATE", err);
}

int catalog_commit(struct catalog *cat, struct vmckpt_error *err)
{
    if (exec(cat, "COMMIT", err) < 0) {
        exec(cat, "ROLLBACK", NULL);
        return -1;
    }
    return 0;
}

void catalog_rollback(struct catalog *cat)
{
    exec(cat, "ROLLBACK", NULL);
}

int catalog_job_put(struct catalog *cat, const struct catalog_job *j,
                    struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(
            cat,
            "INSERT OR REPLACE INTO jobs (name, state, interval,"
            " auto_restart, mtbf_s, cost_ms, last_epoch, last_error, token,"
            " lz4, incarnation, keep_epochs, restart_hosts)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, j->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, j->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, j->interval, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, j->auto_restart);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)j->mtbf_s);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)j->cost_ms);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)j->last_epoch);
    sqlite3_bind_text(st, 8, j->last_error ? j->last_error : "", -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(st, 9, j->token ? j->token : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 10, j->lz4);
    sqlite3_bind_int64(st, 11, (sqlite3_int64)j->incarnation);
    sqlite3_bind_int(st, 12, j->keep_epochs);
    sqlite3_bind_text(st, 13, j->restart_hosts ? j->restart_hosts : "", -1,
                      SQLITE_STATIC);
    return catalog_step_done(cat, st, err);
}

int catalog_job_each(struct catalog *cat,
                     int (*fn)(const struct catalog_job *j, void *arg),
                     void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(
            cat,
            "SELECT name, state, interval, auto_restart, mtbf_s, cost_ms,"
            " last_epoch, last_error, token, lz4, incarnation, keep_epochs,"
            " restart_hosts FROM jobs"
            " ORDER BY name",
            &st, err) < 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct catalog_job j;

        j.name = (const char *)sqlite3_column_text(st, 0);
        j.state = (const char *)sqlite3_column_text(st, 1);
        j.interval = (const char *)sqlite3_column_text(st, 2);
        j.auto_restart = sqlite3_column_int(st, 3);
        j.mtbf_s = (uint64_t)sqlite3_column_int64(st, 4);
        j.cost_ms = (uint64_t)sqlite3_column_int64(st, 5);
        j.last_epoch = (uint64_t)sqlite3_column_int64(st, 6);
        j.last_error = (const char *)sqlite3_column_text(st, 7);
        j.token = (const char *)sqlite3_column_text(st, 8);
        j.lz4 = sqlite3_column_int(st, 9);
        j.incarnation = (uint64_t)sqlite3_column_int64(st, 10);
        j.keep_epochs = sqlite3_column_int(st, 11);
        j.restart_hosts = (const char *)sqlite3_column_text(st, 12);
        if (fn(&j, arg) < 0)
            break;
    }
    catalog_unprep(cat, st);
    return 0;
}

int catalog_job_epoch_put(struct catalog *cat,
                          const struct catalog_job_epoch *e,
                          struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(
            cat,
            "INSERT OR REPLACE INTO job_epochs (job, epoch, state, nvms,"
            " started_at, ended_at, precopy_ms, window_us, max_pause_us,"
            " cost_ms, note, align, barriers)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, e->job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)e->epoch);
    sqlite3_bind_text(st, 3, e->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)e->nvms);
    sqlite3_bind_int64(st, 5, e->started_at);
    sqlite3_bind_int64(st, 6, e->ended_at);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)e->precopy_ms);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)e->window_us);
    sqlite3_bind_int64(st, 9, (sqlite3_int64)e->max_pause_us);
    sqlite3_bind_int64(st, 10, (sqlite3_int64)e->cost_ms);
    sqlite3_bind_text(st, 11, e->note ? e->note : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, e->align ? e->align : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, e->barriers ? e->barriers : "", -1,
                      SQLITE_STATIC);
    return catalog_step_done(cat, st, err);
}

int catalog_epoch_each(struct catalog *cat, const char *job,
                       uint64_t after_epoch, const char *after_vm,
                       int (*fn)(const struct catalog_epoch *e,
                                 uint64_t window_us, void *arg),
                       void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(
            cat,
            "SELECT e.vm, e.epoch, e.parent, e.state, e.host, e.store_host,"
            " e.pages, e.disk_bytes, e.pause_us, e.total_ms, e.note,"
            " e.paused_at_ns, e.resumed_at_ns, coalesce(j.window_us, 0),"
            " e.source, coalesce(j.align, ''), coalesce(j.barriers, ''),"
            " e.sealed"
            " FROM epochs e LEFT JOIN job_epochs j"
            " ON j.job = e.job AND j.epoch = e.epoch"
            " WHERE e.job=?1 AND (e.epoch>?2 OR (e.epoch=?2 AND e.vm>?3))"
            " ORDER BY e.epoch, e.vm",
            &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)after_epoch);
    sqlite3_bind_text(st, 3, after_vm != NULL ? after_vm : "", -1,
                      SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct catalog_epoch e;

        memset(&e, 0, sizeof(e));
        e.job = job;
        e.vm = (const char *)sqlite3_column_text(st, 0);
        e.epoch = (uint64_t)sqlite3_column_int64(st, 1);
        e.parent = (uint64_t)sqlite3_column_int64(st, 2);
        e.state = (const char *)sqlite3_column_text(st, 3);
        e.host = (const char *)sqlite3_column_text(st, 4);
        e.store_host = (const char *)sqlite3_column_text(st, 5);
        e.pages = (uint64_t)sqlite3_column_int64(st, 6);
        e.disk_bytes = (uint64_t)sqlite3_column_int64(st, 7);
        e.pause_us = (uint64_t)sqlite3_column_int64(st, 8);
        e.total_ms = (uint64_t)sqlite3_column_int64(st, 9);
        e.note = (const char *)sqlite3_column_text(st, 10);
        e.paused_at_ns = (uint64_t)sqlite3_column_int64(st, 11);
        e.resumed_at_ns = (uint64_t)sqlite3_column_int64(st, 12);
        e.source = (const char *)sqlite3_column_text(st, 14);
        e.align = (const char *)sqlite3_column_text(st, 15);
        e.barriers = (const char *)sqlite3_column_text(st, 16);
        e.sealed = sqlite3_column_int(st, 17) != 0;
        if (fn(&e, (uint64_t)sqlite3_column_int64(st, 13), arg) != 0)
            break;
    }
    catalog_unprep(cat, st);
    return 0;
}

int catalog_abort_in_flight(struct catalog *cat,
                            void (*fn)(const char *job, uint64_t epoch,
                                       const char *host, void *arg),
                            void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(cat,
                     "SELECT job, epoch, host, store_host FROM epochs"
                     " WHERE state='running'",
                     &st, err) < 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *job = (const char *)sqlite3_column_text(st, 0);
        uint64_t epoch = (uint64_t)sqlite3_column_int64(st, 1);

        fn(job, epoch, (const char *)sqlite3_column_text(st, 2), arg);
        fn(job, epoch, (const char *)sqlite3_column_text(st, 3), arg);
    }
    catalog_unprep(cat, st);
    return exec(cat,
                "UPDATE epochs SET state='aborted', note='the coordinator "
                "restarted during the checkpoint' WHERE state='running';"
                "UPDATE job_epochs SET state='aborted', note='the coordinator "
                "restarted during the checkpoint' WHERE state='running';",
                err);
}

int catalog_epoch_totals(struct catalog *cat,
                         void (*vm_fn)(void *arg, const char *state,
                                       uint64_t pause_us, uint64_t wire_bytes,
                                       uint64_t disk_bytes),
                         void (*job_fn)(void *arg, const char *state,
                                        uint64_t window_us),
                         void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    if (catalog_prep(
            cat,
            "SELECT state = 'aborted', coalesce(pause_us, 0),"
            " coalesce(wire_bytes, 0), coalesce(disk_bytes, 0) FROM epochs"
            " WHERE state IN ('committed', 'expired', 'aborted')",
            &st, err) < 0)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        vm_fn(arg, sqlite3_column_int(st, 0) ? "aborted" : "committed",
              (uint64_t)sqlite3_column_int64(st, 1),
              (uint64_t)sqlite3_column_int64(st, 2),
              (uint64_t)sqlite3_column_int64(st, 3));
    catalog_unprep(cat, st);
    if (rc != SQLITE_DONE)
        goto fail;
    if (catalog_prep(cat,
                     "SELECT state, coalesce(window_us, 0) FROM job_epochs"
                     " WHERE state IN ('committed', 'aborted')",
                     &st, err) < 0)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        job_fn(arg, (const char *)sqlite3_column_text(st, 0),
               (uint64_t)sqlite3_column_int64(st, 1));
    catalog_unprep(cat, st);
    if (rc != SQLITE_DONE)
        goto fail;
    return 0;
fail:
    errno = EIO;
    return errprintf(err, "catalog %s: %s", cat->path, sqlite3_errmsg(cat->db));
}

int catalog_meta_get(struct catalog *cat, const char *key, char *out,
                     size_t len, struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    if (catalog_prep(cat, "SELECT value FROM meta WHERE key=?", &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        errprintf(err, "catalog %s: meta %s: %s", cat->path, key,
                  sqlite3_errmsg(cat->db));
    catalog_unprep(cat, st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        errno = EIO;
        return -1;
    }
    return rc == SQLITE_ROW;
}

int catalog_meta_put(struct catalog *cat, const char *key, const char *value,
                     struct vmckpt_error *err)
{
    sqlite3_stmt *st;

    if (catalog_prep(cat, "INSERT OR REPLACE INTO meta VALUES (?, ?)", &st,
                     err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return catalog_step_done(cat, st, err);
}

int catalog_sealed_count(struct catalog *cat, uint64_t *n,
                         struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    int rc;

    *n = 0;
    if (catalog_prep(cat,
                     "SELECT count(*) FROM epochs WHERE sealed=1 AND "
                     "state='committed'",
                     &st, err) < 0)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    else
        errprintf(err, "catalog %s: sealed epochs: %s", cat->path,
                  sqlite3_errmsg(cat->db));
    catalog_unprep(cat, st);
    if (rc != SQLITE_ROW) {
        errno = EIO;
        return -1;
    }
    return 0;
}
