/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one place the tree reads the clocks: monotonic time for intervals and
 * deadlines, wall time for what is recorded or shown, and absolute
 * deadlines for pthread_cond_timedwait(). */
#ifndef VMCKPT_CLOCK_H
#define VMCKPT_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic clock (CLOCK_MONOTONIC): milliseconds and nanoseconds. */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_ns(void);
/* Wall clock (CLOCK_REALTIME): milliseconds and nanoseconds since the
 * epoch. */
uint64_t clock_wall_ms(void);
uint64_t clock_wall_ns(void);
/* Any clock in nanoseconds (0 if it cannot be read). */
uint64_t clock_ns(clockid_t id);
/* The instant 'ms' milliseconds from now on clock 'id', as a timespec for
 * pthread_cond_timedwait() on a condition variable of that clock. */
struct timespec clock_deadline(clockid_t id, uint64_t ms);

#endif
