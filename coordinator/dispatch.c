/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The coordinator's dispatch table {type, roles, handler}: the one place
 * that names the handlers of every module. A type that is in the wire
 * table but not here is answered with ERR_NOT_ALLOWED by the server. */
#include "config.h"

#include "dispatch.h"
#include "hosts.h"
#include "jobs.h"
#include "ranks.h"
#include "vms.h"

/* A checkpoint of one VM (one target) is the guests'; of a whole job (no
 * target), the jobs'. */
static int on_ckpt_begin(struct conn *c, const Vmckpt__Envelope *env)
{
    if (env->ckpt_begin->n_targets == 0)
        return jobs_on_checkpoint(c, env);
    return vms_on_checkpoint(c, env);
}

#define R    SERVER_ROLE
#define T(t) VMCKPT__MSG_TYPE__MSG_##t

static const struct server_route routes[] = {
    {T(AGENT_REGISTER), R(AGENT), hosts_on_register},
    {T(HEARTBEAT), R(AGENT), hosts_on_heartbeat},
    {T(AGENT_GOODBYE), R(AGENT), hosts_on_goodbye},
    {T(VM_EXITED), R(AGENT), vms_on_exited},
    {T(HOSTS_QUERY), R(ADMIN), hosts_on_query},
    {T(HOST_FENCE), R(ADMIN), hosts_on_fence},
    {T(VM_START), R(ADMIN), vms_on_start},
    {T(VM_STOP), R(ADMIN), vms_on_stop},
    {T(VMS_QUERY), R(ADMIN), vms_on_query},
    {T(CKPT_BEGIN), R(ADMIN), on_ckpt_begin},
    {T(RESTORE), R(ADMIN), vms_on_restore},
    {T(ACK), R(AGENT), vms_on_agent_reply},
    {T(ERROR), R(AGENT), vms_on_agent_reply},
    {T(CKPT_DURABLE), R(AGENT), vms_on_agent_reply},
    {T(CKPT_ABORT), R(AGENT), vms_on_agent_reply},
    {T(RESTORE_DONE), R(AGENT), vms_on_agent_reply},
    /* reports for a VM: only from the agent of the host that holds it */
    {T(CKPT_STATS), R(AGENT), jobs_on_report},
    {T(CKPT_CUT_DONE), R(AGENT), jobs_on_report},
    {T(JOB_REGISTER), R(ADMIN), jobs_on_register},
    {T(JOBS_QUERY), R(ADMIN), jobs_on_query},
    {T(EPOCHS_QUERY), R(ADMIN), jobs_on_epochs},
    {T(JOB_CANCEL), R(ADMIN), jobs_on_cancel},
    {T(JOB_RESTART), R(ADMIN), jobs_on_restart},
    {T(GC), R(ADMIN), jobs_on_gc},
    /* the ranks' endpoint: MPI ranks and the wrapper, job token only */
    {T(RANK_REGISTER), R(RANK), ranks_on_register},
    {T(RANK_READY), R(RANK), ranks_on_ready},
    {T(JOB_REGISTER), R(RANK), ranks_on_job_register},
    {T(JOB_DEREGISTER), R(RANK), ranks_on_job_deregister},
};

void dispatch_install(struct coord *co)
{
    server_set_routes(co, routes, sizeof(routes) / sizeof(routes[0]));
}
