/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Log lines to stderr (with a timestamp) or to syslog. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static char log_ident[64] = "vmckpt";
static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_max = LOG_INFO;
static int log_syslog_open;

static const char *prio_name(int priority)
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

void log_fini(void)
{
    if (log_syslog_open) {
        closelog();
        log_syslog_open = 0;
    }
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
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        localtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
        if (func != NULL && log_max >= LOG_DEBUG)
            fprintf(stderr, "%s.%03ld %s %s: %s: %s\n", stamp,
                    ts.tv_nsec / 1000000, log_ident, prio_name(priority), func,
                    text);
        else
            fprintf(stderr, "%s.%03ld %s %s: %s\n", stamp, ts.tv_nsec / 1000000,
                    log_ident, prio_name(priority), text);
    }
    errno = saved;
}
