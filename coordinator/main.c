/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-coordinator: one per cluster. Authenticates agents and consoles,
 * keeps the host registry and the catalog, and watches heartbeats. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord.h"
#include "lib/util/conf.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "lib/util/net.h"

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
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
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
    "  auth_timeout_ms = 5000          handshake deadline per connection\n"
    "  max_frame_bytes = 1048576       largest message accepted\n"
    "  keep_epochs = 2                 committed epochs kept per VM (0: all)\n"
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
    "  log = stderr | syslog | /FILE   where the log goes once started (a\n"
    "                                  file is appended to; errors before\n"
    "                                  the start completed also go to\n"
    "                                  stderr)\n"
    "  log_level = info                error | warning | info | debug\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop the coordinator cleanly.\n"
    "Files: STATE_DIR/catalog.db (SQLite, WAL), coordinator.pid,\n"
    "coordinator.addr (the address actually bound, for scripts).\n";

static const char *const sections[] = {"cluster", "coordinator", "agent",
                                       "launch", NULL};
static const char *const cluster_keys[] = {"key_file", "coordinator",
                                           "timeout_ms", NULL};
static const char *const coord_keys[] = {"listen",
                                         "name",
                                         "state_dir",
                                         "heartbeat_interval_ms",
                                         "heartbeat_timeout_ms",
                                         "auth_timeout_ms",
                                         "max_frame_bytes",
                                         "keep_epochs",
                                         "max_precopy_ms",
                                         "checkpoint_timeout_ms",
                                         "mtbf_s",
                                         "rank_listen",
                                         "rank_address",
                                         "align_timeout_ms",
                                         "align_settle_ms",
                                         "rank_grace_ms",
                                         "log",
                                         "log_level",
                                         NULL};

static void on_stop(struct evloop *loop, int signo, void *arg)
{
    (void)arg;
    log_info("signal %d: shutting down", signo);
    evloop_stop(loop);
}

static void die(const char *what)
{
    log_err("%s", what);
    exit(1);
}

int main(int argc, char **argv)
{
    struct daemon_opts o;
    struct coord co;
    struct vmckpt_error err;
    char path[4096], bound[NET_ADDRSTRLEN], pid[32];
    const char *state_dir, *key_file, *listen_addr, *rank_listen;
    uint64_t v;
    int rc;

    daemon_parse_args(argc, argv, DEFAULT_CONFIG, usage, &o);
    memset(&co, 0, sizeof(co));
    co.listen_fd = -1;
    co.rank_fd = -1;
    daemon_setup_log("vmckpt-coordinator", "coordinator", &o);
    if (conf_check(o.conf, sections, "cluster", cluster_keys, &err) < 0 ||
        conf_check(o.conf, sections, "coordinator", coord_keys, &err) < 0) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 2;
        goto out;
    }
    if (o.stop) {
        snprintf(path, sizeof(path), "%s/coordinator.pid",
                 conf_get(o.conf, "coordinator", "state_dir", STATEDIR));
        rc = daemon_stop(path, "vmckpt-coordinator", 30000);
        goto out;
    }

    memset(&co, 0, sizeof(co));
    co.listen_fd = -1;
    co.rank_fd = -1;
    co.next_host_id = 1;
    co.next_req = 1;
    if (conf_get_uint(o.conf, "coordinator", "heartbeat_interval_ms", 1000, 50,
                      600000, &v, &err) < 0)
        goto confail;
    co.heartbeat_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "heartbeat_timeout_ms",
                      5 * (uint64_t)co.heartbeat_ms, 2 * co.heartbeat_ms,
                      3600000, &v, &err) < 0)
        goto confail;
    co.heartbeat_timeout_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "auth_timeout_ms", 5000, 100,
                      600000, &v, &err) < 0)
        goto confail;
    co.auth_timeout_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "max_frame_bytes",
                      WIRE_MAX_FRAME_DEFAULT, 4096, WIRE_MAX_FRAME_LIMIT, &v,
                      &err) < 0)
        goto confail;
    co.max_frame = (size_t)v;
    if (conf_get_uint(o.conf, "coordinator", "keep_epochs", 2, 0, 1000, &v,
                      &err) < 0)
        goto confail;
    co.keep_epochs = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "max_precopy_ms", 20000, 100,
                      3600000, &v, &err) < 0)
        goto confail;
    co.max_precopy_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "checkpoint_timeout_ms", 120000,
                      1000, 86400000, &v, &err) < 0)
        goto confail;
    co.ckpt_timeout_ms = (unsigned)v;
    if (co.ckpt_timeout_ms <= co.max_precopy_ms) {
        fprintf(stderr,
                "vmckpt-coordinator: checkpoint_timeout_ms (%u) must exceed "
                "max_precopy_ms (%u)\n",
                co.ckpt_timeout_ms, co.max_precopy_ms);
        rc = 2;
        goto out;
    }
    if (conf_get_uint(o.conf, "coordinator", "mtbf_s", 86400, 1, 315360000, &v,
                      &err) < 0)
        goto confail;
    co.mtbf_s = v;
    if (conf_get_uint(o.conf, "coordinator", "align_timeout_ms", 10000, 10,
                      3600000, &v, &err) < 0)
        goto confail;
    co.align_timeout_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "align_settle_ms", 1000, 0, 600000,
                      &v, &err) < 0)
        goto confail;
    co.align_settle_ms = (unsigned)v;
    if (conf_get_uint(o.conf, "coordinator", "rank_grace_ms", 30000, 0,
                      86400000, &v, &err) < 0)
        goto confail;
    co.rank_grace_ms = (unsigned)v;
    rank_listen = conf_get(o.conf, "coordinator", "rank_listen", "");
    if (gethostname(path, sizeof(path) - 1) < 0)
        snprintf(path, sizeof(path), "coordinator");
    path[sizeof(path) - 1] = '\0';
    snprintf(co.name, sizeof(co.name), "%s",
             conf_get(o.conf, "coordinator", "name", path));
    state_dir = conf_get(o.conf, "coordinator", "state_dir", STATEDIR);
    key_file = conf_get(o.conf, "cluster", "key_file",
                        SYSCONFDIR "/vmckpt/cluster.key");
    listen_addr = conf_get(o.conf, "coordinator", "listen", "*:7470");

    /* Everything that can fail for a reason an admin must fix is checked
     * before detaching, so the error reaches the terminal. */
    if (auth_key_load(&co.key, key_file, &err) < 0) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 1;
        goto out;
    }
    if (daemon_mkdirs(state_dir, 0700, &err) < 0) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 1;
        goto out;
    }
    snprintf(path, sizeof(path), "%s/catalog.db", state_dir);
    co.cat = catalog_open(path, &err);
    if (co.cat == NULL) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 1;
        goto out;
    }
    co.loop = evloop_create();
    if (co.loop == NULL)
        die("cannot create the event loop");
    if (server_start(&co, listen_addr, &err) < 0 ||
        server_start_ranks(&co, rank_listen, &err) < 0) {
        fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
        rc = 1;
        goto out;
    }
    if (co.rank_fd >= 0) {
        const char *adv = conf_get(o.conf, "coordinator", "rank_address", "");

        net_local_name(co.rank_fd, bound, sizeof(bound));
        snprintf(co.rank_addr, sizeof(co.rank_addr), "%s",
                 adv[0] ? adv : bound);
        if (strncmp(co.rank_addr, "0.0.0.0:", 8) == 0 ||
            strncmp(co.rank_addr, "[::]:", 5) == 0) {
            fprintf(stderr,
                    "vmckpt-coordinator: rank_listen = %s listens on every "
                    "address: set rank_address to the one guests reach\n",
                    rank_listen);
            rc = 2;
            goto out;
        }
    }
    if (!o.foreground) {
        /* the catalog's SQLite handle is not used across fork: reopen */
        catalog_close(co.cat);
        if (daemon_detach(&err) < 0)
            die(err.text);
        co.cat = catalog_open(path, &err);
        if (co.cat == NULL)
            die(err.text);
    }
    if (hosts_load(&co, &err) < 0 || vms_load(&co, &err) < 0 ||
        jobs_load(&co, &err) < 0)
        die(err.text);
    if (evloop_add_signal(co.loop, SIGTERM, on_stop, &co) < 0 ||
        evloop_add_signal(co.loop, SIGINT, on_stop, &co) < 0)
        die("cannot watch signals");
    signal(SIGPIPE, SIG_IGN);
    hosts_start_sweep(&co);

    net_local_name(co.listen_fd, bound, sizeof(bound));
    snprintf(path, sizeof(path), "%s/coordinator.addr", state_dir);
    if (daemon_write_file(path, bound, &err) < 0)
        die(err.text);
    snprintf(path, sizeof(path), "%s/coordinator.pid", state_dir);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (daemon_write_file(path, pid, &err) < 0)
        die(err.text);
    log_info("%s listening on %s as '%s' (heartbeat %u ms, lost after %u ms)",
             PACKAGE_STRING, bound, co.name, co.heartbeat_ms,
             co.heartbeat_timeout_ms);
    if (co.rank_fd >= 0)
        log_info("MPI ranks' endpoint on %s (guests told %s)", rank_listen,
                 co.rank_addr);
    daemon_ready();

    rc = evloop_run(co.loop);
    if (rc < 0)
        log_errno("event loop failed");
    unlink(path);
    log_info("stopped");
    rc = rc < 0 ? 1 : 0;
    goto out;

confail:
    fprintf(stderr, "vmckpt-coordinator: %s\n", err.text);
    rc = 2;
out:
    server_stop(&co);
    hosts_free(&co);
    jobs_free(&co);
    vms_free(&co);
    catalog_close(co.cat);
    evloop_destroy(co.loop);
    auth_key_dispose(&co.key);
    conf_destroy(o.conf);
    log_fini();
    return rc;
}
