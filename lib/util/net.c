/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TCP listening and connecting with timeouts, for IPv4 and IPv6. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

int net_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

int net_split(const char *addr, unsigned default_port, char *host,
              unsigned *port, struct vmckpt_error *err)
{
    const char *colon, *hend;
    size_t hlen;

    if (addr == NULL || *addr == '\0') {
        errno = EINVAL;
        return errprintf(err, "empty address");
    }
    if (addr[0] == '[') {
        hend = strchr(addr, ']');
        if (hend == NULL) {
            errno = EINVAL;
            return errprintf(err, "address '%s': missing ']'", addr);
        }
        hlen = (size_t)(hend - addr - 1);
        addr++;
        colon = hend[1] == ':' ? hend + 1 : NULL;
        if (hend[1] != '\0' && colon == NULL) {
            errno = EINVAL;
            return errprintf(err, "address '[%s': junk after ']'", addr);
        }
    } else {
        colon = strrchr(addr, ':');
        if (colon != NULL && strchr(addr, ':') != colon) {
            errno = EINVAL;
            return errprintf(err, "address '%s': put IPv6 hosts in [ ]", addr);
        }
        hlen = colon ? (size_t)(colon - addr) : strlen(addr);
    }
    if (hlen == 0 || hlen >= NET_ADDRSTRLEN) {
        errno = EINVAL;
        return errprintf(err, "address '%s': bad host part", addr);
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    *port = default_port;
    if (colon != NULL) {
        char *end;
        unsigned long p;

        errno = 0;
        p = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != '\0' || colon[1] == '\0' || p > 65535) {
            errno = EINVAL;
            return errprintf(err, "address '%s': bad port", addr);
        }
        *port = (unsigned)p;
    }
    return 0;
}

static struct addrinfo *resolve(const char *addr, unsigned default_port,
                                int passive, struct vmckpt_error *err)
{
    char host[NET_ADDRSTRLEN], service[8];
    unsigned port;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (net_split(addr, default_port, host, &port, err) < 0)
        return NULL;
    snprintf(service, sizeof(service), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, service, &hints,
                     &res);
    if (rc != 0) {
        errno = EHOSTUNREACH;
        errprintf(err, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return NULL;
    }
    return res;
}

int net_listen(const char *addr, unsigned default_port,
               struct vmckpt_error *err)
{
    struct addrinfo *res = resolve(addr, default_port, 1, err), *ai;
    int fd = -1, one = 1;

    if (res == NULL)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
            break;
        errprintf_errno(err, "cannot listen on %s", addr);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int net_connect(const char *addr, unsigned default_port, int timeout_ms,
                struct vmckpt_error *err)
{
    struct addrinfo *res = resolve(addr, default_port, 0, err), *ai;
    int fd = -1, one = 1;

    if (res == NULL)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            errprintf_errno(err, "socket");
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno != EINPROGRESS) {
            errprintf_errno(err, "cannot connect to %s", addr);
            goto next;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        if (poll(&pfd, 1, timeout_ms) <= 0) {
            errno = ETIMEDOUT;
            errprintf(err, "cannot connect to %s: no answer within %d ms", addr,
                      timeout_ms);
            goto next;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
            soerr == 0)
            break;
        errno = soerr;
        errprintf_errno(err, "cannot connect to %s", addr);
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void name_of(int fd, int peer, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &sl)
                  : getsockname(fd, (struct sockaddr *)&ss, &sl);

    if (rc == 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        port = ntohs(sin->sin_port);
        snprintf(buf, len, "%s:%u", host, port);
    } else if (rc == 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
        snprintf(buf, len, "[%s]:%u", host, port);
    } else {
        snprintf(buf, len, "?");
    }
}

void net_local_name(int fd, char *buf, size_t len)
{
    name_of(fd, 0, buf, len);
}

void net_peer_name(int fd, char *buf, size_t len)
{
    name_of(fd, 1, buf, len);
}
