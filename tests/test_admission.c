/* test_admission.c: the admission controller (net/admit.c) driven as a
 * pure function with a simulated clock: bad configurations, the adaptive
 * limit's gradient, CoDel on the queue and adaptive LIFO, the median a
 * route needs, and a simulated server at 3x its capacity whose queue
 * delay stays within the target and whose goodput stays at capacity.
 * Then the server over real sockets: bad options, deadline-aware refusal
 * before the body, CoDel refusing a standing queue, the continue lane,
 * per-route settings and the /metrics lines. */
#include <math.h>
#include <stdatomic.h>
#include "httputil.h"
#include "admit.h"

#define MS 1000000ull
#define US 1000ull

static sl_admit_cfg cfg(void)
{
    return (sl_admit_cfg){ .adaptive = true, .min_limit = 4, .max_limit = 1024, .initial_limit = 32,
                           .target_ns = 5 * MS, .interval_ns = 100 * MS };
}

static void test_bad_cfg(void **state)
{
    (void)state;
    sl_admit_cfg c = cfg();
    assert_int_equal(sl__admit_check(&c), 0);
    assert_int_equal(sl__admit_check(NULL), -EINVAL);
    c.min_limit = 0;
    assert_int_equal(sl__admit_check(&c), -EINVAL);
    c = cfg();
    c.max_limit = 3;   /* below min_limit */
    assert_int_equal(sl__admit_check(&c), -EINVAL);
    c = cfg();
    c.target_ns = 0;
    assert_int_equal(sl__admit_check(&c), -EINVAL);
    c = cfg();
    c.interval_ns = c.target_ns - 1;
    assert_int_equal(sl__admit_check(&c), -EINVAL);
    c = cfg();
    c.interval_ns = c.target_ns;   /* the edge is allowed */
    assert_int_equal(sl__admit_check(&c), 0);
    c = cfg();
    c.max_wait_ns = c.target_ns - 1;   /* a bound below the target */
    assert_int_equal(sl__admit_check(&c), -EINVAL);
    c.max_wait_ns = c.target_ns;
    assert_int_equal(sl__admit_check(&c), 0);
}

static void test_initial_limit_clamped(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.initial_limit = 0;
    sl__admit_init(&a, &c, 0);
    assert_int_equal(sl__admit_limit(&a), 4);
    c.initial_limit = 5000;
    sl__admit_init(&a, &c, 0);
    assert_int_equal(sl__admit_limit(&a), 1024);
}

/* A controller at a fixed limit (the limit is not what is tested), its
 * clock at 0. */
static void start_fixed(sl_admit *a, sl_admit_cfg *c, uint64_t *now, uint32_t limit)
{
    *c = cfg();
    c->min_limit = c->max_limit = limit;
    *now = 0;
    sl__admit_init(a, c, *now);
}

/* Feeds one window of `n` samples of latency `lat` at `inflight`,
 * starting at *now; returns the limit after it. */
static uint32_t window(sl_admit *a, uint64_t *now, int n, uint64_t lat, uint32_t inflight)
{
    for (int i = 0; i < n; i++) {
        *now += a->cfg.interval_ns / (uint64_t)n;
        sl__admit_sample(a, *now, lat, inflight);
    }
    *now += 1;
    sl__admit_sample(a, *now, lat, inflight);   /* ends the window */
    return sl__admit_limit(a);
}

static void test_limit_follows_latency(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    assert_int_equal(sl__admit_limit(&a), 32);
    /* quiet and in use: grows by sqrt(limit) a window */
    uint32_t l = window(&a, &now, 50, 1 * MS, 32);
    assert_int_equal(l, 32 + 5);
    l = window(&a, &now, 50, 1 * MS, l);
    assert_int_equal(l, 37 + 6);
    /* not in use (an idle server): stays */
    assert_int_equal(window(&a, &now, 50, 1 * MS, 3), l);
    /* latency within base + target: no change */
    assert_int_equal(window(&a, &now, 50, 5 * MS, 3), l);
    /* latency 4x the allowed 6 ms: halves (the gradient's floor), to the floor */
    uint32_t before = l;
    l = window(&a, &now, 50, 24 * MS, l);
    assert_int_equal(l, before / 2);
    for (int i = 0; i < 10; i++)
        l = window(&a, &now, 50, 24 * MS, l);
    assert_int_equal(l, c.min_limit);
    /* 12 ms against an allowed 6: halves too; 8 ms: by 6/8 */
    sl__admit_init(&a, &c, now);
    window(&a, &now, 50, 1 * MS, 1);   /* baseline 1 ms, limit unused: 32 */
    assert_int_equal(window(&a, &now, 50, 8 * MS, 32), 24);
    /* back to the baseline: it grows again, up to max_limit */
    for (int i = 0; i < 500; i++)
        l = window(&a, &now, 50, 1 * MS, sl__admit_limit(&a));
    assert_int_equal(l, c.max_limit);
}

static void test_window_needs_samples(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    sl__admit_init(&a, &c, 0);
    /* three slow samples over a long time: too few to act on */
    sl__admit_sample(&a, 1000 * MS, 500 * MS, 32);
    sl__admit_sample(&a, 2000 * MS, 500 * MS, 32);
    sl__admit_sample(&a, 3000 * MS, 500 * MS, 32);
    assert_int_equal(sl__admit_limit(&a), 32);
    sl__admit_sample(&a, 4000 * MS, 500 * MS, 32);   /* the fourth ends it: baseline itself */
    assert_int_equal(sl__admit_limit(&a), 32 + 5);
}

/* The baseline is a minimum of one or two periods: a slow period does not
 * become the new normal until two periods have passed. */
static void test_baseline_forgets(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.min_limit = c.max_limit = 32;   /* watch the baseline, not the limit */
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    window(&a, &now, 10, 1 * MS, 32);
    for (int i = 0; i < 100; i++)
        window(&a, &now, 10, 40 * MS, 32);
    assert_true(a.base_cur <= 1 * MS || a.base_prev <= 1 * MS);
    for (int i = 0; i < 120; i++)
        window(&a, &now, 10, 40 * MS, 32);
    assert_int_equal(a.base_cur, 40 * MS);
    assert_int_equal(a.base_prev, 40 * MS);
}

/* n requests came and m of those ended. */
static void arrive_depart(sl_admit *a, int n, int m)
{
    for (int i = 0; i < n; i++)
        sl__admit_arrive(a);
    for (int i = 0; i < m; i++)
        sl__admit_depart(a);
}

static void test_fixed_when_not_adaptive(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.adaptive = false;
    c.max_limit = 100;
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    assert_int_equal(sl__admit_limit(&a), 100);
    assert_int_equal(window(&a, &now, 50, 900 * MS, 100), 100);
    for (int i = 0; i < 50; i++) {
        now += 10 * MS;
        arrive_depart(&a, 30, 10);
        assert_false(sl__admit_observe(&a, now, 900 * MS));
    }
    assert_false(a.overloaded);
    assert_int_equal(a.last_delay, 900 * MS);   /* still reported */
    assert_int_equal(a.cd_in, 0);   /* nothing counted that no interval would reset */
    assert_int_equal(a.cd_out, 0);
}

static void test_codel(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.max_wait_ns = 1000 * MS;   /* CoDel alone: the time bound far away */
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    /* a burst: delays up to 50 ms, but the queue empties within the
     * interval: never overloaded */
    for (int i = 0; i < 30; i++) {
        now += 10 * MS;
        uint64_t d = i % 5 == 4 ? 0 : 50 * MS;
        assert_false(sl__admit_observe(&a, now, d));
        assert_false(a.overloaded);
    }
    /* a standing queue that grows (two come for each that ends): the
     * oldest above the target for a whole interval */
    now += 10 * MS;
    sl__admit_observe(&a, now, 0);   /* the interval that ends here saw 0 */
    while (!a.overloaded) {
        now += 10 * MS;
        arrive_depart(&a, 20, 10);
        assert_false(sl__admit_observe(&a, now, 6 * MS));
        assert_true(now < 1000 * MS);
    }
    /* overloaded: CoDel itself refuses no one (it used to refuse waiters
     * past 2 x target and serve the newest first; the queue's time bound
     * does the refusing now, test_queue_time_bound) */
    assert_false(sl__admit_observe(&a, now, 10 * MS + 1));
    /* the queue drains: after the next interval, no longer overloaded */
    now += 1 * MS;
    assert_false(sl__admit_observe(&a, now, 0));
    now += 100 * MS;
    assert_false(sl__admit_observe(&a, now, 30 * MS));
    assert_false(a.overloaded);
}

/* The target follows the service time: with requests taking 9 ms, a
 * queue whose oldest waited 8 ms all along is what near-capacity looks
 * like, not a standing queue (a fixed 5 ms target shed 39 % of the
 * durable chain's orders at exactly C). Bounded at 4 x target. */
static void test_codel_target_follows_service_time(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.min_limit = c.max_limit = 32;   /* the limit is not what is tested */
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    assert_int_equal(sl__admit_target(&a), 5 * MS);   /* nothing measured yet */
    window(&a, &now, 50, 9 * MS, 32);
    assert_int_equal(sl__admit_target(&a), 9 * MS);
    for (int i = 0; i < 50; i++) {
        now += 10 * MS;
        assert_false(sl__admit_observe(&a, now, 8 * MS));
        assert_false(a.overloaded);
    }
    /* above the service time all along, and growing: an overload; the
     * queue's bound follows the target: a flood (three come for each that
     * ends) is refused past one service time, 9 ms, kept within */
    for (int i = 0; i < 30; i++) {
        now += 10 * MS;
        arrive_depart(&a, 3, 1);
        sl__admit_refused(&a);   /* two of the three refused */
        sl__admit_refused(&a);
        sl__admit_observe(&a, now, 10 * MS);
    }
    assert_true(a.overloaded);
    assert_true(a.flooded);
    assert_false(sl__admit_observe(&a, now, 9 * MS));
    assert_true(sl__admit_observe(&a, now, 9 * MS + 1));
    /* a route gone very slow: the target stops at 4 x 5 ms */
    window(&a, &now, 50, 300 * MS, 32);
    assert_int_equal(sl__admit_target(&a), 20 * MS);
    for (int i = 0; i < 30; i++) {
        now += 10 * MS;
        arrive_depart(&a, 3, 1);
        sl__admit_refused(&a);
        sl__admit_refused(&a);
        sl__admit_observe(&a, now, 25 * MS);
    }
    /* ... but a waiter's bound follows the service time, uncapped: the
     * window's mean while flooded (test_slow_route_keeps_a_queue) */
    uint64_t w = sl__admit_max_wait(&a);
    assert_int_equal(w, a.last_mean);
    assert_true(w > 40 * MS);
    assert_false(sl__admit_observe(&a, now, w));
    assert_true(sl__admit_observe(&a, now, w + 1));
    /* fast requests: the configured target again (the first window
     * still holds slow samples) */
    window(&a, &now, 50, 1 * MS, 32);
    window(&a, &now, 50, 1 * MS, 32);
    assert_int_equal(sl__admit_target(&a), 5 * MS);
}

static void test_need_median(void **state)
{
    (void)state;
    sl_admit_need m = { 0 };
    assert_int_equal(sl__admit_need(&m, 0), 0);
    /* samples 1..19 ms in a scrambled order, many times: median 10 ms */
    uint32_t x = 12345;
    for (int i = 0; i < SL_ADMIT_NEED_MIN_SAMPLES - 1; i++) {
        sl__admit_need_add(&m, 0, 10 * MS);
        assert_int_equal(sl__admit_need(&m, 0), 0);   /* too few yet */
    }
    for (int i = 0; i < 5000; i++) {
        x = x * 1103515245u + 12345u;
        sl__admit_need_add(&m, 0, (1 + (x >> 16) % 19) * MS);
    }
    uint64_t med = sl__admit_need(&m, 0);
    assert_true(med > 8 * MS && med < 12 * MS);
    /* a skewed stream: 90 % at 1 ms, 10 % at 900 ms: the median is 1 ms,
     * where a mean would say 91 */
    for (int i = 0; i < 5000; i++)
        sl__admit_need_add(&m, 0, i % 10 ? 1 * MS : 900 * MS);
    med = sl__admit_need(&m, 0);
    assert_true(med >= 1 * MS && med < 2 * MS);
    /* it follows a change */
    for (int i = 0; i < 2000; i++)
        sl__admit_need_add(&m, 0, 50 * MS);
    assert_int_equal(sl__admit_need(&m, 0), 50 * MS);
}

/* An estimate with no new sample for SL_ADMIT_NEED_STALE_NS is not used:
 * the requests it refuses never run and could never teach it the route got
 * fast again (a lockout: 0 % served after an overload, issue 14). */
static void test_need_goes_stale(void **state)
{
    (void)state;
    sl_admit_need m = { 0 };
    uint64_t t = 5 * SL_ADMIT_NEED_STALE_NS;   /* any clock */
    for (int i = 0; i < SL_ADMIT_NEED_MIN_SAMPLES; i++)
        sl__admit_need_add(&m, t, 80 * MS);
    assert_int_equal(sl__admit_need(&m, t), 80 * MS);
    assert_int_equal(sl__admit_need(&m, t + SL_ADMIT_NEED_STALE_NS - 1), 80 * MS);
    assert_int_equal(sl__admit_need(&m, t + SL_ADMIT_NEED_STALE_NS), 0);   /* stale: no refusal */
    /* one new sample makes it current again, from where it was */
    sl__admit_need_add(&m, t + 2 * SL_ADMIT_NEED_STALE_NS, 80 * MS);
    assert_int_equal(sl__admit_need(&m, t + 2 * SL_ADMIT_NEED_STALE_NS), 80 * MS);
    /* a clock read before the last sample (the same event-loop turn) is not
     * "a long time since": no unsigned wrap-around to stale */
    assert_int_equal(sl__admit_need(&m, t + 2 * SL_ADMIT_NEED_STALE_NS - 1), 80 * MS);
}

/* One drain window (a quarter of the 100 ms interval) in 5 steps: n
 * requests end, the queue observed with (waiting) or without waiters. */
static void drain_window(sl_admit *a, uint64_t *now, int n, bool waiting)
{
    for (int step = 0; step < 5; step++) {
        *now += 5 * MS;
        for (int i = 0; i < n / 5; i++)
            sl__admit_depart(a);
        sl__admit_observe(a, *now, waiting ? 1 * MS : 0);
    }
}

/* The drain rate: steady, rising, falling, and an idle server keeps it. */
static void test_drain_rate(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.max_wait_ns = 1000 * MS;   /* no waiter refused here */
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    assert_true(sl__admit_drain(&a) == 0);   /* none measured */
    /* steady: 100 per 25 ms with waiters all through, 4,000/s */
    for (int i = 0; i < 10; i++)
        drain_window(&a, &now, 100, true);
    assert_true(fabs(sl__admit_drain(&a) - 4000) < 1);
    /* rising, at its limit: 200 per window; a quarter of the way each */
    drain_window(&a, &now, 200, true);
    assert_true(fabs(sl__admit_drain(&a) - 5000) < 1);
    for (int i = 0; i < 30; i++)
        drain_window(&a, &now, 200, true);
    assert_true(fabs(sl__admit_drain(&a) - 8000) < 10);
    /* falling: the server got slower, 50 per window */
    double before = sl__admit_drain(&a);
    drain_window(&a, &now, 50, true);
    assert_true(sl__admit_drain(&a) < before);
    for (int i = 0; i < 30; i++)
        drain_window(&a, &now, 50, true);
    assert_true(fabs(sl__admit_drain(&a) - 2000) < 10);
    /* stalled (waiters, no departures): it falls towards 0 */
    drain_window(&a, &now, 0, true);
    assert_true(sl__admit_drain(&a) < 1600);
    for (int i = 0; i < 30; i++)
        drain_window(&a, &now, 50, true);
    before = sl__admit_drain(&a);
    /* idle: no waiters, nothing ends, for windows and for 10 s: kept */
    for (int i = 0; i < 10; i++)
        drain_window(&a, &now, 0, false);
    now += 10000 * MS;
    sl__admit_observe(&a, now, 0);
    assert_true(sl__admit_drain(&a) == before);
    /* quiet (waiters in part of the window only): fewer than the rate
     * say nothing; more raise it (it can do at least that) */
    for (int step = 0; step < 5; step++) {
        now += 5 * MS;
        for (int i = 0; i < 4; i++)
            sl__admit_depart(&a);
        sl__admit_observe(&a, now, step == 2 ? 1 * MS : 0);
    }
    assert_true(sl__admit_drain(&a) == before);
    drain_window(&a, &now, 400, false);
    assert_true(fabs(sl__admit_drain(&a) - 16000) < 1);
    /* a fixed controller measures nothing */
    c.adaptive = false;
    sl__admit_init(&a, &c, now);
    drain_window(&a, &now, 100, true);
    assert_true(sl__admit_drain(&a) == 0);
    assert_false(sl__admit_wait_exceeds(&a, 1000000));
}

/* The queue's time bound: 2 x the target (or cfg.max_wait_ns); a request
 * that would wait past it at the drain rate is refused at its head, a
 * waiter past it is refused whatever CoDel's state (before: a burst's
 * waiters were kept up to a whole interval, a standing queue's while CoDel
 * was off). */
static void test_queue_time_bound(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c;
    uint64_t now;
    start_fixed(&a, &c, &now, 32);
    assert_int_equal(sl__admit_max_wait(&a), 10 * MS);
    assert_false(sl__admit_wait_exceeds(&a, 1000000));   /* no rate known: not refused */
    for (int i = 0; i < 10; i++)
        drain_window(&a, &now, 100, true);   /* 4,000/s: 0.25 ms each */
    assert_false(sl__admit_wait_exceeds(&a, 0));
    assert_false(sl__admit_wait_exceeds(&a, 39));   /* 40 x 0.25 ms = 10 ms: within */
    assert_true(sl__admit_wait_exceeds(&a, 40));
    /* a burst (the queue empties every 50 ms): not CoDel's overload, yet
     * its waiters past the bound are refused */
    for (int i = 0; i < 30; i++) {
        now += 10 * MS;
        uint64_t d = i % 5 == 4 ? 0 : 8 * MS;
        assert_false(sl__admit_observe(&a, now, d));
    }
    assert_false(a.overloaded);
    assert_false(sl__admit_observe(&a, now, 10 * MS));
    assert_true(sl__admit_observe(&a, now, 10 * MS + 1));
    /* the bound follows the target (requests taking 9 ms: 18 ms) */
    window(&a, &now, 50, 9 * MS, 32);
    assert_int_equal(sl__admit_max_wait(&a), 18 * MS);
    /* or is what it is told */
    c.max_wait_ns = 50 * MS;
    sl__admit_init(&a, &c, now);
    assert_int_equal(sl__admit_max_wait(&a), 50 * MS);
    assert_false(sl__admit_observe(&a, now, 50 * MS));
    assert_true(sl__admit_observe(&a, now, 50 * MS + 1));
}

/* One CoDel interval in which the oldest waiter waited `delay` and n came
 * for each m that ended (per 10 ms). */
static void codel_interval(sl_admit *a, uint64_t *now, uint64_t delay, int n, int m)
{
    for (int i = 0; i < 11; i++) {
        *now += 10 * MS;
        arrive_depart(a, n, m);
        sl__admit_observe(a, *now, delay);
    }
}

/* One CoDel interval (11 looks, 10 ms apart) in which `ended` requests
 * ended and the queue refused `refused` per 10 ms, the oldest waiter
 * waiting `delay`, the queue found empty at every `empty_every`-th look
 * (0: never; -k: at all but every k-th). */
static void flood_interval(sl_admit *a, uint64_t *now, uint64_t delay, int refused, int ended, int empty_every)
{
    for (int i = 0; i < 11; i++) {
        *now += 10 * MS;
        arrive_depart(a, refused + ended, ended);
        for (int k = 0; k < refused; k++)
            sl__admit_refused(a);
        bool empty = empty_every > 0 ? i % empty_every == 0 : empty_every < 0 && i % -empty_every != 0;
        sl__admit_observe(a, *now, empty ? 0 : delay);
    }
}

/* A flooded queue (through an interval it was empty at no more than half
 * of the looks, and it refused more requests than ended, and no more than
 * 8 times as many) is
 * bounded by one service time, not two: it refills at once, so a longer
 * wait keeps the server no busier and makes every 201 later (the chain at
 * 3 C: 201 p50 18 ms, ~8 ms of it in order-svc's queue). Refusals past
 * 8 x the departures are clients sending again the moment they are
 * refused (a closed loop), not a flood. A queue that stands still (a
 * closed loop: as many come as end, none refused), that fills faster than
 * it drains but refuses no one (a closed loop starting all at once), or
 * that is often empty (a burst) keeps twice the service time; a flood ends
 * with the first interval that is not one. */
static void test_flooded_queue_bound(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c;
    uint64_t now;
    start_fixed(&a, &c, &now, 32);
    window(&a, &now, 50, 8 * MS, 32);   /* requests take 8 ms */
    assert_int_equal(sl__admit_max_wait(&a), 16 * MS);
    /* each scene lasts two intervals (11 looks are 110 ms, an interval 100
     * ms): the second interval ends within it */
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 0, 40, 0);   /* stands still: a closed loop */
    assert_true(a.standing);
    assert_false(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 16 * MS);
    for (int k = 0; k < 2; k++)
        codel_interval(&a, &now, 6 * MS, 120, 40);   /* fills fast, refuses no one */
    assert_false(a.flooded);
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 28, 40, 0);   /* refuses 0.7 for each that ends: 1 C dipping */
    assert_false(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 16 * MS);
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 40, 40, 0);   /* as many as end: not yet */
    assert_false(a.flooded);
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 41, 40, 0);   /* a flood */
    assert_true(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 8 * MS);
    assert_false(sl__admit_observe(&a, now, 8 * MS));
    assert_true(sl__admit_observe(&a, now, 8 * MS + 1));
    /* empty at one look in three: still a flood (a group commit ended
     * many at once and the limit took every waiter in) */
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 80, 40, 3);
    assert_true(a.flooded);
    /* refusals 50 x the departures: clients that send again the moment
     * they are refused (a closed loop), not a flood */
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 2000, 40, 0);
    assert_false(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 16 * MS);
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 80, 40, 0);
    assert_true(a.flooded);
    /* refusing as much, but the queue empty at most looks: a burst */
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 80, 40, -3);
    assert_false(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 16 * MS);
    /* a bound that is told stays what it is told */
    c.max_wait_ns = 50 * MS;
    sl__admit_init(&a, &c, now);
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 80, 40, 0);
    assert_true(a.flooded);
    assert_int_equal(sl__admit_max_wait(&a), 50 * MS);
}

/* A retry storm (refused more than 8 x as many as ended through an
 * interval: clients sending again the moment they are refused) refuses
 * no one at the head for queue time: refusing such clients sheds no load,
 * and their refusals take the core from the requests that run. It lasts
 * while the queue stands (never found empty), and ends after 10 intervals
 * in which it was found empty at some look. */
static void test_retry_storm(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c;
    uint64_t now;
    start_fixed(&a, &c, &now, 32);
    window(&a, &now, 50, 8 * MS, 32);   /* requests take 8 ms: the bound is 16 ms */
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 0, 40, 0);   /* 4,000/s drain, always someone waiting */
    assert_true(sl__admit_drain(&a) > 3500 && sl__admit_drain(&a) < 4500);
    assert_true(sl__admit_wait_exceeds(&a, 100));      /* 101 ahead: ~25 ms, past the bound */
    assert_false(sl__admit_wait_exceeds(&a, 40));
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 320, 40, 0);  /* 8 x: a flood still */
    assert_int_equal(a.storm, 0);
    assert_true(sl__admit_wait_exceeds(&a, 100));
    for (int k = 0; k < 2; k++)
        flood_interval(&a, &now, 6 * MS, 330, 40, 0);  /* past 8 x: a storm */
    assert_true(a.storm > 0);
    assert_false(a.flooded);
    assert_false(sl__admit_wait_exceeds(&a, 100));
    assert_false(sl__admit_wait_exceeds(&a, 100000));
    assert_false(a.growing);   /* the re-sent requests are no arrivals */
    /* its clients now wait instead: nothing refused, the queue stands */
    for (int k = 0; k < 20; k++)
        flood_interval(&a, &now, 6 * MS, 0, 40, 0);
    assert_true(a.storm > 0);
    assert_false(sl__admit_wait_exceeds(&a, 100));
    /* the queue empties now and then: ten such intervals end it (a scene
     * of 11 looks is 1.1 intervals: eight see at most nine end) */
    for (int k = 0; k < 8; k++)
        flood_interval(&a, &now, 6 * MS, 0, 40, 3);
    assert_true(a.storm > 0);
    for (int k = 0; k < 3; k++)
        flood_interval(&a, &now, 6 * MS, 0, 40, 3);
    assert_int_equal(a.storm, 0);
    assert_true(sl__admit_wait_exceeds(&a, 100));
}

/* A route of slow requests keeps a queue: requests of 1 s at a limit of
 * 16 drain 16 a second, so the first waiter waits ~62 ms. With the bound
 * capped as CoDel's target is (4 x 5 ms, so 40 ms) it was refused at its
 * head, and such a server refused every request past its limit. */
static void test_slow_route_keeps_a_queue(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c;
    uint64_t now;
    start_fixed(&a, &c, &now, 16);
    window(&a, &now, 16, 1000 * MS, 16);   /* requests ran 1 s each */
    for (int i = 0; i < 32; i++) {         /* 16 a second, always someone waiting */
        now += 62500 * US;
        sl__admit_depart(&a);
        sl__admit_observe(&a, now, 1 * MS);
    }
    assert_true(sl__admit_drain(&a) > 15.0 && sl__admit_drain(&a) < 17.0);
    assert_int_equal(sl__admit_max_wait(&a), 2000 * MS);
    assert_false(sl__admit_wait_exceeds(&a, 0));    /* ~62 ms */
    assert_false(sl__admit_wait_exceeds(&a, 30));   /* 31 / 16 s: within 2 s */
    assert_true(sl__admit_wait_exceeds(&a, 32));    /* 33 / 16 s: past it */
}

/* A simulated server: processor sharing at CAP requests/s (each request
 * is one unit of work; n running each get CAP/n units per second), offered
 * 3 x CAP, with the controller deciding who starts and whom the queue
 * refuses. Completions are in start order, so a virtual clock suffices. */
#define CAP 10000.0
#define QMAX 1024
typedef struct sim {
    double vstart[4096];         /* virtual time each running request started at */
    uint64_t tstart[4096];       /* and its real start */
    uint32_t inflight_at[4096];
    int rh, rt;                  /* running: a ring, oldest first */
    uint64_t q[QMAX];            /* arrival times of the waiting: a ring, oldest at qh */
    int qh, qn;
    uint64_t done, shed, shed_head, max_wait, lat_sum;
    uint64_t late;               /* started after waiting past the bound of then */
} sim;

static void sim_run(sim *s, sl_admit *a, uint64_t from, uint64_t to, double rate, uint64_t warm)
{
    const uint64_t dt = 10 * US;
    double v = 0, arrivals = 0;
    for (uint64_t now = from; now < to; now += dt) {
        int n = s->rt - s->rh;
        if (n)
            v += (double)dt / 1e9 * CAP / n;
        while (s->rh < s->rt && s->vstart[s->rh % 4096] + 1.0 <= v) {
            int i = s->rh++ % 4096;
            uint64_t lat = now - s->tstart[i];
            sl__admit_sample(a, now, lat, s->inflight_at[i]);
            sl__admit_depart(a);
            if (now >= warm) {
                s->done++;
                s->lat_sum += lat;
            }
        }
        for (arrivals += rate * (double)dt / 1e9; arrivals >= 1; arrivals -= 1) {
            sl__admit_arrive(a);
            if ((s->qn || (uint32_t)(s->rt - s->rh) >= sl__admit_limit(a)) &&
                sl__admit_wait_exceeds(a, (uint32_t)s->qn)) {   /* refused at its head */
                sl__admit_refused(a);
                if (now >= warm) {
                    s->shed++;
                    s->shed_head++;
                }
            } else if (s->qn < QMAX) {
                s->q[(s->qh + s->qn++) % QMAX] = now;
            } else {
                sl__admit_refused(a);
                s->shed += now >= warm;
            }
        }
        /* refuse the oldest while the controller says so */
        while (s->qn && sl__admit_observe(a, now, now - s->q[s->qh])) {
            sl__admit_refused(a);
            s->qh = (s->qh + 1) % QMAX;
            s->qn--;
            if (now >= warm)
                s->shed++;
        }
        if (!s->qn)
            sl__admit_observe(a, now, 0);
        while (s->qn && (uint32_t)(s->rt - s->rh) < sl__admit_limit(a)) {
            uint64_t arrived = s->q[s->qh];
            s->qh = (s->qh + 1) % QMAX;
            s->qn--;
            if (now >= warm && now - arrived > s->max_wait)
                s->max_wait = now - arrived;
            s->late += now >= warm && now - arrived > sl__admit_max_wait(a);
            int i = s->rt++ % 4096;
            s->vstart[i] = v;
            s->tstart[i] = now;
            s->inflight_at[i] = (uint32_t)(s->rt - s->rh);
        }
    }
}

static void test_sim_overload(void **state)
{
    (void)state;
    static sim s;
    memset(&s, 0, sizeof s);
    sl_admit a;
    sl_admit_cfg c = cfg();
    sl__admit_init(&a, &c, 0);
    /* 1 s to settle, then 3 s measured */
    sim_run(&s, &a, 0, 4000 * MS, 3 * CAP, 1000 * MS);
    double goodput = (double)s.done / 3.0;
    double mean_ms = (double)s.lat_sum / (double)s.done / 1e6;
    print_message("sim 3x: goodput %.0f/s (cap %.0f), mean latency %.2f ms, limit %u, "
                  "max queue wait %.2f ms, shed %llu\n", goodput, CAP, mean_ms, sl__admit_limit(&a),
                  (double)s.max_wait / 1e6, (unsigned long long)s.shed);
    /* the server stays busy: goodput at capacity */
    assert_true(goodput >= 0.95 * CAP);
    /* latency near the quiet baseline (0.1 ms) plus the target, not the
     * 102 ms that 1024 in flight would take */
    assert_true(mean_ms < 2 * 5.0 + 1);
    /* no one starts after waiting past the queue's bound (2 x the target,
     * which follows the service time: here ~17 ms) */
    assert_int_equal(s.late, 0);
    assert_true(s.max_wait <= 2 * 4 * 5 * MS);
    assert_true(s.shed > 0);

    /* the same without the controller: the limit is 1024, FIFO, and every
     * request waits behind a full house */
    memset(&s, 0, sizeof s);
    c.adaptive = false;
    sl__admit_init(&a, &c, 0);
    sim_run(&s, &a, 0, 4000 * MS, 3 * CAP, 1000 * MS);
    mean_ms = (double)s.lat_sum / (double)s.done / 1e6;
    print_message("sim 3x, fixed: mean latency %.2f ms, max queue wait %.2f ms\n", mean_ms,
                  (double)s.max_wait / 1e6);
    assert_true(mean_ms > 50);
    assert_true(s.max_wait > 50 * MS);
}

/* A queue that stands still is no overload: a closed loop of more clients
 * than the limit keeps its queue at (clients - limit) whatever is refused,
 * as each refused client sends again at once. Its oldest waits above the
 * target all along, but as many come as end: not overloaded (the limit
 * may grow), until its standing delay passes a whole interval (the
 * backstop, overloaded whatever the rates). */
static void test_codel_standing_still(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.max_wait_ns = 1000 * MS;   /* CoDel alone: the time bound far away */
    c.min_limit = c.max_limit = 32;
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    for (int i = 0; i < 100; i++) {   /* 1 s */
        now += 10 * MS;
        arrive_depart(&a, 40, 40);
        assert_false(sl__admit_observe(&a, now, 60 * MS));
        assert_false(a.overloaded);
    }
    /* within the noise (1/8 more came than ended): the same */
    for (int i = 0; i < 100; i++) {
        now += 10 * MS;
        arrive_depart(&a, 44, 40);
        assert_false(sl__admit_observe(&a, now, 60 * MS));
        assert_false(a.overloaded);
    }
    /* past a whole interval of standing delay: refused however it came */
    for (int i = 0; i < 30; i++) {
        now += 10 * MS;
        arrive_depart(&a, 40, 40);
        sl__admit_observe(&a, now, 101 * MS);
    }
    assert_true(a.overloaded);
}

/* While requests wait and no more come than end, the server keeps up: the
 * limit does not shrink for latency (the wait only moves into the server)
 * and grows while in use, so a chain that needs more than twice its quiet
 * latency to reach its capacity is not held below it. A growing queue, or
 * requests taking longer than an interval, and the gradient holds again. */
static void test_limit_grows_while_queue_stands(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    window(&a, &now, 50, 1 * MS, 1);   /* baseline 1 ms: allowed 6 ms */
    assert_int_equal(sl__admit_limit(&a), 32);
    codel_interval(&a, &now, 10 * MS, 10, 10);
    assert_true(a.standing);
    assert_false(a.overloaded);
    /* 12 ms, twice the allowed: grows by sqrt(32) instead of halving */
    assert_int_equal(window(&a, &now, 50, 12 * MS, 32), 32 + 5);
    /* the queue grows (an overload): the gradient halves it */
    codel_interval(&a, &now, 10 * MS, 30, 10);
    assert_true(a.overloaded);
    assert_int_equal(window(&a, &now, 50, 12 * MS, 37), 18);
    /* standing still again, but requests take a whole interval: halves */
    codel_interval(&a, &now, 10 * MS, 10, 10);
    codel_interval(&a, &now, 10 * MS, 10, 10);
    assert_false(a.overloaded);
    window(&a, &now, 50, 100 * MS, 18);   /* its first sample ends the window of 12 ms left over */
    assert_int_equal(sl__admit_limit(&a), 18 + 4);
    assert_int_equal(window(&a, &now, 50, 100 * MS, 22), 11);
}

/* A queue refused at its head for queue time stands still and stays
 * short (its oldest below the target: not CoDel's overload), but more
 * come than end: the limit does not grow for standing, the gradient
 * holds. Before, it grew (the chain at 3 C: the limit at 70-85). */
static void test_limit_holds_while_refused_at_head(void **state)
{
    (void)state;
    sl_admit a;
    sl_admit_cfg c = cfg();
    uint64_t now = 0;
    sl__admit_init(&a, &c, now);
    window(&a, &now, 50, 1 * MS, 1);   /* baseline 1 ms: allowed 6 ms */
    codel_interval(&a, &now, 3 * MS, 30, 10);
    assert_true(a.standing);
    assert_false(a.overloaded);
    /* the gradient: twice the allowed latency, it shrinks (the window
     * that ends first holds the baseline's last 1 ms sample: 20, not 16);
     * before, it grew by sqrt(32) to 37 */
    uint32_t l = window(&a, &now, 50, 12 * MS, 32);
    assert_int_equal(l, 20);
    /* as many come as end: it grows again */
    codel_interval(&a, &now, 3 * MS, 10, 10);
    assert_false(a.growing);
    assert_int_equal(window(&a, &now, 50, 12 * MS, 20), 20 + 4);
}

/* A simulated chain: a processor shared by the running requests, each
 * needing a varied amount of work (mean 1: most 0.5-1.1, one in ten
 * 1.5-4.1) and then 2 ms more off the processor (the chain's waits on
 * other processes and on disk). Like the real chain it needs concurrency
 * to reach its capacity, and its C is what 64 clients get (CAP2): 8 in
 * flight get 0.7 C, 16 0.85 C, 32 0.94 C (the real one on a loaded
 * machine: 0.77 C at 8, ~C at 16-32). First 2 s at 0.1 x CAP2
 * (the quiet baseline), then 3.5 s open loop at `mult` x CAP2 (a fixed
 * schedule, as sluice-load's) or, with pop > 0, a closed loop of pop
 * clients; the last 3 s are counted. */
#define CAP2 4000.0
#define VMAX 4096
typedef struct vreq { double work; uint64_t t0, arrived, off_until; uint32_t inflight_at; int client; } vreq;
typedef struct vsim {
    vreq run[VMAX];
    int nrun;
    uint64_t q[VMAX];
    int qc[VMAX];                /* the client of each waiter (-1: the open loop's) */
    int qh, qn;
    int idle[VMAX], nidle;       /* the closed loop's clients with nothing sent */
    int nclients;                /* the closed loop's clients (ids 0 ..) */
    uint64_t came, done, shed, shed_head;
    uint64_t max_wait;           /* the longest wait of a request started (counted part) */
    uint64_t late;               /* requests started after waiting past the bound of then */
    uint32_t seed;
    /* what the test sets (vsim_run keeps them): from the counted part on,
     * the processor runs at `slow` x its rate (other processes took the
     * core; 0: 1), and each refusal costs it `refusal_work` (a 503's
     * recv, parse and send, in units of a request's mean work) */
    double slow, refusal_work;
    double debt, paid;           /* refusals' work not yet done; done towards the next one */
    int rq[VMAX], rqh, rqn;      /* refused clients whose refusal the processor has not sent yet */
} vsim;

static double vwork(vsim *s)
{
    s->seed = s->seed * 1103515245u + 12345u;
    double u = (double)(s->seed >> 8 & 0xffff) / 65536.0;
    s->seed = s->seed * 1103515245u + 12345u;
    double v = (double)(s->seed >> 8 & 0xffff) / 65536.0;
    return u < 0.9 ? 0.5 + 0.6 * v : 1.5 + 2.6 * v;
}

/* A request of `client` was refused by the queue: a closed loop's client
 * sends again at once. */
static void vrefused(vsim *s, sl_admit *a, int client, bool counted)
{
    sl__admit_refused(a);
    s->shed += counted;
    if (s->refusal_work > 0 && s->rqn < VMAX) {   /* it hears once the processor has sent it */
        s->debt += s->refusal_work;
        s->rq[(s->rqh + s->rqn++) % VMAX] = client;
    } else if (client >= 0) {
        s->idle[s->nidle++] = client;
    }
}

static void vsim_run(vsim *s, sl_admit *a, double mult, int pop)
{
    const uint64_t dt = 20 * US, quiet = 2000 * MS, from = quiet + 500 * MS, end = quiet + 3500 * MS;
    double arrivals = 0, slow = s->slow > 0 ? s->slow : 1, refusal_work = s->refusal_work;
    memset(s, 0, sizeof *s);
    s->seed = 7;
    s->slow = slow;
    s->refusal_work = refusal_work;
    for (uint64_t now = 0; now < end; now += dt) {
        int on = 0;
        for (int i = 0; i < s->nrun; i++)
            on += s->run[i].work > 0;
        /* the processor gets more done the more requests it holds (fewer
         * switches between the chain's processes per request): its rate
         * is on / (on + 3) of the most, and CAP2 at 64 */
        double rate = on ? CAP2 * on / (on + 3.0) * 67.0 / 64.0 : 0;
        double step = (double)dt / 1e9 * (s->refusal_work > 0 ? CAP2 * 67.0 / 64.0 : rate) * (now >= from ? slow : 1);
        double pay = s->debt < step ? s->debt : step;   /* the refusals first: they came first */
        s->debt -= pay;
        for (s->paid += pay; s->rqn && s->paid >= s->refusal_work * (1 - 1e-9); s->paid -= s->refusal_work) {
            int c = s->rq[s->rqh];
            s->rqh = (s->rqh + 1) % VMAX;
            s->rqn--;
            if (c >= 0)
                s->idle[s->nidle++] = c;
        }
        if (!s->rqn)
            s->paid = 0;
        step = on ? ((double)dt / 1e9 * rate * (now >= from ? slow : 1)) * (1 - pay / step) : 0;
        for (int i = 0; i < s->nrun; i++) {
            vreq *r = &s->run[i];
            if (r->work > 0) {
                r->work -= step / on;
                if (r->work <= 0)
                    r->off_until = now + 2 * MS;
            } else if (now >= r->off_until) {
                sl__admit_sample(a, now, now - r->t0, r->inflight_at);
                sl__admit_depart(a);
                s->done += now >= from;
                if (r->client >= 0)
                    s->idle[s->nidle++] = r->client;
                else if (pop && now >= quiet && s->nclients < VMAX)   /* the quiet phase's, done: */
                    s->idle[s->nidle++] = s->nclients++;              /* a client of the loop too */
                s->run[i--] = s->run[--s->nrun];
            }
        }
        int n = 0;
        if (pop && now == quiet)
            for (; s->nclients < pop; s->nclients++)
                s->idle[s->nidle++] = s->nclients;
        if (pop && now >= quiet) {
            n = s->nidle;
        } else {
            for (arrivals += (now < quiet ? 0.1 : mult) * CAP2 * (double)dt / 1e9; arrivals >= 1; arrivals -= 1)
                n++;
        }
        int sending[VMAX];
        for (int i = 0; i < n; i++)
            sending[i] = pop && now >= quiet ? s->idle[i] : -1;
        if (pop && now >= quiet)
            s->nidle = 0;
        for (int i = 0; i < n; i++) {
            sl__admit_arrive(a);
            s->came += now >= from;
            if ((s->qn || (uint32_t)s->nrun >= sl__admit_limit(a)) && sl__admit_wait_exceeds(a, (uint32_t)s->qn)) {
                s->shed_head += now >= from;   /* refused at its head */
                vrefused(s, a, sending[i], now >= from);
            } else if (s->qn < VMAX) {
                s->qc[(s->qh + s->qn) % VMAX] = sending[i];
                s->q[(s->qh + s->qn++) % VMAX] = now;
            } else {
                vrefused(s, a, sending[i], now >= from);
            }
        }
        while (s->qn && sl__admit_observe(a, now, now - s->q[s->qh])) {
            int c = s->qc[s->qh];
            s->qh = (s->qh + 1) % VMAX;
            s->qn--;
            vrefused(s, a, c, now >= from);
        }
        if (!s->qn)
            sl__admit_observe(a, now, 0);
        while (s->qn && (uint32_t)s->nrun < sl__admit_limit(a) && s->nrun < VMAX) {
            uint64_t t = s->q[s->qh];
            int c = s->qc[s->qh];
            s->qh = (s->qh + 1) % VMAX;
            s->qn--;
            if (now >= from && now - t > s->max_wait)
                s->max_wait = now - t;
            s->late += now >= from && now - t > sl__admit_max_wait(a);
            s->run[s->nrun++] = (vreq){ .work = vwork(s), .t0 = now, .arrived = t,
                                        .inflight_at = (uint32_t)s->nrun + 1, .client = c };
        }
    }
}

/* A closed loop cannot overload the server: its queue is bounded by its
 * clients. 64 clients (above the limit): none refused, the server at
 * capacity. Before the growth rule, 43 % were refused (a standing queue
 * above the target, LIFO starving the oldest). 200 clients: their queue
 * (~170 behind a limit of 33) would take ~44 ms to drain, past the
 * queue's time bound (~15 ms), so they were refused at the head and sent
 * again at once (17 M refusals in 3 s, 0.92 C); that is a retry storm
 * now (test_retry_storm): they wait, the limit grows with the standing
 * queue, and only those past the bound are refused (~4,700, 1.0 C).
 * None starts late, goodput stays >= 0.9 C. */
static void test_sim_closed_loop_not_shed(void **state)
{
    (void)state;
    static vsim s;
    static const int pops[] = { 64, 200 };
    for (size_t i = 0; i < sizeof pops / sizeof *pops; i++) {
        sl_admit a;
        sl_admit_cfg c = cfg();
        c.min_limit = 16;
        sl__admit_init(&a, &c, 0);
        vsim_run(&s, &a, 0, pops[i]);
        print_message("closed loop %d: goodput %.3f C, refused %llu of %llu (%llu at the head), limit %u, "
                      "max wait %.1f ms (bound %.1f)\n", pops[i], (double)s.done / 3.0 / CAP2,
                      (unsigned long long)s.shed, (unsigned long long)s.came, (unsigned long long)s.shed_head,
                      sl__admit_limit(&a), (double)s.max_wait / 1e6, (double)sl__admit_max_wait(&a) / 1e6);
        if (pops[i] == 64)
            assert_int_equal(s.shed, 0);
        assert_int_equal(s.late, 0);
        assert_true((double)s.done / 3.0 >= 0.9 * CAP2);
    }
}

/* A closed loop on a slowed core: other processes take 60 % of the
 * processor (the machine loaded; the real chain's C fell to ~600/s with
 * three CPU hogs on its core, 20,000 refusals a second, while without
 * admission it served 2,000-4,000), and a refusal costs the processor
 * 0.13 of a request (12 us of a 201's ~90). Slower, the requests take
 * longer, the limit falls, the queue's clients are refused at the head,
 * and a closed loop's client sends again at once: refusing it sheds no
 * load, its refusal only takes the processor from the requests that run,
 * which take longer still. Admission must not serve such a loop less than
 * no admission would (a limit of 1024: everyone runs). */
static void test_sim_closed_loop_slowed_core(void **state)
{
    (void)state;
    static vsim s;
    double got[2];
    for (int k = 0; k < 2; k++) {
        sl_admit a;
        sl_admit_cfg c = cfg();
        c.min_limit = 4;
        if (k == 1)
            c.min_limit = c.max_limit = c.initial_limit = 1024, c.adaptive = false;
        sl__admit_init(&a, &c, 0);
        s.slow = 0.4;
        s.refusal_work = 0.13;
        vsim_run(&s, &a, 0, 64);
        got[k] = (double)s.done / 3.0 / CAP2;
        print_message("slowed core, closed loop 64, %s: goodput %.3f C, refused %llu of %llu (%llu at the head), "
                      "limit %u\n", k ? "no admission" : "admission", got[k], (unsigned long long)s.shed,
                      (unsigned long long)s.came, (unsigned long long)s.shed_head, sl__admit_limit(&a));
    }
    s.slow = s.refusal_work = 0;
    assert_true(got[1] > 0.3);   /* the processor at 0.4 serves ~0.4 C */
    assert_true(got[0] >= 0.9 * got[1]);
}

/* 3 x C on the simulated chain: no request starts after waiting past the
 * queue's time bound, which is one service time in such a flood (before it: FIFO waits up to a whole interval while
 * CoDel's state was off), and most refusals are made at the head, before
 * the request is queued (before: none). */
static void test_sim_queue_time(void **state)
{
    (void)state;
    static vsim s;
    sl_admit a;
    sl_admit_cfg c = cfg();
    c.min_limit = 16;
    sl__admit_init(&a, &c, 0);
    vsim_run(&s, &a, 3.0, 0);
    double goodput = (double)s.done / 3.0 / CAP2;
    print_message("3 C: goodput %.3f C, refused %llu of %llu, %llu at the head, %llu started late, max wait "
                  "%.1f ms\n", goodput, (unsigned long long)s.shed, (unsigned long long)s.came,
                  (unsigned long long)s.shed_head, (unsigned long long)s.late, (double)s.max_wait / 1e6);
    assert_int_equal(s.late, 0);
    assert_true(s.shed_head * 2 > s.shed);
    assert_true(goodput >= 0.9);
    /* flooded, the queue holds about one service time, not two (before:
     * a max wait of 18.9 ms, 2.6 x the 7.3 ms requests took) */
    assert_true(a.flooded);
    assert_true(s.max_wait * 2 <= 3 * a.last_mean);
}

/* Offered exactly its capacity, the server refuses only what keeps the
 * queue bounded: here (no noise) at most 3 %, goodput >= 0.96 C; without
 * the limit that grows while the queue stands still it ran at 33 and
 * refused 7.7 % (0.92 C), without the growth rule 4.6 % (0.95 C). 1.5 x: it
 * refuses about the excess (a third), goodput stays near C. */
static void test_sim_at_capacity(void **state)
{
    (void)state;
    static vsim s;
    static const double mults[] = { 1.0, 1.5, 3.0 };
    for (size_t i = 0; i < sizeof mults / sizeof *mults; i++) {
        sl_admit a;
        sl_admit_cfg c = cfg();
        c.min_limit = 16;
        sl__admit_init(&a, &c, 0);
        vsim_run(&s, &a, mults[i], 0);
        double share = (double)s.shed / (double)s.came, goodput = (double)s.done / 3.0 / CAP2;
        print_message("%.1f C: goodput %.3f C, refused %.1f %% (%llu of %llu at the head), limit %u, "
                      "max wait %.1f ms (bound %.1f), drain %.0f/s\n", mults[i], goodput, 100 * share,
                      (unsigned long long)s.shed_head, (unsigned long long)s.shed, sl__admit_limit(&a),
                      (double)s.max_wait / 1e6, (double)sl__admit_max_wait(&a) / 1e6, sl__admit_drain(&a));
        if (mults[i] == 1.0) {
            assert_true(goodput >= 0.96);
            assert_true(share <= 0.03);
        } else {
            assert_true(goodput >= 0.9);
            assert_true(share <= 1 - 1 / mults[i] + 0.1);
        }
    }
}

/* ---- the server ------------------------------------------------------------------ */

static test_srv TS;
static _Atomic int started, ran;

/* Parks until its context ends. */
static int h_park(sl_task *t, void *arg)
{
    int *rc = sl_http_req_state(arg);
    SL_BEGIN(t);
    atomic_store(&started, 1);
    SL_AWAIT(t, *rc, sl_sleep(t, 30 * SL_NS_PER_S));
    SL_RETURN(t, *rc);
    SL_END(t);
}

/* Counts its runs, sleeps ?ms=N, answers "ok". */
static int h_count(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    int *rc = sl_http_req_state(req);
    size_t ql;
    const char *q = sl_http_req_query(req, &ql);
    int ms = ql > 3 && !strncmp(q, "ms=", 3) ? atoi(q + 3) : 0;
    SL_BEGIN(t);
    atomic_fetch_add(&ran, 1);
    SL_AWAIT(t, *rc, sl_sleep(t, (uint64_t)ms * SL_NS_PER_MS));
    if (*rc < 0)
        SL_RETURN(t, *rc);
    sl_http_reply(req, 200, "text/plain", "ok", 2);
    SL_END(t);
}

static void serve(sl_http_server_opts o)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    o.listen = "127.0.0.1:0";
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &o), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/park", h_park, sizeof(int), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/items/{id}", h_item, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/need", h_count, sizeof(int), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/free", h_count, sizeof(int), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/learn", h_count, sizeof(int), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/cont/{id}", h_item, 0, NULL), 0);
    sl_http_route_opts need = { .need_ms = 200 }, fr = { .need_ms = 200, .no_budget_check = true },
                       cont = { .lane = SL_HTTP_LANE_CONTINUE };
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/need", &need), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/free", &fr), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "GET", "/cont/{id}", &cont), 0);
    atomic_store(&started, 0);
    atomic_store(&ran, 0);
    srv_run(&TS);
}

/* One request on a fresh connection; its status, and how long it took. */
static int ask(const char *head_and_body, resp *r, uint64_t *took)
{
    int fd = cli_connect(TS.port);
    uint64_t t0 = sl_now_ns();
    cli_send(fd, head_and_body);
    int st = cli_read(fd, r, 5000);
    if (took)
        *took = sl_now_ns() - t0;
    close(fd);
    return st;
}

/* Opens two connections, parks a request (budget `budget`, a grpc-timeout
 * value) on the first and waits until its handler started (bounded, 5 s):
 * the one slot is taken. Returns the parked connection, *queued the other. */
static int park_one(const char *budget, int *queued)
{
    char req[128];
    int running = cli_connect(TS.port);
    *queued = cli_connect(TS.port);
    snprintf(req, sizeof req, "GET /park HTTP/1.1\r\nHost: t\r\ngrpc-timeout: %s\r\n\r\n", budget);
    cli_send(running, req);
    for (int i = 0; i < 2500 && !atomic_load(&started); i++)
        usleep(2000);
    assert_int_equal(atomic_load(&started), 1);
    return running;
}

static void expect_metric(const char *line)
{
    resp r;
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    if (!strstr(r.body, line))
        fail_msg("/metrics lacks %s", line);
}

static void wait_metric(const char *line) { wait_metric_on(TS.port, line); }

static void test_server_bad_options(void **state)
{
    (void)state;
    sl_runtime *rt = rt_new(1, NULL);
    sl_http_server *srv;
    const sl_http_server_opts bad[] = {
        { .admission = SL_HTTP_ADMISSION_FIXED + 1 },
        { .admission = -1 },
        { .queue_target_ms = 101 },                       /* above the default interval */
        { .queue_target_ms = 20, .queue_interval_ms = 10 },
        { .limit_min = 11, .max_inflight = 10 },
        { .queue_wait_ms = 4 },                           /* below the default target (5) */
        { .flood_batch_us = 10001 },
        { .flood_batch_us = SL_HTTP_FLOOD_BATCH_OFF - 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_http_server_opts o = bad[i];
        o.listen = "127.0.0.1:0";
        assert_int_equal(sl_http_server_new(&srv, rt, &o), -EINVAL);
    }
    sl_http_server_opts ok = { .listen = "127.0.0.1:0", .limit_min = 10, .max_inflight = 10,
                               .queue_target_ms = 100, .queue_interval_ms = 100,
                               .admission = SL_HTTP_ADMISSION_FIXED, .flood_batch_us = 10000 };
    assert_int_equal(sl_http_server_new(&srv, rt, &ok), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/x", h_item, 0, NULL), 0);
    sl_http_route_opts o = { .lane = SL_HTTP_LANE_CONTINUE + 1 };
    assert_int_equal(sl_http_route_set(srv, "GET", "/x", &o), -EINVAL);
    o = (sl_http_route_opts){ .need_ms = 86400001 };
    assert_int_equal(sl_http_route_set(srv, "GET", "/x", &o), -EINVAL);
    o.need_ms = 86400000;
    assert_int_equal(sl_http_route_set(srv, "GET", "/x", &o), 0);
    o = (sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTINUE };
    assert_int_equal(sl_http_route_set(srv, "GET", "/x", &o), 0);
    sl_http_server_free(srv);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* A request with less budget than its route needs is refused at once with
 * 503 + Retry-After, its handler never runs; one whose budget is gone gets
 * 504; enough budget, or a route that opts out, runs. */
static void test_deadline_aware_refusal(void **state)
{
    (void)state;
    resp r;
    uint64_t took;
    serve((sl_http_server_opts){ .retry_after_s = 2 });
    static const char body[] = "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250}";
    char req[512];
    snprintf(req, sizeof req, "POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 50m\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    assert_int_equal(ask(req, &r, &took), 503);
    assert_non_null(strstr(r.head, "Retry-After: 2"));
    assert_non_null(strstr(r.body, "\"error\":\"overloaded\""));
    /* why and where, the canned line (issue 20): this hop, the 50 ms it had */
    char cause[128];
    snprintf(cause, sizeof cause, "\r\nsluice-cause: v1;cause=overloaded;hop=127.0.0.1:%d;left-ms=50\r\n", TS.port);
    if (!strstr(r.head, cause))
        fail_msg("no '%s' in %s", cause + 2, r.head);
    /* refused, not run: what it took is not asked (over 1 s once, under
     * ASan at load 20: a bound on time is a claim about the machine) */
    print_message("refused for its budget in %llu us\n", (unsigned long long)(took / 1000));
    assert_int_equal(atomic_load(&ran), 0);                 /* never started */
    /* its budget gone (0 ms): 504, the caller's deadline (its grpc-timeout
     * was below this server's own) */
    assert_int_equal(ask("POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 0m\r\n"
                         "Content-Length: 2\r\n\r\n{}", &r, NULL), 504);
    assert_non_null(strstr(r.body, "deadline_exceeded"));
    snprintf(cause, sizeof cause, "\r\nsluice-cause: v1;cause=caller-deadline;hop=127.0.0.1:%d;left-ms=0\r\n",
             TS.port);
    if (!strstr(r.head, cause))
        fail_msg("no '%s' in %s", cause + 2, r.head);
    assert_int_equal(atomic_load(&ran), 0);
    /* enough budget: runs */
    assert_int_equal(ask("POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 1S\r\n"
                         "Content-Length: 2\r\n\r\n{}", &r, NULL), 200);
    assert_int_equal(atomic_load(&ran), 1);
    /* a route that opts out runs with 50 ms */
    assert_int_equal(ask("POST /free HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 50m\r\n"
                         "Content-Length: 2\r\n\r\n{}", &r, NULL), 200);
    assert_int_equal(atomic_load(&ran), 2);
    expect_metric("sluice_http_admission_shed_total{reason=\"budget\"} 1");
    expect_metric("sluice_http_expired_total{reactor=\"0\"} 1");
    expect_metric("sluice_http_shed_total{reactor=\"0\"} 1");

    /* a learned need: 16 requests of 30 ms teach the route its median;
     * then 10 ms of budget is not enough, and 1 s is */
    for (int i = 0; i < SL_ADMIT_NEED_MIN_SAMPLES; i++)
        assert_int_equal(ask("GET /learn?ms=30 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n", &r, NULL),
                         200);
    int before = atomic_load(&ran);
    assert_int_equal(ask("GET /learn?ms=30 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10m\r\n\r\n", &r, NULL), 503);
    assert_int_equal(atomic_load(&ran), before);
    uint64_t learned = sl_now_ns();   /* before the last sample */
    assert_int_equal(ask("GET /learn?ms=30 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 1S\r\n\r\n", &r, NULL), 200);
    /* no lockout: requests refused for their budget teach nothing, so
     * once the estimate is SL_ADMIT_NEED_STALE_NS old a 10 ms request runs
     * again (and its own budget ends it: 504); polled, bounded at 10 s */
    int st = 503;
    before = atomic_load(&ran);
    while (st == 503 && sl_now_ns() - learned < 10 * SL_NS_PER_S) {
        st = ask("GET /learn?ms=30 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10m\r\n\r\n", &r, NULL);
        if (st == 503)
            poll(NULL, 0, 50);
    }
    assert_int_equal(st, 504);
    assert_true(sl_now_ns() - learned >= SL_ADMIT_NEED_STALE_NS);
    assert_int_equal(atomic_load(&ran), before + 1);
    srv_stop(&TS);

    /* admission FIXED: no deadline-aware refusal, the handler runs (and
     * its budget ends it: 504 from the handler, not from admission) */
    serve((sl_http_server_opts){ .admission = SL_HTTP_ADMISSION_FIXED });
    assert_int_equal(ask("POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 50m\r\n"
                         "Content-Length: 2\r\n\r\n{}", &r, NULL), 200);
    assert_int_equal(atomic_load(&ran), 1);
    expect_metric("sluice_http_admission_shed_total{reason=\"budget\"} 0");
    srv_stop(&TS);
}

/* A refusal at the head keeps its place in a pipeline and its connection:
 * on one connection, a served request, a refused one (its body, larger
 * than one read, is skipped, never handled) and another served one are
 * answered in order; the 503 is the canned one (JSON error, Retry-After,
 * Content-Length, keep-alive), and /metrics counts it under its route. */
static void test_refusal_keeps_connection(void **state)
{
    (void)state;
    resp r;
    serve((sl_http_server_opts){ .retry_after_s = 7 });
    static char big[100000];
    memset(big, 'x', sizeof big - 1);
    char *msg = malloc(sizeof big + 1024);
    assert_non_null(msg);
    int n = snprintf(msg, sizeof big + 1024,
                     "GET /learn?ms=20 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 5S\r\n\r\n"
                     "POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 50m\r\nContent-Length: %zu\r\n\r\n%s"
                     "POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 5S\r\nContent-Length: 2\r\n\r\n{}",
                     strlen(big), big);
    assert_true(n > 0);
    int fd = cli_connect(TS.port);
    cli_send(fd, msg);
    free(msg);
    assert_int_equal(cli_read(fd, &r, 10000), 200);
    assert_int_equal(cli_read(fd, &r, 10000), 503);
    assert_non_null(strstr(r.head, "Retry-After: 7\r\n"));
    assert_non_null(strstr(r.head, "Content-Type: application/json\r\n"));
    assert_false(r.closed_after);
    assert_string_equal(r.body, "{\"error\":\"overloaded\",\"message\":"
                                "\"less budget left than this route needs; retry later\"}");
    assert_int_equal(cli_read(fd, &r, 10000), 200);
    assert_int_equal(atomic_load(&ran), 2);   /* the refused one never ran */
    /* and the connection still serves */
    cli_send(fd, "POST /need HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 0m\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(cli_read(fd, &r, 10000), 504);
    assert_null(strstr(r.head, "Retry-After"));
    assert_string_equal(r.body, "{\"error\":\"deadline_exceeded\",\"message\":"
                                "\"the budget ran out before the request started\"}");
    close(fd);
    expect_metric("sluice_http_requests_total{method=\"post\",route=\"/need\",status=\"503\"} 1");
    expect_metric("sluice_http_requests_total{method=\"post\",route=\"/need\",status=\"504\"} 1");
    expect_metric("sluice_http_admission_shed_total{reason=\"budget\"} 1");
    srv_stop(&TS);
}

/* A request waiting behind a full limit for longer than the queue's time
 * bound (here 2 x the 1 ms target) is refused with 503 + Retry-After,
 * whatever CoDel's state (the same setup with FIXED admission keeps it
 * queued: test_http.c, test_shedding_503). Other requests go on: each one
 * checks the queue. Before the bound it was CoDel's refusal (queue_delay),
 * once the queue had stood through an interval (the same reason: it
 * waited, then was refused). */
static void test_queue_delay_target(void **state)
{
    (void)state;
    resp r;
    serve((sl_http_server_opts){ .max_inflight = 1, .max_queue = 8, .queue_target_ms = 1,
                                 .queue_interval_ms = 20 });
    int queued, running = park_one("10S", &queued);
    uint64_t t0 = sl_now_ns();
    cli_send(queued, "GET /items/q HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    /* queued, or queued and refused already: its time in the queue is a
     * few ms, which a test thread kept off its CPU missed (ASan, load 20:
     * /metrics never showed it queued within 5 s) */
    {
        resp m;
        bool in = false;
        for (uint64_t end = sl_now_ns() + 10 * SL_NS_PER_S; !in && sl_now_ns() < end; usleep(2000)) {
            assert_int_equal(get(TS.port, "/metrics", &m), 200);
            in = strstr(m.body, "sluice_http_queued{reactor=\"0\"} 1") ||
                 strstr(m.body, "sluice_http_admission_shed_total{reason=\"queue_delay\"} 1");
        }
        assert_true(in);
    }
    /* probes keep the reactor looking at its queue */
    struct pollfd p = { .fd = queued, .events = POLLIN };
    for (int i = 0; i < 2500 && poll(&p, 1, 2) == 0; i++)
        assert_int_equal(get(TS.port, "/healthz", &r), 200);
    assert_int_equal(cli_read(queued, &r, 5000), 503);
    uint64_t took = sl_now_ns() - t0;
    assert_non_null(strstr(r.head, "Retry-After: 1"));
    assert_non_null(strstr(r.body, "\"error\":\"overloaded\""));
    assert_true(took < 5 * SL_NS_PER_S);   /* long before its 10 s budget */
    expect_metric("sluice_http_admission_shed_total{reason=\"queue_delay\"} 1");
    /* (the overloaded flag is not checked here: it goes back to 0 one
     * interval after the queue emptied, which may already be the case) */
    expect_metric("sluice_http_queued{reactor=\"0\"} 0");
    close(queued);
    close(running);
    wait_metric("cause=\"client_disconnected\"} 1");   /* the parked handler ended */
    srv_stop(&TS);
}

/* With nothing else happening on the reactor (no probes, no request
 * ending), the queue's own timer still refuses a waiter past the bound. */
static void test_queue_delay_without_events(void **state)
{
    (void)state;
    resp r;
    serve((sl_http_server_opts){ .max_inflight = 1, .max_queue = 8, .queue_target_ms = 1,
                                 .queue_interval_ms = 20 });
    int queued, running = park_one("10S", &queued);
    cli_send(queued, "GET /items/q HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    assert_int_equal(cli_read(queued, &r, 5000), 503);   /* long before the 10 s */
    assert_non_null(strstr(r.body, "\"error\":\"overloaded\""));
    expect_metric("sluice_http_admission_shed_total{reason=\"queue_delay\"} 1");
    close(queued);
    close(running);
    wait_metric("cause=\"client_disconnected\"} 1");
    srv_stop(&TS);
}

/* A waiter whose budget runs out in the queue gets its 504 then, not when
 * a slot frees (here: never, within the test), with FIXED admission too. */
static void test_queued_deadline_504(void **state)
{
    (void)state;
    resp r;
    serve((sl_http_server_opts){ .max_inflight = 1, .max_queue = 8, .admission = SL_HTTP_ADMISSION_FIXED });
    int queued, running = park_one("20S", &queued);
    uint64_t t0 = sl_now_ns();
    cli_send(queued, "GET /items/q HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 200m\r\n\r\n");
    assert_int_equal(cli_read(queued, &r, 5000), 504);
    uint64_t took = sl_now_ns() - t0;
    assert_non_null(strstr(r.body, "deadline_exceeded"));
    assert_true(took >= 200 * SL_NS_PER_MS && took < 5 * SL_NS_PER_S);
    expect_metric("sluice_http_expired_total{reactor=\"0\"} 1");
    close(queued);
    close(running);
    wait_metric("cause=\"client_disconnected\"} 1");
    srv_stop(&TS);
}

/* The continue lane skips a full adaptive limit (up to max_inflight);
 * a normal request waits for its turn. */
static void test_continue_lane(void **state)
{
    (void)state;
    resp r;
    /* limit 1 (the floor); CoDel far away so the queued one stays */
    serve((sl_http_server_opts){ .max_inflight = 2, .limit_min = 1, .limit_initial = 1,
                                 .queue_target_ms = 30000, .queue_interval_ms = 60000 });
    expect_metric("sluice_http_admission_limit{reactor=\"0\"} 1");
    int queued, running = park_one("10S", &queued);
    cli_send(queued, "GET /items/q HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_metric("sluice_http_queued{reactor=\"0\"} 1");
    assert_int_equal(get(TS.port, "/cont/c", &r), 200);     /* past the limit */
    assert_string_equal(r.body, "c");
    close(running);                                          /* the slot frees */
    assert_int_equal(cli_read(queued, &r, 5000), 200);
    assert_string_equal(r.body, "q");
    close(queued);
    srv_stop(&TS);
}

/* A burst of new connections waits in the kernel's accept queue, not in
 * SYN retransmits: with accepting paused (max_conns reached), 300 more
 * connections all complete their handshake. The listener used to be made
 * with backlog -1, which libevent turns into listen(fd, 128): the 129th
 * and later SYNs were dropped, retried after 1 s and 3 s, and a load
 * client's requests on them got no answer within 2.5 s (issue 14). */
static void test_accept_backlog(void **state)
{
    (void)state;
    enum { N = 300 };
    serve((sl_http_server_opts){ .max_conns = 1 });
    int first = cli_connect(TS.port);
    cli_send(first, "GET /items/a HTTP/1.1\r\nHost: t\r\n\r\n");
    resp r;
    assert_int_equal(cli_read(first, &r, 5000), 200);   /* accepted: accepting pauses */
    static int fds[N];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)TS.port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fds[i] >= 0);
        int rc = connect(fds[i], (struct sockaddr *)&sa, sizeof sa);
        assert_true(rc == 0 || errno == EINPROGRESS);
    }
    /* a handshake on loopback takes microseconds; a dropped SYN, 1 s */
    int connected = 0;
    static bool done[N];
    memset(done, 0, sizeof done);
    uint64_t end = sl_now_ns() + 800 * SL_NS_PER_MS;
    /* one look after the end too: a test thread descheduled for the whole
     * 800 ms must still look at the sockets once, not fail on its own delay */
    for (bool last = false; connected < N && !last;) {
        last = sl_now_ns() >= end;
        for (int i = 0; i < N; i++) {
            struct pollfd p = { .fd = fds[i], .events = POLLOUT };
            if (!done[i] && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT)) {
                done[i] = true;
                connected++;
            }
        }
        usleep(10000);
    }
    print_message("%d of %d connections completed their handshake while accepting was paused\n",
                  connected, N);
    assert_int_equal(connected, N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    close(first);
    srv_stop(&TS);
}

/* ---- refused at the head while the upstream the route calls refuses ---------------- */

static test_srv UP;
static sl_http_upstream *VIA;

static int h_refuse(sl_task *t, void *arg)
{
    (void)t;
    return sl_http_reply_error(arg, 503, "overloaded", "the upstream sheds everything");
}

typedef struct via_st {
    sl_http_resp r;
    int rc;
} via_st;

/* Calls the upstream's POST /x, answers its status (503 when refused). */
static int h_via(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    via_st *st = sl_http_req_state(req);
    SL_BEGIN(t);
    atomic_fetch_add(&ran, 1);
    SL_AWAIT(t, st->rc, sl_http_call(t, &st->r, VIA, "POST", "/x", NULL, 0));
    sl_http_reply(req, st->rc == 0 ? st->r.status : 503, "text/plain", "v", 1);
    sl_http_call_end(&st->r);
    SL_END(t);
}

/* A route that names its upstream: once that upstream has refused enough
 * calls for the client's throttle to refuse them, the route's requests are
 * refused at their head and their handler (which would write an order and
 * then fail at the call) never runs. */
static void test_upstream_refusing_refused_at_head(void **state)
{
    (void)state;
    memset(&UP.cap, 0, sizeof UP.cap);
    UP.rt = rt_new(1, &UP.cap);
    assert_int_equal(sl_http_server_new(&UP.srv, UP.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(UP.srv, "POST", "/x", h_refuse, 0, NULL), 0);
    srv_run(&UP);

    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/via", h_via, sizeof(via_st), NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", UP.port);
    sl_http_upstream *other;   /* made on another runtime: refused */
    assert_int_equal(sl_http_upstream_new(&other, UP.rt, url, NULL), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/via", &(sl_http_route_opts){ .upstream = other }), -EXDEV);
    sl_http_upstream_free(other);
    assert_int_equal(sl_http_upstream_new(&VIA, TS.rt, url, NULL), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/via", &(sl_http_route_opts){ .upstream = VIA }), 0);
    atomic_store(&ran, 0);
    srv_run(&TS);

    resp r;
    for (int i = 0; i < 100; i++)
        assert_int_equal(ask("POST /via HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", &r, NULL), 503);
    int handled = atomic_load(&ran);
    print_message("%d of 100 started, the others refused at the head\n", handled);
    /* 16 calls before the throttle may refuse; then about 19 in 20 (and
     * one whenever 500 ms passed without a 503: a slow machine) */
    assert_true(handled >= 16 && handled <= 60);
    char line[128];
    snprintf(line, sizeof line, "sluice_http_admission_shed_total{reason=\"upstream\"} %d\n", 100 - handled);
    expect_metric(line);

    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    sl_http_upstream_free(VIA);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
    srv_stop(&UP);
}

/* The value on the /metrics line that starts with `prefix` (0 if none). */
static double metric_value(const char *prefix)
{
    resp r;
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    const char *p = strstr(r.body, prefix);
    return p ? strtod(p + strlen(prefix), NULL) : 0;
}

/* Holds the reactor it was posted to until fl_release (at most 10 s):
 * what the test sends meanwhile is read there in one burst. */
static _Atomic int fl_holding, fl_release;

static void fl_hold(void *arg)
{
    (void)arg;
    atomic_store(&fl_holding, 1);
    wait_set(&fl_release, 10 * SL_NS_PER_S);
}

/* A server whose one slot is held by a parked handler, flooded: once it
 * knows its drain rate, the requests that would wait past the queue's
 * bound get a 503 with Retry-After at their head (queue_time), the few it
 * queued get theirs once they waited past the bound (queue_delay); no
 * handler starts for any of them, and it serves again once the slot
 * frees. Before the bound, all of them were queued (max_queue 1024) and
 * waited for CoDel's interval.
 *
 * The flood reaches the server as one burst: its reactor is held while
 * the test connects and sends, for at least an interval (100 ms). An
 * interval that ends with refusals and no departures starts a retry
 * storm (admit.c), which queues every later arrival (and refuses it only
 * after the bound) instead of refusing it at the head. Sent as they came,
 * the flood met such an end when this thread took 60 ms or more for its
 * 200 connections (a loaded machine): 50-83 refused at the head, in 1
 * run of 15 and 3 of 20 beside two CPU hogs. Held, the interval under
 * way ends before the burst (its count has no refusal: no storm), and
 * the burst has a whole interval, from its first arrival, for its
 * refusals at the head. */
static void test_flood_refused_at_head(void **state)
{
    (void)state;
    enum { TEACH = 12, FLOOD = 200 };
    static int fds[FLOOD];
    resp r;
    serve((sl_http_server_opts){ .max_inflight = 1, .queue_wait_ms = 300 });
    /* its drain rate: TEACH requests of 5 ms at once, one runs, the rest wait */
    for (int i = 0; i < TEACH; i++) {
        fds[i] = cli_connect(TS.port);
        cli_send(fds[i], "GET /learn?ms=5 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    }
    /* (one that waited past the queue's bound, 300 ms, is refused: a
     * reactor kept off its CPU that long, ASan at load 20; the drain rate
     * is learned from the others) */
    for (int i = 0; i < TEACH; i++) {
        int st = cli_read(fds[i], &r, 10000);
        assert_true(st == 200 || st == 503);
        close(fds[i]);
    }
    double rate = metric_value("sluice_http_admission_drain_per_second{reactor=\"0\"} ");
    print_message("drain rate %.0f/s\n", rate);
    assert_true(rate > 0);
    int other, running = park_one("10S", &other);
    close(other);
    int ran0 = atomic_load(&ran);
    double head0 = metric_value("sluice_http_admission_shed_total{reason=\"queue_time\"} "),
           waited0 = metric_value("sluice_http_admission_shed_total{reason=\"queue_delay\"} ");
    atomic_store(&fl_holding, 0);
    atomic_store(&fl_release, 0);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(TS.rt, 0), fl_hold, NULL), 0);
    assert_true(wait_set(&fl_holding, 10 * SL_NS_PER_S));
    uint64_t held = sl_now_ns();
    for (int i = 0; i < FLOOD; i++) {   /* the kernel completes the handshakes (backlog) */
        fds[i] = cli_connect(TS.port);
        cli_send(fds[i], "GET /learn HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    }
    while (sl_now_ns() - held < 150 * SL_NS_PER_MS)   /* a floor on time, not a wait for an event */
        poll(NULL, 0, 5);
    atomic_store(&fl_release, 1);
    for (int i = 0; i < FLOOD; i++) {
        assert_int_equal(cli_read(fds[i], &r, 10000), 503);
        assert_non_null(strstr(r.head, "Retry-After: 1"));
        close(fds[i]);
    }
    assert_int_equal(atomic_load(&ran), ran0);   /* no handler started for them */
    double head = metric_value("sluice_http_admission_shed_total{reason=\"queue_time\"} ") - head0,
           waited = metric_value("sluice_http_admission_shed_total{reason=\"queue_delay\"} ") - waited0;
    print_message("flood of %d: %.0f refused at the head, %.0f after waiting\n", FLOOD, head, waited);
    assert_true(head + waited == FLOOD);
    assert_true(head >= FLOOD / 2);
    /* the slot frees: it serves again */
    close(running);
    wait_metric("cause=\"client_disconnected\"} 1");
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /learn HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 10000), 200);
    close(fd);
    srv_stop(&TS);
}

/* A flood is read in batches: once the queue is flooded, the first read
 * of a loop pass sleeps out the rest of flood_batch_us (the naps are
 * counted); with flood_batch_us off it never does. Rounds of 48 requests
 * of 20 ms at once on a server that runs 4: most are refused, the queue is
 * seldom empty; rounds until a nap and a flooded round are seen (on) or
 * five flooded rounds have passed (off), at most 200.
 *
 * `flooded` is a gauge, set as each 100 ms interval of the queue ends
 * (at the next request or departure after it: sweep), and read here
 * after a round, when the flood is over: whether a read finds it set
 * depends on where the interval ends fell in and after the round, while
 * a nap shows it was set at some read of the round (sl__srv_batch). In a
 * full `make check` at load 9 the on case stopped at its first nap,
 * after 3 rounds none of which read flooded (it read 1 in 1 of 2-7
 * rounds here; a pause of 50-300 ms before the read did not make it
 * rarer). So the rounds go on until both are seen, as the off case's
 * do, bounded as theirs. */
static void flood_round(void)
{
    enum { CONNS = 48 };
    static int fds[CONNS];
    resp r;
    for (int i = 0; i < CONNS; i++) {
        fds[i] = cli_connect(TS.port);
        cli_send(fds[i], "GET /learn?ms=20 HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    }
    for (int i = 0; i < CONNS; i++) {
        int st = cli_read(fds[i], &r, 10000);
        assert_true(st == 200 || st == 503);
        close(fds[i]);
    }
}

static void test_flood_read_in_batches(void **state)
{
    (void)state;
    for (int off = 0; off < 2; off++) {
        /* a period of 10 ms: a pass within it of the last nap naps, however
         * slow the build (ASan) makes a pass */
        serve((sl_http_server_opts){ .max_inflight = 4, .limit_min = 4,
                                     .flood_batch_us = off ? SL_HTTP_FLOOD_BATCH_OFF : 10000 });
        assert_true(metric_value("sluice_http_flood_batch_naps_total{reactor=\"0\"} ") == 0);
        bool flooded = false;
        double naps = 0;
        int rounds = 0, flooded_rounds = 0;
        /* until flooded and napping (on), or flooded for 5 rounds (off) */
        for (; rounds < 200 && (off ? flooded_rounds < 5 : naps == 0 || flooded_rounds == 0); rounds++) {
            flood_round();
            flooded = metric_value("sluice_http_admission_flooded{reactor=\"0\"} ") == 1;
            flooded_rounds += flooded;
            naps = metric_value("sluice_http_flood_batch_naps_total{reactor=\"0\"} ");
        }
        print_message("flood_batch_us %s: %d rounds, %d flooded, %.0f naps\n", off ? "off" : "10000", rounds,
                      flooded_rounds, naps);
        assert_true(flooded_rounds > 0);
        if (off)
            assert_true(naps == 0);
        else
            assert_true(naps > 0);
        srv_stop(&TS);
    }
}

/* The admission lines of /metrics, on an idle server. */
static void test_metrics_lines(void **state)
{
    (void)state;
    serve((sl_http_server_opts){ 0 });
    expect_metric("sluice_http_admission_limit{reactor=\"0\"} 32");
    expect_metric("sluice_http_admission_overloaded{reactor=\"0\"} 0");
    expect_metric("sluice_http_admission_flooded{reactor=\"0\"} 0");
    expect_metric("sluice_http_admission_retry_storm{reactor=\"0\"} 0");
    expect_metric("sluice_http_queue_delay_seconds{reactor=\"0\"} 0\n");
    expect_metric("sluice_http_admission_shed_total{reason=\"queue_full\"} 0");
    expect_metric("sluice_http_admission_shed_total{reason=\"queue_delay\"} 0");
    expect_metric("sluice_http_admission_shed_total{reason=\"queue_time\"} 0");
    expect_metric("sluice_http_admission_drain_per_second{reactor=\"0\"} 0\n");
    expect_metric("sluice_http_admission_max_wait_seconds{reactor=\"0\"} 0.01\n");
    srv_stop(&TS);
}

int main(void)
{
    if (getenv("TEST_FILTER"))   /* one test: TEST_FILTER=test_name tests/test_admission */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_cfg),
        cmocka_unit_test(test_initial_limit_clamped),
        cmocka_unit_test(test_limit_follows_latency),
        cmocka_unit_test(test_window_needs_samples),
        cmocka_unit_test(test_baseline_forgets),
        cmocka_unit_test(test_fixed_when_not_adaptive),
        cmocka_unit_test(test_codel),
        cmocka_unit_test(test_codel_target_follows_service_time),
        cmocka_unit_test(test_need_median),
        cmocka_unit_test(test_need_goes_stale),
        cmocka_unit_test(test_sim_overload),
        cmocka_unit_test(test_codel_standing_still),
        cmocka_unit_test(test_limit_grows_while_queue_stands),
        cmocka_unit_test(test_limit_holds_while_refused_at_head),
        cmocka_unit_test(test_sim_closed_loop_not_shed),
        cmocka_unit_test(test_sim_closed_loop_slowed_core),
        cmocka_unit_test(test_sim_at_capacity),
        cmocka_unit_test(test_drain_rate),
        cmocka_unit_test(test_queue_time_bound),
        cmocka_unit_test(test_slow_route_keeps_a_queue),
        cmocka_unit_test(test_flooded_queue_bound),
        cmocka_unit_test(test_retry_storm),
        cmocka_unit_test(test_sim_queue_time),
        cmocka_unit_test(test_server_bad_options),
        cmocka_unit_test(test_deadline_aware_refusal),
        cmocka_unit_test(test_refusal_keeps_connection),
        cmocka_unit_test(test_queue_delay_target),
        cmocka_unit_test(test_queue_delay_without_events),
        cmocka_unit_test(test_queued_deadline_504),
        cmocka_unit_test(test_continue_lane),
        cmocka_unit_test(test_accept_backlog),
        cmocka_unit_test(test_upstream_refusing_refused_at_head),
        cmocka_unit_test(test_flood_refused_at_head),
        cmocka_unit_test(test_flood_read_in_batches),
        cmocka_unit_test(test_metrics_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
