/* time.c: the monotonic clock. */
#include <stdatomic.h>
#include <time.h>
#include "sl_time.h"

uint64_t sl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec + 1;
}

/* The kernel updates the coarse clock every tick, so it may be a tick
 * behind: a difference against it must not assume which of the two is
 * later. */
uint64_t sl_now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec + 1;
}

uint64_t sl_coarse_slack_ns(void)
{
    static _Atomic uint64_t slack;   /* the same value whichever thread sets it */
    uint64_t s = atomic_load_explicit(&slack, memory_order_relaxed);
    if (!s) {
        struct timespec res;
        if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) < 0 || (!res.tv_sec && !res.tv_nsec))
            res = (struct timespec){ 0, 10 * 1000 * 1000 };   /* HZ=100's tick */
        s = 2 * ((uint64_t)res.tv_sec * SL_NS_PER_S + (uint64_t)res.tv_nsec);
        atomic_store_explicit(&slack, s, memory_order_relaxed);
    }
    return s;
}

uint64_t sl_deadline_ms(uint64_t ms)
{
    return sl_now_ns() + ms * SL_NS_PER_MS;
}
