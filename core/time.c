/* time.c: the monotonic clock. */
#include <time.h>
#include "sl_time.h"

uint64_t sl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec + 1;
}

uint64_t sl_deadline_ms(uint64_t ms)
{
    return sl_now_ns() + ms * SL_NS_PER_MS;
}
