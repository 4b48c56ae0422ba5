/* SPDX-License-Identifier: GPL-2.0-or-later */
/* userfaultfd-wp (async) + PAGEMAP_SCAN dirty tracking. The definitions
 * below are the kernel's UAPI; Debian 12's headers predate them. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dirty_uffd.h"

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask;
    uint64_t return_mask;
};
#define PAGEMAP_SCAN          _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING   (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#define PAGE_IS_WRITTEN       (1 << 1)
#endif

#define PAGE     4096ULL
#define NREGIONS 1024

struct dirty_uffd {
    int uffd;
    int pagemap;
    uint64_t start, len;
    struct page_region *vec;
};

void dirty_uffd_close(struct dirty_uffd *d)
{
    int saved = errno;

    if (d == NULL)
        return;
    if (d->uffd >= 0)
        close(d->uffd); /* unregisters and unprotects the range */
    if (d->pagemap >= 0)
        close(d->pagemap);
    free(d->vec);
    free(d);
    errno = saved;
}

/* A scan of one page that fails unless the range has asynchronous
 * write-protection (PM_SCAN_CHECK_WPASYNC), reporting nothing. */
static int probe_scan(struct dirty_uffd *d)
{
    struct pm_scan_arg a;

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    a.flags = PM_SCAN_CHECK_WPASYNC;
    a.start = d->start;
    a.end = d->start + PAGE;
    a.vec = (uint64_t)(uintptr_t)d->vec;
    a.vec_len = NREGIONS;
    a.category_mask = PAGE_IS_WRITTEN;
    a.return_mask = PAGE_IS_WRITTEN;
    return ioctl(d->pagemap, PAGEMAP_SCAN, &a) < 0 ? -1 : 0;
}

struct dirty_uffd *dirty_uffd_open(pid_t pid, int remote_fd, uint64_t start,
                                   uint64_t len, int reset,
                                   struct vmckpt_error *err)
{
    struct dirty_uffd *d = calloc(1, sizeof(*d));
    struct uffdio_api api = {.api = UFFD_API};
    struct uffdio_register reg;
    struct uffdio_writeprotect wp;
    char path[64];
    int pidfd;

    if (d == NULL) {
        errprintf_errno(err, "dirty tracking");
        return NULL;
    }
    d->uffd = d->pagemap = -1;
    d->start = start;
    d->len = len;
    if (start % PAGE || len % PAGE || len == 0) {
        errno = EINVAL;
        errprintf(err, "range 0x%llx+0x%llx is not page aligned",
                  (unsigned long long)start, (unsigned long long)len);
        goto fail;
    }
    d->vec = calloc(NREGIONS, sizeof(*d->vec));
    if (d->vec == NULL) {
        errprintf_errno(err, "dirty tracking");
        goto fail;
    }
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        errprintf_errno(err, "pidfd_open(%d)", (int)pid);
        goto fail;
    }
    d->uffd = (int)syscall(SYS_pidfd_getfd, pidfd, remote_fd, 0);
    close(pidfd);
    if (d->uffd < 0) {
        errprintf_errno(err,
                        "cannot take descriptor %d of process %d (was it "
                        "started with libvmckpt-uffd.so preloaded?)",
                        remote_fd, (int)pid);
        goto fail;
    }
    api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
                   UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
    /* UFFDIO_API succeeds once per userfaultfd: EINVAL may mean that an
     * earlier tracker (a restarted agent) already enabled it. Go on; the
     * probe scan below tells whether asynchronous mode is really on. */
    if (ioctl(d->uffd, UFFDIO_API, &api) < 0 && errno != EINVAL) {
        errprintf_errno(err, "UFFDIO_API");
        goto fail;
    }
    memset(&reg, 0, sizeof(reg));
    reg.range.start = start;
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    if (ioctl(d->uffd, UFFDIO_REGISTER, &reg) < 0) {
        errprintf_errno(err, "cannot register guest RAM for "
                             "write-protection");
        goto fail;
    }
    memset(&wp, 0, sizeof(wp));
    wp.range.start = start;
    wp.range.len = len;
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    if (reset && ioctl(d->uffd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        errprintf_errno(err, "cannot write-protect guest RAM");
        goto fail;
    }
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
    d->pagemap = open(path, O_RDONLY | O_CLOEXEC);
    if (d->pagemap < 0) {
        errprintf_errno(err, "%s", path);
        goto fail;
    }
    if (probe_scan(d) < 0) {
        errprintf_errno(err, "userfaultfd without asynchronous "
                             "write-protection (needs Linux >= 6.7)");
        goto fail;
    }
    return d;
fail:
    dirty_uffd_close(d);
    return NULL;
}

int64_t dirty_uffd_harvest(struct dirty_uffd *d, uint64_t *bitmap,
                           struct vmckpt_error *err)
{
    uint64_t at = d->start, end = d->start + d->len;
    int64_t pages = 0;

    while (at < end) {
        struct pm_scan_arg a;
        long n, i;

        memset(&a, 0, sizeof(a));
        a.size = sizeof(a);
        a.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
        a.start = at;
        a.end = end;
        a.vec = (uint64_t)(uintptr_t)d->vec;
        a.vec_len = NREGIONS;
        a.category_mask = PAGE_IS_WRITTEN;
        a.return_mask = PAGE_IS_WRITTEN;
        n = ioctl(d->pagemap, PAGEMAP_SCAN, &a);
        if (n < 0)
            return errprintf_errno(err, "PAGEMAP_SCAN");
        for (i = 0; i < n; i++) {
            uint64_t p;

            for (p = d->vec[i].start; p < d->vec[i].end; p += PAGE) {
                uint64_t idx = (p - d->start) / PAGE;

                bitmap[idx / 64] |= 1ULL << (idx % 64);
                pages++;
            }
        }
        if (a.walk_end <= at) {
            errno = EIO;
            return errprintf(err, "PAGEMAP_SCAN made no progress at 0x%llx",
                             (unsigned long long)at);
        }
        at = a.walk_end;
    }
    return pages;
}

int dirty_find_mapping(pid_t pid, const char *name, uint64_t *start,
                       uint64_t *len, struct vmckpt_error *err)
{
    char path[64], line[1024];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return errprintf_errno(err, "%s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long a, b;

        if (strstr(line, name) == NULL ||
            sscanf(line, "%llx-%llx", &a, &b) != 2)
            continue;
        fclose(f);
        *start = a;
        *len = b - a;
        return 0;
    }
    fclose(f);
    errno = ENOENT;
    return errprintf(err, "no mapping of '%s' in process %d", name, (int)pid);
}
