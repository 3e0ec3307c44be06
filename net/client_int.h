/* client_int.h: what the server needs of upstreams for /metrics (private). */
#ifndef SL_CLIENT_INT_H
#define SL_CLIENT_INT_H
#include "sl_client.h"

/* The runtime the upstream was made on. */
sl_runtime *sl__upstream_runtime(const sl_http_upstream *up);

/* The counters of reactor `id`'s pool (zero if it never called), read on
 * that reactor: the pool is that reactor's alone. */
void sl__upstream_stats_peek(sl_http_upstream *up, int id, sl_http_upstream_stats *st);
#endif
