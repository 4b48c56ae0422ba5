/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the image store: what image.c (files, writing, reading) shares
 * with image_fold.c (folding, retention, dropping). */
#ifndef VMCKPT_IMAGE_INT_H
#define VMCKPT_IMAGE_INT_H

#include <pthread.h>
#include <stdio.h>

#include "image.h"
#include "lib/util/io.h" /* fsync_dir */

/* A base image's checksum unit: 1 MiB. */
#define CHUNK (BATCH_MAX_PAGES * BATCH_PAGE)

/* Every change of a manifest is a read-modify-write under this
 * (recursive) lock; readers take the manifest and open its files under it
 * too. */
extern pthread_mutex_t manifest_mu;

/* Called (when set) by a fold between writing its base and taking
 * manifest_mu to swap it in, with the store, job, VM and epoch: for tests
 * that commit or drop in that window. NULL outside tests. */
extern void (*image_fold_window)(const char *store, const char *job,
                                 const char *vm, uint64_t epoch);

/* STORE/JOB/VM into 'buf', the names checked first. */
int vm_dir(const char *store, const char *job, const char *vm, char *buf,
           size_t len, struct vmckpt_error *err);
/* Replace the manifest with 'm': write, fsync, rename, fsync dir. */
int manifest_save(const char *dir, const struct image_manifest *m,
                  struct vmckpt_error *err);
/* The same; when it fails after its rename (the directory's fsync) and
 * the manifest read back says of 'epoch' what 'm' says (its parent, base
 * and fold), 0 all the same: what it names must then stay. */
int manifest_save_epoch(const char *store, const char *job, const char *vm,
                        const char *dir, const struct image_manifest *m,
                        uint64_t epoch, struct vmckpt_error *err);
int write_all(int fd, const void *buf, size_t len);
/* The same at offset 'off' (pwrite). */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
/* Read 'len' bytes at 'off', or -1 (a short file too). */
int pread_all(int fd, void *buf, size_t len, uint64_t off);
/* Verify and deliver the batches of epoch 'e''s page file 'fd' (its first
 * e->pages_bytes bytes), the RAM 'npages' pages; 'scratch' holds one
 * batch's pages. */
int image_read_pages(int fd, const char *dir, const char *job, const char *vm,
                     const struct image_epoch *e, uint64_t npages,
                     int (*cb)(const Vmckpt__PageBatch *,
                               const struct batch_view *, void *),
                     void *arg, uint8_t *scratch, struct vmckpt_error *err);
/* The checksums of base image e<N>.base: e<N>.base.sum, one u64 per
 * 1 MiB of 'ram_bytes'; NULL with 'err'. */
uint64_t *image_load_sums(const char *dir, const char *job, const char *vm,
                          const struct image_epoch *e, uint64_t ram_bytes,
                          struct vmckpt_error *err);

/* image_fold_inplace.c: a delta folded onto its parent's base in place
 * (docs/store.md, 'Folding in place'). */
/* Readers of a VM's base image at work in this process (image_read),
 * counted per VM directory under manifest_mu: a fold in place of that VM
 * starts only when there is none. 'delta' +1 or -1; the count after. */
unsigned image_base_readers(const char *dir, int delta);
/* With manifest_mu held, for an epoch the manifest says is being folded
 * in place (e->fold_from): 1 when a fold of this process is at it ('*gen'
 * then for image_fold_wait), 0 when one stopped part way (a crash, an
 * error): image_fold_finish then. */
int image_fold_live(const char *dir, const struct image_epoch *e,
                    uint64_t *gen);
/* Wait (without manifest_mu) until the fold of 'gen' has ended. */
void image_fold_wait(uint64_t gen);
/* How many readers wait so (for tests). */
unsigned image_fold_waiting(void);
/* With manifest_mu held: finish the fold in place of 'epoch' that stopped
 * part way. 0, or -1 with 'err' (the manifest still says it). */
int image_fold_finish(const char *store, const char *job, const char *vm,
                      uint64_t epoch, struct vmckpt_error *err);
/* Fold kept delta 'epoch' onto its parent's base, which then goes: the
 * parent is older than 'keep_from', a base, and only 'epoch' builds on it.
 * 0 done; 1 not now (another shape, or a reader of a base at work: fold
 * by copy instead); -1 with 'err' (errno ESTALE: the epoch changed
 * meanwhile). With retain_mu held. */
int image_fold_inplace(const char *store, const char *job, const char *vm,
                       uint64_t epoch, uint64_t keep_from,
                       struct vmckpt_error *err);
/* Epoch 'e' of 'dir', being folded in place, was dropped: the files of
 * the epoch it was folded from go too. */
void image_fold_forget(const char *dir, const struct image_epoch *e);
/* For tests: called (when set) at each step of a fold in place (1: ready,
 * nothing changed; 2: the manifest says it; 3: the first batch written;
 * 4: the checksums written; 5: the files renamed); nonzero stops the fold
 * there as a crash would. NULL outside tests. */
extern int (*image_fold_inplace_hook)(int step);

/* image_disk.c: the guest disks' layer files. */
/* The manifest's "disks" line of 'e' (nothing for a guest without). */
void image_disk_print(FILE *f, const struct image_epoch *e);
/* A "disks" line: it belongs to the epoch line before it. 0, or -1 if
 * malformed. */
int image_disk_parse(struct image_manifest *m, char *line);
/* A fold that would lend the layers of more epochs than this merges them
 * (all but the disk's very first layer) into one file per disk. */
#define IMAGE_MERGE_FROM 8
/* An inherit entry X made of merged files e<X>.d<K>.m (the layers of the
 * chain up to epoch X, less the first, merged): this bit is set in its
 * inherit_layers[][K] of every disk, the count beside it 0 or 1. */
#define IMAGE_INHERIT_MERGED 0x80
/* Epoch 'e' becomes a base (a fold): its disks keep the layers of the
 * epochs it was built on, named in its inherit list; past IMAGE_MERGE_FROM
 * of them, merged first into files of 'dir' made durable before this
 * returns (on failure none is left). */
int image_disk_fold(const char *dir, const struct image_manifest *m,
                    struct image_epoch *e, struct vmckpt_error *err);
/* Remove the layer files of epochs 'm' no longer names nor keeps. */
void image_disk_gc(const char *dir, const struct image_manifest *m);
/* The same for JOB/VM's manifest as it is now (what a fold whose
 * manifest was not saved merged); errno kept. */
void image_fold_undo_disks(const char *store, const char *job, const char *vm,
                           const char *dir);
/* The layers of an epoch being written ('ndisks' disks). */
struct image_disks_in;
struct image_disks_in *image_disks_open(unsigned ndisks,
                                        struct vmckpt_error *err);
/* One chunk: checked (bounds, checksum, not twice) and written. */
int image_disks_chunk(struct image_disks_in *in, const char *dir,
                      uint64_t epoch, const Vmckpt__DiskChunk *c,
                      struct vmckpt_error *err);
/* At the epoch's end: its disk chunks sealed or clear as its pages and
 * state were ('sealed'), the layers' sizes and chunk counts checked against
 * 'end', each layer and its checksums made durable and renamed into
 * place; 'e' (the manifest's new entry) told what the epoch carries. */
int image_disks_commit(struct image_disks_in *in, const char *dir,
                       uint64_t epoch, int sealed, const Vmckpt__StreamEnd *end,
                       struct image_epoch *e, struct vmckpt_error *err);
/* How many disks it was opened for. */
unsigned image_disks_count(const struct image_disks_in *in);
/* Free; the files of an epoch not committed go. NULL is fine. */
void image_disks_close(struct image_disks_in *in, const char *dir,
                       uint64_t epoch);

/* image_disk_merge.c: the qcow2 layer files 'layers' (their names in
 * 'dir', oldest first, 'n' of them) of one disk merged into the qcow2
 * file 'name' with its .sum: each 2 KiB the newest layer that holds it
 * wins, what none holds stays unallocated. Every byte read is checked
 * against its layer's .sum; the file is written as 'name'.tmp, fsynced
 * and renamed with its sum, the directory fsynced. -1 with 'err' and
 * nothing left: errno ENOTSUP for layers it cannot merge (not qcow2 with
 * 64 KiB clusters, compressed, encrypted, sizes that differ), EBADMSG for
 * a damaged one, else the failing call's. */
int image_disk_merge(const char *dir, const char *const *layers, unsigned n,
                     const char *name, struct vmckpt_error *err);

#endif
