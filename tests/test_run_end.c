/* test_run_end.c: how a program ends: sl_runtime_opts.stop_when_done and
 * the SL_DEADLOCK_STOP policy (issue 18).
 *
 * Without them sl_runtime_run() never returns here: a watchdog thread
 * therefore stops the runtime after a generous bound, and the test fails
 * instead of hanging. The run itself stays on the test's thread, where
 * reactor 0's tasks may assert. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include "testutil.h"

enum { RUN_BOUND_S = 20 };

typedef struct watchdog {
    sl_runtime *rt;
    bool done, fired;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} watchdog;

static void *watch_thread(void *arg)
{
    watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RUN_BOUND_S;
    pthread_mutex_lock(&w->mu);
    int e = 0;
    while (!w->done && e == 0)
        e = pthread_cond_timedwait(&w->cv, &w->mu, &until);
    if (!w->done) {
        w->fired = true;
        sl_runtime_stop(w->rt);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* sl_runtime_run, failing the test if it has not returned by itself
 * within RUN_BOUND_S. */
static int run_bounded(sl_runtime *rt)
{
    watchdog w = { .rt = rt };
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, watch_thread, &w), 0);
    int rc = sl_runtime_run(rt);
    pthread_mutex_lock(&w.mu);
    w.done = true;
    pthread_cond_signal(&w.cv);
    pthread_mutex_unlock(&w.mu);
    pthread_join(th, NULL);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (w.fired)
        fail_msg("sl_runtime_run did not return by itself within %d s", RUN_BOUND_S);
    return rc;
}

static sl_runtime *rt_done(int threads, int policy, capture *cap)
{
    memset(cap, 0, sizeof *cap);
    sl_runtime *rt = NULL;
    assert_int_equal(sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = threads, .stop_when_done = true,
                                                             .deadlock_policy = policy, .stall_ms = -1,
                                                             .report = capture_report, .report_arg = cap }), 0);
    return rt;
}

/* ---- stop_when_done --------------------------------------------------------------------- */

/* A chain of tasks hopping between two reactors: each sleeps a little,
 * then spawns the next one on the other reactor (sl_spawn_on) and ends. No
 * moment has no task: the next is counted from its sl_spawn_on. */
typedef struct hop {
    sl_runtime *rt;
    _Atomic int ran, bad;   /* reactor 1 runs on another thread: no asserts there */
    _Atomic int left;
    int rc;
} hop;

static int hop_step(sl_task *t, void *arg)
{
    hop *h = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, h->rc, sl_sleep(t, 2 * SL_NS_PER_MS));
    if (h->rc != 0)
        atomic_fetch_add(&h->bad, 1);
    atomic_fetch_add(&h->ran, 1);
    if (atomic_fetch_sub(&h->left, 1) > 1) {
        sl_reactor *other = sl_runtime_reactor(h->rt, 1 - sl_reactor_id(sl_task_reactor(t)));
        if (sl_spawn_on(other, hop_step, h, NULL) != 0)
            atomic_fetch_add(&h->bad, 1);
    }
    SL_END(t);
}

static void test_done_returns_when_last_task_ends(void **s)
{
    (void)s;
    capture cap;
    sl_runtime *rt = rt_done(2, SL_DEADLOCK_REPORT, &cap);
    hop h = { .rt = rt, .left = 10 };
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), hop_step, &h, NULL), 0);
    assert_int_equal(run_bounded(rt), 0);
    assert_int_equal(atomic_load(&h.ran), 10);   /* not one hop lost to an early stop */
    assert_int_equal(atomic_load(&h.bad), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(cap.count, 0);
}

/* Tasks spawned directly (sl_spawn, joinable and not) and a sleeper that
 * outlives its spawner: the run ends with the last of them. */
typedef struct fam {
    sl_task *kid;
    int kid_rc, rc;
    _Atomic int ended;
} fam;

static int kid_step(sl_task *t, void *arg)
{
    fam *f = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, f->rc, sl_sleep(t, 20 * SL_NS_PER_MS));
    atomic_fetch_add(&f->ended, 1);
    SL_RETURN(t, 7);
    SL_END(t);
}

static int late_step(sl_task *t, void *arg)
{
    fam *f = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, f->rc, sl_sleep(t, 50 * SL_NS_PER_MS));
    atomic_fetch_add(&f->ended, 1);
    SL_END(t);
}

static int fam_main(sl_task *t, void *arg)
{
    fam *f = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_spawn(NULL, kid_step, f, &f->kid, &(sl_spawn_opts){ .joinable = true }), 0);
    assert_int_equal(sl_spawn(NULL, late_step, f, NULL, NULL), 0);
    SL_AWAIT(t, f->rc, sl_task_join(t, f->kid, &f->kid_rc));
    assert_int_equal(f->rc, 0);
    assert_int_equal(f->kid_rc, 7);
    atomic_fetch_add(&f->ended, 1);
    SL_END(t);   /* late_step still sleeps: the run goes on */
}

static void test_done_waits_for_every_task(void **s)
{
    (void)s;
    capture cap;
    sl_runtime *rt = rt_done(1, SL_DEADLOCK_REPORT, &cap);
    fam f = { 0 };
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), fam_main, &f, NULL), 0);
    assert_int_equal(run_bounded(rt), 0);
    assert_int_equal(atomic_load(&f.ended), 3);
    assert_int_equal(sl_runtime_free(rt), 0);
}

static void test_done_with_no_task_returns_at_once(void **s)
{
    (void)s;
    capture cap;
    sl_runtime *rt = rt_done(2, SL_DEADLOCK_REPORT, &cap);
    assert_int_equal(run_bounded(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* Without the option, the end of the last task is not the end of the run. */
static int stop_later(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_sleep(t, 30 * SL_NS_PER_MS));
    sl_runtime_stop(sl_reactor_runtime(sl_task_reactor(t)));
    SL_END(t);
}

static int ends_at_once(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    return 0;
}

static void test_without_done_run_waits_for_stop(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    int rc = -1;
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), ends_at_once, NULL, NULL), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), stop_later, &rc, NULL), 0);
    uint64_t t0 = sl_now_ns();
    assert_int_equal(run_bounded(rt), 0);
    /* it returned because stop_later stopped it, after its sleep */
    assert_int_equal(rc, 0);
    assert_true(sl_now_ns() - t0 >= 30 * SL_NS_PER_MS);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- SL_DEADLOCK_STOP ------------------------------------------------------------------- */

typedef struct dl {
    sl_chan *c1, *c2;
    int v1, v2, rc1, rc2;
} dl;

static int dl_a(sl_task *t, void *arg)   /* sends on c1, then would receive on c2 */
{
    dl *d = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, d->rc1, sl_chan_send(t, d->c1, &d->v1));
    SL_AWAIT(t, d->rc1, sl_chan_recv(t, d->c2, &d->v1));
    SL_END(t);
}

static int dl_b(sl_task *t, void *arg)   /* sends on c2, then would receive on c1 */
{
    dl *d = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, d->rc2, sl_chan_send(t, d->c2, &d->v2));
    SL_AWAIT(t, d->rc2, sl_chan_recv(t, d->c1, &d->v2));
    SL_END(t);
}

static int dl_main(sl_task *t, void *arg)
{
    dl *d = arg;
    (void)t;
    assert_int_equal(sl_chan_new(&d->c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_chan_new(&d->c2, sizeof(int), 0, &(sl_chan_opts){ .name = "c2" }), 0);
    assert_int_equal(sl_spawn(NULL, dl_a, d, NULL, &(sl_spawn_opts){ .name = "a" }), 0);
    assert_int_equal(sl_spawn(NULL, dl_b, d, NULL, &(sl_spawn_opts){ .name = "b" }), 0);
    return 0;
}

static void test_deadlock_stop_ends_the_run(void **s)
{
    (void)s;
    capture cap;
    sl_runtime *rt = rt_done(1, SL_DEADLOCK_STOP, &cap);
    dl d = { 0 };
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), dl_main, &d, NULL), 0);
    assert_int_equal(run_bounded(rt), -EDEADLK);
    assert_non_null(strstr(cap.text, "sluice: deadlock on reactor 0: all 2 tasks are parked"));
    assert_non_null(strstr(cap.text, "stopping the runtime (SL_DEADLOCK_STOP)"));
    /* the two stuck tasks and their channels are reported and freed */
    assert_int_equal(sl_runtime_free(rt), 4);
    assert_non_null(strstr(cap.text, "sluice: leak: task 'a'"));
}

/* A server's shape: no stop_when_done, the policy alone ends the run. */
static void test_deadlock_stop_without_done(void **s)
{
    (void)s;
    capture cap = { 0 };
    sl_runtime *rt = NULL;
    assert_int_equal(sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .deadlock_policy = SL_DEADLOCK_STOP,
                                                             .stall_ms = -1, .report = capture_report,
                                                             .report_arg = &cap }), 0);
    dl d = { 0 };
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), dl_main, &d, NULL), 0);
    assert_int_equal(run_bounded(rt), -EDEADLK);
    assert_int_equal(sl_runtime_free(rt), 4);
}

static void test_bad_policy_rejected(void **s)
{
    (void)s;
    sl_runtime *rt = NULL;
    assert_int_equal(sl_runtime_new(&rt, &(sl_runtime_opts){ .deadlock_policy = SL_DEADLOCK_STOP + 1 }), -EINVAL);
    assert_int_equal(sl_runtime_new(&rt, &(sl_runtime_opts){ .deadlock_policy = -1 }), -EINVAL);
    assert_null(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done_returns_when_last_task_ends),
        cmocka_unit_test(test_done_waits_for_every_task),
        cmocka_unit_test(test_done_with_no_task_returns_at_once),
        cmocka_unit_test(test_without_done_run_waits_for_stop),
        cmocka_unit_test(test_deadlock_stop_ends_the_run),
        cmocka_unit_test(test_deadlock_stop_without_done),
        cmocka_unit_test(test_bad_policy_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
