/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-mpirun: mpirun with vmckpt's checkpoint alignment in every rank.
 * Announces the MPI run to the coordinator's ranks' endpoint (with the
 * job's token), runs mpirun with the hooks preloaded and what Open MPI
 * needs between VMs, and says when the run ended. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "hooks_log.h"
#include "lib/client/client.h"

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/local/libexec/vmckpt"
#endif
#define HOOKS_NAME "libvmckpt-mpi.so"

static const char usage[] =
    "Usage: vmckpt-mpirun [OPTION]... [--] MPIRUN-ARGUMENT...\n"
    "Run an MPI program like mpirun does, protected by vmckpt: every rank\n"
    "loads the vmckpt MPI hooks, so the job's checkpoints are taken while\n"
    "all ranks wait at the same MPI_Barrier, and a restarted job goes on\n"
    "from there. Run it inside the job's VMs, where mpirun would run.\n"
    "\n"
    "Options (before the mpirun arguments; everything else goes to mpirun):\n"
    "  --checkpoint-interval=SEC|auto|off\n"
    "                         periodic checkpoints of the job (auto: from\n"
    "                         the measured cost and the MTBF, Young/Daly)\n"
    "  --job=JOB              the vmckpt job (default: $VMCKPT_JOB, or\n"
    "                         vmckpt.job= on the kernel command line)\n"
    "  --coordinator=ADDR     the coordinator's ranks' endpoint, host:port\n"
    "                         (default: $VMCKPT_COORDINATOR or\n"
    "                         vmckpt.coordinator= on the command line)\n"
    "  --rank-coordinator=ADDR  the address the ranks use, if they reach the\n"
    "                         coordinator at another one than this program\n"
    "  --hooks=FILE           the hooks library (default: $VMCKPT_MPI_HOOKS,\n"
    "                         or " HOOKS_NAME " next to this program, in\n"
    "                         ../lib/vmckpt/, or in " PKGLIBEXECDIR ")\n"
    "  --mpirun=PROGRAM       the mpirun to run (default: $MPIRUN or mpirun)\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "The job's token comes from $VMCKPT_TOKEN, from the firmware file\n"
    "opt/vmckpt/token (a QEMU guest; readable by root), or vmckpt.token=\n"
    "on the kernel command line (a Xen guest); the coordinator gives it\n"
    "to the job's guests.\n"
    "Added to mpirun: -x LD_PRELOAD=HOOKS -x VMCKPT_JOB -x VMCKPT_TOKEN\n"
    "-x VMCKPT_COORDINATOR, --allow-run-as-root when run as root, and\n"
    "--mca pml ob1 --mca btl self,vader,tcp unless pml or btl is given.\n"
    "Without a coordinator the program still runs, unprotected.\n"
    "\n"
    "Exit status: mpirun's (128+N if it died of signal N); 2 for bad usage.\n";

static pid_t child;

static void forward(int sig)
{
    if (child > 0)
        kill(child, sig);
}

static const char *opt_value(const char *arg, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(arg, name, n) == 0 && arg[n] == '=')
        return arg + n + 1;
    return NULL;
}

static int find_hooks(const char *given, char *out, size_t len)
{
    char self[PATH_MAX], *slash;
    ssize_t n;
    const char *cands[3];
    char c0[PATH_MAX + 32], c1[PATH_MAX + 32];
    struct stat st;
    int i;

    if (given != NULL && given[0]) {
        snprintf(out, len, "%s", given);
        return stat(out, &st) == 0 ? 0 : -1;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    slash = strrchr(self, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(c0, sizeof(c0), "%s/" HOOKS_NAME, self);
    snprintf(c1, sizeof(c1), "%s/../lib/vmckpt/" HOOKS_NAME, self);
    cands[0] = c0;
    cands[1] = c1;
    cands[2] = PKGLIBEXECDIR "/" HOOKS_NAME;
    for (i = 0; i < 3; i++)
        if (stat(cands[i], &st) == 0) {
            if (realpath(cands[i], out) == NULL)
                snprintf(out, len, "%s", cands[i]);
            return 0;
        }
    snprintf(out, len, "%s", cands[2]);
    return -1;
}

/* The rank count from -np/-n/--np/-c N (0 if not given). */
static unsigned nranks_of(int argc, char **argv)
{
    int i;

    for (i = 0; i < argc - 1; i++)
        if (strcmp(argv[i], "-np") == 0 || strcmp(argv[i], "-n") == 0 ||
            strcmp(argv[i], "--np") == 0 || strcmp(argv[i], "-c") == 0 ||
            strcmp(argv[i], "--n") == 0)
            return (unsigned)strtoul(argv[i + 1], NULL, 10);
    return 0;
}

static int mentions(int argc, char **argv, const char *mca)
{
    int i;

    for (i = 0; i < argc - 1; i++)
        if ((strcmp(argv[i], "--mca") == 0 || strcmp(argv[i], "-mca") == 0) &&
            strcmp(argv[i + 1], mca) == 0)
            return 1;
    return 0;
}

static int call(const struct chan_target *t, int type, const void *payload,
                int reply_type, uint64_t *run, struct vmckpt_error *err)
{
    struct client *cl = client_open(t->addr, &t->token, VMCKPT__ROLE__ROLE_RANK,
                                    t->job, 5000, err);
    Vmckpt__Envelope *reply;

    if (cl == NULL)
        return -1;
    if (client_call(cl, type, payload, reply_type, &reply, err) < 0) {
        client_close(cl);
        return -1;
    }
    if (run != NULL && reply->type == VMCKPT__MSG_TYPE__MSG_JOB_REGISTERED)
        *run = reply->job_registered->run;
    wire_free(reply);
    client_close(cl);
    return 0;
}

int main(int argc, char **argv)
{
    const char *interval = "", *hooks_opt = getenv("VMCKPT_MPI_HOOKS");
    const char *mpirun = getenv("MPIRUN"), *rank_addr = NULL;
    struct chan_target t;
    struct vmckpt_error err;
    char hooks[PATH_MAX], preload[PATH_MAX + 4096];
    char **av;
    int i, first, have, registered = 0, status, n = 0;
    uint64_t run = 0;
    char runbuf[32];
    unsigned nranks;

    hooks_log_prefix("vmckpt-mpirun");
    if (mpirun == NULL || mpirun[0] == '\0')
        mpirun = "mpirun";
    for (first = 1; first < argc; first++) {
        const char *a = argv[first], *v;

        if (strcmp(a, "--") == 0) {
            first++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("vmckpt-mpirun (%s)\n", PACKAGE_STRING);
            return 0;
        }
        if ((v = opt_value(a, "--checkpoint-interval")) != NULL)
            interval = v;
        else if ((v = opt_value(a, "--job")) != NULL)
            setenv("VMCKPT_JOB", v, 1);
        else if ((v = opt_value(a, "--coordinator")) != NULL)
            setenv("VMCKPT_COORDINATOR", v, 1);
        else if ((v = opt_value(a, "--rank-coordinator")) != NULL)
            rank_addr = v;
        else if ((v = opt_value(a, "--hooks")) != NULL)
            hooks_opt = v;
        else if ((v = opt_value(a, "--mpirun")) != NULL)
            mpirun = v;
        else
            break;
    }
    if (first >= argc) {
        fprintf(stderr, "vmckpt-mpirun: no program to run (try --help)\n");
        return 2;
    }
    if (interval[0] && strcmp(interval, "auto") != 0 &&
        strcmp(interval, "off") != 0 &&
        (strspn(interval, "0123456789") != strlen(interval) ||
         atoi(interval) <= 0)) {
        fprintf(stderr,
                "vmckpt-mpirun: --checkpoint-interval=%s: give seconds, "
                "'auto' or 'off'\n",
                interval);
        return 2;
    }
    nranks = nranks_of(argc - first, argv + first);

    have = chan_target_get(&t, &err);
    if (have < 0) {
        fprintf(stderr, "vmckpt-mpirun: %s\n", err.text);
        return 2;
    }
    if (have > 0 && find_hooks(hooks_opt, hooks, sizeof(hooks)) < 0) {
        fprintf(stderr,
                "vmckpt-mpirun: the hooks library %s is missing (give "
                "--hooks=FILE)\n",
                hooks);
        return 2;
    }
    if (have == 0) {
        hooks_log("no vmckpt job here (no VMCKPT_JOB, nor vmckpt.job= on "
                  "the kernel command line): running mpirun unprotected");
    } else {
        Vmckpt__JobRegister r = VMCKPT__JOB_REGISTER__INIT;

        r.job = t.job;
        r.nranks = nranks;
        r.checkpoint_interval = (char *)interval;
        if (call(&t, VMCKPT__MSG_TYPE__MSG_JOB_REGISTER, &r,
                 VMCKPT__MSG_TYPE__MSG_JOB_REGISTERED, &run, &err) < 0) {
            hooks_log("cannot register job %s with %s (%s): the program "
                      "runs unprotected",
                      t.job, t.addr, err.text);
        } else {
            registered = 1;
            fprintf(stderr,
                    "vmckpt-mpirun: job %s: %u rank(s), coordinator %s%s%s\n",
                    t.job, nranks, t.addr,
                    interval[0] ? ", checkpoint interval " : "", interval);
        }
    }

    av = calloc((size_t)argc + 32, sizeof(*av));
    if (av == NULL) {
        perror("vmckpt-mpirun");
        return 1;
    }
    av[n++] = (char *)mpirun;
    if (geteuid() == 0)
        av[n++] = "--allow-run-as-root";
    if (!mentions(argc - first, argv + first, "pml")) {
        av[n++] = "--mca";
        av[n++] = "pml";
        av[n++] = "ob1";
    }
    if (!mentions(argc - first, argv + first, "btl")) {
        av[n++] = "--mca";
        av[n++] = "btl";
        av[n++] = "self,vader,tcp";
    }
    if (have > 0) {
        const char *old = getenv("LD_PRELOAD");
        char hex[2 * AUTH_KEY_MAX + 1];
        size_t k;

        snprintf(preload, sizeof(preload), "LD_PRELOAD=%s%s%s", hooks,
                 old != NULL && old[0] ? ":" : "", old != NULL ? old : "");
        /* what the ranks need, found here (maybe on the kernel command
         * line), goes to them through the environment */
        for (k = 0; k < t.token.len; k++)
            snprintf(hex + 2 * k, 3, "%02x", t.token.bytes[k]);
        setenv("VMCKPT_JOB", t.job, 1);
        setenv("VMCKPT_TOKEN", hex, 1);
        setenv("VMCKPT_COORDINATOR", rank_addr != NULL ? rank_addr : t.addr, 1);
        snprintf(runbuf, sizeof(runbuf), "%llu", (unsigned long long)run);
        setenv("VMCKPT_RUN", runbuf, 1);
        /* the token travels in the environment, not on a command line */
        av[n++] = "-x";
        av[n++] = preload;
        av[n++] = "-x";
        av[n++] = "VMCKPT_JOB";
        av[n++] = "-x";
        av[n++] = "VMCKPT_TOKEN";
        av[n++] = "-x";
        av[n++] = "VMCKPT_COORDINATOR";
        av[n++] = "-x";
        av[n++] = "VMCKPT_RUN";
        if (getenv("VMCKPT_MPI_DEBUG") != NULL) {
            av[n++] = "-x";
            av[n++] = "VMCKPT_MPI_DEBUG";
        }
    }
    for (i = first; i < argc; i++)
        av[n++] = argv[i];
    av[n] = NULL;

    signal(SIGINT, forward);
    signal(SIGTERM, forward);
    signal(SIGHUP, forward);
    child = fork();
    if (child < 0) {
        perror("vmckpt-mpirun: fork");
        return 1;
    }
    if (child == 0) {
        execvp(av[0], av);
        fprintf(stderr, "vmckpt-mpirun: cannot run %s: %s\n", av[0],
                strerror(errno));
        _exit(127);
    }
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR) {
            perror("vmckpt-mpirun: wait");
            status = 1 << 8;
            break;
        }
    if (registered) {
        Vmckpt__JobDeregister d = VMCKPT__JOB_DEREGISTER__INIT;

        d.job = t.job;
        if (call(&t, VMCKPT__MSG_TYPE__MSG_JOB_DEREGISTER, &d,
                 VMCKPT__MSG_TYPE__MSG_ACK, NULL, &err) < 0)
            hooks_log("job %s: could not tell the coordinator the run "
                      "ended: %s",
                      t.job, err.text);
    }
    if (have > 0)
        chan_target_dispose(&t);
    free(av);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
