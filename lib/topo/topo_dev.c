/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The OS side of the device lookups: the disk(s) under a block device and
 * the interfaces under a bridge or bond (sysfs), the interface toward a
 * peer (the routing table). No hwloc here. */
#include "config.h"

#include <dirent.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/util/net.h"
#include "topo.h"

/* stacked devices deeper than this are not followed (a loop of links) */
#define MAX_DEPTH 4

static int add_name(char (*names)[TOPO_NAME_MAX], int n, int max,
                    const char *name)
{
    int i;

    if (n >= max || strlen(name) >= TOPO_NAME_MAX)
        return n;
    for (i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return n;
    snprintf(names[n], TOPO_NAME_MAX, "%s", name);
    return n + 1;
}

/* A name from a directory or the caller that is safe in a path. */
static int plain_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
           strlen(name) < TOPO_NAME_MAX;
}

/* The disks under the block device whose sysfs directory is 'dev' (no
 * symbolic link in it), added to names[0..n). */
static int disks_under(const char *sysfs, const char *dev,
                       char (*names)[TOPO_NAME_MAX], int n, int max, int depth)
{
    char disk[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
    const char *base;
    struct dirent *de;
    int found = 0;
    DIR *d;

    if ((size_t)snprintf(disk, sizeof(disk), "%s", dev) >= sizeof(disk) ||
        (size_t)snprintf(path, sizeof(path), "%s/partition", disk) >=
            sizeof(path))
        return n;
    if (access(path, F_OK) == 0) { /* a partition: its disk holds it */
        char *slash = strrchr(disk, '/');

        if (slash == NULL)
            return n;
        *slash = '\0';
    }
    /* device-mapper (LVM, dm-crypt) and md: the devices under it */
    if (depth < MAX_DEPTH &&
        (size_t)snprintf(path, sizeof(path), "%s/slaves", disk) <
            sizeof(path) &&
        (d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (!plain_name(de->d_name) ||
                (size_t)snprintf(path, sizeof(path), "%s/class/block/%s", sysfs,
                                 de->d_name) >= sizeof(path) ||
                realpath(path, real) == NULL)
                continue;
            n = disks_under(sysfs, real, names, n, max, depth + 1);
            found = 1;
        }
        closedir(d);
    }
    if (found)
        return n;
    base = strrchr(disk, '/');
    return add_name(names, n, max, base != NULL ? base + 1 : disk);
}

int topo_dev_disks(const char *sysfs, dev_t dev, char (*names)[TOPO_NAME_MAX],
                   int max)
{
    char path[PATH_MAX], real[PATH_MAX];

    if ((size_t)snprintf(path, sizeof(path), "%s/dev/block/%u:%u", sysfs,
                         major(dev), minor(dev)) >= sizeof(path) ||
        realpath(path, real) == NULL)
        return 0;
    return disks_under(sysfs, real, names, 0, max, 0);
}

/* The interfaces under 'name', added to names[0..n). */
static int lowers(const char *sysfs, const char *name,
                  char (*names)[TOPO_NAME_MAX], int n, int max, int depth)
{
    char path[PATH_MAX];
    struct dirent *de;
    int found = 0;
    DIR *d;

    if (!plain_name(name))
        return n;
    /* a bridge: its ports */
    if (depth < MAX_DEPTH &&
        (size_t)snprintf(path, sizeof(path), "%s/class/net/%s/brif", sysfs,
                         name) < sizeof(path) &&
        (d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL)
            if (plain_name(de->d_name)) {
                n = lowers(sysfs, de->d_name, names, n, max, depth + 1);
                found = 1;
            }
        closedir(d);
    }
    /* a bond, a VLAN, a macvlan: lower_<dev> links */
    if (!found && depth < MAX_DEPTH &&
        (size_t)snprintf(path, sizeof(path), "%s/class/net/%s", sysfs, name) <
            sizeof(path) &&
        (d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL)
            if (strncmp(de->d_name, "lower_", 6) == 0) {
                n = lowers(sysfs, de->d_name + 6, names, n, max, depth + 1);
                found = 1;
            }
        closedir(d);
    }
    return found ? n : add_name(names, n, max, name);
}

int topo_iface_lowers(const char *sysfs, const char *ifname,
                      char (*names)[TOPO_NAME_MAX], int max)
{
    return lowers(sysfs, ifname, names, 0, max, 0);
}

static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return 0;
}

/* The local address the kernel would send to 'addr' from. */
static int local_toward(const char *addr, struct sockaddr_storage *local)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai = NULL;
    char host[NET_ADDRSTRLEN], port[16];
    socklen_t sl = sizeof(*local);
    unsigned p;
    int fd, rc = -1;

    /* the port plays no part in the route */
    if (net_split(addr, 9, host, &p, NULL) < 0)
        return -1;
    snprintf(port, sizeof(port), "%u", p);
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
        return -1;
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)local, &sl) == 0)
        rc = 0;
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

int topo_iface_toward(const char *addr, char *ifname, size_t len)
{
    struct sockaddr_storage local;
    struct ifaddrs *ifs, *i;
    int rc = -1;

    if (local_toward(addr, &local) < 0 || getifaddrs(&ifs) < 0)
        return -1;
    for (i = ifs; i != NULL; i = i->ifa_next)
        if (i->ifa_addr != NULL && i->ifa_name != NULL &&
            same_addr(i->ifa_addr, (struct sockaddr *)&local)) {
            snprintf(ifname, len, "%s", i->ifa_name);
            rc = 0;
            break;
        }
    freeifaddrs(ifs);
    return rc;
}
