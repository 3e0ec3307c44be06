/* test_metrics.c: the metrics API (net/sl_metrics.h) on its own:
 * registration errors, series and the overflow series, per-reactor cells
 * summed at scrape, histograms and their exemplars, the exposition text. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include "testutil.h"
#include "sl_metrics.h"
#include "metrics_int.h"

static char *text_of(sl_metrics *m, bool om)
{
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    sl__metrics_text(m, b, om);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    const char *p = strstr(text, want);
    if (!p && !strncmp(text, line, strlen(line)) && text[strlen(line)] == '\n')
        p = text;
    if (!p)
        fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void test_registration_errors(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_metrics *m;
    sl_metric *f;
    assert_int_equal(sl_metrics_new(&m, NULL), -EINVAL);
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    static const char *const bad_names[] = { "", "1abc", "a-b", "a b", "é", NULL };
    for (int i = 0; bad_names[i]; i++)
        assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, bad_names[i], NULL), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, NULL, NULL), -EINVAL);
    char longname[SL_METRIC_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, longname, NULL), -EINVAL);
    const char *l_long[] = { longname, NULL };
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_GAUGE, "g", &(sl_metric_opts){ .labels = l_long }), -EINVAL);
    longname[SL_METRIC_NAME_MAX] = '\0';   /* just long enough */
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, longname, NULL), 0);
    assert_int_equal(sl_metric_new(NULL, &f, SL_METRIC_COUNTER, "x", NULL), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, (sl_metric_type)7, "ok_name", NULL), -EINVAL);
    static const char *const l_dup[] = { "a", "b", "a", NULL }, *const l_le[] = { "le", NULL },
                              *const l_under[] = { "__x", NULL }, *const l_colon[] = { "a:b", NULL },
                              *const l_digit[] = { "9a", NULL },
                              *const l_many[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", NULL };
    const char *const *bad_labels[] = { l_dup, l_le, l_under, l_colon, l_digit, l_many };
    for (size_t i = 0; i < sizeof bad_labels / sizeof *bad_labels; i++)
        assert_int_equal(sl_metric_new(m, &f, SL_METRIC_GAUGE, "g", &(sl_metric_opts){ .labels = bad_labels[i] }),
                         -EINVAL);
    static const double down[] = { 1, 0.5 }, same[] = { 1, 1 }, inf[] = { 1, INFINITY }, ok[] = { 0.1, 1 };
    double many[SL_METRIC_BUCKETS_MAX + 1];
    for (int i = 0; i <= SL_METRIC_BUCKETS_MAX; i++)
        many[i] = i + 1;
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h", &(sl_metric_opts){ .buckets = down, .nbuckets = 2 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h", &(sl_metric_opts){ .buckets = same, .nbuckets = 2 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h", &(sl_metric_opts){ .buckets = inf, .nbuckets = 2 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h", &(sl_metric_opts){ .buckets = ok, .nbuckets = 0 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h",
                                   &(sl_metric_opts){ .buckets = many, .nbuckets = SL_METRIC_BUCKETS_MAX + 1 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, "c", &(sl_metric_opts){ .buckets = ok, .nbuckets = 2 }), -EINVAL);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, "c", &(sl_metric_opts){ .max_series = 4097 }), -EINVAL);
    /* nothing refused was registered: the names are still free */
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_HISTOGRAM, "h", &(sl_metric_opts){ .buckets = ok, .nbuckets = 2 }), 0);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, "ns:c_total", NULL), 0);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_GAUGE, "ns:c_total", NULL), -EEXIST);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_GAUGE, "g", &(sl_metric_opts){ .labels = l_colon + 1 }), 0);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}

static void test_series_and_overflow(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_metrics *m;
    sl_metric *f;
    sl_series *a, *a2, *b, *c, *d;
    static const char *const labels[] = { "outcome", "item", NULL };
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, "orders_total",
                                   &(sl_metric_opts){ .help = "Orders by outcome.", .labels = labels, .max_series = 2 }), 0);
    assert_int_equal(sl_metric_series(f, (const char *[]){ "paid", "sku-1" }, &a), 0);
    assert_int_equal(sl_metric_series(f, (const char *[]){ "paid", "sku-1" }, &a2), 0);
    assert_ptr_equal(a, a2);
    assert_int_equal(sl_metric_series(f, (const char *[]){ "failed", "sku-1" }, &b), 0);
    assert_ptr_not_equal(a, b);
    /* the family is full: new values go to the overflow series, and say so */
    assert_int_equal(sl_metric_series(f, (const char *[]){ "lost", "sku-2" }, &c), 1);
    assert_int_equal(sl_metric_series(f, (const char *[]){ "other", "sku-3" }, &d), 1);
    assert_ptr_equal(c, d);
    assert_ptr_not_equal(c, a);
    assert_int_equal(sl_metric_series(f, (const char *[]){ "paid", NULL }, &d), -EINVAL);
    assert_ptr_equal(c, d);   /* a bad call still hands out somewhere to count */
    assert_int_equal(sl_metric_series(f, NULL, &d), -EINVAL);
    char *t = text_of(m, false);
    assert_null(strstr(t, "overflow"));   /* not shown while empty */
    free(t);
    sl_series_add(a, 2);
    sl_series_add(a, -5);          /* a counter never goes down */
    sl_series_add(a, NAN);
    sl_series_set(a, 100);         /* not a gauge */
    sl_series_observe(a, 1, NULL); /* not a histogram */
    sl_metric_add(f, (const char *[]){ "failed", "sku-1" }, 1);
    sl_metric_add(f, (const char *[]){ "lost", "sku-9" }, 3);
    sl_series_add(c, 0.5);
    assert_true(sl_series_value(a) == 2);
    assert_true(sl_series_value(c) == 3.5);
    t = text_of(m, false);
    expect_line(t, "# HELP orders_total Orders by outcome.");
    expect_line(t, "# TYPE orders_total counter");
    expect_line(t, "orders_total{outcome=\"paid\",item=\"sku-1\"} 2");
    expect_line(t, "orders_total{outcome=\"failed\",item=\"sku-1\"} 1");
    expect_line(t, "orders_total{outcome=\"overflow\",item=\"overflow\"} 3.5");
    free(t);
    /* OpenMetrics: the family without _total, the samples with it */
    t = text_of(m, true);
    expect_line(t, "# TYPE orders counter");
    expect_line(t, "orders_total{outcome=\"paid\",item=\"sku-1\"} 2");
    free(t);
    /* "a","bc" and "ab","c" are two series */
    sl_metric *g;
    assert_int_equal(sl_metric_new(m, &g, SL_METRIC_GAUGE, "pairs", &(sl_metric_opts){ .labels = labels }), 0);
    assert_int_equal(sl_metric_series(g, (const char *[]){ "a", "bc" }, &a), 0);
    assert_int_equal(sl_metric_series(g, (const char *[]){ "ab", "c" }, &b), 0);
    assert_ptr_not_equal(a, b);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}

static void test_escaping_and_gauges(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_metrics *m;
    sl_metric *g, *one;
    static const char *const labels[] = { "name", NULL };
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    assert_int_equal(sl_metric_new(m, &g, SL_METRIC_GAUGE, "stock",
                                   &(sl_metric_opts){ .help = "back\\slash\nnewline", .labels = labels }), 0);
    assert_int_equal(sl_metric_new(m, &one, SL_METRIC_GAUGE, "plain", NULL), 0);
    sl_metric_set(g, (const char *[]){ "say \"hi\"\n\\ \xff" }, 7);
    sl_metric_set(g, (const char *[]){ "a" }, -1.25);
    sl_metric_add(g, (const char *[]){ "a" }, -1);
    char *t = text_of(m, false);
    expect_line(t, "# HELP stock back\\\\slash\\nnewline");
    expect_line(t, "stock{name=\"say \\\"hi\\\"\\n\\\\ \xef\xbf\xbd\"} 7");
    expect_line(t, "stock{name=\"a\"} -2.25");
    expect_line(t, "plain 0");   /* a family without labels shows from the start */
    free(t);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- per-reactor cells, summed ---------------------------------------------------- */

#define ADDS 10000
static struct {
    sl_metrics *m;
    sl_metric *c, *h;
    _Atomic int done;
    sl_runtime *rt;
} P;

static int adder(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    sl_series *s, *h;
    sl_metric_series(P.c, NULL, &s);
    sl_metric_series(P.h, (const char *[]){ "x" }, &h);
    for (int i = 0; i < ADDS; i++) {
        sl_series_add(s, 1);
        sl_series_observe(h, 0.00390625, NULL);   /* 2^-8: sums exactly */
    }
    if (atomic_fetch_add(&P.done, 1) == 1)
        sl_runtime_stop(P.rt);
    return 0;
}

static void *run_thread(void *rt)
{
    sl_runtime_run(rt);
    return NULL;
}

static void test_reactors_summed(void **s)
{
    (void)s;
    P.rt = rt_new(2, NULL);
    static const char *const labels[] = { "k", NULL };
    assert_int_equal(sl_metrics_new(&P.m, P.rt), 0);
    assert_int_equal(sl_metric_new(P.m, &P.c, SL_METRIC_COUNTER, "adds_total", NULL), 0);
    assert_int_equal(sl_metric_new(P.m, &P.h, SL_METRIC_HISTOGRAM, "lat_seconds", &(sl_metric_opts){ .labels = labels }), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(sl_spawn_on(sl_runtime_reactor(P.rt, i), adder, NULL, NULL), 0);
    /* and from outside the reactors, at the same time: the shared row */
    sl_series *c;
    sl_metric_series(P.c, NULL, &c);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, P.rt), 0);
    for (int i = 0; i < ADDS; i++)
        sl_series_add(c, 1);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&P.done), 2);
    assert_true(sl_series_value(c) == 3 * ADDS);
    char *t = text_of(P.m, false);
    expect_line(t, "adds_total 30000");
    expect_line(t, "lat_seconds_bucket{k=\"x\",le=\"0.0025\"} 0");
    expect_line(t, "lat_seconds_bucket{k=\"x\",le=\"0.005\"} 20000");
    expect_line(t, "lat_seconds_bucket{k=\"x\",le=\"+Inf\"} 20000");
    expect_line(t, "lat_seconds_count{k=\"x\"} 20000");
    expect_line(t, "lat_seconds_sum{k=\"x\"} 78.125");
    free(t);
    sl_metrics_free(P.m);
    assert_int_equal(sl_runtime_free(P.rt), 0);
}

/* ---- histograms: buckets and exemplars -------------------------------------------- */

static struct { sl_metric *h; const uint8_t *id; } E;

static int observer(sl_task *t, void *arg)
{
    (void)t;
    sl_series *s;
    sl_metric_series(E.h, NULL, &s);
    sl_series_observe(s, 0.00004, NULL);
    sl_series_observe(s, 0.2, E.id);   /* the exemplar: on a reactor's own row */
    sl_series_observe(s, 20, NULL);
    sl_runtime_stop(arg);
    return 0;
}

static void test_histogram_exemplar(void **s)
{
    (void)s;
    static const uint8_t id[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };
    sl_runtime *rt = rt_new(1, NULL);
    sl_metrics *m;
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    assert_int_equal(sl_metric_new(m, &E.h, SL_METRIC_HISTOGRAM, "d_seconds", NULL), 0);
    E.id = id;
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), observer, rt, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    char *t = text_of(m, false);
    /* the default buckets start at 25 us */
    expect_line(t, "d_seconds_bucket{le=\"2.5e-05\"} 0");
    expect_line(t, "d_seconds_bucket{le=\"5e-05\"} 1");
    expect_line(t, "d_seconds_bucket{le=\"0.25\"} 2");
    expect_line(t, "d_seconds_bucket{le=\"10\"} 2");
    expect_line(t, "d_seconds_bucket{le=\"+Inf\"} 3");
    expect_line(t, "d_seconds_count 3");
    assert_null(strstr(t, "trace_id"));   /* the text format has no exemplars */
    free(t);
    t = text_of(m, true);
    expect_line(t, "d_seconds_bucket{le=\"0.25\"} 2 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 0.2");
    assert_null(strstr(strstr(t, "trace_id") + 1, "trace_id"));   /* one exemplar, on its bucket */
    free(t);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}


/* ---- collectors ------------------------------------------------------------------- */

static struct {
    sl_metric *g, *c, *sum, *h;
    int fail_on;     /* the reactor whose call fails, -1: none */
    int calls;
} C;

/* Reports two series per reactor (one of them the same on every reactor:
 * summed) and a summary; fails on C.fail_on after reporting. */
static int collect_a(sl_metrics_scrape *sc, int reactor, void *arg)
{
    (void)arg;
    char rid[8];
    snprintf(rid, sizeof rid, "%d", reactor);
    C.calls++;
    if (sl_scrape_add(sc, C.g, (const char *[]){ rid }, 10 + reactor) < 0 ||
        sl_scrape_add(sc, C.g, (const char *[]){ "all" }, 1) < 0 ||
        sl_scrape_add(sc, C.c, NULL, 5) < 0 || sl_scrape_summary(sc, C.sum, NULL, 0.5, 2) < 0)
        return -EIO;
    return reactor == C.fail_on ? -EIO : 0;
}

static int collect_b(sl_metrics_scrape *sc, int reactor, void *arg)
{
    (void)sc;
    (void)reactor;
    (void)arg;
    return 0;
}

/* One scrape as the server makes it: every reactor's collectors, then the
 * text. */
static char *scrape_of(sl_metrics *m, int reactors, bool om)
{
    sl_metrics_scrape *sc[4] = { 0 };
    assert_true(reactors <= 4);
    for (int i = 0; i < reactors; i++) {
        assert_int_equal(sl__scrape_new(&sc[i], m), 0);
        sl__metrics_collect(m, sc[i], i);
    }
    struct evbuffer *b = evbuffer_new();
    assert_non_null(b);
    sl__metrics_write(m, sc, reactors, b, om);
    for (int i = 0; i < reactors; i++)
        sl__scrape_free(sc[i]);
    size_t n = evbuffer_get_length(b);
    char *s = malloc(n + 1);
    assert_non_null(s);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static void test_collectors(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(2, NULL);
    sl_metrics *m, *other;
    static const char *const by[] = { "reactor", NULL };
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    assert_int_equal(sl_metrics_new(&other, rt), 0);
    assert_int_equal(sl_metric_new(m, &C.g, SL_METRIC_GAUGE, "depth", &(sl_metric_opts){ .labels = by }), 0);
    assert_int_equal(sl_metric_new(m, &C.c, SL_METRIC_COUNTER, "things_total", NULL), 0);
    assert_int_equal(sl_metric_new(m, &C.sum, SL_METRIC_SUMMARY, "wait_seconds", NULL), 0);
    assert_int_equal(sl_metric_new(m, &C.h, SL_METRIC_HISTOGRAM, "lat_seconds", &(sl_metric_opts){ .labels = by }), 0);
    /* registration errors */
    assert_int_equal(sl_metrics_collector(NULL, "a", collect_a, NULL), -EINVAL);
    assert_int_equal(sl_metrics_collector(m, NULL, collect_a, NULL), -EINVAL);
    assert_int_equal(sl_metrics_collector(m, "", collect_a, NULL), -EINVAL);
    assert_int_equal(sl_metrics_collector(m, "a", NULL, NULL), -EINVAL);
    assert_int_equal(sl_metrics_collector(m, "a", collect_a, NULL), 0);
    assert_int_equal(sl_metrics_collector(m, "a", collect_b, NULL), -EEXIST);    /* the name */
    assert_int_equal(sl_metrics_collector(m, "a2", collect_a, NULL), -EEXIST);   /* the same fn and arg */
    assert_int_equal(sl_metrics_collector(m, "a3", collect_a, &C), 0);           /* another arg */
    assert_int_equal(sl_metrics_collector(m, "b", collect_b, NULL), 0);
    /* reporting errors */
    sl_metrics_scrape *sc;
    assert_int_equal(sl__scrape_new(&sc, m), 0);
    assert_int_equal(sl_scrape_add(sc, C.h, (const char *[]){ "x" }, 1), -EINVAL);   /* a histogram */
    assert_int_equal(sl_scrape_add(sc, C.sum, NULL, 1), -EINVAL);            /* a summary */
    assert_int_equal(sl_scrape_add(sc, C.c, NULL, -1), -EINVAL);             /* a counter going down */
    assert_int_equal(sl_scrape_add(sc, C.g, (const char *[]){ "x" }, NAN), -EINVAL);
    assert_int_equal(sl_scrape_add(sc, C.g, (const char *[]){ NULL }, 1), -EINVAL);
    assert_int_equal(sl_scrape_add(sc, C.g, NULL, 1), -EINVAL);
    assert_int_equal(sl_scrape_add(NULL, C.g, (const char *[]){ "x" }, 1), -EINVAL);
    assert_int_equal(sl_scrape_add(sc, NULL, NULL, 1), -EINVAL);
    assert_int_equal(sl_scrape_summary(sc, C.g, (const char *[]){ "x" }, 1, 1), -EINVAL);
    assert_int_equal(sl_scrape_summary(sc, C.sum, NULL, NAN, 1), -EINVAL);
    sl_metric *foreign;
    assert_int_equal(sl_metric_new(other, &foreign, SL_METRIC_GAUGE, "foreign", NULL), 0);
    assert_int_equal(sl_scrape_add(sc, foreign, NULL, 1), -EINVAL);          /* another registry's */
    sl__scrape_free(sc);
    assert_int_equal(sl_metric_new(m, &foreign, SL_METRIC_SUMMARY, "q",
                                   &(sl_metric_opts){ .labels = (const char *const[]){ "quantile", NULL } }), -EINVAL);

    /* two reactors, collect_a registered twice (arg NULL and &C): every
     * report is summed with its kind, and with the cells */
    C.fail_on = -1;
    sl_series *cs, *ss;
    sl_metric_series(C.c, NULL, &cs);
    sl_series_add(cs, 1);   /* from this thread: the shared row */
    sl_metric_series(C.sum, NULL, &ss);
    sl_series_observe(ss, 0.25, NULL);
    char *t = scrape_of(m, 2, false);
    expect_line(t, "# TYPE depth gauge");
    expect_line(t, "depth{reactor=\"0\"} 20");
    expect_line(t, "depth{reactor=\"1\"} 22");
    expect_line(t, "depth{reactor=\"all\"} 4");
    expect_line(t, "things_total 21");           /* 4 x 5 + the cells' 1 */
    expect_line(t, "# TYPE wait_seconds summary");
    expect_line(t, "wait_seconds_sum 2.25");
    expect_line(t, "wait_seconds_count 9");
    assert_null(strstr(t, "lat_seconds"));       /* labels and no series: not even its TYPE */
    expect_line(t, "sluice_metrics_collector_errors_total{collector=\"a\"} 0");   /* there from the start */
    free(t);
    assert_int_equal(C.calls, 4);
    /* reported values last one scrape: nothing reported, only the cells */
    t = text_of(m, false);
    assert_null(strstr(t, "depth"));
    expect_line(t, "things_total 1");
    expect_line(t, "wait_seconds_count 1");
    free(t);

    /* a collector failing on reactor 1: what that call reported is left
     * out, the rest stands, and the failure is counted by name */
    C.fail_on = 1;
    t = scrape_of(m, 2, false);
    expect_line(t, "depth{reactor=\"0\"} 20");
    assert_null(strstr(t, "depth{reactor=\"1\"}"));
    expect_line(t, "depth{reactor=\"all\"} 2");
    expect_line(t, "things_total 11");
    expect_line(t, "sluice_metrics_collector_errors_total{collector=\"a\"} 1");
    expect_line(t, "sluice_metrics_collector_errors_total{collector=\"a3\"} 1");
    expect_line(t, "sluice_metrics_collector_errors_total{collector=\"b\"} 0");
    free(t);
    t = scrape_of(m, 2, true);
    expect_line(t, "# TYPE sluice_metrics_collector_errors counter");
    expect_line(t, "sluice_metrics_collector_errors_total{collector=\"a\"} 2");
    expect_line(t, "things_total 11");
    free(t);
    sl_metrics_free(other);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* A collector reports more series than the family may hold: the first
 * max_series (by label values) are shown, the rest summed in the
 * overflow series; series that live in cells count against the bound. */
static sl_metric *many_f;

static int collect_many(sl_metrics_scrape *sc, int reactor, void *arg)
{
    (void)reactor;
    (void)arg;
    for (int i = 0; i < 10; i++) {
        char v[8];
        snprintf(v, sizeof v, "c%d", i);
        int rc = sl_scrape_add(sc, many_f, (const char *[]){ v }, i + 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void test_collector_overflow(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_metrics *m;
    static const char *const by[] = { "chan", NULL };
    assert_int_equal(sl_metrics_new(&m, rt), 0);
    assert_int_equal(sl_metric_new(m, &many_f, SL_METRIC_GAUGE, "chans", &(sl_metric_opts){ .labels = by, .max_series = 4 }), 0);
    sl_metric_set(many_f, (const char *[]){ "cell" }, 100);   /* one in cells */
    sl_metric_set(many_f, (const char *[]){ "c0" }, 1000);    /* and one both ways */
    assert_int_equal(sl_metrics_collector(m, "many", collect_many, NULL), 0);
    char *t = scrape_of(m, 1, false);
    expect_line(t, "chans{chan=\"cell\"} 100");
    expect_line(t, "chans{chan=\"c0\"} 1001");
    expect_line(t, "chans{chan=\"c1\"} 2");
    expect_line(t, "chans{chan=\"c2\"} 3");
    assert_null(strstr(t, "chan=\"c3\""));
    expect_line(t, "chans{chan=\"overflow\"} 49");   /* c3..c9: 4 + 5 + ... + 10 */
    free(t);
    sl_metrics_free(m);
    assert_int_equal(sl_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration_errors),
        cmocka_unit_test(test_series_and_overflow),
        cmocka_unit_test(test_escaping_and_gauges),
        cmocka_unit_test(test_reactors_summed),
        cmocka_unit_test(test_histogram_exemplar),
        cmocka_unit_test(test_collectors),
        cmocka_unit_test(test_collector_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
