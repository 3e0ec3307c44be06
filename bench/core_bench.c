/* core_bench.c: micro benchmarks of core/, one JSON object on stdout.
 *
 *   bench/core-bench --json        (what `make bench` runs)
 *   bench/core-bench               (the same, one figure a line)
 *   bench/core-bench --stall       (with the stall watchdog on, to measure its cost)
 *   bench/core-bench --trace F     (recording a timeline into F, the same)
 *
 * Each figure is the best of three runs, so a noisy neighbour inflates at
 * most one of them. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sluice.h"
#include "flag.h"
#include "internal.h"   /* the fan-out reads its reactor's rs_slot_defs (core/rsend.c "slots") */

void ctx_bench_run(FILE *out, int json, int quick);   /* bench/ctx_bench.c */

static int json;
static int idle_spin_us;     /* sl_runtime_opts.idle_spin_us of run_main's runtimes: 0 default, -1 off */
static int stall_ms = -1;   /* the stall watchdog is off in benchmarks; --stall turns it on */
static const char *trace_path;   /* --trace FILE: record a timeline while measuring */
static const char *only;         /* --only KEY: just that figure (for profiling) */
static sl_runtime *rt;

static bool wanted(const char *key) { return !only || !strcmp(only, key); }

static void emit(const char *key, double v, int *first)
{
    if (json)
        printf("%s\n  \"%s\": %.3f", *first ? "{" : ",", key, v);
    else
        printf("%-32s %.3f\n", key, v);
    *first = 0;
}

static void run_main(sl_step_fn fn, void *st, int threads)
{
    /* no busy-poll report: the yield figure yields a million times on purpose */
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = threads, .stall_ms = stall_ms, .spin_limit = UINT_MAX,
                                            .idle_spin_us = idle_spin_us });
    if (trace_path)
        sl_trace_start(rt, trace_path, 0);
    sl_spawn_on(sl_runtime_reactor(rt, 0), fn, st, NULL);
    sl_runtime_run(rt);
    if (getenv("CORE_BENCH_STATS"))   /* each reactor's counters, for accounting a figure (docs/core.md) */
        for (int i = 0; i < threads; i++) {
            sl_reactor_stats s;
            sl_reactor_stats_get(sl_runtime_reactor(rt, i), &s);
            fprintf(stderr, "reactor %d: steps %llu msgs %llu wakeups %llu spins %llu spin_hits %llu "
                    "spin_runs %llu spin_bounds %llu spin_yields %llu spin_misses %llu spin_skips %llu "
                    "spin_empty_skips %llu spin_empty_wakes %llu fd_wakeups %llu brief_polls %llu brief_hits %llu "
                    "brief_empty_ns %llu\n", i, (unsigned long long)s.steps,
                    (unsigned long long)s.msgs, (unsigned long long)s.wakeups, (unsigned long long)s.spins,
                    (unsigned long long)s.spin_hits, (unsigned long long)s.spin_runs,
                    (unsigned long long)s.spin_bounds, (unsigned long long)s.spin_yields,
                    (unsigned long long)s.spin_misses, (unsigned long long)s.spin_skips,
                    (unsigned long long)s.spin_empty_skips, (unsigned long long)s.spin_empty_wakes,
                    (unsigned long long)s.fd_wakeups, (unsigned long long)s.brief_polls,
                    (unsigned long long)s.brief_hits, (unsigned long long)s.brief_empty_ns);
        }
    if (sl_runtime_free(rt) != 0)
        fprintf(stderr, "core-bench: leaks reported\n");
}

typedef struct bst {
    long n, i;
    uint64_t t0, t1;
    sl_chan *a, *b, *c[4];
    sl_case cs[4];
    int64_t v, got;
    int rc, res;
    sl_task *child;
    sl_mutex m;
    int flags;          /* select4: sl_select's flags */
    bool until;         /* send_recv: every element sent with a deadline */
} bst;

static double best_of3(double (*f)(long), long n)
{
    double best = 1e300;
    for (int i = 0; i < 3; i++) {
        double v = f(n);
        if (v < best)
            best = v;
    }
    return best;
}

/* ---- try_send then try_recv, one task ---------------------------------------------- */

static int send_recv_main(sl_task *t, void *arg)
{
    bst *s = arg;
    sl_chan_new(&s->a, sizeof(int64_t), 1024, &(sl_chan_opts){ .expiring = s->until });
    uint64_t far = sl_deadline_ms(3600 * 1000);   /* never reached: the cost of the check */
    s->t0 = sl_now_ns();
    if (s->until) {
        for (long i = 0; i < s->n; i++) {
            s->v = i;
            sl_chan_try_send_until(t, s->a, &s->v, far);
            sl_chan_try_recv(t, s->a, &s->got);
        }
    } else {
        for (long i = 0; i < s->n; i++) {
            s->v = i;
            sl_chan_try_send(t, s->a, &s->v);
            sl_chan_try_recv(t, s->a, &s->got);
        }
    }
    s->t1 = sl_now_ns();
    sl_chan_free(t, s->a);
    sl_runtime_stop(rt);
    return 0;
}

static double b_send_recv(long n)
{
    bst s = { .n = n };
    run_main(send_recv_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* the same with an element deadline on every send (issue 20) */
static double b_send_until_recv(long n)
{
    bst s = { .n = n, .until = true };
    run_main(send_recv_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- ping-pong over two rendezvous channels ------------------------------------------ */

static int pong(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    for (;;) {
        SL_AWAIT(t, s->rc, sl_chan_recv(t, s->a, &s->got));
        if (s->rc < 0)
            break;
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->b, &s->got));
    }
    SL_END(t);
}

static int ping_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    sl_chan_new(&s->a, sizeof(int64_t), 0, NULL);
    sl_chan_new(&s->b, sizeof(int64_t), 0, NULL);
    sl_spawn(NULL, pong, s, NULL, NULL);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++) {
        s->v = s->i;
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->a, &s->v));
        SL_AWAIT(t, s->rc, sl_chan_recv(t, s->b, &s->v));
    }
    s->t1 = sl_now_ns();
    sl_chan_close(t, s->a);
    SL_YIELD(t);
    sl_chan_free(t, s->a);
    sl_chan_free(t, s->b);
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_pingpong(long n)
{
    bst s = { .n = n };
    run_main(ping_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- producer/consumer throughput, capacity 128 ------------------------------------------- */

static int consumer(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    for (;;) {
        SL_AWAIT(t, s->rc, sl_chan_recv(t, s->a, &s->got));
        if (s->rc < 0)
            break;
    }
    s->t1 = sl_now_ns();
    sl_chan_free(t, s->a);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int producer_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    sl_chan_new(&s->a, sizeof(int64_t), 128, NULL);
    sl_spawn(NULL, consumer, s, &s->child, NULL);
    sl_chan_give(s->a, t, s->child);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++) {
        s->v = s->i;
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->a, &s->v));
    }
    /* the consumer owns the channel now; it sees the end through ends */
    SL_END(t);
}

static int producer_attach(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    sl_chan_new(&s->a, sizeof(int64_t), 128, NULL);
    sl_chan_attach(s->a, t, SL_CHAN_SENDER);   /* our end goes when we end */
    sl_spawn(NULL, consumer, s, &s->child, NULL);
    sl_chan_give(s->a, t, s->child);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++) {
        s->v = s->i;
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->a, &s->v));
    }
    SL_END(t);
}

static long throughput_n = 10000000;

static double b_throughput_neg(long unused)
{
    bst s = { .n = throughput_n };
    (void)unused;
    (void)producer_main;
    run_main(producer_attach, &s, 1);
    return -(double)s.n / ((double)(s.t1 - s.t0) / 1e9);
}

/* ---- select over four channels, one ready -------------------------------------------------- */

static int select_main(sl_task *t, void *arg)
{
    bst *s = arg;
    for (int i = 0; i < 4; i++) {
        sl_chan_new(&s->c[i], sizeof(int64_t), 1, NULL);
        s->cs[i] = (sl_case){ .ch = s->c[i], .op = SL_RECV, .buf = &s->got };
    }
    s->t0 = sl_now_ns();
    for (long i = 0; i < s->n; i++) {
        s->v = i;
        sl_chan_try_send(t, s->c[i & 3], &s->v);
        sl_select(t, s->cs, 4, s->flags);
    }
    s->t1 = sl_now_ns();
    for (int i = 0; i < 4; i++)
        sl_chan_free(t, s->c[i]);
    sl_runtime_stop(rt);
    return 0;
}

static double b_select4(long n)
{
    bst s = { .n = n };
    run_main(select_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* priority mode, k = 16 (issue 20) */
static double b_select4_prio(long n)
{
    bst s = { .n = n, .flags = SL_SELECT_PRIO(16) };
    run_main(select_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* same-run ratios, interleaved so that load on the machine hits both */
static double ratio_of(double (*a)(long), double (*b)(long), long n)
{
    double best = 1e300;
    for (int i = 0; i < 5; i++) {
        double x = a(n), y = b(n);
        if (x / y < best)
            best = x / y;
    }
    return best;
}

/* ---- spawn + join ------------------------------------------------------------------------- */

static int nothing(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    return 0;
}

static int spawn_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++) {
        sl_spawn(NULL, nothing, NULL, &s->child, &(sl_spawn_opts){ .joinable = true });
        SL_AWAIT(t, s->rc, sl_task_join(t, s->child, &s->res));
    }
    s->t1 = sl_now_ns();
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_spawn_join(long n)
{
    bst s = { .n = n };
    run_main(spawn_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- memory per parked task ---------------------------------------------------------------- */

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

typedef struct parked_st {
    int64_t v;
    int rc;
} parked_st;

static sl_chan *park_ch;

static int parked(sl_task *t, void *arg)
{
    parked_st *p = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, p->rc, sl_chan_recv(t, park_ch, &p->v));
    SL_END(t);
}

static int parked_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    sl_chan_new(&park_ch, sizeof(int64_t), 0, NULL);
    s->t0 = (uint64_t)rss_bytes();
    for (s->i = 0; s->i < s->n; s->i++)
        sl_spawn(NULL, parked, malloc(sizeof(parked_st)), NULL, &(sl_spawn_opts){ .state_free = free });
    SL_YIELD(t);
    s->t1 = (uint64_t)rss_bytes();
    sl_chan_close(t, park_ch);
    SL_YIELD(t);
    sl_chan_free(t, park_ch);
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_parked_bytes(long n)
{
    bst s = { .n = n };
    run_main(parked_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- cross-reactor messages ------------------------------------------------------------------ */

#define WINDOW 1024
#define ACK_EVERY 64   /* the consumer hands nodes back in batches */

/* Each side's state on cache lines of its own, as two threads' would be:
 * counters the two threads wrote side by side would bounce one line between
 * the cores per message, which is the benchmark's cost, not the queue's. */
typedef struct xr {
    struct {                    /* reactor 0's */
        sl_reactor *b;
        long n, sent, acked;
        uint64_t t0, t1;
        int use_malloc;
    } _Alignas(64) p;
    struct {                    /* reactor 1's */
        sl_reactor *a;
        long n, got;
        int64_t sum;            /* the payloads, as the Go peer adds its values */
        int ack_i;
        sl_msg acks[WINDOW / ACK_EVERY];
    } _Alignas(64) c;
    _Alignas(64) sl_msg msgs[WINDOW];
} xr;

static xr X;

static void produce(void);

static void on_ack(void *arg)
{
    X.p.acked += (long)(intptr_t)arg;
    if (X.p.acked == X.p.n) {
        X.p.t1 = sl_now_ns();
        sl_runtime_stop(rt);
        return;
    }
    produce();
}

static void on_msg(void *arg)
{
    X.c.sum += (int64_t)(intptr_t)arg;
    /* acknowledge every 64 messages, so the producer reuses their nodes */
    if (++X.c.got % ACK_EVERY == 0 || X.c.got == X.c.n) {
        long k = X.c.got % ACK_EVERY ? X.c.got % ACK_EVERY : ACK_EVERY;
        sl_reactor_post_mem(X.c.a, &X.c.acks[X.c.ack_i++ % (WINDOW / ACK_EVERY)], on_ack, (void *)(intptr_t)k);
    }
}

static void produce(void)
{
    while (X.p.sent < X.p.n && X.p.sent - X.p.acked < WINDOW) {
        void *v = (void *)(intptr_t)X.p.sent;
        if (X.p.use_malloc)
            sl_reactor_post(X.p.b, on_msg, v);
        else
            sl_reactor_post_mem(X.p.b, &X.msgs[X.p.sent % WINDOW], on_msg, v);
        X.p.sent++;
    }
}

static void start_x(void *arg)
{
    (void)arg;
    X.p.t0 = sl_now_ns();
    produce();
}

static double b_cross(long n, int use_malloc)
{
    memset(&X, 0, sizeof X);
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 2, .stall_ms = stall_ms });
    X.c.a = sl_runtime_reactor(rt, 0);
    X.p.b = sl_runtime_reactor(rt, 1);
    X.p.n = X.c.n = n;
    X.p.use_malloc = use_malloc;
    sl_reactor_post(X.c.a, start_x, NULL);
    sl_runtime_run(rt);
    sl_runtime_free(rt);
    if (X.c.sum != (int64_t)n * (n - 1) / 2)
        fprintf(stderr, "core-bench: cross: payloads lost or doubled\n");
    return (double)n / ((double)(X.p.t1 - X.p.t0) / 1e9);
}

static double b_cross_mem(long n) { return -b_cross(n, 0); }
static double b_cross_malloc(long n) { return -b_cross(n, 1); }

/* ---- cross-reactor channel ------------------------------------------------------------------ */

/* What both sides read (ch, n) on a line that neither writes while they
 * run, and the home side's loop state on one of its own: in one line, the
 * other reactor's read of n at every send missed whenever the home had
 * just received (the benchmark's false sharing, not the channel's: the Go
 * peer's loop state is on its goroutines' stacks). */
typedef struct xch {
    sl_chan *ch;
    long n;
    uint64_t t0;
    _Alignas(64) long i;   /* the home side's (reactor 0) */
    int64_t v, got;
    int rc, finished;   /* finished: counted on reactor 0 */
    uint64_t t1;
} xch;

static _Alignas(64) xch XC;

/* Both sides must be done before the runtime stops, or the producer's last
 * result would still be on its way back. */
static void xc_finished(void *arg)
{
    (void)arg;
    if (++XC.finished == 2)
        sl_runtime_stop(rt);
}

static int xc_consumer(sl_task *t, void *arg)   /* home of the channel */
{
    (void)arg;
    SL_BEGIN(t);
    for (XC.i = 0; XC.i < XC.n; XC.i++)
        SL_AWAIT(t, XC.rc, sl_chan_recv(t, XC.ch, &XC.got));
    XC.t1 = sl_now_ns();
    sl_chan_free(t, XC.ch);
    xc_finished(NULL);
    SL_END(t);
}

typedef struct xp { _Alignas(64) long i; int64_t v; int rc; } xp;   /* reactor 1's, a line of its own */

static int xc_producer(sl_task *t, void *arg)   /* on the other reactor */
{
    xp *p = arg;
    SL_BEGIN(t);
    for (p->i = 0; p->i < XC.n; p->i++) {
        p->v = p->i;
        SL_AWAIT(t, p->rc, sl_chan_send(t, XC.ch, &p->v));
    }
    sl_reactor_post(sl_runtime_reactor(rt, 0), xc_finished, NULL);
    SL_END(t);
}

static _Alignas(64) xp XP;

static int xc_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_chan_new(&XC.ch, sizeof(int64_t), 1024, NULL);
    sl_task *c;
    sl_spawn(NULL, xc_consumer, NULL, &c, NULL);
    sl_chan_give(XC.ch, t, c);
    XC.t0 = sl_now_ns();
    sl_spawn_on(sl_runtime_reactor(rt, 1), xc_producer, &XP, NULL);
    return 0;
}

static double b_cross_chan(long n)
{
    memset(&XC, 0, sizeof XC);
    XC.n = n;
    run_main(xc_main, NULL, 2);
    return -(double)n / ((double)(XC.t1 - XC.t0) / 1e9);
}

/* ---- the other way: the producer at the channel's home, the consumer on
 * reactor 1 (its receives fed ahead: core/rrecv.c) ---------------------------------------- */

typedef struct xrc { _Alignas(64) long i; int64_t got; int rc; } xrc;   /* reactor 1's, a line of its own */

static _Alignas(64) xrc XR;

static void xr_done(void *arg)   /* the consumer's last report is in: nothing is lent any more */
{
    (void)arg;
    if (++XC.finished == 2) {
        sl_chan_free(NULL, XC.ch);
        sl_runtime_stop(rt);
    }
}

static int xr_consumer(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    for (XR.i = 0; XR.i < XC.n; XR.i++)
        SL_AWAIT(t, XR.rc, sl_chan_recv(t, XC.ch, &XR.got));
    XC.t1 = sl_now_ns();
    sl_reactor_post(sl_runtime_reactor(rt, 0), xr_done, NULL);
    SL_END(t);
}

static int xr_producer(sl_task *t, void *arg)   /* reactor 0: the channel's home */
{
    (void)arg;
    SL_BEGIN(t);
    XC.t0 = sl_now_ns();
    for (XC.i = 0; XC.i < XC.n; XC.i++) {
        XC.v = XC.i;
        SL_AWAIT(t, XC.rc, sl_chan_send(t, XC.ch, &XC.v));
    }
    SL_END(t);
}

static int xr_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_chan_new(&XC.ch, sizeof(int64_t), 1024, NULL);
    sl_task *p;
    sl_spawn(NULL, xr_producer, NULL, &p, NULL);
    sl_chan_give(XC.ch, t, NULL);
    XC.finished = 1;   /* xr_done: the consumer's end makes 2 */
    sl_spawn_on(sl_runtime_reactor(rt, 1), xr_consumer, NULL, NULL);
    return 0;
}

static double b_cross_chan_recv(long n)
{
    memset(&XC, 0, sizeof XC);
    memset(&XR, 0, sizeof XR);
    XC.n = n;
    run_main(xr_main, NULL, 2);
    return -(double)n / ((double)(XC.t1 - XC.t0) / 1e9);
}

/* ---- ping-pong across reactors through two channels (issue 17) ------------------------ */

/* A on reactor 1 sends on `a` (home: reactor 0) and receives on `b`; B on
 * reactor 0 receives on `a` and sends on `b` (home: reactor 1). Capacity 1
 * each (the Go peer's channels too): each side receives at home and sends
 * by credit. One round trip per iteration. */
/* Each side's loop state on a line of its own: in one struct, both
 * threads wrote the same line at every leg, a cache miss a leg that was
 * the benchmark's, not the channel's (the Go peer's are on the
 * goroutines' stacks). */
typedef struct xpp {
    sl_chan *a, *b;
    long n;
    _Alignas(64) long ia;   /* A's, reactor 1 */
    int64_t va;
    int rca;
    uint64_t t0, t1;
    _Alignas(64) long ib;   /* B's, reactor 0 */
    int64_t vb;
    int rcb, finished;
} xpp;

static _Alignas(64) xpp XPP;

static void xpp_finished(void *arg)
{
    (void)arg;
    if (++XPP.finished == 2)
        sl_runtime_stop(rt);
}

static int xpp_b(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    for (XPP.ib = 0; XPP.ib < XPP.n; XPP.ib++) {
        SL_AWAIT(t, XPP.rcb, sl_chan_recv(t, XPP.a, &XPP.vb));
        SL_AWAIT(t, XPP.rcb, sl_chan_send(t, XPP.b, &XPP.vb));
    }
    sl_chan_free(t, XPP.a);
    xpp_finished(NULL);
    SL_END(t);
}

static int xpp_a(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_chan_new(&XPP.b, sizeof(int64_t), 1, NULL);   /* B reads it after our first send */
    XPP.t0 = sl_now_ns();
    for (XPP.ia = 0; XPP.ia < XPP.n; XPP.ia++) {
        XPP.va = XPP.ia;
        SL_AWAIT(t, XPP.rca, sl_chan_send(t, XPP.a, &XPP.va));
        SL_AWAIT(t, XPP.rca, sl_chan_recv(t, XPP.b, &XPP.va));
    }
    XPP.t1 = sl_now_ns();
    sl_chan_free(t, XPP.b);
    sl_reactor_post(sl_runtime_reactor(rt, 0), xpp_finished, NULL);
    SL_END(t);
}

static int xpp_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_task *b;
    sl_chan_new(&XPP.a, sizeof(int64_t), 1, NULL);
    sl_spawn(NULL, xpp_b, NULL, &b, NULL);
    sl_chan_give(XPP.a, t, b);
    sl_spawn_on(sl_runtime_reactor(rt, 1), xpp_a, NULL, NULL);
    return 0;
}

static double b_cross_pingpong(long n)
{
    memset(&XPP, 0, sizeof XPP);
    XPP.n = n;
    run_main(xpp_main, NULL, 2);
    return (double)(XPP.t1 - XPP.t0) / (double)n;
}

/* ---- a select on reactor 1 over an idle local channel and a rendezvous
 * channel of reactor 0, fed there by a blocking sender (issue 17: by
 * offer, core/rsel.c): ns per element received through the rendezvous
 * case. Each element: the select parks (a proxy goes home), the sender
 * offers, the select accepts, the sender completes. The Go peer: a select
 * over two unbuffered channels, one fed from another goroutine, two Ps. */
typedef struct xsr {
    sl_chan *rv, *idle;
    long n, is, ir;
    int64_t vs, got;
    int rcs, rcr, finished;
    sl_case cs[2];
    uint64_t t0, t1;
} xsr;

static xsr XS;

static void xs_finished(void *arg)   /* reactor 0 */
{
    (void)arg;
    if (++XS.finished == 2) {
        sl_chan_free(NULL, XS.rv);
        sl_runtime_stop(rt);
    }
}

static int xs_sender(sl_task *t, void *arg)   /* reactor 0: the rendezvous channel's home */
{
    (void)arg;
    SL_BEGIN(t);
    for (XS.is = 0; XS.is < XS.n; XS.is++) {
        XS.vs = XS.is;
        SL_AWAIT(t, XS.rcs, sl_chan_send(t, XS.rv, &XS.vs));
    }
    xs_finished(NULL);
    SL_END(t);
}

static int xs_select(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_chan_new(&XS.idle, sizeof(int64_t), 1, NULL);
    XS.cs[0] = (sl_case){ .ch = XS.idle, .op = SL_RECV, .buf = &XS.got };
    XS.cs[1] = (sl_case){ .ch = XS.rv, .op = SL_RECV, .buf = &XS.got };
    XS.t0 = sl_now_ns();
    for (XS.ir = 0; XS.ir < XS.n; XS.ir++)
        SL_AWAIT(t, XS.rcr, sl_select(t, XS.cs, 2, 0));
    XS.t1 = sl_now_ns();
    sl_chan_free(t, XS.idle);
    sl_reactor_post(sl_runtime_reactor(rt, 0), xs_finished, NULL);
    SL_END(t);
}

static int xs_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_chan_new(&XS.rv, sizeof(int64_t), 0, NULL);
    sl_chan_give(XS.rv, t, NULL);
    sl_spawn(NULL, xs_sender, NULL, NULL, NULL);
    sl_spawn_on(sl_runtime_reactor(rt, 1), xs_select, NULL, NULL);
    return 0;
}

static double b_cross_select_rv(long n)
{
    memset(&XS, 0, sizeof XS);
    XS.n = n;
    run_main(xs_main, NULL, 2);
    return (double)(XS.t1 - XS.t0) / (double)n;
}

/* The same with the reactors' idle spin off (sl_runtime_opts.idle_spin_us
 * -1): every leg wakes a sleeping reactor. */
static double b_cross_pingpong_nospin(long n)
{
    idle_spin_us = -1;
    double v = b_cross_pingpong(n);
    idle_spin_us = 0;
    return v;
}

/* ---- the floor under a cross-reactor ping-pong ----------------------------------------- */

/* bench/flag.h: two bare threads, two atomic words. Both words on one
 * line here (what earlier stops compared with; bench/leg-ladder's flag1). */
static _Alignas(64) struct { _Atomic long ab, ba; } flag_line;

static double b_flag_roundtrip(long n)
{
    return bench_flag_roundtrip(&flag_line.ab, &flag_line.ba, n);
}

/* ---- worker pool across reactors (issue 17) ---------------------------------------------------- */

/* One producer task sends n jobs on `jobs` (home: reactor 0, cap 1024) and
 * closes it; a worker task on every reactor receives jobs, works on each
 * (wp_work) and sends its result on `results` (home: reactor 0, cap 1024);
 * a collector on reactor 0 receives the n results. The Go peer: the same
 * with goroutines, a worker per P at GOMAXPROCS=2. Jobs/s: n over the time
 * from the first send to the last result. */
#define WP_WORKERS 2

typedef struct wpw { _Alignas(64) long done; int64_t v; int rc; } wpw;   /* each worker's on a line of its own */

/* The work per job: 256 steps of an LCG (a few hundred ns), enough that a
 * second core is worth having; the Go peer's is the same. */
static int64_t wp_work(int64_t v)
{
    uint64_t x = (uint64_t)v;
    for (int i = 0; i < 256; i++)
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int64_t)x;
}

typedef struct wp {
    sl_chan *jobs, *results;   /* read by every worker: not beside what reactor 0 writes */
    long n;
    _Alignas(64) long ip, ic;   /* the producer's and the collector's, both on reactor 0 */
    int64_t vp, vc;
    int rcp, rcc, finished;   /* finished: workers and collector, counted on reactor 0 */
    uint64_t t0, t1;
    wpw w[WP_WORKERS];
} wp;

static _Alignas(64) wp WP;

static void wp_finished(void *arg)
{
    (void)arg;
    if (++WP.finished == WP_WORKERS + 1) {
        sl_chan_free(NULL, WP.jobs);
        sl_chan_free(NULL, WP.results);
        sl_runtime_stop(rt);
    }
}

static int wp_worker(sl_task *t, void *arg)
{
    wpw *w = arg;
    SL_BEGIN(t);
    for (;;) {
        SL_AWAIT(t, w->rc, sl_chan_recv(t, WP.jobs, &w->v));
        if (w->rc)
            break;   /* -EPIPE: closed and drained */
        w->v = wp_work(w->v);
        SL_AWAIT(t, w->rc, sl_chan_send(t, WP.results, &w->v));
        w->done++;
    }
    sl_reactor_post(sl_runtime_reactor(rt, 0), wp_finished, NULL);
    SL_END(t);
}

static int wp_producer(sl_task *t, void *arg)   /* reactor 0; owns jobs */
{
    (void)arg;
    SL_BEGIN(t);
    WP.t0 = sl_now_ns();
    for (WP.ip = 0; WP.ip < WP.n; WP.ip++) {
        WP.vp = WP.ip;
        SL_AWAIT(t, WP.rcp, sl_chan_send(t, WP.jobs, &WP.vp));
    }
    sl_chan_close(t, WP.jobs);
    sl_chan_give(WP.jobs, t, NULL);   /* freed once every worker is done (wp_finished) */
    SL_END(t);
}

static int wp_collector(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    for (WP.ic = 0; WP.ic < WP.n; WP.ic++)
        SL_AWAIT(t, WP.rcc, sl_chan_recv(t, WP.results, &WP.vc));
    WP.t1 = sl_now_ns();
    wp_finished(NULL);
    SL_END(t);
}

static int wp_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_task *p;
    sl_chan_new(&WP.jobs, sizeof(int64_t), 1024, NULL);
    sl_chan_new(&WP.results, sizeof(int64_t), 1024, NULL);
    sl_spawn(NULL, wp_producer, NULL, &p, NULL);
    sl_chan_give(WP.jobs, t, p);
    sl_chan_give(WP.results, t, NULL);
    sl_spawn(NULL, wp_collector, NULL, NULL, NULL);
    for (int k = 0; k < WP_WORKERS; k++)
        sl_spawn_on(sl_runtime_reactor(rt, k), wp_worker, &WP.w[k], NULL);
    return 0;
}

/* What share of the jobs the worker on reactor 1 (not the channel's home)
 * did in the last run: it says how far the pool used the second core. */
static double wp_far_share;

static double b_worker_pool(long n)
{
    memset(&WP, 0, sizeof WP);
    WP.n = n;
    run_main(wp_main, NULL, WP_WORKERS);
    wp_far_share = (double)WP.w[1].done / (double)n;
    return -(double)n / ((double)(WP.t1 - WP.t0) / 1e9);
}

/* ---- fan-out: one sender, K channels of one home in turn (issue 17, seventeenth stop) -------- */

/* One task on reactor 1 sends element i to channel i % K, the K channels
 * (capacity 64) homed on reactor 0, one receiver each there. Each send
 * starts a batch and ships the last one (close_others): one small
 * message an element, naming its channel by a slot of the pair 1 -> 0
 * (core/rsend.c "slots"), 15 of them; past 15 channels every message
 * first defines one. K: CORE_BENCH_FANOUT_K (1-64, default 32). With
 * CORE_BENCH_FANOUT_HOT=H (0 < H < K), rounds of H + 1 elements: one
 * to a cold channel (the K - H others in turn), then one to each of the
 * H hot ones (a working set among many: tests/test_credit.c
 * test_slots_working_set). The time is the sender's first send to the
 * last receiver's last element; rs_slot_defs a element is the sender's
 * reactor's. */
#define FO_MAX 64

typedef struct xfo {
    sl_chan *ch[FO_MAX];
    long n;
    int k, hot;
    long count[FO_MAX];          /* each receiver's elements */
    uint64_t t0, t1;
    double defs;                 /* definitions an element, the last run (reactor 1) */
    _Alignas(64) int finished;   /* reactor 0's */
} xfo;

static _Alignas(64) xfo FO;

typedef struct xfr { _Alignas(64) long i; int64_t got; int rc; } xfr;   /* a receiver's, a line of its own */
static xfr FOR[FO_MAX];

typedef struct xfs { _Alignas(64) long i; int64_t v; int rc; uint64_t defs0; } xfs;   /* the sender's */
static xfs FOS;

/* the channel of the i-th element */
static int fo_chan(long i)
{
    if (!FO.hot)
        return (int)(i % FO.k);
    long r = i / (FO.hot + 1), p = i % (FO.hot + 1);
    return p == 0 ? FO.hot + (int)(r % (FO.k - FO.hot)) : (int)p - 1;
}

static void fo_finished(void *arg)   /* reactor 0 */
{
    (void)arg;
    if (++FO.finished == FO.k + 1) {
        FO.t1 = sl_now_ns();
        sl_runtime_stop(rt);
    }
}

static int fo_receiver(sl_task *t, void *arg)   /* reactor 0 */
{
    xfr *p = arg;
    int j = (int)(p - FOR);
    SL_BEGIN(t);
    for (p->i = 0; p->i < FO.count[j]; p->i++)
        SL_AWAIT(t, p->rc, sl_chan_recv(t, FO.ch[j], &p->got));
    sl_chan_free(t, FO.ch[j]);
    fo_finished(NULL);
    SL_END(t);
}

static int fo_sender(sl_task *t, void *arg)   /* reactor 1 */
{
    xfs *p = arg;
    SL_BEGIN(t);
    p->defs0 = sl_task_reactor(t)->rs_slot_defs;
    FO.t0 = sl_now_ns();
    for (p->i = 0; p->i < FO.n; p->i++) {
        p->v = p->i;
        SL_AWAIT(t, p->rc, sl_chan_send(t, FO.ch[fo_chan(p->i)], &p->v));
    }
    FO.defs = (double)(sl_task_reactor(t)->rs_slot_defs - p->defs0) / (double)FO.n;
    sl_reactor_post(sl_runtime_reactor(rt, 0), fo_finished, NULL);
    SL_END(t);
}

static int fo_main(sl_task *t, void *arg)
{
    (void)arg;
    for (int j = 0; j < FO.k; j++) {
        sl_task *c;
        sl_chan_new(&FO.ch[j], sizeof(int64_t), 64, NULL);
        sl_spawn(NULL, fo_receiver, &FOR[j], &c, NULL);
        sl_chan_give(FO.ch[j], t, c);
    }
    sl_spawn_on(sl_runtime_reactor(rt, 1), fo_sender, &FOS, NULL);
    return 0;
}

static double b_fanout(long n)
{
    int k = FO.k, hot = FO.hot;
    memset(&FO, 0, sizeof FO);
    memset(FOR, 0, sizeof FOR);
    memset(&FOS, 0, sizeof FOS);
    FO.k = k;
    FO.hot = hot;
    FO.n = n / k * k;
    for (long i = 0; i < FO.n; i++)
        FO.count[fo_chan(i)]++;
    run_main(fo_main, NULL, 2);
    return (double)(FO.t1 - FO.t0) / (double)FO.n;
}

/* ---- round trips: a task awaiting another reactor, or the offload pool ----------------------- */

/* A task parks, a message goes to reactor 1, which posts one back that
 * wakes the task: the cross-reactor round trip an offload is compared with
 * (both are a task waiting on another thread and woken through its
 * reactor's message queue). */
typedef struct rtt {
    long n, i;
    int rc;
    uint64_t t0, t1;
    sl_task *t;
    sl_reactor *home, *far;
    sl_msg go, back;
} rtt;

static rtt RT;

static void rtt_back(void *arg)
{
    (void)arg;
    sl_task_unpark(RT.t, 0);
}

static void rtt_far(void *arg)
{
    (void)arg;
    sl_reactor_post_mem(RT.home, &RT.back, rtt_back, NULL);
}

static int rtt_send(sl_task *t)
{
    int rc = sl_task_park(t, NULL, NULL);
    if (rc == SL_PENDING)
        sl_reactor_post_mem(RT.far, &RT.go, rtt_far, NULL);
    return rc;
}

static int rtt_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    RT.t = t;
    RT.home = sl_task_reactor(t);
    RT.far = sl_runtime_reactor(rt, 1);
    RT.t0 = sl_now_ns();
    for (RT.i = 0; RT.i < RT.n; RT.i++)
        SL_AWAIT(t, RT.rc, rtt_send(t));
    RT.t1 = sl_now_ns();
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_cross_roundtrip(long n)
{
    memset(&RT, 0, sizeof RT);
    RT.n = n;
    run_main(rtt_main, NULL, 2);
    return (double)(RT.t1 - RT.t0) / (double)n;
}

/* The same shape through the pool: one reactor, one worker, an empty call. */
static int offload_workers = 1;
static long offload_sleep_us;    /* what each call does: 0 nothing, else usleep */

static int empty_call(void *arg)
{
    (void)arg;
    return 0;
}

static int sleep_call(void *arg)
{
    (void)arg;
    usleep((useconds_t)offload_sleep_us);   /* a blocking syscall */
    return 0;
}

static void run_pool(sl_step_fn fn, void *st, int tasks)
{
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .stall_ms = stall_ms,
                                            .offload_threads = offload_workers, .offload_queue = 1024 });
    for (int i = 0; i < tasks; i++)
        sl_spawn_on(sl_runtime_reactor(rt, 0), fn, st, NULL);
    sl_runtime_run(rt);
    if (sl_runtime_free(rt) != 0)
        fprintf(stderr, "core-bench: leaks reported\n");
}

static int offload_rtt_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++)
        SL_AWAIT(t, s->rc, sl_offload(t, empty_call, NULL, NULL));
    s->t1 = sl_now_ns();
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_offload_roundtrip(long n)
{
    bst s = { .n = n };
    offload_workers = 1;
    run_pool(offload_rtt_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* Throughput: 64 tasks on one reactor keep the pool busy, each awaiting
 * calls in a loop until n calls are done in all. */
#define POOL_TASKS 64

typedef struct pool_run {
    long n, done;
    int live;
    uint64_t t0, t1;
} pool_run;

typedef struct pool_task { pool_run *p; int rc; } pool_task;

static pool_task pool_tasks[POOL_TASKS];

static int pool_loop(sl_task *t, void *arg)
{
    pool_task *pt = arg;
    pool_run *p = pt->p;
    SL_BEGIN(t);
    if (!p->t0)
        p->t0 = sl_now_ns();
    while (p->done < p->n) {
        SL_AWAIT(t, pt->rc, sl_offload(t, offload_sleep_us ? sleep_call : empty_call, NULL, NULL));
        p->done++;
    }
    if (--p->live == 0) {
        p->t1 = sl_now_ns();
        sl_runtime_stop(rt);
    }
    SL_END(t);
}

static int pool_main(sl_task *t, void *arg)
{
    (void)t;
    for (int i = 0; i < POOL_TASKS; i++) {
        pool_tasks[i] = (pool_task){ .p = arg };
        sl_spawn(NULL, pool_loop, &pool_tasks[i], NULL, NULL);
    }
    ((pool_run *)arg)->live = POOL_TASKS;
    return 0;
}

static double b_pool_rate(long n, int workers, long sleep_us)
{
    pool_run p = { .n = n };
    offload_workers = workers;
    offload_sleep_us = sleep_us;
    run_pool(pool_main, &p, 1);
    offload_sleep_us = 0;
    return (double)p.done / ((double)(p.t1 - p.t0) / 1e9);
}

static double b_pool_empty_w1(long n) { return -b_pool_rate(n, 1, 0); }
static double b_pool_empty_w4(long n) { return -b_pool_rate(n, 4, 0); }
static double b_pool_sleep_w1(long n) { return -b_pool_rate(n, 1, 1000); }
static double b_pool_sleep_w4(long n) { return -b_pool_rate(n, 4, 1000); }
static double b_pool_sleep_w16(long n) { return -b_pool_rate(n, 16, 1000); }

/* ---- mutex ---------------------------------------------------------------------------------- */

static int mutex_main(sl_task *t, void *arg)
{
    bst *s = arg;
    sl_mutex_init(&s->m, NULL, "bench", 0);
    s->t0 = sl_now_ns();
    for (long i = 0; i < s->n; i++) {
        sl_mutex_lock(t, &s->m, 1);
        sl_mutex_unlock(t, &s->m);
    }
    s->t1 = sl_now_ns();
    sl_runtime_stop(rt);
    return 0;
}

static double b_mutex(long n)
{
    bst s = { .n = n };
    run_main(mutex_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- a yield: one turn of the reactor, through the backend (epoll) ------------------------- */

static int yield_main(sl_task *t, void *arg)
{
    bst *s = arg;
    SL_BEGIN(t);
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < s->n; s->i++)
        SL_YIELD(t);
    s->t1 = sl_now_ns();
    sl_runtime_stop(rt);
    SL_END(t);
}

static double b_yield(long n)
{
    bst s = { .n = n };
    run_main(yield_main, &s, 1);
    return (double)(s.t1 - s.t0) / (double)n;
}

/* ---- timer lateness: how late a sleep of 1, 5 or 20 ms wakes ------------------------------- */

#define LATE_MAX 400

typedef struct late_st {
    uint64_t ms;
    int n, i, rc;
    uint64_t at;
    double late_us[LATE_MAX];
} late_st;

static int late_main(sl_task *t, void *arg)
{
    late_st *l = arg;
    SL_BEGIN(t);
    for (l->i = 0; l->i < l->n; l->i++) {
        l->at = sl_now_ns() + l->ms * SL_NS_PER_MS;
        SL_AWAIT(t, l->rc, sl_sleep_until(t, l->at));
        l->late_us[l->i] = (double)(sl_now_ns() - l->at) / 1e3;
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p50 and p99 of the lateness of `n` sleeps of `ms`, in microseconds */
static void b_late(uint64_t ms, int n, double *p50, double *p99)
{
    static late_st l;
    l = (late_st){ .ms = ms, .n = n < LATE_MAX ? n : LATE_MAX };
    run_main(late_main, &l, 1);
    qsort(l.late_us, (size_t)l.n, sizeof *l.late_us, cmp_double);
    *p50 = l.late_us[l.n / 2];
    *p99 = l.late_us[(l.n * 99) / 100];
}

int main(int argc, char **argv)
{
    int quick = 0, first = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--stall"))
            stall_ms = 10;
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            trace_path = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: core-bench [--json] [--quick] [--stall] [--trace FILE] [--only KEY]\n");
            return 2;
        }
    }
    long k = quick ? 10 : 1;
    throughput_n /= k;
    if (wanted("chan_send_recv_ns"))
        emit("chan_send_recv_ns", best_of3(b_send_recv, 20000000 / k), &first);
    if (wanted("chan_pingpong_ns"))
        emit("chan_pingpong_ns", best_of3(b_pingpong, 2000000 / k), &first);
    if (wanted("chan_throughput_msgs_per_s"))
        emit("chan_throughput_msgs_per_s", -best_of3(b_throughput_neg, 0), &first);
    if (wanted("chan_send_until_recv_ns"))
        emit("chan_send_until_recv_ns", best_of3(b_send_until_recv, 20000000 / k), &first);
    if (wanted("chan_send_until_vs_plain"))
        emit("chan_send_until_vs_plain", ratio_of(b_send_until_recv, b_send_recv, 5000000 / k), &first);
    if (wanted("select4_ns"))
        emit("select4_ns", best_of3(b_select4, 5000000 / k), &first);
    if (wanted("select4_prio_ns"))
        emit("select4_prio_ns", best_of3(b_select4_prio, 5000000 / k), &first);
    if (wanted("select4_prio_vs_uniform"))
        emit("select4_prio_vs_uniform", ratio_of(b_select4_prio, b_select4, 2000000 / k), &first);
    if (wanted("task_spawn_join_ns"))
        emit("task_spawn_join_ns", best_of3(b_spawn_join, 2000000 / k), &first);
    if (wanted("bytes_per_parked_task"))
        emit("bytes_per_parked_task", b_parked_bytes(1000000 / k), &first);
    if (wanted("cross_reactor_msgs_per_s"))
        emit("cross_reactor_msgs_per_s", -best_of3(b_cross_mem, 10000000 / k), &first);
    if (wanted("cross_reactor_post_malloc_msgs_per_s"))
        emit("cross_reactor_post_malloc_msgs_per_s", -best_of3(b_cross_malloc, 5000000 / k), &first);
    if (wanted("cross_reactor_chan_msgs_per_s"))
        emit("cross_reactor_chan_msgs_per_s", -best_of3(b_cross_chan, 1000000 / k), &first);
    if (wanted("cross_reactor_chan_recv_msgs_per_s"))   /* receives from another reactor */
        emit("cross_reactor_chan_recv_msgs_per_s", -best_of3(b_cross_chan_recv, 1000000 / k), &first);
    if (only && !strcmp(only, "thread_flag_roundtrip_ns"))   /* asked for only: a floor, not a figure of sluice */
        emit("thread_flag_roundtrip_ns", best_of3(b_flag_roundtrip, 1000000 / k), &first);
    if (wanted("cross_reactor_chan_pingpong_ns"))
        emit("cross_reactor_chan_pingpong_ns", best_of3(b_cross_pingpong, 100000 / k), &first);
    if (wanted("cross_reactor_chan_fanout_ns")) {   /* K channels of one home in turn: CORE_BENCH_FANOUT_K */
        const char *e = getenv("CORE_BENCH_FANOUT_K");
        FO.k = e ? atoi(e) : 32;
        e = getenv("CORE_BENCH_FANOUT_HOT");
        FO.hot = e ? atoi(e) : 0;
        if (FO.k < 1 || FO.k > FO_MAX || FO.hot < 0 || (FO.hot && FO.hot >= FO.k)) {
            fprintf(stderr, "core-bench: CORE_BENCH_FANOUT_K is 1 to %d, CORE_BENCH_FANOUT_HOT 0 to K - 1\n", FO_MAX);
            return 2;
        }
        emit("cross_reactor_chan_fanout_ns", best_of3(b_fanout, 1000000 / k), &first);
        emit("cross_reactor_chan_fanout_defs_per_elem", FO.defs, &first);
    }
    if (wanted("cross_reactor_chan_pingpong_nospin_ns"))
        emit("cross_reactor_chan_pingpong_nospin_ns", best_of3(b_cross_pingpong_nospin, 20000 / k), &first);
    if (wanted("cross_reactor_chan_pingpong_nospin_vs_spin"))   /* same run, interleaved: > 1 is the spin's gain */
        emit("cross_reactor_chan_pingpong_nospin_vs_spin",
             ratio_of(b_cross_pingpong_nospin, b_cross_pingpong, 20000 / k), &first);
    if (wanted("cross_reactor_select_rv_ns"))   /* a select's rendezvous case on another reactor */
        emit("cross_reactor_select_rv_ns", best_of3(b_cross_select_rv, 100000 / k), &first);
    if (wanted("worker_pool_items_per_s"))
        emit("worker_pool_items_per_s", -best_of3(b_worker_pool, 200000 / k), &first);
    if (wanted("worker_pool_far_share")) {   /* no Go peer: Go's scheduler does not say */
        if (only)
            b_worker_pool(200000 / k);
        emit("worker_pool_far_share", wp_far_share, &first);
    }
    if (wanted("worker_pool_far_jobs")) {   /* the same as a count: the share rounds to 0.000 */
        if (only)
            b_worker_pool(200000 / k);
        emit("worker_pool_far_jobs", (double)WP.w[1].done, &first);
    }
    double cross_rtt = 0, off_rtt = 0;
    if (wanted("cross_reactor_roundtrip_ns") || wanted("offload_vs_cross_roundtrip"))
        emit("cross_reactor_roundtrip_ns", cross_rtt = best_of3(b_cross_roundtrip, 200000 / k), &first);
    if (wanted("offload_roundtrip_ns") || wanted("offload_vs_cross_roundtrip"))
        emit("offload_roundtrip_ns", off_rtt = best_of3(b_offload_roundtrip, 200000 / k), &first);
    if (cross_rtt > 0 && off_rtt > 0)   /* same run; the target: <= 2 */
        emit("offload_vs_cross_roundtrip", off_rtt / cross_rtt, &first);
    if (wanted("offload_items_per_s_w1"))
        emit("offload_items_per_s_w1", -best_of3(b_pool_empty_w1, 400000 / k), &first);
    if (wanted("offload_items_per_s_w4"))
        emit("offload_items_per_s_w4", -best_of3(b_pool_empty_w4, 400000 / k), &first);
    /* calls that block 1 ms each (usleep): the ideal is 1000/s per worker */
    if (wanted("offload_sleep1ms_items_per_s_w1"))
        emit("offload_sleep1ms_items_per_s_w1", -best_of3(b_pool_sleep_w1, 300 / (k > 1 ? 3 : 1)), &first);
    if (wanted("offload_sleep1ms_items_per_s_w4"))
        emit("offload_sleep1ms_items_per_s_w4", -best_of3(b_pool_sleep_w4, 1200 / (k > 1 ? 3 : 1)), &first);
    if (wanted("offload_sleep1ms_items_per_s_w16"))
        emit("offload_sleep1ms_items_per_s_w16", -best_of3(b_pool_sleep_w16, 4800 / (k > 1 ? 3 : 1)), &first);
    if (wanted("mutex_lock_unlock_ns"))
        emit("mutex_lock_unlock_ns", best_of3(b_mutex, 20000000 / k), &first);
    if (wanted("yield_turn_ns"))
        emit("yield_turn_ns", best_of3(b_yield, 1000000 / k), &first);
    static const struct { uint64_t ms; int n; } lates[] = { { 1, 300 }, { 5, 100 }, { 20, 40 } };
    for (size_t i = 0; i < sizeof lates / sizeof *lates; i++) {
        char k50[48], k99[48];
        snprintf(k50, sizeof k50, "sleep_%dms_late_p50_us", (int)lates[i].ms);
        snprintf(k99, sizeof k99, "sleep_%dms_late_p99_us", (int)lates[i].ms);
        if (wanted(k50) || wanted(k99)) {
            double p50, p99;
            b_late(lates[i].ms, quick ? lates[i].n / 4 : lates[i].n, &p50, &p99);
            emit(k50, p50, &first);
            emit(k99, p99, &first);
        }
    }
    fflush(stdout);
    if (!only || !strncmp(only, "ctx_", 4)) {
        if (json && first)   /* only context figures were asked for: open the object */
            printf("{\n  \"ctx_only\": 1");
        ctx_bench_run(stdout, json, quick);
    }
    if (json)
        printf("\n}\n");
    return 0;
}
