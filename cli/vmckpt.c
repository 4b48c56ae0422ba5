/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt: the admin console. Each subcommand is a row of the command
 * table; read commands take --json. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/client/client.h"
#include "lib/util/conf_keys.h"
#include "lib/util/daemon.h"
#include "lib/wire/auth.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/vmckpt/vmckpt.conf"
#define DEFAULT_KEY    SYSCONFDIR "/vmckpt/cluster.key"

#include "cli.h"
#include "cmd_cert.h"
#include "cmd_checkpoint.h"
#include "cmd_cluster.h"
#include "cmd_job.h"
#include "cmd_vm.h"

static const char usage[] =
    "Usage: vmckpt [GLOBAL OPTION]... COMMAND [ARG]...\n"
    "The vmckpt admin console: talks to the cluster's coordinator.\n"
    "\n"
    "Commands:\n"
    "  hosts [--json]          list registered hosts, their state and last\n"
    "                          heartbeat\n"
    "  keygen [--force] [FILE] make a new cluster key (default: [cluster]\n"
    "                          key_file); copy it to every host, mode 0600\n"
    "  cert init|issue|revoke|list\n"
    "                          the cluster's certificate authority: TLS\n"
    "                          certificates of hosts and administrators\n"
    "                          (cert --help)\n"
    "  jobs [--json]           list jobs: state, last epoch, policies\n"
    "  job set JOB [--interval S|auto|off] [--auto-restart yes|no]\n"
    "                          [--mtbf S] [--lz4 yes|no] [--keep N|default]\n"
    "                          [--restart-hosts H1,H2,...|none]\n"
    "                                       create a job, change its policies\n"
    "  job token JOB           the job's token for its MPI ranks (hex)\n"
    "  vm start|stop|list      launch, stop or list guests (vm --help)\n"
    "  status [JOB] [--json]   a job and its guests with the live progress\n"
    "                          of a checkpoint\n"
    "  checkpoint JOB [--wait] coordinated checkpoint of every VM of JOB\n"
    "  checkpoint --vm NAME [--job JOB] [--stop-and-save] [--lz4]\n"
    "                          checkpoint one guest to a peer host's store\n"
    "  list JOB [--all] [--json]  the epochs of JOB and where they live\n"
    "  restart JOB [--epoch N] [--hosts H1,H2]\n"
    "                          bring every VM of JOB back from one epoch\n"
    "  cancel JOB              abort JOB's checkpoint in flight\n"
    "  gc                      re-apply retention on every store\n"
    "  fence HOST              declare a lost host dead by other means:\n"
    "                          restarts need not wait for its lease\n"
    "  restore --vm NAME --host HOST [--job JOB] [--epoch N]\n"
    "                          bring one guest back from an epoch on HOST\n"
    "  cluster start|stop [HOST]...\n"
    "                          start or stop the agents of many hosts over\n"
    "                          SSH (cluster --help)\n"
    "  help [--commands]       show this help (--commands: only the\n"
    "                          command names, one a line)\n"
    "\n"
    "Global options:\n"
    "  -c, --config=FILE       configuration (default $VMCKPT_CONFIG, or\n"
    "                          " DEFAULT_CONFIG " if it exists)\n"
    "  -C, --coordinator=ADDR  coordinator HOST[:PORT] (default: [cluster]\n"
    "                          coordinator, or localhost:7470)\n"
    "  -k, --key=FILE          cluster key (default: [cluster] key_file, or\n"
    "                          " DEFAULT_KEY ")\n"
    "  -t, --timeout=MS        give up on the coordinator after MS\n"
    "                          milliseconds (default 5000)\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "      --config-keys       list the configuration keys the console\n"
    "                          accepts (one SECTION.KEY a line) and exit\n"
    "\n"
    "Exit status: 0 on success, 1 when the operation failed, 2 on a usage\n"
    "error.\n";

/* --json is the only option of the read commands so far. */
static int parse_json_flag(int argc, char **argv, int *json)
{
    int i;

    *json = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            *json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    return 0;
}

/* "1.2s ago" and the like. */
static void fmt_age(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "never");
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs ago", (double)ms / 1000);
    else if (ms < 3600000)
        snprintf(buf, len, "%lldm ago", (long long)(ms / 60000));
    else
        snprintf(buf, len, "%lldh ago", (long long)(ms / 3600000));
}

/* snprintf at buf+*off, never past the end. */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

static int cmp_host(const void *a, const void *b)
{
    const Vmckpt__HostInfo *const *x = a, *const *y = b;

    return strcmp((*x)->name, (*y)->name);
}

static json_t *host_json(const Vmckpt__HostInfo *h)
{
    json_t *o = json_object(), *hvs = json_array();
    size_t i;

    for (i = 0; i < h->n_hypervisors; i++) {
        const Vmckpt__Hypervisor *v = h->hypervisors[i];

        json_array_append_new(
            hvs, json_pack("{s:s, s:s, s:s, s:b, s:s}", "name", v->name,
                           "version", v->version, "accel", v->accel, "usable",
                           v->usable, "detail", v->detail));
    }
    json_object_set_new(o, "name", json_string(h->name));
    json_object_set_new(o, "state", json_string(h->state));
    json_object_set_new(o, "addr", json_string(h->addr));
    json_object_set_new(o, "cores", json_integer(h->cores));
    json_object_set_new(o, "threads", json_integer(h->pus));
    json_object_set_new(o, "numa_nodes", json_integer(h->numa_nodes));
    json_object_set_new(o, "memory_bytes",
                        json_integer((json_int_t)h->memory_bytes));
    json_object_set_new(o, "hypervisors", hvs);
    json_object_set_new(o, "last_heartbeat_ms",
                        h->last_heartbeat_ms < 0
                            ? json_null()
                            : json_integer(h->last_heartbeat_ms));
    json_object_set_new(o, "registered_at",
                        json_integer((json_int_t)h->registered_at));
    json_object_set_new(o, "store_addr", json_string(h->store_addr));
    json_object_set_new(o, "software", json_string(h->software));
    return o;
}

static int cmd_hosts(struct cli *cli, int argc, char **argv)
{
    Vmckpt__HostsQuery q = VMCKPT__HOSTS_QUERY__INIT;
    Vmckpt__Envelope *env;
    Vmckpt__HostInfo **hosts;
    struct vmckpt_error err;
    struct client *cl;
    size_t i, n;
    int json, rc;

    rc = parse_json_flag(argc, argv, &json);
    if (rc == 1) {
        printf("Usage: vmckpt hosts [--json]\n"
               "List the hosts whose agents registered with the "
               "coordinator.\n"
               "STATE is up (heartbeating), lost (silent past the timeout),\n"
               "down (agent stopped) or unknown (not seen since the "
               "coordinator\nstarted). --json prints one JSON object.\n");
        return 0;
    }
    if (rc != 0)
        return rc;
    cl = cli_connect(cli);
    if (cl == NULL)
        return 1;
    if (client_call(cl, VMCKPT__MSG_TYPE__MSG_HOSTS_QUERY, &q,
                    VMCKPT__MSG_TYPE__MSG_HOSTS_REPLY, &env, &err) < 0) {
        fprintf(stderr, "vmckpt hosts: %s\n", err.text);
        client_close(cl);
        return 1;
    }
    n = env->hosts_reply->n_hosts;
    hosts = env->hosts_reply->hosts;
    if (n > 1)
        qsort(hosts, n, sizeof(*hosts), cmp_host);
    if (json) {
        json_t *arr = json_array(), *top;

        for (i = 0; i < n; i++)
            json_array_append_new(arr, host_json(hosts[i]));
        top = json_pack("{s:s, s:o}", "coordinator", cl->server_name, "hosts",
                        arr);
        json_dumpf(top, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(top);
    } else if (n == 0) {
        printf("No host has registered with coordinator '%s' yet.\n",
               cl->server_name);
    } else {
        printf("%-16s %-8s %-12s %5s %7s %4s %9s  %s\n", "HOST", "STATE",
               "HEARTBEAT", "CORES", "THREADS", "NUMA", "MEMORY",
               "HYPERVISORS");
        for (i = 0; i < n; i++) {
            const Vmckpt__HostInfo *h = hosts[i];
            char age[32], hv[256] = "", mem[32];
            size_t k, off = 0;

            fmt_age(h->last_heartbeat_ms, age, sizeof(age));
            snprintf(mem, sizeof(mem), "%.1fGiB",
                     (double)h->memory_bytes / (1024.0 * 1024 * 1024));
            for (k = 0; k < h->n_hypervisors; k++) {
                const Vmckpt__Hypervisor *v = h->hypervisors[k];

                append(hv, sizeof(hv), &off, "%s%s%s%s", k ? ", " : "", v->name,
                       v->version[0] ? " " : "", v->version);
                if (!v->usable)
                    append(hv, sizeof(hv), &off, " (unusable)");
                else if (v->accel[0])
                    append(hv, sizeof(hv), &off, "/%s", v->accel);
            }
            printf("%-16s %-8s %-12s %5u %7u %4u %9s  %s\n", h->name, h->state,
                   age, h->cores, h->pus, h->numa_nodes, mem, hv);
        }
    }
    wire_free(env);
    client_close(cl);
    return 0;
}

static int cmd_keygen(struct cli *cli, int argc, char **argv)
{
    struct vmckpt_error err;
    const char *path = NULL;
    char dir[4096], *slash;
    int force = 0, i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
            force = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: vmckpt keygen [--force] [FILE]\n"
                   "Write a new random cluster key (%d bytes, mode 0600) to "
                   "FILE\n(default: [cluster] key_file, or %s). Every "
                   "coordinator, agent and\nconsole of the cluster needs the "
                   "same key. An existing key is\nkept unless --force is "
                   "given.\n",
                   AUTH_KEY_GEN_LEN, DEFAULT_KEY);
            return 0;
        } else if (argv[i][0] == '-')
            return cli_usage_error("keygen: unknown option '%s'", argv[i]);
        else if (path == NULL)
            path = argv[i];
        else
            return cli_usage_error("keygen: unexpected argument '%s'", argv[i]);
    }
    if (path == NULL)
        path = cli->key_file;
    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (daemon_mkdirs(dir, 0755, &err) < 0) {
            fprintf(stderr, "vmckpt keygen: %s\n", err.text);
            return 1;
        }
    }
    if (auth_key_generate(path, force, &err) < 0) {
        fprintf(stderr, "vmckpt keygen: %s\n", err.text);
        return 1;
    }
    printf("wrote a new %d-byte cluster key to %s (mode 0600)\n"
           "copy it, with the same mode, to every host of the cluster\n",
           AUTH_KEY_GEN_LEN, path);
    return 0;
}

/* vmckpt fence HOST: the administrator vouches that HOST runs no guest
 * any more (powered off, its QEMUs killed). */
static int cmd_fence(struct cli *cli, int argc, char **argv)
{
    Vmckpt__HostFence f = VMCKPT__HOST_FENCE__INIT;

    if (argc == 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: vmckpt fence HOST\n"
               "Declare HOST dead by other means (powered off, its guests "
               "killed). A host\nthat stopped answering may still run its "
               "guests until its lease ends (the\nheartbeat timeout and a "
               "margin); restarts of their jobs wait for that. After\nthis "
               "command they no longer wait. Only for a host that is not up; "
               "if it\nruns its guests after all, two copies of them run. "
               "The coordinator logs it.\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error("fence: name one host (%s)", "vmckpt hosts");
    f.host = argv[1];
    return cli_call_ack(cli, "fence", VMCKPT__MSG_TYPE__MSG_HOST_FENCE, &f);
}

static const struct command {
    const char *name;
    int (*fn)(struct cli *cli, int argc, char **argv);
    int needs_conf;
} commands[] = {
    {"hosts", cmd_hosts, 1},
    {"keygen", cmd_keygen, 1},
    {"vm", cmd_vm, 1},
    {"status", cmd_status, 1},
    {"checkpoint", cmd_checkpoint, 1},
    {"restore", cmd_restore, 1},
    {"jobs", cmd_jobs, 1},
    {"job", cmd_job, 1},
    {"list", cmd_list, 1},
    {"restart", cmd_restart, 1},
    {"cancel", cmd_cancel, 1},
    {"gc", cmd_gc, 1},
    {"fence", cmd_fence, 1},
    {"cluster", cmd_cluster, 1},
    {"cert", cmd_cert, 1},
};

/* The sections the console owns, checked before any command runs;
 * --config-keys lists them. */
static const struct conf_section console_keys[] = {
    {"cluster", conf_cluster_keys},
    {"tls", conf_tls_keys},
    {"launch", cmd_cluster_launch_keys},
    {NULL, NULL},
};

/* vmckpt help [--commands]: the usage, or the names of the commands. */
static int cmd_help(int argc, char **argv)
{
    size_t i;

    if (argc == 1) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc != 2 || strcmp(argv[1], "--commands") != 0)
        return cli_usage_error("help: unexpected argument '%s'", argv[1]);
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        printf("%s\n", commands[i].name);
    printf("help\n");
    return 0;
}

/* The coordinator's deadline: -t MS, else [cluster] timeout_ms. 0, or the
 * exit status after saying what is wrong. */
static int set_timeout(struct cli *cli, const char *opt)
{
    struct vmckpt_error err;
    uint64_t v;

    if (opt != NULL) {
        char *end;
        long ms = strtol(opt, &end, 10);

        if (*end != '\0' || ms <= 0 || ms > 3600000)
            return cli_usage_error("--timeout '%s': expected milliseconds",
                                   opt);
        cli->timeout_ms = (int)ms;
        return 0;
    }
    if (conf_get_uint(cli->conf, "cluster", "timeout_ms", 5000, 1, 3600000, &v,
                      &err) < 0) {
        fprintf(stderr, "vmckpt: %s\n", err.text);
        return 2;
    }
    cli->timeout_ms = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"coordinator", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"config-keys", no_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    struct cli cli;
    struct vmckpt_error err;
    const char *coord = NULL, *key = NULL, *timeout = NULL;
    size_t i;
    int ch, rc;

    memset(&cli, 0, sizeof(cli));
    cli.config_path = getenv("VMCKPT_CONFIG");
    /* '+': options after the command belong to the command */
    while ((ch = getopt_long(argc, argv, "+c:C:k:t:hV", longopts, NULL)) !=
           -1) {
        switch (ch) {
        case 'c':
            cli.config_path = optarg;
            break;
        case 'C':
            coord = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            timeout = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("%s\n", PACKAGE_STRING);
            return 0;
        case 'K':
            conf_print_keys(stdout, console_keys);
            return 0;
        default:
            fprintf(stderr, "Try 'vmckpt --help'.\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[optind], "help") == 0)
        return cmd_help(argc - optind, argv + optind);
    if (cli.config_path == NULL && access(DEFAULT_CONFIG, F_OK) == 0)
        cli.config_path = DEFAULT_CONFIG;
    cli.conf =
        cli.config_path ? conf_load(cli.config_path, &err) : conf_create();
    if (cli.conf == NULL) {
        fprintf(stderr, "vmckpt: %s\n", err.text);
        return 2;
    }
    if (conf_check_sections(cli.conf, console_keys, &err) < 0) {
        fprintf(stderr, "vmckpt: %s\n", err.text);
        conf_destroy(cli.conf);
        return 2;
    }
    cli.coordinator =
        coord ? coord
              : conf_get(cli.conf, "cluster", "coordinator", "localhost");
    cli.key_file =
        key ? key : conf_get(cli.conf, "cluster", "key_file", DEFAULT_KEY);
    rc = set_timeout(&cli, timeout);
    if (rc != 0) {
        conf_destroy(cli.conf);
        return rc;
    }
    rc = -1;
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, argv[optind]) == 0) {
            rc = commands[i].fn(&cli, argc - optind, argv + optind);
            break;
        }
    }
    if (rc < 0)
        rc = cli_usage_error("unknown command '%s'", argv[optind]);
    conf_destroy(cli.conf);
    return rc;
}
