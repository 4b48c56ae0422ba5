/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Image streams over an authenticated peer connection. Batches are sent
 * without waiting for replies (TCP paces them); the store answers the
 * stream-end with stream-durable once everything is on its disk. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/wire/batch.h"
#include "sealed.h"
#include "stream.h"

struct stream_out {
    unsigned n;
    struct client *cl[PRECOPY_MAX_STREAMS]; /* part i on cl[i] */
    uint64_t batches[PRECOPY_MAX_STREAMS], pages[PRECOPY_MAX_STREAMS];
};

static int open_part(struct stream_out *so, unsigned part, const char *addr,
                     const char *host, const struct auth_key *key,
                     const char *name, Vmckpt__StreamOpen *o,
                     struct vmckpt_error *err)
{
    Vmckpt__Envelope *reply;

    so->cl[part] = client_open_to(addr, host, key, VMCKPT__ROLE__ROLE_PEER,
                                  name, 10000, err);
    if (so->cl[part] == NULL)
        return -1;
    /* a store's refusal can come while batches are in flight */
    so->cl[part]->timeout_ms = 60000;
    o->part = part;
    if (client_call(so->cl[part], VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, o,
                    VMCKPT__MSG_TYPE__MSG_ACK, &reply, err) < 0)
        return errprefix(err, "store %s", addr);
    wire_free(reply);
    return 0;
}

struct stream_out *stream_out_open(const char *addr, const struct auth_key *key,
                                   const char *name,
                                   const struct stream_what *w,
                                   struct vmckpt_error *err)
{
    unsigned streams = w->streams;
    struct stream_out *so = calloc(1, sizeof(*so));
    Vmckpt__StreamOpen o = VMCKPT__STREAM_OPEN__INIT;
    unsigned i;

    if (so == NULL) {
        errprintf_errno(err, "stream");
        return NULL;
    }
    if (streams < 1 || streams > PRECOPY_MAX_STREAMS) {
        free(so);
        errno = EINVAL;
        errprintf(err, "%u streams: 1 to %d", streams, PRECOPY_MAX_STREAMS);
        return NULL;
    }
    so->n = streams;
    o.job = (char *)w->job;
    o.vm = (char *)w->vm;
    o.epoch = w->epoch;
    o.parent = w->parent;
    o.ram_bytes = w->ram_bytes;
    o.incarnation = w->incarnation;
    o.page_size = BATCH_PAGE;
    o.disks = w->disks;
    o.parts = streams;
    o.ticket.data = (uint8_t *)w->ticket;
    o.ticket.len = w->ticket != NULL ? w->ticket_len : 0;
    /* part 0 opens the epoch, the others join it */
    for (i = 0; i < streams; i++)
        if (open_part(so, i, addr, w->store_host, key, name, &o, err) < 0) {
            stream_out_abort(so, err->text);
            return NULL;
        }
    return so;
}

void stream_out_close(struct stream_out *so)
{
    unsigned i;

    if (so == NULL)
        return;
    for (i = 0; i < so->n; i++)
        client_close(so->cl[i]);
    free(so);
}

void stream_out_abort(struct stream_out *so, const char *reason)
{
    Vmckpt__StreamAbort a = VMCKPT__STREAM_ABORT__INIT;
    unsigned i;

    if (so == NULL)
        return;
    a.reason = (char *)reason;
    for (i = 0; i < so->n; i++)
        if (so->cl[i] != NULL)
            (void)client_send(so->cl[i], VMCKPT__MSG_TYPE__MSG_STREAM_ABORT, &a,
                              NULL);
    stream_out_close(so);
}

static int out_batch(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                     struct vmckpt_error *err)
{
    struct stream_out *so = arg;

    if (lane >= so->n) {
        errno = EINVAL;
        return errprintf(err, "no stream %u", lane);
    }
    if (client_send(so->cl[lane], VMCKPT__MSG_TYPE__MSG_PAGE_BATCH, msg, err) <
        0)
        return errprefix(err, "store %s", so->cl[lane]->addr);
    so->batches[lane]++;
    so->pages[lane] += msg->n_pages;
    return 0;
}

static int out_state(void *arg, uint64_t off, const void *data, size_t len,
                     struct vmckpt_error *err)
{
    struct stream_out *so = arg;
    Vmckpt__StateChunk c = VMCKPT__STATE_CHUNK__INIT;

    c.offset = off;
    c.data.data = (uint8_t *)data;
    c.data.len = len;
    if (client_send(so->cl[0], VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, &c, err) < 0)
        return errprefix(err, "store %s", so->cl[0]->addr);
    return 0;
}

int stream_out_disk(struct stream_out *so, const Vmckpt__DiskChunk *c,
                    struct vmckpt_error *err)
{
    if (client_send(so->cl[0], VMCKPT__MSG_TYPE__MSG_DISK_CHUNK, c, err) < 0)
        return errprefix(err, "store %s", so->cl[0]->addr);
    return 0;
}

/* The other parts end first, each acknowledged once its batches are in
 * the store's page file; then part 0 ends the epoch. */
static int out_end(void *arg, const Vmckpt__StreamEnd *end, uint64_t *bytes,
                   struct vmckpt_error *err)
{
    struct stream_out *so = arg;
    Vmckpt__Envelope *reply;
    unsigned i;

    for (i = 1; i < so->n; i++) {
        Vmckpt__StreamEnd pe = VMCKPT__STREAM_END__INIT;

        pe.batches = so->batches[i];
        pe.pages = so->pages[i];
        if (client_call(so->cl[i], VMCKPT__MSG_TYPE__MSG_STREAM_END, &pe,
                        VMCKPT__MSG_TYPE__MSG_ACK, &reply, err) < 0)
            return errprefix(err, "store %s, stream %u", so->cl[i]->addr, i);
        wire_free(reply);
    }
    if (client_call(so->cl[0], VMCKPT__MSG_TYPE__MSG_STREAM_END, end,
                    VMCKPT__MSG_TYPE__MSG_STREAM_DURABLE, &reply, err) < 0)
        return errprefix(err, "store %s", so->cl[0]->addr);
    *bytes = reply->stream_durable->bytes;
    wire_free(reply);
    return 0;
}

void stream_out_sink(struct stream_out *so, struct precopy_sink *sink)
{
    sink->batch = out_batch;
    sink->state = out_state;
    sink->end = out_end;
    sink->arg = so;
}

/* The fetch's end names its disks' layers: the chunk counts must be what
 * came, then the sink learns the sizes. */
static int fetch_disks_end(const struct stream_disks *disks,
                           const Vmckpt__StreamEnd *e, const uint64_t *chunks,
                           unsigned ndisks, struct vmckpt_error *err)
{
    struct image_disk_sizes *sz;
    unsigned k;
    int rc;

    errno = EBADMSG;
    if (e->n_disks != ndisks)
        return errprintf(err, "the stream ended with %zu disks, not %u",
                         e->n_disks, ndisks);
    if (disks == NULL) /* and ndisks 0: stream_fetch checked */
        return 0;
    sz = calloc(1, sizeof(*sz)); /* a spec with disks, an image without:
                                    the sink refuses it */
    if (sz == NULL)
        return errprintf_errno(err, "fetch");
    sz->ndisks = ndisks;
    for (k = 0; k < ndisks; k++) {
        const Vmckpt__DiskLayers *d = e->disks[k];

        if (d->chunks != chunks[k] || d->n_layer_bytes > IMAGE_MAX_VIEW) {
            free(sz);
            errno = EBADMSG;
            return errprintf(err,
                             "disk %u: %llu chunks came, the store says %llu "
                             "(%zu layers)",
                             k, (unsigned long long)chunks[k],
                             (unsigned long long)d->chunks, d->n_layer_bytes);
        }
        sz->nlayers[k] = (unsigned)d->n_layer_bytes;
        sz->chunks[k] = d->chunks;
        sz->base[k] = d->base_digest;
        memcpy(sz->bytes[k], d->layer_bytes,
               d->n_layer_bytes * sizeof(uint64_t));
    }
    rc = disks->end(disks->arg, sz, err);
    free(sz);
    return rc;
}

/* A chunk of a disk layer: checked, opened when sealed (with a key, every
 * chunk must be), then to the sink. */
static int fetch_disk_chunk(const struct stream_disks *disks, unsigned ndisks,
                            uint64_t *chunks, const Vmckpt__DiskChunk *c,
                            struct sealer *sealer, struct vmckpt_error *err)
{
    const uint8_t *data = c->data.data;

    if (c->disk >= ndisks || c->layer >= IMAGE_MAX_VIEW || c->data.len == 0 ||
        c->data.len > (1u << 20) || c->offset % (1u << 20) != 0 ||
        batch_xxh64(c->data.data, c->data.len) != c->xxh64 ||
        (c->seal.len != 0 && c->seal.len != SEAL_DISK_BYTES)) {
        errno = EBADMSG;
        return errprintf(err,
                         "disk %u layer %u: a bad or damaged chunk at "
                         "%llu",
                         c->disk, c->layer, (unsigned long long)c->offset);
    }
    if (seal_disk_chunk_open(sealer, c->disk, c->offset, &data, c->data.len,
                             c->seal.len ? c->seal.data : NULL, err) < 0)
        return errprefix(err, "layer %u", c->layer);
    chunks[c->disk]++;
    return disks->chunk(disks->arg, c->disk, c->layer, c->offset, data,
                        c->data.len, c->xxh64, NULL, err);
}

/* The fetch's end: its totals are what came ('got': batches, pages, state
 * bytes), and the state read back has its checksum. */
static int fetch_end(const Vmckpt__StreamEnd *e, const uint64_t *got,
                     int state_fd, struct vmckpt_error *err)
{
    uint8_t *st = malloc(got[2] ? got[2] : 1);
    int ok;

    ok = st != NULL && pread(state_fd, st, got[2], 0) == (ssize_t)got[2] &&
         batch_xxh64(st, got[2]) == e->state_xxh64 && e->batches == got[0] &&
         e->pages == got[1] && e->state_bytes == got[2];
    free(st);
    if (!ok) {
        errno = EBADMSG;
        return errprintf(err, "totals or state checksum do not match");
    }
    return 0;
}

/* A fetched batch into the RAM file: a sealed one opened first. */
static int fetch_batch_write(const Vmckpt__PageBatch *msg,
                             const struct batch_view *v, struct sealer *sealer,
                             uint8_t *scratch, int ram_fd, const uint8_t *zero,
                             struct vmckpt_error *err)
{
    struct batch_view clear;

    if (!v->sealed && sealer != NULL) { /* a key: all of it is sealed */
        errno = EBADMSG;
        return errprintf(err, "a clear batch in an epoch stored sealed: "
                              "refused");
    }
    if (v->sealed) {
        if (sealer == NULL) {
            errno = ENOKEY;
            return errprintf(err, "the epoch is sealed and no key came with "
                                  "the restore");
        }
        if (sealer_open_batch(sealer, msg, scratch, &clear, err) < 0)
            return -1;
        v = &clear;
    }
    if (batch_view_write(v, ram_fd, zero) < 0)
        return errprintf_errno(err, "guest RAM file");
    return 0;
}

int stream_fetch(const struct stream_source *src, const struct auth_key *key,
                 const char *name, const char *job, const char *vm,
                 uint64_t epoch, const struct seal_key *data_key, int ram_fd,
                 int state_fd, const struct stream_disks *disks,
                 struct vmckpt_error *err)
{
    struct sealer *sealer = NULL;
    uint64_t chunks[IMAGE_MAX_DISKS] = {0};
    unsigned ndisks;
    Vmckpt__FetchEpoch f = VMCKPT__FETCH_EPOCH__INIT;
    Vmckpt__Envelope *env = NULL;
    struct client *cl;
    uint8_t *scratch = NULL, zero[BATCH_PAGE];
    uint64_t npages, batches = 0, pages = 0, state_bytes = 0;
    const char *addr = src->addr;
    int rc = -1;

    memset(zero, 0, sizeof(zero));
    cl = client_open_to(src->addr, src->host, key, VMCKPT__ROLE__ROLE_PEER,
                        name, 10000, err);
    if (cl == NULL)
        return -1;
    cl->conn.max_frame = WIRE_MAX_FRAME_LIMIT;
    cl->timeout_ms = 60000;
    f.job = (char *)job;
    f.vm = (char *)vm;
    f.epoch = epoch;
    f.ticket.data = (uint8_t *)src->ticket;
    f.ticket.len = src->ticket != NULL ? src->ticket_len : 0;
    if (client_call(cl, VMCKPT__MSG_TYPE__MSG_FETCH_EPOCH, &f,
                    VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, &env, err) < 0) {
        errprefix(err, "store %s", addr);
        goto out;
    }
    npages = env->stream_open->ram_bytes / BATCH_PAGE;
    ndisks = env->stream_open->disks;
    if (ndisks > IMAGE_MAX_DISKS || (ndisks > 0 && disks == NULL)) {
        errno = EPROTO;
        errprintf(err, "store %s: %s/%s epoch %llu has %u disks%s", addr, job,
                  vm, (unsigned long long)epoch, ndisks,
                  disks == NULL ? ", its spec none" : "");
        goto out;
    }
    if (ftruncate(ram_fd, (off_t)env->stream_open->ram_bytes) < 0) {
        errprintf_errno(err, "guest RAM file");
        goto out;
    }
    wire_free(env);
    env = NULL;
    scratch = malloc((size_t)BATCH_MAX_PAGES * BATCH_PAGE);
    if (scratch == NULL) {
        errprintf_errno(err, "fetch");
        goto out;
    }
    if (data_key != NULL &&
        (sealer = sealer_new(data_key, job, vm, err)) == NULL)
        goto out;
    for (;;) {
        if (wire_conn_recv_wait(&cl->conn, &env, cl->timeout_ms, err) < 0) {
            errprefix(err, "store %s: %s/%s epoch %llu", addr, job, vm,
                      (unsigned long long)epoch);
            goto out;
        }
        if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR) {
            errno = EIO;
            errprintf(err, "store %s: %s", addr, env->error->text);
            goto out;
        } else if (env->type == VMCKPT__MSG_TYPE__MSG_PAGE_BATCH) {
            struct batch_view v;

            if (batch_open(env->page_batch, npages, scratch, &v, err) < 0 ||
                fetch_batch_write(env->page_batch, &v, sealer, scratch, ram_fd,
                                  zero, err) < 0) {
                errprefix(err, "%s/%s epoch %llu, batch %llu from %s", job, vm,
                          (unsigned long long)epoch,
                          (unsigned long long)batches + 1, addr);
                goto out;
            }
            batches++;
            pages += v.n;
        } else if (env->type == VMCKPT__MSG_TYPE__MSG_STATE_CHUNK) {
            const Vmckpt__StateChunk *c = env->state_chunk;

            if (c->offset != state_bytes ||
                pwrite(state_fd, c->data.data, c->data.len, (off_t)c->offset) !=
                    (ssize_t)c->data.len) {
                errno = EIO;
                errprintf(err, "device state chunk at %llu",
                          (unsigned long long)c->offset);
                goto out;
            }
            state_bytes += c->data.len;
        } else if (env->type == VMCKPT__MSG_TYPE__MSG_DISK_CHUNK) {
            if (fetch_disk_chunk(disks, ndisks, chunks, env->disk_chunk, sealer,
                                 err) < 0) {
                errprefix(err, "%s/%s epoch %llu from %s", job, vm,
                          (unsigned long long)epoch, addr);
                goto out;
            }
        } else if (env->type == VMCKPT__MSG_TYPE__MSG_STREAM_END) {
            uint64_t got[3] = {batches, pages, state_bytes};

            if (fetch_end(env->stream_end, got, state_fd, err) < 0 ||
                fetch_disks_end(disks, env->stream_end, chunks, ndisks, err) <
                    0) {
                errprefix(err, "%s/%s epoch %llu from %s", job, vm,
                          (unsigned long long)epoch, addr);
                goto out;
            }
            rc = 0;
            goto out;
        }
        wire_free(env);
        env = NULL;
    }
out:
    wire_free(env);
    free(scratch);
    sealer_free(sealer);
    client_close(cl);
    return rc;
}
