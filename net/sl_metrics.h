/* sl_metrics.h: counters, gauges and histograms an application adds to
 * its server's /metrics.
 *
 *     sl_metrics *m = sl_http_server_metrics(srv);
 *     sl_metric *orders;
 *     static const char *const by[] = { "outcome", NULL };
 *     sl_metric_new(m, &orders, SL_METRIC_COUNTER, "orders_total",
 *                   &(sl_metric_opts){ .help = "Orders by outcome.", .labels = by });
 *     ...
 *     sl_metric_add(orders, (const char *[]){ "paid" }, 1);      // per update
 *     sl_series *paid;                                           // or resolved once,
 *     sl_metric_series(orders, (const char *[]){ "paid" }, &paid);
 *     sl_series_add(paid, 1);                                    // for the hot path
 *
 * FAMILIES. A family has a name, a type, a help text and a fixed list of
 * label names (at most SL_METRIC_LABELS_MAX). A series is one set of label
 * values of a family. Names follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*
 * for families, [a-zA-Z_][a-zA-Z0-9_]* for labels, at most
 * SL_METRIC_NAME_MAX bytes each, and no label name
 * starting with "__" or called "le" (a histogram's own). Label values may
 * hold any bytes: they are escaped (and made valid UTF-8) at scrape.
 *
 * STORAGE. Every reactor of the runtime has its own cells for every series
 * and updates them with plain relaxed loads and stores (no lock, no
 * read-modify-write, no cache line shared with another reactor); a scrape
 * sums the cells of all reactors. Updates from a thread that is not one of
 * the runtime's reactors (an offload worker, the main thread) go to one
 * shared row with atomic read-modify-write, so they are correct but not
 * free. A gauge is the SUM of what every reactor set: sl_series_set sets
 * the calling reactor's share (a value that belongs to the process, such
 * as a stock level, is set from one reactor only, or from outside them).
 *
 * CARDINALITY. A family holds at most `max_series` series (default 64).
 * Once full, updates for label values it has not seen go to one overflow
 * series whose every label value is "overflow", so nothing is dropped
 * silently and the total stays right; sl_metric_series says so with 1.
 *
 * COLLECTORS. A figure kept elsewhere (a reactor's private counters, a
 * pool's statistics read under its lock, a file in /proc) is reported at
 * scrape time by a collector instead (sl_metrics_collector): a function
 * the scrape calls on every reactor of the runtime, on that reactor's
 * thread, which reports values for registered families with
 * sl_scrape_add / sl_scrape_summary. Reported values are summed by label
 * values (over reactors and calls) and with what the family's series hold,
 * and written by the same writer as every other family (one HELP and TYPE
 * per family, one escaping path, the same max_series and overflow series).
 * They last one scrape: a series nobody reports is not shown (a channel
 * that was freed, say), unless its cells hold something.
 *
 * THREADS. Registration (sl_metric_new, sl_metrics_collector) is done
 * before the server starts, or from any single thread; resolving series
 * and updating may be done from any thread. A family lives as long as its
 * registry (the server's: freed by sl_http_server_free). */
#ifndef SL_METRICS_H
#define SL_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"

typedef struct sl_metrics sl_metrics;   /* a registry: one per server */
typedef struct sl_metric sl_metric;     /* a family */
typedef struct sl_series sl_series;     /* one set of label values of a family */
typedef struct sl_metrics_scrape sl_metrics_scrape;   /* what collectors report, one scrape */

#define SL_METRIC_LABELS_MAX 8
#define SL_METRIC_NAME_MAX 200      /* bytes of a family or label name */
#define SL_METRIC_BUCKETS_MAX 32

typedef enum sl_metric_type {
    SL_METRIC_COUNTER,     /* only goes up: sl_series_add with v >= 0 */
    SL_METRIC_GAUGE,       /* goes up and down: sl_series_add, sl_series_set */
    SL_METRIC_HISTOGRAM,   /* sl_series_observe */
    SL_METRIC_SUMMARY,     /* sl_series_observe, sl_scrape_summary: a sum and a
                            * count, no quantiles (no buckets, no exemplars) */
} sl_metric_type;

typedef struct sl_metric_opts {
    const char *help;                 /* one line; copied. NULL: none */
    const char *const *labels;        /* label names, NULL-terminated; copied. NULL: none */
    const double *buckets;            /* histogram: upper bounds, strictly increasing,
                                       * finite (+Inf is implied); copied. NULL: the
                                       * default, 25 us to 10 s (SL_METRIC_LATENCY) */
    size_t nbuckets;
    size_t max_series;                /* 0: 64; at most 4096 */
} sl_metric_opts;

/* The default histogram buckets, in seconds: 25, 50, 100, 250, 500 us,
 * 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10 s. */
extern const double SL_METRIC_LATENCY[18];

/* Creates a registry whose cells are per reactor of `rt` (the server makes
 * its own, sl_http_server_metrics: most programs need not call this).
 * Returns 0, -EINVAL (NULL rt) or -ENOMEM. */
int sl_metrics_new(sl_metrics **out, sl_runtime *rt);

/* Frees the registry and every family in it; handles become invalid. */
void sl_metrics_free(sl_metrics *m);

/* Registers a family. `opts` may be NULL (no help, no labels, default
 * buckets and cardinality). Returns 0 and the family in *out; -EINVAL for
 * a NULL m or out, a bad name, label name, type, bucket list (not increasing, not finite,
 * more than SL_METRIC_BUCKETS_MAX, or given for a non-histogram),
 * more than SL_METRIC_LABELS_MAX labels, a label listed twice (a summary's
 * "quantile" too) or max_series > 4096; -EEXIST if the registry has a family of that name;
 * -ENOMEM. */
int sl_metric_new(sl_metrics *m, sl_metric **out, sl_metric_type type, const char *name,
                  const sl_metric_opts *opts);

/* Resolves label values (as many as the family has labels; NULL when it
 * has none) to a series, creating it on first use (values are copied).
 * Returns 0; 1 when the family is full and *out is its overflow series;
 * -EINVAL for a NULL value; -ENOMEM (then *out is the overflow series
 * too, so an update is never lost). The handle stays valid as long as the
 * registry. */
int sl_metric_series(sl_metric *f, const char *const *values, sl_series **out);

/* Updates with the series resolved on the fly: one sl_metric_series
 * (a lookup) per call. Failures go to the overflow series. */
void sl_metric_add(sl_metric *f, const char *const *values, double v);
void sl_metric_set(sl_metric *f, const char *const *values, double v);
void sl_metric_observe(sl_metric *f, const char *const *values, double v);

/* Counter or gauge: adds v (a counter ignores v < 0 and NaN). Gauge: sets
 * the calling reactor's share to v. Histogram: counts v in its bucket, its
 * sum and count; `trace_id` (16 bytes, or NULL) is kept as the bucket's
 * exemplar, shown to scrapers that ask for OpenMetrics. Summary: adds v to
 * its sum and 1 to its count (trace_id ignored). A call that does not fit
 * the family's type does nothing. */
void sl_series_add(sl_series *s, double v);
void sl_series_set(sl_series *s, double v);
void sl_series_observe(sl_series *s, double v, const uint8_t *trace_id);

/* The sum over reactors of a counter's or gauge's series (histogram,
 * summary: its count): for tests and for programs that read their own
 * figures. Values reported by collectors are not in it. */
double sl_series_value(const sl_series *s);

/* A collector: called at every scrape once per reactor of the registry's
 * runtime, on that reactor's thread (`reactor` is its index, from 0), so
 * it may read what only that reactor touches. A figure of the whole
 * process is reported from one call only (reactor 0). It returns 0, or a
 * negative errno: then what that call reported is left out of the scrape,
 * the rest of the scrape is written as usual, and the built-in counter
 * sluice_metrics_collector_errors_total{collector=NAME} counts the
 * failure. It must not block, and must not register families or
 * collectors. */
typedef int (*sl_metrics_collect_fn)(sl_metrics_scrape *sc, int reactor, void *arg);

/* Adds a collector named `name` (copied; a label value of the error
 * counter). Returns 0; -EINVAL for a NULL m, name or fn or an empty name;
 * -EEXIST if a collector of that name, or the same fn with the same arg,
 * is registered already; -ENOMEM. Collectors run in the order they were
 * added and live as long as the registry. */
int sl_metrics_collector(sl_metrics *m, const char *name, sl_metrics_collect_fn fn, void *arg);

/* From a collector: reports v for the series of family f with these label
 * values (as in sl_metric_series; values are copied) in this scrape.
 * Counter: v is its total (>= 0) and gauge: its value, each summed with
 * other reports of the same series and with the series' cells. Returns 0;
 * -EINVAL for a NULL argument or label value, a family of another
 * registry, a histogram or summary (sl_scrape_summary), NaN, or a negative
 * counter; -ENOMEM. */
int sl_scrape_add(sl_metrics_scrape *sc, sl_metric *f, const char *const *values, double v);

/* From a collector: reports a summary's sum and count (totals) for the
 * series of family f, as sl_scrape_add does. Returns 0; -EINVAL (as
 * above, and for a family that is not a summary, a NaN or negative sum);
 * -ENOMEM. */
int sl_scrape_summary(sl_metrics_scrape *sc, sl_metric *f, const char *const *values, double sum,
                      uint64_t count);
#endif
