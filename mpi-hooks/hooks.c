/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libvmckpt-mpi: PMPI interposition that aligns a job's global checkpoint
 * with an MPI_Barrier (docs/mpi.md).
 *
 * MPI_Init registers the rank with the coordinator (channel.c). Every
 * MPI_Barrier over all ranks becomes one PMPI_Allreduce (MAX) of the epoch
 * this rank was asked to cut, 0 if none: it synchronizes like the barrier
 * it replaces, and every rank learns the same answer, so all of them stop
 * at the same barrier instance even if only one heard the request. Then
 * each reports READY with its barrier count and waits for RELEASE.
 *
 * Works through LD_PRELOAD and when linked before -lmpi; the Fortran entry
 * points (mpif.h, use mpi, use mpi_f08) are here too, since Open MPI's
 * Fortran layers call PMPI_* or internal functions, not MPI_*. The hooks
 * never stop the application: without a coordinator they say so once and
 * MPI runs unprotected. */
#include "config.h"

#include <dlfcn.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "hooks_log.h"

#define EXPORT __attribute__((visibility("default")))

static int started; /* after_init ran */
static int enabled; /* every rank has a job: barriers go through us */
static int world_size;
static uint64_t barriers;   /* barriers over all ranks so far */
static uint64_t done_epoch; /* the last cut this rank stopped for */

static void vm_name(char *out, size_t len, const char *host)
{
    const char *v = getenv("VMCKPT_VM");
    char buf[4096], *p;
    FILE *f;
    size_t n;

    snprintf(out, len, "%s", v != NULL && v[0] ? v : host);
    if (v != NULL && v[0])
        return;
    f = fopen("/proc/cmdline", "re");
    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strstr(buf, "vmckpt.name=");
    if (p != NULL) {
        p += strlen("vmckpt.name=");
        snprintf(out, len, "%.*s", (int)strcspn(p, " \n"), p);
    }
}

static void after_init(void)
{
    struct chan_target t;
    struct chan_rank r;
    struct vmckpt_error err;
    int rank = 0, have, all = 0;
    char prefix[64];

    if (started)
        return;
    started = 1;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Comm_size(MPI_COMM_WORLD, &world_size);
    snprintf(prefix, sizeof(prefix), "vmckpt-mpi[rank %d]", rank);
    hooks_log_prefix(prefix);
    have = chan_target_get(&t, &err);
    if (have < 0) {
        hooks_log("%s: this job runs unprotected", err.text);
        have = 0;
    }
    /* the same choice on every rank, or barriers would not match */
    if (PMPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) !=
            MPI_SUCCESS ||
        !all) {
        if (have) {
            hooks_log("some ranks have no vmckpt job: barriers are not "
                      "aligned, this job runs unprotected");
            chan_target_dispose(&t);
        }
        return;
    }
    enabled = 1;
    memset(&r, 0, sizeof(r));
    r.rank = (uint32_t)rank;
    r.size = (uint32_t)world_size;
    if (gethostname(r.host, sizeof(r.host) - 1) < 0)
        snprintf(r.host, sizeof(r.host), "unknown");
    vm_name(r.vm, sizeof(r.vm), r.host);
    if (getenv("VMCKPT_RUN") != NULL)
        r.run = strtoull(getenv("VMCKPT_RUN"), NULL, 10);
    if (chan_start(&t, &r, 3000, &err) < 0)
        hooks_log("cannot reach the coordinator at %s (%s): this rank runs "
                  "unprotected%s",
                  t.addr, err.text,
                  chan_refused() ? "" : ", retrying in the background");
    else
        hooks_debug("registered with %s for job %s", t.addr, t.job);
    chan_target_dispose(&t);
}

static void before_finalize(void)
{
    if (enabled) {
        hooks_debug("%llu barrier(s) over all ranks, the last cut %llu",
                    (unsigned long long)barriers,
                    (unsigned long long)done_epoch);
        chan_stop();
    }
    enabled = 0;
}

static int barrier(MPI_Comm comm)
{
    uint64_t mine, all = 0, from;
    int size, rc;

    if (!enabled)
        return PMPI_Barrier(comm);
    if (comm != MPI_COMM_WORLD &&
        (PMPI_Comm_size(comm, &size) != MPI_SUCCESS || size != world_size))
        return PMPI_Barrier(comm); /* not every rank: never a cut point */
    mine = chan_pending();
    barriers++;
    rc = PMPI_Allreduce(&mine, &all, 1, MPI_UINT64_T, MPI_MAX, comm);
    if (rc != MPI_SUCCESS || all <= done_epoch)
        return rc;
    done_epoch = all;
    from = chan_wait(all, barriers);
    if (from != 0)
        hooks_log("restored from epoch %llu at barrier %llu; going on",
                  (unsigned long long)from, (unsigned long long)barriers);
    return MPI_SUCCESS;
}

/* ---- C ---------------------------------------------------------------- */

EXPORT int MPI_Init(int *argc, char ***argv)
{
    int rc = PMPI_Init(argc, argv);

    if (rc == MPI_SUCCESS)
        after_init();
    return rc;
}

EXPORT int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    int rc = PMPI_Init_thread(argc, argv, required, provided);

    if (rc == MPI_SUCCESS)
        after_init();
    return rc;
}

EXPORT int MPI_Barrier(MPI_Comm comm)
{
    return barrier(comm);
}

EXPORT int MPI_Finalize(void)
{
    before_finalize();
    return PMPI_Finalize();
}

/* ---- Fortran: mpif.h and use mpi (every name mangling), use mpi_f08 --- */

typedef void (*f_ierr_fn)(MPI_Fint *ierr);
typedef void (*f_thread_fn)(MPI_Fint *required, MPI_Fint *provided,
                            MPI_Fint *ierr);

/* The MPI library's own entry point of that name (after this library). */
static void *next_fn(const char *name)
{
    void *f = dlsym(RTLD_NEXT, name);

    if (f == NULL)
        hooks_log("%s not found in the MPI library", name);
    return f;
}

static void f_init(const char *name, MPI_Fint *ierr)
{
    f_ierr_fn next = (f_ierr_fn)next_fn(name);
    MPI_Fint local = 0;

    if (ierr == NULL) /* use mpi_f08: ierror is optional */
        ierr = &local;
    if (next == NULL) {
        *ierr = MPI_ERR_OTHER;
        return;
    }
    next(ierr);
    if (*ierr == MPI_SUCCESS)
        after_init();
}

static void f_init_thread(const char *name, MPI_Fint *required,
                          MPI_Fint *provided, MPI_Fint *ierr)
{
    f_thread_fn next = (f_thread_fn)next_fn(name);
    MPI_Fint local = 0;

    if (ierr == NULL)
        ierr = &local;
    if (next == NULL) {
        *ierr = MPI_ERR_OTHER;
        return;
    }
    next(required, provided, ierr);
    if (*ierr == MPI_SUCCESS)
        after_init();
}

static void f_finalize(const char *name, MPI_Fint *ierr)
{
    f_ierr_fn next = (f_ierr_fn)next_fn(name);
    MPI_Fint local = 0;

    if (ierr == NULL)
        ierr = &local;
    before_finalize();
    if (next == NULL) {
        *ierr = MPI_ERR_OTHER;
        return;
    }
    next(ierr);
}

static void f_barrier(MPI_Fint *comm, MPI_Fint *ierr)
{
    int rc = barrier(PMPI_Comm_f2c(*comm));

    if (ierr != NULL)
        *ierr = (MPI_Fint)rc;
}

#define F_IERR(sym, impl)                                                      \
    EXPORT void sym(MPI_Fint *ierr);                                           \
    EXPORT void sym(MPI_Fint *ierr)                                            \
    {                                                                          \
        impl(#sym, ierr);                                                      \
    }
#define F_THREAD(sym)                                                          \
    EXPORT void sym(MPI_Fint *required, MPI_Fint *provided, MPI_Fint *ierr);   \
    EXPORT void sym(MPI_Fint *required, MPI_Fint *provided, MPI_Fint *ierr)    \
    {                                                                          \
        f_init_thread(#sym, required, provided, ierr);                         \
    }
#define F_BARRIER(sym)                                                         \
    EXPORT void sym(MPI_Fint *comm, MPI_Fint *ierr);                           \
    EXPORT void sym(MPI_Fint *comm, MPI_Fint *ierr)                            \
    {                                                                          \
        f_barrier(comm, ierr);                                                 \
    }

F_IERR(mpi_init, f_init)
F_IERR(mpi_init_, f_init)
F_IERR(mpi_init__, f_init)
F_IERR(MPI_INIT, f_init)
F_IERR(mpi_init_f08_, f_init)
F_THREAD(mpi_init_thread)
F_THREAD(mpi_init_thread_)
F_THREAD(mpi_init_thread__)
F_THREAD(MPI_INIT_THREAD)
F_THREAD(mpi_init_thread_f08_)
F_IERR(mpi_finalize, f_finalize)
F_IERR(mpi_finalize_, f_finalize)
F_IERR(mpi_finalize__, f_finalize)
F_IERR(MPI_FINALIZE, f_finalize)
F_IERR(mpi_finalize_f08_, f_finalize)
F_BARRIER(mpi_barrier)
F_BARRIER(mpi_barrier_)
F_BARRIER(mpi_barrier__)
F_BARRIER(MPI_BARRIER)
F_BARRIER(mpi_barrier_f08_)
