/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The launcher of Xen guests: PVH domains built with xl from a VM spec
 * (the configuration written into the run directory, [agent] xl_extra's
 * lines appended) or from the administrator's xl configuration, or running
 * domains taken over; all adopted through the Xen back end's ops,
 * destroyed with xl, taken over again by a restarted agent by their names
 * (JOB-VM, or the domain the spec named). This file does not include Xen
 * headers: the ops table is all it needs (docs/xen.md). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util/log.h"
#include "vmm.h"
#include "vmm_int.h"

/* Run 'argv' with its output appended to 'log'; 0 if it exited 0. On
 * failure 'err' has the command's last line of output. */
static int run_logged(char *const argv[], const char *log,
                      struct vmckpt_error *err)
{
    int fd;
    char tail[512] = "", *line;

    fd = open(log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return errprintf_errno(err, "%s", log);
    if (vmm_run_to(argv, fd) == 0) {
        close(fd);
        return 0;
    }
    {
        /* the last line it wrote: what xl says went wrong */
        off_t end = lseek(fd, 0, SEEK_END), from;
        ssize_t n;
        size_t len;

        from =
            end > (off_t)sizeof(tail) - 1 ? end - (off_t)sizeof(tail) + 1 : 0;
        n = pread(fd, tail, sizeof(tail) - 1, from);
        len = n > 0 ? (size_t)n : 0;
        while (len > 0 && tail[len - 1] == '\n')
            len--;
        tail[len] = '\0';
        line = strrchr(tail, '\n');
        line = line != NULL ? line + 1 : tail;
    }
    close(fd);
    errno = ECHILD;
    return errprintf(err, "%s %s failed: %s (see %s)", argv[0], argv[1],
                     line[0] ? line : "no output", log);
}

static void xl_destroy(const struct vmm *m, const struct vmm_vm *vm)
{
    char *argv[] = {(char *)m->xl, "destroy", (char *)vm->domain, NULL};

    (void)vmm_run(argv);
}

/* A value for an xl config string: no quote, backslash or newline. */
static int xl_safe(const char *what, const char *v, struct vmckpt_error *err)
{
    if (strpbrk(v, "\"\\\n") == NULL)
        return 0;
    errno = EINVAL;
    return errprintf(err,
                     "%s holds a quote, backslash or newline: not for "
                     "an xl configuration",
                     what);
}

/* run_dir/JOB-VM.xl: the domain's configuration, from the spec and the
 * lines of [agent] xl_extra. */
static int xl_config(struct vmm *m, const struct vmm_vm *vm,
                     const Vmckpt__VmSpec *spec, const char *path,
                     struct vmckpt_error *err)
{
    char buf[8192];
    FILE *f;
    int ok, fd;

    if (xl_safe("the kernel path", spec->kernel, err) < 0 ||
        xl_safe("the initrd path", spec->initrd, err) < 0 ||
        xl_safe("the kernel command line", spec->cmdline, err) < 0 ||
        xl_safe("the IP address", spec->ip, err) < 0 ||
        xl_safe("the rank token", spec->rank_token, err) < 0)
        return -1;
    /* root's only: it may hold the job's rank token */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    f = fd < 0 ? NULL : fdopen(fd, "w");
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return errprintf_errno(err, "%s", path);
    }
    fprintf(f,
            "# written by vmckpt-agent for %s/%s\n"
            "name = \"%s\"\n"
            "type = \"pvh\"\n"
            "kernel = \"%s\"\n",
            vm->job, vm->name, vm->domain, spec->kernel);
    if (spec->initrd[0] != '\0')
        fprintf(f, "ramdisk = \"%s\"\n", spec->initrd);
    /* a PVH domain has no fw_cfg: the rank token is on its kernel command
     * line, in this file, never on a host command line (docs/xen.md) */
    fprintf(f,
            "extra = \"vmckpt.name=%s %s%s %s%s%s\"\n"
            "memory = %llu\n"
            "maxmem = %llu\n"
            "vcpus = %u\n",
            spec->name, spec->ip[0] ? "vmckpt.ip=" : "", spec->ip,
            spec->cmdline, spec->rank_token[0] ? " vmckpt.token=" : "",
            spec->rank_token, (unsigned long long)spec->memory_mb,
            (unsigned long long)spec->memory_mb, spec->vcpus ? spec->vcpus : 1);
    if (m->xl_extra[0] != '\0') {
        FILE *x = fopen(m->xl_extra, "re");
        size_t n;

        if (x == NULL) {
            int e = errno;

            fclose(f);
            errno = e;
            return errprintf_errno(err, "[agent] xl_extra %s", m->xl_extra);
        }
        fprintf(f, "# from %s\n", m->xl_extra);
        while ((n = fread(buf, 1, sizeof(buf), x)) > 0)
            fwrite(buf, 1, n, f);
        fclose(x);
    }
    ok = !ferror(f);
    if (fclose(f) != 0 || !ok)
        return errprintf_errno(err, "writing %s", path);
    return 0;
}

/* The guest's domain: spec.domain, or JOB-VM. */
static int xen_name_vm(struct vmm *m, struct vmm_vm *vm,
                       struct vmckpt_error *err)
{
    const Vmckpt__VmSpec *spec = vm->spec;

    (void)m;
    if (strlen(spec->domain) >= sizeof(vm->domain)) {
        errno = ENAMETOOLONG;
        return errprintf(err, "domain name %.80s...: at most %zu characters",
                         spec->domain, sizeof(vm->domain) - 1);
    }
    if (spec->domain[0] != '\0')
        snprintf(vm->domain, sizeof(vm->domain), "%s", spec->domain);
    else
        snprintf(vm->domain, sizeof(vm->domain), "%s-%s", spec->job,
                 spec->name);
    snprintf(vm->where, sizeof(vm->where), "Xen domain %s", vm->domain);
    return xl_safe("the domain name", vm->domain, err);
}

/* An administrator's xl configuration with disks starts, but its disks
 * are not in the domain's checkpoints (docs/xen.md, 'Disks'): said in
 * the log. */
static void warn_disks(const struct vmm_vm *vm, const char *cfg)
{
    char line[1024];
    const char *p;
    FILE *f = fopen(cfg, "re");

    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        for (p = line; *p == ' ' || *p == '\t'; p++)
            ;
        if (strncmp(p, "disk", 4) == 0 && strspn(p + 4, " \t=") > 0 &&
            strchr(p + 4, '=') != NULL) {
            log_warn("guest %s/%s: its xl configuration %s has disks; they "
                     "are not part of its checkpoints (docs/xen.md, 'Disks')",
                     vm->job, vm->name, cfg);
            break;
        }
    }
    fclose(f);
}

/* Build the domain with xl (paused for a restore) and adopt it. */
static int build(struct vmm *m, struct vmm_vm *vm, const char *ram_image,
                 struct vmckpt_error *err)
{
    const Vmckpt__VmSpec *spec = vm->spec;
    char cfg[4200], name[128] = "";
    char *argv[6];
    int n = 0;
    struct hv_vm_spec hs;

    vm->ops = hv_find("xen");
    if (vm->ops == NULL) {
        errno = ENOTSUP;
        return errprintf(err, "this agent was built without the Xen back end "
                              "(configure --with-xen)");
    }
    if (spec->domain[0] != '\0' && spec->xl_config[0] == '\0') {
        errno = EINVAL;
        return errprintf(err,
                         "taking over domain %s needs its xl "
                         "configuration (xl_config), to restore it",
                         spec->domain);
    }
    if (spec->xl_config[0] != '\0') {
        /* the administrator's configuration, under the name we track */
        if (access(spec->xl_config, R_OK) < 0)
            return errprintf_errno(err, "xl configuration %s", spec->xl_config);
        snprintf(cfg, sizeof(cfg), "%s", spec->xl_config);
        snprintf(name, sizeof(name), "name=\"%s\"", vm->domain);
        if (ram_image == NULL)
            warn_disks(vm, cfg);
    } else {
        vmm_run_path(m, vm, "xl", cfg, sizeof(cfg));
        if (xl_config(m, vm, spec, cfg, err) < 0)
            return -1;
    }
    if (spec->domain[0] != '\0' && ram_image == NULL) {
        /* a running domain: taken over as it is */
        memset(&hs, 0, sizeof(hs));
        hs.name = vm->domain;
        vm->hv = vm->ops->vm_adopt(&hs, 1, err);
        return vm->hv != NULL ? 0 : -1;
    }
    if (ram_image != NULL && rename(ram_image, vm->ram) < 0)
        return errprintf_errno(err, "restored RAM %s", ram_image);
    /* a domain of that name left over from a failed restore would make xl
     * refuse the new one (a new guest is refused instead: the name may be
     * someone else's) */
    if (ram_image != NULL)
        xl_destroy(m, vm);
    {
        int fd = open(vm->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dprintf(fd, "\nvmckpt-agent: domain %s for %s/%s starts%s\n",
                    vm->domain, vm->job, vm->name,
                    ram_image ? " (restored)" : "");
            close(fd);
        }
    }
    argv[n++] = m->xl;
    argv[n++] = "create";
    if (ram_image != NULL)
        argv[n++] = "-p"; /* the restore writes the image before it runs */
    argv[n++] = cfg;
    if (name[0] != '\0')
        argv[n++] = name;
    argv[n] = NULL;
    if (run_logged(argv, vm->log, err) < 0)
        return -1;
    memset(&hs, 0, sizeof(hs));
    hs.name = vm->domain;
    hs.ram_path = ram_image ? vm->ram : NULL;
    vm->hv = vm->ops->vm_adopt(&hs, ram_image ? -1 : 1, err);
    if (vm->hv == NULL) {
        xl_destroy(m, vm);
        return -1;
    }
    return 0;
}

static int xen_start(struct vmm *m, struct vmm_vm *vm, const char *ram_image,
                     struct vmckpt_error *err)
{
    if (build(m, vm, ram_image, err) < 0) {
        unlink(vm->ram); /* the image's RAM, if it was moved there */
        return -1;
    }
    log_info("guest %s/%s started (Xen domain %s, %llu MiB%s)", vm->job,
             vm->name, vm->domain, (unsigned long long)vm->spec->memory_mb,
             ram_image ? ", paused for its image" : "");
    return 0;
}

/* A Xen domain an earlier agent of this host started: tracking goes on
 * (its next epoch is full anyway); a domain that agent's cut left
 * suspended runs again (vmm.c resumes it). */
static int xen_adopt(struct vmm *m, struct vmm_vm *vm, struct vmckpt_error *err)
{
    struct hv_vm_spec hs = {.name = vm->domain};

    (void)m;
    vm->ops = hv_find("xen");
    if (vm->ops == NULL) {
        log_err("guest %s/%s is a Xen domain and this agent has no Xen back "
                "end; left alone",
                vm->job, vm->name);
        return -1;
    }
    vm->hv = vm->ops->vm_adopt(&hs, 0, err);
    if (vm->hv != NULL && !vm->ops->vm_alive(vm->hv)) {
        snprintf(err->text, sizeof(err->text), "it has shut down");
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
    }
    if (vm->hv == NULL) {
        log_info("guest %s/%s (domain %s) of an earlier agent is gone (%s); "
                 "cleaning up",
                 vm->job, vm->name, vm->domain, err->text);
        return 0;
    }
    return 1;
}

static int xen_ended(struct vmm_vm *vm)
{
    /* nothing to wait for: cleanup destroys the domain */
    (void)vm;
    return 1;
}

static int xen_lost(struct vmm_vm *vm)
{
    /* a domain destroyed or shut down behind the agent's back; one
     * restored and held paused is alive */
    if (vm->hv == NULL || vm->ops->vm_alive(vm->hv))
        return 0;
    log_warn("guest %s/%s: its domain %s is gone or shut down", vm->job,
             vm->name, vm->domain);
    return 1;
}

/* The domain goes if it is still there, then its files. */
static void xen_cleanup(struct vmm *m, struct vmm_vm *vm)
{
    char cfg[4200];

    xl_destroy(m, vm);
    unlink(vm->ram);
    vmm_run_path(m, vm, "xl", cfg, sizeof(cfg));
    unlink(cfg);
}

static void xen_loaded(struct vmm_vm *vm)
{
    unlink(vm->ram); /* in the domain now */
}

static const char *xen_tracking(const struct vmm_vm *vm)
{
    (void)vm;
    return "xen-logdirty";
}

const struct vmm_launcher vmm_xen_launcher = {
    .name = "xen",
    .name_vm = xen_name_vm,
    .start = xen_start,
    .adopt = xen_adopt,
    .halt = NULL, /* cleanup destroys the domain */
    .ended = xen_ended,
    .lost = xen_lost,
    .cleanup = xen_cleanup,
    .loaded = xen_loaded,
    .tracking = xen_tracking,
};
