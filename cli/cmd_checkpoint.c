/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Console command checkpoint: a job's coordinated checkpoint, followed to
 * its commit with --wait, or one guest's live checkpoint to a peer's
 * store. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_checkpoint.h"

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

/* --streams N: 1 to WIRE_MAX_STREAMS; -1 after saying what is wrong. */
static int parse_streams(const char *arg, uint32_t *out)
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

/* Append the VMs of 'job' to 'line': their rounds and what is left to
 * copy. A failed query leaves the line as it was. */
static void add_vm_progress(struct cli *cli, const char *job, char *line,
                            size_t len)
{
    Vmckpt__VmsQuery q = VMCKPT__VMS_QUERY__INIT;
    Vmckpt__Envelope *env;
    size_t i, off = strlen(line);

    q.job = (char *)job;
    if (cli_call(cli, "status", VMCKPT__MSG_TYPE__MSG_VMS_QUERY, &q,
                 VMCKPT__MSG_TYPE__MSG_VMS_REPLY, &env) != 0)
        return;
    for (i = 0; i < env->vms_reply->n_vms && off < len; i++) {
        const Vmckpt__VmInfo *v = env->vms_reply->vms[i];
        int n = snprintf(line + off, len - off, " | %s r%u %s left %llu", v->vm,
                         v->round, v->phase[0] ? v->phase : "-",
                         (unsigned long long)v->pages_left);

        off += n > 0 ? (size_t)n : 0;
    }
    wire_free(env);
}

/* Show a progress line for epoch 'epoch' of 'job' every 200 ms while it
 * is in flight: rewritten in place on a terminal, else a new line when it
 * changes. 0 once the epoch has ended, 1 when the job cannot be asked. */
static int show_progress(struct cli *cli, const char *job, uint64_t epoch)
{
    int tty = isatty(STDOUT_FILENO), shown = 0;
    char last[256] = "";

    for (;;) {
        Vmckpt__Envelope *env;
        const Vmckpt__JobInfo *j;
        char line[256];

        if (cli_fetch_jobs(cli, job, &env))
            return 1;
        j = env->jobs_reply->jobs[0];
        if (j->epoch != epoch) {
            wire_free(env);
            break;
        }
        snprintf(line, sizeof(line), "epoch %llu: %s",
                 (unsigned long long)epoch, j->phase);
        wire_free(env);
        add_vm_progress(cli, job, line, sizeof(line));
        if (tty) {
            printf("\r%-100.100s", line);
            fflush(stdout);
            shown = 1;
        } else if (strcmp(line, last) != 0) {
            printf("%s\n", line);
            fflush(stdout);
            snprintf(last, sizeof(last), "%s", line);
        }
        usleep(200000);
    }
    if (shown)
        printf("\n");
    return 0;
}

/* How epoch 'epoch' of 'job' ended, from the catalog's rows of that
 * epoch: 0 committed, 1 otherwise. */
static int report_outcome(struct cli *cli, const char *job, uint64_t epoch)
{
    Vmckpt__Envelope *env;
    size_t i, n = 0;
    uint64_t window = 0, maxp = 0, bytes = 0;
    const char *state = "unknown", *note = "";
    int rc = 1;

    if (cli_fetch_epochs(cli, job, &env))
        return 1;
    for (i = 0; i < env->epochs_reply->n_epochs; i++) {
        const Vmckpt__EpochInfo *e = env->epochs_reply->epochs[i];

        if (e->epoch != epoch)
            continue;
        n++;
        state = e->state;
        note = e->note;
        window = e->window_us;
        bytes += e->disk_bytes;
        if (e->pause_us > maxp)
            maxp = e->pause_us;
    }
    if (strcmp(state, "committed") == 0 || strcmp(state, "expired") == 0) {
        printf("job %s: epoch %llu committed: %zu VM(s), pause window "
               "%.1f ms (longest VM pause %.1f ms), %.1f MiB stored\n",
               job, (unsigned long long)epoch, n, (double)window / 1000,
               (double)maxp / 1000, (double)bytes / (1 << 20));
        rc = 0;
    } else {
        fprintf(stderr,
                "vmckpt checkpoint: job %s epoch %llu %s: %s\n"
                "The guests run on; the last committed epoch is "
                "unchanged.\n",
                job, (unsigned long long)epoch, state, note);
    }
    wire_free(env);
    return rc;
}

/* checkpoint JOB: begin the job's epoch and, with 'wait', follow it until
 * it commits or aborts. 'streams': per VM, 0 for each agent's setting. */
static int checkpoint_job(struct cli *cli, const char *job, int wait,
                          unsigned streams)
{
    Vmckpt__CkptBegin b = VMCKPT__CKPT_BEGIN__INIT;
    Vmckpt__Envelope *env;
    unsigned long long epoch = 0;
    const char *p;

    b.job = (char *)job;
    b.streams = streams;
    if (cli_call(cli, "checkpoint", VMCKPT__MSG_TYPE__MSG_CKPT_BEGIN, &b,
                 VMCKPT__MSG_TYPE__MSG_ACK, &env))
        return 1;
    printf("%s\n", env->ack->text);
    fflush(stdout);
    p = strstr(env->ack->text, "epoch ");
    if (p != NULL)
        epoch = strtoull(p + 6, NULL, 10);
    wire_free(env);
    if (!wait)
        return 0;
    if (epoch == 0) {
        fprintf(stderr, "vmckpt checkpoint: cannot tell which epoch began\n");
        return 1;
    }
    if (show_progress(cli, job, epoch))
        return 1;
    return report_outcome(cli, job, epoch);
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
            if (parse_streams(optarg, &b.streams) < 0)
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
        return checkpoint_job(cli, argv[optind], wait, b.streams);
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
