/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the image store: what image.c (files, writing, reading) shares
 * with image_fold.c (folding, retention, dropping). */
#ifndef VMCKPT_IMAGE_INT_H
#define VMCKPT_IMAGE_INT_H

#include <pthread.h>

#include "image.h"

/* A base image's checksum unit: 1 MiB. */
#define CHUNK (BATCH_MAX_PAGES * BATCH_PAGE)

/* Every change of a manifest is a read-modify-write under this
 * (recursive) lock; readers take the manifest and open its files under it
 * too. */
extern pthread_mutex_t manifest_mu;

/* STORE/JOB/VM into 'buf', the names checked first. */
int vm_dir(const char *store, const char *job, const char *vm, char *buf,
           size_t len, struct vmckpt_error *err);
/* Replace the manifest with 'm': write, fsync, rename, fsync dir. */
int manifest_save(const char *dir, const struct image_manifest *m,
                  struct vmckpt_error *err);
int fsync_dir(const char *dir);
int write_all(int fd, const void *buf, size_t len);
/* The same at offset 'off' (pwrite). */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

#endif
