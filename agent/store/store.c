/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Peer store connections: handshake, then a stream of one epoch at a time
 * (stream-open, page-batch..., state-chunk..., stream-end -> durable), or a
 * fetch of a stored epoch. Any error aborts the epoch being written; the
 * epochs already durable are never touched. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "image.h"
#include "lib/topo/topo.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/wire/batch.h"
#include "lib/util/net.h"
#include "lib/wire/tls.h"
#include "store.h"

#define IO_TIMEOUT_MS 60000

/* An epoch being written: one per job/VM at a time, shared by the
 * connections of its parallel streams (parts). Under the store's lock;
 * the writer is freed by part 0's commit (when every other part has
 * ended and writes no more) or by the last connection to leave. */
struct store_busy {
    char job[65], vm[65];
    uint64_t epoch;
    unsigned parts, joined_mask, ended, refs;
    struct image_writer *w; /* NULL once committed */
    int failed;
    char why[300];
    struct store_busy *next;
};

struct peer {
    struct store *s;
    int fd;
    char addr[96];
    struct wire_conn w;
    char who[160];
    char name[128]; /* the host its credential proved */
    int refused;    /* a write failed: the sender is told, then drained */
};

/* Whether the coordinator let this peer's host do 'op' on epoch 'epoch'
 * of JOB/VM: 0, or -1 with why in 'err'. */
static int ticket_admits(struct peer *p, enum ticket_op op, const char *job,
                         const char *vm, uint64_t epoch,
                         const ProtobufCBinaryData *t, struct vmckpt_error *err)
{
    struct store *s = p->s;
    uint8_t key[TICKET_KEY_LEN];
    int have, rc;

    if (!s->tickets)
        return 0;
    pthread_mutex_lock(&s->lock);
    have = s->have_ticket_key;
    memcpy(key, s->ticket_key, sizeof(key));
    pthread_mutex_unlock(&s->lock);
    if (!have)
        rc = errprintf(err, "refused: this store has no ticket key from the "
                            "coordinator yet (its agent has not registered, "
                            "or the coordinator sent none)");
    else if (t->len == 0)
        rc = errprintf(err,
                       "refused: %s of %s/%s epoch %llu by %s without a "
                       "ticket from the coordinator",
                       ticket_op_name(op), job, vm, (unsigned long long)epoch,
                       p->name);
    else if (ticket_check(key, op, job, vm, epoch, p->name, t->data, t->len) <
             0)
        rc = errprintf(err,
                       "refused: the ticket does not let %s %s %s/%s epoch "
                       "%llu",
                       p->name, ticket_op_name(op), job, vm,
                       (unsigned long long)epoch);
    else
        rc = 0;
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int store_set_ticket_key(struct store *s, const uint8_t *key, size_t len)
{
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    if (key != NULL && len == TICKET_KEY_LEN) {
        rc = !s->have_ticket_key ||
             CRYPTO_memcmp(s->ticket_key, key, TICKET_KEY_LEN) != 0;
        memcpy(s->ticket_key, key, TICKET_KEY_LEN);
        s->have_ticket_key = 1;
    } else {
        OPENSSL_cleanse(s->ticket_key, sizeof(s->ticket_key));
        s->have_ticket_key = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void stream_leave(struct store *s, struct store_busy *b,
                         const char *why);

/* Open the epoch of 'so' (part 0) or join it (the other parts). NULL with
 * an error code and text. */
static struct store_busy *stream_join(struct store *s,
                                      const Vmckpt__StreamOpen *so,
                                      Vmckpt__ErrorCode *code,
                                      struct vmckpt_error *err)
{
    unsigned parts = so->parts ? so->parts : 1;
    struct store_busy *b;

    pthread_mutex_lock(&s->lock);
    for (b = s->busy; b != NULL; b = b->next)
        if (strcmp(b->job, so->job) == 0 && strcmp(b->vm, so->vm) == 0)
            break;
    if (so->part > 0) {
        *code = VMCKPT__ERROR_CODE__ERR_NOT_FOUND;
        if (b == NULL || b->epoch != so->epoch || b->parts != parts ||
            so->part >= parts || (b->joined_mask & (1u << so->part)) ||
            b->w == NULL || b->failed) {
            errno = ENOENT;
            errprintf(err, "%s/%s epoch %llu: no open stream for part %u of %u",
                      so->job, so->vm, (unsigned long long)so->epoch, so->part,
                      parts);
            b = NULL;
        } else {
            b->joined_mask |= 1u << so->part;
            b->refs++;
        }
        pthread_mutex_unlock(&s->lock);
        return b;
    }
    if (b != NULL) {
        *code = VMCKPT__ERROR_CODE__ERR_BUSY;
        errno = EBUSY;
        errprintf(err, "another stream of this VM is being written");
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    *code = VMCKPT__ERROR_CODE__ERR_INVALID;
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        errprintf_errno(err, "store");
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    /* claimed before the (slow) open, so a second opener is refused */
    snprintf(b->job, sizeof(b->job), "%s", so->job);
    snprintf(b->vm, sizeof(b->vm), "%s", so->vm);
    b->epoch = so->epoch;
    b->parts = parts;
    b->joined_mask = 1;
    b->refs = 1;
    b->next = s->busy;
    s->busy = b;
    pthread_mutex_unlock(&s->lock);
    if (image_incarnation_admit(s->dir, so->job, so->vm, so->incarnation, err) <
        0) {
        if (errno == ESTALE)
            *code = VMCKPT__ERROR_CODE__ERR_STALE;
        stream_leave(s, b, err->text);
        return NULL;
    }
    b->w = image_writer_open(s->dir, so->job, so->vm, so->epoch, so->parent,
                             so->ram_bytes, parts, err);
    if (b->w != NULL && so->disks > 0 &&
        image_writer_disks(b->w, so->disks, err) < 0) {
        image_writer_abort(b->w);
        b->w = NULL;
    }
    if (b->w == NULL) {
        stream_leave(s, b, err->text);
        return NULL;
    }
    return b;
}

/* A part leaves its epoch (after the end, or on failure with 'why'): the
 * others learn that it failed; the last one out drops what is unfinished
 * and frees the claim. */
static void stream_leave(struct store *s, struct store_busy *b, const char *why)
{
    struct store_busy **pp;
    struct image_writer *w = NULL;

    pthread_mutex_lock(&s->lock);
    if (why != NULL && !b->failed) {
        b->failed = 1;
        snprintf(b->why, sizeof(b->why), "%s", why);
    }
    if (--b->refs == 0) {
        for (pp = &s->busy; *pp != NULL; pp = &(*pp)->next)
            if (*pp == b) {
                *pp = b->next;
                break;
            }
        w = b->w;
    } else {
        b = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    image_writer_abort(w);
    free(b);
}

/* Why the epoch of 'st' failed, into 'err' (under the store's lock). */
static void failed_text(const struct store_busy *st, struct vmckpt_error *err)
{
    char pre[180];

    snprintf(pre, sizeof(pre), "%s/%s epoch %llu: ", st->job, st->vm,
             (unsigned long long)st->epoch);
    /* the reason may already name the epoch */
    snprintf(err->text, sizeof(err->text), "%s%s",
             strncmp(st->why, pre, strlen(pre)) == 0 ? "" : pre,
             st->why[0] ? st->why : "another stream failed");
}

/* 0 if the epoch may go on, else -1 with why not. */
static int stream_ok(struct store *s, struct store_busy *b,
                     struct vmckpt_error *err)
{
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    if (b->failed) {
        errno = ECONNABORTED;
        failed_text(b, err);
        rc = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int send_msg(struct peer *p, int type, uint64_t id, const void *msg)
{
    struct vmckpt_error err;

    if (wire_conn_send(&p->w, type, id, msg, &err) < 0 ||
        wire_conn_flush_wait(&p->w, IO_TIMEOUT_MS, &err) < 0) {
        log_warn("store: %s: %s", p->who, err.text);
        return -1;
    }
    return 0;
}

static void send_error(struct peer *p, uint64_t id, Vmckpt__ErrorCode code,
                       const char *text)
{
    wire_conn_send_error(&p->w, id, code, text);
    (void)wire_conn_flush_wait(&p->w, 5000, NULL);
}

struct fetch_ctx {
    struct peer *p;
    uint64_t batches, pages, state_bytes;
};

static int fetch_disk(void *arg, unsigned disk, unsigned layer, uint64_t off,
                      const void *data, size_t len, uint64_t xxh64,
                      const uint8_t *seal, struct vmckpt_error *err)
{
    struct fetch_ctx *f = arg;
    Vmckpt__DiskChunk c = VMCKPT__DISK_CHUNK__INIT;

    if (seal != NULL) { /* as it came: the fetcher has the key */
        c.seal.data = (uint8_t *)seal;
        c.seal.len = SEAL_DISK_BYTES;
    }
    c.disk = disk;
    c.layer = layer;
    c.offset = off;
    c.data.data = (uint8_t *)data;
    c.data.len = len;
    c.xxh64 = xxh64;
    store_count(f->p->s, 0, len);
    if (send_msg(f->p, VMCKPT__MSG_TYPE__MSG_DISK_CHUNK, 0, &c) < 0)
        return errprintf(err, "sending a disk chunk");
    return 0;
}

/* After the state: the epoch's disk layers, then stream-end with their
 * sizes. */
static int fetch_disks_and_end(struct peer *p, const Vmckpt__FetchEpoch *fe,
                               uint64_t rid, struct fetch_ctx *f,
                               Vmckpt__StreamEnd *end)
{
    struct image_disk_sizes *sz = calloc(1, sizeof(*sz));
    Vmckpt__DiskLayers dl[IMAGE_MAX_DISKS], *dlp[IMAGE_MAX_DISKS];
    struct vmckpt_error err;
    unsigned k;
    int rc;

    if (sz == NULL) {
        send_error(p, rid, VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
        return -1;
    }
    if (image_disk_read(p->s->dir, fe->job, fe->vm, fe->epoch, fetch_disk, f,
                        sz, &err) < 0) {
        log_err("store: %s", err.text);
        send_error(p, rid, VMCKPT__ERROR_CODE__ERR_INTERNAL, err.text);
        free(sz);
        return -1;
    }
    for (k = 0; k < sz->ndisks; k++) {
        vmckpt__disk_layers__init(&dl[k]);
        dl[k].n_layer_bytes = sz->nlayers[k];
        dl[k].layer_bytes = sz->bytes[k];
        dl[k].chunks = sz->chunks[k];
        dl[k].base_digest = sz->base[k];
        dlp[k] = &dl[k];
    }
    end->n_disks = sz->ndisks;
    end->disks = dlp;
    rc = send_msg(p, VMCKPT__MSG_TYPE__MSG_STREAM_END, rid, end);
    free(sz);
    return rc;
}

static int fetch_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                       void *arg)
{
    struct fetch_ctx *f = arg;

    (void)v;
    f->batches++;
    f->pages += msg->n_pages;
    store_count(f->p->s, 0, msg->data.len);
    return send_msg(f->p, VMCKPT__MSG_TYPE__MSG_PAGE_BATCH, 0, msg);
}

static int fetch_state(uint64_t off, const void *data, size_t len, void *arg)
{
    struct fetch_ctx *f = arg;
    Vmckpt__StateChunk c = VMCKPT__STATE_CHUNK__INIT;

    c.offset = off;
    c.data.data = (uint8_t *)data;
    c.data.len = len;
    f->state_bytes += len;
    store_count(f->p->s, 0, len);
    return send_msg(f->p, VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, 0, &c);
}

/* Whether peer 'p' may do 'op' on epoch 'epoch' of JOB/VM: names a store
 * takes, and the coordinator's ticket. 0, or -1 after answering request
 * 'req' with why (and logging it). */
static int admit(struct peer *p, uint64_t req, enum ticket_op op,
                 const char *job, const char *vm, uint64_t epoch,
                 const ProtobufCBinaryData *t)
{
    struct vmckpt_error err;
    Vmckpt__ErrorCode code = VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED;

    if (!image_valid_name(job) || !image_valid_name(vm)) {
        snprintf(err.text, sizeof(err.text),
                 "refused job/VM name '%.64s'/'%.64s'", job, vm);
        code = VMCKPT__ERROR_CODE__ERR_INVALID;
    } else if (ticket_admits(p, op, job, vm, epoch, t, &err) == 0)
        return 0;
    log_warn("store: %s: %s", p->who, err.text);
    send_error(p, req, code, err.text);
    return -1;
}

/* Serve one fetch: the epoch's batches (its chain, oldest first), its
 * state, then stream-end with the totals and the state checksum. */
static int serve_fetch(struct peer *p, const Vmckpt__Envelope *env)
{
    const Vmckpt__FetchEpoch *fe = env->fetch_epoch;
    struct fetch_ctx f = {.p = p};
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    struct image_manifest m;
    const struct image_epoch *e;
    struct vmckpt_error err;

    if (admit(p, env->request_id, TICKET_FETCH, fe->job, fe->vm, fe->epoch,
              &fe->ticket) < 0)
        return 0;
    if (image_manifest_load(p->s->dir, fe->job, fe->vm, &m, &err) < 0 ||
        (e = image_manifest_find(&m, fe->epoch)) == NULL) {
        if (errno != EINVAL)
            snprintf(err.text, sizeof(err.text),
                     "%s/%s: no durable epoch %llu in store '%s'", fe->job,
                     fe->vm, (unsigned long long)fe->epoch, p->s->name);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                   err.text);
        return 0;
    }
    log_info("store: %s fetches %s/%s epoch %llu", p->who, fe->job, fe->vm,
             (unsigned long long)fe->epoch);
    {
        Vmckpt__StreamOpen so = VMCKPT__STREAM_OPEN__INIT;

        so.job = fe->job;
        so.vm = fe->vm;
        so.epoch = fe->epoch;
        so.parent = e->parent;
        so.ram_bytes = m.ram_bytes;
        so.page_size = 4096;
        so.disks = e->ndisks;
        if (send_msg(p, VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, env->request_id,
                     &so) < 0)
            return -1;
    }
    if (image_read(p->s->dir, fe->job, fe->vm, fe->epoch, fetch_batch,
                   fetch_state, &f, &err) < 0) {
        log_err("store: %s", err.text);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                   err.text);
        return -1;
    }
    end.batches = f.batches;
    end.pages = f.pages;
    end.state_bytes = f.state_bytes;
    end.state_xxh64 = e->state_xxh64;
    return fetch_disks_and_end(p, fe, env->request_id, &f, &end);
}

/* Part 'part' (> 0) ends: its totals must be what this connection
 * wrote; the ack tells the sender its batches are in the page file. */
static int end_part(struct peer *p, struct store_busy *st, unsigned part,
                    uint64_t batches, uint64_t pages,
                    const Vmckpt__Envelope *env, struct vmckpt_error *err)
{
    const Vmckpt__StreamEnd *e = env->stream_end;
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;

    if (e->batches != batches || e->pages != pages) {
        errno = EPROTO;
        errprintf(err,
                  "%s/%s epoch %llu: stream %u ended after %llu batches, %llu "
                  "pages; the sender says %llu, %llu",
                  st->job, st->vm, (unsigned long long)st->epoch, part,
                  (unsigned long long)batches, (unsigned long long)pages,
                  (unsigned long long)e->batches, (unsigned long long)e->pages);
        log_err("store: %s: %s", p->who, err->text);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                   err->text);
        return -1;
    }
    pthread_mutex_lock(&p->s->lock);
    st->ended++;
    pthread_mutex_unlock(&p->s->lock);
    ack.text = "part written";
    send_msg(p, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
    return 0;
}

/* Part 0 ends the epoch: every other part must have ended; then the
 * writer checks the totals and makes it durable. */
static int end_epoch(struct peer *p, struct store_busy *st,
                     const Vmckpt__Envelope *env, struct vmckpt_error *err)
{
    Vmckpt__StreamDurable d = VMCKPT__STREAM_DURABLE__INIT;
    struct image_writer *w = NULL;
    uint64_t bytes;
    char pre[180];
    int rc;

    snprintf(pre, sizeof(pre), "%s/%s epoch %llu: ", st->job, st->vm,
             (unsigned long long)st->epoch);
    pthread_mutex_lock(&p->s->lock);
    if (st->failed) {
        /* the reason may already name the epoch */
        snprintf(err->text, sizeof(err->text), "%s%s",
                 strncmp(st->why, pre, strlen(pre)) == 0 ? "" : pre, st->why);
    } else if (st->ended != st->parts - 1) {
        snprintf(err->text, sizeof(err->text),
                 "%s/%s epoch %llu: %u of %u streams ended", st->job, st->vm,
                 (unsigned long long)st->epoch, st->ended + 1, st->parts);
    } else {
        w = st->w;
        st->w = NULL; /* every other part is done with it */
    }
    pthread_mutex_unlock(&p->s->lock);
    if (w == NULL) {
        log_err("store: %s: %s", p->who, err->text);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                   err->text);
        return -1;
    }
    rc = image_writer_commit(w, env->stream_end, &bytes, err);
    if (rc < 0) {
        log_err("store: %s: %s", p->who, err->text);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                   err->text);
        return -1;
    }
    store_count(p->s, bytes, 0);
    log_info("store: %s/%s epoch %llu durable (%llu bytes)", st->job, st->vm,
             (unsigned long long)st->epoch, (unsigned long long)bytes);
    d.job = st->job;
    d.vm = st->vm;
    d.epoch = st->epoch;
    d.bytes = bytes;
    send_msg(p, VMCKPT__MSG_TYPE__MSG_STREAM_DURABLE, env->request_id, &d);
    return 0;
}

/* What one connection writes: at most one part of one epoch at a time. */
struct session {
    struct store_busy *st; /* the epoch this connection writes, or NULL */
    char job[65], vm[65];
    uint64_t epoch, batches, pages;
    unsigned part;
    /* the batch being handled as it came on the wire (on_raw_batch) */
    const uint8_t *raw;
    size_t raw_len;
};

/* The handshake, and the roles the store serves. Returns 0, or -1 after
 * logging why the connection is dropped. */
static int peer_auth(struct peer *p)
{
    struct auth_server as;
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    int rc;

    auth_server_init(&as, p->s->key, p->s->name);
    while (as.state != AUTH_DONE) {
        if (wire_conn_recv_wait(&p->w, &env, 10000, &err) < 0) {
            log_warn("store: dropping %s: %s", p->addr, err.text);
            return -1;
        }
        rc = auth_server_step(&as, &p->w, env, &err);
        wire_free(env);
        (void)wire_conn_flush_wait(&p->w, 5000, NULL);
        if (rc < 0) {
            log_warn("store: dropping %s: %s", p->addr, err.text);
            return -1;
        }
    }
    snprintf(p->who, sizeof(p->who), "%s %s (%s)", auth_role_name(as.role),
             as.peer_name, p->addr);
    snprintf(p->name, sizeof(p->name), "%s", as.peer_name);
    if (as.role != VMCKPT__ROLE__ROLE_PEER &&
        as.role != VMCKPT__ROLE__ROLE_AGENT) {
        send_error(p, 0, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                   "the store serves agents only");
        log_warn("store: dropping %s: role not served", p->who);
        return -1;
    }
    return 0;
}

/* Each handler returns 0 to go on with the connection, -1 to close it. */

static int on_open(struct peer *p, struct session *ss,
                   const Vmckpt__Envelope *env)
{
    const Vmckpt__StreamOpen *so = env->stream_open;
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;
    struct vmckpt_error err;
    Vmckpt__ErrorCode code;

    if (ss->st != NULL || so->page_size != 4096) {
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                   ss->st ? "a stream is already open" : "page size");
        return 0;
    }
    if (admit(p, env->request_id, TICKET_WRITE, so->job, so->vm, so->epoch,
              &so->ticket) < 0)
        return 0;
    ss->st = stream_join(p->s, so, &code, &err);
    if (ss->st == NULL) {
        log_warn("store: %s: %s", p->who, err.text);
        send_error(p, env->request_id, code, err.text);
        return 0;
    }
    snprintf(ss->job, sizeof(ss->job), "%s", so->job);
    snprintf(ss->vm, sizeof(ss->vm), "%s", so->vm);
    ss->epoch = so->epoch;
    ss->part = so->part;
    ss->batches = ss->pages = 0;
    if (ss->part == 0)
        log_info("store: %s writes %s/%s epoch %llu (%s%s%u%s)", p->who,
                 ss->job, ss->vm, (unsigned long long)ss->epoch,
                 so->parent ? "delta" : "full", ss->st->parts > 1 ? ", " : "",
                 ss->st->parts, ss->st->parts > 1 ? " streams" : "");
    ack.text = "open";
    send_msg(p, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
    return 0;
}

/* One message of an epoch's data into its writer. */
static int write_data(struct session *ss, const Vmckpt__Envelope *env,
                      struct vmckpt_error *err)
{
    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_PAGE_BATCH:
        return image_writer_batch_raw(ss->st->w, ss->part, env->page_batch,
                                      ss->raw, ss->raw_len, err);
    case VMCKPT__MSG_TYPE__MSG_DISK_CHUNK:
        return image_writer_disk_chunk(ss->st->w, env->disk_chunk, err);
    default:
        return image_writer_state(ss->st->w, env->state_chunk->offset,
                                  env->state_chunk->data.data,
                                  env->state_chunk->data.len, err);
    }
}

/* A page batch (any part), a chunk of device state or of a disk layer
 * (part 0). A write that fails aborts the epoch and closes the
 * connection. */
static int on_data(struct peer *p, struct session *ss,
                   const Vmckpt__Envelope *env)
{
    int is_batch = env->type == VMCKPT__MSG_TYPE__MSG_PAGE_BATCH;
    struct vmckpt_error err;
    int rc;

    if (ss->st == NULL || (ss->part > 0 && !is_batch)) {
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                   ss->st ? "device state and disks come in stream 0"
                          : "no stream open");
        return 0;
    }
    rc = stream_ok(p->s, ss->st, &err);
    if (rc == 0)
        rc = write_data(ss, env, &err);
    if (rc < 0) {
        log_err("store: %s: %s; epoch aborted", p->who, err.text);
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                   err.text);
        stream_leave(p->s, ss->st, err.text);
        ss->st = NULL;
        p->refused = 1;
        return -1;
    }
    if (is_batch) {
        ss->batches++;
        ss->pages += env->page_batch->n_pages;
    }
    return 0;
}

static int on_end(struct peer *p, struct session *ss,
                  const Vmckpt__Envelope *env)
{
    struct vmckpt_error err;
    int rc;

    if (ss->st == NULL) {
        send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                   "no stream open");
        return 0;
    }
    if (ss->part > 0)
        rc = end_part(p, ss->st, ss->part, ss->batches, ss->pages, env, &err);
    else
        rc = end_epoch(p, ss->st, env, &err);
    stream_leave(p->s, ss->st, rc < 0 ? err.text : NULL);
    ss->st = NULL;
    return 0;
}

static int on_abort(struct peer *p, struct session *ss,
                    const Vmckpt__Envelope *env)
{
    if (ss->st != NULL) {
        log_warn("store: %s/%s epoch %llu aborted by %s: %s", ss->job, ss->vm,
                 (unsigned long long)ss->epoch, p->who,
                 env->stream_abort->reason);
        stream_leave(p->s, ss->st, env->stream_abort->reason);
        ss->st = NULL;
    }
    return 0;
}

/* A fetch is served whole, on a connection that writes nothing. */
static int on_fetch(struct peer *p, struct session *ss,
                    const Vmckpt__Envelope *env)
{
    return ss->st != NULL || serve_fetch(p, env) < 0 ? -1 : 0;
}

static const struct {
    Vmckpt__MsgType type;
    int (*handler)(struct peer *p, struct session *ss,
                   const Vmckpt__Envelope *env);
} handlers[] = {
    {VMCKPT__MSG_TYPE__MSG_STREAM_OPEN, on_open},
    {VMCKPT__MSG_TYPE__MSG_PAGE_BATCH, on_data},
    {VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, on_data},
    {VMCKPT__MSG_TYPE__MSG_DISK_CHUNK, on_data},
    {VMCKPT__MSG_TYPE__MSG_STREAM_END, on_end},
    {VMCKPT__MSG_TYPE__MSG_STREAM_ABORT, on_abort},
    {VMCKPT__MSG_TYPE__MSG_FETCH_EPOCH, on_fetch},
};

/* Handle one message; 0 to go on, -1 to close the connection. */
static int dispatch(struct peer *p, struct session *ss,
                    const Vmckpt__Envelope *env)
{
    size_t i;

    for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].type == env->type)
            return handlers[i].handler(p, ss, env);
    send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
               "the store does not serve this message");
    return 0;
}

/* A page batch read in place from its frame: decoded without a copy,
 * verified once, and written as it came. */
static int on_raw_batch(struct peer *p, struct session *ss, uint64_t rid,
                        const uint8_t *raw, size_t raw_len)
{
    Vmckpt__Envelope env = VMCKPT__ENVELOPE__INIT;
    uint64_t pages[BATCH_MAX_PAGES];
    Vmckpt__PageBatch msg;
    struct vmckpt_error err;
    int rc;

    if (batch_decode(raw, raw_len, &msg, pages, &err) < 0) {
        log_err("store: %s: %s; epoch aborted", p->who, err.text);
        send_error(p, rid, VMCKPT__ERROR_CODE__ERR_INVALID, err.text);
        stream_leave(p->s, ss->st, err.text);
        ss->st = NULL;
        p->refused = 1;
        return -1;
    }
    env.type = VMCKPT__MSG_TYPE__MSG_PAGE_BATCH;
    env.request_id = rid;
    env.payload_case = VMCKPT__ENVELOPE__PAYLOAD_PAGE_BATCH;
    env.page_batch = &msg;
    ss->raw = raw;
    ss->raw_len = raw_len;
    rc = on_data(p, ss, &env);
    ss->raw = NULL;
    return rc;
}

/* The next message, page batches of an open stream in place; 0 to go on,
 * -1 to close the connection (its stream aborted, saying why). */
static int next_message(struct peer *p, struct session *ss)
{
    const uint8_t *frame, *raw;
    size_t len, raw_len;
    struct vmckpt_error err;
    enum wire_fault fault;
    Vmckpt__Envelope *env = NULL;
    uint64_t rid;
    int rc;

    if (wire_conn_recv_frame_wait(&p->w, &frame, &len, IO_TIMEOUT_MS, &err) < 0)
        goto failed;
    if (ss->st != NULL && wire_peek_batch(frame, len, &rid, &raw, &raw_len))
        return on_raw_batch(p, ss, rid, raw, raw_len);
    env = wire_decode(frame, len, &fault, &err);
    if (env == NULL)
        goto failed;
    rc = dispatch(p, ss, env);
    wire_free(env);
    return rc;
failed:
    if (ss->st != NULL) {
        log_warn("store: %s/%s epoch %llu aborted: %s: %s", ss->job, ss->vm,
                 (unsigned long long)ss->epoch, p->who, err.text);
        errprefix(&err, "stream %u from %s", ss->part, p->who);
        stream_leave(p->s, ss->st, err.text);
        ss->st = NULL;
    }
    return -1;
}

/* After a refusal: the write side shut, what the sender still sends read
 * and dropped until it closes (for at most a few seconds), so that the
 * close does not reset the connection and take the refusal with it
 * before the sender has read it (it reads after its stream-end). */
static void drain(int fd)
{
    char sink[16384];
    uint64_t until = clock_mono_ms() + 5000, now;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};

    if (shutdown(fd, SHUT_WR) < 0)
        return;
    while ((now = clock_mono_ms()) < until &&
           poll(&pfd, 1, (int)(until - now)) > 0)
        if (read(fd, sink, sizeof(sink)) <= 0)
            return;
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct store *s = p->s;
    struct session ss = {.st = NULL};

    topo_host_bind_writer(); /* near the store's disk, if anywhere */
    wire_conn_init(&p->w, p->fd, STORE_MAX_FRAME);
    snprintf(p->who, sizeof(p->who), "%s", p->addr);
    if (tls_enabled()) {
        struct vmckpt_error err;

        if (tls_server_attach(&p->w, &err) < 0) {
            log_warn("store: dropping %s: %s", p->addr, err.text);
            goto out;
        }
    }
    if (peer_auth(p) < 0)
        goto out;
    while (next_message(p, &ss) == 0)
        ;
out:
    if (ss.st != NULL)
        stream_leave(s, ss.st, "the connection closed");
    wire_conn_dispose(&p->w);
    if (p->refused)
        drain(p->fd);
    close(p->fd);
    pthread_mutex_lock(&s->lock);
    s->threads--;
    pthread_mutex_unlock(&s->lock);
    free(p);
    return NULL;
}

static void on_accept(struct evloop *loop, struct ev_io *io, int revents)
{
    struct store *s = io->arg;

    (void)loop;
    (void)revents;
    for (;;) {
        int fd =
            accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct peer *p;
        pthread_t t;

        if (fd < 0)
            return;
        p = calloc(1, sizeof(*p));
        if (p == NULL) {
            close(fd);
            continue;
        }
        p->s = s;
        p->fd = fd;
        net_peer_name(fd, p->addr, sizeof(p->addr));
        pthread_mutex_lock(&s->lock);
        s->threads++;
        pthread_mutex_unlock(&s->lock);
        if (pthread_create(&t, NULL, peer_main, p) != 0) {
            log_errno("store: thread");
            pthread_mutex_lock(&s->lock);
            s->threads--;
            pthread_mutex_unlock(&s->lock);
            close(fd);
            free(p);
            continue;
        }
        pthread_detach(t);
    }
}

int store_start(struct store *s, struct evloop *loop, const char *dir,
                const char *addr, const struct auth_key *key, const char *name,
                struct vmckpt_error *err)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->key = key;
    s->tickets = 1;
    s->listen_fd = net_listen(addr, STORE_DEFAULT_PORT, err);
    if (s->listen_fd < 0)
        return -1;
    ev_io_init(&s->io, s->listen_fd, POLLIN, on_accept, s);
    if (ev_io_start(loop, &s->io) < 0) {
        close(s->listen_fd);
        return errprintf_errno(err, "store");
    }
    return 0;
}

void store_stop(struct store *s, struct evloop *loop)
{
    int i, n = 1;

    if (s->listen_fd >= 0) {
        ev_io_stop(loop, &s->io);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    /* peer threads end at their next read timeout or close; wait up to 2 s
     * for streams in flight, which are aborted, never half-committed */
    for (i = 0; i < 200 && n > 0; i++) {
        pthread_mutex_lock(&s->lock);
        n = s->threads;
        pthread_mutex_unlock(&s->lock);
        if (n > 0)
            usleep(10000);
    }
    (void)store_set_ticket_key(s, NULL, 0); /* wiped */
}

void store_count(struct store *s, uint64_t written, uint64_t read)
{
    __atomic_add_fetch(&s->written, written, __ATOMIC_RELAXED);
    __atomic_add_fetch(&s->read, read, __ATOMIC_RELAXED);
}
