/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The Xen back end's image side: the state record a cut saves (ranges,
 * HVM params, TSC info, HVM context; docs/xen.md), the restore of an
 * epoch into a domain built paused from the guest's configuration, and
 * libxenguest's own live save, the baseline of bench/xen-pause. */
#include "config.h"

#include "lib/util/clock.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenguest.h>
#include <xen/hvm/params.h>

#include "hv_xen.h"
#include "hv_xen_int.h"

/* The HVM params a restore needs, saved with the state. */
static const uint32_t saved_params[] = {
    HVM_PARAM_STORE_PFN,
    HVM_PARAM_STORE_EVTCHN,
    HVM_PARAM_CONSOLE_PFN,
    HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_IOREQ_PFN,
    HVM_PARAM_BUFIOREQ_PFN,
    HVM_PARAM_PAGING_RING_PFN,
    HVM_PARAM_MONITOR_RING_PFN,
    HVM_PARAM_SHARING_RING_PFN,
    HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_TIMER_MODE,
    HVM_PARAM_IDENT_PT,
    HVM_PARAM_VM86_TSS_SIZED,
    HVM_PARAM_PAE_ENABLED,
    HVM_PARAM_NESTEDHVM,
    HVM_PARAM_IOREQ_SERVER_PFN,
    HVM_PARAM_NR_IOREQ_SERVER_PAGES,
    HVM_PARAM_X87_FIP_WIDTH,
    HVM_PARAM_MCA_CAP,
};

static int put(int fd, const void *p, size_t len, int64_t *off)
{
    if (pwrite(fd, p, len, *off) != (ssize_t)len)
        return -1;
    *off += (int64_t)len;
    return 0;
}

static int put32(int fd, uint32_t v, int64_t *off)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};

    return put(fd, b, 4, off);
}

static int put64(int fd, uint64_t v, int64_t *off)
{
    return put32(fd, (uint32_t)v, off) < 0 ||
                   put32(fd, (uint32_t)(v >> 32), off) < 0
               ? -1
               : 0;
}

/* The state record (docs/xen.md): magic, version, ranges, params, TSC
 * info, HVM context; integers little endian. */
int64_t hvx_save_state(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    const size_t np = sizeof(saved_params) / sizeof(saved_params[0]);
    uint32_t tsc_mode = 0, khz = 0, incarnation = 0;
    uint64_t nsec = 0, v;
    uint8_t *ctx = NULL;
    int64_t off = 0;
    int len;
    size_t k;

    if (!vm->hvm) {
        errno = ENOTSUP;
        return errprintf(err, "domain %s: saving a PV guest's state", vm->name);
    }
    len = xc_domain_hvm_getcontext(vm->xch, vm->domid, NULL, 0);
    if (len <= 0 || (ctx = malloc((size_t)len)) == NULL ||
        (len = xc_domain_hvm_getcontext(vm->xch, vm->domid, ctx,
                                        (uint32_t)len)) <= 0) {
        free(ctx);
        return errprintf_errno(err, "domain %s: HVM context", vm->name);
    }
    if (xc_domain_get_tsc_info(vm->xch, vm->domid, &tsc_mode, &nsec, &khz,
                               &incarnation) < 0) {
        free(ctx);
        return errprintf_errno(err, "domain %s: TSC info", vm->name);
    }
    if (put(fd, STATE_MAGIC, 8, &off) < 0 ||
        put32(fd, STATE_VERSION, &off) < 0 ||
        put32(fd, (uint32_t)vm->nranges, &off) < 0)
        goto io;
    for (k = 0; k < vm->nranges; k++)
        if (put64(fd, vm->range[k].gfn, &off) < 0 ||
            put64(fd, vm->range[k].count, &off) < 0)
            goto io;
    if (put32(fd, (uint32_t)np, &off) < 0)
        goto io;
    for (k = 0; k < np; k++) {
        v = 0;
        (void)xc_hvm_param_get(vm->xch, vm->domid, saved_params[k], &v);
        if (put32(fd, saved_params[k], &off) < 0 || put64(fd, v, &off) < 0)
            goto io;
    }
    if (put32(fd, tsc_mode, &off) < 0 || put64(fd, nsec, &off) < 0 ||
        put32(fd, khz, &off) < 0 || put32(fd, incarnation, &off) < 0 ||
        put32(fd, (uint32_t)len, &off) < 0 ||
        put(fd, ctx, (size_t)len, &off) < 0)
        goto io;
    free(ctx);
    return off;
io:
    free(ctx);
    return errprintf_errno(err, "domain %s: writing its state", vm->name);
}

/* A state record, parsed (pointers into the record's bytes). */
struct xstate {
    uint32_t nranges, nparams;
    struct range range[MAX_RANGES];
    const uint8_t *params; /* nparams x (u32 index, u64 value) */
    uint32_t tsc_mode, khz, incarnation;
    uint64_t nsec;
    const uint8_t *ctx;
    uint32_t ctx_len;
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int parse_state(const uint8_t *b, size_t len, struct xstate *x,
                       struct vmckpt_error *err)
{
    size_t off = 16, k;

    errno = EBADMSG;
    if (len < 16 || memcmp(b, STATE_MAGIC, 8) != 0 ||
        get32(b + 8) != STATE_VERSION)
        return errprintf(err, "not a Xen state record of this version");
    x->nranges = get32(b + 12);
    if (x->nranges == 0 || x->nranges > MAX_RANGES ||
        len < off + 16 * (size_t)x->nranges + 4)
        return errprintf(err, "Xen state record: bad ranges");
    for (k = 0; k < x->nranges; k++, off += 16) {
        x->range[k].gfn = get64(b + off);
        x->range[k].count = get64(b + off + 8);
    }
    x->nparams = get32(b + off);
    off += 4;
    if (x->nparams > 64 || len < off + 12 * (size_t)x->nparams + 24)
        return errprintf(err, "Xen state record: bad params");
    x->params = b + off;
    off += 12 * (size_t)x->nparams;
    x->tsc_mode = get32(b + off);
    x->nsec = get64(b + off + 4);
    x->khz = get32(b + off + 12);
    x->incarnation = get32(b + off + 16);
    x->ctx_len = get32(b + off + 20);
    off += 24;
    if (x->ctx_len == 0 || len != off + x->ctx_len)
        return errprintf(err, "Xen state record: bad HVM context length");
    x->ctx = b + off;
    return 0;
}

static uint64_t state_param(const struct xstate *x, uint32_t index, int *found)
{
    uint32_t k;

    for (k = 0; k < x->nparams; k++)
        if (get32(x->params + 12 * k) == index) {
            *found = 1;
            return get64(x->params + 12 * k + 4);
        }
    *found = 0;
    return 0;
}

/* Restore into domain 'name', built paused from the same configuration
 * as the checkpointed one (xl create -p): its pages take the image's
 * ('ram_fd': the pages of the ranges end to end), its vCPUs, timers and
 * TSC the state's; it stays paused, stopped in the suspend hypercall, and
 * resumes through the guest's own resume path when unpaused. */
/* The engine's index of page 'gfn' of the domain, or -1. */
static int64_t page_index(const struct hv_vm *vm, uint64_t gfn)
{
    uint64_t base = 0;
    size_t k;

    for (k = 0; k < vm->nranges; k++) {
        if (gfn >= vm->range[k].gfn &&
            gfn < vm->range[k].gfn + vm->range[k].count)
            return (int64_t)(base + gfn - vm->range[k].gfn);
        base += vm->range[k].count;
    }
    return -1;
}

/* The special pages a restore leaves as the new domain has them. */
static const uint32_t keep_params[] = {
    HVM_PARAM_STORE_PFN,        HVM_PARAM_CONSOLE_PFN,
    HVM_PARAM_IOREQ_PFN,        HVM_PARAM_BUFIOREQ_PFN,
    HVM_PARAM_PAGING_RING_PFN,  HVM_PARAM_MONITOR_RING_PFN,
    HVM_PARAM_SHARING_RING_PFN,
};

static int restore_into(struct hv_vm *vm, int ram_fd, const uint8_t *state,
                        size_t state_len, struct vmckpt_error *err)
{
    const size_t nparams = sizeof(keep_params) / sizeof(keep_params[0]);
    uint8_t keep[sizeof(keep_params) / sizeof(keep_params[0])][PAGE];
    uint64_t keep_at[sizeof(keep_params) / sizeof(keep_params[0])];
    size_t nkeep;
    const char *name = vm->name;
    struct xstate x;
    uint64_t i, v, cur;
    size_t k;
    int found, rc = -1;
    static const uint32_t must_match[] = {HVM_PARAM_STORE_PFN,
                                          HVM_PARAM_CONSOLE_PFN};

    if (parse_state(state, state_len, &x, err) < 0)
        return -1;
    errno = EINVAL;
    if (!vm->hvm) {
        errprintf(err, "domain %s is not a PVH/HVM domain", name);
        goto out;
    }
    /* the image's pages where the image had them: a domain built from
     * the same configuration has them all, but for holes (the image's
     * zeroes there, checked below); a page the guest had mapped something
     * else over, such as its shared info, stays RAM here until the guest
     * maps it again */
    for (k = 0; k < x.nranges; k++)
        if (hvx_add_range(vm, x.range[k].gfn, x.range[k].count, err) < 0)
            goto out;
    if (hvx_map_ranges(vm, PROT_READ | PROT_WRITE, err) < 0) {
        size_t n = strlen(err->text);

        snprintf(err->text + n, sizeof(err->text) - n,
                 "; build it from the checkpointed guest's configuration");
        goto out;
    }
    for (k = 0; k < sizeof(must_match) / sizeof(must_match[0]); k++) {
        v = state_param(&x, must_match[k], &found);
        if (found &&
            (xc_hvm_param_get(vm->xch, vm->domid, must_match[k], &cur) < 0 ||
             cur != v)) {
            errprintf(err,
                      "domain %s: its special page %u is at 0x%" PRIx64
                      ", the image's at 0x%" PRIx64,
                      name, must_match[k], cur, v);
            goto out;
        }
    }
    /* the rings the new domain shares with dom0 (xenstore, console) and
     * with Xen (ioreq, vm_event) stay as the new domain has them: the
     * daemons serving it are connected to those, and the image's indices
     * are another connection's (Xen's own restore clears these pages) */
    nkeep = 0;
    for (k = 0; k < nparams; k++) {
        int64_t at;

        if (xc_hvm_param_get(vm->xch, vm->domid, keep_params[k], &cur) < 0 ||
            cur == 0 || (at = page_index(vm, cur)) < 0)
            continue;
        keep_at[nkeep] = (uint64_t)at;
        memcpy(keep[nkeep++], vm->map + (uint64_t)at * PAGE, PAGE);
    }
    /* every other page, zero pages included: the new domain holds a
     * freshly loaded kernel there */
    for (i = 0; i < vm->npages; i += 256) {
        uint64_t n = vm->npages - i < 256 ? vm->npages - i : 256;
        ssize_t got =
            pread(ram_fd, vm->map + i * PAGE, n * PAGE, (off_t)(i * PAGE));

        if (got != (ssize_t)(n * PAGE)) {
            if (got >= 0)
                errno = EIO;
            errprintf_errno(err, "domain %s: the image's page %" PRIu64, name,
                            i);
            goto out;
        }
    }
    for (k = 0; k < nkeep; k++)
        memcpy(vm->map + keep_at[k] * PAGE, keep[k], PAGE);
    /* a page the new domain lacks was a hole in the image too (zeroes),
     * or the configuration differs */
    for (i = 0; i < vm->npages; i++) {
        const uint8_t *pg = vm->map + i * PAGE;

        if (!((vm->holes[i / 64] >> (i % 64)) & 1) ||
            (pg[0] == 0 && memcmp(pg, pg + 1, PAGE - 1) == 0))
            continue;
        errno = EINVAL;
        errprintf(err,
                  "domain %s has no page where the image has data (the "
                  "engine's page %" PRIu64 "); build it from the "
                  "checkpointed guest's configuration",
                  name, i);
        goto out;
    }
    if (xc_domain_set_tsc_info(vm->xch, vm->domid, x.tsc_mode, x.nsec, x.khz,
                               x.incarnation) < 0) {
        errprintf_errno(err, "domain %s: TSC info", name);
        goto out;
    }
    v = state_param(&x, HVM_PARAM_CALLBACK_IRQ, &found);
    if (found &&
        xc_hvm_param_set(vm->xch, vm->domid, HVM_PARAM_CALLBACK_IRQ, v) < 0) {
        errprintf_errno(err, "domain %s: its event callback", name);
        goto out;
    }
    if (xc_domain_hvm_setcontext(vm->xch, vm->domid, (uint8_t *)x.ctx,
                                 x.ctx_len) < 0) {
        errprintf_errno(err, "domain %s: HVM context", name);
        goto out;
    }
    rc = 0;
out:
    /* the writable mapping goes; the ranges stay (the image's) */
    if (vm->map != NULL)
        xenforeignmemory_unmap(vm->fmem, vm->map, vm->npages);
    vm->map = NULL;
    return rc;
}

int hv_xen_restore(const char *name, int ram_fd, const uint8_t *state,
                   size_t state_len, struct vmckpt_error *err)
{
    struct hv_vm_spec spec = {.name = name};
    struct hv_vm *vm = hvx_adopt(&spec, RESTORE_TARGET, err);
    int rc;

    if (vm == NULL)
        return -1;
    rc = restore_into(vm, ram_fd, state, state_len, err);
    hvx_release(vm);
    return rc;
}

/* The agent's restore: the state record from 'fd', the pages from the
 * RAM file named at adoption; the domain stays paused until resume. */
int hvx_load_state(struct hv_vm *vm, int fd, struct vmckpt_error *err)
{
    struct stat st;
    uint8_t *buf;
    int ram_fd, rc;

    if (vm->ram_path[0] == '\0' || vm->nranges != 0) {
        errno = EINVAL;
        return errprintf(err, "domain %s was not built to restore into",
                         vm->name);
    }
    if (fstat(fd, &st) < 0)
        return errprintf_errno(err, "domain %s: the state record", vm->name);
    if (st.st_size <= 0 || st.st_size > (64 << 20)) {
        errno = EBADMSG;
        return errprintf(err, "domain %s: a state record of %lld bytes",
                         vm->name, (long long)st.st_size);
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL)
        return errprintf_errno(err, "domain %s: the state record", vm->name);
    if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        free(buf);
        errno = EIO;
        return errprintf_errno(err, "domain %s: reading its state", vm->name);
    }
    ram_fd = open(vm->ram_path, O_RDONLY | O_CLOEXEC);
    if (ram_fd < 0) {
        free(buf);
        return errprintf_errno(err, "domain %s: %s", vm->name, vm->ram_path);
    }
    rc = restore_into(vm, ram_fd, buf, (size_t)st.st_size, err);
    close(ram_fd);
    free(buf);
    if (rc == 0)
        vm->restored = 1;
    return rc;
}

/* ---- libxenguest's own live save, the baseline of bench/xen-pause ---- */

struct lx_save {
    struct hv_vm *vm;
    uint64_t t_pause, t_resume; /* monotonic us */
    struct vmckpt_error err;
    int failed;
};

/* The same cooperative suspend as our cut (1: suspended). */
static int lx_suspend(void *data)
{
    struct lx_save *l = data;

    l->t_pause = clock_mono_ns() / 1000;
    if (hvx_pause(l->vm, &l->err) < 0) {
        l->failed = 1;
        return 0;
    }
    return 1;
}

/* After the last record: the guest goes on (1: done). Called by
 * libxenguest for checkpointed streams, by us for a plain one. */
static int lx_postcopy(void *data)
{
    struct lx_save *l = data;

    if (hvx_resume(l->vm, &l->err) < 0) {
        l->failed = 1;
        return 0;
    }
    l->t_resume = clock_mono_ns() / 1000;
    return 1;
}

/* A PVH guest has no device model whose log-dirty to switch. */
static int lx_qemu_logdirty(uint32_t domid, unsigned enable, void *data)
{
    (void)domid;
    (void)enable;
    (void)data;
    return 0;
}

int hv_xen_libxc_save(const char *name, int fd, uint64_t *pause_us,
                      uint64_t *total_ms, struct vmckpt_error *err)
{
    struct hv_vm_spec spec = {.name = name};
    struct lx_save l = {.failed = 0};
    struct save_callbacks cb = {.suspend = lx_suspend,
                                .postcopy = lx_postcopy,
                                .switch_qemu_logdirty = lx_qemu_logdirty,
                                .data = &l};
    uint64_t t0 = clock_mono_ns() / 1000;
    int rc;

    /* only to find and suspend the domain: libxenguest tracks by itself */
    l.vm = hvx_adopt(&spec, -1, err);
    if (l.vm == NULL)
        return -1;
    rc = xc_domain_save(l.vm->xch, fd, l.vm->domid, XCFLAGS_LIVE, &cb,
                        XC_STREAM_PLAIN, -1);
    if (rc != 0 || l.failed) {
        if (l.failed)
            *err = l.err;
        else
            errprintf_errno(err, "domain %s: xc_domain_save", name);
        if (l.t_pause != 0 && l.t_resume == 0)
            (void)xc_domain_resume(l.vm->xch, l.vm->domid, 1);
        hvx_release(l.vm);
        return -1;
    }
    /* a plain stream ends without the postcopy callback (that is for
     * checkpointed streams): the guest goes on here, as after xl save -c */
    if (l.t_resume == 0 && lx_postcopy(&l) != 1) {
        *err = l.err;
        hvx_release(l.vm);
        return -1;
    }
    *pause_us = l.t_resume - l.t_pause;
    *total_ms = (clock_mono_ns() / 1000 - t0) / 1000;
    hvx_release(l.vm);
    return 0;
}
