/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Log lines to stderr or a file (with a timestamp) or to syslog. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static char log_ident[64] = "vmckpt";
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_max = LOG_INFO;
static int log_syslog_open;
static int log_fd = -1;     /* LOG_DEST_FILE */
static int log_echo;        /* file: warnings and errors also to stderr */
static int log_stderr_file; /* stderr was made the log file */
static char log_path[4096]; /* LOG_DEST_FILE: the file's name */

const char *log_priority_name(int priority)
{
    switch (priority) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void log_init(const char *ident, enum log_dest dest, int max_priority)
{
    if (ident != NULL)
        snprintf(log_ident, sizeof(log_ident), "%s", ident);
    log_fini();
    log_dest = dest;
    log_max = max_priority;
    if (dest == LOG_DEST_SYSLOG) {
        openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_syslog_open = 1;
    }
}

int log_init_file(const char *ident, const char *path, int max_priority)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return -1;
    log_init(ident, LOG_DEST_FILE, max_priority);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    log_echo = 1;
    return 0;
}

void log_detach_stderr(void)
{
    int fd;

    if (log_dest == LOG_DEST_STDERR)
        return;
    fd = log_fd >= 0 ? log_fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && fd != STDERR_FILENO)
        dup2(fd, STDERR_FILENO);
    log_stderr_file = fd >= 0 && fd == log_fd;
    if (fd >= 0 && fd != log_fd)
        close(fd);
    log_echo = 0;
}

int log_reopen_file(const char *path)
{
    int fd;

    if (log_dest != LOG_DEST_FILE) {
        errno = EINVAL;
        return -1;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    /* stderr follows: a sanitizer's report must not go to the rotated file */
    if (log_stderr_file && fd != STDERR_FILENO)
        dup2(fd, STDERR_FILENO);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

const char *log_file_path(void)
{
    return log_dest == LOG_DEST_FILE ? log_path : NULL;
}

enum log_dest log_get_dest(void)
{
    return log_dest;
}

void log_fini(void)
{
    if (log_syslog_open) {
        closelog();
        log_syslog_open = 0;
    }
    if (log_fd >= 0) {
        close(log_fd);
        log_fd = -1;
    }
    log_echo = 0;
    log_stderr_file = 0;
}

void log_set_priority(int max_priority)
{
    log_max = max_priority;
}

int log_get_priority(void)
{
    return log_max;
}

void log_msg(int priority, const char *func, int errnum, const char *fmt, ...)
{
    int saved = errno;
    char text[1024];
    size_t n;
    va_list ap;

    if (priority > log_max) {
        errno = saved;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    n = strlen(text);
    if (errnum > 0 && n < sizeof(text) - 1)
        snprintf(text + n, sizeof(text) - n, ": %s", strerror(errnum));

    if (log_dest == LOG_DEST_SYSLOG) {
        if (func != NULL && log_max >= LOG_DEBUG)
            syslog(priority, "%s: %s", func, text);
        else
            syslog(priority, "%s", text);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[32], line[1400];
        int len;

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        if (func != NULL && log_max >= LOG_DEBUG)
            len = snprintf(line, sizeof(line), "%s.%03ld %s %s: %s: %s\n",
                           stamp, ts.tv_nsec / 1000000, log_ident,
                           log_priority_name(priority), func, text);
        else
            len = snprintf(line, sizeof(line), "%s.%03ld %s %s: %s\n", stamp,
                           ts.tv_nsec / 1000000, log_ident,
                           log_priority_name(priority), text);
        if (len >= (int)sizeof(line)) {
            len = (int)sizeof(line) - 1;
            line[len - 1] = '\n';
        }
        /* one write per line: lines of several processes appending to one
         * file do not mix */
        if (log_dest == LOG_DEST_FILE && log_fd >= 0) {
            if (write(log_fd, line, (size_t)len) < 0) {
                /* nowhere left to say it */
            }
        }
        if (log_dest == LOG_DEST_STDERR ||
            (log_echo && priority <= LOG_WARNING))
            fputs(line, stderr);
    }
    errno = saved;
}
