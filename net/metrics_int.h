/* metrics_int.h: what the server's files know of sl_metrics (private). */
#ifndef SL_METRICS_INT_H
#define SL_METRICS_INT_H
#include <stdbool.h>
#include <event2/buffer.h>
#include "sl_metrics.h"

/* The families of a registry in the text exposition format (version
 * 0.0.4), or in OpenMetrics 1.0 (`om`: counters' family names without
 * _total, exemplars on histogram buckets; the caller ends the text with
 * "# EOF"). */
void sl__metrics_text(sl_metrics *m, struct evbuffer *b, bool om);

/* The same with what collectors reported in scrapes sc[0..nsc) (one per
 * reactor; NULL entries are skipped). */
void sl__metrics_write(sl_metrics *m, sl_metrics_scrape *const *sc, int nsc, struct evbuffer *b, bool om);

/* A scrape's samples: made empty (0 or -ENOMEM), filled on reactor i by
 * sl__metrics_collect (every collector's call for that reactor), freed. */
int sl__scrape_new(sl_metrics_scrape **out, sl_metrics *m);
void sl__metrics_collect(sl_metrics *m, sl_metrics_scrape *sc, int reactor);
void sl__scrape_free(sl_metrics_scrape *sc);

/* A label value in the text formats: \\, \" and \n escaped, and made valid
 * UTF-8 (each byte of a malformed sequence becomes U+FFFD). */
void sl__label_value(struct evbuffer *b, const char *s);

/* The hot path of the server: the row is the reactor's index, known to
 * the caller, so no thread-local lookup is made. */
void sl__series_add_at(sl_series *s, int row, double v);
void sl__series_inc_at(sl_series *s, int row);   /* a counter's add(1) */
void sl__series_observe_at(sl_series *s, int row, double v, const uint8_t *trace_id);

/* Sets the series to v for a figure read elsewhere (the OS's CPU time):
 * in the shared row, the reactors' rows left as they are (0). */
void sl__series_put(sl_series *s, double v);

/* The number of reactors the registry has rows for. */
int sl__metrics_rows(const sl_metrics *m);
#endif
