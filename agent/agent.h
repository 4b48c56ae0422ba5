/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's state: its host description and its link to the
 * coordinator. */
#ifndef VMCKPT_AGENT_H
#define VMCKPT_AGENT_H

#include <pthread.h>
#include <stdint.h>

#include "agent/hv/hv.h"
#include "agent/store/store.h"
#include "agent/vmm/vmm.h"
#include "outbox.h"
#include "lib/topo/topo.h"
#include "lib/util/evloop.h"
#include "lib/wire/auth.h"
#include "lib/wire/wire.h"

#define AGENT_MAX_HV 4

struct agent_metrics;

struct agent {
    struct evloop *loop;
    struct auth_key key;
    char name[64];
    char coordinator[128];
    struct topo_info topo;
    const struct hv_ops *hv[AGENT_MAX_HV];
    struct hv_probe hvp[AGENT_MAX_HV];
    int nhv;
    struct store store;
    struct vmm vmm;
    struct outbox out;   /* worker threads -> loop -> coordinator */
    char store_addr[96]; /* as registered: reachable address and port */
    char crl_path[4096]; /* the revocation list the coordinator sent */
    unsigned store_port;
    unsigned streams; /* parallel streams per checkpoint, by default */

    /* coordinator link (link.c). What it hands up, set before
     * link_start(): each request (returns 0 if not one it knows), and the
     * loss of the link. */
    int (*on_request)(struct agent *a, const Vmckpt__Envelope *env);
    void (*on_link_lost)(struct agent *a);
    int fd; /* -1 while disconnected */
    struct ev_io io;
    struct wire_conn w;
    int registered;
    uint64_t next_id;
    uint64_t hb_seq;
    uint64_t last_rx_ms; /* monotonic time of the last message received */
    unsigned heartbeat_ms;
    unsigned connect_timeout_ms;
    unsigned reconnect_min_ms, reconnect_max_ms, backoff_ms;
    unsigned attempts; /* failed connection attempts in a row */
    struct ev_timer hb_timer;
    struct ev_timer retry_timer;
    /* Heartbeats come from their own thread, so that a loop busy for a
     * while (launching or loading a guest) does not make this host look
     * lost. link_mu guards fd, w, registered, next_id, heartbeat_ms. */
    pthread_mutex_t link_mu;
    pthread_cond_t hb_cv;
    pthread_t hb_thread;
    int hb_run;
    int kick_fd; /* the thread asks the loop to flush what it queued */
    struct ev_io kick_io;

    /* the lease (fence.c, docs/consistency.md): 0 = none granted. When each
     * message that may be answered with a grant was sent (clock_mono_ms):
     * the registration, and heartbeats by seq % AGENT_HB_RING (under
     * link_mu). */
    unsigned lease_ms;
    uint64_t lease_until; /* clock_mono_ms */
    uint64_t reg_sent_ms;
#define AGENT_HB_RING 64
    struct {
        uint64_t seq, sent_ms;
    } hb_sent[AGENT_HB_RING];
    int fencing; /* the lease ended: guests are being paused */
    struct ev_timer fence_timer;

    struct agent_metrics *metrics; /* metrics.c; NULL while off */
};

/* Start connecting (now) and keep the link up for the agent's lifetime. */
/* The revocation list at a->crl_path, from an earlier run, used until
 * the coordinator sends one (TLS only). */
void link_load_crl(struct agent *a);
void link_start(struct agent *a);
/* Say goodbye (best effort, bounded wait) and close the link. */
void link_stop(struct agent *a, const char *reason);
/* Queue an encoded frame (wire_encode) for the coordinator; dropped when
 * the link is down. Takes ownership of 'frame'. In the loop; 'arg' is the
 * agent (the outbox's send function). */
void link_send_frame(void *arg, uint8_t *frame, size_t len);

#endif
