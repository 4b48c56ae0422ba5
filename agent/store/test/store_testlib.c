/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the image store's unit tests share (store_testlib.h). */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/store/sealed.h"
#include "lib/wire/batch.h"
#include "store_testlib.h"

void st_fill(uint8_t *p, unsigned seed)
{
    size_t i;

    for (i = 0; i < BATCH_PAGE; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

void st_store_make(char *store, size_t len)
{
    snprintf(store, len, "/tmp/vmckpt-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(store));
}

void st_store_remove(const char *store)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", store);
    ck_assert_int_eq(system(cmd), 0);
}

int st_put_epoch(const char *store, uint64_t epoch, uint64_t parent,
                 const uint8_t *ram, uint64_t ram_bytes, const uint64_t *pages,
                 size_t n, const char *state, const struct seal_key *key,
                 uint64_t *bytes, struct vmckpt_error *err)
{
    struct image_writer *w =
        image_writer_open(store, "j", "v", epoch, parent, ram_bytes, 1, err);
    struct sealer *s = key ? sealer_new(key, "j", "v", err) : NULL;
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    const uint8_t *st = (const uint8_t *)state;
    struct batch_builder b;
    size_t i = 0, k, slen = strlen(state);

    if (w == NULL) {
        sealer_free(s);
        return -1;
    }
    ck_assert_int_eq(key == NULL || s != NULL, 1);
    ck_assert_int_eq(batch_builder_init(&b, 1), 0);
    do { /* (an epoch of no pages still has its one batch) */
        Vmckpt__PageBatch msg;

        batch_reset(&b, 0);
        for (k = 0; k < BATCH_MAX_PAGES && i < n; k++, i++)
            batch_add(&b, pages[i], ram + pages[i] * BATCH_PAGE);
        vmckpt__page_batch__init(&msg);
        batch_finish(&b, &msg);
        if (s != NULL)
            ck_assert_int_eq(sealer_batch(s, &msg, err), 0);
        ck_assert_msg(image_writer_batch(w, 0, &msg, err) == 0, "%s",
                      err->text);
        end.batches++;
    } while (i < n);
    batch_builder_dispose(&b);
    /* (a sealed batch's bytes are in s until this call) */
    if (s != NULL)
        ck_assert_int_eq(sealer_state(s, 0, state, slen, &st, &slen, err), 0);
    ck_assert_int_eq(image_writer_state(w, 0, st, slen, err), 0);
    end.pages = n;
    end.state_bytes = slen;
    end.state_xxh64 = batch_xxh64(st, slen);
    sealer_free(s);
    return image_writer_commit(w, &end, bytes, err);
}

int st_restore(const char *store, uint64_t epoch, uint64_t ram_bytes,
               uint8_t *out, char *state, struct vmckpt_error *err)
{
    char rpath[128], spath[128];
    int rfd, sfd, rc;
    ssize_t n;

    snprintf(rpath, sizeof(rpath), "%s/ram.out", store);
    snprintf(spath, sizeof(spath), "%s/state.out", store);
    rfd = open(rpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    sfd = open(spath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(rfd, 0);
    ck_assert_int_ge(sfd, 0);
    ck_assert_int_eq(ftruncate(rfd, (off_t)ram_bytes), 0);
    rc = image_restore(store, "j", "v", epoch, NULL, rfd, sfd, NULL, err);
    if (rc == 0) {
        ck_assert_int_eq(pread(rfd, out, ram_bytes, 0), (ssize_t)ram_bytes);
        n = pread(sfd, state, 63, 0);
        ck_assert_int_ge(n, 0);
        state[n] = '\0';
    }
    close(rfd);
    close(sfd);
    return rc;
}
