/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The catalog's retention queries (catalog.h catalog_retain): which
 * epochs of a job's VMs expire, and which hosts hold them. */
#include "config.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_int.h"

/* The committed epochs of a job's VMs, or of one VM only (?2), newest
 * first per VM (rn 1): a window over the job's rows, the key's prefix. */
#define RETAIN_RANKED                                                          \
    "SELECT rowid AS rid, vm, epoch, store_host, host, row_number() OVER"      \
    " (PARTITION BY vm ORDER BY epoch DESC) AS rn FROM epochs WHERE job=?1"    \
    " AND state='committed' AND (?2 IS NULL OR vm=?2)"

/* ?1 the job, ?2 the VM or NULL, ?3 the epochs to keep */
static void retain_bind(sqlite3_stmt *st, const char *job, const char *vm,
                        unsigned keep)
{
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    if (vm != NULL)
        sqlite3_bind_text(st, 2, vm, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, keep);
}

/* One VM's rows (retention): the hosts to tell, once its keep_from is
 * known. */
struct retain_vm {
    char vm[65];
    uint64_t keep_from;
    char (*hosts)[64];
    size_t n, cap;
};

static int retain_host(struct retain_vm *r, const char *host)
{
    size_t i;

    if (host == NULL || host[0] == '\0')
        return 0;
    for (i = 0; i < r->n; i++)
        if (strcmp(r->hosts[i], host) == 0)
            return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        char(*h)[64] = realloc(r->hosts, cap * sizeof(*h));

        if (h == NULL)
            return -1;
        r->hosts = h;
        r->cap = cap;
    }
    snprintf(r->hosts[r->n++], sizeof(r->hosts[0]), "%s", host);
    return 0;
}

static void retain_flush(struct retain_vm *r, catalog_retain_fn fn, void *arg)
{
    size_t i;

    if (r->vm[0] != '\0' && r->keep_from != 0)
        for (i = 0; i < r->n; i++)
            fn(r->vm, r->keep_from, r->hosts[i], arg);
    r->vm[0] = '\0';
    r->keep_from = 0;
    r->n = 0;
}

/* The VMs of job epoch ?3 with at least ?4 committed epochs from job
 * epoch ?2 on: their committed epochs older than ?2. */
#define RETAIN_OLD                                                             \
    " FROM epochs e WHERE e.job=?1 AND e.epoch<?2 AND e.state='committed'"     \
    " AND e.vm IN (SELECT vm FROM epochs WHERE job=?1 AND epoch=?3) AND"       \
    " (SELECT count(*) FROM epochs x WHERE x.job=?1 AND x.vm=e.vm AND"         \
    " x.epoch>=?2 AND x.state='committed')>=?4"

static void old_bind(sqlite3_stmt *st, const char *job, uint64_t from,
                     uint64_t epoch, unsigned keep)
{
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)from);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)epoch);
    sqlite3_bind_int64(st, 4, keep);
}

/* Retention at the commit of job epoch 'epoch': keep_from is the keep-th
 * newest committed job epoch, the same for every VM that took part in
 * each of those (a VM that joined later keeps its fewer epochs until it
 * has 'keep' of its own). Only the rows older than that are read: at a
 * commit that expires nothing, this is a query of the job's epochs. */
static int retain_job_epoch(struct catalog *cat, const char *job,
                            uint64_t epoch, unsigned keep, catalog_retain_fn fn,
                            void *arg, struct vmckpt_error *err)
{
    sqlite3_stmt *st;
    uint64_t from = 0;
    int rc;

    if (catalog_prep(cat,
                     "SELECT epoch FROM job_epochs WHERE job=? AND epoch<=? AND"
                     " state='committed' ORDER BY epoch DESC LIMIT 1 OFFSET ?",
                     &st, err) < 0)
        return -1;
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)keep - 1);
    if (sqlite3_step(st) == SQLITE_ROW)
        from = (uint64_t)sqlite3_column_int64(st, 0);
    catalog_unprep(cat, st);
    if (from == 0)
        return 0;
    if (catalog_prep(
            cat,
            "SELECT e.vm, e.store_host, e.host, EXISTS (SELECT 1 FROM"
            " job_epochs j WHERE j.job=?1 AND j.epoch=e.epoch)" RETAIN_OLD,
            &st, err) < 0)
        return -1;
    old_bind(st, job, from, epoch, keep);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *vm = (const char *)sqlite3_column_text(st, 0);

        fn(vm, from, (const char *)sqlite3_column_text(st, 1), arg);
        if (sqlite3_column_int(st, 3))
            fn(vm, from, (const char *)sqlite3_column_text(st, 2), arg);
    }
    catalog_unprep(cat, st);
    if (rc != SQLITE_DONE) {
        errno = EIO;
        return errprintf(err, "catalog %s: retention of %s: %s", cat->path, job,
                         sqlite3_errmsg(cat->db));
    }
    if (catalog_prep(cat,
                     "UPDATE epochs SET state='expired' WHERE rowid IN (SELECT"
                     " e.rowid" RETAIN_OLD ")",
                     &st, err) < 0)
        return -1;
    old_bind(st, job, from, epoch, keep);
    return catalog_step_done(cat, st, err);
}

int catalog_retain(struct catalog *cat, const char *job, const char *vm,
                   uint64_t epoch, unsigned keep, catalog_retain_fn fn,
                   void *arg, struct vmckpt_error *err)
{
    struct retain_vm r = {.vm = ""};
    sqlite3_stmt *st;
    int rc, oom = 0;

    if (keep == 0)
        return 0;
    if (vm == NULL && epoch != 0)
        return retain_job_epoch(cat, job, epoch, keep, fn, arg, err);
    /* per VM: its newest epoch (its store, and its host's copy of a job
     * epoch), its keep-th (keep_from), and every older one */
    if (catalog_prep(
            cat,
            "SELECT vm, rn, epoch, store_host, host, EXISTS (SELECT 1 FROM"
            " job_epochs j WHERE j.job=?1 AND j.epoch=r.epoch) FROM"
            " (" RETAIN_RANKED ") r WHERE rn=1 OR rn>=?3 ORDER BY vm, rn",
            &st, err) < 0)
        return -1;
    retain_bind(st, job, vm, keep);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        sqlite3_int64 rn = sqlite3_column_int64(st, 1);

        if (strcmp(name, r.vm) != 0) {
            retain_flush(&r, fn, arg);
            snprintf(r.vm, sizeof(r.vm), "%s", name);
        }
        if (rn == (sqlite3_int64)keep)
            r.keep_from = (uint64_t)sqlite3_column_int64(st, 2);
        if (rn != 1 && rn <= (sqlite3_int64)keep)
            continue;
        oom |= retain_host(&r, (const char *)sqlite3_column_text(st, 3));
        if (sqlite3_column_int(st, 5))
            oom |= retain_host(&r, (const char *)sqlite3_column_text(st, 4));
    }
    if (rc == SQLITE_DONE && !oom)
        retain_flush(&r, fn, arg);
    free(r.hosts);
    catalog_unprep(cat, st);
    if (rc != SQLITE_DONE || oom) {
        errno = oom ? ENOMEM : EIO;
        return errprintf(err, "catalog %s: retention of %s: %s", cat->path, job,
                         oom ? "out of memory" : sqlite3_errmsg(cat->db));
    }
    if (catalog_prep(
            cat,
            "UPDATE epochs SET state='expired' WHERE rowid IN (SELECT rid"
            " FROM (" RETAIN_RANKED ") WHERE rn>?3)",
            &st, err) < 0)
        return -1;
    retain_bind(st, job, vm, keep);
    return catalog_step_done(cat, st, err);
}
