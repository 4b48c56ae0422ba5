/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The launcher of QEMU guests: a tap on the host's bridge (iproute2), the
 * command line from lib/qemu/qemu_argv.c (the builder the lab uses), QEMU
 * started with the dirty-tracking preload and adopted through the QEMU
 * back end; taken over again by a restarted agent by its recorded pid. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/disk/disk.h"
#include "lib/qemu/qemu_argv.h"
#include "lib/util/log.h"
#include "vmm.h"
#include "vmm_int.h"

/* The descriptor libvmckpt-uffd.so leaves the userfaultfd on in QEMU. */
#define UFFD_FD 100
/* How long QEMU may take to open its QMP socket: 200 x 50 ms. */
#define QMP_WAIT_TRIES 200

static void tap_del(const char *tap)
{
    char *del[] = {"ip", "link", "del", (char *)tap, NULL};

    (void)vmm_run(del);
}

static int tap_add(struct vmm *m, const char *tap, struct vmckpt_error *err)
{
    char *add[] = {"ip",        "tuntap", "add", "dev",
                   (char *)tap, "mode",   "tap", NULL};
    char *master[] = {"ip",     "link",    "set", (char *)tap,
                      "master", m->bridge, "up",  NULL};

    tap_del(tap);
    if (vmm_run(add) < 0)
        return errprintf(err, "cannot create tap %s (ip tuntap add)", tap);
    if (vmm_run(master) < 0) {
        tap_del(tap);
        return errprintf(err, "cannot attach tap %s to bridge %s", tap,
                         m->bridge);
    }
    return 0;
}

static int qemu_name_vm(struct vmm *m, struct vmm_vm *vm,
                        struct vmckpt_error *err)
{
    snprintf(vm->tap, sizeof(vm->tap), "vt-%s", vm->name);
    /* the one socket the agent hands QEMU; the console goes to a file */
    return vmm_socket_path(m, vm, "qmp", "QMP socket", vm->qmp, sizeof(vm->qmp),
                           err);
}

/* run_dir/JOB-VM.token: the job's rank token for QEMU to read (fw_cfg),
 * root's only; removed once QEMU has read it. 0, or -1 with 'err'. */
static int write_token(const struct vmm *m, const struct vmm_vm *vm, char *path,
                       size_t len, struct vmckpt_error *err)
{
    const char *t = vm->spec->rank_token;
    ssize_t n;
    int fd;

    vmm_run_path(m, vm, "token", path, len);
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errprintf_errno(err, "guest %s/%s: its token file %s", vm->job,
                               vm->name, path);
    n = write(fd, t, strlen(t));
    if (n != (ssize_t)strlen(t)) {
        if (n >= 0)
            errno = ENOSPC; /* a short write */
        close(fd);
    } else if (close(fd) == 0)
        return 0;
    errprintf_errno(err, "guest %s/%s: writing its token file %s", vm->job,
                    vm->name, path);
    unlink(path);
    return -1;
}

/* QEMU's command line for the guest ('disks': its chains, or NULL). */
static char **build_argv(struct vmm *m, const struct vmm_vm *vm, int restore,
                         const char *token_path, const struct disk_argv *disks,
                         struct vmckpt_error *err)
{
    const Vmckpt__VmSpec *spec = vm->spec;
    char mac[18], append[1024];
    struct qemu_spec q;

    if (spec->mac[0] == '\0')
        qemu_mac_for_name(spec->name, mac);
    else
        snprintf(mac, sizeof(mac), "%s", spec->mac);
    snprintf(append, sizeof(append), "vmckpt.name=%s %s%s %s", spec->name,
             spec->ip[0] ? "vmckpt.ip=" : "", spec->ip, spec->cmdline);
    memset(&q, 0, sizeof(q));
    q.qemu = m->qemu;
    q.name = spec->name;
    q.mem_mb = (unsigned)spec->memory_mb;
    q.vcpus = spec->vcpus ? spec->vcpus : 1;
    q.accel = m->accel;
    q.kernel = spec->kernel;
    q.initrd = spec->initrd[0] ? spec->initrd : NULL;
    q.append = append;
    q.ram_path = vm->ram;
    q.qmp_path = vm->qmp;
    q.serial_log = vm->log;
    q.log_append = 1; /* a guest restored here continues its log */
    q.tap = vm->tap;
    q.mac = mac;
    q.incoming_defer = restore;
    /* a restored guest stays stopped once its state is in, until the
     * agent (or the job's RESUME) continues it: without -S, QEMU starts
     * it by itself after an incoming stream whose source was running
     * (a stream-mode epoch), before every guest of the job is back */
    q.paused = restore;
    q.token_path = token_path;
    if (disks != NULL)
        q.disks = disk_argv_disks(disks, &q.ndisks);
    return qemu_argv_build(&q, err);
}

/* Fork and exec QEMU, its output to the guest's log. Its pid, or -1. */
static pid_t spawn(struct vmm *m, const struct vmm_vm *vm, char **argv,
                   int restore)
{
    char uffd[16];
    pid_t pid;

    snprintf(uffd, sizeof(uffd), "%d", UFFD_FD);
    pid = fork();
    if (pid == 0) {
        int fd = open(vm->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        sigset_t none;

        /* the agent blocks the signals its loop reads; QEMU must not
         * inherit that (it would ignore SIGTERM) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        if (fd >= 0) {
            /* a mark in the guest's log where this QEMU begins */
            dprintf(fd, "\nvmckpt-agent: QEMU for %s/%s starts%s\n", vm->job,
                    vm->name, restore ? " (restored)" : "");
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (strcmp(m->tracking, "qemu-migration") != 0) {
            setenv("LD_PRELOAD", m->preload, 1);
            setenv("VMCKPT_UFFD_FD", uffd, 1);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait for QEMU to open its QMP socket; -1 with 'err' if it exited (it
 * is reaped: vm->pid is 0 then). */
static int wait_for_qmp(struct vmm_vm *vm, struct vmckpt_error *err)
{
    struct stat st;
    int i;

    for (i = 0; i < QMP_WAIT_TRIES && stat(vm->qmp, &st) < 0; i++) {
        if (waitpid(vm->pid, NULL, WNOHANG) == vm->pid) {
            vm->pid = 0;
            errno = ECHILD;
            return errprintf(err, "QEMU for %s/%s exited at start (see %s)",
                             vm->job, vm->name, vm->log);
        }
        usleep(50000);
    }
    return 0;
}

/* Adopt the running QEMU through the back end: dirty tracking started
 * ('track' 1) or continued (0) as [agent] dirty_tracking allows; without
 * it (not configured, or not possible here) QEMU's own stream. */
static int attach(struct vmm *m, struct vmm_vm *vm, int track,
                  struct vmckpt_error *err)
{
    struct hv_vm_spec hs;
    int stream_only = strcmp(m->tracking, "qemu-migration") == 0;

    memset(&hs, 0, sizeof(hs));
    hs.name = vm->name;
    hs.pid = vm->pid;
    hs.qmp_path = vm->qmp;
    hs.ram_path = vm->ram;
    hs.uffd_fd = UFFD_FD;
    vm->hv = stream_only ? NULL : vm->ops->vm_adopt(&hs, track, err);
    if (vm->hv != NULL)
        return 0;
    if (strcmp(m->tracking, "uffd") == 0)
        return -1;
    /* no write tracking (a kernel before 6.7, no preload, or configured
     * so): QEMU's own migration stream, a full image each epoch */
    snprintf(vm->no_track_why, sizeof(vm->no_track_why), "%s",
             stream_only ? "[agent] dirty_tracking = qemu-migration"
                         : err->text);
    vm->hv = vm->ops->vm_adopt(&hs, -1, err);
    if (vm->hv == NULL)
        return -1;
    vm->qemu_stream = 1;
    return 0;
}

/* The guest's command line, with its disks' chains (made now for a new
 * guest). NULL with 'err'. */
static char **guest_argv(struct vmm *m, struct vmm_vm *vm, int restore,
                         const char *token_path, struct vmckpt_error *err)
{
    struct disk_argv *da = NULL;
    char **argv;

    if (vm->spec->n_disks > 0 && vm->disks == NULL) {
        vm->disks = disk_chain_create(m->disk_dir, m->qemu_img, vm->spec, err);
        if (vm->disks == NULL)
            return NULL;
    }
    if (vm->disks != NULL && (da = disk_argv_create(vm->disks, err)) == NULL)
        return NULL;
    argv = build_argv(m, vm, restore, token_path, da, err);
    disk_argv_destroy(da);
    return argv;
}

/* A guest that did not start leaves no disk chain behind. */
static void drop_new_chain(struct vmm_vm *vm)
{
    disk_chain_remove(vm->disks);
    disk_chain_destroy(vm->disks);
    vm->disks = NULL;
}

static int qemu_start(struct vmm *m, struct vmm_vm *vm, const char *ram_image,
                      struct vmckpt_error *err)
{
    char **argv, token[4200];
    int has_token = vm->spec->rank_token[0] != '\0';
    int new_chain = vm->disks == NULL;

    vm->ops = hv_find("qemu");
    if (vm->ops == NULL) {
        errno = ENOTSUP;
        return errprintf(err, "this agent has no QEMU back end");
    }
    if (ram_image != NULL && rename(ram_image, vm->ram) < 0)
        return errprintf_errno(err, "restored RAM %s", ram_image);
    if (tap_add(m, vm->tap, err) < 0)
        goto fail;
    if (has_token && write_token(m, vm, token, sizeof(token), err) < 0)
        goto fail_tap;
    argv = guest_argv(m, vm, ram_image != NULL, has_token ? token : NULL, err);
    if (argv == NULL)
        goto fail_tap;
    unlink(vm->qmp);
    vm->pid = spawn(m, vm, argv, ram_image != NULL);
    qemu_argv_free(argv);
    if (vm->pid < 0) {
        vm->pid = 0;
        errprintf_errno(err, "fork");
        goto fail_tap;
    }
    if (wait_for_qmp(vm, err) < 0)
        goto fail_tap;
    if (attach(m, vm, 1, err) < 0)
        goto fail_kill;
    /* QEMU has read the file: it answered QMP commands, which its main
     * loop runs once the machine is built (its QMP socket comes earlier) */
    if (has_token)
        unlink(token);
    if (vm->qemu_stream)
        log_warn("guest %s/%s: no dirty tracking (%s); its checkpoints use "
                 "QEMU's migration stream, a full image each time",
                 vm->job, vm->name, vm->no_track_why);
    snprintf(vm->where, sizeof(vm->where), "pid %d", (int)vm->pid);
    log_info("guest %s/%s started (pid %d, %llu MiB, %s%s)", vm->job, vm->name,
             (int)vm->pid, (unsigned long long)vm->spec->memory_mb, m->accel,
             ram_image ? ", waiting for its state" : "");
    return 0;
fail_kill:
    kill(vm->pid, SIGKILL);
    waitpid(vm->pid, NULL, 0);
    vm->pid = 0;
fail_tap:
    if (has_token)
        unlink(token);
    tap_del(vm->tap);
    if (new_chain)
        drop_new_chain(vm);
fail:
    unlink(vm->ram);
    return -1;
}

/* 1 if process 'pid' is a QEMU whose command line names 'ram'. */
static int is_our_qemu(pid_t pid, const char *ram)
{
    char buf[8192];
    ssize_t n = vmm_read_proc(pid, "cmdline", buf, sizeof(buf)), i;

    if (n <= 0)
        return 0;
    for (i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, ram) != NULL;
}

static int qemu_adopt(struct vmm *m, struct vmm_vm *vm,
                      struct vmckpt_error *err)
{
    pid_t pid = vmm_recorded_pid(m, vm);
    int stopped;

    if (pid <= 0 || kill(pid, 0) < 0 || !is_our_qemu(pid, vm->ram)) {
        log_info("guest %s/%s of an earlier agent is gone; cleaning up",
                 vm->job, vm->name);
        return 0;
    }
    vm->ops = hv_find("qemu");
    if (vm->ops == NULL)
        return -1;
    vm->pid = pid;
    snprintf(vm->where, sizeof(vm->where), "pid %d", (int)pid);
    /* stopped by the fence guard of the agent before: it answers QMP only
     * once continued, and is paused again at once below */
    stopped = vmm_pid_stopped(pid);
    if (stopped)
        kill(pid, SIGCONT);
    /* continue the tracking it left on; its next epoch is full anyway */
    if (attach(m, vm, 0, err) < 0) {
        /* a QEMU no agent controls must not run on: it may be a copy of
         * a guest the coordinator has restored elsewhere since; gone, the
         * coordinator learns it at the registration */
        log_err("guest %s/%s (pid %d) cannot be taken over: %s; killed",
                vm->job, vm->name, (int)pid, err->text);
        kill(pid, SIGKILL);
        return 0;
    }
    if (vm->spec->n_disks > 0) {
        /* without its record the guest runs on, but its disks cannot be
         * checkpointed (ckpt_start refuses) */
        vm->disks =
            disk_chain_load(m->disk_dir, m->qemu_img, vm->job, vm->name, err);
        if (vm->disks == NULL)
            log_err("guest %s/%s: %s; its checkpoints are refused", vm->job,
                    vm->name, err->text);
    }
    if (stopped) {
        if (vm->hv != NULL && vm->ops->pause(vm->hv, err) < 0)
            log_err("guest %s/%s (pid %d): cannot pause it: %s", vm->job,
                    vm->name, (int)pid, err->text);
        vmm_set_fenced(m, vm, 1);
        log_warn("guest %s/%s (pid %d) was stopped by a fence guard: paused "
                 "until the coordinator lifts the fence",
                 vm->job, vm->name, (int)pid);
    }
    return 1;
}

static void qemu_halt(struct vmm *m, struct vmm_vm *vm, int hard)
{
    (void)m;
    if (vm->pid <= 0) /* kill(0) would signal the agent's own group */
        return;
    /* a stopped QEMU takes SIGTERM only once continued, and would run
     * until it handles it */
    if (vmm_pid_stopped(vm->pid))
        hard = 1;
    kill(vm->pid, hard ? SIGKILL : SIGTERM);
    /* an adopted QEMU is not our child: whoever reaps orphans waits */
    if (hard && !vm->adopted)
        waitpid(vm->pid, NULL, 0);
}

static int qemu_ended(struct vmm_vm *vm)
{
    if (vm->pid <= 0)
        return 1;
    if (vm->adopted)
        return kill(vm->pid, 0) < 0 && errno == ESRCH;
    return waitpid(vm->pid, NULL, WNOHANG) == vm->pid;
}

static int qemu_lost(struct vmm_vm *vm)
{
    /* our own children are reported by SIGCHLD (vmm_reaped), and stay
     * (zombies) until then; one reaped while a thread owned it is not */
    if (vm->pid <= 0 || kill(vm->pid, 0) == 0 || errno != ESRCH)
        return 0;
    log_warn("guest %s/%s: its QEMU (pid %d) is gone", vm->job, vm->name,
             (int)vm->pid);
    return 1;
}

static void qemu_cleanup(struct vmm *m, struct vmm_vm *vm)
{
    /* its chain (also one an earlier agent left for a guest gone since) */
    if (vm->disks != NULL)
        disk_chain_remove(vm->disks);
    else if (vm->spec->n_disks > 0)
        disk_chain_remove_at(m->disk_dir, vm->job, vm->name);
    tap_del(vm->tap);
    unlink(vm->ram);
    unlink(vm->qmp);
}

static const char *qemu_tracking(const struct vmm_vm *vm)
{
    return vm->qemu_stream ? "qemu-migration" : "uffd-wp";
}

const struct vmm_launcher vmm_qemu_launcher = {
    .name = "qemu",
    .disks = 1,
    .name_vm = qemu_name_vm,
    .start = qemu_start,
    .adopt = qemu_adopt,
    .halt = qemu_halt,
    .ended = qemu_ended,
    .lost = qemu_lost,
    .cleanup = qemu_cleanup,
    .loaded = NULL, /* the RAM file is the guest's memory */
    .tracking = qemu_tracking,
};
