/* metrics.c: the registry behind sl_metrics.h.
 *
 * A family's cells form one row per reactor of the runtime plus one row
 * for every other thread. A reactor writes only its own row, with relaxed
 * loads and stores (no read-modify-write: it is the row's only writer),
 * rows start on their own cache line, and a scrape reads every row with
 * relaxed loads and sums: no lock and no shared line on the hot path, and
 * no data race either (every cell is atomic). The shared row takes atomic
 * read-modify-writes, since any thread may write it.
 *
 * Series are appended to a fixed table under the family's mutex and
 * published by a release store of the count, so lookups (acquire load,
 * then a scan comparing a hash first) take no lock. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics_int.h"

#define MAX_SERIES_LIMIT 4096
#define CELLS_PER_LINE 8   /* 64-byte lines of 8-byte cells */

const double SL_METRIC_LATENCY[18] = { 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3,
                                       25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10 };

typedef _Atomic uint64_t cell;

struct sl_series {
    sl_metric *f;
    size_t idx;
    uint64_t hash;
    char **values;   /* f->nlabels of them */
};

struct sl_metric {
    sl_metrics *m;
    sl_metric *next;
    sl_metric_type type;
    char *name, *help;
    int nlabels;
    char *labels[SL_METRIC_LABELS_MAX];
    size_t nb;                  /* finite bucket bounds; nb + 1 buckets */
    double bounds[SL_METRIC_BUCKETS_MAX];
    size_t max;                 /* series besides the overflow one, at series[max] */
    size_t stride, row;         /* cells per series, per row */
    cell *cells;                /* m->rows rows */
    sl_series *series;
    _Atomic size_t n;           /* series published */
    pthread_mutex_t lock;       /* appending a series */
};

typedef struct collector {
    char *name;
    sl_metrics_collect_fn fn;
    void *arg;
    sl_series *errors;          /* sluice_metrics_collector_errors_total{collector=name} */
    struct collector *_Atomic next;
} collector;

struct sl_metrics {
    sl_runtime *rt;
    int rows;                   /* reactors + the shared row */
    sl_metric *head, *tail;
    collector *_Atomic colls;   /* appended under lock, walked without it */
    sl_metric *coll_errors;
    pthread_mutex_t lock;       /* registration */
};

/* One sample a collector reported: its family, label values (one block
 * with the pointers), value (a summary's sum) and a summary's count. */
typedef struct sample {
    const sl_metric *f;
    uint64_t hash;
    char **values;
    double v;
    uint64_t count;
} sample;

struct sl_metrics_scrape {
    sl_metrics *m;
    sample *s;
    size_t n, cap;
};

/* Histogram cells of a series: nb + 1 bucket counts (not cumulative),
 * then the sum (double bits), the count, and an exemplar under a sequence
 * number (odd while written): trace id (2 cells) and value. */
enum { H_SUM = 1, H_COUNT, H_EX_SEQ, H_EX_HI, H_EX_LO, H_EX_VAL, H_EXTRA };

static uint64_t dbits(double v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }
static double bitsd(uint64_t u) { double v; memcpy(&v, &u, sizeof v); return v; }

int sl__metrics_rows(const sl_metrics *m) { return m->rows; }

int sl_metrics_new(sl_metrics **out, sl_runtime *rt)
{
    if (!out || !rt)
        return -EINVAL;
    sl_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->rt = rt;
    m->rows = sl_runtime_threads(rt) + 1;
    pthread_mutex_init(&m->lock, NULL);
    static const char *const by[] = { "collector", NULL };
    int rc = sl_metric_new(m, &m->coll_errors, SL_METRIC_COUNTER, "sluice_metrics_collector_errors_total",
                           &(sl_metric_opts){ .help = "Collector calls that failed (what they reported "
                                              "was left out of that scrape), by collector.", .labels = by });
    if (rc < 0) {
        sl_metrics_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void family_free(sl_metric *f)
{
    for (size_t i = 0; f->series && i <= f->max; i++) {
        for (int k = 0; f->series[i].values && k < f->nlabels; k++)
            free(f->series[i].values[k]);
        free(f->series[i].values);
    }
    for (int k = 0; k < f->nlabels; k++)
        free(f->labels[k]);
    pthread_mutex_destroy(&f->lock);
    free(f->series);
    free(f->cells);
    free(f->name);
    free(f->help);
    free(f);
}

void sl_metrics_free(sl_metrics *m)
{
    if (!m)
        return;
    for (sl_metric *f = m->head, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    for (collector *c = atomic_load(&m->colls), *next; c; c = next) {
        next = atomic_load(&c->next);
        free(c->name);
        free(c);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static bool name_ok(const char *s, bool colon)
{
    if (!s || !*s || strlen(s) > SL_METRIC_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static bool label_ok(const char *s)
{
    return name_ok(s, false) && strncmp(s, "__", 2) != 0 && strcmp(s, "le") != 0;
}

static uint64_t values_hash(const sl_metric *f, const char *const *v)
{
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < f->nlabels; k++) {
        for (const unsigned char *p = (const unsigned char *)v[k]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;   /* a byte no UTF-8 holds: "a","bc" != "ab","c" */
    }
    return h;
}

/* Fills series slot i with copies of v; false on -ENOMEM. */
static bool series_fill(sl_metric *f, size_t i, const char *const *v, uint64_t hash)
{
    sl_series *s = &f->series[i];
    s->f = f;
    s->idx = i;
    s->hash = hash;
    if (!f->nlabels)
        return true;
    if (!(s->values = calloc((size_t)f->nlabels, sizeof *s->values)))
        return false;
    for (int k = 0; k < f->nlabels; k++)
        if (!(s->values[k] = strdup(v[k])))
            return false;
    return true;
}

int sl_metric_new(sl_metrics *m, sl_metric **out, sl_metric_type type, const char *name,
                  const sl_metric_opts *opts)
{
    static const sl_metric_opts none;
    const sl_metric_opts *o = opts ? opts : &none;
    if (!m || !out || !name_ok(name, true) || type < SL_METRIC_COUNTER || type > SL_METRIC_SUMMARY ||
        o->max_series > MAX_SERIES_LIMIT || (o->buckets && type != SL_METRIC_HISTOGRAM))
        return -EINVAL;
    int nl = 0;
    for (; o->labels && o->labels[nl]; nl++) {
        if (nl == SL_METRIC_LABELS_MAX || !label_ok(o->labels[nl]) ||
            (type == SL_METRIC_SUMMARY && !strcmp(o->labels[nl], "quantile")))
            return -EINVAL;
        for (int j = 0; j < nl; j++)
            if (!strcmp(o->labels[j], o->labels[nl]))
                return -EINVAL;
    }
    const double *b = o->buckets ? o->buckets : SL_METRIC_LATENCY;
    size_t nb = o->buckets ? o->nbuckets : sizeof SL_METRIC_LATENCY / sizeof *SL_METRIC_LATENCY;
    if (type == SL_METRIC_HISTOGRAM) {
        if (!nb || nb > SL_METRIC_BUCKETS_MAX)
            return -EINVAL;
        for (size_t i = 0; i < nb; i++)
            if (!isfinite(b[i]) || (i && !(b[i] > b[i - 1])))
                return -EINVAL;
    }
    sl_metric *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    pthread_mutex_init(&f->lock, NULL);
    f->m = m;
    f->type = type;
    f->nlabels = nl;
    f->max = nl ? (o->max_series ? o->max_series : 64) : 0;
    if (type == SL_METRIC_HISTOGRAM) {
        f->nb = nb;
        memcpy(f->bounds, b, nb * sizeof *b);
        f->stride = nb + H_EXTRA;
    } else {
        f->stride = type == SL_METRIC_SUMMARY ? 2 : 1;   /* a summary: sum, count */
    }
    size_t cells = (f->max + 1) * f->stride;
    f->row = (cells + CELLS_PER_LINE - 1) / CELLS_PER_LINE * CELLS_PER_LINE;
    bool ok = (f->name = strdup(name)) && (!o->help || (f->help = strdup(o->help)));
    for (int k = 0; ok && k < nl; k++)
        ok = (f->labels[k] = strdup(o->labels[k])) != NULL;
    ok = ok && (f->series = calloc(f->max + 1, sizeof *f->series));
    ok = ok && (f->cells = aligned_alloc(64, f->row * (size_t)m->rows * sizeof(cell)));
    if (ok) {
        for (size_t i = 0; i < f->row * (size_t)m->rows; i++)
            atomic_init(&f->cells[i], 0);
        /* the overflow series; a family without labels has its one series
         * from the start, so it shows 0 before its first update */
        const char *ov[SL_METRIC_LABELS_MAX];
        for (int k = 0; k < nl; k++)
            ov[k] = "overflow";
        ok = series_fill(f, f->max, ov, 0);
    }
    if (!ok) {
        family_free(f);
        return -ENOMEM;
    }
    pthread_mutex_lock(&m->lock);
    for (sl_metric *g = m->head; g; g = g->next)
        if (!strcmp(g->name, name)) {
            pthread_mutex_unlock(&m->lock);
            family_free(f);
            return -EEXIST;
        }
    if (m->tail)
        m->tail->next = f;
    else
        m->head = f;
    m->tail = f;
    pthread_mutex_unlock(&m->lock);
    *out = f;
    return 0;
}

static sl_series *find(sl_metric *f, size_t n, const char *const *v, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        sl_series *s = &f->series[i];
        if (s->hash != h)
            continue;
        int k = 0;
        while (k < f->nlabels && !strcmp(s->values[k], v[k]))
            k++;
        if (k == f->nlabels)
            return s;
    }
    return NULL;
}

int sl_metric_series(sl_metric *f, const char *const *values, sl_series **out)
{
    if (!f->nlabels) {   /* one series: the "overflow" slot is it */
        *out = &f->series[f->max];
        return 0;
    }
    *out = &f->series[f->max];
    for (int k = 0; k < f->nlabels; k++)
        if (!values || !values[k])
            return -EINVAL;
    uint64_t h = values_hash(f, values);
    sl_series *s = find(f, atomic_load_explicit(&f->n, memory_order_acquire), values, h);
    if (s) {
        *out = s;
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&f->lock);
    size_t n = atomic_load_explicit(&f->n, memory_order_relaxed);
    if (!(s = find(f, n, values, h))) {
        if (n == f->max) {
            rc = 1;
        } else if (!series_fill(f, n, values, h)) {
            for (int k = 0; f->series[n].values && k < f->nlabels; k++)
                free(f->series[n].values[k]);
            free(f->series[n].values);
            f->series[n].values = NULL;
            rc = -ENOMEM;
        } else {
            s = &f->series[n];
            atomic_store_explicit(&f->n, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&f->lock);
    if (s)
        *out = s;
    return rc;
}

/* The calling thread's row: its reactor's, or the shared last row. */
static int my_row(const sl_metrics *m)
{
    sl_reactor *r = sl_reactor_current();
    return r && sl_reactor_runtime(r) == m->rt ? sl_reactor_id(r) : m->rows - 1;
}

static cell *cells_of(const sl_series *s, int row)
{
    return &s->f->cells[(size_t)row * s->f->row + s->idx * s->f->stride];
}

static void dadd(cell *c, double v, bool shared)
{
    if (!shared) {
        atomic_store_explicit(c, dbits(bitsd(atomic_load_explicit(c, memory_order_relaxed)) + v),
                              memory_order_relaxed);
        return;
    }
    uint64_t old = atomic_load_explicit(c, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(c, &old, dbits(bitsd(old) + v), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static void uadd(cell *c, uint64_t v, bool shared)
{
    if (shared)
        atomic_fetch_add_explicit(c, v, memory_order_relaxed);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

void sl__series_add_at(sl_series *s, int row, double v)
{
    sl_metric *f = s->f;
    if (f->type > SL_METRIC_GAUGE || isnan(v) || (f->type == SL_METRIC_COUNTER && v < 0))
        return;
    dadd(cells_of(s, row), v, row == f->m->rows - 1);
}

void sl__series_inc_at(sl_series *s, int row)
{
    sl_metric *f = s->f;
    if (f->type <= SL_METRIC_GAUGE)
        dadd(cells_of(s, row), 1, row == f->m->rows - 1);
}

void sl__series_observe_at(sl_series *s, int row, double v, const uint8_t *trace_id)
{
    sl_metric *f = s->f;
    if ((f->type != SL_METRIC_HISTOGRAM && f->type != SL_METRIC_SUMMARY) || !(v == v))   /* v == v: not NaN */
        return;
    bool shared = row == f->m->rows - 1;
    cell *c = cells_of(s, row);
    if (f->type == SL_METRIC_SUMMARY) {
        dadd(&c[0], v, shared);
        uadd(&c[1], 1, shared);
        return;
    }
    size_t b = 0;
    const double *bound = f->bounds;
    while (b < f->nb && v > bound[b])
        b++;
    uadd(&c[b], 1, shared);
    dadd(&c[f->nb + H_SUM], v, shared);
    uadd(&c[f->nb + H_COUNT], 1, shared);
    if (trace_id && !shared) {
        /* one writer: a sequence number (odd while written) keeps readers
         * whole. Release stores of the fields (plain stores on x86; no
         * fence, which TSan cannot follow): a reader that sees a new field
         * also sees the odd number stored before it. */
        cell *e = &c[f->nb + H_EX_SEQ];
        uint64_t seq = atomic_load_explicit(e, memory_order_relaxed);
        uint64_t hi, lo;
        memcpy(&hi, trace_id, 8);
        memcpy(&lo, trace_id + 8, 8);
        atomic_store_explicit(e, seq + 1, memory_order_relaxed);
        atomic_store_explicit(&c[f->nb + H_EX_HI], hi, memory_order_release);
        atomic_store_explicit(&c[f->nb + H_EX_LO], lo, memory_order_release);
        atomic_store_explicit(&c[f->nb + H_EX_VAL], dbits(v), memory_order_release);
        atomic_store_explicit(e, seq + 2, memory_order_release);
    }
}

void sl_series_add(sl_series *s, double v) { sl__series_add_at(s, my_row(s->f->m), v); }

void sl_series_observe(sl_series *s, double v, const uint8_t *trace_id)
{
    sl__series_observe_at(s, my_row(s->f->m), v, trace_id);
}

void sl_series_set(sl_series *s, double v)
{
    sl_metric *f = s->f;
    if (f->type != SL_METRIC_GAUGE)
        return;
    atomic_store_explicit(cells_of(s, my_row(f->m)), dbits(v), memory_order_relaxed);
}

void sl__series_put(sl_series *s, double v)
{
    atomic_store_explicit(cells_of(s, s->f->m->rows - 1), dbits(v), memory_order_relaxed);
}

void sl_metric_add(sl_metric *f, const char *const *values, double v)
{
    sl_series *s;
    sl_metric_series(f, values, &s);
    sl_series_add(s, v);
}

void sl_metric_set(sl_metric *f, const char *const *values, double v)
{
    sl_series *s;
    sl_metric_series(f, values, &s);
    sl_series_set(s, v);
}

void sl_metric_observe(sl_metric *f, const char *const *values, double v)
{
    sl_series *s;
    sl_metric_series(f, values, &s);
    sl_series_observe(s, v, NULL);
}

static double sum_d(const sl_series *s, size_t off)
{
    double v = 0;
    for (int r = 0; r < s->f->m->rows; r++)
        v += bitsd(atomic_load_explicit(&cells_of(s, r)[off], memory_order_relaxed));
    return v;
}

static uint64_t sum_u(const sl_series *s, size_t off)
{
    uint64_t v = 0;
    for (int r = 0; r < s->f->m->rows; r++)
        v += atomic_load_explicit(&cells_of(s, r)[off], memory_order_relaxed);
    return v;
}

double sl_series_value(const sl_series *s)
{
    const sl_metric *f = s->f;
    return f->type == SL_METRIC_HISTOGRAM ? (double)sum_u(s, f->nb + H_COUNT)
         : f->type == SL_METRIC_SUMMARY   ? (double)sum_u(s, 1)
                                          : sum_d(s, 0);
}

/* ---- collectors ------------------------------------------------------------------- */

int sl_metrics_collector(sl_metrics *m, const char *name, sl_metrics_collect_fn fn, void *arg)
{
    if (!m || !name || !*name || !fn)
        return -EINVAL;
    collector *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return -ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&m->lock);
    collector *_Atomic *at = &m->colls;
    for (collector *o; (o = atomic_load_explicit(at, memory_order_relaxed)); at = &o->next)
        if (!strcmp(o->name, name) || (o->fn == fn && o->arg == arg)) {
            pthread_mutex_unlock(&m->lock);
            free(c->name);
            free(c);
            return -EEXIST;
        }
    /* resolved now, so that a failing collector is counted without a lookup */
    sl_metric_series(m->coll_errors, (const char *const[]){ name }, &c->errors);
    atomic_store_explicit(at, c, memory_order_release);   /* walked without the lock */
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int sl__scrape_new(sl_metrics_scrape **out, sl_metrics *m)
{
    if (!(*out = calloc(1, sizeof **out)))
        return -ENOMEM;
    (*out)->m = m;
    return 0;
}

void sl__scrape_free(sl_metrics_scrape *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n; i++)
        free(sc->s[i].values);
    free(sc->s);
    free(sc);
}

/* Drops the samples reported after the n-th. */
static void scrape_truncate(sl_metrics_scrape *sc, size_t n)
{
    while (sc->n > n)
        free(sc->s[--sc->n].values);
}

void sl__metrics_collect(sl_metrics *m, sl_metrics_scrape *sc, int reactor)
{
    for (collector *c = atomic_load_explicit(&m->colls, memory_order_acquire); c;
         c = atomic_load_explicit(&c->next, memory_order_acquire)) {
        size_t before = sc->n;
        if (c->fn(sc, reactor, c->arg) < 0) {
            scrape_truncate(sc, before);
            sl_series_add(c->errors, 1);
        }
    }
}

static int report(sl_metrics_scrape *sc, sl_metric *f, const char *const *values, double v, uint64_t count)
{
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 64;
        sample *n = realloc(sc->s, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        sc->s = n;
        sc->cap = cap;
    }
    /* the pointers and the strings in one block */
    size_t len = (size_t)f->nlabels * sizeof(char *);
    for (int k = 0; k < f->nlabels; k++)
        len += strlen(values[k]) + 1;
    char **block = malloc(len ? len : 1);
    if (!block)
        return -ENOMEM;
    char *p = (char *)(block + f->nlabels);
    for (int k = 0; k < f->nlabels; k++) {
        size_t n = strlen(values[k]) + 1;
        block[k] = memcpy(p, values[k], n);
        p += n;
    }
    sc->s[sc->n++] = (sample){ .f = f, .hash = values_hash(f, values), .values = block, .v = v, .count = count };
    return 0;
}

static bool report_ok(const sl_metrics_scrape *sc, const sl_metric *f, const char *const *values)
{
    if (!sc || !f || f->m != sc->m)
        return false;
    for (int k = 0; k < f->nlabels; k++)
        if (!values || !values[k])
            return false;
    return true;
}

int sl_scrape_add(sl_metrics_scrape *sc, sl_metric *f, const char *const *values, double v)
{
    if (!report_ok(sc, f, values) || f->type > SL_METRIC_GAUGE || isnan(v) || (f->type == SL_METRIC_COUNTER && v < 0))
        return -EINVAL;
    return report(sc, f, values, v, 0);
}

int sl_scrape_summary(sl_metrics_scrape *sc, sl_metric *f, const char *const *values, double sum, uint64_t count)
{
    if (!report_ok(sc, f, values) || f->type != SL_METRIC_SUMMARY || isnan(sum))
        return -EINVAL;
    return report(sc, f, values, sum, count);
}

/* ---- exposition -------------------------------------------------------------------- */

void sl__label_value(struct evbuffer *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (ok && n > 1) {   /* no overlong forms, surrogates or code points past U+10FFFF */
            uint32_t cp = n == 2 ? (c & 0x1fu) << 6 | (p[1] & 0x3fu)
                        : n == 3 ? (c & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu)
                                 : (c & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
            static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
            ok = cp >= least[n] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
        }
        if (!ok) {
            evbuffer_add(b, "\xef\xbf\xbd", 3);
            p++;
        } else if (c == '\\' || c == '"') {
            char e[2] = { '\\', (char)c };
            evbuffer_add(b, e, 2);
            p++;
        } else if (c == '\n') {
            evbuffer_add(b, "\\n", 2);
            p++;
        } else {
            evbuffer_add(b, p, n);
            p += n;
        }
    }
}

/* HELP text: backslash and newline escaped, and in OpenMetrics the
 * double quote too (its HELP is an escaped string like a label value's;
 * the text format 0.0.4 knows only \\ and \n there). */
static void help_text(struct evbuffer *b, const char *s, bool om)
{
    for (; *s; s++)
        if (*s == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else if (*s == '"' && om)
            evbuffer_add(b, "\\\"", 2);
        else
            evbuffer_add(b, s, 1);
}

static void number(struct evbuffer *b, double v)
{
    if (isnan(v))
        evbuffer_add(b, "NaN", 3);
    else if (isinf(v))
        evbuffer_add_printf(b, "%sInf", v > 0 ? "+" : "-");
    else if (v == (double)(long long)v && fabs(v) < 1e15)
        evbuffer_add_printf(b, "%lld", (long long)v);
    else
        evbuffer_add_printf(b, "%.15g", v);
}

/* name{labels[,le="x"]} */
static void sample_head(struct evbuffer *b, const sl_metric *f, const char *name, const char *suffix,
                        char *const *values, const char *le)
{
    evbuffer_add_printf(b, "%s%s", name, suffix);
    if (!f->nlabels && !le)
        return;
    evbuffer_add(b, "{", 1);
    for (int k = 0; k < f->nlabels; k++) {
        evbuffer_add_printf(b, "%s%s=\"", k ? "," : "", f->labels[k]);
        sl__label_value(b, values[k]);
        evbuffer_add(b, "\"", 1);
    }
    if (le)
        evbuffer_add_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    evbuffer_add(b, "}", 1);
}

static void series_head(struct evbuffer *b, const char *name, const char *suffix, const sl_series *s,
                        const char *le)
{
    sample_head(b, s->f, name, suffix, s->values, le);
}

/* The exemplar of row r of a histogram series, if whole and present. */
static bool exemplar(const sl_series *s, int r, uint8_t id[16], double *v)
{
    const cell *c = cells_of(s, r) + s->f->nb;
    for (int tries = 0; tries < 4; tries++) {
        uint64_t s1 = atomic_load_explicit(&c[H_EX_SEQ], memory_order_acquire);
        if (!s1 || (s1 & 1))
            continue;
        /* acquire loads: the second look at the number cannot move before them */
        uint64_t hi = atomic_load_explicit(&c[H_EX_HI], memory_order_acquire);
        uint64_t lo = atomic_load_explicit(&c[H_EX_LO], memory_order_acquire);
        *v = bitsd(atomic_load_explicit(&c[H_EX_VAL], memory_order_acquire));
        if (atomic_load_explicit(&c[H_EX_SEQ], memory_order_relaxed) == s1) {
            memcpy(id, &hi, 8);
            memcpy(id + 8, &lo, 8);
            return true;
        }
    }
    return false;
}

static void histogram_text(struct evbuffer *b, const sl_series *s, bool om)
{
    const sl_metric *f = s->f;
    /* the newest whole exemplar of any reactor, by bucket */
    int ex_bucket = -1;
    uint8_t id[16];
    double exv = 0;
    for (int r = 0; om && r < f->m->rows - 1 && ex_bucket < 0; r++)
        if (exemplar(s, r, id, &exv)) {
            ex_bucket = 0;
            while ((size_t)ex_bucket < f->nb && exv > f->bounds[ex_bucket])
                ex_bucket++;
        }
    uint64_t cum = 0;
    for (size_t k = 0; k <= f->nb; k++) {
        char le[32];
        if (k < f->nb)
            snprintf(le, sizeof le, "%.9g", f->bounds[k]);
        else
            snprintf(le, sizeof le, "+Inf");
        cum += sum_u(s, k);
        series_head(b, f->name, "_bucket", s, le);
        evbuffer_add_printf(b, " %llu", (unsigned long long)cum);
        if (ex_bucket == (int)k) {
            evbuffer_add(b, " # {trace_id=\"", 14);
            for (int i = 0; i < 16; i++)
                evbuffer_add_printf(b, "%02x", id[i]);
            evbuffer_add(b, "\"} ", 3);
            number(b, exv);
        }
        evbuffer_add(b, "\n", 1);
    }
    series_head(b, f->name, "_sum", s, NULL);
    evbuffer_add(b, " ", 1);
    number(b, sum_d(s, f->nb + H_SUM));
    evbuffer_add(b, "\n", 1);
    /* the +Inf bucket's count, not the count cell: read at another moment
     * while reactors observe, it could differ, and OpenMetrics requires
     * them equal */
    series_head(b, f->name, "_count", s, NULL);
    evbuffer_add_printf(b, " %llu\n", (unsigned long long)cum);
}

/* A series to write: label values, value (a summary's sum) and count. */
typedef struct entry {
    char *const *values;
    double v;
    uint64_t count;
    bool shown;
} entry;

static int cmp_values(const void *a, const void *b)
{
    const sample *x = *(const sample *const *)a, *y = *(const sample *const *)b;
    for (int k = 0; k < x->f->nlabels; k++) {
        int c = strcmp(x->values[k], y->values[k]);
        if (c)
            return c;
    }
    return 0;
}

/* A counter's, gauge's or summary's series: those in cells, then those
 * only collectors reported (sorted by label values), then the overflow
 * series; reports of one series summed. `head` (HELP and TYPE) goes
 * before the first, and not at all when there is none: decided in the
 * same pass that writes, so a series appearing meanwhile cannot leave
 * samples without their TYPE. */
static void scalar_series(struct evbuffer *b, struct evbuffer *head, const sl_metric *f, const char *sname,
                          const char *sfx, sl_metrics_scrape *const *sc, int nsc)
{
    size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
    size_t ns = 0;
    for (int i = 0; i < nsc; i++)
        for (size_t k = 0; sc[i] && k < sc[i]->n; k++)
            ns += sc[i]->s[k].f == f;
    const sample **sm = ns ? malloc(ns * sizeof *sm) : NULL;
    entry *e = calloc(n + ns + 1, sizeof *e);
    if (!e || (ns && !sm)) {   /* out of memory: the cells alone */
        free(e);
        free(sm);
        ns = 0;
        sm = NULL;
        if (!(e = calloc(n + 1, sizeof *e)))
            return;
    }
    ns = 0;
    for (int i = 0; i < nsc && sm; i++)
        for (size_t k = 0; sc[i] && k < sc[i]->n; k++)
            if (sc[i]->s[k].f == f)
                sm[ns++] = &sc[i]->s[k];
    if (ns)   /* qsort wants a non-NULL array even for none */
        qsort(sm, ns, sizeof *sm, cmp_values);
    bool summary = f->type == SL_METRIC_SUMMARY;
    for (size_t i = 0; i <= n; i++) {   /* e[n] is the overflow series */
        const sl_series *s = &f->series[i == n ? f->max : i];
        e[i] = (entry){ .values = s->values, .v = sum_d(s, 0), .count = summary ? sum_u(s, 1) : 0, .shown = true };
    }
    e[n].shown = !f->nlabels || e[n].v != 0 || e[n].count != 0;
    size_t ne = n + 1;
    for (size_t i = 0; i < ns;) {
        double v = 0;
        uint64_t count = 0;
        size_t j = i;
        for (; j < ns && cmp_values(&sm[i], &sm[j]) == 0; j++) {
            v += sm[j]->v;
            count += sm[j]->count;
        }
        const sl_series *s = f->nlabels ? find((sl_metric *)f, n, (const char *const *)sm[i]->values, sm[i]->hash) : NULL;
        entry *to;
        if (s)
            to = &e[s->idx];
        else if (!f->nlabels || ne - 1 >= f->max)   /* full: the overflow series */
            to = &e[n];
        else
            (to = &e[ne++])->values = sm[i]->values;
        to->v += v;
        to->count += count;
        to->shown = true;
        i = j;
    }
    for (size_t k = 0; k < ne; k++) {
        size_t i = k < n ? k : k + 1 < ne ? k + 1 : n;   /* cells, reported, overflow */
        if (!e[i].shown)
            continue;
        evbuffer_add_buffer(b, head);   /* the first time only: it empties head */
        if (summary) {
            sample_head(b, f, sname, "_sum", e[i].values, NULL);
            evbuffer_add(b, " ", 1);
            number(b, e[i].v);
            evbuffer_add(b, "\n", 1);
            sample_head(b, f, sname, "_count", e[i].values, NULL);
            evbuffer_add_printf(b, " %llu\n", (unsigned long long)e[i].count);
        } else {
            sample_head(b, f, sname, sfx, e[i].values, NULL);
            evbuffer_add(b, " ", 1);
            number(b, e[i].v);
            evbuffer_add(b, "\n", 1);
        }
    }
    free(e);
    free(sm);
}

static void family_text(struct evbuffer *b, const sl_metric *f, sl_metrics_scrape *const *sc, int nsc, bool om)
{
    static const char *const types[] = { "counter", "gauge", "histogram", "summary" };
    /* OpenMetrics names a counter's family without _total, its sample with */
    size_t len = strlen(f->name);
    bool strip = om && f->type == SL_METRIC_COUNTER && len > 6 && !strcmp(f->name + len - 6, "_total");
    int flen = (int)(strip ? len - 6 : len);
    const char *sample_sfx = om && f->type == SL_METRIC_COUNTER ? "_total" : "";
    char sname[256];
    snprintf(sname, sizeof sname, "%.*s", flen, f->name);
    struct evbuffer *head = evbuffer_new();
    if (!head)
        return;
    if (f->help) {
        evbuffer_add_printf(head, "# HELP %s ", sname);
        help_text(head, f->help, om);
        evbuffer_add(head, "\n", 1);
    }
    evbuffer_add_printf(head, "# TYPE %s %s\n", sname, types[f->type]);
    if (f->type != SL_METRIC_HISTOGRAM) {
        scalar_series(b, head, f, sname, sample_sfx, sc, nsc);
    } else {
        /* a family with no series to show is left out: its HELP and TYPE
         * alone say nothing (an upstream family of a server without
         * upstreams) */
        size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
        const sl_series *ov = &f->series[f->max];
        bool ov_shown = !f->nlabels || sl_series_value(ov) != 0;
        if (n || ov_shown)
            evbuffer_add_buffer(b, head);
        for (size_t i = 0; i < n; i++)
            histogram_text(b, &f->series[i], om);
        if (ov_shown)
            histogram_text(b, ov, om);   /* the overflow series, shown once it holds something */
    }
    evbuffer_free(head);
}

void sl__metrics_write(sl_metrics *m, sl_metrics_scrape *const *sc, int nsc, struct evbuffer *b, bool om)
{
    pthread_mutex_lock(&m->lock);   /* against a registration appending */
    for (const sl_metric *f = m->head; f; f = f->next)
        family_text(b, f, sc, nsc, om);
    pthread_mutex_unlock(&m->lock);
}

void sl__metrics_text(sl_metrics *m, struct evbuffer *b, bool om) { sl__metrics_write(m, NULL, 0, b, om); }
