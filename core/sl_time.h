/* sl_time.h: the one clock of sluice.
 *
 * Every deadline in sluice is an absolute point on CLOCK_MONOTONIC, in
 * nanoseconds, as returned by sl_now_ns(). Monotonic time cannot jump when
 * an administrator or NTP sets the wall clock, so a deadline never stretches
 * or shrinks. 0 means "no deadline" wherever a deadline is accepted. */
#ifndef SL_TIME_H
#define SL_TIME_H
#include <stdint.h>

#define SL_NS_PER_US 1000ULL
#define SL_NS_PER_MS 1000000ULL
#define SL_NS_PER_S  1000000000ULL

/* No deadline. */
#define SL_FOREVER 0ULL

/* Nanoseconds on CLOCK_MONOTONIC. Never fails, never returns 0. */
uint64_t sl_now_ns(void);

/* The absolute deadline `ms` milliseconds from now (sl_now_ns() + ms). */
uint64_t sl_deadline_ms(uint64_t ms);

#endif
