/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Telling a service manager (systemd, Type=notify) how a daemon is doing:
 * READY=1, RELOADING=1, STOPPING=1 and a STATUS= line, sent as one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. No library:
 * the protocol is a datagram of NEWLINE-separated KEY=VALUE lines. */
#ifndef VMCKPT_NOTIFY_H
#define VMCKPT_NOTIFY_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "error.h"

/* Take $NOTIFY_SOCKET and remove it from the environment, so that the
 * programs the daemon starts (QEMU, xl) do not inherit it. Call once,
 * before any child is started. Returns 1 if a service manager listens, 0
 * if not. A malformed value is reported by the first notify_send(). */
int notify_init(void);

/* 1 if notify_init() found a service manager. */
int notify_enabled(void);

/* Send 'state' ("READY=1", ...) and, when 'status' is not NULL, a STATUS=
 * line. Does nothing without a service manager. A failure is logged
 * (a warning the first time, then at debug level until a send works) and
 * never fatal. Returns 0 if sent or nothing to do, -1 with errno. */
int notify_send(const char *state, const char *status);

/* The messages the daemons send. notify_ready() and notify_status() set
 * the status the daemon shows while it serves; notify_ready(NULL) (the end
 * of a reload) shows that status again. */
void notify_ready(const char *status);    /* started, or a reload done */
void notify_reloading(void);              /* a reload begins (SIGHUP) */
void notify_stopping(const char *status); /* a clean shutdown begins */
void notify_status(const char *status);   /* what the daemon does now */

/* The socket address of a $NOTIFY_SOCKET value: an absolute path, or
 * '@' then a name in the abstract namespace. Fills *sa and *len; -1 with
 * 'err' on an empty, relative or over-long value. */
int notify_address(const char *value, struct sockaddr_un *sa, socklen_t *len,
                   struct vmckpt_error *err);

/* The datagram for 'state' and 'status' into buf[size], each line ending
 * in a newline; the status is cut to one line (a newline in it becomes a
 * space) and to what fits. Returns its length; 0 if 'size' cannot hold
 * the state line. */
size_t notify_format(char *buf, size_t size, const char *state,
                     const char *status);

#endif
