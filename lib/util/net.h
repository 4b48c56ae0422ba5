/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TCP helpers: "host:port" addresses, listening and connecting sockets.
 * Every socket returned is non-blocking and close-on-exec. */
#ifndef VMCKPT_NET_H
#define VMCKPT_NET_H

#include <stddef.h>

#include "error.h"

#define NET_ADDRSTRLEN 80

/* Split "host:port", "[v6]:port" or "host" (then 'default_port') into its
 * parts; 'host' must hold NET_ADDRSTRLEN bytes. -1 with 'err' if malformed. */
int net_split(const char *addr, unsigned default_port, char *host,
              unsigned *port, struct vmckpt_error *err);

/* Listen on 'addr' (port 0 picks a free port). Returns the fd or -1. */
int net_listen(const char *addr, unsigned default_port,
               struct vmckpt_error *err);

/* Connect to 'addr' within 'timeout_ms'. Returns the fd or -1. */
int net_connect(const char *addr, unsigned default_port, int timeout_ms,
                struct vmckpt_error *err);

/* "host:port" of the local or remote end of 'fd' into 'buf'. */
void net_local_name(int fd, char *buf, size_t len);
void net_peer_name(int fd, char *buf, size_t len);

/* Set O_NONBLOCK on or off. 0 or -1 with errno. */
int net_set_nonblock(int fd, int on);

#endif
