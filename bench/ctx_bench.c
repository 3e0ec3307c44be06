/* ctx_bench.c: context figures for core-bench's JSON object.
 *
 * ctx_bench_run() prints `,\n  "key": value` members (no braces: core-bench
 * opens and closes the object) or, without json, one "key value" line each:
 *   ctx_with_cancel_cancel_ns   make a child of a running parent, cancel it, free it
 *   ctx_with_timeout_cancel_ns  the same with a deadline of its own (a timer)
 *   ctx_cancel_fanout_100k_ms   one parent, 100,000 children each bound to a
 *                               parked task: from cancel until every task resumed
 *   ctx_cancel_chain_1000_us    cancel the top of a chain 1,000 deep
 *   ctx_deadline_wake_ns        50,000 tasks, each bound to a context of its
 *                               own with one shared deadline, parked: from
 *                               the deadline until all woke, per task (the
 *                               contexts ended first: the slot's deadline hook)
 *   task_deadline_wake_ns       the same with unbound tasks (a task deadline,
 *                               no context): what a deadline wake costs alone
 * Each is the best of three runs. */
#include <stdio.h>
#include <stdlib.h>
#include "sluice.h"

void ctx_bench_run(FILE *out, int json, int quick);

/* a failed call would make the figure meaningless: stop loudly instead */
#define CHECK(x)                                                                 \
    do {                                                                         \
        if ((x) != 0) {                                                          \
            fprintf(stderr, "ctx-bench: %s failed at %s:%d\n", #x, __FILE__, __LINE__); \
            abort();                                                             \
        }                                                                        \
    } while (0)

static sl_runtime *rt;

typedef struct cb {
    long n;
    uint64_t t0, t1;
    int rc, woken, i;
    sl_ctx *root;
} cb;

static void run(sl_step_fn fn, void *st)
{
    CHECK(sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .stall_ms = -1 }));
    CHECK(sl_spawn_on(sl_runtime_reactor(rt, 0), fn, st, NULL));
    CHECK(sl_runtime_run(rt));
    if (sl_runtime_free(rt))
        fprintf(stderr, "ctx-bench: leaks reported\n");
}

static int cancel_main(sl_task *t, void *arg)
{
    cb *s = arg;
    sl_ctx *parent, *c;
    (void)t;
    CHECK(sl_ctx_with_cancel(&parent, sl_ctx_background()));
    s->t0 = sl_now_ns();
    for (long i = 0; i < s->n; i++) {
        CHECK(sl_ctx_with_cancel(&c, parent));
        CHECK(sl_ctx_cancel(c, SL_CAUSE_CANCELED));
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
        CHECK(sl_ctx_with_timeout(&c, sl_ctx_background(), 3600 * 1000));
        CHECK(sl_ctx_cancel(c, SL_CAUSE_CANCELED));
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
    CHECK(sl_ctx_with_cancel(&s->root, sl_ctx_background()));
    for (s->i = 0; s->i < s->n; s->i++) {
        sl_ctx *c;
        CHECK(sl_ctx_with_cancel(&c, s->root));
        CHECK(sl_go(c, parked_on_ctx, NULL, NULL, NULL));
        sl_ctx_unref(c);   /* the task holds it */
    }
    SL_YIELD(t);           /* everyone parks */
    s->t0 = sl_now_ns();
    CHECK(sl_ctx_cancel(s->root, SL_CAUSE_CANCELED));
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
            CHECK(sl_ctx_with_cancel(&c[i], c[i - 1]));
        uint64_t t0 = sl_now_ns();
        CHECK(sl_ctx_cancel(c[1], SL_CAUSE_CANCELED));
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

/* ---- deadline wakes (docs/context.md: a bound task woken by its deadline
 * finds its context ended) ---- */

static cb *DW;
static int dw_bound;

static int dw_parked(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_sleep(t, 3600 * SL_NS_PER_S));   /* ends by the deadline */
    CHECK(rc != -ETIMEDOUT);
    if (++DW->woken == DW->n) {
        DW->t1 = sl_now_ns();
        sl_runtime_stop(rt);
    }
    SL_END(t);
}

static int dw_main(sl_task *t, void *arg)
{
    (void)t;
    DW = arg;
    /* far enough ahead for the setup (a few ms per 10,000 tasks) */
    DW->t0 = sl_now_ns() + 300 * SL_NS_PER_MS;
    for (long i = 0; i < DW->n; i++) {
        if (dw_bound) {
            sl_ctx *c;
            CHECK(sl_ctx_with_deadline(&c, sl_ctx_background(), DW->t0));
            CHECK(sl_go(c, dw_parked, NULL, NULL, NULL));
            sl_ctx_unref(c);
        } else {
            CHECK(sl_spawn(NULL, dw_parked, NULL, NULL, &(sl_spawn_opts){ .deadline = DW->t0 }));
        }
    }
    if (sl_now_ns() >= DW->t0)
        fprintf(stderr, "ctx-bench: deadline wakes: the setup outlasted the deadline\n");
    return 0;
}

static int dw_main_bound(sl_task *t, void *arg) { dw_bound = 1; return dw_main(t, arg); }
static int dw_main_unbound(sl_task *t, void *arg) { dw_bound = 0; return dw_main(t, arg); }

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
    emit(out, json, "ctx_deadline_wake_ns", best3(dw_main_bound, 50000 / k, 1.0) / (double)(50000 / k));
    emit(out, json, "task_deadline_wake_ns", best3(dw_main_unbound, 50000 / k, 1.0) / (double)(50000 / k));
}
