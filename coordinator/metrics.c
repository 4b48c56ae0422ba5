/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's scrape: gauges counted from the modules' tables (a
 * walk of in-memory lists, no catalog query), counters and histograms
 * from stats.c. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hosts.h"
#include "jobs.h"
#include "metrics.h"
#include "stats.h"
#include "vms.h"
#include "lib/metrics/httpd.h"
#include "lib/util/log.h"

struct metrics {
    struct httpd *httpd;
    int64_t started; /* unix seconds */
};

/* How many of each state: the states a module knows first (shown even at
 * 0, so every series exists from the first scrape), then any other met. */
#define MAX_STATES 16
struct by_state {
    const char *name[MAX_STATES];
    uint64_t n[MAX_STATES];
    size_t count;
};

static void by_state_init(struct by_state *b, const char *const *known)
{
    memset(b, 0, sizeof(*b));
    for (; *known != NULL && b->count < MAX_STATES; known++)
        b->name[b->count++] = *known;
}

/* 'state' must outlive the by_state (the modules' strings do, during the
 * scrape). */
static void by_state_add(struct by_state *b, const char *state)
{
    size_t i;

    for (i = 0; i < b->count; i++)
        if (strcmp(b->name[i], state) == 0) {
            b->n[i]++;
            return;
        }
    if (b->count < MAX_STATES) {
        b->name[b->count] = state;
        b->n[b->count++] = 1;
    }
}

static void by_state_put(struct mtext *t, const struct by_state *b)
{
    size_t i;

    for (i = 0; i < b->count; i++)
        mtext_uint(t, (mtext_labels){"state", b->name[i], NULL}, b->n[i]);
}

static void add_host(void *arg, const char *name, const char *state)
{
    (void)name;
    by_state_add(arg, state);
}

/* Hosts, guests and jobs by state; jobs' last committed epochs. */
static void put_tables(struct coord *co, struct mtext *t)
{
    static const char *const host_states[] = {"up", "lost", "down", "unknown",
                                              NULL};
    static const char *const vm_states[] = {"starting",  "running", "paused",
                                            "restoring", "stopped", "exited",
                                            "lost",      NULL};
    static const char *const job_states[] = {"running", "restarting", "failed",
                                             NULL};
    struct by_state b;
    struct vmrec *v;
    struct job *j;
    uint64_t busy = 0;

    by_state_init(&b, host_states);
    hosts_each(co, add_host, &b);
    mtext_family(t, "vmckpt_hosts", MTEXT_GAUGE, NULL,
                 "Hosts of the registry by state.");
    by_state_put(t, &b);
    by_state_init(&b, vm_states);
    for (v = vms_first(co); v != NULL; v = v->next)
        by_state_add(&b, v->state);
    mtext_family(t, "vmckpt_vms", MTEXT_GAUGE, NULL, "Guests by state.");
    by_state_put(t, &b);
    by_state_init(&b, job_states);
    for (j = jobs_first(co); j != NULL; j = j->next) {
        by_state_add(&b, j->state);
        busy += j->cur != NULL;
    }
    mtext_family(t, "vmckpt_jobs", MTEXT_GAUGE, NULL, "Jobs by state.");
    by_state_put(t, &b);
    mtext_family(t, "vmckpt_job_epochs_in_flight", MTEXT_GAUGE, NULL,
                 "Jobs with a checkpoint in progress.");
    mtext_uint(t, NULL, busy);
    mtext_family(t, "vmckpt_job_last_epoch", MTEXT_GAUGE, NULL,
                 "The last committed epoch of each job (0: none).");
    for (j = jobs_first(co); j != NULL; j = j->next)
        mtext_uint(t, (mtext_labels){"job", j->name, NULL}, j->last_epoch);
}

/* The counters of stats.c. */
static void put_stats(const struct stats *s, struct mtext *t)
{
    mtext_family(t, "vmckpt_job_epochs", MTEXT_COUNTER, NULL,
                 "Epochs of whole jobs ended, by outcome (from the catalog).");
    mtext_uint(t, (mtext_labels){"state", "committed", NULL}, s->job_committed);
    mtext_uint(t, (mtext_labels){"state", "aborted", NULL}, s->job_aborted);
    mtext_family(t, "vmckpt_vm_epochs", MTEXT_COUNTER, NULL,
                 "Epochs of single guests ended (one per guest of a job "
                 "epoch, and single-guest checkpoints), by outcome (from "
                 "the catalog).");
    mtext_uint(t, (mtext_labels){"state", "committed", NULL}, s->vm_committed);
    mtext_uint(t, (mtext_labels){"state", "aborted", NULL}, s->vm_aborted);
    mtext_family(t, "vmckpt_checkpoint_wire_bytes", MTEXT_COUNTER, "bytes",
                 "Bytes committed guest epochs sent to their stores.");
    mtext_uint(t, NULL, s->wire_bytes);
    mtext_family(t, "vmckpt_checkpoint_stored_bytes", MTEXT_COUNTER, "bytes",
                 "Bytes committed guest epochs take in their stores.");
    mtext_uint(t, NULL, s->disk_bytes);
    mtext_family(t, "vmckpt_vm_pause_seconds", MTEXT_HISTOGRAM, "seconds",
                 "How long each guest was paused, per committed guest epoch.");
    mtext_hist(t, NULL, &s->vm_pause);
    mtext_family(t, "vmckpt_job_pause_window_seconds", MTEXT_HISTOGRAM,
                 "seconds",
                 "From the first guest paused to the last resumed, per "
                 "committed job epoch.");
    mtext_hist(t, NULL, &s->job_window);
    mtext_family(t, "vmckpt_restores", MTEXT_COUNTER, NULL,
                 "Guest restores ended since the coordinator started, by "
                 "result.");
    mtext_uint(t, (mtext_labels){"result", "ok", NULL}, s->restores_ok);
    mtext_uint(t, (mtext_labels){"result", "failed", NULL}, s->restores_failed);
    mtext_family(t, "vmckpt_restore_duration_seconds", MTEXT_HISTOGRAM,
                 "seconds",
                 "From a guest's restore asked to its agent's answer, per "
                 "successful restore since the coordinator started.");
    mtext_hist(t, NULL, &s->restore);
}

static void render(void *arg, struct mtext *t)
{
    struct coord *co = arg;
    struct vmckpt_error err;

    if (stats_load(co, &err) < 0) {
        log_err("metrics: %s", err.text);
        mtext_fail(t, "the catalog's totals are unavailable");
        return;
    }
    mtext_family(t, "vmckpt_build", MTEXT_INFO, NULL,
                 "The coordinator's version.");
    mtext_uint(t,
               (mtext_labels){"version", PACKAGE_VERSION, "daemon",
                              "coordinator", NULL},
               1);
    mtext_family(t, "vmckpt_start_time_seconds", MTEXT_GAUGE, "seconds",
                 "When the coordinator started (unix time): counters said "
                 "to count since the start reset then.");
    mtext_uint(t, NULL, (uint64_t)co->metrics->started);
    put_tables(co, t);
    put_stats(co->stats, t);
}

int metrics_start(struct coord *co, const char *addr, struct vmckpt_error *err)
{
    char bound[96];

    if (addr[0] == '\0')
        return 0;
    co->metrics = calloc(1, sizeof(*co->metrics));
    if (co->metrics == NULL || stats_create(co) < 0) {
        metrics_stop(co);
        return errprintf_errno(err, "metrics");
    }
    co->metrics->started = (int64_t)time(NULL);
    co->metrics->httpd = httpd_start(co->loop, addr, NULL, render, co, err);
    if (co->metrics->httpd == NULL) {
        metrics_stop(co);
        return errprefix(err, "[coordinator] metrics_listen");
    }
    httpd_local_name(co->metrics->httpd, bound, sizeof(bound));
    log_info("metrics on http://%s/metrics", bound);
    return 0;
}

void metrics_stop(struct coord *co)
{
    if (co->metrics != NULL) {
        httpd_stop(co->metrics->httpd);
        free(co->metrics);
        co->metrics = NULL;
    }
    stats_destroy(co);
}
