/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test_hold_file: for fault-injection tests only. When the file names a
 * phase ("PHASE MS"), every job epoch (or restart) stops at the end of
 * that phase once, for MS ms, so that a test can inject a fault while it
 * is there (tests/faults/). Never set in production: the job only waits.
 *
 *   precopy  pre-copy runs; the cut is not decided yet
 *   align    pre-copy over, the ranks (if any) wait at their barrier; the
 *            CUT is not sent yet
 *   cut      every VM paused (CUT done); RESUME not sent yet
 *   drain    the VMs run again while their images drain; DURABLE reports
 *            are taken but the commit waits
 *   commit   every image durable; the catalog not yet written
 *   restore  a restart's VMs all restored and paused; not resumed yet */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "lib/util/log.h"

static const char *const phases[] = {"precopy", "align",   "cut", "drain",
                                     "commit",  "restore", NULL};

int jobs_set_hold_file(struct coord *co, const char *path)
{
    free(co->jobs->hold_file);
    co->jobs->hold_file = NULL;
    if (path == NULL || path[0] == '\0')
        return 0;
    co->jobs->hold_file = strdup(path);
    if (co->jobs->hold_file == NULL)
        return -1;
    log_warn("test_hold_file = %s: job epochs may be held for fault "
             "injection (a test setting)",
             path);
    return 0;
}

/* The hold the file asks for at 'phase': its ms, or 0. */
static unsigned hold_ms(const struct jobs *js, const char *phase)
{
    char name[16], line[64];
    unsigned ms = 0;
    FILE *f;
    size_t i;

    if (js->hold_file == NULL)
        return 0;
    f = fopen(js->hold_file, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            log_warn("test_hold_file %s: %s", js->hold_file, strerror(errno));
        return 0;
    }
    if (fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "%15s %u", name, &ms) != 2) {
        fclose(f);
        log_warn("test_hold_file %s: not \"PHASE MS\"", js->hold_file);
        return 0;
    }
    fclose(f);
    for (i = 0; phases[i] != NULL; i++)
        if (strcmp(phases[i], name) == 0)
            return strcmp(name, phase) == 0 ? ms : 0;
    log_warn("test_hold_file %s: no phase \"%s\"", js->hold_file, name);
    return 0;
}

static void hold_over(struct evloop *loop, struct ev_timer *t)
{
    struct jhold *h = t->arg;

    (void)loop;
    if (!h->holding)
        return;
    h->holding = 0;
    h->done = 1;
    log_info("test_hold: job %s: %s hold over", h->job->name, h->phase);
    h->cont(h->job); /* may free h */
}

int jobs_hold(struct job *j, struct jhold *h, const char *phase,
              void (*cont)(struct job *))
{
    unsigned ms;

    if (h->holding)
        return 1; /* the hold's end goes on from here */
    if (h->done)
        return 0; /* one hold per epoch or restart */
    ms = hold_ms(j->co->jobs, phase);
    if (ms == 0)
        return 0;
    h->holding = 1;
    h->job = j;
    h->cont = cont;
    snprintf(h->phase, sizeof(h->phase), "%s", phase);
    log_info("test_hold: job %s: held at the end of %s for %u ms", j->name,
             phase, ms);
    ev_timer_init(&h->timer, hold_over, h);
    ev_timer_start(j->co->loop, &h->timer, ms);
    return 1;
}

void jobs_hold_end(struct job *j, struct jhold *h)
{
    if (h->holding)
        ev_timer_stop(j->co->loop, &h->timer);
    h->holding = 0;
}
