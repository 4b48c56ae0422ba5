/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest QEMU command lines. Guest RAM is one shared memory backend on 4 KiB
 * pages (no transparent huge pages in the tracked range: dirty tracking
 * would then see 2 MiB blocks), so the agent can map it; the machine has no
 * default devices and no user-mode networking. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_argv.h"

#define QEMU_NODE_MAX   30 /* QEMU's 31, less the file node's 'f' */
#define QEMU_DISKS_MAX  8
#define QEMU_LAYERS_MAX 16

struct argv_buf {
    char **v;
    size_t n, cap;
    int oom;
};

static void add(struct argv_buf *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct argv_buf *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    if (a->oom)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof(*v));

        if (v == NULL) {
            a->oom = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        a->oom = 1;
        s = NULL;
    }
    va_end(ap);
    if (s == NULL)
        return;
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

void qemu_argv_free(char **argv)
{
    size_t i;

    if (argv == NULL)
        return;
    for (i = 0; argv[i] != NULL; i++)
        free(argv[i]);
    free(argv);
}

static int valid_name(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > 32)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* QEMU option values separate keys with ','; a path with ',' would be
 * misread, so it is refused rather than escaped. */
static int bad_path(const char *p)
{
    return p != NULL && (strchr(p, ',') != NULL || p[0] == '\0');
}

void qemu_mac_for_name(const char *name, char *buf)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *name != '\0'; name++) {
        h ^= (unsigned char)*name;
        h *= 16777619u;
    }
    snprintf(buf, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff,
             (h >> 8) & 0xff, h & 0xff);
}

/* QEMU's node names: a letter, then letters, digits, '_', '.', '-'; at
 * most 31 chars, of which the file node's 'f' suffix takes one. */
static int valid_node(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > QEMU_NODE_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* 1 when 'a' is "<b>f", the name of b's file node. */
static int file_node_of(const char *a, const char *b)
{
    size_t n = strlen(b);

    return strncmp(a, b, n) == 0 && a[n] == 'f' && a[n + 1] == '\0';
}

/* 1 when nodes 'a' and 'b', with their file nodes, share a name. */
static int node_clash(const char *a, const char *b)
{
    return strcmp(a, b) == 0 || file_node_of(a, b) || file_node_of(b, a);
}

/* 1 when the node of layer 'l' clashes with one of an earlier layer. */
static int node_taken(const struct qemu_spec *s, size_t k, size_t l)
{
    const char *node = s->disks[k].layers[l].node;
    size_t i, j;

    for (i = 0; i <= k; i++)
        for (j = 0; j < (i == k ? l : s->disks[i].nlayers); j++)
            if (node_clash(node, s->disks[i].layers[j].node))
                return 1;
    return 0;
}

/* One layer: its path, format and node. */
static int layer_check(const struct qemu_spec *s, size_t k, size_t l,
                       struct vmckpt_error *err)
{
    const struct qemu_layer *y = &s->disks[k].layers[l];
    unsigned K = s->disks[k].index;

    errno = EINVAL;
    if (y->path == NULL || bad_path(y->path))
        return errprintf(err,
                         "guest %s: disk %u layer %zu: path '%s' is empty "
                         "or contains ','",
                         s->name, K, l, y->path ? y->path : "");
    if (y->format == NULL || (strcmp(y->format, "qcow2") != 0 &&
                              (l > 0 || strcmp(y->format, "raw") != 0)))
        return errprintf(err,
                         "guest %s: disk %u layer %zu: format '%s': qcow2, "
                         "or raw for the base",
                         s->name, K, l, y->format ? y->format : "");
    if (!valid_node(y->node))
        return errprintf(err,
                         "guest %s: disk %u layer %zu: node name '%s': a "
                         "letter, then up to %d of letters, digits, '_', "
                         "'.', '-'",
                         s->name, K, l, y->node ? y->node : "",
                         QEMU_NODE_MAX - 1);
    if (node_taken(s, k, l))
        return errprintf(err,
                         "guest %s: disk %u layer %zu: node name '%s' (or "
                         "its file node '%sf') is used twice",
                         s->name, K, l, y->node, y->node);
    return 0;
}

/* The disks: counts, unique indexes, each layer. */
static int disks_check(const struct qemu_spec *s, struct vmckpt_error *err)
{
    size_t k, l;

    if (s->ndisks > QEMU_DISKS_MAX || (s->ndisks > 0 && s->disks == NULL)) {
        errno = EINVAL;
        return errprintf(err, "guest %s: %zu disks (at most %d)", s->name,
                         s->ndisks, QEMU_DISKS_MAX);
    }
    for (k = 0; k < s->ndisks; k++) {
        const struct qemu_disk *d = &s->disks[k];

        errno = EINVAL;
        if (d->index >= QEMU_DISKS_MAX)
            return errprintf(err, "guest %s: disk index %u (at most %d)",
                             s->name, d->index, QEMU_DISKS_MAX - 1);
        for (l = 0; l < k; l++)
            if (s->disks[l].index == d->index)
                return errprintf(err, "guest %s: disk index %u used twice",
                                 s->name, d->index);
        if (d->nlayers < 1 || d->nlayers > QEMU_LAYERS_MAX || d->layers == NULL)
            return errprintf(err, "guest %s: disk %u: %zu layers (1-%d)",
                             s->name, d->index, d->nlayers, QEMU_LAYERS_MAX);
        for (l = 0; l < d->nlayers; l++)
            if (layer_check(s, k, l, err) < 0)
                return -1;
    }
    return 0;
}

/* Refuse a spec QEMU would misread or refuse: -1 with errno EINVAL and
 * 'err' saying which field is wrong, else 0. */
static int spec_check(const struct qemu_spec *s, struct vmckpt_error *err)
{
    const char *paths[] = {s->kernel,   s->initrd,      s->ram_path,
                           s->qmp_path, s->serial_path, s->serial_log,
                           s->pidfile,  s->token_path};
    size_t i;

    if (!valid_name(s->name)) {
        errno = EINVAL;
        return errprintf(err,
                         "guest name '%s': 1-32 of letters, digits, '-', '_'",
                         s->name ? s->name : "");
    }
    if (s->mem_mb < 16 || s->mem_mb > 1024 * 1024 || s->vcpus < 1 ||
        s->vcpus > 256) {
        errno = EINVAL;
        return errprintf(err, "guest %s: memory %u MiB / %u vCPUs out of range",
                         s->name, s->mem_mb, s->vcpus);
    }
    if (s->kernel == NULL || s->qmp_path == NULL) {
        errno = EINVAL;
        return errprintf(
            err, "guest %s: a kernel and a QMP socket are required", s->name);
    }
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (bad_path(paths[i])) {
            errno = EINVAL;
            return errprintf(err,
                             "guest %s: path '%s' is empty or contains ','",
                             s->name, paths[i]);
        }
    }
    if (s->accel == NULL ||
        (strcmp(s->accel, "kvm") != 0 && strcmp(s->accel, "tcg") != 0)) {
        errno = EINVAL;
        return errprintf(err, "guest %s: accelerator must be kvm or tcg",
                         s->name);
    }
    if (s->tap != NULL && (s->mac == NULL || strlen(s->mac) != 17)) {
        errno = EINVAL;
        return errprintf(err, "guest %s: tap networking needs a MAC address",
                         s->name);
    }
    return disks_check(s, err);
}

/* The machine: no defaults, the accelerator, CPUs, and guest RAM as one
 * shared backend the agent can map. */
static void add_machine(struct argv_buf *a, const struct qemu_spec *s)
{
    add(a, "%s", s->qemu ? s->qemu : "qemu-system-x86_64");
    add(a, "-name");
    add(a, "%s,process=vmckpt-%s", s->name, s->name);
    add(a, "-nodefaults");
    add(a, "-no-user-config");
    add(a, "-nographic");
    add(a, "-no-reboot");
    add(a, "-accel");
    add(a, "%s", s->accel);
    add(a, "-cpu");
    add(a, "%s", strcmp(s->accel, "kvm") == 0 ? "host" : "max");
    add(a, "-smp");
    add(a, "%u", s->vcpus);
    add(a, "-object");
    if (s->ram_path != NULL)
        add(a,
            "memory-backend-file,id=ram0,size=%uM,mem-path=%s,share=on,"
            "prealloc=off",
            s->mem_mb, s->ram_path);
    else
        add(a,
            "memory-backend-memfd,id=ram0,size=%uM,share=on,"
            "hugetlb=off",
            s->mem_mb);
    add(a, "-machine");
    add(a, "pc,memory-backend=ram0");
    add(a, "-m");
    add(a, "%uM", s->mem_mb);
}

/* The kernel, its initramfs and command line. */
static void add_boot(struct argv_buf *a, const struct qemu_spec *s)
{
    add(a, "-kernel");
    add(a, "%s", s->kernel);
    if (s->initrd != NULL) {
        add(a, "-initrd");
        add(a, "%s", s->initrd);
    }
    add(a, "-append");
    add(a, "console=ttyS0 panic=-1 quiet %s", s->append ? s->append : "");
}

/* The QMP socket, and the serial console on a socket, a log file or
 * both. */
static void add_control(struct argv_buf *a, const struct qemu_spec *s)
{
    add(a, "-qmp");
    add(a, "unix:%s,server=on,wait=off", s->qmp_path);
    if (s->serial_path == NULL && s->serial_log == NULL)
        return;
    add(a, "-chardev");
    if (s->serial_path != NULL && s->serial_log != NULL)
        add(a,
            "socket,id=ser0,path=%s,server=on,wait=off,logfile=%s,"
            "logappend=%s",
            s->serial_path, s->serial_log, s->log_append ? "on" : "off");
    else if (s->serial_path != NULL)
        add(a, "socket,id=ser0,path=%s,server=on,wait=off", s->serial_path);
    else
        add(a, "file,id=ser0,path=%s,append=%s", s->serial_log,
            s->log_append ? "on" : "off");
    add(a, "-serial");
    add(a, "chardev:ser0");
}

/* The network, the pid file, and how the guest starts: waiting for an
 * incoming stream (restore) and/or with its vCPUs stopped. */
static void add_run(struct argv_buf *a, const struct qemu_spec *s)
{
    if (s->tap != NULL) {
        add(a, "-netdev");
        add(a, "tap,id=net0,ifname=%s,script=no,downscript=no", s->tap);
        add(a, "-device");
        add(a, "virtio-net-pci,netdev=net0,mac=%s", s->mac);
    }
    if (s->pidfile != NULL) {
        add(a, "-pidfile");
        add(a, "%s", s->pidfile);
    }
    /* a secret reaches the guest through the firmware configuration,
     * never on a command line: only this file's path is on QEMU's */
    if (s->token_path != NULL) {
        add(a, "-fw_cfg");
        add(a, "name=opt/vmckpt/token,file=%s", s->token_path);
    }
    if (s->incoming_defer) {
        add(a, "-incoming");
        add(a, "defer");
    }
    if (s->paused)
        add(a, "-S");
}

/* The format node of layer 'l' of 'd', over its file node "<node>f",
 * with the previous layer as its backing, stated here so that QEMU never
 * follows a name in an image header. A qcow2 base gets backing null: it
 * opens no chain of its own. The key=value syntax has no null
 * ("backing=null" names a node "null", "backing=" is deprecated), so that
 * one node is given in JSON; its values are node names and "qcow2", which
 * need no escaping. */
static void add_format_node(struct argv_buf *a, const struct qemu_disk *d,
                            size_t l, int ro)
{
    const struct qemu_layer *y = &d->layers[l];

    add(a, "-blockdev");
    if (l > 0)
        add(a, "driver=%s,node-name=%s,file=%sf,read-only=%s,backing=%s",
            y->format, y->node, y->node, ro ? "on" : "off",
            d->layers[l - 1].node);
    else if (strcmp(y->format, "qcow2") == 0)
        add(a,
            "{\"driver\":\"qcow2\",\"node-name\":\"%s\",\"file\":\"%sf\","
            "\"read-only\":%s,\"backing\":null}",
            y->node, y->node, ro ? "true" : "false");
    else
        add(a, "driver=%s,node-name=%s,file=%sf,read-only=%s", y->format,
            y->node, y->node, ro ? "on" : "off");
}

/* Each disk as a chain of block nodes, base first, each a file node and a
 * format node, read-only as its layer says. Then the device on its fixed
 * slot, over the active (last) layer. */
static void add_disks(struct argv_buf *a, const struct qemu_spec *s)
{
    size_t k, l;

    for (k = 0; k < s->ndisks; k++) {
        const struct qemu_disk *d = &s->disks[k];

        for (l = 0; l < d->nlayers; l++) {
            const struct qemu_layer *y = &d->layers[l];
            int ro = y->read_only;

            add(a, "-blockdev");
            add(a, "driver=file,node-name=%sf,filename=%s,read-only=%s",
                y->node, y->path, ro ? "on" : "off");
            add_format_node(a, d, l, ro);
        }
        add(a, "-device");
        add(a, "virtio-blk-pci,drive=%s,id=vd%u,addr=0x%x,serial=vmckpt-d%u",
            d->layers[d->nlayers - 1].node, d->index, 0x10 + d->index,
            d->index);
    }
}

char **qemu_argv_build(const struct qemu_spec *s, struct vmckpt_error *err)
{
    struct argv_buf a = {0};

    if (spec_check(s, err) < 0)
        return NULL;
    add_machine(&a, s);
    add_boot(&a, s);
    add_control(&a, s);
    add_run(&a, s);
    add_disks(&a, s);
    if (a.oom || a.v == NULL) {
        qemu_argv_free(a.v);
        errno = ENOMEM;
        errprintf(err, "guest %s: out of memory", s->name);
        return NULL;
    }
    return a.v;
}
