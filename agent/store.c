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

#include "image.h"
#include "lib/util/log.h"
#include "lib/util/net.h"
#include "store.h"

#define IO_TIMEOUT_MS 60000

struct store_busy {
    char job[65], vm[65];
    struct store_busy *next;
};

struct peer {
    struct store *s;
    int fd;
    char addr[96];
    struct wire_conn w;
    char who[160];
};

/* Claim job/VM for writing; 0, or -1 if another stream holds it. */
static int claim(struct store *s, const char *job, const char *vm)
{
    struct store_busy *b;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    for (b = s->busy; b != NULL; b = b->next)
        if (strcmp(b->job, job) == 0 && strcmp(b->vm, vm) == 0)
            rc = -1;
    if (rc == 0 && (b = calloc(1, sizeof(*b))) != NULL) {
        snprintf(b->job, sizeof(b->job), "%s", job);
        snprintf(b->vm, sizeof(b->vm), "%s", vm);
        b->next = s->busy;
        s->busy = b;
    } else if (rc == 0) {
        rc = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void release(struct store *s, const char *job, const char *vm)
{
    struct store_busy **pp, *b;

    pthread_mutex_lock(&s->lock);
    for (pp = &s->busy; (b = *pp) != NULL; pp = &b->next) {
        if (strcmp(b->job, job) == 0 && strcmp(b->vm, vm) == 0) {
            *pp = b->next;
            free(b);
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
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

static int fetch_batch(const Vmckpt__PageBatch *msg, const struct batch_view *v,
                       void *arg)
{
    struct fetch_ctx *f = arg;

    (void)v;
    f->batches++;
    f->pages += msg->n_pages;
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
    return send_msg(f->p, VMCKPT__MSG_TYPE__MSG_STATE_CHUNK, 0, &c);
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
    return send_msg(p, VMCKPT__MSG_TYPE__MSG_STREAM_END, env->request_id, &end);
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    struct store *s = p->s;
    struct auth_server as;
    struct vmckpt_error err;
    struct image_writer *w = NULL;
    Vmckpt__Envelope *env;
    char job[65] = "", vm[65] = "";
    uint64_t epoch = 0;
    int rc;

    wire_conn_init(&p->w, p->fd, STORE_MAX_FRAME);
    snprintf(p->who, sizeof(p->who), "%s", p->addr);
    auth_server_init(&as, s->key, s->name);
    while (as.state != AUTH_DONE) {
        if (wire_conn_recv_wait(&p->w, &env, 10000, &err) < 0) {
            log_warn("store: dropping %s: %s", p->addr, err.text);
            goto out;
        }
        rc = auth_server_step(&as, &p->w, env, &err);
        wire_free(env);
        (void)wire_conn_flush_wait(&p->w, 5000, NULL);
        if (rc < 0) {
            log_warn("store: dropping %s: %s", p->addr, err.text);
            goto out;
        }
    }
    snprintf(p->who, sizeof(p->who), "%s %s (%s)", auth_role_name(as.role),
             as.peer_name, p->addr);
    if (as.role != VMCKPT__ROLE__ROLE_PEER &&
        as.role != VMCKPT__ROLE__ROLE_AGENT) {
        send_error(p, 0, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                   "the store serves agents only");
        log_warn("store: dropping %s: role not served", p->who);
        goto out;
    }
    for (;;) {
        if (wire_conn_recv_wait(&p->w, &env, IO_TIMEOUT_MS, &err) < 0) {
            if (w != NULL)
                log_warn("store: %s/%s epoch %llu aborted: %s: %s", job, vm,
                         (unsigned long long)epoch, p->who, err.text);
            goto out;
        }
        switch (env->type) {
        case VMCKPT__MSG_TYPE__MSG_STREAM_OPEN: {
            const Vmckpt__StreamOpen *so = env->stream_open;

            if (w != NULL || so->page_size != 4096) {
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                           w ? "a stream is already open" : "page size");
                break;
            }
            if (!image_valid_name(so->job) || !image_valid_name(so->vm)) {
                snprintf(err.text, sizeof(err.text),
                         "refused job/VM name '%.64s'/'%.64s'", so->job,
                         so->vm);
                log_warn("store: %s: %s", p->who, err.text);
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                           err.text);
                break;
            }
            if (claim(s, so->job, so->vm) < 0) {
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_BUSY,
                           "another stream of this VM is being written");
                break;
            }
            w = image_writer_open(s->dir, so->job, so->vm, so->epoch,
                                  so->parent, so->ram_bytes, &err);
            if (w == NULL) {
                release(s, so->job, so->vm);
                log_warn("store: %s: %s", p->who, err.text);
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                           err.text);
                break;
            }
            snprintf(job, sizeof(job), "%s", so->job);
            snprintf(vm, sizeof(vm), "%s", so->vm);
            epoch = so->epoch;
            log_info("store: %s writes %s/%s epoch %llu (%s)", p->who, job, vm,
                     (unsigned long long)epoch, so->parent ? "delta" : "full");
            {
                Vmckpt__Ack ack = VMCKPT__ACK__INIT;

                ack.text = "open";
                send_msg(p, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
            }
            break;
        }
        case VMCKPT__MSG_TYPE__MSG_PAGE_BATCH:
        case VMCKPT__MSG_TYPE__MSG_STATE_CHUNK:
            if (w == NULL) {
                send_error(p, env->request_id,
                           VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                           "no stream open");
                break;
            }
            rc = env->type == VMCKPT__MSG_TYPE__MSG_PAGE_BATCH
                     ? image_writer_batch(w, env->page_batch, &err)
                     : image_writer_state(w, env->state_chunk->offset,
                                          env->state_chunk->data.data,
                                          env->state_chunk->data.len, &err);
            if (rc < 0) {
                log_err("store: %s: %s; epoch aborted", p->who, err.text);
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                           err.text);
                image_writer_abort(w);
                w = NULL;
                release(s, job, vm);
                wire_free(env);
                goto out;
            }
            break;
        case VMCKPT__MSG_TYPE__MSG_STREAM_END: {
            Vmckpt__StreamDurable d = VMCKPT__STREAM_DURABLE__INIT;
            uint64_t bytes;

            if (w == NULL) {
                send_error(p, env->request_id,
                           VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                           "no stream open");
                break;
            }
            rc = image_writer_commit(w, env->stream_end, &bytes, &err);
            w = NULL;
            release(s, job, vm);
            if (rc < 0) {
                log_err("store: %s: %s", p->who, err.text);
                send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                           err.text);
                break;
            }
            log_info("store: %s/%s epoch %llu durable (%llu bytes)", job, vm,
                     (unsigned long long)epoch, (unsigned long long)bytes);
            d.job = job;
            d.vm = vm;
            d.epoch = epoch;
            d.bytes = bytes;
            send_msg(p, VMCKPT__MSG_TYPE__MSG_STREAM_DURABLE, env->request_id,
                     &d);
            break;
        }
        case VMCKPT__MSG_TYPE__MSG_STREAM_ABORT:
            if (w != NULL) {
                log_warn("store: %s/%s epoch %llu aborted by %s: %s", job, vm,
                         (unsigned long long)epoch, p->who,
                         env->stream_abort->reason);
                image_writer_abort(w);
                w = NULL;
                release(s, job, vm);
            }
            break;
        case VMCKPT__MSG_TYPE__MSG_FETCH_EPOCH:
            if (w != NULL || serve_fetch(p, env) < 0) {
                wire_free(env);
                goto out;
            }
            break;
        default:
            send_error(p, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                       "the store does not serve this message");
        }
        wire_free(env);
    }
out:
    if (w != NULL) {
        image_writer_abort(w);
        release(s, job, vm);
    }
    wire_conn_dispose(&p->w);
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
}
