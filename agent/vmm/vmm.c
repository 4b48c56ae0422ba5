/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Launching and stopping guests for the agent. The tap device and bridge
 * port are set up with iproute2; QEMU's command line comes from
 * lib/qemu/qemu_argv.c, the same builder the lab uses. A Xen guest is a
 * PVH domain built and destroyed with xl (this file does not include Xen
 * headers: the back end's ops are all it needs). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/qemu/qemu_argv.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "agent/store/image.h"
#include "vmm.h"
#include "vmm_int.h"

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
    snprintf(m->tracking, sizeof(m->tracking), "%s",
             conf_get(conf, "agent", "dirty_tracking", "auto"));
    snprintf(m->xl, sizeof(m->xl), "%s", conf_get(conf, "agent", "xl", "xl"));
    snprintf(m->xl_extra, sizeof(m->xl_extra), "%s",
             conf_get(conf, "agent", "xl_extra", ""));
    {
        const struct hv_ops *const *b;

        for (b = hv_backends(); *b != NULL; b++)
            if (strcmp((*b)->name, "xen") == 0)
                m->xen = *b;
    }
    if (strcmp(m->tracking, "auto") != 0 && strcmp(m->tracking, "uffd") != 0 &&
        strcmp(m->tracking, "qemu-migration") != 0) {
        errno = EINVAL;
        return errprintf(err,
                         "[agent] dirty_tracking = %s: give auto, uffd or "
                         "qemu-migration",
                         m->tracking);
    }
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

int vmm_run_to(char *const argv[], int out)
{
    int status;
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        sigset_t none;

        /* the agent blocks the signals its loop reads: not the child */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(null, 0);
        dup2(out >= 0 ? out : null, 1);
        dup2(out >= 0 ? out : null, 2);
        execvp(argv[0], argv);
        dprintf(2, "%s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int vmm_run(char *const argv[])
{
    return vmm_run_to(argv, -1);
}

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

void vmm_free(struct vmm_vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->ops != NULL)
        vm->ops->vm_release(vm->hv);
    if (vm->spec != NULL)
        wire_free_message(vm->spec);
    free(vm);
}

/* run_dir/JOB-VM.spec (the packed spec) and .pid: what a restarted agent
 * needs to take the guest over. */
static void record_path(const struct vmm *m, const char *job, const char *vm,
                        const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s-%s.%s", m->run_dir, job, vm, ext);
}

void vmm_save_record(const struct vmm *m, const struct vmm_vm *vm)
{
    char path[4200], tmp[4210], pid[32];
    struct vmckpt_error err;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd;

    if (wire_pack(vm->spec, &buf, &len, &err) < 0) {
        log_warn("%s", err.text);
        return;
    }
    record_path(m, vm->job, vm->name, "spec", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0 ||
        rename(tmp, path) < 0)
        log_warn("cannot record %s: %s", path, strerror(errno));
    free(buf);
    record_path(m, vm->job, vm->name, "pid", path, sizeof(path));
    snprintf(pid, sizeof(pid), "%d\n", (int)vm->pid);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0 || close(fd) < 0)
        log_warn("cannot record %s: %s", path, strerror(errno));
}

void vmm_drop_record(const struct vmm *m, const struct vmm_vm *vm)
{
    char path[4200];

    record_path(m, vm->job, vm->name, "spec", path, sizeof(path));
    unlink(path);
    record_path(m, vm->job, vm->name, "pid", path, sizeof(path));
    unlink(path);
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
    vmm_xen_name(vm, spec);
    if (vmm_spec_is_xen(spec)) {
        vm->spec = wire_copy(spec);
        if (vm->spec == NULL) {
            errprintf_errno(err, "start");
            goto fail;
        }
        if (vmm_xen_start(m, vm, spec, ram_image, err) < 0) {
            unlink(vm->ram);
            goto fail;
        }
        vmm_save_record(m, vm);
        log_info("guest %s/%s started (Xen domain %s, %llu MiB%s)", vm->job,
                 vm->name, vm->domain, (unsigned long long)spec->memory_mb,
                 ram_image ? ", paused for its image" : "");
        vm->next = m->vms;
        m->vms = vm;
        return vm;
    }
    vm->ops = &hv_qemu_ops;
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
        if (strcmp(m->tracking, "qemu-migration") != 0) {
            setenv("LD_PRELOAD", m->preload, 1);
            setenv("VMCKPT_UFFD_FD", uffd, 1);
        }
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
    vm->hv = strcmp(m->tracking, "qemu-migration") == 0
                 ? NULL
                 : vm->ops->vm_adopt(&hs, 1, err);
    if (vm->hv == NULL && strcmp(m->tracking, "uffd") == 0)
        goto fail_kill;
    if (vm->hv == NULL) {
        /* no write tracking here (a kernel before 6.7, no preload, or
         * configured so): QEMU's own migration stream, a full image each
         * epoch */
        snprintf(vm->no_track_why, sizeof(vm->no_track_why), "%s",
                 strcmp(m->tracking, "qemu-migration") == 0
                     ? "[agent] dirty_tracking = qemu-migration"
                     : err->text);
        vm->hv = vm->ops->vm_adopt(&hs, -1, err);
        if (vm->hv == NULL)
            goto fail_kill;
        vm->qemu_stream = 1;
        log_warn("guest %s/%s: no dirty tracking (%s); its checkpoints use "
                 "QEMU's migration stream, a full image each time",
                 vm->job, vm->name, vm->no_track_why);
    }
    snprintf(pidbuf, sizeof(pidbuf), "%d", (int)vm->pid);
    vmm_save_record(m, vm);
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

void vmm_unlink(struct vmm *m, struct vmm_vm *vm)
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
    if (vmm_is_xen(vm)) {
        vmm_xen_stop(m, vm);
        return 1;
    }
    if (!vm->stopping) {
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
        vm->stopping = 1;
        kill(vm->pid, SIGTERM);
    }
    /* the event loop must not stall for long (heartbeats): QEMU that is
     * still tearing down is reaped by vmm_reaped() */
    for (i = 0; i < wait_ms / 10; i++) {
        if (vm->adopted ? kill(vm->pid, 0) < 0 && errno == ESRCH
                        : waitpid(vm->pid, NULL, WNOHANG) == vm->pid) {
            vmm_unlink(m, vm);
            vmm_drop_record(m, vm);
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
        if (vm->pid == pid && !vmm_is_xen(vm))
            break;
    if (vm == NULL || vm->busy)
        return NULL;
    vmm_unlink(m, vm);
    vmm_drop_record(m, vm);
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
            if (!vm->adopted)
                waitpid(vm->pid, NULL, 0);
            vmm_unlink(m, vm);
            vmm_drop_record(m, vm);
            tap_del(vm->tap);
            unlink(vm->ram);
            vmm_free(vm);
        }
    }
}

/* /proc/PID/WHAT into 'buf' (NUL-terminated); its length, <= 0 if
 * unreadable. */
static ssize_t read_proc(pid_t pid, const char *what, char *buf, size_t len)
{
    char path[64];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, len - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* 1 if process 'pid' is a QEMU whose command line names 'ram'. */
static int is_our_qemu(pid_t pid, const char *ram)
{
    char buf[8192];
    ssize_t n = read_proc(pid, "cmdline", buf, sizeof(buf)), i;

    if (n <= 0)
        return 0;
    for (i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    buf[n] = '\0';
    return strstr(buf, ram) != NULL;
}

void vmm_taken_over(struct vmm *m, struct vmm_vm *vm, const char *what)
{
    struct vmckpt_error err;

    /* an agent killed during a cut left it paused: that epoch is void */
    if (vm->ops->resume(vm->hv, &err) < 0)
        log_warn("guest %s/%s: resume: %s", vm->job, vm->name, err.text);
    vm->next = m->vms;
    m->vms = vm;
    log_info("guest %s/%s (%s) of an earlier agent taken over; running",
             vm->job, vm->name, what);
}

static int adopt_one(struct vmm *m, const char *spec_path,
                     struct vmckpt_error *err)
{
    char path[4200], pidbuf[32];
    uint8_t buf[65536];
    struct hv_vm_spec hs;
    struct vmm_vm *vm;
    Vmckpt__VmSpec *spec;
    ssize_t n;
    int fd;
    pid_t pid;

    fd = open(spec_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    spec = n > 0 ? vmckpt__vm_spec__unpack(NULL, (size_t)n, buf) : NULL;
    if (spec == NULL) {
        log_warn("%s: not a VM record; ignored", spec_path);
        return 0;
    }
    vm = calloc(1, sizeof(*vm));
    if (vm == NULL) {
        vmckpt__vm_spec__free_unpacked(spec, NULL);
        return errprintf_errno(err, "adopt");
    }
    vm->spec = wire_copy(spec);
    vmckpt__vm_spec__free_unpacked(spec, NULL);
    if (vm->spec == NULL) {
        free(vm);
        return errprintf_errno(err, "adopt");
    }
    snprintf(vm->job, sizeof(vm->job), "%s", vm->spec->job);
    snprintf(vm->name, sizeof(vm->name), "%s", vm->spec->name);
    snprintf(vm->qmp, sizeof(vm->qmp), "%s/%s-%s.qmp", m->run_dir, vm->job,
             vm->name);
    snprintf(vm->log, sizeof(vm->log), "%s/%s-%s.log", m->run_dir, vm->job,
             vm->name);
    snprintf(vm->ram, sizeof(vm->ram), "/dev/shm/vmckpt-%s-%s.ram", vm->job,
             vm->name);
    snprintf(vm->tap, sizeof(vm->tap), "vt-%s", vm->name);
    vmm_xen_name(vm, vm->spec);
    if (vmm_is_xen(vm))
        return vmm_xen_adopt(m, vm, err);
    vm->ops = &hv_qemu_ops;
    record_path(m, vm->job, vm->name, "pid", path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    n = fd >= 0 ? read(fd, pidbuf, sizeof(pidbuf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    pidbuf[n > 0 ? n : 0] = '\0';
    pid = (pid_t)atoi(pidbuf);
    if (pid <= 0 || kill(pid, 0) < 0 || !is_our_qemu(pid, vm->ram)) {
        log_info("guest %s/%s of an earlier agent is gone; cleaning up",
                 vm->job, vm->name);
        tap_del(vm->tap);
        unlink(vm->ram);
        unlink(vm->qmp);
        vmm_drop_record(m, vm);
        vmm_free(vm);
        return 0;
    }
    vm->pid = pid;
    vm->adopted = 1;
    memset(&hs, 0, sizeof(hs));
    hs.name = vm->name;
    hs.pid = pid;
    hs.qmp_path = vm->qmp;
    hs.ram_path = vm->ram;
    hs.uffd_fd = UFFD_FD;
    /* continue the tracking it left on; its next epoch is full anyway */
    vm->hv = strcmp(m->tracking, "qemu-migration") == 0
                 ? NULL
                 : vm->ops->vm_adopt(&hs, 0, err);
    if (vm->hv == NULL && strcmp(m->tracking, "uffd") != 0) {
        snprintf(vm->no_track_why, sizeof(vm->no_track_why), "%s", err->text);
        vm->hv = vm->ops->vm_adopt(&hs, -1, err);
        vm->qemu_stream = vm->hv != NULL;
    }
    if (vm->hv == NULL) {
        log_err("guest %s/%s (pid %d) cannot be taken over: %s", vm->job,
                vm->name, (int)pid, err->text);
        vmm_free(vm);
        return 0;
    }
    snprintf(pidbuf, sizeof(pidbuf), "pid %d", (int)pid);
    vmm_taken_over(m, vm, pidbuf);
    return 1;
}

int vmm_adopt_all(struct vmm *m, struct vmckpt_error *err)
{
    DIR *d = opendir(m->run_dir);
    struct dirent *de;
    int n = 0, rc;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4200];

        if (len < 6 || strcmp(de->d_name + len - 5, ".spec") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", m->run_dir, de->d_name);
        rc = adopt_one(m, path, err);
        if (rc < 0) {
            closedir(d);
            return -1;
        }
        n += rc;
    }
    closedir(d);
    return n;
}

int vmm_check_adopted(struct vmm *m)
{
    struct vmm_vm **pp = &m->vms, *vm;
    int n = 0;

    while ((vm = *pp) != NULL) {
        if (vmm_is_xen(vm)) {
            if (vmm_xen_check(m, vm)) /* gone: unlinked, *pp moves on */
                n++;
            else
                pp = &vm->next;
            continue;
        }
        if (!vm->adopted || vm->busy || kill(vm->pid, 0) == 0 ||
            errno != ESRCH) {
            pp = &vm->next;
            continue;
        }
        *pp = vm->next;
        log_warn("guest %s/%s: its QEMU (pid %d) is gone", vm->job, vm->name,
                 (int)vm->pid);
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
        tap_del(vm->tap);
        unlink(vm->ram);
        unlink(vm->qmp);
        vmm_drop_record(m, vm);
        vmm_free(vm);
        n++;
    }
    return n;
}

/* CPU time (ms) QEMU 'pid' has used so far; 0 if unreadable. */
uint64_t vmm_cpu_ms(pid_t pid)
{
    char buf[1024], *p;
    unsigned long long ut = 0, st = 0;

    if (read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
        return 0;
    p = strrchr(buf, ')'); /* the command may hold spaces */
    if (p == NULL || sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%llu %llu",
                            &ut, &st) != 2)
        return 0;
    return (ut + st) * 1000 / (uint64_t)sysconf(_SC_CLK_TCK);
}

void vmm_sample_cpu(struct vmm *m)
{
    struct vmm_vm *vm;
    uint64_t now = clock_mono_ms(), cpu;

    for (vm = m->vms; vm != NULL; vm = vm->next) {
        cpu = vmm_cpu_ms(vm->pid);
        if (vm->cpu_at != 0 && now > vm->cpu_at && cpu >= vm->cpu_prev)
            __atomic_store_n(&vm->cpu_rate,
                             (cpu - vm->cpu_prev) * 1000 / (now - vm->cpu_at),
                             __ATOMIC_RELAXED);
        vm->cpu_prev = cpu;
        vm->cpu_at = now;
    }
}
