/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guests an agent owns, whatever their hypervisor: the list, the
 * records in run_dir a restarted agent takes them over from, the checks
 * every guest passes before it is launched. Launching, taking over and
 * stopping are the launcher's of its spec.hypervisor (vmm_int.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util/clock.h"
#include "lib/util/daemon.h"
#include "lib/util/log.h"
#include "agent/disk/disk.h"
#include "agent/store/image.h"
#include "vmm.h"
#include "vmm_int.h"

#ifndef PKGLIBEXECDIR
#define PKGLIBEXECDIR "/usr/libexec/vmckpt"
#endif

/* Longest job and VM names (image_valid_name; vmm_start). */
#define JOB_NAME_MAX 64
#define VM_NAME_MAX  10

/* The launcher for spec.hypervisor 'name' ("" is QEMU), or NULL. */
static const struct vmm_launcher *launcher_find(const char *name)
{
    const struct vmm_launcher *const *l;

    if (name[0] == '\0')
        name = "qemu";
    for (l = vmm_launchers; *l != NULL; l++)
        if (strcmp((*l)->name, name) == 0)
            return *l;
    return NULL;
}

/* A run_dir too long for the longest names: say so at start, not only
 * when a guest is refused. */
static void check_run_dir(const struct vmm *m)
{
    /* "/" JOB "-" VM ".qmp" */
    size_t names = 1 + JOB_NAME_MAX + 1 + VM_NAME_MAX + 4;
    size_t len = strlen(m->run_dir);

    if (len + names <= VMM_SOCKET_PATH_MAX)
        return;
    log_warn("[agent] run_dir %s is %zu bytes long: a guest's QMP socket "
             "there may be at most %d bytes, so guests with long job or VM "
             "names will be refused; a run_dir of at most %zu bytes fits "
             "every name",
             m->run_dir, len, VMM_SOCKET_PATH_MAX,
             (size_t)VMM_SOCKET_PATH_MAX - names);
}

int vmm_init(struct vmm *m, const struct conf *conf, const char *state_dir,
             const char *accel, struct vmckpt_error *err)
{
    char def[4096];

    memset(m, 0, sizeof(*m));
    snprintf(def, sizeof(def), "%s/run", state_dir);
    snprintf(m->run_dir, sizeof(m->run_dir), "%s",
             conf_get(conf, "agent", "run_dir", def));
    snprintf(m->ram_dir, sizeof(m->ram_dir), "%s",
             conf_get(conf, "agent", "ram_dir", "/dev/shm"));
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
    snprintf(def, sizeof(def), "%s/disks", state_dir);
    snprintf(m->disk_dir, sizeof(m->disk_dir), "%s",
             conf_get(conf, "agent", "disk_dir", def));
    snprintf(m->qemu_img, sizeof(m->qemu_img), "%s",
             conf_get(conf, "agent", "qemu_img", "qemu-img"));
    if (strcmp(m->tracking, "auto") != 0 && strcmp(m->tracking, "uffd") != 0 &&
        strcmp(m->tracking, "qemu-migration") != 0) {
        errno = EINVAL;
        return errprintf(err,
                         "[agent] dirty_tracking = %s: give auto, uffd or "
                         "qemu-migration",
                         m->tracking);
    }
    check_run_dir(m);
    if (daemon_mkdirs(m->disk_dir, 0700, err) < 0)
        return -1;
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

uint64_t vmm_vm_incarnation(const struct vmm_vm *vm)
{
    return vm->spec != NULL ? vm->spec->incarnation : 0;
}

const char *vmm_vm_tracking(const struct vmm_vm *vm)
{
    return vm->launcher->tracking(vm);
}

void vmm_vm_loaded(struct vmm_vm *vm)
{
    if (vm->launcher->loaded != NULL)
        vm->launcher->loaded(vm);
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

ssize_t vmm_read_proc(pid_t pid, const char *what, char *buf, size_t len)
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

void vmm_run_path(const struct vmm *m, const struct vmm_vm *vm, const char *ext,
                  char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s-%s.%s", m->run_dir, vm->job, vm->name, ext);
}

int vmm_socket_path(const struct vmm *m, const struct vmm_vm *vm,
                    const char *ext, const char *what, char *buf, size_t len,
                    struct vmckpt_error *err)
{
    size_t n, names;

    vmm_run_path(m, vm, ext, buf, len);
    n = strlen(buf);
    if (n <= VMM_SOCKET_PATH_MAX)
        return 0;
    names = n - strlen(m->run_dir);
    errno = ENAMETOOLONG;
    /* the way out first: a relay may cut the end of a long message */
    return errprintf(err,
                     "guest %s/%s: its %s path would be %zu bytes, over the "
                     "%d a UNIX socket path may have (QEMU refuses it): set "
                     "[agent] run_dir (default [agent] state_dir/run) to a "
                     "directory of at most %zu bytes, or shorten the job or "
                     "VM name (the path: %.200s%s)",
                     vm->job, vm->name, what, n, VMM_SOCKET_PATH_MAX,
                     names < VMM_SOCKET_PATH_MAX ? VMM_SOCKET_PATH_MAX - names
                                                 : 0,
                     buf, n > 200 ? "..." : "");
}

void vmm_free(struct vmm_vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->ops != NULL)
        vm->ops->vm_release(vm->hv);
    if (vm->spec != NULL)
        wire_free_message(vm->spec);
    disk_chain_destroy(vm->disks);
    free(vm);
}

/* run_dir/JOB-VM.spec (the packed spec) and .pid: what a restarted agent
 * needs to take the guest over. */
static void save_record(const struct vmm *m, const struct vmm_vm *vm)
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
    vmm_run_path(m, vm, "spec", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0 ||
        rename(tmp, path) < 0)
        log_warn("cannot record %s: %s", path, strerror(errno));
    free(buf);
    vmm_run_path(m, vm, "pid", path, sizeof(path));
    snprintf(pid, sizeof(pid), "%d\n", (int)vm->pid);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0 || close(fd) < 0)
        log_warn("cannot record %s: %s", path, strerror(errno));
}

static void drop_record(const struct vmm *m, const struct vmm_vm *vm)
{
    char path[4200];

    vmm_run_path(m, vm, "spec", path, sizeof(path));
    unlink(path);
    vmm_run_path(m, vm, "pid", path, sizeof(path));
    unlink(path);
    vmm_run_path(m, vm, "fenced", path, sizeof(path));
    unlink(path);
}

pid_t vmm_recorded_pid(const struct vmm *m, const struct vmm_vm *vm)
{
    char path[4200], buf[32];
    ssize_t n;
    int fd;

    vmm_run_path(m, vm, "pid", path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return (pid_t)atoi(buf);
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

/* A guest that has ended (or is ending) leaves nothing behind: out of
 * the list, its record and what it had on the host gone. */
static void forget(struct vmm *m, struct vmm_vm *vm)
{
    unlink_vm(m, vm);
    drop_record(m, vm);
    vm->launcher->cleanup(m, vm);
}

/* A new guest with the names every guest has, its launcher's own set
 * from its spec (a copy of 'spec' it keeps). NULL with 'err'. */
static struct vmm_vm *vm_create(struct vmm *m, const Vmckpt__VmSpec *spec,
                                const struct vmm_launcher *l,
                                struct vmckpt_error *err)
{
    struct vmm_vm *vm = calloc(1, sizeof(*vm));

    if (vm == NULL || (vm->spec = wire_copy(spec)) == NULL) {
        errprintf_errno(err, "guest %s/%s", spec->job, spec->name);
        free(vm);
        return NULL;
    }
    vm->launcher = l;
    snprintf(vm->job, sizeof(vm->job), "%s", spec->job);
    snprintf(vm->name, sizeof(vm->name), "%s", spec->name);
    vmm_run_path(m, vm, "log", vm->log, sizeof(vm->log));
    snprintf(vm->ram, sizeof(vm->ram), "%s/vmckpt-%s-%s.ram", m->ram_dir,
             vm->job, vm->name);
    if (l->name_vm(m, vm, err) < 0) {
        vmm_free(vm);
        return NULL;
    }
    return vm;
}

/* A spec the agent can launch: valid names, a known hypervisor, no guest
 * of that name here yet. Its launcher, or NULL with 'err'. */
static const struct vmm_launcher *
check_spec(struct vmm *m, const Vmckpt__VmSpec *spec, struct vmckpt_error *err)
{
    const struct vmm_launcher *l;

    if (!image_valid_name(spec->job) || !image_valid_name(spec->name) ||
        strlen(spec->name) > VM_NAME_MAX) {
        errno = EINVAL;
        errprintf(err,
                  "VM name '%.64s' / job '%.64s': 1-%d (VM) or 1-%d "
                  "(job) of letters, digits, '.', '_', '-'",
                  spec->name, spec->job, VM_NAME_MAX, JOB_NAME_MAX);
        return NULL;
    }
    if (vmm_find(m, spec->job, spec->name) != NULL) {
        errno = EEXIST;
        errprintf(err, "%s/%s is already running on this host", spec->job,
                  spec->name);
        return NULL;
    }
    l = launcher_find(spec->hypervisor);
    if (l == NULL) {
        errno = ENOTSUP;
        errprintf(err, "%s/%s: hypervisor '%.32s' is none this agent knows",
                  spec->job, spec->name, spec->hypervisor);
    } else if (spec->n_disks > 0 && !l->disks) {
        errno = ENOTSUP;
        errprintf(err,
                  "%s/%s: guest disks are not supported by the %s back end "
                  "(see docs/xen.md, 'Disks')",
                  spec->job, spec->name, l->name);
        l = NULL;
    }
    return l;
}

struct vmm_vm *vmm_start(struct vmm *m, const Vmckpt__VmSpec *spec,
                         const char *ram_image, struct disk_chain *disks,
                         struct vmckpt_error *err)
{
    const struct vmm_launcher *l = check_spec(m, spec, err);
    struct vmm_vm *vm;

    if (l == NULL) {
        disk_chain_destroy(disks);
        return NULL;
    }
    vm = vm_create(m, spec, l, err);
    if (vm == NULL) {
        disk_chain_destroy(disks);
        return NULL;
    }
    vm->disks = disks;
    if (l->start(m, vm, ram_image, err) < 0) {
        vmm_free(vm);
        return NULL;
    }
    save_record(m, vm);
    vm->next = m->vms;
    m->vms = vm;
    return vm;
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
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
        vm->stopping = 1;
        if (vm->launcher->halt != NULL)
            vm->launcher->halt(m, vm, 0);
    }
    /* the event loop must not stall for long (heartbeats): a guest still
     * tearing down is cleaned up by vmm_reaped() */
    for (i = 0;; i++) {
        if (vm->launcher->ended(vm)) {
            forget(m, vm);
            log_info("guest %s/%s stopped (%s)", vm->job, vm->name, vm->where);
            vmm_free(vm);
            return 1;
        }
        if (i >= wait_ms / 10)
            return 0;
        usleep(10000);
    }
}

struct vmm_vm *vmm_reaped(struct vmm *m, pid_t pid)
{
    struct vmm_vm *vm;

    for (vm = m->vms; vm != NULL; vm = vm->next)
        if (vm->pid > 0 && vm->pid == pid)
            break;
    if (vm == NULL || vm->busy)
        return NULL;
    forget(m, vm);
    return vm;
}

void vmm_fini(struct vmm *m)
{
    while (m->vms != NULL) {
        struct vmm_vm *vm = m->vms;

        vm->busy = 0;
        if (vmm_stop(m, vm, 10000, NULL) != 1) {
            if (vm->launcher->halt != NULL)
                vm->launcher->halt(m, vm, 1);
            forget(m, vm);
            vmm_free(vm);
        }
    }
}

/* A guest of an earlier agent, adopted: resumed if that agent's cut left
 * it paused, listed. One a fence guard had stopped stays paused (fenced)
 * until the coordinator lifts the fence. */
static void taken_over(struct vmm *m, struct vmm_vm *vm)
{
    struct vmckpt_error err;

    vm->next = m->vms;
    m->vms = vm;
    if (vm->fenced) {
        log_info("guest %s/%s (%s) of an earlier agent taken over; paused "
                 "until the coordinator lifts the fence",
                 vm->job, vm->name, vm->where);
        return;
    }
    /* an agent killed during a cut left it paused: that epoch is void */
    if (vm->ops->resume(vm->hv, &err) < 0)
        log_warn("guest %s/%s: resume: %s", vm->job, vm->name, err.text);
    log_info("guest %s/%s (%s) of an earlier agent taken over; running",
             vm->job, vm->name, vm->where);
}

/* The packed spec of run_dir/JOB-VM.spec, or NULL (logged). */
static Vmckpt__VmSpec *read_record(const char *spec_path)
{
    uint8_t buf[65536];
    Vmckpt__VmSpec *spec;
    ssize_t n;
    int fd;

    fd = open(spec_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    spec = n > 0 ? vmckpt__vm_spec__unpack(NULL, (size_t)n, buf) : NULL;
    if (spec == NULL)
        log_warn("%s: not a VM record; ignored", spec_path);
    return spec;
}

/* 1 if the guest of 'spec_path' was taken over, 0 if not, -1 on an error
 * that ends the agent's start. */
static int adopt_one(struct vmm *m, const char *spec_path,
                     struct vmckpt_error *err)
{
    Vmckpt__VmSpec *spec = read_record(spec_path);
    const struct vmm_launcher *l;
    struct vmm_vm *vm;
    int rc;

    if (spec == NULL)
        return 0;
    l = launcher_find(spec->hypervisor);
    if (l == NULL) {
        log_warn("%s: hypervisor '%.32s' is none this agent knows; ignored",
                 spec_path, spec->hypervisor);
        vmckpt__vm_spec__free_unpacked(spec, NULL);
        return 0;
    }
    vm = vm_create(m, spec, l, err);
    vmckpt__vm_spec__free_unpacked(spec, NULL);
    if (vm == NULL) {
        if (errno == ENOMEM)
            return -1;
        /* a record no guest can have been started from */
        log_warn("%s: %s; ignored", spec_path, err->text);
        return 0;
    }
    vm->adopted = 1;
    rc = l->adopt(m, vm, err);
    if (rc > 0) {
        char mark[4200];

        /* paused by the fence of the agent before, which then ended */
        vmm_run_path(m, vm, "fenced", mark, sizeof(mark));
        if (access(mark, F_OK) == 0)
            vm->fenced = 1;
        taken_over(m, vm);
        return 1;
    }
    if (rc == 0)
        forget(m, vm);
    vmm_free(vm);
    return 0;
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
        if (vm->busy || !vm->launcher->lost(vm)) {
            pp = &vm->next;
            continue;
        }
        if (!vm->stopping && m->on_gone != NULL)
            m->on_gone(m->on_gone_arg, vm);
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
        forget(m, vm); /* unlinks it: *pp moves on */
        vmm_free(vm);
        n++;
    }
    return n;
}

uint64_t vmm_cpu_ms(pid_t pid)
{
    char buf[1024], *p;
    unsigned long long ut = 0, st = 0;

    if (vmm_read_proc(pid, "stat", buf, sizeof(buf)) <= 0)
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

/* The state letter of process 'pid' in /proc/PID/stat; '\0' if it
 * cannot be read (gone), '?' if the line does not parse. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512], *p, st = '\0';
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return '\0';
    /* "PID (COMM) STATE ...": COMM may hold spaces and parentheses */
    if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL)
        st = p[1] == ' ' ? p[2] : '?';
    fclose(f);
    return st;
}

int vmm_pid_stopped(pid_t pid)
{
    return pid > 0 && proc_state(pid) == 'T';
}

int vmm_pid_ended(pid_t pid)
{
    char st;

    if (pid <= 0)
        return 0;
    st = proc_state(pid);
    return st == '\0' || st == 'Z' || st == 'X';
}

void vmm_set_fenced(struct vmm *m, struct vmm_vm *vm, int on)
{
    char path[4200];
    int fd;

    vm->fenced = on;
    vmm_run_path(m, vm, "fenced", path, sizeof(path));
    if (!on) {
        unlink(path);
        return;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        log_warn("guest %s/%s: cannot mark it fenced (%s): %s", vm->job,
                 vm->name, path, strerror(errno));
    else
        close(fd);
}
