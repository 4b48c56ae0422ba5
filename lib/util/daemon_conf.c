/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemons' options and configuration: the command line, the log
 * settings, and the reload on SIGHUP (log file reopened, log_level). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "notify.h"

/* Apply one -o SECTION.KEY=VALUE. 0, or -1 with 'err'. */
static int apply_override(struct conf *conf, const char *arg,
                          struct vmckpt_error *err)
{
    char buf[512], *dot, *eq;

    snprintf(buf, sizeof(buf), "%s", arg);
    dot = strchr(buf, '.');
    eq = strchr(buf, '=');
    if (dot == NULL || eq == NULL || dot > eq || dot == buf || eq == dot + 1)
        return errprintf(err, "-o %s: expected SECTION.KEY=VALUE", arg);
    *dot = '\0';
    *eq = '\0';
    if (conf_set(conf, buf, dot + 1, eq + 1) < 0)
        return errprintf_errno(err, "-o %s", arg);
    return 0;
}

/* The configuration file of 'o' (or the defaults) with its -o overrides;
 * NULL with 'err'. */
static struct conf *load_conf(const struct daemon_opts *o,
                              struct vmckpt_error *err)
{
    struct conf *conf;
    int i;

    if (o->config_path != NULL)
        conf = conf_load(o->config_path, err);
    else
        conf = conf_create();
    if (conf == NULL) {
        if (o->config_path == NULL)
            errprintf_errno(err, "configuration");
        return NULL;
    }
    for (i = 0; i < o->noverrides; i++) {
        if (apply_override(conf, o->overrides[i], err) < 0) {
            conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
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
        {"reload", no_argument, NULL, 'R'},
        {"config-keys", no_argument, NULL, 'K'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct vmckpt_error err;
    char cwd[2048];
    int ch;

    /* before any child can be started: none of them is the service */
    notify_init();
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
            if (o->noverrides ==
                (int)(sizeof(o->overrides) / sizeof(o->overrides[0]))) {
                fprintf(stderr, "too many -o options\n");
                exit(2);
            }
            o->overrides[o->noverrides++] = optarg;
            break;
        case 'S':
            o->stop = 1;
            break;
        case 'R':
            o->reload = 1;
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
    if (o->stop && o->reload) {
        fprintf(stderr, "%s: --stop or --reload, not both\n", argv[0]);
        exit(2);
    }
    if (o->config_path == NULL && access(default_config, F_OK) == 0)
        o->config_path = default_config;
    /* a reload reads it again, maybe after daemon_detach() went to / */
    if (o->config_path != NULL && o->config_path[0] != '/' &&
        getcwd(cwd, sizeof(cwd)) != NULL &&
        snprintf(o->config_abs, sizeof(o->config_abs), "%s/%s", cwd,
                 o->config_path) < (int)sizeof(o->config_abs))
        o->config_path = o->config_abs;
    o->conf = load_conf(o, &err);
    if (o->conf == NULL) {
        fprintf(stderr, "%s: %s\n", argv[0], err.text);
        exit(2);
    }
}

/* The log settings of [section], -d and -s applied. */
struct log_settings {
    enum log_dest dest;
    const char *path;  /* LOG_DEST_FILE */
    const char *level; /* as written */
    int prio;
};

static int read_log_settings(const struct conf *conf, const char *section,
                             const struct daemon_opts *o,
                             struct log_settings *ls, struct vmckpt_error *err)
{
    static const char *const names[] = {"error", "warning", "notice", "info",
                                        "debug"};
    static const int prios[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
                                LOG_DEBUG};
    const char *dest = conf_get(conf, section, "log", "stderr");
    size_t i;

    ls->level = conf_get(conf, section, "log_level", "info");
    ls->prio = -1;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(ls->level, names[i]) == 0)
            ls->prio = prios[i];
    }
    if (ls->prio < 0)
        return errprintf(err,
                         "[%s] log_level = '%s': expected error, warning, "
                         "notice, info or debug",
                         section, ls->level);
    if (strcmp(dest, "stderr") != 0 && strcmp(dest, "syslog") != 0 &&
        dest[0] != '/')
        return errprintf(err,
                         "[%s] log = '%s': expected stderr, syslog or the "
                         "absolute path of a file",
                         section, dest);
    if (o->debug)
        ls->prio = LOG_DEBUG;
    ls->path = NULL;
    if (o->use_syslog || strcmp(dest, "syslog") == 0) {
        ls->dest = LOG_DEST_SYSLOG;
    } else if (dest[0] == '/') {
        ls->dest = LOG_DEST_FILE;
        ls->path = dest;
    } else {
        ls->dest = LOG_DEST_STDERR;
    }
    return 0;
}

void daemon_setup_log(const char *ident, const char *section,
                      const struct daemon_opts *o)
{
    struct vmckpt_error err;
    struct log_settings ls;

    if (read_log_settings(o->conf, section, o, &ls, &err) < 0) {
        fprintf(stderr, "%s: %s\n", ident, err.text);
        exit(2);
    }
    if (ls.dest == LOG_DEST_FILE) {
        if (log_init_file(ident, ls.path, ls.prio) < 0) {
            fprintf(stderr, "%s: [%s] log = %s: %s\n", ident, section, ls.path,
                    strerror(errno));
            exit(2);
        }
        return;
    }
    log_init(ident, ls.dest, ls.prio);
}

/* --- reload --- */

static const char *dest_name(enum log_dest dest)
{
    return dest == LOG_DEST_SYSLOG ? "syslog"
           : dest == LOG_DEST_FILE ? "a file"
                                   : "stderr";
}

/* Append "; " and the formatted text to out[len]. */
static void add(char *out, size_t len, const char *text)
{
    size_t n = strlen(out);

    if (n + 2 < len)
        snprintf(out + n, len - n, "%s%s", n > 0 ? "; " : "", text);
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Name in out[len] the keys of r->checked whose value in 'next' differs
 * from the running 'cur' (log and log_level of the own section aside:
 * they take effect now). */
static void name_changed(const struct daemon_reload *r, const struct conf *cur,
                         const struct conf *next, char *out, size_t len)
{
    const struct conf_section *s;
    const char *const *k;
    size_t n;

    out[0] = '\0';
    for (s = r->checked; s->name != NULL; s++) {
        int first = 1;

        for (k = s->keys; *k != NULL; k++) {
            if (strcmp(s->name, r->section) == 0 &&
                (strcmp(*k, "log") == 0 || strcmp(*k, "log_level") == 0))
                continue;
            if (same(conf_get(cur, s->name, *k, NULL),
                     conf_get(next, s->name, *k, NULL)))
                continue;
            n = strlen(out);
            if (n + 4 >= len)
                return;
            snprintf(out + n, len - n, "%s%s%s%s", n > 0 ? ", " : "",
                     first ? "[" : "", first ? s->name : "", first ? "] " : "");
            n = strlen(out);
            snprintf(out + n, len - n, "%s", *k);
            first = 0;
        }
    }
}

/* The new configuration is valid: every section and key known, the log
 * settings and whatever r->check looks at. 0, or -1 with 'err'. */
static int check_new(const struct daemon_reload *r, const struct daemon_opts *o,
                     const struct conf *next, struct log_settings *ls,
                     struct vmckpt_error *err)
{
    if (conf_check_sections(next, r->checked, err) < 0)
        return -1;
    if (read_log_settings(next, r->section, o, ls, err) < 0)
        return errprefix(err, "%s", conf_path(next));
    return r->check != NULL ? r->check(next, err) : 0;
}

/* Apply the log settings 'ls' that can change live, saying in done[len]
 * what changed; a destination of another kind (stderr, syslog, a file)
 * goes in later[len]. 0, or -1 with 'err' (nothing changed then). */
static int apply_log(const struct log_settings *ls, char *done, size_t len,
                     char *later, size_t later_len, struct vmckpt_error *err)
{
    enum log_dest cur = log_get_dest();
    char text[4200];
    int prio = log_get_priority();

    if (ls->dest == LOG_DEST_FILE && cur == LOG_DEST_FILE) {
        char old[4096];

        snprintf(old, sizeof(old), "%s", log_file_path());
        if (log_reopen_file(ls->path) < 0)
            return errprintf_errno(err, "log = %s", ls->path);
        if (strcmp(old, ls->path) == 0)
            snprintf(text, sizeof(text), "log file %s reopened", ls->path);
        else
            snprintf(text, sizeof(text), "log file now %s (was %s)", ls->path,
                     old);
        add(done, len, text);
    } else if (ls->dest != cur) {
        snprintf(later, later_len, "log (%s; %s until then)",
                 dest_name(ls->dest), dest_name(cur));
    }
    if (ls->prio != prio) {
        snprintf(text, sizeof(text), "log_level %s -> %s",
                 log_priority_name(prio), log_priority_name(ls->prio));
        log_set_priority(ls->prio);
        add(done, len, text);
    }
    return 0;
}

/* A reload that failed still opens the log file anew at its running name:
 * a SIGHUP after a rotation must not leave the daemon writing to the
 * rotated file, whatever became of the configuration file. */
static void reopen_current(void)
{
    char path[4096];

    if (log_get_dest() != LOG_DEST_FILE)
        return;
    snprintf(path, sizeof(path), "%s", log_file_path());
    if (log_reopen_file(path) < 0)
        log_errno("cannot open the log file %s again", path);
}

int daemon_reload(const struct daemon_reload *r, const struct daemon_opts *o)
{
    struct vmckpt_error err;
    struct log_settings ls;
    struct conf *next;
    char done[8400] = "", later[512] = "", keys[1024], line[512];

    notify_reloading();
    log_info("SIGHUP: reloading %s", conf_path(o->conf));
    next = load_conf(o, &err);
    if (next == NULL || check_new(r, o, next, &ls, &err) < 0 ||
        apply_log(&ls, done, sizeof(done), later, sizeof(later), &err) < 0) {
        reopen_current();
        log_err("reload failed, the running settings stay: %s", err.text);
        snprintf(line, sizeof(line), "reload failed, running settings kept: %s",
                 err.text);
        (void)notify_send("READY=1", line);
        conf_destroy(next);
        return -1;
    }
    name_changed(r, o->conf, next, keys, sizeof(keys));
    if (keys[0] != '\0' || later[0] != '\0') {
        snprintf(line, sizeof(line), "changed, for the next start: %s%s%s",
                 later, later[0] && keys[0] ? ", " : "", keys);
        add(done, sizeof(done), line);
    }
    log_info("reloaded: %s", done[0] ? done : "nothing changed");
    notify_ready(NULL);
    conf_destroy(next);
    return 0;
}
