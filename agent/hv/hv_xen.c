/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Xen back end: with hv_xen_state.c, the agent's only user of
 * libxenctrl, libxenforeignmemory and libxenstore (docs/xen.md).
 *
 *   adopt     the domain by name (xenstore); the pages the engine sees
 *             are its runs of populated pages (small holes included),
 *             one after another, mapped read-only through
 *             xenforeignmemory (a page that is not RAM reads as zeroes)
 *   tracking  log-dirty (HAP or shadow), harvested with SHADOW_OP_CLEAN
 *   pause     cooperative: the guest is asked to suspend (xenstore
 *             control/shutdown) and stops in its suspend hypercall, so an
 *             image restored later resumes through the guest's own resume
 *             path (event channels, xenstore, consoles reconnected)
 *   resume    xc_domain_resume, fast: the guest sees its suspend
 *             cancelled; a restored domain is unpaused instead
 *   state     hv_xen_state.c: our record of the ranges, the HVM params,
 *             the TSC info and the HVM context; restore
 *
 * A PV guest is refused for live checkpoints when the hypervisor cannot
 * track its writes (log-dirty on PV needs shadow paging, which Debian's
 * Xen build leaves out). */
#include "config.h"

#include "lib/util/clock.h"
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenforeignmemory.h>
#include <xenguest.h>
#include <xenstore.h>
#include <xen/hvm/params.h>

#include "hv.h"
#include "hv_xen.h"
#include "hv_xen_int.h"

static xentoollog_logger *quiet_logger(void)
{
    /* libxenctrl prints its own errors; ours say it better */
    return (xentoollog_logger *)xtl_createlogger_stdiostream(stderr,
                                                             XTL_CRITICAL, 0);
}

static void xen_probe(const struct conf *conf, struct hv_probe *out)
{
    xentoollog_logger *quiet;
    xc_interface *xch;
    xen_extraversion_t extra;
    xc_physinfo_t info;
    int ver;

    (void)conf;
    memset(out, 0, sizeof(*out));
    quiet = quiet_logger();
    xch = xc_interface_open(quiet, NULL, 0);
    if (xch == NULL) {
        int saved = errno;

        if (quiet != NULL)
            xtl_logger_destroy(quiet);
        errno = saved;
        snprintf(out->detail, sizeof(out->detail),
                 "not a Xen dom0 (cannot open the Xen control interface: "
                 "%s)",
                 strerror(errno));
        return;
    }
    ver = xc_version(xch, XENVER_version, NULL);
    memset(extra, 0, sizeof(extra));
    if (xc_version(xch, XENVER_extraversion, &extra) < 0)
        extra[0] = '\0';
    snprintf(out->version, sizeof(out->version), "%d.%d%.*s", ver >> 16,
             ver & 0xffff, (int)sizeof(extra), extra);
    memset(&info, 0, sizeof(info));
    if (xc_physinfo(xch, &info) == 0) {
        if (info.capabilities & XEN_SYSCTL_PHYSCAP_hap)
            snprintf(out->accel, sizeof(out->accel), "hap");
        else if (info.capabilities & XEN_SYSCTL_PHYSCAP_shadow)
            snprintf(out->accel, sizeof(out->accel), "shadow");
        else
            snprintf(out->detail, sizeof(out->detail),
                     "neither HAP nor shadow paging: no live checkpoint");
    }
    out->usable = 1;
    xc_interface_close(xch);
    if (quiet != NULL)
        xtl_logger_destroy(quiet);
}

/* The domain called 'name' (its xenstore name), or -1. */
static int64_t find_domain(struct xs_handle *xs, const char *name)
{
    unsigned n = 0, i;
    char **ids = xs_directory(xs, XBT_NULL, "/local/domain", &n);
    int64_t found = -1;

    for (i = 0; ids != NULL && i < n && found < 0; i++) {
        char path[64], *v;
        unsigned len;

        snprintf(path, sizeof(path), "/local/domain/%s/name", ids[i]);
        v = xs_read(xs, XBT_NULL, path, &len);
        if (v != NULL && strcmp(v, name) == 0)
            found = strtoll(ids[i], NULL, 10);
        free(v);
    }
    free(ids);
    return found;
}

int hvx_add_range(struct hv_vm *vm, uint64_t gfn, uint64_t count,
                  struct vmckpt_error *err)
{
    if (count == 0)
        return 0;
    if (vm->nranges == MAX_RANGES) {
        errno = E2BIG;
        return errprintf(err, "domain %s: more than %d memory ranges", vm->name,
                         MAX_RANGES);
    }
    vm->range[vm->nranges].gfn = gfn;
    vm->range[vm->nranges].count = count;
    vm->nranges++;
    vm->npages += count;
    return 0;
}

/* libxenctrl exports this (the save code's page-type query) without
 * declaring it in xenctrl.h; configure checks that it links. */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t dom, unsigned int num,
                          xen_pfn_t *arr);

/* Whether a page type (xc_get_pfn_type_batch) is guest RAM. */
static int populated(xen_pfn_t type)
{
    uint32_t t = (uint32_t)type & XEN_DOMCTL_PFINFO_LTAB_MASK;

    return t != XEN_DOMCTL_PFINFO_XTAB && t != XEN_DOMCTL_PFINFO_BROKEN &&
           t != XEN_DOMCTL_PFINFO_XALLOC;
}

/* Holes up to this many pages inside a run of populated pages belong to
 * the run: pages the guest maps Xen's pages over (its shared info, its
 * grant table frames) are populated before it boots and holes after, and
 * the ranges, hence the image's size, must not depend on when they were
 * found. A hole reads as zeroes. */
#define HOLE_PAGES 256

/* The pages a checkpoint covers: every populated page of the guest, found
 * by asking Xen the type of each page up to the largest page number, as
 * runs of consecutive pages (small holes included). */
static int find_ranges(struct hv_vm *vm, struct vmckpt_error *err)
{
    xen_pfn_t batch[1024];
    uint64_t g, run = 0, run_start = 0, hole = 0;
    unsigned i, n;

    for (g = 0; g < vm->p2m_size; g += n) {
        n = vm->p2m_size - g < 1024 ? (unsigned)(vm->p2m_size - g) : 1024;
        for (i = 0; i < n; i++)
            batch[i] = g + i;
        if (xc_get_pfn_type_batch(vm->xch, vm->domid, n, batch) < 0)
            return errprintf_errno(err, "domain %s: page types", vm->name);
        for (i = 0; i < n; i++) {
            if (populated(batch[i])) {
                if (run == 0)
                    run_start = g + i;
                run += hole + 1; /* a small hole joins the run */
                hole = 0;
            } else if (run > 0 && ++hole > HOLE_PAGES) {
                if (hvx_add_range(vm, run_start, run, err) < 0)
                    return -1;
                run = hole = 0;
            }
        }
    }
    if (run > 0 && hvx_add_range(vm, run_start, run, err) < 0)
        return -1;
    if (vm->npages == 0) {
        errno = ENOENT;
        return errprintf(err, "domain %s: no populated pages", vm->name);
    }
    return 0;
}

/* Map every range (read-only, or writable for a restore), in order. A
 * page that is not guest RAM (the type query says so: a hole, or a page
 * of Xen's own such as the shared info, which Xen writes without logging
 * it) is a page of zeroes of our own, marked in 'holes'. The view is
 * reserved first and the runs of RAM pages mapped over it, since a piece
 * of a foreign mapping cannot be replaced afterwards. */
int hvx_map_ranges(struct hv_vm *vm, int prot, struct vmckpt_error *err)
{
    xen_pfn_t *gfns = malloc(vm->npages * sizeof(*gfns));
    int *errs = calloc(vm->npages, sizeof(*errs));
    uint64_t i = 0, j, n;
    size_t k;
    int rc = -1;

#define HOLE(i) ((vm->holes[(i) / 64] >> ((i) % 64)) & 1)
    free(vm->holes);
    vm->holes = calloc((vm->npages + 63) / 64, sizeof(*vm->holes));
    if (gfns == NULL || errs == NULL || vm->holes == NULL) {
        errprintf_errno(err, "domain %s", vm->name);
        goto out;
    }
    for (k = 0; k < vm->nranges; k++)
        for (j = 0; j < vm->range[k].count; j++)
            gfns[i++] = vm->range[k].gfn + j;
    for (i = 0; i < vm->npages; i += n) {
        xen_pfn_t batch[1024];

        n = vm->npages - i < 1024 ? vm->npages - i : 1024;
        memcpy(batch, gfns + i, n * sizeof(*batch));
        if (xc_get_pfn_type_batch(vm->xch, vm->domid, (unsigned)n, batch) < 0) {
            errprintf_errno(err, "domain %s: page types", vm->name);
            goto out;
        }
        for (j = 0; j < n; j++)
            if (!populated(batch[j]))
                vm->holes[(i + j) / 64] |= 1ULL << ((i + j) % 64);
    }
    vm->map =
        mmap(NULL, vm->npages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (vm->map == MAP_FAILED) {
        vm->map = NULL;
        errprintf_errno(err, "domain %s: reserving %" PRIu64 " pages", vm->name,
                        vm->npages);
        goto out;
    }
    for (i = 0; i < vm->npages; i += n) {
        if (HOLE(i)) {
            n = 1;
            continue;
        }
        for (n = 1; i + n < vm->npages && !HOLE(i + n); n++)
            ;
        if (xenforeignmemory_map2(vm->fmem, vm->domid, vm->map + i * PAGE, prot,
                                  MAP_FIXED, n, gfns + i, errs + i) == NULL) {
            errprintf_errno(err, "domain %s: mapping pages 0x%" PRIx64 "..",
                            vm->name, gfns[i]);
            goto out;
        }
        for (j = i; j < i + n; j++)
            if (errs[j] != 0) {
                errno = -errs[j];
                errprintf_errno(err, "domain %s: mapping page 0x%" PRIx64,
                                vm->name, gfns[j]);
                goto out;
            }
    }
#undef HOLE
    rc = 0;
out:
    free(gfns);
    free(errs);
    return rc;
}

void hvx_release(struct hv_vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->map != NULL)
        xenforeignmemory_unmap(vm->fmem, vm->map, vm->npages);
    free(vm->holes);
    if (vm->dirty != NULL)
        xc__hypercall_buffer_free_pages(vm->xch, &vm->hbuf, vm->hbuf_pages);
    if (vm->fmem != NULL)
        xenforeignmemory_close(vm->fmem);
    if (vm->xs != NULL)
        xs_close(vm->xs);
    if (vm->xch != NULL)
        xc_interface_close(vm->xch);
    if (vm->log != NULL)
        xtl_logger_destroy(vm->log);
    free(vm);
}

/* Log-dirty on; with 'fresh', restarted (earlier writes forgotten). */
static int start_tracking(struct hv_vm *vm, int fresh, struct vmckpt_error *err)
{
    vm->hbuf_pages = (int)((vm->p2m_size / 8 + PAGE - 1) / PAGE);
    vm->dirty =
        xc__hypercall_buffer_alloc_pages(vm->xch, &vm->hbuf, vm->hbuf_pages);
    if (vm->dirty == NULL)
        return errprintf_errno(err, "domain %s: a log-dirty bitmap", vm->name);
    if (fresh)
        (void)xc_shadow_control(vm->xch, vm->domid, XEN_DOMCTL_SHADOW_OP_OFF,
                                NULL, 0);
    if (xc_shadow_control(vm->xch, vm->domid,
                          XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) < 0) {
        int e = errno;

        if (!fresh && (e == EINVAL || e == EBUSY || e == EEXIST))
            return 0; /* left on by an earlier owner */
        errno = e;
        if (e == EOPNOTSUPP && !vm->hvm)
            return errprintf(err,
                             "domain %s is a PV guest and this hypervisor "
                             "cannot track a PV guest's writes (log-dirty: "
                             "%s; it needs shadow paging, which this Xen "
                             "was built without): no live checkpoint; use a "
                             "PVH or HVM guest, or stop-and-save",
                             vm->name, strerror(e));
        return errprintf_errno(err, "domain %s: log-dirty", vm->name);
    }
    return 0;
}

struct hv_vm *hvx_adopt(const struct hv_vm_spec *spec, int track,
                        struct vmckpt_error *err)
{
    struct hv_vm *vm = calloc(1, sizeof(*vm));
    xc_domaininfo_t info;
    int64_t domid;

    if (vm == NULL) {
        errprintf_errno(err, "Xen back end");
        return NULL;
    }
    snprintf(vm->name, sizeof(vm->name), "%s", spec->name);
    vm->log = quiet_logger();
    vm->xch = xc_interface_open(vm->log, NULL, 0);
    vm->fmem = xenforeignmemory_open(vm->log, 0);
    vm->xs = xs_open(0);
    if (vm->xch == NULL || vm->fmem == NULL || vm->xs == NULL) {
        errprintf_errno(err, "domain %s: cannot open the Xen %s (not a dom0?)",
                        spec->name,
                        vm->xch == NULL    ? "control interface"
                        : vm->fmem == NULL ? "foreign memory interface"
                                           : "store");
        goto fail;
    }
    domid = find_domain(vm->xs, spec->name);
    if (domid <= 0) {
        errno = ENOENT;
        errprintf(err, "no domain named %s (see 'xl list')", spec->name);
        goto fail;
    }
    vm->domid = (uint32_t)domid;
    if (xc_domain_getinfolist(vm->xch, vm->domid, 1, &info) != 1 ||
        info.domain != vm->domid) {
        errprintf_errno(err, "domain %s: its info", spec->name);
        goto fail;
    }
    vm->hvm = (info.flags & XEN_DOMINF_hvm_guest) != 0;
    {
        xen_pfn_t max;

        if (xc_domain_maximum_gpfn(vm->xch, vm->domid, &max) < 0) {
            errprintf_errno(err, "domain %s: its largest page number",
                            spec->name);
            goto fail;
        }
        vm->p2m_size = (uint64_t)max + 1;
    }
    if (track == -1 && spec->ram_path != NULL) {
        /* the agent's restore: load_state brings the image in */
        snprintf(vm->ram_path, sizeof(vm->ram_path), "%s", spec->ram_path);
        track = RESTORE_TARGET;
    }
    if (track >= 0 && start_tracking(vm, track, err) < 0)
        goto fail;
    vm->tracking = track;
    /* a restore target is mapped by the restore, with the image's ranges */
    if (track != RESTORE_TARGET &&
        (find_ranges(vm, err) < 0 || hvx_map_ranges(vm, PROT_READ, err) < 0))
        goto fail;
    return vm;
fail:
    hvx_release(vm);
    return NULL;
}

static int xen_ram_map(struct hv_vm *vm, const uint8_t **base, uint64_t *len,
                       struct vmckpt_error *err)
{
    (void)err;
    *base = vm->map;
    *len = vm->npages * PAGE;
    return 0;
}

static int64_t xen_harvest(struct hv_vm *vm, uint64_t *bitmap,
                           struct vmckpt_error *err)
{
    uint64_t i = 0, j, n = 0;
    size_t k;

    if (vm->dirty == NULL) {
        errno = EINVAL;
        return errprintf(err, "domain %s: not tracking dirty pages", vm->name);
    }
    if (xc_logdirty_control(vm->xch, vm->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
                            &vm->hbuf, vm->p2m_size, 0, NULL) < 0)
        return errprintf_errno(err, "domain %s: reading log-dirty", vm->name);
    /* GFN bits to the engine's page indices, range by range */
    for (k = 0; k < vm->nranges; k++) {
        for (j = 0; j < vm->range[k].count; j++, i++) {
            uint64_t g = vm->range[k].gfn + j;
            const unsigned long bits = 8 * sizeof(unsigned long);

            if (g < vm->p2m_size && (vm->dirty[g / bits] >> (g % bits)) & 1) {
                bitmap[i / 64] |= 1ULL << (i % 64);
                n++;
            }
        }
    }
    return (int64_t)n;
}

/* The domain's shutdown code, or -1 while it is not shut down; -2 if it
 * is gone. */
static int shutdown_code(struct hv_vm *vm, int *dying)
{
    xc_domaininfo_t info;

    if (xc_domain_getinfolist(vm->xch, vm->domid, 1, &info) != 1 ||
        info.domain != vm->domid)
        return -2;
    if (dying != NULL)
        *dying = (info.flags & XEN_DOMINF_dying) != 0;
    if (!(info.flags & XEN_DOMINF_shutdown))
        return -1;
    return (int)((info.flags >> XEN_DOMINF_shutdownshift) &
                 XEN_DOMINF_shutdownmask);
}

/* Ask the guest to suspend and wait until it stopped in its suspend
 * hypercall (Xen then holds it). */
int hvx_pause(struct hv_vm *vm, struct vmckpt_error *err)
{
    char path[80];
    uint64_t t0 = clock_mono_ms();
    int code;

    snprintf(path, sizeof(path), "/local/domain/%u/control/shutdown",
             vm->domid);
    if (!xs_write(vm->xs, XBT_NULL, path, "suspend", 7))
        return errprintf_errno(err, "domain %s: asking it to suspend",
                               vm->name);
    for (;;) {
        code = shutdown_code(vm, NULL);
        if (code == -2)
            return errprintf_errno(err, "domain %s: its info", vm->name);
        if (code == SHUTDOWN_suspend)
            return 0;
        if (code >= 0) {
            errno = ESRCH;
            return errprintf(err,
                             "domain %s shut down (reason %d) instead "
                             "of suspending",
                             vm->name, code);
        }
        if (clock_mono_ms() - t0 > SUSPEND_MS) {
            (void)xs_rm(vm->xs, XBT_NULL, path);
            errno = ETIMEDOUT;
            return errprintf(err,
                             "domain %s did not suspend within %d ms (a "
                             "guest without Xen suspend support cannot be "
                             "checkpointed live)",
                             vm->name, SUSPEND_MS);
        }
        usleep(500);
    }
}

/* A restored domain is unpaused: its suspend hypercall returns 0 and the
 * guest runs its resume path. Tracking starts and the image's ranges are
 * mapped first, while it is still paused, as for a domain adopted before
 * it boots (not while the resuming guest maps its shared info and grant
 * table back). The same pages as the image, so later epochs match the
 * stored ones. */
static int resume_restored(struct hv_vm *vm, struct vmckpt_error *err)
{
    if (vm->map == NULL) {
        if (start_tracking(vm, 1, err) < 0 ||
            hvx_map_ranges(vm, PROT_READ, err) < 0)
            return -1;
        vm->tracking = 1;
    }
    if (xc_domain_unpause(vm->xch, vm->domid) < 0)
        return errprintf_errno(err, "domain %s: unpause", vm->name);
    vm->restored = 0;
    return 0;
}

int hvx_resume(struct hv_vm *vm, struct vmckpt_error *err)
{
    int code;

    if (vm->restored)
        return resume_restored(vm, err);
    code = shutdown_code(vm, NULL);
    if (code == -2) {
        errno = ESRCH;
        return errprintf(err, "domain %s is gone", vm->name);
    }
    /* only a domain stopped in its suspend hypercall is ours to resume
     * (an agent taking over a domain finds it running, or suspended by an
     * earlier agent's cut) */
    if (code != SHUTDOWN_suspend)
        return 0;
    if (xc_domain_resume(vm->xch, vm->domid, 1) < 0)
        return errprintf_errno(err, "domain %s: resume", vm->name);
    /* xenstored saw the domain shut down (suspended): tell it that it runs
     * again, or the toolstack's next suspend request goes unanswered */
    if (!xs_resume_domain(vm->xs, vm->domid))
        return errprintf_errno(err, "domain %s: xenstore resume", vm->name);
    return 0;
}

/* 1 while the domain exists and has not shut down other than to
 * suspend. */
static int xen_alive(struct hv_vm *vm)
{
    int dying = 0, code = shutdown_code(vm, &dying);

    return code != -2 && !dying && (code == -1 || code == SHUTDOWN_suspend);
}

int hv_xen_describe(struct hv_vm *vm, FILE *out)
{
    size_t k;

    fprintf(out, "domain %s: id %u, %s, %" PRIu64 " pages in %zu ranges\n",
            vm->name, vm->domid, vm->hvm ? "HVM/PVH" : "PV", vm->npages,
            vm->nranges);
    for (k = 0; k < vm->nranges; k++)
        fprintf(out, "  gfn 0x%" PRIx64 " - 0x%" PRIx64 "\n", vm->range[k].gfn,
                vm->range[k].gfn + vm->range[k].count - 1);
    return 0;
}

const struct hv_ops hv_xen_ops = {
    .name = "xen",
    .probe = xen_probe,
    .vm_adopt = hvx_adopt,
    .vm_release = hvx_release,
    .ram_map = xen_ram_map,
    .dirty_harvest = xen_harvest,
    .pause = hvx_pause,
    .resume = hvx_resume,
    .save_state = hvx_save_state,
    .load_state = hvx_load_state,
    .vm_alive = xen_alive,
};
