/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The fence guard: a process of its own (vmckpt-guard) that the agent
 * starts and tells its lease through shared memory. If the agent hangs
 * (SIGSTOP, a stall) or dies while its lease runs out, the agent cannot
 * pause its guests; the guard, past the lease's end, stops their QEMU
 * processes (SIGSTOP) unless the agent said it paused them itself. The
 * agent, alive again, lets them go on only when the coordinator lifts the
 * fence (docs/consistency.md). */
#ifndef VMCKPT_AGENT_GUARD_H
#define VMCKPT_AGENT_GUARD_H

#include <stdint.h>
#include <sys/types.h>

/* What the agent and its guard share (one page, MAP_SHARED). Times are
 * CLOCK_MONOTONIC milliseconds, the same for both processes. */
struct guard_shm {
    uint64_t lease_until; /* the agent's lease ends here; 0: none yet */
    uint64_t paused_for;  /* the agent paused every guest for this lease */
    uint64_t stopped_for; /* the guard stopped the guests for this lease */
    uint64_t beat;        /* the agent's loop ran its fence check here */
    uint32_t quit;        /* the agent stops cleanly: the guard ends */
    uint32_t guard_pid;
};

/* How long past a lease's end the guard leaves the agent to pause the
 * guests itself, and how long the agent's loop may be silent before the
 * guard takes it as hung (an agent whose loop runs pauses its guests
 * itself; stopping a QEMU under its QMP call would stall it). With the
 * guard's check period, well inside the coordinator's
 * HOSTS_FENCE_SLACK_MS after the lease. */
#define GUARD_GRACE_MS  200
#define GUARD_SILENT_MS 300
#define GUARD_CHECK_MS  50

/* Start 'program' as the guard of the guests in 'run_dir' (their
 * JOB-VM.pid files), logging where the agent logs: 'log' is "stderr",
 * "syslog" or the absolute path of the agent's log file. Returns 0, or -1
 * (logged: the agent runs without a guard). */
int guard_start(const char *program, const char *run_dir, const char *log);
/* The guard's pid (the agent's child), 0 if none was started. */
pid_t guard_pid(void);
/* The lease now ends at 'until' (any thread). */
void guard_lease(uint64_t until);
/* Every guest is paused for the lease that ended at 'until'. */
void guard_paused(uint64_t until);
/* The agent's loop is alive at 'now' (its fence check). */
void guard_beat(uint64_t now);
/* A clean stop: the guard ends without touching the guests. */
void guard_quit(void);

#endif
