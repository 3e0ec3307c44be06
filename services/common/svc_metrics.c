/* svc_metrics.c: see svc_metrics.h. The families are registered once, at
 * setup, before the reactors run; updates come from any reactor (the
 * registry keeps a row per reactor, so none of this takes a lock). */
#include <stddef.h>
#include "svc_metrics.h"

static sl_metric *answers, *undo, *pending, *stock;

int svc_metrics_setup(sl_http_server *srv)
{
    sl_metrics *m = sl_http_server_metrics(srv);
    static const char *const by_outcome[] = { "route", "outcome", NULL };
    static const char *const by_event[] = { "event", NULL };
    static const char *const by_item[] = { "item", NULL };
    int rc = sl_metric_new(m, &answers, SL_METRIC_COUNTER, "sluice_svc_answers_total",
                           &(sl_metric_opts){ .help = "Answers of the business routes by route and outcome (ok, "
                                              "or the error code).", .labels = by_outcome, .max_series = 512 });
    if (rc == 0)
        rc = sl_metric_new(m, &undo, SL_METRIC_COUNTER, "sluice_svc_compensations_total",
                           &(sl_metric_opts){ .help = "Compensations (undo calls) by event: posted, retried, "
                                              "completed, refused, abandoned.", .labels = by_event });
    if (rc == 0)
        rc = sl_metric_new(m, &pending, SL_METRIC_GAUGE, "sluice_svc_compensations_pending",
                           &(sl_metric_opts){ .help = "Compensations not yet acknowledged by their callee." });
    if (rc == 0)
        rc = sl_metric_new(m, &stock, SL_METRIC_GAUGE, "sluice_svc_stock_available",
                           &(sl_metric_opts){ .help = "Units of an item neither reserved nor sold (inventory).",
                                              .labels = by_item, .max_series = 1024 });
    if (rc < 0)
        answers = undo = pending = stock = NULL;
    return rc;
}

void svc_metrics_answer(const char *route, int status, const char *code)
{
    if (answers && route)
        sl_metric_add(answers, (const char *[]){ route, status >= 200 && status < 300 ? "ok" : code ? code : "error" }, 1);
}

void svc_metrics_undo(const char *event, int pending_delta)
{
    if (!undo)
        return;
    if (event)
        sl_metric_add(undo, (const char *[]){ event }, 1);
    if (pending_delta)
        sl_metric_add(pending, NULL, pending_delta);
}

void svc_metrics_stock_set(const char *item, int64_t avail)
{
    if (stock)
        sl_metric_set(stock, (const char *[]){ item }, (double)avail);
}
