/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-agent: one per host. Describes the host (hwloc topology,
 * hypervisors), registers with the coordinator and heartbeats. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include "agent.h"
#include "agent/disk/disk.h"
#include "fence.h"
#include "guard.h"
#include "metrics.h"
#include "agent/engine/precopy.h"
#include "ckpt.h"
#include "work.h"
#include "lib/metrics/httpd.h"
#include "lib/util/conf.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "lib/util/net.h"
#include "lib/util/notify.h"
#include "lib/wire/tls.h"
#include "lib/wire/tls_conf.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/libexec/vmckpt"
#endif
#ifndef STATEDIR
#define STATEDIR "/var/lib/vmckpt"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/vmckpt/vmckpt.conf"
/* the bounds of the [agent] *_ms keys */
#define AGENT_MS_MIN 10
#define AGENT_MS_MAX 3600000

static const char usage[] =
    "Usage: vmckpt-agent [OPTION]...\n"
    "The vmckpt agent: one per host. It registers the host with the\n"
    "coordinator, heartbeats, and reconnects with backoff when the\n"
    "coordinator restarts.\n"
    "\n"
    "Options:\n"
    "  -c, --config=FILE   configuration file (default " DEFAULT_CONFIG ")\n"
    "  -f, --foreground    stay in the foreground (default: daemonize)\n"
    "  -d, --debug         log debug messages\n"
    "  -s, --syslog        log to syslog instead of stderr\n"
    "  -o, --set=S.K=V     override key K of section [S] of the file\n"
    "      --stop          stop the agent running with this configuration\n"
    "                      (SIGTERM to the pid in STATE_DIR/agent.pid, then\n"
    "                      wait for it to end)\n"
    "      --reload        ask the agent running with this configuration to\n"
    "                      reload (SIGHUP to the pid in STATE_DIR/agent.pid)\n"
    "  -h, --help          show this help and exit\n"
    "  -V, --version       show the version and exit\n"
    "      --config-keys   list the configuration keys this program accepts\n"
    "                      (one SECTION.KEY a line) and exit\n"
    "\n"
    "Configuration:\n"
    "  [cluster]\n"
    "  key_file = " SYSCONFDIR "/vmckpt/cluster.key   (mode 0600)\n"
    "  coordinator = HOST[:7470]       the coordinator to register with\n"
    "  [agent]\n"
    "  name = HOSTNAME                 this host's name in the cluster\n"
    "  coordinator = HOST[:PORT]       overrides [cluster] coordinator\n"
    "  state_dir = " STATEDIR "   pid file\n"
    "  reconnect_min_ms = 200          first retry delay after a loss\n"
    "  reconnect_max_ms = 5000         retry delay ceiling\n"
    "  connect_timeout_ms = 2000       connect + handshake deadline\n"
    "  qemu = qemu-system-x86_64       QEMU binary of the QEMU back end\n"
    "  store_listen = *:7471           the store peers stream images to\n"
    "  store_dir = STATE_DIR/store     where this host keeps peers' images\n"
    "  store_tickets = yes | no        yes: the store admits a write or a\n"
    "                                  fetch only with the coordinator's\n"
    "                                  ticket for that host, VM and epoch\n"
    "                                  (no: any agent of the cluster may;\n"
    "                                  for vmckpt-vmtool benches only)\n"
    "  run_dir = STATE_DIR/run         guests' QMP sockets and console logs\n"
    "  ram_dir = /dev/shm              guests' RAM files (a tmpfs: RAM files\n"
    "                                  are shared memory)\n"
    "  disk_dir = STATE_DIR/disks      guests' disk overlays (their chains)\n"
    "  qemu_img = qemu-img             qemu-img (package qemu-utils)\n"
    "  bridge = br0                    the bridge guests' taps join\n"
    "  accel = auto | kvm | tcg        QEMU accelerator for guests\n"
    "  uffd_preload = " PKGLIBEXECDIR "/libvmckpt-uffd.so\n"
    "  guard = " PKGLIBEXECDIR "/vmckpt-guard\n"
    "                                  the fence guard: stops the guests'\n"
    "                                  QEMUs if this agent hangs or dies\n"
    "                                  while its lease runs out ('none': no\n"
    "                                  guard)\n"
    "  dirty_tracking = auto | uffd | qemu-migration\n"
    "                                  auto: userfaultfd write-protection\n"
    "                                  where the kernel has it (6.7+), else\n"
    "                                  QEMU's own migration stream (a full\n"
    "                                  image every epoch)\n"
    "  streams = auto | 1..8           parallel streams per guest to its\n"
    "                                  peer's store (auto: one per two\n"
    "                                  cores, 1 to 4); a checkpoint may ask\n"
    "                                  for another number\n"
    "  pin_threads = auto | off        auto: on a host of several NUMA\n"
    "                                  nodes, run a checkpoint's threads\n"
    "                                  near the guest's memory and the\n"
    "                                  store's near its disk (hwloc)\n"
    "  xl = xl                         Xen back end: the toolstack command\n"
    "                                  that builds and destroys domains\n"
    "  xl_extra = FILE                 lines added to every domain's xl\n"
    "                                  configuration (vif, cpuid, ...)\n"
    "  metrics_listen =                HOST:PORT to serve Prometheus /\n"
    "                                  OpenMetrics text on (GET /metrics,\n"
    "                                  docs/metrics.md); off when empty\n"
    "  log = stderr | syslog | /FILE   where the log goes once started (a\n"
    "                                  file is appended to; errors before\n"
    "                                  the start completed also go to\n"
    "                                  stderr)\n"
    "  log_level = info                error | warning | notice | info |\n"
    "                                  debug\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop the agent and its guests; it tells the\n"
    "coordinator first, so the host shows as 'down' rather than 'lost'.\n"
    "SIGHUP reopens the log file (after a rotation) and applies log_level\n"
    "from the file; other keys take effect at the next start (the log says\n"
    "which changed). Under systemd (NOTIFY_SOCKET set) it reports READY=1,\n"
    "RELOADING=1 and STOPPING=1.\n";

static const char *const agent_keys[] = {"name",
                                         "coordinator",
                                         "state_dir",
                                         "reconnect_min_ms",
                                         "reconnect_max_ms",
                                         "connect_timeout_ms",
                                         "qemu",
                                         "log",
                                         "log_level",
                                         "store_listen",
                                         "store_dir",
                                         "store_tickets",
                                         "run_dir",
                                         "ram_dir",
                                         "disk_dir",
                                         "qemu_img",
                                         "bridge",
                                         "uffd_preload",
                                         "guard",
                                         "dirty_tracking",
                                         "accel",
                                         "xl",
                                         "xl_extra",
                                         "streams",
                                         "pin_threads",
                                         "metrics_listen",
                                         NULL};
/* The sections this program checks; --config-keys lists them. */
static const struct conf_section own_keys[] = {
    {"cluster", conf_cluster_keys},
    {"tls", conf_tls_keys},
    {"agent", agent_keys},
    {NULL, NULL},
};

/* Tell the coordinator that guest 'vm' ended without this agent ending
 * it. Through the outbox: while the link is down the message is dropped,
 * and the list of guests in the next registration tells instead. */
static void tell_exited(struct agent *a, const struct vmm_vm *vm,
                        int exit_status, int sig, const char *reason)
{
    Vmckpt__VmExited x = VMCKPT__VM_EXITED__INIT;

    x.job = (char *)vm->job;
    x.vm = (char *)vm->name;
    x.exit_status = exit_status;
    x.signal = sig;
    x.reason = (char *)reason;
    x.incarnation = vmm_vm_incarnation(vm);
    outbox_msg(&a->out, VMCKPT__MSG_TYPE__MSG_VM_EXITED, 0, &x);
}

/* The vmm's liveness check found a guest gone behind the agent's back (a
 * QEMU it does not reap, a Xen domain destroyed or shut down). */
static void on_guest_gone(void *arg, const struct vmm_vm *vm)
{
    char reason[160];

    if (vm->pid > 0)
        snprintf(reason, sizeof(reason), "QEMU (pid %d) is gone", (int)vm->pid);
    else
        snprintf(reason, sizeof(reason), "%s is gone or shut down", vm->where);
    tell_exited(arg, vm, -1, 0, reason);
}

/* One of the guests' QEMUs (the agent's children) that has ended, reaped:
 * its pid and wait status; 0 if none has. Each is waited for by its pid:
 * the agent's threads run children of their own (qemu-img, ip) and wait
 * for them themselves. */
static pid_t reap_one(struct agent *a, int *status)
{
    struct vmm_vm *v;
    pid_t g = guard_pid();

    for (v = a->vmm.vms; v != NULL; v = v->next)
        if (v->pid > 0 && !v->adopted &&
            waitpid(v->pid, status, WNOHANG) == v->pid)
            return v->pid;
    if (g > 0 && waitpid(g, status, WNOHANG) == g)
        log_warn("fence guard (pid %d) ended", (int)g);
    return 0;
}

/* A guest's QEMU ended: forget it; unless the agent ended it (a stop, a
 * restore replacing it), the coordinator is told. */
static void on_child(struct evloop *loop, int signo, void *arg)
{
    struct agent *a = arg;
    pid_t pid;
    int status;

    (void)loop;
    (void)signo;
    while ((pid = reap_one(a, &status)) > 0) {
        struct vmm_vm *vm = vmm_reaped(&a->vmm, pid);
        char reason[160];

        if (vm == NULL)
            continue;
        if (vm->stopping) {
            log_info("guest %s/%s stopped", vm->job, vm->name);
        } else {
            if (WIFSIGNALED(status))
                snprintf(reason, sizeof(reason),
                         "QEMU (pid %d) killed by signal %d (%s)", (int)pid,
                         WTERMSIG(status), strsignal(WTERMSIG(status)));
            else
                snprintf(reason, sizeof(reason),
                         "QEMU (pid %d) exited with status %d", (int)pid,
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            log_warn("guest %s/%s: %s", vm->job, vm->name, reason);
            tell_exited(a, vm, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                        WIFSIGNALED(status) ? WTERMSIG(status) : 0, reason);
        }
        vmm_free(vm);
    }
}

static void on_stop(struct evloop *loop, int signo, void *arg)
{
    char status[64];

    (void)arg;
    log_info("signal %d: shutting down", signo);
    snprintf(status, sizeof(status),
             "shutting down (signal %d): stopping the guests", signo);
    notify_stopping(status);
    evloop_stop(loop);
}

static int get_ms(const struct conf *conf, const char *key, uint64_t def,
                  unsigned *out)
{
    struct vmckpt_error err;
    uint64_t v;

    if (conf_get_uint(conf, "agent", key, def, AGENT_MS_MIN, AGENT_MS_MAX, &v,
                      &err) < 0) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* [agent] pin_threads: 1 (auto), 0 (off), or -1 (neither). */
static int pin_threads(const struct conf *conf)
{
    const char *v = conf_get(conf, "agent", "pin_threads", "auto");

    return strcmp(v, "auto") == 0 ? 1 : strcmp(v, "off") == 0 ? 0 : -1;
}

/* A reload's check of a new file: the values the next start reads that
 * can be checked without acting on them. 0, or -1 with 'err'. */
static int check_settings(const struct conf *conf, struct vmckpt_error *err)
{
    static const char *const ms_keys[] = {
        "reconnect_min_ms", "reconnect_max_ms", "connect_timeout_ms", NULL};
    const char *accel = conf_get(conf, "agent", "accel", "auto");
    const char *streams = conf_get(conf, "agent", "streams", "auto");
    const char *const *k;
    uint64_t v;
    bool b;

    for (k = ms_keys; *k != NULL; k++)
        if (conf_get_uint(conf, "agent", *k, 0, AGENT_MS_MIN, AGENT_MS_MAX, &v,
                          err) < 0)
            return -1;
    if (conf_get(conf, "agent", "coordinator",
                 conf_get(conf, "cluster", "coordinator", NULL)) == NULL)
        return errprintf(err, "no coordinator address: set [cluster] "
                              "coordinator = HOST[:PORT]");
    if (strcmp(accel, "auto") != 0 && strcmp(accel, "kvm") != 0 &&
        strcmp(accel, "tcg") != 0)
        return errprintf(err, "[agent] accel = '%s': expected auto, kvm or tcg",
                         accel);
    if (strcmp(streams, "auto") != 0 &&
        conf_get_uint(conf, "agent", "streams", 1, 1, PRECOPY_MAX_STREAMS, &v,
                      err) < 0)
        return -1;
    if (conf_get_bool(conf, "agent", "store_tickets", true, &b, err) < 0)
        return -1;
    if (pin_threads(conf) < 0)
        return errprintf(err,
                         "[agent] pin_threads = '%s': expected auto or "
                         "off",
                         conf_get(conf, "agent", "pin_threads", ""));
    return 0;
}

static const struct daemon_reload reload_desc = {
    .ident = "vmckpt-agent",
    .section = "agent",
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

/* [tls]: this host's credential, which must be an agent's of its own
 * name. 1 with TLS set up, 0 without a credential, -1 after saying why. */
static int agent_credential(const struct daemon_opts *o, const char *name)
{
    struct vmckpt_error err;
    enum tls_role role;
    char cn[128];
    int rc = tls_setup_conf(o->conf, TLS_CONF_KTLS | TLS_CONF_BULK, &err);

    if (rc < 0) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        return -1;
    }
    if (rc > 0 && tls_self(&role, cn, sizeof(cn)) == 0 &&
        (role != TLS_ROLE_AGENT || strcmp(cn, name) != 0)) {
        fprintf(stderr,
                "vmckpt-agent: [tls] cert is the credential of %s '%s'; "
                "this host needs an agent's named '%s' ('vmckpt cert issue "
                "agent %s')\n",
                tls_role_name(role), cn, name, name);
        return -1;
    }
    return rc;
}

/* The settings of the link: timeouts, this host's name, the coordinator's
 * address, the cluster key. Returns 0, or the exit status (2: bad
 * configuration, 1: cannot go on) after saying why on stderr. */
static int read_link_settings(const struct daemon_opts *o, struct agent *a)
{
    struct vmckpt_error err;
    const char *coord;
    char host[64];

    if (get_ms(o->conf, "reconnect_min_ms", 200, &a->reconnect_min_ms) < 0 ||
        get_ms(o->conf, "reconnect_max_ms", 5000, &a->reconnect_max_ms) < 0 ||
        get_ms(o->conf, "connect_timeout_ms", 2000, &a->connect_timeout_ms) < 0)
        return 2;
    if (a->reconnect_max_ms < a->reconnect_min_ms)
        a->reconnect_max_ms = a->reconnect_min_ms;
    if (gethostname(host, sizeof(host) - 1) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(a->name, sizeof(a->name), "%s",
             conf_get(o->conf, "agent", "name", host));
    coord = conf_get(o->conf, "agent", "coordinator",
                     conf_get(o->conf, "cluster", "coordinator", NULL));
    if (coord == NULL) {
        fprintf(stderr,
                "vmckpt-agent: no coordinator address: set [cluster] "
                "coordinator = HOST[:PORT] in %s\n",
                o->config_path ? o->config_path : DEFAULT_CONFIG);
        return 2;
    }
    snprintf(a->coordinator, sizeof(a->coordinator), "%s", coord);
    switch (agent_credential(o, a->name)) {
    case 0:
        break;
    case 1:
        return 0; /* TLS: the session's key replaces the cluster key */
    default:
        return 2;
    }
    if (auth_key_load(&a->key,
                      conf_get(o->conf, "cluster", "key_file",
                               SYSCONFDIR "/vmckpt/cluster.key"),
                      &err) < 0) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        return 1;
    }
    return 0;
}

/* What this host is: its state directory, topology (kept to place the
 * threads, lib/topo) and hypervisors (every back end of the list,
 * probed). Returns 0, or 1 (2: a bad setting) after saying why. */
static int probe_host(const struct daemon_opts *o, struct agent *a,
                      const char *state_dir)
{
    const struct hv_ops *const *hv;
    struct vmckpt_error err;

    if (daemon_mkdirs(state_dir, 0700, &err) < 0) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        return 1;
    }
    if (pin_threads(o->conf) < 0) {
        fprintf(stderr,
                "vmckpt-agent: [agent] pin_threads = '%s': expected "
                "auto or off\n",
                conf_get(o->conf, "agent", "pin_threads", ""));
        return 2;
    }
    if (topo_host_init(pin_threads(o->conf), &a->topo, &err) < 0) {
        fprintf(stderr, "vmckpt-agent: host topology: %s\n", err.text);
        return 1;
    }
    for (hv = hv_backends(); *hv != NULL && a->nhv < AGENT_MAX_HV; hv++) {
        a->hv[a->nhv] = *hv;
        (*hv)->probe(o->conf, &a->hvp[a->nhv]);
        a->nhv++;
    }
    return 0;
}

/* The store peers stream images to. Returns 0 or 1 after logging why. */
static int start_store(const struct daemon_opts *o, struct agent *a,
                       const char *state_dir)
{
    char path[4096], sdir[4096], bound[NET_ADDRSTRLEN], bhost[NET_ADDRSTRLEN];
    struct vmckpt_error err;
    bool tickets = true;

    snprintf(path, sizeof(path), "%s/store", state_dir);
    snprintf(sdir, sizeof(sdir), "%s",
             conf_get(o->conf, "agent", "store_dir", path));
    if (conf_get_bool(o->conf, "agent", "store_tickets", true, &tickets, &err) <
            0 ||
        daemon_mkdirs(sdir, 0700, &err) < 0 ||
        store_start(&a->store, a->loop, sdir,
                    conf_get(o->conf, "agent", "store_listen", "*:7471"),
                    &a->key, a->name, &err) < 0) {
        log_err("store: %s", err.text);
        return 1;
    }
    a->store.tickets = tickets;
    net_local_name(a->store.listen_fd, bound, sizeof(bound));
    if (net_split(bound, 0, bhost, &a->store_port, NULL) < 0)
        a->store_port = STORE_DEFAULT_PORT;
    log_info("store %s listening on %s%s", sdir, bound,
             tickets ? ""
                     : " (store_tickets = no: any agent may write and "
                       "fetch any image)");
    topo_host_plan_writer(a->store.dir);
    return 0;
}

/* Parallel streams per checkpoint. Returns 0 or 2 after logging why. */
static int set_streams(const struct daemon_opts *o, struct agent *a)
{
    const char *v = conf_get(o->conf, "agent", "streams", "auto");
    struct vmckpt_error err;
    uint64_t n;

    if (strcmp(v, "auto") == 0) {
        n = a->topo.cores / 2;
        n = n < 1 ? 1 : n > 4 ? 4 : n;
    } else if (conf_get_uint(o->conf, "agent", "streams", 1, 1,
                             PRECOPY_MAX_STREAMS, &n, &err) < 0) {
        log_err("%s", err.text);
        return 2;
    }
    a->streams = (unsigned)n;
    log_info("checkpoints use %u stream%s per guest", a->streams,
             n > 1 ? "s" : "");
    return 0;
}

/* disk_dir_sweep's question: does a guest of ours run on JOB/VM's chain? */
static int runs_here(void *arg, const char *job, const char *vm)
{
    return vmm_find(arg, job, vm) != NULL;
}

/* The guests: the accelerator, the outbox their threads answer through,
 * and the guests an earlier agent left running, taken over. Returns 0, or
 * the exit status after logging why. */
static int start_guests(const struct daemon_opts *o, struct agent *a,
                        const char *state_dir)
{
    const char *accel = conf_get(o->conf, "agent", "accel", "auto");
    const char *guard;
    struct vmckpt_error err;
    int i, n;

    /* auto: KVM where the probe found it usable; an admin who knows
     * better (a nested KVM that cannot boot guests) says tcg */
    if (strcmp(accel, "auto") == 0) {
        accel = "tcg";
        for (i = 0; i < a->nhv; i++)
            if (strcmp(a->hv[i]->name, "qemu") == 0 && a->hvp[i].usable)
                accel = a->hvp[i].accel;
    } else if (strcmp(accel, "kvm") != 0 && strcmp(accel, "tcg") != 0) {
        log_err("[agent] accel = '%s': expected auto, kvm or tcg", accel);
        return 2;
    }
    log_info("guests run under %s", accel);
    if (vmm_init(&a->vmm, o->conf, state_dir, accel, &err) < 0 ||
        outbox_init(&a->out, a->loop, link_send_frame, a, &err) < 0 ||
        evloop_add_signal(a->loop, SIGCHLD, on_child, a) < 0) {
        log_err("guests: %s", err.text);
        return 1;
    }
    a->vmm.on_gone = on_guest_gone;
    a->vmm.on_gone_arg = a;
    /* the guard first: one an earlier agent left must not stop the guests
     * taken over below */
    guard = conf_get(o->conf, "agent", "guard", PKGLIBEXECDIR "/vmckpt-guard");
    if (strcmp(guard, "none") == 0)
        log_warn("[agent] guard = none: guests of a hung or killed agent are "
                 "not stopped when its lease ends");
    else
        (void)guard_start(guard, a->vmm.run_dir,
                          o->use_syslog
                              ? "syslog"
                              : conf_get(o->conf, "agent", "log", "stderr"));
    n = vmm_adopt_all(&a->vmm, &err);
    if (n < 0)
        log_err("guests of an earlier agent: %s", err.text);
    else if (n > 0)
        log_info("took over %d guest(s) an earlier agent left running", n);
    if (n >= 0)
        (void)disk_dir_sweep(a->vmm.disk_dir, runs_here, &a->vmm);
    return 0;
}

static void log_host(const struct agent *a)
{
    int i;

    log_info("%s on host %s: %u cores, %u threads, %u NUMA node(s), %llu "
             "MiB",
             PACKAGE_STRING, a->name, a->topo.cores, a->topo.pus,
             a->topo.numa_nodes,
             (unsigned long long)(a->topo.memory_bytes >> 20));
    for (i = 0; i < a->nhv; i++)
        log_info("hypervisor %s: %s%s%s%s%s", a->hv[i]->name,
                 a->hvp[i].usable ? "usable" : "unusable",
                 a->hvp[i].version[0] ? ", version " : "", a->hvp[i].version,
                 a->hvp[i].detail[0] ? "; " : "", a->hvp[i].detail);
    if (tls_enabled())
        log_info("TLS 1.3: this host proves the agent credential '%s'; its "
                 "store serves agents with credentials of the cluster CA",
                 a->name);
    else
        log_warn("no [tls] credential: the cluster key's handshake only; "
                 "frames and guest memory travel unencrypted (see "
                 "docs/security.md)");
}

/* Started and ready: serve until a signal stops the loop, then stop in
 * order (goodbye to the coordinator first). Returns the exit status. */
static int serve(struct agent *a, const char *pid_path)
{
    char bound[NET_ADDRSTRLEN], status[320];
    const struct vmm_vm *vm;
    int rc, n = 0;

    for (vm = a->vmm.vms; vm != NULL; vm = vm->next)
        n++;
    net_local_name(a->store.listen_fd, bound, sizeof(bound));
    snprintf(status, sizeof(status),
             "host %s: store on %s, %d guest(s); connecting to coordinator %s",
             a->name, bound, n, a->coordinator);
    daemon_ready(status);
    /* the link hands requests and its loss up to the daemon's own code */
    a->on_request = work_handle;
    a->on_link_lost = ckpt_link_lost;
    link_start(a);
    fence_start(a);
    rc = evloop_run(a->loop);
    if (rc < 0)
        log_errno("event loop failed");
    fence_stop(a);
    guard_quit();
    link_stop(a, "agent shutting down");
    store_stop(&a->store, a->loop);
    vmm_fini(&a->vmm);
    outbox_fini(&a->out);
    unlink(pid_path);
    log_info("stopped");
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct daemon_opts o;
    struct agent a;
    struct vmckpt_error err;
    const char *state_dir;
    char path[4096], pid[32];
    int rc;

    daemon_parse_args(argc, argv, DEFAULT_CONFIG, usage, own_keys, &o);
    memset(&a, 0, sizeof(a));
    a.fd = -1;
    /* --stop and --reload print what they do; --reload asks even when the
     * file has a mistake: the daemon logs it and still opens its log file
     * anew (a rotation) */
    if (!o.stop && !o.reload)
        daemon_setup_log("vmckpt-agent", "agent", &o);
    if (!o.reload &&
        (conf_check_sections(o.conf, own_keys, &err) < 0 ||
         httpd_check_addr("[agent] metrics_listen",
                          conf_get(o.conf, "agent", "metrics_listen", ""),
                          &err) < 0)) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        rc = 2;
        goto out;
    }
    state_dir = conf_get(o.conf, "agent", "state_dir", STATEDIR);
    snprintf(path, sizeof(path), "%s/agent.pid", state_dir);
    if (o.stop || o.reload) {
        rc = o.stop ? daemon_stop(path, "vmckpt-agent", 30000)
                    : daemon_signal_reload(path, "vmckpt-agent");
        goto out;
    }
    if ((rc = read_link_settings(&o, &a)) != 0 ||
        (rc = probe_host(&o, &a, state_dir)) != 0)
        goto out;
    snprintf(a.crl_path, sizeof(a.crl_path), "%s/crl.pem", state_dir);
    link_load_crl(&a);
    if (!o.foreground && daemon_detach(&err) < 0) {
        fprintf(stderr, "vmckpt-agent: %s\n", err.text);
        rc = 1;
        goto out;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    a.loop = evloop_create();
    if (a.loop == NULL || evloop_add_signal(a.loop, SIGTERM, on_stop, &a) < 0 ||
        evloop_add_signal(a.loop, SIGINT, on_stop, &a) < 0 ||
        evloop_add_signal(a.loop, SIGHUP, on_reload, &o) < 0) {
        log_errno("event loop");
        rc = 1;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start_store(&o, &a, state_dir)) != 0 ||
        (rc = set_streams(&o, &a)) != 0 ||
        (rc = start_guests(&o, &a, state_dir)) != 0)
        goto out;
    if (agent_metrics_start(&a, conf_get(o.conf, "agent", "metrics_listen", ""),
                            &err) < 0) {
        log_err("%s", err.text);
        rc = 1;
        goto out;
    }
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (daemon_write_file(path, pid, &err) < 0) {
        log_err("%s", err.text);
        rc = 1;
        goto out;
    }
    log_host(&a);
    rc = serve(&a, path);
out:
    agent_metrics_stop(&a);
    evloop_destroy(a.loop);
    auth_key_dispose(&a.key);
    conf_destroy(o.conf);
    log_fini();
    return rc;
}
