/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The service manager's notification socket: $NOTIFY_SOCKET, one datagram
 * per message. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

/* $NOTIFY_SOCKET as found; empty: no service manager. Bounded: a value
 * longer than any socket address is refused at the first send. */
static char notify_value[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
static int notify_failing; /* the last send failed (already logged) */
/* The daemon's status while it serves, sent again after a reload. */
static char notify_steady[256];

int notify_init(void)
{
    const char *v = getenv("NOTIFY_SOCKET");

    notify_value[0] = '\0';
    if (v != NULL && v[0] != '\0') {
        size_t n = strlen(v);

        /* one byte past the longest address keeps "too long" detectable */
        if (n >= sizeof(notify_value))
            n = sizeof(notify_value) - 1;
        memcpy(notify_value, v, n);
        notify_value[n] = '\0';
    }
    unsetenv("NOTIFY_SOCKET");
    return notify_enabled();
}

int notify_enabled(void)
{
    return notify_value[0] != '\0';
}

int notify_address(const char *value, struct sockaddr_un *sa, socklen_t *len,
                   struct vmckpt_error *err)
{
    size_t n = value != NULL ? strlen(value) : 0;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (n == 0 || (value[0] != '/' && value[0] != '@')) {
        errno = EINVAL;
        return errprintf(err,
                         "NOTIFY_SOCKET='%.64s': expected the absolute path "
                         "of a socket or @NAME (abstract)",
                         value != NULL ? value : "");
    }
    if (n == 1 && value[0] == '@') {
        errno = EINVAL;
        return errprintf(err, "NOTIFY_SOCKET='@': no abstract name");
    }
    /* a path needs its terminating NUL inside sun_path; an abstract name
     * ('@' becomes the leading NUL) is counted by the length alone */
    if (n > sizeof(sa->sun_path) - (value[0] == '/' ? 1 : 0)) {
        errno = ENAMETOOLONG;
        return errprintf(err,
                         "NOTIFY_SOCKET is %zu bytes, over the %zu of "
                         "a UNIX socket address",
                         n, sizeof(sa->sun_path));
    }
    memcpy(sa->sun_path, value, n);
    if (value[0] == '@') {
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

size_t notify_format(char *buf, size_t size, const char *state,
                     const char *status)
{
    size_t n = strlen(state), i;

    if (size < n + 2)
        return 0;
    memcpy(buf, state, n);
    if (n > 0)
        buf[n++] = '\n';
    if (status != NULL && size - n > sizeof("STATUS=\n")) {
        memcpy(buf + n, "STATUS=", 7);
        n += 7;
        /* one line: the receiver splits the datagram at newlines */
        for (i = 0; status[i] != '\0' && n < size - 2; i++)
            buf[n++] = status[i] == '\n' || status[i] == '\r' ? ' ' : status[i];
        buf[n++] = '\n';
    }
    buf[n] = '\0';
    return n;
}

/* Log a failed send: once as a warning, then quietly until one works. */
static void send_failed(const char *text)
{
    if (!notify_failing)
        log_warn("cannot notify the service manager: %s", text);
    else
        log_debug("cannot notify the service manager: %s", text);
    notify_failing = 1;
}

int notify_send(const char *state, const char *status)
{
    struct vmckpt_error err;
    struct sockaddr_un sa;
    socklen_t len;
    char msg[1024];
    size_t n;
    ssize_t sent;
    int fd, saved;

    if (!notify_enabled())
        return 0;
    if (notify_address(notify_value, &sa, &len, &err) < 0) {
        saved = errno;
        send_failed(err.text);
        errno = saved;
        return -1;
    }
    n = notify_format(msg, sizeof(msg), state, status);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        errprintf_errno(&err, "socket");
        send_failed(err.text);
        errno = saved;
        return -1;
    }
    do {
        sent = sendto(fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    } while (sent < 0 && errno == EINTR);
    saved = errno;
    close(fd);
    if (sent != (ssize_t)n) {
        if (sent >= 0)
            saved = EMSGSIZE;
        errno = saved;
        errprintf_errno(&err, "send to %s", notify_value);
        send_failed(err.text);
        errno = saved;
        return -1;
    }
    notify_failing = 0;
    return 0;
}

void notify_ready(const char *status)
{
    if (status != NULL)
        snprintf(notify_steady, sizeof(notify_steady), "%s", status);
    (void)notify_send("READY=1", notify_steady[0] ? notify_steady : NULL);
}

void notify_reloading(void)
{
    char state[64];
    struct timespec ts;

    /* the time the reload began lets a newer service manager tell this
     * reload from an earlier one */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL +
                 (unsigned long long)ts.tv_nsec / 1000);
    (void)notify_send(state, "reloading the configuration");
}

void notify_stopping(const char *status)
{
    (void)notify_send("STOPPING=1", status);
}

void notify_status(const char *status)
{
    if (status == NULL)
        return;
    snprintf(notify_steady, sizeof(notify_steady), "%s", status);
    (void)notify_send("", status);
}
