/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Checkpoint threads: one per guest and epoch, running the pre-copy engine
 * (or, without dirty tracking, QEMU's own stream) into the peer's store and,
 * for a job epoch, a local copy; CUT, RESUME and ABORT reach them from the
 * loop through ckpt_tell(). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "agent/store/image.h"
#include "lib/topo/topo.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "agent/engine/precopy.h"
#include "agent/store/sealed.h"
#include "agent/store/stream.h"
#include "ckpt.h"
#include "ckpt_disk.h"
#include "metrics.h"

struct ckpt_done;

struct ckpt_job {
    struct agent *a;
    struct vmm_vm *vm;
    char job[65], vmname[65], store[128], store_host[64];
    uint64_t epoch, parent, req;
    uint64_t incarnation; /* of the copy checkpointed */
    unsigned max_ms, hold_ms, streams;
    int lz4, stop_and_save;
    uint32_t round;
    uint64_t last_stats_ms;
    unsigned stats_ms;   /* at most one CkptStats this often */
    uint64_t bytes_sent; /* all rounds so far */
    int was_converged;
    uint64_t bytes_logged; /* bytes_sent at the last round logged */
    /* a job epoch: what the coordinator said, under 'mu' */
    int coordinated;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cut, resume, abort;
    char reason[320];
    struct ckpt_done *done;   /* for the loop at the end, allocated up front */
    struct ckpt_disks *disks; /* its disks' part (NULL: no disks) */
    uint64_t committed;       /* disk layers up to it merged first */
    struct topo_lanes lanes;  /* where the engine's lanes run (lib/topo) */
    struct seal_key key;      /* the job's data key, when 'sealed' */
    uint8_t ticket[TICKET_LEN]; /* the store's, to write the epoch there */
    size_t ticket_len;
    int sealed;
    struct ckpt_job *next; /* in 'ckpts' */
};

/* Checkpoints in flight, so that the loop can pass CUT, RESUME and ABORT
 * to their threads. */
static pthread_mutex_t ckpts_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ckpt_job *ckpts;

/* ---- checkpoint thread ---------------------------------------------- */

/* Pages left below which a VM is ready to be cut. */
#define CUT_PAGES 256

static void ckpt_round(const struct precopy_round *r, void *arg)
{
    struct ckpt_job *j = arg;
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;
    int converged = r->pages_left <= CUT_PAGES;
    uint64_t now = clock_mono_ms();

    j->round = r->round;
    j->bytes_sent += r->bytes_sent;
    /* while a converged VM is held in pre-copy its rounds are short: say
     * so when it changes, else at most every stats_ms */
    if (converged == j->was_converged && now - j->last_stats_ms < j->stats_ms)
        return;
    j->was_converged = converged;
    j->last_stats_ms = now;
    /* one line per reported round (bytes since the last one): what the
     * demo's plot of bytes per round reads */
    log_info("checkpoint of %s/%s epoch %llu: round %u: %llu bytes, %llu "
             "pages left, %llu pages/s dirtied",
             j->job, j->vmname, (unsigned long long)j->epoch, r->round,
             (unsigned long long)(j->bytes_sent - j->bytes_logged),
             (unsigned long long)r->pages_left,
             (unsigned long long)r->dirty_rate);
    j->bytes_logged = j->bytes_sent;
    st.job = j->job;
    st.epoch = j->epoch;
    st.vm = j->vmname;
    st.round = r->round;
    st.pages_sent = r->pages_sent;
    st.pages_left = r->pages_left;
    st.dirty_pages_per_s = r->dirty_rate;
    st.bytes_per_s = r->throughput;
    st.bytes_sent = j->bytes_sent;
    st.converged = converged;
    outbox_msg(&j->a->out, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, 0, &st);
}

static int ckpt_cut(void *arg, struct vmckpt_error *err)
{
    struct ckpt_job *j = arg;
    Vmckpt__CkptCutDone c = VMCKPT__CKPT_CUT_DONE__INIT;
    struct timespec until;
    int rc = 0;

    c.job = j->job;
    c.epoch = j->epoch;
    c.vm = j->vmname;
    c.paused_at_ns = clock_wall_ns();
    outbox_msg(&j->a->out, VMCKPT__MSG_TYPE__MSG_CKPT_CUT_DONE, 0, &c);
    if (!j->coordinated)
        return 0;
    /* hold the guest paused until every VM of the job is paused */
    until = clock_deadline(CLOCK_MONOTONIC, j->hold_ms);
    pthread_mutex_lock(&j->mu);
    while (!j->resume && !j->abort)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT)
            break;
    if (j->abort) {
        errno = ECANCELED;
        rc = errprintf(err, "%s", j->reason);
    } else if (!j->resume) {
        errno = ETIMEDOUT;
        rc = errprintf(err,
                       "no RESUME from the coordinator within %u ms of the "
                       "cut; the guest runs again and the epoch is void",
                       j->hold_ms);
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

static enum precopy_decision ckpt_decide(const struct precopy_round *r,
                                         void *arg)
{
    struct ckpt_job *j = arg;
    struct precopy_limits l = {.cut_pages = CUT_PAGES,
                               .max_rounds = 30,
                               .max_ms = j->max_ms ? j->max_ms : 30000};
    enum precopy_decision d = PRECOPY_CONTINUE;

    if (!j->coordinated)
        return precopy_limits_decide(r, &l);
    /* a job epoch: the coordinator decides; a converged VM keeps copying
     * what its guest writes, at a calmer pace, until the cut */
    pthread_mutex_lock(&j->mu);
    if (!j->cut && !j->abort && r->pages_left <= CUT_PAGES) {
        struct timespec until = clock_deadline(CLOCK_MONOTONIC, 50);

        pthread_cond_timedwait(&j->cv, &j->mu, &until);
    }
    if (j->abort)
        d = PRECOPY_ABORT;
    else if (j->cut)
        d = PRECOPY_CUT;
    else if (r->elapsed_ms > j->hold_ms)
        d = PRECOPY_ABORT; /* the coordinator never cut */
    pthread_mutex_unlock(&j->mu);
    return d;
}

/* A job epoch goes to the peer's store and, as a local copy, to this
 * host's own store: a VM whose host survives a failure is restored in
 * place from it even when its peer is the host that was lost. */
/* The sink of a checkpoint thread also stops a round early when the
 * coordinator aborted the epoch. */
struct tee {
    struct precopy_sink peer;
    struct stream_out *so;  /* the peer's (disk chunks go there directly) */
    struct image_writer *w; /* the local copy, or NULL */
    struct ckpt_job *j;
};

/* Every batch asks: one atomic load, the lock only once it is set (it
 * never goes back to 0). */
static int tee_aborted(struct tee *t, struct vmckpt_error *err)
{
    if (!__atomic_load_n(&t->j->abort, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&t->j->mu);
    errno = ECANCELED;
    errprintf(err, "%s", t->j->reason);
    pthread_mutex_unlock(&t->j->mu);
    return 1;
}

static int tee_batch(void *arg, unsigned lane, const Vmckpt__PageBatch *msg,
                     struct vmckpt_error *err)
{
    struct tee *t = arg;

    if (tee_aborted(t, err) || t->peer.batch(t->peer.arg, lane, msg, err) < 0)
        return -1;
    return t->w ? image_writer_batch(t->w, lane, msg, err) : 0;
}

static int tee_state(void *arg, uint64_t offset, const void *data, size_t len,
                     struct vmckpt_error *err)
{
    struct tee *t = arg;

    if (t->peer.state(t->peer.arg, offset, data, len, err) < 0)
        return -1;
    return t->w ? image_writer_state(t->w, offset, data, len, err) : 0;
}

static int tee_disk_chunk(void *arg, const Vmckpt__DiskChunk *c,
                          struct vmckpt_error *err)
{
    struct tee *t = arg;

    if (tee_aborted(t, err) || stream_out_disk(t->so, c, err) < 0)
        return -1;
    return t->w ? image_writer_disk_chunk(t->w, c, err) : 0;
}

/* The guest runs again: its disks' layers go before the end (their
 * sizes in it), then the peer's store and the local copy commit. */
static int tee_end(void *arg, const Vmckpt__StreamEnd *end0, uint64_t *bytes,
                   struct vmckpt_error *err)
{
    struct tee *t = arg;
    Vmckpt__StreamEnd e2 = *end0;
    const Vmckpt__StreamEnd *end = &e2;
    struct sealer *s = NULL;
    uint64_t local;
    int rc;

    if (t->j->disks != NULL) {
        /* a sealed epoch's disks are sealed too, with the same key */
        if (t->j->sealed &&
            (s = sealer_new(&t->j->key, t->j->job, t->j->vmname, err)) == NULL)
            return -1;
        rc = ckpt_disks_send(t->j->disks, t->j->parent, s, tee_disk_chunk, t,
                             &e2, err);
        sealer_free(s);
        if (rc < 0)
            return -1;
    }
    if (t->peer.end(t->peer.arg, end, bytes, err) < 0)
        return -1;
    if (t->w == NULL)
        return 0;
    rc = image_writer_commit(t->w, end, &local, err);
    t->w = NULL; /* freed by commit either way */
    if (rc == 0)
        store_count(&t->j->a->store, local, 0);
    return rc;
}

/* With the guest paused, before its device state: its disks' snapshot. */
static int ckpt_on_paused(void *arg, struct vmckpt_error *err)
{
    struct ckpt_job *j = arg;

    return ckpt_disks_cut(j->disks, err);
}

_Static_assert(PRECOPY_MAX_STREAMS <= TOPO_MAX_LANES, "a placement per lane");

/* In each lane's thread (lane 0: this checkpoint thread): run near the
 * guest's memory. */
static void ckpt_lane_start(void *arg, unsigned lane)
{
    struct ckpt_job *j = arg;

    topo_host_bind(&j->lanes.cpus[lane]);
}

/* Where the engine's lanes run; 1 if they are pinned. */
static int place_lanes(struct ckpt_job *j)
{
    struct vmckpt_error err;
    const uint8_t *ram;
    uint64_t len;

    if (topo_host() == NULL || j->vm->qemu_stream ||
        j->vm->ops->ram_map(j->vm->hv, &ram, &len, &err) < 0)
        return 0;
    if (topo_host_plan_lanes(ram, (size_t)len, j->store, j->streams, &j->lanes))
        log_info("%s/%s epoch %llu: %s", j->job, j->vmname,
                 (unsigned long long)j->epoch, j->lanes.why);
    else
        log_debug("%s/%s epoch %llu: lanes not pinned: %s", j->job, j->vmname,
                  (unsigned long long)j->epoch, j->lanes.why);
    return j->lanes.pin;
}

/* A job epoch's cut ends the round in progress. */
static int ckpt_cut_now(void *arg)
{
    struct ckpt_job *j = arg;
    int cut;

    if (!j->coordinated)
        return 0;
    pthread_mutex_lock(&j->mu);
    cut = j->cut && !j->abort;
    pthread_mutex_unlock(&j->mu);
    return cut;
}

static void ckpt_unlist(struct ckpt_job *j)
{
    struct ckpt_job **pp;

    pthread_mutex_lock(&ckpts_mu);
    for (pp = &ckpts; *pp != NULL; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    pthread_mutex_unlock(&ckpts_mu);
}

/* ---- without dirty tracking: QEMU's own migration stream ------------- */

struct pipe_reader {
    int fd;
    struct ckpt_job *j;
    const struct precopy_sink *sink;
    struct batch_hash *hash;
    uint64_t bytes;
    int failed;
    struct vmckpt_error err;
};

/* Everything QEMU writes into the pipe goes to the store as the epoch's
 * state; an abort closes the pipe, which fails QEMU's transfer. */
static void *pipe_reader_main(void *arg)
{
    struct pipe_reader *r = arg;
    uint8_t *buf = malloc(1 << 20);
    ssize_t n;

    if (buf == NULL) {
        r->failed = 1;
        errprintf_errno(&r->err, "stream buffer");
        close(r->fd);
        return NULL;
    }
    for (;;) {
        n = read(r->fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        pthread_mutex_lock(&r->j->mu);
        if (r->j->abort) {
            errno = ECANCELED;
            errprintf(&r->err, "%s", r->j->reason);
            r->failed = 1;
        }
        pthread_mutex_unlock(&r->j->mu);
        if (r->failed || r->sink->state(r->sink->arg, r->bytes, buf, (size_t)n,
                                        &r->err) < 0) {
            r->failed = 1;
            break;
        }
        batch_hash_update(r->hash, buf, (size_t)n);
        r->bytes += (uint64_t)n;
    }
    if (n < 0 && !r->failed) {
        r->failed = 1;
        errprintf_errno(&r->err, "reading QEMU's stream");
    }
    close(r->fd);
    free(buf);
    return NULL;
}

/* A checkpoint of a guest without dirty tracking: QEMU pre-copies by
 * itself into a pipe and stops the guest for its last round; the stream
 * (RAM and state, a full image) is the epoch's state; the guest stays
 * paused until the job's RESUME like any other. Never incremental. */
static int stream_checkpoint(struct ckpt_job *j,
                             const struct precopy_sink *sink,
                             struct precopy_result *res,
                             struct vmckpt_error *err)
{
    Vmckpt__StreamEnd end = VMCKPT__STREAM_END__INIT;
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;
    struct pipe_reader r = {.j = j, .sink = sink};
    struct vmckpt_error e2;
    uint64_t t0 = clock_ns(CLOCK_MONOTONIC), tpause, downtime = 0;
    int p[2], rc;
    pthread_t t;

    memset(res, 0, sizeof(*res));
    if (pipe2(p, O_CLOEXEC) < 0)
        return errprintf_errno(err, "pipe");
    r.fd = p[0];
    r.hash = batch_hash_new();
    if (r.hash == NULL || pthread_create(&t, NULL, pipe_reader_main, &r) != 0) {
        close(p[0]);
        close(p[1]);
        if (r.hash != NULL)
            batch_hash_done(r.hash);
        return errprintf(err, "cannot start the stream reader");
    }
    /* QEMU decides when it is done: for the coordinator it is ready now */
    st.job = j->job;
    st.epoch = j->epoch;
    st.vm = j->vmname;
    st.converged = 1;
    outbox_msg(&j->a->out, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, 0, &st);
    rc = j->vm->ops->save_full(j->vm->hv, p[1], &downtime,
                               j->disks ? ckpt_on_paused : NULL, j, err);
    close(p[1]);
    tpause = clock_ns(CLOCK_MONOTONIC) - downtime * 1000000ULL;
    if (rc == 0) {
        res->paused_at_ns = clock_ns(CLOCK_REALTIME) - downtime * 1000000ULL;
        uint64_t th = clock_ns(CLOCK_MONOTONIC);

        rc = ckpt_cut(j, err);
        res->hold_us = (clock_ns(CLOCK_MONOTONIC) - th) / 1000;
    }
    /* never leave the guest stopped (a failed transfer leaves it running;
     * 'cont' then does nothing) */
    if (j->vm->ops->resume(j->vm->hv, rc == 0 ? err : &e2) < 0)
        rc = -1;
    res->resumed_at_ns = clock_ns(CLOCK_REALTIME);
    res->pause_us = (clock_ns(CLOCK_MONOTONIC) - tpause) / 1000;
    pthread_join(t, NULL);
    end.state_xxh64 = batch_hash_done(r.hash);
    if (r.failed) {
        /* the sink's own error (a store's refusal) is the cause; QEMU only
         * saw its pipe close ("Broken pipe") */
        *err = r.err;
        rc = -1;
    }
    if (rc < 0)
        return -1;
    end.state_bytes = r.bytes;
    if (sink->end(sink->arg, &end, &res->disk_bytes, err) < 0)
        return -1;
    res->rounds = 1;
    res->wire_bytes = r.bytes;
    res->state_bytes = r.bytes;
    res->total_ms = (clock_ns(CLOCK_MONOTONIC) - t0) / 1000000;
    return 0;
}

/* The end of a checkpoint, for the loop: the guest is free again; a failed
 * checkpoint moved tracking on, so the next is full; a job epoch becomes a
 * base only when committed. */
struct ckpt_done {
    struct vmm *m;
    struct vmm_vm *vm;
    uint64_t epoch; /* written, 0: failed */
    int coordinated;
};

static void ckpt_done(void *arg)
{
    struct ckpt_done *d = arg;

    d->vm->busy = 0;
    d->vm->last_epoch = d->coordinated ? 0 : d->epoch;
    d->vm->pending_epoch = d->coordinated ? d->epoch : 0;
    if (d->vm->destroy_pending) { /* the coordinator's order waited */
        struct vmckpt_error err;

        log_warn("%s/%s: its checkpoint ended; destroying the stale copy",
                 d->vm->job, d->vm->name);
        if (vmm_stop(d->m, d->vm, 300, &err) < 0)
            log_err("%s", err.text);
    }
    free(d);
}

/* Where a checkpoint's pages go: the peer's store and, for a job epoch, the
 * local copy (which continues the local chain, or starts one). Returns the
 * stream to the peer, or NULL with 'err'. */
static struct stream_out *open_outputs(struct ckpt_job *j, struct tee *tee,
                                       struct vmckpt_error *err)
{
    const uint8_t *ram;
    uint64_t ram_len, lp = j->parent;
    struct image_manifest m;
    struct stream_out *so;
    struct stream_what w = {.job = j->job,
                            .vm = j->vmname,
                            .epoch = j->epoch,
                            .parent = j->parent,
                            .incarnation = j->incarnation,
                            .streams = j->streams,
                            .disks = j->disks ? ckpt_disks_count(j->disks) : 0,
                            .store_host =
                                j->store_host[0] ? j->store_host : NULL,
                            .ticket = j->ticket,
                            .ticket_len = j->ticket_len};

    if (j->vm->ops->ram_map(j->vm->hv, &ram, &ram_len, err) < 0)
        return NULL;
    w.ram_bytes = ram_len;
    so = stream_out_open(j->store, &j->a->key, j->a->name, &w, err);
    if (so == NULL || !j->coordinated)
        return so;
    if (lp != 0 &&
        (image_manifest_load(j->a->store.dir, j->job, j->vmname, &m, err) < 0 ||
         image_manifest_find(&m, lp) == NULL)) {
        snprintf(err->text, sizeof(err->text),
                 "local copy: epoch %llu, the base of this delta, is not in "
                 "this host's store",
                 (unsigned long long)j->parent);
        stream_out_abort(so, err->text);
        return NULL;
    }
    tee->w = image_writer_open(j->a->store.dir, j->job, j->vmname, j->epoch, lp,
                               ram_len, j->streams, err);
    if (tee->w != NULL && w.disks > 0 &&
        image_writer_disks(tee->w, w.disks, err) < 0) {
        image_writer_abort(tee->w);
        tee->w = NULL;
    }
    if (tee->w == NULL) {
        stream_out_abort(so, err->text);
        return NULL;
    }
    return so;
}

/* Run the engine (or QEMU's own stream) into the peer and the local copy.
 * Returns 0, or -1 with 'err' (an abort says who and why) after the
 * stream was aborted. */
static int run_checkpoint(struct ckpt_job *j, struct stream_out *so,
                          struct tee *tee, struct precopy_result *res,
                          struct vmckpt_error *err)
{
    struct precopy_policy pol = {.decide = ckpt_decide,
                                 .on_cut = ckpt_cut,
                                 .cut_now = ckpt_cut_now,
                                 .on_round = ckpt_round,
                                 .on_paused = j->disks ? ckpt_on_paused : NULL,
                                 .arg = j};
    struct precopy_sink sink, tsink;
    struct seal_sink *seal = NULL;
    int rc;

    stream_out_sink(so, &sink);
    tee->peer = sink;
    tee->so = so;
    tee->j = j;
    sink.batch = tee_batch;
    sink.state = tee_state;
    sink.end = tee_end;
    sink.arg = tee;
    /* sealed before the tee: the peer and the local copy get the same */
    if (j->sealed) {
        tsink = sink;
        seal = seal_sink_new(&j->key, j->job, j->vmname, j->streams, &tsink,
                             &sink, err);
        if (seal == NULL) {
            stream_out_abort(so, err->text);
            image_writer_abort(tee->w);
            return -1;
        }
    }
    if (place_lanes(j))
        pol.on_lane_start = ckpt_lane_start;
    rc = j->vm->qemu_stream
             ? stream_checkpoint(j, &sink, res, err)
             : precopy_checkpoint(j->vm->ops, j->vm->hv, j->parent == 0,
                                  j->stop_and_save, j->lz4, j->streams, &sink,
                                  &pol, res, err);
    if (rc < 0) {
        pthread_mutex_lock(&j->mu);
        if (j->abort)
            snprintf(err->text, sizeof(err->text), "%s", j->reason);
        pthread_mutex_unlock(&j->mu);
        stream_out_abort(so, err->text);
    } else {
        stream_out_close(so);
    }
    image_writer_abort(tee->w); /* NULL after a commit */
    seal_sink_free(seal);
    return rc;
}

/* CPU time the guest would have had over pre-copy (at its rate before)
 * minus what it got: what the checkpoint cost the job. */
static uint64_t guest_slowdown_ms(uint64_t base_rate, uint64_t t0,
                                  uint64_t cpu0, pid_t pid,
                                  const struct precopy_result *res)
{
    uint64_t span = clock_mono_ms() - t0, expect, got;

    span -= span > res->pause_us / 1000 ? res->pause_us / 1000 : span;
    expect = base_rate * span / 1000;
    got = vmm_cpu_ms(pid) - cpu0;
    return expect > got ? expect - got : 0;
}

/* The last word of a checkpoint: its CkptAbort or CkptDurable, with the
 * guest's bookkeeping (ckpt_done) in the same outbox item, so the loop has
 * it before it can read the coordinator's COMMIT or ABORT of the epoch. */
static void report_failed(struct ckpt_job *j, const char *why)
{
    Vmckpt__CkptAbort ab = VMCKPT__CKPT_ABORT__INIT;

    log_err("checkpoint of %s/%s epoch %llu failed: %s", j->job, j->vmname,
            (unsigned long long)j->epoch, why);
    agent_metrics_checkpoint(j->a, 0, 0);
    ab.job = j->job;
    ab.epoch = j->epoch;
    ab.reason = (char *)why;
    outbox_msg_run(&j->a->out, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, j->req, &ab,
                   ckpt_done, free, j->done);
}

static void report_durable(struct ckpt_job *j, const struct precopy_result *res,
                           uint64_t slowdown_ms)
{
    Vmckpt__CkptDurable d = VMCKPT__CKPT_DURABLE__INIT;

    log_info(
        "checkpoint of %s/%s epoch %llu durable on %s: %u rounds (pre-copy "
        "%llu ms), %llu pages (%llu bytes of page data, %llu on the wire), "
        "pause %llu us (stop %llu us, last pages %llu+%llu us, state %llu "
        "us, resume %llu us), held %llu us (paused at %llu, "
        "resumed at %llu ns)",
        j->job, j->vmname, (unsigned long long)j->epoch, j->store, res->rounds,
        (unsigned long long)res->precopy_ms, (unsigned long long)res->pages,
        (unsigned long long)res->raw_bytes, (unsigned long long)res->wire_bytes,
        (unsigned long long)res->pause_us, (unsigned long long)res->stop_us,
        (unsigned long long)res->harvest_us, (unsigned long long)res->stage_us,
        (unsigned long long)res->state_us, (unsigned long long)res->resume_us,
        (unsigned long long)res->hold_us, (unsigned long long)res->paused_at_ns,
        (unsigned long long)res->resumed_at_ns);
    agent_metrics_checkpoint(j->a, 1, res->pause_us);
    d.job = j->job;
    d.epoch = j->epoch;
    d.vm = j->vmname;
    d.store_host = j->store;
    d.bytes = res->disk_bytes;
    d.pause_ns = res->pause_us * 1000;
    d.parent = j->parent;
    d.pages = res->pages;
    d.total_ms = res->total_ms;
    d.rounds = res->rounds;
    d.wire_bytes = res->wire_bytes;
    d.paused_at_ns = res->paused_at_ns;
    d.resumed_at_ns = res->resumed_at_ns;
    d.slowdown_ms = slowdown_ms;
    d.qemu_stream = j->vm->qemu_stream;
    d.sealed = j->sealed;
    outbox_msg_run(&j->a->out, VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE, j->req, &d,
                   ckpt_done, free, j->done);
}

static void *ckpt_main(void *arg)
{
    struct ckpt_job *j = arg;
    struct precopy_result res;
    struct vmckpt_error err;
    struct stream_out *so;
    struct tee tee = {.w = NULL};
    struct ckpt_done *done = j->done;
    uint64_t cpu0, t0, base_rate = 0, slowdown_ms = 0;
    pid_t pid = j->vm->pid;
    int rc = -1;

    /* how fast the guest used the CPU before (the loop samples it every
     * heartbeat): the baseline for what pre-copy costs it */
    cpu0 = vmm_cpu_ms(pid);
    t0 = clock_mono_ms();
    if (j->coordinated)
        base_rate = __atomic_load_n(&j->vm->cpu_rate, __ATOMIC_RELAXED);
    so = ckpt_disks_begin(j->vm, j->epoch, j->committed, &j->disks, &err) < 0
             ? NULL
             : open_outputs(j, &tee, &err);
    if (so != NULL)
        rc = run_checkpoint(j, so, &tee, &res, &err);
    if (rc == 0 && j->disks != NULL)
        log_info("%s/%s epoch %llu: disks snapshot %llu us, %llu bytes of "
                 "disk layers sent",
                 j->job, j->vmname, (unsigned long long)j->epoch,
                 (unsigned long long)ckpt_disks_cut_us(j->disks),
                 (unsigned long long)ckpt_disks_bytes(j->disks));
    ckpt_disks_end(j->disks);
    if (rc == 0 && base_rate > 0)
        slowdown_ms = guest_slowdown_ms(base_rate, t0, cpu0, pid, &res);
    ckpt_unlist(j);
    done->m = &j->a->vmm;
    done->vm = j->vm;
    done->epoch = rc == 0 ? j->epoch : 0;
    done->coordinated = j->coordinated;
    if (rc < 0 && vmm_pid_ended(pid)) /* the cause, not what it broke */
        errprefix(&err, "the guest's QEMU (pid %d) ended", (int)pid);
    if (rc < 0)
        report_failed(j, err.text);
    else
        report_durable(j, &res, slowdown_ms);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    OPENSSL_cleanse(&j->key, sizeof(j->key));
    free(j);
    return NULL;
}

/* What makes a BEGIN invalid whatever the VM: its text in text[len], or
 * NULL. */
static const char *begin_invalid(const Vmckpt__CkptBegin *b, char *text,
                                 size_t len)
{
    if (b->n_targets != 1)
        return "a checkpoint names exactly one VM per agent message";
    if (b->streams > PRECOPY_MAX_STREAMS) {
        snprintf(text, len, "%u parallel streams: 1 to %d", b->streams,
                 PRECOPY_MAX_STREAMS);
        return text;
    }
    if (b->data_key.len != 0 && b->data_key.len != SEAL_KEY_BYTES) {
        snprintf(text, len, "a data key of %zu bytes (%d expected)",
                 b->data_key.len, SEAL_KEY_BYTES);
        return text;
    }
    return NULL;
}

/* A condition variable whose waits are timed on the monotonic clock. */
static void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void ckpt_start(struct agent *a, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptBegin *b = env->ckpt_begin;
    struct ckpt_job *j;
    struct vmm_vm *vm;
    pthread_t t;
    char text[256];
    const char *bad = begin_invalid(b, text, sizeof(text));

    if (bad != NULL) {
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                     bad);
        return;
    }
    vm = vmm_find(&a->vmm, b->job, b->targets[0]->vm);
    if (vm != NULL && b->targets[0]->incarnation != 0 &&
        b->targets[0]->incarnation != vmm_vm_incarnation(vm)) {
        /* the checkpoint is of another copy than the one here */
        snprintf(text, sizeof(text),
                 "%s/%s on host %s is of incarnation %llu, the checkpoint "
                 "names %llu: refused",
                 b->job, vm->name, a->name,
                 (unsigned long long)vmm_vm_incarnation(vm),
                 (unsigned long long)b->targets[0]->incarnation);
        log_warn("%s", text);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_STALE,
                     text);
        return;
    }
    if (vm == NULL || vm->busy || vm->held) {
        snprintf(text, sizeof(text), "%s/%s: %s on host %s", b->job,
                 b->targets[0]->vm,
                 vm == NULL ? "not running"
                 : vm->busy ? "busy"
                            : "paused after a restore",
                 a->name);
        outbox_error(&a->out, env->request_id,
                     vm ? VMCKPT__ERROR_CODE__ERR_BUSY
                        : VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                     text);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j != NULL && (j->done = calloc(1, sizeof(*j->done))) == NULL) {
        free(j);
        j = NULL;
    }
    if (j == NULL) {
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "out of memory");
        return;
    }
    j->a = a;
    j->vm = vm;
    snprintf(j->job, sizeof(j->job), "%s", b->job);
    snprintf(j->vmname, sizeof(j->vmname), "%s", vm->name);
    snprintf(j->store, sizeof(j->store), "%s", b->targets[0]->store_addr);
    snprintf(j->store_host, sizeof(j->store_host), "%s", b->targets[0]->host);
    if (b->targets[0]->ticket.len == TICKET_LEN) {
        memcpy(j->ticket, b->targets[0]->ticket.data, TICKET_LEN);
        j->ticket_len = TICKET_LEN;
    }
    j->epoch = b->epoch;
    j->incarnation = vmm_vm_incarnation(vm);
    /* a delta only continues this QEMU's own chain; otherwise full */
    j->parent = b->targets[0]->parent == vm->last_epoch && !vm->qemu_stream
                    ? vm->last_epoch
                    : 0;
    /* the disk layers merged before the cut: those of committed epochs;
     * before a full epoch, which carries all of them, every one (layers of
     * failed epochs would otherwise pile up and block the chain) */
    j->committed = j->parent == 0 ? UINT64_MAX : vm->last_epoch;
    j->req = env->request_id;
    j->max_ms = b->max_precopy_ms;
    j->hold_ms = b->hold_timeout_ms ? b->hold_timeout_ms : 120000;
    /* QEMU's own stream goes as QEMU writes it: no page batches */
    j->lz4 = b->compress && !vm->qemu_stream;
    if (b->compress && vm->qemu_stream)
        log_info("%s/%s: LZ4 does not apply to QEMU's migration stream; "
                 "it is stored as QEMU writes it",
                 b->job, vm->name);
    /* QEMU's own stream is one pipe: one stream */
    j->streams = vm->qemu_stream ? 1 : b->streams ? b->streams : a->streams;
    j->stop_and_save = b->mode == VMCKPT__CKPT_MODE__MODE_STOP_AND_SAVE;
    /* (its length checked by begin_invalid) */
    j->sealed = b->data_key.len == SEAL_KEY_BYTES;
    if (j->sealed)
        memcpy(j->key.k, b->data_key.data, SEAL_KEY_BYTES);
    j->coordinated = b->coordinated;
    j->was_converged = -1;
    j->stats_ms = b->stats_interval_ms ? b->stats_interval_ms : 250;
    pthread_mutex_init(&j->mu, NULL);
    cond_init_mono(&j->cv);
    vm->busy = 1;
    pthread_mutex_lock(&ckpts_mu);
    j->next = ckpts;
    ckpts = j;
    pthread_mutex_unlock(&ckpts_mu);
    if (pthread_create(&t, NULL, ckpt_main, j) != 0) {
        vm->busy = 0;
        ckpt_unlist(j);
        free(j->done);
        OPENSSL_cleanse(&j->key, sizeof(j->key));
        free(j);
        outbox_error(&a->out, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "cannot start a checkpoint thread");
        return;
    }
    pthread_detach(t);
    log_info("checkpoint of %s/%s epoch %llu (%s%s%s%s) to %s in %u stream%s "
             "begins",
             b->job, vm->name, (unsigned long long)b->epoch,
             j->parent ? "delta" : "full", j->coordinated ? ", job" : "",
             j->lz4 ? ", lz4" : "", j->sealed ? ", sealed" : "", j->store,
             j->streams, j->streams > 1 ? "s" : "");
}

/* Tell one checkpoint to cut ('c'), resume ('r') or abort (else, with
 * 'reason'); ckpts_mu is held. */
static void ckpt_signal(struct ckpt_job *j, int what, const char *reason)
{
    pthread_mutex_lock(&j->mu);
    if (what == 'c')
        j->cut = 1;
    else if (what == 'r')
        j->resume = 1;
    else if (!j->abort) {
        snprintf(j->reason, sizeof(j->reason), "%s", reason);
        /* after the reason: tee_aborted() reads the flag without the lock */
        __atomic_store_n(&j->abort, 1, __ATOMIC_RELEASE);
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

int ckpt_tell(const char *job, uint64_t epoch, int what, const char *reason)
{
    struct ckpt_job *j;
    int n = 0;

    pthread_mutex_lock(&ckpts_mu);
    for (j = ckpts; j != NULL; j = j->next) {
        if (!j->coordinated || (job != NULL && strcmp(j->job, job) != 0) ||
            (epoch != 0 && j->epoch != epoch))
            continue;
        ckpt_signal(j, what, reason);
        n++;
    }
    pthread_mutex_unlock(&ckpts_mu);
    return n;
}

int ckpt_abort_vm(const struct vmm_vm *vm, const char *reason)
{
    struct ckpt_job *j;
    int n = 0;

    pthread_mutex_lock(&ckpts_mu);
    for (j = ckpts; j != NULL; j = j->next) {
        if (j->vm != vm)
            continue;
        ckpt_signal(j, 'a', reason);
        n++;
    }
    pthread_mutex_unlock(&ckpts_mu);
    return n;
}

void ckpt_link_lost(struct agent *a)
{
    int n = ckpt_tell(NULL, 0, 'a', "aborted: lost the coordinator");

    (void)a;
    if (n > 0)
        log_warn("lost the coordinator: %d job checkpoint(s) aborted; their "
                 "guests keep running",
                 n);
}

/* The coordinator aborted job/epoch: stop its checkpoints here, forget
 * its deltas as bases, and drop what this host's store holds of it (never
 * committed, so nothing builds on it). */
void ckpt_abort(struct agent *a, const Vmckpt__CkptAbort *ab)
{
    char dir[4200], why[300];
    struct dirent *de;
    struct vmm_vm *vm;
    DIR *d;
    int n;

    snprintf(why, sizeof(why), "aborted by the coordinator: %s", ab->reason);
    n = ckpt_tell(ab->job, ab->epoch, 'a', why);
    for (vm = a->vmm.vms; vm != NULL; vm = vm->next)
        if (strcmp(vm->job, ab->job) == 0 && vm->pending_epoch == ab->epoch) {
            vm->pending_epoch = 0;
            vm->last_epoch = 0; /* its tracking moved on: next is full */
        }
    if (!image_valid_name(ab->job))
        return;
    snprintf(dir, sizeof(dir), "%s/%s", a->store.dir, ab->job);
    d = opendir(dir);
    while (d != NULL && (de = readdir(d)) != NULL) {
        struct image_manifest m;
        struct vmckpt_error err;

        if (!image_valid_name(de->d_name) ||
            image_manifest_load(a->store.dir, ab->job, de->d_name, &m, &err) <
                0 ||
            image_manifest_find(&m, ab->epoch) == NULL)
            continue;
        if (image_drop(a->store.dir, ab->job, de->d_name, ab->epoch, &err) < 0)
            log_err("store: %s", err.text);
        else
            log_info("store: dropped %s/%s epoch %llu (aborted)", ab->job,
                     de->d_name, (unsigned long long)ab->epoch);
    }
    if (d != NULL)
        closedir(d);
    log_info("epoch %s/%llu aborted by the coordinator (%s); %d checkpoint(s) "
             "here stopped",
             ab->job, (unsigned long long)ab->epoch, ab->reason, n);
}

/* RESUME of job/epoch: the held checkpoints finish, and guests restored
 * paused for a job restart run again, all at once. */
void ckpt_resume(struct agent *a, const Vmckpt__CkptResume *r)
{
    struct vmckpt_error err;
    struct vmm_vm *vm;
    int n = ckpt_tell(r->job, r->epoch, 'r', "");

    for (vm = a->vmm.vms; vm != NULL; vm = vm->next) {
        if (!vm->held || strcmp(vm->job, r->job) != 0 ||
            vm->restored_epoch != r->epoch)
            continue;
        if (r->incarnation != 0 && vmm_vm_incarnation(vm) > r->incarnation) {
            log_warn("resume of %s/%s refused: from incarnation %llu, the "
                     "copy here is of %llu",
                     vm->job, vm->name, (unsigned long long)r->incarnation,
                     (unsigned long long)vmm_vm_incarnation(vm));
            continue;
        }
        if (vm->ops->resume(vm->hv, &err) < 0) {
            log_err("resume of restored %s/%s: %s", vm->job, vm->name,
                    err.text);
            continue;
        }
        vm->held = 0;
        n++;
    }
    log_info("resume of %s epoch %llu: %d guest(s) run again here", r->job,
             (unsigned long long)r->epoch, n);
}
