/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt.so, a SPANK plugin: the --vmckpt-* options of sbatch and salloc,
 * checked at submission and handed to the job's prolog and epilog
 * (docs/slurm.md). A job without --vmckpt-image is left alone. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/spank.h>

SPANK_PLUGIN(vmckpt, 1);

enum { OPT_IMAGE = 1, OPT_INTERVAL, OPT_MEM, OPT_KEEP, OPT_SPARES, OPT_DISK };

/* The values given on the command line or in #SBATCH lines (NULL: not
 * given): copies, since sbatch reuses the buffer of an #SBATCH line;
 * they live as long as the process. */
static char *image, *interval, *mem, *keep_n, *spares, *disk;

/* *slot = a copy of 'value' (a later option replaces an earlier one) */
static int keep(char **slot, const char *value)
{
    char *copy = strdup(value);

    if (copy == NULL) {
        slurm_error("vmckpt: out of memory");
        return -1;
    }
    free(*slot);
    *slot = copy;
    return 0;
}

/* digits only, within [lo, hi] */
static int number_in(const char *s, long lo, long hi)
{
    char *end;
    long v;

    if (s == NULL || !isdigit((unsigned char)s[0]))
        return 0;
    v = strtol(s, &end, 10);
    return *end == '\0' && v >= lo && v <= hi;
}

/* *slot = 'value' when it is a number within [lo, hi]; else the error
 * "vmckpt: --vmckpt-NAME=VALUE: HINT" */
static int keep_number(char **slot, const char *value, long lo, long hi,
                       const char *name, const char *hint)
{
    if (!number_in(value, lo, hi)) {
        slurm_error("vmckpt: --vmckpt-%s=%s: %s", name, value, hint);
        return -1;
    }
    return keep(slot, value);
}

/* "FILE[,format=raw|qcow2][,base=shared|copy]", FILE an absolute path
 * without blanks or quotes (what vmckpt vm start --disk takes) */
static int disk_ok(const char *v)
{
    const char *p = strchr(v, ',');
    size_t n;

    if (v[0] != '/' || strlen(v) > 600 || strpbrk(v, " \t\r\n\"'\\") != NULL)
        return 0;
    while (p != NULL) {
        p++;
        n = strcspn(p, ",");
        if (!((n == 10 && strncmp(p, "format=raw", n) == 0) ||
              (n == 12 && strncmp(p, "format=qcow2", n) == 0) ||
              (n == 11 && strncmp(p, "base=shared", n) == 0) ||
              (n == 9 && strncmp(p, "base=copy", n) == 0)))
            return 0;
        p = strchr(p, ',');
    }
    return 1;
}

static int on_option(int val, const char *optarg, int remote)
{
    (void)remote;
    if (optarg == NULL || optarg[0] == '\0') {
        slurm_error("vmckpt: an empty --vmckpt option value");
        return -1;
    }
    switch (val) {
    case OPT_IMAGE:
        if (optarg[0] != '/' || strlen(optarg) > 512) {
            slurm_error("vmckpt: --vmckpt-image=%s: give the absolute path "
                        "of an image directory (vmlinux, initrd.img) that "
                        "the controller's host can read",
                        optarg);
            return -1;
        }
        return keep(&image, optarg);
    case OPT_INTERVAL:
        if (strcmp(optarg, "auto") != 0 && !number_in(optarg, 1, 864000)) {
            slurm_error("vmckpt: --vmckpt-interval=%s: give seconds (1 to "
                        "864000) or 'auto' (Young/Daly, from the measured "
                        "checkpoint cost)",
                        optarg);
            return -1;
        }
        return keep(&interval, optarg);
    case OPT_DISK:
        if (!disk_ok(optarg)) {
            slurm_error("vmckpt: --vmckpt-disk=%s: give FILE[,format=raw|qcow2]"
                        "[,base=shared|copy], FILE the absolute path of a "
                        "base image (no blanks or quotes)",
                        optarg);
            return -1;
        }
        return keep(&disk, optarg);
    case OPT_MEM:
        return keep_number(&mem, optarg, 64, 1048576, "mem",
                           "give MB, 64 to 1048576");
    case OPT_KEEP:
        return keep_number(&keep_n, optarg, 0, 1000, "keep",
                           "give the number of committed epochs to keep per "
                           "VM, 0 (all) to 1000");
    case OPT_SPARES:
        return keep_number(&spares, optarg, 0, 63, "spares",
                           "give the number of allocated nodes to keep free "
                           "for restarts, 0 to 63");
    }
    return -1;
}

static struct spank_option options[] = {
    {"vmckpt-image", "DIR",
     "run the job in VMs booted from DIR (vmlinux, initrd.img), "
     "checkpointed by vmckpt and restored when the job is requeued",
     1, OPT_IMAGE, on_option},
    {"vmckpt-interval", "SECONDS|auto",
     "checkpoint the job's VMs every SECONDS, or at the Young/Daly "
     "interval (auto, the default)",
     1, OPT_INTERVAL, on_option},
    {"vmckpt-mem", "MB", "memory of each of the job's VMs (default 512)", 1,
     OPT_MEM, on_option},
    {"vmckpt-disk", "FILE[,format=raw|qcow2][,base=shared|copy]",
     "give each of the job's VMs a disk over the base image FILE (never "
     "written; each VM writes its own overlays), in every checkpoint",
     1, OPT_DISK, on_option},
    {"vmckpt-keep", "N",
     "keep the newest N committed epochs of each VM (0: all; default: the "
     "coordinator's keep_epochs)",
     1, OPT_KEEP, on_option},
    {"vmckpt-spares", "N",
     "start no VM on the last N allocated nodes: with --no-kill, a lost "
     "node's VMs come back on them inside the allocation, without requeue",
     1, OPT_SPARES, on_option},
    SPANK_OPTIONS_TABLE_END};

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    size_t i;

    (void)ac;
    (void)av;
    for (i = 0; options[i].name != NULL; i++) {
        if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
            slurm_error("vmckpt: cannot register --%s", options[i].name);
            return -1;
        }
    }
    return 0;
}

static int set(spank_t sp, const char *name, const char *value)
{
    spank_err_t rc = spank_job_control_setenv(sp, name, value, 1);

    if (rc != ESPANK_SUCCESS) {
        slurm_error("vmckpt: cannot pass %s to the prolog: %s", name,
                    spank_strerror(rc));
        return -1;
    }
    return 0;
}

/* After the options: in sbatch or salloc, hand them to the prolog and
 * epilog (which see SPANK_VMCKPT_*). */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    spank_context_t ctx = spank_context();

    (void)ac;
    (void)av;
    if (ctx != S_CTX_ALLOCATOR && ctx != S_CTX_LOCAL)
        return 0;
    if (ctx == S_CTX_LOCAL)
        return 0; /* a step of a job: its allocation has the options */
    if (image == NULL) {
        if (interval == NULL && mem == NULL && keep_n == NULL &&
            spares == NULL && disk == NULL)
            return 0; /* not protected: untouched */
        /* an optional plugin cannot refuse the job here: its prolog
         * will, with this reason */
        slurm_error("vmckpt: --vmckpt-interval, --vmckpt-mem, "
                    "--vmckpt-keep, --vmckpt-spares and --vmckpt-disk need "
                    "--vmckpt-image; "
                    "the job will be cancelled");
        return set(sp, "VMCKPT_ERROR",
                   "--vmckpt-interval, --vmckpt-mem, --vmckpt-keep, "
                   "--vmckpt-spares and --vmckpt-disk need --vmckpt-image");
    }
    if (set(sp, "VMCKPT_IMAGE", image) < 0 ||
        set(sp, "VMCKPT_INTERVAL", interval != NULL ? interval : "auto") < 0 ||
        set(sp, "VMCKPT_MEM", mem != NULL ? mem : "512") < 0 ||
        set(sp, "VMCKPT_KEEP", keep_n != NULL ? keep_n : "default") < 0 ||
        set(sp, "VMCKPT_SPARES", spares != NULL ? spares : "0") < 0 ||
        (disk != NULL && set(sp, "VMCKPT_DISK", disk) < 0))
        return -1;
    return 0;
}
