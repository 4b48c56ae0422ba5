/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A guest's disks on its host: for each disk a chain of files, the
 * administrator's base image (never written) under qcow2 overlays of the
 * agent's, recorded in DISK_DIR/JOB/VM/chain:
 *
 *   base <- acc <- frozen(E1) <- ... <- frozen(En) <- active
 *
 * 'active' is what the guest writes now; the cut of epoch E freezes it
 * (it then holds exactly what the disk gained since the cut before) and
 * starts a new active over it; 'acc' collects frozen layers already
 * committed (a merge), so the chain stays short. Layers a restore brought
 * back sit between the base and acc, read-only. docs/store.md, 'Disks'. */
#ifndef VMCKPT_DISK_H
#define VMCKPT_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "agent/store/image.h"
#include "lib/util/error.h"
#include "lib/wire/wire.h"

#define DISK_MAX        8  /* disks of one guest */
#define DISK_MAX_LAYERS 16 /* files of one chain, the base not counted */
#define DISK_FILE_MAX   64 /* a layer's file name in the chain's dir */

enum disk_role {
    DISK_RESTORED, /* brought back by a restore: never written */
    DISK_ACC,      /* the merge target of committed frozen layers */
    DISK_FROZEN,   /* frozen by the cut of epoch 'label' */
    DISK_ACTIVE,   /* the guest writes here */
};

struct disk_layer {
    unsigned gen; /* its node is d<K>g<gen>, unique in the chain */
    enum disk_role role;
    uint64_t label; /* frozen: the epoch of its cut; acc, restored: the
                       last epoch it holds (0: none) */
    char file[DISK_FILE_MAX];
};

struct disk_one {
    char path[1024]; /* the base image */
    char format[8];  /* "raw" or "qcow2" */
    char base[8];    /* "shared" or "copy" */
    uint64_t vsize;  /* the guest's disk size */
    uint64_t digest; /* of the base (base.c); 0: not taken yet */
    char stat[96];   /* the base's stat when 'digest' was taken */
    struct disk_layer layers[DISK_MAX_LAYERS]; /* oldest first */
    unsigned nlayers, next_gen;
    /* the overlay disk_prepare_cut added for the next cut (its gen; 0:
     * none): in QEMU, not in the record */
    unsigned prep_gen;
};

struct disk_chain {
    char dir[4096]; /* DISK_DIR/JOB/VM */
    char qemu_img[256];
    char job[65], vm[65];
    unsigned ndisks;
    struct disk_one d[DISK_MAX];
};

/* A new chain for the guest of 'spec' (its disks): in DISK_DIR/JOB/VM,
 * whatever an earlier guest of that name left there removed, each base
 * checked readable and of its stated format (qemu-img info) and given an
 * empty acc and an active overlay; the record written. NULL with 'err'
 * ("disk 0: base image /x: ...") and nothing left on the host. */
struct disk_chain *disk_chain_create(const char *disk_dir, const char *qemu_img,
                                     const Vmckpt__VmSpec *spec,
                                     struct vmckpt_error *err);
/* The same checks, no file made: the chain a restore builds (its dir
 * DISK_DIR/JOB/VM, its disks from 'spec', no layers yet). A base=copy
 * disk's base is not looked for on this host (the restore brings it): its
 * vsize is 0 until disk_chain_check_base. */
struct disk_chain *disk_chain_plan(const char *disk_dir, const char *qemu_img,
                                   const Vmckpt__VmSpec *spec,
                                   struct vmckpt_error *err);
/* Check the file at 'path' as disk 'k''s base (readable, of the disk's
 * format, no backing file, not empty) and take its size as the disk's. */
int disk_chain_check_base(struct disk_chain *c, unsigned k, const char *path,
                          struct vmckpt_error *err);
/* Add an overlay of 'role' over disk 'k''s top layer (or its base):
 * its file made (qemu-img create, the layer below named relative to the
 * chain's dir), not yet recorded. */
int disk_chain_add_overlay(struct disk_chain *c, unsigned k,
                           enum disk_role role, struct vmckpt_error *err);
/* The chain recorded in DISK_DIR/JOB/VM (a guest taken over, restored in
 * place). NULL with 'err' if there is none or its record is damaged. */
struct disk_chain *disk_chain_load(const char *disk_dir, const char *qemu_img,
                                   const char *job, const char *vm,
                                   struct vmckpt_error *err);
/* Write the record (tmp, fsync, rename, fsync of the dir). 0 or -1. */
int disk_chain_save(const struct disk_chain *c, struct vmckpt_error *err);
/* Remove the chain's files and dir (a guest stopped for good). */
void disk_chain_remove(struct disk_chain *c);
/* rm -r 'dir' (a chain's directory; no symlink is followed). */
void disk_dir_remove(const char *dir);
/* At an agent's start, after it took over its guests: every chain in
 * 'disk_dir' for which 'keep' says no (no guest of this agent runs on
 * it: its guest died with an earlier agent, or was restored elsewhere
 * while this host was away; a restore always builds its chain anew), and
 * every unfinished restore's, removed. The number removed. */
typedef int disk_keep_fn(void *arg, const char *job, const char *vm);
unsigned disk_dir_sweep(const char *disk_dir, disk_keep_fn *keep, void *arg);
/* Remove the chain of JOB/VM in 'disk_dir' whatever its record says. */
void disk_chain_remove_at(const char *disk_dir, const char *job,
                          const char *vm);
void disk_chain_destroy(struct disk_chain *c);

/* The chain as QEMU's disks (lib/qemu/qemu_argv.h): allocated, freed
 * with disk_argv_destroy; it points into itself only. NULL with 'err'. */
struct disk_argv;
struct disk_argv *disk_argv_create(const struct disk_chain *c,
                                   struct vmckpt_error *err);
const struct qemu_disk *disk_argv_disks(const struct disk_argv *a, size_t *n);
void disk_argv_destroy(struct disk_argv *a);

/* The node name of layer 'l' of disk 'k' ("d<K>g<gen>") into 'buf'. */
void disk_node_name(unsigned k, const struct disk_layer *l, char *buf,
                    size_t len);
/* The path of layer 'l' (its file in the chain's dir) into 'buf'. */
void disk_layer_path(const struct disk_chain *c, const struct disk_layer *l,
                     char *buf, size_t len);

/* ---- the base images (base.c) ---------------------------------------- */
/* The digest of the file at 'path': XXH64 of the XXH64s of its every
 * 1 MiB, read once (it leaves the page cache). */
int disk_base_digest(const char *path, uint64_t *out, struct vmckpt_error *err);
/* Before a checkpoint (the thread that owns the guest): each base's digest
 * taken at the first one (recorded), and taken again when the file's stat
 * changed since; a different one refuses ("base image /x changed since
 * the guest started"). */
int disk_check_bases(struct disk_chain *c, struct vmckpt_error *err);

/* ---- the cut (cut.c) -------------------------------------------------
 * Run by the thread that owns the guest (a checkpoint's), through its QMP
 * monitor: 'qmp' runs command 'cmd' with 'args' (not stolen; NULL: none),
 * '*ret' (may be NULL) the reply the caller decrefs, 0 or -1 with 'err'. */
struct json_t;
typedef int disk_qmp_fn(void *arg, const char *cmd, struct json_t *args,
                        struct json_t **ret, struct vmckpt_error *err);

/* Before the pause: for each disk, the overlay the next cut starts is
 * created (qemu-img create -u over the active layer, which QEMU holds
 * locked) and added to QEMU as a node with no backing yet, so that the
 * cut itself does no file work. Idempotent until the cut. */
int disk_prepare_cut(struct disk_chain *c, disk_qmp_fn *qmp, void *arg,
                     struct vmckpt_error *err);
/* Inside the pause (vCPUs stopped; QEMU drained and flushed the disks
 * when it stopped them): one QMP transaction of blockdev-snapshot over
 * every disk makes each prepared overlay the active layer; the layer it
 * covers is frozen with 'epoch' as its label and holds exactly what the
 * disk gained since the cut before. All disks or none. The record is
 * written. '*us': the QMP call's duration. */
int disk_cut(struct disk_chain *c, disk_qmp_fn *qmp, void *arg, uint64_t epoch,
             uint64_t *us, struct vmckpt_error *err);
/* The checkpoint failed before its cut: the prepared overlays leave QEMU
 * (blockdev-del) and the disk. */
void disk_cut_abandon(struct disk_chain *c, disk_qmp_fn *qmp, void *arg);
/* With the guest running: merge the frozen layers of epochs up to
 * 'committed' (every one of them part of a committed epoch) into acc with
 * a live block-commit, then drop their files; the chain stays short. A
 * layer of an epoch not committed is never merged (its writes go in the
 * next epoch's delta). 0 (also when there was nothing to merge), -1. */
int disk_merge(struct disk_chain *c, disk_qmp_fn *qmp, void *arg,
               uint64_t committed, struct vmckpt_error *err);

/* ---- a restore's disks (recv.c) -------------------------------------
 * Run in the restore's thread, then disk_recv_install in the loop. */
struct disk_recv;
/* A new chain for the guest of 'spec' restored from 'epoch', built in
 * DISK_DIR/JOB/.VM.restore. */
struct disk_recv *disk_recv_open(const char *disk_dir, const char *qemu_img,
                                 const Vmckpt__VmSpec *spec, uint64_t epoch,
                                 struct vmckpt_error *err);
/* An image_disk_chunk_fn (a store's chunk of a layer, which its caller
 * has checked against its checksum and opened if sealed, written; a
 * sealed one is refused) and the stream's end (what the
 * disks are made of: each layer's file put over the one before, the oldest over
 * the base, then an empty acc and the active overlay; the record written). */
int disk_recv_chunk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                    const void *data, size_t len, uint64_t xxh64,
                    const uint8_t *seal, struct vmckpt_error *err);
int disk_recv_finish(void *arg, const struct image_disk_sizes *sz,
                     struct vmckpt_error *err);
/* In the guest's place (its old chain removed; its QEMU must be gone):
 * the chain, loaded, for vmm_start. NULL with 'err'. */
struct disk_chain *disk_recv_install(struct disk_recv *r,
                                     struct vmckpt_error *err);
/* Free; a chain never installed is removed. NULL is fine. */
void disk_recv_close(struct disk_recv *r);

#endif
