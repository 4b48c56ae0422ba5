/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host registry: agents register and heartbeat; a host silent past the
 * timeout is declared lost. Every state change goes through
 * host_set_state(), which logs old -> new and records it in the catalog. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/crypto.h>

#include "catalog.h"
#include "hosts.h"
#include "lib/wire/ticket.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/util/runcmd.h"
#include "lib/util/name.h"

/* Host states: "up" (registered, heartbeating), "lost" (silent past the
 * timeout), "down" (its agent said goodbye), "unknown" (known from the
 * catalog, not seen since this coordinator started). */
struct host {
    char *name;
    char *addr;
    char *store_addr;
    char *software;
    char *hypervisors; /* encoded, see hv_encode() */
    unsigned cores, pus, numa_nodes;
    uint64_t memory_bytes;
    const char *state;
    uint64_t id;
    uint64_t last_hb_ms;    /* monotonic; 0 = never in this run */
    uint64_t last_ack_ms;   /* monotonic, the last lease granted; 0 = none */
    uint64_t crl_sent;      /* version of the revocation list it has */
    int fenced;             /* declared dead by the administrator */
    struct runcmd *fencing; /* the fence command running for it */
    void *fence_arg;        /* its callback's argument, freed with it */
    uint64_t fence_until;   /* monotonic deadline of that command */
    struct runcmd *telling; /* the lost command running for it */
    int64_t last_seen;      /* unix seconds, persisted */
    int64_t registered_at;
    struct conn *conn;
    /* its store's ticket key (tickets.h), since it registered */
    uint8_t ticket_key[TICKET_KEY_LEN];
    int has_ticket_key;
    struct host *next;
};

/* The hosts in name order, for lookups by name (host_find) and the next
 * up host after one (hosts_next_up): every VM of a job epoch asks both.
 * Hosts are only ever added, so the array is rebuilt only then. */
struct host_index {
    struct host **by_name;
    size_t n;
    int stale; /* a host was added since (or the rebuild failed) */
};

/* The registry of one coordinator (co->hosts). */
struct hosts {
    struct host *list;
    uint64_t next_id;
    unsigned heartbeat_ms;
    unsigned heartbeat_timeout_ms;
    unsigned register_grace_ms; /* for hosts still unknown after a start */
    unsigned lease_ms;          /* an agent's lease, see docs/consistency.md */
    struct ev_timer sweep_timer;
    uint64_t started_ms; /* monotonic, when the sweep began */
    struct hosts_events ev;
    char *fence_command; /* NULL: none */
    unsigned fence_timeout_ms;
    struct host_index idx;
    char *lost_command; /* NULL: none */
};

static void host_free(struct host *h)
{
    if (h->fencing != NULL) {
        runcmd_cancel(h->fencing);
        free(h->fence_arg);
    }
    runcmd_cancel(h->telling);
    OPENSSL_cleanse(h->ticket_key, sizeof(h->ticket_key));
    free(h->name);
    free(h->addr);
    free(h->store_addr);
    free(h->software);
    free(h->hypervisors);
    free(h);
}

static void conn_gone(struct coord *co, struct conn *c);
static int lease_resume(struct conn *c, struct host *h);

int hosts_create(struct coord *co, unsigned heartbeat_ms, unsigned timeout_ms,
                 unsigned grace_ms)
{
    struct hosts *hs = calloc(1, sizeof(*hs));

    if (hs == NULL)
        return -1;
    hs->next_id = 1;
    hs->heartbeat_ms = heartbeat_ms;
    hs->heartbeat_timeout_ms = timeout_ms;
    /* short enough that a lease has surely ended (margin included) when
     * its host is declared lost: lease + margin <= the timeout */
    hs->lease_ms = timeout_ms > 2 * HOSTS_FENCE_SLACK_MS
                       ? (timeout_ms - HOSTS_FENCE_SLACK_MS) * 50 / 51
                       : timeout_ms / 2;
    hs->register_grace_ms = grace_ms;
    co->hosts = hs;
    return server_on_close(co, conn_gone);
}

void hosts_destroy(struct coord *co)
{
    struct hosts *hs = co->hosts;

    if (hs == NULL)
        return;
    if (co->loop != NULL)
        ev_timer_stop(co->loop, &hs->sweep_timer);
    while (hs->list != NULL) {
        struct host *h = hs->list;

        hs->list = h->next;
        host_free(h);
    }
    free(hs->fence_command);
    free(hs->idx.by_name);
    free(hs->lost_command);
    free(hs);
    co->hosts = NULL;
}

void hosts_set_events(struct coord *co, const struct hosts_events *ev)
{
    co->hosts->ev = *ev;
}

static int cmp_host(const void *a, const void *b)
{
    return strcmp((*(struct host *const *)a)->name,
                  (*(struct host *const *)b)->name);
}

/* The index, rebuilt if hosts were added: 0, or -1 (ENOMEM; the caller
 * walks the list instead). */
static int index_fresh(struct hosts *hs)
{
    struct host_index *x = &hs->idx;
    struct host **a, *h;
    size_t n = 0;

    if (!x->stale && (x->by_name != NULL || hs->list == NULL))
        return 0;
    for (h = hs->list; h != NULL; h = h->next)
        n++;
    a = realloc(x->by_name, (n ? n : 1) * sizeof(*a));
    if (a == NULL)
        return -1;
    x->by_name = a;
    x->n = 0;
    for (h = hs->list; h != NULL; h = h->next)
        a[x->n++] = h;
    qsort(a, x->n, sizeof(*a), cmp_host);
    x->stale = 0;
    return 0;
}

/* Where 'name' is or would go in the index (the first host not before
 * it). */
static size_t index_pos(const struct host_index *x, const char *name)
{
    size_t lo = 0, hi = x->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(x->by_name[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct host *host_find(struct coord *co, const char *name)
{
    struct hosts *hs = co->hosts;
    struct host *h;
    size_t i;

    if (index_fresh(hs) == 0) {
        i = index_pos(&hs->idx, name);
        return i < hs->idx.n && strcmp(hs->idx.by_name[i]->name, name) == 0
                   ? hs->idx.by_name[i]
                   : NULL;
    }
    for (h = hs->list; h != NULL; h = h->next) {
        if (strcmp(h->name, name) == 0)
            return h;
    }
    return NULL;
}

/* The host whose agent is on connection 'c', or NULL: the connection
 * names it since the registration, as long as it is still the host's. */
static struct host *host_of(struct coord *co, const struct conn *c)
{
    struct host *h = c->host;

    (void)co;
    return h != NULL && h->conn == c ? h : NULL;
}

static void tell_lost(struct coord *co, struct host *h);

static void host_set_state(struct coord *co, struct host *h, const char *state,
                           const char *why)
{
    struct vmckpt_error err;
    int now_lost = strcmp(state, "lost") == 0 && strcmp(h->state, state) != 0;

    if (strcmp(h->state, state) != 0)
        log_info("host %s: %s -> %s (%s)", h->name, h->state, state, why);
    h->state = state;
    if (now_lost)
        tell_lost(co, h);
    if (catalog_host_touch(co->cat, h->name, state, h->last_seen, &err) < 0)
        log_err("%s", err.text);
    if (co->hosts->ev.state != NULL)
        co->hosts->ev.state(co->hosts->ev.arg, h->name, state, why);
}

static int load_one(const struct catalog_host *ch, void *arg)
{
    struct coord *co = arg;
    struct host *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return -1;
    h->name = strdup(ch->name);
    h->addr = strdup(ch->addr);
    h->store_addr = strdup(ch->store_addr);
    h->software = strdup(ch->software);
    h->hypervisors = strdup(ch->hypervisors);
    if (!h->name || !h->addr || !h->store_addr || !h->software ||
        !h->hypervisors) {
        host_free(h);
        return -1;
    }
    h->cores = ch->cores;
    h->pus = ch->pus;
    h->numa_nodes = ch->numa_nodes;
    h->memory_bytes = ch->memory_bytes;
    /* nothing is known of it until its agent talks to this coordinator */
    h->state = "unknown";
    h->last_seen = ch->last_seen;
    h->registered_at = ch->registered_at;
    h->id = co->hosts->next_id++;
    h->next = co->hosts->list;
    co->hosts->list = h;
    co->hosts->idx.stale = 1;
    return 0;
}

int hosts_load(struct coord *co, struct vmckpt_error *err)
{
    struct host *h;
    int n = 0;

    if (catalog_host_each(co->cat, load_one, co, err) < 0)
        return -1;
    for (h = co->hosts->list; h != NULL; h = h->next)
        n++;
    if (n > 0)
        log_info("catalog lists %d host(s); waiting for their agents", n);
    return 0;
}

/* A host of the catalog whose agent has not registered within
 * register_grace_ms of this coordinator's start is as silent as one that
 * stopped heartbeating: lost, so that what it ran is brought back. The
 * grace is longer than the heartbeat timeout: a live agent may still be
 * backing off after losing the old coordinator. */
static void sweep_unknown(struct coord *co, uint64_t now)
{
    struct hosts *hs = co->hosts;
    struct host *h;
    char why[128];

    if (now - hs->started_ms <= hs->register_grace_ms)
        return;
    for (h = hs->list; h != NULL; h = h->next) {
        if (strcmp(h->state, "unknown") != 0)
            continue;
        snprintf(why, sizeof(why),
                 "not registered within %u ms of the coordinator's start",
                 hs->register_grace_ms);
        host_set_state(co, h, "lost", why);
    }
}

static void sweep(struct evloop *loop, struct ev_timer *t)
{
    struct coord *co = t->arg;
    uint64_t now = clock_mono_ms();
    struct host *h;

    sweep_unknown(co, now);
    for (h = co->hosts->list; h != NULL; h = h->next) {
        char why[96];

        if (strcmp(h->state, "up") != 0 ||
            now - h->last_hb_ms <= co->hosts->heartbeat_timeout_ms)
            continue;
        snprintf(why, sizeof(why), "no heartbeat for %llu ms",
                 (unsigned long long)(now - h->last_hb_ms));
        host_set_state(co, h, "lost", why);
        if (h->conn != NULL) {
            struct conn *c = h->conn;

            h->conn = NULL;
            server_drop(c, "host declared lost");
        }
    }
    ev_timer_start(
        loop, t, co->hosts->heartbeat_ms / 2 ? co->hosts->heartbeat_ms / 2 : 1);
}

void hosts_start_sweep(struct coord *co)
{
    co->hosts->started_ms = clock_mono_ms();
    ev_timer_init(&co->hosts->sweep_timer, sweep, co);
    ev_timer_start(co->loop, &co->hosts->sweep_timer, co->hosts->heartbeat_ms);
}

/* The server's close hook: a connection of an agent went away without a
 * goodbye. */
static void conn_gone(struct coord *co, struct conn *c)
{
    struct host *h = host_of(co, c);

    if (h != NULL) {
        /* The host stays "up" until its heartbeats are overdue: a dropped
         * connection alone does not prove the host is gone. */
        log_warn("host %s: connection lost; declared lost if no heartbeat "
                 "within %u ms",
                 h->name, co->hosts->heartbeat_timeout_ms);
        h->conn = NULL;
    }
}

static int valid_host_name(const char *s)
{
    return name_is_plain(s, 63);
}

static int replace(char **dst, const char *src)
{
    char *s = strdup(src ? src : "");

    if (s == NULL)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

int hosts_on_register(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    const Vmckpt__AgentRegister *r = env->agent_register;
    Vmckpt__AgentRegistered reply = VMCKPT__AGENT_REGISTERED__INIT;
    struct host *h;
    struct catalog_host ch;
    struct vmckpt_error err;
    char *hv;
    int fresh = 0, rc;

    if (!valid_host_name(r->hostname))
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "host name '%.64s' is not valid (letters, digits, "
                            "'-', '.', '_'; at most 63)",
                            r->hostname);
    if (strcmp(r->hostname, c->auth.peer_name) != 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "registers as '%s' but authenticated as '%s'",
                            r->hostname, c->auth.peer_name);
    h = host_find(co, r->hostname);
    if (h == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL || (h->name = strdup(r->hostname)) == NULL) {
            free(h);
            return server_error(c, env->request_id,
                                VMCKPT__ERROR_CODE__ERR_INTERNAL,
                                "out of memory");
        }
        h->state = "unknown";
        h->id = co->hosts->next_id++;
        h->next = co->hosts->list;
        co->hosts->list = h;
        co->hosts->idx.stale = 1;
        fresh = 1;
    }
    if (h->conn != NULL && h->conn != c) {
        /* the agent restarted faster than its old connection timed out */
        struct conn *old = h->conn;

        h->conn = NULL;
        server_drop(old, "replaced by a new connection of the same host");
    }
    hv = hv_encode(r->hypervisors, r->n_hypervisors);
    if (hv == NULL || replace(&h->addr, c->peer) < 0 ||
        replace(&h->store_addr, r->store_addr) < 0 ||
        replace(&h->software, r->software) < 0) {
        free(hv);
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
    }
    free(h->hypervisors);
    h->hypervisors = hv;
    h->cores = r->cores;
    h->pus = r->pus;
    h->numa_nodes = r->numa_nodes;
    h->memory_bytes = r->memory_bytes;
    h->conn = c;
    c->host = h;
    h->fenced = 0;
    h->last_hb_ms = clock_mono_ms();
    h->last_seen = (int64_t)(clock_wall_ms() / 1000);
    h->registered_at = h->last_seen;

    memset(&ch, 0, sizeof(ch));
    ch.name = h->name;
    ch.addr = h->addr;
    ch.store_addr = h->store_addr;
    ch.software = h->software;
    ch.hypervisors = h->hypervisors;
    ch.cores = h->cores;
    ch.pus = h->pus;
    ch.numa_nodes = h->numa_nodes;
    ch.memory_bytes = h->memory_bytes;
    ch.state = (char *)h->state;
    ch.registered_at = h->registered_at;
    ch.last_seen = h->last_seen;
    if (catalog_host_put(co->cat, &ch, &err) < 0) {
        log_err("%s", err.text);
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL,
                            "coordinator cannot record the host: %s", err.text);
    }
    log_info("host %s registered%s from %s: %u cores, %u threads, %u NUMA "
             "node(s), %llu MiB",
             h->name, fresh ? "" : " again", c->peer, h->cores, h->pus,
             h->numa_nodes, (unsigned long long)(h->memory_bytes >> 20));
    host_set_state(co, h, "up", "registered");
    reply.heartbeat_ms = co->hosts->heartbeat_ms;
    reply.host_id = h->id;
    reply.lease_ms = co->hosts->lease_ms;
    /* the lease counts from before the send: it ends here no earlier than
     * on the agent, which counts from before its registration went out */
    h->last_ack_ms = clock_mono_ms();
    h->crl_sent = 0;
    (void)hosts_crl_attach(c, h->name, &h->crl_sent, &reply.crl);
    /* its store's ticket key (tickets.h): the same for this run */
    h->has_ticket_key =
        ticket_key_derive(co->ticket_secret, h->name, h->ticket_key) == 0;
    if (h->has_ticket_key) {
        reply.ticket_key.data = h->ticket_key;
        reply.ticket_key.len = sizeof(h->ticket_key);
    }
    rc = server_send(c, VMCKPT__MSG_TYPE__MSG_AGENT_REGISTERED, env->request_id,
                     &reply);
    free(reply.crl.data);
    if (rc < 0)
        return -1;
    if (co->hosts->ev.registered != NULL)
        co->hosts->ev.registered(
            co->hosts->ev.arg, h->name, r->vms,
            r->n_incarnations == r->n_vms ? r->incarnations : NULL, r->n_vms);
    return lease_resume(c, h);
}

/* After a registration has been reconciled (stale copies ordered
 * destroyed first, on the same connection): the guests the agent paused
 * when its lease ended are its own again. */
static int lease_resume(struct conn *c, struct host *h)
{
    Vmckpt__LeaseResume lr = VMCKPT__LEASE_RESUME__INIT;

    if (h->conn != c)
        return 0;
    lr.text = "registered again: the guests still listed as yours may run";
    return server_send(c, VMCKPT__MSG_TYPE__MSG_LEASE_RESUME, c->co->next_req++,
                       &lr);
}

/* The host registered on 'c', or NULL (told to the peer). */
static struct host *need_host(struct conn *c, const Vmckpt__Envelope *env)
{
    struct host *h = host_of(c->co, c);

    if (h != NULL)
        return h;
    server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                 "%s before agent-register", wire_type_name(env->type));
    return NULL;
}

int hosts_on_heartbeat(struct conn *c, const Vmckpt__Envelope *env)
{
    Vmckpt__HeartbeatAck ack = VMCKPT__HEARTBEAT_ACK__INIT;
    struct host *h = need_host(c, env);
    int rc;

    if (h == NULL)
        return 0;
    h->last_hb_ms = clock_mono_ms();
    h->last_seen = (int64_t)(clock_wall_ms() / 1000);
    if (strcmp(h->state, "up") != 0)
        host_set_state(c->co, h, "up", "heartbeat");
    if (hosts_crl_attach(c, h->name, &h->crl_sent, &ack.crl) < 0)
        return 0; /* revoked: no lease renewed, the connection closes */
    ack.seq = env->heartbeat->seq;
    h->last_ack_ms = h->last_hb_ms; /* renews the lease: before the send */
    rc = server_send(c, VMCKPT__MSG_TYPE__MSG_HEARTBEAT_ACK, env->request_id,
                     &ack);
    free(ack.crl.data);
    return rc;
}

int hosts_on_goodbye(struct conn *c, const Vmckpt__Envelope *env)
{
    struct host *h = need_host(c, env);
    char why[160];

    if (h == NULL)
        return 0;
    snprintf(why, sizeof(why), "agent stopped: %.100s",
             env->agent_goodbye->reason[0] ? env->agent_goodbye->reason
                                           : "no reason given");
    h->last_seen = (int64_t)(clock_wall_ms() / 1000);
    host_set_state(c->co, h, "down", why);
    h->conn = NULL;
    c->closing = 1;
    return 0;
}

int hosts_on_query(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    Vmckpt__HostsReply reply = VMCKPT__HOSTS_REPLY__INIT;
    Vmckpt__HostInfo *infos = NULL, **ptrs = NULL;
    uint64_t now = clock_mono_ms();
    struct host *h;
    size_t n = 0, i;
    int rc;

    for (h = co->hosts->list; h != NULL; h = h->next)
        n++;
    if (n > 0) {
        infos = calloc(n, sizeof(*infos));
        ptrs = calloc(n, sizeof(*ptrs));
        if (infos == NULL || ptrs == NULL) {
            free(infos);
            free(ptrs);
            return server_error(c, env->request_id,
                                VMCKPT__ERROR_CODE__ERR_INTERNAL,
                                "out of memory");
        }
    }
    for (h = co->hosts->list, i = 0; h != NULL; h = h->next, i++) {
        Vmckpt__HostInfo *hi = &infos[i];

        vmckpt__host_info__init(hi);
        hi->name = h->name;
        hi->state = (char *)h->state;
        hi->addr = h->addr;
        hi->cores = h->cores;
        hi->pus = h->pus;
        hi->numa_nodes = h->numa_nodes;
        hi->memory_bytes = h->memory_bytes;
        hi->n_hypervisors = hv_decode(h->hypervisors, &hi->hypervisors);
        hi->last_heartbeat_ms =
            h->last_hb_ms ? (int64_t)(now - h->last_hb_ms) : -1;
        hi->registered_at = (uint64_t)h->registered_at;
        hi->store_addr = h->store_addr;
        hi->software = h->software;
        ptrs[i] = hi;
    }
    reply.n_hosts = n;
    reply.hosts = ptrs;
    rc = server_send(c, VMCKPT__MSG_TYPE__MSG_HOSTS_REPLY, env->request_id,
                     &reply);
    for (i = 0; i < n; i++)
        hv_free(infos[i].hypervisors, infos[i].n_hypervisors);
    free(infos);
    free(ptrs);
    return rc;
}

struct conn *hosts_conn(struct coord *co, const char *name)
{
    struct host *h = host_find(co, name);

    return h != NULL && strcmp(h->state, "up") == 0 ? h->conn : NULL;
}

const char *hosts_state(struct coord *co, const char *name)
{
    struct host *h = host_find(co, name);

    return h != NULL ? h->state : NULL;
}

void hosts_each(struct coord *co,
                void (*fn)(void *arg, const char *name, const char *state),
                void *arg)
{
    struct host *h;

    for (h = co->hosts->list; h != NULL; h = h->next)
        fn(arg, h->name, h->state);
}

const uint8_t *hosts_ticket_key(struct coord *co, const char *name)
{
    struct host *h = host_find(co, name);

    return h != NULL && h->has_ticket_key ? h->ticket_key : NULL;
}

const char *hosts_store_addr(struct coord *co, const char *name)
{
    struct host *h = host_find(co, name);

    return h != NULL ? h->store_addr : "";
}

int hosts_offers(struct coord *co, const char *name, const char *hv)
{
    struct host *h = host_find(co, name);
    Vmckpt__Hypervisor **v;
    size_t n, i;
    int yes = 0;

    if (h == NULL)
        return 0;
    if (hv == NULL || hv[0] == '\0')
        hv = "qemu";
    n = hv_decode(h->hypervisors, &v);
    for (i = 0; i < n; i++)
        if (strcmp(v[i]->name, hv) == 0 && v[i]->usable)
            yes = 1;
    hv_free(v, n);
    return yes;
}

/* A host that can store a peer's image, other than 'after'. */
static int can_store(const struct host *h, const char *after)
{
    return strcmp(h->state, "up") == 0 && h->conn != NULL &&
           strcmp(h->name, after) != 0 && h->store_addr[0] != '\0';
}

unsigned hosts_register_grace_ms(const struct coord *co)
{
    return co->hosts->register_grace_ms;
}

const char *hosts_next_up(struct coord *co, const char *after)
{
    const struct host *h, *best = NULL, *first = NULL;
    struct host_index *x = &co->hosts->idx;
    size_t i, k;

    /* the up host whose name follows 'after', wrapping around: from
     * where 'after' is in name order, usually the very next one */
    if (index_fresh(co->hosts) == 0) {
        i = index_pos(x, after);
        for (k = 0; k < x->n; k++) {
            h = x->by_name[(i + k) % x->n];
            if (can_store(h, after))
                return h->name;
        }
        return NULL;
    }
    for (h = co->hosts->list; h != NULL; h = h->next) {
        if (strcmp(h->state, "up") != 0 || h->conn == NULL ||
            strcmp(h->name, after) == 0 || h->store_addr[0] == '\0')
            continue;
        if (first == NULL || strcmp(h->name, first->name) < 0)
            first = h;
        if (strcmp(h->name, after) > 0 &&
            (best == NULL || strcmp(h->name, best->name) < 0))
            best = h;
    }
    best = best ? best : first;
    return best ? best->name : NULL;
}

uint64_t hosts_lease_margin_ms(unsigned lease_ms)
{
    /* clocks may run at different rates (2% is far beyond any monotonic
     * clock's drift), and the agent notices the end at its next check and
     * needs a moment to pause its guests */
    return lease_ms / 50 + HOSTS_FENCE_SLACK_MS;
}

uint64_t hosts_lease_end(struct coord *co, const char *name, uint64_t *last_ack)
{
    struct hosts *hs = co->hosts;
    struct host *h = host_find(co, name);
    uint64_t base;

    if (last_ack != NULL)
        *last_ack = 0;
    if (h == NULL || h->fenced)
        return 0;
    /* never granted by this coordinator: every lease an earlier one
     * granted was granted before this one started */
    base = h->last_ack_ms ? h->last_ack_ms : hs->started_ms;
    if (last_ack != NULL)
        *last_ack = base;
    base += hs->lease_ms + hosts_lease_margin_ms(hs->lease_ms);
    /* a fence command running: its answer comes before any move */
    return h->fencing != NULL && h->fence_until > base ? h->fence_until : base;
}

int hosts_set_fence_command(struct coord *co, const char *command,
                            unsigned timeout_ms)
{
    struct hosts *hs = co->hosts;

    free(hs->fence_command);
    hs->fence_command = NULL;
    hs->fence_timeout_ms = timeout_ms;
    if (command == NULL || command[0] == '\0')
        return 0;
    hs->fence_command = strdup(command);
    return hs->fence_command != NULL ? 0 : -1;
}

struct fence_done {
    struct coord *co;
    char host[64];
};

static void fence_done(void *arg, int status, int timed_out, const char *output,
                       uint64_t ms)
{
    struct fence_done *fd = arg;
    struct coord *co = fd->co;
    struct host *h = host_find(co, fd->host);
    char how[64];

    runcmd_describe(status, timed_out, co->hosts->fence_timeout_ms, how,
                    sizeof(how));
    if (h != NULL) {
        h->fencing = NULL;
        h->fence_arg = NULL;
        if (h->conn != NULL && strcmp(h->state, "up") == 0) {
            /* it registered again meanwhile: whatever the command did, the
             * host runs; its lease counts as for any up host */
            log_warn("host %s: fence_command ended (%s, %llu ms: %s) after "
                     "the host registered again; not taken as fenced",
                     h->name, how, (unsigned long long)ms,
                     output[0] ? output : "(no output)");
        } else if (!timed_out && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0) {
            h->fenced = 1;
            log_warn("host %s fenced by fence_command (%s, %llu ms): %s; "
                     "its guests are restarted without waiting for its lease",
                     h->name, how, (unsigned long long)ms,
                     output[0] ? output : "(no output)");
        } else {
            log_err("host %s: fence_command failed (%s, %llu ms): %s; its "
                    "guests move only once its lease has ended",
                    h->name, how, (unsigned long long)ms,
                    output[0] ? output : "(no output)");
        }
        if (co->hosts->ev.fenced != NULL)
            co->hosts->ev.fenced(co->hosts->ev.arg, h->name);
    }
    free(fd);
}

int hosts_set_lost_command(struct coord *co, const char *command)
{
    struct hosts *hs = co->hosts;

    free(hs->lost_command);
    hs->lost_command = NULL;
    if (command == NULL || command[0] == '\0')
        return 0;
    hs->lost_command = strdup(command);
    return hs->lost_command != NULL ? 0 : -1;
}

struct tell_done {
    struct coord *co;
    char host[64];
};

static void tell_done(void *arg, int status, int timed_out, const char *output,
                      uint64_t ms)
{
    struct tell_done *td = arg;
    struct host *h = host_find(td->co, td->host);
    char how[64];

    runcmd_describe(status, timed_out, td->co->hosts->fence_timeout_ms, how,
                    sizeof(how));
    if (h != NULL)
        h->telling = NULL;
    if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        log_info("host %s: lost_command done (%llu ms): %s", td->host,
                 (unsigned long long)ms, output[0] ? output : "(no output)");
    else
        log_err("host %s: lost_command failed (%s, %llu ms): %s", td->host, how,
                (unsigned long long)ms, output[0] ? output : "(no output)");
    free(td);
}

/* A host was just declared lost: tell the site (a batch system drains the
 * node and requeues its jobs) through lost_command; nothing waits for it. */
static void tell_lost(struct coord *co, struct host *h)
{
    struct hosts *hs = co->hosts;
    struct tell_done *td;
    struct vmckpt_error err;

    if (hs->lost_command == NULL || h->telling != NULL)
        return;
    td = calloc(1, sizeof(*td));
    if (td == NULL) {
        log_err("host %s: lost_command not run: out of memory", h->name);
        return;
    }
    td->co = co;
    snprintf(td->host, sizeof(td->host), "%s", h->name);
    log_info("host %s: running lost_command '%s %s'", h->name, hs->lost_command,
             h->name);
    h->telling = runcmd_start(co->loop, hs->lost_command, h->name,
                              hs->fence_timeout_ms, tell_done, td, &err);
    if (h->telling == NULL) {
        log_err("host %s: lost_command not run: %s", h->name, err.text);
        free(td);
    }
}

int hosts_fencing(struct coord *co, const char *name)
{
    struct host *h = host_find(co, name);

    return h != NULL && h->fencing != NULL;
}

void hosts_fence_run(struct coord *co, const char *name)
{
    struct hosts *hs = co->hosts;
    struct host *h = host_find(co, name);
    struct fence_done *fd;
    struct vmckpt_error err;

    if (hs->fence_command == NULL || h == NULL || h->fenced ||
        h->fencing != NULL)
        return;
    fd = calloc(1, sizeof(*fd));
    if (fd == NULL) {
        log_err("host %s: fence_command not run: out of memory", name);
        return;
    }
    fd->co = co;
    snprintf(fd->host, sizeof(fd->host), "%s", name);
    log_warn("host %s: running fence_command '%s %s' (at most %u ms)", name,
             hs->fence_command, name, hs->fence_timeout_ms);
    h->fence_until = clock_mono_ms() + hs->fence_timeout_ms;
    h->fencing = runcmd_start(co->loop, hs->fence_command, name,
                              hs->fence_timeout_ms, fence_done, fd, &err);
    h->fence_arg = fd;
    if (h->fencing == NULL) {
        h->fence_arg = NULL;
        log_err("host %s: fence_command not run: %s; its guests move only "
                "once its lease has ended",
                name, err.text);
        free(fd);
    }
}

unsigned hosts_lease_ms(struct coord *co)
{
    return co->hosts->lease_ms;
}

int hosts_on_fence(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    const char *name = env->host_fence->host;
    Vmckpt__Ack ack = VMCKPT__ACK__INIT;
    struct host *h = host_find(co, name);
    char text[200];

    if (h == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                            "no host '%.64s'", name);
    if (strcmp(h->state, "up") == 0 && h->conn != NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_ALLOWED,
                            "host %s is up and heartbeating; fence a host "
                            "that is lost or unknown",
                            h->name);
    h->fenced = 1;
    log_warn("host %s fenced by %s: declared dead by other means; its "
             "guests are restarted without waiting for its lease",
             h->name, c->auth.peer_name);
    if (co->hosts->ev.fenced != NULL)
        co->hosts->ev.fenced(co->hosts->ev.arg, h->name);
    snprintf(text, sizeof(text), "host %s fenced: its lease is taken as ended",
             h->name);
    ack.text = text;
    return server_send(c, VMCKPT__MSG_TYPE__MSG_ACK, env->request_id, &ack);
}
