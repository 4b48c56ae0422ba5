/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The agent's scrape. Checkpoint threads report their ends under the
 * metrics' own lock; the store's counters are atomics; the rest is read
 * on the loop at each scrape (the guest list, statvfs of the store). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "metrics.h"
#include "lib/metrics/httpd.h"
#include "lib/util/log.h"

struct agent_metrics {
    struct httpd *httpd;
    int64_t started;          /* unix seconds */
    uint64_t durable, failed; /* checkpoints, under 'mu' */
    struct mhist pause;       /* seconds, durable checkpoints, under 'mu' */
};

/* Guards a->metrics itself as well as its counters, so that a checkpoint
 * thread still ending while the agent stops never counts into freed
 * memory. One agent per process. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

void agent_metrics_checkpoint(struct agent *a, int durable, uint64_t pause_us)
{
    struct agent_metrics *m;

    pthread_mutex_lock(&mu);
    m = a->metrics;
    if (m == NULL) {
        pthread_mutex_unlock(&mu);
        return;
    }
    if (durable) {
        m->durable++;
        mhist_observe(&m->pause, (double)pause_us / 1e6);
    } else {
        m->failed++;
    }
    pthread_mutex_unlock(&mu);
}

static void put_checkpoints(struct agent_metrics *m, struct mtext *t)
{
    struct mhist pause;
    uint64_t durable, failed;

    pthread_mutex_lock(&mu);
    durable = m->durable;
    failed = m->failed;
    pause = m->pause;
    pthread_mutex_unlock(&mu);
    mtext_family(t, "vmckpt_agent_checkpoints", MTEXT_COUNTER, NULL,
                 "Checkpoints of this host's guests ended since the agent "
                 "started: durable (images on the peer's store) or failed.");
    mtext_uint(t, (mtext_labels){"result", "durable", NULL}, durable);
    mtext_uint(t, (mtext_labels){"result", "failed", NULL}, failed);
    mtext_family(t, "vmckpt_agent_pause_seconds", MTEXT_HISTOGRAM, "seconds",
                 "How long a guest of this host was paused, per durable "
                 "checkpoint since the agent started (the count is the "
                 "number of pauses).");
    mtext_hist(t, NULL, &pause);
}

static void put_store(struct agent *a, struct mtext *t)
{
    struct statvfs sv;

    mtext_family(t, "vmckpt_agent_store_written_bytes", MTEXT_COUNTER, "bytes",
                 "Bytes of epochs this host's store made durable (peers' "
                 "streams and local copies) since the agent started.");
    mtext_uint(t, NULL, __atomic_load_n(&a->store.written, __ATOMIC_RELAXED));
    mtext_family(t, "vmckpt_agent_store_read_bytes", MTEXT_COUNTER, "bytes",
                 "Bytes of page data and device state this host's store "
                 "read for restores (peers' fetches and local ones) since "
                 "the agent started.");
    mtext_uint(t, NULL, __atomic_load_n(&a->store.read, __ATOMIC_RELAXED));
    if (statvfs(a->store.dir, &sv) < 0) {
        log_warnno("metrics: statvfs %s", a->store.dir);
        return;
    }
    mtext_family(t, "vmckpt_agent_store_free_bytes", MTEXT_GAUGE, "bytes",
                 "Space left in the store's file system for unprivileged "
                 "writers (as df shows it).");
    mtext_uint(t, NULL, (uint64_t)sv.f_bavail * sv.f_frsize);
    mtext_family(t, "vmckpt_agent_store_size_bytes", MTEXT_GAUGE, "bytes",
                 "Size of the store's file system.");
    mtext_uint(t, NULL, (uint64_t)sv.f_blocks * sv.f_frsize);
}

static void render(void *arg, struct mtext *t)
{
    struct agent *a = arg;
    const struct vmm_vm *vm;
    uint64_t nvms = 0, busy = 0;
    int registered;

    mtext_family(t, "vmckpt_build", MTEXT_INFO, NULL, "The agent's version.");
    mtext_uint(t,
               (mtext_labels){"version", PACKAGE_VERSION, "daemon", "agent",
                              "host", a->name, NULL},
               1);
    mtext_family(t, "vmckpt_start_time_seconds", MTEXT_GAUGE, "seconds",
                 "When the agent started (unix time): its counters count "
                 "from then.");
    mtext_uint(t, NULL, (uint64_t)a->metrics->started);
    pthread_mutex_lock(&a->link_mu);
    registered = a->registered;
    pthread_mutex_unlock(&a->link_mu);
    mtext_family(t, "vmckpt_agent_registered", MTEXT_GAUGE, NULL,
                 "1 while the agent is registered with the coordinator.");
    mtext_uint(t, NULL, registered ? 1 : 0);
    for (vm = a->vmm.vms; vm != NULL; vm = vm->next) {
        nvms++;
        busy += vm->busy != 0;
    }
    mtext_family(t, "vmckpt_agent_vms", MTEXT_GAUGE, NULL,
                 "Guests this agent runs.");
    mtext_uint(t, NULL, nvms);
    mtext_family(t, "vmckpt_agent_vms_busy", MTEXT_GAUGE, NULL,
                 "Guests with a checkpoint or restore in progress.");
    mtext_uint(t, NULL, busy);
    put_checkpoints(a->metrics, t);
    put_store(a, t);
}

int agent_metrics_start(struct agent *a, const char *addr,
                        struct vmckpt_error *err)
{
    struct agent_metrics *m;
    char bound[96];

    if (addr[0] == '\0')
        return 0;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return errprintf_errno(err, "metrics");
    mhist_init(&m->pause, mhist_pause_bounds, MHIST_PAUSE_N);
    m->started = (int64_t)time(NULL);
    m->httpd = httpd_start(a->loop, addr, NULL, render, a, err);
    if (m->httpd == NULL) {
        free(m);
        return errprefix(err, "[agent] metrics_listen");
    }
    pthread_mutex_lock(&mu);
    a->metrics = m;
    pthread_mutex_unlock(&mu);
    httpd_local_name(m->httpd, bound, sizeof(bound));
    log_info("metrics on http://%s/metrics", bound);
    return 0;
}

void agent_metrics_stop(struct agent *a)
{
    struct agent_metrics *m = a->metrics;

    if (m == NULL)
        return;
    httpd_stop(m->httpd);
    pthread_mutex_lock(&mu);
    a->metrics = NULL;
    pthread_mutex_unlock(&mu);
    free(m);
}
