/* hist.c: log-linear histogram (see hist.h for the layout and error bound). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "hist.h"

hist *hist_new(void)
{
    return calloc(1, sizeof(hist));
}

void hist_clear(hist *h)
{
    memset(h, 0, sizeof *h);
}

uint64_t hist_bucket_low(uint32_t idx)
{
    if (idx < (2u << HIST_SUB_BITS))
        return idx;
    uint32_t s = (idx >> HIST_SUB_BITS) - 1;
    uint64_t sub = (idx & ((1u << HIST_SUB_BITS) - 1)) | (1u << HIST_SUB_BITS);
    return sub << s;
}

uint64_t hist_bucket_width(uint32_t idx)
{
    if (idx < (2u << HIST_SUB_BITS))
        return 1;
    return 1ULL << ((idx >> HIST_SUB_BITS) - 1);
}

static void merge_summary(hist *dst, uint64_t count, uint64_t min, uint64_t max, double sum,
                          double sumsq)
{
    if (!count)
        return;
    if (!dst->count || min < dst->min)
        dst->min = min;
    if (max > dst->max)
        dst->max = max;
    dst->count += count;
    dst->sum += sum;
    dst->sumsq += sumsq;
}

void hist_merge(hist *dst, const hist *src)
{
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        dst->c[i] += src->c[i];
    merge_summary(dst, src->count, src->min, src->max, src->sum, src->sumsq);
}

double hist_quantile(const hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q <= 0)
        return (double)h->min;
    double r = ceil(q * (double)h->count);
    uint64_t rank = r < 1 ? 1 : r > (double)h->count ? h->count : (uint64_t)r;
    uint64_t seen = 0;
    uint32_t i = 0;
    for (; i < HIST_BUCKETS; i++)
        if ((seen += h->c[i]) >= rank)
            break;
    uint64_t w = hist_bucket_width(i);
    double v = (double)hist_bucket_low(i) + (w > 1 ? (double)w / 2 : 0);
    if (v < (double)h->min)
        v = (double)h->min;
    if (v > (double)h->max)
        v = (double)h->max;
    return v;
}

double hist_mean(const hist *h)
{
    return h->count ? h->sum / (double)h->count : 0;
}

double hist_stdev(const hist *h)
{
    if (h->count < 2)
        return 0;
    double m = hist_mean(h);
    double var = h->sumsq / (double)h->count - m * m;
    return var > 0 ? sqrt(var) : 0;
}

int hist_seal(const hist *h, hist_sparse *s)
{
    memset(s, 0, sizeof *s);
    uint32_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        n += h->c[i] != 0;
    if (n && !(s->cell = malloc(n * sizeof *s->cell)))
        return -ENOMEM;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        if (h->c[i])
            s->cell[s->n++] = (hist_cell){ i, h->c[i] };
    s->count = h->count, s->min = h->min, s->max = h->max;
    s->sum = h->sum, s->sumsq = h->sumsq;
    return 0;
}

void hist_merge_sparse(hist *dst, const hist_sparse *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        dst->c[s->cell[i].idx] += s->cell[i].n;
    merge_summary(dst, s->count, s->min, s->max, s->sum, s->sumsq);
}

void hist_sparse_free(hist_sparse *s)
{
    free(s->cell);
    s->cell = NULL;
    s->n = 0;
}
