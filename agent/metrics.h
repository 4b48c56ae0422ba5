/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's metrics endpoint (docs/metrics.md): its guests, the pauses
 * of their checkpoints, the bytes its store wrote and read, the store's
 * free space. Prefixed agent_metrics_ (the coordinator has its own
 * metrics_ module, and the layout check wants each name in one part). */
#ifndef VMCKPT_AGENT_METRICS_H
#define VMCKPT_AGENT_METRICS_H

#include <stdint.h>

#include "agent.h"

/* Serve GET /metrics on 'addr' (HOST:PORT; "" leaves metrics off and
 * returns 0) from a->loop; after the store started. 0, or -1 with 'err'
 * naming the key. */
int agent_metrics_start(struct agent *a, const char *addr,
                        struct vmckpt_error *err);
/* Close the endpoint (NULL-safe, idempotent); before the loop is freed. */
void agent_metrics_stop(struct agent *a);
/* A checkpoint of a guest of this host ended: 'durable' with the guest
 * paused 'pause_us', or failed. From any thread; nothing when off. */
void agent_metrics_checkpoint(struct agent *a, int durable, uint64_t pause_us);

#endif
