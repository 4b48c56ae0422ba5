/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memwriter: a guest workload that dirties memory at a set rate and can
 * prove its memory intact. Every write makes page p hold a pattern derived
 * from (p, g), g being the global write counter, and records g in a table;
 * verification re-derives every page from the table. A restore that lost a
 * page, or mixed pages of two checkpoints, is caught by the program itself.
 *
 *   memwriter [-m MB] [-r PAGES_PER_S] [-p PROGRESS_S] [-v VERIFY_S]
 *
 * SIGUSR1 verifies now. A gap in time (the VM was paused, or restored)
 * longer than 2 s also triggers a verification. Output lines start with
 * "memwriter:" and go to stdout (the guest's serial console in the lab). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE  4096
#define MAGIC 0x6d656d7772697465ULL /* "memwrite" */

struct page_head {
    uint64_t magic;
    uint64_t page;
    uint64_t gen;
};

static volatile sig_atomic_t verify_req;

static void on_usr1(int sig)
{
    (void)sig;
    verify_req = 1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pattern of page p at generation g, one 64-bit word at a time. */
static uint64_t pattern_seed(uint64_t p, uint64_t g)
{
    uint64_t x =
        (p + 1) * 0x9e3779b97f4a7c15ULL ^ (g + 7) * 0xbf58476d1ce4e5b9ULL;

    return x ? x : 1;
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void fill(uint8_t *pg, uint64_t p, uint64_t g)
{
    struct page_head h = {MAGIC, p, g};
    uint64_t x = pattern_seed(p, g), *w = (uint64_t *)pg;
    size_t i;

    for (i = sizeof(h) / 8; i < PAGE / 8; i++)
        w[i] = next(&x);
    memcpy(pg, &h, sizeof(h));
}

/* 0 if page p holds generation g; else the first bad byte offset + 1. */
static size_t check(const uint8_t *pg, uint64_t p, uint64_t g)
{
    struct page_head h;
    uint64_t x = pattern_seed(p, g);
    const uint64_t *w = (const uint64_t *)pg;
    size_t i;

    memcpy(&h, pg, sizeof(h));
    if (h.magic != MAGIC)
        return 1;
    if (h.page != p)
        return 9;
    if (h.gen != g)
        return 17;
    for (i = sizeof(h) / 8; i < PAGE / 8; i++) {
        uint64_t want = next(&x);
        size_t b;

        if (w[i] == want)
            continue;
        for (b = 0; b < 8; b++) /* the first differing byte */
            if (((w[i] ^ want) >> (8 * b)) & 0xff)
                return i * 8 + b + 1;
    }
    return 0;
}

static uint64_t phys_of(const void *addr)
{
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0)
        return 0;
    if (pread(fd, &e, sizeof(e), (off_t)((uintptr_t)addr / PAGE * 8)) !=
        (ssize_t)sizeof(e))
        e = 0;
    close(fd);
    if (!(e & (1ULL << 63)))
        return 0;
    return (e & ((1ULL << 55) - 1)) * PAGE;
}

static uint64_t fnv(uint64_t h, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 0x100000001b3ULL;
    }
    return h;
}

int main(int argc, char **argv)
{
    unsigned long mb = 64, rate = 1000, progress = 1, verify_every = 0;
    uint64_t npages, gen = 0, digest = 0xcbf29ce484222325ULL, p;
    uint64_t *last;
    uint8_t *buf;
    double t_last, t_progress, t_verify, credit = 0;
    int opt;

    while ((opt = getopt(argc, argv, "m:r:p:v:")) != -1) {
        switch (opt) {
        case 'm':
            mb = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rate = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            progress = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            verify_every = strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(stderr, "usage: memwriter [-m MB] [-r PAGES_PER_S] "
                            "[-p PROGRESS_S] [-v VERIFY_S]\n");
            return 2;
        }
    }
    if (mb < 1 || mb > 1 << 20) {
        fprintf(stderr, "memwriter: -m %lu: 1 MiB to 1 TiB\n", mb);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    npages = (uint64_t)mb * 1024 * 1024 / PAGE;
    buf = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    last = mmap(NULL, npages * sizeof(*last), PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (buf == MAP_FAILED || last == MAP_FAILED) {
        perror("memwriter: mmap");
        return 1;
    }
    /* keep the pages where they are: the lab finds them by physical
     * address */
    if (mlock(buf, npages * PAGE) < 0 ||
        mlock(last, npages * sizeof(*last)) < 0)
        perror("memwriter: mlock (continuing)");
    for (p = 0; p < npages; p++) {
        fill(buf + p * PAGE, p, 0);
        last[p] = 0;
    }
    signal(SIGUSR1, on_usr1);
    printf("memwriter: %llu pages (%lu MiB), %lu pages/s, pid %d\n",
           (unsigned long long)npages, mb, rate, (int)getpid());
    printf("memwriter: page 0 at phys 0x%llx, page %llu at phys 0x%llx\n",
           (unsigned long long)phys_of(buf), (unsigned long long)npages / 2,
           (unsigned long long)phys_of(buf + npages / 2 * PAGE));
    t_last = t_progress = t_verify = now();
    for (;;) {
        double t = now(), gap = t - t_last;
        uint64_t due;

        if (gap > 2.0) {
            printf("memwriter: resumed after a gap of %.1f s at gen=%llu; "
                   "verifying\n",
                   gap, (unsigned long long)gen);
            verify_req = 1;
        }
        t_last = t;
        if (verify_req || (verify_every && t - t_verify >= verify_every)) {
            uint64_t bad = 0, first = 0;
            size_t off = 0;

            verify_req = 0;
            t_verify = t;
            for (p = 0; p < npages; p++) {
                size_t o = check(buf + p * PAGE, p, last[p]);

                if (o != 0 && bad++ == 0) {
                    first = p;
                    off = o - 1;
                }
            }
            if (bad == 0)
                printf("memwriter: verify PASS gen=%llu digest=%016llx "
                       "pages=%llu\n",
                       (unsigned long long)gen, (unsigned long long)digest,
                       (unsigned long long)npages);
            else
                printf("memwriter: verify FAIL gen=%llu: %llu bad page(s), "
                       "first page %llu (phys 0x%llx) at byte %zu\n",
                       (unsigned long long)gen, (unsigned long long)bad,
                       (unsigned long long)first,
                       (unsigned long long)phys_of(buf + first * PAGE), off);
        }
        credit += rate * gap;
        if (credit > rate)
            credit = rate; /* never try to catch up more than 1 s */
        due = (uint64_t)credit;
        credit -= (double)due;
        while (due-- > 0) {
            gen++;
            /* an odd multiplier walks all pages in a scattered order */
            p = (gen * 2654435761ULL) % npages;
            fill(buf + p * PAGE, p, gen);
            last[p] = gen;
            digest = fnv(fnv(digest, p), gen);
        }
        if (progress && t - t_progress >= progress) {
            printf("memwriter: gen=%llu digest=%016llx\n",
                   (unsigned long long)gen, (unsigned long long)digest);
            t_progress = t;
        }
        usleep(10000);
    }
}
