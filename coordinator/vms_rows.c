/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest table's lookups and rows: the index of the records by job and
 * name, and their rows written to the catalog at the end of each round of
 * the loop, one transaction for all the round changed. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "vms_int.h"
#include "lib/util/log.h"

/* FNV-1a of "job/name". */
static size_t vm_hash(const char *job, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *p;

    for (p = job; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    h = (h ^ '/') * 0x100000001b3ULL;
    for (p = name; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    return (size_t)h;
}

static void index_put(struct vms *vs, struct vmrec *v)
{
    size_t b = vm_hash(v->job, v->name) & (vs->nbuckets - 1);

    v->hnext = vs->buckets[b];
    vs->buckets[b] = v;
}

int vms_index_add(struct vms *vs, struct vmrec *v)
{
    if (vs->count >= 2 * vs->nbuckets) {
        size_t n = vs->nbuckets ? 2 * vs->nbuckets : 256;
        struct vmrec **b = calloc(n, sizeof(*b)), *r;

        if (b == NULL)
            return -1;
        free(vs->buckets);
        vs->buckets = b;
        vs->nbuckets = n;
        for (r = vs->list; r != NULL; r = r->next)
            if (r != v)
                index_put(vs, r);
    }
    index_put(vs, v);
    vs->count++;
    return 0;
}

struct vmrec *vms_find(struct coord *co, const char *job, const char *name)
{
    struct vms *vs = co->vms;
    struct vmrec *v;

    if (vs->nbuckets == 0)
        return NULL;
    for (v = vs->buckets[vm_hash(job, name) & (vs->nbuckets - 1)]; v != NULL;
         v = v->hnext)
        if (strcmp(v->job, job) == 0 && strcmp(v->name, name) == 0)
            return v;
    return NULL;
}

/* Write the row of 'v' now. */
static void vm_write(struct coord *co, struct vmrec *v)
{
    struct catalog_vm cv;
    struct vmckpt_error err;
    uint8_t *buf = NULL;
    size_t len = 0;

    if (v->spec != NULL && wire_pack(v->spec, &buf, &len, &err) < 0)
        return;
    cv.job = v->job;
    cv.name = v->name;
    cv.host = v->host;
    cv.state = v->state;
    cv.spec = buf;
    cv.spec_len = len;
    cv.last_epoch = v->last_epoch;
    if (catalog_vm_put(co->cat, &cv, &err) < 0)
        log_err("%s", err.text);
    free(buf);
}

void vms_rows_flush(struct coord *co)
{
    struct vms *vs = co->vms;
    struct vmckpt_error err;
    int in_tx;
    size_t i;

    if (vs->ndirty == 0)
        return;
    in_tx = catalog_begin(co->cat, &err) == 0;
    for (i = 0; i < vs->ndirty; i++) {
        vs->dirty[i]->dirty = 0;
        vm_write(co, vs->dirty[i]);
    }
    vs->ndirty = 0;
    if (in_tx && catalog_commit(co->cat, &err) < 0)
        log_err("guests' rows: %s", err.text);
}

static void on_flush(struct evloop *loop, struct ev_timer *t)
{
    (void)loop;
    vms_rows_flush(t->arg);
}

/* Room for one more row to write: 0, or -1 (ENOMEM). */
static int grow_dirty(struct vms *vs)
{
    size_t cap = vs->capdirty ? 2 * vs->capdirty : 64;
    struct vmrec **d = realloc(vs->dirty, cap * sizeof(*d));

    if (d == NULL)
        return -1;
    vs->dirty = d;
    vs->capdirty = cap;
    return 0;
}

void vms_save(struct coord *co, struct vmrec *v)
{
    struct vms *vs = co->vms;

    if (v->dirty)
        return;
    if (co->loop == NULL ||
        (vs->ndirty == vs->capdirty && grow_dirty(vs) < 0)) {
        vm_write(co, v); /* no loop yet, or no room to wait: now */
        return;
    }
    v->dirty = 1;
    vs->dirty[vs->ndirty++] = v;
    if (!vs->flush.armed)
        ev_timer_start(co->loop, &vs->flush, 0);
}

void vms_rows_init(struct coord *co)
{
    ev_timer_init(&co->vms->flush, on_flush, co);
}

uint64_t vms_parent_for(const struct vmrec *v, const char *store, int sealed)
{
    if (strcmp(v->chain_store, store) != 0 || !v->chain_sealed != !sealed)
        return 0;
    if (sealed && v->chain_len >= VMS_SEALED_CHAIN)
        return 0;
    return v->chain_epoch;
}

void vms_chain_commit(struct vmrec *v, uint64_t epoch, uint64_t parent,
                      const char *store, int sealed)
{
    v->chain_sealed = sealed;
    v->chain_len =
        parent == 0 || parent != v->chain_epoch ? 0 : v->chain_len + 1;
    v->chain_epoch = epoch;
    snprintf(v->chain_store, sizeof(v->chain_store), "%s", store);
}
