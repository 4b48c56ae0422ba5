/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One log module for every vmckpt program: syslog priorities, to stderr or
 * syslog, with the calling function's name and errno text added by macros. */
#ifndef VMCKPT_LOG_H
#define VMCKPT_LOG_H

#include <syslog.h>

/* Where log lines go. */
enum log_dest { LOG_DEST_STDERR, LOG_DEST_SYSLOG, LOG_DEST_FILE };

/* Set the program name, destination and the most verbose priority that is
 * printed (LOG_ERR .. LOG_DEBUG). May be called again to change them. */
void log_init(const char *ident, enum log_dest dest, int max_priority);

/* Log to the file 'path' (appended to, created mode 0640). Until
 * log_detach_stderr() errors and warnings also go to stderr, so that
 * whoever starts a daemon sees why its start failed. Returns -1 with errno if
 * the file cannot be opened. */
int log_init_file(const char *ident, const char *path, int max_priority);

/* Open the log file anew at 'path' (the same name after a rotation, or a
 * new one) and log there from now on; stderr follows if it was made the
 * log file. Returns -1 with errno (EINVAL when not logging to a file) and
 * keeps the old file then. */
int log_reopen_file(const char *path);

/* Where log lines go now, and the file's name (NULL unless a file). */
enum log_dest log_get_dest(void);
const char *log_file_path(void);

/* A daemon has started: stop writing to the stderr it inherited. With a
 * log file, stderr becomes that file (so that a sanitizer's or the C
 * library's own messages land there too); with syslog, /dev/null. With
 * stderr logging nothing changes: whoever started the daemon asked for
 * its stderr. */
void log_detach_stderr(void);

/* Release the syslog connection and the log file, if any. Idempotent. */
void log_fini(void);

/* Raise or lower the verbosity at run time. */
void log_set_priority(int max_priority);
int log_get_priority(void);
/* "error", "warning", "notice", "info" or "debug" for a priority. */
const char *log_priority_name(int priority);

/* Log one line. 'func' may be NULL; with 'errnum' > 0 the errno text is
 * appended. errno is preserved. */
void log_msg(int priority, const char *func, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_err(...)   log_msg(LOG_ERR, __func__, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __func__, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, NULL, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __func__, 0, __VA_ARGS__)
/* Same, with strerror(errno) appended. */
#define log_errno(...)  log_msg(LOG_ERR, __func__, errno, __VA_ARGS__)
#define log_warnno(...) log_msg(LOG_WARNING, __func__, errno, __VA_ARGS__)

#endif
