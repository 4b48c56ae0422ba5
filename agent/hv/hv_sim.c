/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The simulated back end: a guest made of an anonymous mapping of this
 * process and a writer thread, so that the pre-copy engine can be tested
 * and the simulated agent (agent/vmm/vmm_simulated.c) run without a
 * hypervisor. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv_sim.h"
#include "lib/util/clock.h"
#include "lib/util/error.h"
#include "lib/util/log.h"

#define PAGE 4096u
/* Pages the writer writes between two looks at the lock (pause, quit). */
#define CHUNK 64u

/*
 * Who touches what:
 *
 *   writer thread ---- writes RAM, then sets dirty bits (atomic OR)
 *   dirty_harvest ---- takes the bits word by word (atomic exchange)
 *   pause ------------ sets 'paused' and waits until the writer is out of
 *                      its write section, so RAM is still from then on
 *
 * A write marks its page after the contents are in, so a harvest that
 * misses the mark has not missed the write: the page is sent again after
 * the next harvest.
 */
struct hv_vm {
    struct hv_sim_config cfg;
    char name[132]; /* cfg.name's copy */
    uint8_t *ram;
    uint64_t npages;
    uint64_t *dirty;
    size_t words;
    int track; /* -1: no dirty tracking */

    pthread_t writer;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the writer waits here for work */
    pthread_cond_t idle; /* others wait here for it to leave a chunk */
    int paused, quit, busy;
    uint64_t allowed; /* pages still to write, when not free running */
    uint64_t writes;  /* sequence numbers handed out */
    uint64_t run_ns, run_writes; /* pacing since the last resume */
    /* the writer's own: where it is in the hot set */
    uint64_t next, rng;

    unsigned calls[HV_SIM_NHOOKS], failed[HV_SIM_NHOOKS];
    unsigned fail_in[HV_SIM_NHOOKS]; /* 0: none planned; k: k-th call */
};

uint64_t hv_sim_checksum(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint64_t h = 0xcbf29ce484222325ULL, w;
    size_t i;

    /* FNV-1a over 64-bit words, then the bytes of the tail */
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Count a call of 'hook'; -1 with EIO in 'err' if it is the one planned
 * to fail. Under mu. */
static int hook_call(struct hv_vm *vm, enum hv_sim_hook hook,
                     struct vmckpt_error *err)
{
    static const char *const names[HV_SIM_NHOOKS] = {"pause", "resume",
                                                     "harvest", "save_state"};

    vm->calls[hook]++;
    if (vm->fail_in[hook] == 0 || --vm->fail_in[hook] > 0)
        return 0;
    vm->failed[hook]++;
    errno = EIO;
    return errprintf(err, "simulated %s failure", names[hook]);
}

static void mark_dirty(struct hv_vm *vm, uint64_t p)
{
    if (vm->track >= 0)
        __atomic_fetch_or(&vm->dirty[p / 64], 1ULL << (p % 64),
                          __ATOMIC_RELEASE);
}

/* The contents of write 'seq' to page 'p': never all zero. */
static void fill_page(uint8_t *page, uint64_t p, uint64_t seq)
{
    uint64_t v = ((seq + 1) << 32) ^ p, *w = (uint64_t *)(void *)page;
    size_t i;

    for (i = 0; i < PAGE / sizeof(*w); i++)
        w[i] = v + i;
}

static uint64_t pick_page(struct hv_vm *vm)
{
    uint64_t first = vm->cfg.hot_first, n = vm->cfg.hot_pages, off;

    if (n == 0) {
        first = 0;
        n = vm->npages;
    }
    if (vm->cfg.seed != 0) {
        vm->rng ^= vm->rng << 13;
        vm->rng ^= vm->rng >> 7;
        vm->rng ^= vm->rng << 17;
        off = vm->rng % n;
    } else {
        off = vm->next;
        vm->next = (vm->next + 1) % n;
    }
    return first + off;
}

static int may_write(const struct hv_vm *vm)
{
    return !vm->paused && (vm->cfg.free_running || vm->allowed > 0);
}

/* With a rate, wait until the next write is due; 1 if it waited (the
 * caller looks at the state again), 0 if the write may go now. Under mu. */
static int pace(struct hv_vm *vm)
{
    uint64_t due, now = clock_mono_ns();
    struct timespec ts;

    if (!vm->cfg.free_running || vm->cfg.rate == 0)
        return 0;
    due = vm->run_ns + vm->run_writes * 1000000000ULL / vm->cfg.rate;
    if (now >= due)
        return 0;
    ts.tv_sec = (time_t)(due / 1000000000ULL);
    ts.tv_nsec = (long)(due % 1000000000ULL);
    (void)pthread_cond_timedwait(&vm->wake, &vm->mu, &ts);
    return 1;
}

/* A lazy guest has no writer: the writes due at its rate since it last
 * ran or was looked at are made when it is looked at (a harvest, a pause),
 * at most one per page of RAM at a time. Under mu. */
static void catch_up(struct hv_vm *vm)
{
    uint64_t due, n, i;

    if (!vm->cfg.lazy || vm->paused || vm->cfg.rate == 0)
        return;
    due = (clock_mono_ns() - vm->run_ns) / 1000 * vm->cfg.rate / 1000000;
    if (due <= vm->run_writes)
        return;
    n = due - vm->run_writes;
    vm->run_writes = due;
    if (n > vm->npages)
        n = vm->npages;
    for (i = 0; i < n; i++) {
        uint64_t p = pick_page(vm);

        fill_page(vm->ram + p * PAGE, p, vm->writes++);
        mark_dirty(vm, p);
    }
}

static void *writer_main(void *arg)
{
    struct hv_vm *vm = arg;

    pthread_mutex_lock(&vm->mu);
    for (;;) {
        uint64_t n, seq, i;

        while (!vm->quit && !may_write(vm))
            pthread_cond_wait(&vm->wake, &vm->mu);
        if (vm->quit)
            break;
        if (pace(vm))
            continue;
        n = vm->cfg.free_running ? (vm->cfg.rate ? 1 : CHUNK)
                                 : (vm->allowed < CHUNK ? vm->allowed : CHUNK);
        if (!vm->cfg.free_running)
            vm->allowed -= n;
        seq = vm->writes;
        vm->writes += n;
        vm->busy = 1;
        pthread_mutex_unlock(&vm->mu);
        for (i = 0; i < n; i++) {
            uint64_t p = pick_page(vm);

            fill_page(vm->ram + p * PAGE, p, seq + i);
            mark_dirty(vm, p);
        }
        pthread_mutex_lock(&vm->mu);
        vm->busy = 0;
        vm->run_writes += n;
        pthread_cond_broadcast(&vm->idle);
    }
    pthread_mutex_unlock(&vm->mu);
    return NULL;
}

static void sim_release(struct hv_vm *vm)
{
    int saved = errno;

    if (vm == NULL)
        return;
    if (vm->started) {
        pthread_mutex_lock(&vm->mu);
        vm->quit = 1;
        pthread_cond_broadcast(&vm->wake);
        pthread_mutex_unlock(&vm->mu);
        pthread_join(vm->writer, NULL);
    }
    if (vm->name[0] != '\0')
        log_info("simulated guest %s released: %u pause(s), %u resume(s), "
                 "%llu page(s) written",
                 vm->name, vm->calls[HV_SIM_PAUSE], vm->calls[HV_SIM_RESUME],
                 (unsigned long long)vm->writes);
    if (vm->ram != NULL && vm->ram != MAP_FAILED)
        munmap(vm->ram, vm->npages * PAGE);
    free(vm->dirty);
    pthread_mutex_destroy(&vm->mu);
    pthread_cond_destroy(&vm->wake);
    pthread_cond_destroy(&vm->idle);
    free(vm);
    errno = saved;
}

static struct hv_vm *sim_new(const struct hv_sim_config *cfg, int track,
                             struct vmckpt_error *err)
{
    struct hv_vm *vm;
    pthread_condattr_t ca;

    if (cfg->pages == 0 || cfg->pages > (1ULL << 40) ||
        cfg->hot_first > cfg->pages ||
        cfg->hot_pages > cfg->pages - cfg->hot_first) {
        errno = EINVAL;
        errprintf(err, "simulated guest: bad size or hot set");
        return NULL;
    }
    if ((vm = calloc(1, sizeof(*vm))) == NULL) {
        errprintf_errno(err, "simulated guest");
        return NULL;
    }
    vm->cfg = *cfg;
    snprintf(vm->name, sizeof(vm->name), "%s",
             cfg->name != NULL ? cfg->name : "");
    vm->cfg.name = vm->name;
    vm->npages = cfg->pages;
    vm->track = track;
    vm->rng = cfg->seed;
    vm->paused = cfg->paused;
    pthread_mutex_init(&vm->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&vm->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&vm->idle, NULL);
    vm->words = (size_t)((vm->npages + 63) / 64);
    vm->dirty = calloc(vm->words, sizeof(*vm->dirty));
    vm->ram = mmap(NULL, vm->npages * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->dirty == NULL || vm->ram == MAP_FAILED) {
        errprintf_errno(err, "simulated guest of %llu pages",
                        (unsigned long long)vm->npages);
        goto fail;
    }
    vm->run_ns = clock_mono_ns();
    if (cfg->lazy)
        return vm;
    if (pthread_create(&vm->writer, NULL, writer_main, vm) != 0) {
        errno = EAGAIN;
        errprintf(err, "simulated guest: cannot start its writer");
        goto fail;
    }
    vm->started = 1;
    return vm;
fail:
    sim_release(vm);
    return NULL;
}

struct hv_vm *hv_sim_create(const struct hv_sim_config *cfg,
                            struct vmckpt_error *err)
{
    return sim_new(cfg, 1, err);
}

/* One "key=value" (or "run", "lazy", "paused") of an adopt spec into 'cfg'; 0
 * or -1. */
static int parse_option(const char *opt, size_t len, struct hv_sim_config *cfg)
{
    unsigned long long a, b;
    char buf[64], *eq;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, opt, len);
    buf[len] = '\0';
    if (strcmp(buf, "run") == 0) {
        cfg->free_running = 1;
        return 0;
    }
    if (strcmp(buf, "lazy") == 0) {
        cfg->free_running = cfg->lazy = 1;
        return 0;
    }
    if (strcmp(buf, "paused") == 0) {
        cfg->paused = 1;
        return 0;
    }
    if ((eq = strchr(buf, '=')) == NULL)
        return -1;
    *eq++ = '\0';
    if (strcmp(buf, "hot") == 0 && sscanf(eq, "%llu+%llu", &a, &b) == 2) {
        cfg->hot_first = a;
        cfg->hot_pages = b;
        return 0;
    }
    if (sscanf(eq, "%llu", &a) != 1)
        return -1;
    if (strcmp(buf, "pages") == 0)
        cfg->pages = a;
    else if (strcmp(buf, "seed") == 0)
        cfg->seed = a;
    else if (strcmp(buf, "rate") == 0)
        cfg->rate = a;
    else
        return -1;
    return 0;
}

int hv_sim_parse(const char *opts, struct hv_sim_config *cfg,
                 struct vmckpt_error *err)
{
    const char *s = opts != NULL ? opts : "";

    memset(cfg, 0, sizeof(*cfg));
    cfg->pages = 256;
    while (*s != '\0') {
        size_t len = strcspn(s, ",");

        if (len > 0 && parse_option(s, len, cfg) < 0) {
            errno = EINVAL;
            return errprintf(err, "simulated guest: bad option '%.*s'",
                             (int)len, s);
        }
        s += len + (s[len] == ',');
    }
    return 0;
}

/* 'spec->name' holds the config, as hv_sim_parse reads it. */
static struct hv_vm *sim_adopt(const struct hv_vm_spec *spec, int track,
                               struct vmckpt_error *err)
{
    struct hv_sim_config cfg;

    if (hv_sim_parse(spec->name, &cfg, err) < 0)
        return NULL;
    return sim_new(&cfg, track, err);
}

static void sim_probe(const struct conf *conf, struct hv_probe *out)
{
    (void)conf;
    memset(out, 0, sizeof(*out));
    snprintf(out->version, sizeof(out->version), "simulated");
    snprintf(out->accel, sizeof(out->accel), "none");
    snprintf(out->detail, sizeof(out->detail),
             "simulated guests in the agent's own memory, for tests");
    out->usable = 1;
}

static int sim_alive(struct hv_vm *vm)
{
    (void)vm;
    return 1;
}

static int sim_ram_map(struct hv_vm *vm, const uint8_t **base, uint64_t *len,
                       struct vmckpt_error *err)
{
    (void)err;
    *base = vm->ram;
    *len = vm->npages * PAGE;
    return 0;
}

static int64_t sim_dirty_harvest(struct hv_vm *vm, uint64_t *bitmap,
                                 struct vmckpt_error *err)
{
    int64_t n = 0;
    size_t i;
    int rc;

    pthread_mutex_lock(&vm->mu);
    rc = hook_call(vm, HV_SIM_HARVEST, err);
    if (rc == 0)
        catch_up(vm);
    pthread_mutex_unlock(&vm->mu);
    if (rc < 0)
        return -1;
    for (i = 0; i < vm->words; i++) {
        uint64_t bits = __atomic_exchange_n(&vm->dirty[i], 0, __ATOMIC_ACQUIRE);

        bitmap[i] |= bits;
        n += __builtin_popcountll(bits);
    }
    return n;
}

static int sim_pause(struct hv_vm *vm, struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&vm->mu);
    rc = hook_call(vm, HV_SIM_PAUSE, err);
    if (rc == 0) {
        catch_up(vm);
        vm->paused = 1;
        while (vm->busy)
            pthread_cond_wait(&vm->idle, &vm->mu);
    }
    pthread_mutex_unlock(&vm->mu);
    return rc;
}

static int sim_resume(struct hv_vm *vm, struct vmckpt_error *err)
{
    int rc;

    pthread_mutex_lock(&vm->mu);
    rc = hook_call(vm, HV_SIM_RESUME, err);
    if (rc == 0 && vm->paused) {
        vm->paused = 0;
        vm->run_ns = clock_mono_ns();
        vm->run_writes = 0;
        pthread_cond_broadcast(&vm->wake);
    }
    pthread_mutex_unlock(&vm->mu);
    return rc;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int64_t sim_save_state(struct hv_vm *vm, int fd,
                              struct vmckpt_error *err)
{
    uint8_t st[HV_SIM_STATE_LEN];
    int rc;

    pthread_mutex_lock(&vm->mu);
    rc = hook_call(vm, HV_SIM_SAVE_STATE, err);
    if (rc == 0 && !vm->paused) {
        errno = EBUSY;
        rc = errprintf(err, "simulated guest: save_state while running");
    }
    memcpy(st, "vmcksim1", 8);
    put_le64(st + 8, vm->npages);
    put_le64(st + 16, vm->writes);
    pthread_mutex_unlock(&vm->mu);
    if (rc < 0)
        return -1;
    put_le64(st + 24, hv_sim_checksum(vm->ram, vm->npages * PAGE));
    if (pwrite(fd, st, sizeof(st), 0) != (ssize_t)sizeof(st))
        return errprintf_errno(err, "simulated guest: write state");
    return (int64_t)sizeof(st);
}

static int sim_load_state(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    uint8_t st[HV_SIM_STATE_LEN];
    ssize_t n = pread(fd, st, sizeof(st), 0);

    if (n < 0)
        return errprintf_errno(err, "simulated guest: read state");
    errno = EINVAL;
    if (n != (ssize_t)sizeof(st) || memcmp(st, "vmcksim1", 8) != 0)
        return errprintf(err, "simulated guest: not a simulated state");
    if (get_le64(st + 8) != vm->npages)
        return errprintf(err,
                         "simulated guest: state of %llu pages, "
                         "guest of %llu",
                         (unsigned long long)get_le64(st + 8),
                         (unsigned long long)vm->npages);
    pthread_mutex_lock(&vm->mu);
    vm->paused = 1;
    while (vm->busy)
        pthread_cond_wait(&vm->idle, &vm->mu);
    vm->writes = get_le64(st + 16);
    pthread_mutex_unlock(&vm->mu);
    if (hv_sim_checksum(vm->ram, vm->npages * PAGE) != get_le64(st + 24))
        return errprintf(err, "simulated guest: RAM differs from the RAM "
                              "the state was saved with");
    return 0;
}

uint8_t *hv_sim_ram(struct hv_vm *vm)
{
    return vm->ram;
}

void hv_sim_write(struct hv_vm *vm, uint64_t page, const void *content)
{
    uint8_t *dst = vm->ram + page * PAGE;

    if (content != NULL)
        memcpy(dst, content, PAGE);
    else
        memset(dst, 0, PAGE);
    mark_dirty(vm, page);
    pthread_mutex_lock(&vm->mu);
    vm->writes++;
    pthread_mutex_unlock(&vm->mu);
}

int hv_sim_writes(struct hv_vm *vm, uint64_t n, struct vmckpt_error *err)
{
    int rc = 0;

    pthread_mutex_lock(&vm->mu);
    if (vm->cfg.free_running) {
        errno = EINVAL;
        rc = errprintf(err, "simulated guest: its writer runs freely");
    } else if (vm->paused) {
        errno = EAGAIN;
        rc = errprintf(err, "simulated guest: paused");
    } else {
        vm->allowed += n;
        pthread_cond_broadcast(&vm->wake);
        while ((vm->allowed > 0 || vm->busy) && !vm->paused)
            pthread_cond_wait(&vm->idle, &vm->mu);
        if (vm->allowed > 0) {
            vm->allowed = 0;
            errno = EAGAIN;
            rc = errprintf(err, "simulated guest: paused while writing");
        }
    }
    pthread_mutex_unlock(&vm->mu);
    return rc;
}

void hv_sim_fail(struct hv_vm *vm, enum hv_sim_hook hook, unsigned skip)
{
    pthread_mutex_lock(&vm->mu);
    vm->fail_in[hook] = skip + 1;
    pthread_mutex_unlock(&vm->mu);
}

void hv_sim_stats(struct hv_vm *vm, struct hv_sim_stats *st)
{
    pthread_mutex_lock(&vm->mu);
    st->writes = vm->writes;
    memcpy(st->calls, vm->calls, sizeof(st->calls));
    memcpy(st->failed, vm->failed, sizeof(st->failed));
    st->paused = vm->paused;
    pthread_mutex_unlock(&vm->mu);
}

const struct hv_ops hv_sim_ops = {
    .name = "simulated",
    .probe = sim_probe,
    .vm_adopt = sim_adopt,
    .vm_release = sim_release,
    .vm_alive = sim_alive,
    .ram_map = sim_ram_map,
    .dirty_harvest = sim_dirty_harvest,
    .pause = sim_pause,
    .resume = sim_resume,
    .save_state = sim_save_state,
    .load_state = sim_load_state,
};
