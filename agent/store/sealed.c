/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Sealing a checkpoint's stream, and opening a restored device state
 * (sealed.h). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/wire/batch.h"
#include "image_int.h"
#include "sealed.h"

struct seal_sink {
    struct precopy_sink inner;
    unsigned lanes;
    struct sealer *lane[PRECOPY_MAX_STREAMS];
    struct sealer *state;
    uint64_t clear_off;   /* device state sealed so far (clear bytes) */
    uint64_t sealed_off;  /* and what it became */
    struct batch_hash *h; /* XXH64 of the sealed state, for the end */
};

static int seal_batch(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                      struct vmckpt_error *err)
{
    struct seal_sink *s = arg;
    Vmckpt__PageBatch b = *msg;

    if (lane >= s->lanes) {
        errno = EINVAL;
        return errprintf(err, "no stream %u to seal", lane);
    }
    if (sealer_batch(s->lane[lane], &b, err) < 0)
        return -1;
    return s->inner.batch(s->inner.arg, lane, &b, err);
}

static int seal_state(void *arg, uint64_t off, const void *data, size_t len,
                      struct vmckpt_error *err)
{
    struct seal_sink *s = arg;
    const uint8_t *rec;
    size_t rlen;

    if (off != s->clear_off) {
        errno = EINVAL;
        return errprintf(err, "device state at %llu, %llu expected",
                         (unsigned long long)off,
                         (unsigned long long)s->clear_off);
    }
    if (sealer_state(s->state, off, data, len, &rec, &rlen, err) < 0)
        return -1;
    batch_hash_update(s->h, rec, rlen);
    if (s->inner.state(s->inner.arg, s->sealed_off, rec, rlen, err) < 0)
        return -1;
    s->clear_off += len;
    s->sealed_off += rlen;
    return 0;
}

/* The stores check the state they stored: its size and checksum are
 * those of the sealed records. */
static int seal_end(void *arg, const Vmckpt__StreamEnd *end, uint64_t *bytes,
                    struct vmckpt_error *err)
{
    struct seal_sink *s = arg;
    Vmckpt__StreamEnd e = *end;

    if (end->state_bytes != s->clear_off) {
        errno = EINVAL;
        return errprintf(err,
                         "the stream ends its device state at %llu bytes, "
                         "%llu were sealed",
                         (unsigned long long)end->state_bytes,
                         (unsigned long long)s->clear_off);
    }
    e.state_bytes = s->sealed_off;
    e.state_xxh64 = batch_hash_done(s->h);
    s->h = NULL;
    return s->inner.end(s->inner.arg, &e, bytes, err);
}

struct seal_sink *seal_sink_new(const struct seal_key *key, const char *job,
                                const char *vm, unsigned lanes,
                                const struct precopy_sink *inner,
                                struct precopy_sink *out,
                                struct vmckpt_error *err)
{
    struct seal_sink *s;
    unsigned i;

    if (lanes < 1 || lanes > PRECOPY_MAX_STREAMS) {
        errno = EINVAL;
        errprintf(err, "%u streams to seal", lanes);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        errprintf_errno(err, "seal");
        return NULL;
    }
    s->inner = *inner;
    s->lanes = lanes;
    s->h = batch_hash_new();
    if (s->h == NULL) {
        errprintf_errno(err, "seal");
        goto fail;
    }
    for (i = 0; i < lanes; i++)
        if ((s->lane[i] = sealer_new(key, job, vm, err)) == NULL)
            goto fail;
    if ((s->state = sealer_new(key, job, vm, err)) == NULL)
        goto fail;
    out->batch = seal_batch;
    out->state = seal_state;
    out->end = seal_end;
    out->arg = s;
    return s;
fail:
    seal_sink_free(s);
    return NULL;
}

void seal_sink_free(struct seal_sink *s)
{
    unsigned i;

    if (s == NULL)
        return;
    for (i = 0; i < s->lanes; i++)
        sealer_free(s->lane[i]);
    sealer_free(s->state);
    if (s->h != NULL)
        batch_hash_done(s->h);
    free(s);
}

struct state_out {
    int fd;
    uint64_t bytes;
};

/* A record opened: its clear bytes at their offset of the same file,
 * which never passes what was read already (a record's clear bytes are
 * fewer than its sealed ones, and come only once all of it was read). */
static int state_put(void *arg, uint64_t off, const void *data, size_t len)
{
    struct state_out *o = arg;

    if (off != o->bytes) {
        errno = EBADMSG;
        return -1;
    }
    if (pwrite_all(o->fd, data, len, off) < 0)
        return -1;
    o->bytes = off + len;
    return 0;
}

int seal_state_open_fd(int fd, uint64_t len, const struct seal_key *key,
                       const char *job, const char *vm, uint64_t *clear,
                       struct vmckpt_error *err)
{
    enum { PIECE = 1 << 20 };
    struct state_out o = {.fd = fd};
    struct sealer *s = NULL;
    uint8_t head[4], *buf = NULL;
    uint64_t off = 0;
    int sealed, rc = -1;

    *clear = len;
    sealed = len >= sizeof(head) &&
             pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
             seal_state_is_sealed(head, sizeof(head));
    if (!sealed && key == NULL)
        return 0; /* clear, as it is */
    errno = EBADMSG;
    if (!sealed)
        return errprintf(err,
                         "%s/%s: a clear device state in an epoch "
                         "stored sealed: refused",
                         job, vm);
    if (key == NULL) {
        errno = ENOKEY;
        return errprintf(err,
                         "%s/%s: the epoch is sealed and no key came "
                         "with the restore",
                         job, vm);
    }
    s = sealer_new(key, job, vm, err);
    buf = malloc(PIECE);
    if (s == NULL || buf == NULL) {
        if (s != NULL)
            errprintf_errno(err, "device state");
        goto out;
    }
    while (off < len) {
        size_t want = len - off < PIECE ? (size_t)(len - off) : PIECE;
        ssize_t n = pread(fd, buf, want, (off_t)off);

        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            errprintf_errno(err, "device state");
            goto out;
        }
        if (sealer_state_feed(s, buf, (size_t)n, state_put, &o, err) < 0)
            goto out;
        off += (uint64_t)n;
    }
    if (sealer_state_end(s, err) < 0)
        goto out;
    if (ftruncate(fd, (off_t)o.bytes) < 0) {
        errprintf_errno(err, "device state");
        goto out;
    }
    *clear = o.bytes;
    rc = 0;
out:
    if (rc < 0)
        errprefix(err, "%s/%s: sealed device state", job, vm);
    free(buf);
    sealer_free(s);
    return rc;
}

int seal_disk_chunk_open(struct sealer *s, unsigned disk, uint64_t off,
                         const uint8_t **data, size_t len, const uint8_t *seal,
                         struct vmckpt_error *err)
{
    if ((seal != NULL) != (s != NULL)) {
        errno = s != NULL ? EBADMSG : ENOKEY;
        return errprintf(
            err, "disk %u: a %s chunk at %llu in an epoch %s", disk,
            seal ? "sealed" : "clear", (unsigned long long)off,
            s ? "stored sealed: refused" : "restored without its key");
    }
    if (s != NULL && (*data = sealer_open_disk_chunk(s, disk, off, *data, len,
                                                     seal, err)) == NULL)
        return -1;
    return 0;
}
