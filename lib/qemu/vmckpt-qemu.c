/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-qemu: runs (or prints) a guest's QEMU command line as built by
 * qemu_argv_build(), so the lab's scripts never spell QEMU options
 * themselves. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu_argv.h"

static const char usage[] =
    "Usage: vmckpt-qemu [OPTION]... (--exec | --print)\n"
    "       vmckpt-qemu --mac-for NAME\n"
    "Build the QEMU command line of a vmckpt guest and run or print it.\n"
    "\n"
    "  --name NAME        guest name (required)\n"
    "  --mem MB           guest RAM (default 256)\n"
    "  --vcpus N          (default 1)\n"
    "  --accel kvm|tcg    (default tcg)\n"
    "  --kernel FILE      vmlinux or bzImage (required)\n"
    "  --initrd FILE\n"
    "  --append TEXT      kernel command line additions\n"
    "  --ram-path FILE    guest RAM in FILE (share=on); default a memfd\n"
    "  --qmp SOCKET       QMP socket (required)\n"
    "  --serial SOCKET    serial console socket\n"
    "  --serial-log FILE  log of everything the console prints\n"
    "  --tap IFNAME       tap interface (with --mac, default derived)\n"
    "  --mac MAC\n"
    "  --pidfile FILE\n"
    "  --incoming-defer   wait for migrate-incoming (restore)\n"
    "  --paused           start with the vCPUs stopped\n"
    "  --qemu BINARY      (default qemu-system-x86_64)\n"
    "  --preload LIB      run QEMU with LIB in LD_PRELOAD\n"
    "  --uffd-fd N        with libvmckpt-uffd.so: the userfaultfd's number\n"
    "  --exec             replace this process with QEMU\n"
    "  --print            print the command line, one argument per line\n";

enum {
    O_NAME = 256,
    O_MEM,
    O_VCPUS,
    O_ACCEL,
    O_KERNEL,
    O_INITRD,
    O_APPEND,
    O_RAM,
    O_QMP,
    O_SERIAL,
    O_SLOG,
    O_TAP,
    O_MAC,
    O_PID,
    O_INCOMING,
    O_PAUSED,
    O_QEMU,
    O_EXEC,
    O_PRINT,
    O_MACFOR,
    O_PRELOAD,
    O_UFFD
};

static const struct option opts[] = {
    {"name", 1, NULL, O_NAME},
    {"mem", 1, NULL, O_MEM},
    {"vcpus", 1, NULL, O_VCPUS},
    {"accel", 1, NULL, O_ACCEL},
    {"kernel", 1, NULL, O_KERNEL},
    {"initrd", 1, NULL, O_INITRD},
    {"append", 1, NULL, O_APPEND},
    {"ram-path", 1, NULL, O_RAM},
    {"qmp", 1, NULL, O_QMP},
    {"serial", 1, NULL, O_SERIAL},
    {"serial-log", 1, NULL, O_SLOG},
    {"tap", 1, NULL, O_TAP},
    {"mac", 1, NULL, O_MAC},
    {"pidfile", 1, NULL, O_PID},
    {"incoming-defer", 0, NULL, O_INCOMING},
    {"paused", 0, NULL, O_PAUSED},
    {"qemu", 1, NULL, O_QEMU},
    {"exec", 0, NULL, O_EXEC},
    {"print", 0, NULL, O_PRINT},
    {"mac-for", 1, NULL, O_MACFOR},
    {"help", 0, NULL, 'h'},
    {"preload", 1, NULL, O_PRELOAD},
    {"uffd-fd", 1, NULL, O_UFFD},
    {NULL, 0, NULL, 0},
};

/* What the command line asks for. */
struct launch {
    struct qemu_spec spec;
    const char *preload; /* LD_PRELOAD for QEMU, or NULL */
    const char *uffd_fd; /* VMCKPT_UFFD_FD for QEMU, or NULL */
    int mode;            /* 'x' --exec, 'p' --print, 0 not given */
    char mac[18];        /* the MAC derived from the name, when needed */
};

/* Read the options into 'l'. Returns -1 to go on, or the exit status when
 * the program is done (--help, --mac-for, a usage error). */
static int parse_options(int argc, char **argv, struct launch *l)
{
    struct qemu_spec *s = &l->spec;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_NAME:
            s->name = optarg;
            break;
        case O_MEM:
            s->mem_mb = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_VCPUS:
            s->vcpus = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case O_ACCEL:
            s->accel = optarg;
            break;
        case O_KERNEL:
            s->kernel = optarg;
            break;
        case O_INITRD:
            s->initrd = optarg;
            break;
        case O_APPEND:
            s->append = optarg;
            break;
        case O_RAM:
            s->ram_path = optarg;
            break;
        case O_QMP:
            s->qmp_path = optarg;
            break;
        case O_SERIAL:
            s->serial_path = optarg;
            break;
        case O_SLOG:
            s->serial_log = optarg;
            break;
        case O_TAP:
            s->tap = optarg;
            break;
        case O_MAC:
            s->mac = optarg;
            break;
        case O_PID:
            s->pidfile = optarg;
            break;
        case O_INCOMING:
            s->incoming_defer = 1;
            break;
        case O_PAUSED:
            s->paused = 1;
            break;
        case O_QEMU:
            s->qemu = optarg;
            break;
        case O_EXEC:
            l->mode = 'x';
            break;
        case O_PRINT:
            l->mode = 'p';
            break;
        case O_MACFOR:
            qemu_mac_for_name(optarg, l->mac);
            printf("%s\n", l->mac);
            return 0;
        case O_PRELOAD:
            l->preload = optarg;
            break;
        case O_UFFD:
            l->uffd_fd = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (l->mode == 0 || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    return -1;
}

/* --print: one argument per line. */
static int print_argv(char **qv)
{
    int i;

    for (i = 0; qv[i] != NULL; i++)
        printf("%s\n", qv[i]);
    qemu_argv_free(qv);
    return 0;
}

/* --exec: become QEMU, with the environment only QEMU gets (not this
 * program). Returns only on failure, with the exit status. */
static int exec_qemu(const struct launch *l, char **qv)
{
    if ((l->preload != NULL && setenv("LD_PRELOAD", l->preload, 1) < 0) ||
        (l->uffd_fd != NULL && setenv("VMCKPT_UFFD_FD", l->uffd_fd, 1) < 0)) {
        perror("vmckpt-qemu: setenv");
        return 2;
    }
    execvp(qv[0], qv);
    fprintf(stderr, "vmckpt-qemu: cannot run %s: %m\n", qv[0]);
    qemu_argv_free(qv);
    return 127;
}

int main(int argc, char **argv)
{
    struct launch l = {.spec = {.mem_mb = 256, .vcpus = 1, .accel = "tcg"}};
    struct vmckpt_error err;
    char **qv;
    int rc;

    rc = parse_options(argc, argv, &l);
    if (rc >= 0)
        return rc;
    if (l.spec.tap != NULL && l.spec.mac == NULL && l.spec.name != NULL) {
        qemu_mac_for_name(l.spec.name, l.mac);
        l.spec.mac = l.mac;
    }
    qv = qemu_argv_build(&l.spec, &err);
    if (qv == NULL) {
        fprintf(stderr, "vmckpt-qemu: %s\n", err.text);
        return 2;
    }
    if (l.mode == 'p')
        return print_argv(qv);
    return exec_qemu(&l, qv);
}
