/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What agents report for the VMs of a job epoch or a restart (stats,
 * cut-done, durable, abort, restore-done), and from whom it is taken: only
 * from the agent connection of the host that holds the VM for that epoch.
 * A report from any other host is refused with an Error saying why, and
 * changes nothing. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* The host that holds VM 'vm' of 'job' for 'epoch': the epoch's record
 * when that is the job's epoch in flight, else the VM's own (a single-VM
 * checkpoint, or a report that comes late). NULL when there is no such
 * VM. */
static const char *holder_of(struct coord *co, const char *job, uint64_t epoch,
                             const char *vm)
{
    struct jvm *jv = jobs_jvm_find(jobs_find(co, job), epoch, vm);
    struct vmrec *v;

    if (jv != NULL)
        return jv->host;
    v = vms_find(co, job, vm);
    return v != NULL ? v->host : NULL;
}

/* 1 when 'c' is the agent connection of 'host', the holder of job/vm at
 * 'epoch'; else the report is refused (an Error naming why, logged) and
 * 0. An Error from the wrong host is only logged: errors are not
 * answered. */
static int from_holder(struct conn *c, const Vmckpt__Envelope *env,
                       const char *job, const char *vm, uint64_t epoch,
                       const char *host)
{
    char why[300];

    if (host != NULL && hosts_conn(c->co, host) == c)
        return 1;
    if (host == NULL)
        snprintf(why, sizeof(why), "there is no VM %s/%s", job, vm);
    else if (hosts_conn(c->co, host) == NULL)
        snprintf(why, sizeof(why), "%s/%s is on host %s, which is not up", job,
                 vm, host);
    else
        snprintf(why, sizeof(why),
                 "%s/%s is on host %s, not on %s: only its own agent reports "
                 "for it",
                 job, vm, host, c->auth.peer_name);
    if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR)
        log_warn("agent %s: an Error for %s epoch %llu ignored: %s",
                 c->auth.peer_name, vm, (unsigned long long)epoch, why);
    else
        server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                     "%s for %s/%s epoch %llu refused: %s",
                     wire_type_name(env->type), job, vm,
                     (unsigned long long)epoch, why);
    return 0;
}

int jobs_on_report(struct conn *c, const Vmckpt__Envelope *env)
{
    const char *job, *vm;
    uint64_t epoch;

    if (env->type == VMCKPT__MSG_TYPE__MSG_CKPT_STATS) {
        job = env->ckpt_stats->job;
        vm = env->ckpt_stats->vm;
        epoch = env->ckpt_stats->epoch;
    } else {
        job = env->ckpt_cut_done->job;
        vm = env->ckpt_cut_done->vm;
        epoch = env->ckpt_cut_done->epoch;
    }
    if (!from_holder(c, env, job, vm, epoch, holder_of(c->co, job, epoch, vm)))
        return 0;
    if (env->type == VMCKPT__MSG_TYPE__MSG_CKPT_STATS)
        return vms_on_stats(c, env);
    return vms_on_cut_done(c, env);
}

/* The reply of VM 'v' of the epoch in flight of 'j' (its CkptBegin's
 * request id). */
static void epoch_reply(struct job *j, struct jvm *v,
                        const Vmckpt__Envelope *env)
{
    struct jepoch *e = j->cur;
    const Vmckpt__CkptDurable *d = env->ckpt_durable;
    struct vmrec *vr;

    if (env->type != VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE) {
        jobs_abort(j, "%s/%s on %s: %s", j->name, v->vm, v->host,
                   env->type == VMCKPT__MSG_TYPE__MSG_CKPT_ABORT
                       ? env->ckpt_abort->reason
                   : env->type == VMCKPT__MSG_TYPE__MSG_ERROR
                       ? env->error->text
                       : "unexpected reply");
        return;
    }
    if (v->durable)
        return;
    v->durable = 1;
    v->pages = d->pages;
    v->wire_bytes = d->wire_bytes;
    v->disk_bytes = d->bytes;
    v->pause_us = d->pause_ns / 1000;
    v->total_ms = d->total_ms;
    v->rounds = d->rounds;
    v->paused_at_ns = d->paused_at_ns;
    v->resumed_at_ns = d->resumed_at_ns;
    v->slowdown_ms = d->slowdown_ms;
    v->used_parent = d->parent;
    v->qemu_stream = d->qemu_stream;
    if (!d->sealed != !v->sealed) /* an agent that ignored (or invented)
                                   * the key: the catalog says what is */
        log_warn("job %s: %s epoch %llu was stored %s though the key was "
                 "%s",
                 j->name, v->vm, (unsigned long long)e->epoch,
                 d->sealed ? "sealed" : "clear",
                 v->sealed ? "sent" : "not sent");
    v->sealed = d->sealed;
    /* a QEMU stream reports no rounds: what it sent shows here */
    vr = vms_find(j->co, j->name, v->vm);
    if (vr != NULL && vr->bytes_sent < d->wire_bytes)
        vr->bytes_sent = d->wire_bytes;
    /* (while a drain hold of test_hold_file lasts, its end commits) */
    if (++e->ndurable == e->n && !e->hold.holding)
        jobs_commit(j);
}

/* The answer to the restore of the i-th VM of the restart of 'j'. */
static void restart_reply(struct job *j, size_t i, const Vmckpt__Envelope *env)
{
    struct jrestart *rs = j->rs;

    if (env->type != VMCKPT__MSG_TYPE__MSG_RESTORE_DONE ||
        env->restore_done->error == NULL ||
        env->restore_done->error->code != VMCKPT__ERROR_CODE__ERR_NONE) {
        const char *why = env->type == VMCKPT__MSG_TYPE__MSG_RESTORE_DONE &&
                                  env->restore_done->error != NULL
                              ? env->restore_done->error->text
                          : env->type == VMCKPT__MSG_TYPE__MSG_ERROR
                              ? env->error->text
                              : "unexpected reply";

        stats_restore(j->co, 0, 0);
        /* the other copy of its image, if there is one */
        if (jobs_restart_retry(j, i, why))
            return;
        rs->v[i].done = rs->v[i].failed = 1;
        rs->ndone++;
        rs->nfail++;
        snprintf(rs->error, sizeof(rs->error), "%s on %s: %s", rs->v[i].vm,
                 rs->v[i].host, why);
    } else {
        rs->v[i].done = 1;
        rs->ndone++;
        stats_restore(j->co, 1, clock_mono_ms() - rs->v[i].sent_ms);
    }
    if (rs->ndone == rs->n)
        jobs_restart_finish(j);
}

/* Whether 'host' holds a VM of job 'job'. */
static int holds_vm_of(struct coord *co, const char *host, const char *job)
{
    struct vmrec *v;

    for (v = vms_first(co); v != NULL; v = v->next)
        if (strcmp(v->job, job) == 0 && strcmp(v->host, host) == 0)
            return 1;
    return 0;
}

struct late_epoch {
    char state[16], store_host[64];
};

static void late_copy(const struct catalog_epoch *e, void *arg)
{
    struct late_epoch *l = arg;

    snprintf(l->state, sizeof(l->state), "%s", e->state);
    snprintf(l->store_host, sizeof(l->store_host), "%s", e->store_host);
}

/* A checkpoint that ended durable after its job epoch was aborted (the
 * ABORT came while its store was committing): its store, and the local
 * copy on its host, hold an epoch nothing will commit or remove. Tell
 * both again: they drop it (agent ckpt_abort). */
static void late_durable(struct conn *c, const Vmckpt__CkptDurable *d)
{
    Vmckpt__CkptAbort ab = VMCKPT__CKPT_ABORT__INIT;
    struct late_epoch l;
    struct vmckpt_error err;
    struct conn *sc;

    memset(&l, 0, sizeof(l));
    if (catalog_epoch_get(c->co->cat, d->job, d->vm, d->epoch, late_copy, &l,
                          &err) != 1 ||
        strcmp(l.state, "aborted") != 0)
        return;
    log_info("job %s: %s's checkpoint of epoch %llu ended after the epoch "
             "was aborted: its copies are dropped",
             d->job, d->vm, (unsigned long long)d->epoch);
    ab.job = d->job;
    ab.epoch = d->epoch;
    ab.reason = "the checkpoint ended after its epoch was aborted";
    (void)server_send(c, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, c->co->next_req++,
                      &ab);
    sc = hosts_conn(c->co, l.store_host);
    if (sc != NULL && sc != c)
        (void)server_send(sc, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT,
                          c->co->next_req++, &ab);
}

/* A CkptDurable, CkptAbort or RestoreDone that no epoch or restart waits
 * for: late from the VM's own host it is ignored as before (a durable one
 * of an aborted epoch has its copies dropped); from another host it is
 * refused. 1 if refused. */
static int unmatched_reply(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    const char *job, *vm;
    uint64_t epoch;

    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE:
        job = env->ckpt_durable->job;
        vm = env->ckpt_durable->vm;
        epoch = env->ckpt_durable->epoch;
        break;
    case VMCKPT__MSG_TYPE__MSG_RESTORE_DONE:
        job = env->restore_done->job;
        vm = env->restore_done->vm;
        epoch = env->restore_done->epoch;
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_ABORT:
        if (holds_vm_of(co, c->auth.peer_name, env->ckpt_abort->job))
            return 0;
        server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                     "CkptAbort for job %s epoch %llu refused: host %s holds "
                     "no VM of that job",
                     env->ckpt_abort->job,
                     (unsigned long long)env->ckpt_abort->epoch,
                     c->auth.peer_name);
        return 1;
    default:
        return 0;
    }
    if (!from_holder(c, env, job, vm, epoch, holder_of(co, job, epoch, vm)))
        return 1;
    if (env->type == VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE)
        late_durable(c, env->ckpt_durable);
    return 0;
}

/* The guests' hook: a reply that belongs to an epoch or a restart, found
 * by request id, taken only from the agent of the host that holds the VM
 * (from any other it is refused and changes nothing). 1 if it was one of
 * theirs, or refused. */
int jobs_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env)
{
    struct job *j;
    size_t i;

    for (j = c->co->jobs->list; j != NULL; j = j->next) {
        struct jepoch *e = j->cur;
        struct jrestart *rs = j->rs;

        for (i = 0; e != NULL && i < e->n; i++) {
            struct jvm *v = &e->v[i];

            if (v->req != env->request_id)
                continue;
            if (from_holder(c, env, j->name, v->vm, e->epoch, v->host))
                epoch_reply(j, v, env);
            return 1;
        }
        for (i = 0; rs != NULL && i < rs->n; i++) {
            if (rs->v[i].req != env->request_id || rs->v[i].done)
                continue;
            if (from_holder(c, env, j->name, rs->v[i].vm, rs->epoch,
                            rs->v[i].host))
                restart_reply(j, i, env);
            return 1;
        }
    }
    return unmatched_reply(c, env);
}
