/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The disks' part of a checkpoint on the guest's host: the next overlays
 * made before the pause, one QMP transaction inside it, and, with the
 * guest running, committed layers merged so that the chain stays short. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"
#include "lib/qemu/qemu_img.h"
#include "lib/util/log.h"

/* How long a merge may run: a block-commit copies what the guest wrote
 * in the epochs merged; 10 minutes is far past any sane epoch. */
#define MERGE_MAX_MS  (10 * 60 * 1000)
#define MERGE_POLL_MS 20

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct disk_layer *top_of(struct disk_one *d)
{
    return &d->layers[d->nlayers - 1];
}

/* The prepared overlay of disk 'k' as a layer (not yet in the chain). */
static void prepared_layer(unsigned k, const struct disk_one *d,
                           struct disk_layer *l)
{
    memset(l, 0, sizeof(*l));
    l->gen = d->prep_gen;
    l->role = DISK_ACTIVE;
    snprintf(l->file, sizeof(l->file), "d%u.g%u.qcow2", k, l->gen);
}

/* An overlay file of the next gen exists: an earlier agent prepared it
 * and died before its cut (the node is in QEMU, unused: it goes), or
 * during the cut, after the transaction and before the record (the node
 * is the guest's top now: nothing may touch it). */
static int stale_overlay(struct disk_chain *c, unsigned k, const char *node,
                         const char *path, disk_qmp_fn *qmp, void *arg,
                         struct vmckpt_error *err)
{
    json_t *args = json_pack("{s:s}", "node-name", node);
    struct vmckpt_error e2;
    int rc;

    if (args == NULL)
        return errprintf(err, "out of memory");
    rc = qmp(arg, "blockdev-del", args, NULL, &e2);
    json_decref(args);
    if (rc < 0 && strstr(e2.text, "Failed to find node") == NULL) {
        errno = EBUSY;
        return errprintf(err,
                         "disk %u: overlay %s is in the guest's chain but not "
                         "in its record (an agent died during a cut): its "
                         "checkpoints are refused until it is restarted (%s)",
                         k, path, e2.text);
    }
    log_warn("%s/%s disk %u: removed overlay %s an earlier agent prepared",
             c->job, c->vm, k, path);
    unlink(path);
    return 0;
}

static int prepare_one(struct disk_chain *c, unsigned k, disk_qmp_fn *qmp,
                       void *arg, struct vmckpt_error *err)
{
    struct disk_one *d = &c->d[k];
    struct disk_layer l;
    char path[4200], below[4200], node[32];
    json_t *args;
    int rc;

    if (d->prep_gen != 0)
        return 0;
    if (d->nlayers == DISK_MAX_LAYERS) {
        errno = E2BIG;
        return errprintf(err,
                         "disk %u: its chain has %d layers (merges are behind: "
                         "no epoch of this guest committed lately?)",
                         k, DISK_MAX_LAYERS);
    }
    d->prep_gen = d->next_gen + 1;
    prepared_layer(k, d, &l);
    disk_layer_path(c, &l, path, sizeof(path));
    snprintf(below, sizeof(below), "%s", top_of(d)->file);
    disk_node_name(k, &l, node, sizeof(node));
    if (access(path, F_OK) == 0 &&
        stale_overlay(c, k, node, path, qmp, arg, err) < 0) {
        d->prep_gen = 0;
        return -1;
    }
    if (qemu_img_create_overlay(c->qemu_img, path, below, "qcow2", d->vsize,
                                err) < 0) {
        d->prep_gen = 0;
        return errprefix(err, "disk %u: the next overlay", k);
    }
    args = json_pack("{s:s, s:s, s:{s:s, s:s}, s:n}", "driver", "qcow2",
                     "node-name", node, "file", "driver", "file", "filename",
                     path, "backing");
    rc = args != NULL ? qmp(arg, "blockdev-add", args, NULL, err)
                      : errprintf(err, "out of memory");
    json_decref(args);
    if (rc < 0) {
        unlink(path);
        d->prep_gen = 0;
        return errprefix(err, "disk %u: adding the next overlay", k);
    }
    d->next_gen = d->prep_gen; /* the gen is used, whatever happens next */
    return 0;
}

int disk_prepare_cut(struct disk_chain *c, disk_qmp_fn *qmp, void *arg,
                     struct vmckpt_error *err)
{
    unsigned k;

    for (k = 0; k < c->ndisks; k++)
        if (prepare_one(c, k, qmp, arg, err) < 0)
            return -1;
    return 0;
}

int disk_cut(struct disk_chain *c, disk_qmp_fn *qmp, void *arg, uint64_t epoch,
             uint64_t *us, struct vmckpt_error *err)
{
    json_t *actions = json_array(), *args;
    char node[32], overlay[32];
    struct disk_layer l;
    uint64_t t0;
    unsigned k;
    int rc;

    if (actions == NULL)
        return errprintf(err, "out of memory");
    for (k = 0; k < c->ndisks; k++) {
        struct disk_one *d = &c->d[k];

        if (d->prep_gen == 0) {
            json_decref(actions);
            errno = EINVAL;
            return errprintf(err, "disk %u: no overlay prepared for the cut",
                             k);
        }
        prepared_layer(k, d, &l);
        disk_node_name(k, top_of(d), node, sizeof(node));
        disk_node_name(k, &l, overlay, sizeof(overlay));
        json_array_append_new(actions,
                              json_pack("{s:s, s:{s:s, s:s}}", "type",
                                        "blockdev-snapshot", "data", "node",
                                        node, "overlay", overlay));
    }
    args = json_pack("{s:o}", "actions", actions);
    t0 = mono_us();
    rc = args != NULL ? qmp(arg, "transaction", args, NULL, err)
                      : errprintf(err, "out of memory");
    *us = mono_us() - t0;
    json_decref(args);
    if (rc < 0)
        return errprefix(err, "the disks' snapshot");
    for (k = 0; k < c->ndisks; k++) {
        struct disk_one *d = &c->d[k];

        top_of(d)->role = DISK_FROZEN;
        top_of(d)->label = epoch;
        prepared_layer(k, d, &d->layers[d->nlayers]);
        d->nlayers++;
        d->prep_gen = 0;
    }
    return disk_chain_save(c, err);
}

void disk_cut_abandon(struct disk_chain *c, disk_qmp_fn *qmp, void *arg)
{
    struct vmckpt_error err;
    struct disk_layer l;
    char path[4200], node[32];
    json_t *args;
    unsigned k;

    for (k = 0; k < c->ndisks; k++) {
        struct disk_one *d = &c->d[k];

        if (d->prep_gen == 0)
            continue;
        prepared_layer(k, d, &l);
        disk_node_name(k, &l, node, sizeof(node));
        args = json_pack("{s:s}", "node-name", node);
        if (args == NULL || (qmp(arg, "blockdev-del", args, NULL, &err) < 0 &&
                             strstr(err.text, "Failed to find node") == NULL)) {
            /* still in QEMU, perhaps in the guest's chain (a snapshot
             * whose reply came too late): its file stays, and the next
             * checkpoint's prepare refuses it as a stale overlay */
            log_warn("%s/%s disk %u: removing the unused overlay %s: %s; "
                     "its file %s is kept",
                     c->job, c->vm, k, node,
                     args == NULL ? "out of memory" : err.text, l.file);
            json_decref(args);
            d->prep_gen = 0;
            continue;
        }
        json_decref(args);
        disk_layer_path(c, &l, path, sizeof(path));
        unlink(path);
        d->prep_gen = 0;
    }
}

/* Wait for block job 'id' to conclude and dismiss it. 0, or -1 with its
 * error. */
static int wait_job(disk_qmp_fn *qmp, void *arg, const char *id,
                    struct vmckpt_error *err)
{
    uint64_t start = mono_us();
    json_t *jobs, *j, *args;
    size_t i;

    for (;;) {
        const char *status = NULL, *error = NULL;

        if (qmp(arg, "query-jobs", NULL, &jobs, err) < 0)
            return -1;
        json_array_foreach(jobs, i, j)
        {
            const char *jid = json_string_value(json_object_get(j, "id"));

            if (jid != NULL && strcmp(jid, id) == 0) {
                status = json_string_value(json_object_get(j, "status"));
                error = json_string_value(json_object_get(j, "error"));
                break;
            }
        }
        if (status != NULL && strcmp(status, "concluded") == 0) {
            if (error != NULL)
                errprintf(err, "block job %s failed: %s", id, error);
            json_decref(jobs);
            args = json_pack("{s:s}", "id", id);
            (void)qmp(arg, "job-dismiss", args, NULL, NULL);
            json_decref(args);
            return error != NULL ? -1 : 0;
        }
        json_decref(jobs);
        if (status == NULL) {
            errno = ESRCH;
            return errprintf(err, "block job %s vanished", id);
        }
        if (mono_us() - start > (uint64_t)MERGE_MAX_MS * 1000u) {
            args = json_pack("{s:s}", "id", id);
            (void)qmp(arg, "job-cancel", args, NULL, NULL);
            json_decref(args);
            errno = ETIMEDOUT;
            return errprintf(err, "block job %s ran past %d s", id,
                             MERGE_MAX_MS / 1000);
        }
        usleep(MERGE_POLL_MS * 1000);
    }
}

/* Layer 'l' of disk 'k' left the guest's chain (merged): QEMU still
 * holds its node (and the file node of a layer from the command line,
 * "<node>f") open for the monitor until they are deleted. */
static void drop_nodes(struct disk_chain *c, unsigned k,
                       const struct disk_layer *l, disk_qmp_fn *qmp, void *arg)
{
    struct vmckpt_error err;
    char node[40];
    json_t *args;
    int f;

    for (f = 0; f < 2; f++) {
        disk_node_name(k, l, node, sizeof(node));
        if (f)
            strcat(node, "f");
        args = json_pack("{s:s}", "node-name", node);
        if (args != NULL && qmp(arg, "blockdev-del", args, NULL, &err) < 0 &&
            strstr(err.text, "Failed to find node") == NULL)
            log_warn("%s/%s disk %u: closing merged layer %s: %s", c->job,
                     c->vm, k, node, err.text);
        json_decref(args);
    }
}

/* Merge layers (acc, top] of disk 'k' into acc, 'acc' and 'top' their
 * places in the chain. */
static int merge_one(struct disk_chain *c, unsigned k, unsigned acc,
                     unsigned top, disk_qmp_fn *qmp, void *arg,
                     struct vmckpt_error *err)
{
    struct disk_one *d = &c->d[k];
    char root[32], topn[32], basen[32], id[48], path[4200];
    struct disk_layer gone[DISK_MAX_LAYERS];
    unsigned i, n = top - acc;
    json_t *args;
    int rc;

    disk_node_name(k, top_of(d), root, sizeof(root));
    disk_node_name(k, &d->layers[top], topn, sizeof(topn));
    disk_node_name(k, &d->layers[acc], basen, sizeof(basen));
    snprintf(id, sizeof(id), "vmckpt-merge-%s", topn);
    /* backing-file: what the layer above 'top' names as its backing from
     * now on, acc's name in the chain's dir; left to QEMU, it would be a
     * "json:{...}" of the whole chain below (its nodes have explicit
     * backings), which at long paths passes qcow2's 1023 bytes and fails
     * the merge */
    args = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "job-id", id, "device",
                     root, "top-node", topn, "base-node", basen, "backing-file",
                     d->layers[acc].file, "auto-dismiss", 0);
    rc = args != NULL ? qmp(arg, "block-commit", args, NULL, err)
                      : errprintf(err, "out of memory");
    json_decref(args);
    if (rc < 0 || wait_job(qmp, arg, id, err) < 0)
        return errprefix(err, "disk %u: merging %s into %s", k, topn, basen);
    /* acc now holds them: the record first, the files after (a crash in
     * between leaves files that hold nothing acc lacks) */
    d->layers[acc].label = d->layers[top].label;
    memcpy(gone, &d->layers[acc + 1], n * sizeof(gone[0]));
    memmove(&d->layers[acc + 1], &d->layers[top + 1],
            (d->nlayers - top - 1) * sizeof(d->layers[0]));
    d->nlayers -= n;
    if (disk_chain_save(c, err) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        drop_nodes(c, k, &gone[i], qmp, arg);
        disk_layer_path(c, &gone[i], path, sizeof(path));
        unlink(path);
    }
    return 0;
}

int disk_merge(struct disk_chain *c, disk_qmp_fn *qmp, void *arg,
               uint64_t committed, struct vmckpt_error *err)
{
    unsigned k, i, acc, top;

    if (committed == 0)
        return 0;
    for (k = 0; k < c->ndisks; k++) {
        struct disk_one *d = &c->d[k];

        for (acc = 0; acc < d->nlayers && d->layers[acc].role != DISK_ACC;
             acc++)
            ;
        if (acc == d->nlayers)
            continue;
        /* the frozen layers just above acc whose epochs are committed */
        for (top = acc, i = acc + 1; i < d->nlayers; i++) {
            if (d->layers[i].role != DISK_FROZEN ||
                d->layers[i].label > committed)
                break;
            top = i;
        }
        if (top == acc)
            continue;
        if (merge_one(c, k, acc, top, qmp, arg, err) < 0)
            return -1;
        log_info("%s/%s disk %u: layers up to epoch %llu merged; %u left",
                 c->job, c->vm, k, (unsigned long long)d->layers[acc].label,
                 d->nlayers);
    }
    return 0;
}
