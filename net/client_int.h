/* client_int.h: what the server needs of upstreams for /metrics (private). */
#ifndef SL_CLIENT_INT_H
#define SL_CLIENT_INT_H
#include <signal.h>
#include "sl_client.h"
#include "sl_metrics.h"

/* A write to a socket whose peer is gone must fail with EPIPE, not kill
 * the process: libevent writes with writev, which raises SIGPIPE. A
 * handler the program installed itself is left alone. */
static inline void sl__ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

/* The runtime the upstream was made on. */
sl_runtime *sl__upstream_runtime(const sl_http_upstream *up);

/* The counters of reactor `id`'s pool (zero if it never called), read on
 * that reactor: the pool is that reactor's alone. */
void sl__upstream_stats_peek(sl_http_upstream *up, int id, sl_http_upstream_stats *st);

/* Where an upstream's attempts are counted (the server it was added to,
 * sl_http_server_add_upstream): sluice_upstream_request_duration_seconds
 * {upstream,replica} and sluice_upstream_attempts_total{upstream,replica,
 * result}, and its calls refused by fail-fast in sluice_upstream_failfast_total
 * {upstream,reason} (reason: latency or throttle). NULL families: nowhere.
 * Set while the runtime does not run. */
typedef struct sl__up_metrics {
    sl_metric *dur, *attempts, *failfast;
    char name[64];
} sl__up_metrics;
void sl__upstream_set_metrics(sl_http_upstream *up, const sl__up_metrics *m);

/* On reactor r (the caller's): whether a call to up with `deadline` (0:
 * none) would be refused by fail-fast now (sl_client.h: the same rules and
 * the same draw; a refusal counts in the throttle's window as a refused
 * call, not in stats.failfast: the server counts it). False with
 * no_fail_fast, or when r's pool cannot be made. */
bool sl__upstream_would_refuse(sl_http_upstream *up, sl_reactor *r, uint64_t deadline, uint64_t now);
#endif
