/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The console's job requests: checkpoint JOB, job set, jobs, list,
 * cancel, restart, gc. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs_int.h"
#include "lib/util/clock.h"
#include "lib/util/log.h"
#include "lib/util/name.h"

/* ---- admin requests ------------------------------------------------------ */

static int ack(struct conn *c, uint64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ack(struct conn *c, uint64_t id, const char *fmt, ...)
{
    Vmckpt__Ack a = VMCKPT__ACK__INIT;
    char text[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    a.text = text;
    return server_send(c, VMCKPT__MSG_TYPE__MSG_ACK, id, &a);
}

static struct job *need_job(struct conn *c, uint64_t id, const char *name)
{
    struct job *j = jobs_find(c->co, name);

    if (j == NULL)
        server_error(c, id, VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                     "no job '%s' (see 'vmckpt jobs')", name);
    return j;
}

int jobs_on_checkpoint(struct conn *c, const Vmckpt__Envelope *env)
{
    struct job *j = need_job(c, env->request_id, env->ckpt_begin->job);
    char why[400];

    if (j == NULL)
        return 0;
    if (env->ckpt_begin->streams > WIRE_MAX_STREAMS)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "%u streams: 1 to %d per VM",
                            env->ckpt_begin->streams, WIRE_MAX_STREAMS);
    if (jobs_begin(j, env->ckpt_begin->streams, why, sizeof(why)) < 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_BUSY,
                            "%s", why);
    return ack(c, env->request_id, "job %s: epoch %llu begins (%zu VM(s))",
               j->name, (unsigned long long)j->cur->epoch, j->cur->n);
}

int jobs_split_hosts(char *list, char **hosts, size_t max)
{
    size_t n = 0;
    char *save = NULL, *h;

    for (h = strtok_r(list, ",", &save); h != NULL;
         h = strtok_r(NULL, ",", &save)) {
        if (n == max || !name_is_plain(h, 63))
            return -1;
        hosts[n++] = h;
    }
    return (int)n;
}

int jobs_keep_epochs(struct coord *co, const char *job)
{
    struct job *j = jobs_find(co, job);

    return j != NULL ? j->keep_epochs : -1;
}

int jobs_on_register(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__JobRegister *r = env->job_register;
    struct job *j;

    if (r->job[0] == '\0' || strlen(r->job) > 64 || strchr(r->job, '/'))
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "bad job name '%s'", r->job);
    if (r->checkpoint_interval[0] &&
        strcmp(r->checkpoint_interval, "off") != 0 &&
        strcmp(r->checkpoint_interval, "auto") != 0 &&
        (strspn(r->checkpoint_interval, "0123456789") !=
             strlen(r->checkpoint_interval) ||
         strlen(r->checkpoint_interval) > 9 ||
         atoi(r->checkpoint_interval) == 0))
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "interval '%s': give seconds (> 0), 'auto' or "
                            "'off'",
                            r->checkpoint_interval);
    if (r->auto_restart[0] && strcmp(r->auto_restart, "yes") != 0 &&
        strcmp(r->auto_restart, "no") != 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "auto_restart '%s': give yes or no",
                            r->auto_restart);
    if (r->lz4[0] && strcmp(r->lz4, "yes") != 0 && strcmp(r->lz4, "no") != 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "lz4 '%s': give yes or no", r->lz4);
    if (r->keep_epochs[0] && strcmp(r->keep_epochs, "default") != 0 &&
        (strspn(r->keep_epochs, "0123456789") != strlen(r->keep_epochs) ||
         strlen(r->keep_epochs) > 4 || atoi(r->keep_epochs) > 1000))
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "keep '%s': give a number of epochs (0 to 1000; "
                            "0 keeps all) or 'default'",
                            r->keep_epochs);
    if (r->restart_hosts[0] && strcmp(r->restart_hosts, "none") != 0) {
        char copy[sizeof(j->restart_hosts)], *hosts[64];

        if (strlen(r->restart_hosts) >= sizeof(copy) ||
            (snprintf(copy, sizeof(copy), "%s", r->restart_hosts),
             jobs_split_hosts(copy, hosts, 64) <= 0))
            return server_error(c, env->request_id,
                                VMCKPT__ERROR_CODE__ERR_INVALID,
                                "restart hosts '%.200s': give 1 to 64 host "
                                "names separated by commas, or 'none'",
                                r->restart_hosts);
    }
    j = jobs_touch(c->co, r->job);
    if (j == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
    if (r->checkpoint_interval[0])
        snprintf(j->interval, sizeof(j->interval), "%s",
                 r->checkpoint_interval);
    if (r->auto_restart[0])
        j->auto_restart = strcmp(r->auto_restart, "yes") == 0;
    if (r->lz4[0])
        j->lz4 = strcmp(r->lz4, "yes") == 0;
    if (r->restart_hosts[0])
        snprintf(j->restart_hosts, sizeof(j->restart_hosts), "%s",
                 strcmp(r->restart_hosts, "none") == 0 ? "" : r->restart_hosts);
    if (r->keep_epochs[0])
        j->keep_epochs =
            strcmp(r->keep_epochs, "default") == 0 ? -1 : atoi(r->keep_epochs);
    if (r->mtbf_s)
        j->mtbf_s = r->mtbf_s;
    jobs_save(j);
    jobs_schedule(j);
    {
        Vmckpt__JobRegistered ok = VMCKPT__JOB_REGISTERED__INIT;
        char text[600], keep[40];

        if (j->keep_epochs < 0)
            snprintf(keep, sizeof(keep), "%u (the default)",
                     vms_keep_epochs(c->co));
        else if (j->keep_epochs == 0)
            snprintf(keep, sizeof(keep), "all");
        else
            snprintf(keep, sizeof(keep), "%d", j->keep_epochs);
        log_info(
            "job %s: interval %s (%llu s in effect), auto_restart %s, "
            "MTBF %llu s, lz4 %s, keep %s, restart hosts %.300s",
            j->name, j->interval, (unsigned long long)jobs_interval_s(j),
            j->auto_restart ? "yes" : "no",
            (unsigned long long)(j->mtbf_s ? j->mtbf_s : c->co->jobs->mtbf_s),
            j->lz4 ? "yes" : "no", keep,
            j->restart_hosts[0] ? j->restart_hosts : "any");
        snprintf(text, sizeof(text),
                 "job %s: interval %s (%llu s in effect), auto_restart %s, "
                 "lz4 %s, keep %s, restart hosts %.300s",
                 j->name, j->interval, (unsigned long long)jobs_interval_s(j),
                 j->auto_restart ? "yes" : "no", j->lz4 ? "yes" : "no", keep,
                 j->restart_hosts[0] ? j->restart_hosts : "any");
        ok.job = j->name;
        ok.token.data = j->token.bytes;
        ok.token.len = j->token.len;
        ok.text = text;
        return server_send(c, VMCKPT__MSG_TYPE__MSG_JOB_REGISTERED,
                           env->request_id, &ok);
    }
}

int jobs_on_query(struct conn *c, const Vmckpt__Envelope *env)
{
    Vmckpt__JobsReply reply = VMCKPT__JOBS_REPLY__INIT;
    Vmckpt__JobInfo *infos, **ptrs;
    struct job *j;
    struct vmrec *v;
    size_t n = 0, i = 0;
    char(*prot)[200];
    int rc;

    for (j = c->co->jobs->list; j != NULL; j = j->next)
        n++;
    infos = calloc(n ? n : 1, sizeof(*infos));
    ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    prot = calloc(n ? n : 1, sizeof(*prot));
    if (infos == NULL || ptrs == NULL || prot == NULL) {
        free(infos);
        free(ptrs);
        free(prot);
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_INTERNAL, "out of memory");
    }
    for (j = c->co->jobs->list; j != NULL; j = j->next) {
        Vmckpt__JobInfo *ji = &infos[i];

        if (env->jobs_query->job[0] && strcmp(env->jobs_query->job, j->name))
            continue;
        vmckpt__job_info__init(ji);
        ji->job = j->name;
        ji->state = j->state;
        ji->last_epoch = j->last_epoch;
        for (v = vms_first(c->co); v != NULL; v = v->next)
            if (strcmp(v->job, j->name) == 0)
                ji->nvms++;
        ji->interval = j->interval;
        ji->interval_s = jobs_interval_s(j);
        ji->auto_restart = j->auto_restart;
        ji->lz4 = j->lz4;
        ji->keep_default = j->keep_epochs < 0;
        ji->restart_hosts = j->restart_hosts;
        ji->keep_epochs = j->keep_epochs < 0 ? vms_keep_epochs(c->co)
                                             : (uint32_t)j->keep_epochs;
        ji->mtbf_s = j->mtbf_s ? j->mtbf_s : c->co->jobs->mtbf_s;
        ji->cost_ms = j->cost_ms;
        ji->epoch = j->cur ? j->cur->epoch : 0;
        ji->phase = j->cur ? j->cur->phase : j->rs ? "restore" : "";
        ji->next_in_ms =
            j->next_due_ms ? (int64_t)(j->next_due_ms - clock_mono_ms()) : -1;
        ji->last_error = j->last_error;
        ji->last_window_us = j->last_window_us;
        ji->ranks = jobs_rank_count(j);
        ji->nranks = j->nranks;
        ji->protection =
            (char *)jobs_rank_protection(j, prot[i], sizeof(prot[i]));
        ji->last_align = j->last_align;
        ji->incarnation = j->incarnation;
        ji->stale = j->stale;
        ptrs[i++] = ji;
    }
    if (env->jobs_query->job[0] && i == 0) {
        free(infos);
        free(ptrs);
        free(prot);
        return server_error(
            c, env->request_id, VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
            "no job '%s' (see 'vmckpt jobs')", env->jobs_query->job);
    }
    reply.n_jobs = i;
    reply.jobs = ptrs;
    rc = server_send(c, VMCKPT__MSG_TYPE__MSG_JOBS_REPLY, env->request_id,
                     &reply);
    free(prot);
    free(infos);
    free(ptrs);
    return rc;
}

struct epochs_acc {
    Vmckpt__EpochInfo **v;
    size_t n, cap, bytes;
    int more, oom;
};

/* A reply's rows stop past this many bytes (a frame holds 1 MiB; a row is
 * at most a few KiB): a large job's listing comes in pages. */
#define EPOCHS_PAGE_BYTES (64 * 1024)

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static int epoch_add(const struct catalog_epoch *e, uint64_t window, void *arg)
{
    struct epochs_acc *a = arg;
    Vmckpt__EpochInfo *ei;

    if (a->bytes >= EPOCHS_PAGE_BYTES) {
        a->more = 1;
        return 1;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        Vmckpt__EpochInfo **nv = realloc(a->v, cap * sizeof(*nv));

        if (nv == NULL)
            return a->oom = -1;
        a->v = nv;
        a->cap = cap;
    }
    ei = calloc(1, sizeof(*ei));
    if (ei == NULL)
        return a->oom = -1;
    vmckpt__epoch_info__init(ei);
    ei->job = dup_or_empty(e->job);
    ei->vm = dup_or_empty(e->vm);
    ei->state = dup_or_empty(e->state);
    ei->host = dup_or_empty(e->host);
    ei->store_host = dup_or_empty(e->store_host);
    ei->note = dup_or_empty(e->note);
    ei->source = dup_or_empty(e->source);
    ei->align = dup_or_empty(e->align);
    ei->barriers = dup_or_empty(e->barriers);
    ei->epoch = e->epoch;
    ei->parent = e->parent;
    ei->pages = e->pages;
    ei->disk_bytes = e->disk_bytes;
    ei->pause_us = e->pause_us;
    ei->paused_at_ns = e->paused_at_ns;
    ei->resumed_at_ns = e->resumed_at_ns;
    ei->total_ms = e->total_ms;
    ei->window_us = window;
    ei->sealed = e->sealed != 0;
    a->v[a->n++] = ei;
    if (ei->job == NULL || ei->vm == NULL || ei->state == NULL ||
        ei->host == NULL || ei->store_host == NULL || ei->note == NULL ||
        ei->source == NULL || ei->align == NULL || ei->barriers == NULL)
        return a->oom = -1; /* (freed with the others) */
    a->bytes += vmckpt__epoch_info__get_packed_size(ei) + 4;
    return 0;
}

int jobs_on_epochs(struct conn *c, const Vmckpt__Envelope *env)
{
    Vmckpt__EpochsReply reply = VMCKPT__EPOCHS_REPLY__INIT;
    struct epochs_acc a = {0};
    struct vmckpt_error err;
    size_t i;
    int rc;

    if (need_job(c, env->request_id, env->epochs_query->job) == NULL)
        return 0;
    if (catalog_epoch_each(
            c->co->cat, env->epochs_query->job, env->epochs_query->after_epoch,
            env->epochs_query->after_vm, epoch_add, &a, &err) < 0)
        rc = server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                          "%s", err.text);
    else if (a.oom)
        rc = server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INTERNAL,
                          "listing the epochs of %s: out of memory",
                          env->epochs_query->job);
    else {
        reply.n_epochs = a.n;
        reply.epochs = a.v;
        reply.more = a.more;
        rc = server_send(c, VMCKPT__MSG_TYPE__MSG_EPOCHS_REPLY, env->request_id,
                         &reply);
    }
    for (i = 0; i < a.n; i++) {
        free(a.v[i]->job);
        free(a.v[i]->vm);
        free(a.v[i]->state);
        free(a.v[i]->host);
        free(a.v[i]->store_host);
        free(a.v[i]->note);
        free(a.v[i]->source);
        free(a.v[i]->align);
        free(a.v[i]->barriers);
        free(a.v[i]);
    }
    free(a.v);
    return rc;
}

int jobs_on_cancel(struct conn *c, const Vmckpt__Envelope *env)
{
    struct job *j = need_job(c, env->request_id, env->job_cancel->job);
    uint64_t e;

    if (j == NULL)
        return 0;
    if (j->cur == NULL)
        return server_error(c, env->request_id,
                            VMCKPT__ERROR_CODE__ERR_NOT_FOUND,
                            "job %s has no checkpoint in progress", j->name);
    e = j->cur->epoch;
    jobs_abort(j, "cancelled by %s", c->auth.peer_name);
    return ack(c, env->request_id,
               "job %s: epoch %llu cancelled; the guests run on, epoch %llu "
               "stays the last committed",
               j->name, (unsigned long long)e,
               (unsigned long long)j->last_epoch);
}

int jobs_on_restart(struct conn *c, const Vmckpt__Envelope *env)
{
    const Vmckpt__JobRestart *r = env->job_restart;
    struct job *j = need_job(c, env->request_id, r->job);
    char why[400];

    if (j == NULL)
        return 0;
    if ((r->all ? jobs_restart_all
                : jobs_restart)(j, r->epoch, r->hosts, r->n_hosts, c,
                                env->request_id, why, sizeof(why)) < 0)
        return server_error(c, env->request_id, VMCKPT__ERROR_CODE__ERR_INVALID,
                            "%s", why);
    return 0; /* answered when every VM is back */
}

int jobs_on_gc(struct conn *c, const Vmckpt__Envelope *env)
{
    struct coord *co = c->co;
    struct vmrec *v;
    struct job *j;
    struct clean_note *n;
    char hosts[64][64];
    size_t nvms = 0, pend = 0, nh = 0, i;

    /* retention again for every VM (stores that were away catch up), and
     * aborts not yet delivered */
    for (v = vms_first(c->co); v != NULL; v = v->next) {
        if (v->chain_store[0]) {
            if (jobs_find(co, v->job) == NULL) /* (else with its job) */
                vms_retain_some(co, v->job, v->name, 0);
            nvms++;
        }
    }
    for (j = co->jobs->list; j != NULL; j = j->next)
        vms_retain_some(co, j->name, NULL, 0);
    for (n = co->jobs->to_clean; n != NULL; n = n->next) {
        pend++;
        for (i = 0; i < nh; i++)
            if (strcmp(hosts[i], n->host) == 0)
                break;
        if (i == nh && nh < 64)
            snprintf(hosts[nh++], sizeof(hosts[0]), "%s", n->host);
    }
    for (i = 0; i < nh; i++)
        jobs_host_up(co, hosts[i]); /* delivers if the host is up */
    for (n = co->jobs->to_clean; n != NULL; n = n->next)
        pend--;
    return ack(c, env->request_id,
               "gc: retention re-applied to %zu VM(s); %zu pending abort(s) "
               "delivered",
               nvms, pend);
}

#define TOKEN_LEN 32

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Give the job the token its ranks prove: from its catalog hex, or new
 * when there is none (or it does not parse). 0 or -1. */
int jobs_token_init(struct job *j, const char *hex)
{
    uint8_t raw[TOKEN_LEN];
    size_t i;

    if (hex != NULL && strlen(hex) == 2 * TOKEN_LEN) {
        for (i = 0; i < TOKEN_LEN; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

            if (hi < 0 || lo < 0)
                break;
            raw[i] = (uint8_t)(hi << 4 | lo);
        }
        if (i == TOKEN_LEN)
            goto set;
    }
    if (auth_random(raw, sizeof(raw)) < 0)
        return -1;
set:
    for (i = 0; i < TOKEN_LEN; i++)
        snprintf(j->token_hex + 2 * i, 3, "%02x", raw[i]);
    auth_key_dispose(&j->token);
    return auth_key_set(&j->token, raw, sizeof(raw));
}

int jobs_guests(struct coord *co, const char *name)
{
    struct vmrec **vms;
    int n = jobs_vms(co, name, &vms);

    free(vms);
    return n;
}
