/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fakeagents: many fake agents in one process, for testing the
 * coordinator's job state machine at scale without a single guest. They
 * are not agents: no QEMU, no store, no image; each only speaks the
 * coordinator protocol the way agent/work.c, agent/ckpt.c and
 * agent/restore.c do, and counts what it was told.
 *
 *   fakeagents ADDR KEYFILE agents NHOSTS REPORT [HOLD_VM]
 *       NHOSTS connections, each authenticated with the cluster key as its
 *       own host (fake001, fake002, ...), registered and heartbeating.
 *       Their fake guests answer VmStart with Ack, CkptBegin with a
 *       converged CkptStats, CkptCut with CkptCutDone (and stay "paused"),
 *       CkptResume with CkptDurable (empty image), Restore with
 *       RestoreDone (held paused until CkptResume; before it, a VmExited
 *       of the incarnation the restore replaces, as a late report of the
 *       old copy's end), StoreRetain with Ack.
 *       On SIGTERM or SIGINT it writes what every fake guest was told to
 *       REPORT, one line per guest and epoch:
 *         HOST JOB/VM ckpt EPOCH begin B cut C resume R early E commit M
 *             abort A
 *         HOST JOB/VM restore EPOCH restore N resume R
 *       (early: a RESUME that came before the guest's CUT-DONE was sent).
 *       With HOLD_VM, the cut-done of that fake guest in the first epoch
 *       waits for SIGUSR1, and the next host sends a CkptCutDone and a
 *       CkptStats for it as if it held it, logging the coordinator's
 *       answers ("fakeagents: HOST: refused: ...").
 *
 *   fakeagents ADDR KEYFILE start-vms JOB NVMS NHOSTS
 *                                    [HOSTPREFIX HYPERVISOR [FIRST]]
 *       As an admin: VmStart for fake guests fakevm0001... of JOB, guest i
 *       on host i mod NHOSTS, all at once; exit 0 when each was acked.
 *       With HOSTPREFIX and HYPERVISOR (real agents, e.g. the simulated
 *       hosts sim001... of back end "simulated"): guests vm00001... on
 *       hosts HOSTPREFIX%03u, guest i on host FIRST + i mod NHOSTS
 *       (FIRST: 1 by default).
 *
 * Progress goes to stderr, prefixed "fakeagents: ". */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/client/client.h"
#include "lib/util/clock.h"
#include "lib/wire/auth.h"

/* What one fake guest was told in one epoch (a checkpoint or a restore). */
struct frec {
    uint64_t epoch;
    int restore; /* 0: a checkpoint epoch, 1: a restore from it */
    unsigned begin, cut, resume, early, commit, abort, restored;
};

struct fvm {
    char job[65], name[65];
    uint64_t epoch, req;   /* checkpoint in flight (0: none), its request */
    int cut_sent, cut_due; /* CUT-DONE sent; asked but held back */
    uint64_t paused_at_ns;
    uint64_t held_epoch; /* restored from it, paused until its RESUME */
    struct frec *recs;
    size_t nrecs;
};

struct fhost {
    char name[32];
    struct client *cl;
    int registered, dead;
    struct fvm *vms;
    size_t nvms;
};

static struct fhost *hosts;
static size_t nhosts;
static const char *hold_vm; /* HOLD_VM, or NULL */
static int holding = 1;     /* its first cut-done still waits */
static size_t nheld;        /* restored fake guests held paused */
static uint64_t nrestore_resumed;
static unsigned heartbeat_ms = 1000; /* as the coordinator says */
static volatile sig_atomic_t want_stop, want_release;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("fakeagents: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_release = 1;
    else
        want_stop = 1;
}

static void send_msg(struct fhost *h, int type, uint64_t id, const void *msg)
{
    struct vmckpt_error err;

    if (h->dead)
        return;
    if (wire_conn_send(&h->cl->conn, type, id, msg, &err) < 0 ||
        wire_conn_flush(&h->cl->conn, &err) < 0) {
        say("%s: send: %s", h->name, err.text);
        h->dead = 1;
    }
}

/* ---- the fake guests ----------------------------------------------------- */

static struct fvm *vm_find(struct fhost *h, const char *job, const char *name)
{
    size_t i;

    for (i = 0; i < h->nvms; i++)
        if (strcmp(h->vms[i].job, job) == 0 &&
            strcmp(h->vms[i].name, name) == 0)
            return &h->vms[i];
    return NULL;
}

static struct fvm *vm_add(struct fhost *h, const char *job, const char *name)
{
    struct fvm *v = vm_find(h, job, name), *a;

    if (v != NULL)
        return v;
    a = realloc(h->vms, (h->nvms + 1) * sizeof(*a));
    if (a == NULL)
        return NULL;
    h->vms = a;
    v = &a[h->nvms++];
    memset(v, 0, sizeof(*v));
    snprintf(v->job, sizeof(v->job), "%s", job);
    snprintf(v->name, sizeof(v->name), "%s", name);
    return v;
}

/* The count of what v was told in 'epoch' (a restore or a checkpoint). */
static struct frec *rec(struct fvm *v, uint64_t epoch, int restore)
{
    struct frec *a;
    size_t i;

    for (i = 0; i < v->nrecs; i++)
        if (v->recs[i].epoch == epoch && v->recs[i].restore == restore)
            return &v->recs[i];
    a = realloc(v->recs, (v->nrecs + 1) * sizeof(*a));
    if (a == NULL) {
        say("out of memory");
        exit(2);
    }
    v->recs = a;
    memset(&a[v->nrecs], 0, sizeof(*a));
    a[v->nrecs].epoch = epoch;
    a[v->nrecs].restore = restore;
    return &a[v->nrecs++];
}

static void send_cut_done(struct fhost *h, struct fvm *v)
{
    Vmckpt__CkptCutDone cd = VMCKPT__CKPT_CUT_DONE__INIT;

    v->cut_sent = 1;
    v->cut_due = 0;
    v->paused_at_ns = clock_wall_ns();
    cd.job = v->job;
    cd.epoch = v->epoch;
    cd.vm = v->name;
    cd.paused_at_ns = v->paused_at_ns;
    send_msg(h, VMCKPT__MSG_TYPE__MSG_CKPT_CUT_DONE, 0, &cd);
}

static void send_durable(struct fhost *h, struct fvm *v)
{
    Vmckpt__CkptDurable d = VMCKPT__CKPT_DURABLE__INIT;
    uint64_t now = clock_wall_ns();

    d.job = v->job;
    d.epoch = v->epoch;
    d.vm = v->name;
    d.store_host = "";
    d.pause_ns = now - v->paused_at_ns;
    d.rounds = 1;
    d.paused_at_ns = v->paused_at_ns;
    d.resumed_at_ns = now;
    send_msg(h, VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE, v->req, &d);
}

/* ---- requests, as agent/work.c serves them ---------------------------------
 */

static void ack(struct fhost *h, uint64_t id, const char *text)
{
    Vmckpt__Ack a = VMCKPT__ACK__INIT;

    a.text = (char *)text;
    a.tracking = "fake";
    send_msg(h, VMCKPT__MSG_TYPE__MSG_ACK, id, &a);
}

static void refuse(struct fhost *h, uint64_t id, const char *text)
{
    struct vmckpt_error err;

    if (!h->dead &&
        (wire_conn_send_error(&h->cl->conn, id,
                              VMCKPT__ERROR_CODE__ERR_NOT_FOUND, text) < 0 ||
         wire_conn_flush(&h->cl->conn, &err) < 0))
        h->dead = 1;
}

static void on_vm_start(struct fhost *h, const Vmckpt__Envelope *env)
{
    const Vmckpt__VmSpec *s = env->vm_start->spec;
    char text[200];

    if (s == NULL || vm_add(h, s->job, s->name) == NULL) {
        refuse(h, env->request_id, "fake: no spec, or out of memory");
        return;
    }
    snprintf(text, sizeof(text), "%s/%s started on %s (a fake guest)", s->job,
             s->name, h->name);
    ack(h, env->request_id, text);
}

static void on_vm_stop(struct fhost *h, const Vmckpt__Envelope *env)
{
    struct fvm *v = vm_find(h, env->vm_stop->job, env->vm_stop->vm);

    if (v == NULL) {
        refuse(h, env->request_id, "fake: no such guest here");
        return;
    }
    free(v->recs);
    *v = h->vms[--h->nvms];
    ack(h, env->request_id, "stopped");
}

static void on_begin(struct fhost *h, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptBegin *b = env->ckpt_begin;
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;
    struct fvm *v;

    if (b->n_targets != 1 ||
        (v = vm_find(h, b->job, b->targets[0]->vm)) == NULL) {
        refuse(h, env->request_id, "fake: no such guest here");
        return;
    }
    rec(v, b->epoch, 0)->begin++;
    v->epoch = b->epoch;
    v->req = env->request_id;
    v->cut_sent = v->cut_due = 0;
    st.job = v->job;
    st.epoch = v->epoch;
    st.vm = v->name;
    st.round = 1;
    st.converged = 1;
    send_msg(h, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, 0, &st);
}

/* The host after the one holding HOLD_VM claims it, as if it held it. */
static void intrude(struct fhost *h, const char *job, uint64_t epoch)
{
    Vmckpt__CkptCutDone cd = VMCKPT__CKPT_CUT_DONE__INIT;
    Vmckpt__CkptStats st = VMCKPT__CKPT_STATS__INIT;

    say("%s: claims %s/%s epoch %" PRIu64 " (held by another host)", h->name,
        job, hold_vm, epoch);
    st.job = cd.job = (char *)job;
    st.epoch = cd.epoch = epoch;
    st.vm = cd.vm = (char *)hold_vm;
    st.converged = 1;
    cd.paused_at_ns = clock_wall_ns();
    send_msg(h, VMCKPT__MSG_TYPE__MSG_CKPT_STATS, 0, &st);
    send_msg(h, VMCKPT__MSG_TYPE__MSG_CKPT_CUT_DONE, 0, &cd);
}

static void on_cut(struct fhost *h, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptCut *c = env->ckpt_cut;
    size_t i;

    for (i = 0; i < h->nvms; i++) {
        struct fvm *v = &h->vms[i];

        if (v->epoch != c->epoch || strcmp(v->job, c->job) != 0)
            continue;
        rec(v, c->epoch, 0)->cut++;
        if (v->cut_sent || v->cut_due)
            continue;
        if (hold_vm != NULL && holding && strcmp(v->name, hold_vm) == 0) {
            say("%s: cut-done of %s/%s held until SIGUSR1", h->name, v->job,
                v->name);
            v->cut_due = 1;
            continue;
        }
        send_cut_done(h, v);
    }
    if (hold_vm != NULL && holding && h > hosts && h[-1].nvms > 0 &&
        vm_find(&h[-1], c->job, hold_vm) != NULL)
        intrude(h, c->job, c->epoch);
}

static void on_resume(struct fhost *h, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptResume *r = env->ckpt_resume;
    size_t i, was = nheld;

    for (i = 0; i < h->nvms; i++) {
        struct fvm *v = &h->vms[i];

        if (strcmp(v->job, r->job) != 0)
            continue;
        if (v->epoch == r->epoch) {
            struct frec *f = rec(v, r->epoch, 0);

            f->resume++;
            if (!v->cut_sent)
                f->early++;
            else if (f->resume == 1)
                send_durable(h, v);
        } else if (v->held_epoch == r->epoch) {
            rec(v, r->epoch, 1)->resume++;
            v->held_epoch = 0;
            nheld--;
            nrestore_resumed++;
        }
    }
    if (was > 0 && nheld == 0)
        say("%" PRIu64 " restored VM(s) resumed, none held", nrestore_resumed);
}

/* CkptCommit (commit 1) or CkptAbort (commit 0): the epoch is over. */
static void on_end(struct fhost *h, const char *job, uint64_t epoch, int commit)
{
    size_t i;

    for (i = 0; i < h->nvms; i++) {
        struct fvm *v = &h->vms[i];

        if (v->epoch != epoch || strcmp(v->job, job) != 0)
            continue;
        if (commit)
            rec(v, epoch, 0)->commit++;
        else
            rec(v, epoch, 0)->abort++;
        v->epoch = 0;
    }
}

static void on_restore(struct fhost *h, const Vmckpt__Envelope *env)
{
    const Vmckpt__Restore *r = env->restore;
    Vmckpt__RestoreDone d = VMCKPT__RESTORE_DONE__INIT;
    Vmckpt__Error e = VMCKPT__ERROR__INIT;
    struct fvm *v = vm_add(h, r->job, r->vm);

    e.code = VMCKPT__ERROR_CODE__ERR_NONE;
    e.text = "";
    if (v == NULL) {
        e.code = VMCKPT__ERROR_CODE__ERR_INTERNAL;
        e.text = "fake: out of memory";
    } else {
        if (r->spec != NULL && r->spec->incarnation > 1) {
            /* the end of the copy this one replaces, reported late (after
             * the restart began), as a real agent may: ignored */
            Vmckpt__VmExited x = VMCKPT__VM_EXITED__INIT;

            x.job = r->job;
            x.vm = r->vm;
            x.exit_status = -1;
            x.reason = "fake: the replaced copy ended";
            x.incarnation = r->spec->incarnation - 1;
            send_msg(h, VMCKPT__MSG_TYPE__MSG_VM_EXITED, 0, &x);
        }
        rec(v, r->epoch, 1)->restored++;
        v->epoch = 0;
        if (r->start_paused && v->held_epoch == 0)
            nheld++;
        v->held_epoch = r->start_paused ? r->epoch : 0;
    }
    d.job = r->job;
    d.vm = r->vm;
    d.epoch = r->epoch;
    d.error = &e;
    d.tracking = "fake";
    send_msg(h, VMCKPT__MSG_TYPE__MSG_RESTORE_DONE, env->request_id, &d);
}

static void handle(struct fhost *h, const Vmckpt__Envelope *env)
{
    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_AGENT_REGISTERED:
        h->registered = 1;
        if (env->agent_registered->heartbeat_ms >= 50)
            heartbeat_ms = env->agent_registered->heartbeat_ms;
        break;
    case VMCKPT__MSG_TYPE__MSG_HEARTBEAT_ACK:
        break;
    case VMCKPT__MSG_TYPE__MSG_ERROR:
        say("%s: refused: %s", h->name, env->error->text);
        break;
    case VMCKPT__MSG_TYPE__MSG_VM_START:
        on_vm_start(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_VM_STOP:
        on_vm_stop(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN:
        on_begin(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_CUT:
        on_cut(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_RESUME:
        on_resume(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_COMMIT:
        on_end(h, env->ckpt_commit->job, env->ckpt_commit->epoch, 1);
        break;
    case VMCKPT__MSG_TYPE__MSG_CKPT_ABORT:
        on_end(h, env->ckpt_abort->job, env->ckpt_abort->epoch, 0);
        break;
    case VMCKPT__MSG_TYPE__MSG_RESTORE:
        on_restore(h, env);
        break;
    case VMCKPT__MSG_TYPE__MSG_STORE_RETAIN:
        ack(h, env->request_id, "fake store: nothing to fold");
        break;
    default:
        say("%s: coordinator sent %s, which a fake agent does not handle",
            h->name, wire_type_name(env->type));
    }
}

/* ---- the agents' loop ------------------------------------------------------
 */

static void agent_open(struct fhost *h, const char *addr,
                       const struct auth_key *key)
{
    Vmckpt__AgentRegister r = VMCKPT__AGENT_REGISTER__INIT;
    Vmckpt__Hypervisor hv = VMCKPT__HYPERVISOR__INIT, *hvp = &hv;
    struct vmckpt_error err;
    char store[64];

    h->cl =
        client_open(addr, key, VMCKPT__ROLE__ROLE_AGENT, h->name, 10000, &err);
    if (h->cl == NULL) {
        say("%s: %s", h->name, err.text);
        exit(2);
    }
    hv.name = "qemu";
    hv.version = "fake";
    hv.accel = "fake";
    hv.usable = 1;
    hv.detail = "a fake agent: no guest runs here";
    snprintf(store, sizeof(store), "fake-store.invalid:%u",
             (unsigned)(10000 + (h - hosts)));
    r.hostname = h->name;
    r.cores = r.pus = r.numa_nodes = 1;
    r.memory_bytes = 1ull << 30;
    r.n_hypervisors = 1;
    r.hypervisors = &hvp;
    r.store_addr = store;
    r.software = "fakeagents";
    send_msg(h, VMCKPT__MSG_TYPE__MSG_AGENT_REGISTER, h->cl->next_id++, &r);
}

/* Read what host h has; handle each message. */
static void agent_read(struct fhost *h)
{
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    enum wire_fault fault;
    int rc;

    if (wire_conn_fill(&h->cl->conn, &err) < 0) {
        say("%s: connection ended: %s", h->name, err.text);
        h->dead = 1;
        return;
    }
    while ((rc = wire_conn_next(&h->cl->conn, &env, &fault, &err)) == 1) {
        handle(h, env);
        wire_free(env);
    }
    if (rc < 0) {
        say("%s: bad frame: %s", h->name, err.text);
        h->dead = 1;
    }
}

static void heartbeat_all(void)
{
    static uint64_t seq;
    Vmckpt__Heartbeat hb = VMCKPT__HEARTBEAT__INIT;
    size_t i;

    hb.seq = ++seq;
    for (i = 0; i < nhosts; i++)
        if (hosts[i].registered) {
            hb.vms_running = (uint32_t)hosts[i].nvms;
            send_msg(&hosts[i], VMCKPT__MSG_TYPE__MSG_HEARTBEAT,
                     hosts[i].cl->next_id++, &hb);
        }
}

/* SIGUSR1: the held cut-done goes out. */
static void release_hold(void)
{
    size_t i, k;

    holding = 0;
    for (i = 0; i < nhosts; i++)
        for (k = 0; k < hosts[i].nvms; k++)
            if (hosts[i].vms[k].cut_due) {
                say("%s: cut-done of %s/%s released", hosts[i].name,
                    hosts[i].vms[k].job, hosts[i].vms[k].name);
                send_cut_done(&hosts[i], &hosts[i].vms[k]);
            }
}

static int write_report(const char *path)
{
    FILE *f = fopen(path, "w");
    size_t i, k, r;

    if (f == NULL) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    for (i = 0; i < nhosts; i++)
        for (k = 0; k < hosts[i].nvms; k++) {
            const struct fvm *v = &hosts[i].vms[k];

            for (r = 0; r < v->nrecs; r++) {
                const struct frec *c = &v->recs[r];

                if (c->restore)
                    fprintf(f,
                            "%s %s/%s restore %" PRIu64 " restore %u "
                            "resume %u\n",
                            hosts[i].name, v->job, v->name, c->epoch,
                            c->restored, c->resume);
                else
                    fprintf(f,
                            "%s %s/%s ckpt %" PRIu64 " begin %u cut %u "
                            "resume %u early %u commit %u abort %u\n",
                            hosts[i].name, v->job, v->name, c->epoch, c->begin,
                            c->cut, c->resume, c->early, c->commit, c->abort);
            }
        }
    return fclose(f);
}

static void loop(void)
{
    struct pollfd *pfd = calloc(nhosts, sizeof(*pfd));
    uint64_t next_hb = clock_mono_ms() + 1000;
    size_t i, nreg = 0;

    if (pfd == NULL)
        exit(2);
    while (!want_stop) {
        size_t n = 0;

        if (want_release) {
            want_release = 0;
            release_hold();
        }
        for (i = 0; i < nhosts; i++) {
            pfd[i].fd = hosts[i].dead ? -1 : hosts[i].cl->fd;
            pfd[i].events = POLLIN;
            if (wire_conn_pending(&hosts[i].cl->conn))
                pfd[i].events |= POLLOUT;
            n += hosts[i].registered;
        }
        if (n == nhosts && nreg < nhosts)
            say("%zu host(s) registered", n);
        nreg = n;
        if (poll(pfd, nhosts, 100) < 0 && errno != EINTR)
            exit(2);
        for (i = 0; i < nhosts; i++) {
            struct vmckpt_error err;

            if (pfd[i].revents & POLLOUT &&
                wire_conn_flush(&hosts[i].cl->conn, &err) < 0)
                hosts[i].dead = 1;
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                agent_read(&hosts[i]);
        }
        if (clock_mono_ms() >= next_hb) {
            heartbeat_all();
            next_hb = clock_mono_ms() + heartbeat_ms;
        }
    }
    free(pfd);
}

static int run_agents(const char *addr, const struct auth_key *key, unsigned n,
                      const char *report)
{
    Vmckpt__AgentGoodbye bye = VMCKPT__AGENT_GOODBYE__INIT;
    struct sigaction sa;
    size_t i;
    int rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    hosts = calloc(n, sizeof(*hosts));
    if (hosts == NULL)
        return 2;
    nhosts = n;
    for (i = 0; i < n; i++) {
        snprintf(hosts[i].name, sizeof(hosts[i].name), "fake%03zu", i + 1);
        agent_open(&hosts[i], addr, key);
    }
    say("%u connection(s) open", n);
    loop();
    rc = write_report(report) < 0 ? 1 : 0;
    bye.reason = "fake agents stop";
    for (i = 0; i < n; i++) {
        size_t k;

        send_msg(&hosts[i], VMCKPT__MSG_TYPE__MSG_AGENT_GOODBYE, 0, &bye);
        client_close(hosts[i].cl);
        for (k = 0; k < hosts[i].nvms; k++)
            free(hosts[i].vms[k].recs);
        free(hosts[i].vms);
    }
    free(hosts);
    say("stopped; report in %s", report);
    return rc;
}

/* ---- start-vms: the admin's side ------------------------------------------
 */

/* Where start-vms puts its guests, and of which back end. */
struct placement {
    const char *host_prefix; /* "fake" */
    const char *hypervisor;  /* "" */
    const char *vm_format;   /* "fakevm%04u" */
    unsigned first;          /* 1 */
};

static int start_vms(const char *addr, const struct auth_key *key,
                     const char *job, unsigned nvms, unsigned nh,
                     const struct placement *pl)
{
    struct vmckpt_error err;
    struct client *cl = client_open(addr, key, VMCKPT__ROLE__ROLE_ADMIN,
                                    "fake-admin", 10000, &err);
    unsigned i, acked = 0, failed = 0;

    if (cl == NULL) {
        say("%s", err.text);
        return 2;
    }
    for (i = 0; i < nvms; i++) {
        Vmckpt__VmStart s = VMCKPT__VM_START__INIT;
        Vmckpt__VmSpec spec = VMCKPT__VM_SPEC__INIT;
        char name[32], host[32];

        snprintf(name, sizeof(name), pl->vm_format, i + 1);
        snprintf(host, sizeof(host), "%.20s%03u", pl->host_prefix,
                 i % nh + pl->first);
        spec.name = name;
        spec.job = (char *)job;
        spec.host = host;
        spec.hypervisor = (char *)pl->hypervisor;
        spec.memory_mb = 64;
        spec.vcpus = 1;
        spec.kernel = "/fake/vmlinuz";
        s.spec = &spec;
        if (wire_conn_send(&cl->conn, VMCKPT__MSG_TYPE__MSG_VM_START, i + 1, &s,
                           &err) < 0 ||
            wire_conn_flush_wait(&cl->conn, 10000, &err) < 0) {
            say("vm start: %s", err.text);
            return 2;
        }
    }
    while (acked + failed < nvms) {
        Vmckpt__Envelope *env;

        if (wire_conn_recv_wait(&cl->conn, &env, 30000, &err) < 0) {
            say("after %u answer(s): %s", acked + failed, err.text);
            return 1;
        }
        if (env->type == VMCKPT__MSG_TYPE__MSG_ACK) {
            acked++;
        } else {
            failed++;
            say("vm start %" PRIu64 " refused: %s", env->request_id,
                env->type == VMCKPT__MSG_TYPE__MSG_ERROR ? env->error->text
                                                         : "unexpected reply");
        }
        wire_free(env);
    }
    client_close(cl);
    say("%u fake guest(s) of %s started on %u host(s), %u refused", acked, job,
        nh, failed);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct vmckpt_error err;
    struct auth_key key = {0};
    int rc = 2;

    if (argc < 4) {
        fprintf(
            stderr,
            "usage: fakeagents ADDR KEYFILE agents NHOSTS REPORT [HOLD_VM]\n"
            "       fakeagents ADDR KEYFILE start-vms JOB NVMS NHOSTS\n"
            "                  [HOSTPREFIX HYPERVISOR [FIRST]]\n");
        return 2;
    }
    if (auth_key_load(&key, argv[2], &err) < 0) {
        say("%s", err.text);
        return 2;
    }
    if (strcmp(argv[3], "agents") == 0 && (argc == 6 || argc == 7) &&
        atoi(argv[4]) > 0) {
        hold_vm = argc == 7 ? argv[6] : NULL;
        rc = run_agents(argv[1], &key, (unsigned)atoi(argv[4]), argv[5]);
    } else if (strcmp(argv[3], "start-vms") == 0 &&
               (argc == 7 || argc == 9 || argc == 10) && atoi(argv[5]) > 0 &&
               atoi(argv[6]) > 0 && (argc < 10 || atoi(argv[9]) > 0)) {
        struct placement pl = {"fake", "", "fakevm%04u", 1};

        if (argc >= 9) {
            pl.host_prefix = argv[7];
            pl.hypervisor = argv[8];
            pl.vm_format = "vm%05u";
        }
        if (argc == 10)
            pl.first = (unsigned)atoi(argv[9]);
        rc = start_vms(argv[1], &key, argv[4], (unsigned)atoi(argv[5]),
                       (unsigned)atoi(argv[6]), &pl);
    } else {
        say("bad arguments (run without any for the usage)");
    }
    auth_key_dispose(&key);
    return rc;
}
