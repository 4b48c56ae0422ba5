/* SPDX-License-Identifier: GPL-2.0-or-later */
/* dirtycheck: proves the dirty tracking misses nothing. For each round:
 * pause the guest, harvest (reset), copy all guest RAM, run the guest for
 * a while, pause it, harvest again, and compare: every page whose content
 * changed must have been reported written.
 *
 *   dirtycheck PID RAM_FILE QMP_SOCKET UFFD_FD ROUNDS INTERVAL_MS
 *
 * Prints one line per round and a total; exits 0 only with 0 missed. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/hv/dirty_uffd.h"
#include "lib/util/clock.h"
#include "lib/qemu/qmp.h"
#include "lib/util/evloop.h"

#define PAGE 4096

static void must(int rc, const struct vmckpt_error *err)
{
    if (rc < 0) {
        fprintf(stderr, "dirtycheck: %s\n", err->text);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct vmckpt_error err;
    struct dirty_uffd *d;
    struct qmp *q;
    struct stat st;
    uint64_t start, len, npages, *bits, p;
    uint64_t t_changed = 0, t_reported = 0, t_missed = 0;
    uint8_t *live, *snap;
    int fd, rounds, interval, r;
    pid_t pid;

    if (argc != 7) {
        fprintf(stderr, "usage: dirtycheck PID RAM_FILE QMP_SOCKET UFFD_FD "
                        "ROUNDS INTERVAL_MS\n");
        return 2;
    }
    pid = atoi(argv[1]);
    rounds = atoi(argv[5]);
    interval = atoi(argv[6]);
    must(dirty_find_mapping(pid, argv[2], &start, &len, &err), &err);
    fd = open(argv[2], O_RDONLY);
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != len) {
        fprintf(stderr,
                "dirtycheck: %s: cannot open, or size differs from "
                "the mapping\n",
                argv[2]);
        return 2;
    }
    live = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    snap = malloc(len);
    npages = len / PAGE;
    bits = calloc((npages + 63) / 64, sizeof(*bits));
    if (live == MAP_FAILED || snap == NULL || bits == NULL) {
        perror("dirtycheck");
        return 2;
    }
    q = qmp_open(argv[3], 10000, &err);
    if (q == NULL)
        must(-1, &err);
    d = dirty_uffd_open(pid, atoi(argv[4]), start, len, 1, &err);
    if (d == NULL)
        must(-1, &err);
    printf("dirtycheck: tracking %llu pages of process %d at 0x%llx\n",
           (unsigned long long)npages, (int)pid, (unsigned long long)start);
    for (r = 1; r <= rounds; r++) {
        uint64_t changed = 0, reported, missed = 0;
        uint64_t t0, t1;
        int64_t n;

        must(qmp_execute(q, "stop", NULL, NULL, &err), &err);
        must((int)dirty_uffd_harvest(d, bits, &err), &err);
        memcpy(snap, live, len);
        memset(bits, 0, (npages + 63) / 64 * sizeof(*bits));
        must(qmp_execute(q, "cont", NULL, NULL, &err), &err);
        usleep((useconds_t)interval * 1000);
        must(qmp_execute(q, "stop", NULL, NULL, &err), &err);
        t0 = clock_mono_ms();
        n = dirty_uffd_harvest(d, bits, &err);
        t1 = clock_mono_ms();
        must(n < 0 ? -1 : 0, &err);
        reported = (uint64_t)n;
        for (p = 0; p < npages; p++) {
            if (memcmp(snap + p * PAGE, live + p * PAGE, PAGE) == 0)
                continue;
            changed++;
            if (!(bits[p / 64] & (1ULL << (p % 64)))) {
                if (missed++ < 5)
                    printf("dirtycheck: MISSED page %llu (guest phys "
                           "0x%llx)\n",
                           (unsigned long long)p,
                           (unsigned long long)(p * PAGE));
            }
        }
        printf("dirtycheck: round %d: %llu pages changed, %llu reported "
               "written, %llu missed, scan %llu ms\n",
               r, (unsigned long long)changed, (unsigned long long)reported,
               (unsigned long long)missed, (unsigned long long)(t1 - t0));
        t_changed += changed;
        t_reported += reported;
        t_missed += missed;
    }
    must(qmp_execute(q, "cont", NULL, NULL, &err), &err);
    printf("dirtycheck: %d rounds: %llu changed, %llu reported, %llu "
           "missed\n",
           rounds, (unsigned long long)t_changed,
           (unsigned long long)t_reported, (unsigned long long)t_missed);
    dirty_uffd_close(d);
    qmp_close(q);
    munmap(live, len);
    free(snap);
    free(bits);
    close(fd);
    return t_missed == 0 ? 0 : 1;
}
