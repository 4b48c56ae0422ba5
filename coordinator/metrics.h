/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's metrics endpoint (docs/metrics.md): hosts, guests and
 * jobs by state, read from the modules at each scrape, and the counters of
 * stats.c. On top of every module, like the dispatch table. */
#ifndef VMCKPT_COORD_METRICS_H
#define VMCKPT_COORD_METRICS_H

#include "server.h"

/* Serve GET /metrics on 'addr' (HOST:PORT; "" leaves metrics off and
 * returns 0) from co->loop, and turn the counters on. Call once the
 * modules are stacked, before the loop runs. 0, or -1 with 'err'. */
int metrics_start(struct coord *co, const char *addr, struct vmckpt_error *err);
/* Close the endpoint and drop the counters (NULL-safe, idempotent). */
void metrics_stop(struct coord *co);

#endif
