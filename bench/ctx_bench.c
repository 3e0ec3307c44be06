/* ctx_bench.c: context figures for core-bench's JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include "sluice.h"

void ctx_bench_run(FILE *out, int json, int quick);

static sl_runtime *rt;

typedef struct cb {
    long n;
    uint64_t t0, t1;
    int rc, woken, i;
    sl_ctx *root;
} cb;

static void run(sl_step_fn fn, void *st)
{
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .stall_ms = -1 });
    sl_spawn_on(sl_runtime_reactor(rt, 0), fn, st, NULL);
    sl_runtime_run(rt);
    if (sl_runtime_free(rt))
        fprintf(stderr, "ctx-bench: leaks reported\n");
}

static int cancel_main(sl_task *t, void *arg)
{
    cb *s = arg;
    sl_ctx *parent, *c;
    (void)t;
    sl_ctx_with_cancel(&parent, sl_ctx_background());
    s->t0 = sl_now_ns();
    for (long i = 0; i < s->n; i++) {
        sl_ctx_with_cancel(&c, parent);
        sl_ctx_cancel(c, SL_CAUSE_CANCELED);
        sl_ctx_unref(c);
    }
    s->t1 = sl_now_ns();
    sl_ctx_unref(parent);
    sl_runtime_stop(rt);
    return 0;
}

static int timeout_main(sl_task *t, void *arg)
{
    cb *s = arg;
    sl_ctx *c;
    (void)t;
    s->t0 = sl_now_ns();
    for (long i = 0; i < s->n; i++) {
        sl_ctx_with_timeout(&c, sl_ctx_background(), 3600 * 1000);
        sl_ctx_cancel(c, SL_CAUSE_CANCELED);
        sl_ctx_unref(c);
    }
    s->t1 = sl_now_ns();
    sl_runtime_stop(rt);
    return 0;
}

static cb *FS;

static int parked_on_ctx(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_sleep(t, 3600 * SL_NS_PER_S));   /* ends by cancel */
    if (++FS->woken == FS->n)
        FS->t1 = sl_now_ns();
    (void)rc;
    SL_END(t);
}

static int fanout_main(sl_task *t, void *arg)
{
    cb *s = arg;
    SL_BEGIN(t);
    FS = s;
    sl_ctx_with_cancel(&s->root, sl_ctx_background());
    for (s->i = 0; s->i < s->n; s->i++) {
        sl_ctx *c;
        sl_ctx_with_cancel(&c, s->root);
        sl_go(c, parked_on_ctx, NULL, NULL, NULL);
        sl_ctx_unref(c);   /* the task holds it */
    }
    SL_YIELD(t);           /* everyone parks */
    s->t0 = sl_now_ns();
    sl_ctx_cancel(s->root, SL_CAUSE_CANCELED);
    while (s->woken < s->n)
        SL_YIELD(t);
    sl_ctx_unref(s->root);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int chain_main(sl_task *t, void *arg)
{
    cb *s = arg;
    sl_ctx *c[1001];
    (void)t;
    c[0] = sl_ctx_background();
    uint64_t best = UINT64_MAX;
    for (int r = 0; r < 20; r++) {
        for (int i = 1; i <= 1000; i++)
            sl_ctx_with_cancel(&c[i], c[i - 1]);
        uint64_t t0 = sl_now_ns();
        sl_ctx_cancel(c[1], SL_CAUSE_CANCELED);
        uint64_t t1 = sl_now_ns();
        if (sl_ctx_err(c[1000]) && t1 - t0 < best)
            best = t1 - t0;
        for (int i = 1000; i >= 1; i--)
            sl_ctx_unref(c[i]);
    }
    s->t0 = 0;
    s->t1 = best;
    sl_runtime_stop(rt);
    return 0;
}

static double best3(sl_step_fn fn, long n, double unit)
{
    double best = 1e300;
    for (int i = 0; i < 3; i++) {
        cb s = { .n = n };
        run(fn, &s);
        double v = (double)(s.t1 - s.t0) / unit;
        if (v < best)
            best = v;
    }
    return best;
}

static void emit(FILE *out, int json, const char *k, double v)
{
    if (json)
        fprintf(out, ",\n  \"%s\": %.3f", k, v);
    else
        fprintf(out, "%-32s %.3f\n", k, v);
}

void ctx_bench_run(FILE *out, int json, int quick)
{
    long k = quick ? 10 : 1;
    emit(out, json, "ctx_with_cancel_cancel_ns", best3(cancel_main, 2000000 / k, 1.0) / (double)(2000000 / k));
    emit(out, json, "ctx_with_timeout_cancel_ns", best3(timeout_main, 1000000 / k, 1.0) / (double)(1000000 / k));
    emit(out, json, "ctx_cancel_fanout_100k_ms", best3(fanout_main, 100000, 1e6));
    emit(out, json, "ctx_cancel_chain_1000_us", best3(chain_main, 0, 1e3));
}
