/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What agents say of their guests without being asked: the list an agent
 * registers with (reconciled with the guest table; stale copies ordered
 * destroyed) and the guests that ended by themselves (VmExited). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "hosts.h"
#include "vms.h"
#include "vms_int.h"
#include "lib/util/log.h"

/* Whether "job/vm" or "job/vm!" (held paused) in an agent's list names
 * guest 'v': 0 no, 1 yes, 2 yes and held. */
static int listed_as(const struct vmrec *v, const char *entry)
{
    size_t lj = strlen(v->job), ln = strlen(v->name);

    if (strncmp(entry, v->job, lj) != 0 || entry[lj] != '/' ||
        strncmp(entry + lj + 1, v->name, ln) != 0)
        return 0;
    if (entry[lj + 1 + ln] == '\0')
        return 1;
    return entry[lj + 1 + ln] == '!' && entry[lj + 2 + ln] == '\0' ? 2 : 0;
}

/* Whether agent list vms[0..n-1] names guest 'v': 0 no, 1 yes, 2 yes and
 * held paused; *at is then its index. */
static int listed_in(const struct vmrec *v, char **vms, size_t n, size_t *at)
{
    size_t i;
    int k;

    for (i = 0; i < n; i++)
        if ((k = listed_as(v, vms[i])) > 0) {
            *at = i;
            return k;
        }
    return 0;
}

/* Believed to run on 'host' (or not known since this coordinator
 * started): a guest its agent must list. */
static int runs_on(const struct vmrec *v, const char *host)
{
    return strcmp(v->host, host) == 0 && (strcmp(v->state, "running") == 0 ||
                                          strcmp(v->state, "unknown") == 0 ||
                                          strcmp(v->state, "paused") == 0);
}

/* Order the agent of 'host' to destroy its copy of 'v' (of incarnation
 * 'inc', 0 unknown), which runs (or is restored) on v->host since, or is
 * of an older incarnation than v's. */
static void stale_copy(struct coord *co, struct vmrec *v, const char *host,
                       uint64_t inc)
{
    Vmckpt__VmStop st = VMCKPT__VM_STOP__INIT;
    struct conn *c = hosts_conn(co, host);

    log_warn("vm %s/%s: stale copy on %s (incarnation %llu; the VM is %s on "
             "%s under incarnation %llu); ordered destroyed",
             v->job, v->name, host, (unsigned long long)inc, v->state, v->host,
             (unsigned long long)vms_incarnation_of(v));
    if (co->vms->epoch.stale != NULL)
        co->vms->epoch.stale(co, v, host, inc);
    st.job = v->job;
    st.vm = v->name;
    st.incarnation = inc;
    if (c == NULL ||
        server_send(c, VMCKPT__MSG_TYPE__MSG_VM_STOP, co->next_req++, &st) < 0)
        log_err("vm %s/%s: cannot order the stale copy on %s destroyed", v->job,
                v->name, host);
}

void vms_on_host_vms(struct coord *co, const char *host, char **vms,
                     const uint64_t *incs, size_t n)
{
    struct vmrec *v;
    char why[160];
    size_t at = 0;
    int k;

    for (v = co->vms->list; v != NULL; v = v->next) {
        uint64_t inc;

        if ((k = listed_in(v, vms, n, &at)) == 0)
            continue;
        inc = incs != NULL ? incs[at] : 0;
        if (strcmp(v->host, host) != 0) {
            /* the guest was restored elsewhere while this host was away:
             * the copy here is stale and must not run next to it */
            stale_copy(co, v, host, inc);
            continue;
        }
        if (inc != 0 && inc < vms_incarnation_of(v)) {
            /* here, but of an older incarnation than the job gave it: the
             * copy it should be never came */
            stale_copy(co, v, host, inc);
            snprintf(why, sizeof(why),
                     "only a stale copy (incarnation %llu) on %s",
                     (unsigned long long)inc, host);
            if (vms_may_run(v))
                vms_exited_now(co, v, why);
            continue;
        }
        if (strcmp(v->state, "running") != 0 &&
            strcmp(v->state, "restoring") != 0)
            vms_set_state(co, v, k == 2 ? "paused" : "running");
    }
    /* then the guests the agent does not run (any more): they ended while
     * it could not tell (the link was down, or this coordinator was not
     * running). Every listed guest is placed first, so that a restart the
     * layer above starts sees the survivors as they are; a guest such a
     * restart already restores is no longer believed to run. */
    snprintf(why, sizeof(why), "not running on %s when its agent registered",
             host);
    for (v = co->vms->list; v != NULL; v = v->next)
        if (runs_on(v, host) && listed_in(v, vms, n, &at) == 0)
            vms_exited_now(co, v, why);
}

int vms_on_exited(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__VmExited *x = env->vm_exited;
    struct vmrec *v = vms_find(c->co, x->job, x->vm);
    char why[sizeof(v->exit_reason)];

    if (v == NULL || strcmp(v->host, c->auth.peer_name) != 0 ||
        !vms_may_run(v)) {
        /* late news of a guest that was stopped, moved or already gone */
        log_info("agent %s: guest %.64s/%.64s ended (%.160s); not one "
                 "running there: ignored",
                 c->auth.peer_name, x->job, x->vm, x->reason);
        return 0;
    }
    if (x->incarnation != 0 && x->incarnation < vms_incarnation_of(v)) {
        /* the copy a restart replaces, whose end the agent reported after
         * the restart began: the restored one is what the job runs */
        log_info("agent %s: guest %.64s/%.64s of incarnation %llu ended "
                 "(%.160s); it is %s now under incarnation %llu: ignored",
                 c->auth.peer_name, x->job, x->vm,
                 (unsigned long long)x->incarnation, x->reason, v->state,
                 (unsigned long long)vms_incarnation_of(v));
        return 0;
    }
    if (x->reason[0] != '\0')
        snprintf(why, sizeof(why), "%.200s", x->reason);
    else if (x->signal != 0)
        snprintf(why, sizeof(why), "killed by signal %d", (int)x->signal);
    else
        snprintf(why, sizeof(why), "exited with status %d",
                 (int)x->exit_status);
    vms_exited_now(c->co, v, why);
    return 0;
}
