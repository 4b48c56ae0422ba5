/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Console commands for guests: vm start|stop|list, status, checkpoint,
 * restore. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Send one request, expect 'reply_type'; print the error and return 1 on
 * failure. */
int cli_call(struct cli *cli, const char *what, int type, const void *payload,
             int reply_type, Vmckpt__Envelope **env)
{
    struct vmckpt_error err;
    struct client *cl = connect_coord(cli);
    int rc;

    if (cl == NULL)
        return 1;
    rc = client_call(cl, type, payload, reply_type, env, &err);
    client_close(cl);
    if (rc < 0) {
        fprintf(stderr, "vmckpt %s: %s\n", what, err.text);
        return 1;
    }
    return 0;
}

int cli_call_ack(struct cli *cli, const char *what, int type,
                 const void *payload)
{
    Vmckpt__Envelope *env;

    if (cli_call(cli, what, type, payload, VMCKPT__MSG_TYPE__MSG_ACK, &env))
        return 1;
    printf("%s\n", env->ack->text);
    wire_free(env);
    return 0;
}

static const char vm_usage[] =
    "Usage: vmckpt vm start --name NAME --host HOST --kernel FILE\n"
    "                       [--job JOB] [--mem MB] [--vcpus N]\n"
    "                       [--initrd FILE] [--append TEXT] [--ip A/PREFIX]\n"
    "                       [--hypervisor qemu|xen]\n"
    "       vmckpt vm start --hypervisor xen --name NAME --host HOST\n"
    "                       --xl-config FILE [--adopt DOMAIN] [--job JOB]\n"
    "       vmckpt vm stop --name NAME [--job JOB]\n"
    "       vmckpt vm list [--job JOB] [--json]\n"
    "Launch a guest on HOST through its agent (RAM in shared memory, dirty\n"
    "tracking on), stop it, or list the guests the coordinator knows.\n"
    "JOB defaults to 'default'; MB to 512. With --hypervisor xen, HOST is a\n"
    "Xen dom0 whose agent has the Xen back end: the guest is a PVH domain\n"
    "named JOB-NAME, built by 'xl create' from these options (FILEs are\n"
    "paths in that dom0; see docs/xen.md). With --xl-config, the domain is\n"
    "built from that xl configuration instead (its name set to JOB-NAME,\n"
    "or DOMAIN); with --adopt, the running domain DOMAIN is taken over as\n"
    "it is, and FILE is what a restore builds it from.\n";

static int vm_start(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"name", 1, NULL, 'n'},       {"host", 1, NULL, 'H'},
        {"kernel", 1, NULL, 'k'},     {"job", 1, NULL, 'j'},
        {"mem", 1, NULL, 'm'},        {"vcpus", 1, NULL, 'c'},
        {"initrd", 1, NULL, 'i'},     {"append", 1, NULL, 'a'},
        {"ip", 1, NULL, 'p'},         {"help", 0, NULL, 'h'},
        {"hypervisor", 1, NULL, 'x'}, {"xl-config", 1, NULL, 'X'},
        {"adopt", 1, NULL, 'A'},      {NULL, 0, NULL, 0},
    };
    Vmckpt__VmStart st = VMCKPT__VM_START__INIT;
    Vmckpt__VmSpec s = VMCKPT__VM_SPEC__INIT;
    int ch;

    s.job = "default";
    s.memory_mb = 512;
    s.vcpus = 1;
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n':
            s.name = optarg;
            break;
        case 'H':
            s.host = optarg;
            break;
        case 'k':
            s.kernel = optarg;
            break;
        case 'j':
            s.job = optarg;
            break;
        case 'm':
            s.memory_mb = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            s.vcpus = (uint32_t)atoi(optarg);
            break;
        case 'i':
            s.initrd = optarg;
            break;
        case 'a':
            s.cmdline = optarg;
            break;
        case 'p':
            s.ip = optarg;
            break;
        case 'x':
            s.hypervisor = optarg;
            break;
        case 'X':
            s.xl_config = optarg;
            break;
        case 'A':
            s.domain = optarg;
            break;
        case 'h':
            fputs(vm_usage, stdout);
            return 0;
        default:
            fputs(vm_usage, stderr);
            return 2;
        }
    }
    if (!s.name[0] || !s.host[0] || (!s.kernel[0] && !s.xl_config[0])) {
        fputs(vm_usage, stderr);
        return 2;
    }
    st.spec = &s;
    return cli_call_ack(cli, "vm start", VMCKPT__MSG_TYPE__MSG_VM_START, &st);
}

static int vm_stop(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"name", 1, NULL, 'n'}, {"job", 1, NULL, 'j'}, {NULL, 0, NULL, 0}};
    Vmckpt__VmStop st = VMCKPT__VM_STOP__INIT;
    int ch;

    st.job = "default";
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'n')
            st.vm = optarg;
        else if (ch == 'j')
            st.job = optarg;
        else {
            fputs(vm_usage, stderr);
            return 2;
        }
    }
    if (!st.vm[0]) {
        fputs(vm_usage, stderr);
        return 2;
    }
    return cli_call_ack(cli, "vm stop", VMCKPT__MSG_TYPE__MSG_VM_STOP, &st);
}

/* vm list and status: the same data; status adds progress columns. */
static int vm_list(struct cli *cli, int argc, char **argv, int progress)
{
    static const struct option lo[] = {{"job", 1, NULL, 'j'},
                                       {"json", 0, NULL, 'J'},
                                       {"help", 0, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    Vmckpt__VmsQuery q = VMCKPT__VMS_QUERY__INIT;
    Vmckpt__Envelope *env;
    json_t *jobj = NULL;
    size_t i;
    int ch, json = 0;

    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch == 'j')
            q.job = optarg;
        else if (ch == 'J')
            json = 1;
        else if (ch == 'h') {
            if (progress)
                printf("Usage: vmckpt status [JOB] [--json]\n"
                       "Guests with the live progress of a checkpoint: phase, "
                       "pre-copy round,\npages left, dirty rate, throughput, "
                       "pause of the last cut. With JOB,\nthe job's state and "
                       "policies first (--json: an object with 'job'\nand "
                       "'vms').\n");
            else
                printf("Usage: vmckpt vm list [--job JOB] [--json]\n");
            return 0;
        } else
            return 2;
    }
    if (progress && optind < argc) {
        q.job = argv[optind++];
        if (status_job(cli, q.job, json, &jobj))
            return 1;
        if (!json)
            printf("\n");
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (cli_call(cli, progress ? "status" : "vm list",
                 VMCKPT__MSG_TYPE__MSG_VMS_QUERY, &q,
                 VMCKPT__MSG_TYPE__MSG_VMS_REPLY, &env))
        return 1;
    if (json) {
        json_t *arr = json_array();

        for (i = 0; i < env->vms_reply->n_vms; i++) {
            const Vmckpt__VmInfo *v = env->vms_reply->vms[i];

            json_array_append_new(
                arr,
                json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, "
                          "s:I, s:I, s:s, s:I, s:s, s:I}",
                          "job", v->job, "vm", v->vm, "host", v->host, "state",
                          v->state, "phase", v->phase, "round", (int)v->round,
                          "pages_left", (json_int_t)v->pages_left,
                          "dirty_pages_per_s", (json_int_t)v->dirty_pages_per_s,
                          "bytes_per_s", (json_int_t)v->bytes_per_s,
                          "last_epoch", (json_int_t)v->last_epoch,
                          "last_pause_us", (json_int_t)v->last_pause_us,
                          "tracking", v->tracking, "memory_mb",
                          (json_int_t)v->memory_mb, "ip", v->ip, "bytes_sent",
                          (json_int_t)v->bytes_sent));
        }
        if (jobj != NULL) {
            json_t *o = json_pack("{s:o, s:o}", "job", jobj, "vms", arr);

            json_dumpf(o, stdout, JSON_INDENT(2));
            json_decref(o);
        } else {
            json_dumpf(arr, stdout, JSON_INDENT(2));
            json_decref(arr);
        }
        fputc('\n', stdout);
    } else if (env->vms_reply->n_vms == 0) {
        printf("No guest is known to the coordinator.\n");
    } else {
        printf("%-10s %-10s %-8s %-10s %6s %6s", "JOB", "VM", "HOST", "STATE",
               "MEM", "EPOCH");
        if (progress)
            printf(" %-9s %5s %10s %10s %8s %8s %9s %s", "PHASE", "ROUND",
                   "PAGES-LEFT", "DIRTY/s", "SENT-MB", "MB/s", "PAUSE-ms",
                   "TRACKING");
        printf("\n");
        for (i = 0; i < env->vms_reply->n_vms; i++) {
            const Vmckpt__VmInfo *v = env->vms_reply->vms[i];

            printf("%-10s %-10s %-8s %-10s %5lluM %6llu", v->job, v->vm,
                   v->host, v->state, (unsigned long long)v->memory_mb,
                   (unsigned long long)v->last_epoch);
            if (progress)
                printf(" %-9s %5u %10llu %10llu %8.1f %8llu %9.1f %s",
                       v->phase[0] ? v->phase : "-", v->round,
                       (unsigned long long)v->pages_left,
                       (unsigned long long)v->dirty_pages_per_s,
                       (double)v->bytes_sent / (1 << 20),
                       (unsigned long long)(v->bytes_per_s >> 20),
                       (double)v->last_pause_us / 1000,
                       strcmp(v->tracking, "qemu-migration") == 0
                           ? "qemu-migration (full each epoch)"
                           : v->tracking);
            printf("\n");
        }
    }
    wire_free(env);
    return 0;
}

int cmd_vm(struct cli *cli, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fputs(vm_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "start") == 0)
        return vm_start(cli, argc - 1, argv + 1);
    if (strcmp(argv[1], "stop") == 0)
        return vm_stop(cli, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0)
        return vm_list(cli, argc - 1, argv + 1, 0);
    return usage_error("vm: unknown subcommand '%s'", argv[1]);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    return vm_list(cli, argc, argv, 1);
}

int cli_parse_streams(const char *arg, uint32_t *out)
{
    char *end;
    unsigned long n = strtoul(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || n < 1 || n > WIRE_MAX_STREAMS) {
        fprintf(stderr, "vmckpt checkpoint: --streams '%s': give 1 to %d\n",
                arg, WIRE_MAX_STREAMS);
        return -1;
    }
    *out = (uint32_t)n;
    return 0;
}

int cmd_checkpoint(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"vm", 1, NULL, 'v'},
        {"job", 1, NULL, 'j'},
        {"stop-and-save", 0, NULL, 's'},
        {"lz4", 0, NULL, 'z'},
        {"store-host", 1, NULL, 'H'},
        {"streams", 1, NULL, 'n'},
        {"wait", 0, NULL, 'w'},
        {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "Usage: vmckpt checkpoint JOB [--wait] [--streams N]\n"
        "       vmckpt checkpoint --vm NAME [--job JOB] [--store-host HOST]\n"
        "                         [--stop-and-save] [--lz4] [--streams N]\n"
        "The first form takes a coordinated checkpoint of every VM of JOB:\n"
        "all pre-copy at once, all are paused for the cut, none runs again\n"
        "before the last is paused, and the epoch commits when every image\n"
        "is durable on its peer's store. It prints the epoch that began;\n"
        "--wait follows it with a progress line until it commits (exit 0)\n"
        "or aborts (exit 1, with why).\n"
        "The second form checkpoints one guest, live, to the store of\n"
        "another host (the next host up after the guest's, or HOST), and\n"
        "waits until that epoch is committed.\n"
        "--streams N sends each guest's pages in N parallel connections\n"
        "(1 to 8; each stream takes every Nth 4 MiB of guest RAM); by\n"
        "default each agent's 'streams' setting.\n";
    Vmckpt__CkptBegin b = VMCKPT__CKPT_BEGIN__INIT;
    Vmckpt__PeerTarget t = VMCKPT__PEER_TARGET__INIT, *tp = &t;
    struct cli c2 = *cli;
    int ch, wait = 0;

    b.job = "default";
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'v':
            t.vm = optarg;
            break;
        case 'j':
            b.job = optarg;
            break;
        case 's':
            b.mode = VMCKPT__CKPT_MODE__MODE_STOP_AND_SAVE;
            break;
        case 'z':
            b.compress = 1;
            break;
        case 'H':
            t.host = optarg;
            break;
        case 'n':
            if (cli_parse_streams(optarg, &b.streams) < 0)
                return 2;
            break;
        case 'w':
            wait = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!t.vm[0] && optind == argc - 1)
        return cmd_checkpoint_job(cli, argv[optind], wait, b.streams);
    if (!t.vm[0] || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    b.n_targets = 1;
    b.targets = &tp;
    c2.timeout_ms = 600000; /* a large guest takes a while */
    printf("checkpointing %s/%s ...\n", b.job, t.vm);
    fflush(stdout);
    return cli_call_ack(&c2, "checkpoint", VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN,
                        &b);
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"vm", 1, NULL, 'v'},    {"job", 1, NULL, 'j'},  {"host", 1, NULL, 'H'},
        {"epoch", 1, NULL, 'e'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "Usage: vmckpt restore --vm NAME --host HOST [--job JOB] "
        "[--epoch N]\n"
        "Bring a guest back on HOST from an epoch (default: its last\n"
        "committed one), reading the image from the store that holds it.\n"
        "A copy of the guest still running elsewhere is not stopped.\n";
    Vmckpt__Restore r = VMCKPT__RESTORE__INIT;
    struct cli c2 = *cli;
    int ch;

    r.job = "default";
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'v':
            r.vm = optarg;
            break;
        case 'j':
            r.job = optarg;
            break;
        case 'H':
            r.target_host = optarg;
            break;
        case 'e':
            r.epoch = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!r.vm[0] || !r.target_host[0]) {
        fputs(usage, stderr);
        return 2;
    }
    c2.timeout_ms = 600000;
    return cli_call_ack(&c2, "restore", VMCKPT__MSG_TYPE__MSG_RESTORE, &r);
}
