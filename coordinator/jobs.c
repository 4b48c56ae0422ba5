/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Jobs: the coordinated checkpoint of all VMs of a job and the periodic
 * policy (restarts: jobs_restart.c; failures: jobs_fail.c).
 * docs/consistency.md says why the order below makes the set of images
 * one consistent global state.
 *
 *   BEGIN   every VM's agent starts pre-copy to that VM's peer store
 *   STATS   per round; a VM whose remaining set is small is "converged"
 *           and keeps copying, held in pre-copy, until the cut
 *   (align) all converged, or max_precopy_ms: the MPI alignment step
 *           slots in here (align_then_cut)
 *   CUT     every agent pauses its VMs, stages their last pages and device
 *           state, answers CUT-DONE, and holds them paused
 *   RESUME  only once every VM of the job reported CUT-DONE
 *   DURABLE from every VM (its store made the epoch durable)
 *   COMMIT  one catalog transaction; agents may then use it as a base
 *
 * Any failure before COMMIT aborts the epoch everywhere (jobs_abort): agents
 * resume what they hold and stores drop what they wrote; the previous
 * committed epoch is untouched. Every change of a job's or an epoch's
 * state goes through jobs_set_state() / jepoch_set_state(), which log
 * old -> new and write the catalog. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "datakey.h"
#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

void jobs_save(struct job *j)
{
    struct catalog_job cj;
    struct vmckpt_error err;

    cj.name = j->name;
    cj.state = j->state;
    cj.interval = j->interval;
    cj.last_error = j->last_error;
    cj.auto_restart = j->auto_restart;
    cj.lz4 = j->lz4;
    cj.keep_epochs = j->keep_epochs;
    cj.restart_hosts = j->restart_hosts;
    cj.mtbf_s = j->mtbf_s;
    cj.cost_ms = j->cost_ms;
    cj.last_epoch = j->last_epoch;
    cj.token = j->token_hex;
    cj.incarnation = j->incarnation;
    if (catalog_job_put(j->co->cat, &cj, &err) < 0)
        log_err("%s", err.text);
}

void jobs_set_state(struct job *j, const char *state, const char *why)
{
    if (strcmp(j->state, state) != 0)
        log_info("job %s: %s -> %s%s%s%s", j->name,
                 j->state[0] ? j->state : "new", state, why ? " (" : "",
                 why ? why : "", why ? ")" : "");
    if (why != NULL && strcmp(state, "running") != 0)
        snprintf(j->last_error, sizeof(j->last_error), "%s", why);
    snprintf(j->state, sizeof(j->state), "%s", state);
    jobs_save(j);
}

struct job *jobs_first(struct coord *co)
{
    return co->jobs->list;
}

struct job *jobs_find(struct coord *co, const char *name)
{
    struct job *j;

    for (j = co->jobs->list; j != NULL; j = j->next)
        if (strcmp(j->name, name) == 0)
            return j;
    return NULL;
}

static void periodic_fire(struct evloop *loop, struct ev_timer *t);

static struct job *job_new(struct coord *co, const char *name)
{
    struct job *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->co = co;
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->interval, sizeof(j->interval), "off");
    j->incarnation = 1;
    j->keep_epochs = -1;
    ev_timer_init(&j->periodic, periodic_fire, j);
    jobs_lease_wait_init(j);
    if (jobs_token_init(j, NULL) < 0) {
        free(j);
        return NULL;
    }
    j->next = co->jobs->list;
    co->jobs->list = j;
    return j;
}

struct job *jobs_touch(struct coord *co, const char *name)
{
    struct job *j = jobs_find(co, name);

    if (j == NULL && (j = job_new(co, name)) != NULL)
        jobs_set_state(j, "running", NULL);
    return j;
}

/* ---- the MPI layer's part ----------------------------------------------- */

void jobs_set_ranks_ops(struct coord *co, const struct jobs_ranks_ops *ops)
{
    co->jobs->ranks = ops;
}

static void release_ranks(struct job *j, uint64_t epoch)
{
    if (j->co->jobs->ranks != NULL)
        j->co->jobs->ranks->release(j, epoch);
}

unsigned jobs_rank_count(struct job *j)
{
    return j->co->jobs->ranks != NULL ? j->co->jobs->ranks->count(j) : 0;
}

const char *jobs_rank_protection(struct job *j, char *buf, size_t len)
{
    if (j->co->jobs->ranks != NULL)
        return j->co->jobs->ranks->protection(j, buf, len);
    snprintf(buf, len, "%s", "");
    return buf;
}

/* ---- catalog rows of an epoch ----------------------------------------- */

static void vm_row(struct job *j, const struct jvm *v, const char *state,
                   const char *note)
{
    struct catalog_epoch e;
    struct vmckpt_error err;

    memset(&e, 0, sizeof(e));
    e.job = j->name;
    e.vm = v->vm;
    e.epoch = j->cur->epoch;
    e.parent = v->durable ? v->used_parent : v->parent;
    e.state = state;
    e.host = v->host;
    e.store_host = v->store_host;
    e.store_addr = v->store_addr;
    e.pages = v->pages;
    e.wire_bytes = v->wire_bytes;
    e.disk_bytes = v->disk_bytes;
    e.pause_us = v->pause_us;
    e.total_ms = v->total_ms;
    e.rounds = v->rounds;
    e.started_at = j->cur->started_at;
    e.ended_at =
        strcmp(state, "running") ? (int64_t)(clock_wall_ms() / 1000) : 0;
    e.note = note;
    e.paused_at_ns = v->paused_at_ns;
    e.resumed_at_ns = v->resumed_at_ns;
    e.source = vms_source(j->co, j->name, v->vm, v->qemu_stream);
    e.sealed = v->sealed;
    if (catalog_epoch_put(j->co->cat, &e, &err) < 0)
        log_err("%s", err.text);
}

/* The pause window: from the first VM's pause to the last VM's resume. */
static uint64_t window_us(const struct jepoch *e)
{
    uint64_t first = UINT64_MAX, last = 0;
    size_t i;

    for (i = 0; i < e->n; i++) {
        if (e->v[i].paused_at_ns && e->v[i].paused_at_ns < first)
            first = e->v[i].paused_at_ns;
        if (e->v[i].resumed_at_ns > last)
            last = e->v[i].resumed_at_ns;
    }
    return last > first ? (last - first) / 1000 : 0;
}

/* What the epoch cost the job: its pause window plus the CPU time its
 * slowest guest lost to pre-copy. */
static uint64_t cost_ms(const struct jepoch *e)
{
    uint64_t slow = 0;
    size_t i;

    for (i = 0; i < e->n; i++)
        if (e->v[i].slowdown_ms > slow)
            slow = e->v[i].slowdown_ms;
    return window_us(e) / 1000 + slow;
}

/* Every state change of a job epoch: logs old -> new; writes the job's
 * row and all VM rows, in one transaction. */
static int jepoch_set_state(struct job *j, const char *old, const char *state,
                            const char *note)
{
    struct jepoch *e = j->cur;
    struct catalog_job_epoch ce;
    struct vmckpt_error err;
    uint64_t t0 = clock_mono_ns();
    size_t i;

    memset(&ce, 0, sizeof(ce));
    ce.job = j->name;
    ce.epoch = e->epoch;
    ce.state = state;
    ce.nvms = e->n;
    ce.started_at = e->started_at;
    ce.ended_at =
        strcmp(state, "running") ? (int64_t)(clock_wall_ms() / 1000) : 0;
    ce.precopy_ms = e->t_cut ? e->t_cut - e->t_begin : 0;
    ce.window_us = window_us(e);
    for (i = 0; i < e->n; i++)
        if (e->v[i].pause_us > ce.max_pause_us)
            ce.max_pause_us = e->v[i].pause_us;
    ce.cost_ms = cost_ms(e);
    ce.note = note;
    ce.align = e->align;
    ce.barriers = e->barriers;
    log_info("epoch %s/%llu: %s -> %s%s%s", j->name,
             (unsigned long long)e->epoch, old, state, note ? ": " : "",
             note ? note : "");
    if (catalog_begin(j->co->cat, &err) < 0)
        goto fail;
    if (catalog_job_epoch_put(j->co->cat, &ce, &err) < 0) {
        catalog_rollback(j->co->cat);
        goto fail;
    }
    for (i = 0; i < e->n; i++)
        vm_row(j, &e->v[i], state, note);
    if (catalog_commit(j->co->cat, &err) < 0)
        goto fail;
    e->tm.catalog_ns += clock_mono_ns() - t0;
    stats_job_epoch(j->co, state, ce.window_us);
    for (i = 0; i < e->n; i++)
        stats_vm_epoch(j->co, state, e->v[i].pause_us, e->v[i].wire_bytes,
                       e->v[i].disk_bytes);
    return 0;
fail:
    log_err("epoch %s/%llu: %s", j->name, (unsigned long long)e->epoch,
            err.text);
    return -1;
}

/* ---- messages to agents --------------------------------------------- */

/* Remember that 'host' missed the abort of the epoch in flight: it is
 * told when it registers again. */
static void note_missed(struct job *j, const char *host)
{
    struct clean_note *n = calloc(1, sizeof(*n));

    if (n == NULL) {
        log_err("epoch %s/%llu: out of memory: host %s will not be told of "
                "the abort",
                j->name, (unsigned long long)j->cur->epoch, host);
        return;
    }
    snprintf(n->job, sizeof(n->job), "%s", j->name);
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->epoch = j->cur->epoch;
    n->next = j->co->jobs->to_clean;
    j->co->jobs->to_clean = n;
}

/* Send to the agent of every distinct host among the epoch's VM hosts
 * (and, with 'stores', its store hosts), however many. Hosts not up are
 * noted in co->jobs->to_clean when 'remember'. 0, or -1 when the message
 * could not go to every host (logged). */
static int tell_hosts(struct job *j, int type, const void *payload, int stores,
                      int remember)
{
    struct jepoch *e = j->cur;
    size_t per = stores ? 2 : 1, n = 0, i;
    const char **h = calloc(e->n * per + 1, sizeof(*h));
    int rc = 0;

    if (h == NULL) {
        log_err("epoch %s/%llu: out of memory: %s sent to no host", j->name,
                (unsigned long long)e->epoch, wire_type_name(type));
        return -1;
    }
    for (i = 0; i < e->n; i++) {
        h[n++] = e->v[i].host;
        if (stores)
            h[n++] = e->v[i].store_host;
    }
    n = jobs_distinct(h, n);
    for (i = 0; i < n; i++) {
        struct conn *c = hosts_conn(j->co, h[i]);

        if (c != NULL) {
            if (server_send(c, type, j->co->next_req++, payload) < 0)
                rc = -1;
        } else if (remember) {
            note_missed(j, h[i]);
        } else {
            log_warn("epoch %s/%llu: host %s is not up: no %s for it", j->name,
                     (unsigned long long)e->epoch, h[i], wire_type_name(type));
            rc = -1;
        }
    }
    free(h);
    return rc;
}

static void epoch_end(struct job *j)
{
    struct jepoch *e = j->cur;
    size_t i;

    for (i = 0; i < e->n; i++) {
        struct vmrec *v = vms_find(j->co, j->name, e->v[i].vm);

        if (v != NULL)
            v->phase[0] = '\0';
    }
    ev_timer_stop(j->co->loop, &e->timer);
    ev_timer_stop(j->co->loop, &e->align_timer);
    jobs_hold_end(j, &e->hold);
    free(e->v);
    free(e);
    j->cur = NULL;
}

/* Abort the epoch in flight everywhere; the previous commit stays. */
void jobs_abort(struct job *j, const char *fmt, ...)
{
    Vmckpt__CkptAbort ab = VMCKPT__CKPT_ABORT__INIT;
    char reason[300];
    va_list ap;

    if (j->cur == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    ab.job = j->name;
    ab.epoch = j->cur->epoch;
    ab.reason = reason;
    tell_hosts(j, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, &ab, 1, 1);
    release_ranks(j, j->cur->epoch);
    jepoch_set_state(j, j->cur->phase, "aborted", reason);
    snprintf(j->last_error, sizeof(j->last_error), "epoch %llu aborted: %s",
             (unsigned long long)j->cur->epoch, reason);
    jobs_save(j);
    epoch_end(j);
    jobs_schedule(j);
}

static void epoch_timer(struct evloop *loop, struct ev_timer *t);

static void cut_after_hold(struct job *j)
{
    jobs_cut(j, j->cur->hold_why);
}

void jobs_cut(struct job *j, const char *why)
{
    struct jepoch *e = j->cur;
    Vmckpt__CkptCut cut = VMCKPT__CKPT_CUT__INIT;
    size_t i;

    if (why != e->hold_why)
        snprintf(e->hold_why, sizeof(e->hold_why), "%s", why);
    if (jobs_hold(j, &e->hold, "align", cut_after_hold))
        return;

    log_info("epoch %s/%llu: cut (%s) after %llu ms of pre-copy", j->name,
             (unsigned long long)e->epoch, why,
             (unsigned long long)(clock_mono_ms() - e->t_begin));
    snprintf(e->phase, sizeof(e->phase), "cut");
    e->t_cut = clock_mono_ms();
    jobs_stamp(&e->tm.cut);
    for (i = 0; i < e->n; i++) {
        struct vmrec *v = vms_find(j->co, j->name, e->v[i].vm);

        if (v != NULL)
            snprintf(v->phase, sizeof(v->phase), "cutting");
    }
    cut.job = j->name;
    cut.epoch = e->epoch;
    if (tell_hosts(j, VMCKPT__MSG_TYPE__MSG_CKPT_CUT, &cut, 0, 0) < 0) {
        /* a host without the CUT would never pause: end it now */
        jobs_abort(j, "the cut could not be sent to every host of the job");
        return;
    }
    jobs_stamp(&e->tm.cut_sent);
    /* from now on the overall timeout */
    ev_timer_stop(j->co->loop, &e->timer);
    ev_timer_start(j->co->loop, &e->timer,
                   j->co->jobs->ckpt_timeout_ms > e->t_cut - e->t_begin
                       ? j->co->jobs->ckpt_timeout_ms - (e->t_cut - e->t_begin)
                       : 1);
}

/* Every VM is ready for the cut: first the MPI alignment (the ranks
 * layer's ops) asks the job's ranks to stop at one MPI_Barrier, and cuts
 * when they all wait there, or unaligned after its timeout. Without that
 * layer, or without ranks, the cut is at once. */
static void align_after_hold(struct job *j);

static void align_then_cut(struct job *j, const char *why)
{
    struct jepoch *e = j->cur;

    if (why != e->hold_why)
        snprintf(e->hold_why, sizeof(e->hold_why), "%s", why);
    if (jobs_hold(j, &e->hold, "precopy", align_after_hold))
        return;
    if (j->co->jobs->ranks != NULL)
        j->co->jobs->ranks->align(j, why);
    else
        jobs_cut(j, why);
}

static void align_after_hold(struct job *j)
{
    align_then_cut(j, j->cur->hold_why);
}

static void epoch_timer(struct evloop *loop, struct ev_timer *t)
{
    struct job *j = t->arg;

    (void)loop;
    if (j->cur == NULL)
        return;
    if (strcmp(j->cur->phase, "precopy") == 0) {
        j->cur->timed_cut = 1;
        align_then_cut(j, "max_precopy_ms reached");
        return;
    }
    if (strcmp(j->cur->phase, "align") == 0)
        return; /* the alignment's own timers end it; the cut re-arms */
    jobs_abort(j, "not committed within %u ms", j->co->jobs->ckpt_timeout_ms);
}

/* ---- begin ------------------------------------------------------------- */

int jobs_vms(struct coord *co, const char *job, struct vmrec ***out)
{
    struct vmrec *v, **a;
    size_t n = 0;

    for (v = vms_first(co); v != NULL; v = v->next)
        if (strcmp(v->job, job) == 0 && strcmp(v->state, "stopped") != 0)
            n++;
    *out = a = calloc(n + 1, sizeof(*a));
    if (a == NULL)
        return -1;
    n = 0;
    for (v = vms_first(co); v != NULL; v = v->next)
        if (strcmp(v->job, job) == 0 && strcmp(v->state, "stopped") != 0)
            a[n++] = v;
    return (int)n;
}

/* Whether every VM of vms[0..n-1] can take part in an epoch: running on
 * an up host, with another up host to store its image. 0, or -1 with
 * 'why'. */
static int begin_check(struct job *j, struct vmrec **vms, int n, char *why,
                       size_t wlen)
{
    struct coord *co = j->co;
    int i;

    if (j->cur != NULL) {
        snprintf(why, wlen, "epoch %llu of job %s is in progress",
                 (unsigned long long)j->cur->epoch, j->name);
        return -1;
    }
    if (j->rs != NULL) {
        snprintf(why, wlen, "job %s is being restarted", j->name);
        return -1;
    }
    if (n == 0) {
        snprintf(why, wlen, "job %s has no running VM", j->name);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const char *store = hosts_next_up(co, vms[i]->host);

        if (strcmp(vms[i]->state, "running") != 0 ||
            hosts_conn(co, vms[i]->host) == NULL) {
            snprintf(why, wlen,
                     "%s/%s is %s on %s (every VM of the job must be running "
                     "on an up host; see 'vmckpt status %s')",
                     j->name, vms[i]->name, vms[i]->state, vms[i]->host,
                     j->name);
            return -1;
        }
        if (store == NULL || strcmp(store, vms[i]->host) == 0) {
            snprintf(why, wlen,
                     "no peer host is up to store %s/%s (its image must live "
                     "on another host)",
                     j->name, vms[i]->name);
            return -1;
        }
    }
    return 0;
}

/* A new epoch of 'j' for its VMs vms[0..n-1], its number taken from the
 * catalog: j->cur, or NULL with 'why'. */
static struct jepoch *epoch_new(struct job *j, struct vmrec **vms, int n,
                                char *why, size_t wlen)
{
    struct coord *co = j->co;
    struct vmckpt_error err;
    struct jepoch *e = calloc(1, sizeof(*e));
    int i;

    if (e == NULL || (e->v = calloc((size_t)n, sizeof(*e->v))) == NULL) {
        free(e);
        snprintf(why, wlen, "out of memory");
        return NULL;
    }
    jobs_stamp(&e->tm.begin);
    if (catalog_epoch_next(co->cat, j->name, &e->epoch, &err) < 0) {
        free(e->v);
        free(e);
        snprintf(why, wlen,
                 "the catalog could not give job %s its next epoch number: %s",
                 j->name, err.text);
        return NULL;
    }
    e->tm.catalog_ns = clock_mono_ns() - e->tm.begin.wall;
    e->n = (size_t)n;
    e->t_begin = clock_mono_ms();
    e->started_at = (int64_t)(clock_wall_ms() / 1000);
    snprintf(e->phase, sizeof(e->phase), "precopy");
    ev_timer_init(&e->timer, epoch_timer, j);
    ev_timer_init(&e->align_timer, NULL, j);
    for (i = 0; i < n; i++) {
        struct jvm *jv = &e->v[i];
        const char *store = hosts_next_up(co, vms[i]->host);

        snprintf(jv->vm, sizeof(jv->vm), "%s", vms[i]->name);
        snprintf(jv->host, sizeof(jv->host), "%s", vms[i]->host);
        snprintf(jv->store_host, sizeof(jv->store_host), "%s", store);
        snprintf(jv->store_addr, sizeof(jv->store_addr), "%s",
                 hosts_store_addr(co, store));
        /* a delta only on the store that holds its parent */
        jv->parent = vms_parent_for(vms[i], store, co->seal_images);
        jv->sealed = co->seal_images;
    }
    j->cur = e;
    return e;
}

/* BEGIN to the agent of every VM of j->cur at once. 0, or -1 with 'why'
 * (the epoch is then aborted). */
static int begin_send(struct job *j, struct vmrec **vms, unsigned streams,
                      char *why, size_t wlen)
{
    struct coord *co = j->co;
    struct jepoch *e = j->cur;
    /* progress of each VM every 250 ms, or 1 ms per VM of the epoch (at
     * most 5 s): about 1,000 messages a second past 250 VMs */
    unsigned stats_ms = e->n < 250 ? 250 : e->n > 5000 ? 5000 : (unsigned)e->n;
    uint8_t key[DATAKEY_BYTES], ticket[TICKET_LEN];
    int sealed = datakey_for(co, j->name, key);
    size_t i;

    if (sealed < 0) { /* never stored clear instead */
        snprintf(why, wlen, "the data key of job %s cannot be derived",
                 j->name);
        jobs_abort(j, "%s", why);
        return -1;
    }
    server_cork(co); /* the BEGINs of a host in one write */
    for (i = 0; i < e->n; i++) {
        Vmckpt__CkptBegin b = VMCKPT__CKPT_BEGIN__INIT;
        Vmckpt__PeerTarget t = VMCKPT__PEER_TARGET__INIT, *tp = &t;
        struct jvm *jv = &e->v[i];

        b.job = j->name;
        b.epoch = e->epoch;
        t.vm = jv->vm;
        t.host = jv->store_host;
        t.store_addr = jv->store_addr;
        t.parent = jv->parent;
        t.incarnation = vms[i]->spec != NULL ? vms[i]->spec->incarnation : 0;
        (void)tickets_make(co, jv->store_host, TICKET_WRITE, j->name, jv->vm,
                           e->epoch, jv->host, ticket, &t.ticket);
        b.n_targets = 1;
        b.targets = &tp;
        b.coordinated = 1;
        b.compress = j->lz4;
        b.streams = streams;
        b.hold_timeout_ms = co->jobs->ckpt_timeout_ms;
        b.stats_interval_ms = stats_ms;
        if (sealed) {
            b.data_key.data = key;
            b.data_key.len = sizeof(key);
        }
        jv->sealed = sealed;
        jv->req = co->next_req++;
        snprintf(vms[i]->phase, sizeof(vms[i]->phase), "precopy");
        vms[i]->round = 0;
        if (server_send(hosts_conn(co, jv->host),
                        VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN, jv->req, &b) < 0) {
            snprintf(why, wlen, "cannot reach the agent of %s", jv->host);
            server_uncork(co);
            OPENSSL_cleanse(key, sizeof(key));
            jobs_abort(j, "cannot reach the agent of %s", jv->host);
            return -1;
        }
    }
    server_uncork(co);
    OPENSSL_cleanse(key, sizeof(key));
    return 0;
}

/* Start epoch of job 'j' ('streams' per VM, 0: each agent's setting) for
 * every VM of the job, however many; 0, or -1 with 'why'. */
static int cmp_vmrec(const void *a, const void *b)
{
    return strcmp((*(struct vmrec *const *)a)->name,
                  (*(struct vmrec *const *)b)->name);
}

int jobs_begin(struct job *j, unsigned streams, char *why, size_t wlen)
{
    struct vmrec **vms;
    int n = jobs_vms(j->co, j->name, &vms), rc = -1;

    if (n < 0) {
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    /* the epoch's VMs in name order: jobs_jvm_find looks them up so */
    qsort(vms, (size_t)n, sizeof(*vms), cmp_vmrec);
    if (begin_check(j, vms, n, why, wlen) < 0 ||
        epoch_new(j, vms, n, why, wlen) == NULL)
        goto out;
    jepoch_set_state(j, "new", "running", NULL);
    if (begin_send(j, vms, streams, why, wlen) < 0)
        goto out;
    jobs_stamp(&j->cur->tm.begun);
    ev_timer_start(j->co->loop, &j->cur->timer, j->co->jobs->max_precopy_ms);
    rc = 0;
out:
    free(vms);
    return rc;
}

static int cmp_jvm(const void *key, const void *elem)
{
    return strcmp(key, ((const struct jvm *)elem)->vm);
}

struct jvm *jobs_jvm_find(struct job *j, uint64_t epoch, const char *vm)
{
    if (j == NULL || j->cur == NULL || j->cur->epoch != epoch)
        return NULL;
    /* every message of an agent about a VM looks it up: by halves */
    return bsearch(vm, j->cur->v, j->cur->n, sizeof(*j->cur->v), cmp_jvm);
}

/* A VM's converged flag, and the epoch's count of them. */
static void set_converged(struct jepoch *e, struct jvm *v, int converged)
{
    converged = converged != 0;
    if (converged && !v->converged)
        e->nconverged++;
    else if (!converged && v->converged)
        e->nconverged--;
    v->converged = converged;
}

static void on_stats(struct coord *co, const Vmckpt__CkptStats *st)
{
    struct job *j = jobs_find(co, st->job);
    struct jvm *v = jobs_jvm_find(j, st->epoch, st->vm);

    if (v == NULL)
        return;
    if (j->cur->settling) {
        set_converged(j->cur, v, st->converged);
        v->fresh = 1;
        j->co->jobs->ranks->settle_check(j);
        return;
    }
    if (strcmp(j->cur->phase, "precopy") != 0)
        return;
    set_converged(j->cur, v, st->converged);
    if (j->cur->nconverged < j->cur->n)
        return;
    align_then_cut(j, "every VM converged");
}

/* After the drain's hold (test_hold_file): commit if every image is
 * durable by now (jobs_on_agent_reply waits while the hold lasts). */
static void drain_after_hold(struct job *j)
{
    if (j->cur->ndurable == j->cur->n)
        jobs_commit(j);
}

static void resume_all(struct job *j);

static void on_cut_done(struct coord *co, const Vmckpt__CkptCutDone *cd)
{
    struct job *j = jobs_find(co, cd->job);
    struct jvm *v = jobs_jvm_find(j, cd->epoch, cd->vm);

    if (v == NULL || v->cut_done)
        return;
    v->cut_done = 1;
    v->paused_at_ns = cd->paused_at_ns;
    if (++j->cur->ncut < j->cur->n)
        return;
    resume_all(j);
}

static void resume_all(struct job *j)
{
    Vmckpt__CkptResume r = VMCKPT__CKPT_RESUME__INIT;

    if (jobs_hold(j, &j->cur->hold, "cut", resume_all))
        return;
    /* every VM of the job is paused: now, and only now, they run again */
    jobs_stamp(&j->cur->tm.all_cut);
    log_info("epoch %s/%llu: all %zu VM(s) paused; resume", j->name,
             (unsigned long long)j->cur->epoch, j->cur->n);
    snprintf(j->cur->phase, sizeof(j->cur->phase), "drain");
    r.job = j->name;
    r.epoch = j->cur->epoch;
    r.incarnation = j->incarnation;
    if (tell_hosts(j, VMCKPT__MSG_TYPE__MSG_CKPT_RESUME, &r, 0, 0) < 0) {
        /* the abort resumes whatever a host holds */
        jobs_abort(j, "RESUME could not be sent to every host of the job");
        return;
    }
    jobs_stamp(&j->cur->tm.resumed);
    release_ranks(j, j->cur->epoch);
    (void)jobs_hold(j, &j->cur->hold, "drain", drain_after_hold);
}

void jobs_commit(struct job *j)
{
    struct jepoch *e = j->cur;
    Vmckpt__CkptCommit cm = VMCKPT__CKPT_COMMIT__INIT;
    struct vmckpt_error err;
    uint64_t t0;
    int in_tx;
    size_t i;

    if (jobs_hold(j, &e->hold, "commit", jobs_commit))
        return;
    jobs_stamp(&e->tm.durable);
    if (jepoch_set_state(j, e->phase, "committed", NULL) < 0) {
        jobs_abort(j, "the catalog could not record the commit");
        return;
    }
    cm.job = j->name;
    cm.epoch = e->epoch;
    /* the COMMIT and the retention requests of a host in one write */
    server_cork(j->co);
    tell_hosts(j, VMCKPT__MSG_TYPE__MSG_CKPT_COMMIT, &cm, 0, 0);
    j->last_epoch = e->epoch;
    j->last_window_us = window_us(e);
    j->cost_ms = cost_ms(e);
    snprintf(j->last_align, sizeof(j->last_align), "%s", e->align);
    j->last_error[0] = '\0';
    t0 = clock_mono_ns();
    /* one transaction for every VM's row and retention: a commit of its
     * own (an fsync) per VM made the commit of a large job take seconds */
    in_tx = catalog_begin(j->co->cat, &err) == 0;
    jobs_save(j);
    for (i = 0; i < e->n; i++) {
        struct vmrec *v = vms_find(j->co, j->name, e->v[i].vm);

        if (v != NULL) {
            v->last_epoch = e->epoch;
            vms_chain_commit(v, e->epoch, e->v[i].used_parent,
                             e->v[i].store_host, e->v[i].sealed);
            v->last_pause_us = e->v[i].pause_us;
            vms_note_tracking(v, e->v[i].qemu_stream);
            vms_save(j->co, v);
        }
    }
    vms_retain_some(j->co, j->name, NULL, e->epoch);
    if (in_tx && catalog_commit(j->co->cat, &err) < 0)
        log_err("job %s: epoch %llu: the VMs' rows: %s", j->name,
                (unsigned long long)e->epoch, err.text);
    server_uncork(j->co);
    e->tm.catalog_ns += clock_mono_ns() - t0;
    jobs_stamp(&e->tm.done);
    log_info("job %s: epoch %llu committed: %zu VM(s), pause window %.1f ms, "
             "cost %llu ms, %llu ms from begin",
             j->name, (unsigned long long)e->epoch, e->n,
             (double)j->last_window_us / 1000, (unsigned long long)j->cost_ms,
             (unsigned long long)(clock_mono_ms() - e->t_begin));
    jobs_log_timing(j, window_us(e));
    epoch_end(j);
    jobs_schedule(j);
}

/* ---- periodic checkpoints --------------------------------------------- */

/* The interval in effect, in seconds (0: none). auto: Young/Daly,
 * sqrt(2 x cost x MTBF), from the cost measured at the last commit. */
uint64_t jobs_interval_s(const struct job *j)
{
    double c, mtbf;

    if (strcmp(j->interval, "off") == 0 || j->interval[0] == '\0')
        return 0;
    if (strcmp(j->interval, "auto") != 0)
        return strtoull(j->interval, NULL, 10);
    mtbf = (double)(j->mtbf_s ? j->mtbf_s : j->co->jobs->mtbf_s);
    if (j->cost_ms == 0)
        return 60; /* nothing measured yet: a first checkpoint to measure */
    c = (double)j->cost_ms / 1000;
    c = sqrt(2 * c * mtbf);
    return c < 1 ? 1 : (uint64_t)c;
}

void jobs_schedule(struct job *j)
{
    uint64_t s = jobs_interval_s(j);

    ev_timer_stop(j->co->loop, &j->periodic);
    j->next_due_ms = 0;
    if (s == 0)
        return;
    j->next_due_ms = clock_mono_ms() + s * 1000;
    ev_timer_start(j->co->loop, &j->periodic, s * 1000);
}

static void periodic_fire(struct evloop *loop, struct ev_timer *t)
{
    struct job *j = t->arg;
    char why[300];

    (void)loop;
    j->next_due_ms = 0;
    if (strcmp(j->state, "running") != 0 || j->cur != NULL) {
        jobs_schedule(j);
        return;
    }
    log_info("job %s: periodic checkpoint (every %llu s)", j->name,
             (unsigned long long)jobs_interval_s(j));
    if (jobs_begin(j, 0, why, sizeof(why)) < 0) {
        log_warn("job %s: periodic checkpoint not started: %s", j->name, why);
        snprintf(j->last_error, sizeof(j->last_error), "%s", why);
        jobs_schedule(j);
    }
}

/* ---- load / free --------------------------------------------------------- */

static int load_one(const struct catalog_job *cj, void *arg)
{
    struct coord *co = arg;
    struct job *j;

    /* a row written while the catalog is read (below) may come again */
    if (jobs_find(co, cj->name) != NULL)
        return 0;
    j = job_new(co, cj->name);
    if (j == NULL)
        return -1;
    snprintf(j->state, sizeof(j->state), "%s",
             strcmp(cj->state, "restarting") == 0 ? "failed" : cj->state);
    snprintf(j->interval, sizeof(j->interval), "%s", cj->interval);
    snprintf(j->last_error, sizeof(j->last_error), "%s", cj->last_error);
    j->auto_restart = cj->auto_restart;
    j->lz4 = cj->lz4;
    j->keep_epochs = cj->keep_epochs;
    snprintf(j->restart_hosts, sizeof(j->restart_hosts), "%s",
             cj->restart_hosts ? cj->restart_hosts : "");
    j->mtbf_s = cj->mtbf_s;
    j->cost_ms = cj->cost_ms;
    j->last_epoch = cj->last_epoch;
    j->incarnation = cj->incarnation ? cj->incarnation : 1;
    if (strcmp(cj->state, "restarting") == 0) {
        /* its VMs may wait paused, restored, for a RESUME that never
         * came: restarted again once its hosts had time to register */
        snprintf(j->last_error, sizeof(j->last_error),
                 "the coordinator stopped during a restart of the job%s",
                 j->auto_restart ? "; auto_restart brings it back"
                                 : "; bring it back with 'vmckpt restart'");
        log_warn("job %s: %s", j->name, j->last_error);
        if (j->auto_restart)
            ev_timer_start(co->loop, &j->lease_wait,
                           hosts_register_grace_ms(co));
    }
    if (jobs_token_init(j, cj->token) < 0)
        return -1;
    if (strcmp(cj->token ? cj->token : "", j->token_hex) != 0)
        jobs_save(j); /* a catalog from before tokens */
    jobs_schedule(j);
    return 0;
}

static void note_clean(const char *job, uint64_t epoch, const char *host,
                       void *arg)
{
    struct coord *co = arg;
    struct clean_note *n;

    for (n = co->jobs->to_clean; n != NULL; n = n->next)
        if (n->epoch == epoch && strcmp(n->job, job) == 0 &&
            strcmp(n->host, host) == 0)
            return;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return;
    snprintf(n->job, sizeof(n->job), "%s", job);
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->epoch = epoch;
    n->next = co->jobs->to_clean;
    co->jobs->to_clean = n;
    log_info("epoch %s/%llu was in flight when the coordinator stopped: "
             "aborted (host %s is told when it registers)",
             job, (unsigned long long)epoch, host);
}

int jobs_load(struct coord *co, struct vmckpt_error *err)
{
    if (catalog_abort_in_flight(co->cat, note_clean, co, err) < 0)
        return -1;
    return catalog_job_each(co->cat, load_one, co, err);
}

int jobs_create(struct coord *co, unsigned max_precopy_ms,
                unsigned ckpt_timeout_ms, uint64_t mtbf_s)
{
    static const struct vms_epoch_hooks hooks = {
        .reply = jobs_on_agent_reply,
        .stats = on_stats,
        .cut_done = on_cut_done,
        .incarnation = jobs_incarnation,
        .stale = jobs_stale_copy,
        .keep = jobs_keep_epochs,
    };
    struct jobs *js = calloc(1, sizeof(*js));

    if (js == NULL)
        return -1;
    js->max_precopy_ms = max_precopy_ms;
    js->ckpt_timeout_ms = ckpt_timeout_ms;
    js->mtbf_s = mtbf_s;
    co->jobs = js;
    vms_set_epoch_hooks(co, &hooks);
    return jobs_fail_watch(co);
}

void jobs_destroy(struct coord *co)
{
    if (co->jobs == NULL)
        return;
    while (co->jobs->list != NULL) {
        struct job *j = co->jobs->list;

        co->jobs->list = j->next;
        ev_timer_stop(co->loop, &j->periodic);
        ev_timer_stop(co->loop, &j->lease_wait);
        if (j->cur != NULL)
            epoch_end(j);
        auth_key_dispose(&j->token);
        if (j->rs != NULL) {
            jobs_hold_end(j, &j->rs->hold);
            free(j->rs->v);
            free(j->rs);
        }
        free(j);
    }
    while (co->jobs->to_clean != NULL) {
        struct clean_note *n = co->jobs->to_clean;

        co->jobs->to_clean = n->next;
        free(n);
    }
    free(co->jobs->hold_file);
    free(co->jobs);
    co->jobs = NULL;
}
