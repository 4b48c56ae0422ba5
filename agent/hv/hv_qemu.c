/* SPDX-License-Identifier: GPL-2.0-or-later */
/* QEMU/KVM back end: finds the QEMU binary and whether KVM can be used;
 * controls running guests through QMP, reads their RAM from the shared
 * backend, tracks dirty pages with userfaultfd (dirty_uffd.c), and moves
 * vCPU/device state with QEMU's migration stream (x-ignore-shared). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "dirty_uffd.h"
#include "hv.h"
#include "lib/qemu/qmp.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"

/* QEMU's own pre-copy of a whole guest (the fallback without dirty
 * tracking) converges only if the guest writes slower than the stream
 * goes; past this it is cut: QEMU stops the guest for what is left. */
#define STREAM_CONVERGE_MS 15000
/* QEMU's default largest pause, set again before every such stream, and
 * the one that cuts a stream that did not converge. */
#define STREAM_DOWNTIME_MS     300
#define STREAM_CUT_DOWNTIME_MS 60000

/* 1 if /proc/cpuinfo lists hardware virtualisation (vmx or svm). */
static int cpu_has_virt(void)
{
    FILE *f = fopen("/proc/cpuinfo", "re");
    char line[4096];
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "flags", 5) == 0 &&
            (strstr(line, " vmx") != NULL || strstr(line, " svm") != NULL))
            found = 1;
    }
    fclose(f);
    return found;
}

/* Run "QEMU --version" and keep the version number. 0 or -1. */
static int qemu_version(const char *qemu, char *out, size_t len)
{
    char cmd[512], line[256];
    FILE *p;
    const char *v;
    int status;

    if (strchr(qemu, '\'') != NULL)
        return -1;
    snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", qemu);
    p = popen(cmd, "re");
    if (p == NULL)
        return -1;
    line[0] = '\0';
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    status = pclose(p);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    v = strstr(line, "version ");
    if (v == NULL)
        return -1;
    v += strlen("version ");
    snprintf(out, len, "%.*s", (int)strcspn(v, " \n("), v);
    return 0;
}

static void qemu_probe(const struct conf *conf, struct hv_probe *out)
{
    const char *qemu = conf_get(conf, "agent", "qemu", "qemu-system-x86_64");
    int fd;

    memset(out, 0, sizeof(*out));
    snprintf(out->accel, sizeof(out->accel), "tcg");
    if (qemu_version(qemu, out->version, sizeof(out->version)) < 0) {
        snprintf(out->detail, sizeof(out->detail),
                 "%s not found or not runnable (apt-get install "
                 "qemu-system-x86)",
                 qemu);
        return;
    }
    out->usable = 1;
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(out->detail, sizeof(out->detail),
                 "/dev/kvm: %s; guests run under TCG", strerror(errno));
        return;
    }
    close(fd);
    if (!cpu_has_virt()) {
        snprintf(out->detail, sizeof(out->detail),
                 "/dev/kvm present but the CPU shows no vmx/svm (nested "
                 "software KVM); guests run under TCG");
        return;
    }
    snprintf(out->accel, sizeof(out->accel), "kvm");
}

/* ---- running guests ------------------------------------------------- */

struct hv_vm {
    char name[64];
    pid_t pid;
    struct qmp *qmp;
    struct dirty_uffd *dirty;
    int ram_fd;
    const uint8_t *ram;
    uint64_t ram_len;
    int caps_set;
    int fd_ready;    /* the fd handed over by state_ready, or -1 */
    dev_t ready_dev; /* and its file (a number can be reused) */
    ino_t ready_ino;
};

static void qemu_vm_release(struct hv_vm *vm)
{
    int saved = errno;

    if (vm == NULL)
        return;
    dirty_uffd_close(vm->dirty);
    qmp_close(vm->qmp);
    if (vm->ram != NULL)
        munmap((void *)vm->ram, vm->ram_len);
    if (vm->ram_fd >= 0)
        close(vm->ram_fd);
    free(vm);
    errno = saved;
}

static struct hv_vm *qemu_vm_adopt(const struct hv_vm_spec *spec, int track,
                                   struct vmckpt_error *err)
{
    struct hv_vm *vm = calloc(1, sizeof(*vm));
    struct stat st;
    uint64_t start, len;

    if (vm == NULL) {
        errprintf_errno(err, "adopt");
        return NULL;
    }
    vm->ram_fd = vm->fd_ready = -1;
    vm->pid = spec->pid;
    snprintf(vm->name, sizeof(vm->name), "%s", spec->name);
    vm->qmp = qmp_open(spec->qmp_path, 10000, err);
    if (vm->qmp == NULL)
        goto fail;
    vm->ram_fd = open(spec->ram_path, O_RDONLY | O_CLOEXEC);
    if (vm->ram_fd < 0 || fstat(vm->ram_fd, &st) < 0) {
        errprintf_errno(err, "guest RAM %s", spec->ram_path);
        goto fail;
    }
    vm->ram_len = (uint64_t)st.st_size;
    vm->ram = mmap(NULL, vm->ram_len, PROT_READ, MAP_SHARED, vm->ram_fd, 0);
    if (vm->ram == MAP_FAILED) {
        vm->ram = NULL;
        errprintf_errno(err, "map guest RAM %s", spec->ram_path);
        goto fail;
    }
    if (track >= 0) {
        if (dirty_find_mapping(spec->pid, spec->ram_path, &start, &len, err) <
            0)
            goto fail;
        if (len != vm->ram_len) {
            errno = EINVAL;
            errprintf(err, "guest RAM mapping of %llu bytes, file of %llu",
                      (unsigned long long)len, (unsigned long long)vm->ram_len);
            goto fail;
        }
        vm->dirty =
            dirty_uffd_open(spec->pid, spec->uffd_fd, start, len, track, err);
        if (vm->dirty == NULL)
            goto fail;
    }
    return vm;
fail:
    errprefix(err, "guest %s", spec->name);
    qemu_vm_release(vm);
    return NULL;
}

static int qemu_ram_map(struct hv_vm *vm, const uint8_t **base, uint64_t *len,
                        struct vmckpt_error *err)
{
    (void)err;
    *base = vm->ram;
    *len = vm->ram_len;
    return 0;
}

static int64_t qemu_dirty_harvest(struct hv_vm *vm, uint64_t *bitmap,
                                  struct vmckpt_error *err)
{
    if (vm->dirty == NULL) {
        errno = EINVAL;
        return errprintf(err, "guest %s: not tracking dirty pages", vm->name);
    }
    return dirty_uffd_harvest(vm->dirty, bitmap, err);
}

static int qemu_pause(struct hv_vm *vm, struct vmckpt_error *err)
{
    return qmp_execute(vm->qmp, "stop", NULL, NULL, err);
}

static int qemu_resume(struct hv_vm *vm, struct vmckpt_error *err)
{
    return qmp_execute(vm->qmp, "cont", NULL, NULL, err);
}

/* RAM lives in the shared backend that the agent copies itself: QEMU's
 * migration stream then carries only vCPU and device state. Without dirty
 * tracking the stream carries everything ('ignore_shared' 0). With
 * 'pause_before', QEMU waits in status pre-switchover (guest stopped,
 * block nodes still active) for migrate-continue; set or cleared every
 * time, since a migration nobody continues never ends. caps_set: 0
 * unknown, else 1 + ignore_shared + 2 * pause_before as last set. */
static int set_caps(struct hv_vm *vm, int ignore_shared, int pause_before,
                    struct vmckpt_error *err)
{
    json_t *args;
    int rc, want = 1 + !!ignore_shared + 2 * !!pause_before;

    if (vm->caps_set == want)
        return 0;
    args =
        json_pack("{s:[{s:s, s:b}, {s:s, s:b}]}", "capabilities", "capability",
                  "x-ignore-shared", "state", ignore_shared, "capability",
                  "pause-before-switchover", "state", pause_before);
    rc = qmp_execute(vm->qmp, "migrate-set-capabilities", args, NULL, err);
    json_decref(args);
    if (rc == 0)
        vm->caps_set = want;
    return rc;
}

static int set_downtime(struct hv_vm *vm, unsigned ms, struct vmckpt_error *err)
{
    json_t *args = json_pack("{s:I}", "downtime-limit", (json_int_t)ms);
    int rc = qmp_execute(vm->qmp, "migrate-set-parameters", args, NULL, err);

    json_decref(args);
    return rc;
}

/* What save_full calls when QEMU has stopped the guest for the last
 * round (NULL: nothing). */
struct at_pause {
    int (*fn)(void *arg, struct vmckpt_error *err);
    void *arg;
};

/* Cancel the outgoing migration and wait (bounded) until QEMU has ended
 * it: by then it has restarted the guest if the guest was running. Keeps
 * errno; a failure here is only logged (the caller reports its own). */
static void cancel_migration(struct hv_vm *vm)
{
    uint64_t t0 = clock_mono_ms();
    int saved = errno;
    struct vmckpt_error e2;

    if (qmp_execute(vm->qmp, "migrate_cancel", NULL, NULL, &e2) < 0)
        log_warn("guest %s: %s", vm->name, e2.text);
    while (clock_mono_ms() - t0 < 10000) {
        json_t *ret = NULL;
        const char *status;
        int going;

        if (qmp_execute(vm->qmp, "query-migrate", NULL, &ret, &e2) < 0) {
            log_warn("guest %s: %s", vm->name, e2.text);
            break;
        }
        status = json_string_value(json_object_get(ret, "status"));
        going = status != NULL && (strcmp(status, "cancelling") == 0 ||
                                   strcmp(status, "pre-switchover") == 0 ||
                                   strcmp(status, "device") == 0 ||
                                   strcmp(status, "active") == 0);
        json_decref(ret);
        if (!going) {
            errno = saved;
            return;
        }
        usleep(1000);
    }
    log_warn("guest %s: the cancelled state transfer has not ended", vm->name);
    errno = saved;
}

/* Status pre-switchover: QEMU has stopped the guest, drained and flushed
 * its I/O, and not yet sent the device state nor inactivated the block
 * nodes. Run the hook there, then let QEMU finish; a failed hook (or
 * continue) cancels the transfer, with the hook's error. */
static int switchover(struct hv_vm *vm, const struct at_pause *ap,
                      struct vmckpt_error *err)
{
    json_t *args;
    int rc;

    if (ap != NULL && ap->fn != NULL && ap->fn(ap->arg, err) < 0) {
        cancel_migration(vm);
        return -1;
    }
    args = json_pack("{s:s}", "state", "pre-switchover");
    rc = qmp_execute(vm->qmp, "migrate-continue", args, NULL, err);
    json_decref(args);
    if (rc < 0)
        cancel_migration(vm);
    return rc;
}

/* Poll query-migrate until 'completed' (0) or a failure (-1), calling
 * 'ap' at pre-switchover; a transfer still going after 'converge_ms' (0:
 * never) is cut. */
static int wait_migration(struct hv_vm *vm, int timeout_ms, int converge_ms,
                          const struct at_pause *ap, struct vmckpt_error *err)
{
    uint64_t t0 = clock_mono_ms();
    int waited = 0, cut = 0, switched = 0;
    useconds_t nap = 100;

    for (;;) {
        json_t *ret = NULL;
        const char *status;

        if (qmp_execute(vm->qmp, "query-migrate", NULL, &ret, err) < 0)
            return -1;
        status = json_string_value(json_object_get(ret, "status"));
        if (status != NULL && strcmp(status, "completed") == 0) {
            json_decref(ret);
            return 0;
        }
        /* after migrate-continue QEMU may still show pre-switchover for
         * a moment: the hook runs once */
        if (status != NULL && strcmp(status, "pre-switchover") == 0 &&
            !switched) {
            json_decref(ret);
            switched = 1;
            if (switchover(vm, ap, err) < 0)
                return -1;
            continue;
        }
        if (status != NULL && (strcmp(status, "failed") == 0 ||
                               strcmp(status, "cancelled") == 0)) {
            const char *why =
                json_string_value(json_object_get(ret, "error-desc"));

            errprintf(err, "guest %s: state transfer %s: %s", vm->name, status,
                      why ? why : "no reason given");
            json_decref(ret);
            errno = EIO;
            return -1;
        }
        json_decref(ret);
        waited = (int)(clock_mono_ms() - t0);
        if (converge_ms > 0 && !cut && waited >= converge_ms) {
            struct vmckpt_error e2;

            cut = 1;
            log_warn("guest %s: QEMU's stream has not converged after %d ms "
                     "(the guest writes faster than it goes): cut now, with "
                     "a longer pause",
                     vm->name, waited);
            if (set_downtime(vm, STREAM_CUT_DOWNTIME_MS, &e2) < 0)
                log_warn("guest %s: %s", vm->name, e2.text);
        }
        if (waited >= timeout_ms) {
            errno = ETIMEDOUT;
            return errprintf(err,
                             "guest %s: state transfer not done after "
                             "%d ms",
                             vm->name, timeout_ms);
        }
        /* the device state alone takes a few ms (the guest paused for
         * it): ask after 100 us, then twice as long each time, to 1 ms */
        usleep(nap);
        nap = nap < 500 ? nap * 2 : 1000;
    }
}

/* Hand 'fd' to QEMU as the migration's descriptor. */
static int give_fd(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    json_t *args = json_pack("{s:s}", "fdname", "vmckpt-fd");
    int rc = qmp_execute_fd(vm->qmp, "getfd", args, fd, NULL, err);

    json_decref(args);
    return rc;
}

/* Run 'cmd' ("migrate" or "migrate-incoming") over the descriptor
 * handed over (give_fd) until done. */
static int run_on_fd(struct hv_vm *vm, const char *cmd, int timeout_ms,
                     int converge_ms, const struct at_pause *ap,
                     struct vmckpt_error *err)
{
    json_t *args = json_pack("{s:s}", "uri", "fd:vmckpt-fd");
    int rc = qmp_execute(vm->qmp, cmd, args, NULL, err);

    json_decref(args);
    if (rc < 0)
        return -1;
    return wait_migration(vm, timeout_ms, converge_ms, ap, err);
}

/* Hand 'fd' to QEMU and run 'cmd' ("migrate" or "migrate-incoming") over
 * it until done: with 'ignore_shared', only vCPU and device state travel
 * (the agent copies RAM itself); without, the whole guest. 'ap' (NULL:
 * none; outgoing only) is called with the guest stopped for the last
 * round. */
static int migrate_fd(struct hv_vm *vm, int ignore_shared, int fd,
                      const char *cmd, int timeout_ms, int converge_ms,
                      const struct at_pause *ap, struct vmckpt_error *err)
{
    if (set_caps(vm, ignore_shared, ap != NULL, err) < 0)
        return -1;
    vm->fd_ready = -1; /* (a descriptor handed over before is replaced) */
    if (give_fd(vm, fd, err) < 0)
        return -1;
    return run_on_fd(vm, cmd, timeout_ms, converge_ms, ap, err);
}

static int qemu_state_ready(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    struct stat st;

    vm->fd_ready = -1;
    if (fstat(fd, &st) < 0)
        return errprintf_errno(err, "device state");
    if (set_caps(vm, 1, 0, err) < 0 || give_fd(vm, fd, err) < 0)
        return -1;
    vm->fd_ready = fd;
    vm->ready_dev = st.st_dev;
    vm->ready_ino = st.st_ino;
    return 0;
}

static int64_t qemu_save_state(struct hv_vm *vm, int fd,
                               struct vmckpt_error *err)
{
    struct stat st;

    if (ftruncate(fd, 0) < 0 || fstat(fd, &st) < 0)
        return errprintf_errno(err, "device state");
    if (vm->fd_ready == fd && st.st_dev == vm->ready_dev &&
        st.st_ino == vm->ready_ino) { /* only the migrate left for now */
        vm->fd_ready = -1;
        if (run_on_fd(vm, "migrate", 30000, 0, NULL, err) < 0)
            return -1;
    } else if (migrate_fd(vm, 1, fd, "migrate", 30000, 0, NULL, err) < 0)
        return -1;
    if (fstat(fd, &st) < 0)
        return errprintf_errno(err, "device state");
    return (int64_t)st.st_size;
}

static int qemu_load_state(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return errprintf_errno(err, "device state");
    return migrate_fd(vm, 1, fd, "migrate-incoming", 60000, 0, NULL, err);
}

static int qemu_save_full(struct hv_vm *vm, int fd, uint64_t *downtime_ms,
                          int (*at_pause)(void *arg, struct vmckpt_error *err),
                          void *at_pause_arg, struct vmckpt_error *err)
{
    struct at_pause ap = {.fn = at_pause, .arg = at_pause_arg};
    json_t *ret = NULL;

    /* QEMU pre-copies by itself and stops the guest for its last round */
    if (set_downtime(vm, STREAM_DOWNTIME_MS, err) < 0 ||
        migrate_fd(vm, 0, fd, "migrate", 600000, STREAM_CONVERGE_MS,
                   at_pause != NULL ? &ap : NULL, err) < 0)
        return -1;
    *downtime_ms = 0;
    if (qmp_execute(vm->qmp, "query-migrate", NULL, &ret, err) == 0) {
        json_t *d = json_object_get(ret, "downtime");

        if (json_is_integer(d))
            *downtime_ms = (uint64_t)json_integer_value(d);
        json_decref(ret);
    }
    return 0;
}

/* Straight to the QMP client: the guest's monitor is that connection,
 * used only by the thread that owns the guest. */
static int qemu_monitor(struct hv_vm *vm, const char *cmd, json_t *args,
                        json_t **ret, struct vmckpt_error *err)
{
    return qmp_execute(vm->qmp, cmd, args, ret, err);
}

static int qemu_load_full(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return errprintf_errno(err, "guest stream");
    return migrate_fd(vm, 0, fd, "migrate-incoming", 600000, 0, NULL, err);
}

const struct hv_ops hv_qemu_ops = {
    .name = "qemu",
    .probe = qemu_probe,
    .vm_adopt = qemu_vm_adopt,
    .vm_release = qemu_vm_release,
    .ram_map = qemu_ram_map,
    .dirty_harvest = qemu_dirty_harvest,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .save_state = qemu_save_state,
    .state_ready = qemu_state_ready,
    .load_state = qemu_load_state,
    .save_full = qemu_save_full,
    .load_full = qemu_load_full,
    .monitor = qemu_monitor,
};
