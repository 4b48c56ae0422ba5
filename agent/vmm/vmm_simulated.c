/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The launcher of simulated guests (spec.hypervisor "simulated") and the
 * launcher list of the simulated agent, vmckpt-agent-simulated: the real
 * agent whose only guests are guests of a few pages in its own memory
 * (agent/hv/hv_sim.c), for the scale tests and bench/scale. Never in the
 * agent that ships (vmm_list.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/hv/hv_sim.h"
#include "lib/util/log.h"
#include "vmm_int.h"

/* The guest's shape when its spec's cmdline gives none (hv_sim_parse):
 * 4 pages, 2 of them written each second, without a thread of its own. */
#define DEFAULT_SHAPE "pages=4,rate=2,lazy"

/* Nothing of a simulated guest lives outside the agent's memory. */
static int sim_name_vm(struct vmm *m, struct vmm_vm *vm,
                       struct vmckpt_error *err)
{
    (void)m;
    (void)err;
    snprintf(vm->where, sizeof(vm->where), "simulated");
    return 0;
}

/* A restore: the image's RAM file into the guest's memory. */
static int load_ram(struct vmm_vm *vm, const char *path, uint64_t pages,
                    struct vmckpt_error *err)
{
    size_t len = (size_t)pages * 4096, got = 0;
    uint8_t *ram = hv_sim_ram(vm->hv);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = 0;

    if (fd < 0)
        return errprintf_errno(err, "restored RAM %s", path);
    while (got < len && (n = read(fd, ram + got, len - got)) > 0)
        got += (size_t)n;
    close(fd);
    if (n < 0)
        return errprintf_errno(err, "restored RAM %s", path);
    if (got != len) {
        errno = EINVAL;
        return errprintf(err, "restored RAM %s: %zu bytes, the guest has %zu",
                         path, got, len);
    }
    return 0;
}

/* The guest's shape: the first word of its command line (the coordinator
 * may add words for MPI ranks, "vmckpt.job=..."), or DEFAULT_SHAPE. */
static void get_shape(const struct vmm_vm *vm, char *buf, size_t len)
{
    const char *c = vm->spec->cmdline;
    size_t n = strcspn(c, " ");

    if (n == 0 || n >= len || strncmp(c, "vmckpt.", 7) == 0)
        snprintf(buf, len, "%s", DEFAULT_SHAPE);
    else
        snprintf(buf, len, "%.*s", (int)n, c);
}

static int sim_start(struct vmm *m, struct vmm_vm *vm, const char *ram_image,
                     struct vmckpt_error *err)
{
    struct hv_sim_config cfg;
    char shape[256], name[132];

    (void)m;
    get_shape(vm, shape, sizeof(shape));
    vm->ops = hv_find("simulated");
    if (vm->ops == NULL) {
        errno = ENOTSUP;
        return errprintf(err, "this agent has no simulated back end");
    }
    if (hv_sim_parse(shape, &cfg, err) < 0)
        return -1;
    /* a restore target waits, paused, for its state */
    cfg.paused = cfg.paused || ram_image != NULL;
    snprintf(name, sizeof(name), "%s/%s", vm->job, vm->name);
    cfg.name = name;
    vm->hv = hv_sim_create(&cfg, err);
    if (vm->hv == NULL)
        return -1;
    if (ram_image != NULL && load_ram(vm, ram_image, cfg.pages, err) < 0) {
        vm->ops->vm_release(vm->hv);
        vm->hv = NULL;
        return -1;
    }
    log_info("guest %s/%s started (simulated: %s%s)", vm->job, vm->name, shape,
             ram_image ? ", waiting for its state" : "");
    return 0;
}

/* A simulated guest ends with the agent that ran it. */
static int sim_adopt(struct vmm *m, struct vmm_vm *vm, struct vmckpt_error *err)
{
    (void)m;
    (void)err;
    log_info("simulated guest %s/%s of an earlier agent ended with it", vm->job,
             vm->name);
    return 0;
}

static int sim_ended(struct vmm_vm *vm)
{
    (void)vm;
    return 1;
}

static int sim_lost(struct vmm_vm *vm)
{
    (void)vm;
    return 0;
}

static void sim_cleanup(struct vmm *m, struct vmm_vm *vm)
{
    (void)m;
    (void)vm;
}

static const char *sim_tracking(const struct vmm_vm *vm)
{
    (void)vm;
    return "simulated";
}

static const struct vmm_launcher vmm_simulated_launcher = {
    .name = "simulated",
    .name_vm = sim_name_vm,
    .start = sim_start,
    .adopt = sim_adopt,
    .halt = NULL,
    .ended = sim_ended,
    .lost = sim_lost,
    .cleanup = sim_cleanup,
    .loaded = NULL,
    .tracking = sim_tracking,
};

const struct vmm_launcher *const vmm_launchers[] = {
    &vmm_simulated_launcher,
    NULL,
};
