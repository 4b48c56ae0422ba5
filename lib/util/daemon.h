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

/* Start-up succeeded: tell the waiting parent (when detached) and the
 * service manager (READY=1, with 'status' as its STATUS= line, which may
 * be NULL). */
void daemon_ready(const char *status);

/* Stop the daemon 'prog' whose pid file is 'pidfile': SIGTERM, then wait
 * up to 'timeout_ms' for it to end. No pid file, or one naming a process
 * that is not 'prog', counts as stopped (a stale file is removed). Says
 * what happened on stdout (errors on stderr); returns the exit status for
 * the command: 0 stopped or not running, 1 otherwise. */
int daemon_stop(const char *pidfile, const char *prog, unsigned timeout_ms);

/* Ask the daemon 'prog' whose pid file is 'pidfile' to reload (SIGHUP),
 * checked as for daemon_stop(). Says what it did on stdout (errors on
 * stderr); returns 0 when asked or not running, 1 otherwise. */
int daemon_signal_reload(const char *pidfile, const char *prog);

/* Write 'text' plus a newline to 'path' atomically (temp file + rename). */
int daemon_write_file(const char *path, const char *text,
                      struct vmckpt_error *err);

/* Create directory 'path' (and parents) with 'mode' if missing. */
int daemon_mkdirs(const char *path, unsigned mode, struct vmckpt_error *err);

#endif

#include "conf_keys.h"

/* Options common to vmckpt-coordinator and vmckpt-agent. */
struct daemon_opts {
    const char *config_path;   /* -c */
    int foreground;            /* -f */
    int debug;                 /* -d */
    int use_syslog;            /* -s */
    int stop;                  /* --stop: stop the running daemon */
    int reload;                /* --reload: ask the running daemon to reload */
    struct conf *conf;         /* the file, with -o overrides applied */
    const char *overrides[64]; /* -o arguments, applied again by a reload */
    int noverrides;
    char config_abs[4096]; /* config_path made absolute */
};

/* Parse argv (and take $NOTIFY_SOCKET: notify_init()); prints 'usage'
 * for --help, the version for --version and the keys of 'keys' for
 * --config-keys (then exits 0), and exits 2 with a message on a bad option
 * or an unreadable configuration. The configuration is loaded (from
 * 'default_config' when -c is not given; a missing default file gives an
 * empty configuration) and -o SECTION.KEY=VALUE overrides applied. */
void daemon_parse_args(int argc, char **argv, const char *default_config,
                       const char *usage, const struct conf_section keys[],
                       struct daemon_opts *o);

/* Apply [section] log / log_level (and -d, -s); exits 2 on a bad value. */
void daemon_setup_log(const char *ident, const char *section,
                      const struct daemon_opts *o);

/* What a daemon's reload (SIGHUP) needs to know of its configuration. */
struct daemon_reload {
    const char *ident;   /* "vmckpt-agent": its log messages */
    const char *section; /* its section, holding log, log_level */
    /* the daemon's own sections (conf_keys.h), checked as at start */
    const struct conf_section *checked;
    /* More checks of a new configuration (the values read at start), so
     * that an admin hears now that the next start would fail; may be
     * NULL. 0, or -1 with 'err'. */
    int (*check)(const struct conf *conf, struct vmckpt_error *err);
};

/* Reload on SIGHUP, from the event loop: tell the service manager
 * (RELOADING=1), read the configuration file again with the -o overrides,
 * check it, open the log file anew (after a rotation) and apply log_level.
 * Nothing else changes while the daemon runs: keys of 'checked' that
 * differ from the running configuration are named as taking effect at the
 * next start. Logs "reloaded: ..." and returns 0; with a file that cannot
 * be read or is not valid, or a log file that cannot be opened, logs why
 * as an error, keeps every running setting (the log file is still opened
 * anew at its running name, for logrotate) and returns -1. Either way the
 * service manager hears READY=1 at the end. */
int daemon_reload(const struct daemon_reload *r, const struct daemon_opts *o);
