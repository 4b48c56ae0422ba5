/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmckpt-vmtool: the agent's checkpoint and restore paths, driven by hand
 * for tests and benchmarks (the coordinator drives the same code through
 * the agent). Guests are found by QEMU pid, QMP socket and RAM file.
 *
 *   vmckpt-vmtool checkpoint GUEST-OPTS --job J --epoch E [--parent P]
 *        --store ADDR --key FILE [--lz4] [--stop-and-save] [--streams N]
 *        [--seal] (sealed under a random key, as seal_images does)
 *        [--cut-pages N] [--max-rounds N] [--max-ms MS]
 *   vmckpt-vmtool fetch --store ADDR --key FILE --job J --vm V --epoch E
 *        --ram-out FILE --state-out FILE
 *   vmckpt-vmtool restore-local --store-dir DIR --job J --vm V --epoch E
 *        --ram-out FILE --state-out FILE
 *   vmckpt-vmtool load GUEST-OPTS --state FILE [--resume]
 *   vmckpt-vmtool qemu-migrate GUEST-OPTS --ram-out FILE
 *        (QEMU's own live migration of everything to FILE, default
 *        parameters, then cont: the baseline of bench/checkpoint-pause)
 *
 * GUEST-OPTS: --name G --pid PID --qmp SOCKET --ram FILE [--uffd-fd 100]
 *
 * Built with Xen, the checkpoint takes a Xen domain instead: --xen DOMAIN
 * (its name) in place of GUEST-OPTS; and
 *   vmckpt-vmtool xen-info --xen DOMAIN     its memory ranges
 *   vmckpt-vmtool xen-dirtycheck --xen DOMAIN [--rounds N] [--interval MS]
 *        copy its pages, let it run, suspend it, compare: every page whose
 *        content changed must have been reported written (0 missed)
 *   vmckpt-vmtool xen-restore --xen DOMAIN --ram FILE --state FILE
 *        an epoch (from fetch or restore-local) into DOMAIN, built paused
 *        with xl create -p from the checkpointed guest's configuration;
 *        'xl unpause' then resumes it
 *   vmckpt-vmtool xen-libxc-save --xen DOMAIN --ram-out FILE
 *        libxenguest's own live save into FILE, then the guest goes on:
 *        the baseline of bench/xen-pause */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <time.h>

#include "agent/store/image.h"
#ifdef HAVE_XEN
#include "agent/hv/hv_xen.h"
#endif
#include "lib/util/clock.h"
#include "lib/qemu/qmp.h"
#include "agent/engine/precopy.h"
#include "agent/store/sealed.h"
#include "agent/store/stream.h"
#include "lib/util/conf.h"
#include "lib/wire/tls.h"
#include "lib/wire/tls_conf.h"

struct opts {
    const char *name, *qmp, *ram, *job, *vm, *store, *store_dir, *key;
    const char *config;
    const char *ram_out, *state_out, *state, *xen;
    unsigned rounds, interval_ms;
    pid_t pid;
    int uffd_fd, lz4, stop_and_save, resume, seal;
    unsigned streams;
    uint64_t epoch, parent;
    struct precopy_limits lim;
};

static void die(const char *what, const struct vmckpt_error *err)
{
    fprintf(stderr, "vmckpt-vmtool: %s%s%s\n", what, err ? ": " : "",
            err ? err->text : "");
    exit(1);
}

/* The back end called 'name' (hv_find), or the tool ends saying it is
 * not built in. */
static const struct hv_ops *backend_or_die(const char *name)
{
    const struct hv_ops *ops = hv_find(name);

    if (ops == NULL) {
        fprintf(stderr,
                "vmckpt-vmtool: built without the %s back end "
                "(configure --with-%s)\n",
                name, name);
        exit(1);
    }
    return ops;
}

static void on_round(const struct precopy_round *r, void *arg)
{
    (void)arg;
    printf("round %u: sent %" PRIu64 " pages (%" PRIu64 " bytes) in %" PRIu64
           " ms, %" PRIu64 " written meanwhile (%" PRIu64 " pages/s), %" PRIu64
           " MB/s\n",
           r->round, r->pages_sent, r->bytes_sent, r->round_ms, r->pages_left,
           r->dirty_rate, r->throughput >> 20);
    fflush(stdout);
}

/* How this tool proves itself to a store: this host's credential from
 * --config's [tls] (the name is then its certificate's), or the cluster
 * key of --key. */
static void credential(const struct opts *o, struct auth_key *key, char *host,
                       size_t len)
{
    struct vmckpt_error err;
    enum tls_role role;

    memset(key, 0, sizeof(*key));
    if (o->config != NULL) {
        struct conf *conf = conf_load(o->config, &err);
        int rc = conf ? tls_setup_conf(conf, TLS_CONF_BULK, &err) : -1;

        if (conf != NULL)
            conf_destroy(conf);
        if (rc < 0)
            die("--config", &err);
        if (rc > 0 && tls_self(&role, host, len) == 0)
            return;
    }
    if (o->key == NULL)
        die("--key (or --config with a [tls] credential) is required", NULL);
    if (auth_key_load(key, o->key, &err) < 0)
        die("key", &err);
    gethostname(host, len - 1);
    host[len - 1] = '\0';
}

static int cmd_checkpoint(struct opts *o)
{
    struct hv_vm_spec spec = {.name = o->xen ? o->xen : o->name,
                              .pid = o->pid,
                              .qmp_path = o->qmp,
                              .ram_path = o->ram,
                              .uffd_fd = o->uffd_fd};
    const struct hv_ops *ops;
    struct precopy_policy pol = {
        .decide = precopy_limits_decide, .on_round = on_round, .arg = &o->lim};
    struct precopy_result res;
    struct precopy_sink sink;
    struct seal_sink *seal = NULL;
    struct vmckpt_error err;
    struct auth_key key;
    struct stream_out *so;
    struct stream_what w;
    struct hv_vm *vm;
    const uint8_t *ram;
    uint64_t ram_len;
    char host[64];

    memset(&w, 0, sizeof(w)); /* no disks: vmtool copies memory only */
    ops = backend_or_die(o->xen != NULL ? "xen" : "qemu");
    if (o->xen != NULL)
        o->name = o->xen;
    if (!o->name || (!o->xen && (!o->pid || !o->qmp || !o->ram)) || !o->job ||
        !o->epoch || !o->store)
        die("checkpoint needs --name --pid --qmp --ram (or --xen DOMAIN) "
            "--job --epoch --store --key|--config",
            NULL);
    credential(o, &key, host, sizeof(host));
    /* a full epoch restarts dirty tracking; a delta continues it */
    vm = ops->vm_adopt(&spec, o->parent == 0 ? 1 : 0, &err);
    if (vm == NULL)
        die("adopt", &err);
    ops->ram_map(vm, &ram, &ram_len, &err);
    w.job = o->job;
    w.vm = o->name;
    w.epoch = o->epoch;
    w.parent = o->parent;
    w.ram_bytes = ram_len;
    w.incarnation = 0; /* outside any job: the store checks none */
    w.streams = o->streams;
    so = stream_out_open(o->store, &key, host, &w, &err);
    if (so == NULL)
        die("open stream", &err);
    stream_out_sink(so, &sink);
    if (o->seal) { /* under a random key: what sealing costs (the bench) */
        struct seal_key sk;
        struct precopy_sink inner = sink;

        if (seal_key_random(&sk, &err) < 0 ||
            (seal = seal_sink_new(&sk, o->job, o->name, o->streams, &inner,
                                  &sink, &err)) == NULL)
            die("seal", &err);
    }
    if (precopy_checkpoint(ops, vm, o->parent == 0, o->stop_and_save, o->lz4,
                           o->streams, &sink, &pol, &res, &err) < 0) {
        stream_out_abort(so, err.text);
        ops->vm_release(vm);
        auth_key_dispose(&key);
        die("checkpoint failed; the guest keeps running", &err);
    }
    stream_out_close(so);
    seal_sink_free(seal);
    printf("checkpoint %s/%s epoch %" PRIu64 " (%s%s) durable: rounds %u "
           "pages %" PRIu64 " wire_bytes %" PRIu64 " cut_pages %" PRIu64
           " state_bytes %" PRIu64 " pause_us %" PRIu64 " total_ms %" PRIu64
           " disk_bytes %" PRIu64 " raw_bytes %" PRIu64 " stop_us %" PRIu64
           " harvest_us %" PRIu64 " stage_us %" PRIu64 " hook_us %" PRIu64
           " state_us %" PRIu64 " resume_us %" PRIu64 " precopy_ms %" PRIu64
           " streams %u\n",
           o->job, o->name, o->epoch, o->parent ? "delta" : "full",
           o->stop_and_save ? ", stop-and-save" : "", res.rounds, res.pages,
           res.wire_bytes, res.cut_pages, res.state_bytes, res.pause_us,
           res.total_ms, res.disk_bytes, res.raw_bytes, res.stop_us,
           res.harvest_us, res.stage_us, res.paused_hook_us, res.state_us,
           res.resume_us, res.precopy_ms, o->streams);
    ops->vm_release(vm);
    auth_key_dispose(&key);
    return 0;
}

static void open_outputs(const struct opts *o, int *ram_fd, int *state_fd)
{
    if (!o->ram_out || !o->state_out)
        die("--ram-out and --state-out are required", NULL);
    *ram_fd = open(o->ram_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    *state_fd =
        open(o->state_out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (*ram_fd < 0 || *state_fd < 0) {
        perror("vmckpt-vmtool: output");
        exit(1);
    }
}

static int fetch_epoch(struct opts *o, int local)
{
    struct vmckpt_error err;
    int ram_fd, state_fd;

    if (!o->job || !o->vm || !o->epoch)
        die("--job --vm --epoch are required", NULL);
    open_outputs(o, &ram_fd, &state_fd);
    if (local) {
        struct image_manifest m;

        if (!o->store_dir)
            die("--store-dir is required", NULL);
        if (image_manifest_load(o->store_dir, o->job, o->vm, &m, &err) < 0)
            die("restore", &err);
        if (ftruncate(ram_fd, (off_t)m.ram_bytes) < 0)
            die("RAM file", NULL);
        if (image_restore(o->store_dir, o->job, o->vm, o->epoch, NULL, ram_fd,
                          state_fd, NULL, &err) < 0) {
            unlink(o->ram_out);
            unlink(o->state_out);
            die("restore refused", &err);
        }
    } else {
        struct auth_key key;
        char host[64];
        struct stream_source src = {o->store, NULL, NULL, 0};

        if (!o->store)
            die("--store is required", NULL);
        credential(o, &key, host, sizeof(host));
        if (stream_fetch(&src, &key, host, o->job, o->vm, o->epoch, NULL,
                         ram_fd, state_fd, NULL, &err) < 0) {
            unlink(o->ram_out);
            unlink(o->state_out);
            die("fetch refused", &err);
        }
        auth_key_dispose(&key);
    }
    if (fsync(ram_fd) < 0 || fsync(state_fd) < 0)
        die("fsync", NULL);
    close(ram_fd);
    close(state_fd);
    printf("restored %s/%s epoch %" PRIu64 " into %s and %s\n", o->job, o->vm,
           o->epoch, o->ram_out, o->state_out);
    return 0;
}

static int cmd_fetch(struct opts *o)
{
    return fetch_epoch(o, 0);
}

static int cmd_restore_local(struct opts *o)
{
    return fetch_epoch(o, 1);
}

static int cmd_load(struct opts *o)
{
    struct hv_vm_spec spec = {.name = o->name,
                              .pid = o->pid,
                              .qmp_path = o->qmp,
                              .ram_path = o->ram,
                              .uffd_fd = o->uffd_fd};
    const struct hv_ops *ops = backend_or_die("qemu");
    struct vmckpt_error err;
    struct hv_vm *vm;
    int fd;

    if (!o->name || !o->pid || !o->qmp || !o->ram || !o->state)
        die("load needs --name --pid --qmp --ram --state", NULL);
    fd = open(o->state, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("cannot open the state file", NULL);
    vm = ops->vm_adopt(&spec, -1, &err);
    if (vm == NULL)
        die("adopt", &err);
    if (ops->load_state(vm, fd, &err) < 0)
        die("load state", &err);
    if (o->resume && ops->resume(vm, &err) < 0)
        die("resume", &err);
    printf("loaded device state into %s%s\n", o->name,
           o->resume ? "; running" : "; paused");
    ops->vm_release(vm);
    close(fd);
    return 0;
}

/* QEMU's own migration to a file, RAM included, as QEMU does it alone. */
static int cmd_qemu_migrate(struct opts *o)
{
    struct vmckpt_error err;
    struct qmp *q;
    json_t *args, *ret = NULL, *ram;
    char uri[4200];
    const char *status = "";
    uint64_t t0;
    double waited_ms;

    if (!o->qmp || !o->ram_out)
        die("qemu-migrate needs --qmp and --ram-out", NULL);
    q = qmp_open(o->qmp, 10000, &err);
    if (q == NULL)
        die("QMP", &err);
    args = json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability",
                     "x-ignore-shared", "state", 0);
    if (qmp_execute(q, "migrate-set-capabilities", args, NULL, &err) < 0)
        die("capabilities", &err);
    json_decref(args);
    snprintf(uri, sizeof(uri), "exec:cat > '%s'", o->ram_out);
    args = json_pack("{s:s}", "uri", uri);
    t0 = clock_mono_ns();
    if (qmp_execute(q, "migrate", args, NULL, &err) < 0)
        die("migrate", &err);
    json_decref(args);
    for (;;) {
        json_decref(ret);
        if (qmp_execute(q, "query-migrate", NULL, &ret, &err) < 0)
            die("query-migrate", &err);
        status = json_string_value(json_object_get(ret, "status"));
        waited_ms = (double)(clock_mono_ns() - t0) / 1e6;
        if (status &&
            (strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0))
            break;
        if (o->lim.max_ms && waited_ms > (double)o->lim.max_ms) {
            qmp_execute(q, "migrate_cancel", NULL, NULL, &err);
            status = "did-not-converge";
            break;
        }
        usleep(2000);
    }
    /* the guest was stopped by the migration's last phase: resume */
    qmp_execute(q, "cont", NULL, NULL, &err);
    ram = json_object_get(ret, "ram");
    printf(
        "qemu-migrate: status %s downtime_ms %lld total_ms %lld "
        "ram_transferred %lld dirty_sync_count %lld wall_ms %.0f\n",
        status, (long long)json_integer_value(json_object_get(ret, "downtime")),
        (long long)json_integer_value(json_object_get(ret, "total-time")),
        (long long)json_integer_value(json_object_get(ram, "transferred")),
        (long long)json_integer_value(json_object_get(ram, "dirty-sync-count")),
        waited_ms);
    json_decref(ret);
    qmp_close(q);
    return strcmp(status, "completed") == 0 ? 0 : 1;
}

#ifdef HAVE_XEN
static struct hv_vm *xen_adopt_or_die(const struct opts *o, int track)
{
    struct hv_vm_spec spec = {.name = o->xen};
    struct vmckpt_error err;
    struct hv_vm *vm;

    if (o->xen == NULL)
        die("--xen DOMAIN is required", NULL);
    vm = backend_or_die("xen")->vm_adopt(&spec, track, &err);
    if (vm == NULL)
        die("adopt", &err);
    return vm;
}

/* The dirty-tracking check: each round copies every page with the guest
 * suspended, lets it run, suspends it and compares. */
static int cmd_xen_dirtycheck(struct opts *o)
{
    struct hv_vm *vm = xen_adopt_or_die(o, 1);
    const struct hv_ops *ops = backend_or_die("xen");
    struct vmckpt_error err;
    const uint8_t *ram;
    uint64_t len, npages, p, missed_all = 0, *bm;
    uint8_t *copy;
    unsigned r;

    ops->ram_map(vm, &ram, &len, &err);
    npages = len / 4096;
    copy = malloc(len);
    bm = calloc((npages + 63) / 64, sizeof(*bm));
    if (copy == NULL || bm == NULL)
        die("out of memory", NULL);
    for (r = 0; r < o->rounds; r++) {
        uint64_t changed = 0, reported = 0, missed = 0;

        if (ops->pause(vm, &err) < 0 || ops->dirty_harvest(vm, bm, &err) < 0)
            die("round start", &err);
        memcpy(copy, ram, len);
        memset(bm, 0, (npages + 63) / 64 * sizeof(*bm));
        if (ops->resume(vm, &err) < 0)
            die("resume", &err);
        usleep(o->interval_ms * 1000);
        if (ops->pause(vm, &err) < 0 || ops->dirty_harvest(vm, bm, &err) < 0)
            die("round end", &err);
        for (p = 0; p < npages; p++) {
            int w = (bm[p / 64] >> (p % 64)) & 1;

            reported += (uint64_t)w;
            if (memcmp(copy + p * 4096, ram + p * 4096, 4096) != 0) {
                changed++;
                if (!w)
                    missed++;
            }
        }
        if (ops->resume(vm, &err) < 0)
            die("resume", &err);
        printf("round %u: %" PRIu64 " pages changed, %" PRIu64
               " reported written, %" PRIu64 " missed\n",
               r + 1, changed, reported, missed);
        fflush(stdout);
        missed_all += missed;
        memset(bm, 0, (npages + 63) / 64 * sizeof(*bm));
    }
    printf("total: %" PRIu64 " missed over %u rounds\n", missed_all, o->rounds);
    free(copy);
    free(bm);
    ops->vm_release(vm);
    return missed_all == 0 ? 0 : 1;
}

static int cmd_xen_restore(struct opts *o)
{
    struct vmckpt_error err;
    uint8_t *st;
    struct stat sb;
    int ram_fd, st_fd, rc;

    if (o->xen == NULL || o->ram == NULL || o->state == NULL)
        die("xen-restore needs --xen DOMAIN --ram FILE --state FILE", NULL);
    ram_fd = open(o->ram, O_RDONLY | O_CLOEXEC);
    st_fd = open(o->state, O_RDONLY | O_CLOEXEC);
    if (ram_fd < 0 || st_fd < 0 || fstat(st_fd, &sb) < 0) {
        perror("vmckpt-vmtool: xen-restore");
        return 1;
    }
    st = malloc(sb.st_size ? (size_t)sb.st_size : 1);
    if (st == NULL ||
        pread(st_fd, st, (size_t)sb.st_size, 0) != (ssize_t)sb.st_size)
        die("reading the state", NULL);
    rc = hv_xen_restore(o->xen, ram_fd, st, (size_t)sb.st_size, &err);
    free(st);
    close(ram_fd);
    close(st_fd);
    if (rc < 0)
        die("xen-restore", &err);
    printf("domain %s holds the image, paused\n", o->xen);
    return 0;
}

static int cmd_xen_libxc_save(struct opts *o)
{
    struct vmckpt_error err;
    uint64_t pause_us, total_ms;
    struct stat sb;
    int fd;

    if (o->xen == NULL || o->ram_out == NULL)
        die("xen-libxc-save needs --xen DOMAIN --ram-out FILE", NULL);
    fd = open(o->ram_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        perror("vmckpt-vmtool: xen-libxc-save");
        return 1;
    }
    if (hv_xen_libxc_save(o->xen, fd, &pause_us, &total_ms, &err) < 0)
        die("xen-libxc-save", &err);
    fstat(fd, &sb);
    close(fd);
    printf("libxc live save of %s: pause_us %" PRIu64 " total_ms %" PRIu64
           " bytes %lld\n",
           o->xen, pause_us, total_ms, (long long)sb.st_size);
    return 0;
}

/* Its memory ranges, as the back end sees them. */
static int cmd_xen_info(struct opts *o)
{
    struct hv_vm *vm = xen_adopt_or_die(o, -1);

    hv_xen_describe(vm, stdout);
    backend_or_die("xen")->vm_release(vm);
    return 0;
}
#endif

/* The commands, their options shown by usage(). */
static const struct command {
    const char *name;
    int (*run)(struct opts *o);
    const char *usage;
} commands[] = {
    {"checkpoint", cmd_checkpoint,
     "GUEST --job J --epoch E [--parent P] --store ADDR\n"
     "    --key FILE|--config FILE\n"
     "    [--lz4] [--stop-and-save] [--streams N] [--cut-pages N]\n"
     "    [--max-rounds N] [--max-ms MS]"},
    {"fetch", cmd_fetch,
     "--store ADDR --key FILE|--config FILE --job J --vm V --epoch E\n"
     "    --ram-out FILE --state-out FILE"},
    {"restore-local", cmd_restore_local,
     "--store-dir DIR --job J --vm V --epoch E\n"
     "    --ram-out FILE --state-out FILE"},
    {"load", cmd_load, "GUEST --state FILE [--resume]"},
    {"qemu-migrate", cmd_qemu_migrate, "GUEST --ram-out FILE [--max-ms MS]"},
#ifdef HAVE_XEN
    {"xen-info", cmd_xen_info, "--xen DOMAIN"},
    {"xen-dirtycheck", cmd_xen_dirtycheck,
     "--xen DOMAIN [--rounds N] [--interval MS]"},
    {"xen-restore", cmd_xen_restore, "--xen DOMAIN --ram FILE --state FILE"},
    {"xen-libxc-save", cmd_xen_libxc_save, "--xen DOMAIN --ram-out FILE"},
#endif
    {NULL, NULL, NULL},
};

static int usage(void)
{
    const struct command *c;

    fprintf(stderr, "usage:\n");
    for (c = commands; c->name != NULL; c++)
        fprintf(stderr, "  vmckpt-vmtool %s %s\n", c->name, c->usage);
    fprintf(stderr,
            "GUEST: --name G --pid PID --qmp SOCKET --ram FILE [--uffd-fd N]"
#ifdef HAVE_XEN
            "\n    (checkpoint: or --xen DOMAIN)"
#endif
            "\n");
    return 2;
}

/* The options after the command into 'o'; -1 on one getopt refused. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"name", 1, NULL, 'n'},      {"pid", 1, NULL, 'p'},
        {"qmp", 1, NULL, 'q'},       {"ram", 1, NULL, 'r'},
        {"uffd-fd", 1, NULL, 'u'},   {"job", 1, NULL, 'j'},
        {"vm", 1, NULL, 'v'},        {"epoch", 1, NULL, 'e'},
        {"parent", 1, NULL, 'P'},    {"store", 1, NULL, 's'},
        {"store-dir", 1, NULL, 'S'}, {"key", 1, NULL, 'k'},
        {"lz4", 0, NULL, 'z'},       {"stop-and-save", 0, NULL, 'x'},
        {"cut-pages", 1, NULL, 'c'}, {"max-rounds", 1, NULL, 'R'},
        {"max-ms", 1, NULL, 'M'},    {"ram-out", 1, NULL, 'o'},
        {"state-out", 1, NULL, 'O'}, {"state", 1, NULL, 't'},
        {"resume", 0, NULL, 'g'},    {"streams", 1, NULL, 'N'},
        {"xen", 1, NULL, 'X'},       {"rounds", 1, NULL, 'C'},
        {"interval", 1, NULL, 'I'},  {"config", 1, NULL, 'F'},
        {"seal", 0, NULL, 'L'},      {NULL, 0, NULL, 0},
    };
    int ch;

    optind = 2;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o->name = optarg;
            break;
        case 'p':
            o->pid = atoi(optarg);
            break;
        case 'q':
            o->qmp = optarg;
            break;
        case 'r':
            o->ram = optarg;
            break;
        case 'u':
            o->uffd_fd = atoi(optarg);
            break;
        case 'j':
            o->job = optarg;
            break;
        case 'v':
            o->vm = optarg;
            break;
        case 'e':
            o->epoch = strtoull(optarg, NULL, 10);
            break;
        case 'P':
            o->parent = strtoull(optarg, NULL, 10);
            break;
        case 's':
            o->store = optarg;
            break;
        case 'S':
            o->store_dir = optarg;
            break;
        case 'L':
            o->seal = 1;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 'F':
            o->config = optarg;
            break;
        case 'z':
            o->lz4 = 1;
            break;
        case 'x':
            o->stop_and_save = 1;
            break;
        case 'c':
            o->lim.cut_pages = strtoull(optarg, NULL, 10);
            break;
        case 'R':
            o->lim.max_rounds = (unsigned)atoi(optarg);
            break;
        case 'M':
            o->lim.max_ms = strtoull(optarg, NULL, 10);
            break;
        case 'o':
            o->ram_out = optarg;
            break;
        case 'O':
            o->state_out = optarg;
            break;
        case 't':
            o->state = optarg;
            break;
        case 'g':
            o->resume = 1;
            break;
        case 'N':
            o->streams = (unsigned)atoi(optarg);
            break;
        case 'X':
            o->xen = optarg;
            break;
        case 'C':
            o->rounds = (unsigned)atoi(optarg);
            break;
        case 'I':
            o->interval_ms = (unsigned)atoi(optarg);
            break;
        default:
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .uffd_fd = 100,
        .streams = 1,
        .rounds = 4,
        .interval_ms = 500,
        .lim = {.cut_pages = 256, .max_rounds = 30, .max_ms = 30000}};
    const struct command *c;

    if (argc < 2)
        return usage();
    if (parse_opts(argc, argv, &o) < 0)
        return 2;
    for (c = commands; c->name != NULL; c++)
        if (strcmp(c->name, argv[1]) == 0)
            return c->run(&o);
    fprintf(stderr, "vmckpt-vmtool: unknown command '%s'\n", argv[1]);
    return 2;
}
