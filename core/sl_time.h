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

/* The same clock as the kernel's last tick left it (CLOCK_MONOTONIC_COARSE):
 * about a quarter of sl_now_ns()'s cost (no TSC read), never ahead of a
 * later sl_now_ns(), and behind it by less than sl_coarse_slack_ns(). For
 * statistics, diagnostics, timeouts that may be a few ms late, and for
 * knowing that a deadline is certainly still ahead without the exact read:
 * d > sl_now_coarse_ns() + sl_coarse_slack_ns(). */
uint64_t sl_now_coarse_ns(void);

/* How far sl_now_coarse_ns() may lag: two of its ticks (8 ms at HZ=250). */
uint64_t sl_coarse_slack_ns(void);

/* The absolute deadline `ms` milliseconds from now (sl_now_ns() + ms). */
uint64_t sl_deadline_ms(uint64_t ms);

#endif
