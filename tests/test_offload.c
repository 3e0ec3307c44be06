/* test_offload.c: the blocking-work pool (core/sl_offload.h): results,
 * cancel while queued and while running, deadlines, the full queue, the
 * errors, shutdown with work running, results on the right reactor, and
 * what diagnostics show (/debug/tasks, /metrics, stalls, deadlocks).
 *
 * Blocking work here waits on a gate that the test opens: a worker never
 * sleeps a guessed time for the test to catch it in some state. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>
#include <event2/event.h>
#include "httputil.h"
#include "sl_offload.h"

static sl_runtime *rt;
static capture cap;

static sl_runtime *pool_rt(int reactors, int threads, int queue)
{
    memset(&cap, 0, sizeof cap);
    sl_runtime *r = NULL;
    sl_runtime_opts o = { .threads = reactors, .report = capture_report, .report_arg = &cap, .stall_ms = -1,
                          .offload_threads = threads, .offload_queue = queue };
    assert_int_equal(sl_runtime_new(&r, &o), 0);
    return r;
}

/* ---- a gate: work that blocks until the test opens it ------------------------------------- */

typedef struct gate {
    sem_t open;                 /* fn waits here (bounded: 10 s, then it fails the test) */
    _Atomic int started, finished, interrupted, abandoned, ran;
    _Atomic int abandon_result;
    int result;                 /* what fn returns */
    bool open_on_interrupt;     /* the interrupt hook opens the gate */
    sl_reactor *home;           /* where "started" and "abandoned" are told */
    sl_chan *told;              /* ... on this channel: 1 started, 2 abandoned */
} gate;

static void gate_init(gate *g, sl_reactor *home, sl_chan *told, int result)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(sem_init(&g->open, 0, 0), 0);
    g->home = home;
    g->told = told;
    g->result = result;
}

static void tell_started(void *arg)
{
    gate *g = arg;
    int v = 1;
    assert_int_equal(sl_chan_try_send(NULL, g->told, &v), 0);
}

static int gate_fn(void *arg)
{
    gate *g = arg;
    atomic_fetch_add(&g->started, 1);
    if (g->told)
        assert_int_equal(sl_reactor_post(g->home, tell_started, g), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    int rc = sem_timedwait(&g->open, &ts);
    atomic_fetch_add(&g->finished, 1);
    return rc == 0 ? g->result : -EIO;
}

static void gate_interrupt(void *arg)
{
    gate *g = arg;
    atomic_fetch_add(&g->interrupted, 1);
    if (g->open_on_interrupt)
        sem_post(&g->open);
}

static void gate_abandon(void *arg, int result)
{
    gate *g = arg;
    atomic_store(&g->abandon_result, result);
    atomic_fetch_add(&g->abandoned, 1);
    if (g->told && sl_reactor_current()) {
        int v = 2;
        assert_int_equal(sl_chan_try_send(NULL, g->told, &v), 0);
    }
}

static int count_fn(void *arg)
{
    gate *g = arg;
    atomic_fetch_add(&g->ran, 1);
    return g->result;
}

static const sl_offload_opts gate_opts = { .name = "gate", .interrupt = gate_interrupt, .abandon = gate_abandon };

/* A task that awaits one offload and ends with its result. */
typedef struct one {
    sl_offload_fn fn;
    void *arg;
    const sl_offload_opts *opts;
    int rc;
    sl_reactor *r;              /* where it ran before the wait */
    pthread_t th;
    bool same_place;            /* it resumed on the same reactor and thread */
} one;

static int one_task(sl_task *t, void *arg)
{
    one *o = arg;
    SL_BEGIN(t);
    o->r = sl_reactor_current();
    o->th = pthread_self();
    SL_AWAIT(t, o->rc, sl_offload(t, o->fn, o->arg, o->opts));
    o->same_place = sl_reactor_current() == o->r && pthread_equal(o->th, pthread_self());
    SL_RETURN(t, o->rc);
    SL_END(t);
}

typedef struct fixture {
    sl_chan *told;
    gate g1, g2, g3;
    one o1, o2, o3;
    sl_task *t1, *t2, *t3;
    int rc, res, v;
    uint64_t t0;
    sl_offload_stats st;
} fixture;

static fixture F;

static void fixture_free(void)
{
    sem_destroy(&F.g1.open);
    sem_destroy(&F.g2.open);
    sem_destroy(&F.g3.open);
}

/* Waits (bounded by the task's deadline) for one message on F.told. */
#define AWAIT_TOLD(t, want)                                                  \
    do {                                                                     \
        SL_AWAIT(t, F.rc, sl_chan_recv(t, F.told, &F.v));                    \
        assert_int_equal(F.rc, 0);                                           \
        assert_int_equal(F.v, (want));                                       \
    } while (0)

static void fixture_start(sl_task *t, int result1, int result2)
{
    sl_task_set_deadline(t, sl_now_ns() + 20 * SL_NS_PER_S);   /* the test's own bound */
    assert_int_equal(sl_chan_new(&F.told, sizeof(int), 16, &(sl_chan_opts){ .name = "told" }), 0);
    gate_init(&F.g1, sl_task_reactor(t), F.told, result1);
    gate_init(&F.g2, sl_task_reactor(t), F.told, result2);
    gate_init(&F.g3, sl_task_reactor(t), NULL, 0);
}

/* ---- the result comes back --------------------------------------------------------------- */

static int square(void *arg)
{
    int *v = arg;
    *v = *v * *v;
    return *v > 100 ? -ERANGE : *v;
}

static int result_main(sl_task *t, void *arg)
{
    static int v;
    (void)arg;
    SL_BEGIN(t);
    v = 7;
    SL_AWAIT(t, F.rc, sl_offload(t, square, &v, NULL));
    assert_int_equal(F.rc, 49);
    assert_int_equal(v, 49);
    v = 11;   /* an error result is the task's result too */
    SL_AWAIT(t, F.rc, sl_offload(t, square, &v, &(sl_offload_opts){ .name = "square" }));
    assert_int_equal(F.rc, -ERANGE);
    sl_offload_stats_get(sl_task_reactor(t) ? sl_reactor_runtime(sl_task_reactor(t)) : NULL, &F.st);
    assert_int_equal(F.st.submitted, 2);
    assert_int_equal(F.st.completed, 2);
    assert_int_equal(F.st.threads, 4);          /* the default, started at first use */
    assert_int_equal(F.st.threads_max, 4);
    assert_int_equal(F.st.queue_cap, 256);
    assert_int_equal(F.st.queued + F.st.running + F.st.rejected + F.st.dropped + F.st.abandoned, 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_result(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);   /* default pool options */
    sl_offload_stats st;
    assert_int_equal(sl_offload_stats_get(rt, &st), 0);
    assert_int_equal(st.threads, 0);   /* no thread before the first use */
    assert_int_equal(rt_run(rt, result_main, NULL), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- cancel while queued: the work never starts ------------------------------------------- */

static int cancel_queued_main(sl_task *t, void *arg)
{
    sl_task_info info;
    char line[256];
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 7, 8);
    /* one worker, busy with g1 */
    F.o1 = (one){ .fn = gate_fn, .arg = &F.g1, .opts = &gate_opts };
    assert_int_equal(sl_spawn(NULL, one_task, &F.o1, &F.t1, &(sl_spawn_opts){ .joinable = true }), 0);
    AWAIT_TOLD(t, 1);
    /* g2's work waits in the queue behind it */
    static const sl_offload_opts queued_opts = { .name = "queued-one", .abandon = gate_abandon,
                                                 .interrupt = gate_interrupt };
    F.o2 = (one){ .fn = count_fn, .arg = &F.g2, .opts = &queued_opts };
    assert_int_equal(sl_spawn(NULL, one_task, &F.o2, &F.t2, &(sl_spawn_opts){ .joinable = true, .name = "waiter" }), 0);
    SL_YIELD(t);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.queued, 1);
    assert_int_equal(F.st.running, 1);
    sl_task_info_get(F.t2, &info);
    assert_int_equal(info.status, SL_TASK_PARKED);
    assert_int_equal(info.wait, SL_WAIT_OFFLOAD);
    assert_string_equal(info.wait_name, "queued-one");
    sl_task_describe(F.t2, line, sizeof line);
    assert_non_null(strstr(line, "task 'waiter'"));
    assert_non_null(strstr(line, "parked on offload 'queued-one'"));
    /* cancelled: it ends at once, its arg is handed back unused */
    assert_int_equal(sl_task_cancel(F.t2, 0), 0);
    assert_int_equal(atomic_load(&F.g2.abandoned), 1);   /* in the cancel, before anything else runs */
    assert_int_equal(atomic_load(&F.g2.abandon_result), -ECANCELED);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t2, &F.res));
    assert_int_equal(F.res, -ECANCELED);
    AWAIT_TOLD(t, 2);   /* the abandon hook's note */
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.queued, 0);
    assert_int_equal(F.st.dropped, 1);
    /* the worker is free again: g1 completes, then a later item; the
     * queue is FIFO, so had g2's work been left there it would have run */
    sem_post(&F.g1.open);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t1, &F.res));
    assert_int_equal(F.res, 7);
    assert_true(F.o1.same_place);
    F.g3.result = 5;
    SL_AWAIT(t, F.rc, sl_offload(t, count_fn, &F.g3, NULL));
    assert_int_equal(F.rc, 5);
    assert_int_equal(atomic_load(&F.g2.ran), 0);           /* never started */
    assert_int_equal(atomic_load(&F.g2.interrupted), 0);   /* nothing to interrupt */
    assert_int_equal(atomic_load(&F.g1.abandoned), 0);     /* g1's task took its result */
    assert_int_equal(atomic_load(&F.g1.interrupted), 0);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.submitted, 3);
    assert_int_equal(F.st.completed, 2);
    assert_int_equal(F.st.abandoned, 0);
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_cancel_queued(void **s)
{
    (void)s;
    rt = pool_rt(1, 1, 0);
    assert_int_equal(rt_run(rt, cancel_queued_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    fixture_free();
}

/* ---- cancel while running: the task ends at once, the result is dropped -------------------- */

static int cancel_running_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 42, 0);
    F.o1 = (one){ .fn = gate_fn, .arg = &F.g1, .opts = &gate_opts };
    assert_int_equal(sl_spawn(NULL, one_task, &F.o1, &F.t1, &(sl_spawn_opts){ .joinable = true }), 0);
    AWAIT_TOLD(t, 1);
    assert_int_equal(sl_task_cancel(F.t1, 0), 0);
    assert_int_equal(atomic_load(&F.g1.interrupted), 1);   /* asked to stop, within the cancel */
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t1, &F.res));
    assert_int_equal(F.res, -ECANCELED);
    /* the task has ended while its work still runs */
    assert_int_equal(atomic_load(&F.g1.finished), 0);
    assert_int_equal(atomic_load(&F.g1.abandoned), 0);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.running, 1);
    assert_int_equal(F.st.abandoned, 1);
    /* when it returns, its result goes to the abandon hook, not to a task */
    sem_post(&F.g1.open);
    AWAIT_TOLD(t, 2);
    assert_int_equal(atomic_load(&F.g1.abandon_result), 42);
    assert_int_equal(atomic_load(&F.g1.abandoned), 1);
    assert_int_equal(atomic_load(&F.g1.interrupted), 1);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.running, 0);
    assert_int_equal(F.st.completed, 1);
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_cancel_running(void **s)
{
    (void)s;
    rt = pool_rt(1, 2, 0);
    assert_int_equal(rt_run(rt, cancel_running_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    fixture_free();
}

/* The task's arg is freed by the abandon hook after the task itself and
 * its state are gone: under ASan, a late result that touched either would
 * fail. */
typedef struct owned { gate *g; int *buf; } owned;

static int owned_fn(void *arg)
{
    owned *o = arg;
    int rc = gate_fn(o->g);
    o->buf[0] = rc;   /* the worker writes into arg after the task has gone */
    return rc;
}

static void owned_interrupt(void *arg)
{
    owned *o = arg;
    gate_interrupt(o->g);
}

static void owned_abandon(void *arg, int result)
{
    owned *o = arg;
    assert_int_equal(o->buf[0], result);
    gate_abandon(o->g, result);
    free(o->buf);
    free(o);
}

typedef struct short_lived { owned *o; int rc; } short_lived;

static sl_task *late_task;   /* valid while it waits for its work (not joinable: freed as it ends) */

static int short_lived_task(sl_task *t, void *arg)
{
    short_lived *sl = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, sl->rc, sl_offload(t, owned_fn, sl->o, &(sl_offload_opts){ .abandon = owned_abandon }));
    assert_int_equal(sl->rc, -ETIMEDOUT);
    SL_END(t);
}

static int late_result_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 9, 0);
    {
        owned *o = malloc(sizeof *o);
        short_lived *st = malloc(sizeof *st);
        assert_non_null(o);
        assert_non_null(st);
        o->g = &F.g1;
        o->buf = calloc(1, sizeof(int));
        st->o = o;
        assert_int_equal(sl_spawn(NULL, short_lived_task, st, &late_task, &(sl_spawn_opts){ .state_free = free }), 0);
    }
    AWAIT_TOLD(t, 1);
    /* The work runs: the task's wait ends as its deadline would end it.
     * (A deadline of 20 ms given at the spawn ended the wait before a
     * worker had taken the work, once, under a loaded full check: the work
     * was dropped unrun, and the abandon hook got -ECANCELED with nothing
     * written. The scene is the work outliving its task, so the wait ends
     * once the work is known to run.) */
    assert_int_equal(sl_task_cancel(late_task, -ETIMEDOUT), 0);
    /* wait until the task has gone, then let the work end */
    while (sl_reactor_task_count(sl_task_reactor(t)) > 1)
        SL_AWAIT(t, F.rc, sl_sleep(t, SL_NS_PER_MS));
    sem_post(&F.g1.open);
    AWAIT_TOLD(t, 2);
    assert_int_equal(atomic_load(&F.g1.abandon_result), 9);
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_late_result_after_task_freed(void **s)
{
    (void)s;
    rt = pool_rt(1, 1, 0);
    assert_int_equal(rt_run(rt, late_result_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    fixture_free();
}

/* ---- deadline ------------------------------------------------------------------------------ */

static int deadline_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 3, 0);
    F.o1 = (one){ .fn = gate_fn, .arg = &F.g1, .opts = &gate_opts };
    F.t0 = sl_now_ns();
    assert_int_equal(sl_spawn(NULL, one_task, &F.o1, &F.t1,
                              &(sl_spawn_opts){ .joinable = true, .deadline = F.t0 + 30 * SL_NS_PER_MS }), 0);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t1, &F.res));
    assert_int_equal(F.res, -ETIMEDOUT);
    assert_true(sl_now_ns() - F.t0 >= 30 * SL_NS_PER_MS);   /* not early */
    assert_int_equal(atomic_load(&F.g1.started), 1);
    assert_int_equal(atomic_load(&F.g1.finished), 0);      /* ended while the work ran */
    assert_int_equal(atomic_load(&F.g1.interrupted), 1);
    AWAIT_TOLD(t, 1);   /* its "started" note, still in the channel */
    sem_post(&F.g1.open);
    AWAIT_TOLD(t, 2);
    assert_int_equal(atomic_load(&F.g1.abandon_result), 3);
    /* a deadline already past: refused at once, nothing queued */
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.submitted, 1);
    sl_task_set_deadline(t, sl_now_ns() - 1);
    assert_int_equal(sl_offload(t, count_fn, &F.g2, NULL), -ETIMEDOUT);
    sl_task_set_deadline(t, sl_now_ns() + 20 * SL_NS_PER_S);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.submitted, 1);
    assert_int_equal(atomic_load(&F.g2.ran), 0);
    /* a deadline in the future that the work beats: the result */
    F.g2.result = 12;
    sl_task_set_deadline(t, sl_now_ns() + 10 * SL_NS_PER_S);
    SL_AWAIT(t, F.rc, sl_offload(t, count_fn, &F.g2, NULL));
    assert_int_equal(F.rc, 12);
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_deadline(void **s)
{
    (void)s;
    rt = pool_rt(1, 1, 0);
    assert_int_equal(rt_run(rt, deadline_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    fixture_free();
}

/* ---- a full queue: -EBUSY at once ---------------------------------------------------------- */

static int full_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 1, 2);
    /* one worker, busy; a queue of two, filled */
    F.o1 = (one){ .fn = gate_fn, .arg = &F.g1, .opts = &gate_opts };
    assert_int_equal(sl_spawn(NULL, one_task, &F.o1, &F.t1, &(sl_spawn_opts){ .joinable = true }), 0);
    AWAIT_TOLD(t, 1);
    F.g3.result = 3;
    F.o2 = (one){ .fn = count_fn, .arg = &F.g2 };
    F.o3 = (one){ .fn = count_fn, .arg = &F.g3 };
    assert_int_equal(sl_spawn(NULL, one_task, &F.o2, &F.t2, &(sl_spawn_opts){ .joinable = true }), 0);
    assert_int_equal(sl_spawn(NULL, one_task, &F.o3, &F.t3, &(sl_spawn_opts){ .joinable = true }), 0);
    SL_YIELD(t);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.queued, 2);
    /* the next is refused at once: the caller is not parked */
    assert_int_equal(sl_offload(t, count_fn, &F.g2, NULL), -EBUSY);
    assert_int_equal(sl_offload(t, count_fn, &F.g2, NULL), -EBUSY);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.rejected, 2);
    assert_int_equal(F.st.submitted, 3);
    /* the queue drains; everything queued runs */
    sem_post(&F.g1.open);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t1, &F.res));
    assert_int_equal(F.res, 1);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t2, &F.res));
    assert_int_equal(F.res, 2);
    SL_AWAIT(t, F.rc, sl_task_join(t, F.t3, &F.res));
    assert_int_equal(F.res, 3);
    assert_int_equal(atomic_load(&F.g2.ran), 1);   /* the refused ones never ran */
    /* and there is room again */
    SL_AWAIT(t, F.rc, sl_offload(t, count_fn, &F.g3, NULL));
    assert_int_equal(F.rc, 3);
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_full_queue_busy(void **s)
{
    (void)s;
    rt = pool_rt(1, 1, 2);
    assert_int_equal(rt_run(rt, full_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    fixture_free();
}

/* ---- bad calls ----------------------------------------------------------------------------- */

static int pending_fn(void *arg)
{
    (void)arg;
    return SL_PENDING;   /* not a result */
}

static int parked_task(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_task_park(t, NULL, NULL));
    SL_END(t);
}

static int errors_main(sl_task *t, void *arg)
{
    static int parked_rc = 1;
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 0, 0);
    assert_int_equal(sl_offload(t, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sl_offload(NULL, count_fn, &F.g2, NULL), -EINVAL);
    /* a task that is not the one running: it cannot be parked from here */
    assert_int_equal(sl_spawn(NULL, parked_task, &parked_rc, &F.t1, NULL), 0);
    assert_int_equal(sl_offload(F.t1, count_fn, &F.g2, NULL), -EINVAL);   /* ready */
    SL_YIELD(t);
    assert_int_equal(sl_offload(F.t1, count_fn, &F.g2, NULL), -EINVAL);   /* parked */
    assert_int_equal(sl_task_unpark(F.t1, 0), 0);
    SL_YIELD(t);
    assert_int_equal(parked_rc, 0);
    SL_AWAIT(t, F.rc, sl_offload(t, pending_fn, NULL, NULL));
    assert_int_equal(F.rc, -EINVAL);
    sl_chan_free(t, F.told);
    /* a cancelled task is refused at once; nothing is queued */
    sl_task_cancel(t, -EPIPE);
    assert_int_equal(sl_offload(t, count_fn, &F.g2, NULL), -EPIPE);
    sl_offload_stats_get(sl_reactor_runtime(sl_task_reactor(t)), &F.st);
    assert_int_equal(F.st.submitted, 1);
    assert_int_equal(atomic_load(&F.g2.ran), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int off_main(sl_task *t, void *arg)
{
    (void)arg;
    assert_int_equal(sl_offload(t, count_fn, &F.g2, NULL), -ENOTSUP);
    sl_runtime_stop(rt);
    return 0;
}

/* A task of reactor 1 handed to sl_offload on reactor 0. */
static sl_task *other_task;
static _Atomic int other_ready, other_done;

static int other_main(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    other_task = t;
    atomic_store(&other_ready, 1);
    SL_AWAIT(t, *rc, sl_task_park(t, NULL, NULL));
    atomic_store(&other_done, 1);
    SL_END(t);
}

static void other_release(void *arg)
{
    (void)arg;
    assert_int_equal(sl_task_unpark(other_task, 0), 0);
}

static int xdev_main(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 20 * SL_NS_PER_S);
    while (!atomic_load(&other_ready))
        SL_AWAIT(t, *rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(sl_offload(other_task, count_fn, &F.g2, NULL), -EXDEV);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), other_release, NULL), 0);
    while (!atomic_load(&other_done))
        SL_AWAIT(t, *rc, sl_sleep(t, SL_NS_PER_MS));
    sl_runtime_stop(rt);
    SL_END(t);
}

static int embedded_task(sl_task *t, void *arg)
{
    *(int *)arg = sl_offload(t, count_fn, &F.g2, NULL);
    return 0;
}

static void test_errors(void **s)
{
    (void)s;
    memset(&F, 0, sizeof F);
    rt = pool_rt(1, 1, 0);
    assert_int_equal(rt_run(rt, errors_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    /* the pool turned off */
    rt = pool_rt(1, -1, 0);
    sl_offload_stats st;
    assert_int_equal(sl_offload_stats_get(rt, &st), 0);
    assert_int_equal(st.threads_max, 0);
    assert_int_equal(sl_offload_stats_get(NULL, &st), -EINVAL);
    assert_int_equal(sl_offload_stats_get(rt, NULL), -EINVAL);
    assert_int_equal(rt_run(rt, off_main, NULL), 0);
    /* another reactor's task */
    rt = pool_rt(2, 1, 0);
    int rc_main = 0, rc_other = 1;
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), other_main, &rc_other, NULL), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), xdev_main, &rc_main, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(rc_other, 0);
    /* a reactor embedded in the caller's event_base has no runtime, no pool */
    struct event_base *base = event_base_new();
    sl_reactor *r;
    int rc = 1;
    assert_non_null(base);
    assert_int_equal(sl_reactor_new_on(&r, base, NULL), 0);
    assert_int_equal(sl_spawn(r, embedded_task, &rc, NULL, NULL), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(rc, -ENOTSUP);
    assert_int_equal(sl_reactor_free(r), 0);
    event_base_free(base);
    fixture_free();
}

/* sl_offload_start: the threads run before any work (so that the first
 * sl_offload's step does not pay for creating them); idempotent; errors. */
static void test_start_eagerly(void **s)
{
    (void)s;
    sl_offload_stats st;
    rt = pool_rt(1, 3, 0);
    assert_int_equal(sl_offload_stats_get(rt, &st), 0);
    assert_int_equal(st.threads, 0);   /* lazily: none yet */
    assert_int_equal(sl_offload_start(rt), 0);
    assert_int_equal(sl_offload_stats_get(rt, &st), 0);
    assert_int_equal(st.threads, 3);
    assert_int_equal(sl_offload_start(rt), 0);   /* again: nothing more */
    assert_int_equal(sl_offload_stats_get(rt, &st), 0);
    assert_int_equal(st.threads, 3);
    assert_int_equal(sl_runtime_free(rt), 0);
    rt = pool_rt(1, -1, 0);   /* the pool off */
    assert_int_equal(sl_offload_start(rt), -ENOTSUP);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(sl_offload_start(NULL), -EINVAL);
    rt = NULL;
}

/* ---- shutdown with work running ------------------------------------------------------------- */

static _Atomic int stuck_freed;

static void stuck_abandon(void *arg, int result)
{
    owned *o = arg;
    atomic_store(&o->g->abandon_result, result);
    atomic_fetch_add(&o->g->abandoned, 1);
    free(o->buf);
    free(o);
    atomic_fetch_add(&stuck_freed, 1);
}

static int stuck_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    fixture_start(t, 5, 0);
    F.g1.open_on_interrupt = true;
    {
        owned *o = malloc(sizeof *o);
        assert_non_null(o);
        o->g = &F.g1;
        o->buf = calloc(1, sizeof(int));
        static const sl_offload_opts stuck_opts = { .name = "stuck-io", .interrupt = owned_interrupt,
                                                    .abandon = stuck_abandon };
        F.o1 = (one){ .fn = owned_fn, .arg = o, .opts = &stuck_opts };
    }
    assert_int_equal(sl_spawn(NULL, one_task, &F.o1, NULL, &(sl_spawn_opts){ .name = "io" }), 0);
    AWAIT_TOLD(t, 1);
    F.g1.told = NULL;
    sl_chan_free(t, F.told);
    sl_runtime_stop(rt);   /* with the task parked and its work running */
    SL_END(t);
}

static void test_shutdown_with_work_running(void **s)
{
    (void)s;
    atomic_store(&stuck_freed, 0);
    rt = pool_rt(1, 2, 0);
    /* leaks: the task, and its work */
    assert_int_equal(rt_run(rt, stuck_main, NULL), 2);
    assert_non_null(strstr(cap.text, "sluice: leak: task 'io' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on offload 'stuck-io'"));
    assert_non_null(strstr(cap.text, "sluice: leak: offloaded work 'stuck-io' (submitted at "));
    assert_non_null(strstr(cap.text, "by task 'io') still running at shutdown"));
    /* asked to stop, waited for, its arg handed back (and freed: ASan) */
    assert_int_equal(atomic_load(&F.g1.interrupted), 1);
    assert_int_equal(atomic_load(&F.g1.finished), 1);
    assert_int_equal(atomic_load(&F.g1.abandoned), 1);
    assert_int_equal(atomic_load(&F.g1.abandon_result), 5);
    assert_int_equal(atomic_load(&stuck_freed), 1);
    fixture_free();
}

/* ---- results on the right reactor ----------------------------------------------------------- */

#define MANY_REACTORS 3
#define MANY_TASKS 8
#define MANY_ROUNDS 25

typedef struct many {
    int k, rc, v;
    sl_reactor *r;
    pthread_t th;
} many;

static _Atomic int many_left, many_wrong;

static int add_one(void *arg)
{
    many *m = arg;
    m->v++;   /* the worker owns the state while the task waits */
    return m->v;
}

static int many_task(sl_task *t, void *arg)
{
    many *m = arg;
    SL_BEGIN(t);
    m->r = sl_reactor_current();
    m->th = pthread_self();
    for (m->k = 0; m->k < MANY_ROUNDS; m->k++) {
        SL_AWAIT(t, m->rc, sl_offload(t, add_one, m, NULL));
        if (m->rc != m->k + 1 || m->v != m->k + 1 || sl_reactor_current() != m->r ||
            !pthread_equal(m->th, pthread_self()) || sl_task_current() != t)
            atomic_fetch_add(&many_wrong, 1);
    }
    if (atomic_fetch_sub(&many_left, 1) == 1)
        sl_runtime_stop(rt);
    SL_END(t);
}

static void test_results_on_their_reactor(void **s)
{
    (void)s;
    static many m[MANY_REACTORS][MANY_TASKS];
    memset(m, 0, sizeof m);
    atomic_store(&many_left, MANY_REACTORS * MANY_TASKS);
    atomic_store(&many_wrong, 0);
    rt = pool_rt(MANY_REACTORS, 2, 0);
    sl_reactor *home[MANY_REACTORS];
    for (int i = 0; i < MANY_REACTORS; i++)
        home[i] = sl_runtime_reactor(rt, i);
    for (int i = 0; i < MANY_REACTORS; i++)
        for (int j = 0; j < MANY_TASKS; j++)
            assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, i), many_task, &m[i][j], NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    sl_offload_stats st;
    sl_offload_stats_get(rt, &st);
    assert_int_equal(st.submitted, MANY_REACTORS * MANY_TASKS * MANY_ROUNDS);
    assert_int_equal(st.completed, MANY_REACTORS * MANY_TASKS * MANY_ROUNDS);
    assert_int_equal(st.threads, 2);
    assert_true(st.run_ns > 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(atomic_load(&many_wrong), 0);
    for (int i = 0; i < MANY_REACTORS; i++)
        for (int j = 0; j < MANY_TASKS; j++) {
            assert_ptr_equal(m[i][j].r, home[i]);
            assert_int_equal(m[i][j].v, MANY_ROUNDS);
        }
    assert_int_equal(cap.count, 0);
}

/* ---- a parked offload is neither a stall nor a deadlock ------------------------------------- */

static int usleep_fn(void *arg)
{
    usleep((useconds_t)(uintptr_t)arg);   /* the blocking call itself, on a worker */
    return 0;
}

static int quiet_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    /* 300 ms of blocking work, parked with no deadline: the watchdog (20 ms)
     * and the wait-for check (every 20 ms) look at it all the while */
    SL_AWAIT(t, F.rc, sl_offload(t, usleep_fn, (void *)(uintptr_t)300000, &(sl_offload_opts){ .name = "slow" }));
    assert_int_equal(F.rc, 0);
    assert_int_equal(sl_reactor_check_deadlock(sl_task_reactor(t)), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

/* The same call, made in a step: blocks until the watchdog has counted the
 * stall and its backtrace signal has landed here (usleep fails EINTR), at
 * most 30 s. It used to block a fixed 300 ms: on a loaded machine the
 * watchdog thread did not get the CPU twice within it, and no stall was
 * counted (stalls 0 != 1, seen once beside a chrt -f 10 benchmark). */
static int blocking_main(sl_task *t, void *arg)
{
    (void)arg;
    uint64_t end = sl_now_ns() + 30 * SL_NS_PER_S;
    bool signalled = false;
    while (!signalled && sl_now_ns() < end) {
        int rc = usleep(1000), e = errno;
        sl_reactor_stats st;
        sl_reactor_stats_get(sl_task_reactor(t), &st);   /* counted before the signal was sent */
        signalled = rc != 0 && e == EINTR && st.stalls > 0;
    }
    sl_runtime_stop(rt);
    return 0;
}

static int parked_check(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, F.rc, sl_offload(t, usleep_fn, (void *)(uintptr_t)100000, NULL));
    SL_END(t);
}

static int check_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    /* the only other task is parked on offload: no deadlock, from either check */
    assert_int_equal(sl_spawn(NULL, parked_check, NULL, NULL, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(sl_reactor_check_waits(sl_task_reactor(t)), 0);
    while (sl_reactor_task_count(sl_task_reactor(t)) > 1) {
        assert_int_equal(sl_reactor_check_deadlock(sl_task_reactor(t)), 0);
        SL_AWAIT(t, F.rc, sl_sleep(t, 5 * SL_NS_PER_MS));
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static sl_runtime *watched_rt(void)
{
    memset(&cap, 0, sizeof cap);
    sl_runtime *r = NULL;
    sl_runtime_opts o = { .threads = 1, .report = capture_report, .report_arg = &cap, .stall_ms = 20,
                          .deadlock_check_ms = 20, .offload_threads = 1 };
    assert_int_equal(sl_runtime_new(&r, &o), 0);
    return r;
}

static void test_no_stall_no_deadlock(void **s)
{
    (void)s;
    sl_reactor_stats st;
    /* the watchdog is on: the call made in a step is a stall */
    rt = watched_rt();
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), blocking_main, NULL, &(sl_spawn_opts){ .name = "blocker" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    sl_reactor_stats_get(sl_runtime_reactor(rt, 0), &st);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(st.stalls, 1);
    assert_non_null(strstr(cap.text, "sluice: stall on reactor 0: task 'blocker'"));
    /* the same call offloaded: no stall, no deadlock */
    rt = watched_rt();
    assert_int_equal(rt_run(rt, quiet_main, NULL), 0);
    assert_int_equal(cap.count, 0);
    rt = watched_rt();
    assert_int_equal(rt_run(rt, check_main, NULL), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- /debug/tasks and /metrics -------------------------------------------------------------- */

static gate hg;
static test_srv TS;

typedef struct slow_st { int rc; } slow_st;

static int h_slow(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    slow_st *st = sl_http_req_state(req);
    SL_BEGIN(t);
    SL_AWAIT(t, st->rc, sl_offload(t, gate_fn, &hg, &(sl_offload_opts){ .name = "slow-io" }));
    char body[32];
    int n = snprintf(body, sizeof body, "got %d", st->rc);
    sl_http_reply(req, 200, "text/plain", body, (size_t)n);
    SL_END(t);
}

static void test_debug_and_metrics(void **s)
{
    (void)s;
    resp r;
    gate_init(&hg, NULL, NULL, 17);
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/slow", h_slow, sizeof(slow_st), NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 10000 && !atomic_load(&hg.started); i++)
        usleep(1000);   /* waits for the event, up to 10 s */
    assert_int_equal(atomic_load(&hg.started), 1);
    assert_int_equal(get(TS.port, "/debug/tasks", &r), 200);
    assert_non_null(strstr(r.body, "\"waits_on\":\"offload\""));
    assert_non_null(strstr(r.body, "\"wait_object\":\"slow-io\""));
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "\nsluice_offload_running 1\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_queue_depth 0\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_queue_capacity 256\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_threads{state=\"max\"} 4\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_calls_total{result=\"accepted\"} 1\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_calls_total{result=\"completed\"} 0\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_wait_seconds_count 1\n"));
    sem_post(&hg.open);
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "got 17");
    close(fd);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "\nsluice_offload_running 0\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_calls_total{result=\"completed\"} 1\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_run_seconds_count 1\n"));
    assert_non_null(strstr(r.body, "\nsluice_offload_calls_total{result=\"rejected\"} 0\n"));
    srv_stop(&TS);
    sem_destroy(&hg.open);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_running),
        cmocka_unit_test(test_late_result_after_task_freed),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_full_queue_busy),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_start_eagerly),
        cmocka_unit_test(test_shutdown_with_work_running),
        cmocka_unit_test(test_results_on_their_reactor),
        cmocka_unit_test(test_no_stall_no_deadlock),
        cmocka_unit_test(test_debug_and_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
