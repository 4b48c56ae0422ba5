/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What both daemons do the same way: detach from the terminal with the
 * parent waiting for the child to report that start-up worked, pid files,
 * and small files published for scripts. */
#ifndef VMCKPT_DAEMON_H
#define VMCKPT_DAEMON_H

#include "error.h"

/* Fork into the background. The parent blocks until the child calls
 * daemon_ready() (then exits 0) or exits (then exits with the child's
 * status), so a failed start is seen by whoever started the daemon.
 * Returns 0 in the child, -1 with 'err' if the fork failed. */
int daemon_detach(struct vmckpt_error *err);

/* Tell the waiting parent that start-up succeeded; harmless in foreground. */
void daemon_ready(void);

/* Stop the daemon 'prog' whose pid file is 'pidfile': SIGTERM, then wait
 * up to 'timeout_ms' for it to end. No pid file, or one naming a process
 * that is not 'prog', counts as stopped (a stale file is removed). Says
 * what happened on stdout (errors on stderr); returns the exit status for
 * the command: 0 stopped or not running, 1 otherwise. */
int daemon_stop(const char *pidfile, const char *prog, unsigned timeout_ms);

/* Write 'text' plus a newline to 'path' atomically (temp file + rename). */
int daemon_write_file(const char *path, const char *text,
                      struct vmckpt_error *err);

/* Create directory 'path' (and parents) with 'mode' if missing. */
int daemon_mkdirs(const char *path, unsigned mode, struct vmckpt_error *err);

#endif

#include "conf_keys.h"

/* Options common to vmckpt-coordinator and vmckpt-agent. */
struct daemon_opts {
    const char *config_path; /* -c */
    int foreground;          /* -f */
    int debug;               /* -d */
    int use_syslog;          /* -s */
    int stop;                /* --stop: stop the running daemon */
    struct conf *conf;       /* the file, with -o overrides applied */
};

/* Parse argv; prints 'usage' for --help, the version for --version and
 * the keys of 'keys' for --config-keys (then exits 0), and exits 2 with a
 * message on a bad option or an unreadable configuration. The
 * configuration is loaded (from 'default_config' when -c is not given; a
 * missing default file gives an empty configuration) and -o
 * SECTION.KEY=VALUE overrides applied. */
void daemon_parse_args(int argc, char **argv, const char *default_config,
                       const char *usage, const struct conf_section keys[],
                       struct daemon_opts *o);

/* Apply [section] log / log_level (and -d, -s); exits 2 on a bad value. */
void daemon_setup_log(const char *ident, const char *section,
                      const struct daemon_opts *o);
