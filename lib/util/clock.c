/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Clock readings in milliseconds and nanoseconds (clock.h). */
#include "config.h"

#include "clock.h"

uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    if (clock_gettime(id, &ts) < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t clock_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

uint64_t clock_wall_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

uint64_t clock_wall_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000;
}

struct timespec clock_deadline(clockid_t id, uint64_t ms)
{
    struct timespec t = {0, 0};

    clock_gettime(id, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}
