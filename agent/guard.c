/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's side of the fence guard (guard.h): the shared page, the
 * guard process started with it as its descriptor 3, and the guard an
 * earlier agent left behind ended first. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "lib/util/log.h"

extern char **environ;

static struct guard_shm *shm;

/* The guard an earlier agent of this run_dir started, if it still runs:
 * it would stop the guests this agent takes over. */
static void end_old_guard(const char *run_dir)
{
    char path[4200], comm[32] = "";
    FILE *f;
    int pid = 0;

    snprintf(path, sizeof(path), "%s/guard.pid", run_dir);
    f = fopen(path, "re");
    if (f == NULL)
        return;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    f = pid > 1 ? fopen(path, "re") : NULL;
    if (f != NULL) {
        if (fgets(comm, sizeof(comm), f) == NULL)
            comm[0] = '\0';
        fclose(f);
    }
    if (strncmp(comm, "vmckpt-guard", 12) == 0 && kill(pid, SIGTERM) == 0)
        log_info("fence guard: ended the guard of an earlier agent (pid %d)",
                 pid);
}

pid_t guard_pid(void)
{
    return shm != NULL
               ? (pid_t)__atomic_load_n(&shm->guard_pid, __ATOMIC_ACQUIRE)
               : 0;
}

int guard_start(const char *program, const char *run_dir, const char *log)
{
    posix_spawn_file_actions_t fa;
    char *argv[] = {(char *)"vmckpt-guard", (char *)run_dir, NULL, NULL, NULL};
    char pid_arg[16];
    pid_t pid;
    int fd, rc;

    end_old_guard(run_dir);
    if (access(program, X_OK) < 0) {
        log_warn("fence guard %s: %s; running without one: guests of a hung "
                 "or killed agent are not stopped when its lease ends",
                 program, strerror(errno));
        return -1;
    }
    fd = memfd_create("vmckpt-guard", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 4096) < 0 ||
        (shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
            MAP_FAILED) {
        log_errno("fence guard: shared page");
        shm = NULL;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(pid_arg, sizeof(pid_arg), "%d", (int)getpid());
    argv[2] = pid_arg;
    argv[3] = (char *)log;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 3);
    /* never the terminal or SSH session that started the agent: it would
     * not end while the guard holds it; errors go where the log goes */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (log[0] == '/')
        posix_spawn_file_actions_addopen(&fa, 2, log,
                                         O_WRONLY | O_APPEND | O_CREAT, 0640);
    else if (strcmp(log, "syslog") == 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc = posix_spawn(&pid, program, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0) {
        log_warn("fence guard %s: %s; running without one", program,
                 strerror(rc));
        munmap(shm, 4096);
        shm = NULL;
        return -1;
    }
    __atomic_store_n(&shm->guard_pid, (uint32_t)pid, __ATOMIC_RELEASE);
    log_info("fence guard started (pid %d)", (int)pid);
    return 0;
}

void guard_lease(uint64_t until)
{
    if (shm != NULL)
        __atomic_store_n(&shm->lease_until, until, __ATOMIC_RELEASE);
}

void guard_paused(uint64_t until)
{
    if (shm != NULL)
        __atomic_store_n(&shm->paused_for, until, __ATOMIC_RELEASE);
}

void guard_beat(uint64_t now)
{
    if (shm != NULL)
        __atomic_store_n(&shm->beat, now, __ATOMIC_RELEASE);
}

void guard_quit(void)
{
    if (shm == NULL)
        return;
    __atomic_store_n(&shm->quit, 1, __ATOMIC_RELEASE);
    munmap(shm, 4096);
    shm = NULL;
}
