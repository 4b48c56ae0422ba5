/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What jobs do when the hosts, connections and guests they need fail or
 * come back: abort the epoch in flight, fail the job (and restart it when
 * auto_restart says so), deliver the aborts a host missed, and mark a job
 * running again once all its guests run. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

static int epoch_uses(const struct jepoch *e, const char *host)
{
    size_t i;

    for (i = 0; e != NULL && i < e->n; i++)
        if (strcmp(e->v[i].host, host) == 0 ||
            strcmp(e->v[i].store_host, host) == 0)
            return 1;
    return 0;
}

/* The server's close hook: a console waiting for a restart went away, or
 * an agent an epoch or a restart needs. */
static void conn_gone(struct coord *co, struct conn *c)
{
    struct job *j;

    for (j = co->jobs->list; j != NULL; j = j->next) {
        if (j->rs != NULL && j->rs->admin == c)
            j->rs->admin = NULL;
        if (c->auth.role != VMCKPT__ROLE__ROLE_AGENT)
            continue;
        if (epoch_uses(j->cur, c->auth.peer_name))
            jobs_abort(j, "lost the agent of %s", c->auth.peer_name);
        if (j->rs != NULL) {
            char why[100];

            snprintf(why, sizeof(why), "lost the agent of %s",
                     c->auth.peer_name);
            jobs_restart_fault(j, c->auth.peer_name, NULL, why, 0);
        }
    }
}

/* 'j' failed: restart it from its last committed epoch if its policy
 * says so. */
void jobs_auto_restart(struct job *j)
{
    char err[300], host[64];
    uint64_t ack, end, now;

    if (!j->auto_restart || j->rs != NULL)
        return;
    ev_timer_stop(j->co->loop, &j->lease_wait);
    end = jobs_lease_pending(j, host, sizeof(host), &ack);
    if (end != 0) {
        /* its guests may still run there: a copy elsewhere would run next
         * to them (docs/consistency.md, fencing) */
        now = clock_mono_ms();
        log_warn(
            "job %s: auto_restart waits %llu ms for the lease of host "
            "%s to end (last granted %llu ms ago, lease %u ms, margin "
            "%llu ms)",
            j->name, (unsigned long long)(end - now), host,
            (unsigned long long)(now - ack), hosts_lease_ms(j->co),
            (unsigned long long)hosts_lease_margin_ms(hosts_lease_ms(j->co)));
        ev_timer_start(j->co->loop, &j->lease_wait, end - now);
        return;
    }
    if (j->restart_hosts[0] != '\0') {
        char list[sizeof(j->restart_hosts)], *hosts[64];
        int n;

        snprintf(list, sizeof(list), "%s", j->restart_hosts);
        n = jobs_split_hosts(list, hosts, 64);
        log_info("job %s: auto_restart from its last committed epoch, on "
                 "its restart hosts %s",
                 j->name, j->restart_hosts);
        if (n > 0 &&
            jobs_restart_on(j, hosts, (size_t)n, err, sizeof(err)) == 0)
            return;
        if (n <= 0)
            snprintf(err, sizeof(err), "bad restart hosts '%.200s'",
                     j->restart_hosts);
        log_err("job %s: auto_restart impossible: %s", j->name, err);
        snprintf(j->last_error, sizeof(j->last_error),
                 "auto_restart impossible: %s", err);
        jobs_save(j);
        return;
    }
    log_info("job %s: auto_restart from its last committed epoch", j->name);
    if (jobs_restart(j, 0, NULL, 0, NULL, 0, err, sizeof(err)) < 0) {
        log_err("job %s: auto_restart impossible: %s", j->name, err);
        snprintf(j->last_error, sizeof(j->last_error),
                 "auto_restart impossible: %s", err);
        jobs_save(j);
    }
}

/* The lease a restart waited for has ended (or its host was fenced by
 * hand): restart if the job is still failed. */
static void lease_ended(struct evloop *loop, struct ev_timer *t)
{
    struct job *j = t->arg;

    (void)loop;
    if (strcmp(j->state, "failed") != 0) {
        log_info("job %s: lease wait over; the job is %s, no restart", j->name,
                 j->state);
        return;
    }
    log_info("job %s: the leases of its hosts have ended", j->name);
    jobs_auto_restart(j);
}

void jobs_lease_wait_init(struct job *j)
{
    ev_timer_init(&j->lease_wait, lease_ended, j);
}

static void host_lost(struct coord *co, const char *host, const char *why)
{
    struct job *j;
    struct vmrec *v;
    char text[300];

    for (j = co->jobs->list; j != NULL; j = j->next) {
        int hit = 0;

        if (epoch_uses(j->cur, host))
            jobs_abort(j, "host %s lost (%s)", host, why);
        for (v = vms_first(co); v != NULL; v = v->next)
            if (strcmp(v->job, j->name) == 0 && strcmp(v->host, host) == 0 &&
                strcmp(v->state, "stopped") != 0) {
                vms_set_state(co, v, "lost");
                hit = 1;
            }
        if (!hit)
            continue;
        snprintf(text, sizeof(text), "host %s lost (%s)", host, why);
        if (j->rs != NULL) {
            /* a guest restored there and paused can no longer be
             * resumed: the restart fails, and its end (auto_restart)
             * answers for the job */
            jobs_restart_fault(j, host, NULL, text, 1);
            continue;
        }
        jobs_set_state(j, "failed", text);
        jobs_auto_restart(j);
    }
}

static int epoch_has_vm(const struct jepoch *e, const char *vm)
{
    size_t i;

    for (i = 0; e != NULL && i < e->n; i++)
        if (strcmp(e->v[i].vm, vm) == 0)
            return 1;
    return 0;
}

/* Whether the restart 'rs' restores VM 'v' on v's host, and still may. */
static int restart_has(const struct jrestart *rs, const struct vmrec *v)
{
    size_t i;

    for (i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].vm, v->name) == 0 &&
            strcmp(rs->v[i].host, v->host) == 0 && !rs->v[i].failed)
            return 1;
    return 0;
}

/* A host of job 'j' (other than VM 'gone''s) whose guests may run although
 * it is not connected: unknown since the coordinator's start, or up with
 * its connection just dropped. A restart now would restore its VMs
 * elsewhere while they still run there; NULL if there is none. */
static const char *host_in_doubt(struct job *j, const struct vmrec *gone)
{
    struct vmrec *v;

    for (v = vms_first(j->co); v != NULL; v = v->next) {
        const char *st;

        if (v == gone || strcmp(v->job, j->name) != 0 ||
            strcmp(v->state, "stopped") == 0)
            continue;
        st = hosts_state(j->co, v->host);
        if (st != NULL &&
            (strcmp(st, "unknown") == 0 ||
             (strcmp(st, "up") == 0 && hosts_conn(j->co, v->host) == NULL)))
            return v->host;
    }
    return NULL;
}

/* The guests' hook: VM 'v' ended by itself (its QEMU exited or was
 * killed, its domain is gone). Its epoch in flight cannot commit, its job
 * failed, and auto_restart brings the whole job back from its last
 * committed epoch, unless this VM already ended again since an automatic
 * restart from that same epoch (the restart would only repeat). */
static void vm_exited(struct coord *co, struct vmrec *v, const char *why)
{
    struct job *j = jobs_find(co, v->job);
    const char *doubt;
    char text[400];

    if (j == NULL)
        return;
    snprintf(text, sizeof(text), "vm %s exited on %s: %s", v->name, v->host,
             why);
    if (epoch_has_vm(j->cur, v->name))
        jobs_abort(j, "%s", text);
    if (j->rs != NULL) {
        /* the restart in flight answers for it: it fails if this guest
         * was one it restored (auto_restart then tries the same epoch
         * again), else it replaces this guest anyway */
        log_warn("job %s: %s, during its restart", j->name, text);
        if (!restart_has(j->rs, v))
            return;
        if (v->auto_restarted_from != 0 &&
            v->auto_restarted_from == j->rs->epoch) {
            log_err("job %s: auto_restart not tried again: %s ended again "
                    "while restored from epoch %llu",
                    j->name, v->name, (unsigned long long)j->rs->epoch);
            j->rs->give_up = 1;
        }
        v->auto_restarted_from = j->rs->epoch;
        jobs_restart_fault(j, v->host, v->name, text, 1);
        return;
    }
    jobs_set_state(j, "failed", text);
    if (!j->auto_restart)
        return;
    if (v->auto_restarted_from != 0 &&
        v->auto_restarted_from == j->last_epoch) {
        log_err("job %s: auto_restart not tried again: %s ended again after "
                "the job was restarted from epoch %llu",
                j->name, v->name, (unsigned long long)j->last_epoch);
        snprintf(j->last_error, sizeof(j->last_error),
                 "%.300s; auto_restart not tried again (it ended after the "
                 "restart from epoch %llu too)",
                 text, (unsigned long long)j->last_epoch);
        jobs_save(j);
        return;
    }
    doubt = host_in_doubt(j, v);
    if (doubt != NULL) {
        log_warn("job %s: auto_restart held: host %s has not registered "
                 "again, and its guests may still run there; 'vmckpt "
                 "restart %s' once it has, or once it is lost",
                 j->name, doubt, j->name);
        snprintf(j->last_error, sizeof(j->last_error),
                 "%.300s; auto_restart held: host %s has not registered "
                 "again",
                 text, doubt);
        jobs_save(j);
        return;
    }
    v->auto_restarted_from = j->last_epoch;
    jobs_auto_restart(j);
}

/* Guests were reported running again: a failed job whose VMs all run is
 * running again. */
static void vms_back(struct coord *co)
{
    struct job *j;
    struct vmrec *v;

    for (j = co->jobs->list; j != NULL; j = j->next) {
        int n = 0, up = 0;

        if (strcmp(j->state, "failed") != 0 || j->rs != NULL)
            continue;
        for (v = vms_first(co); v != NULL; v = v->next)
            if (strcmp(v->job, j->name) == 0 &&
                strcmp(v->state, "stopped") != 0) {
                n++;
                up += strcmp(v->state, "running") == 0;
            }
        if (n > 0 && up == n)
            jobs_set_state(j, "running", NULL);
    }
}

void jobs_host_up(struct coord *co, const char *host)
{
    struct clean_note **pp = &co->jobs->to_clean, *n;
    struct conn *c = hosts_conn(co, host);

    while ((n = *pp) != NULL) {
        if (c == NULL || strcmp(n->host, host) != 0) {
            pp = &n->next;
            continue;
        }
        {
            Vmckpt__CkptAbort ab = VMCKPT__CKPT_ABORT__INIT;

            ab.job = n->job;
            ab.epoch = n->epoch;
            ab.reason = "aborted while this host was away";
            server_send(c, VMCKPT__MSG_TYPE__MSG_CKPT_ABORT, co->next_req++,
                        &ab);
        }
        *pp = n->next;
        free(n);
    }
}

uint64_t jobs_incarnation(struct coord *co, const char *job, int bump)
{
    struct job *j = jobs_find(co, job);

    if (j == NULL)
        return 0;
    if (bump) {
        j->incarnation++;
        log_info("job %s: incarnation %llu", j->name,
                 (unsigned long long)j->incarnation);
        jobs_save(j);
    }
    return j->incarnation;
}

void jobs_stale_copy(struct coord *co, const struct vmrec *v, const char *host,
                     uint64_t inc)
{
    struct job *j = jobs_find(co, v->job);
    size_t len;

    if (j == NULL)
        return;
    len = strlen(j->stale);
    if (len > 0 &&
        len + strlen(v->name) + strlen(host) + 40 >= sizeof(j->stale))
        len = 0; /* the oldest news goes */
    snprintf(j->stale + len, sizeof(j->stale) - len,
             "%s%s on %s (incarnation %llu)", len ? "; " : "", v->name, host,
             (unsigned long long)inc);
}

/* The host registry's events: a host lost or stopped fails what it ran;
 * an agent that registers gets its guests reconciled and the aborts it
 * missed. */
static void on_host_state(void *arg, const char *host, const char *state,
                          const char *why)
{
    struct coord *co = arg;
    struct vmrec *v;

    if (strcmp(state, "lost") == 0)
        for (v = vms_first(co); v != NULL; v = v->next)
            if (strcmp(v->host, host) == 0 &&
                strcmp(v->state, "stopped") != 0 &&
                strcmp(v->state, "exited") != 0) {
                /* its guests must move: power it off first, if the site
                 * said how */
                hosts_fence_run(co, host);
                break;
            }
    if (strcmp(state, "lost") == 0 || strcmp(state, "down") == 0)
        host_lost(co, host, why);
}

static void on_host_registered(void *arg, const char *host, char **vms,
                               const uint64_t *incs, size_t n)
{
    struct coord *co = arg;

    vms_on_host_vms(co, host, vms, incs, n);
    jobs_host_up(co, host);
    vms_back(co);
}

/* The administrator fenced 'host': restarts waiting for leases go now
 * (each checks again which leases remain). */
static void on_host_fenced(void *arg, const char *host)
{
    struct coord *co = arg;
    struct job *j;

    (void)host;
    for (j = co->jobs->list; j != NULL; j = j->next)
        if (j->lease_wait.armed)
            ev_timer_start(co->loop, &j->lease_wait, 0);
}

int jobs_fail_watch(struct coord *co)
{
    struct hosts_events ev = {
        .state = on_host_state,
        .registered = on_host_registered,
        .fenced = on_host_fenced,
        .arg = co,
    };

    hosts_set_events(co, &ev);
    vms_set_exited_hook(co, vm_exited);
    return server_on_close(co, conn_gone);
}
