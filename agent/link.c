/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's link to the coordinator: connect and authenticate, register
 * the host, heartbeat; on any loss, reconnect with exponential backoff
 * (reconnect_min_ms doubling up to reconnect_max_ms, with jitter). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "fence.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/util/net.h"
#include "lib/util/notify.h"
#include "lib/wire/tls.h"

static void schedule_retry(struct agent *a);

static void link_close(struct agent *a)
{
    if (a->fd < 0)
        return;
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->hb_timer);
    pthread_mutex_lock(&a->link_mu);
    wire_conn_dispose(&a->w);
    close(a->fd);
    a->fd = -1;
    a->registered = 0;
    pthread_mutex_unlock(&a->link_mu);
    if (a->on_link_lost != NULL)
        a->on_link_lost(a);
}

static void link_fail(struct agent *a, const char *why)
{
    char status[256];

    log_warn("coordinator %s: %s", a->coordinator, why);
    snprintf(status, sizeof(status), "host %s: coordinator %s: %s; retrying",
             a->name, a->coordinator, why);
    notify_status(status);
    link_close(a);
    schedule_retry(a);
}

static void update_events(struct agent *a)
{
    int pending;

    if (a->fd < 0)
        return;
    pthread_mutex_lock(&a->link_mu);
    pending = wire_conn_pending(&a->w);
    pthread_mutex_unlock(&a->link_mu);
    ev_io_set_events(a->loop, &a->io, POLLIN | (pending ? POLLOUT : 0));
}

static int send_msg(struct agent *a, int type, const void *payload)
{
    struct vmckpt_error err;
    int rc;

    pthread_mutex_lock(&a->link_mu);
    rc = wire_conn_send(&a->w, type, a->next_id++, payload, &err);
    pthread_mutex_unlock(&a->link_mu);
    if (rc < 0) {
        log_err("%s", err.text);
        return -1;
    }
    update_events(a);
    return 0;
}

static void send_register(struct agent *a)
{
    Vmckpt__AgentRegister r = VMCKPT__AGENT_REGISTER__INIT;
    Vmckpt__Hypervisor hv[AGENT_MAX_HV], *hvp[AGENT_MAX_HV];
    struct vmm_vm *vm;
    char **names = NULL;
    uint64_t *incs;
    size_t n = 0, k = 0;
    int i;

    for (vm = a->vmm.vms; vm != NULL; vm = vm->next)
        n++;
    names = calloc(n ? n : 1, sizeof(*names));
    incs = calloc(n ? n : 1, sizeof(*incs));
    for (vm = a->vmm.vms; names != NULL && incs != NULL && vm != NULL;
         vm = vm->next) {
        size_t len = strlen(vm->job) + strlen(vm->name) + 3;

        if (vm->stopping || (names[k] = malloc(len)) == NULL)
            continue;
        incs[k] = vmm_vm_incarnation(vm);
        snprintf(names[k++], len, "%s/%s%s", vm->job, vm->name,
                 vm->held ? "!" : "");
    }
    r.n_vms = k;
    r.vms = names;
    r.n_incarnations = k;
    r.incarnations = incs;
    for (i = 0; i < a->nhv; i++) {
        vmckpt__hypervisor__init(&hv[i]);
        hv[i].name = (char *)a->hv[i]->name;
        hv[i].version = a->hvp[i].version;
        hv[i].accel = a->hvp[i].accel;
        hv[i].usable = a->hvp[i].usable;
        hv[i].detail = a->hvp[i].detail;
        hvp[i] = &hv[i];
    }
    r.hostname = a->name;
    r.cores = a->topo.cores;
    r.pus = a->topo.pus;
    r.numa_nodes = a->topo.numa_nodes;
    r.memory_bytes = a->topo.memory_bytes;
    r.n_hypervisors = (size_t)a->nhv;
    r.hypervisors = hvp;
    r.store_addr = a->store_addr;
    r.software = PACKAGE_STRING;
    a->reg_sent_ms = clock_mono_ms(); /* a lease counts from here */
    send_msg(a, VMCKPT__MSG_TYPE__MSG_AGENT_REGISTER, &r);
    while (k > 0)
        free(names[--k]);
    free(names);
    free(incs);
}

/* The heartbeat thread: every heartbeat_ms, while registered, queue a
 * heartbeat and write what it can; the loop is asked to write the rest. */
static void *hb_main(void *arg)
{
    struct agent *a = arg;
    struct timespec until;

    pthread_mutex_lock(&a->link_mu);
    while (a->hb_run) {
        Vmckpt__Heartbeat hb = VMCKPT__HEARTBEAT__INIT;
        struct vmckpt_error err;
        double load[1];
        int pending = 0;

        until = clock_deadline(CLOCK_MONOTONIC,
                               a->heartbeat_ms ? a->heartbeat_ms : 1000);
        pthread_cond_timedwait(&a->hb_cv, &a->link_mu, &until);
        if (!a->hb_run || a->fd < 0 || !a->registered)
            continue;
        hb.seq = ++a->hb_seq;
        /* a lease its ack grants counts from before the send */
        a->hb_sent[hb.seq % AGENT_HB_RING].seq = hb.seq;
        a->hb_sent[hb.seq % AGENT_HB_RING].sent_ms = clock_mono_ms();
        if (getloadavg(load, 1) == 1)
            hb.load_milli = (uint64_t)(load[0] * 1000);
        if (wire_conn_send(&a->w, VMCKPT__MSG_TYPE__MSG_HEARTBEAT, a->next_id++,
                           &hb, &err) == 0 &&
            wire_conn_flush(&a->w, &err) == 0)
            pending = wire_conn_pending(&a->w);
        if (pending) {
            uint64_t one = 1;

            if (write(a->kick_fd, &one, sizeof(one)) < 0)
                (void)0; /* the loop writes it at its next event anyway */
        }
    }
    pthread_mutex_unlock(&a->link_mu);
    return NULL;
}

static void on_kick(struct evloop *loop, struct ev_io *io, int revents)
{
    struct agent *a = io->arg;
    uint64_t n;

    (void)loop;
    (void)revents;
    if (read(a->kick_fd, &n, sizeof(n)) < 0)
        return;
    update_events(a);
}

/* The loop's side of heartbeats: notice a silent coordinator, and guests
 * taken over from an earlier agent that ended. */
static void heartbeat(struct evloop *loop, struct ev_timer *t)
{
    struct agent *a = t->arg;
    uint64_t silent = clock_mono_ms() - a->last_rx_ms;
    char why[96];

    vmm_check_adopted(&a->vmm);
    vmm_sample_cpu(&a->vmm);

    /* the coordinator answers every heartbeat; several unanswered ones
     * (and at least 10 s, and at least the lease it granted: a busy
     * coordinator of a large cluster is not a gone one) mean it is gone
     * even if TCP has not noticed. An answer waiting unread (this loop was
     * busy launching a guest) is not silence. */
    if (silent > 5 * (uint64_t)a->heartbeat_ms + 1000 && silent > 10000 &&
        silent > (uint64_t)a->lease_ms &&
        poll(&(struct pollfd){.fd = a->fd, .events = POLLIN}, 1, 0) == 0) {
        snprintf(why, sizeof(why), "no answer for %llu ms",
                 (unsigned long long)silent);
        link_fail(a, why);
        return;
    }
    ev_timer_start(loop, t, a->heartbeat_ms);
}

/* The coordinator acked heartbeat 'seq': the lease runs from its send. */
static void ack_renews(struct agent *a, uint64_t seq)
{
    uint64_t sent = 0;

    pthread_mutex_lock(&a->link_mu);
    if (a->hb_sent[seq % AGENT_HB_RING].seq == seq)
        sent = a->hb_sent[seq % AGENT_HB_RING].sent_ms;
    pthread_mutex_unlock(&a->link_mu);
    if (sent != 0 && a->registered)
        fence_renew(a, sent);
}

/* A revocation list from the coordinator: the store refuses the peers it
 * revokes from the next connection on. */
static void take_crl(struct agent *a, const ProtobufCBinaryData *crl)
{
    struct vmckpt_error err;

    if (crl->len == 0 || !tls_enabled())
        return;
    if (tls_crl_install(crl->data, crl->len, a->crl_path, &err) < 0)
        log_warn("coordinator %s: %s", a->coordinator, err.text);
    else
        log_info("revocation list from the coordinator (%zu bytes) in %s: "
                 "the store checks peers against it",
                 crl->len, a->crl_path);
}

/* The key of this host's store tickets, from the registration's answer. */
static void take_ticket_key(struct agent *a, const ProtobufCBinaryData *k)
{
    int rc = store_set_ticket_key(&a->store, k->data, k->len);

    if (rc < 0)
        log_warn("coordinator %s sent no store ticket key: this host's "
                 "store refuses every write and fetch of its peers until one "
                 "comes (a coordinator older than this agent?)",
                 a->coordinator);
    else if (rc > 0)
        log_info("store: ticket key from coordinator %s: peers' writes and "
                 "fetches need its tickets",
                 a->coordinator);
}

void link_load_crl(struct agent *a)
{
    struct vmckpt_error err;
    ProtobufCBinaryData crl = {0, NULL};
    FILE *f;
    long n;

    if (!tls_enabled() || (f = fopen(a->crl_path, "re")) == NULL)
        return;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
        n <= (long)TLS_CRL_MAX && fseek(f, 0, SEEK_SET) == 0 &&
        (crl.data = malloc((size_t)n)) != NULL &&
        fread(crl.data, 1, (size_t)n, f) == (size_t)n) {
        crl.len = (size_t)n;
        if (tls_crl_install(crl.data, crl.len, a->crl_path, &err) < 0)
            log_warn("%s: %s", a->crl_path, err.text);
    }
    free(crl.data);
    fclose(f);
}

/* AgentRegistered: heartbeats begin, the lease runs from the registration. */
static void registered(struct agent *a, const Vmckpt__AgentRegistered *r)
{
    char status[256];

    pthread_mutex_lock(&a->link_mu);
    a->registered = 1;
    a->heartbeat_ms = r->heartbeat_ms;
    if (a->heartbeat_ms < 50)
        a->heartbeat_ms = 50;
    pthread_cond_signal(&a->hb_cv);
    pthread_mutex_unlock(&a->link_mu);
    a->attempts = 0;
    a->backoff_ms = a->reconnect_min_ms;
    a->lease_ms = r->lease_ms;
    fence_renew(a, a->reg_sent_ms);
    log_info("registered with coordinator %s as host %s (id %llu, "
             "heartbeat %u ms, lease %u ms)",
             a->coordinator, a->name, (unsigned long long)r->host_id,
             a->heartbeat_ms, a->lease_ms);
    snprintf(status, sizeof(status), "host %s: registered with coordinator %s",
             a->name, a->coordinator);
    notify_status(status);
    ev_timer_start(a->loop, &a->hb_timer, a->heartbeat_ms);
}

static int handle(struct agent *a, const Vmckpt__Envelope *env)
{
    switch (env->type) {
    case VMCKPT__MSG_TYPE__MSG_AGENT_REGISTERED:
        registered(a, env->agent_registered);
        take_crl(a, &env->agent_registered->crl);
        take_ticket_key(a, &env->agent_registered->ticket_key);
        return 0;
    case VMCKPT__MSG_TYPE__MSG_HEARTBEAT_ACK:
        ack_renews(a, env->heartbeat_ack->seq);
        take_crl(a, &env->heartbeat_ack->crl);
        return 0;
    case VMCKPT__MSG_TYPE__MSG_LEASE_RESUME:
        fence_lift(a, env->lease_resume->text);
        return 0;
    case VMCKPT__MSG_TYPE__MSG_ERROR:
        log_err("coordinator %s refused: %s", a->coordinator, env->error->text);
        /* a refused registration is retried with backoff: the admin may
         * fix the coordinator's side without restarting this agent */
        return a->registered ? 0 : -1;
    default:
        if (a->on_request == NULL || !a->on_request(a, env))
            log_warn("coordinator sent %s, which this agent does not handle",
                     wire_type_name(env->type));
        return 0;
    }
}

static void on_io(struct evloop *loop, struct ev_io *io, int revents)
{
    struct agent *a = io->arg;
    struct vmckpt_error err;
    Vmckpt__Envelope *env;
    enum wire_fault fault;
    int rc;

    (void)loop;
    if (revents & POLLOUT) {
        pthread_mutex_lock(&a->link_mu);
        rc = wire_conn_flush(&a->w, &err);
        pthread_mutex_unlock(&a->link_mu);
        if (rc < 0) {
            link_fail(a, err.text);
            return;
        }
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        int eof, more;

    again:
        pthread_mutex_lock(&a->link_mu);
        (void)wire_conn_fill(&a->w, NULL);
        /* a message is handled without the lock: handling may take a
         * while, and the heartbeat thread must not wait for it */
        while ((rc = wire_conn_next(&a->w, &env, &fault, &err)) > 0) {
            pthread_mutex_unlock(&a->link_mu);
            a->last_rx_ms = clock_mono_ms();
            rc = handle(a, env);
            wire_free(env);
            if (rc < 0) {
                link_fail(a, "registration refused");
                return;
            }
            if (a->fd < 0)
                return; /* handling closed the link */
            pthread_mutex_lock(&a->link_mu);
        }
        eof = a->w.eof;
        more = !eof && wire_conn_input_pending(&a->w);
        pthread_mutex_unlock(&a->link_mu);
        if (rc < 0) {
            link_fail(a, err.text);
            return;
        }
        if (eof) {
            link_fail(a, a->w.failed ? a->w.io->why(a->w.io_arg)
                                     : "connection closed");
            return;
        }
        /* what TLS read ahead is not seen by poll: take it now */
        if (more)
            goto again;
    }
    update_events(a);
}

static void try_connect(struct evloop *loop, struct ev_timer *t)
{
    struct agent *a = t->arg;
    struct vmckpt_error err;
    char server[128];
    int fd;

    (void)loop;
    fd = net_connect(a->coordinator, WIRE_DEFAULT_PORT,
                     (int)a->connect_timeout_ms, &err);
    if (fd < 0) {
        if (a->attempts++ == 0 || a->attempts % 10 == 0)
            log_warn("%s (attempt %u; retrying)", err.text, a->attempts);
        schedule_retry(a);
        return;
    }
    wire_conn_init(&a->w, fd, 0);
    if ((tls_enabled() &&
         tls_client_attach(&a->w, TLS_ROLE_COORDINATOR, NULL,
                           (int)a->connect_timeout_ms, &err) < 0) ||
        auth_client(&a->w, &a->key, VMCKPT__ROLE__ROLE_AGENT, a->name,
                    (int)a->connect_timeout_ms, server, sizeof(server),
                    &err) < 0) {
        log_err("coordinator %s: %s", a->coordinator, err.text);
        wire_conn_dispose(&a->w);
        close(fd);
        a->attempts++;
        schedule_retry(a);
        return;
    }
    pthread_mutex_lock(&a->link_mu);
    a->fd = fd;
    pthread_mutex_unlock(&a->link_mu);
    a->last_rx_ms = clock_mono_ms();
    /* peers reach this host's store at the address that reaches the
     * coordinator */
    {
        char local[NET_ADDRSTRLEN], host[NET_ADDRSTRLEN];
        unsigned port;

        net_local_name(fd, local, sizeof(local));
        if (net_split(local, 0, host, &port, NULL) == 0)
            snprintf(a->store_addr, sizeof(a->store_addr),
                     strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                     a->store_port);
    }
    log_info("connected to coordinator '%s' at %s", server, a->coordinator);
    ev_io_init(&a->io, fd, POLLIN, on_io, a);
    if (ev_io_start(a->loop, &a->io) < 0) {
        link_fail(a, "cannot watch the connection");
        return;
    }
    send_register(a);
}

static void schedule_retry(struct agent *a)
{
    unsigned delay = a->backoff_ms;

    /* up to 25% jitter so that a cluster of agents does not reconnect to
     * a restarted coordinator in lock step */
    delay += (unsigned)(rand() % (int)(delay / 4 + 1));
    a->backoff_ms = a->backoff_ms * 2 > a->reconnect_max_ms
                        ? a->reconnect_max_ms
                        : a->backoff_ms * 2;
    log_debug("reconnecting in %u ms", delay);
    ev_timer_start(a->loop, &a->retry_timer, delay);
}

void link_start(struct agent *a)
{
    pthread_condattr_t ca;

    a->fd = -1;
    a->next_id = 1;
    a->backoff_ms = a->reconnect_min_ms;
    pthread_mutex_init(&a->link_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->hb_cv, &ca);
    pthread_condattr_destroy(&ca);
    a->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->kick_fd >= 0) {
        ev_io_init(&a->kick_io, a->kick_fd, POLLIN, on_kick, a);
        (void)ev_io_start(a->loop, &a->kick_io);
    }
    a->hb_run = 1;
    if (pthread_create(&a->hb_thread, NULL, hb_main, a) != 0) {
        log_err("cannot start the heartbeat thread");
        a->hb_run = 0;
    }
    ev_timer_init(&a->hb_timer, heartbeat, a);
    ev_timer_init(&a->retry_timer, try_connect, a);
    ev_timer_start(a->loop, &a->retry_timer, 0);
}

void link_stop(struct agent *a, const char *reason)
{
    ev_timer_stop(a->loop, &a->retry_timer);
    if (a->hb_run) {
        pthread_mutex_lock(&a->link_mu);
        a->hb_run = 0;
        pthread_cond_signal(&a->hb_cv);
        pthread_mutex_unlock(&a->link_mu);
        pthread_join(a->hb_thread, NULL);
    }
    if (a->fd >= 0 && a->registered) {
        Vmckpt__AgentGoodbye bye = VMCKPT__AGENT_GOODBYE__INIT;
        struct vmckpt_error err;

        bye.reason = (char *)reason;
        if (send_msg(a, VMCKPT__MSG_TYPE__MSG_AGENT_GOODBYE, &bye) == 0 &&
            wire_conn_flush_wait(&a->w, 1000, &err) < 0)
            log_warn("goodbye not delivered: %s", err.text);
    }
    link_close(a);
    if (a->kick_fd >= 0) {
        ev_io_stop(a->loop, &a->kick_io);
        close(a->kick_fd);
        a->kick_fd = -1;
    }
    pthread_cond_destroy(&a->hb_cv);
    pthread_mutex_destroy(&a->link_mu);
}

void link_send_frame(void *arg, uint8_t *frame, size_t len)
{
    struct agent *a = arg;
    int rc = -1;

    pthread_mutex_lock(&a->link_mu);
    if (a->fd >= 0)
        rc = wire_conn_send_raw(&a->w, frame, len);
    pthread_mutex_unlock(&a->link_mu);
    if (rc == 0)
        update_events(a);
    else
        log_warn("coordinator link down: a %zu-byte message is dropped", len);
    free(frame);
}
