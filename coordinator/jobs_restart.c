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

#include <openssl/crypto.h>

#include "datakey.h"
#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* ---- restart ------------------------------------------------------------ */

struct epoch_src {
    int found, qemu_stream, sealed;
    char state[16], host[64], store_host[64], store_addr[128];
    const char *from; /* the host whose store serves the restore */
};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t jobs_distinct(const char **names, size_t n)
{
    size_t i, k = 0;

    if (n == 0)
        return 0;
    qsort(names, n, sizeof(*names), cmp_name);
    for (i = 1; i < n; i++)
        if (strcmp(names[i], names[k]) != 0)
            names[++k] = names[i];
    return k + 1;
}

static void src_copy(const struct catalog_epoch *ce, void *arg)
{
    struct epoch_src *s = arg;

    s->found = 1;
    s->qemu_stream = ce->source && strcmp(ce->source, "qemu-migration") == 0;
    s->sealed = ce->sealed;
    snprintf(s->state, sizeof(s->state), "%s", ce->state);
    snprintf(s->host, sizeof(s->host), "%s", ce->host);
    snprintf(s->store_host, sizeof(s->store_host), "%s", ce->store_host);
    snprintf(s->store_addr, sizeof(s->store_addr), "%s", ce->store_addr);
}

/* CkptResume{job, epoch} to the agent of every distinct host of the
 * restart, however many: how many hosts, or -1 (logged) when one could
 * not be told. */
static int resume_hosts(struct job *j, size_t *nhosts)
{
    struct jrestart *rs = j->rs;
    Vmckpt__CkptResume r = VMCKPT__CKPT_RESUME__INIT;
    const char **h = calloc(rs->n + 1, sizeof(*h));
    size_t i, n;
    int rc = 0;

    *nhosts = 0;
    if (h == NULL) {
        log_err("job %s: out of memory: RESUME sent to no host", j->name);
        return -1;
    }
    for (i = 0; i < rs->n; i++)
        h[i] = rs->v[i].host;
    n = jobs_distinct(h, rs->n);
    r.job = j->name;
    r.epoch = rs->epoch;
    r.incarnation = j->incarnation;
    for (i = 0; i < n; i++) {
        struct conn *c = hosts_conn(j->co, h[i]);

        if (c == NULL || server_send(c, VMCKPT__MSG_TYPE__MSG_CKPT_RESUME,
                                     j->co->next_req++, &r) < 0) {
            log_err("job %s: RESUME after the restart could not reach host "
                    "%s; its VMs stay paused",
                    j->name, h[i]);
            snprintf(rs->error, sizeof(rs->error),
                     "RESUME could not reach host %s", h[i]);
            rc = -1;
        }
    }
    *nhosts = n;
    free(h);
    return rc;
}

/* The restart failed: say why, to the log, the job and the console. */
static void restart_failed(struct job *j)
{
    struct jrestart *rs = j->rs;
    char text[400];

    if (rs->retry && !rs->give_up && j->auto_restart)
        snprintf(text, sizeof(text),
                 "restart of %s from epoch %llu failed: %s (auto_restart "
                 "tries it again)",
                 j->name, (unsigned long long)rs->epoch, rs->error);
    else
        snprintf(text, sizeof(text),
                 "restart of %s from epoch %llu failed: %s (restored VMs "
                 "stay paused; fix and run 'vmckpt restart %s' again)",
                 j->name, (unsigned long long)rs->epoch, rs->error, j->name);
    jobs_set_state(j, "failed", text);
    if (rs->admin != NULL)
        server_error(rs->admin, rs->admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "%s", text);
}

/* Every copy of some image of rs->epoch failed: the restart goes on from
 * the job's previous committed epoch, every VM from that one (the console
 * still waits for its answer). 1 if it did (rs is gone then), 0 if there
 * is none. */
static int restart_earlier(struct job *j)
{
    struct jrestart *rs = j->rs;
    struct vmckpt_error err;
    struct conn *admin = rs->admin;
    uint64_t prev, admin_id = rs->admin_id, failed = rs->epoch;
    char note[400], why[300];

    if (catalog_job_epoch_before(j->co->cat, j->name, rs->epoch, &prev, &err) <
        0) {
        log_err("%s", err.text);
        return 0;
    }
    if (prev == 0)
        return 0;
    snprintf(note, sizeof(note), "epoch %llu could not be restored (%.200s)",
             (unsigned long long)failed, rs->error);
    log_warn("job %s: %s; every VM comes back from epoch %llu instead", j->name,
             note, (unsigned long long)prev);
    free(rs->v);
    jobs_hold_end(j, &rs->hold);
    free(rs);
    j->rs = NULL;
    if (jobs_restart(j, prev, NULL, 0, admin, admin_id, why, sizeof(why)) < 0) {
        jobs_set_state(j, "failed", why);
        if (admin != NULL)
            server_error(admin, admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                         "%s; restart from epoch %llu: %s", note,
                         (unsigned long long)prev, why);
        return 1;
    }
    if (j->rs != NULL) /* still going: its status says why */
        snprintf(j->rs->note, sizeof(j->rs->note), "%s", note);
    return 1;
}

void jobs_restart_fault(struct job *j, const char *host, const char *vm,
                        const char *why, int retry)
{
    struct jrestart *rs = j->rs;
    size_t i;
    int hit = 0;

    if (retry)
        rs->retry = 1;

    for (i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i].host, host) != 0 ||
            (vm != NULL && strcmp(rs->v[i].vm, vm) != 0) || rs->v[i].failed)
            continue;
        if (!rs->v[i].done) { /* its answer, if one comes, is ignored */
            rs->v[i].done = 1;
            rs->ndone++;
        }
        rs->v[i].failed = 1;
        rs->nfail++;
        hit = 1;
    }
    if (!hit)
        return;
    rs->fault = 1;
    snprintf(rs->error, sizeof(rs->error), "%s", why);
    log_warn("job %s: the restart from epoch %llu cannot resume its guests "
             "on %s: %s",
             j->name, (unsigned long long)rs->epoch, host, why);
    if (rs->ndone == rs->n) /* (a hold of test_hold_file ends here) */
        jobs_restart_finish(j);
}

void jobs_restart_finish(struct job *j)
{
    struct jrestart *rs = j->rs;
    size_t i, nhosts;
    char text[900];
    int again = 0;

    if (rs->nfail == 0 &&
        jobs_hold(j, &rs->hold, "restore", jobs_restart_finish))
        return;
    if (rs->nfail > 0) {
        /* an image no copy of which restores: the epoch before; a host
         * or guest lost meanwhile: this epoch again, by auto_restart */
        if (!rs->fault && restart_earlier(j))
            return;
        restart_failed(j);
        again = rs->retry && !rs->give_up;
        goto out;
    }
    /* every VM is restored and paused: the rank connections are from the
     * guests they replaced; then resume them all together */
    if (j->co->jobs->ranks != NULL)
        j->co->jobs->ranks->replaced(j);
    for (i = 0; i < rs->n; i++) {
        struct vmrec *v = vms_find(j->co, j->name, rs->v[i].vm);

        if (v != NULL) {
            v->chain_epoch = 0; /* new QEMUs: the next epoch is full */
            v->last_epoch = rs->epoch;
            vms_set_state(j->co, v, "running");
        }
    }
    if (resume_hosts(j, &nhosts) < 0) {
        restart_failed(j);
        goto out;
    }
    snprintf(text, sizeof(text),
             "job %s restarted from epoch %llu: %zu VM(s) on %zu host(s), "
             "resumed together%s%s",
             j->name, (unsigned long long)rs->epoch, rs->n, nhosts,
             rs->note[0] ? "; " : "", rs->note);
    log_info("%s", text);
    jobs_set_state(j, "running", NULL);
    if (rs->note[0] != '\0') {
        /* status shows what the restart had to give up on */
        snprintf(j->last_error, sizeof(j->last_error),
                 "restarted from epoch %llu: %.200s",
                 (unsigned long long)rs->epoch, rs->note);
        jobs_save(j);
    }
    if (rs->admin != NULL) {
        Vmckpt__Ack ack = VMCKPT__ACK__INIT;

        ack.text = text;
        server_send(rs->admin, VMCKPT__MSG_TYPE__MSG_ACK, rs->admin_id, &ack);
    }
    jobs_schedule(j);
out:
    free(rs->v);
    jobs_hold_end(j, &rs->hold);
    free(rs);
    j->rs = NULL;
    if (again)
        jobs_auto_restart(j);
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

/* Where lost VMs go when the console named hosts: the next of them, in
 * turn, that is up and can run the VM. */
struct host_turn {
    char **hosts;
    size_t n, next;
    int all;                /* every VM goes to hosts */
    int stopped;            /* jobs_restart_all: stopped VMs too */
    unsigned char used[64]; /* (all) hosts[i] already took a VM */
    unsigned char home[64]; /* (all) hosts[i] is some VM's own host */
};

/* (all) VM 'v' on its own host when listed, up and free, else on the
 * first listed host that is up and took no other VM, one that is not
 * another VM's own host first. */
static const char *pick_listed(struct coord *co, struct vmrec *v,
                               struct host_turn *turn)
{
    size_t i, pick = turn->n, other = turn->n;

    for (i = 0; i < turn->n; i++) {
        if (turn->used[i] || hosts_conn(co, turn->hosts[i]) == NULL ||
            !can_run(co, v, turn->hosts[i]))
            continue;
        if (strcmp(turn->hosts[i], v->host) == 0) {
            pick = i;
            break;
        }
        if (!turn->home[i] && pick == turn->n)
            pick = i;
        if (turn->home[i] && other == turn->n)
            other = i;
    }
    if (pick == turn->n)
        pick = other;
    if (pick == turn->n)
        return NULL;
    turn->used[pick] = 1;
    return turn->hosts[pick];
}

/* The host VM 'v' comes back on, from the image 'src' of its epoch (and
 * where that image is read from, src->from); NULL if there is none. */
static const char *pick_target(struct coord *co, struct vmrec *v,
                               struct epoch_src *src, struct host_turn *turn)
{
    src->from = src->store_host;
    if (turn->all) {
        const char *h = pick_listed(co, v, turn);

        /* the copy its host kept when it comes back there, or when the
         * peer store is away */
        if (h != NULL && strcmp(src->host, h) == 0)
            src->from = h;
        else if (hosts_conn(co, src->store_host) == NULL)
            src->from = src->host;
        return h;
    }
    if (hosts_conn(co, v->host) != NULL && strcmp(v->state, "lost") != 0) {
        /* a survivor: in place, from its local copy when it ran there at
         * that epoch */
        if (strcmp(src->host, v->host) == 0)
            src->from = v->host;
        return v->host;
    }
    if (turn->n > 0) {
        size_t tries;

        for (tries = 0; tries < turn->n; tries++) {
            const char *h = turn->hosts[turn->next++ % turn->n];

            if (hosts_conn(co, h) != NULL && can_run(co, v, h))
                return h;
        }
        return NULL;
    }
    if (hosts_conn(co, src->store_host) != NULL &&
        can_run(co, v, src->store_host))
        return src->store_host;
    /* its store is away (not merely unable to run it): the host it ran
     * on at that epoch kept a local copy of the image */
    if (hosts_conn(co, src->store_host) == NULL && src->host[0] != '\0' &&
        hosts_conn(co, src->host) != NULL && can_run(co, v, src->host)) {
        src->from = src->host;
        return src->host;
    }
    return NULL;
}

/* Find the image of VM 'v' at 'epoch' and the host it comes back on:
 * 0, or -1 with 'why'. */
static int plan_vm(struct job *j, uint64_t epoch, struct vmrec *v,
                   struct epoch_src *src, const char **target,
                   struct host_turn *turn, char *why, size_t wlen)
{
    struct coord *co = j->co;
    struct vmckpt_error err;

    memset(src, 0, sizeof(*src));
    if (catalog_epoch_get(co->cat, j->name, v->name, epoch, src_copy, src,
                          &err) < 0 ||
        !src->found || strcmp(src->state, "committed") != 0) {
        snprintf(why, wlen,
                 "%s/%s has no committed image of epoch %llu (see "
                 "'vmckpt list %s')",
                 j->name, v->name, (unsigned long long)epoch, j->name);
        return -1;
    }
    if (v->spec == NULL) {
        snprintf(why, wlen, "%s/%s: no VM spec in the catalog", j->name,
                 v->name);
        return -1;
    }
    *target = pick_target(co, v, src, turn);
    if (*target == NULL) {
        const char *hv = v->spec->hypervisor;

        snprintf(why, wlen,
                 "no up %s%shost for %s/%s (its image is on %s%s); name "
                 "one with --hosts",
                 other_hv(hv) ? hv : "", other_hv(hv) ? " " : "", j->name,
                 v->name, src->store_host,
                 hosts_conn(co, src->store_host) == NULL ? ", which is down"
                 : other_hv(hv) ? ", which has no usable back end for it"
                                : "");
        return -1;
    }
    if (hosts_conn(co, src->from) == NULL) {
        snprintf(why, wlen,
                 "the image of %s/%s epoch %llu is on %s, which is not up",
                 j->name, v->name, (unsigned long long)epoch, src->from);
        return -1;
    }
    return 0;
}

/* The restart of 'j' from 'epoch' begins: j->rs for 'n' VMs, the job
 * restarting. 0, or -1 with 'why'. */
static int restart_open(struct job *j, uint64_t epoch, size_t n,
                        struct conn *admin, uint64_t admin_id, char *why,
                        size_t wlen)
{
    struct jrestart *rs;

    if (j->cur != NULL)
        jobs_abort(j, "the job is being restarted");
    rs = calloc(1, sizeof(*rs));
    if (rs == NULL || (rs->v = calloc(n, sizeof(*rs->v))) == NULL) {
        free(rs);
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    rs->epoch = epoch;
    rs->n = n;
    rs->admin = admin;
    rs->admin_id = admin_id;
    j->rs = rs;
    /* a new incarnation: what older copies still ask for is refused */
    j->incarnation++;
    log_info("job %s: incarnation %llu", j->name,
             (unsigned long long)j->incarnation);
    jobs_set_state(j, "restarting", NULL);
    /* the restored ranks reconnect and learn they came back from 'epoch' */
    j->restored_epoch = epoch;
    return 0;
}

/* Send the restore of the i-th VM of j's restart, 'v', paused, on
 * rs->v[i].host from the image of rs->epoch in rs->v[i].from's store. */
static void send_restore(struct job *j, size_t i, struct vmrec *v)
{
    struct coord *co = j->co;
    struct jrestart *rs = j->rs;
    Vmckpt__Restore r = VMCKPT__RESTORE__INIT;
    Vmckpt__VmSpec spec = *v->spec;
    uint8_t key[DATAKEY_BYTES], ticket[TICKET_LEN];
    int rc;

    spec.host = rs->v[i].host;
    spec.incarnation = j->incarnation;
    v->spec->incarnation = j->incarnation;
    r.job = j->name;
    r.vm = v->name;
    r.epoch = rs->epoch;
    r.source_host = rs->v[i].from;
    r.source_addr = (char *)hosts_store_addr(co, rs->v[i].from);
    r.spec = &spec;
    r.start_paused = 1;
    r.qemu_stream = rs->v[i].qemu_stream;
    (void)tickets_make(co, rs->v[i].from, TICKET_FETCH, j->name, v->name,
                       rs->epoch, rs->v[i].host, ticket, &r.ticket);
    /* the key only for a sealed epoch (the agent then refuses anything
     * clear); without the secret the restore cannot open it: failed now,
     * not after the image came */
    if (rs->v[i].sealed && datakey_open_for(co, j->name, key) < 0) {
        log_err("job %s: %s epoch %llu is sealed and this coordinator has "
                "no data key (STATE_DIR/data.key)",
                j->name, v->name, (unsigned long long)rs->epoch);
        rs->v[i].done = rs->v[i].failed = 1;
        rs->ndone++;
        rs->nfail++;
        snprintf(rs->error, sizeof(rs->error),
                 "%s epoch %llu is sealed and the coordinator has no data "
                 "key",
                 v->name, (unsigned long long)rs->epoch);
        return;
    }
    if (rs->v[i].sealed) {
        r.data_key.data = key;
        r.data_key.len = sizeof(key);
    }
    rs->v[i].req = co->next_req++;
    rs->v[i].sent_ms = clock_mono_ms();
    log_info("job %s: restore %s on %s from epoch %llu (image on %s)", j->name,
             v->name, rs->v[i].host, (unsigned long long)rs->epoch,
             rs->v[i].from);
    rc = server_send(hosts_conn(co, rs->v[i].host),
                     VMCKPT__MSG_TYPE__MSG_RESTORE, rs->v[i].req, &r);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc < 0) {
        rs->v[i].done = rs->v[i].failed = 1;
        rs->ndone++;
        rs->nfail++;
        rs->fault = 1;
        snprintf(rs->error, sizeof(rs->error), "cannot reach %s",
                 rs->v[i].host);
        stats_restore(co, 0, 0);
    }
}

/* Ask the agent of 'target' to restore VM 'v' (the i-th of the restart)
 * paused, from 'src'; the VM is restoring there from now on. The other
 * copy of a job epoch's image (the store's, or the local one its host
 * kept) is noted for a retry. */
static void restore_vm(struct job *j, size_t i, struct vmrec *v,
                       const char *target, const struct epoch_src *src)
{
    struct coord *co = j->co;
    struct jrestart *rs = j->rs;
    char *h = strdup(target);

    snprintf(rs->v[i].vm, sizeof(rs->v[i].vm), "%s", v->name);
    snprintf(rs->v[i].host, sizeof(rs->v[i].host), "%s", target);
    snprintf(rs->v[i].from, sizeof(rs->v[i].from), "%s", src->from);
    snprintf(rs->v[i].alt, sizeof(rs->v[i].alt), "%s",
             strcmp(src->from, src->store_host) != 0   ? src->store_host
             : strcmp(src->host, src->store_host) != 0 ? src->host
                                                       : "");
    rs->v[i].qemu_stream = src->qemu_stream;
    rs->v[i].sealed = src->sealed;
    if (h != NULL) {
        free(v->spec->host);
        v->spec->host = h;
    }
    if (target != v->host) /* a survivor's is its own */
        snprintf(v->host, sizeof(v->host), "%s", target);
    vms_set_state(co, v, "restoring");
    send_restore(j, i, v);
}

int jobs_restart_retry(struct job *j, size_t i, const char *why)
{
    struct jrestart *rs = j->rs;
    struct vmrec *v = vms_find(j->co, j->name, rs->v[i].vm);
    size_t len = strlen(rs->note);

    if (v == NULL || v->spec == NULL || rs->v[i].alt[0] == '\0' ||
        hosts_conn(j->co, rs->v[i].alt) == NULL)
        return 0;
    log_warn("job %s: the restore of %s from %s's copy of epoch %llu "
             "failed (%s); trying the copy on %s",
             j->name, v->name, rs->v[i].from, (unsigned long long)rs->epoch,
             why, rs->v[i].alt);
    snprintf(rs->note + len, sizeof(rs->note) - len,
             "%s%s from %s's copy (%s's failed: %.200s)", len ? "; " : "",
             v->name, rs->v[i].alt, rs->v[i].from, why);
    snprintf(rs->v[i].from, sizeof(rs->v[i].from), "%s", rs->v[i].alt);
    rs->v[i].alt[0] = '\0';
    send_restore(j, i, v);
    /* a restore that could not even be sent ends the restart's wait */
    if (rs->v[i].done && rs->ndone == rs->n)
        jobs_restart_finish(j);
    return 1;
}

/* One VM of a restart: the image it comes back from, and where. */
struct restart_plan {
    struct vmrec *vm;
    struct epoch_src src;
    const char *target;
};

uint64_t jobs_lease_pending(struct job *j, char *host, size_t hlen,
                            uint64_t *last_ack)
{
    uint64_t now = clock_mono_ms(), latest = 0;
    struct vmrec *v;

    for (v = vms_first(j->co); v != NULL; v = v->next) {
        const char *st;
        uint64_t end, ack;

        if (strcmp(v->job, j->name) != 0 || strcmp(v->state, "stopped") == 0)
            continue;
        st = hosts_state(j->co, v->host);
        if (st == NULL ||
            (strcmp(st, "up") == 0 && hosts_conn(j->co, v->host) != NULL))
            continue; /* unknown host, or its agent answers for its guests */
        end = hosts_lease_end(j->co, v->host, &ack);
        if (end > now && end > latest) {
            latest = end;
            snprintf(host, hlen, "%s", v->host);
            *last_ack = ack;
        }
    }
    return latest;
}

/* Refuse a restart while a guest of 'j' may still run under a lease. */
static int lease_check(struct job *j, char *why, size_t wlen)
{
    char host[64];
    uint64_t ack, end = jobs_lease_pending(j, host, sizeof(host), &ack);

    if (end == 0)
        return 0;
    if (hosts_fencing(j->co, host)) {
        snprintf(why, wlen,
                 "host %s may still run guests of job %s: its fence_command "
                 "runs (at most %llu ms more); wait, or 'vmckpt fence %s' if "
                 "it is surely down",
                 host, j->name, (unsigned long long)(end - clock_mono_ms()),
                 host);
        return -1;
    }
    snprintf(why, wlen,
             "host %s may still run guests of job %s: its lease ends in %llu "
             "ms; wait, or 'vmckpt fence %s' if it is surely down",
             host, j->name, (unsigned long long)(end - clock_mono_ms()), host);
    return -1;
}

/* Say, for each host of j's guests that is not up, why restoring its
 * guests elsewhere is safe now: its lease ended, or it was fenced by hand. */
static void log_leases(struct job *j)
{
    uint64_t now = clock_mono_ms(), ack, end;
    unsigned lease = hosts_lease_ms(j->co);
    char seen[8][64];
    size_t nseen = 0, i;
    struct vmrec *v;

    for (v = vms_first(j->co); v != NULL; v = v->next) {
        const char *st;

        if (strcmp(v->job, j->name) != 0 || strcmp(v->state, "stopped") == 0)
            continue;
        st = hosts_state(j->co, v->host);
        if (st == NULL ||
            (strcmp(st, "up") == 0 && hosts_conn(j->co, v->host) != NULL))
            continue;
        for (i = 0; i < nseen && strcmp(seen[i], v->host) != 0; i++)
            ;
        if (i < nseen)
            continue;
        if (nseen < 8)
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", v->host);
        end = hosts_lease_end(j->co, v->host, &ack);
        if (end == 0)
            log_info("job %s: host %s (%s) was fenced (by hand or its "
                     "fence_command)",
                     j->name, v->host, st);
        else
            log_info("job %s: host %s (%s): its lease ended %llu ms ago "
                     "(last granted %llu ms ago, lease %u ms, margin %llu "
                     "ms); its guests may run elsewhere",
                     j->name, v->host, st, (unsigned long long)(now - end),
                     (unsigned long long)(now - ack), lease,
                     (unsigned long long)hosts_lease_margin_ms(lease));
    }
}

/* The VMs of job 'j' a restart brings back: those not stopped, or (all)
 * every one; the count, or -1 (out of memory). */
static int restart_vms(struct job *j, int all, struct vmrec ***out)
{
    struct vmrec *v, **a;
    size_t n = 0;

    if (!all)
        return jobs_vms(j->co, j->name, out);
    for (v = vms_first(j->co); v != NULL; v = v->next)
        n += strcmp(v->job, j->name) == 0;
    *out = a = calloc(n + 1, sizeof(*a));
    if (a == NULL)
        return -1;
    n = 0;
    for (v = vms_first(j->co); v != NULL; v = v->next)
        if (strcmp(v->job, j->name) == 0)
            a[n++] = v;
    return (int)n;
}

static int restart(struct job *j, uint64_t epoch, struct host_turn *turn,
                   struct conn *admin, uint64_t admin_id, char *why,
                   size_t wlen)
{
    struct vmrec **vms = NULL;
    struct restart_plan *plan = NULL;
    int n, i, rc = -1;

    if (j->rs != NULL) {
        snprintf(why, wlen, "job %s is already being restarted", j->name);
        return -1;
    }
    if (lease_check(j, why, wlen) < 0)
        return -1;
    if (epoch == 0)
        epoch = j->last_epoch;
    if (epoch == 0) {
        snprintf(why, wlen, "job %s has no committed epoch to restart from",
                 j->name);
        return -1;
    }
    n = restart_vms(j, turn->stopped, &vms);
    if (n > 0)
        plan = calloc((size_t)n, sizeof(*plan));
    if (n < 0 || (n > 0 && plan == NULL)) {
        snprintf(why, wlen, "out of memory");
        goto out;
    }
    if (n == 0) {
        snprintf(why, wlen, "job %s has no VM", j->name);
        goto out;
    }
    for (i = 0; i < n; i++) {
        plan[i].vm = vms[i];
        if (plan_vm(j, epoch, vms[i], &plan[i].src, &plan[i].target, turn, why,
                    wlen) < 0)
            goto out;
    }
    if (restart_open(j, epoch, (size_t)n, admin, admin_id, why, wlen) < 0)
        goto out;
    log_leases(j);
    /* the RESTOREs of a host in one write (a host takes several VMs) */
    server_cork(j->co);
    for (i = 0; i < n; i++)
        restore_vm(j, (size_t)i, plan[i].vm, plan[i].target, &plan[i].src);
    server_uncork(j->co);
    rc = 0;
    if (j->rs->ndone == j->rs->n)
        jobs_restart_finish(j);
out:
    free(plan);
    free(vms);
    return rc;
}

int jobs_restart(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                 struct conn *admin, uint64_t admin_id, char *why, size_t wlen)
{
    struct host_turn turn = {.hosts = hosts, .n = nhosts};

    return restart(j, epoch, &turn, admin, admin_id, why, wlen);
}

static int restart_on(struct job *j, uint64_t epoch, char **hosts,
                      size_t nhosts, int stopped, struct conn *admin,
                      uint64_t admin_id, char *why, size_t wlen)
{
    struct host_turn turn = {
        .hosts = hosts, .n = nhosts, .all = 1, .stopped = stopped};
    struct vmrec *v;
    size_t i;

    if (nhosts == 0 || nhosts > sizeof(turn.used)) {
        snprintf(why, wlen, "a restart of every VM names 1 to %zu hosts",
                 sizeof(turn.used));
        return -1;
    }
    for (v = vms_first(j->co); v != NULL; v = v->next)
        for (i = 0; i < nhosts && strcmp(v->job, j->name) == 0; i++)
            if (strcmp(hosts[i], v->host) == 0)
                turn.home[i] = 1;
    return restart(j, epoch, &turn, admin, admin_id, why, wlen);
}

int jobs_restart_all(struct job *j, uint64_t epoch, char **hosts, size_t nhosts,
                     struct conn *admin, uint64_t admin_id, char *why,
                     size_t wlen)
{
    return restart_on(j, epoch, hosts, nhosts, 1, admin, admin_id, why, wlen);
}

int jobs_restart_on(struct job *j, char **hosts, size_t nhosts, char *why,
                    size_t wlen)
{
    return restart_on(j, 0, hosts, nhosts, 0, NULL, 0, why, wlen);
}
