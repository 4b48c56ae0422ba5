/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt cluster start|stop: start or stop the agents of many hosts from
 * the head node over SSH (libssh2). Every host's key is checked against a
 * known_hosts file before anything is sent; hosts are served in parallel
 * by one child process each, and each host's report is printed whole. */
#include "config.h"

#include <errno.h>
#include <libssh2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/name.h"
#include "lib/util/net.h"
#include "lib/wire/wire.h"

#include "cmd_cluster.h"

#ifndef SBINDIR
#define SBINDIR "/usr/sbin"
#endif

#define MAX_HOSTS  4096
#define REPORT_MAX 8192

static const char cluster_usage[] =
    "Usage: vmckpt cluster start [--no-wait] [HOST]...\n"
    "       vmckpt cluster stop [HOST]...\n"
    "Start or stop the vmckpt agent of each HOST (default: [launch] hosts)\n"
    "over SSH, all hosts at once. Each host's key must be in the known_hosts\n"
    "file: a host that is missing there, or whose key changed, is refused\n"
    "before anything is sent to it. 'start' runs the agent command, which\n"
    "returns once the agent is ready or has failed (its error is shown),\n"
    "then waits until every started agent has registered with the\n"
    "coordinator (--no-wait: do not). 'stop' runs the same command with\n"
    "--stop: the agent says goodbye to the coordinator and ends; its\n"
    "guests keep running, and the next agent on the host takes them over.\n"
    "\n"
    "Configuration, section [launch] of the console's file:\n"
    "  hosts = H1 H2 ...            the hosts when none are named\n"
    "  agent_command = " SBINDIR "/vmckpt-agent\n"
    "                               run on each host by the remote user's\n"
    "                               shell; %h is replaced by the host's name\n"
    "                               (e.g. 'vmckpt-agent -o agent.name=%h').\n"
    "                               Give the agent 'log = syslog' or a file:\n"
    "                               with stderr it would log to the session\n"
    "  ssh_user = root              the remote user\n"
    "  ssh_port = 22\n"
    "  ssh_identity = ~/.ssh/id_ed25519\n"
    "                               private key, without a passphrase (its\n"
    "                               .pub beside it is used when present);\n"
    "                               ed25519 or ECDSA: a libssh2 without\n"
    "                               rsa-sha2 (Debian 12's 1.10) signs RSA\n"
    "                               with SHA-1, which OpenSSH 8.8+ refuses\n"
    "  known_hosts = ~/.ssh/known_hosts\n"
    "  host_key_algorithms = A,B,...  the host key types to ask for, in\n"
    "                               order (default OpenSSH's: ssh-ed25519,\n"
    "                               ecdsa-sha2-nistp256, ..., rsa-sha2-512,\n"
    "                               rsa-sha2-256, ssh-rsa)\n"
    "  connect_timeout_ms = 10000   connect, SSH handshake and login\n"
    "  command_timeout_ms = 60000   the agent command on the host\n"
    "  parallel = 32                hosts served at once\n"
    "  register_timeout_ms = 30000  wait for started agents to register\n"
    "\n"
    "Exit status: 0 when every host did what was asked, 1 otherwise.\n";

const char *const cmd_cluster_launch_keys[] = {"hosts",
                                               "agent_command",
                                               "ssh_user",
                                               "ssh_port",
                                               "ssh_identity",
                                               "known_hosts",
                                               "host_key_algorithms",
                                               "connect_timeout_ms",
                                               "command_timeout_ms",
                                               "parallel",
                                               "register_timeout_ms",
                                               NULL};

struct launch {
    const char *agent_command;
    const char *user;
    char identity[4096];
    char identity_pub[4096]; /* empty: derived from the private key */
    char known_hosts[4096];
    const char *host_key_algorithms;
    unsigned port;
    unsigned connect_timeout_ms;
    unsigned command_timeout_ms;
    unsigned parallel;
    unsigned register_timeout_ms;
};

/* A host's whole report, printed at once so that hosts do not mix. */
struct report {
    char text[REPORT_MAX];
    size_t len;
};

static void __attribute__((format(printf, 2, 3)))
say(struct report *r, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (r->len >= sizeof(r->text) - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len += (size_t)n;
    if (r->len >= sizeof(r->text))
        r->len = sizeof(r->text) - 1;
}

/* "~/x" under $HOME. */
static void expand_home(const char *in, char *out, size_t len)
{
    const char *home = getenv("HOME");

    if (in[0] == '~' && in[1] == '/' && home != NULL && *home)
        snprintf(out, len, "%s%s", home, in + 1);
    else
        snprintf(out, len, "%s", in);
}

/* A host's name as given becomes part of a command line and a known_hosts
 * look-up: letters, digits and . - _ only. */
static int host_name_ok(const char *h)
{
    return name_is_plain(h, 253) && h[0] != '-' && h[0] != '.';
}

static int launch_config(struct cli *cli, struct launch *l)
{
    const struct {
        const char *key;
        uint64_t def, min, max;
        unsigned *out;
    } nums[] = {
        {"ssh_port", 22, 1, 65535, &l->port},
        {"connect_timeout_ms", 10000, 100, 600000, &l->connect_timeout_ms},
        {"command_timeout_ms", 60000, 100, 3600000, &l->command_timeout_ms},
        {"parallel", 32, 1, 1024, &l->parallel},
        {"register_timeout_ms", 30000, 0, 3600000, &l->register_timeout_ms},
    };
    struct vmckpt_error err;
    uint64_t v;
    size_t i;

    memset(l, 0, sizeof(*l));
    l->agent_command =
        conf_get(cli->conf, "launch", "agent_command", SBINDIR "/vmckpt-agent");
    l->user = conf_get(cli->conf, "launch", "ssh_user", "root");
    expand_home(
        conf_get(cli->conf, "launch", "ssh_identity", "~/.ssh/id_ed25519"),
        l->identity, sizeof(l->identity));
    snprintf(l->identity_pub, sizeof(l->identity_pub), "%s.pub", l->identity);
    if (access(l->identity_pub, R_OK) < 0)
        l->identity_pub[0] = '\0';
    expand_home(
        conf_get(cli->conf, "launch", "known_hosts", "~/.ssh/known_hosts"),
        l->known_hosts, sizeof(l->known_hosts));
    /* OpenSSH's order: the key an OpenSSH client recorded is asked for */
    l->host_key_algorithms =
        conf_get(cli->conf, "launch", "host_key_algorithms",
                 "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
                 "ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa");
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (conf_get_uint(cli->conf, "launch", nums[i].key, nums[i].def,
                          nums[i].min, nums[i].max, &v, &err) < 0)
            goto bad;
        *nums[i].out = (unsigned)v;
    }
    if (access(l->identity, R_OK) < 0) {
        fprintf(stderr,
                "vmckpt cluster: cannot read the SSH key %s: %s\n"
                "Set [launch] ssh_identity to a private key without a "
                "passphrase whose .pub is in the hosts' authorized_keys.\n",
                l->identity, strerror(errno));
        return -1;
    }
    if (access(l->known_hosts, R_OK) < 0) {
        fprintf(stderr,
                "vmckpt cluster: cannot read %s: %s\n"
                "Host keys are never accepted blindly: collect them (e.g. "
                "ssh-keyscan), check them, and set [launch] known_hosts.\n",
                l->known_hosts, strerror(errno));
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "vmckpt cluster: %s\n", err.text);
    return -1;
}

/* The agent command for host 'h': %h replaced, %% a percent sign. */
static int remote_command(const char *tmpl, const char *h, const char *extra,
                          char *out, size_t len)
{
    size_t o = 0;
    const char *p;

    for (p = tmpl; *p; p++) {
        const char *add = NULL;
        char one[2] = {*p, '\0'};

        if (p[0] == '%' && p[1] == 'h') {
            add = h;
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            add = "%";
            p++;
        } else {
            add = one;
        }
        if (o + strlen(add) >= len)
            return -1;
        memcpy(out + o, add, strlen(add));
        o += strlen(add);
    }
    if (o + strlen(extra) >= len)
        return -1;
    memcpy(out + o, extra, strlen(extra) + 1);
    return 0;
}

static const char *ssh_error(LIBSSH2_SESSION *s)
{
    char *msg = NULL;

    libssh2_session_last_error(s, &msg, NULL, 0);
    return msg != NULL && *msg ? msg : "unknown error";
}

static int known_type(int hostkey_type)
{
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA:
        return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS:
        return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
        return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519:
        return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default:
        return -1;
    }
}

/* libssh2_knownhost_readfile(), except that a line naming one host of
 * fewer than three characters ("h1 ssh-ed25519 ...") is not dropped:
 * libssh2 1.10 takes such a name for a hashed one and skips the line. */
static int read_known_hosts(LIBSSH2_SESSION *s, LIBSSH2_KNOWNHOSTS *kh,
                            const char *path, const char *h, struct report *r)
{
    char line[8192], fixed[8300];
    unsigned lineno = 0;
    FILE *f = fopen(path, "re");

    if (f == NULL) {
        say(r, "%s: cannot read %s: %s\n", h, path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        const char *use = line;
        size_t hl = strcspn(line, " \t");

        lineno++;
        if (line[0] != '#' && line[0] != '|' && hl > 0 && hl < 3 &&
            line[hl] != '\0') {
            /* "NAME,NAME KEY": the same host, a name long enough */
            snprintf(fixed, sizeof(fixed), "%.*s,%s", (int)hl, line, line);
            use = fixed;
        }
        if (libssh2_knownhost_readline(kh, use, strlen(use),
                                       LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
            say(r, "%s: %s, line %u: %s\n", h, path, lineno, ssh_error(s));
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* The host's key is the one known_hosts has for it: 0, or -1 after
 * saying why not. */
static int check_host_key(LIBSSH2_SESSION *s, const struct launch *l,
                          const char *h, struct report *r)
{
    LIBSSH2_KNOWNHOSTS *kh;
    struct libssh2_knownhost *found = NULL;
    const char *key;
    size_t klen;
    int ktype, mask, rc;

    key = libssh2_session_hostkey(s, &klen, &ktype);
    mask = key != NULL ? known_type(ktype) : -1;
    if (mask < 0) {
        say(r, "%s: the host offered no host key this console knows\n", h);
        return -1;
    }
    kh = libssh2_knownhost_init(s);
    if (kh == NULL) {
        say(r, "%s: %s\n", h, ssh_error(s));
        return -1;
    }
    if (read_known_hosts(s, kh, l->known_hosts, h, r) < 0) {
        libssh2_knownhost_free(kh);
        return -1;
    }
    rc = libssh2_knownhost_checkp(kh, h, (int)l->port, key, klen,
                                  LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                      LIBSSH2_KNOWNHOST_KEYENC_RAW | mask,
                                  &found);
    libssh2_knownhost_free(kh);
    switch (rc) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
        return 0;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
        say(r,
            "%s: REFUSED: its host key differs from the one in %s: someone "
            "may be in the middle, or the host was reinstalled (then "
            "replace its line after checking the new key)\n",
            h, l->known_hosts);
        return -1;
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND: {
        char port[32] = "";

        if (l->port != 22)
            snprintf(port, sizeof(port), " -p %u", l->port);
        say(r,
            "%s: REFUSED: no %s key for it in %s: add the host's key "
            "(ssh-keyscan%s %s) once you have checked it\n",
            h, libssh2_session_methods(s, LIBSSH2_METHOD_HOSTKEY),
            l->known_hosts, port, h);
        return -1;
    }
    default:
        say(r, "%s: cannot check its host key: %s\n", h, ssh_error(s));
        return -1;
    }
}

/* Ask for the host key algorithms of 'list' (comma-separated) in that
 * order. Those libssh2 does not know are left out here: libssh2 1.10
 * strips them itself with an overlapping memcpy(). */
static int set_host_key_algorithms(LIBSSH2_SESSION *s, const char *list,
                                   const char *h, struct report *r)
{
    const char **algs = NULL;
    char *copy = strdup(list), *tok, *save = NULL, use[1024] = "";
    size_t off = 0;
    int n, i, rc = -1;

    n = libssh2_session_supported_algs(s, LIBSSH2_METHOD_HOSTKEY, &algs);
    if (copy == NULL || n <= 0) {
        say(r, "%s: cannot list the host key algorithms: %s\n", h,
            ssh_error(s));
        goto out;
    }
    for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        for (i = 0; i < n && strcmp(algs[i], tok) != 0; i++)
            ;
        if (i < n && off + strlen(tok) + 2 < sizeof(use))
            off += (size_t)snprintf(use + off, sizeof(use) - off, "%s%s",
                                    off ? "," : "", tok);
    }
    if (off == 0) {
        say(r,
            "%s: [launch] host_key_algorithms: none of '%s' is known "
            "to this libssh2\n",
            h, list);
        goto out;
    }
    if (libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, use) < 0) {
        say(r, "%s: [launch] host_key_algorithms: %s\n", h, ssh_error(s));
        goto out;
    }
    rc = 0;
out:
    if (algs != NULL && n > 0)
        libssh2_free(s, algs);
    free(copy);
    return rc;
}

/* An SSH session on 'fd' to host 'h': handshake, the host's key checked
 * against known_hosts, login as l->user with l->identity. NULL after
 * saying why in the report. */
static LIBSSH2_SESSION *ssh_login(const struct launch *l, const char *h, int fd,
                                  struct report *r)
{
    LIBSSH2_SESSION *s = libssh2_session_init();

    if (s == NULL) {
        say(r, "%s: cannot create an SSH session\n", h);
        return NULL;
    }
    libssh2_session_set_blocking(s, 1);
    libssh2_session_set_timeout(s, (long)l->connect_timeout_ms);
    if (set_host_key_algorithms(s, l->host_key_algorithms, h, r) < 0)
        goto fail;
    if (libssh2_session_handshake(s, fd) < 0) {
        say(r, "%s: SSH handshake failed: %s\n", h, ssh_error(s));
        goto fail;
    }
    if (check_host_key(s, l, h, r) < 0)
        goto fail;
    if (libssh2_userauth_publickey_fromfile_ex(
            s, l->user, (unsigned)strlen(l->user),
            l->identity_pub[0] ? l->identity_pub : NULL, l->identity,
            NULL) < 0) {
        say(r,
            "%s: %s@%s did not accept the key %s (%s): is its public key "
            "in that user's authorized_keys?\n",
            h, l->user, h, l->identity, ssh_error(s));
        goto fail;
    }
    return s;
fail:
    libssh2_session_disconnect(s, "vmckpt cluster: done");
    libssh2_session_free(s);
    return NULL;
}

/* Copy what 'cmd' prints on channel 'ch' into the report until it ends,
 * each line prefixed with the host's name. 0, or -1 after saying why
 * (a read error, or no end within l->command_timeout_ms). */
static int relay_output(const struct launch *l, LIBSSH2_SESSION *s,
                        LIBSSH2_CHANNEL *ch, const char *h, const char *cmd,
                        struct report *r)
{
    char buf[1024], line[1200];
    size_t have = 0, i;
    ssize_t n;

    for (;;) {
        n = libssh2_channel_read(ch, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n == LIBSSH2_ERROR_TIMEOUT) {
            say(r,
                "%s: '%s' did not end within %u ms (an agent that logs to "
                "stderr keeps the session open: give it log = syslog or a "
                "file)\n",
                h, cmd, l->command_timeout_ms);
            return -1;
        }
        if (n < 0) {
            say(r, "%s: '%s': %s\n", h, cmd, ssh_error(s));
            return -1;
        }
        for (i = 0; i < (size_t)n; i++) {
            if (buf[i] == '\n' || have == sizeof(line) - 1) {
                line[have] = '\0';
                say(r, "%s: %s\n", h, line);
                have = 0;
                if (buf[i] == '\n')
                    continue;
            }
            line[have++] = buf[i];
        }
    }
    if (have > 0) {
        line[have] = '\0';
        say(r, "%s: %s\n", h, line);
    }
    return 0;
}

/* The ended command's exit status; 128 when a signal killed it. */
static int exit_status(LIBSSH2_SESSION *s, LIBSSH2_CHANNEL *ch, const char *h,
                       const char *cmd, struct report *r)
{
    char *sig = NULL;

    libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
    if (sig == NULL)
        return libssh2_channel_get_exit_status(ch);
    say(r, "%s: '%s' was killed by SIG%s\n", h, cmd, sig);
    libssh2_free(s, sig);
    return 128;
}

/* Run 'cmd' on host 'h'; its output goes to the report. Returns the
 * command's exit status, or -1 when it could not be run. */
static int run_on(const struct launch *l, const char *h, const char *cmd,
                  struct report *r)
{
    LIBSSH2_SESSION *s = NULL;
    LIBSSH2_CHANNEL *ch = NULL;
    struct vmckpt_error err;
    char addr[300];
    int fd, rc = -1;

    snprintf(addr, sizeof(addr), "%s:%u", h, l->port);
    fd = net_connect(addr, l->port, (int)l->connect_timeout_ms, &err);
    if (fd < 0) {
        say(r, "%s: cannot connect to its SSH server: %s\n", h, err.text);
        return -1;
    }
    s = ssh_login(l, h, fd, r);
    if (s == NULL)
        goto out;
    libssh2_session_set_timeout(s, (long)l->command_timeout_ms);
    ch = libssh2_channel_open_session(s);
    if (ch == NULL) {
        say(r, "%s: cannot open an SSH channel: %s\n", h, ssh_error(s));
        goto out;
    }
    /* the command's stderr in order with its stdout */
    libssh2_channel_handle_extended_data2(ch,
                                          LIBSSH2_CHANNEL_EXTENDED_DATA_MERGE);
    if (libssh2_channel_exec(ch, cmd) < 0) {
        say(r, "%s: cannot run '%s': %s\n", h, cmd, ssh_error(s));
        goto out;
    }
    if (relay_output(l, s, ch, h, cmd, r) < 0)
        goto out;
    libssh2_channel_close(ch);
    libssh2_channel_wait_closed(ch);
    rc = exit_status(s, ch, h, cmd, r);
out:
    if (ch != NULL)
        libssh2_channel_free(ch);
    if (s != NULL) {
        libssh2_session_disconnect(s, "vmckpt cluster: done");
        libssh2_session_free(s);
    }
    close(fd);
    return rc;
}

/* One host, in a child process: run its command, print the report whole,
 * exit 0 when the command succeeded. */
static int serve_host(const struct launch *l, const char *h, int stop)
{
    struct report *r = calloc(1, sizeof(*r));
    char cmd[8192];
    int rc;

    if (r == NULL)
        return 1;
    if (remote_command(l->agent_command, h, stop ? " --stop" : "", cmd,
                       sizeof(cmd)) < 0) {
        say(r, "%s: [launch] agent_command is too long\n", h);
        rc = -1;
    } else {
        rc = run_on(l, h, cmd, r);
    }
    if (rc > 0)
        say(r, "%s: FAILED: '%s' ended with status %d\n", h, cmd, rc);
    else if (rc < 0)
        say(r, "%s: FAILED\n", h);
    else
        say(r, "%s: agent %s\n", h, stop ? "stopped" : "started");
    fwrite(r->text, 1, r->len, stdout);
    fflush(stdout);
    free(r);
    return rc == 0 ? 0 : 1;
}

/* Serve every host, at most l->parallel at once. ok[i] says how host i
 * went. Returns the number that failed. */
static int serve_all(const struct launch *l, char **hosts, int n, int stop,
                     int *ok)
{
    pid_t *pids = calloc((size_t)n, sizeof(*pids));
    int next = 0, running = 0, failed = 0, i, status;

    if (pids == NULL) {
        perror("vmckpt cluster");
        return n;
    }
    fflush(stdout);
    while (next < n || running > 0) {
        pid_t pid;

        while (next < n && running < (int)l->parallel) {
            pid = fork();
            if (pid < 0) {
                fprintf(stderr, "vmckpt cluster: fork: %s\n", strerror(errno));
                ok[next++] = 0;
                failed++;
                continue;
            }
            if (pid == 0) {
                int rc = 1;

                if (libssh2_init(0) == 0) {
                    rc = serve_host(l, hosts[next], stop);
                    libssh2_exit();
                }
                _exit(rc);
            }
            pids[next++] = pid;
            running++;
        }
        pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (i = 0; i < n; i++) {
            if (pids[i] == pid) {
                ok[i] = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                failed += !ok[i];
                pids[i] = 0;
                running--;
            }
        }
    }
    free(pids);
    return failed;
}

/* 'name' is up in the coordinator's hosts reply 'env'. */
static int host_up(const Vmckpt__Envelope *env, const char *name)
{
    size_t k;

    for (k = 0; k < env->hosts_reply->n_hosts; k++) {
        const Vmckpt__HostInfo *hi = env->hosts_reply->hosts[k];

        if (strcmp(hi->name, name) == 0 && strcmp(hi->state, "up") == 0)
            return 1;
    }
    return 0;
}

/* After a start: wait until every host in 'hosts' whose start worked
 * shows 'up' at the coordinator. Returns the number still not up. */
static int wait_registered(struct cli *cli, const struct launch *l,
                           char **hosts, int n, int *ok)
{
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    Vmckpt__Envelope *env = NULL;
    uint64_t t0;
    struct client *cl;
    int missing = 0, i, said = 0;

    cl = cli_connect(cli);
    if (cl == NULL)
        return n;
    t0 = clock_mono_ms();
    for (;;) {
        struct vmckpt_error err;
        long ms;

        if (client_call(cl, VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, &q,
                        VMCKPT__MSG_TYPE__MSG_HOSTS_REPLY, &env, &err) < 0) {
            fprintf(stderr, "vmckpt cluster: %s\n", err.text);
            client_close(cl);
            return n;
        }
        missing = 0;
        for (i = 0; i < n; i++)
            missing += ok[i] && !host_up(env, hosts[i]);
        ms = (long)(clock_mono_ms() - t0);
        if (missing == 0 || ms >= (long)l->register_timeout_ms)
            break;
        wire_free(env);
        if (!said && ms >= 2000) {
            printf("waiting for %d agent(s) to register with the "
                   "coordinator...\n",
                   missing);
            fflush(stdout);
            said = 1;
        }
        usleep(200000);
    }
    for (i = 0; i < n && missing > 0; i++) {
        if (ok[i] && !host_up(env, hosts[i])) {
            printf("%s: FAILED: its agent started but did not register with "
                   "the coordinator within %u ms: see its log, and check "
                   "that its [agent] name is '%s'\n",
                   hosts[i], l->register_timeout_ms, hosts[i]);
            ok[i] = 0;
        }
    }
    wire_free(env);
    client_close(cl);
    return missing;
}

int cmd_cluster(struct cli *cli, int argc, char **argv)
{
    struct launch l;
    char **hosts = NULL, *list = NULL, *tok, *save = NULL;
    int *ok = NULL, n = 0, i, stop, wait = 1, failed, rc = 1;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(cluster_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "start") == 0)
        stop = 0;
    else if (strcmp(argv[1], "stop") == 0)
        stop = 1;
    else
        return cli_usage_error(
            "cluster: unknown subcommand '%s' (start or stop)", argv[1]);
    hosts = calloc(MAX_HOSTS, sizeof(*hosts));
    ok = calloc(MAX_HOSTS, sizeof(*ok));
    if (hosts == NULL || ok == NULL) {
        perror("vmckpt cluster");
        goto out;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-wait") == 0 && !stop) {
            wait = 0;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            fputs(cluster_usage, stdout);
            rc = 0;
            goto out;
        } else if (argv[i][0] == '-') {
            rc = cli_usage_error("cluster: unknown option '%s'", argv[i]);
            goto out;
        } else if (n < MAX_HOSTS) {
            hosts[n++] = argv[i];
        }
    }
    if (launch_config(cli, &l) < 0)
        goto out;
    if (n == 0) {
        list = strdup(conf_get(cli->conf, "launch", "hosts", ""));
        if (list == NULL)
            goto out;
        for (tok = strtok_r(list, " \t,", &save); tok != NULL && n < MAX_HOSTS;
             tok = strtok_r(NULL, " \t,", &save))
            hosts[n++] = tok;
    }
    if (n == 0) {
        rc = cli_usage_error("cluster %s: no host named, and no [launch] hosts",
                             argv[1]);
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (!host_name_ok(hosts[i])) {
            rc = cli_usage_error("cluster: '%s' is not a host name", hosts[i]);
            goto out;
        }
    }
    printf("%s the agents of %d host(s) over SSH as %s...\n",
           stop ? "stopping" : "starting", n, l.user);
    failed = serve_all(&l, hosts, n, stop, ok);
    if (!stop && wait && failed < n) {
        int missing = wait_registered(cli, &l, hosts, n, ok);

        if (missing > 0) {
            failed += missing;
        } else {
            printf("every started agent registered with the coordinator\n");
        }
    }
    if (failed > 0)
        printf("%d of %d host(s) failed\n", failed > n ? n : failed, n);
    else
        printf("%d host(s): agent %s\n", n, stop ? "stopped" : "started");
    rc = failed > 0 ? 1 : 0;
out:
    free(list);
    free(hosts);
    free(ok);
    return rc;
}
