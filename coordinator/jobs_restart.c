/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Restart of a whole job from one epoch: every VM restored paused (the
 * survivors in place, from their host's local copy when they ran there;
 * lost VMs on the host holding their image, or on a named one that
 * fetches it), then all resumed together. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "lib/util/log.h"

/* ---- restart ------------------------------------------------------------ */

struct epoch_src {
    int found, qemu_stream;
    char state[16], host[64], store_host[64], store_addr[128];
    const char *from; /* the host whose store serves the restore */
};

static void src_copy(const struct catalog_epoch *ce, void *arg)
{
    struct epoch_src *s = arg;

    s->found = 1;
    s->qemu_stream = ce->source && strcmp(ce->source, "qemu-migration") == 0;
    snprintf(s->state, sizeof(s->state), "%s", ce->state);
    snprintf(s->host, sizeof(s->host), "%s", ce->host);
    snprintf(s->store_host, sizeof(s->store_host), "%s", ce->store_host);
    snprintf(s->store_addr, sizeof(s->store_addr), "%s", ce->store_addr);
}

void restart_finish(struct job *j)
{
    struct jrestart *rs = j->rs;
    Vmckpt__CkptResume r = VMCKPT__CKPT_RESUME__INIT;
    const char *seen[128];
    size_t nseen = 0, i, k;
    char text[400];

    if (rs->nfail > 0) {
        snprintf(text, sizeof(text),
                 "restart of %s from epoch %llu failed: %s (restored VMs stay "
                 "paused; fix and run 'vmckpt restart %s' again)",
                 j->name, (unsigned long long)rs->epoch, rs->error, j->name);
        job_set_state(j, "failed", text);
        if (rs->admin != NULL)
            conn_error(rs->admin, rs->admin_id,
                       VMCKPT__ERROR_CODE__ERR_INTERNAL, "%s", text);
        goto out;
    }
    /* every VM is restored and paused: the rank connections are from the
     * guests they replaced; then resume them all together */
    ranks_replaced(j);
    r.job = j->name;
    r.epoch = rs->epoch;
    for (i = 0; i < rs->n; i++) {
        struct vmrec *v = vms_find(j->co, j->name, rs->v[i].vm);

        if (v != NULL) {
            v->chain_epoch = 0; /* new QEMUs: the next epoch is full */
            v->last_epoch = rs->epoch;
            vms_set_state(j->co, v, "running");
        }
        for (k = 0; k < nseen; k++)
            if (strcmp(seen[k], rs->v[i].host) == 0)
                break;
        if (k < nseen || nseen == 128)
            continue;
        seen[nseen++] = rs->v[i].host;
        if (hosts_conn(j->co, rs->v[i].host) != NULL)
            conn_send(hosts_conn(j->co, rs->v[i].host),
                      VMCKPT__MSG_TYPE__MSG_CKPT_RESUME, j->co->next_req++, &r);
    }
    snprintf(text, sizeof(text),
             "job %s restarted from epoch %llu: %zu VM(s) on %zu host(s), "
             "resumed together",
             j->name, (unsigned long long)rs->epoch, rs->n, nseen);
    log_info("%s", text);
    job_set_state(j, "running", NULL);
    if (rs->admin != NULL) {
        Vmckpt__Ack ack = VMCKPT__ACK__INIT;

        ack.text = text;
        conn_send(rs->admin, VMCKPT__MSG_TYPE__MSG_ACK, rs->admin_id, &ack);
    }
    schedule(j);
out:
    free(rs->v);
    free(rs);
    j->rs = NULL;
}

/* A back end other than the default QEMU one (a Xen domain). */
static int other_hv(const char *hv)
{
    return hv != NULL && hv[0] != '\0' && strcmp(hv, "qemu") != 0;
}

/* Whether host 'h' can bring VM 'v' back: a Xen domain needs a host
 * whose agent registered a usable Xen back end. */
static int can_run(struct coord *co, const struct vmrec *v, const char *h)
{
    return !other_hv(v->spec->hypervisor) ||
           hosts_offers(co, h, v->spec->hypervisor);
}

/* Restart job 'j' from 'epoch' (0: last committed). Lost VMs go to
 * 'hosts' in turn if given, else to the host holding their image. */
int job_restart(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                struct conn *admin, uint64_t admin_id, char *why, size_t wlen)
{
    struct coord *co = j->co;
    struct vmrec *vms[256];
    struct jrestart *rs;
    struct epoch_src src[256];
    const char *target[256];
    size_t next_host = 0;
    int n, i;

    if (j->rs != NULL) {
        snprintf(why, wlen, "job %s is already being restarted", j->name);
        return -1;
    }
    if (epoch == 0)
        epoch = j->last_epoch;
    if (epoch == 0) {
        snprintf(why, wlen, "job %s has no committed epoch to restart from",
                 j->name);
        return -1;
    }
    n = job_vms(co, j->name, vms, 256);
    if (n == 0) {
        snprintf(why, wlen, "job %s has no VM", j->name);
        return -1;
    }
    for (i = 0; i < n; i++) {
        struct vmckpt_error err;

        memset(&src[i], 0, sizeof(src[i]));
        if (catalog_epoch_get(co->cat, j->name, vms[i]->name, epoch, src_copy,
                              &src[i], &err) < 0 ||
            !src[i].found || strcmp(src[i].state, "committed") != 0) {
            snprintf(why, wlen,
                     "%s/%s has no committed image of epoch %llu (see "
                     "'vmckpt list %s')",
                     j->name, vms[i]->name, (unsigned long long)epoch, j->name);
            return -1;
        }
        if (vms[i]->spec == NULL) {
            snprintf(why, wlen, "%s/%s: no VM spec in the catalog", j->name,
                     vms[i]->name);
            return -1;
        }
        src[i].from = src[i].store_host;
        if (hosts_conn(co, vms[i]->host) != NULL &&
            strcmp(vms[i]->state, "lost") != 0) {
            target[i] = vms[i]->host; /* a survivor: in place */
            /* from its local copy when it ran there at that epoch */
            if (strcmp(src[i].host, target[i]) == 0)
                src[i].from = target[i];
        } else if (nhosts > 0) {
            size_t tries;

            target[i] = NULL;
            for (tries = 0; tries < nhosts && target[i] == NULL; tries++) {
                const char *h = hosts[next_host++ % nhosts];

                if (hosts_conn(co, h) != NULL && can_run(co, vms[i], h))
                    target[i] = h;
            }
        } else {
            target[i] = hosts_conn(co, src[i].store_host) != NULL &&
                                can_run(co, vms[i], src[i].store_host)
                            ? src[i].store_host
                            : NULL;
        }
        if (target[i] == NULL) {
            const char *hv = vms[i]->spec->hypervisor;

            snprintf(why, wlen,
                     "no up %s%shost for %s/%s (its image is on %s%s); name "
                     "one with --hosts",
                     other_hv(hv) ? hv : "", other_hv(hv) ? " " : "", j->name,
                     vms[i]->name, src[i].store_host,
                     hosts_conn(co, src[i].store_host) == NULL
                         ? ", which is down"
                     : other_hv(hv) ? ", which has no usable back end for it"
                                    : "");
            return -1;
        }
        if (hosts_conn(co, src[i].from) == NULL) {
            snprintf(why, wlen,
                     "the image of %s/%s epoch %llu is on %s, which is not up",
                     j->name, vms[i]->name, (unsigned long long)epoch,
                     src[i].from);
            return -1;
        }
    }
    if (j->cur != NULL)
        job_abort(j, "the job is being restarted");
    rs = calloc(1, sizeof(*rs));
    if (rs == NULL || (rs->v = calloc((size_t)n, sizeof(*rs->v))) == NULL) {
        free(rs);
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    rs->epoch = epoch;
    rs->n = (size_t)n;
    rs->admin = admin;
    rs->admin_id = admin_id;
    j->rs = rs;
    job_set_state(j, "restarting", NULL);
    /* the restored ranks reconnect and learn they came back from 'epoch' */
    ranks_restarted(j, epoch);
    for (i = 0; i < n; i++) {
        Vmckpt__Restore r = VMCKPT__RESTORE__INIT;
        Vmckpt__VmSpec spec = *vms[i]->spec;
        char *h = strdup(target[i]);

        snprintf(rs->v[i].vm, sizeof(rs->v[i].vm), "%s", vms[i]->name);
        snprintf(rs->v[i].host, sizeof(rs->v[i].host), "%s", target[i]);
        spec.host = (char *)target[i];
        r.job = j->name;
        r.vm = vms[i]->name;
        r.epoch = epoch;
        r.source_host = (char *)src[i].from;
        r.source_addr = (char *)hosts_store_addr(co, src[i].from);
        r.spec = &spec;
        r.start_paused = 1;
        r.qemu_stream = src[i].qemu_stream;
        rs->v[i].req = co->next_req++;
        log_info("job %s: restore %s on %s from epoch %llu (image on %s)",
                 j->name, vms[i]->name, target[i], (unsigned long long)epoch,
                 src[i].from);
        if (h != NULL) {
            free(vms[i]->spec->host);
            vms[i]->spec->host = h;
        }
        if (target[i] != vms[i]->host) /* a survivor's is its own */
            snprintf(vms[i]->host, sizeof(vms[i]->host), "%s", target[i]);
        vms_set_state(co, vms[i], "restoring");
        if (conn_send(hosts_conn(co, target[i]), VMCKPT__MSG_TYPE__MSG_RESTORE,
                      rs->v[i].req, &r) < 0) {
            rs->v[i].done = 1;
            rs->ndone++;
            rs->nfail++;
            snprintf(rs->error, sizeof(rs->error), "cannot reach %s",
                     target[i]);
        }
    }
    if (rs->ndone == rs->n)
        restart_finish(j);
    return 0;
}
