/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-guard: the fence guard of one agent (guard.h), started by it.
 *
 *   vmckpt-guard RUN_DIR AGENT_PID LOG      (descriptor 3: the shared page)
 *
 * LOG: "stderr", "syslog" or the agent's log file.
 *
 * Every GUARD_CHECK_MS it reads the agent's lease. Once the lease has
 * ended GUARD_GRACE_MS ago, the agent has not said it paused every guest
 * for it, and the agent is hung (its loop silent GUARD_SILENT_MS) or gone,
 * it stops (SIGSTOP) the QEMU of each guest recorded in RUN_DIR (the
 * JOB-VM.pid files; a process counts only if its command line names
 * RUN_DIR, so a reused pid is left alone). It ends when the agent stops
 * cleanly, on SIGTERM, or when the agent is gone and nothing is left to
 * guard. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

static volatile sig_atomic_t ended;

static void on_term(int signo)
{
    (void)signo;
    ended = 1;
}

/* 1 if process 'pid' runs with 'dir' in its command line. */
static int runs_from(pid_t pid, const char *dir)
{
    char path[64], buf[8192];
    size_t n, i;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    for (i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, dir) != NULL;
}

/* Stop the QEMU of every guest recorded in 'dir'; how many. */
static int stop_guests(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (d == NULL) {
        log_errno("cannot read %s", dir);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4200];
        FILE *f;
        int pid = 0;

        if (len < 5 || strcmp(de->d_name + len - 4, ".pid") != 0 ||
            strcmp(de->d_name, "guard.pid") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "re");
        if (f == NULL)
            continue;
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
        if (pid <= 1 || !runs_from(pid, dir))
            continue;
        if (kill(pid, SIGSTOP) < 0) {
            log_errno("cannot stop pid %d (%.*s)", pid, (int)(len - 4),
                      de->d_name);
            continue;
        }
        log_warn("stopped the QEMU of %.*s (pid %d)", (int)(len - 4),
                 de->d_name, pid);
        n++;
    }
    closedir(d);
    return n;
}

static void record_pid(const char *dir)
{
    char path[4200], tmp[4300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/guard.pid", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    if (f == NULL)
        return;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) == 0)
        rename(tmp, path);
}

/* One check; 1 when the guard's work is over. */
static int check(struct guard_shm *shm, const char *dir, pid_t agent)
{
    uint64_t now = clock_mono_ms();
    uint64_t lease = __atomic_load_n(&shm->lease_until, __ATOMIC_ACQUIRE);
    uint64_t paused = __atomic_load_n(&shm->paused_for, __ATOMIC_ACQUIRE);
    uint64_t beat = __atomic_load_n(&shm->beat, __ATOMIC_ACQUIRE);
    uint64_t stopped = __atomic_load_n(&shm->stopped_for, __ATOMIC_ACQUIRE);
    int gone = kill(agent, 0) < 0 && errno == ESRCH;
    int done = lease == 0 || paused == lease || stopped == lease;

    if (__atomic_load_n(&shm->quit, __ATOMIC_ACQUIRE))
        return 1;
    if (!done && now > lease + GUARD_GRACE_MS &&
        (gone || now > beat + GUARD_SILENT_MS)) {
        log_warn("the lease of agent %d ended %llu ms ago and %s: stopping "
                 "its guests",
                 (int)agent, (unsigned long long)(now - lease),
                 gone ? "the agent is gone"
                      : "its loop is silent (hung or stopped)");
        log_warn("%d guest(s) stopped", stop_guests(dir));
        __atomic_store_n(&shm->stopped_for, lease, __ATOMIC_RELEASE);
        done = 1;
    }
    if (gone && done) {
        log_info("agent %d is gone; nothing left to guard", (int)agent);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct timespec tick = {0, GUARD_CHECK_MS * 1000000L};
    struct guard_shm *shm;
    struct sigaction sa;
    pid_t agent;

    if (argc != 4) {
        fprintf(stderr, "usage: vmckpt-guard RUN_DIR AGENT_PID LOG (started "
                        "by vmckpt-agent, with its shared page as fd 3)\n");
        return 2;
    }
    if (argv[3][0] == '/') {
        if (log_init_file("vmckpt-guard", argv[3], LOG_INFO) < 0)
            log_init("vmckpt-guard", LOG_DEST_STDERR, LOG_INFO);
        log_detach_stderr();
    } else {
        log_init("vmckpt-guard",
                 strcmp(argv[3], "syslog") == 0 ? LOG_DEST_SYSLOG
                                                : LOG_DEST_STDERR,
                 LOG_INFO);
    }
    agent = (pid_t)atoi(argv[2]);
    shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
    if (agent <= 1 || shm == MAP_FAILED) {
        log_errno("no shared page from the agent");
        return 2;
    }
    close(3);
    prctl(PR_SET_NAME, "vmckpt-guard");
    /* the agent's loop blocks the signals it takes: not here */
    {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    /* a stop of the agent's terminal or group must not stop the guard */
    setsid();
    record_pid(argv[1]);
    while (!ended && !check(shm, argv[1], agent))
        nanosleep(&tick, NULL);
    log_fini();
    return 0;
}
