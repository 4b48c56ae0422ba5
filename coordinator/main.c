/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-coordinator: one per cluster. Authenticates agents and consoles,
 * keeps the host registry and the catalog, and watches heartbeats.
 * main() reads the configuration, stacks the modules from the bottom up
 * (server, hosts, vms, jobs, ranks, then the dispatch table) and runs the
 * loop. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "datakey.h"
#include "dispatch.h"
#include "hosts.h"
#include "jobs.h"
#include "metrics.h"
#include "ranks.h"
#include "server.h"
#include "tickets.h"
#include "vms.h"
#include "lib/metrics/httpd.h"
#include "lib/util/conf.h"
#include "lib/wire/tls.h"
#include "lib/wire/tls_conf.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "lib/util/net.h"
#include "lib/util/notify.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef STATEDIR
#define STATEDIR "/var/lib/vmckpt"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/vmckpt/vmckpt.conf"

static const char usage[] =
    "Usage: vmckpt-coordinator [OPTION]...\n"
    "The vmckpt coordinator: one per cluster. Agents on every host connect\n"
    "to it; the admin console and the mpirun wrapper talk to it.\n"
    "\n"
    "Options:\n"
    "  -c, --config=FILE   configuration file (default " DEFAULT_CONFIG ")\n"
    "  -f, --foreground    stay in the foreground (default: daemonize)\n"
    "  -d, --debug         log debug messages\n"
    "  -s, --syslog        log to syslog instead of stderr\n"
    "  -o, --set=S.K=V     override key K of section [S] of the file\n"
    "      --stop          stop the coordinator running with this "
    "configuration\n"
    "                      (SIGTERM to the pid in STATE_DIR/coordinator.pid, "
    "then\n"
    "                      wait for it to end)\n"
    "      --reload        ask the coordinator running with this "
    "configuration\n"
    "                      to reload (SIGHUP to the pid in its pid file)\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
    "      --config-keys   list the configuration keys this program accepts\n"
    "                      (one SECTION.KEY a line) and exit\n"
    "\n"
    "Configuration ([cluster] is shared by every vmckpt program):\n"
    "  [cluster]\n"
    "  key_file = " SYSCONFDIR "/vmckpt/cluster.key   (mode 0600; 'vmckpt "
    "keygen')\n"
    "  [coordinator]\n"
    "  listen = *:7470                 address and port to listen on\n"
    "  name = HOSTNAME                 name shown to peers\n"
    "  state_dir = " STATEDIR "   catalog, pid and port files\n"
    "  heartbeat_interval_ms = 1000    agents heartbeat this often\n"
    "  heartbeat_timeout_ms = 5000     silent longer: host declared lost\n"
    "  register_grace_ms = 30000       after a start, a host of the catalog\n"
    "                                  whose agent has not registered by\n"
    "                                  then is declared lost (at least\n"
    "                                  heartbeat_timeout_ms; longer than the\n"
    "                                  agents' reconnect_max_ms + 25%%)\n"
    "  auth_timeout_ms = 5000          handshake deadline per connection\n"
    "  max_frame_bytes = 1048576       largest message accepted\n"
    "  keep_epochs = 2                 committed epochs kept per VM (0: all)\n"
    "  seal_images = no                yes: epochs are stored sealed "
    "(AES-256-\n"
    "                                  GCM, a key per job from STATE_DIR/\n"
    "                                  data.key): a peer's store keeps\n"
    "                                  images it cannot read; they are not\n"
    "                                  folded (docs/security.md)\n"
    "  max_precopy_ms = 20000          a job epoch is cut after this at most\n"
    "  checkpoint_timeout_ms = 120000  and aborted if not committed by then\n"
    "  mtbf_s = 86400                  MTBF for interval = auto (Young/Daly)\n"
    "  rank_listen =                   the MPI ranks' endpoint, reached from\n"
    "                                  guests (e.g. 10.0.0.1:7471); off when\n"
    "                                  empty. Job tokens only, rank messages\n"
    "  rank_address = RANK_LISTEN      what guests are told to connect to\n"
    "  align_timeout_ms = 10000        ranks not at a barrier by then: the\n"
    "                                  cut is taken unaligned\n"
    "  align_settle_ms = 1000          aligned, VMs not converged: pre-copy\n"
    "                                  this long at most while the ranks\n"
    "                                  are idle, then cut (0: cut at once)\n"
    "  rank_grace_ms = 30000           ranks missing after this: the job is\n"
    "                                  shown unprotected\n"
    "  fence_command =                 a site's power fencing command (e.g.\n"
    "                                  an IPMI script), run as COMMAND HOST\n"
    "                                  for a lost host whose guests must\n"
    "                                  move; exit 0 means the host is off\n"
    "                                  and they move at once, otherwise\n"
    "                                  after its lease (empty: none)\n"
    "  fence_timeout_ms = 60000        the command is killed after this\n"
    "  lost_command =                  run as COMMAND HOST whenever a host\n"
    "                                  is declared lost, e.g. to drain the\n"
    "                                  node in Slurm and requeue its jobs\n"
    "                                  (docs/slurm.md; empty: none)\n"
    "  metrics_listen =                HOST:PORT to serve Prometheus /\n"
    "                                  OpenMetrics text on (GET /metrics,\n"
    "                                  docs/metrics.md); off when empty\n"
    "  test_hold_file =                for fault-injection tests only: a\n"
    "                                  file that may name a phase (\"cut\n"
    "                                  4000\") where every job epoch waits\n"
    "                                  that many ms; never in production\n"
    "  log = stderr | syslog | /FILE   where the log goes once started (a\n"
    "                                  file is appended to; errors before\n"
    "                                  the start completed also go to\n"
    "                                  stderr)\n"
    "  log_level = info                error | warning | notice | info |\n"
    "                                  debug\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop the coordinator cleanly. SIGHUP reopens\n"
    "the log file (after a rotation) and applies log_level from the file;\n"
    "other keys take effect at the next start (the log says which changed).\n"
    "Under systemd (NOTIFY_SOCKET set) it reports READY=1, RELOADING=1 and\n"
    "STOPPING=1.\n"
    "Files: STATE_DIR/catalog.db (SQLite, WAL), coordinator.pid,\n"
    "coordinator.addr (the address actually bound, for scripts).\n";

static const char *const coord_keys[] = {"listen",
                                         "name",
                                         "state_dir",
                                         "heartbeat_interval_ms",
                                         "heartbeat_timeout_ms",
                                         "register_grace_ms",
                                         "auth_timeout_ms",
                                         "max_frame_bytes",
                                         "keep_epochs",
                                         "seal_images",
                                         "max_precopy_ms",
                                         "checkpoint_timeout_ms",
                                         "mtbf_s",
                                         "rank_listen",
                                         "rank_address",
                                         "align_timeout_ms",
                                         "align_settle_ms",
                                         "rank_grace_ms",
                                         "fence_command",
                                         "fence_timeout_ms",
                                         "lost_command",
                                         "metrics_listen",
                                         "test_hold_file",
                                         "log",
                                         "log_level",
                                         NULL};
/* The sections this program checks; --config-keys lists them. */
static const struct conf_section own_keys[] = {
    {"cluster", conf_cluster_keys},
    {"tls", conf_tls_keys},
    {"coordinator", coord_keys},
    {NULL, NULL},
};

/* The [cluster] and [coordinator] keys, read and checked. */
struct settings {
    unsigned heartbeat_ms, heartbeat_timeout_ms, register_grace_ms;
    unsigned auth_timeout_ms;
    size_t max_frame;
    unsigned keep_epochs, max_precopy_ms, ckpt_timeout_ms;
    uint64_t mtbf_s;
    unsigned align_timeout_ms, align_settle_ms, rank_grace_ms;
    unsigned fence_timeout_ms;
    bool seal_images;
    const char *fence_command;
    const char *hold_file; /* test_hold_file */
    const char *lost_command;
    char name[128];
    const char *state_dir, *key_file, *listen_addr, *rank_listen, *rank_address;
    const char *metrics_listen;
};

static void on_stop(struct evloop *loop, int signo, void *arg)
{
    char status[64];

    (void)arg;
    log_info("signal %d: shutting down", signo);
    snprintf(status, sizeof(status), "shutting down (signal %d)", signo);
    notify_stopping(status);
    evloop_stop(loop);
}

static void die(const char *what)
{
    log_err("%s", what);
    exit(1);
}

/* One unsigned key of [coordinator] into *out. 0, or -1 with 'err'. */
static int get_uint(const struct conf *conf, const char *key, uint64_t def,
                    uint64_t min, uint64_t max, unsigned *out,
                    struct vmckpt_error *err)
{
    uint64_t v;

    if (conf_get_uint(conf, "coordinator", key, def, min, max, &v, err) < 0)
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* The numbers of [coordinator]. 0, or -1 with 'err'. */
static int read_numbers(const struct conf *conf, struct settings *s,
                        struct vmckpt_error *err)
{
    uint64_t v;

    if (get_uint(conf, "heartbeat_interval_ms", 1000, 50, 600000,
                 &s->heartbeat_ms, err) < 0 ||
        get_uint(conf, "heartbeat_timeout_ms", 5 * (uint64_t)s->heartbeat_ms,
                 2 * s->heartbeat_ms, 3600000, &s->heartbeat_timeout_ms,
                 err) < 0 ||
        get_uint(conf, "register_grace_ms", 30000, 100, 86400000,
                 &s->register_grace_ms, err) < 0 ||
        get_uint(conf, "auth_timeout_ms", 5000, 100, 600000,
                 &s->auth_timeout_ms, err) < 0)
        return -1;
    if (s->register_grace_ms < s->heartbeat_timeout_ms)
        s->register_grace_ms = s->heartbeat_timeout_ms;
    if (conf_get_uint(conf, "coordinator", "max_frame_bytes",
                      WIRE_MAX_FRAME_DEFAULT, 4096, WIRE_MAX_FRAME_LIMIT, &v,
                      err) < 0)
        return -1;
    s->max_frame = (size_t)v;
    if (get_uint(conf, "keep_epochs", 2, 0, 1000, &s->keep_epochs, err) < 0 ||
        get_uint(conf, "max_precopy_ms", 20000, 100, 3600000,
                 &s->max_precopy_ms, err) < 0 ||
        get_uint(conf, "checkpoint_timeout_ms", 120000, 1000, 86400000,
                 &s->ckpt_timeout_ms, err) < 0)
        return -1;
    if (s->ckpt_timeout_ms <= s->max_precopy_ms)
        return errprintf(err,
                         "checkpoint_timeout_ms (%u) must exceed "
                         "max_precopy_ms (%u)",
                         s->ckpt_timeout_ms, s->max_precopy_ms);
    if (conf_get_uint(conf, "coordinator", "mtbf_s", 86400, 1, 315360000,
                      &s->mtbf_s, err) < 0)
        return -1;
    if (get_uint(conf, "align_timeout_ms", 10000, 10, 3600000,
                 &s->align_timeout_ms, err) < 0 ||
        get_uint(conf, "align_settle_ms", 1000, 0, 600000, &s->align_settle_ms,
                 err) < 0 ||
        get_uint(conf, "rank_grace_ms", 30000, 0, 86400000, &s->rank_grace_ms,
                 err) < 0 ||
        get_uint(conf, "fence_timeout_ms", 60000, 100, 3600000,
                 &s->fence_timeout_ms, err) < 0 ||
        conf_get_bool(conf, "coordinator", "seal_images", 0, &s->seal_images,
                      err) < 0)
        return -1;
    return 0;
}

/* Every setting. 0, or -1 with 'err'. */
static int read_settings(const struct conf *conf, struct settings *s,
                         struct vmckpt_error *err)
{
    char host[256];

    memset(s, 0, sizeof(*s));
    if (read_numbers(conf, s, err) < 0)
        return -1;
    s->rank_listen = conf_get(conf, "coordinator", "rank_listen", "");
    s->rank_address = conf_get(conf, "coordinator", "rank_address", "");
    s->fence_command = conf_get(conf, "coordinator", "fence_command", "");
    s->hold_file = conf_get(conf, "coordinator", "test_hold_file", "");
    s->lost_command = conf_get(conf, "coordinator", "lost_command", "");
    s->metrics_listen = conf_get(conf, "coordinator", "metrics_listen", "");
    if (httpd_check_addr("[coordinator] metrics_listen", s->metrics_listen,
                         err) < 0)
        return -1;
    if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "coordinator");
    host[sizeof(host) - 1] = '\0';
    snprintf(s->name, sizeof(s->name), "%s",
             conf_get(conf, "coordinator", "name", host));
    s->state_dir = conf_get(conf, "coordinator", "state_dir", STATEDIR);
    s->key_file =
        conf_get(conf, "cluster", "key_file", SYSCONFDIR "/vmckpt/cluster.key");
    s->listen_addr = conf_get(conf, "coordinator", "listen", "*:7470");
    return 0;
}

/* A reload's check of a new file: the values the next start would read. */
static int check_settings(const struct conf *conf, struct vmckpt_error *err)
{
    struct settings s;

    return read_settings(conf, &s, err);
}

static const struct daemon_reload reload_desc = {
    .ident = "vmckpt-coordinator",
    .section = "coordinator",
    .checked = own_keys,
    .check = check_settings,
};

/* SIGHUP, through the loop: 'arg' is the daemon's options. */
static void on_reload(struct evloop *loop, int signo, void *arg)
{
    (void)loop;
    (void)signo;
    (void)daemon_reload(&reload_desc, arg);
}

/* The cluster key, the state directory and the catalog at 'catalog'.
 * 0, or -1 with 'err'. */
static int open_state(struct coord *co, const struct settings *s,
                      const struct conf *conf, const char *catalog,
                      struct vmckpt_error *err)
{
    int tls = tls_setup_conf(conf, TLS_CONF_KTLS, err);
    enum tls_role role;
    char name[128];

    if (tls < 0)
        return -1;
    if (tls > 0 && tls_self(&role, name, sizeof(name)) == 0 &&
        role != TLS_ROLE_COORDINATOR) {
        errno = EINVAL;
        return errprintf(err,
                         "[tls] cert is the credential of %s '%s', not a "
                         "coordinator's ('vmckpt cert issue coordinator "
                         "NAME')",
                         tls_role_name(role), name);
    }
    /* with TLS the session's key replaces the cluster key: no file */
    if ((tls == 0 && auth_key_load(&co->key, s->key_file, err) < 0) ||
        daemon_mkdirs(s->state_dir, 0700, err) < 0 ||
        (co->cat = catalog_open(catalog, err)) == NULL)
        return -1;
    if (tickets_init(co, err) < 0)
        return -1;
    /* the data key checked against the catalog's epochs */
    return datakey_open(co, s->state_dir, s->seal_images, err);
}

/* What guests are told to connect to ("" when the endpoint is off); -1
 * with 'err' when that would be a wildcard address. */
static int rank_address(struct coord *co, const struct settings *s, char *out,
                        size_t len, struct vmckpt_error *err)
{
    char bound[NET_ADDRSTRLEN];

    out[0] = '\0';
    if (co->rank_fd < 0)
        return 0;
    net_local_name(co->rank_fd, bound, sizeof(bound));
    snprintf(out, len, "%s", s->rank_address[0] ? s->rank_address : bound);
    if (strncmp(out, "0.0.0.0:", 8) == 0 || strncmp(out, "[::]:", 5) == 0)
        return errprintf(err,
                         "rank_listen = %s listens on every address: set "
                         "rank_address to the one guests reach",
                         s->rank_listen);
    return 0;
}

/* The modules, bottom up, each registering with those below it; then the
 * dispatch table on top. */
static void stack_modules(struct coord *co, const struct settings *s,
                          const char *rank_addr)
{
    struct ranks_conf rc = {
        .addr = rank_addr,
        .align_timeout_ms = s->align_timeout_ms,
        .align_settle_ms = s->align_settle_ms,
        .grace_ms = s->rank_grace_ms,
    };

    if (hosts_create(co, s->heartbeat_ms, s->heartbeat_timeout_ms,
                     s->register_grace_ms) < 0 ||
        vms_create(co, s->keep_epochs) < 0 ||
        jobs_create(co, s->max_precopy_ms, s->ckpt_timeout_ms, s->mtbf_s) < 0 ||
        ranks_create(co, &rc) < 0 ||
        hosts_set_fence_command(co, s->fence_command, s->fence_timeout_ms) <
            0 ||
        jobs_set_hold_file(co, s->hold_file) < 0 ||
        hosts_set_lost_command(co, s->lost_command) < 0)
        die("cannot set up the coordinator's modules");
    dispatch_install(co);
}

/* Detach (unless -f); the catalog's SQLite handle is not used across
 * fork: reopen it. */
static void detach(struct coord *co, const char *catalog)
{
    struct vmckpt_error err;

    catalog_close(co->cat);
    if (daemon_detach(&err) < 0)
        die(err.text);
    co->cat = catalog_open(catalog, &err);
    if (co->cat == NULL)
        die(err.text);
}

/* The catalog's hosts, guests and jobs; signals ('o' for a reload);
 * heartbeats watched. */
static void load_and_watch(struct coord *co, const struct daemon_opts *o)
{
    struct vmckpt_error err;

    if (hosts_load(co, &err) < 0 || vms_load(co, &err) < 0 ||
        jobs_load(co, &err) < 0)
        die(err.text);
    if (evloop_add_signal(co->loop, SIGTERM, on_stop, co) < 0 ||
        evloop_add_signal(co->loop, SIGINT, on_stop, co) < 0 ||
        evloop_add_signal(co->loop, SIGHUP, on_reload, (void *)o) < 0)
        die("cannot watch signals");
    signal(SIGPIPE, SIG_IGN);
    hosts_start_sweep(co);
}

/* STATE_DIR/coordinator.addr and coordinator.pid (its path into
 * pidfile[len]); logs the start and says it in status[slen] for the
 * service manager. */
static void announce(struct coord *co, const struct settings *s,
                     const char *rank_addr, char *pidfile, size_t len,
                     char *status, size_t slen)
{
    struct vmckpt_error err;
    char bound[NET_ADDRSTRLEN], path[4096], pid[32];

    net_local_name(co->listen_fd, bound, sizeof(bound));
    snprintf(path, sizeof(path), "%s/coordinator.addr", s->state_dir);
    if (daemon_write_file(path, bound, &err) < 0)
        die(err.text);
    snprintf(pidfile, len, "%s/coordinator.pid", s->state_dir);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (daemon_write_file(pidfile, pid, &err) < 0)
        die(err.text);
    log_info("%s listening on %s as '%s' (heartbeat %u ms, lost after %u ms)",
             PACKAGE_STRING, bound, co->name, s->heartbeat_ms,
             s->heartbeat_timeout_ms);
    if (co->rank_fd >= 0)
        log_info("MPI ranks' endpoint on %s (guests told %s)", s->rank_listen,
                 rank_addr);
    if (co->seal_images)
        log_info("new epochs are stored sealed (seal_images)");
    if (co->seal_images && !tls_enabled())
        log_warn("seal_images without [tls]: the job keys travel to the "
                 "agents unencrypted; see docs/security.md");
    if (tls_enabled())
        log_info("TLS 1.3 on every connection: hosts and administrators "
                 "prove credentials of the cluster CA, ranks their job's "
                 "token");
    else
        log_warn("no [tls] credential: connections prove the cluster key "
                 "but travel unencrypted and unprotected after it (ranks' "
                 "endpoint: TLS with the job's token); see "
                 "docs/security.md");
    snprintf(status, slen, "listening on %s as '%s'%s%s", bound, co->name,
             co->rank_fd >= 0 ? "; MPI ranks' endpoint on " : "",
             co->rank_fd >= 0 ? s->rank_listen : "");
}

/* Everything that can fail for a reason an admin must fix is checked
 * before detaching, so the error reaches the terminal. Returns the exit
 * status. */
static int serve(struct coord *co, const struct settings *s,
                 const struct daemon_opts *o)
{
    struct vmckpt_error err;
    char catalog[4096], rank_addr[128], pidfile[4096], status[256];
    int rc;

    snprintf(catalog, sizeof(catalog), "%s/catalog.db", s->state_dir);
    if (open_state(co, s, o->conf, catalog, &err) < 0)
        goto fail;
    co->loop = evloop_create();
    if (co->loop == NULL)
        die("cannot create the event loop");
    if (server_start(co, s->listen_addr, &err) < 0 ||
        server_start_ranks(co, s->rank_listen, ranks_key_for, co, &err) < 0)
        goto fail;
    if (rank_address(co, s, rank_addr, sizeof(rank_addr), &err) < 0) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        return 2;
    }
    stack_modules(co, s, rank_addr);
    if (metrics_start(co, s->metrics_listen, &err) < 0)
        goto fail;
    if (!o->foreground)
        detach(co, catalog);
    load_and_watch(co, o);
    announce(co, s, rank_addr, pidfile, sizeof(pidfile), status,
             sizeof(status));
    daemon_ready(status);

    rc = evloop_run(co->loop);
    if (rc < 0)
        log_errno("event loop failed");
    unlink(pidfile);
    log_info("stopped");
    return rc < 0 ? 1 : 0;
fail:
    fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
    return 1;
}

int main(int argc, char **argv)
{
    struct daemon_opts o;
    struct settings s;
    struct coord co;
    struct vmckpt_error err;
    char path[4096];
    int rc;

    daemon_parse_args(argc, argv, DEFAULT_CONFIG, usage, own_keys, &o);
    /* --stop and --reload print what they do; --reload asks even when the
     * file has a mistake: the daemon logs it and still opens its log file
     * anew (a rotation) */
    if (!o.stop && !o.reload)
        daemon_setup_log("vmckpt-coordinator", "coordinator", &o);
    if (!o.reload && (conf_check_sections(o.conf, own_keys, &err) < 0 ||
                      (!o.stop && read_settings(o.conf, &s, &err) < 0))) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 2;
    } else if (o.stop || o.reload) {
        snprintf(path, sizeof(path), "%s/coordinator.pid",
                 conf_get(o.conf, "coordinator", "state_dir", STATEDIR));
        rc = o.stop ? daemon_stop(path, "vmckpt-coordinator", 30000)
                    : daemon_signal_reload(path, "vmckpt-coordinator");
    } else {
        memset(&co, 0, sizeof(co));
        co.next_req = 1;
        snprintf(co.name, sizeof(co.name), "%s", s.name);
        server_init(&co, s.auth_timeout_ms, s.max_frame);
        rc = serve(&co, &s, &o);
        /* top down: the connections first, their close hooks need the
         * modules */
        server_stop(&co);
        metrics_stop(&co);
        ranks_destroy(&co);
        hosts_destroy(&co);
        jobs_destroy(&co);
        vms_destroy(&co);
        catalog_close(co.cat);
        evloop_destroy(co.loop);
        auth_key_dispose(&co.key);
        datakey_close(&co); /* on every way out of serve() */
        tickets_fini(&co);
    }
    conf_destroy(o.conf);
    log_fini();
    return rc;
}
