/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Launching and stopping guests for the agent. The tap device and bridge
 * port are set up with iproute2; QEMU's command line comes from
 * lib/qemu/qemu_argv.c, the same builder the lab uses. */
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

#include "lib/qemu/qemu_argv.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "image.h"
#include "vmm.h"

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/libexec/vmckpt"
#endif
#define UFFD_FD 100

int vmm_init(struct vmm *m, const struct conf *conf, const char *state_dir,
             const char *accel, struct vmckpt_error *err)
{
    char def[4096];

    memset(m, 0, sizeof(*m));
    snprintf(def, sizeof(def), "%s/run", state_dir);
    snprintf(m->run_dir, sizeof(m->run_dir), "%s",
             conf_get(conf, "agent", "run_dir", def));
    snprintf(m->bridge, sizeof(m->bridge), "%s",
             conf_get(conf, "agent", "bridge", "br0"));
    snprintf(m->preload, sizeof(m->preload), "%s",
             conf_get(conf, "agent", "uffd_preload",
                      PKGLIBEXECDIR "/libvmckpt-uffd.so"));
    snprintf(m->qemu, sizeof(m->qemu), "%s",
             conf_get(conf, "agent", "qemu", "qemu-system-x86_64"));
    snprintf(m->accel, sizeof(m->accel), "%s", accel);
    return daemon_mkdirs(m->run_dir, 0700, err);
}

struct vmm_vm *vmm_find(struct vmm *m, const char *job, const char *name)
{
    struct vmm_vm *v;

    for (v = m->vms; v != NULL; v = v->next)
        if (strcmp(v->job, job) == 0 && strcmp(v->name, name) == 0)
            return v;
    return NULL;
}

/* Run a command, wait for it; 0 if it exited 0. */
static int run(char *const argv[])
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void tap_del(const char *tap)
{
    char *del[] = {"ip", "link", "del", (char *)tap, NULL};

    (void)run(del);
}

static int tap_add(struct vmm *m, const char *tap, struct vmckpt_error *err)
{
    char *add[] = {"ip",        "tuntap", "add", "dev",
                   (char *)tap, "mode",   "tap", NULL};
    char *master[] = {"ip",     "link",    "set", (char *)tap,
                      "master", m->bridge, "up",  NULL};

    tap_del(tap);
    if (run(add) < 0)
        return errprintf(err, "cannot create tap %s (ip tuntap add)", tap);
    if (run(master) < 0) {
        tap_del(tap);
        return errprintf(err, "cannot attach tap %s to bridge %s", tap,
                         m->bridge);
    }
    return 0;
}

void vmm_free(struct vmm_vm *vm)
{
    if (vm == NULL)
        return;
    hv_qemu_ops.vm_release(vm->hv);
    if (vm->spec != NULL)
        wire_free_message(vm->spec);
    free(vm);
}

struct vmm_vm *vmm_start(struct vmm *m, const Vmckpt__VmSpec *spec,
                         const char *ram_image, struct vmckpt_error *err)
{
    struct vmm_vm *vm = calloc(1, sizeof(*vm));
    struct qemu_spec q;
    struct hv_vm_spec hs;
    char mac[18], append[1024], pidbuf[32], uffd[16];
    char **argv = NULL;
    struct stat st;
    int i;

    if (vm == NULL) {
        errprintf_errno(err, "start");
        return NULL;
    }
    if (!image_valid_name(spec->job) || !image_valid_name(spec->name) ||
        strlen(spec->name) > 10) {
        errno = EINVAL;
        errprintf(err,
                  "VM name '%.64s' / job '%.64s': 1-10 (VM) or 1-64 "
                  "(job) of letters, digits, '.', '_', '-'",
                  spec->name, spec->job);
        goto fail;
    }
    if (vmm_find(m, spec->job, spec->name) != NULL) {
        errno = EEXIST;
        errprintf(err, "%s/%s is already running on this host", spec->job,
                  spec->name);
        goto fail;
    }
    snprintf(vm->job, sizeof(vm->job), "%s", spec->job);
    snprintf(vm->name, sizeof(vm->name), "%s", spec->name);
    snprintf(vm->qmp, sizeof(vm->qmp), "%s/%s-%s.qmp", m->run_dir, spec->job,
             spec->name);
    snprintf(vm->log, sizeof(vm->log), "%s/%s-%s.log", m->run_dir, spec->job,
             spec->name);
    snprintf(vm->ram, sizeof(vm->ram), "/dev/shm/vmckpt-%s-%s.ram", spec->job,
             spec->name);
    snprintf(vm->tap, sizeof(vm->tap), "vt-%s", spec->name);
    if (strlen(vm->qmp) >= 108) {
        errno = ENAMETOOLONG;
        errprintf(err,
                  "QMP socket %s is longer than a unix socket path "
                  "may be: set a shorter [agent] run_dir",
                  vm->qmp);
        goto fail;
    }
    vm->spec = wire_copy(spec);
    if (vm->spec == NULL) {
        errprintf_errno(err, "start");
        goto fail;
    }
    if (ram_image != NULL && rename(ram_image, vm->ram) < 0) {
        errprintf_errno(err, "restored RAM %s", ram_image);
        goto fail;
    }
    if (tap_add(m, vm->tap, err) < 0)
        goto fail;
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
    q.incoming_defer = ram_image != NULL;
    argv = qemu_argv_build(&q, err);
    if (argv == NULL)
        goto fail_tap;
    unlink(vm->qmp);
    snprintf(uffd, sizeof(uffd), "%d", UFFD_FD);
    vm->pid = fork();
    if (vm->pid < 0) {
        errprintf_errno(err, "fork");
        goto fail_tap;
    }
    if (vm->pid == 0) {
        int fd = open(vm->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        sigset_t none;

        /* the agent blocks the signals its loop reads; QEMU must not
         * inherit that (it would ignore SIGTERM) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        if (fd >= 0) {
            /* a mark in the guest's log where this QEMU begins */
            dprintf(fd, "\nvmckpt-agent: QEMU for %s/%s starts%s\n", spec->job,
                    spec->name, ram_image ? " (restored)" : "");
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("LD_PRELOAD", m->preload, 1);
        setenv("VMCKPT_UFFD_FD", uffd, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    qemu_argv_free(argv);
    argv = NULL;
    for (i = 0; i < 200 && stat(vm->qmp, &st) < 0; i++) {
        if (waitpid(vm->pid, NULL, WNOHANG) == vm->pid) {
            errno = ECHILD;
            errprintf(err, "QEMU for %s/%s exited at start (see %s)", spec->job,
                      spec->name, vm->log);
            vm->pid = 0;
            goto fail_tap;
        }
        usleep(50000);
    }
    memset(&hs, 0, sizeof(hs));
    hs.name = vm->name;
    hs.pid = vm->pid;
    hs.qmp_path = vm->qmp;
    hs.ram_path = vm->ram;
    hs.uffd_fd = UFFD_FD;
    vm->hv = hv_qemu_ops.vm_adopt(&hs, 1, err);
    if (vm->hv == NULL)
        goto fail_kill;
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int)vm->pid);
    log_info("guest %s/%s started (pid %s, %llu MiB, %s%s)", vm->job, vm->name,
             pidbuf, (unsigned long long)spec->memory_mb, m->accel,
             ram_image ? ", waiting for its state" : "");
    vm->next = m->vms;
    m->vms = vm;
    return vm;
fail_kill:
    kill(vm->pid, SIGKILL);
    waitpid(vm->pid, NULL, 0);
fail_tap:
    qemu_argv_free(argv);
    tap_del(vm->tap);
    unlink(vm->ram);
fail:
    vmm_free(vm);
    return NULL;
}

static void unlink_vm(struct vmm *m, struct vmm_vm *vm)
{
    struct vmm_vm **pp;

    for (pp = &m->vms; *pp != NULL; pp = &(*pp)->next)
        if (*pp == vm) {
            *pp = vm->next;
            break;
        }
}

int vmm_stop(struct vmm *m, struct vmm_vm *vm, int wait_ms,
             struct vmckpt_error *err)
{
    int i;

    if (vm->busy) {
        errno = EBUSY;
        return errprintf(err, "%s/%s: a checkpoint or restore is running",
                         vm->job, vm->name);
    }
    if (!vm->stopping) {
        hv_qemu_ops.vm_release(vm->hv);
        vm->hv = NULL;
        vm->stopping = 1;
        kill(vm->pid, SIGTERM);
    }
    /* the event loop must not stall for long (heartbeats): QEMU that is
     * still tearing down is reaped by vmm_reaped() */
    for (i = 0; i < wait_ms / 10; i++) {
        if (waitpid(vm->pid, NULL, WNOHANG) == vm->pid) {
            unlink_vm(m, vm);
            tap_del(vm->tap);
            unlink(vm->ram);
            unlink(vm->qmp);
            log_info("guest %s/%s stopped", vm->job, vm->name);
            vmm_free(vm);
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

struct vmm_vm *vmm_reaped(struct vmm *m, pid_t pid)
{
    struct vmm_vm *vm;

    for (vm = m->vms; vm != NULL; vm = vm->next)
        if (vm->pid == pid)
            break;
    if (vm == NULL || vm->busy)
        return NULL;
    unlink_vm(m, vm);
    tap_del(vm->tap);
    unlink(vm->ram);
    unlink(vm->qmp);
    return vm;
}

void vmm_fini(struct vmm *m)
{
    while (m->vms != NULL) {
        struct vmm_vm *vm = m->vms;

        vm->busy = 0;
        if (vmm_stop(m, vm, 10000, NULL) != 1) {
            kill(vm->pid, SIGKILL);
            waitpid(vm->pid, NULL, 0);
            unlink_vm(m, vm);
            tap_del(vm->tap);
            unlink(vm->ram);
            vmm_free(vm);
        }
    }
}
