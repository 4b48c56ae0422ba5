/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A metrics endpoint on a daemon's event loop: GET (or HEAD) /metrics,
 * one request per connection, every socket non-blocking. Bounded so that
 * a slow or hostile client cannot stall or exhaust the daemon: the head
 * of a request, the connections open at once, and the time each may
 * take from accept to close. */
#ifndef VMCKPT_HTTPD_H
#define VMCKPT_HTTPD_H

#include <stddef.h>

#include "lib/metrics/mtext.h"
#include "lib/util/error.h"
#include "lib/util/evloop.h"

struct httpd;

/* Fill 't' (format chosen by the request) with the daemon's metrics. Runs
 * on the loop, once per scrape; must not block. A text left failed is
 * answered with 500 and logged. */
typedef void httpd_render_fn(void *arg, struct mtext *t);

struct httpd_limits {
    size_t max_head;     /* bytes of request head (default 8192) */
    unsigned max_conns;  /* open at once; more are refused (default 16) */
    unsigned timeout_ms; /* accept to close (default 10000) */
};

/* Listen on 'addr' (HOST:PORT) and serve /metrics from 'loop' through
 * 'render' (with 'arg'). 'lim' NULL: the defaults. Returns the endpoint,
 * or NULL with 'err' (naming the address). */
struct httpd *httpd_start(struct evloop *loop, const char *addr,
                          const struct httpd_limits *lim,
                          httpd_render_fn *render, void *arg,
                          struct vmckpt_error *err);
/* Close every connection and the socket, free 'h' (NULL-safe). */
void httpd_stop(struct httpd *h);
/* The address bound ("host:port"), for the log. */
void httpd_local_name(const struct httpd *h, char *buf, size_t len);

/* Check a metrics_listen value: "" (off) or HOST:PORT with the port
 * given. 0, or -1 with 'err' naming 'key'. */
int httpd_check_addr(const char *key, const char *value,
                     struct vmckpt_error *err);

#endif
