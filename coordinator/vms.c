/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guests and the single-VM checkpoint and restore paths. An admin request
 * that needs an agent is relayed: the coordinator sends its own request to
 * the agent and answers the admin when the agent answers (or fails).
 *
 *   admin ckpt-begin(vm) -> epoch e, store = next up host after the VM's
 *   agent: ckpt-begin(e, parent, store) ... ckpt-stats* ... ckpt-cut-done
 *   agent: ckpt-durable -> catalog: e committed -> admin: ack
 *   agent: ckpt-abort   -> catalog: e aborted   -> admin: error
 *
 * Every epoch state change goes through epoch_set_state(), which logs
 * old -> new and writes the catalog. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "catalog.h"
#include "datakey.h"
#include "hosts.h"
#include "stats.h"
#include "vms.h"
#include "vms_int.h"
#include "tickets.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

enum pending_kind { P_START, P_STOP, P_CKPT, P_RESTORE };

struct pending {
    uint64_t id; /* of our message to the agent */
    struct conn *agent;
    struct conn *admin; /* NULL once the admin went away */
    uint64_t admin_id;
    enum pending_kind kind;
    char job[65], vm[65], host[64], store_host[64], store_addr[128];
    uint64_t epoch, parent;
    int sealed; /* a checkpoint whose BEGIN carried the data key */
    int64_t started;
    uint64_t sent_ms; /* monotonic, when relayed */
    struct pending *next;
};

static void conn_gone(struct coord *co, struct conn *c);

static uint64_t job_incarnation(struct coord *co, const char *job, int bump)
{
    return co->vms->epoch.incarnation != NULL
               ? co->vms->epoch.incarnation(co, job, bump)
               : 0;
}

uint64_t vms_incarnation_of(const struct vmrec *v)
{
    return v->spec != NULL ? v->spec->incarnation : 0;
}

int vms_create(struct coord *co, unsigned keep_epochs)
{
    struct vms *vs = calloc(1, sizeof(*vs));

    if (vs == NULL)
        return -1;
    vs->keep_epochs = keep_epochs;
    co->vms = vs;
    vms_rows_init(co);
    return server_on_close(co, conn_gone);
}

void vms_set_epoch_hooks(struct coord *co, const struct vms_epoch_hooks *h)
{
    co->vms->epoch = *h;
}

void vms_set_cmdline_hook(struct coord *co, vms_cmdline_fn *fn)
{
    co->vms->cmdline = fn;
}

void vms_set_exited_hook(struct coord *co, vms_exited_fn *fn)
{
    co->vms->exited = fn;
}

struct vmrec *vms_first(struct coord *co)
{
    return co->vms->list;
}

void vms_set_state(struct coord *co, struct vmrec *v, const char *state)
{
    if (strcmp(v->state, state) != 0)
        log_info("vm %s/%s: %s -> %s (on %s)", v->job, v->name,
                 v->state[0] ? v->state : "new", state, v->host);
    snprintf(v->state, sizeof(v->state), "%s", state);
    if (strcmp(state, "exited") != 0)
        v->exit_reason[0] = '\0';
    vms_save(co, v);
}

/* Guest 'v' ended without anyone asking: "exited" with the reason shown
 * by 'vmckpt vm list', then the layer above is told. */
void vms_exited_now(struct coord *co, struct vmrec *v, const char *why)
{
    log_warn("vm %s/%s on %s ended by itself: %s", v->job, v->name, v->host,
             why);
    vms_set_state(co, v, "exited");
    snprintf(v->exit_reason, sizeof(v->exit_reason), "%s", why);
    v->phase[0] = '\0';
    v->chain_epoch = 0; /* its dirty tracking ended with it */
    if (co->vms->exited != NULL)
        co->vms->exited(co, v, why);
}

/* Whether guest 'v' is believed to run (or to be about to): only such a
 * guest can end by itself. */
int vms_may_run(const struct vmrec *v)
{
    static const char *const gone[] = {"stopped", "exited", "lost"};
    size_t i;

    for (i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (strcmp(v->state, gone[i]) == 0)
            return 0;
    return 1;
}

static struct vmrec *vm_add(struct coord *co, const char *job, const char *name)
{
    struct vmrec *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return NULL;
    snprintf(v->job, sizeof(v->job), "%s", job);
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->next = co->vms->list;
    co->vms->list = v;
    if (vms_index_add(co->vms, v) < 0) {
        co->vms->list = v->next;
        free(v);
        return NULL;
    }
    return v;
}

static int load_one(const struct catalog_vm *cv, void *arg)
{
    struct coord *co = arg;
    struct vmrec *v = vm_add(co, cv->job, cv->name);

    if (v == NULL)
        return -1;
    snprintf(v->host, sizeof(v->host), "%s", cv->host);
    /* what runs where is unknown until the agents say so again; a guest
     * stopped or ended by itself stays so (a restarted coordinator must not
     * take its absence for a new exit and restart its job once more) */
    snprintf(v->state, sizeof(v->state), "%s",
             strcmp(cv->state, "stopped") == 0 ||
                     strcmp(cv->state, "exited") == 0
                 ? cv->state
                 : "unknown");
    v->last_epoch = cv->last_epoch;
    if (cv->spec_len > 0)
        v->spec = vmckpt__vm_spec__unpack(NULL, cv->spec_len, cv->spec);
    return 0;
}

int vms_load(struct coord *co, struct vmckpt_error *err)
{
    return catalog_vm_each(co->cat, load_one, co, err);
}

void vms_destroy(struct coord *co)
{
    struct vms *vs = co->vms;

    if (vs == NULL)
        return;
    vms_rows_flush(co);
    if (co->loop != NULL)
        ev_timer_stop(co->loop, &vs->flush);
    free(vs->dirty);
    while (vs->list != NULL) {
        struct vmrec *v = vs->list;

        vs->list = v->next;
        if (v->spec != NULL)
            wire_free_message(v->spec);
        free(v);
    }
    free(vs->buckets);
    while (vs->pending != NULL) {
        struct pending *p = vs->pending;

        vs->pending = p->next;
        free(p);
    }
    free(vs);
    co->vms = NULL;
}

void vms_note_tracking(struct vmrec *v, int qemu_stream)
{
    /* a QEMU guest whose checkpoint used QEMU's stream has no tracking;
     * otherwise what its agent said at start or restore stands */
    if (qemu_stream)
        snprintf(v->tracking, sizeof(v->tracking), "qemu-migration");
    else if (v->tracking[0] == '\0' ||
             strcmp(v->tracking, "qemu-migration") == 0)
        snprintf(v->tracking, sizeof(v->tracking), "uffd-wp");
}

const char *vms_source(struct coord *co, const char *job, const char *vm,
                       int qemu_stream)
{
    const struct vmrec *v = vms_find(co, job, vm);

    if (qemu_stream)
        return "qemu-migration";
    /* the tracking its agent reported: "uffd-wp" or "xen-logdirty" */
    return v != NULL && v->tracking[0] != '\0' ? v->tracking : "uffd-wp";
}

static void epoch_set_state(struct coord *co, const struct pending *p,
                            const char *old, const char *state,
                            const Vmckpt__CkptDurable *d, const char *note)
{
    struct catalog_epoch e;
    struct vmckpt_error err;

    memset(&e, 0, sizeof(e));
    e.job = p->job;
    e.vm = p->vm;
    e.epoch = p->epoch;
    e.parent = d ? d->parent : p->parent;
    e.state = state;
    e.host = p->host;
    e.store_host = p->store_host;
    e.store_addr = p->store_addr;
    e.started_at = p->started;
    e.ended_at =
        strcmp(state, "running") ? (int64_t)(clock_wall_ms() / 1000) : 0;
    e.note = note;
    e.source = vms_source(co, p->job, p->vm, d != NULL && d->qemu_stream);
    e.sealed = d != NULL ? d->sealed : p->sealed; /* what the agent did */
    if (d != NULL) {
        e.pages = d->pages;
        e.wire_bytes = d->wire_bytes;
        e.disk_bytes = d->bytes;
        e.pause_us = d->pause_ns / 1000;
        e.total_ms = d->total_ms;
        e.rounds = d->rounds;
    }
    log_info("epoch %s/%s %llu: %s -> %s%s%s", p->job, p->vm,
             (unsigned long long)p->epoch, old, state, note ? ": " : "",
             note ? note : "");
    if (catalog_epoch_put(co->cat, &e, &err) < 0)
        log_err("%s", err.text);
    else
        stats_vm_epoch(co, state, e.pause_us, e.wire_bytes, e.disk_bytes);
}

/* Send 'type' to the agent of 'host' and remember who to answer. */
static struct pending *relay(struct conn *admin, uint64_t admin_id,
                             const char *host, enum pending_kind kind, int type,
                             const void *payload)
{
    struct coord *co = admin->co;
    struct conn *agent = hosts_conn(co, host);
    struct pending *p;

    if (agent == NULL) {
        server_error(admin, admin_id, VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                     "host %s is not up (see 'vmckpt hosts')", host);
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        server_error(admin, admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "out of memory");
        return NULL;
    }
    p->id = co->next_req++;
    p->agent = agent;
    p->admin = admin;
    p->admin_id = admin_id;
    p->kind = kind;
    snprintf(p->host, sizeof(p->host), "%s", host);
    p->started = (int64_t)(clock_wall_ms() / 1000);
    p->sent_ms = clock_mono_ms();
    if (server_send(agent, type, p->id, payload) < 0) {
        free(p);
        server_error(admin, admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "cannot reach the agent of %s", host);
        return NULL;
    }
    p->next = co->vms->pending;
    co->vms->pending = p;
    return p;
}

static void answer_ack(struct pending *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void answer_ack(struct pending *p, const char *fmt, ...)
{
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;
    char text[512];
    va_list ap;

    if (p->admin == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    ack.text = text;
    server_send(p->admin, VMCKPT__MSG_TYPE__MSG_ACK, p->admin_id, &ack);
}

int vms_on_start(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__VmSpec *s = env->vm_start->spec;
    Vmckpt__VmStart start = *env->vm_start;
    Vmckpt__VmSpec spec;
    struct vmrec *v;
    struct pending *p;
    const char *token;
    char *cmdline, why[512];
    Vmckpt__ErrorCode code;

    code = vms_check_spec(c->co, s, why, sizeof(why));
    if (code != VMCKPT__ERROR_CODE__ERR_NONE)
        return server_error(c, env->request_id, code, "%s", why);
    v = vms_find(c->co, s->job, s->name);
    if (v != NULL && strcmp(v->state, "running") == 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_BUSY,
                            "%s/%s is already running on %s", s->job, s->name,
                            v->host);
    /* the guest's kernel command line tells its MPI ranks how to reach
     * the ranks' endpoint; the job's token goes beside it */
    spec = *s;
    token = "";
    cmdline = c->co->vms->cmdline != NULL
                  ? c->co->vms->cmdline(c->co, s->job, s->cmdline, &token)
                  : strdup(s->cmdline);
    if (cmdline == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
    spec.cmdline = cmdline;
    spec.rank_token = (char *)token;
    spec.incarnation = job_incarnation(c->co, s->job, 0);
    start.spec = &spec;
    p = relay(c, env->request_id, s->host, P_START,
              VMCKPT__MSG_TYPE__MSG_VM_START, &start);
    if (p == NULL) {
        free(cmdline);
        return 0;
    }
    snprintf(p->job, sizeof(p->job), "%s", s->job);
    snprintf(p->vm, sizeof(p->vm), "%s", s->name);
    if (v == NULL && (v = vm_add(c->co, s->job, s->name)) == NULL) {
        free(cmdline);
        return 0;
    }
    if (v->spec != NULL)
        wire_free_message(v->spec);
    v->spec = wire_copy(&spec);
    free(cmdline);
    snprintf(v->host, sizeof(v->host), "%s", s->host);
    vms_set_state(c->co, v, "starting");
    return 0;
}

int vms_on_stop(struct conn *c, const Vmckpt__Envelope *env)
{
    struct vmrec *v = vms_find(c->co, env->vm_stop->job, env->vm_stop->vm);
    struct pending *p;

    if (v == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND, "no VM %s/%s",
                            env->vm_stop->job, env->vm_stop->vm);
    p = relay(c, env->request_id, v->host, P_STOP,
              VMCKPT__MSG_TYPE__MSG_VM_STOP, env->vm_stop);
    if (p != NULL) {
        snprintf(p->job, sizeof(p->job), "%s", v->job);
        snprintf(p->vm, sizeof(p->vm), "%s", v->name);
    }
    return 0;
}

int vms_on_query(struct conn *c, const Vmckpt__Envelope *env)
{
    Vmckpt__VmsReply reply = VMCKPT__VMS_REPLY__INIT;
    Vmckpt__VmInfo *infos, **ptrs;
    struct vmrec *v;
    size_t n = 0, i = 0;
    int rc;

    for (v = c->co->vms->list; v != NULL; v = v->next)
        n++;
    infos = calloc(n ? n : 1, sizeof(*infos));
    ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    if (infos == NULL || ptrs == NULL) {
        free(infos);
        free(ptrs);
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
    }
    for (v = c->co->vms->list; v != NULL; v = v->next) {
        Vmckpt__VmInfo *vi = &infos[i];

        if (env->vms_query->job[0] && strcmp(env->vms_query->job, v->job))
            continue;
        vmckpt__vm_info__init(vi);
        vi->job = v->job;
        vi->vm = v->name;
        vi->host = v->host;
        vi->state = v->state;
        vi->phase = v->phase;
        vi->round = v->round;
        vi->pages_left = v->pages_left;
        vi->dirty_pages_per_s = v->dirty_rate;
        vi->bytes_per_s = v->throughput;
        vi->last_epoch = v->last_epoch;
        vi->last_pause_us = v->last_pause_us;
        vi->tracking = v->tracking[0] ? v->tracking : "unknown";
        vi->memory_mb = v->spec ? v->spec->memory_mb : 0;
        vi->ip = v->spec ? v->spec->ip : "";
        vi->bytes_sent = v->bytes_sent;
        vi->exit_reason = v->exit_reason;
        ptrs[i++] = vi;
    }
    reply.n_vms = i;
    reply.vms = ptrs;
    rc = server_send(c, VMCKPT__MSG_TYPE__MSG_VMS_REPLY, env->request_id,
                     &reply);
    free(infos);
    free(ptrs);
    return rc;
}

int vms_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    const Vmckpt__CkptBegin *b = env->ckpt_begin;
    Vmckpt__CkptBegin out = VMCKPT__CKPT_BEGIN__INIT;
    Vmckpt__PeerTarget t = VMCKPT__PEER_TARGET__INIT, *tp = &t;
    uint8_t key[DATAKEY_BYTES], ticket[TICKET_LEN];
    int sealed;
    struct pending *p, *q;
    struct vmrec *v;
    const char *store;

    if (b->n_targets != 1 || b->targets[0]->vm[0] == '\0')
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "checkpoint: name the job, or one VM of it");
    v = vms_find(co, b->job, b->targets[0]->vm);
    if (v == NULL || strcmp(v->state, "running") != 0)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                            "%s/%s is not running (see 'vmckpt vm list')",
                            b->job, b->targets[0]->vm);
    for (q = co->vms->pending; q != NULL; q = q->next)
        if (q->kind == P_CKPT && strcmp(q->job, v->job) == 0 &&
            strcmp(q->vm, v->name) == 0)
            return server_error(c, env->request_id,
                                VMCKPT__ERROR_CODE__ERR_BUSY,
                                "%s/%s: epoch %llu is in progress", v->job,
                                v->name, (unsigned long long)q->epoch);
    /* the store: a named host, or the next up host after the VM's (ring) */
    store = b->targets[0]->host[0] ? b->targets[0]->host
                                   : hosts_next_up(co, v->host);
    if (store == NULL || strcmp(store, v->host) == 0 ||
        hosts_conn(co, store) == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                            "no peer host is up to store %s/%s (its image "
                            "must live on another host)",
                            v->job, v->name);
    out.job = v->job;
    {
        struct vmckpt_error cerr;

        /* never a number that might be in use already */
        if (catalog_epoch_next(co->cat, v->job, &out.epoch, &cerr) < 0)
            return server_error(
                c, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                "checkpoint of %s/%s refused: %s", v->job, v->name, cerr.text);
    }
    t.vm = v->name;
    t.host = (char *)store;
    t.store_addr = (char *)hosts_store_addr(co, store);
    /* a delta only on the store that holds its parent */
    t.parent = vms_parent_for(v, store, co->seal_images);
    t.incarnation = vms_incarnation_of(v);
    (void)tickets_make(co, store, TICKET_WRITE, v->job, v->name, out.epoch,
                       v->host, ticket, &t.ticket);
    out.n_targets = 1;
    out.targets = &tp;
    out.mode = b->mode;
    out.compress = b->compress;
    out.streams = b->streams;
    out.max_precopy_ms = b->max_precopy_ms;
    sealed = datakey_for(co, v->job, key);
    if (sealed < 0)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL,
                            "checkpoint of %s/%s refused: its data key "
                            "cannot be derived",
                            v->job, v->name);
    if (sealed) {
        out.data_key.data = key;
        out.data_key.len = sizeof(key);
    }
    p = relay(c, env->request_id, v->host, P_CKPT,
              VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN, &out);
    OPENSSL_cleanse(key, sizeof(key));
    if (p == NULL)
        return 0;
    snprintf(p->job, sizeof(p->job), "%s", v->job);
    snprintf(p->vm, sizeof(p->vm), "%s", v->name);
    snprintf(p->store_host, sizeof(p->store_host), "%s", store);
    snprintf(p->store_addr, sizeof(p->store_addr), "%s", t.store_addr);
    p->epoch = out.epoch;
    p->parent = t.parent;
    p->sealed = sealed;
    snprintf(v->phase, sizeof(v->phase), "precopy");
    v->round = 0;
    epoch_set_state(co, p, "new", "running", NULL, NULL);
    return 0;
}

struct epoch_ref {
    uint64_t epoch;
    char store_host[64], store_addr[128], state[16];
    int qemu_stream, sealed;
};

static void epoch_ref_copy(const struct catalog_epoch *ce, void *arg)
{
    struct epoch_ref *e = arg;

    e->epoch = ce->epoch;
    e->qemu_stream = ce->source && strcmp(ce->source, "qemu-migration") == 0;
    e->sealed = ce->sealed;
    snprintf(e->store_host, sizeof(e->store_host), "%s", ce->store_host);
    snprintf(e->store_addr, sizeof(e->store_addr), "%s", ce->store_addr);
    snprintf(e->state, sizeof(e->state), "%s", ce->state);
}

int vms_on_restore(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    const Vmckpt__Restore *r = env->restore;
    Vmckpt__Restore out = VMCKPT__RESTORE__INIT;
    uint8_t key[DATAKEY_BYTES], ticket[TICKET_LEN];
    Vmckpt__VmSpec spec;
    struct epoch_ref e;
    struct vmckpt_error err;
    struct pending *p;
    struct vmrec *v = vms_find(co, r->job, r->vm);
    char *host;
    int rc;

    memset(&e, 0, sizeof(e));
    if (v == NULL || v->spec == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND, "no VM %s/%s",
                            r->job, r->vm);
    if (r->target_host[0] == '\0')
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "restore: name the host to restore on");
    rc = catalog_epoch_get(co->cat, r->job, r->vm, r->epoch, epoch_ref_copy, &e,
                           &err);
    if (rc < 0)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "%s", err.text);
    if (rc == 0 || strcmp(e.state, "committed") != 0)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                            "%s/%s: no committed epoch%s (see 'vmckpt vm "
                            "list')",
                            r->job, r->vm, r->epoch ? " of that number" : "");
    if (strcmp(e.store_host, r->target_host) != 0 &&
        hosts_ticket_key(co, e.store_host) == NULL)
        return server_error(
            c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
            "%s/%s epoch %llu is in the store of %s, which "
            "has not registered since this coordinator "
            "started: it cannot be asked for it yet",
            v->job, v->name, (unsigned long long)e.epoch, e.store_host);
    spec = *v->spec;
    spec.host = (char *)r->target_host;
    /* a new copy: the one it replaces (wherever it is) is stale */
    spec.incarnation = job_incarnation(co, v->job, 1);
    v->spec->incarnation = spec.incarnation;
    out.job = v->job;
    out.vm = v->name;
    out.epoch = e.epoch;
    out.source_host = e.store_host;
    out.source_addr = (char *)hosts_store_addr(co, e.store_host);
    if (out.source_addr[0] == '\0')
        out.source_addr = e.store_addr;
    out.spec = &spec;
    out.qemu_stream = e.qemu_stream;
    (void)tickets_make(co, out.source_host, TICKET_FETCH, v->job, v->name,
                       e.epoch, r->target_host, ticket, &out.ticket);
    /* the key only for a sealed epoch: with it the agent refuses
     * anything clear */
    if (e.sealed && datakey_open_for(co, v->job, key) < 0)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL,
                            "%s/%s epoch %llu is sealed and this coordinator "
                            "has no data key (STATE_DIR/data.key)",
                            v->job, v->name, (unsigned long long)e.epoch);
    if (e.sealed) {
        out.data_key.data = key;
        out.data_key.len = sizeof(key);
    }
    p = relay(c, env->request_id, r->target_host, P_RESTORE,
              VMCKPT__MSG_TYPE__MSG_RESTORE, &out);
    OPENSSL_cleanse(key, sizeof(key));
    if (p == NULL)
        return 0;
    snprintf(p->job, sizeof(p->job), "%s", v->job);
    snprintf(p->vm, sizeof(p->vm), "%s", v->name);
    p->epoch = e.epoch;
    host = strdup(r->target_host);
    if (host != NULL) {
        free(v->spec->host);
        v->spec->host = host;
    }
    snprintf(v->host, sizeof(v->host), "%s", r->target_host);
    vms_set_state(co, v, "restoring");
    return 0;
}

/* Retention's messages to stores: (host, VM, keep_from), gathered from
 * the catalog, then one StoreRetain per host. */
struct retain_item {
    char host[64], vm[65];
    uint64_t keep_from;
};

struct retain_set {
    struct retain_item *v;
    size_t n, cap;
    int oom;
};

static void retain_add(const char *vm, uint64_t keep_from, const char *host,
                       void *arg)
{
    struct retain_set *s = arg;

    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct retain_item *v = realloc(s->v, cap * sizeof(*v));

        if (v == NULL) {
            s->oom = 1;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    snprintf(s->v[s->n].host, sizeof(s->v[0].host), "%s", host);
    snprintf(s->v[s->n].vm, sizeof(s->v[0].vm), "%s", vm);
    s->v[s->n++].keep_from = keep_from;
}

static int item_cmp(const void *a, const void *b)
{
    const struct retain_item *x = a, *y = b;
    int c = strcmp(x->host, y->host);

    return c != 0 ? c : strcmp(x->vm, y->vm);
}

/* (a frame holds them with room to spare: names are at most 64 bytes) */
#define RETAIN_PER_MSG 2048

static void retain_send(struct coord *co, const char *job, const char *host,
                        char **vms, uint64_t *keep, size_t n)
{
    Vmckpt__StoreRetain sr = VMCKPT__STORE_RETAIN__INIT;
    struct conn *agent = hosts_conn(co, host);

    if (agent == NULL) {
        log_warn("retention: store %s is not up; its old epochs of %zu VM(s) "
                 "of %s stay until it is",
                 host, n, job);
        return;
    }
    sr.job = (char *)job;
    sr.n_vms = n;
    sr.vms = vms;
    sr.n_keep_froms = n;
    sr.keep_froms = keep;
    (void)server_send(agent, VMCKPT__MSG_TYPE__MSG_STORE_RETAIN, co->next_req++,
                      &sr);
}

static void retain_flush(struct coord *co, const char *job,
                         struct retain_set *s)
{
    char *vms[RETAIN_PER_MSG];
    uint64_t keep[RETAIN_PER_MSG];
    size_t i, n = 0;

    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof(s->v[0]), item_cmp);
    for (i = 0; i < s->n; i++) {
        if (i > 0 && item_cmp(&s->v[i], &s->v[i - 1]) == 0)
            continue; /* the same store twice for a VM */
        if (n > 0 && (strcmp(s->v[i].host, s->v[i - 1].host) != 0 ||
                      n == RETAIN_PER_MSG)) {
            retain_send(co, job, s->v[i - 1].host, vms, keep, n);
            n = 0;
        }
        vms[n] = s->v[i].vm;
        keep[n++] = s->v[i].keep_from;
    }
    if (n > 0)
        retain_send(co, job, s->v[s->n - 1].host, vms, keep, n);
}

unsigned vms_keep_epochs(struct coord *co)
{
    return co->vms->keep_epochs;
}

void vms_retain_some(struct coord *co, const char *job, const char *vm,
                     uint64_t epoch)
{
    struct retain_set s = {0};
    struct vmckpt_error err;
    int keep = co->vms->epoch.keep != NULL ? co->vms->epoch.keep(co, job) : -1;
    unsigned k = keep < 0 ? co->vms->keep_epochs : (unsigned)keep;

    if (k == 0)
        return;
    if (catalog_retain(co->cat, job, vm, epoch, k, retain_add, &s, &err) < 0)
        log_err("retention: %s", err.text);
    else if (s.oom)
        log_err("retention of %s: out of memory; old epochs stay until the "
                "next commit",
                job);
    else
        retain_flush(co, job, &s);
    /* (at every commit: thousands of lines for a large job) */
    log_debug("retention: %s%s%s keeps its newest %u epoch(s): %zu store "
              "message(s)",
              job, vm != NULL ? "/" : "", vm != NULL ? vm : "", k, s.n);
    free(s.v);
}

static struct pending *take_pending(struct coord *co, struct conn *agent,
                                    uint64_t id)
{
    struct pending **pp, *p;

    for (pp = &co->vms->pending; (p = *pp) != NULL; pp = &p->next)
        if (p->agent == agent && p->id == id) {
            *pp = p->next;
            return p;
        }
    return NULL;
}

static void forward_error(struct pending *p, const char *text)
{
    if (p->admin != NULL)
        server_error(p->admin, p->admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                     "%s", text);
}

int vms_on_agent_reply(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    struct pending *p = take_pending(co, c, env->request_id);
    struct vmrec *v;
    const char *text;

    if (p == NULL) {
        if (co->vms->epoch.reply != NULL && co->vms->epoch.reply(c, env))
            return 0;
        if (env->type == VMCKPT__MSG_TYPE__MSG_ERROR)
            log_warn("agent %s: %s", c->auth.peer_name, env->error->text);
        return 0;
    }
    v = vms_find(co, p->job, p->vm);
    switch (p->kind) {
    case P_START:
        if (env->type == VMCKPT__MSG_TYPE__MSG_ACK) {
            if (v != NULL) {
                v->chain_epoch = 0;
                snprintf(v->tracking, sizeof(v->tracking), "%s",
                         env->ack->tracking);
                vms_set_state(co, v, "running");
            }
            answer_ack(p, "%s", env->ack->text);
        } else {
            text = env->type == VMCKPT__MSG_TYPE__MSG_ERROR ? env->error->text
                                                            : "refused";
            if (v != NULL)
                vms_set_state(co, v, "stopped");
            forward_error(p, text);
        }
        break;
    case P_STOP:
        if (env->type == VMCKPT__MSG_TYPE__MSG_ACK) {
            if (v != NULL)
                vms_set_state(co, v, "stopped");
            answer_ack(p, "%s/%s stopped", p->job, p->vm);
        } else {
            forward_error(p, env->type == VMCKPT__MSG_TYPE__MSG_ERROR
                                 ? env->error->text
                                 : "refused");
        }
        break;
    case P_CKPT:
        if (env->type == VMCKPT__MSG_TYPE__MSG_CKPT_DURABLE) {
            const Vmckpt__CkptDurable *d = env->ckpt_durable;

            epoch_set_state(co, p, "running", "committed", d, NULL);
            vms_retain_some(co, p->job, p->vm, 0);
            if (v != NULL) {
                v->last_epoch = p->epoch;
                vms_chain_commit(v, p->epoch, d->parent, p->store_host,
                                 d->sealed);
                v->last_pause_us = d->pause_ns / 1000;
                if (v->bytes_sent < d->wire_bytes) /* a QEMU stream's */
                    v->bytes_sent = d->wire_bytes;
                v->phase[0] = '\0';
                vms_note_tracking(v, d->qemu_stream);
                vms_save(co, v);
            }
            answer_ack(
                p,
                "%s/%s epoch %llu committed (%s, on %s): %u rounds, "
                "%llu pages, pause %.1f ms, %llu ms in all, %llu "
                "bytes stored",
                p->job, p->vm, (unsigned long long)p->epoch,
                d->parent ? "incremental" : "full", p->store_host, d->rounds,
                (unsigned long long)d->pages, (double)d->pause_ns / 1e6,
                (unsigned long long)d->total_ms, (unsigned long long)d->bytes);
        } else {
            text = env->type == VMCKPT__MSG_TYPE__MSG_CKPT_ABORT
                       ? env->ckpt_abort->reason
                   : env->type == VMCKPT__MSG_TYPE__MSG_ERROR
                       ? env->error->text
                       : "unexpected reply";
            epoch_set_state(co, p, "running", "aborted", NULL, text);
            if (v != NULL)
                v->phase[0] = '\0';
            forward_error(p, text);
        }
        break;
    case P_RESTORE:
        if (env->type == VMCKPT__MSG_TYPE__MSG_RESTORE_DONE &&
            env->restore_done->error != NULL &&
            env->restore_done->error->code == VMCKPT__ERROR_CODE__ERR_NONE) {
            stats_restore(co, 1, clock_mono_ms() - p->sent_ms);
            if (v != NULL) {
                snprintf(v->tracking, sizeof(v->tracking), "%s",
                         env->restore_done->tracking);
                v->chain_epoch = 0; /* a new QEMU: next epoch is full */
                vms_set_state(co, v, "running");
            }
            answer_ack(p, "%s/%s restored from epoch %llu on %s", p->job, p->vm,
                       (unsigned long long)p->epoch, p->host);
        } else {
            text = env->type == VMCKPT__MSG_TYPE__MSG_RESTORE_DONE &&
                           env->restore_done->error != NULL
                       ? env->restore_done->error->text
                   : env->type == VMCKPT__MSG_TYPE__MSG_ERROR
                       ? env->error->text
                       : "unexpected reply";
            if (v != NULL)
                vms_set_state(co, v, "stopped");
            stats_restore(co, 0, 0);
            if (p->admin != NULL && strstr(text, "damaged") != NULL)
                /* a job's restart falls back by itself; one VM's does not */
                server_error(
                    p->admin, p->admin_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                    "%s (an earlier epoch may be whole: vmckpt list %s shows "
                    "them; vmckpt restore --job %s --vm %s --epoch N)",
                    text, p->job, p->job, p->vm);
            else
                forward_error(p, text);
        }
        break;
    }
    free(p);
    return 0;
}

int vms_on_stats(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptStats *st = env->ckpt_stats;
    struct vmrec *v = vms_find(c->co, st->job, st->vm);

    if (v != NULL) {
        v->round = st->round;
        v->pages_left = st->pages_left;
        v->dirty_rate = st->dirty_pages_per_s;
        v->throughput = st->bytes_per_s;
        v->bytes_sent = st->bytes_sent;
    }
    if (c->co->vms->epoch.stats != NULL)
        c->co->vms->epoch.stats(c->co, st);
    return 0;
}

int vms_on_cut_done(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__CkptCutDone *cd = env->ckpt_cut_done;
    struct vmrec *v = vms_find(c->co, cd->job, cd->vm);

    if (v != NULL)
        snprintf(v->phase, sizeof(v->phase), "cut");
    if (c->co->vms->epoch.cut_done != NULL)
        c->co->vms->epoch.cut_done(c->co, cd);
    return 0;
}

/* The server's close hook: requests relayed through 'c' fail, or lose
 * their asker. */
static void conn_gone(struct coord *co, struct conn *c)
{
    struct pending **pp = &co->vms->pending, *p;

    while ((p = *pp) != NULL) {
        if (p->admin == c)
            p->admin = NULL;
        if (p->agent != c) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (p->kind == P_CKPT)
            epoch_set_state(co, p, "running", "aborted", NULL,
                            "the VM's agent was lost");
        else if (p->kind == P_RESTORE)
            stats_restore(co, 0, 0);
        {
            char text[160];

            snprintf(text, sizeof(text),
                     "the agent of %s went away before answering", p->host);
            forward_error(p, text);
        }
        free(p);
    }
}
