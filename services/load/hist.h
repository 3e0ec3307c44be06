/* hist.h: an HDR-style log-linear latency histogram.
 *
 * Values are nanoseconds. Below 256 ns every value has its own bucket;
 * above, each power of two [2^e, 2^(e+1)) is cut into 128 equal buckets,
 * so a bucket is at most 1/128 of its lower bound wide. A percentile is
 * reported as the middle of its bucket (clamped to the exact min and max),
 * hence off by at most 1/256 (0.4%) of the true sample value, from 1 ns up
 * to 2^40 ns (18 minutes); larger values are clamped there. 4352 buckets,
 * 35 KiB per histogram. Recording is an index computation and an add.
 *
 * Histograms of the same layout merge by adding buckets, so each reactor
 * keeps its own and the totals are exact. A sealed histogram (hist_sparse)
 * keeps only its non-empty buckets: the per-second series costs what the
 * second's distribution needs, not 35 KiB. */
#ifndef LOAD_HIST_H
#define LOAD_HIST_H
#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_MAX_EXP 40
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) << HIST_SUB_BITS)
#define HIST_MAX_VALUE ((1ULL << HIST_MAX_EXP) - 1)

typedef struct hist {
    uint64_t count, min, max;
    double sum, sumsq;          /* for mean and stdev, exact */
    uint64_t c[HIST_BUCKETS];
} hist;

typedef struct hist_cell { uint32_t idx; uint64_t n; } hist_cell;

typedef struct hist_sparse {
    uint64_t count, min, max;
    double sum, sumsq;
    uint32_t n;                 /* cells */
    hist_cell *cell;
} hist_sparse;

/* A new empty histogram (NULL on ENOMEM); free() it. */
hist *hist_new(void);
void hist_clear(hist *h);

static inline uint32_t hist_index(uint64_t v)
{
    if (v < (2u << HIST_SUB_BITS))
        return (uint32_t)v;
    if (v > HIST_MAX_VALUE)
        v = HIST_MAX_VALUE;
    int s = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
    return (uint32_t)(((uint64_t)s << HIST_SUB_BITS) + (v >> s));
}

/* The lowest value of bucket `idx` and the bucket's width. */
uint64_t hist_bucket_low(uint32_t idx);
uint64_t hist_bucket_width(uint32_t idx);

static inline void hist_record(hist *h, uint64_t v)
{
    if (v > HIST_MAX_VALUE)
        v = HIST_MAX_VALUE;
    h->c[hist_index(v)]++;
    if (!h->count || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    double d = (double)v;
    h->sum += d;
    h->sumsq += d * d;
}

/* dst += src. */
void hist_merge(hist *dst, const hist *src);

/* The value at quantile q (0..1, nearest rank), 0 when empty. */
double hist_quantile(const hist *h, double q);
double hist_mean(const hist *h);
double hist_stdev(const hist *h);

/* Seals h into s (its non-empty buckets). Returns 0 or -ENOMEM. */
int hist_seal(const hist *h, hist_sparse *s);
/* dst += s. */
void hist_merge_sparse(hist *dst, const hist_sparse *s);
void hist_sparse_free(hist_sparse *s);

#endif
