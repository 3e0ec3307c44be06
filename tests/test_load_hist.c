/* test_load_hist: the log-linear histogram of sluice-load: percentiles
 * within 1% of the exact ones on synthetic distributions, the bucket
 * layout, merging and sealing. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include "hist.h"

#define N 200000

static uint64_t rng = 88172645463325252ULL;

static double unit(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const double qs[] = { 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999 };

/* Records v[0..n) and compares every quantile with the exact nearest rank. */
static void check(uint64_t *v, size_t n)
{
    hist *h = hist_new();
    for (size_t i = 0; i < n; i++)
        hist_record(h, v[i]);
    qsort(v, n, sizeof *v, cmp);
    assert_int_equal(h->count, n);
    assert_int_equal(h->min, v[0]);
    assert_int_equal(h->max, v[n - 1]);
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++) {
        double exact = (double)v[(size_t)ceil(qs[i] * (double)n) - 1];
        double got = hist_quantile(h, qs[i]);
        if (fabs(got - exact) > 0.01 * exact)
            fail_msg("q%.4f: %.0f, exact %.0f", qs[i], got, exact);
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    assert_true(fabs(hist_mean(h) - sum / (double)n) < 1e-6 * sum / (double)n);
    free(h);
}

static void uniform(void **st)
{
    (void)st;
    uint64_t *v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++)     /* 1 us .. 100 ms */
        v[i] = 1000 + (uint64_t)(unit() * 1e8);
    check(v, N);
    free(v);
}

static void exponential(void **st)
{
    (void)st;
    uint64_t *v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++)     /* mean 2 ms */
        v[i] = 1000 + (uint64_t)(-log(1 - unit()) * 2e6);
    check(v, N);
    free(v);
}

static void bimodal(void **st)
{
    (void)st;
    uint64_t *v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++)     /* 95% around 200 us, 5% around 1.5 s */
        v[i] = unit() < 0.95 ? 150000 + (uint64_t)(unit() * 1e5) : 1000000000 + (uint64_t)(unit() * 1e9);
    check(v, N);
    free(v);
}

/* Every value falls in a bucket that contains it, buckets tile the range
 * without gaps, and a bucket is at most 1/128 of its low value wide. */
static void layout(void **st)
{
    (void)st;
    for (uint32_t i = 0; i + 1 < HIST_BUCKETS; i++) {
        assert_int_equal(hist_bucket_low(i) + hist_bucket_width(i), hist_bucket_low(i + 1));
        if (i >= 256)
            assert_true(hist_bucket_width(i) * 128 <= hist_bucket_low(i));
    }
    for (int k = 0; k < 100000; k++) {
        uint64_t v = (uint64_t)(unit() * (double)HIST_MAX_VALUE);
        uint32_t i = hist_index(v);
        assert_true(i < HIST_BUCKETS);
        assert_true(hist_bucket_low(i) <= v && v < hist_bucket_low(i) + hist_bucket_width(i));
    }
    assert_int_equal(hist_index(HIST_MAX_VALUE), HIST_BUCKETS - 1);
    hist *h = hist_new();
    hist_record(h, UINT64_MAX);          /* clamped, not out of range */
    assert_int_equal(h->max, HIST_MAX_VALUE);
    assert_int_equal(h->c[HIST_BUCKETS - 1], 1);
    hist_clear(h);
    assert_true(hist_quantile(h, 0.99) == 0 && hist_mean(h) == 0 && hist_stdev(h) == 0);
    free(h);
}

/* Two halves merged (dense or sealed) equal the whole. */
static void merging(void **st)
{
    (void)st;
    hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *m = hist_new();
    for (int i = 0; i < 50000; i++) {
        uint64_t v = (uint64_t)(-log(1 - unit()) * 1e6);
        hist_record(i % 3 ? a : b, v);
        hist_record(all, v);
    }
    hist_merge(m, a);
    hist_merge(m, b);
    assert_memory_equal(m->c, all->c, sizeof all->c);
    assert_int_equal(m->count, all->count);
    assert_int_equal(m->min, all->min);
    assert_int_equal(m->max, all->max);
    hist_sparse sa, sb;
    assert_int_equal(hist_seal(a, &sa), 0);
    assert_int_equal(hist_seal(b, &sb), 0);
    assert_true(sa.n > 0 && sa.n < HIST_BUCKETS);
    hist_clear(m);
    hist_merge_sparse(m, &sa);
    hist_merge_sparse(m, &sb);
    assert_memory_equal(m->c, all->c, sizeof all->c);
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++)
        assert_true(hist_quantile(m, qs[i]) == hist_quantile(all, qs[i]));
    assert_true(fabs(hist_stdev(m) - hist_stdev(all)) < 1e-6 * hist_stdev(all));
    hist_sparse_free(&sa);
    hist_sparse_free(&sb);
    free(a), free(b), free(all), free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uniform),
        cmocka_unit_test(exponential),
        cmocka_unit_test(bimodal),
        cmocka_unit_test(layout),
        cmocka_unit_test(merging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
