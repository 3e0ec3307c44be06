/* svc_metrics.h: the services' own figures in their /metrics, through the
 * library's metrics API (sl_metrics.h). Process-wide: one server per
 * program. Every update is a no-op before svc_metrics_setup (the pure unit
 * tests link the callers without a server).
 *
 *   sluice_svc_answers_total{route,outcome}   every answer of a business
 *       route: outcome "ok" for a 2xx, else its error code ("out_of_stock",
 *       "deadline_exceeded", "overloaded", ...). For order-svc's
 *       route="/orders": the orders by outcome.
 *   sluice_svc_compensations_total{event}      the outbox (svc_undo.h):
 *       posted, retried (an attempt after the first), completed, refused,
 *       abandoned (still pending at shutdown).
 *   sluice_svc_compensations_pending           entries not yet acknowledged.
 *   sluice_svc_stock_available{item}           inventory-svc: units
 *       neither reserved nor sold. */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H
#include <stdint.h>
#include "sl_http.h"

/* Registers the families on srv's registry. Returns 0, -ENOMEM, -EEXIST
 * (called twice). */
int svc_metrics_setup(sl_http_server *srv);

void svc_metrics_answer(const char *route, int status, const char *code);
void svc_metrics_undo(const char *event, int pending_delta);
/* Sets the stock gauge of item (from the store's writer, or at start). */
void svc_metrics_stock_set(const char *item, int64_t avail);
#endif
