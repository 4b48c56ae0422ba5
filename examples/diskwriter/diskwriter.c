/* SPDX-License-Identifier: GPL-2.0-or-later */
/* diskwriter: a guest workload that writes numbered files at a set rate and
 * can prove the directory holds exactly the files it wrote, each intact.
 * The counter lives in the process's memory, so after a restore of the
 * whole VM it says which files the restored disk must hold. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC   0x6469736b77726974ULL /* "diskwrit" */
#define CHUNK   (64 * 1024)
#define MAX_KIB (1024UL * 1024)
#define WHY_LEN 160

/* The start of every file; len counts the pattern bytes after it. */
struct file_head {
    uint64_t magic;
    uint64_t n;
    uint64_t len;
};

struct writer {
    const char *dir;
    int dfd;              /* the directory, for openat/renameat and fsync */
    uint64_t count;       /* f0 .. f(count-1) are whole and durable */
    uint64_t len;         /* pattern bytes per file */
    unsigned char *chunk; /* CHUNK bytes of scratch */
    unsigned char *want;  /* CHUNK bytes of expected content */
};

static volatile sig_atomic_t verify_req;

/* The usage line, and with full the whole description. */
static void usage(FILE *f, int full)
{
    static const char *const text[] = {
        "usage: diskwriter -d DIR [-s KiB] [-r FILES_PER_S] [-p PROGRESS_S]",
        "",
        "Writes DIR/f0, DIR/f1, ... at FILES_PER_S files a second (default",
        "10), each a header {magic, n, length} and KiB (default 64) of a",
        "pattern derived from its number n. A file is written as",
        "DIR/.tmp<n>, fsync'd, renamed to f<n>, and the directory fsync'd",
        "before the counter moves past it: a file is whole or absent.",
        "",
        "DIR is created if missing. A fresh start refuses a DIR that holds",
        "anything but lost+found: it never takes over or clears files that",
        "this run did not write (remove them first).",
        "",
        "Prints \"diskwriter: n=<count>\" every PROGRESS_S seconds (default",
        "1; 0 for never). SIGUSR1, or a gap of more than 2 s in its clock",
        "(the VM was paused or restored), verifies that f<i> exists with",
        "the right content for every i < count and for no other i, removes",
        "any leftover .tmp file, prints \"diskwriter: verify PASS n=<count>\"",
        "or \"diskwriter: verify FAIL f<i>: <why>\", and goes on writing.",
        "",
        "Exit status: 1 on a write error (a full disk included), 2 on bad",
        "usage.",
    };
    size_t i;

    if (!full) {
        fprintf(f, "%s\n(diskwriter --help says more)\n", text[0]);
        return;
    }
    for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
        fprintf(f, "%s\n", text[i]);
}

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

/* The pattern of file n starts from this word; xorshift64 goes on. */
static uint64_t pattern_seed(uint64_t n)
{
    uint64_t x = (n + 1) * 0x9e3779b97f4a7c15ULL ^ 0x94d049bb133111ebULL;

    return x ? x : 1;
}

static uint64_t next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* The next len bytes of the pattern (len a multiple of 8). */
static void fill(unsigned char *buf, size_t len, uint64_t *x)
{
    size_t i;

    for (i = 0; i < len; i += 8) {
        uint64_t w = next(x);

        memcpy(buf + i, &w, 8);
    }
}

static int write_full(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    while (len > 0) {
        ssize_t r = write(fd, p, len);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Bytes read, short only at end of file; -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;

    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int write_body(struct writer *w, int fd, uint64_t n)
{
    struct file_head h = {MAGIC, n, w->len};
    uint64_t x = pattern_seed(n), left = w->len;

    if (write_full(fd, &h, sizeof(h)) < 0)
        return -1;
    while (left > 0) {
        size_t c = left < CHUNK ? (size_t)left : CHUNK;

        fill(w->chunk, c, &x);
        if (write_full(fd, w->chunk, c) < 0)
            return -1;
        left -= c;
    }
    return 0;
}

/* Write file n so that it is whole or absent, then count it. */
static int write_file(struct writer *w)
{
    char tmp[32], name[32];
    const char *step = "open";
    uint64_t n = w->count;
    int fd;

    snprintf(tmp, sizeof(tmp), ".tmp%llu", (unsigned long long)n);
    snprintf(name, sizeof(name), "f%llu", (unsigned long long)n);
    fd = openat(w->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    step = "write";
    if (write_body(w, fd, n) < 0)
        goto fail;
    step = "fsync";
    if (fsync(fd) < 0)
        goto fail;
    step = "close";
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    step = "rename";
    if (renameat(w->dfd, tmp, w->dfd, name) < 0)
        goto fail;
    step = "fsync of the directory";
    if (fsync(w->dfd) < 0)
        goto fail;
    w->count = n + 1;
    return 0;
fail:
    printf("diskwriter: %s/%s: %s: %s\n", w->dir, tmp, step, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* 0 if the rest of fd (after the header) is the pattern that starts at x;
 * else -1 with the reason in why. */
static int check_body(struct writer *w, int fd, uint64_t x, char *why)
{
    uint64_t left = w->len, off = sizeof(struct file_head);

    while (left > 0) {
        size_t c = left < CHUNK ? (size_t)left : CHUNK, b;
        ssize_t r = read_full(fd, w->chunk, c);

        if (r < 0) {
            snprintf(why, WHY_LEN, "read: %s", strerror(errno));
            return -1;
        }
        if ((size_t)r < c) {
            snprintf(why, WHY_LEN, "ends at byte %llu",
                     (unsigned long long)(off + (uint64_t)r));
            return -1;
        }
        fill(w->want, c, &x);
        if (memcmp(w->chunk, w->want, c) != 0) {
            for (b = 0; w->chunk[b] == w->want[b]; b++)
                ;
            snprintf(why, WHY_LEN, "content differs at byte %llu",
                     (unsigned long long)(off + b));
            return -1;
        }
        off += c;
        left -= c;
    }
    return 0;
}

/* 0 if f<n> holds exactly what write_file() put there; else -1 with the
 * reason in why. */
static int check_file(struct writer *w, uint64_t n, char *why)
{
    uint64_t want_size = sizeof(struct file_head) + w->len;
    struct file_head h;
    struct stat st;
    char name[32];
    int fd, rc = -1;

    snprintf(name, sizeof(name), "f%llu", (unsigned long long)n);
    fd = openat(w->dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, WHY_LEN, "%s",
                 errno == ENOENT ? "missing" : strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        snprintf(why, WHY_LEN, "fstat: %s", strerror(errno));
    } else if ((uint64_t)st.st_size != want_size) {
        snprintf(why, WHY_LEN, "size %lld, want %llu", (long long)st.st_size,
                 (unsigned long long)want_size);
    } else if (read_full(fd, &h, sizeof(h)) != (ssize_t)sizeof(h)) {
        snprintf(why, WHY_LEN, "cannot read the header");
    } else if (h.magic != MAGIC) {
        snprintf(why, WHY_LEN, "bad magic %016llx",
                 (unsigned long long)h.magic);
    } else if (h.n != n || h.len != w->len) {
        snprintf(why, WHY_LEN, "header says n=%llu len=%llu",
                 (unsigned long long)h.n, (unsigned long long)h.len);
    } else {
        rc = check_body(w, fd, pattern_seed(n), why);
    }
    close(fd);
    return rc;
}

/* The file number of a name "f<n>" written by us, or -1. */
static int file_number(const char *name, uint64_t *n)
{
    char *end;

    if (name[0] != 'f' || name[1] < '0' || name[1] > '9' ||
        (name[1] == '0' && name[2] != '\0'))
        return -1;
    errno = 0;
    *n = strtoull(name + 1, &end, 10);
    return *end == '\0' && errno == 0 ? 0 : -1;
}

/* Remove leftover .tmp files; count the files numbered count or more, and
 * describe the first of them in first/why. -1 if the directory cannot be
 * read. */
static long scan_dir(struct writer *w, uint64_t *first, char *why)
{
    struct dirent *de;
    long extra = 0;
    uint64_t n;
    DIR *d;
    int fd = dup(w->dfd);

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        snprintf(why, WHY_LEN, "opendir: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, ".tmp", 4) == 0) {
            if (unlinkat(w->dfd, de->d_name, 0) == 0)
                printf("diskwriter: removed a leftover %s\n", de->d_name);
            else
                printf("diskwriter: cannot remove %s: %s\n", de->d_name,
                       strerror(errno));
        } else if (file_number(de->d_name, &n) == 0 && n >= w->count) {
            if (extra++ == 0) {
                *first = n;
                snprintf(why, WHY_LEN, "present, but n=%llu",
                         (unsigned long long)w->count);
            }
        }
    }
    closedir(d);
    return extra;
}

/* Check the directory against the counter and print the verdict. */
static void verify(struct writer *w)
{
    char why[WHY_LEN], why_extra[WHY_LEN];
    uint64_t i, first = 0, first_extra = 0, bad = 0;
    long extra = scan_dir(w, &first_extra, why_extra);

    if (extra < 0) {
        printf("diskwriter: verify FAIL %s: %s\n", w->dir, why_extra);
        return;
    }
    for (i = 0; i < w->count; i++) {
        char why_i[WHY_LEN];

        if (check_file(w, i, why_i) == 0)
            continue;
        if (bad++ == 0) {
            first = i;
            memcpy(why, why_i, sizeof(why));
        }
    }
    if (bad == 0 && extra == 0) {
        printf("diskwriter: verify PASS n=%llu\n",
               (unsigned long long)w->count);
        return;
    }
    if (bad == 0) {
        first = first_extra;
        memcpy(why, why_extra, sizeof(why));
    }
    printf("diskwriter: verify FAIL f%llu: %s (%llu bad, %ld extra, "
           "n=%llu)\n",
           (unsigned long long)first, why, (unsigned long long)bad, extra,
           (unsigned long long)w->count);
}

/* A fresh start needs a directory holding none of our files (a new file
 * system's lost+found is allowed); create it if missing. */
static int open_dir(struct writer *w)
{
    struct dirent *de;
    DIR *d;

    if (mkdir(w->dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "diskwriter: mkdir %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    d = opendir(w->dir);
    if (d == NULL) {
        fprintf(stderr, "diskwriter: %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, "lost+found") == 0)
            continue;
        fprintf(stderr,
                "diskwriter: %s is not empty (it holds %s); refusing to "
                "start over files this run did not write\n",
                w->dir, de->d_name);
        closedir(d);
        return -1;
    }
    closedir(d);
    w->dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dfd < 0) {
        fprintf(stderr, "diskwriter: %s: %s\n", w->dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int parse_ulong(const char *s, unsigned long max, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, 10);
    return s[0] >= '0' && s[0] <= '9' && *end == '\0' && errno == 0 && *v <= max
               ? 0
               : -1;
}

/* An option's number, or -1 after saying what is allowed. */
static int option_value(int opt, const char *arg, unsigned long min,
                        unsigned long max, unsigned long *v)
{
    if (parse_ulong(arg, max, v) == 0 && *v >= min)
        return 0;
    fprintf(stderr, "diskwriter: -%c %s: want %lu to %lu\n", opt, arg, min,
            max);
    return -1;
}

/* The options into w, rate and progress: 0 to run, or -1 to exit at once
 * with *status (after --help, or bad usage). */
static int parse_args(int argc, char **argv, struct writer *w,
                      unsigned long *rate, unsigned long *progress, int *status)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    unsigned long kib = 64;
    int opt, bad = 0;

    while ((opt = getopt_long(argc, argv, "d:s:r:p:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            w->dir = optarg;
            break;
        case 's':
            bad |= option_value(opt, optarg, 1, MAX_KIB, &kib) < 0;
            break;
        case 'r':
            bad |= option_value(opt, optarg, 0, 100000, rate) < 0;
            break;
        case 'p':
            bad |= option_value(opt, optarg, 0, 86400, progress) < 0;
            break;
        case 'h':
            usage(stdout, 1);
            *status = 0;
            return -1;
        default:
            bad = 1; /* getopt said why */
        }
    }
    if (!bad && optind != argc) {
        fprintf(stderr, "diskwriter: unexpected argument %s\n", argv[optind]);
        bad = 1;
    }
    if (!bad && w->dir == NULL) {
        fprintf(stderr, "diskwriter: -d DIR is required\n");
        bad = 1;
    }
    if (bad) {
        usage(stderr, 0);
        *status = 2;
        return -1;
    }
    w->len = (uint64_t)kib * 1024;
    return 0;
}

/* Seconds since the previous call: a big gap means the VM was paused or
 * restored, since none of our own steps takes that long. */
static double gap_since(double *t_last)
{
    double t = now(), gap = t - *t_last;

    *t_last = t;
    return gap;
}

static void note_gap(double gap, uint64_t count)
{
    if (gap > 2.0 && !verify_req) {
        printf("diskwriter: resumed after a gap of %.1f s at n=%llu; "
               "verifying\n",
               gap, (unsigned long long)count);
        verify_req = 1;
    }
}

int main(int argc, char **argv)
{
    struct writer w = {.dfd = -1};
    unsigned long rate = 10, progress = 1;
    double t_last, t_progress, credit = 0;
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_RESTART};
    int status;

    if (parse_args(argc, argv, &w, &rate, &progress, &status) < 0)
        return status;
    setvbuf(stdout, NULL, _IOLBF, 0);
    w.chunk = malloc(CHUNK);
    w.want = malloc(CHUNK);
    if (w.chunk == NULL || w.want == NULL) {
        fprintf(stderr, "diskwriter: out of memory\n");
        return 1;
    }
    if (open_dir(&w) < 0)
        return 1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    printf("diskwriter: %s, %llu KiB per file, %lu files/s, pid %d\n", w.dir,
           (unsigned long long)w.len / 1024, rate, (int)getpid());
    t_last = t_progress = now();
    for (;;) {
        double gap = gap_since(&t_last);
        uint64_t due;

        note_gap(gap, w.count);
        if (verify_req) {
            verify_req = 0;
            verify(&w);
            gap_since(&t_last); /* our own reading is no gap */
            gap = 0;
        }
        credit += rate * gap;
        if (credit > rate)
            credit = rate; /* never try to catch up more than 1 s */
        due = (uint64_t)credit;
        credit -= (double)due;
        while (due-- > 0 && !verify_req) {
            if (write_file(&w) < 0)
                return 1;
            note_gap(gap_since(&t_last), w.count);
        }
        if (progress && t_last - t_progress >= progress) {
            printf("diskwriter: n=%llu\n", (unsigned long long)w.count);
            fflush(stdout);
            t_progress = t_last;
        }
        usleep(10000);
    }
}
