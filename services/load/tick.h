/* tick.h: the open loop's timer, armed once per phase, not once per request.
 *
 * A worker's requests are due every n x period ns (n workers share the
 * schedule). Re-arming a one-shot timerfd for each one cost a
 * timerfd_settime per request on top of libevent's own before each
 * epoll_wait (at 30,000 requests/s: 1.81 timerfd_settime per request,
 * 0.76 with this; the client's CPU 78-82 % -> 75-80 % of a core:
 * docs/overload-log.md, "A refusal's floor"). So the timer ticks
 * periodically, every iv = ceil(n x period) ns from the due time of
 * request j0: request j rides tick
 * tick0 + (j - j0) / n x iv. Rounding iv up keeps every tick at or after
 * its request's due time (none finds nothing due) and late by at most
 * 1 ns more per tick; once a request would be woken more than `slack`
 * late, or early (the worker fell behind and caught up, the schedule
 * moved), the timer is armed again from that request. */
#ifndef LOAD_TICK_H
#define LOAD_TICK_H
#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#define LOAD_TICK_SLACK_NS 20000u   /* 20 us: 1/50 of the "behind" threshold (1 ms) */

typedef struct load_tick {
    uint64_t tick0;   /* the first tick: request j0's due time; 0: not armed */
    uint64_t j0;
    uint64_t iv;      /* ns between ticks */
} load_tick;

/* The period between one worker's requests (n workers, `period_ns` apart
 * over all of them), rounded up to whole ns; at least 1. */
static inline uint64_t load_tick_interval(double period_ns, int n)
{
    double iv = ceil(period_ns * n);
    return iv < 1 ? 1 : (uint64_t)iv;
}

/* True if the timer as armed wakes request j (this worker's: j - j0 a
 * multiple of n), due at `due`, no earlier than due and at most `slack`
 * after it. */
static inline bool load_tick_keeps(const load_tick *k, uint64_t j, int n, uint64_t due, uint64_t slack)
{
    if (!k->tick0 || j < k->j0 || n < 1)
        return false;
    uint64_t at = k->tick0 + (j - k->j0) / (uint64_t)n * k->iv;
    return at >= due && at - due <= slack;
}

#endif
