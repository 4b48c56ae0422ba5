/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Console commands for guests: vm start|stop|list, status (with the job
 * lines of status JOB), restore. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_vm.h"
#include "show.h"

static const char vm_usage[] =
    "Usage: vmckpt vm start --name NAME --host HOST --kernel FILE\n"
    "                       [--job JOB] [--mem MB] [--vcpus N]\n"
    "                       [--initrd FILE] [--append TEXT] [--ip A/PREFIX]\n"
    "                       [--hypervisor qemu|xen]\n"
    "                       [--disk "
    "FILE[,format=raw|qcow2][,base=shared|copy]]...\n"
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
    "it is, and FILE is what a restore builds it from.\n"
    "--disk (QEMU guests, up to 8, /dev/vda, vdb, ... in order) gives the\n"
    "guest a disk over the base image FILE, an absolute path on HOST that\n"
    "is never written: the guest writes to overlays of its agent's, and\n"
    "every checkpoint holds its disks at the instant of its memory.\n"
    "format= is the base's format (default qcow2); base=shared (default)\n"
    "says FILE is the same at that path on every host (checked by its\n"
    "digest), base=copy that the stores keep a copy of their own (sent\n"
    "with every full epoch; a restore elsewhere needs no FILE there).\n";

#define VM_MAX_DISKS 8

/* "FILE[,format=F][,base=B]" into 'd' (pointing into 'arg', which lives
 * as long as argv). 0, or -1 with the reason printed. */
static int parse_disk(char *arg, Vmckpt__DiskSpec *d)
{
    char *save = NULL, *f;

    d->path = strtok_r(arg, ",", &save);
    if (d->path == NULL || d->path[0] != '/') {
        fprintf(stderr,
                "vmckpt: --disk %s: the base image must be an "
                "absolute path\n",
                d->path != NULL ? d->path : "");
        return -1;
    }
    while ((f = strtok_r(NULL, ",", &save)) != NULL) {
        if (strncmp(f, "format=", 7) == 0 &&
            (strcmp(f + 7, "raw") == 0 || strcmp(f + 7, "qcow2") == 0)) {
            d->format = f + 7;
        } else if (strncmp(f, "base=", 5) == 0 &&
                   (strcmp(f + 5, "shared") == 0 ||
                    strcmp(f + 5, "copy") == 0)) {
            d->base_mode = f + 5;
        } else {
            fprintf(stderr,
                    "vmckpt: --disk %s: '%s': give format=raw|qcow2 or "
                    "base=shared|copy\n",
                    d->path, f);
            return -1;
        }
    }
    return 0;
}

static int vm_start(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"name", 1, NULL, 'n'},       {"host", 1, NULL, 'H'},
        {"kernel", 1, NULL, 'k'},     {"job", 1, NULL, 'j'},
        {"mem", 1, NULL, 'm'},        {"vcpus", 1, NULL, 'c'},
        {"initrd", 1, NULL, 'i'},     {"append", 1, NULL, 'a'},
        {"ip", 1, NULL, 'p'},         {"help", 0, NULL, 'h'},
        {"hypervisor", 1, NULL, 'x'}, {"xl-config", 1, NULL, 'X'},
        {"adopt", 1, NULL, 'A'},      {"disk", 1, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    Vmckpt__VmStart st = VMCKPT__VM_START__INIT;
    Vmckpt__VmSpec s = VMCKPT__VM_SPEC__INIT;
    Vmckpt__DiskSpec dk[VM_MAX_DISKS], *dp[VM_MAX_DISKS];
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
        case 'D':
            if (s.n_disks == VM_MAX_DISKS) {
                fprintf(stderr, "vmckpt: a guest has at most %d disks\n",
                        VM_MAX_DISKS);
                return 2;
            }
            vmckpt__disk_spec__init(&dk[s.n_disks]);
            if (parse_disk(optarg, &dk[s.n_disks]) < 0)
                return 2;
            dp[s.n_disks] = &dk[s.n_disks];
            s.disks = dp;
            s.n_disks++;
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

/* The job lines of 'status JOB' (before the VM table); with 'json', the
 * job's object in *out instead. 0, or 1 after printing why. */
static int status_job(struct cli *cli, const char *job, int json, json_t **out)
{
    Vmckpt__Envelope *env;

    if (cli_fetch_jobs(cli, job, &env))
        return 1;
    if (json) {
        *out = show_job_json(env->jobs_reply->jobs[0]);
    } else {
        const Vmckpt__JobInfo *j = env->jobs_reply->jobs[0];

        show_job_row(j, 1);
        if (j->protection[0])
            printf("MPI: %s%s%s\n", j->protection,
                   j->last_align[0] ? "; last checkpoint " : "", j->last_align);
        if (j->incarnation > 1)
            printf("incarnation %llu (restarted %llu time%s)\n",
                   (unsigned long long)j->incarnation,
                   (unsigned long long)j->incarnation - 1,
                   j->incarnation == 2 ? "" : "s");
        if (j->stale[0])
            printf("stale copies destroyed: %s\n", j->stale);
    }
    wire_free(env);
    return 0;
}

/* The guests as a JSON array on stdout; with 'jobj' (taken), an object
 * with the job and the array. */
static void vms_print_json(const Vmckpt__VmsReply *r, json_t *jobj)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < r->n_vms; i++) {
        const Vmckpt__VmInfo *v = r->vms[i];

        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, "
                      "s:I, s:I, s:s, s:I, s:s, s:I, s:s}",
                      "job", v->job, "vm", v->vm, "host", v->host, "state",
                      v->state, "phase", v->phase, "round", (int)v->round,
                      "pages_left", (json_int_t)v->pages_left,
                      "dirty_pages_per_s", (json_int_t)v->dirty_pages_per_s,
                      "bytes_per_s", (json_int_t)v->bytes_per_s, "last_epoch",
                      (json_int_t)v->last_epoch, "last_pause_us",
                      (json_int_t)v->last_pause_us, "tracking", v->tracking,
                      "memory_mb", (json_int_t)v->memory_mb, "ip", v->ip,
                      "bytes_sent", (json_int_t)v->bytes_sent, "exit_reason",
                      v->exit_reason));
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
}

/* The guests as a table on stdout; 'progress' adds the checkpoint's
 * columns (status). */
static void vms_print_table(const Vmckpt__VmsReply *r, int progress)
{
    size_t i;

    if (r->n_vms == 0) {
        printf("No guest is known to the coordinator.\n");
        return;
    }
    printf("%-10s %-10s %-8s %-10s %6s %6s", "JOB", "VM", "HOST", "STATE",
           "MEM", "EPOCH");
    if (progress)
        printf(" %-9s %5s %10s %10s %8s %8s %9s %s", "PHASE", "ROUND",
               "PAGES-LEFT", "DIRTY/s", "SENT-MB", "MB/s", "PAUSE-ms",
               "TRACKING");
    printf("\n");
    for (i = 0; i < r->n_vms; i++) {
        const Vmckpt__VmInfo *v = r->vms[i];

        printf("%-10s %-10s %-8s %-10s %5lluM %6llu", v->job, v->vm, v->host,
               v->state, (unsigned long long)v->memory_mb,
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
    /* why guests ended by themselves, under the table */
    for (i = 0; i < r->n_vms; i++)
        if (r->vms[i]->exit_reason[0] != '\0')
            printf("%s/%s exited: %s\n", r->vms[i]->job, r->vms[i]->vm,
                   r->vms[i]->exit_reason);
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
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (cli_call(cli, progress ? "status" : "vm list",
                 VMCKPT__MSG_TYPE__MSG_VMS_QUERY, &q,
                 VMCKPT__MSG_TYPE__MSG_VMS_REPLY, &env)) {
        json_decref(jobj);
        return 1;
    }
    if (json)
        vms_print_json(env->vms_reply, jobj);
    else
        vms_print_table(env->vms_reply, progress);
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
    return cli_usage_error("vm: unknown subcommand '%s'", argv[1]);
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
    return vm_list(cli, argc, argv, 1);
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
