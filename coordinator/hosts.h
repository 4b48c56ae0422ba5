/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The host registry: agents register and heartbeat; a host silent past the
 * timeout is lost, and so is a host of the catalog whose agent has not
 * registered within the timeout of the coordinator's start. Sits on the
 * connection layer (server.h) and the catalog; tells the layer above what
 * happens to hosts through the events it registered (hosts_set_events),
 * never by name. */
#ifndef VMCKPT_COORD_HOSTS_H
#define VMCKPT_COORD_HOSTS_H

#include <stddef.h>

#include "server.h"

/* What the layer above (jobs) learns of hosts. Both run on the event
 * loop, inside the host code: they may send and drop connections, not
 * free the host registry. */
struct hosts_events {
    /* Every state change of host 'host' (and every repeated setting of
     * one): 'state' is "up", "lost" or "down", 'why' says why. */
    void (*state)(void *arg, const char *host, const char *state,
                  const char *why);
    /* The agent of 'host' registered and was answered; it runs the guests
     * vms[0..n-1] ("job/vm", "job/vm!" when held paused), of incarnations
     * incs[0..n-1] (NULL: an agent that did not say). Valid during the
     * call. */
    void (*registered)(void *arg, const char *host, char **vms,
                       const uint64_t *incs, size_t n);
    /* The administrator declared 'host' dead (vmckpt fence): its lease
     * need not be waited for. May be NULL. */
    void (*fenced)(void *arg, const char *host);
    void *arg;
};

/* Create the registry of 'co' (co->hosts): agents heartbeat every
 * 'heartbeat_ms' and are lost when silent past 'timeout_ms'; a host of the
 * catalog whose agent has not registered within 'grace_ms' of the start is
 * lost too. Registers its close hook with the server. 0, or -1 (errno) on
 * failure. */
int hosts_create(struct coord *co, unsigned heartbeat_ms, unsigned timeout_ms,
                 unsigned grace_ms);
/* The register_grace_ms hosts_create() was given. */
unsigned hosts_register_grace_ms(const struct coord *co);
/* Free the registry (NULL-safe); after server_stop(). */
void hosts_destroy(struct coord *co);
/* Who hears of host changes; 'ev' is copied. One listener. */
void hosts_set_events(struct coord *co, const struct hosts_events *ev);
/* Load the hosts of the catalog (state "unknown"). 0, or -1 with 'err'. */
int hosts_load(struct coord *co, struct vmckpt_error *err);
/* Start watching heartbeats (after the loop exists); the hosts still
 * "unknown" one heartbeat timeout from now are declared lost. */
void hosts_start_sweep(struct coord *co);

/* Handlers of the agents' and the console's messages (server routes). */
int hosts_on_register(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_heartbeat(struct conn *c, const Vmckpt__Envelope *env);

/* hosts_crl.c: the revocation list for host 'host' on 'c' into 'out'
 * (malloc'ed, for AgentRegistered or HeartbeatAck) when it changed since
 * '*sent' (0: never sent), which it then updates. 1 attached, 0 nothing
 * new, -1 when the new list revokes the credential of the connection,
 * which is then closing (an Error queued). */
int hosts_crl_attach(struct conn *c, const char *host, uint64_t *sent,
                     ProtobufCBinaryData *out);
/* hosts_hv.c: a host's hypervisors as the catalog keeps them, one per
 * line, name|version|accel|usable|detail (malloc'ed; NULL when out of
 * memory); decoded into 'out' (n messages the caller frees with
 * hv_free). */
char *hv_encode(Vmckpt__Hypervisor **hv, size_t n);
size_t hv_decode(const char *enc, Vmckpt__Hypervisor ***out);
void hv_free(Vmckpt__Hypervisor **v, size_t n);
int hosts_on_goodbye(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_query(struct conn *c, const Vmckpt__Envelope *env);
int hosts_on_fence(struct conn *c, const Vmckpt__Envelope *env);

/* Leases (docs/consistency.md). An agent may run guests for the lease
 * (hosts_lease_ms, derived from the heartbeat timeout so that lease +
 * margin fit in it) after it sent the registration or heartbeat whose
 * answer granted it; the coordinator records the instant before it sends
 * each answer. */
#define HOSTS_FENCE_SLACK_MS 500
/* What is added to a lease before it has surely ended on the agent too:
 * a clock-rate allowance and HOSTS_FENCE_SLACK_MS. */
uint64_t hosts_lease_margin_ms(unsigned lease_ms);
unsigned hosts_lease_ms(struct coord *co);
/* The monotonic instant (clock_mono_ms) after which host 'name' surely
 * runs no guest under its lease: last grant + lease + margin (for a host
 * this coordinator never granted one: its start + lease + margin); 0 if
 * the administrator fenced it or there is no such host. The last grant
 * goes to *last_ack (may be NULL). */
uint64_t hosts_lease_end(struct coord *co, const char *name,
                         uint64_t *last_ack);

/* Power fencing: 'command' (a site's script, run as COMMAND HOST; ""
 * none) is run for a lost host whose guests must move, for at most
 * 'timeout_ms'. 'command' is copied. */
int hosts_set_fence_command(struct coord *co, const char *command,
                            unsigned timeout_ms);
/* Run the fence command for host 'name' (lost, with guests), unless there
 * is none, it runs already, or the host is fenced. While it runs, the
 * host's lease end (hosts_lease_end) is at least the command's deadline;
 * when it exits 0 the host is fenced (as by 'vmckpt fence'), otherwise
 * its lease alone counts. Either way the result is logged and the fenced
 * event tells the layer above to check its waits again. */
void hosts_fence_run(struct coord *co, const char *name);
/* 'command' (a site's script, run as COMMAND HOST, for at most the fence
 * timeout; "" none) is run whenever a host is declared lost, to tell a
 * batch system; its result is logged, nothing waits for it. Copied. */
int hosts_set_lost_command(struct coord *co, const char *command);
/* 1 while the fence command of host 'name' runs, else 0. */
int hosts_fencing(struct coord *co, const char *name);

/* Call fn(arg, name, state) for every host of the registry, in no
 * particular order; the strings are the registry's, valid during the
 * call. */
void hosts_each(struct coord *co,
                void (*fn)(void *arg, const char *name, const char *state),
                void *arg);
/* The connection of host 'name' when it is up, else NULL. Valid until
 * that connection's close hooks ran. */
struct conn *hosts_conn(struct coord *co, const char *name);
/* The state of host 'name' ("up", "lost", "down", "unknown"), or NULL if
 * the registry has no such host; the registry owns the string. */
const char *hosts_state(struct coord *co, const char *name);
/* The store ticket key (TICKET_KEY_LEN bytes) host 'name' was given when
 * it registered with this coordinator, or NULL if it has not. */
const uint8_t *hosts_ticket_key(struct coord *co, const char *name);
/* The store address of host 'name' ("" if none or unknown); the registry
 * owns the string. */
const char *hosts_store_addr(struct coord *co, const char *name);
/* The next up host with a store after 'after' in name order (a ring),
 * other than 'after'; NULL if none. The registry owns the string. */
const char *hosts_next_up(struct coord *co, const char *after);
/* 1 if host 'name' registered hypervisor back end 'hv' ("qemu", "xen";
 * NULL or "" means qemu) as usable, else 0. */
int hosts_offers(struct coord *co, const char *name, const char *hv);

#endif
