/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Daemonizing with a start-up report to the parent, pid and port files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"

static int ready_fd = -1;

int daemon_detach(struct vmckpt_error *err)
{
    int p[2], null;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        return errprintf_errno(err, "pipe");
    pid = fork();
    if (pid < 0)
        return errprintf_errno(err, "fork");
    if (pid > 0) {
        char c;
        int status;
        ssize_t n;

        close(p[1]);
        do {
            n = read(p[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n == 1)
            _exit(0);
        /* the child (or its child) ended before reporting ready */
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) != 0)
            _exit(WEXITSTATUS(status));
        _exit(1);
    }
    close(p[0]);
    if (setsid() < 0)
        return errprintf_errno(err, "setsid");
    pid = fork();
    if (pid < 0)
        return errprintf_errno(err, "fork");
    if (pid > 0)
        _exit(0); /* the session leader goes; the grandchild holds p[1] */
    ready_fd = p[1];
    if (chdir("/") < 0)
        return errprintf_errno(err, "chdir /");
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    return 0;
}

void daemon_ready(const char *status)
{
    notify_ready(status);
    if (ready_fd >= 0) {
        ssize_t n;

        /* before the parent goes: whoever waits for the end of our
         * stderr (an ssh session, a pipe) is not kept waiting for a
         * daemon that does not log there */
        log_detach_stderr();
        n = write(ready_fd, "r", 1);
        (void)n;
        close(ready_fd);
        ready_fd = -1;
    }
}

/* The process 'pid' runs the program 'prog' (its executable's name), so a
 * stale pid file whose number was reused is not taken for the daemon. */
static int runs_program(pid_t pid, const char *prog)
{
    char link[64], exe[4096], *base;
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
    n = readlink(link, exe, sizeof(exe) - 1);
    if (n < 0)
        return 0;
    exe[n] = '\0';
    if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
        exe[n - 10] = '\0'; /* upgraded while it ran */
    base = strrchr(exe, '/');
    base = base != NULL ? base + 1 : exe;
    return strcmp(base, prog) == 0;
}

static int gone(pid_t pid)
{
    char path[64], line[256], *p;
    FILE *f;
    int zombie = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return 1;
    if (fgets(line, sizeof(line), f) != NULL) {
        p = strrchr(line, ')');
        zombie = p != NULL && p[1] == ' ' && p[2] == 'Z';
    }
    fclose(f);
    return zombie;
}

/* The running daemon 'prog' of 'pidfile' into *pid: 1 if it runs, 0 if
 * not (said on stdout; a stale file is removed), -1 on an error (said on
 * stderr). */
static int running(const char *pidfile, const char *prog, pid_t *pid)
{
    char buf[32], *end;
    long v;
    FILE *f;

    f = fopen(pidfile, "re");
    if (f == NULL) {
        if (errno == ENOENT) {
            printf("%s: not running (no %s)\n", prog, pidfile);
            return 0;
        }
        fprintf(stderr, "%s: cannot read %s: %s\n", prog, pidfile,
                strerror(errno));
        return -1;
    }
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    v = strtol(buf, &end, 10);
    if (end == buf || (*end != '\n' && *end != '\0') || v <= 1 ||
        v > 0x3fffffff) {
        fprintf(stderr, "%s: %s does not hold a process number\n", prog,
                pidfile);
        return -1;
    }
    *pid = (pid_t)v;
    if (gone(*pid) || !runs_program(*pid, prog)) {
        printf("%s: not running (the pid file %s named %d, which is no "
               "%s; removed)\n",
               prog, pidfile, (int)*pid, prog);
        unlink(pidfile);
        return 0;
    }
    return 1;
}

int daemon_stop(const char *pidfile, const char *prog, unsigned timeout_ms)
{
    unsigned waited = 0;
    pid_t pid;
    int rc = running(pidfile, prog, &pid);

    if (rc <= 0)
        return rc < 0 ? 1 : 0;
    if (kill(pid, SIGTERM) < 0) {
        fprintf(stderr, "%s: cannot signal pid %d: %s\n", prog, (int)pid,
                strerror(errno));
        return 1;
    }
    while (!gone(pid)) {
        if (waited >= timeout_ms) {
            fprintf(stderr,
                    "%s: pid %d still runs %u s after SIGTERM; see its log "
                    "(or kill -KILL %d)\n",
                    prog, (int)pid, timeout_ms / 1000, (int)pid);
            return 1;
        }
        usleep(50000);
        waited += 50;
    }
    printf("%s: stopped (pid %d)\n", prog, (int)pid);
    return 0;
}

int daemon_signal_reload(const char *pidfile, const char *prog)
{
    pid_t pid;
    int rc = running(pidfile, prog, &pid);

    if (rc <= 0)
        return rc < 0 ? 1 : 0;
    if (kill(pid, SIGHUP) < 0) {
        fprintf(stderr, "%s: cannot signal pid %d: %s\n", prog, (int)pid,
                strerror(errno));
        return 1;
    }
    printf("%s: asked pid %d to reload (SIGHUP); its log says how it went\n",
           prog, (int)pid);
    return 0;
}

int daemon_write_file(const char *path, const char *text,
                      struct vmckpt_error *err)
{
    char tmp[4096];
    FILE *f;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return errprintf_errno(err, "%s", path);
    }
    f = fopen(tmp, "we");
    if (f == NULL)
        return errprintf_errno(err, "cannot create %s", tmp);
    fprintf(f, "%s\n", text);
    if (fclose(f) != 0) {
        unlink(tmp);
        return errprintf_errno(err, "cannot write %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return errprintf_errno(err, "cannot rename %s", tmp);
    }
    return 0;
}

int daemon_mkdirs(const char *path, unsigned mode, struct vmckpt_error *err)
{
    char buf[4096];
    size_t i, n = strlen(path);

    if (n == 0 || n >= sizeof(buf)) {
        errno = EINVAL;
        return errprintf(err, "bad directory name '%s'", path);
    }
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return errprintf_errno(err, "cannot create directory %s", buf);
        buf[i] = path[i];
    }
    return 0;
}
