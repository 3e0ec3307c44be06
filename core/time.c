/* time.c: the monotonic clock. */
#include <time.h>
#include "internal.h"
#include "sl_time.h"

uint64_t sl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec + 1;
}

/* The kernel's clock as of its last tick: no TSC read, so several times
 * cheaper, and up to a tick behind sl_now_ns(). For statistics and
 * diagnostics only (when a task was spawned, since when it waits): a
 * difference against it must not assume which of the two is later. */
uint64_t sl__now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec + 1;
}

uint64_t sl_deadline_ms(uint64_t ms)
{
    return sl_now_ns() + ms * SL_NS_PER_MS;
}
