/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Xen back end: the agent's only user of libxenctrl, libxenforeignmemory
 * and libxenstore (docs/xen.md).
 *
 *   adopt     the domain by name (xenstore), its memory map (e820) and
 *             special pages (HVM params): the pages the engine sees are
 *             those ranges, one after another, mapped read-only through
 *             xenforeignmemory (a page that is not populated reads as
 *             zeroes)
 *   tracking  log-dirty (HAP or shadow), harvested with SHADOW_OP_CLEAN
 *   pause     cooperative: the guest is asked to suspend (xenstore
 *             control/shutdown) and stops in its suspend hypercall, so an
 *             image restored later resumes through the guest's own resume
 *             path (event channels, xenstore, consoles reconnected)
 *   resume    xc_domain_resume, fast: the guest sees its suspend cancelled
 *   state     our record of the ranges, the HVM params, the TSC info and
 *             the HVM context (vCPUs, LAPICs, platform timers)
 *
 * A PV guest is refused for live checkpoints when the hypervisor cannot
 * track its writes (log-dirty on PV needs shadow paging, which Debian's
 * Xen build leaves out). */
#include "config.h"

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

#define PAGE          4096
#define MAX_RANGES    32
#define SUSPEND_MS    30000
#define STATE_MAGIC   "VMCKXEN1"
#define STATE_VERSION 1
/* vm_adopt's 'track' for a domain a restore writes into */
#define RESTORE_TARGET -2

struct range {
    uint64_t gfn, count;
};

struct hv_vm {
    xc_interface *xch;
    xentoollog_logger *log;
    xenforeignmemory_handle *fmem;
    struct xs_handle *xs;
    uint32_t domid;
    char name[65];
    int hvm;
    size_t nranges;
    struct range range[MAX_RANGES];
    uint64_t npages;
    uint8_t *map;      /* npages pages, the ranges one after another */
    uint64_t p2m_size; /* page numbers 0..p2m_size-1 (largest + 1) */
    xc_hypercall_buffer_t hbuf;
    unsigned long *dirty; /* hbuf's pages */
    int hbuf_pages;
    int tracking;
};

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

static int add_range(struct hv_vm *vm, uint64_t gfn, uint64_t count,
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

/* The pages a checkpoint covers: every populated page of the guest, found
 * by asking Xen the type of each page up to the largest page number, as
 * runs of consecutive pages. */
static int find_ranges(struct hv_vm *vm, struct vmckpt_error *err)
{
    xen_pfn_t batch[1024];
    uint64_t g, run = 0, run_start = 0;
    unsigned i, n;

    for (g = 0; g < vm->p2m_size; g += n) {
        n = vm->p2m_size - g < 1024 ? (unsigned)(vm->p2m_size - g) : 1024;
        for (i = 0; i < n; i++)
            batch[i] = g + i;
        if (xc_get_pfn_type_batch(vm->xch, vm->domid, n, batch) < 0)
            return errprintf_errno(err, "domain %s: page types", vm->name);
        for (i = 0; i < n; i++) {
            uint32_t t = (uint32_t)batch[i] & XEN_DOMCTL_PFINFO_LTAB_MASK;
            int populated = t != XEN_DOMCTL_PFINFO_XTAB &&
                            t != XEN_DOMCTL_PFINFO_BROKEN &&
                            t != XEN_DOMCTL_PFINFO_XALLOC;

            if (populated) {
                if (run == 0)
                    run_start = g + i;
                run++;
            } else if (run > 0) {
                if (add_range(vm, run_start, run, err) < 0)
                    return -1;
                run = 0;
            }
        }
    }
    if (run > 0 && add_range(vm, run_start, run, err) < 0)
        return -1;
    if (vm->npages == 0) {
        errno = ENOENT;
        return errprintf(err, "domain %s: no populated pages", vm->name);
    }
    return 0;
}

/* Map every range (read-only, or writable for a restore), in order; a
 * page Xen could not map (not populated) is replaced by a page of zeroes. */
static int map_ranges(struct hv_vm *vm, int prot, struct vmckpt_error *err)
{
    xen_pfn_t *gfns = malloc(vm->npages * sizeof(*gfns));
    int *errs = calloc(vm->npages, sizeof(*errs));
    uint64_t i = 0, j;
    size_t k;
    int rc = -1;

    if (gfns == NULL || errs == NULL) {
        errprintf_errno(err, "domain %s", vm->name);
        goto out;
    }
    for (k = 0; k < vm->nranges; k++)
        for (j = 0; j < vm->range[k].count; j++)
            gfns[i++] = vm->range[k].gfn + j;
    vm->map =
        xenforeignmemory_map(vm->fmem, vm->domid, prot, vm->npages, gfns, errs);
    if (vm->map == NULL) {
        errprintf_errno(err, "domain %s: mapping %" PRIu64 " pages", vm->name,
                        vm->npages);
        goto out;
    }
    for (i = 0; i < vm->npages; i++) {
        if (errs[i] == 0)
            continue;
        if (prot & PROT_WRITE) {
            /* a restore: every page of the image needs a page here */
            errno = -errs[i];
            errprintf_errno(err, "domain %s has no page 0x%" PRIx64, vm->name,
                            gfns[i]);
            goto out;
        }
        if (mmap(vm->map + i * PAGE, PAGE, prot,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                 0) == MAP_FAILED) {
            errprintf_errno(err, "domain %s: a hole at page %" PRIu64, vm->name,
                            i);
            goto out;
        }
    }
    rc = 0;
out:
    free(gfns);
    free(errs);
    return rc;
}

static void xen_release(struct hv_vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->map != NULL)
        xenforeignmemory_unmap(vm->fmem, vm->map, vm->npages);
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

static struct hv_vm *xen_adopt(const struct hv_vm_spec *spec, int track,
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
    if (track >= 0 && start_tracking(vm, track, err) < 0)
        goto fail;
    vm->tracking = track;
    /* a restore target is mapped by the restore, with the image's ranges */
    if (track != RESTORE_TARGET &&
        (find_ranges(vm, err) < 0 || map_ranges(vm, PROT_READ, err) < 0))
        goto fail;
    return vm;
fail:
    xen_release(vm);
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

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Ask the guest to suspend and wait until it stopped in its suspend
 * hypercall (Xen then holds it). */
static int xen_pause(struct hv_vm *vm, struct vmckpt_error *err)
{
    char path[80];
    xc_domaininfo_t info;
    uint64_t t0 = mono_ms();

    snprintf(path, sizeof(path), "/local/domain/%u/control/shutdown",
             vm->domid);
    if (!xs_write(vm->xs, XBT_NULL, path, "suspend", 7))
        return errprintf_errno(err, "domain %s: asking it to suspend",
                               vm->name);
    for (;;) {
        if (xc_domain_getinfolist(vm->xch, vm->domid, 1, &info) != 1 ||
            info.domain != vm->domid)
            return errprintf_errno(err, "domain %s: its info", vm->name);
        if (info.flags & XEN_DOMINF_shutdown) {
            unsigned code = (info.flags >> XEN_DOMINF_shutdownshift) &
                            XEN_DOMINF_shutdownmask;

            if (code == SHUTDOWN_suspend)
                return 0;
            errno = ESRCH;
            return errprintf(err,
                             "domain %s shut down (reason %u) instead "
                             "of suspending",
                             vm->name, code);
        }
        if (mono_ms() - t0 > SUSPEND_MS) {
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

static int xen_resume(struct hv_vm *vm, struct vmckpt_error *err)
{
    if (xc_domain_resume(vm->xch, vm->domid, 1) < 0)
        return errprintf_errno(err, "domain %s: resume", vm->name);
    /* xenstored saw the domain shut down (suspended): tell it that it runs
     * again, or the toolstack's next suspend request goes unanswered */
    if (!xs_resume_domain(vm->xs, vm->domid))
        return errprintf_errno(err, "domain %s: xenstore resume", vm->name);
    return 0;
}

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
static int64_t xen_save_state(struct hv_vm *vm, int fd,
                              struct vmckpt_error *err)
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
int hv_xen_restore(const char *name, int ram_fd, const uint8_t *state,
                   size_t state_len, struct vmckpt_error *err)
{
    struct hv_vm_spec spec = {.name = name};
    struct hv_vm *vm;
    struct xstate x;
    uint64_t i, v, cur;
    size_t k;
    int found, rc = -1;
    static const uint32_t must_match[] = {HVM_PARAM_STORE_PFN,
                                          HVM_PARAM_CONSOLE_PFN};

    if (parse_state(state, state_len, &x, err) < 0)
        return -1;
    vm = xen_adopt(&spec, RESTORE_TARGET, err);
    if (vm == NULL)
        return -1;
    errno = EINVAL;
    if (!vm->hvm) {
        errprintf(err, "domain %s is not a PVH/HVM domain", name);
        goto out;
    }
    /* the image's pages where the image had them: a domain built from
     * the same configuration has them all (pages the guest had mapped
     * something else over, such as its shared info, are holes in the
     * image and stay RAM here until the guest maps them again) */
    for (k = 0; k < x.nranges; k++)
        if (add_range(vm, x.range[k].gfn, x.range[k].count, err) < 0)
            goto out;
    if (map_ranges(vm, PROT_READ | PROT_WRITE, err) < 0) {
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
    /* every page, zero pages included: the new domain holds a freshly
     * loaded kernel there */
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
    xen_release(vm);
    return rc;
}

/* ---- libxenguest's own live save, the baseline of bench/xen-pause ---- */

struct lx_save {
    struct hv_vm *vm;
    uint64_t t_pause, t_resume; /* monotonic us */
    struct vmckpt_error err;
    int failed;
};

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The same cooperative suspend as our cut (1: suspended). */
static int lx_suspend(void *data)
{
    struct lx_save *l = data;

    l->t_pause = mono_us();
    if (xen_pause(l->vm, &l->err) < 0) {
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

    if (xen_resume(l->vm, &l->err) < 0) {
        l->failed = 1;
        return 0;
    }
    l->t_resume = mono_us();
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
    uint64_t t0 = mono_us();
    int rc;

    /* only to find and suspend the domain: libxenguest tracks by itself */
    l.vm = xen_adopt(&spec, -1, err);
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
        xen_release(l.vm);
        return -1;
    }
    /* a plain stream ends without the postcopy callback (that is for
     * checkpointed streams): the guest goes on here, as after xl save -c */
    if (l.t_resume == 0 && lx_postcopy(&l) != 1) {
        *err = l.err;
        xen_release(l.vm);
        return -1;
    }
    *pause_us = l.t_resume - l.t_pause;
    *total_ms = (mono_us() - t0) / 1000;
    xen_release(l.vm);
    return 0;
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
    .vm_adopt = xen_adopt,
    .vm_release = xen_release,
    .ram_map = xen_ram_map,
    .dirty_harvest = xen_harvest,
    .pause = xen_pause,
    .resume = xen_resume,
    .save_state = xen_save_state,
};
