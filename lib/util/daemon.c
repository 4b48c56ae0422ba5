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

void daemon_ready(void)
{
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

int daemon_stop(const char *pidfile, const char *prog, unsigned timeout_ms)
{
    char buf[32], *end;
    unsigned waited = 0;
    long v;
    FILE *f;
    pid_t pid;

    f = fopen(pidfile, "re");
    if (f == NULL) {
        if (errno == ENOENT) {
            printf("%s: not running (no %s)\n", prog, pidfile);
            return 0;
        }
        fprintf(stderr, "%s: cannot read %s: %s\n", prog, pidfile,
                strerror(errno));
        return 1;
    }
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    v = strtol(buf, &end, 10);
    if (end == buf || (*end != '\n' && *end != '\0') || v <= 1 ||
        v > 0x3fffffff) {
        fprintf(stderr, "%s: %s does not hold a process number\n", prog,
                pidfile);
        return 1;
    }
    pid = (pid_t)v;
    if (gone(pid) || !runs_program(pid, prog)) {
        printf("%s: not running (the pid file %s named %d, which is no "
               "%s; removed)\n",
               prog, pidfile, (int)pid, prog);
        unlink(pidfile);
        return 0;
    }
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

#include <getopt.h>
#include <strings.h>

static void apply_override(struct conf *conf, const char *arg)
{
    char buf[512], *dot, *eq;

    snprintf(buf, sizeof(buf), "%s", arg);
    dot = strchr(buf, '.');
    eq = strchr(buf, '=');
    if (dot == NULL || eq == NULL || dot > eq || dot == buf || eq == dot + 1) {
        fprintf(stderr, "-o %s: expected SECTION.KEY=VALUE\n", arg);
        exit(2);
    }
    *dot = '\0';
    *eq = '\0';
    if (conf_set(conf, buf, dot + 1, eq + 1) < 0) {
        perror("-o");
        exit(2);
    }
}

void daemon_parse_args(int argc, char **argv, const char *default_config,
                       const char *usage, const struct conf_section keys[],
                       struct daemon_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"debug", no_argument, NULL, 'd'},
        {"syslog", no_argument, NULL, 's'},
        {"set", required_argument, NULL, 'o'},
        {"stop", no_argument, NULL, 'S'},
        {"config-keys", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *overrides[64];
    int nover = 0, ch, i;
    struct vmckpt_error err;

    memset(o, 0, sizeof(*o));
    while ((ch = getopt_long(argc, argv, "c:fdso:hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config_path = optarg;
            break;
        case 'f':
            o->foreground = 1;
            break;
        case 'd':
            o->debug = 1;
            break;
        case 's':
            o->use_syslog = 1;
            break;
        case 'o':
            if (nover == (int)(sizeof(overrides) / sizeof(overrides[0]))) {
                fprintf(stderr, "too many -o options\n");
                exit(2);
            }
            overrides[nover++] = optarg;
            break;
        case 'S':
            o->stop = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        case 'V':
            printf("%s\n", PACKAGE_STRING);
            exit(0);
        case 'K':
            conf_print_keys(stdout, keys);
            exit(0);
        default:
            fprintf(stderr, "Try '%s --help'.\n", argv[0]);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n",
                argv[0], argv[optind], argv[0]);
        exit(2);
    }
    if (o->config_path == NULL && access(default_config, F_OK) == 0)
        o->config_path = default_config;
    if (o->config_path != NULL)
        o->conf = conf_load(o->config_path, &err);
    else
        o->conf = conf_create();
    if (o->conf == NULL) {
        fprintf(stderr, "%s: %s\n", argv[0], err.text);
        exit(2);
    }
    for (i = 0; i < nover; i++)
        apply_override(o->conf, overrides[i]);
}

void daemon_setup_log(const char *ident, const char *section,
                      const struct daemon_opts *o)
{
    static const char *const names[] = {"error", "warning", "notice", "info",
                                        "debug"};
    static const int prios[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
                                LOG_DEBUG};
    const char *dest = conf_get(o->conf, section, "log", "stderr");
    const char *level = conf_get(o->conf, section, "log_level", "info");
    int prio = -1;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(level, names[i]) == 0)
            prio = prios[i];
    }
    if (prio < 0) {
        fprintf(stderr,
                "%s: [%s] log_level = '%s': expected error, warning, "
                "notice, info or debug\n",
                ident, section, level);
        exit(2);
    }
    if (strcmp(dest, "stderr") != 0 && strcmp(dest, "syslog") != 0 &&
        dest[0] != '/') {
        fprintf(stderr,
                "%s: [%s] log = '%s': expected stderr, syslog or the "
                "absolute path of a file\n",
                ident, section, dest);
        exit(2);
    }
    if (o->debug)
        prio = LOG_DEBUG;
    if (dest[0] == '/' && !o->use_syslog) {
        if (log_init_file(ident, dest, prio) < 0) {
            fprintf(stderr, "%s: [%s] log = %s: %s\n", ident, section, dest,
                    strerror(errno));
            exit(2);
        }
        return;
    }
    log_init(ident,
             (o->use_syslog || strcmp(dest, "syslog") == 0) ? LOG_DEST_SYSLOG
                                                            : LOG_DEST_STDERR,
             prio);
}
