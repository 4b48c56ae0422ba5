/* SPDX-License-Identifier: GPL-2.0-or-later */
/* MPI ranks of a job and barrier alignment (docs/mpi.md).
 *
 * Ranks reach the coordinator from inside their guests on a separate
 * endpoint (rank_listen) that authenticates with the job's own token, not
 * the cluster key, and serves nothing but rank messages for that job.
 *
 *   ALIGN    when every VM of an epoch is ready to cut, each connected
 *            rank is asked to stop at its next MPI_Barrier (CkptAlign)
 *   READY    a rank waits in a barrier and says at which one (its count)
 *   cut      once every rank is READY (aligned), or after
 *            align_timeout_ms (unaligned: still consistent, the VMs are
 *            paused together; docs/consistency.md)
 *   RELEASE  after RESUME (or an abort) the ranks return from the barrier
 *
 * After a restart the restored ranks find their connection dead,
 * reconnect saying which epoch they wait for, and are told they were
 * restored from it. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "jobs.h"
#include "ranks.h"
#include "vms.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* A registered rank: the connection it speaks on. */
struct rank {
    struct conn *c;
    struct job *job;
    uint32_t rank;
    uint64_t barrier_count, ready_epoch;
    char where[140]; /* host/vm, for logs */
    struct rank *next;
};

/* The ranks' side of one coordinator (co->ranks). */
struct ranks {
    struct rank *list;
    char addr[128];            /* what guests are told to connect to */
    unsigned align_timeout_ms; /* ranks not at a barrier: cut unaligned */
    unsigned align_settle_ms;  /* pre-copy while aligned ranks are idle */
    unsigned grace_ms;         /* ranks missing after this: unprotected */
};

static struct rank *rank_of(struct coord *co, const struct conn *c)
{
    struct rank *r;

    for (r = co->ranks->list; r != NULL; r = r->next)
        if (r->c == c)
            return r;
    return NULL;
}

/* Forget the rank of connection 'c' (if any); the job it was of, or NULL. */
static struct job *rank_forget(struct coord *co, const struct conn *c,
                               struct rank *out)
{
    struct rank **pp, *r;
    struct job *j;

    for (pp = &co->ranks->list; (r = *pp) != NULL; pp = &r->next)
        if (r->c == c) {
            *pp = r->next;
            j = r->job;
            if (out != NULL)
                *out = *r;
            free(r);
            return j;
        }
    return NULL;
}

const struct auth_key *ranks_key_for(void *arg, Vmckpt__Role role,
                                     const char *name)
{
    struct job *j = jobs_find(arg, name);

    if (role != VMCKPT__ROLE__ROLE_RANK || j == NULL || j->token.bytes == NULL)
        return NULL;
    /* the token expires with the job: once every guest of it is stopped,
     * nothing may speak for it (a restart of the job revives it, with the
     * ranks its guests carry) */
    return jobs_guests(arg, name) > 0 ? &j->token : NULL;
}

/* The guests' hook: a guest of job 'job' starts (the job exists from
 * now on); its kernel command line tells its MPI ranks how to reach the
 * ranks' endpoint, and the job's token goes to it privately (the agent
 * gives it to the guest beside its command line: docs/mpi.md). */
static char *guest_cmdline(struct coord *co, const char *job,
                           const char *cmdline, const char **token)
{
    struct job *j = jobs_touch(co, job);
    char *out;

    if (co->ranks->addr[0] == '\0' || j == NULL)
        return strdup(cmdline);
    if (asprintf(&out, "%s%svmckpt.job=%s vmckpt.coordinator=%s", cmdline,
                 cmdline[0] ? " " : "", j->name, co->ranks->addr) < 0)
        return NULL;
    *token = j->token_hex;
    return out;
}

/* ---- the ranks of a job ------------------------------------------------ */

static unsigned count_ranks(struct job *j)
{
    struct rank *r;
    unsigned n = 0;

    for (r = j->co->ranks->list; r != NULL; r = r->next)
        n += r->job == j;
    return n;
}

static const char *protection(struct job *j, char *buf, size_t len)
{
    unsigned n = count_ranks(j);

    if (j->nranks == 0 && n == 0)
        snprintf(buf, len, "%s", "");
    else if (n >= j->nranks)
        snprintf(buf, len, "protected (%u rank%s)", n, n == 1 ? "" : "s");
    else if (clock_mono_ms() - j->mpi_since_ms < j->co->ranks->grace_ms)
        snprintf(buf, len, "starting (%u of %u ranks connected)", n, j->nranks);
    else
        snprintf(buf, len,
                 "unprotected: %u of %u ranks reached the coordinator "
                 "(checkpoints are not aligned)",
                 n, j->nranks);
    return buf;
}

static void send_rank(struct conn *c, int type, const void *payload)
{
    server_send(c, type, c->co->next_req++, payload);
}

/* The outcome of an alignment: the barrier each ready rank waits at. */
static void note_barriers(struct job *j)
{
    struct jepoch *e = j->cur;
    struct rank *c;
    uint32_t r, maxr = 0;
    size_t off = 0;

    for (c = j->co->ranks->list; c != NULL; c = c->next)
        if (c->job == j && c->rank > maxr)
            maxr = c->rank;
    e->barriers[0] = '\0';
    for (r = 0; r <= maxr; r++)
        for (c = j->co->ranks->list; c != NULL; c = c->next)
            if (c->job == j && c->rank == r && c->ready_epoch == e->epoch &&
                off < sizeof(e->barriers) - 32)
                off += (size_t)snprintf(
                    e->barriers + off, sizeof(e->barriers) - off, "%s%u:%llu",
                    off ? " " : "", r, (unsigned long long)c->barrier_count);
}

static void settle_expired(struct evloop *loop, struct ev_timer *t)
{
    struct job *j = t->arg;

    (void)loop;
    if (j->cur == NULL || !j->cur->settling)
        return;
    j->cur->settling = 0;
    jobs_cut(j, "every rank waits at the same MPI_Barrier; settle time over");
}

/* The jobs' hook while settling: cut once every VM reported a round since
 * the ranks were aligned, or converged. */
static void settle_check(struct job *j)
{
    struct jepoch *e = j->cur;
    size_t i;

    for (i = 0; i < e->n; i++)
        if (!e->v[i].fresh && !e->v[i].converged)
            return;
    e->settling = 0;
    ev_timer_stop(j->co->loop, &e->align_timer);
    jobs_cut(j, "every rank waits at the same MPI_Barrier; pre-copy caught up "
                "while they were idle");
}

static void align_done(struct job *j, const char *align, const char *why)
{
    struct jepoch *e = j->cur;
    size_t i, left = 0;

    e->aligning = 0;
    ev_timer_stop(j->co->loop, &e->align_timer);
    snprintf(e->align, sizeof(e->align), "%s", align);
    note_barriers(j);
    log_info("epoch %s/%llu: %s after %llu ms (barriers %s)", j->name,
             (unsigned long long)e->epoch, align,
             (unsigned long long)(clock_mono_ms() - e->t_align),
             e->barriers[0] ? e->barriers : "none");
    for (i = 0; i < e->n; i++) {
        e->v[i].fresh = 0;
        left += !e->v[i].converged;
    }
    if (strcmp(align, "aligned") != 0 || left == 0 ||
        j->co->ranks->align_settle_ms == 0) {
        jobs_cut(j, why);
        return;
    }
    /* the ranks are idle now: one more pre-copy round of the VMs that had
     * not converged takes what they wrote, so the pause copies little */
    log_info("epoch %s/%llu: %zu VM(s) not converged: one more pre-copy "
             "round while the ranks are idle (at most %u ms)",
             j->name, (unsigned long long)e->epoch, left,
             j->co->ranks->align_settle_ms);
    e->settling = 1;
    ev_timer_init(&e->align_timer, settle_expired, j);
    ev_timer_start(j->co->loop, &e->align_timer, j->co->ranks->align_settle_ms);
}

/* Every connected rank is READY (or gone): cut. */
static void check_aligned(struct job *j)
{
    struct jepoch *e = j->cur;
    struct rank *c;
    unsigned n = 0, ready = 0;
    char why[160];

    if (e == NULL || !e->aligning)
        return;
    for (c = j->co->ranks->list; c != NULL; c = c->next)
        if (c->job == j) {
            n++;
            ready += c->ready_epoch == e->epoch;
        }
    if (ready < n)
        return;
    if (n == 0) {
        align_done(j, "unaligned: every rank went away during alignment",
                   "no ranks left to align");
        return;
    }
    if (n < j->nranks) {
        snprintf(why, sizeof(why), "unaligned: only %u of %u ranks connected",
                 n, j->nranks);
        align_done(j, why, "the connected ranks wait at a barrier");
        return;
    }
    align_done(j, "aligned", "every rank waits at the same MPI_Barrier");
}

static void align_expired(struct evloop *loop, struct ev_timer *t)
{
    struct job *j = t->arg;
    struct jepoch *e = j->cur;
    struct rank *c;
    char why[160];
    uint32_t r, maxr = 0;
    size_t off;

    (void)loop;
    if (e == NULL || !e->aligning)
        return;
    off = (size_t)snprintf(why, sizeof(why),
                           "unaligned: no barrier within %u ms (rank",
                           j->co->ranks->align_timeout_ms);
    for (c = j->co->ranks->list; c != NULL; c = c->next)
        if (c->job == j && c->rank > maxr)
            maxr = c->rank;
    for (r = 0; r <= maxr; r++)
        for (c = j->co->ranks->list; c != NULL; c = c->next)
            if (c->job == j && c->rank == r && c->ready_epoch != e->epoch &&
                off < sizeof(why) - 16)
                off += (size_t)snprintf(why + off, sizeof(why) - off, " %u", r);
    if (off < sizeof(why) - 2)
        snprintf(why + off, sizeof(why) - off, ")");
    align_done(j, why, "alignment timed out");
}

/* The jobs' hook, every VM of the epoch ready to cut: ask the job's ranks
 * to stop at a barrier; cut when all wait there, or unaligned after
 * align_timeout_ms; at once when the job has no ranks. */
static void align_ranks(struct job *j, const char *why)
{
    struct jepoch *e = j->cur;
    Vmckpt__CkptAlign a = VMCKPT__CKPT_ALIGN__INIT;
    struct rank *c;
    unsigned n = count_ranks(j);

    e->align[0] = '\0';
    if (n == 0) {
        if (j->nranks > 0)
            snprintf(e->align, sizeof(e->align),
                     "unaligned: none of the %u ranks reached the "
                     "coordinator",
                     j->nranks);
        jobs_cut(j, why);
        return;
    }
    log_info("epoch %s/%llu: %s; asking %u rank(s) to stop at a barrier "
             "(at most %u ms)",
             j->name, (unsigned long long)e->epoch, why, n,
             j->co->ranks->align_timeout_ms);
    snprintf(e->phase, sizeof(e->phase), "align");
    e->aligning = 1;
    e->t_align = clock_mono_ms();
    ev_timer_init(&e->align_timer, align_expired, j);
    ev_timer_start(j->co->loop, &e->align_timer,
                   j->co->ranks->align_timeout_ms);
    a.job = j->name;
    a.epoch = e->epoch;
    a.timeout_ms = j->co->ranks->align_timeout_ms;
    for (c = j->co->ranks->list; c != NULL; c = c->next)
        if (c->job == j)
            send_rank(c->c, VMCKPT__MSG_TYPE__MSG_CKPT_ALIGN, &a);
}

/* The jobs' hook after RESUME or an abort: every rank waiting for 'epoch'
 * goes on. */
static void release_ranks(struct job *j, uint64_t epoch)
{
    Vmckpt__RankRelease r = VMCKPT__RANK_RELEASE__INIT;
    struct rank *c;

    r.job = j->name;
    r.epoch = epoch;
    for (c = j->co->ranks->list; c != NULL; c = c->next)
        if (c->job == j)
            send_rank(c->c, VMCKPT__MSG_TYPE__MSG_RANK_RELEASE, &r);
}

/* The jobs' hook once a restart restored every VM of j, paused: the rank
 * connections are from the guests that were replaced; drop them. */
static void drop_replaced(struct job *j)
{
    struct linger hard = {1, 0};
    struct rank **pp = &j->co->ranks->list, *r;

    while ((r = *pp) != NULL) {
        struct conn *c = r->c;

        if (r->job != j) {
            pp = &r->next;
            continue;
        }
        /* forgotten first: its close is no disconnection of a rank */
        *pp = r->next;
        free(r);
        /* an abortive close (RST, no TIME_WAIT here): what a restored rank
         * then sends on its copy of this connection is answered with a
         * reset, and it reconnects at once */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
        server_drop(c, "its guest was replaced by a restored one");
    }
}

/* ---- messages on the ranks' endpoint ----------------------------------- */

/* The job this rank connection authenticated for; messages name it. */
static struct job *own_job(struct conn *c, uint64_t id, const char *named)
{
    struct job *j = jobs_find(c->co, c->auth.peer_name);

    if (j == NULL || strcmp(named, c->auth.peer_name) != 0) {
        server_error(c, id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                     "a rank of job %s may not speak for job '%s'",
                     c->auth.peer_name, named);
        return NULL;
    }
    return j;
}

int ranks_on_register(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__RankRegister *r = env->rank_register;
    Vmckpt__RankRegistered ok = VMCKPT__RANK_REGISTERED__INIT;
    struct job *j = own_job(c, env->request_id, r->job);
    struct rank **pp, *o, *me;

    if (j == NULL)
        return 0;
    if (r->size == 0 || r->rank >= r->size || r->size > 1u << 20)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "rank %u of %u: out of range", r->rank, r->size);
    if (r->run != 0 && r->run < j->run)
        /* a rank of an earlier run still alive (the run's mpirun was
         * killed, say): it must not take the place of the current run's */
        return server_error(
            c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
            "run %llu of job %s is over (run %llu started): "
            "this rank is no longer protected",
            (unsigned long long)r->run, j->name, (unsigned long long)j->run);
    if (r->run > j->run)
        j->run = r->run; /* announced before the coordinator restarted */
    me = rank_of(c->co, c);
    if (me == NULL) {
        me = calloc(1, sizeof(*me));
        if (me == NULL)
            return server_error(c, env->request_id,
                                VMCKPT__ERROR_CODE__ERR_INTERNAL,
                                "out of memory");
        me->c = c;
        me->next = c->co->ranks->list;
        c->co->ranks->list = me;
    }
    /* a rank that reconnects replaces its old connection (forgotten
     * first: its close is no disconnection of a rank) */
    pp = &c->co->ranks->list;
    while ((o = *pp) != NULL) {
        struct conn *oc = o->c;

        if (oc == c || o->job != j || o->rank != r->rank) {
            pp = &o->next;
            continue;
        }
        *pp = o->next;
        free(o);
        server_drop(oc, "the rank connected again");
    }
    me->job = j;
    me->rank = r->rank;
    me->ready_epoch = 0;
    snprintf(me->where, sizeof(me->where), "%.64s/%.64s", r->host,
             r->vm[0] ? r->vm : "-");
    if (j->nranks == 0 || j->nranks < r->size) {
        /* started without the wrapper's announcement: the ranks say */
        j->nranks = r->size;
        j->mpi_since_ms = clock_mono_ms();
    }
    if (r->waiting_epoch != 0 && r->waiting_epoch == j->restored_epoch)
        ok.restored_epoch = j->restored_epoch;
    log_info("job %s: rank %u of %u registered from %s (%s, pid %u)%s", j->name,
             r->rank, r->size, c->peer, me->where, r->pid,
             ok.restored_epoch ? ", restored" : "");
    if (server_send(c, VMCKPT__MSG_TYPE__MSG_RANK_REGISTERED, env->request_id,
                    &ok) < 0)
        return -1;
    if (r->waiting_epoch != 0 && !ok.restored_epoch &&
        (j->cur == NULL || j->cur->epoch != r->waiting_epoch ||
         !j->cur->aligning)) {
        /* it waits for a cut that is over (the coordinator restarted, or
         * its connection broke): let it go */
        Vmckpt__RankRelease rel = VMCKPT__RANK_RELEASE__INIT;

        rel.job = j->name;
        rel.epoch = r->waiting_epoch;
        send_rank(c, VMCKPT__MSG_TYPE__MSG_RANK_RELEASE, &rel);
    } else if (j->cur != NULL && j->cur->aligning &&
               r->waiting_epoch != j->cur->epoch) {
        Vmckpt__CkptAlign a = VMCKPT__CKPT_ALIGN__INIT;

        a.job = j->name;
        a.epoch = j->cur->epoch;
        a.timeout_ms = c->co->ranks->align_timeout_ms;
        send_rank(c, VMCKPT__MSG_TYPE__MSG_CKPT_ALIGN, &a);
    }
    return 0;
}

int ranks_on_ready(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__RankReady *r = env->rank_ready;
    struct job *j = own_job(c, env->request_id, r->job);
    struct rank *me;

    if (j == NULL)
        return 0;
    me = rank_of(c->co, c);
    if (me == NULL || me->job != j)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                            "rank-ready before rank-register");
    if (j->cur == NULL || j->cur->epoch != r->epoch || !j->cur->aligning) {
        /* late (the cut happened without it) or repeated: let it go */
        if (j->cur == NULL || j->cur->epoch != r->epoch) {
            Vmckpt__RankRelease rel = VMCKPT__RANK_RELEASE__INIT;

            rel.job = j->name;
            rel.epoch = r->epoch;
            send_rank(c, VMCKPT__MSG_TYPE__MSG_RANK_RELEASE, &rel);
        }
        return 0;
    }
    if (me->ready_epoch == r->epoch)
        return 0;
    me->ready_epoch = r->epoch;
    me->barrier_count = r->barrier_count;
    log_debug("epoch %s/%llu: rank %u waits at barrier %llu", j->name,
              (unsigned long long)r->epoch, me->rank,
              (unsigned long long)r->barrier_count);
    check_aligned(j);
    return 0;
}

int ranks_on_job_register(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__JobRegister *r = env->job_register;
    Vmckpt__JobRegistered ok = VMCKPT__JOB_REGISTERED__INIT;
    struct job *j = own_job(c, env->request_id, r->job);
    const char *iv = r->checkpoint_interval;

    if (j == NULL)
        return 0;
    if (r->nranks == 0 || r->nranks > 1u << 20)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "an MPI run of %u ranks", r->nranks);
    if (iv[0] && strcmp(iv, "off") != 0 && strcmp(iv, "auto") != 0 &&
        (strspn(iv, "0123456789") != strlen(iv) || strlen(iv) > 9 ||
         atoi(iv) == 0))
        return server_error(
            c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
            "interval '%s': give seconds (> 0), 'auto' or 'off'", iv);
    j->nranks = r->nranks;
    j->mpi_since_ms = clock_mono_ms();
    /* increasing across coordinator restarts too: the wall clock in ms */
    j->run = clock_wall_ms() > j->run ? clock_wall_ms() : j->run + 1;
    if (iv[0]) {
        snprintf(j->interval, sizeof(j->interval), "%s", iv);
        jobs_save(j);
        jobs_schedule(j);
    }
    log_info("job %s: MPI run %llu of %u ranks starts (interval %s)", j->name,
             (unsigned long long)j->run, j->nranks, j->interval);
    ok.job = j->name;
    ok.run = j->run;
    return server_send(c, VMCKPT__MSG_TYPE__MSG_JOB_REGISTERED, env->request_id,
                       &ok);
}

int ranks_on_job_deregister(struct conn *c, const Vmckpt__Envelope *env)
{
    Vmckpt__Ack a = VMCKPT__ACK__INIT;
    struct job *j = own_job(c, env->request_id, env->job_deregister->job);

    if (j == NULL)
        return 0;
    log_info("job %s: the MPI run of %u ranks ended", j->name, j->nranks);
    j->nranks = 0;
    j->mpi_since_ms = 0;
    a.text = "deregistered";
    return server_send(c, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &a);
}

/* ---- set up ----------------------------------------------------------------
 */

/* The server's close hook: a rank that goes away no longer holds up an
 * alignment. */
static void conn_gone(struct coord *co, struct conn *c)
{
    struct rank r;
    struct job *j = rank_forget(co, c, &r);

    if (j == NULL)
        return;
    log_info("job %s: rank %u (%s) disconnected", j->name, r.rank, r.where);
    check_aligned(j);
}

int ranks_create(struct coord *co, const struct ranks_conf *conf)
{
    static const struct jobs_ranks_ops ops = {
        .align = align_ranks,
        .settle_check = settle_check,
        .release = release_ranks,
        .replaced = drop_replaced,
        .count = count_ranks,
        .protection = protection,
    };
    struct ranks *rs = calloc(1, sizeof(*rs));

    if (rs == NULL)
        return -1;
    snprintf(rs->addr, sizeof(rs->addr), "%s", conf->addr);
    rs->align_timeout_ms = conf->align_timeout_ms;
    rs->align_settle_ms = conf->align_settle_ms;
    rs->grace_ms = conf->grace_ms;
    co->ranks = rs;
    jobs_set_ranks_ops(co, &ops);
    vms_set_cmdline_hook(co, guest_cmdline);
    return server_on_close(co, conn_gone);
}

void ranks_destroy(struct coord *co)
{
    struct ranks *rs = co->ranks;

    if (rs == NULL)
        return;
    while (rs->list != NULL) {
        struct rank *r = rs->list;

        rs->list = r->next;
        free(r);
    }
    free(rs);
    co->ranks = NULL;
}
