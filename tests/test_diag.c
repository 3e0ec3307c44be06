/* test_diag.c: deadlock reports, no false alarms, leak reports. */
#include <unistd.h>
#include <event2/event.h>
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

static void stop_on_report(const char *text, void *arg)
{
    capture_report(text, arg);
    if (!strncmp(text, "sluice: deadlock", 16))
        sl_runtime_stop(rt);
}

static sl_runtime *rt_stopping(void)
{
    memset(&cap, 0, sizeof cap);
    sl_runtime *r = NULL;
    /* No stall watchdog (its default is on, 10 ms): on a loaded machine a
     * descheduled reactor is reported as a stall, and the report's backtrace
     * names functions such as sl__deadlock_maybe - which read as a deadlock
     * report to a test that looked for the bare word (it stopped the run and
     * failed test_io_is_a_way_out once). Reports are matched by their start,
     * "sluice: deadlock", for the same reason. */
    assert_int_equal(sl_runtime_new(&r, &(sl_runtime_opts){ .threads = 1, .report = stop_on_report, .report_arg = &cap,
                                                           .stall_ms = -1 }), 0);
    return r;
}

/* ---- the seed's deadlockExample -------------------------------------------------------- */

typedef struct dl {
    sl_chan *c1, *c2;
    int v1, v2, rc1, rc2;
} dl;

static dl D;

static int task_a(sl_task *t, void *arg)   /* sends on c1, then would receive on c2 */
{
    (void)arg;
    SL_BEGIN(t);
    D.v1 = 1;
    SL_AWAIT(t, D.rc1, sl_chan_send(t, D.c1, &D.v1));
    SL_AWAIT(t, D.rc1, sl_chan_recv(t, D.c2, &D.v1));
    SL_END(t);
}

static int task_b(sl_task *t, void *arg)   /* sends on c2, then would receive on c1 */
{
    (void)arg;
    SL_BEGIN(t);
    D.v2 = 2;
    SL_AWAIT(t, D.rc2, sl_chan_send(t, D.c2, &D.v2));
    SL_AWAIT(t, D.rc2, sl_chan_recv(t, D.c1, &D.v2));
    SL_END(t);
}

static int dl_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    assert_int_equal(sl_chan_new(&D.c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_chan_new(&D.c2, sizeof(int), 0, &(sl_chan_opts){ .name = "c2" }), 0);
    assert_int_equal(sl_spawn(NULL, task_a, NULL, NULL, &(sl_spawn_opts){ .name = "a" }), 0);
    assert_int_equal(sl_spawn(NULL, task_b, NULL, NULL, &(sl_spawn_opts){ .name = "b" }), 0);
    return 0;
}

static void test_deadlock_example_reported(void **s)
{
    (void)s;
    rt = rt_stopping();
    memset(&D, 0, sizeof D);
    int leaks = rt_run(rt, dl_main, NULL);
    /* one report naming both tasks, where they were spawned and what they wait on */
    assert_non_null(strstr(cap.text, "sluice: deadlock on reactor 0: all 2 tasks are parked"));
    assert_non_null(strstr(cap.text, "task 'a' (spawned at"));
    assert_non_null(strstr(cap.text, "task 'b' (spawned at"));
    assert_non_null(strstr(cap.text, "test_diag.c:"));
    assert_non_null(strstr(cap.text, "parked on send 'c1'"));
    assert_non_null(strstr(cap.text, "parked on send 'c2'"));
    /* at shutdown both tasks and both channels are reported as leaked */
    assert_int_equal(leaks, 4);
    assert_non_null(strstr(cap.text, "sluice: leak: task 'a'"));
    assert_non_null(strstr(cap.text, "sluice: leak: channel 'c1'"));
    char *first = strstr(cap.text, "sluice: deadlock");
    assert_null(strstr(first + 1, "sluice: deadlock"));   /* reported once */
}

/* ---- no false alarm: a deadline is a way out ---------------------------------------------- */

typedef struct fa {
    sl_chan *c;
    int v, rc_a, rc_b, i;
} fa;

static fa F;

static int waits_forever_but_is_fed(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, F.rc_a, sl_chan_recv(t, F.c, &F.v));
    assert_int_equal(sl_chan_free(t, F.c), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int times_out_then_feeds(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 30 * SL_NS_PER_MS);
    SL_AWAIT(t, F.rc_b, sl_chan_recv(t, F.c, &F.v));
    assert_int_equal(F.rc_b, -ETIMEDOUT);
    sl_task_set_deadline(t, 0);
    F.v = 5;
    SL_AWAIT(t, F.rc_b, sl_chan_send(t, F.c, &F.v));
    SL_END(t);
}

static int fa_main(sl_task *t, void *arg)
{
    sl_task *fed;
    (void)arg;
    assert_int_equal(sl_chan_new(&F.c, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_spawn(NULL, waits_forever_but_is_fed, NULL, &fed, NULL), 0);
    assert_int_equal(sl_chan_give(F.c, t, fed), 0);   /* it frees the channel */
    assert_int_equal(sl_spawn(NULL, times_out_then_feeds, NULL, NULL, NULL), 0);
    return 0;
}

static void test_deadline_is_a_way_out(void **s)
{
    (void)s;
    rt = rt_stopping();
    memset(&F, 0, sizeof F);
    assert_int_equal(rt_run(rt, fa_main, NULL), 0);
    assert_int_equal(F.rc_a, 0);
    assert_int_equal(F.v, 5);
    assert_null(strstr(cap.text, "sluice: deadlock"));
}

/* ---- no false alarm: a socket event on the base could wake them ------------------------------ */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sl_runtime_stop(rt);
}

typedef struct ev_st {
    sl_chan *c;
    int v, rc;
    struct event *user, *timer;
    int fds[2];
} ev_st;

static ev_st E;

static int parked_on_io_fed_channel(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, E.rc, sl_chan_recv(t, E.c, &E.v));
    SL_END(t);
}

static int ev_main(sl_task *t, void *arg)
{
    (void)arg;
    (void)t;
    struct event_base *base = sl_reactor_base(sl_task_reactor(t));
    assert_int_equal(pipe(E.fds), 0);
    E.user = event_new(base, E.fds[0], EV_READ | EV_PERSIST, stop_cb, NULL);
    event_add(E.user, NULL);
    E.timer = evtimer_new(base, stop_cb, NULL);
    struct timeval tv = { 0, 30000 };
    evtimer_add(E.timer, &tv);
    assert_int_equal(sl_chan_new(&E.c, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_chan_give(E.c, t, NULL), 0);
    assert_int_equal(sl_spawn(NULL, parked_on_io_fed_channel, NULL, NULL, NULL), 0);
    return 0;
}

/* The reactor's own check (at each turn's end) counts an event on the base
 * as a way out. The periodic wait-for check (every deadlock_check_ms) does
 * not look at the base: a task parked on a channel nobody holds, with no
 * other task, is a deadlock to it. It is off here: the scene used to end
 * (the 30 ms timer) before its first look at 250 ms, which a loaded machine
 * broke (the reactor ran both at once: "1 task waits for each other while
 * 0 others run"; the same with the timer at 300 ms, every time). */
static void test_io_is_a_way_out(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    assert_int_equal(sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .report = stop_on_report,
                                                             .report_arg = &cap, .deadlock_check_ms = -1 }), 0);
    memset(&E, 0, sizeof E);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), ev_main, NULL, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_null(strstr(cap.text, "sluice: deadlock"));
    assert_int_equal(sl_reactor_check_deadlock(sl_runtime_reactor(rt, 0)), 0);
    event_free(E.user);
    event_free(E.timer);
    close(E.fds[0]);
    close(E.fds[1]);
    /* without the events, the same state is a deadlock */
    assert_int_equal(sl_reactor_check_deadlock(sl_runtime_reactor(rt, 0)), 1);
    assert_non_null(strstr(cap.text, "all 1 tasks are parked"));
    assert_int_equal(sl_chan_free(NULL, E.c), 0);
    /* freeing the channel woke the task, but the reactor has stopped: it
     * never ran again and is reported, ready, as leaked */
    assert_int_equal(sl_runtime_free(rt), 1);
    assert_non_null(strstr(cap.text, "sluice: leak: task '' (spawned at"));
    assert_non_null(strstr(cap.text, ") ready, still alive"));
}

/* ---- a task left parked at shutdown is a reported leak ----------------------------------------- */

static int sleeps_long(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_sleep(t, 3600 * SL_NS_PER_S));
    (void)rc;
    SL_END(t);
}

static int leak_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    assert_int_equal(sl_spawn(NULL, sleeps_long, NULL, NULL, &(sl_spawn_opts){ .name = "forgotten" }), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_leak_report(void **s)
{
    (void)s;
    rt = rt_stopping();
    assert_int_equal(rt_run(rt, leak_main, NULL), 1);
    assert_non_null(strstr(cap.text, "sluice: leak: task 'forgotten' (spawned at"));
    assert_non_null(strstr(cap.text, "test_diag.c:"));
    assert_non_null(strstr(cap.text, "parked on sleep"));
    assert_non_null(strstr(cap.text, "still alive at shutdown"));
}

/* ---- the leak report keeps what every task waited on ---------------------------------------- */

/* Four tasks in a lock cycle: each holds mutex i and waits for mutex i+1.
 * Tearing down the first used to hand its mutex to the next, so the report
 * read one task parked and three ready, plus "ended holding mutex" noise. */
#define CY 4

static sl_mutex cy_m[CY];
static const char *cy_names[CY] = { "cy0", "cy1", "cy2", "cy3" };
static int cy_rc[CY];

static int cy_task(sl_task *t, void *arg)
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &cy_m[i], 0), 0);
    SL_YIELD(t);   /* every task holds its first mutex before anyone asks for a second */
    SL_AWAIT(t, cy_rc[i], sl_mutex_lock(t, &cy_m[(i + 1) % CY], 0));
    SL_END(t);
}

static int cy_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    for (int i = 0; i < CY; i++) {
        sl_mutex_init(&cy_m[i], NULL, cy_names[i], 0);
        assert_int_equal(sl_spawn(NULL, cy_task, (void *)(intptr_t)i, NULL, &(sl_spawn_opts){ .name = cy_names[i] }), 0);
    }
    return 0;
}

static void test_leak_report_keeps_waits(void **s)
{
    (void)s;
    rt = rt_stopping();   /* the deadlock report stops the run */
    assert_int_equal(rt_run(rt, cy_main, NULL), CY);
    char want[128];
    for (int i = 0; i < CY; i++) {
        snprintf(want, sizeof want, "sluice: leak: task '%s' (spawned at", cy_names[i]);
        const char *at = strstr(cap.text, want);
        assert_non_null(at);
        snprintf(want, sizeof want, "parked on mutex '%s'", cy_names[(i + 1) % CY]);
        const char *eol = strchr(at, '\n');
        const char *p = strstr(at, want);
        assert_true(p && eol && p < eol);
    }
    assert_null(strstr(cap.text, ") ready, still alive"));
    assert_null(strstr(cap.text, "ended holding mutex"));
    assert_null(strstr(cap.text, "misuse"));
}

/* ---- a report of a task parked in select names its cases ------------------------------------ */

static sl_chan *se_in, *se_out;
static int se_a, se_b;
static sl_case se_cs[2];

static int se_task(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    se_cs[0] = (sl_case){ .ch = se_in, .op = SL_RECV, .buf = &se_a };
    se_cs[1] = (sl_case){ .ch = se_out, .op = SL_SEND, .buf = &se_b };
    SL_AWAIT(t, rc, sl_select(t, se_cs, 2, 0));
    (void)rc;
    SL_END(t);
}

static int se_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    assert_int_equal(sl_chan_new(&se_in, sizeof(int), 0, &(sl_chan_opts){ .name = "in", .owner = NULL }), 0);
    assert_int_equal(sl_chan_new(&se_out, sizeof(int), 0, &(sl_chan_opts){ .name = "out" }), 0);
    assert_int_equal(sl_spawn(NULL, se_task, NULL, NULL, &(sl_spawn_opts){ .name = "selector" }), 0);
    return 0;
}

static void test_select_report_names_cases(void **s)
{
    (void)s;
    rt = rt_stopping();
    rt_run(rt, se_main, NULL);
    /* the deadlock report and the leak report both say what it waits for */
    assert_non_null(strstr(cap.text, "all 1 tasks are parked"));
    assert_non_null(strstr(cap.text, "task 'selector' (spawned at"));
    assert_non_null(strstr(cap.text, "parked on select (recv 'in', send 'out') for"));
    assert_non_null(strstr(cap.text, "sluice: leak: task 'selector'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadlock_example_reported),
        cmocka_unit_test(test_deadline_is_a_way_out),
        cmocka_unit_test(test_io_is_a_way_out),
        cmocka_unit_test(test_leak_report),
        cmocka_unit_test(test_leak_report_keeps_waits),
        cmocka_unit_test(test_select_report_names_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
