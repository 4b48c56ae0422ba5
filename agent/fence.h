/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fencing by lease: this agent may run its guests only while it holds a
 * lease from the coordinator (docs/consistency.md). When the lease ends
 * unrenewed it pauses every guest and never resumes them on its own. */
#ifndef VMCKPT_AGENT_FENCE_H
#define VMCKPT_AGENT_FENCE_H

#include <stdint.h>

#include "agent.h"

/* Start checking the lease (in the loop; after link_start). */
void fence_start(struct agent *a);
void fence_stop(struct agent *a);
/* The coordinator granted a lease of a->lease_ms in answer to a message
 * this agent sent at 'sent_ms' (clock_mono_ms): it holds until
 * sent_ms + lease_ms. */
void fence_renew(struct agent *a, uint64_t sent_ms);
/* The coordinator's LeaseResume: the guests paused when the lease ended
 * and not ordered away since are this host's again; they run. */
void fence_lift(struct agent *a, const char *text);

#endif
