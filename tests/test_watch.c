/* test_watch.c: deadlocks among some tasks while others run (the wait-for
 * check), its false-positive traps, the cancel policy, stalls, busy polls. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "testutil.h"
#include "internal.h"   /* sl__watch_test_no_membarrier */

static sl_runtime *rt;
static capture cap;
static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;   /* the watchdog reports from its thread */

#define HOG_SAYS "sluice: stall on reactor 0: task 'hog' (spawned at"
#define NO_BT "; no backtrace"

/* Stall reports as they came, counted here: cap.text keeps 16 KiB, a few
 * backtraces' worth, and a count taken from it could come out short. */
static struct { int all, hog, no_bt; } stalls_said;

static void report(const char *text, void *arg)
{
    pthread_mutex_lock(&cap_lock);
    capture_report(text, arg);
    if (strstr(text, "sluice: stall on reactor 0")) {
        stalls_said.all++;
        stalls_said.hog += strstr(text, HOG_SAYS) != NULL;
        stalls_said.no_bt += strstr(text, NO_BT) != NULL;
    }
    pthread_mutex_unlock(&cap_lock);
}

static int reports(void)
{
    pthread_mutex_lock(&cap_lock);
    int n = cap.count;
    pthread_mutex_unlock(&cap_lock);
    return n;
}

static sl_runtime *watch_rt(int policy, int stall_ms, unsigned spin_limit)
{
    memset(&cap, 0, sizeof cap);
    memset(&stalls_said, 0, sizeof stalls_said);
    sl_runtime *r = NULL;
    sl_runtime_opts o = { .threads = 1, .report = report, .report_arg = &cap, .deadlock_policy = policy,
                          .deadlock_check_ms = 20, .stall_ms = stall_ms, .spin_limit = spin_limit };
    assert_int_equal(sl_runtime_new(&r, &o), 0);
    return r;
}

/* ---- a ticker keeps running: the deadlocks below are partial ---------------------- */

static long ticks;
static int ticker_stop;

static int ticker(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    while (!ticker_stop) {
        SL_AWAIT(t, rc, sl_sleep(t, SL_NS_PER_MS));
        if (rc < 0)
            break;
        ticks++;
    }
    SL_END(t);
}

/* The scenario's tasks are spawned by setup(); main waits for a report (or
 * for `quiet_ms` to pass without one; 30 s if 0: only a bug runs into
 * that), then stops. */
typedef struct scen {
    void (*setup)(sl_task *main);
    int quiet_ms;
    int rc;
    uint64_t t0, found_after;
} scen;

static scen *S;

static int scen_main(sl_task *t, void *arg)
{
    scen *s = arg;
    SL_BEGIN(t);
    ticks = 0;
    ticker_stop = 0;
    assert_int_equal(sl_spawn(NULL, ticker, NULL, NULL, &(sl_spawn_opts){ .name = "ticker" }), 0);
    s->t0 = sl_now_ns();
    s->setup(t);
    while (reports() == 0 && sl_now_ns() - s->t0 < (uint64_t)(s->quiet_ms ? s->quiet_ms : 30000) * SL_NS_PER_MS)
        SL_AWAIT(t, s->rc, sl_sleep(t, 2 * SL_NS_PER_MS));
    s->found_after = sl_now_ns() - s->t0;
    ticker_stop = 1;
    SL_AWAIT(t, s->rc, sl_sleep(t, 5 * SL_NS_PER_MS));
    sl_runtime_stop(rt);
    SL_END(t);
}

static int run_scen(scen *s)
{
    S = s;
    return rt_run(rt, scen_main, s);
}

/* ---- 1. the unbuffered two-task deadlock ------------------------------------------ */

typedef struct two {
    sl_chan *c1, *c2;
    int va, vb, rca, rcb;
    sl_task *a, *b;
} two;

static two T2;

static int two_a(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, T2.rca, sl_chan_send(t, T2.c1, &T2.va));   /* b never receives c1 first */
    SL_AWAIT(t, T2.rca, sl_chan_recv(t, T2.c2, &T2.va));
    SL_END(t);
}

static int two_b(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, T2.rcb, sl_chan_send(t, T2.c2, &T2.vb));
    SL_AWAIT(t, T2.rcb, sl_chan_recv(t, T2.c1, &T2.vb));
    SL_END(t);
}

static void two_setup_deadline(sl_task *m, uint64_t deadline)
{
    memset(&T2, 0, sizeof T2);
    assert_int_equal(sl_chan_new(&T2.c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_chan_new(&T2.c2, sizeof(int), 0, &(sl_chan_opts){ .name = "c2" }), 0);
    assert_int_equal(sl_spawn(NULL, two_a, NULL, &T2.a, &(sl_spawn_opts){ .name = "a", .deadline = deadline }), 0);
    assert_int_equal(sl_spawn(NULL, two_b, NULL, &T2.b, &(sl_spawn_opts){ .name = "b" }), 0);
    assert_int_equal(sl_chan_attach(T2.c1, T2.a, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(T2.c2, T2.a, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(T2.c2, T2.b, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(T2.c1, T2.b, SL_CHAN_RECEIVER), 0);
    (void)m;
}

static void two_setup(sl_task *m) { two_setup_deadline(m, 0); }

static void test_two_task_deadlock_while_others_run(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = two_setup };
    int leaks = run_scen(&sc);
    assert_int_equal(reports() >= 1, 1);
    /* found while it lasts (the scene's bound is 30 s); how soon is the
     * machine's figure: checked every 20 ms, it took over 1 s under TSan
     * at load 41, where a second was asserted */
    print_message("found after %llu ms\n", (unsigned long long)(sc.found_after / SL_NS_PER_MS));
    assert_true(ticks > 0);                           /* others kept running */
    assert_non_null(strstr(cap.text, "2 tasks wait for each other while 2 others run"));
    assert_non_null(strstr(cap.text, "task 'a' (spawned at"));
    assert_non_null(strstr(cap.text, "task 'b' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on send 'c1'"));
    assert_non_null(strstr(cap.text, "parked on send 'c2'"));
    assert_int_equal(leaks, 4);                       /* a, b and their channels */
}

/* ---- 5. the same, with the cancel policy: the program recovers ----------------------- */

static void test_cancel_policy_recovers(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_CANCEL, -1, 0);
    scen sc = { .setup = two_setup };
    int leaks = run_scen(&sc);
    assert_non_null(strstr(cap.text, "with -EDEADLK"));
    /* one was cancelled with -EDEADLK, its ends went with it, and the other's
     * send failed with -EPIPE instead of waiting forever */
    assert_true((T2.rca == -EDEADLK && T2.rcb == -EPIPE) || (T2.rcb == -EDEADLK && T2.rca == -EPIPE));
    assert_int_equal(leaks, 2);                       /* only the channels, on purpose */
}

/* ---- false positive: a task with a deadline is not deadlocked ---------------------------- */

/* The deadline is far beyond the scene's 250 quiet ms: with 300 ms, a thread
 * descheduled for 50 ms on a loaded machine saw a's deadline pass before the
 * stop (and a was no longer leaked). */
static void two_setup_dl(sl_task *m) { two_setup_deadline(m, sl_now_ns() + 60 * SL_NS_PER_S); }

static void test_deadline_is_not_deadlock(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = two_setup_dl, .quiet_ms = 250 };
    /* stopped before a's deadline: a, b and the channels are leaked, and
     * reported as such, but no deadlock is */
    assert_int_equal(run_scen(&sc), 4);
    assert_null(strstr(cap.text, "deadlock"));
    assert_non_null(strstr(cap.text, "sluice: leak: task 'a'"));
}

/* ---- 2. two mutexes taken in opposite order ------------------------------------------------- */

typedef struct mx {
    sl_mutex m1, m2;
    int rc1, rc2;
} mx;

static mx MX;

static int mx_a(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &MX.m1, 1), 0);
    SL_AWAIT(t, MX.rc1, sl_sleep(t, 2 * SL_NS_PER_MS));
    SL_AWAIT(t, MX.rc1, sl_mutex_lock(t, &MX.m2, 1));
    SL_END(t);
}

static int mx_b(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &MX.m2, 2), 0);
    SL_AWAIT(t, MX.rc2, sl_sleep(t, 2 * SL_NS_PER_MS));
    SL_AWAIT(t, MX.rc2, sl_mutex_lock(t, &MX.m1, 2));
    SL_END(t);
}

static void mx_setup(sl_task *m)
{
    (void)m;
    sl_mutex_init(&MX.m1, NULL, "m1", 0);
    sl_mutex_init(&MX.m2, NULL, "m2", 0);
    assert_int_equal(sl_spawn(NULL, mx_a, NULL, NULL, &(sl_spawn_opts){ .name = "ab" }), 0);
    assert_int_equal(sl_spawn(NULL, mx_b, NULL, NULL, &(sl_spawn_opts){ .name = "ba" }), 0);
}

static void test_mutex_order_deadlock(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = mx_setup };
    assert_int_equal(run_scen(&sc), 2);
    print_message("found after %llu ms\n", (unsigned long long)(sc.found_after / SL_NS_PER_MS));
    assert_non_null(strstr(cap.text, "2 tasks wait for each other"));
    assert_non_null(strstr(cap.text, "task 'ab' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on mutex 'm2'"));
    assert_non_null(strstr(cap.text, "held by 'ba'"));
    assert_non_null(strstr(cap.text, "parked on mutex 'm1'"));
}

/* ---- false positive: a mutex holder that is runnable -------------------------------------- */

static int busy_holder(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &MX.m1, 1), 0);
    while (!ticker_stop)
        SL_AWAIT(t, rc, sl_sleep(t, SL_NS_PER_MS));   /* runnable again and again */
    sl_mutex_unlock(t, &MX.m1);
    (void)rc;
    SL_END(t);
}

static int lock_waiter(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, MX.rc2, sl_mutex_lock(t, &MX.m1, 2));
    sl_mutex_unlock(t, &MX.m1);
    SL_END(t);
}

static void holder_setup(sl_task *m)
{
    (void)m;
    sl_mutex_init(&MX.m1, NULL, "m1", 0);
    assert_int_equal(sl_spawn(NULL, busy_holder, NULL, NULL, NULL), 0);
    assert_int_equal(sl_spawn(NULL, lock_waiter, NULL, NULL, NULL), 0);
}

static void test_runnable_holder_is_not_deadlock(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = holder_setup, .quiet_ms = 200 };
    assert_int_equal(run_scen(&sc), 0);
    assert_int_equal(reports(), 0);
    assert_int_equal(MX.rc2, 0);
}

/* ---- 3. a pipeline stage and the only other holder of its channel -------------------------- */

typedef struct pl {
    sl_chan *in, *out;
    int v1, v2, rc1, rc2;
    sl_task *src, *stage;
} pl;

static pl PL;

static int pl_source(sl_task *t, void *arg)   /* holds in's sender, out's receiver */
{
    (void)arg;
    SL_BEGIN(t);
    /* waits for the stage's answer before feeding it: the bug */
    SL_AWAIT(t, PL.rc1, sl_chan_recv(t, PL.out, &PL.v1));
    SL_AWAIT(t, PL.rc1, sl_chan_send(t, PL.in, &PL.v1));
    SL_END(t);
}

static int pl_stage(sl_task *t, void *arg)    /* holds in's receiver, out's sender */
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, PL.rc2, sl_chan_recv(t, PL.in, &PL.v2));
    SL_AWAIT(t, PL.rc2, sl_chan_send(t, PL.out, &PL.v2));
    SL_END(t);
}

static void pl_setup(sl_task *m)
{
    (void)m;
    assert_int_equal(sl_chan_new(&PL.in, sizeof(int), 4, &(sl_chan_opts){ .name = "in" }), 0);
    assert_int_equal(sl_chan_new(&PL.out, sizeof(int), 4, &(sl_chan_opts){ .name = "out" }), 0);
    assert_int_equal(sl_spawn(NULL, pl_source, NULL, &PL.src, &(sl_spawn_opts){ .name = "source" }), 0);
    assert_int_equal(sl_spawn(NULL, pl_stage, NULL, &PL.stage, &(sl_spawn_opts){ .name = "stage" }), 0);
    assert_int_equal(sl_chan_attach(PL.in, PL.src, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(PL.out, PL.src, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(PL.in, PL.stage, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(PL.out, PL.stage, SL_CHAN_SENDER), 0);
}

static void test_pipeline_deadlock(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = pl_setup };
    assert_int_equal(run_scen(&sc), 4);
    print_message("found after %llu ms\n", (unsigned long long)(sc.found_after / SL_NS_PER_MS));
    assert_non_null(strstr(cap.text, "task 'stage' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on recv 'in'"));
    assert_non_null(strstr(cap.text, "parked on recv 'out'"));
}

/* ---- false positive: a counterpart holder that is running --------------------------------- */

static int slow_feeder(sl_task *t, void *arg)   /* holds in's sender, sleeps, then sends */
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, PL.rc1, sl_sleep(t, 150 * SL_NS_PER_MS));
    PL.v1 = 3;
    SL_AWAIT(t, PL.rc1, sl_chan_send(t, PL.in, &PL.v1));
    SL_END(t);
}

static int lone_reader(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, PL.rc2, sl_chan_recv(t, PL.in, &PL.v2));
    assert_int_equal(sl_chan_free(t, PL.in), 0);
    SL_END(t);
}

static void feeder_setup(sl_task *m)
{
    sl_task *f, *rd;
    assert_int_equal(sl_chan_new(&PL.in, sizeof(int), 0, &(sl_chan_opts){ .name = "in" }), 0);
    assert_int_equal(sl_spawn(NULL, slow_feeder, NULL, &f, NULL), 0);
    assert_int_equal(sl_spawn(NULL, lone_reader, NULL, &rd, NULL), 0);
    assert_int_equal(sl_chan_attach(PL.in, f, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(PL.in, rd, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_give(PL.in, m, rd), 0);
}

static void test_running_counterpart_is_not_deadlock(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = feeder_setup, .quiet_ms = 250 };
    assert_int_equal(run_scen(&sc), 0);
    assert_int_equal(reports(), 0);
    assert_int_equal(PL.v2, 3);
}

/* ---- 4. a select whose every case is part of the cycle ------------------------------------ */

typedef struct sx {
    sl_chan *c1, *c2, *c3;
    sl_case cs[2];
    int v, got, rc, rcb;
} sx;

static sx SX;

static int sx_a(sl_task *t, void *arg)   /* selects on c1, c2; would then send c3 */
{
    (void)arg;
    SL_BEGIN(t);
    SX.cs[0] = (sl_case){ .ch = SX.c1, .op = SL_RECV, .buf = &SX.got };
    SX.cs[1] = (sl_case){ .ch = SX.c2, .op = SL_RECV, .buf = &SX.got };
    SL_AWAIT(t, SX.rc, sl_select(t, SX.cs, 2, 0));
    SL_AWAIT(t, SX.rc, sl_chan_send(t, SX.c3, &SX.v));
    SL_END(t);
}

static int sx_b(sl_task *t, void *arg)   /* waits for c3 before sending on c1 or c2 */
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, SX.rcb, sl_chan_recv(t, SX.c3, &SX.v));
    SL_AWAIT(t, SX.rcb, sl_chan_send(t, SX.c1, &SX.v));
    SL_END(t);
}

static void sx_setup(sl_task *m)
{
    sl_task *a, *b;
    (void)m;
    assert_int_equal(sl_chan_new(&SX.c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_chan_new(&SX.c2, sizeof(int), 0, &(sl_chan_opts){ .name = "c2" }), 0);
    assert_int_equal(sl_chan_new(&SX.c3, sizeof(int), 0, &(sl_chan_opts){ .name = "c3" }), 0);
    assert_int_equal(sl_spawn(NULL, sx_a, NULL, &a, &(sl_spawn_opts){ .name = "selector" }), 0);
    assert_int_equal(sl_spawn(NULL, sx_b, NULL, &b, &(sl_spawn_opts){ .name = "b" }), 0);
    assert_int_equal(sl_chan_attach(SX.c1, a, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(SX.c2, a, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(SX.c3, a, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(SX.c1, b, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(SX.c2, b, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_chan_attach(SX.c3, b, SL_CHAN_RECEIVER), 0);
}

static void test_select_cycle(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 0);
    scen sc = { .setup = sx_setup };
    assert_int_equal(run_scen(&sc), 5);
    print_message("found after %llu ms\n", (unsigned long long)(sc.found_after / SL_NS_PER_MS));
    assert_non_null(strstr(cap.text, "task 'selector' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on select"));
    assert_non_null(strstr(cap.text, "parked on recv 'c3'"));
}

/* ---- stalls --------------------------------------------------------------------------------- */

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* How many reports so far contain `what`. */
static size_t reported(const char *what)
{
    pthread_mutex_lock(&cap_lock);
    size_t n = occurrences(cap.text, what);
    pthread_mutex_unlock(&cap_lock);
    return n;
}

/* Keeps the reactor in this step (a stall) until a report contains
 * `what`, at most 10 s; returns how many ms it held it. */
static uint64_t hog_until_reported(const char *what)
{
    uint64_t t0 = sl_now_ns();
    while (!reported(what) && sl_now_ns() - t0 < 10 * SL_NS_PER_S)
        ;
    return (sl_now_ns() - t0) / SL_NS_PER_MS;
}

/* Never returns to the reactor until its stall has been reported (at most
 * 30 s a step). It used to run a fixed 150 ms: on a loaded machine the
 * watchdog thread did not get the CPU twice within that window, or the
 * backtrace signal came after the hog had returned, and no stall of 'hog'
 * was seen. A stall reported without a backtrace (this thread did not run
 * the signal handler within the watchdog's 100 ms) is tried again, in a new
 * step, a few times. */
static int hog(sl_task *t, void *arg)
{
    int *tries = arg;
    SL_BEGIN(t);
    for (*tries = 0; *tries < 5 && !reported(HOG_SAYS); (*tries)++) {
        uint64_t end = sl_now_ns() + 30 * SL_NS_PER_S;
        while (!reported(HOG_SAYS) && reported(NO_BT) <= (size_t)*tries && sl_now_ns() < end)
            ;
        SL_YIELD(t);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_stall_reported_with_backtrace(void **s)
{
    (void)s;
    int tries = 0;
    rt = watch_rt(SL_DEADLOCK_REPORT, 20, 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), hog, &tries, &(sl_spawn_opts){ .name = "hog" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    sl_reactor_stats st;
    sl_reactor_stats_get(sl_runtime_reactor(rt, 0), &st);
    assert_int_equal(sl_runtime_free(rt), 0);
    /* counted, and reported once although the watchdog saw it on many ticks
     * (another, short step preempted past 20 ms on a busy machine is a
     * stall too: the count is at least one) */
    assert_true(st.stalls >= 1);
    assert_int_equal(occurrences(cap.text, HOG_SAYS), 1);
    assert_non_null(strstr(cap.text, "threshold 20 ms"));
    assert_non_null(strstr(cap.text, "Backtrace:\n  "));
}

static uint64_t stalls_of(sl_reactor *r)
{
    sl_reactor_stats st;
    sl_reactor_stats_get(r, &st);
    return st.stalls;
}

/* A task that stalls again and again is reported once a second, not once
 * per stall: the stalls are all counted, the log says how many it skipped.
 * Each of the 8 steps runs 60 ms and until the watchdog has counted it (at
 * most 20 s in all): a loaded machine gave the watchdog too few ticks
 * within the bare 60 ms. Once counted, the step goes on until the report is
 * in or 20 ms more have passed (a report held back as a repeat leaves no
 * trace): the watchdog asks for the backtrace only after it counted, and a
 * step that returned at once would have the signal land outside the hog. */
static int hog_again(sl_task *t, void *arg)
{
    int *i = arg;
    static uint64_t give_up;
    SL_BEGIN(t);
    give_up = sl_now_ns() + 20 * SL_NS_PER_S;
    for (*i = 0; *i < 8; (*i)++) {
        uint64_t end = sl_now_ns() + 60 * SL_NS_PER_MS, had = stalls_of(sl_task_reactor(t));
        while ((sl_now_ns() < end || stalls_of(sl_task_reactor(t)) == had) && sl_now_ns() < give_up)
            ;
        int seen = reports();
        end = sl_now_ns() + 20 * SL_NS_PER_MS;
        while (reports() == seen && sl_now_ns() < end)
            ;
        SL_YIELD(t);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_repeated_stalls_reported_once(void **s)
{
    (void)s;
    int i = 0;
    rt = watch_rt(SL_DEADLOCK_REPORT, 20, 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), hog_again, &i, &(sl_spawn_opts){ .name = "hog" }), 0);
    uint64_t t0 = sl_now_ns();
    assert_int_equal(sl_runtime_run(rt), 0);
    uint64_t took_ms = (sl_now_ns() - t0) / SL_NS_PER_MS;
    sl_reactor_stats st;
    sl_reactor_stats_get(sl_runtime_reactor(rt, 0), &st);
    assert_int_equal(sl_runtime_free(rt), 0);
    /* 8 stalls, each counted, and the hog reported once a second at most -
     * once in all when the run took under a second; a loaded machine can
     * stretch the yields between the stalls, so the bound is the run's own
     * length, not a fixed 1. The limit is on repeats of the last report: a
     * report with the backtrace of something else (another step preempted
     * past 20 ms on a busy machine, or a signal that landed after the hog
     * returned) starts it again, so each of those allows one more of the
     * hog's; a report without a backtrace does not. */
    assert_true(st.stalls >= 8);
    int said = stalls_said.hog, others = stalls_said.all - stalls_said.hog - stalls_said.no_bt;
    assert_true(said >= 1);
    if ((uint64_t)said > 1 + took_ms / 1000 + (uint64_t)others)
        fail_msg("%d stall reports of the hog (%d of anything) in a run of %llu ms: more than one a second",
                 said, stalls_said.all, (unsigned long long)took_ms);
}

static int short_steps(sl_task *t, void *arg)
{
    int *i = arg;
    SL_BEGIN(t);
    for (*i = 0; *i < 50; (*i)++)
        SL_AWAIT(t, t->wait_result_, sl_sleep(t, SL_NS_PER_MS));
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_no_stall_when_steps_are_short(void **s)
{
    (void)s;
    int i;
    rt = watch_rt(SL_DEADLOCK_REPORT, 200, 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), short_steps, &i, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(reports(), 0);
}

/* ---- the watchdog parks while every reactor is idle ---------------------------------------- */

#define NAPPER_SAYS "sluice: stall on reactor 1: task 'napper' (spawned at"

static struct {
    uint64_t slice_wakeups;   /* the watchdog's wake-ups over the idle slice that passed */
    int slices;               /* idle slices it took */
    int tries;                /* slices before the hog's, until one saw a park */
    bool parked_before_hog;   /* it parked in the sleep right before the hog's step */
    uint64_t hog_ms;
    uint64_t w0, p0;          /* napper's counts before a slice (a step's locals do not last) */
} nap;

static void watchdog_counts(sl_task *t, uint64_t *wakeups, uint64_t *parks)
{
    sl_reactor_stats st;
    sl_reactor_stats_get(sl_task_reactor(t), &st);
    *wakeups = st.watchdog_wakeups;
    *parks = st.watchdog_parks;
}

/* Sleeps 300 ms slices until one of them saw the watchdog park and wake
 * at most 3 times: woken by this task's turn, then, its last park having
 * been long (PARK_LONG_NS), one still tick of 5 ms before it parks again
 * (2 here, quiet); ticking, it woke 60 times a slice, and with four still
 * ticks before every park at least 5. At most 10 s of slices (the first
 * comes after no park yet). Then, after one more slice with a park, a step that
 * stalls until its stall is reported (at most 10 s): the watchdog was
 * parked as it began. */
static int napper(sl_task *t, void *arg)
{
    uint64_t w1, p1;
    (void)arg;
    SL_BEGIN(t);
    watchdog_counts(t, &nap.w0, &nap.p0);
    for (nap.slices = 1; nap.slices <= 33; nap.slices++) {
        SL_AWAIT(t, t->wait_result_, sl_sleep(t, 300 * SL_NS_PER_MS));
        watchdog_counts(t, &w1, &p1);
        nap.slice_wakeups = w1 - nap.w0;
        if (p1 > nap.p0 && w1 - nap.w0 <= 3)
            break;
        nap.w0 = w1;
        nap.p0 = p1;
    }
    /* until a slice in which it parked (one, unless a busy machine kept the
     * watchdog off its CPU for the whole slice; at most 33) */
    for (nap.tries = 0; nap.tries < 33 && !nap.parked_before_hog; nap.tries++) {
        watchdog_counts(t, &nap.w0, &nap.p0);
        SL_AWAIT(t, t->wait_result_, sl_sleep(t, 300 * SL_NS_PER_MS));
        watchdog_counts(t, &w1, &p1);
        nap.parked_before_hog = p1 > nap.p0;
    }
    nap.hog_ms = hog_until_reported(NAPPER_SAYS);
    sl_runtime_stop(rt);
    SL_END(t);
}

/* An idle runtime's watchdog parks (its wake-ups stop growing), and a
 * stall that begins after a long idle is still reported: the turn that
 * ran the step woke it. Two reactors, the task on the second: the first
 * stays idle throughout. Fails with a watchdog that ticks while idle (60
 * wake-ups a slice, no park), one that waits four still ticks after a long
 * park (5-6 a slice) or one that stays parked (no report). */
static void test_watchdog_parks_while_idle(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    memset(&nap, 0, sizeof nap);
    sl_runtime_opts o = { .threads = 2, .report = report, .report_arg = &cap, .stall_ms = 20 };
    assert_int_equal(sl_runtime_new(&rt, &o), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), napper, NULL, &(sl_spawn_opts){ .name = "napper" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    sl_reactor_stats st;
    sl_reactor_stats_get(sl_runtime_reactor(rt, 0), &st);
    assert_int_equal(sl_runtime_free(rt), 0);
    if (nap.slices > 33)
        fail_msg("the watchdog woke %llu times in the last 300 ms idle slice (of 33), parks %llu",
                 (unsigned long long)nap.slice_wakeups, (unsigned long long)st.watchdog_parks);
    assert_true(st.watchdog_parks >= 2);
    assert_true(nap.parked_before_hog);
    assert_true(reported(NAPPER_SAYS) >= 1);
    assert_true(nap.hog_ms < 10000);
}

/* ---- without membarrier the watchdog ticks and never parks ------------------------------------ */

#define UNPARKED_SAYS "sluice: stall on reactor 0: task 'unparked' (spawned at"

static struct {
    uint64_t w0, p0, wakeups, parks;   /* the watchdog's counts before and over the idle naps */
    int naps;
    uint64_t hog_ms;
} np;

/* Naps 50 ms at a time (idle) until the watchdog has woken 40 times since
 * the first (at most 200 naps: 10 s); ticking every 5 ms it takes 4 naps,
 * and a watchdog that parks would show its parks. Then a step that stalls
 * until its stall is reported (at most 10 s). */
static int unparked(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    watchdog_counts(t, &np.w0, &np.p0);
    for (np.naps = 1; np.naps <= 200; np.naps++) {
        SL_AWAIT(t, t->wait_result_, sl_sleep(t, 50 * SL_NS_PER_MS));
        watchdog_counts(t, &np.wakeups, &np.parks);
        if (np.wakeups - np.w0 >= 40)
            break;
    }
    np.hog_ms = hog_until_reported(UNPARKED_SAYS);
    sl_runtime_stop(rt);
    SL_END(t);
}

/* Where membarrier cannot be registered (an old kernel, a seccomp filter:
 * forced here by the tests' hook), the watchdog ticks every stall_ms/4
 * while idle, never parks, and still reports a stall. Fails with a
 * watchdog that parks anyway (it could miss a step's start: watch.c) or
 * that stops ticking. */
static void test_watchdog_without_membarrier(void **s)
{
    (void)s;
    memset(&np, 0, sizeof np);
    rt = watch_rt(SL_DEADLOCK_REPORT, 20, 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), unparked, NULL, &(sl_spawn_opts){ .name = "unparked" }), 0);
    sl__watch_test_no_membarrier(true);   /* read as the watchdog starts: in sl_runtime_run */
    int rc = sl_runtime_run(rt);
    sl__watch_test_no_membarrier(false);
    assert_int_equal(rc, 0);
    sl_reactor_stats st;
    sl_reactor_stats_get(sl_runtime_reactor(rt, 0), &st);
    assert_int_equal(sl_runtime_free(rt), 0);
    print_message("idle: %d naps of 50 ms for %llu wake-ups, %llu parks; stall reported after %llu ms\n",
                  np.naps, (unsigned long long)(np.wakeups - np.w0), (unsigned long long)np.parks,
                  (unsigned long long)np.hog_ms);
    assert_true(np.naps <= 200);            /* it ticked while idle */
    assert_int_equal(np.parks, 0);
    assert_int_equal(st.watchdog_parks, 0);
    assert_true(reported(UNPARKED_SAYS) >= 1);
    assert_true(np.hog_ms < 10000);
}

/* ---- busy polling --------------------------------------------------------------------------- */

static int spinner(sl_task *t, void *arg)
{
    sl_chan *ch;
    int v = 1;
    sl_case c;
    (void)arg;
    assert_int_equal(sl_chan_new(&ch, sizeof(int), 1, NULL), 0);
    c = (sl_case){ .ch = ch, .op = SL_RECV, .buf = &v };
    for (int i = 0; i < 900; i++)
        assert_int_equal(sl_select(t, &c, 1, SL_SELECT_DEFAULT), -EAGAIN);
    assert_int_equal(reports(), 0);
    assert_int_equal(sl_chan_try_send(t, ch, &v), 0);     /* progress: the count starts again */
    for (int i = 0; i < 900; i++)
        assert_int_equal(sl_chan_try_send(t, ch, &v), -EAGAIN);
    assert_int_equal(reports(), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(sl_chan_try_send(t, ch, &v), -EAGAIN);
    assert_int_equal(reports(), 1);                        /* the 1000th empty poll in a row */
    assert_int_equal(sl_chan_free(t, ch), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_busy_poll(void **s)
{
    (void)s;
    rt = watch_rt(SL_DEADLOCK_REPORT, -1, 1000);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), spinner, NULL, &(sl_spawn_opts){ .name = "spinner" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_non_null(strstr(cap.text, "sluice: busy poll on reactor 0: task 'spinner'"));
    assert_non_null(strstr(cap.text, "has polled 1000 times in a row"));
}

/* ---- the sink is never entered twice at once, stall reports included ------------------------- */

static _Atomic int sk_inside, sk_overlap, sk_stalls, sk_misuses;
static uint64_t sk_hog_ms;   /* how long noisy_hog ran */

/* Not thread-safe on purpose: it notices being entered twice. The short
 * pause only widens the window a racing second call would hit. */
static void serial_sink(const char *text, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&sk_inside, 1) != 0)
        atomic_store(&sk_overlap, 1);
    if (strstr(text, "sluice: stall on reactor"))
        atomic_fetch_add(&sk_stalls, 1);
    if (strstr(text, "misuse"))
        atomic_fetch_add(&sk_misuses, 1);
    usleep(200);
    atomic_fetch_sub(&sk_inside, 1);
}

/* Stalls for 150 ms (or more) while reporting misuse all the time: the watchdog's
 * stall report meets the reactor's own reports. */
static int noisy_hog(sl_task *t, void *arg)
{
    sl_chan *ch;
    (void)arg;
    assert_int_equal(sl_chan_new(&ch, sizeof(int), 0, &(sl_chan_opts){ .name = "twice" }), 0);
    assert_int_equal(sl_chan_close(t, ch), 0);
    /* 150 ms and at least 20 misuse reports, whichever comes last: the sink
     * naps 200 us a call, which a loaded machine stretched to the whole
     * 150 ms (10 reports or fewer, the test's claim failed); bounded by 10 s */
    uint64_t t0 = sl_now_ns(), end = t0 + 150 * SL_NS_PER_MS;
    /* and until the stall report is in: within the bare 150 ms a loaded
     * machine may not give the watchdog its ticks */
    while ((sl_now_ns() < end || atomic_load(&sk_misuses) < 20 || atomic_load(&sk_stalls) < 1) &&
           sl_now_ns() - t0 < 10 * SL_NS_PER_S)
        assert_int_equal(sl_chan_close(t, ch), -EALREADY);   /* a misuse report each */
    sk_hog_ms = (sl_now_ns() - t0) / SL_NS_PER_MS;
    assert_int_equal(sl_chan_free(t, ch), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_sink_calls_serialized(void **s)
{
    (void)s;
    sl_runtime_opts o = { .threads = 1, .report = serial_sink, .stall_ms = 20 };
    assert_int_equal(sl_runtime_new(&rt, &o), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), noisy_hog, NULL, &(sl_spawn_opts){ .name = "noisy" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_true(atomic_load(&sk_misuses) >= 20);
    /* one stall, reported once (a second), however long the hog took */
    int stalls = atomic_load(&sk_stalls);
    assert_true(stalls >= 1);
    if ((uint64_t)stalls > 1 + sk_hog_ms / 1000)
        fail_msg("%d stall reports for one hog of %llu ms", stalls, (unsigned long long)sk_hog_ms);
    assert_int_equal(atomic_load(&sk_overlap), 0);
}

/* ---- all asleep across reactors (issue 15) -------------------------------------------- */

/* Task a on reactor 0 receives from a channel of reactor 1, task b on
 * reactor 1 from a channel of reactor 0, reactor 2 has nothing to do: every
 * task of every reactor is asleep and only the check across reactors sees
 * it (a cross-reactor wait is a way out for the per-reactor checks). */
typedef struct xr {
    sl_chan *c0, *c1;
    int va, vb, rca, rcb;
    uint64_t sleep_ns;   /* b's sleep before it sends on c1 (no-deadlock case) */
    uint64_t late_ns;    /* a's busy first step before its receive: reactor 0 is late */
} xr;

static xr X;
static atomic_int xr_ended;   /* tasks a and b done (the no-deadlock cases) */

/* The no-deadlock cases: the second of a and b to end stops the run. a
 * stopped it as soon as it had its element, and b, readied on reactor 1
 * by the same pairing, could still be on its way to its end: a leak of 3
 * once in a full make check under ASan (load ~7, fifteenth stop). */
static void xr_end_one(void)
{
    if (atomic_fetch_add(&xr_ended, 1) == 1)
        sl_runtime_stop(rt);
}

static int xr_a(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    if (X.late_ns) {
        /* reactor 0 busy (a long step; the stall watchdog is off): a's
         * receive reaches c1's home after b has parked on its send */
        uint64_t t0 = sl_now_ns();
        while (sl_now_ns() - t0 < X.late_ns)
            ;
    }
    SL_AWAIT(t, X.rca, sl_chan_recv(t, X.c1, &X.va));
    if (X.sleep_ns)
        xr_end_one();   /* fed: the run is over once b is done too */
    SL_END(t);
}

static int xr_b(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    if (X.sleep_ns) {
        SL_AWAIT(t, X.rcb, sl_sleep(t, X.sleep_ns));
        X.vb = 42;
        SL_AWAIT(t, X.rcb, sl_chan_send(t, X.c1, &X.vb));
        xr_end_one();
    } else {
        SL_AWAIT(t, X.rcb, sl_chan_recv(t, X.c0, &X.vb));
    }
    SL_END(t);
}

/* Stops the runtime if it is still running after a generous bound: a
 * missing report fails the test's asserts instead of hanging it. */
static pthread_mutex_t bound_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bound_cond = PTHREAD_COND_INITIALIZER;
static bool bound_done, bound_fired;

static void *bound_main(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&bound_lock);
    while (!bound_done)
        if (pthread_cond_timedwait(&bound_cond, &bound_lock, &until)) {
            bound_fired = true;
            sl_runtime_stop(rt);
            break;
        }
    pthread_mutex_unlock(&bound_lock);
    return NULL;
}

static int run_xr_late(int policy, uint64_t sleep_ns, uint64_t late_ns, int *leaks)
{
    memset(&cap, 0, sizeof cap);
    memset(&X, 0, sizeof X);
    atomic_store(&xr_ended, 0);
    X.sleep_ns = sleep_ns;
    X.late_ns = late_ns;
    sl_runtime_opts o = { .threads = 3, .report = report, .report_arg = &cap, .deadlock_policy = policy,
                          .deadlock_check_ms = 20, .stall_ms = -1 };
    assert_int_equal(sl_runtime_new(&rt, &o), 0);
    sl_reactor *r0 = sl_runtime_reactor(rt, 0), *r1 = sl_runtime_reactor(rt, 1);
    assert_int_equal(sl_chan_new_on(r0, &X.c0, sizeof(int), 0, &(sl_chan_opts){ .name = "c0" }), 0);
    assert_int_equal(sl_chan_new_on(r1, &X.c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_spawn_on(r0, xr_a, NULL, &(sl_spawn_opts){ .name = "a" }), 0);
    assert_int_equal(sl_spawn_on(r1, xr_b, NULL, &(sl_spawn_opts){ .name = "b" }), 0);
    bound_done = bound_fired = false;
    pthread_t bound;
    assert_int_equal(pthread_create(&bound, NULL, bound_main, NULL), 0);
    int rc = sl_runtime_run(rt);
    pthread_mutex_lock(&bound_lock);
    bound_done = true;
    pthread_cond_signal(&bound_cond);
    pthread_mutex_unlock(&bound_lock);
    pthread_join(bound, NULL);
    *leaks = sl_runtime_free(rt);
    return rc;
}

static int run_xr(int policy, uint64_t sleep_ns, int *leaks)
{
    return run_xr_late(policy, sleep_ns, 0, leaks);
}

static void test_deadlock_across_reactors(void **s)
{
    (void)s;
    int leaks = 0;
    int rc = run_xr(SL_DEADLOCK_STOP, 0, &leaks);
    assert_false(bound_fired);                    /* found while it lasts, not at shutdown */
    assert_int_equal(rc, -EDEADLK);
    assert_non_null(strstr(cap.text, "sluice: deadlock on reactor 0: all 2 tasks of all 3 reactors are parked"));
    assert_non_null(strstr(cap.text, "sluice: deadlock on reactor 1: all 2 tasks of all 3 reactors are parked"));
    assert_non_null(strstr(cap.text, "task 'a' (spawned at"));
    assert_non_null(strstr(cap.text, "task 'b' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on remote 'c1'"));
    assert_non_null(strstr(cap.text, "parked on remote 'c0'"));
    /* one report per reactor with tasks, once: the episode is not reported again */
    char *second = strstr(strstr(cap.text, "reactor 0: all 2 tasks") + 1, "reactor 0: all 2 tasks");
    assert_null(second);
    assert_int_equal(leaks, 4);                   /* a, b, c0, c1 */
}

/* No false alarm: b sleeps (a timer is a way out) before it feeds a. */
static void test_remote_wait_fed_after_sleep_is_not_deadlock(void **s)
{
    (void)s;
    int leaks = 0;
    int rc = run_xr(SL_DEADLOCK_STOP, 150 * SL_NS_PER_MS, &leaks);
    if (rc || leaks != 2)
        fprintf(stderr, "%s", cap.text);   /* which check spoke, what was left */
    assert_false(bound_fired);
    assert_int_equal(rc, 0);
    assert_int_equal(X.rca, 0);
    assert_int_equal(X.va, 42);
    assert_null(strstr(cap.text, "deadlock"));
    assert_int_equal(leaks, 2);                   /* only the two channels */
}

/* The same, with reactor 0 late: b wakes, sends on c1 and parks there
 * (no receiver yet) before a's receive has reached c1's home. b is then
 * the only task of reactor 1, parked on a channel of its own reactor that
 * no other reactor has used yet: the wait-for check of reactor 1 took
 * that as a deadlock (no other task of reactor 1 lives), while a, on
 * reactor 0, was about to receive. Its first step stands for a reactor
 * that is slow to post (a loaded machine, TSan: issue 17, s14). */
static void test_remote_wait_posted_late_is_not_deadlock(void **s)
{
    (void)s;
    int leaks = 0;
    int rc = run_xr_late(SL_DEADLOCK_STOP, 30 * SL_NS_PER_MS, 150 * SL_NS_PER_MS, &leaks);
    if (rc || leaks != 2)
        fprintf(stderr, "%s", cap.text);   /* which check spoke, what was left */
    assert_false(bound_fired);
    assert_int_equal(rc, 0);
    assert_int_equal(X.rca, 0);
    assert_int_equal(X.va, 42);
    assert_null(strstr(cap.text, "deadlock"));
    assert_int_equal(leaks, 2);                   /* only the two channels */
}

int main(void)
{
    if (getenv("TEST_FILTER"))   /* one test: TEST_FILTER=test_name tests/test_watch */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_task_deadlock_while_others_run),
        cmocka_unit_test(test_cancel_policy_recovers),
        cmocka_unit_test(test_deadline_is_not_deadlock),
        cmocka_unit_test(test_mutex_order_deadlock),
        cmocka_unit_test(test_runnable_holder_is_not_deadlock),
        cmocka_unit_test(test_pipeline_deadlock),
        cmocka_unit_test(test_running_counterpart_is_not_deadlock),
        cmocka_unit_test(test_select_cycle),
        cmocka_unit_test(test_stall_reported_with_backtrace),
        cmocka_unit_test(test_no_stall_when_steps_are_short),
        cmocka_unit_test(test_repeated_stalls_reported_once),
        cmocka_unit_test(test_watchdog_without_membarrier),
        cmocka_unit_test(test_sink_calls_serialized),
        cmocka_unit_test(test_busy_poll),
        cmocka_unit_test(test_watchdog_parks_while_idle),
        cmocka_unit_test(test_deadlock_across_reactors),
        cmocka_unit_test(test_remote_wait_fed_after_sleep_is_not_deadlock),
        cmocka_unit_test(test_remote_wait_posted_late_is_not_deadlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
