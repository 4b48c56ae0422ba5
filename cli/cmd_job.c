/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Console commands for jobs: jobs, job set, job token, list, restart,
 * cancel, gc. */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_job.h"
#include "show.h"

int cmd_jobs(struct cli *cli, int argc, char **argv)
{
    Vmckpt__Envelope *env;
    size_t i;
    int json = 0;

    for (i = 1; i < (size_t)argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: vmckpt jobs [--json]\n"
                   "List jobs: state, VMs, last committed epoch, checkpoint "
                   "interval,\ntime to the next periodic checkpoint, pause "
                   "window of the last\ncommit, the epoch in flight and the "
                   "last error.\n");
            return 0;
        } else
            return cli_usage_error("jobs: unexpected argument '%s'", argv[i]);
    }
    if (cli_fetch_jobs(cli, NULL, &env))
        return 1;
    if (json) {
        json_t *arr = json_array();

        for (i = 0; i < env->jobs_reply->n_jobs; i++)
            json_array_append_new(arr, show_job_json(env->jobs_reply->jobs[i]));
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    } else if (env->jobs_reply->n_jobs == 0) {
        printf("No job is known to the coordinator (a job appears with its "
               "first VM:\n'vmckpt vm start --job JOB ...').\n");
    } else {
        for (i = 0; i < env->jobs_reply->n_jobs; i++)
            show_job_row(env->jobs_reply->jobs[i], i == 0);
    }
    wire_free(env);
    return 0;
}

int cmd_job(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"interval", 1, NULL, 'i'}, {"auto-restart", 1, NULL, 'a'},
        {"mtbf", 1, NULL, 'm'},     {"lz4", 1, NULL, 'z'},
        {"keep", 1, NULL, 'k'},     {"restart-hosts", 1, NULL, 'r'},
        {"help", 0, NULL, 'h'},     {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "Usage: vmckpt job set JOB [--interval SECONDS|auto|off]\n"
        "                          [--auto-restart yes|no] [--mtbf SECONDS]\n"
        "                          [--lz4 yes|no] [--keep N|default]\n"
        "                          [--restart-hosts H1,H2,...|none]\n"
        "       vmckpt job token JOB\n"
        "Create JOB or change its policies. --interval: periodic checkpoints\n"
        "every SECONDS, or 'auto': every sqrt(2 x cost x MTBF) seconds\n"
        "(Young/Daly), where cost is what the last checkpoint cost the job\n"
        "(its pause window plus the CPU its guests lost to pre-copy) and\n"
        "MTBF is --mtbf or the coordinator's mtbf_s. --auto-restart yes:\n"
        "when a host of the job is lost, restart the whole job from its last\n"
        "committed epoch without waiting for an administrator. --lz4 yes:\n"
        "page batches are LZ4-compressed on the wire and in the stores\n"
        "(less network and disk, more CPU on the hosts; default no).\n"
        "--keep N: retention keeps the newest N committed epochs of each\n"
        "of the job's VMs (0: all of them) from the next commit on;\n"
        "'default': the coordinator's keep_epochs, as a new job has.\n"
        "--restart-hosts: auto_restart brings every VM back on these hosts\n"
        "only: each on its own host when that is listed and up, else on a\n"
        "listed host no other VM took (a batch job's spare nodes); 'none':\n"
        "any host again (the default).\n"
        "\n"
        "'job token' prints the job's token (hex) for its MPI ranks, which\n"
        "authenticate with it on the coordinator's ranks' endpoint. The\n"
        "job's guests get it on their kernel command line; give it to\n"
        "vmckpt-mpirun as VMCKPT_TOKEN where that is not so. Creates JOB if\n"
        "needed. Keep it as private as the job's data.\n";
    Vmckpt__JobRegister r = VMCKPT__JOB_REGISTER__INIT;
    Vmckpt__Envelope *env;
    int ch, token;

    if (argc >= 2 && strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc < 3 ||
        (strcmp(argv[1], "set") != 0 && strcmp(argv[1], "token") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    token = strcmp(argv[1], "token") == 0;
    if (token && argc != 3)
        return cli_usage_error("job token %s: give only the job's name",
                               argv[2]);
    r.job = argv[2];
    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc - 2, argv + 2, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'i':
            r.checkpoint_interval = optarg;
            break;
        case 'a':
            r.auto_restart = optarg;
            break;
        case 'z':
            r.lz4 = optarg;
            break;
        case 'k':
            r.keep_epochs = optarg;
            break;
        case 'r':
            r.restart_hosts = optarg;
            break;
        case 'm': {
            char *end;

            r.mtbf_s = strtoull(optarg, &end, 10);
            if (*end != '\0' || r.mtbf_s == 0)
                return cli_usage_error("--mtbf '%s': expected seconds", optarg);
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (cli_call(cli, token ? "job token" : "job set",
                 VMCKPT__MSG_TYPE__MSG_JOB_REGISTER, &r,
                 VMCKPT__MSG_TYPE__MSG_JOB_REGISTERED, &env))
        return 1;
    if (token) {
        size_t i;

        for (i = 0; i < env->job_registered->token.len; i++)
            printf("%02x", env->job_registered->token.data[i]);
        printf("\n");
    } else {
        printf("%s\n", env->job_registered->text);
    }
    wire_free(env);
    return 0;
}

static const char *size_str(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ULL << 30))
        snprintf(buf, len, "%.1fG", (double)b / (1ULL << 30));
    else if (b >= (1ULL << 20))
        snprintf(buf, len, "%.1fM", (double)b / (1ULL << 20));
    else
        snprintf(buf, len, "%.1fK", (double)b / 1024);
    return buf;
}

int cmd_list(struct cli *cli, int argc, char **argv)
{
    Vmckpt__Envelope *env;
    const char *job = NULL;
    int json = 0, i, all = 0;
    size_t k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--all") == 0)
            all = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("Usage: vmckpt list JOB [--all] [--json]\n"
                   "The epochs of JOB: per VM its state, where its image is "
                   "stored, its\nsize, its pause and the job's pause window; "
                   "whether it is sealed (the\nnote). Committed epochs only, "
                   "unless --all (aborted and expired ones\ntoo, with "
                   "why).\n");
            return 0;
        } else if (argv[i][0] == '-')
            return cli_usage_error("list: unknown option '%s'", argv[i]);
        else if (job == NULL)
            job = argv[i];
        else
            return cli_usage_error("list: unexpected argument '%s'", argv[i]);
    }
    if (job == NULL)
        return cli_usage_error("list: name the job (%s)", "vmckpt jobs");
    if (cli_fetch_epochs(cli, job, &env))
        return 1;
    if (json) {
        json_t *arr = json_array();

        for (k = 0; k < env->epochs_reply->n_epochs; k++) {
            const Vmckpt__EpochInfo *e = env->epochs_reply->epochs[k];

            if (!all && strcmp(e->state, "committed") != 0)
                continue;
            json_array_append_new(
                arr,
                json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
                          "s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:b}",
                          "epoch", (json_int_t)e->epoch, "vm", e->vm, "state",
                          e->state, "host", e->host, "store_host",
                          e->store_host, "parent", (json_int_t)e->parent,
                          "pages", (json_int_t)e->pages, "disk_bytes",
                          (json_int_t)e->disk_bytes, "pause_us",
                          (json_int_t)e->pause_us, "paused_at_ns",
                          (json_int_t)e->paused_at_ns, "resumed_at_ns",
                          (json_int_t)e->resumed_at_ns, "window_us",
                          (json_int_t)e->window_us, "total_ms",
                          (json_int_t)e->total_ms, "note", e->note, "source",
                          e->source, "align", e->align, "barriers", e->barriers,
                          "sealed", (int)e->sealed));
        }
        json_dumpf(arr, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(arr);
    } else {
        int any = 0;

        for (k = 0; k < env->epochs_reply->n_epochs; k++) {
            const Vmckpt__EpochInfo *e = env->epochs_reply->epochs[k];
            /* the note: why it is unaligned, if that is all there is */
            const char *note = e->note[0] || !strchr(e->align, ':')
                                   ? e->note
                                   : strchr(e->align, ':') + 2;
            char sz[32];

            if (!all && strcmp(e->state, "committed") != 0)
                continue;
            if (!any++)
                printf("%6s %-10s %-10s %-8s %-8s %-6s %8s %9s %10s %9s %-9s "
                       "%s\n",
                       "EPOCH", "VM", "STATE", "HOST", "STORED", "BASE", "SIZE",
                       "PAUSE-ms", "WINDOW-ms", "TOTAL-ms", "MPI", "NOTE");
            printf("%6llu %-10s %-10s %-8s %-8s %-6s %8s %9.1f %10.1f %9llu "
                   "%-9s %s%s%s\n",
                   (unsigned long long)e->epoch, e->vm, e->state, e->host,
                   e->store_host,
                   e->parent                                  ? "delta"
                   : strcmp(e->source, "qemu-migration") == 0 ? "qemu"
                                                              : "full",
                   size_str(e->disk_bytes, sz, sizeof(sz)),
                   (double)e->pause_us / 1000, (double)e->window_us / 1000,
                   (unsigned long long)e->total_ms,
                   e->align[0] == '\0'                    ? "-"
                   : strncmp(e->align, "aligned", 7) == 0 ? "aligned"
                                                          : "unaligned",
                   e->sealed ? "sealed" : "", e->sealed && note[0] ? "; " : "",
                   note);
        }
        if (!any)
            printf("Job %s has no %sepoch.\n", job, all ? "" : "committed ");
    }
    wire_free(env);
    return 0;
}

int cmd_restart(struct cli *cli, int argc, char **argv)
{
    static const struct option lo[] = {
        {"epoch", 1, NULL, 'e'}, {"hosts", 1, NULL, 'H'}, {"all", 0, NULL, 'a'},
        {"help", 0, NULL, 'h'},  {NULL, 0, NULL, 0},
    };
    static const char usage[] =
        "Usage: vmckpt restart JOB [--epoch N] [--hosts HOST[,HOST...]]\n"
        "                          [--all]\n"
        "Bring every VM of JOB back from one epoch (default: the last\n"
        "committed). VMs whose host is up are stopped and restored in place;\n"
        "VMs of a lost host are restored on the host that holds their image,\n"
        "or on the --hosts given (in turn), reading the image from its store.\n"
        "All restored VMs start paused and are resumed together.\n"
        "--all (with --hosts): the VMs stopped since come back too (a batch\n"
        "system's epilog stops a requeued job's), one per listed host, each\n"
        "on its own host when that is listed.\n";
    Vmckpt__JobRestart r = VMCKPT__JOB_RESTART__INIT;
    struct cli c2 = *cli;
    char *hosts[64], *list = NULL, *tok, *save;
    int ch;

    optind = 0; /* 0: glibc starts afresh (permuting again) */
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'e': {
            char *end;

            r.epoch = strtoull(optarg, &end, 10);
            if (*end != '\0' || r.epoch == 0)
                return cli_usage_error("--epoch '%s': expected a number > 0",
                                       optarg);
            break;
        }
        case 'H':
            list = optarg;
            break;
        case 'a':
            r.all = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (r.all && list == NULL)
        return cli_usage_error("%s needs --hosts", "--all");
    r.job = argv[optind];
    for (tok = list ? strtok_r(list, ",", &save) : NULL;
         tok != NULL && r.n_hosts < 64; tok = strtok_r(NULL, ",", &save))
        hosts[r.n_hosts++] = tok;
    r.hosts = hosts;
    c2.timeout_ms = 600000; /* images may be large */
    printf("restarting job %s from %s ...\n", r.job,
           r.epoch ? "the given epoch" : "its last committed epoch");
    fflush(stdout);
    return cli_call_ack(&c2, "restart", VMCKPT__MSG_TYPE__MSG_JOB_RESTART, &r);
}

int cmd_cancel(struct cli *cli, int argc, char **argv)
{
    Vmckpt__JobCancel c = VMCKPT__JOB_CANCEL__INIT;

    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: vmckpt cancel JOB\nAbort JOB's checkpoint in flight: "
               "every agent resumes its guests and\nevery store drops what it "
               "wrote; the last committed epoch stays.\n");
        return 0;
    }
    if (argc != 2)
        return cli_usage_error("cancel: name one job (%s)", "vmckpt jobs");
    c.job = argv[1];
    return cli_call_ack(cli, "cancel", VMCKPT__MSG_TYPE__MSG_JOB_CANCEL, &c);
}

int cmd_gc(struct cli *cli, int argc, char **argv)
{
    Vmckpt__Gc g = VMCKPT__GC__INIT;

    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: vmckpt gc\nApply retention again on every store (for "
               "stores that were down at a\ncommit) and deliver aborts that "
               "hosts missed while away.\n");
        return 0;
    }
    if (argc != 1)
        return cli_usage_error("gc: unexpected argument '%s'", argv[1]);
    return cli_call_ack(cli, "gc", VMCKPT__MSG_TYPE__MSG_GC, &g);
}
