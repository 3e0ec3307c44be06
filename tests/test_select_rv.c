/* test_select_rv.c: sl_select cases on another reactor's RENDEZVOUS
 * channel, by offer (core/rsel.c, issue 17). The select's reactor sends a
 * proxy home; a blocking counterpart there offers itself; the select's
 * reactor accepts iff the select still waits. Every scene checks that each
 * select completes exactly one case and that no element is lost or
 * received twice. Interleavings that matter (a local case firing while an
 * offer is on its way, a deadline or cancel on either side of an offer in
 * flight, close and free with an offer out) are forced with the hooks
 * rsel.c calls at the offer, not with sleeps; waits for the other thread
 * are bounded polls, and every task has a generous deadline, so that a
 * lost element fails the test, never hangs it. On main every scene fails
 * at its first select: a rendezvous case of another reactor was -EXDEV. */
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include "testutil.h"
#include "internal.h"   /* the hooks, the proxy counts, sl__timer_fire */

/* Only a bug runs into these. A scene's tasks are bounded as a whole,
 * and a scene of thousands of cross-reactor round trips takes thousands
 * of wake-ups, each stretched on a loaded machine: at load 18-19 (two
 * CPU hogs beside the other helpers' builds) a scene that takes 3-4 s
 * there ran past 10 s: the feeder of test_select_remote's
 * test_recv_remote_not_starved_prio (ASan, its first run: -ETIMEDOUT),
 * a task on reactor 1 of test_select_rv's test_exp_recv_fed_by_credit
 * (its third run: cmocka exits 255 without a word for an assert off the
 * test's thread). 60 s, and polls of at least as long. */
#define LONG_WAIT (60 * SL_NS_PER_S)
#define POLLS 60000

static sl_runtime *rt;
static capture cap;


static void run_scene(int threads, sl_step_fn main)
{
    scene_run(&rt, &cap, threads, main);   /* and nothing leaked or reported */
    sl__rsel_set_hooks(NULL, NULL, NULL);
    sl__rsel_inject_failure(-1);
}

static sl_reactor *R(int i) { return sl_runtime_reactor(rt, i); }

/* bounded wait for `cond` in a task (1 ms naps); `i`, `rc`: the state's */
#define WAIT_FOR(t, cond, i, rc)                                   \
    do {                                                           \
        for ((i) = 0; (i) < POLLS && !(cond); (i)++)               \
            SL_AWAIT(t, rc, sl_sleep(t, SL_NS_PER_MS));            \
        assert_true(cond);                                         \
    } while (0)

/* ---- the mix scenes: a local channel and a remote rendezvous one ----------------- */

#define MIX_N 2000
#define MIX_CAP 16

static struct {
    int flags, how;            /* how: 0 send cases; 1 receive, fed at the home; 2 receive, fed by a round trip;
                                * 3, 4: receive on an expiring channel, fed at the home / by credit from the select's reactor */
    sl_chan *rv, *l;
    _Atomic int done;
    int rc, i, polls, mrc, mpolls;   /* m*: the home's main (each thread its own fields) */
    int64_t got, v;
    int64_t next[2];
    long bad, from[2];
    sl_case cs[2];
    /* feeders and receivers */
    int64_t fv[2], rvv[2];
    int frc[2], fi[2], rrc[2];
    int64_t last[2], sum[2];
    int y;
    long seen[2], dbad[2];
} M;

static int mix_feed(sl_task *t, void *arg)   /* side 0: rv, at the home or by round trip; 1: l */
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    for (M.fi[k] = 0; M.fi[k] < MIX_N; M.fi[k]++) {
        M.fv[k] = (k ? 1000000 : 0) + M.fi[k];
        if (!k && M.how >= 3)   /* an element deadline far off: the offer's path, none expires */
            SL_AWAIT(t, M.frc[k], sl_chan_send_until(t, M.rv, &M.fv[k], sl_now_ns() + LONG_WAIT));
        else
            SL_AWAIT(t, M.frc[k], sl_chan_send(t, k ? M.l : M.rv, &M.fv[k]));
        assert_int_equal(M.frc[k], 0);
    }
    atomic_fetch_add(&M.done, 1);
    SL_END(t);
}

/* send scenes: receives until -1; values must rise (each channel's in order) */
static int mix_drain(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    M.last[k] = -1;
    for (;;) {
        SL_AWAIT(t, M.rrc[k], sl_chan_recv(t, k ? M.l : M.rv, &M.rvv[k]));
        assert_int_equal(M.rrc[k], 0);
        if (M.rvv[k] < 0)
            break;
        if (M.rvv[k] <= M.last[k])
            M.dbad[k]++;   /* each channel's in the order sent */
        M.last[k] = M.rvv[k];
        M.seen[k]++;
        M.sum[k] += M.rvv[k];
        if (k)   /* the local one paces itself: the select parks, and offers come in */
            SL_AWAIT(t, M.y, sl_sleep(t, 20000));
    }
    atomic_fetch_add(&M.done, 1);
    SL_END(t);
}

static int mix_select(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    /* send cases: a local channel of 1 is often full, so the select parks and the rendezvous case can win */
    assert_int_equal(sl_chan_new(&M.l, sizeof(int64_t), M.how ? MIX_CAP : 1, &(sl_chan_opts){ .name = "near" }), 0);
    if (M.how == 0) {
        assert_int_equal(sl_spawn(NULL, mix_drain, (void *)1, NULL, NULL), 0);
        M.cs[0] = (sl_case){ .ch = M.l, .op = SL_SEND, .buf = &M.v };
        M.cs[1] = (sl_case){ .ch = M.rv, .op = SL_SEND, .buf = &M.v };
        for (M.i = 0; M.i < 2 * MIX_N; M.i++) {
            M.v = M.i;
            SL_AWAIT(t, M.rc, sl_select(t, M.cs, 2, M.flags));
            assert_true(M.rc == 0 || M.rc == 1);
            assert_int_equal(M.cs[M.rc].err, 0);
            M.from[M.rc]++;
        }
        M.v = -1;
        SL_AWAIT(t, M.rc, sl_chan_send(t, M.l, &M.v));
        assert_int_equal(M.rc, 0);
        SL_AWAIT(t, M.rc, sl_chan_send(t, M.rv, &M.v));   /* a round trip */
        assert_int_equal(M.rc, 0);
        TASK_POLL(t, M.rc, M.polls, POLLS, atomic_load(&M.done) >= 2);
        assert_true(atomic_load(&M.done) >= 2);   /* both drains saw the -1 */
    } else {
        assert_int_equal(sl_spawn(NULL, mix_feed, (void *)1, NULL, NULL), 0);
        if (M.how == 2 || M.how == 4)
            assert_int_equal(sl_spawn(NULL, mix_feed, (void *)0, NULL, NULL), 0);   /* by round trip / credit */
        M.cs[0] = (sl_case){ .ch = M.l, .op = SL_RECV, .buf = &M.got };
        M.cs[1] = (sl_case){ .ch = M.rv, .op = SL_RECV, .buf = &M.got };
        for (M.i = 0; M.i < 2 * MIX_N; M.i++) {
            M.got = -1;
            SL_AWAIT(t, M.rc, sl_select(t, M.cs, 2, M.flags));
            assert_true(M.rc == 0 || M.rc == 1);
            assert_int_equal(M.cs[M.rc].err, 0);
            mix_take(M.next, &M.bad, M.from, M.rc, M.got);
        }
    }
    assert_int_equal(sl_chan_len(M.l), 0);
    assert_int_equal(sl_chan_free(t, M.l), 0);
    atomic_fetch_add(&M.done, 10);
    SL_END(t);
}

static int mix_main(sl_task *t, void *arg)   /* reactor 0: rv's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    if (M.how >= 3)
        assert_int_equal(sl_chan_new(&M.rv, sizeof(int64_t), MIX_CAP, &(sl_chan_opts){ .name = "ex", .expiring = true }), 0);
    else
        assert_int_equal(sl_chan_new(&M.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    if (M.how == 1 || M.how == 3)
        assert_int_equal(sl_spawn(NULL, mix_feed, (void *)0, NULL, NULL), 0);
    if (M.how == 0)
        assert_int_equal(sl_spawn(NULL, mix_drain, (void *)0, NULL, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), mix_select, NULL, NULL), 0);
    for (M.mpolls = 0; M.mpolls < POLLS && atomic_load(&M.done) != 12; M.mpolls++) {
        SL_AWAIT(t, M.mrc, sl_sleep(t, SL_NS_PER_MS));
    }
    assert_int_equal(atomic_load(&M.done), 12);   /* the select, and two feeders or drains */
    assert_int_equal(M.rv->rv_out_, 0);   /* no proxy left behind */
    assert_int_equal(sl_chan_free(t, M.rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_mix(int how, int flags)
{
    memset(&M, 0, sizeof M);
    M.how = how;
    M.flags = flags;
    run_scene(2, mix_main);
    print_message("select: %ld from the local channel, %ld from the rendezvous one\n", M.from[0], M.from[1]);
    assert_int_equal(M.bad + M.dbad[0] + M.dbad[1], 0);
    if (how) {
        assert_int_equal(M.next[0], MIX_N);
        assert_int_equal(M.next[1], MIX_N);
    } else {   /* each value 0 .. 2N-1 once: as many as sent, and their sum */
        assert_int_equal(M.seen[0] + M.seen[1], 2 * MIX_N);
        assert_int_equal(M.sum[0] + M.sum[1], (int64_t)(2 * MIX_N) * (2 * MIX_N - 1) / 2);
        assert_int_equal(M.seen[0], M.from[1]);
    }
}

static void test_rv_recv_fed_at_home(void **s) { (void)s; run_mix(1, 0); }
static void test_rv_recv_fed_at_home_prio(void **s) { (void)s; run_mix(1, SL_SELECT_PRIO(1)); }
static void test_rv_recv_fed_by_round_trip(void **s) { (void)s; run_mix(2, 0); }
static void test_rv_send_cases(void **s) { (void)s; run_mix(0, 0); }
/* a receive case on another reactor's expiring channel (by offer of its head) */
static void test_exp_recv_fed_at_home(void **s) { (void)s; run_mix(3, 0); }
static void test_exp_recv_fed_at_home_prio(void **s) { (void)s; run_mix(3, SL_SELECT_PRIO(1)); }
static void test_exp_recv_fed_by_credit(void **s) { (void)s; run_mix(4, 0); }
static void test_rv_send_cases_prio(void **s) { (void)s; run_mix(0, SL_SELECT_PRIO(1)); }

/* ---- one offer, forced interleavings ------------------------------------------------ */

/* The home (reactor 0) has a sender O on rv (cap 0); a select S on
 * reactor 1 waits on [l (its own, empty), rv]. What happens at the offer
 * is chosen by the scene:
 *   R side, before S's reactor decides: nothing (accepted), fire S's
 *   local case (declined), cancel S, or fire S's deadline;
 *   H side, right after O's offer left: nothing, cancel O, fire O's
 *   deadline, close or free rv. */
enum { RS_NONE, RS_LOCAL, RS_CANCEL, RS_DEADLINE, RS_CANCEL_O, RS_LOCAL_CANCEL_O };
enum { HS_NONE, HS_CANCEL, HS_DEADLINE, HS_CLOSE, HS_FREE };

static struct {
    int r_how, h_how;
    sl_chan *rv, *l;
    sl_task *s, *o, *main;
    _Atomic int s_done, late_done;
    _Atomic int o_done;
    bool o_far;                /* O is a round trip from reactor 1 (S's): the R hook may cancel it */
    int s_rc, s_err, o_rc, late_rc, rc, polls, r_hooks, h_hooks;
    int64_t o_v, got, late_got, local_v;
    sl_case cs[2];
} F;

static int fire_s_local(void)   /* fires S's local case */
{
    return sl_chan_try_send(NULL, F.l, &F.local_v);
}

static void f_r_hook(void *arg)   /* reactor 1, before the offer is decided */
{
    (void)arg;
    F.r_hooks++;
    if (F.r_hooks > 1)
        return;
    switch (F.r_how) {
    case RS_LOCAL:
        F.local_v = 777;
        assert_int_equal(fire_s_local(), 0);
        break;
    case RS_CANCEL: assert_int_equal(sl_task_cancel(F.s, 0), 0); break;
    case RS_DEADLINE: sl__timer_fire(R(1), F.s->wake_at_); break;   /* S's deadline, now */
    case RS_LOCAL_CANCEL_O:
        F.local_v = 777;
        assert_int_equal(fire_s_local(), 0);
        /* fall through */
    case RS_CANCEL_O:   /* O's withdraw reaches the home before this offer's answer */
        assert_int_equal(sl_task_cancel(F.o, 0), 0);
        break;
    }
}

static void f_h_hook(void *arg)   /* reactor 0, O's offer just posted */
{
    (void)arg;
    F.h_hooks++;
    if (F.h_hooks > 1)
        return;
    switch (F.h_how) {
    case HS_CANCEL: assert_int_equal(sl_task_cancel(F.o, 0), 0); break;
    case HS_DEADLINE: sl__timer_fire(R(0), F.o->wake_at_); break;
    case HS_CLOSE: assert_int_equal(sl_chan_close(NULL, F.rv), 0); break;
    case HS_FREE:
        assert_int_equal(sl_chan_free(NULL, F.rv), 0);
        break;
    }
}

static int f_sender(sl_task *t, void *arg)   /* reactor 0: O */
{
    (void)arg;
    SL_BEGIN(t);
    F.o = t;   /* for the hooks, on this task's reactor */
    /* a deadline of its own the scene may fire early; the other tasks' are later */
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    F.o_v = 42;
    SL_AWAIT(t, F.o_rc, sl_chan_send(t, F.rv, &F.o_v));
    atomic_store(&F.o_done, 1);
    SL_END(t);
}

/* reactor 1, once S is over: what O's element became (a plain round trip) */
static int f_late(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    F.late_got = -1;
    SL_AWAIT(t, F.late_rc, sl_chan_recv(t, F.rv, &F.late_got));
    atomic_store(&F.late_done, 1);
    SL_END(t);
}

static int f_select(sl_task *t, void *arg)   /* reactor 1: S */
{
    (void)arg;
    SL_BEGIN(t);
    F.s = t;   /* for the hook, on this reactor */
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&F.l, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "l" }), 0);
    F.got = -1;
    F.cs[0] = (sl_case){ .ch = F.l, .op = SL_RECV, .buf = &F.got };
    F.cs[1] = (sl_case){ .ch = F.rv, .op = SL_RECV, .buf = &F.got };
    SL_AWAIT(t, F.s_rc, sl_select(t, F.cs, 2, 0));
    if (F.s_rc >= 0)
        F.s_err = F.cs[F.s_rc].err;
    assert_int_equal(sl_chan_len(F.l), 0);
    assert_int_equal(sl_chan_free(t, F.l), 0);
    atomic_store(&F.s_done, 1);
    SL_END(t);
}

static int f_main(sl_task *t, void *arg)   /* reactor 0: rv's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    F.main = t;
    assert_int_equal(sl_chan_new(&F.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_chan_give(F.rv, t, NULL), 0);   /* the hooks may close or free it */
    assert_int_equal(sl_spawn_on(R(1), f_select, NULL, NULL), 0);
    WAIT_FOR(t, F.rv->rv_recvq_ == 1, F.polls, F.rc);   /* S's proxy is queued here */
    if (F.o_far)
        assert_int_equal(sl_spawn_on(R(1), f_sender, NULL, NULL), 0);   /* a round trip: offers from remote.c */
    else
        assert_int_equal(sl_spawn(NULL, f_sender, NULL, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&F.s_done), F.polls, F.rc);
    if (F.r_how >= RS_LOCAL && F.r_how <= RS_DEADLINE && F.h_how == HS_NONE) {   /* declined: O's element is still to be received */
        assert_int_equal(sl_spawn_on(R(1), f_late, NULL, NULL), 0);
        WAIT_FOR(t, atomic_load(&F.late_done), F.polls, F.rc);
    }
    WAIT_FOR(t, atomic_load(&F.o_done), F.polls, F.rc);
    if (F.h_how != HS_FREE) {
        assert_int_equal(F.rv->rv_out_, 0);   /* no proxy left behind */
        assert_int_equal(sl_chan_free(NULL, F.rv), 0);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

/* o_rc: 0 or the error O's send ended with; SL_PENDING means it never ended */
static void run_f(int r_how, int h_how)
{
    memset(&F, 0, sizeof F);
    F.r_how = r_how;
    F.h_how = h_how;
    F.o_rc = SL_PENDING;
    sl__rsel_set_hooks(f_r_hook, f_h_hook, NULL);
    run_scene(2, f_main);
    assert_int_equal(F.r_hooks, 1);   /* one offer, decided once */
    assert_int_equal(F.h_hooks, 1);
}


/* accepted: S takes O's element from the rendezvous case */
static void test_rv_offer_accepted(void **s)
{
    (void)s;
    run_f(RS_NONE, HS_NONE);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.s_err, 0);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

/* S's local case fires while the offer is on its way: declined, and O's
 * element goes to the next receiver, once */
static void test_rv_offer_declined_local_fired(void **s)
{
    (void)s;
    run_f(RS_LOCAL, HS_NONE);
    assert_int_equal(F.s_rc, 0);
    assert_int_equal(F.got, 777);
    assert_int_equal(F.late_rc, 0);
    assert_int_equal(F.late_got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_select_cancelled(void **s)
{
    (void)s;
    run_f(RS_CANCEL, HS_NONE);
    assert_int_equal(F.s_rc, -ECANCELED);
    assert_int_equal(F.got, -1);
    assert_int_equal(F.late_got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_select_deadline(void **s)
{
    (void)s;
    run_f(RS_DEADLINE, HS_NONE);
    assert_int_equal(F.s_rc, -ETIMEDOUT);
    assert_int_equal(F.got, -1);
    assert_int_equal(F.late_got, 42);
    assert_int_equal(F.o_rc, 0);
}

/* O cancelled while its offer is out, and S accepts: O's send happened (0) */
static void test_rv_offer_sender_cancelled_accepted(void **s)
{
    (void)s;
    run_f(RS_NONE, HS_CANCEL);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_sender_deadline_accepted(void **s)
{
    (void)s;
    run_f(RS_NONE, HS_DEADLINE);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

/* ... and S declines: O ends with its error, its element received nowhere */
static void test_rv_offer_sender_cancelled_declined(void **s)
{
    (void)s;
    run_f(RS_LOCAL, HS_CANCEL);
    assert_int_equal(F.s_rc, 0);
    assert_int_equal(F.got, 777);
    assert_int_equal(F.o_rc, -ECANCELED);
}

static void test_rv_offer_sender_deadline_declined(void **s)
{
    (void)s;
    run_f(RS_LOCAL, HS_DEADLINE);
    assert_int_equal(F.s_rc, 0);
    assert_int_equal(F.got, 777);
    assert_int_equal(F.o_rc, -ETIMEDOUT);
}

/* close / free at the home with the offer out: accepted, O's element was
 * sent before; declined, O goes on and finds the channel closed */
static void test_rv_offer_out_close_accepted(void **s)
{
    (void)s;
    run_f(RS_NONE, HS_CLOSE);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_out_free_accepted(void **s)
{
    (void)s;
    run_f(RS_NONE, HS_FREE);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_out_free_declined(void **s)
{
    (void)s;
    run_f(RS_LOCAL, HS_FREE);
    assert_int_equal(F.s_rc, 0);
    assert_int_equal(F.got, 777);
    assert_int_equal(F.o_rc, -EPIPE);
}

/* O is a round trip from S's own reactor, cancelled while its offer is out
 * (its withdraw reaches the home before the answer): accepted, its send
 * happened; declined, it ends -ECANCELED and its element went nowhere */
static void test_rv_offer_round_trip_cancelled_accepted(void **s)
{
    (void)s;
    memset(&F, 0, sizeof F);
    F.o_far = true;
    F.r_how = RS_CANCEL_O;
    F.o_rc = SL_PENDING;
    sl__rsel_set_hooks(f_r_hook, f_h_hook, NULL);
    run_scene(2, f_main);
    assert_int_equal(F.r_hooks, 1);
    assert_int_equal(F.s_rc, 1);
    assert_int_equal(F.got, 42);
    assert_int_equal(F.o_rc, 0);
}

static void test_rv_offer_round_trip_cancelled_declined(void **s)
{
    (void)s;
    memset(&F, 0, sizeof F);
    F.o_far = true;
    F.r_how = RS_LOCAL_CANCEL_O;
    F.o_rc = SL_PENDING;
    sl__rsel_set_hooks(f_r_hook, f_h_hook, NULL);
    run_scene(2, f_main);
    assert_int_equal(F.r_hooks, 1);
    assert_int_equal(F.s_rc, 0);
    assert_int_equal(F.got, 777);
    assert_int_equal(F.o_rc, -ECANCELED);
}

/* ---- close and free with proxies queued; a select parking on a closed channel ------------ */

enum { Q_CLOSE, Q_FREE, Q_CLOSED_BEFORE };

static struct {
    int how, op;
    sl_chan *rv, *l;
    _Atomic int done;
    int s_rc, s_err, rc, polls;
    int64_t v;
    sl_case cs[2];
} Q;

static int q_select(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&Q.l, sizeof(int64_t), 1, NULL), 0);
    Q.v = 5;
    Q.cs[0] = (sl_case){ .ch = Q.l, .op = SL_RECV, .buf = &Q.v };
    Q.cs[1] = (sl_case){ .ch = Q.rv, .op = Q.op, .buf = &Q.v };
    SL_AWAIT(t, Q.s_rc, sl_select(t, Q.cs, 2, 0));
    if (Q.s_rc >= 0)
        Q.s_err = Q.cs[Q.s_rc].err;
    assert_int_equal(sl_chan_free(t, Q.l), 0);
    atomic_store(&Q.done, 1);
    SL_END(t);
}

static int q_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&Q.rv, sizeof(int64_t), 0, NULL), 0);
    if (Q.how == Q_CLOSED_BEFORE)
        assert_int_equal(sl_chan_close(t, Q.rv), 0);
    assert_int_equal(sl_spawn_on(R(1), q_select, NULL, NULL), 0);
    if (Q.how != Q_CLOSED_BEFORE) {
        WAIT_FOR(t, (Q.op == SL_SEND ? Q.rv->rv_sendq_ : Q.rv->rv_recvq_) == 1, Q.polls, Q.rc);
        if (Q.how == Q_CLOSE)
            assert_int_equal(sl_chan_close(t, Q.rv), 0);
        else
            assert_int_equal(sl_chan_free(t, Q.rv), 0);
    }
    WAIT_FOR(t, atomic_load(&Q.done), Q.polls, Q.rc);
    if (Q.how != Q_FREE)
        assert_int_equal(sl_chan_free(t, Q.rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_q(int how, int op)
{
    memset(&Q, 0, sizeof Q);
    Q.how = how;
    Q.op = op;
    run_scene(2, q_main);
    assert_int_equal(Q.s_rc, 1);
    assert_int_equal(Q.s_err, -EPIPE);
    assert_int_equal(Q.v, 5);   /* nothing received into it */
}

static void test_rv_close_with_recv_proxy(void **s) { (void)s; run_q(Q_CLOSE, SL_RECV); }
static void test_rv_close_with_send_proxy(void **s) { (void)s; run_q(Q_CLOSE, SL_SEND); }
static void test_rv_free_with_recv_proxy(void **s) { (void)s; run_q(Q_FREE, SL_RECV); }
static void test_rv_free_with_send_proxy(void **s) { (void)s; run_q(Q_FREE, SL_SEND); }
static void test_rv_closed_before_park(void **s) { (void)s; run_q(Q_CLOSED_BEFORE, SL_RECV); }

/* ---- _mem channels and other reactors (issue 17) ------------------------------------ */

/* A _mem channel's storage is the caller's once sl_chan_free returns, so
 * nothing may be on its way to the home naming it then. An operation that
 * another reactor posted just before the free used to reach the home after
 * it and read (then write) the header there: a round trip (remote.c), an
 * ask for credit (rsend.c), a select's proxy (rsel.c). Here the header and
 * the ring are malloc'd and freed right after sl_chan_free (AddressSanitizer:
 * heap-use-after-free in home_start, home_ask, h_park), and the home's
 * thread is held, by a bounded poll, from the moment it lets reactor 1's
 * operation go until that has been tried: the home runs what it posted
 * only after the free. Now such an
 * operation is refused with -EXDEV on reactor 1 before anything leaves. */
enum { M_RECV_RV, M_SEND_RV, M_SEND_BUF, M_SEND_UNTIL_BUF, M_RECV_BUF, M_SELECT_RECV_RV,
       M_SELECT_SEND_RV, M_SELECT_SEND_BUF };

static struct {
    int how;
    sl_chan *ch;               /* malloc'd: freed right after sl_chan_free */
    int64_t *ring;
    uint64_t *dls;             /* the slots' deadlines (M_SEND_UNTIL_BUF) */
    _Atomic int ready, go, tried, done;
    int rc, polls, fpolls;
    int frc, mrc;              /* each thread's own scratch for its waits */
    int64_t v;
    sl_case cs[1];
} MM;

static int m_op(sl_task *t)   /* reactor 1 */
{
    int rc;
    switch (MM.how) {
    case M_RECV_RV:
    case M_RECV_BUF:
        rc = sl_chan_recv(t, MM.ch, &MM.v);
        break;
    case M_SEND_RV:
    case M_SEND_BUF:
        rc = sl_chan_send(t, MM.ch, &MM.v);
        break;
    case M_SEND_UNTIL_BUF:
        rc = sl_chan_send_until(t, MM.ch, &MM.v, sl_now_ns() + LONG_WAIT);
        break;
    default:
        MM.cs[0] = (sl_case){ .ch = MM.ch, .op = MM.how == M_SELECT_RECV_RV ? SL_RECV : SL_SEND, .buf = &MM.v };
        rc = sl_select(t, MM.cs, 1, 0);
        break;
    }
    atomic_store(&MM.tried, 1);   /* posted, if it was going to be */
    return rc;
}

static int m_far(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    atomic_store(&MM.ready, 1);
    WAIT_FOR(t, atomic_load(&MM.go), MM.fpolls, MM.frc);
    SL_AWAIT(t, MM.rc, m_op(t));
    atomic_store(&MM.done, 1);
    SL_END(t);
}

static int m_main(sl_task *t, void *arg)   /* reactor 0: the channel's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    bool buffered = MM.how == M_SEND_BUF || MM.how == M_SEND_UNTIL_BUF || MM.how == M_RECV_BUF ||
                    MM.how == M_SELECT_SEND_BUF;
    MM.ch = malloc(sizeof *MM.ch);
    MM.ring = buffered ? malloc(4 * sizeof *MM.ring) : NULL;
    MM.dls = MM.how == M_SEND_UNTIL_BUF ? calloc(4, sizeof *MM.dls) : NULL;
    assert_non_null(MM.ch);
    assert_int_equal(sl_chan_mem(MM.ch, MM.ring, sizeof(int64_t), buffered ? 4 : 0,
                                 &(sl_chan_opts){ .name = "mem", .deadlines = MM.dls }), 0);
    assert_int_equal(sl_spawn_on(R(1), m_far, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&MM.ready), MM.polls, MM.mrc);   /* the spawn left with this wait */
    /* this thread waits (no step of it runs) until reactor 1 has tried */
    atomic_store(&MM.go, 1);
    for (MM.polls = 0; MM.polls < 100 * POLLS && !atomic_load(&MM.tried); MM.polls++)
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 }, NULL);
    assert_true(atomic_load(&MM.tried));
    assert_int_equal(sl_chan_free(t, MM.ch), 0);
    memset(MM.ch, 0xa5, sizeof *MM.ch);   /* the caller's again */
    free(MM.ch);
    free(MM.ring);
    free(MM.dls);
    WAIT_FOR(t, atomic_load(&MM.done), MM.polls, MM.mrc);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_m(int how)
{
    memset(&MM, 0, sizeof MM);
    MM.how = how;
    MM.v = 9;
    run_scene(2, m_main);
    assert_int_equal(MM.rc, -EXDEV);
    assert_int_equal(MM.v, 9);   /* nothing received into it */
}

static void test_mem_round_trip_recv_rv(void **s) { (void)s; run_m(M_RECV_RV); }
static void test_mem_round_trip_send_rv(void **s) { (void)s; run_m(M_SEND_RV); }
static void test_mem_round_trip_recv_buffered(void **s) { (void)s; run_m(M_RECV_BUF); }
static void test_mem_credit_send(void **s) { (void)s; run_m(M_SEND_BUF); }
static void test_mem_credit_send_until(void **s) { (void)s; run_m(M_SEND_UNTIL_BUF); }
static void test_mem_select_recv_rv(void **s) { (void)s; run_m(M_SELECT_RECV_RV); }
static void test_mem_select_send_rv(void **s) { (void)s; run_m(M_SELECT_SEND_RV); }
static void test_mem_select_send_buffered(void **s) { (void)s; run_m(M_SELECT_SEND_BUF); }

/* ---- the last sender end goes while another reactor's select offers to send ---------------- */

/* A select S1 at the home waits to receive on rv; another reactor's select
 * S2 waits to send on it. S1's other case is on a channel of reactor 1.
 * This scene was first made for a select that could not be claimed (one
 * with a case elsewhere), so that S2's proxy stayed queued beside S1 while
 * the last sender end went (the check "no parked sender" then counted the
 * proxy as a sender: S1 stayed parked until its deadline). Such a select is
 * claimed now (docs/core.md "A claimed select with cases elsewhere"): S1
 * and S2 meet, and S2's 7 is S1's. (A proxy stays queued beside a parked
 * select now only while refused busy, hbusy.) */
static struct {
    sl_chan *rv, *l0, *l1;
    _Atomic int s2_done, l0_made, l0_freed;
    int s1_done, s1_rc, s1_err, s2_rc, s2_err, rc, polls;
    int64_t v1, v2;
    sl_case c1[2], c2[2];
} LS;

static int ls_s1(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    LS.c1[0] = (sl_case){ .ch = LS.l0, .op = SL_RECV, .buf = &LS.v1 };
    LS.c1[1] = (sl_case){ .ch = LS.rv, .op = SL_RECV, .buf = &LS.v1 };
    SL_AWAIT(t, LS.s1_rc, sl_select(t, LS.c1, 2, 0));
    if (LS.s1_rc >= 0)
        LS.s1_err = LS.c1[LS.s1_rc].err;
    LS.s1_done = 1;
    SL_END(t);
}

static int ls_s2(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&LS.l1, sizeof(int64_t), 1, NULL), 0);
    LS.v2 = 7;
    LS.c2[0] = (sl_case){ .ch = LS.l1, .op = SL_RECV, .buf = &LS.v2 };
    LS.c2[1] = (sl_case){ .ch = LS.rv, .op = SL_SEND, .buf = &LS.v2 };
    SL_AWAIT(t, LS.s2_rc, sl_select(t, LS.c2, 2, 0));
    if (LS.s2_rc >= 0)
        LS.s2_err = LS.c2[LS.s2_rc].err;
    assert_int_equal(sl_chan_free(t, LS.l1), 0);
    atomic_store(&LS.s2_done, 1);
    SL_END(t);
}

static int ls_l0(sl_task *t, void *arg)   /* reactor 1: S1's other channel, made and freed here */
{
    (void)arg;
    if (!LS.l0) {
        assert_int_equal(sl_chan_new(&LS.l0, sizeof(int64_t), 1, NULL), 0);
        assert_int_equal(sl_chan_give(LS.l0, t, NULL), 0);
        atomic_store(&LS.l0_made, 1);
    } else {
        assert_int_equal(sl_chan_free(NULL, LS.l0), 0);
        atomic_store(&LS.l0_freed, 1);
    }
    return 0;
}

static int ls_main(sl_task *t, void *arg)   /* reactor 0: rv's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 2 * LONG_WAIT);
    assert_int_equal(sl_chan_new(&LS.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_spawn_on(R(1), ls_l0, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&LS.l0_made), LS.polls, LS.rc);
    assert_int_equal(sl_chan_attach(LS.rv, t, SL_CHAN_SENDER), 0);
    assert_int_equal(sl_spawn(NULL, ls_s1, NULL, NULL, NULL), 0);
    WAIT_FOR(t, LS.rv->recvq_.n == 1, LS.polls, LS.rc);   /* S1 parked */
    assert_int_equal(sl_spawn_on(R(1), ls_s2, NULL, NULL), 0);
    WAIT_FOR(t, LS.s1_done, LS.polls, LS.rc);   /* S1 claimed for S2's proxy: they met */
    WAIT_FOR(t, atomic_load(&LS.s2_done), LS.polls, LS.rc);
    assert_int_equal(sl_chan_detach(LS.rv, t, SL_CHAN_SENDER), 0);   /* the last sender end */
    WAIT_FOR(t, LS.rv->rv_out_ == 0, LS.polls, LS.rc);
    assert_int_equal(sl_chan_free(t, LS.rv), 0);
    assert_int_equal(sl_spawn_on(R(1), ls_l0, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&LS.l0_freed), LS.polls, LS.rc);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_rv_home_select_with_far_case_meets(void **s)
{
    (void)s;
    memset(&LS, 0, sizeof LS);
    run_scene(2, ls_main);
    assert_int_equal(LS.s1_rc, 1);
    assert_int_equal(LS.s1_err, 0);
    assert_int_equal(LS.v1, 7);
    assert_int_equal(LS.s2_rc, 1);
    assert_int_equal(LS.s2_err, 0);
}

/* ---- a round trip's cancel after its channel was freed ----------------------------------- */

/* A task X of reactor 1 waits in a round trip (a receive on reactor 0's
 * rendezvous channel rv). Reactor 0 frees rv: X's request completes with
 * -EPIPE, the answer on its way to reactor 1, whose thread is held (by a
 * task H polling, bounded) so that X is cancelled before the answer runs.
 * The withdraw was posted to `q->ch->home_`, read on reactor 1's thread:
 * a data race with the free, which sets it NULL (unregister), so the post
 * went to a NULL reactor (SIGSEGV; a _mem channel's would read freed
 * storage). Now the home travels in the request: the withdraw finds the
 * operation done, and X gets its result, -EPIPE. */
static struct {
    sl_chan *rv;
    sl_task *x;
    _Atomic int holding, freed, x_done;
    int x_rc, rc, polls, hpolls;
    int64_t v;
} RC;

static int rc_x(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    RC.x = t;
    RC.v = 3;
    SL_AWAIT(t, RC.x_rc, sl_chan_recv(t, RC.rv, &RC.v));
    atomic_store(&RC.x_done, 1);
    SL_END(t);
}

static int rc_hold(sl_task *t, void *arg)   /* reactor 1: holds its thread across the free */
{
    (void)arg;
    SL_BEGIN(t);
    atomic_store(&RC.holding, 1);
    for (RC.hpolls = 0; RC.hpolls < 100 * POLLS && !atomic_load(&RC.freed); RC.hpolls++)
        nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 }, NULL);
    assert_true(atomic_load(&RC.freed));
    assert_int_equal(sl_task_cancel(RC.x, 0), 0);   /* before X's answer runs here */
    SL_END(t);
}

static int rc_main(sl_task *t, void *arg)   /* reactor 0: rv's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&RC.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_spawn_on(R(1), rc_x, NULL, NULL), 0);
    WAIT_FOR(t, RC.rv->recvq_.n == 1, RC.polls, RC.rc);   /* X's request waits here */
    assert_int_equal(sl_spawn_on(R(1), rc_hold, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&RC.holding), RC.polls, RC.rc);
    assert_int_equal(sl_chan_free(t, RC.rv), 0);   /* X's answer (-EPIPE) leaves for reactor 1 */
    atomic_store(&RC.freed, 1);
    WAIT_FOR(t, atomic_load(&RC.x_done), RC.polls, RC.rc);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_round_trip_cancel_after_free(void **s)
{
    (void)s;
    memset(&RC, 0, sizeof RC);
    run_scene(2, rc_main);
    assert_int_equal(RC.x_rc, -EPIPE);   /* completed before the cancel: its result */
    assert_int_equal(RC.v, 3);
}

/* ---- no memory for a proxy: -ENOMEM, nothing parked anywhere ------------------------ */

static struct {
    sl_chan *rv, *rv2, *l;
    _Atomic int done, go;
    int rc, mrc, polls;
    int64_t v, got;
    sl_case cs[3];
} N;

static int n_far(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&N.l, sizeof(int64_t), 1, NULL), 0);
    N.cs[0] = (sl_case){ .ch = N.l, .op = SL_RECV, .buf = &N.got };
    N.cs[1] = (sl_case){ .ch = N.rv, .op = SL_RECV, .buf = &N.got };
    N.cs[2] = (sl_case){ .ch = N.rv2, .op = SL_RECV, .buf = &N.got };
    sl__rsel_inject_failure(0);   /* the first proxy */
    assert_int_equal(sl_select(t, N.cs, 3, 0), -ENOMEM);
    sl__rsel_inject_failure(1);   /* the second: the first goes again, never posted */
    assert_int_equal(sl_select(t, N.cs, 3, 0), -ENOMEM);
    assert_int_equal(N.l->recvq_.n, 0);   /* nothing parked here */
    atomic_store(&N.go, 1);   /* the home: nothing parked there either; then a sender */
    N.got = -1;
    SL_AWAIT(t, N.rc, sl_select(t, N.cs, 3, 0));
    assert_int_equal(N.rc, 2);
    assert_int_equal(N.got, 9);
    assert_int_equal(sl_chan_free(t, N.l), 0);
    atomic_store(&N.done, 1);
    SL_END(t);
}

static int n_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&N.rv, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&N.rv2, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), n_far, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&N.go), N.polls, N.mrc);
    WAIT_FOR(t, N.rv2->rv_recvq_ == 1, N.polls, N.mrc);
    N.v = 9;
    SL_AWAIT(t, N.mrc, sl_chan_send(t, N.rv2, &N.v));
    assert_int_equal(N.mrc, 0);
    WAIT_FOR(t, atomic_load(&N.done), N.polls, N.mrc);
    WAIT_FOR(t, N.rv->rv_out_ == 0, N.polls, N.mrc);   /* the other proxy withdrawn */
    assert_int_equal(sl_chan_free(t, N.rv), 0);
    assert_int_equal(sl_chan_free(t, N.rv2), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_rv_proxy_enomem(void **s)
{
    (void)s;
    memset(&N, 0, sizeof N);
    run_scene(2, n_main);
}

/* ---- runtime teardown with proxies queued and offers in flight ------------------------ */

/* The runtime stops with S parked on reactor 1 (its proxy queued at the
 * home) and, in the second scene, O's offer just posted: the teardown
 * drains the messages (the offer is decided, the proxy withdrawn when S's
 * task goes) and frees every proxy; ASan and valgrind see no leak and no
 * use after free, and what leaked is reported as such. */
static struct {
    bool with_offer;
    sl_chan *rv;
    int rc, src, polls;
    int64_t v, got;
    sl_case cs[1];
} T;

static int t_select(sl_task *t, void *arg)   /* reactor 1: never resumed */
{
    (void)arg;
    SL_BEGIN(t);
    T.cs[0] = (sl_case){ .ch = T.rv, .op = SL_RECV, .buf = &T.got };
    SL_AWAIT(t, T.src, sl_select(t, T.cs, 1, 0));
    SL_END(t);
}

static int t_send(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    T.v = 8;
    SL_AWAIT(t, T.rc, sl_chan_send(t, T.rv, &T.v));
    SL_END(t);
}

static int t_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&T.rv, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_chan_give(T.rv, t, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), t_select, NULL, NULL), 0);
    WAIT_FOR(t, T.rv->rv_recvq_ == 1, T.polls, T.rc);
    if (T.with_offer)
        assert_int_equal(sl_spawn(NULL, t_send, NULL, NULL, NULL), 0);   /* its offer stops the runtime */
    else
        sl_runtime_stop(rt);
    SL_END(t);
}

static void t_stop_at_offer(void *arg)   /* the home, O's offer just posted */
{
    (void)arg;
    assert_int_equal(T.rv->rv_out_, 1);
    sl_runtime_stop(rt);
}

static void run_teardown(bool with_offer)
{
    memset(&T, 0, sizeof T);
    memset(&cap, 0, sizeof cap);
    T.with_offer = with_offer;
    if (with_offer)
        sl__rsel_set_hooks(NULL, t_stop_at_offer, NULL);
    *scene_live() = true;
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run_keep(rt, t_main, NULL), 0);
    int leaks = sl_runtime_free(rt);
    *scene_live() = false;
    sl__rsel_set_hooks(NULL, NULL, NULL);
    print_message("teardown: %d leaks reported\n", leaks);
    /* the channel and S at least (O's offer was decided at the drain) */
    assert_true(leaks >= 2);
}

static void test_rv_teardown_proxy_queued(void **s) { (void)s; run_teardown(false); }
static void test_rv_teardown_offer_out(void **s) { (void)s; run_teardown(true); }

/* The runtime stops with an expiring channel's head held for an offer to
 * a select on reactor 1 (the offer just posted): sl_runtime_free's drain
 * decides it, and the channel (never freed: reported as leaked) goes with
 * its ring. Accepted, the select received it; declined (a local case of
 * the select fired first, forced at R's hook), it is back in the ring and
 * destroyed with it. Each element is destroyed exactly once or received,
 * never both, never neither; ASan sees nothing leak. */
static struct {
    bool decline;
    sl_chan *ex, *l;
    int rc, src, polls, h_hooks, r_hooks;
    int64_t v, got, lv;
    _Atomic int dropped[3];
    sl_case cs[2];
} W;

static void w_drop(sl_chan *ch, void *e)
{
    (void)ch;
    int64_t v;
    memcpy(&v, e, sizeof v);
    assert_true(v == 1 || v == 2);
    W.dropped[v]++;
}

static int w_select(sl_task *t, void *arg)   /* reactor 1: never resumed after the stop */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&W.l, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "l" }), 0);
    W.got = -1;
    W.cs[0] = (sl_case){ .ch = W.ex, .op = SL_RECV, .buf = &W.got };
    W.cs[1] = (sl_case){ .ch = W.l, .op = SL_RECV, .buf = &W.got };
    SL_AWAIT(t, W.src, sl_select(t, W.cs, 2, 0));
    SL_END(t);
}

static void w_r_hook(void *arg)   /* reactor 1, in the teardown's drain: before the offer is decided */
{
    (void)arg;
    W.r_hooks++;
    if (!W.decline)
        return;
    W.lv = 7;
    assert_int_equal(sl_chan_try_send(NULL, W.l, &W.lv), 0);   /* S fires its local case: the offer is declined */
}

static void w_stop_at_offer(void *arg)   /* the home, the head's offer just posted */
{
    (void)arg;
    W.h_hooks++;
    assert_int_equal(W.ex->rv_held_, 1);
    assert_int_equal(W.ex->rv_out_, 1);
    sl_runtime_stop(rt);
}

static int w_main(sl_task *t, void *arg)   /* reactor 0: ex's home */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&W.ex, sizeof(int64_t), 4,
                                 &(sl_chan_opts){ .name = "ex", .expiring = true, .elem_drop = w_drop }),
                     0);
    assert_int_equal(sl_chan_give(W.ex, t, NULL), 0);
    for (W.v = 1; W.v <= 2; W.v++)
        assert_int_equal(sl_chan_try_send_until(t, W.ex, &W.v, sl_now_ns() + LONG_WAIT), 0);
    assert_int_equal(sl_spawn_on(R(1), w_select, NULL, NULL), 0);   /* its proxy is offered 1 */
    SL_END(t);
}

static void run_w(bool decline)
{
    memset(&W, 0, sizeof W);
    memset(&cap, 0, sizeof cap);
    W.decline = decline;
    sl__rsel_set_hooks(w_r_hook, w_stop_at_offer, NULL);
    *scene_live() = true;
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run_keep(rt, w_main, NULL), 0);
    int leaks = sl_runtime_free(rt);
    *scene_live() = false;
    sl__rsel_set_hooks(NULL, NULL, NULL);
    print_message("teardown with a held head offered: %d leaks reported, 1 %s\n", leaks,
                  W.got == 1 ? "accepted" : W.got == 7 ? "declined" : "undecided");
    assert_int_equal(W.h_hooks, 1);
    assert_int_equal(W.r_hooks, 1);   /* decided once, at the drain */
    assert_true(leaks >= 1);   /* the channel, at least */
    assert_int_equal(W.got, decline ? 7 : 1);
    assert_int_equal(W.dropped[1] + (W.got == 1), 1);   /* destroyed or received: once */
    assert_int_equal(W.dropped[2], 1);   /* with the ring */
}

static void test_exp_teardown_offer_out_accepted(void **s) { (void)s; run_w(false); }
static void test_exp_teardown_offer_out_declined(void **s) { (void)s; run_w(true); }

/* ---- a local select's case fired -EPIPE while parked: cases[i].err says so ---- */

static struct {
    sl_chan *ch;
    int rc, err;
    int64_t v;
    sl_case cs[1];
} P;

static int p_select(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    P.v = 3;
    P.cs[0] = (sl_case){ .ch = P.ch, .op = SL_RECV, .buf = &P.v };
    SL_AWAIT(t, P.rc, sl_select(t, P.cs, 1, 0));
    P.err = P.cs[0].err;
    SL_END(t);
}

static int p_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&P.ch, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_spawn(NULL, p_select, NULL, NULL, NULL), 0);
    SL_YIELD(t);   /* it parks */
    assert_int_equal(P.ch->recvq_.n, 1);
    assert_int_equal(sl_chan_close(t, P.ch), 0);
    SL_YIELD(t);
    assert_int_equal(sl_chan_free(t, P.ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_parked_select_epipe_err(void **s)
{
    (void)s;
    memset(&P, 0, sizeof P);
    P.err = 1;
    run_scene(1, p_main);
    assert_int_equal(P.rc, 0);
    assert_int_equal(P.err, -EPIPE);   /* was 0 */
    assert_int_equal(P.v, 3);
}

/* ---- receive cases on another reactor's expiring channel: one offer ---------------- */

/* ex (expiring, cap 4) at reactor 0 holds 1 and 2 (1's deadline 1 s
 * off, 2's far); S on reactor 1 waits on [l (its own, empty), ex]. Its
 * proxy reaches the home, which offers the head (1), held out of the ring.
 * The R hook may first wait for the home's receiver to park behind the
 * held head (gate), and/or for 1's deadline to pass, then fire S's local
 * case (declined) or not (accepted); the H hook may close or free ex with
 * the offer out. On main S's select returned -EXDEV at once. */
enum { EH_NONE, EH_CLOSE, EH_FREE };

static struct {
    int r_how, h_how;
    bool gate, wait_expiry;
    sl_chan *ex, *l;
    _Atomic int s_done, go;
    int s_rc, s_err, rc, polls, r_hooks, h_hooks, n_after, arc;
    int64_t got, v, local_v, after[4];
    int after_rc[4];
    uint64_t dl1;
    _Atomic int expired[4], dropped[4];
    sl_case cs[2];
} E;

static void e_on_expire(sl_chan *ch, void *e, void *arg)
{
    (void)ch;
    (void)arg;
    int64_t v;
    memcpy(&v, e, sizeof v);
    assert_true(v >= 1 && v <= 3);
    E.expired[v]++;
}

static void e_drop(sl_chan *ch, void *e)   /* the destructor: counted per element */
{
    (void)ch;
    int64_t v;
    memcpy(&v, e, sizeof v);
    assert_true(v >= 1 && v <= 3);
    E.dropped[v]++;
}

static void e_r_hook(void *arg)   /* reactor 1, before the offer is decided */
{
    (void)arg;
    if (++E.r_hooks > 1)
        return;
    assert_true(sl_now_ns() < E.dl1);   /* the scene's premise: 1 was offered alive */
    uint64_t end = sl_now_ns() + LONG_WAIT;
    while (E.gate && !atomic_load(&E.go) && sl_now_ns() < end)
        sched_yield();   /* the home's receiver is about to park behind the held head */
    while (E.wait_expiry && sl_now_ns() <= E.dl1 && sl_now_ns() < end)
        sched_yield();   /* the offered element's deadline passes while offered */
    assert_true(sl_now_ns() < end);
    if (E.r_how == RS_LOCAL) {
        E.local_v = 777;
        assert_int_equal(sl_chan_try_send(NULL, E.l, &E.local_v), 0);
    }
}

static void e_h_hook(void *arg)   /* reactor 0, the head's offer just posted */
{
    (void)arg;
    if (++E.h_hooks > 1)
        return;
    if (E.h_how == EH_CLOSE)
        assert_int_equal(sl_chan_close(NULL, E.ex), 0);
    if (E.h_how == EH_FREE)
        assert_int_equal(sl_chan_free(NULL, E.ex), 0);
}

static int e_select(sl_task *t, void *arg)   /* reactor 1: S */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&E.l, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "l" }), 0);
    E.got = -1;
    E.cs[0] = (sl_case){ .ch = E.l, .op = SL_RECV, .buf = &E.got };
    E.cs[1] = (sl_case){ .ch = E.ex, .op = SL_RECV, .buf = &E.got };
    SL_AWAIT(t, E.s_rc, sl_select(t, E.cs, 2, 0));
    if (E.s_rc >= 0)
        E.s_err = E.cs[E.s_rc].err;
    assert_int_equal(sl_chan_len(E.l), 0);
    assert_int_equal(sl_chan_free(t, E.l), 0);
    atomic_store(&E.s_done, 1);
    SL_END(t);
}

static int e_main(sl_task *t, void *arg)   /* reactor 0: ex's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&E.ex, sizeof(int64_t), 4,
                                 &(sl_chan_opts){ .name = "ex", .expiring = true, .on_expire = e_on_expire,
                                                  .elem_drop = e_drop }),
                     0);
    assert_int_equal(sl_chan_give(E.ex, t, NULL), 0);   /* the hook may close or free it */
    /* 1 must still be alive when offered: a scene that waits for its
     * deadline to pass while offered gives it 1 s (200 ms once passed
     * before the offer under ASan at load 10), the others never let it pass */
    E.dl1 = sl_now_ns() + (E.wait_expiry ? SL_NS_PER_S : LONG_WAIT);
    E.v = 1;
    assert_int_equal(sl_chan_try_send_until(t, E.ex, &E.v, E.dl1), 0);
    E.v = 2;
    assert_int_equal(sl_chan_try_send_until(t, E.ex, &E.v, sl_now_ns() + LONG_WAIT), 0);
    assert_int_equal(sl_spawn_on(R(1), e_select, NULL, NULL), 0);
    if (E.gate) {
        WAIT_FOR(t, E.ex->rv_held_ == 1, E.polls, E.rc);   /* 1 is offered, 2 stays in the ring */
        assert_int_equal(E.ex->len_, 1);   /* sl_chan_len counts the held one too */
        assert_int_equal(sl_chan_len(E.ex), 2);
        E.after[0] = -1;
        atomic_store(&E.go, 1);   /* the answer is handled here only after this receive parked */
        SL_AWAIT(t, E.after_rc[0], sl_chan_recv(t, E.ex, &E.after[0]));
        E.n_after = 1;
    }
    WAIT_FOR(t, atomic_load(&E.s_done), E.polls, E.rc);
    if (E.h_how != EH_FREE) {
        WAIT_FOR(t, E.ex->rv_out_ == 0, E.polls, E.rc);   /* the answer is in */
        do {   /* what is left, in order */
            E.after[E.n_after] = -1;
            E.arc = sl_chan_try_recv(t, E.ex, &E.after[E.n_after]);
            E.after_rc[E.n_after++] = E.arc;
        } while (E.arc == 0 && E.n_after < 4);
        assert_int_equal(E.ex->rv_held_, 0);
        assert_int_equal(sl_chan_free(NULL, E.ex), 0);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_e(int r_how, int h_how, bool gate, bool wait_expiry)
{
    memset(&E, 0, sizeof E);
    E.r_how = r_how;
    E.h_how = h_how;
    E.gate = gate;
    E.wait_expiry = wait_expiry;
    sl__rsel_set_hooks(e_r_hook, e_h_hook, NULL);
    run_scene(2, e_main);
    assert_int_equal(E.r_hooks, 1);   /* one offer, decided once */
    assert_int_equal(E.h_hooks, 1);
    for (int v = 1; v <= 2; v++)   /* destroyed at most once; expired ones destroyed too */
        assert_true(E.dropped[v] <= 1 && E.expired[v] <= E.dropped[v]);
}

/* accepted: S takes 1; the receiver parked at the home behind the held
 * head gets 2, not 1, and nothing is left */
static void test_exp_offer_accepted(void **s)
{
    (void)s;
    run_e(RS_NONE, EH_NONE, true, false);
    assert_int_equal(E.s_rc, 1);
    assert_int_equal(E.s_err, 0);
    assert_int_equal(E.got, 1);
    assert_int_equal(E.after_rc[0], 0);
    assert_int_equal(E.after[0], 2);
    assert_int_equal(E.after_rc[1], -EAGAIN);
    assert_int_equal(E.dropped[1] + E.dropped[2] + E.expired[1], 0);
}

/* S's local case fires while 1 is offered: declined, 1 goes back first,
 * and the receiver parked at the home meanwhile gets it, then 2 */
static void test_exp_offer_declined_local_fired(void **s)
{
    (void)s;
    run_e(RS_LOCAL, EH_NONE, true, false);
    assert_int_equal(E.s_rc, 0);
    assert_int_equal(E.got, 777);
    assert_int_equal(E.after_rc[0], 0);
    assert_int_equal(E.after[0], 1);
    assert_int_equal(E.after_rc[1], 0);
    assert_int_equal(E.after[1], 2);
    assert_int_equal(E.after_rc[2], -EAGAIN);
    assert_int_equal(E.dropped[1] + E.dropped[2], 0);
}

/* 1's deadline passes while offered, accepted: judged at the offer, so S
 * receives it (on_expire not called, not destroyed) */
static void test_exp_offer_expired_accepted(void **s)
{
    (void)s;
    run_e(RS_NONE, EH_NONE, true, true);
    assert_int_equal(E.s_rc, 1);
    assert_int_equal(E.got, 1);
    assert_int_equal(E.after[0], 2);
    assert_int_equal(E.expired[1] + E.dropped[1], 0);
}

/* 1's deadline passes while offered, declined: back first, and the next
 * receive meets it expired: on_expire and the destructor once, the
 * receiver gets 2 */
static void test_exp_offer_expired_declined(void **s)
{
    (void)s;
    run_e(RS_LOCAL, EH_NONE, true, true);
    assert_int_equal(E.s_rc, 0);
    assert_int_equal(E.after_rc[0], 0);
    assert_int_equal(E.after[0], 2);
    assert_int_equal(E.after_rc[1], -EAGAIN);
    assert_int_equal(E.expired[1], 1);
    assert_int_equal(E.dropped[1], 1);
    assert_int_equal(E.dropped[2], 0);
}

/* closed with 1 offered: accepted, S has 1 and the home then drains 2 and
 * sees -EPIPE; declined, the home drains 1, 2, -EPIPE (close does not fail
 * receivers while the head is held) */
static void test_exp_offer_out_close_accepted(void **s)
{
    (void)s;
    run_e(RS_NONE, EH_CLOSE, false, false);
    assert_int_equal(E.s_rc, 1);
    assert_int_equal(E.got, 1);
    assert_int_equal(E.after[0], 2);
    assert_int_equal(E.after_rc[1], -EPIPE);
}

static void test_exp_offer_out_close_declined(void **s)
{
    (void)s;
    run_e(RS_LOCAL, EH_CLOSE, false, false);
    assert_int_equal(E.s_rc, 0);
    assert_int_equal(E.after[0], 1);
    assert_int_equal(E.after[1], 2);
    assert_int_equal(E.after_rc[2], -EPIPE);
    assert_int_equal(E.dropped[1] + E.dropped[2], 0);
}

/* freed with 1 offered: 2 is destroyed at the free; 1 is S's if accepted,
 * else destroyed when the decline reaches the home (the header waited):
 * each destructor exactly once */
static void test_exp_offer_out_free_accepted(void **s)
{
    (void)s;
    run_e(RS_NONE, EH_FREE, false, false);
    assert_int_equal(E.s_rc, 1);
    assert_int_equal(E.got, 1);
    assert_int_equal(E.dropped[1], 0);
    assert_int_equal(E.dropped[2], 1);
}

static void test_exp_offer_out_free_declined(void **s)
{
    (void)s;
    run_e(RS_LOCAL, EH_FREE, false, false);
    assert_int_equal(E.s_rc, 0);
    assert_int_equal(E.dropped[1], 1);
    assert_int_equal(E.dropped[2], 1);
    assert_int_equal(E.expired[1] + E.expired[2], 0);
}

/* ---- serve_local after a grant skips a receive proxy (issue 17) ------------------------ */

/* The bug test_exp_race found only under load: sl__chan_serve_local (run
 * at a turn's end for a channel queued for a grant, with a receiver
 * queued) took the head of recvq_ even when it was another reactor's
 * select's receive proxy: it handed it a home sender's element and fired
 * it, which for a proxy means -EPIPE at the select; the sender returned 0
 * and the element was lost. Staged here: ex (expiring, cap SV_CAP) at
 * reactor 0 has all its room lent as credit to reactor 2, whose thread is
 * held (so the recall stays unanswered); a select on reactor 1 waits on
 * ex (its proxy queued, nothing to offer); a sender at the home parks (no
 * room, a recall out). Then the channel is queued for a grant
 * (sl__chan_turn_end: what an ask or a receive opening room does), and the
 * turn ends. Before the fix the select returned with -EPIPE and the
 * element was gone; now nothing moves until the recall's answer brings
 * the room back, the element enters, is offered, and the select gets it. */
#define SV_CAP 2

static struct {
    sl_chan *ex;
    _Atomic int hold, holding, release, lender_done, s_done, snd_done;
    int rc, polls, lrc, li, src, s_err, snd_rc;
    int64_t lv, v, got, sv;
    sl_case cs[1];
} V;

static int v_lender(sl_task *t, void *arg)   /* reactor 2: takes credit, uses one slot, then holds its thread */
{
    (void)arg;
    SL_BEGIN(t);
    V.lv = 1;
    SL_AWAIT(t, V.lrc, sl_chan_send(t, V.ex, &V.lv));
    assert_int_equal(V.lrc, 0);
    TASK_POLL(t, V.lrc, V.li, POLLS, atomic_load(&V.hold));
    assert_true(atomic_load(&V.hold));
    {
        /* no message of this reactor's runs while this spins: the home's
         * recall waits here */
        atomic_store(&V.holding, 1);
        uint64_t end = sl_now_ns() + LONG_WAIT;
        while (!atomic_load(&V.release) && sl_now_ns() < end)
            sched_yield();
        assert_true(atomic_load(&V.release));
    }
    atomic_store(&V.lender_done, 1);
    SL_END(t);
}

static int v_select(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    V.got = -1;
    V.cs[0] = (sl_case){ .ch = V.ex, .op = SL_RECV, .buf = &V.got };
    SL_AWAIT(t, V.src, sl_select(t, V.cs, 1, 0));
    if (V.src >= 0)
        V.s_err = V.cs[V.src].err;
    atomic_store(&V.s_done, 1);
    SL_END(t);
}

static int v_sender(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    V.sv = 42;
    SL_AWAIT(t, V.snd_rc, sl_chan_send(t, V.ex, &V.sv));
    atomic_store(&V.snd_done, 1);
    SL_END(t);
}

static int v_main(sl_task *t, void *arg)   /* reactor 0: ex's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&V.ex, sizeof(int64_t), SV_CAP, &(sl_chan_opts){ .name = "ex", .expiring = true }),
                     0);
    assert_int_equal(sl_spawn_on(R(2), v_lender, NULL, NULL), 0);
    SL_AWAIT(t, V.rc, sl_chan_recv(t, V.ex, &V.v));   /* its batch is here */
    assert_int_equal(V.rc, 0);
    assert_int_equal(V.v, 1);
    WAIT_FOR(t, V.ex->reserved_ == SV_CAP, V.polls, V.rc);   /* all the room is reactor 2's credit */
    assert_int_equal(V.ex->len_, 0);
    atomic_store(&V.hold, 1);
    WAIT_FOR(t, atomic_load(&V.holding), V.polls, V.rc);
    assert_int_equal(sl_spawn_on(R(1), v_select, NULL, NULL), 0);
    WAIT_FOR(t, V.ex->rv_recvq_ == 1, V.polls, V.rc);   /* S's proxy queued: nothing to offer */
    assert_int_equal(sl_spawn(NULL, v_sender, NULL, NULL, NULL), 0);
    WAIT_FOR(t, V.ex->sendq_.n == 1, V.polls, V.rc);   /* parked: no room, the recall unanswered */
    assert_int_equal(V.ex->reserved_, SV_CAP);
    sl__chan_turn_end(V.ex);   /* queued for a grant: served when this turn ends */
    assert_true(V.ex->grant_queued_);
    WAIT_FOR(t, !V.ex->grant_queued_, V.polls, V.rc);   /* that turn ended: the grant was served */
    assert_false(atomic_load(&V.s_done));   /* before the fix: fired, -EPIPE, the element lost */
    assert_false(atomic_load(&V.snd_done));
    assert_int_equal(V.ex->rv_recvq_, 1);
    atomic_store(&V.release, 1);   /* the recall's answer brings the room: 42 enters, is offered, taken */
    WAIT_FOR(t, atomic_load(&V.s_done) && atomic_load(&V.snd_done) && atomic_load(&V.lender_done), V.polls, V.rc);
    assert_int_equal(V.src, 0);
    assert_int_equal(V.s_err, 0);
    assert_int_equal(V.got, 42);
    assert_int_equal(V.snd_rc, 0);
    WAIT_FOR(t, V.ex->rv_out_ == 0, V.polls, V.rc);
    assert_int_equal(sl_chan_len(V.ex), 0);
    assert_int_equal(sl_chan_free(t, V.ex), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_exp_serve_local_skips_proxy(void **s)
{
    (void)s;
    memset(&V, 0, sizeof V);
    run_scene(3, v_main);
}

/* ---- a select at the home meets another reactor's select ------------------------------ */

/* rv (cap 0) at reactor 0. S_H, a select on reactor 0 over [lh (a
 * rendezvous channel of reactor 0, the "idle" case), rv]; S_R, a select on
 * reactor 1 over [lr (its own, cap 1), rv] with the other operation on rv.
 * They must meet: S_H is claimed (its nodes off their queues) and offered
 * to S_R's proxy. On main both waited until their deadline. What happens
 * while the claim's offer is out is chosen by the scene, forced with the
 * offer hooks:
 *   R side, before S_R decides: nothing (accepted) or S_R's local case
 *   fires (declined);
 *   H side, right after the offer left: nothing; a try_send on lh (finds
 *   no node of S_H: -EAGAIN); a sender on lh that parks; S_H's deadline;
 *   its cancel; close lh; free lh; free rv. */
enum { GH_NONE, GH_TRY, GH_PARKED, GH_DEADLINE, GH_CANCEL, GH_CLOSE_L, GH_FREE_L, GH_FREE_RV };

static struct {
    bool r_first, h_sends, decline;
    int h_how;
    sl_chan *rv, *lh, *lr;
    sl_task *sh;
    _Atomic int sh_done, sr_done, snd_started, snd_done;
    int rc, polls, r_hooks, h_hooks, try_rc, snd_rc, drc;
    int sh_rc, sh_err, sr_rc, sr_err;
    int64_t hv, hl, rv_v, rl, lr_v, snd_v, drained;
    sl_case hc[2], rc_[2];
    int diag_wait, diag_n;   /* what diagnostics say of S_H while claimed */
    bool diag_ok;
} G;

/* What the diagnostics (a deadlock report, /debug/tasks, sl_task_why) say
 * of a select claimed or held for an offer: a select waiting on its two
 * cases, named. They once took its cases for a channel (the wait is a
 * cross-reactor one while the offer is out) and read a name out of the
 * case array. */
static bool diag_of_offered_select(sl_task *t, const char *c0, const char *c1, int *wait, int *n)
{
    sl_task_info in;
    sl_task_info_get(t, &in);
    sl_wait_case cs[4];
    *wait = in.wait;
    *n = sl_task_why(t, cs, 4);
    return in.wait_name == NULL && *n == 2 && cs[0].chan && !strcmp(cs[0].chan, c0) && cs[1].chan &&
           !strcmp(cs[1].chan, c1);
}

static void g_r_hook(void *arg)   /* reactor 1, before S_R decides */
{
    (void)arg;
    if (++G.r_hooks > 1)
        return;
    if (G.h_how == GH_PARKED) {   /* the home's sender on lh has run (and parked) before the answer is read there */
        uint64_t end = sl_now_ns() + LONG_WAIT;
        while (!atomic_load(&G.snd_started) && sl_now_ns() < end)
            sched_yield();
        assert_true(atomic_load(&G.snd_started));
    }
    if (G.decline) {
        G.lr_v = 777;
        assert_int_equal(sl_chan_try_send(NULL, G.lr, &G.lr_v), 0);   /* S_R fires its local case */
    }
}

static int g_lh_sender(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    G.snd_v = 555;
    atomic_store(&G.snd_started, 1);   /* it parks in this same step */
    SL_AWAIT(t, G.snd_rc, sl_chan_send(t, G.lh, &G.snd_v));
    atomic_store(&G.snd_done, 1);
    SL_END(t);
}

static void g_h_hook(void *arg)   /* reactor 0, the claim's offer just posted */
{
    (void)arg;
    if (++G.h_hooks > 1)
        return;
    assert_false(atomic_load(&G.sh_done));
    assert_int_equal(G.lh->recvq_.n, 0);   /* claimed: S_H's nodes are off their queues */
    G.diag_ok = diag_of_offered_select(G.sh, "lh", "rv", &G.diag_wait, &G.diag_n);
    switch (G.h_how) {
    case GH_TRY:
        G.snd_v = 555;
        G.try_rc = sl_chan_try_send(NULL, G.lh, &G.snd_v);
        break;
    case GH_PARKED: assert_int_equal(sl_spawn(NULL, g_lh_sender, NULL, NULL, NULL), 0); break;
    case GH_DEADLINE: sl__timer_fire(R(0), G.sh->wake_at_); break;   /* S_H's deadline, now */
    case GH_CANCEL: assert_int_equal(sl_task_cancel(G.sh, 0), 0); break;
    case GH_CLOSE_L: assert_int_equal(sl_chan_close(NULL, G.lh), 0); break;
    case GH_FREE_L: assert_int_equal(sl_chan_free(NULL, G.lh), 0); break;
    case GH_FREE_RV: assert_int_equal(sl_chan_free(NULL, G.rv), 0); break;
    }
}

static int g_hsel(sl_task *t, void *arg)   /* reactor 0: S_H */
{
    (void)arg;
    SL_BEGIN(t);
    G.sh = t;
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    G.hv = G.h_sends ? 43 : -1;
    G.hl = -1;
    G.hc[0] = (sl_case){ .ch = G.lh, .op = SL_RECV, .buf = &G.hl };
    G.hc[1] = (sl_case){ .ch = G.rv, .op = G.h_sends ? SL_SEND : SL_RECV, .buf = &G.hv };
    SL_AWAIT(t, G.sh_rc, sl_select(t, G.hc, 2, 0));
    if (G.sh_rc >= 0)
        G.sh_err = G.hc[G.sh_rc].err;
    atomic_store(&G.sh_done, 1);
    SL_END(t);
}

static int g_rsel(sl_task *t, void *arg)   /* reactor 1: S_R */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&G.lr, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "lr" }), 0);
    G.rv_v = G.h_sends ? -1 : 42;
    G.rl = -1;
    G.rc_[0] = (sl_case){ .ch = G.lr, .op = SL_RECV, .buf = &G.rl };
    G.rc_[1] = (sl_case){ .ch = G.rv, .op = G.h_sends ? SL_RECV : SL_SEND, .buf = &G.rv_v };
    SL_AWAIT(t, G.sr_rc, sl_select(t, G.rc_, 2, 0));
    if (G.sr_rc >= 0)
        G.sr_err = G.rc_[G.sr_rc].err;
    assert_int_equal(sl_chan_len(G.lr), 0);
    assert_int_equal(sl_chan_free(t, G.lr), 0);
    atomic_store(&G.sr_done, 1);
    SL_END(t);
}

static int g_main(sl_task *t, void *arg)   /* reactor 0: rv's and lh's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&G.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_chan_new(&G.lh, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "lh" }), 0);
    assert_int_equal(sl_chan_give(G.rv, t, NULL), 0);   /* the hook may close or free them */
    assert_int_equal(sl_chan_give(G.lh, t, NULL), 0);
    if (G.r_first) {
        assert_int_equal(sl_spawn_on(R(1), g_rsel, NULL, NULL), 0);
        WAIT_FOR(t, G.rv->rv_sendq_ + G.rv->rv_recvq_ == 1, G.polls, G.rc);   /* S_R's proxy is queued here */
        assert_int_equal(sl_spawn(NULL, g_hsel, NULL, NULL, NULL), 0);   /* claimed as it parks */
    } else {
        assert_int_equal(sl_spawn(NULL, g_hsel, NULL, NULL, NULL), 0);
        WAIT_FOR(t, G.lh->recvq_.n == 1, G.polls, G.rc);   /* S_H parked */
        assert_int_equal(sl_spawn_on(R(1), g_rsel, NULL, NULL), 0);   /* claimed as its proxy arrives */
    }
    WAIT_FOR(t, atomic_load(&G.sr_done), G.polls, G.rc);
    if (G.decline && (G.h_how == GH_NONE || G.h_how == GH_TRY)) {
        /* S_H waits again, its nodes back: a plain send on lh meets it */
        WAIT_FOR(t, G.lh->recvq_.n == 1, G.polls, G.rc);
        G.snd_v = 556;
        assert_int_equal(sl_chan_try_send(t, G.lh, &G.snd_v), 0);
    }
    WAIT_FOR(t, atomic_load(&G.sh_done), G.polls, G.rc);
    if (G.h_how == GH_PARKED) {
        if (!G.decline) {   /* the sender still waits on lh */
            SL_AWAIT(t, G.drc, sl_chan_recv(t, G.lh, &G.drained));
            assert_int_equal(G.drc, 0);
            assert_int_equal(G.drained, 555);
        }
        WAIT_FOR(t, atomic_load(&G.snd_done), G.polls, G.rc);
        assert_int_equal(G.snd_rc, 0);
    }
    if (G.h_how != GH_FREE_RV) {
        WAIT_FOR(t, G.rv->rv_out_ == 0, G.polls, G.rc);   /* no proxy or offer left behind */
        assert_int_equal(sl_chan_free(NULL, G.rv), 0);
    }
    if (G.h_how != GH_FREE_L)
        assert_int_equal(sl_chan_free(NULL, G.lh), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_g(bool r_first, bool h_sends, bool decline, int h_how)
{
    memset(&G, 0, sizeof G);
    G.r_first = r_first;
    G.h_sends = h_sends;
    G.decline = decline;
    G.h_how = h_how;
    G.try_rc = 1;
    sl__rsel_set_hooks(g_r_hook, g_h_hook, NULL);
    run_scene(2, g_main);
    assert_int_equal(G.r_hooks, 1);   /* one offer, decided once */
    assert_int_equal(G.h_hooks, 1);
    assert_int_equal(G.diag_wait, SL_WAIT_SELECT);   /* claimed, S_H is told as a select */
    assert_int_equal(G.diag_n, 2);
    assert_true(G.diag_ok);
    if (h_how == GH_TRY)
        assert_int_equal(G.try_rc, -EAGAIN);   /* S_H claimed: not fired by a local operation */
    if (decline) {   /* S_R took its local case */
        assert_int_equal(G.sr_rc, 0);
        assert_int_equal(G.sr_err, 0);
        assert_int_equal(G.rl, 777);
        assert_int_equal(h_sends ? G.rv_v : G.hv, -1);   /* nothing received through rv */
        return;
    }
    /* accepted: both took rv, the element moved once */
    assert_int_equal(G.sr_rc, 1);
    assert_int_equal(G.sr_err, 0);
    assert_int_equal(G.sh_rc, 1);
    assert_int_equal(G.sh_err, 0);
    if (h_sends)
        assert_int_equal(G.rv_v, 43);
    else
        assert_int_equal(G.hv, 42);
    assert_int_equal(G.hl, -1);
}

/* the plain meet, both orders of arrival, both directions */
static void test_meet_h_recv_r_first(void **s) { (void)s; run_g(true, false, false, GH_NONE); }
static void test_meet_h_recv_h_first(void **s) { (void)s; run_g(false, false, false, GH_NONE); }
static void test_meet_h_send_r_first(void **s) { (void)s; run_g(true, true, false, GH_NONE); }
static void test_meet_h_send_h_first(void **s) { (void)s; run_g(false, true, false, GH_NONE); }

/* a local try_send on S_H's other case while claimed finds no node
 * (-EAGAIN); accepted, S_H returns rv */
static void test_meet_claimed_not_fired_accepted(void **s) { (void)s; run_g(true, false, false, GH_TRY); }

/* the same, declined: S_H's nodes are back, a later send on lh meets it */
static void test_meet_claimed_not_fired_declined(void **s)
{
    (void)s;
    run_g(false, false, true, GH_TRY);
    assert_int_equal(G.sh_rc, 0);
    assert_int_equal(G.sh_err, 0);
    assert_int_equal(G.hl, 556);
}

/* declined: a sender that parked on lh while S_H was claimed meets it at
 * the re-match */
static void test_meet_declined_parked_sender_meets(void **s)
{
    (void)s;
    run_g(true, false, true, GH_PARKED);
    assert_int_equal(G.sh_rc, 0);
    assert_int_equal(G.sh_err, 0);
    assert_int_equal(G.hl, 555);
}

/* accepted: that sender stays parked, S_H took rv */
static void test_meet_accepted_parked_sender_waits(void **s) { (void)s; run_g(false, true, false, GH_PARKED); }

/* S_H's deadline and cancel with the claim out: it waits for the answer */
static void test_meet_claimed_deadline_accepted(void **s) { (void)s; run_g(true, false, false, GH_DEADLINE); }
static void test_meet_claimed_cancel_accepted(void **s) { (void)s; run_g(true, true, false, GH_CANCEL); }

static void test_meet_claimed_deadline_declined(void **s)
{
    (void)s;
    run_g(true, false, true, GH_DEADLINE);
    assert_int_equal(G.sh_rc, -ETIMEDOUT);
}

static void test_meet_claimed_cancel_declined(void **s)
{
    (void)s;
    run_g(false, true, true, GH_CANCEL);
    assert_int_equal(G.sh_rc, -ECANCELED);
}

/* close and free of S_H's other channel, and free of rv, with the claim out */
static void test_meet_claimed_close_other_accepted(void **s) { (void)s; run_g(true, false, false, GH_CLOSE_L); }
static void test_meet_claimed_free_other_accepted(void **s) { (void)s; run_g(true, false, false, GH_FREE_L); }
static void test_meet_claimed_free_rv_accepted(void **s) { (void)s; run_g(true, true, false, GH_FREE_RV); }

static void test_meet_claimed_close_other_declined(void **s)
{
    (void)s;
    run_g(true, false, true, GH_CLOSE_L);
    assert_int_equal(G.sh_rc, 0);
    assert_int_equal(G.sh_err, -EPIPE);
}

static void test_meet_claimed_free_other_declined(void **s)
{
    (void)s;
    run_g(true, false, true, GH_FREE_L);   /* -EPIPE, lh's header not read (ASan) */
    assert_int_equal(G.sh_rc, 0);
    assert_int_equal(G.sh_err, -EPIPE);
}

static void test_meet_claimed_free_rv_declined(void **s)
{
    (void)s;
    run_g(false, false, true, GH_FREE_RV);
    assert_int_equal(G.sh_rc, 1);
    assert_int_equal(G.sh_err, -EPIPE);
}

/* Declined by one remote select, S_H is claimed again for the next proxy
 * queued: S_R1 (reactor 1) and S_R2 (reactor 2) wait to send on rv; S_H
 * parks to receive and is claimed for S_R1's proxy (the first); S_R1
 * fires its local case first (forced at its hook) and declines; S_H's
 * re-match finds nothing ready, puts its nodes back and is claimed for
 * S_R2's proxy, which accepts: S_H receives 42, S_R1 sent nothing. */
static struct {
    sl_chan *rv, *lh, *l1;
    _Atomic int r1_done, r2_done, l1_made;
    int rc, polls, r_hooks, h_hooks, hrc, herr, r1rc, r2rc, r2err, hdone;
    _Atomic int r_hooks1;
    int64_t hv, v1, v2, lv, l1v;
    sl_case hc[2], c1[2], c2[1];
} GR;

static void gr_r_hook(void *arg)   /* reactors 1 and 2, before their select decides */
{
    (void)arg;
    if (sl_reactor_current() != R(1) || atomic_fetch_add(&GR.r_hooks1, 1))
        return;
    GR.lv = 777;
    assert_int_equal(sl_chan_try_send(NULL, GR.l1, &GR.lv), 0);   /* S_R1 fires its local case: declined */
}

static void gr_h_hook(void *arg)
{
    (void)arg;
    GR.h_hooks++;
}

static int gr_s1(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&GR.l1, sizeof(int64_t), 1, NULL), 0);
    atomic_store(&GR.l1_made, 1);
    GR.v1 = 41;
    GR.c1[0] = (sl_case){ .ch = GR.l1, .op = SL_RECV, .buf = &GR.l1v };
    GR.c1[1] = (sl_case){ .ch = GR.rv, .op = SL_SEND, .buf = &GR.v1 };
    SL_AWAIT(t, GR.r1rc, sl_select(t, GR.c1, 2, 0));
    assert_int_equal(sl_chan_free(t, GR.l1), 0);
    atomic_store(&GR.r1_done, 1);
    SL_END(t);
}

static int gr_s2(sl_task *t, void *arg)   /* reactor 2 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    GR.v2 = 42;
    GR.c2[0] = (sl_case){ .ch = GR.rv, .op = SL_SEND, .buf = &GR.v2 };
    SL_AWAIT(t, GR.r2rc, sl_select(t, GR.c2, 1, 0));
    if (GR.r2rc >= 0)
        GR.r2err = GR.c2[GR.r2rc].err;
    atomic_store(&GR.r2_done, 1);
    SL_END(t);
}

static int gr_hsel(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    GR.hv = -1;
    GR.hc[0] = (sl_case){ .ch = GR.lh, .op = SL_RECV, .buf = &GR.hv };
    GR.hc[1] = (sl_case){ .ch = GR.rv, .op = SL_RECV, .buf = &GR.hv };
    SL_AWAIT(t, GR.hrc, sl_select(t, GR.hc, 2, 0));
    if (GR.hrc >= 0)
        GR.herr = GR.hc[GR.hrc].err;
    GR.hdone = 1;
    SL_END(t);
}

static int gr_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&GR.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_chan_new(&GR.lh, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "lh" }), 0);
    assert_int_equal(sl_spawn_on(R(1), gr_s1, NULL, NULL), 0);
    WAIT_FOR(t, GR.rv->rv_sendq_ == 1, GR.polls, GR.rc);   /* S_R1's proxy first */
    assert_int_equal(sl_spawn_on(R(2), gr_s2, NULL, NULL), 0);
    WAIT_FOR(t, GR.rv->rv_sendq_ == 2, GR.polls, GR.rc);
    assert_int_equal(sl_spawn(NULL, gr_hsel, NULL, NULL, NULL), 0);
    WAIT_FOR(t, GR.hdone && atomic_load(&GR.r1_done) && atomic_load(&GR.r2_done), GR.polls, GR.rc);
    WAIT_FOR(t, GR.rv->rv_out_ == 0, GR.polls, GR.rc);
    assert_int_equal(sl_chan_free(t, GR.rv), 0);
    assert_int_equal(sl_chan_free(t, GR.lh), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_meet_declined_reclaims_next_proxy(void **s)
{
    (void)s;
    memset(&GR, 0, sizeof GR);
    sl__rsel_set_hooks(gr_r_hook, gr_h_hook, NULL);
    run_scene(3, gr_main);
    assert_int_equal(GR.h_hooks, 2);   /* two claims, two offers */
    assert_int_equal(atomic_load(&GR.r_hooks1), 1);
    assert_int_equal(GR.r1rc, 0);   /* S_R1: its local case */
    assert_int_equal(GR.l1v, 777);
    assert_int_equal(GR.r2rc, 0);
    assert_int_equal(GR.r2err, 0);
    assert_int_equal(GR.hrc, 1);
    assert_int_equal(GR.herr, 0);
    assert_int_equal(GR.hv, 42);
}

/* The runtime stops with S_H claimed, its offer to S_R just posted: the
 * teardown's drain decides the offer and the tasks' teardown forgets the
 * claim; nothing leaks but what is reported (ASan, valgrind). */
static struct {
    sl_chan *rv, *lh;
    int rc, hrc, rrc, polls, h_hooks;
    int64_t hv, rv_v;
    sl_case hc[2], rc_[1];
} GT;

static int gt_rsel(sl_task *t, void *arg)   /* reactor 1: never resumed after the stop */
{
    (void)arg;
    SL_BEGIN(t);
    GT.rv_v = 5;
    GT.rc_[0] = (sl_case){ .ch = GT.rv, .op = SL_SEND, .buf = &GT.rv_v };
    SL_AWAIT(t, GT.rrc, sl_select(t, GT.rc_, 1, 0));
    SL_END(t);
}

static int gt_hsel(sl_task *t, void *arg)   /* reactor 0: claimed as it parks */
{
    (void)arg;
    SL_BEGIN(t);
    GT.hc[0] = (sl_case){ .ch = GT.lh, .op = SL_RECV, .buf = &GT.hv };
    GT.hc[1] = (sl_case){ .ch = GT.rv, .op = SL_RECV, .buf = &GT.hv };
    SL_AWAIT(t, GT.hrc, sl_select(t, GT.hc, 2, 0));
    SL_END(t);
}

static void gt_stop_at_offer(void *arg)
{
    (void)arg;
    GT.h_hooks++;
    assert_int_equal(GT.rv->rv_out_, 1);
    sl_runtime_stop(rt);
}

static int gt_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&GT.rv, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&GT.lh, sizeof(int64_t), 0, NULL), 0);
    assert_int_equal(sl_chan_give(GT.rv, t, NULL), 0);
    assert_int_equal(sl_chan_give(GT.lh, t, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), gt_rsel, NULL, NULL), 0);
    WAIT_FOR(t, GT.rv->rv_sendq_ == 1, GT.polls, GT.rc);
    assert_int_equal(sl_spawn(NULL, gt_hsel, NULL, NULL, NULL), 0);   /* its claim's offer stops the runtime */
    SL_END(t);
}

static void test_meet_teardown_claim_out(void **s)
{
    (void)s;
    memset(&GT, 0, sizeof GT);
    memset(&cap, 0, sizeof cap);
    sl__rsel_set_hooks(NULL, gt_stop_at_offer, NULL);
    *scene_live() = true;
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run_keep(rt, gt_main, NULL), 0);
    int leaks = sl_runtime_free(rt);
    *scene_live() = false;
    sl__rsel_set_hooks(NULL, NULL, NULL);
    print_message("teardown with a claim out: %d leaks reported\n", leaks);
    assert_int_equal(GT.h_hooks, 1);
    assert_true(leaks >= 2);   /* the channels at least */
}

/* ---- sl_chan_send_until at the home offers to another reactor's select ---------------- */

/* ex0: an expiring rendezvous channel at reactor 0. A send with an element
 * deadline there offers itself to a select's receive proxy (reactor 1,
 * over [lr, ex0]), as a plain blocking send does; the deadline is judged
 * at the offer. On main it parked and never offered: the select and the
 * send waited until their deadlines. Scenes: the proxy first or the
 * sender first; the element's deadline passing while offered (accepted:
 * received; declined: -ETIMEDOUT); declined before it, the sender parks
 * again with its deadline and a receive at the home meets it. */
enum { US_PROXY_FIRST, US_SENDER_FIRST, US_EXPIRED_ACCEPTED, US_EXPIRED_DECLINED, US_DECLINED_REPARKED };

static struct {
    int how;
    sl_chan *ex0, *lr;
    _Atomic int s_done, snd_done;
    int rc, polls, r_hooks, src, serr, snd_rc, rrc;
    uint64_t until;
    int64_t got, v, lv, rgot;
    sl_case cs[2];
} U;

static void u_r_hook(void *arg)   /* reactor 1, before S decides */
{
    (void)arg;
    if (++U.r_hooks > 1)
        return;
    if (U.how == US_EXPIRED_ACCEPTED || U.how == US_EXPIRED_DECLINED) {
        uint64_t end = sl_now_ns() + LONG_WAIT;
        while (sl_now_ns() <= U.until && sl_now_ns() < end)
            sched_yield();   /* the element's deadline passes while offered */
    }
    if (U.how == US_EXPIRED_DECLINED || U.how == US_DECLINED_REPARKED) {
        U.lv = 777;
        assert_int_equal(sl_chan_try_send(NULL, U.lr, &U.lv), 0);   /* S fires its local case: declined */
    }
}

static int u_select(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&U.lr, sizeof(int64_t), 1, NULL), 0);
    U.got = -1;
    U.cs[0] = (sl_case){ .ch = U.lr, .op = SL_RECV, .buf = &U.got };
    U.cs[1] = (sl_case){ .ch = U.ex0, .op = SL_RECV, .buf = &U.got };
    SL_AWAIT(t, U.src, sl_select(t, U.cs, 2, 0));
    if (U.src >= 0)
        U.serr = U.cs[U.src].err;
    assert_int_equal(sl_chan_free(t, U.lr), 0);
    atomic_store(&U.s_done, 1);
    SL_END(t);
}

static int u_sender(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    U.v = 42;
    U.until = sl_now_ns() + (U.how == US_EXPIRED_ACCEPTED || U.how == US_EXPIRED_DECLINED ? 50 : 5000) * SL_NS_PER_MS;
    SL_AWAIT(t, U.snd_rc, sl_chan_send_until(t, U.ex0, &U.v, U.until));
    atomic_store(&U.snd_done, 1);
    SL_END(t);
}

static int u_main(sl_task *t, void *arg)   /* reactor 0: ex0's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&U.ex0, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "ex0", .expiring = true }), 0);
    if (U.how == US_SENDER_FIRST) {
        assert_int_equal(sl_spawn(NULL, u_sender, NULL, NULL, NULL), 0);
        WAIT_FOR(t, U.ex0->sendq_.n == 1, U.polls, U.rc);   /* parked with its element's deadline */
        assert_int_equal(sl_spawn_on(R(1), u_select, NULL, NULL), 0);   /* its proxy is offered the sender */
    } else {
        assert_int_equal(sl_spawn_on(R(1), u_select, NULL, NULL), 0);
        WAIT_FOR(t, U.ex0->rv_recvq_ == 1, U.polls, U.rc);
        assert_int_equal(sl_spawn(NULL, u_sender, NULL, NULL, NULL), 0);   /* offers itself */
    }
    WAIT_FOR(t, atomic_load(&U.s_done), U.polls, U.rc);
    if (U.how == US_DECLINED_REPARKED) {
        WAIT_FOR(t, U.ex0->sendq_.n == 1, U.polls, U.rc);   /* parked again, */
        assert_int_equal(U.ex0->sendq_.head->until, U.until);   /* its element's deadline kept */
        U.rgot = -1;
        SL_AWAIT(t, U.rrc, sl_chan_recv(t, U.ex0, &U.rgot));
        assert_int_equal(U.rrc, 0);
        assert_int_equal(U.rgot, 42);
    }
    WAIT_FOR(t, atomic_load(&U.snd_done), U.polls, U.rc);
    WAIT_FOR(t, U.ex0->rv_out_ == 0, U.polls, U.rc);
    assert_int_equal(sl_chan_free(t, U.ex0), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_u(int how)
{
    memset(&U, 0, sizeof U);
    U.how = how;
    sl__rsel_set_hooks(u_r_hook, NULL, NULL);
    run_scene(2, u_main);
    assert_int_equal(U.r_hooks, 1);   /* one offer, decided once */
    bool declined = how == US_EXPIRED_DECLINED || how == US_DECLINED_REPARKED;
    assert_int_equal(U.src, declined ? 0 : 1);
    assert_int_equal(U.serr, 0);
    assert_int_equal(U.got, declined ? 777 : 42);
    assert_int_equal(U.snd_rc, how == US_EXPIRED_DECLINED ? -ETIMEDOUT : 0);
}

static void test_send_until_offers_proxy_first(void **s) { (void)s; run_u(US_PROXY_FIRST); }
static void test_send_until_offers_sender_first(void **s) { (void)s; run_u(US_SENDER_FIRST); }
static void test_send_until_expired_while_offered_accepted(void **s) { (void)s; run_u(US_EXPIRED_ACCEPTED); }
static void test_send_until_expired_while_offered_declined(void **s) { (void)s; run_u(US_EXPIRED_DECLINED); }
static void test_send_until_declined_parks_with_deadline(void **s) { (void)s; run_u(US_DECLINED_REPARKED); }

/* ---- two selects of other reactors meet at the home (two-phase) --------------------- */

/* rv (cap 0) at reactor 0 (H). S1 on reactor 1 over [l1 (its own, cap 0,
 * idle), rv <- 42]; S2 on reactor 2 over [l2 (its own, cap 0, idle), <- rv].
 * They must meet: H asks reactor 1 to hold S1 (its l1 node off its queue),
 * then offers S1's element to S2's proxy; S2's answer commits or aborts
 * S1. On main both waited until their deadline. What happens around the
 * meet is forced with the hooks: at reactor 1 before the HOLD is decided
 * (S1's local case fires: GONE), right after S1 was held (its deadline, its
 * cancel), at H right after the HOLD left (close rv, free rv, stop the
 * runtime), and at reactor 2 before S2 decides (its local case fires:
 * declined, so S1 is aborted). */
enum { TW_NONE, TW_GONE, TW_DECLINE, TW_DEADLINE, TW_CANCEL, TW_CLOSE, TW_FREE, TW_TEARDOWN, TW_PAIR_GONE, TW_FREE_L1, TW_REUSE_Q2 };

static struct {
    bool s1_first, decline;
    int how;
    sl_chan *rv, *l1, *l2;
    sl_task *s1;
    _Atomic int s1_done, s2_done, hooks[9], r_offers, go;
    int fpolls, frc;
    int rc, polls, s1_rc, s1_err, s2_rc, s2_err, prc;
    int64_t v1, l1v, v2, l2v, pv;
    sl_case c1[2], c2[2];
    int diag_wait, diag_n;   /* what diagnostics say of S1 while held */
    bool diag_ok, diag_gone;
    /* TW_REUSE_Q2: S1's first case is on q2 (reactor 2's, buffered),
     * freed and its header reused while S1 is held */
    sl_chan *q2;
    _Atomic int q2_made, reused, q2_done;
    bool same;
    int qpolls, qrc, yrc;
    int64_t qv, yv;
} TW;

static int tw_fire_l2(sl_task *t, void *arg)   /* reactor 2: S2 fires its local case when told */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&TW.go), TW.fpolls, TW.frc);
    TW.l2v = 777;
    assert_int_equal(sl_chan_try_send(NULL, TW.l2, &TW.l2v), 0);
    SL_END(t);
}

static void tw_hold_hook(void *arg, int phase)
{
    (void)arg;
    if (atomic_fetch_add(&TW.hooks[phase], 1))
        return;
    switch (phase) {
    case 0:   /* reactor 1, the HOLD not decided yet */
        if (TW.how == TW_PAIR_GONE) {   /* S2 stops and its proxy is withdrawn at H, paired */
            atomic_store(&TW.go, 1);   /* tw_fire_l2, polling on reactor 2 */
            uint64_t end = sl_now_ns() + LONG_WAIT;
            while (!atomic_load(&TW.hooks[3]) && sl_now_ns() < end)
                sched_yield();
            assert_true(atomic_load(&TW.hooks[3]));
        }
        if (TW.how == TW_GONE) {
            TW.l1v = 777;
            assert_int_equal(sl_chan_try_send(NULL, TW.l1, &TW.l1v), 0);   /* S1 fires its local case */
        }
        break;
    case 1: {   /* reactor 1, S1 held */
        assert_int_equal(TW.l1->recvq_.n, 0);   /* its local node is off its queue */
        TW.diag_ok = diag_of_offered_select(TW.s1, "l1", "rv", &TW.diag_wait, &TW.diag_n);
        int64_t x = 778;
        assert_int_equal(sl_chan_try_send(NULL, TW.l1, &x), -EAGAIN);   /* nothing here fires it */
        if (TW.how == TW_DEADLINE)
            sl__timer_fire(R(1), TW.s1->wake_at_);
        else if (TW.how == TW_CANCEL)
            assert_int_equal(sl_task_cancel(TW.s1, 0), 0);
        else if (TW.how == TW_REUSE_Q2) {   /* q2 goes and its header is reused, S1 held (tw_q2) */
            uint64_t end = sl_now_ns() + LONG_WAIT;
            while (!atomic_load(&TW.reused) && sl_now_ns() < end)
                sched_yield();
            assert_true(atomic_load(&TW.reused));
        } else if (TW.how == TW_FREE_L1) {   /* S1's node on l1 is on no queue: marked gone */
            assert_int_equal(sl_chan_free(NULL, TW.l1), 0);
            sl_wait_case cs[2];   /* and the diagnostics do not read it */
            TW.diag_gone = sl_task_why(TW.s1, cs, 2) == 2 && !strcmp(cs[0].chan, "(freed)") &&
                           cs[0].why == SL_WHY_CLOSED;
        }
        break;
    }
    case 2:   /* H, the HOLD on its way */
        if (TW.how == TW_CLOSE)
            assert_int_equal(sl_chan_close(NULL, TW.rv), 0);
        else if (TW.how == TW_FREE)
            assert_int_equal(sl_chan_free(NULL, TW.rv), 0);
        else if (TW.how == TW_TEARDOWN)
            sl_runtime_stop(rt);
        break;
    }
}

static void tw_r_hook(void *arg)   /* the first: reactor 2, before S2 decides */
{
    (void)arg;
    if (atomic_fetch_add(&TW.r_offers, 1) || !TW.decline)
        return;
    TW.l2v = 777;
    assert_int_equal(sl_chan_try_send(NULL, TW.l2, &TW.l2v), 0);   /* S2 fires its local case: declined */
}

static int tw_s1(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    TW.s1 = t;
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&TW.l1, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "l1" }), 0);
    assert_int_equal(sl_chan_give(TW.l1, t, NULL), 0);   /* the hook may free it */
    TW.v1 = 42;
    TW.l1v = -1;
    TW.c1[0] = (sl_case){ .ch = TW.how == TW_REUSE_Q2 ? TW.q2 : TW.l1, .op = SL_RECV, .buf = &TW.l1v };
    TW.c1[1] = (sl_case){ .ch = TW.rv, .op = SL_SEND, .buf = &TW.v1 };
    SL_AWAIT(t, TW.s1_rc, sl_select(t, TW.c1, 2, 0));
    if (TW.s1_rc >= 0)
        TW.s1_err = TW.c1[TW.s1_rc].err;
    if (TW.how != TW_FREE_L1)
        assert_int_equal(sl_chan_free(NULL, TW.l1), 0);
    atomic_store(&TW.s1_done, 1);
    SL_END(t);
}

static int tw_s2(sl_task *t, void *arg)   /* reactor 2 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&TW.l2, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "l2" }), 0);
    TW.v2 = -1;
    TW.l2v = -1;
    TW.c2[0] = (sl_case){ .ch = TW.l2, .op = SL_RECV, .buf = &TW.l2v };
    TW.c2[1] = (sl_case){ .ch = TW.rv, .op = SL_RECV, .buf = &TW.v2 };
    SL_AWAIT(t, TW.s2_rc, sl_select(t, TW.c2, 2, 0));
    if (TW.s2_rc >= 0)
        TW.s2_err = TW.c2[TW.s2_rc].err;
    assert_int_equal(sl_chan_free(t, TW.l2), 0);
    atomic_store(&TW.s2_done, 1);
    SL_END(t);
}

/* reactor 2, TW_REUSE_Q2: q2's home. Once S1 is held (its q2 node pinned
 * off its queue, the record kept), q2 is freed and the next channel made
 * here takes its header (past the quarantine), with 9 in it; S1's hook
 * waits for that. */
static int tw_q2(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&TW.q2, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "q2" }), 0);
    atomic_store(&TW.q2_made, 1);
    WAIT_FOR(t, atomic_load(&TW.hooks[1]) >= 1, TW.qpolls, TW.qrc);
    {
        sl_chan *old = TW.q2;
        assert_int_equal(sl_chan_free(t, TW.q2), 0);
        chan_churn(t, SL_CHAN_QUARANTINE, sizeof(int64_t), 1);
        assert_int_equal(sl_chan_new(&TW.q2, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "q2-new" }), 0);
        TW.same = TW.q2 == old;
    }
    TW.qv = 9;   /* the bait: S1's put back, asking for the old q2, must not be lent it */
    assert_int_equal(sl_chan_try_send(t, TW.q2, &TW.qv), 0);
    atomic_store(&TW.reused, 1);
    WAIT_FOR(t, atomic_load(&TW.s1_done), TW.qpolls, TW.qrc);
    TW.yrc = sl_chan_try_recv(t, TW.q2, &TW.yv);   /* 9, received once, here */
    assert_int_equal(sl_chan_free(t, TW.q2), 0);
    atomic_store(&TW.q2_done, 1);
    SL_END(t);
}

static int tw_main(sl_task *t, void *arg)   /* reactor 0: rv's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    if (TW.how == TW_REUSE_Q2) {
        assert_int_equal(sl_spawn_on(R(2), tw_q2, NULL, NULL), 0);
        WAIT_FOR(t, atomic_load(&TW.q2_made), TW.polls, TW.rc);
    }
    assert_int_equal(sl_chan_new(&TW.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_chan_give(TW.rv, t, NULL), 0);   /* the hook may close or free it */
    if (TW.how == TW_PAIR_GONE)
        assert_int_equal(sl_spawn_on(R(2), tw_fire_l2, NULL, NULL), 0);
    if (TW.s1_first) {
        assert_int_equal(sl_spawn_on(R(1), tw_s1, NULL, NULL), 0);
        WAIT_FOR(t, TW.rv->rv_sendq_ == 1, TW.polls, TW.rc);   /* S1's proxy is queued here */
        assert_int_equal(sl_spawn_on(R(2), tw_s2, NULL, NULL), 0);
    } else {
        assert_int_equal(sl_spawn_on(R(2), tw_s2, NULL, NULL), 0);
        WAIT_FOR(t, TW.rv->rv_recvq_ == 1, TW.polls, TW.rc);
        assert_int_equal(sl_spawn_on(R(1), tw_s1, NULL, NULL), 0);
    }
    if (TW.how == TW_TEARDOWN)
        SL_AWAIT(t, TW.rc, sl_sleep(t, LONG_WAIT));   /* the hook stops the runtime */
    if (TW.how == TW_GONE) {   /* S2's proxy waits again: a plain send here meets it */
        WAIT_FOR(t, atomic_load(&TW.s1_done) && TW.rv->rv_recvq_ == 1, TW.polls, TW.rc);
        TW.pv = 99;
        SL_AWAIT(t, TW.prc, sl_chan_send(t, TW.rv, &TW.pv));
        assert_int_equal(TW.prc, 0);
    }
    if (TW.how == TW_DECLINE || TW.how == TW_PAIR_GONE) {   /* S1 waits again, its proxy queued: a plain receive here meets it */
        WAIT_FOR(t, atomic_load(&TW.s2_done) && TW.rv->rv_sendq_ == 1, TW.polls, TW.rc);
        SL_AWAIT(t, TW.prc, sl_chan_recv(t, TW.rv, &TW.pv));
        assert_int_equal(TW.prc, 0);
        assert_int_equal(TW.pv, 42);
    }
    WAIT_FOR(t, atomic_load(&TW.s1_done) && atomic_load(&TW.s2_done), TW.polls, TW.rc);
    if (TW.how == TW_REUSE_Q2)
        WAIT_FOR(t, atomic_load(&TW.q2_done), TW.polls, TW.rc);
    if (TW.how != TW_FREE) {
        WAIT_FOR(t, TW.rv->rv_out_ == 0, TW.polls, TW.rc);   /* no proxy, hold or offer left behind */
        assert_int_equal(sl_chan_free(NULL, TW.rv), 0);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void trun_w(bool s1_first, int how, bool decline)
{
    memset(&TW, 0, sizeof TW);
    TW.s1_first = s1_first;
    TW.how = how;
    TW.decline = decline || how == TW_DECLINE;
    sl__rsel_set_hooks(tw_r_hook, NULL, NULL);
    sl__rsel_set_hold_hook(tw_hold_hook, NULL);
    if (how == TW_TEARDOWN) {
        memset(&cap, 0, sizeof cap);
        *scene_live() = true;
        rt = rt_new(3, &cap);
        assert_int_equal(rt_run_keep(rt, tw_main, NULL), 0);
        int leaks = sl_runtime_free(rt);
        *scene_live() = false;
        print_message("teardown with a hold out: %d leaks reported\n", leaks);
        assert_true(leaks >= 3);   /* the channels at least */
    } else {
        run_scene(3, tw_main);
    }
    sl__rsel_set_hold_hook(NULL, NULL);
    sl__rsel_set_hooks(NULL, NULL, NULL);
    assert_int_equal(TW.hooks[0], 1);   /* one HOLD, decided once */
    assert_int_equal(TW.hooks[2], 1);
    if (how == TW_TEARDOWN)
        return;
    assert_int_equal(TW.hooks[1], how == TW_GONE ? 0 : 1);
    if (how != TW_GONE) {   /* held, S1 is told as a select */
        assert_int_equal(TW.diag_wait, SL_WAIT_SELECT);
        assert_int_equal(TW.diag_n, 2);
        assert_true(TW.diag_ok);
    }
    if (how == TW_FREE_L1)
        assert_true(TW.diag_gone);
    assert_int_equal(TW.hooks[3], how == TW_PAIR_GONE ? 1 : 0);
    if (how == TW_PAIR_GONE) {   /* held, nobody to offer to: aborted, then met the plain receiver */
        assert_int_equal(TW.s2_rc, 0);
        assert_int_equal(TW.l2v, 777);
        assert_int_equal(TW.v2, -1);
        assert_int_equal(TW.s1_rc, 1);
        assert_int_equal(TW.s1_err, 0);
        assert_int_equal(TW.pv, 42);
        assert_int_equal(TW.r_offers, 1);   /* the plain receiver's offer to S1 only */
        return;
    }
    switch (how) {
    case TW_GONE:   /* S1 took its local case; S2 met the plain sender */
        assert_int_equal(TW.s1_rc, 0);
        assert_int_equal(TW.s1_err, 0);
        assert_int_equal(TW.l1v, 777);
        assert_int_equal(TW.s2_rc, 1);
        assert_int_equal(TW.s2_err, 0);
        assert_int_equal(TW.v2, 99);
        return;
    case TW_CLOSE:
    case TW_FREE:   /* both cases on rv fail, nothing moved */
        assert_int_equal(TW.s1_rc, 1);
        assert_int_equal(TW.s1_err, -EPIPE);
        assert_int_equal(TW.s2_rc, 1);
        assert_int_equal(TW.s2_err, -EPIPE);
        assert_int_equal(TW.v2, -1);
        assert_int_equal(TW.r_offers, 0);
        return;
    }
    if (how == TW_FREE_L1 && TW.decline) {   /* aborted: l1's case, gone, without reading l1 */
        assert_int_equal(TW.s2_rc, 0);
        assert_int_equal(TW.s1_rc, 0);
        assert_int_equal(TW.s1_err, -EPIPE);
        return;
    }
    if (TW.decline) {   /* S2 took its local case, nothing through rv to it */
        assert_int_equal(TW.s2_rc, 0);
        assert_int_equal(TW.s2_err, 0);
        assert_int_equal(TW.l2v, 777);
        assert_int_equal(TW.v2, -1);
        if (how == TW_DEADLINE || how == TW_CANCEL) {   /* aborted: S1's own error */
            assert_int_equal(TW.s1_rc, how == TW_DEADLINE ? -ETIMEDOUT : -ECANCELED);
            return;
        }
        assert_int_equal(TW.s1_rc, 1);   /* TW_DECLINE: met the plain receiver afterwards */
        assert_int_equal(TW.s1_err, 0);
        assert_int_equal(TW.pv, 42);
        return;
    }
    /* committed: both took rv, the element moved once (a deadline or cancel while held waited) */
    assert_int_equal(TW.s1_rc, 1);
    assert_int_equal(TW.s1_err, 0);
    assert_int_equal(TW.s2_rc, 1);
    assert_int_equal(TW.s2_err, 0);
    assert_int_equal(TW.v2, 42);
    assert_int_equal(TW.l1v, -1);
}

static void test_meet2_s1_first(void **s) { (void)s; trun_w(true, TW_NONE, false); }
static void test_meet2_s2_first(void **s) { (void)s; trun_w(false, TW_NONE, false); }
static void test_meet2_gone_before_hold(void **s) { (void)s; trun_w(true, TW_GONE, false); }
static void test_meet2_declined_aborts(void **s) { (void)s; trun_w(false, TW_DECLINE, false); }
static void test_meet2_held_deadline_committed(void **s) { (void)s; trun_w(true, TW_DEADLINE, false); }
static void test_meet2_held_deadline_aborted(void **s) { (void)s; trun_w(true, TW_DEADLINE, true); }
static void test_meet2_held_cancel_committed(void **s) { (void)s; trun_w(false, TW_CANCEL, false); }
static void test_meet2_held_cancel_aborted(void **s) { (void)s; trun_w(false, TW_CANCEL, true); }
static void test_meet2_close_hold_out(void **s) { (void)s; trun_w(true, TW_CLOSE, false); }
static void test_meet2_free_hold_out(void **s) { (void)s; trun_w(false, TW_FREE, false); }
static void test_meet2_teardown_hold_out(void **s) { (void)s; trun_w(true, TW_TEARDOWN, false); }

/* The held twin of test_pinned_put_back_after_free_reuse: S1 [<- q2
 * (reactor 2's, buffered), rv <- 42] is held for S2's proxy at H, its q2
 * node pinned off its queue (the record kept); reactor 2 frees q2 and
 * makes a new channel at q2's address (past the quarantine: chan.c,
 * type-stable headers) with 9 in it. S2 declines (its local case fires),
 * H aborts the hold, and S1 is matched again and its node put back, asking
 * home for the old q2 by the record's generation: -EPIPE for S1's q2 case,
 * its buffer untouched, and the new channel keeps its 9 */
static void test_held_put_back_after_free_reuse(void **s)
{
    (void)s;
    memset(&TW, 0, sizeof TW);
    TW.s1_first = true;
    TW.how = TW_REUSE_Q2;
    TW.decline = true;
    sl__rsel_set_hooks(tw_r_hook, NULL, NULL);
    sl__rsel_set_hold_hook(tw_hold_hook, NULL);
    run_scene(3, tw_main);
    sl__rsel_set_hold_hook(NULL, NULL);
    print_message("new q2 at the old one's address: %s; S1 case %d err %d (%lld); the new q2 then: %d (%lld)\n",
                  TW.same ? "yes" : "no", TW.s1_rc, TW.s1_err, (long long)TW.l1v, TW.yrc, (long long)TW.yv);
    assert_int_equal(TW.hooks[0], 1);   /* one HOLD, S1 held once */
    assert_int_equal(TW.hooks[1], 1);
    assert_true(TW.same);
    assert_int_equal(TW.s1_rc, 0);
    assert_int_equal(TW.s1_err, -EPIPE);
    assert_int_equal(TW.l1v, -1);
    assert_int_equal(TW.s2_rc, 0);      /* S2 took its local case */
    assert_int_equal(TW.l2v, 777);
    assert_int_equal(TW.v2, -1);
    assert_int_equal(TW.yrc, 0);
    assert_int_equal(TW.yv, 9);
}
static void test_meet2_paired_proxy_withdrawn(void **s) { (void)s; trun_w(true, TW_PAIR_GONE, false); }
static void test_meet2_held_free_local_committed(void **s) { (void)s; trun_w(false, TW_FREE_L1, false); }
static void test_meet2_held_free_local_aborted(void **s) { (void)s; trun_w(true, TW_FREE_L1, true); }

/* ---- the meet race: selects at the home and on other reactors ------------------------- */

/* rv (cap 0) at reactor 0. Senders: select workers at the home (their
 * other case a receive on the home's local channel) and on reactor 2, and
 * a plain round trip from reactor 2; receivers: select workers at the home
 * and on reactor 1, and a plain receiver at the home. Every select worker
 * has random deadlines and is cancelled and replaced at random by its
 * driver; the plain ones have random deadlines. Every value whose send
 * returned 0 (the select chose rv with err 0) is received exactly once,
 * none other; every local value once. Home selects sending to reactor 1's
 * select workers and reactor 2's selects sending to the home's select
 * workers meet only by a claim: counted, and required. */
#define ZN 2000
#define ZL 300
enum { ZS_HSEL, ZS_RSEL, ZS_PLAIN, ZS_N };          /* senders: the home's selects, reactor 2's, a round trip */
enum { ZR_HSEL, ZR_RSEL, ZR_PLAIN, ZR_N };          /* receivers: the home's selects, reactor 1's, plain at the home */

static struct {
    sl_chan *rv, *l[3];
    _Atomic int stop, senders_done, locals_done, recv_done, frees_done;
    _Atomic long rv_ok, rv_got, local_got, dup, selects, cancels, timeouts;
    _Atomic long pair[ZR_N][ZS_N];
    _Atomic unsigned char sent[ZS_N * ZN], got[ZS_N * ZN], lgot[3][ZL];
    int rc, polls;
    bool far_recv;   /* reactor 1's select workers are the only receivers (no reactor 2 selects); the
                      * home's select senders' other case is idle */
    bool far_rr;     /* reactor 2's select senders and reactor 1's select receivers only: two-phase meets */
    int n_send, n_recv, n_local;
} Z;

typedef struct z_worker z_worker;
typedef struct {
    int k, role, send, rc, wrc, i, n;   /* k: reactor; role: ZS_* or ZR_*; i: the next value's index (senders) */
    sl_task *w;
    struct z_worker {
        void *d;
        int rc;
        int64_t v, got;
        sl_case cs[2];
    } ws;
} z_driver;

static uint64_t z_dl(sl_task *t)
{
    uint64_t r = sl__rand(t->reactor_);
    if (r % 4 == 0)
        return 0;
    return sl_now_ns() + 1000 + (r >> 8) % 60000;
}

static void z_got(int role, int64_t v)
{
    if (v < 0 || v >= ZS_N * ZN || atomic_fetch_add(&Z.got[v], 1) != 0) {
        atomic_fetch_add(&Z.dup, 1);
        return;
    }
    atomic_fetch_add(&Z.pair[role][v / ZN], 1);
    atomic_fetch_add(&Z.rv_got, 1);
}

static void z_local(int k, int64_t v)
{
    int64_t i = v - 1000000;
    assert_true(i >= 0 && i < ZL);
    if (atomic_fetch_add(&Z.lgot[k][i], 1))
        atomic_fetch_add(&Z.dup, 1);
    atomic_fetch_add(&Z.local_got, 1);
}

static int z_work(sl_task *t, void *arg)
{
    z_worker *w = arg;
    z_driver *d = w->d;
    SL_BEGIN(t);
    w->cs[0] = (sl_case){ .ch = Z.rv, .op = d->send ? SL_SEND : SL_RECV, .buf = d->send ? &w->v : &w->got };
    w->cs[1] = (sl_case){ .ch = Z.l[d->k], .op = SL_RECV, .buf = &w->got };
    while (!atomic_load(&Z.stop) && (!d->send || d->i < ZN)) {
        sl_task_set_deadline(t, z_dl(t));
        w->v = d->role * ZN + d->i;
        w->got = -1;
        SL_AWAIT(t, w->rc, sl_select(t, w->cs, 2, 0));
        atomic_fetch_add(&Z.selects, 1);
        if (w->rc == -ECANCELED)
            break;
        if (w->rc == -ETIMEDOUT) {
            atomic_fetch_add(&Z.timeouts, 1);
            continue;
        }
        assert_true(w->rc == 0 || w->rc == 1);
        assert_int_equal(w->cs[w->rc].err, 0);
        if (w->rc == 1) {
            z_local(d->k, w->got);
        } else if (d->send) {
            atomic_store(&Z.sent[w->v], 1);
            atomic_fetch_add(&Z.rv_ok, 1);
            d->i++;
        } else {
            z_got(d->role, w->got);
        }
    }
    SL_END(t);
}

static int z_drive(sl_task *t, void *arg)   /* the select workers of one role, cancelled at random */
{
    z_driver *d = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    while (!atomic_load(&Z.stop) && (!d->send || d->i < ZN)) {
        d->ws = (z_worker){ .d = d };
        assert_int_equal(sl_spawn(NULL, z_work, &d->ws, &d->w, &(sl_spawn_opts){ .joinable = true }), 0);
        SL_AWAIT(t, d->rc, sl_sleep(t, (sl__rand(t->reactor_) % 300) * 1000));
        if (sl_task_cancel(d->w, 0) == 0)
            atomic_fetch_add(&Z.cancels, 1);
        SL_AWAIT(t, d->rc, sl_task_join(t, d->w, &d->wrc));
        assert_int_equal(d->rc, 0);
        d->n++;
    }
    atomic_fetch_add(d->send ? &Z.senders_done : &Z.recv_done, 1);
    SL_END(t);
}

static int z_plain(sl_task *t, void *arg)   /* a round trip sender on reactor 2, or a receiver at the home */
{
    z_driver *d = arg;
    SL_BEGIN(t);
    while (!atomic_load(&Z.stop) && (!d->send || d->i < ZN)) {
        sl_task_set_deadline(t, sl_now_ns() + 1000 + sl__rand(t->reactor_) % 60000);   /* always: it must see the stop */
        d->ws.v = ZS_PLAIN * ZN + d->i;
        if (d->send)
            SL_AWAIT(t, d->rc, sl_chan_send(t, Z.rv, &d->ws.v));
        else
            SL_AWAIT(t, d->rc, sl_chan_recv(t, Z.rv, &d->ws.got));
        if (d->rc == -ETIMEDOUT)
            continue;
        assert_int_equal(d->rc, 0);
        if (d->send) {
            atomic_store(&Z.sent[d->ws.v], 1);
            atomic_fetch_add(&Z.rv_ok, 1);
            d->i++;
        } else {
            z_got(ZR_PLAIN, d->ws.got);
        }
    }
    atomic_fetch_add(d->send ? &Z.senders_done : &Z.recv_done, 1);
    SL_END(t);
}

static int z_feed(sl_task *t, void *arg)   /* the local channel of reactor k */
{
    z_driver *f = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    for (f->i = 0; f->i < ZL; f->i++) {
        f->ws.v = 1000000 + f->i;
        SL_AWAIT(t, f->rc, sl_chan_send(t, Z.l[f->k], &f->ws.v));
        assert_int_equal(f->rc, 0);
        if (f->i % 8 == 0)
            SL_AWAIT(t, f->rc, sl_sleep(t, 50000));
    }
    atomic_fetch_add(&Z.locals_done, 1);
    SL_END(t);
}

static z_driver zd[8], zf[3];

static int z_at(sl_task *t, void *arg)   /* reactor k: its local channel, feeder, drivers */
{
    int k = (int)(intptr_t)arg;
    (void)t;
    assert_int_equal(sl_chan_new(&Z.l[k], sizeof(int64_t), 4, NULL), 0);
    assert_int_equal(sl_chan_give(Z.l[k], t, NULL), 0);   /* z_free_local frees it */
    zf[k] = (z_driver){ .k = k };
    if (Z.far_rr ? k != 0 : !Z.far_recv || k == 1)   /* far_recv: reactor 2 has no select, and the home's stop after their sends: idle cases */
        assert_int_equal(sl_spawn(NULL, z_feed, &zf[k], NULL, NULL), 0);
    if (k == 0) {
        zd[0] = (z_driver){ .k = 0, .role = ZS_HSEL, .send = 1 };
        zd[1] = (z_driver){ .k = 0, .role = ZR_HSEL };
        zd[2] = (z_driver){ .k = 0, .role = ZR_PLAIN };
        if (!Z.far_rr)
            assert_int_equal(sl_spawn(NULL, z_drive, &zd[0], NULL, NULL), 0);
        if (!Z.far_recv && !Z.far_rr) {
            assert_int_equal(sl_spawn(NULL, z_drive, &zd[1], NULL, NULL), 0);
            assert_int_equal(sl_spawn(NULL, z_plain, &zd[2], NULL, NULL), 0);
        }
    } else if (k == 1) {
        zd[3] = (z_driver){ .k = 1, .role = ZR_RSEL };
        assert_int_equal(sl_spawn(NULL, z_drive, &zd[3], NULL, NULL), 0);
    } else {
        zd[4] = (z_driver){ .k = 2, .role = ZS_RSEL, .send = 1 };
        zd[5] = (z_driver){ .k = 2, .role = ZS_PLAIN, .send = 1 };
        if (!Z.far_recv)   /* far_recv: no receiver but reactor 1's selects, so the home's selects meet them */
            assert_int_equal(sl_spawn(NULL, z_drive, &zd[4], NULL, NULL), 0);
        if (!Z.far_rr)
            assert_int_equal(sl_spawn(NULL, z_plain, &zd[5], NULL, NULL), 0);
    }
    return 0;
}

static int z_free_local(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    (void)t;
    assert_int_equal(sl_chan_len(Z.l[k]), 0);
    assert_int_equal(sl_chan_free(NULL, Z.l[k]), 0);
    atomic_fetch_add(&Z.frees_done, 1);
    return 0;
}

static int z_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    assert_int_equal(sl_chan_new(&Z.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    assert_int_equal(sl_spawn(NULL, z_at, (void *)0, NULL, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), z_at, (void *)1, NULL), 0);
    assert_int_equal(sl_spawn_on(R(2), z_at, (void *)2, NULL), 0);
    for (Z.polls = 0; Z.polls < 3 * POLLS; Z.polls++) {
        if (atomic_load(&Z.senders_done) == Z.n_send && atomic_load(&Z.locals_done) == Z.n_local &&
            atomic_load(&Z.rv_got) >= atomic_load(&Z.rv_ok) && atomic_load(&Z.local_got) == Z.n_local * ZL)
            break;
        SL_AWAIT(t, Z.rc, sl_sleep(t, SL_NS_PER_MS));
    }
    assert_true(Z.polls < 3 * POLLS);   /* everything came, not the bound */
    atomic_store(&Z.stop, 1);
    WAIT_FOR(t, atomic_load(&Z.recv_done) == Z.n_recv, Z.polls, Z.rc);
    for (Z.rc = 0; Z.rc < 3; Z.rc++)
        assert_int_equal(sl_spawn_on(R(Z.rc), z_free_local, (void *)(intptr_t)Z.rc, NULL), 0);
    WAIT_FOR(t, atomic_load(&Z.frees_done) == 3 && Z.rv->rv_out_ == 0, Z.polls, Z.rc);
    assert_int_equal(sl_chan_free(t, Z.rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_z(bool far_recv, bool far_rr)
{
    memset(&Z, 0, sizeof Z);
    memset(zd, 0, sizeof zd);
    Z.far_recv = far_recv;
    Z.far_rr = far_rr;
    Z.n_send = far_rr ? 1 : far_recv ? 2 : 3;
    Z.n_recv = far_rr || far_recv ? 1 : 3;
    Z.n_local = far_rr ? 2 : far_recv ? 1 : 3;
    run_scene(3, z_main);
    long ok = 0, got = 0, bad = 0;
    for (int v = 0; v < ZS_N * ZN; v++) {
        ok += Z.sent[v];
        got += Z.got[v];
        bad += Z.sent[v] != Z.got[v];
    }
    print_message("meet race: %ld sent, %ld received; home select -> reactor 1's selects %ld, reactor 2's selects -> "
                  "home selects %ld, reactor 2's selects -> reactor 1's %ld; %ld selects, %ld cancels, %ld timeouts\n",
                  ok, got, (long)Z.pair[ZR_RSEL][ZS_HSEL], (long)Z.pair[ZR_HSEL][ZS_RSEL], (long)Z.pair[ZR_RSEL][ZS_RSEL],
                  (long)Z.selects,
                  (long)Z.cancels, (long)Z.timeouts);
    assert_int_equal(Z.dup, 0);
    assert_int_equal(bad, 0);   /* each sent value received once, none other */
    assert_int_equal(ok, Z.n_send * ZN);
    assert_int_equal(Z.local_got, Z.n_local * ZL);
    /* The home's select senders met reactor 1's selects only: every one a
     * claim. (In the mixed round the claimed meets are printed, not
     * required: the plain receiver at the home, nearly always parked,
     * goes first, and 2 of 30 runs had none.) */
    if (far_recv)
        assert_int_equal(Z.pair[ZR_RSEL][ZS_HSEL], ZN);
    /* reactor 2's select senders met reactor 1's select workers only:
     * every one of their sends two-phase (on main: none, both waited) */
    if (far_rr)
        assert_int_equal(Z.pair[ZR_RSEL][ZS_RSEL], ZN);
}

static void test_meet_race(void **s) { (void)s; run_z(false, false); }
static void test_meet_race_far_receivers(void **s) { (void)s; run_z(true, false); }
static void test_meet2_race_remote_selects(void **s) { (void)s; run_z(false, true); }

/* ---- the race ------------------------------------------------------------------------ */

/* rv (cap 0) at reactor 0. Senders: one at the home (blocking: offers) and
 * one on reactor 2 (round trips: offers from remote.c), each with random
 * deadlines. Receivers: select workers on reactors 1 and 2 over [rv, a
 * local channel fed there], with random deadlines, cancelled at random by
 * a driver that joins them and starts the next; and a plain receiver at
 * the home with random deadlines. Every send that returned 0 is received
 * exactly once, none that failed; every local element once. */
#define RACE_N 5000
#define RACE_LOCAL 500

static struct {
    sl_chan *rv, *l[3];
    _Atomic int stop, senders_done, locals_done, drivers_done;
    _Atomic long rv_ok, rv_got, local_got;
    _Atomic unsigned char sent[2 * RACE_N], got[2 * RACE_N], lgot[3][RACE_LOCAL];
    _Atomic long selects, cancels, timeouts, dup;
    int rc, polls;
    /* the expiring variant: rv is an expiring channel of 8, every send
     * carries a random element deadline; its on_expire and destructor
     * count per element */
    bool exp;
    bool exp_rv;   /* ... or an expiring rendezvous channel: the home's sends with element deadlines
                    * offer to the select workers' proxies (the remote sender's are plain: -EXDEV) */
    _Atomic unsigned char expired[2 * RACE_N], dropped[2 * RACE_N];
} X;

typedef struct { int k, i, rc; int64_t v; } x_sender;
typedef struct { int k, i, rc; int64_t v; } x_feeder;
typedef struct { int k, rc; int64_t got; sl_case cs[2]; } x_worker;
typedef struct { int k, rc, wrc, n; sl_task *w; x_worker ws; } x_driver;
typedef struct { int rc; int64_t got; } x_plain;

static uint64_t x_dl(sl_task *t, unsigned in4)
{
    uint64_t r = sl__rand(t->reactor_);
    if (r % 4 >= in4)
        return 0;
    return sl_now_ns() + 1000 + (r >> 8) % 50000;   /* 1-51 us: about an offer's round trip */
}

static void x_count_rv(int64_t v)
{
    if (v < 0 || v >= 2 * RACE_N || atomic_fetch_add(&X.got[v], 1) != 0)
        atomic_fetch_add(&X.dup, 1);
    atomic_fetch_add(&X.rv_got, 1);
}

static int x_send(sl_task *t, void *arg)
{
    x_sender *s = arg;
    SL_BEGIN(t);
    for (s->i = 0; s->i < RACE_N; s->i++) {
        s->v = s->k * RACE_N + s->i;
        sl_task_set_deadline(t, x_dl(t, 2));
        if (X.exp && (!X.exp_rv || s->k == 0))   /* 0-400 us: some expire in the ring, some while offered */
            SL_AWAIT(t, s->rc, sl_chan_send_until(t, X.rv, &s->v, sl_now_ns() + sl__rand(t->reactor_) % 400000 + 1));
        else
            SL_AWAIT(t, s->rc, sl_chan_send(t, X.rv, &s->v));
        assert_true(s->rc == 0 || s->rc == -ETIMEDOUT);
        if (s->rc == 0) {
            atomic_store(&X.sent[s->v], 1);
            atomic_fetch_add(&X.rv_ok, 1);
        }
    }
    atomic_fetch_add(&X.senders_done, 1);
    SL_END(t);
}

static int x_feed(sl_task *t, void *arg)   /* the local channel of reactor k */
{
    x_feeder *f = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    for (f->i = 0; f->i < RACE_LOCAL; f->i++) {
        f->v = 1000000 + f->i;
        SL_AWAIT(t, f->rc, sl_chan_send(t, X.l[f->k], &f->v));
        assert_int_equal(f->rc, 0);
        if (f->i % 8 == 0)
            SL_AWAIT(t, f->rc, sl_sleep(t, 50000));
    }
    atomic_fetch_add(&X.locals_done, 1);
    SL_END(t);
}

static int x_work(sl_task *t, void *arg)
{
    x_worker *w = arg;
    SL_BEGIN(t);
    w->cs[0] = (sl_case){ .ch = X.rv, .op = SL_RECV, .buf = &w->got };
    w->cs[1] = (sl_case){ .ch = X.l[w->k], .op = SL_RECV, .buf = &w->got };
    while (!atomic_load(&X.stop)) {
        sl_task_set_deadline(t, x_dl(t, 3));
        w->got = -1;
        SL_AWAIT(t, w->rc, sl_select(t, w->cs, 2, 0));
        atomic_fetch_add(&X.selects, 1);
        if (w->rc == -ECANCELED)
            break;
        if (w->rc == -ETIMEDOUT) {
            atomic_fetch_add(&X.timeouts, 1);
            continue;
        }
        assert_true(w->rc == 0 || w->rc == 1);
        assert_int_equal(w->cs[w->rc].err, 0);
        if (w->rc == 0) {
            assert_true(w->got < 1000000);
            x_count_rv(w->got);
        } else {
            int64_t i = w->got - 1000000;
            assert_true(i >= 0 && i < RACE_LOCAL);
            if (atomic_fetch_add(&X.lgot[w->k][i], 1))
                atomic_fetch_add(&X.dup, 1);
            atomic_fetch_add(&X.local_got, 1);
        }
    }
    SL_END(t);
}

static int x_drive(sl_task *t, void *arg)   /* reactor k: the select workers, cancelled at random */
{
    x_driver *d = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    while (!atomic_load(&X.stop)) {
        d->ws = (x_worker){ .k = d->k };
        assert_int_equal(sl_spawn(NULL, x_work, &d->ws, &d->w, &(sl_spawn_opts){ .joinable = true }), 0);
        SL_AWAIT(t, d->rc, sl_sleep(t, (sl__rand(t->reactor_) % 200) * 1000));
        if (sl_task_cancel(d->w, 0) == 0)
            atomic_fetch_add(&X.cancels, 1);
        SL_AWAIT(t, d->rc, sl_task_join(t, d->w, &d->wrc));
        assert_int_equal(d->rc, 0);
        d->n++;
    }
    atomic_fetch_add(&X.drivers_done, 1);
    SL_END(t);
}

static int x_plain_recv(sl_task *t, void *arg)   /* reactor 0 */
{
    x_plain *p = arg;
    SL_BEGIN(t);
    while (!atomic_load(&X.stop)) {
        sl_task_set_deadline(t, x_dl(t, 4));   /* always: it must see the stop */
        SL_AWAIT(t, p->rc, sl_chan_recv(t, X.rv, &p->got));
        if (p->rc == -ETIMEDOUT)
            continue;
        assert_int_equal(p->rc, 0);
        x_count_rv(p->got);
    }
    atomic_fetch_add(&X.drivers_done, 1);
    SL_END(t);
}

static x_sender xs[2];
static x_feeder xf[3];
static x_driver xd[3];
static x_plain xp;

static int x_far(sl_task *t, void *arg)   /* reactors 1 and 2: their local channel, feeder, driver */
{
    int k = (int)(intptr_t)arg;
    (void)t;
    assert_int_equal(sl_chan_new(&X.l[k], sizeof(int64_t), 4, NULL), 0);
    assert_int_equal(sl_chan_give(X.l[k], t, NULL), 0);   /* x_free_local frees it */
    xf[k] = (x_feeder){ .k = k };
    xd[k] = (x_driver){ .k = k };
    assert_int_equal(sl_spawn(NULL, x_feed, &xf[k], NULL, NULL), 0);
    assert_int_equal(sl_spawn(NULL, x_drive, &xd[k], NULL, NULL), 0);
    if (k == 2) {
        xs[1] = (x_sender){ .k = 1 };
        assert_int_equal(sl_spawn(NULL, x_send, &xs[1], NULL, NULL), 0);   /* by round trip */
    }
    return 0;
}

static int x_free_local(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    (void)t;
    assert_int_equal(sl_chan_len(X.l[k]), 0);
    assert_int_equal(sl_chan_free(NULL, X.l[k]), 0);
    atomic_fetch_add(&X.drivers_done, 10);
    return 0;
}

static int64_t x_val(const void *e)
{
    int64_t v;
    memcpy(&v, e, sizeof v);
    assert_true(v >= 0 && v < 2 * RACE_N);
    return v;
}

static void x_on_expire(sl_chan *ch, void *e, void *arg)
{
    (void)ch;
    (void)arg;
    if (atomic_fetch_add(&X.expired[x_val(e)], 1))
        atomic_fetch_add(&X.dup, 1);
}

static void x_drop(sl_chan *ch, void *e)
{
    (void)ch;
    if (atomic_fetch_add(&X.dropped[x_val(e)], 1))
        atomic_fetch_add(&X.dup, 1);
}

static int x_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    if (X.exp)
        assert_int_equal(sl_chan_new(&X.rv, sizeof(int64_t), X.exp_rv ? 0 : 8,
                                     &(sl_chan_opts){ .name = "ex", .expiring = true, .on_expire = x_on_expire,
                                                      .elem_drop = x_drop }),
                         0);
    else
        assert_int_equal(sl_chan_new(&X.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    xs[0] = (x_sender){ .k = 0 };
    assert_int_equal(sl_spawn(NULL, x_send, &xs[0], NULL, NULL), 0);
    assert_int_equal(sl_spawn(NULL, x_plain_recv, &xp, NULL, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), x_far, (void *)1, NULL), 0);
    assert_int_equal(sl_spawn_on(R(2), x_far, (void *)2, NULL), 0);
    for (X.polls = 0; X.polls < 3 * POLLS; X.polls++) {
        if (atomic_load(&X.senders_done) == 2 && atomic_load(&X.locals_done) == 2 &&
            ((X.exp && !X.exp_rv) || atomic_load(&X.rv_got) >= atomic_load(&X.rv_ok)) &&
            atomic_load(&X.local_got) == 2 * RACE_LOCAL)
            break;   /* expiring: what is left is destroyed at the free, and counted */
        SL_AWAIT(t, X.rc, sl_sleep(t, SL_NS_PER_MS));
    }
    assert_true(X.polls < 3 * POLLS);   /* everything came, not the bound */
    atomic_store(&X.stop, 1);
    WAIT_FOR(t, atomic_load(&X.drivers_done) == 3, X.polls, X.rc);
    assert_int_equal(sl_spawn_on(R(1), x_free_local, (void *)1, NULL), 0);
    assert_int_equal(sl_spawn_on(R(2), x_free_local, (void *)2, NULL), 0);
    WAIT_FOR(t, atomic_load(&X.drivers_done) == 23 && X.rv->rv_out_ == 0, X.polls, X.rc);
    assert_int_equal(sl_chan_free(t, X.rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void race_round(bool exp, bool exp_rv)
{
    memset(&X, 0, sizeof X);
    X.exp = exp;
    X.exp_rv = exp_rv;
    run_scene(3, x_main);
    if (exp) {   /* each sent element received, or destroyed (expired or at the free), exactly once */
        long ok = 0, got = 0, exp_n = 0, freed = 0, bad = 0;
        for (int v = 0; v < 2 * RACE_N; v++) {
            ok += X.sent[v];
            got += X.got[v];
            exp_n += X.expired[v];
            freed += X.dropped[v] - X.expired[v];
            bad += X.got[v] + X.dropped[v] != X.sent[v] || X.expired[v] > X.dropped[v];
        }
        print_message("expiring race: %ld sent, %ld received, %ld expired, %ld destroyed at the free; %ld selects, "
                      "%ld cancels, %ld timeouts\n", ok, got, exp_n, freed, (long)X.selects, (long)X.cancels,
                      (long)X.timeouts);
        assert_int_equal(X.dup, 0);
        assert_int_equal(bad, 0);
        assert_int_equal(got + exp_n + freed, ok);
        if (exp_rv)   /* no ring: nothing expires in it or is destroyed with it */
            assert_int_equal(exp_n + freed, 0);
        assert_int_equal(X.local_got, 2 * RACE_LOCAL);
        assert_true(ok > 0);
        return;
    }
    long ok = 0, got = 0, bad = 0;
    for (int v = 0; v < 2 * RACE_N; v++) {
        ok += X.sent[v];
        got += X.got[v];
        bad += X.sent[v] != X.got[v];
    }
    print_message("race: %ld of %d sends returned 0, %ld received; %ld selects, %ld cancels, %ld timeouts\n", ok,
                  2 * RACE_N, got, (long)X.selects, (long)X.cancels, (long)X.timeouts);
    assert_int_equal(X.dup, 0);
    assert_int_equal(bad, 0);   /* each sent once received once, none that failed */
    assert_int_equal(X.local_got, 2 * RACE_LOCAL);
    assert_true(ok > 0);
}

static void test_rv_race(void **s)
{
    (void)s;
    for (int i = 0; i < 4; i++)
        race_round(false, false);
}

/* the same on an expiring channel of 8 (receive cases by offer of the
 * head, sends with element deadlines, the remote sender by credit) */
static void test_exp_race(void **s)
{
    (void)s;
    for (int i = 0; i < 4; i++)
        race_round(true, false);
}

/* the same on an expiring rendezvous channel: the home's sender offers
 * with its element's deadline (judged at the offer); nothing is ever in a
 * ring, so nothing expires or is destroyed: every send that returned 0 is
 * received exactly once */
static void test_exp_rv_race(void **s)
{
    (void)s;
    for (int i = 0; i < 4; i++)
        race_round(true, true);
}

/* ---- the race, send cases --------------------------------------------------------------- */

/* rv (cap 0) at reactor 0. Senders: select workers on reactors 1 and 2
 * over [rv SEND, a local channel SEND], a fresh value per attempt, random
 * deadlines, cancelled at random and replaced. Receivers: a plain one at
 * the home (offers to the send proxies) and a round trip from reactor 2,
 * both with random deadlines, and a drain of each local channel. A value
 * is received from rv iff its select returned the rv case, exactly once. */
#define SR_TARGET 4000
#define SR_VALS (1 << 20)

static struct {
    sl_chan *rv, *l[3];
    _Atomic int stop, stop_recv, workers_done, recv_done;
    _Atomic long rv_ok, rv_got, l_ok, l_got, dup, selects, cancels, timeouts;
    _Atomic unsigned char sent[SR_VALS], got[SR_VALS];
    _Atomic long next[3];
    int rc, polls;
} Y;

typedef struct { int k, rc; int64_t v; sl_case cs[2]; } y_worker;
typedef struct { int k, rc, wrc; sl_task *w; y_worker ws; } y_driver;
typedef struct { int k, rc; int64_t got; bool local; } y_recv;

static int y_work(sl_task *t, void *arg)
{
    y_worker *w = arg;
    SL_BEGIN(t);
    while (!atomic_load(&Y.stop)) {
        w->v = (int64_t)w->k * (SR_VALS / 4) + atomic_fetch_add(&Y.next[w->k], 1);
        assert_true(w->v < (int64_t)w->k * (SR_VALS / 4) + SR_VALS / 4);
        w->cs[0] = (sl_case){ .ch = Y.rv, .op = SL_SEND, .buf = &w->v };
        w->cs[1] = (sl_case){ .ch = Y.l[w->k], .op = SL_SEND, .buf = &w->v };
        sl_task_set_deadline(t, x_dl(t, 3));
        SL_AWAIT(t, w->rc, sl_select(t, w->cs, 2, 0));
        atomic_fetch_add(&Y.selects, 1);
        if (w->rc == -ECANCELED)
            break;
        if (w->rc == -ETIMEDOUT) {
            atomic_fetch_add(&Y.timeouts, 1);
            continue;
        }
        assert_true(w->rc == 0 || w->rc == 1);
        assert_int_equal(w->cs[w->rc].err, 0);
        if (w->rc == 0) {
            atomic_store(&Y.sent[w->v], 1);
            atomic_fetch_add(&Y.rv_ok, 1);
        } else {
            atomic_fetch_add(&Y.l_ok, 1);
        }
    }
    SL_END(t);
}

static int y_drive(sl_task *t, void *arg)
{
    y_driver *d = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    while (!atomic_load(&Y.stop)) {
        d->ws = (y_worker){ .k = d->k };
        assert_int_equal(sl_spawn(NULL, y_work, &d->ws, &d->w, &(sl_spawn_opts){ .joinable = true }), 0);
        SL_AWAIT(t, d->rc, sl_sleep(t, (sl__rand(t->reactor_) % 200) * 1000));
        if (sl_task_cancel(d->w, 0) == 0)
            atomic_fetch_add(&Y.cancels, 1);
        SL_AWAIT(t, d->rc, sl_task_join(t, d->w, &d->wrc));
        assert_int_equal(d->rc, 0);
    }
    atomic_fetch_add(&Y.workers_done, 1);
    SL_END(t);
}

static int y_receive(sl_task *t, void *arg)   /* rv at the home or by round trip; or a local drain */
{
    y_recv *r = arg;
    SL_BEGIN(t);
    while (!atomic_load(&Y.stop_recv)) {
        sl_task_set_deadline(t, x_dl(t, 4));
        SL_AWAIT(t, r->rc, sl_chan_recv(t, r->local ? Y.l[r->k] : Y.rv, &r->got));
        if (r->rc == -ETIMEDOUT)
            continue;
        assert_int_equal(r->rc, 0);
        if (r->local) {   /* paced: the local channel is often full, so selects park */
            atomic_fetch_add(&Y.l_got, 1);
            SL_AWAIT(t, r->rc, sl_sleep(t, 50000));
            continue;
        }
        if (r->got < 0 || r->got >= SR_VALS || atomic_fetch_add(&Y.got[r->got], 1) != 0)
            atomic_fetch_add(&Y.dup, 1);
        atomic_fetch_add(&Y.rv_got, 1);
    }
    atomic_fetch_add(&Y.recv_done, 1);
    SL_END(t);
}

static y_driver yd[3];
static y_recv yr[6];

static int y_far(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    assert_int_equal(sl_chan_new(&Y.l[k], sizeof(int64_t), 2, NULL), 0);
    assert_int_equal(sl_chan_give(Y.l[k], t, NULL), 0);
    yd[k] = (y_driver){ .k = k };
    yr[k] = (y_recv){ .k = k, .local = true };
    assert_int_equal(sl_spawn(NULL, y_drive, &yd[k], NULL, NULL), 0);
    assert_int_equal(sl_spawn(NULL, y_receive, &yr[k], NULL, NULL), 0);
    if (k == 2) {
        yr[3] = (y_recv){ .k = 2 };
        assert_int_equal(sl_spawn(NULL, y_receive, &yr[3], NULL, NULL), 0);   /* by round trip */
    }
    return 0;
}

static int y_free_local(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    (void)t;
    assert_int_equal(sl_chan_len(Y.l[k]), 0);
    assert_int_equal(sl_chan_free(NULL, Y.l[k]), 0);
    atomic_fetch_add(&Y.recv_done, 10);
    return 0;
}

static int y_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    assert_int_equal(sl_chan_new(&Y.rv, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "rv" }), 0);
    yr[0] = (y_recv){ .k = 0 };
    assert_int_equal(sl_spawn(NULL, y_receive, &yr[0], NULL, NULL), 0);
    assert_int_equal(sl_spawn_on(R(1), y_far, (void *)1, NULL), 0);
    assert_int_equal(sl_spawn_on(R(2), y_far, (void *)2, NULL), 0);
    WAIT_FOR(t, atomic_load(&Y.rv_ok) >= SR_TARGET, Y.polls, Y.rc);
    atomic_store(&Y.stop, 1);
    WAIT_FOR(t, atomic_load(&Y.workers_done) == 2, Y.polls, Y.rc);
    WAIT_FOR(t, atomic_load(&Y.rv_got) == atomic_load(&Y.rv_ok) && atomic_load(&Y.l_got) == atomic_load(&Y.l_ok),
             Y.polls, Y.rc);
    atomic_store(&Y.stop_recv, 1);
    WAIT_FOR(t, atomic_load(&Y.recv_done) == 4, Y.polls, Y.rc);
    assert_int_equal(sl_spawn_on(R(1), y_free_local, (void *)1, NULL), 0);
    assert_int_equal(sl_spawn_on(R(2), y_free_local, (void *)2, NULL), 0);
    WAIT_FOR(t, atomic_load(&Y.recv_done) == 24 && Y.rv->rv_out_ == 0, Y.polls, Y.rc);
    assert_int_equal(sl_chan_free(t, Y.rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_rv_race_send_cases(void **s)
{
    (void)s;
    memset(&Y, 0, sizeof Y);
    run_scene(3, y_main);
    long bad = 0;
    for (long v = 0; v < SR_VALS; v++)
        bad += Y.sent[v] != Y.got[v];
    print_message("send race: %ld by the rendezvous case, %ld by the local one; %ld selects, %ld cancels, %ld timeouts\n",
                  (long)Y.rv_ok, (long)Y.l_ok, (long)Y.selects, (long)Y.cancels, (long)Y.timeouts);
    assert_int_equal(Y.dup, 0);
    assert_int_equal(bad, 0);   /* received from rv iff its select chose the rv case */
}

/* ---- selects with proxies at several homes (issue 17: hold12) --------------------------
 *
 * c1 (cap 0) at reactor 0, c3 (cap 0) and q3 (cap 1) at reactor 3. S1 has
 * a case by offer at a second home (or on another reactor's buffered
 * channel), so on main it was never held: two remote selects that could
 * meet both waited until their deadline. Now S1 is held all the same, and
 * what reaches it while held (a plain offer, a second HOLD, another held
 * select's offer) waits or is refused busy and matched again later (rsel.c
 * defer, wait-die, REMATCH). Forced with the hold hooks (4: a message
 * waits for S1's hold; 5: refused busy; 6: REMATCH) and the offer hook at
 * the deciding reactor, not with sleeps. */
enum { HC_C1, HC_C3, HC_Q3, HC_LOCAL };
enum { HM_THIRD_RV, HM_THIRD_BUF, HM_THIRD_BUFSEND, HM_PLAIN, HM_DEADLINE, HM_CANCEL, HM_FREE, HM_TEARDOWN, HM_TWO_HOLDS, HM_SYMMETRIC,
       HM_WAIT, HM_DIE, HM_CLOSE_REFUSED, HM_FREE_REFUSED, HM_CLOSE_REMATCH, HM_FREE_REMATCH };
/* the busy scenes: S1 and S3 take their roles by sid; from HM_DIE on, S1
 * is the lower sid and refuses S3's offer; from HM_CLOSE_REFUSED on, c3 is
 * closed or freed at reactor 3 at the refusal (phase 5) or the REMATCH's
 * post (phase 7) */
#define HM_BUSY(h) ((h) >= HM_WAIT)
#define HM_PLAINS(h) ((h) >= HM_PLAIN && (h) <= HM_TEARDOWN)

typedef struct {
    int where;                  /* reactor */
    int ch[2], op[2];
    int64_t v[2];               /* what a send case sends, where a receive case receives */
    sl_case c[2];
    sl_chan *l;                 /* its own channel (HC_LOCAL), idle */
    sl_task *t;
    bool wait_go;               /* selects once HM.go3 (S3 of the busy scenes) */
    bool used;
    int rc, err, polls, prc;
    _Atomic int done;
} hm_sel;

static struct {
    int how;
    bool s1_first, decline;
    sl_chan *ch[3];
    hm_sel s[5];                /* 1: S1; 2: S2; 3: S3; 4: S4 */
    _Atomic int hooks[9], go3, freed, h3_ready, h3_done, offer4, ab_n, all_done, close_go, closed;
    sl_task *_Atomic ab[2];
    int64_t pv, qv, cv;         /* the plain sender's, the late receivers' */
    char diag[512];             /* S1 described while held with the plain offer waiting */
    int prc, qrc, crc, rc, polls, fpolls, frc, hpolls, hrc, h3polls, h3rc;   /* each task its own */
    _Atomic int plain_done;
} HM;

static bool hm_spin(_Atomic int *x, int at_least)   /* in a hook: the other thread's event, bounded */
{
    uint64_t end = sl_now_ns() + LONG_WAIT;
    while (atomic_load(x) < at_least && sl_now_ns() < end)
        sched_yield();
    return atomic_load(x) >= at_least;
}

static void hm_hold_hook(void *arg, int phase)
{
    (void)arg;
    /* S1 described before the count tells hm_freer to free c3 (the
     * description reads c3's name) */
    if (phase == 4 && !atomic_load(&HM.hooks[4]) && sl_reactor_current() == R(1) && HM_PLAINS(HM.how))
        sl_task_describe(HM.s[1].t, HM.diag, sizeof HM.diag);
    int n = atomic_fetch_add(&HM.hooks[phase], 1);
    if (phase == 1 && n == 0 && HM.how != HM_SYMMETRIC && HM.how != HM_TWO_HOLDS)
        atomic_store(&HM.go3, 1);   /* S1 held: the plain sender at H3 / S3 starts now */
    if (phase == 1 && HM.how == HM_SYMMETRIC && n == 0)
        assert_true(hm_spin(&HM.hooks[1], 2));   /* both held at once: each offer meets a held select */
    if ((phase == 5 && n == 0 && (HM.how == HM_CLOSE_REFUSED || HM.how == HM_FREE_REFUSED)) ||
        (phase == 7 && n == 0 && (HM.how == HM_CLOSE_REMATCH || HM.how == HM_FREE_REMATCH))) {
        /* reactor 1: the refusal / the REMATCH is not published yet (at this
         * callback's end): reactor 3 closes or frees c3 first */
        atomic_store(&HM.close_go, 1);
        assert_true(hm_spin(&HM.closed, 1));
    }
    if (phase == 4 && n == 0 && sl_reactor_current() == R(1)) {   /* S1 busy, the plain offer waits */
        if (HM.how == HM_TEARDOWN)
            sl_runtime_stop(rt);
        else if (HM.how == HM_DEADLINE)
            sl__timer_fire(R(1), HM.s[1].t->wake_at_);
        else if (HM.how == HM_CANCEL)
            assert_int_equal(sl_task_cancel(HM.s[1].t, 0), 0);
    }
}

/* before a receiving select decides its first offer (not S1's reactor):
 * wait for the event the scene is about, then decline (its local case
 * fires) or accept */
static void hm_r_hook(void *arg)
{
    (void)arg;
    sl_reactor *me = sl_reactor_current();
    if ((me != R(4) && !(HM.how == HM_TWO_HOLDS && me == R(2))) || atomic_fetch_add(&HM.offer4, 1))
        return;
    switch (HM.how) {
    case HM_PLAIN: case HM_DEADLINE: case HM_CANCEL: case HM_TEARDOWN: case HM_TWO_HOLDS: case HM_WAIT:
        assert_true(hm_spin(&HM.hooks[4], 1));
        break;
    case HM_FREE:
        assert_true(hm_spin(&HM.hooks[4], 1));
        assert_true(hm_spin(&HM.freed, 1));
        break;
    case HM_DIE: case HM_CLOSE_REFUSED: case HM_FREE_REFUSED: case HM_CLOSE_REMATCH: case HM_FREE_REMATCH:
        assert_true(hm_spin(&HM.hooks[5], 1));
        break;
    case HM_THIRD_BUFSEND:
        break;
    default:
        return;
    }
    if (!HM.decline)
        return;
    int64_t x = 777;   /* S2 (reactor 4) or S4 (reactor 2) fires its local case: declined */
    assert_int_equal(sl_chan_try_send(NULL, HM.s[me == R(4) ? 2 : 4].l, &x), 0);
}

static hm_sel *hm_slot[5];   /* each select task's config, by its spawn slot (the busy scenes swap S1's and S3's) */
static int hm_polls[5], hm_prc[5];

static int hm_sel_task(sl_task *t, void *arg)
{
    int k = (int)(intptr_t)arg;
    hm_sel *s = hm_slot[k];
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    if (HM_BUSY(HM.how) && (k == 1 || k == 3)) {
        /* roles by sid (the task's id, published with the task): S1 is
         * the lower (DIE: it refuses S3's offer) or the higher (WAIT: S3's
         * offer waits) */
        atomic_store(&HM.ab[atomic_fetch_add(&HM.ab_n, 1)], t);
        WAIT_FOR(t, atomic_load(&HM.ab_n) == 2, hm_polls[k], hm_prc[k]);
        {
            sl_task *a = atomic_load(&HM.ab[0]), *b = atomic_load(&HM.ab[1]);
            uint64_t me = t->id_, other = (a == t ? b : a)->id_;
            bool s1 = HM.how != HM_WAIT ? me < other : me > other;
            hm_slot[k] = s = &HM.s[s1 ? 1 : 3];
            s->where = k == 1 ? 1 : 2;
        }
    }
    s->t = t;
    for (int i = 0; i < 2; i++) {
        sl_chan *ch;
        if (s->ch[i] == HC_LOCAL) {
            assert_int_equal(sl_chan_new(&s->l, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "local" }), 0);
            ch = s->l;
        } else {
            ch = HM.ch[s->ch[i]];
        }
        s->c[i] = (sl_case){ .ch = ch, .op = s->op[i], .buf = &s->v[i] };
    }
    if (s->wait_go)
        WAIT_FOR(t, atomic_load(&HM.go3), s->polls, s->prc);
    SL_AWAIT(t, s->rc, sl_select(t, s->c, 2, 0));
    if (s->rc >= 0)
        s->err = s->c[s->rc].err;
    if (s->l)
        assert_int_equal(sl_chan_free(t, s->l), 0);
    atomic_store(&s->done, 1);
    SL_END(t);
}

static bool hm_all_done(void)
{
    for (int k = 1; k < 5; k++)
        if (HM.s[k].used && !atomic_load(&HM.s[k].done))
            return false;
    return true;
}

static int hm_plain(sl_task *t, void *arg)   /* reactor 3: a blocking sender on c3 once S1 is held */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&HM.go3), HM.fpolls, HM.frc);
    HM.pv = 33;
    SL_AWAIT(t, HM.prc, sl_chan_send(t, HM.ch[HC_C3], &HM.pv));
    atomic_store(&HM.plain_done, 1);
    SL_END(t);
}

static int hm_freer(sl_task *t, void *arg)   /* reactor 3: frees c3 while the plain offer waits at S1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&HM.hooks[4]), HM.hpolls, HM.hrc);
    assert_int_equal(sl_chan_free(NULL, HM.ch[HC_C3]), 0);
    HM.ch[HC_C3] = NULL;
    atomic_store(&HM.freed, 1);
    SL_END(t);
}

static int hm_closer(sl_task *t, void *arg)   /* reactor 3: closes or frees c3 when reactor 1 says */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&HM.close_go), HM.hpolls, HM.hrc);
    if (HM.how == HM_CLOSE_REFUSED || HM.how == HM_CLOSE_REMATCH) {
        assert_int_equal(sl_chan_close(NULL, HM.ch[HC_C3]), 0);
    } else {
        assert_int_equal(sl_chan_free(NULL, HM.ch[HC_C3]), 0);
        HM.ch[HC_C3] = NULL;
    }
    atomic_store(&HM.closed, 1);
    SL_END(t);
}

static int hm_h3(sl_task *t, void *arg)   /* reactor 3: c3's and q3's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&HM.ch[HC_C3], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c3" }), 0);
    assert_int_equal(sl_chan_new(&HM.ch[HC_Q3], sizeof(int64_t), 1, &(sl_chan_opts){ .name = "q3" }), 0);
    assert_int_equal(sl_chan_give(HM.ch[HC_C3], t, NULL), 0);
    if (HM_PLAINS(HM.how))
        assert_int_equal(sl_spawn(NULL, hm_plain, NULL, NULL, NULL), 0);
    if (HM.how == HM_FREE)
        assert_int_equal(sl_spawn(NULL, hm_freer, NULL, NULL, NULL), 0);
    if (HM.how >= HM_CLOSE_REFUSED)
        assert_int_equal(sl_spawn(NULL, hm_closer, NULL, NULL, NULL), 0);
    if (HM.how == HM_THIRD_BUFSEND) {   /* q3 full: S1's send case on it waits for credit */
        HM.cv = 5;
        assert_int_equal(sl_chan_try_send(NULL, HM.ch[HC_Q3], &HM.cv), 0);
    }
    atomic_store(&HM.h3_ready, 1);
    if (HM.how == HM_THIRD_BUFSEND && HM.decline) {   /* S2 declined: room in q3, S1 (aborted) sends there */
        WAIT_FOR(t, atomic_load(&HM.s[2].done), HM.h3polls, HM.h3rc);
        SL_AWAIT(t, HM.qrc, sl_chan_recv(t, HM.ch[HC_Q3], &HM.qv));
        assert_int_equal(HM.qrc, 0);
        assert_int_equal(HM.qv, 5);
    }
    WAIT_FOR(t, atomic_load(&HM.s[1].done), HM.h3polls, HM.h3rc);
    if (HM.how == HM_THIRD_BUFSEND) {   /* what is in q3: S1's 7 (declined), else the 5 */
        SL_AWAIT(t, HM.qrc, sl_chan_recv(t, HM.ch[HC_Q3], &HM.qv));
        assert_int_equal(HM.qrc, 0);
        assert_int_equal(HM.qv, HM.decline ? 7 : 5);
    }
    if (HM.how >= HM_PLAIN && HM.how <= HM_FREE && HM.how != HM_FREE && !(HM.s[1].rc == 0 && HM.s[1].err == 0)) {
        /* S1 did not take the plain sender's element: it waits here again, a receive meets it */
        SL_AWAIT(t, HM.qrc, sl_chan_recv(t, HM.ch[HC_C3], &HM.qv));
    }
    if (HM.how >= HM_PLAIN && HM.how <= HM_FREE)
        WAIT_FOR(t, atomic_load(&HM.plain_done), HM.h3polls, HM.h3rc);
    if (HM.how == HM_TWO_HOLDS && !HM.decline && HM.s[1].rc == 0) {   /* S4 still waits at c3: a plain send meets it */
        HM.cv = 99;
        SL_AWAIT(t, HM.crc, sl_chan_send(t, HM.ch[HC_C3], &HM.cv));
    }
    if ((HM.how == HM_DIE || HM.how == HM_WAIT) && !HM.decline) {   /* S3 still waits to send on c3 */
        SL_AWAIT(t, HM.qrc, sl_chan_recv(t, HM.ch[HC_C3], &HM.qv));
    }
    WAIT_FOR(t, hm_all_done(), HM.h3polls, HM.h3rc);
    if (HM.ch[HC_C3]) {
        WAIT_FOR(t, HM.ch[HC_C3]->rv_out_ == 0, HM.h3polls, HM.h3rc);   /* no proxy left behind */
        assert_int_equal(sl_chan_free(NULL, HM.ch[HC_C3]), 0);
    }
    assert_int_equal(sl_chan_len(HM.ch[HC_Q3]), 0);
    assert_int_equal(sl_chan_free(t, HM.ch[HC_Q3]), 0);
    atomic_store(&HM.h3_done, 1);
    SL_END(t);
}

static void hm_spawn(int k)
{
    hm_slot[k] = &HM.s[k];
    assert_int_equal(sl_spawn_on(R(HM.s[k].where), hm_sel_task, (void *)(intptr_t)k, NULL), 0);
}

static int hm_main(sl_task *t, void *arg)   /* reactor 0: c1's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&HM.ch[HC_C1], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c1" }), 0);
    assert_int_equal(sl_spawn_on(R(3), hm_h3, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&HM.h3_ready), HM.polls, HM.rc);
    switch (HM.how) {
    case HM_SYMMETRIC:
        hm_spawn(1);
        hm_spawn(2);
        break;
    case HM_TWO_HOLDS:
        hm_spawn(1);
        WAIT_FOR(t, HM.ch[HC_C1]->rv_sendq_ == 1, HM.polls, HM.rc);
        hm_spawn(2);
        hm_spawn(4);
        break;
    case HM_WAIT: case HM_DIE: case HM_CLOSE_REFUSED: case HM_FREE_REFUSED: case HM_CLOSE_REMATCH: case HM_FREE_REMATCH:
        hm_spawn(2);
        WAIT_FOR(t, HM.ch[HC_C1]->rv_recvq_ == 1, HM.polls, HM.rc);
        hm_spawn(1);
        hm_spawn(3);
        break;
    default:
        hm_spawn(HM.s1_first ? 1 : 2);
        if (HM.s1_first)
            WAIT_FOR(t, HM.ch[HC_C1]->rv_sendq_ == 1, HM.polls, HM.rc);
        else
            WAIT_FOR(t, HM.ch[HC_C1]->rv_recvq_ == 1, HM.polls, HM.rc);
        hm_spawn(HM.s1_first ? 2 : 1);
    }
    WAIT_FOR(t, atomic_load(&HM.s[1].done), HM.polls, HM.rc);
    /* every scene holds a select (on main none: S1 was not holdable, and
     * both waited until their deadline): said here, on the test's thread */
    assert_true(atomic_load(&HM.hooks[1]) >= 1);
    if (HM.how == HM_TWO_HOLDS && !HM.decline && HM.s[1].rc == 1) {   /* S2 still waits at c1: a plain send meets it */
        HM.cv = 99;
        SL_AWAIT(t, HM.crc, sl_chan_send(t, HM.ch[HC_C1], &HM.cv));
    }
    WAIT_FOR(t, hm_all_done() && atomic_load(&HM.h3_done), HM.polls, HM.rc);
    WAIT_FOR(t, HM.ch[HC_C1]->rv_out_ == 0, HM.polls, HM.rc);
    assert_int_equal(sl_chan_free(t, HM.ch[HC_C1]), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void hm_set(int k, int where, int ch0, int op0, int64_t v0, int ch1, int op1, int64_t v1)
{
    HM.s[k].used = true;
    HM.s[k].where = where;
    HM.s[k].ch[0] = ch0;
    HM.s[k].op[0] = op0;
    HM.s[k].v[0] = v0;
    HM.s[k].ch[1] = ch1;
    HM.s[k].op[1] = op1;
    HM.s[k].v[1] = v1;
}

static void hm_run(int how, bool s1_first, bool decline)
{
    memset(&HM, 0, sizeof HM);
    HM.how = how;
    HM.s1_first = s1_first;
    HM.decline = decline;
    switch (how) {
    case HM_SYMMETRIC:   /* S1 [c1 <- 1, <- c3]; S2 [<- c1, c3 <- 2] */
        hm_set(1, 1, HC_C1, SL_SEND, 1, HC_C3, SL_RECV, -1);
        hm_set(2, 2, HC_C1, SL_RECV, -1, HC_C3, SL_SEND, 2);
        break;
    case HM_TWO_HOLDS:   /* S1 [c1 <- 42, c3 <- 43]; S2 [l, <- c1] on 4; S4 [l, <- c3] on 2 */
        hm_set(1, 1, HC_C1, SL_SEND, 42, HC_C3, SL_SEND, 43);
        hm_set(2, 4, HC_LOCAL, SL_RECV, -1, HC_C1, SL_RECV, -1);
        hm_set(4, 2, HC_LOCAL, SL_RECV, -1, HC_C3, SL_RECV, -1);
        break;
    case HM_WAIT: case HM_DIE: case HM_CLOSE_REFUSED: case HM_FREE_REFUSED: case HM_CLOSE_REMATCH: case HM_FREE_REMATCH:
        /* S1 [c1 <- 1, <- c3] and S3 [c3 <- 3, l] on 1 and 2 (roles by sid); S2 [l, <- c1] on 4 */
        hm_set(1, 1, HC_C1, SL_SEND, 1, HC_C3, SL_RECV, -1);
        hm_set(3, 2, HC_C3, SL_SEND, 3, HC_LOCAL, SL_RECV, -1);
        hm_set(2, 4, HC_LOCAL, SL_RECV, -1, HC_C1, SL_RECV, -1);
        HM.s[3].wait_go = true;
        break;
    case HM_THIRD_BUFSEND:   /* S1 [q3 <- 7 (full), c1 <- 42]; S2 [l, <- c1] on 4 */
        hm_set(1, 1, HC_Q3, SL_SEND, 7, HC_C1, SL_SEND, 42);
        hm_set(2, 4, HC_LOCAL, SL_RECV, -1, HC_C1, SL_RECV, -1);
        break;
    default:   /* S1 [<- c3 or q3, c1 <- 42]; S2 [l, <- c1] on 4 */
        hm_set(1, 1, how == HM_THIRD_BUF ? HC_Q3 : HC_C3, SL_RECV, -1, HC_C1, SL_SEND, 42);
        hm_set(2, 4, HC_LOCAL, SL_RECV, -1, HC_C1, SL_RECV, -1);
    }
    sl__rsel_set_hooks(hm_r_hook, NULL, NULL);
    sl__rsel_set_hold_hook(hm_hold_hook, NULL);
    if (how == HM_TEARDOWN) {   /* the runtime stops while S1 is held and the plain offer waits */
        memset(&cap, 0, sizeof cap);
        *scene_live() = true;
        rt = rt_new(5, &cap);
        assert_int_equal(rt_run_keep(rt, hm_main, NULL), 0);
        int leaks = sl_runtime_free(rt);
        *scene_live() = false;
        print_message("teardown with S1 held, an offer waiting: %d leaks reported\n", leaks);
        assert_true(leaks >= 3);   /* the channels at least */
        sl__rsel_set_hooks(NULL, NULL, NULL);
    } else {
        run_scene(5, hm_main);
    }
    sl__rsel_set_hold_hook(NULL, NULL);
    print_message("holds %d, held %d, waited %d, refused busy %d, rematched %d\n", HM.hooks[0], HM.hooks[1],
                  HM.hooks[4], HM.hooks[5], HM.hooks[6]);
}


#define S_(k) HM.s[k]
static void hm_met(int k, int rc, int64_t v)   /* select k returned case rc with err 0 (and v there) */
{
    assert_int_equal(S_(k).rc, rc);
    assert_int_equal(S_(k).err, 0);
    if (v)
        assert_int_equal(S_(k).v[rc], v);
}

static void test_meet3_third_rv_s1_first(void **st)
{
    (void)st;
    hm_run(HM_THIRD_RV, true, false);
    hm_met(1, 1, 0);
    hm_met(2, 1, 42);
    assert_int_equal(HM.hooks[1], 1);
}
static void test_meet3_third_rv_s2_first(void **st)
{
    (void)st;
    hm_run(HM_THIRD_RV, false, false);
    hm_met(1, 1, 0);
    hm_met(2, 1, 42);
    assert_int_equal(HM.hooks[1], 1);
}
static void test_meet3_third_buf_s1_first(void **st)
{
    (void)st;
    hm_run(HM_THIRD_BUF, true, false);
    hm_met(1, 1, 0);
    hm_met(2, 1, 42);
    assert_int_equal(HM.hooks[1], 1);
}
static void test_meet3_third_buf_s2_first(void **st)
{
    (void)st;
    hm_run(HM_THIRD_BUF, false, false);
    hm_met(1, 1, 0);
    hm_met(2, 1, 42);
    assert_int_equal(HM.hooks[1], 1);
}

/* S1's other case a send on reactor 3's full buffered channel q3: its
 * node waits at reactor 1 for credit, off that queue while held; committed,
 * S1 took c1; declined (S2 fired its own case), S1 is matched again and,
 * once reactor 3 made room, sends 7 into q3 (by credit in hand at the
 * re-match, or by the grant once its node is back and asked again) */
static void hm_check_bufsend(bool decline)
{
    hm_run(HM_THIRD_BUFSEND, true, decline);
    assert_int_equal(HM.hooks[1], 1);
    if (decline) {
        hm_met(2, 0, 777);
        hm_met(1, 0, 0);
    } else {
        hm_met(1, 1, 0);
        hm_met(2, 1, 42);
    }
}
static void test_meet3_third_bufsend_committed(void **st) { (void)st; hm_check_bufsend(false); }
static void test_meet3_third_bufsend_aborted(void **st) { (void)st; hm_check_bufsend(true); }

/* a plain sender at H3 offers to S1's c3 proxy while H0 holds S1: the
 * offer waits at R1 (hooks[4]); committed, it is declined and the sender
 * meets a receive at H3 afterwards; aborted, S1 takes it */
static void hm_check_plain(int how, bool decline)
{
    hm_run(how, true, decline);
    assert_int_equal(HM.hooks[4], 1);
    assert_int_equal(HM.hooks[5], 0);
    print_message("S1 held: %s\n", HM.diag);   /* the diagnostics tell it: held, by whom, what waits */
    assert_non_null(strstr(HM.diag, "on select (recv 'c3', send 'c1') held for a meet at reactor 0, 1 message waiting"));
    if (!decline) {
        hm_met(1, 1, 0);
        hm_met(2, 1, 42);
    } else {
        hm_met(2, 0, 777);
        if (how == HM_DEADLINE || how == HM_CANCEL)
            assert_int_equal(S_(1).rc, how == HM_DEADLINE ? -ETIMEDOUT : -ECANCELED);
        else
            hm_met(1, 0, 33);
    }
    if (how == HM_FREE) {   /* accepted: the send happened before the free; declined: the freed channel's -EPIPE */
        assert_int_equal(HM.prc, decline ? 0 : -EPIPE);
        return;
    }
    assert_int_equal(HM.prc, 0);
    if (S_(1).rc != 0) {
        assert_int_equal(HM.qrc, 0);
        assert_int_equal(HM.qv, 33);
    }
}
static void test_meet3_plain_offer_waits_committed(void **st) { (void)st; hm_check_plain(HM_PLAIN, false); }
static void test_meet3_plain_offer_waits_aborted(void **st) { (void)st; hm_check_plain(HM_PLAIN, true); }
static void test_meet3_deadline_while_busy_committed(void **st) { (void)st; hm_check_plain(HM_DEADLINE, false); }
static void test_meet3_deadline_while_busy_aborted(void **st) { (void)st; hm_check_plain(HM_DEADLINE, true); }
static void test_meet3_cancel_while_busy_committed(void **st) { (void)st; hm_check_plain(HM_CANCEL, false); }
static void test_meet3_cancel_while_busy_aborted(void **st) { (void)st; hm_check_plain(HM_CANCEL, true); }
static void test_meet3_free_while_busy_committed(void **st) { (void)st; hm_check_plain(HM_FREE, false); }
static void test_meet3_free_while_busy_aborted(void **st) { (void)st; hm_check_plain(HM_FREE, true); }

/* H0 and H3 both hold S1 [c1 <- 42, c3 <- 43]: the second HOLD waits at
 * R1; committed, it finds S1 gone (GONE) and its receiver meets a plain
 * send; declined, S1 is held again by it and meets the other receiver */
static void hm_check_two_holds(bool decline)
{
    hm_run(HM_TWO_HOLDS, true, decline);
    assert_int_equal(HM.hooks[0], 2);
    assert_true(HM.hooks[4] >= 1);
    assert_int_equal(HM.hooks[1], decline ? 2 : 1);
    assert_true(S_(1).rc == 0 || S_(1).rc == 1);
    assert_int_equal(S_(1).err, 0);
    int got = S_(1).rc == 0 ? 2 : 4, other = got == 2 ? 4 : 2;   /* who received S1's element */
    hm_met(got, 1, S_(1).rc == 0 ? 42 : 43);
    if (decline) {
        hm_met(other, 0, 777);
    } else {
        hm_met(other, 1, 99);
        assert_int_equal(HM.crc, 0);
    }
}
static void test_meet3_two_homes_hold_committed(void **st) { (void)st; hm_check_two_holds(false); }
static void test_meet3_two_homes_hold_aborted(void **st) { (void)st; hm_check_two_holds(true); }

/* S1 [c1 <- 1, <- c3], S2 [<- c1, c3 <- 2], both held at once (H0 holds
 * S1, H3 holds S2): the offer of the higher sid is refused busy, the
 * other's meets; exactly one meet, and no more HOLDs than the two (no
 * livelock) */
static void test_meet3_symmetric(void **st)
{
    (void)st;
    hm_run(HM_SYMMETRIC, true, false);
    assert_int_equal(HM.hooks[0], 2);
    assert_int_equal(HM.hooks[1], 2);
    /* the higher sid's offer is refused; the lower's waits at the other
     * reactor, or finds it free already if the refusal's ABORT got there
     * first (3 of 30 runs) */
    assert_true(HM.hooks[4] <= 1);
    assert_int_equal(HM.hooks[5], 1);
    assert_int_equal(HM.hooks[6], 0);
    if (S_(1).rc == 0) {
        hm_met(1, 0, 0);
        hm_met(2, 0, 1);
    } else {
        hm_met(1, 1, 2);
        hm_met(2, 1, 0);
    }
}

/* S1 held by H0 for S2; S3 (held by H3) offers to S1's c3 proxy. DIE: S3's
 * sid is higher, it is refused busy, S1's proxy skipped at H3 until S1's
 * REMATCH; WAIT: S3's is lower, its offer waits at R1. S2 declines (S1
 * aborted, then meets S3) or accepts (S3 then meets a receive at H3). */
static void hm_check_busy(int how, bool decline)
{
    hm_run(how, true, decline);
    if (how == HM_DIE) {
        assert_int_equal(HM.hooks[5], 1);
        assert_int_equal(HM.hooks[6], decline ? 1 : 0);
    } else {
        assert_int_equal(HM.hooks[4], 1);
        assert_int_equal(HM.hooks[5], 0);
    }
    hm_met(3, 0, 0);
    if (decline) {
        hm_met(2, 0, 777);
        hm_met(1, 1, 3);
    } else {
        hm_met(1, 0, 0);
        hm_met(2, 1, 1);
        assert_int_equal(HM.qrc, 0);
        assert_int_equal(HM.qv, 3);
    }
}
static void test_meet3_busy_refused_rematched(void **st) { (void)st; hm_check_busy(HM_DIE, true); }
static void test_meet3_busy_refused_committed(void **st) { (void)st; hm_check_busy(HM_DIE, false); }
static void test_meet3_offer_waits_for_hold_aborted(void **st) { (void)st; hm_check_busy(HM_WAIT, true); }
static void test_meet3_offer_waits_for_hold_committed(void **st) { (void)st; hm_check_busy(HM_WAIT, false); }

/* The busy scene with c3 closed or freed at reactor 3 at the refusal (the
 * refused proxy's busy answer finds it closed, or its channel gone: it
 * fires -EPIPE, which waits at S1's reactor for the hold's end) or while
 * the REMATCH is on its way (it finds the proxy fired; S1's proxy, which
 * had a REMATCH, is freed at its WITHDRAW's ACK). Every case on c3 fails
 * -EPIPE; nothing is lost, nothing freed twice (AddressSanitizer). */
static void hm_check_gone(int how, bool decline)
{
    hm_run(how, true, decline);
    assert_int_equal(HM.closed, 1);
    assert_int_equal(HM.hooks[5], 1);
    if (how == HM_CLOSE_REMATCH || how == HM_FREE_REMATCH)
        assert_int_equal(HM.hooks[7], 1);
    assert_int_equal(S_(3).rc, 0);   /* S3's c3 case */
    assert_int_equal(S_(3).err, -EPIPE);
    if (decline) {
        hm_met(2, 0, 777);
        assert_int_equal(S_(1).rc, 1);   /* S1's c3 case */
        assert_int_equal(S_(1).err, -EPIPE);
        assert_int_equal(S_(1).v[1], -1);
    } else {
        hm_met(1, 0, 0);
        hm_met(2, 1, 1);
    }
}
static void test_meet3_close_at_refusal_aborted(void **st) { (void)st; hm_check_gone(HM_CLOSE_REFUSED, true); }
static void test_meet3_close_at_refusal_committed(void **st) { (void)st; hm_check_gone(HM_CLOSE_REFUSED, false); }
static void test_meet3_free_at_refusal_aborted(void **st) { (void)st; hm_check_gone(HM_FREE_REFUSED, true); }
static void test_meet3_close_with_rematch_out(void **st) { (void)st; hm_check_gone(HM_CLOSE_REMATCH, true); }
static void test_meet3_free_with_rematch_out(void **st) { (void)st; hm_check_gone(HM_FREE_REMATCH, true); }

/* The runtime stops while S1 is held and a plain offer waits for its
 * hold: S1's task is destroyed with all its proxies forgotten, not only
 * the held one; nothing is touched after it is freed (AddressSanitizer) */
static void test_meet3_teardown_while_busy(void **st)
{
    (void)st;
    hm_run(HM_TEARDOWN, true, false);
    assert_int_equal(HM.hooks[4], 1);
}

/* ---- the several-homes race: four reactors, every select by offer --------------------
 *
 * c[k] (cap 0) at reactor k, k = 0..3. On every reactor three drivers run
 * select workers, cancelled at random and replaced, with random deadlines:
 * SEND2 [c[a] <- v, c[b] <- v] (a, b two other reactors' channels), MIX
 * [c[a] <- v, <- c[b]], RECV2 [<- c[a], <- c[b]] (a != b, either may be
 * the reactor's own channel), drawn anew for every select. So selects
 * have proxies at two homes, both may be held at once by two homes, and
 * MIX selects meet each other both ways (the symmetric case). Every value
 * whose send returned 0 is received exactly once, none other. Holds,
 * waits, refusals and REMATCHes are counted by the hold hook and printed.
 * A MIX or RECV2 select with a case on its own reactor's channel is a
 * home select with a case elsewhere: claimed for another reactor's proxy,
 * and busy while claimed (docs/core.md "A claimed select with cases
 * elsewhere"); such claims are counted (phase 8) and required. On main a select with two cases by offer was never held, and there is
 * no plain operation here: SEND2 workers met nobody and the race could
 * not finish. */
#define QN 1500
enum { Q_SEND2, Q_MIX, Q_RECV2, Q_KINDS };

static struct {
    sl_chan *c[4];
    _Atomic int stop, senders_done, recv_done, made, frees;
    _Atomic long ok, got, dup, selects, cancels, timeouts, hooks[9];   /* by the hold hook's phase */
    _Atomic unsigned char sent[4 * Q_KINDS * QN], rcvd[4 * Q_KINDS * QN];
    int rc, polls;
} Q4;

typedef struct {
    int k, kind, rc, wrc, i;
    sl_task *w;
    struct {
        void *d;
        int rc;
        int64_t v, got[2];
        sl_case cs[2];
    } ws;
} q4_driver;

static q4_driver q4d[4][Q_KINDS];

static void q4_hook(void *arg, int phase)
{
    (void)arg;
    atomic_fetch_add(&Q4.hooks[phase], 1);
}

static void q4_got(int64_t v)
{
    if (v < 0 || v >= 4 * Q_KINDS * QN || atomic_fetch_add(&Q4.rcvd[v], 1) != 0) {
        atomic_fetch_add(&Q4.dup, 1);
        return;
    }
    atomic_fetch_add(&Q4.got, 1);
}

static int q4_work(sl_task *t, void *arg)
{
    q4_driver *d = arg;
    SL_BEGIN(t);
    while (!atomic_load(&Q4.stop) && (d->kind == Q_RECV2 || d->i < QN)) {
        {
            uint64_t r = sl__rand(t->reactor_);
            int a = (int)(r % 4), b = (a + 1 + (int)((r >> 8) % 3)) % 4;
            if (d->kind == Q_SEND2) {   /* two other reactors' channels: two cases by offer */
                int o1 = (int)(r % 3), o2 = (o1 + 1 + (int)((r >> 8) % 2)) % 3;
                a = (d->k + 1 + o1) % 4;
                b = (d->k + 1 + o2) % 4;
            }
            d->ws.v = (int64_t)((d->k * Q_KINDS + d->kind) * QN + d->i);
            d->ws.got[0] = d->ws.got[1] = -1;
            d->ws.cs[0] = (sl_case){ .ch = Q4.c[a], .op = d->kind == Q_RECV2 ? SL_RECV : SL_SEND,
                                     .buf = d->kind == Q_RECV2 ? (void *)&d->ws.got[0] : (void *)&d->ws.v };
            d->ws.cs[1] = (sl_case){ .ch = Q4.c[b], .op = d->kind == Q_SEND2 ? SL_SEND : SL_RECV,
                                     .buf = d->kind == Q_SEND2 ? (void *)&d->ws.v : (void *)&d->ws.got[1] };
            sl_task_set_deadline(t, z_dl(t));
        }
        SL_AWAIT(t, d->ws.rc, sl_select(t, d->ws.cs, 2, 0));
        atomic_fetch_add(&Q4.selects, 1);
        if (d->ws.rc == -ECANCELED)
            break;
        if (d->ws.rc == -ETIMEDOUT) {
            atomic_fetch_add(&Q4.timeouts, 1);
            continue;
        }
        assert_true(d->ws.rc == 0 || d->ws.rc == 1);
        assert_int_equal(d->ws.cs[d->ws.rc].err, 0);
        if (d->ws.cs[d->ws.rc].op == SL_SEND) {
            assert_int_equal(atomic_fetch_add(&Q4.sent[d->ws.v], 1), 0);
            atomic_fetch_add(&Q4.ok, 1);
            d->i++;
        } else {
            q4_got(d->ws.got[d->ws.rc]);
            assert_int_equal(d->ws.got[!d->ws.rc], -1);   /* the other case received nothing */
        }
    }
    SL_END(t);
}

static int q4_drive(sl_task *t, void *arg)
{
    q4_driver *d = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    while (!atomic_load(&Q4.stop) && (d->kind == Q_RECV2 || d->i < QN)) {
        assert_int_equal(sl_spawn(NULL, q4_work, d, &d->w, &(sl_spawn_opts){ .joinable = true }), 0);
        SL_AWAIT(t, d->rc, sl_sleep(t, (sl__rand(t->reactor_) % 400) * 1000));
        if (sl_task_cancel(d->w, 0) == 0)
            atomic_fetch_add(&Q4.cancels, 1);
        SL_AWAIT(t, d->rc, sl_task_join(t, d->w, &d->wrc));
        assert_int_equal(d->rc, 0);
    }
    atomic_fetch_add(d->kind == Q_RECV2 ? &Q4.recv_done : &Q4.senders_done, 1);
    SL_END(t);
}

static int q4_make(sl_task *t, void *arg)   /* reactor k: its channel */
{
    int k = (int)(intptr_t)arg;
    assert_int_equal(sl_chan_new(&Q4.c[k], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c" }), 0);
    assert_int_equal(sl_chan_give(Q4.c[k], t, NULL), 0);
    atomic_fetch_add(&Q4.made, 1);
    return 0;
}

static int q4_start(sl_task *t, void *arg)   /* reactor k: its drivers */
{
    int k = (int)(intptr_t)arg;
    (void)t;
    for (int j = 0; j < Q_KINDS; j++) {
        q4d[k][j] = (q4_driver){ .k = k, .kind = j };
        assert_int_equal(sl_spawn(NULL, q4_drive, &q4d[k][j], NULL, NULL), 0);
    }
    return 0;
}

static int q4_fpolls[4], q4_frc[4];

static int q4_free(sl_task *t, void *arg)   /* reactor k, once every worker ended */
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    /* the last selects' proxies are withdrawn and acknowledged: none, no
     * hold and no offer may be left behind */
    WAIT_FOR(t, Q4.c[k]->rv_out_ == 0, q4_fpolls[k], q4_frc[k]);
    assert_int_equal(sl_chan_free(NULL, Q4.c[k]), 0);
    atomic_fetch_add(&Q4.frees, 1);
    SL_END(t);
}

static int q4_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + 6 * LONG_WAIT);
    for (Q4.rc = 0; Q4.rc < 4; Q4.rc++)
        assert_int_equal(sl_spawn_on(R(Q4.rc), q4_make, (void *)(intptr_t)Q4.rc, NULL), 0);
    WAIT_FOR(t, atomic_load(&Q4.made) == 4, Q4.polls, Q4.rc);
    for (Q4.rc = 0; Q4.rc < 4; Q4.rc++)
        assert_int_equal(sl_spawn_on(R(Q4.rc), q4_start, (void *)(intptr_t)Q4.rc, NULL), 0);
    for (Q4.polls = 0; Q4.polls < 3 * POLLS; Q4.polls++) {
        if (atomic_load(&Q4.senders_done) == 8 && atomic_load(&Q4.got) >= atomic_load(&Q4.ok))
            break;
        SL_AWAIT(t, Q4.rc, sl_sleep(t, SL_NS_PER_MS));
    }
    assert_true(Q4.polls < 3 * POLLS);   /* every sender finished, every value came */
    atomic_store(&Q4.stop, 1);
    WAIT_FOR(t, atomic_load(&Q4.recv_done) == 4, Q4.polls, Q4.rc);
    for (Q4.rc = 0; Q4.rc < 4; Q4.rc++)
        assert_int_equal(sl_spawn_on(R(Q4.rc), q4_free, (void *)(intptr_t)Q4.rc, NULL), 0);
    WAIT_FOR(t, atomic_load(&Q4.frees) == 4, Q4.polls, Q4.rc);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_meet3_race_several_homes(void **st)
{
    (void)st;
    memset(&Q4, 0, sizeof Q4);
    memset(q4d, 0, sizeof q4d);
    memset(q4_fpolls, 0, sizeof q4_fpolls);
    sl__rsel_set_hold_hook(q4_hook, NULL);
    run_scene(4, q4_main);
    sl__rsel_set_hold_hook(NULL, NULL);
    long ok = 0, got = 0, bad = 0;
    for (int v = 0; v < 4 * Q_KINDS * QN; v++) {
        ok += Q4.sent[v];
        got += Q4.rcvd[v];
        bad += Q4.sent[v] != Q4.rcvd[v];
    }
    print_message("several homes race: %ld sent, %ld received; %ld holds, %ld held, %ld waited, %ld refused busy, "
                  "%ld rematched, %ld claims of home selects with a case elsewhere; %ld selects, %ld cancels, %ld timeouts\n",
                  ok, got, (long)Q4.hooks[0], (long)Q4.hooks[1], (long)Q4.hooks[4], (long)Q4.hooks[5], (long)Q4.hooks[6],
                  (long)Q4.hooks[8], (long)Q4.selects, (long)Q4.cancels, (long)Q4.timeouts);
    assert_int_equal(Q4.dup, 0);
    assert_int_equal(bad, 0);   /* each sent value received once, none other */
    assert_int_equal(ok, 8 * QN);
    /* MIX and RECV2 workers with a case on their own reactor's channel are
     * home selects with a case elsewhere: claimed now (never before) */
    assert_true(Q4.hooks[8] > 0);
}

/* ---- a claimed select with cases elsewhere (issue 17) ------------------------------------------
 *
 * docs/core.md "A claimed select with cases elsewhere". S_H, parked at a
 * home, has a case on a rendezvous channel of that home (c0) and another
 * case elsewhere: on reactor 2's rendezvous channel c2 (a proxy there) or
 * its buffered q2 (waiting here for a lend). S_R on reactor 1 [<- l1 (its
 * own, idle), the other operation on c0]. S_H is claimed for S_R's proxy
 * and they meet. On main S_H was not claimed (sl__select_local_only): both
 * waited until their deadline, and the scenes' checks that a claim of a
 * select with cases elsewhere happened (hold hook phase 8) fail. Forced with
 * the offer hook at reactor 1 (S_R deciding the claim's offer) and the hold
 * hook (4: a message waits for the busy select; 5: refused busy; 6/7:
 * REMATCH), not with sleeps. */
enum { CM_MEET, CM_PLAIN, CM_DEADLINE, CM_CANCEL, CM_FREE, CM_TEARDOWN, CM_SYMM, CM_REUSE, CM_CLAIMS, CM_WAIT, CM_DIE };
#define CM_PLAINS(h) ((h) >= CM_PLAIN && (h) <= CM_TEARDOWN)
#define CM_BUSY(h) ((h) >= CM_WAIT)

static struct {
    int how;
    bool sh_first, sh_send, far_buf, decline;
    sl_chan *c0[2];             /* rendezvous: at reactor 0, and at reactor 3 (busy scenes, S_H there by sid) */
    sl_chan *c2, *q2;           /* reactor 2's: rendezvous, buffered (cap 1) */
    sl_chan *l1, *l3;           /* S_R's and S_3's own, idle */
    int hk;                     /* S_H's reactor: 0, or 3 in the busy scenes */
    sl_task *_Atomic cand[2];
    sl_task *sh;
    _Atomic int ncand, hooks[9], hoff0, roff, ready2, done2, plain_done, freed, sh_sel, shd, srd, s3d, made3, freed3;
    sl_case csh[2], csr[2], cs3[2];
    int64_t vsh[2], vsr[2], vs3[2], pv, qv;
    int rsh, esh, rsr, esr, rs3, es3, prc, qrc;
    int p[8], r[8];             /* each task its own poll counter and result */
    /* CM_CLAIMS: a select at reactor k [<- c0[k], c0[1 - k] <- 11 or 22] */
    sl_case ccc[2][2];
    int64_t vcc[2][2];
    int rcc[2], ecc[2];
    _Atomic int ccd[2], rfirst[2], made1, free_go, free_k, freers_done;
    char diag[512];
    /* CM_REUSE: q2 freed while S_H is claimed, its header reused by the next */
    _Atomic int reused;
    bool same;
    int yrc;
    int64_t yv;
} CM;

static bool cm_spin(_Atomic int *x, int at_least)   /* in a hook: the other thread's event, bounded */
{
    uint64_t end = sl_now_ns() + LONG_WAIT;
    while (atomic_load(x) < at_least && sl_now_ns() < end)
        sched_yield();
    return atomic_load(x) >= at_least;
}

static void cm_hold_hook(void *arg, int phase)
{
    (void)arg;
    sl_reactor *me = sl_reactor_current();
    if (phase == 4 && !atomic_load(&CM.hooks[4]) && me == R(CM.hk) && CM.how == CM_PLAIN)
        sl_task_describe(CM.sh, CM.diag, sizeof CM.diag);   /* S_H claimed, the plain offer waiting */
    int n = atomic_fetch_add(&CM.hooks[phase], 1);
    if (phase == 5 && n == 0 && CM.how == CM_CLAIMS && CM.decline) {
        /* the refusal of the other home's claim is not published yet (at
         * this callback's end): that home frees the claimed case's channel
         * first, so the refusal finds it freed (answer_gone) */
        atomic_store(&CM.free_k, me == R(0) ? 1 : 0);
        atomic_store(&CM.free_go, 1);
        assert_true(cm_spin(&CM.freed, 1));
    }
    if (phase == 1 && n == 0 && CM.how == CM_SYMM)
        assert_true(cm_spin(&CM.hoff0, 1));   /* S_X held: the claim's offer is out too */
    if (phase == 4 && n == 0 && me == R(CM.hk)) {
        if (CM.how == CM_TEARDOWN)
            sl_runtime_stop(rt);
        else if (CM.how == CM_DEADLINE)
            sl__timer_fire(R(CM.hk), CM.sh->wake_at_);
        else if (CM.how == CM_CANCEL)
            assert_int_equal(sl_task_cancel(CM.sh, 0), 0);
    }
}

static void cm_h_hook(void *arg)   /* right after an offer is posted */
{
    (void)arg;
    if (CM.how == CM_SYMM && sl_reactor_current() == R(0) && atomic_fetch_add(&CM.hoff0, 1) == 0)
        assert_true(cm_spin(&CM.hooks[1], 1));   /* S_H claimed: S_X is held too before either offer leaves */
}

static void cm_r_hook(void *arg)   /* before an offer is decided: S_R deciding the claim's */
{
    (void)arg;
    if (CM.how == CM_CLAIMS) {   /* each claim's offer is decided once both selects are claimed */
        int me = sl_reactor_current() == R(0) ? 0 : sl_reactor_current() == R(1) ? 1 : -1;
        if (me >= 0 && atomic_fetch_add(&CM.rfirst[me], 1) == 0)
            assert_true(cm_spin(&CM.hooks[8], 2));
        return;
    }
    if (sl_reactor_current() != R(1) || CM.how == CM_SYMM || atomic_fetch_add(&CM.roff, 1))
        return;
    if (CM_PLAINS(CM.how) || CM.how == CM_WAIT)
        assert_true(cm_spin(&CM.hooks[4], 1));   /* the third reactor's offer waits at S_H */
    if (CM.how == CM_FREE)
        assert_true(cm_spin(&CM.freed, 1));
    if (CM.how == CM_DIE)
        assert_true(cm_spin(&CM.hooks[5], 1));   /* S_3's offer refused busy by S_H */
    if (CM.how == CM_REUSE)
        assert_true(cm_spin(&CM.reused, 1));   /* q2 freed and its header reused while S_H is claimed */
    if (!CM.decline)
        return;
    int64_t x = 777;   /* S_R fires its own case first: the claim is declined */
    assert_int_equal(sl_chan_try_send(NULL, CM.l1, &x), 0);
}

static int cm_sh(sl_task *t, void *arg)   /* S_H: reactor 0, or by sid 0 / 3 (and then S_3 is the other) */
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    if (CM_BUSY(CM.how)) {
        if (k == 3) {
            assert_int_equal(sl_chan_new(&CM.c0[1], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c0b" }), 0);
            assert_int_equal(sl_chan_give(CM.c0[1], t, NULL), 0);
        }
        atomic_store(&CM.cand[atomic_fetch_add(&CM.ncand, 1)], t);
        WAIT_FOR(t, atomic_load(&CM.ncand) == 2, CM.p[k], CM.r[k]);
        {
            /* roles by sid (the task's id, published with the task): DIE,
             * S_H the lower (it refuses S_3's offer); WAIT, the higher
             * (S_3's offer waits) */
            sl_task *a = atomic_load(&CM.cand[0]), *b = atomic_load(&CM.cand[1]);
            uint64_t me = t->id_, other = (a == t ? b : a)->id_;
            if (CM.how == CM_DIE ? me > other : me < other)
                goto s3;
        }
        CM.hk = k;
    }
    CM.sh = t;
    CM.vsh[0] = CM.sh_send ? 5 : -1;
    CM.vsh[1] = -1;
    CM.csh[0] = (sl_case){ .ch = CM.c0[CM.hk ? 1 : 0], .op = CM.sh_send ? SL_SEND : SL_RECV, .buf = &CM.vsh[0] };
    CM.csh[1] = (sl_case){ .ch = CM.far_buf ? CM.q2 : CM.c2, .op = SL_RECV, .buf = &CM.vsh[1] };
    atomic_store(&CM.sh_sel, 1);   /* parked in this callback: what S_R's proxy finds when it comes */
    SL_AWAIT(t, CM.rsh, sl_select(t, CM.csh, 2, 0));
    if (CM.rsh >= 0)
        CM.esh = CM.csh[CM.rsh].err;
    atomic_store(&CM.shd, 1);
    SL_RETURN(t, 0);
s3:   /* S_3 [<- l3, c2 <- 3], once S_H is claimed: held by reactor 2, it offers to S_H's proxy */
    WAIT_FOR(t, atomic_load(&CM.hooks[8]) >= 1, CM.p[k], CM.r[k]);
    assert_int_equal(sl_chan_new(&CM.l3, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "l3" }), 0);
    CM.vs3[0] = -1;
    CM.vs3[1] = 3;
    CM.cs3[0] = (sl_case){ .ch = CM.l3, .op = SL_RECV, .buf = &CM.vs3[0] };
    CM.cs3[1] = (sl_case){ .ch = CM.c2, .op = SL_SEND, .buf = &CM.vs3[1] };
    SL_AWAIT(t, CM.rs3, sl_select(t, CM.cs3, 2, 0));
    if (CM.rs3 >= 0)
        CM.es3 = CM.cs3[CM.rs3].err;
    assert_int_equal(sl_chan_free(t, CM.l3), 0);
    atomic_store(&CM.s3d, 1);
    SL_END(t);
}

static int cm_sr(sl_task *t, void *arg)   /* reactor 1: S_R [<- l1, c0 either way]; or S_X [c0 <- 7, c2 <- 8] */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    assert_int_equal(sl_chan_new(&CM.l1, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "l1" }), 0);
    if (CM.how == CM_SYMM) {
        CM.vsr[0] = 7;
        CM.vsr[1] = 8;
        CM.csr[0] = (sl_case){ .ch = CM.c0[0], .op = SL_SEND, .buf = &CM.vsr[0] };
        CM.csr[1] = (sl_case){ .ch = CM.c2, .op = SL_SEND, .buf = &CM.vsr[1] };
    } else {
        CM.vsr[0] = -1;
        CM.vsr[1] = CM.sh_send ? -1 : 42;
        CM.csr[0] = (sl_case){ .ch = CM.l1, .op = SL_RECV, .buf = &CM.vsr[0] };
        CM.csr[1] = (sl_case){ .ch = CM.c0[CM.hk ? 1 : 0], .op = CM.sh_send ? SL_RECV : SL_SEND, .buf = &CM.vsr[1] };
    }
    SL_AWAIT(t, CM.rsr, sl_select(t, CM.csr, 2, 0));
    if (CM.rsr >= 0)
        CM.esr = CM.csr[CM.rsr].err;
    assert_int_equal(sl_chan_free(t, CM.l1), 0);
    atomic_store(&CM.srd, 1);
    SL_END(t);
}

static int cm_plain(sl_task *t, void *arg)   /* reactor 2: a blocking sender on c2 once S_H is claimed */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&CM.hooks[8]) >= 1, CM.p[4], CM.r[4]);
    CM.pv = 33;
    SL_AWAIT(t, CM.prc, sl_chan_send(t, CM.c2, &CM.pv));
    atomic_store(&CM.plain_done, 1);
    SL_END(t);
}

static int cm_freer(sl_task *t, void *arg)   /* reactor 2: frees c2 while the plain offer waits at S_H */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&CM.hooks[4]) >= 1, CM.p[5], CM.r[5]);
    assert_int_equal(sl_chan_free(NULL, CM.c2), 0);
    CM.c2 = NULL;
    atomic_store(&CM.freed, 1);
    SL_END(t);
}

static int cm_claim_sel(sl_task *t, void *arg)   /* reactor k (0 or 1): [<- c0[k], c0[1 - k] <- v] */
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT / 2);
    CM.vcc[k][0] = -1;
    CM.vcc[k][1] = k ? 22 : 11;
    CM.ccc[k][0] = (sl_case){ .ch = CM.c0[k], .op = SL_RECV, .buf = &CM.vcc[k][0] };
    CM.ccc[k][1] = (sl_case){ .ch = CM.c0[1 - k], .op = SL_SEND, .buf = &CM.vcc[k][1] };
    SL_AWAIT(t, CM.rcc[k], sl_select(t, CM.ccc[k], 2, 0));
    if (CM.rcc[k] >= 0)
        CM.ecc[k] = CM.ccc[k][CM.rcc[k]].err;
    atomic_store(&CM.ccd[k], 1);
    SL_END(t);
}

static int cm_claim_freer(sl_task *t, void *arg)   /* reactor k: frees c0[k] if the refusal says so */
{
    int k = (int)(intptr_t)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, atomic_load(&CM.free_go), CM.p[2 + k], CM.r[2 + k]);
    if (atomic_load(&CM.free_k) == k) {
        assert_int_equal(sl_chan_free(NULL, CM.c0[k]), 0);
        atomic_store(&CM.freed, 1);
    }
    atomic_fetch_add(&CM.freers_done, 1);
    SL_END(t);
}

static int cm_make1(sl_task *t, void *arg)   /* reactor 1: c0b */
{
    (void)arg;
    assert_int_equal(sl_chan_new(&CM.c0[1], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c0b" }), 0);
    assert_int_equal(sl_chan_give(CM.c0[1], t, NULL), 0);
    atomic_store(&CM.made1, 1);
    return 0;
}

static bool cm_all_done(void)
{
    return atomic_load(&CM.shd) && atomic_load(&CM.srd) && (!CM_BUSY(CM.how) || atomic_load(&CM.s3d));
}

static int cm_h2(sl_task *t, void *arg)   /* reactor 2: c2's and q2's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&CM.c2, sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c2" }), 0);
    assert_int_equal(sl_chan_new(&CM.q2, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "q2" }), 0);
    assert_int_equal(sl_chan_give(CM.c2, t, NULL), 0);
    if (CM_PLAINS(CM.how))
        assert_int_equal(sl_spawn(NULL, cm_plain, NULL, NULL, NULL), 0);
    if (CM.how == CM_FREE)
        assert_int_equal(sl_spawn(NULL, cm_freer, NULL, NULL, NULL), 0);
    atomic_store(&CM.ready2, 1);
    if (CM.how == CM_MEET && CM.far_buf && CM.decline) {   /* S_R declined: an element in q2 for S_H */
        WAIT_FOR(t, atomic_load(&CM.srd), CM.p[6], CM.r[6]);
        CM.pv = 9;
        assert_int_equal(sl_chan_try_send(NULL, CM.q2, &CM.pv), 0);
    }
    if (CM.how == CM_REUSE) {   /* S_H claimed, its q2 node pinned off its queue: q2 goes, the next takes its header */
        WAIT_FOR(t, atomic_load(&CM.hooks[8]) >= 1, CM.p[6], CM.r[6]);
        sl_chan *old = CM.q2;
        assert_int_equal(sl_chan_free(t, CM.q2), 0);
        chan_churn(t, SL_CHAN_QUARANTINE, sizeof(int64_t), 1);
        assert_int_equal(sl_chan_new(&CM.q2, sizeof(int64_t), 1, &(sl_chan_opts){ .name = "q2-new" }), 0);
        CM.same = CM.q2 == old;
        CM.pv = 9;   /* the bait: S_H's put back, asking for old q2, must not be lent it */
        assert_int_equal(sl_chan_try_send(t, CM.q2, &CM.pv), 0);
        atomic_store(&CM.reused, 1);
        WAIT_FOR(t, atomic_load(&CM.shd), CM.p[6], CM.r[6]);
        CM.yrc = sl_chan_try_recv(t, CM.q2, &CM.yv);   /* 9, received once, here */
    }
    WAIT_FOR(t, atomic_load(&CM.shd), CM.p[6], CM.r[6]);
    if (CM_PLAINS(CM.how) && CM.how != CM_FREE && !(CM.rsh == 1 && CM.esh == 0)) {
        /* S_H did not take the plain sender's 33: it waits here again, a receive meets it */
        SL_AWAIT(t, CM.qrc, sl_chan_recv(t, CM.c2, &CM.qv));
        assert_int_equal(CM.qrc, 0);
        assert_int_equal(CM.qv, 33);
    }
    if (CM_PLAINS(CM.how))
        WAIT_FOR(t, atomic_load(&CM.plain_done), CM.p[6], CM.r[6]);
    if (CM_BUSY(CM.how) && CM.rsh != 1) {   /* S_3 still waits to send 3 on c2 */
        SL_AWAIT(t, CM.qrc, sl_chan_recv(t, CM.c2, &CM.qv));
        assert_int_equal(CM.qrc, 0);
        assert_int_equal(CM.qv, 3);
    }
    WAIT_FOR(t, cm_all_done(), CM.p[6], CM.r[6]);
    if (CM.c2) {
        WAIT_FOR(t, CM.c2->rv_out_ == 0, CM.p[6], CM.r[6]);   /* no proxy left behind */
        assert_int_equal(sl_chan_free(NULL, CM.c2), 0);
    }
    assert_int_equal(sl_chan_len(CM.q2), 0);
    assert_int_equal(sl_chan_free(t, CM.q2), 0);
    atomic_store(&CM.done2, 1);
    SL_END(t);
}

static int cm_free3(sl_task *t, void *arg)   /* c0b's home (3, or 1): c0b, once nothing of it is out */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    WAIT_FOR(t, CM.c0[1]->rv_out_ == 0, CM.p[7], CM.r[7]);
    assert_int_equal(sl_chan_free(NULL, CM.c0[1]), 0);
    atomic_store(&CM.freed3, 1);
    SL_END(t);
}

static int cm_main(sl_task *t, void *arg)   /* reactor 0: c0's home */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + LONG_WAIT);
    assert_int_equal(sl_chan_new(&CM.c0[0], sizeof(int64_t), 0, &(sl_chan_opts){ .name = "c0" }), 0);
    if (CM.how == CM_CLAIMS) {   /* two home selects, each with a case at the other's home */
        assert_int_equal(sl_chan_give(CM.c0[0], t, NULL), 0);
        assert_int_equal(sl_spawn_on(R(1), cm_make1, NULL, NULL), 0);
        WAIT_FOR(t, atomic_load(&CM.made1), CM.p[0], CM.r[0]);
        if (CM.decline)
            for (int k = 0; k < 2; k++)
                assert_int_equal(sl_spawn_on(R(k), cm_claim_freer, (void *)(intptr_t)k, NULL), 0);
        assert_int_equal(sl_spawn_on(R(0), cm_claim_sel, (void *)(intptr_t)0, NULL), 0);
        assert_int_equal(sl_spawn_on(R(1), cm_claim_sel, (void *)(intptr_t)1, NULL), 0);
        WAIT_FOR(t, atomic_load(&CM.ccd[0]) && atomic_load(&CM.ccd[1]), CM.p[0], CM.r[0]);
        /* on main neither was claimed: both waited until their deadline */
        assert_true(CM.rcc[0] != -ETIMEDOUT && CM.rcc[1] != -ETIMEDOUT);
        if (CM.decline)   /* both freers ended (one may still sleep in its poll): no task left at the stop */
            WAIT_FOR(t, atomic_load(&CM.freers_done) == 2, CM.p[0], CM.r[0]);
        if (!CM.decline || atomic_load(&CM.free_k) != 0) {
            WAIT_FOR(t, CM.c0[0]->rv_out_ == 0, CM.p[0], CM.r[0]);
            assert_int_equal(sl_chan_free(NULL, CM.c0[0]), 0);
        }
        if (!CM.decline || atomic_load(&CM.free_k) != 1) {
            assert_int_equal(sl_spawn_on(R(1), cm_free3, NULL, NULL), 0);
            WAIT_FOR(t, atomic_load(&CM.freed3), CM.p[0], CM.r[0]);
        }
        sl_runtime_stop(rt);
        SL_RETURN(t, 0);
    }
    assert_int_equal(sl_spawn_on(R(2), cm_h2, NULL, NULL), 0);
    WAIT_FOR(t, atomic_load(&CM.ready2), CM.p[0], CM.r[0]);
    if (CM_BUSY(CM.how)) {
        assert_int_equal(sl_spawn_on(R(0), cm_sh, (void *)(intptr_t)0, NULL), 0);
        assert_int_equal(sl_spawn_on(R(3), cm_sh, (void *)(intptr_t)3, NULL), 0);
        WAIT_FOR(t, atomic_load(&CM.sh_sel), CM.p[0], CM.r[0]);
        assert_int_equal(sl_spawn_on(R(1), cm_sr, NULL, NULL), 0);
    } else if (CM.sh_first) {
        assert_int_equal(sl_spawn(NULL, cm_sh, (void *)(intptr_t)0, NULL, NULL), 0);
        WAIT_FOR(t, atomic_load(&CM.sh_sel), CM.p[0], CM.r[0]);
        assert_int_equal(sl_spawn_on(R(1), cm_sr, NULL, NULL), 0);
    } else {   /* S_R's proxy queued at c0 first: S_H is claimed as it parks */
        assert_int_equal(sl_spawn_on(R(1), cm_sr, NULL, NULL), 0);
        WAIT_FOR(t, (CM.sh_send ? CM.c0[0]->rv_recvq_ : CM.c0[0]->rv_sendq_) == 1, CM.p[0], CM.r[0]);
        assert_int_equal(sl_spawn(NULL, cm_sh, (void *)(intptr_t)0, NULL, NULL), 0);
    }
    WAIT_FOR(t, cm_all_done() && atomic_load(&CM.done2), CM.p[0], CM.r[0]);
    /* on main S_H was never claimed: S_H and S_R waited until their deadline */
    assert_true(CM.how == CM_DEADLINE || (CM.rsh != -ETIMEDOUT && CM.rsr != -ETIMEDOUT));
    /* a select with a case elsewhere was claimed */
    assert_true(atomic_load(&CM.hooks[8]) >= 1);
    WAIT_FOR(t, CM.c0[0]->rv_out_ == 0, CM.p[0], CM.r[0]);
    assert_int_equal(sl_chan_free(t, CM.c0[0]), 0);
    if (CM.c0[1]) {
        assert_int_equal(sl_spawn_on(R(3), cm_free3, NULL, NULL), 0);
        WAIT_FOR(t, atomic_load(&CM.freed3), CM.p[0], CM.r[0]);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void cm_run(int how, bool sh_first, bool sh_send, bool far_buf, bool decline)
{
    memset(&CM, 0, sizeof CM);
    CM.how = how;
    CM.sh_first = sh_first;
    CM.sh_send = sh_send;
    CM.far_buf = far_buf;
    CM.decline = decline;
    sl__rsel_set_hooks(cm_r_hook, cm_h_hook, NULL);
    sl__rsel_set_hold_hook(cm_hold_hook, NULL);
    if (how == CM_TEARDOWN) {   /* the runtime stops while S_H is claimed and the plain offer waits */
        memset(&cap, 0, sizeof cap);
        *scene_live() = true;
        rt = rt_new(4, &cap);
        assert_int_equal(rt_run_keep(rt, cm_main, NULL), 0);
        int leaks = sl_runtime_free(rt);
        *scene_live() = false;
        print_message("teardown with S_H claimed, an offer waiting: %d leaks reported\n", leaks);
        assert_true(leaks >= 3);   /* the channels at least */
        sl__rsel_set_hooks(NULL, NULL, NULL);
    } else {
        run_scene(4, cm_main);
    }
    sl__rsel_set_hold_hook(NULL, NULL);
    print_message("S_H at %d: case %d (err %d), S_R case %d (err %d)%s; claimed %d, waited %d, refused busy %d, "
                  "rematch posted %d, matched %d\n", CM.hk, CM.rsh, CM.esh, CM.rsr, CM.esr,
                  CM_BUSY(CM.how) ? "" : "", CM.hooks[8], CM.hooks[4], CM.hooks[5], CM.hooks[7], CM.hooks[6]);
}

static void cm_met(int rsh, int64_t vsh, int rsr)   /* S_H took case rsh (vsh there), S_R case rsr, both 0 */
{
    assert_int_equal(CM.rsh, rsh);
    assert_int_equal(CM.esh, 0);
    if (vsh)
        assert_int_equal(CM.vsh[rsh], vsh);
    assert_int_equal(CM.rsr, rsr);
    assert_int_equal(CM.esr, 0);
}

/* S_H [<- c0 or c0 <- 5, <- c2 or <- q2] and S_R [<- l1, the other on c0] meet */
static void test_meet4_recv_sh_first(void **st) { (void)st; cm_run(CM_MEET, true, false, false, false); cm_met(0, 42, 1); }
static void test_meet4_recv_sr_first(void **st) { (void)st; cm_run(CM_MEET, false, false, false, false); cm_met(0, 42, 1); }
static void test_meet4_send_sh_first(void **st)
{
    (void)st;
    cm_run(CM_MEET, true, true, false, false);
    cm_met(0, 0, 1);
    assert_int_equal(CM.vsr[1], 5);
}
static void test_meet4_send_sr_first(void **st)
{
    (void)st;
    cm_run(CM_MEET, false, true, false, false);
    cm_met(0, 0, 1);
    assert_int_equal(CM.vsr[1], 5);
}
static void test_meet4_buf_sh_first(void **st) { (void)st; cm_run(CM_MEET, true, false, true, false); cm_met(0, 42, 1); }
static void test_meet4_buf_sr_first(void **st) { (void)st; cm_run(CM_MEET, false, false, true, false); cm_met(0, 42, 1); }

/* S_H [<- c0, <- q2] claimed as it parks (S_R's proxy first), so its q2
 * node was off its queue at the callback's end, when the flush asks home
 * for the receivers waiting: no ask went. The claim declined (S_R fires
 * l1), S_H's node is back, and reactor 2 puts 9 in q2: S_H must get it
 * (before, nothing asked home for it: S_H waited until its deadline) */
static void test_meet4_buf_declined_asks_home(void **st)
{
    (void)st;
    cm_run(CM_MEET, false, false, true, true);
    cm_met(1, 9, 0);
    assert_int_equal(CM.vsr[0], 777);
}

/* The same claim, and while S_H is claimed (its q2 node pinned off its
 * queue, its record kept) reactor 2 frees q2 and makes a new channel at
 * q2's address (past the quarantine: chan.c, type-stable headers) with 9
 * in it. The claim declined, S_H's node is put back and asks home for the
 * old q2, by the record's generation: -EPIPE for S_H's q2 case, and the
 * new channel keeps its 9 (before the generations: it was lent to S_H,
 * which returned case 1 with 0 and 9: another channel's element) */
static void test_pinned_put_back_after_free_reuse(void **st)
{
    (void)st;
    cm_run(CM_REUSE, false, false, true, true);
    print_message("new q2 at the old one's address: %s; S_H case %d err %d (%lld); the new q2 then: %d (%lld)\n",
                  CM.same ? "yes" : "no", CM.rsh, CM.esh, (long long)CM.vsh[1], CM.yrc, (long long)CM.yv);
    assert_true(CM.same);
    assert_int_equal(CM.rsh, 1);
    assert_int_equal(CM.esh, -EPIPE);
    assert_int_equal(CM.vsh[1], -1);
    assert_int_equal(CM.rsr, 0);
    assert_int_equal(CM.vsr[0], 777);
    assert_int_equal(CM.yrc, 0);
    assert_int_equal(CM.yv, 9);
}

/* A plain sender at reactor 2 offers to S_H's c2 proxy while S_H is
 * claimed: the offer waits at reactor 0 (the diagnostics say so).
 * Accepted claim: declined, the sender meets a receive at reactor 2
 * afterwards. Declined claim (S_R fires l1): S_H takes the 33. */
static void test_meet4_plain_offer_waits_accepted(void **st)
{
    (void)st;
    cm_run(CM_PLAIN, true, false, false, false);
    cm_met(0, 42, 1);
    assert_int_equal(CM.prc, 0);
    assert_int_equal(CM.qv, 33);
    assert_int_equal(CM.hooks[4], 1);
    print_message("%s\n", CM.diag);
    assert_non_null(strstr(CM.diag, "claimed for a meet with reactor 1's select, 1 message waiting for the answer"));
}
static void test_meet4_plain_offer_waits_declined(void **st)
{
    (void)st;
    cm_run(CM_PLAIN, true, false, false, true);
    cm_met(1, 33, 0);
    assert_int_equal(CM.vsr[0], 777);
    assert_int_equal(CM.prc, 0);
    assert_int_equal(CM.qv, 0);   /* reactor 2 received nothing */
}

/* S_H's deadline or cancel while claimed and busy: it waits for the
 * answer (accepted: the c0 case; declined: the error); the plain
 * sender's 33, declined at S_H, is received once at reactor 2 */
static void cm_check_stop(int how, bool decline, int err)
{
    cm_run(how, true, false, false, decline);
    if (decline) {
        assert_int_equal(CM.rsh, err);
        assert_int_equal(CM.rsr, 0);
        assert_int_equal(CM.vsr[0], 777);
    } else {
        cm_met(0, 42, 1);
    }
    assert_int_equal(CM.prc, 0);
    assert_int_equal(CM.qv, 33);
    assert_int_equal(CM.hooks[4], 1);
}
static void test_meet4_deadline_while_claimed_accepted(void **st) { (void)st; cm_check_stop(CM_DEADLINE, false, 0); }
static void test_meet4_deadline_while_claimed_declined(void **st) { (void)st; cm_check_stop(CM_DEADLINE, true, -ETIMEDOUT); }
static void test_meet4_cancel_while_claimed_accepted(void **st) { (void)st; cm_check_stop(CM_CANCEL, false, 0); }
static void test_meet4_cancel_while_claimed_declined(void **st) { (void)st; cm_check_stop(CM_CANCEL, true, -ECANCELED); }

/* c2 freed at reactor 2 while the plain offer waits at the claimed S_H:
 * accepted claim, the offer is declined on a freed channel (-EPIPE for the
 * sender); declined claim, S_H accepts it (the send happened before the
 * free: 0) */
static void test_meet4_free_while_claimed_accepted(void **st)
{
    (void)st;
    cm_run(CM_FREE, true, false, false, false);
    cm_met(0, 42, 1);
    assert_int_equal(CM.prc, -EPIPE);
}
static void test_meet4_free_while_claimed_declined(void **st)
{
    (void)st;
    cm_run(CM_FREE, true, false, false, true);
    cm_met(1, 33, 0);
    assert_int_equal(CM.prc, 0);
}

/* The runtime stops while S_H is claimed and the plain offer waits for
 * it: S_H's proxies forget it, the answer (brought by the drain) runs what
 * waited, finding no select; nothing is read after its free
 * (AddressSanitizer) and the teardown ends */
static void test_meet4_teardown_while_claimed(void **st)
{
    (void)st;
    cm_run(CM_TEARDOWN, true, false, false, false);
    assert_int_equal(CM.hooks[4], 1);
    assert_int_equal(CM.hooks[8], 1);
}

/* The symmetric case between a claim and a hold: S_H [<- c0, <- c2] at 0,
 * S_X [c0 <- 7, c2 <- 8] at 1. Reactor 0 claims S_H for S_X's c0 proxy
 * while reactor 2 holds S_X for its c2 proxy, both at once (the hooks):
 * the claim's offer reaches S_X held. By sid one offer is refused busy and
 * the other is accepted (after waiting, or, S_H's claim refused, by S_H
 * free again): exactly one meet. Without the claim's sid the two offers
 * could wait for each other until the deadlines. */
static void test_meet4_symmetric_hold(void **st)
{
    (void)st;
    cm_run(CM_SYMM, true, false, false, false);
    assert_int_equal(CM.esh, 0);
    assert_int_equal(CM.esr, 0);
    assert_int_equal(CM.rsh, CM.rsr);   /* the same channel: c0 (7) or c2 (8) */
    assert_int_equal(CM.vsh[CM.rsh], CM.rsh ? 8 : 7);
    assert_int_equal(CM.hooks[1], 1);   /* S_X held once */
    assert_int_equal(CM.hooks[5], 1);   /* one refusal */
    /* the other offer waited for the busy select (S_H the lower sid: the
     * claim's, at S_X, always), or (S_H the higher) came after the refused
     * claim's answer and found S_H free (ThreadSanitizer's timing) */
    assert_true(CM.hooks[4] <= 1);
}

/* The symmetric case between two claims: S_0 [<- c0, c0b <- 11] at
 * reactor 0 and S_1 [<- c0b, c0 <- 22] at reactor 1 (c0b's home): each home
 * claims its select for the other's proxy, and each claim's offer is
 * decided while both are claimed (the offer hook waits for both claims).
 * The higher sid's offer is refused busy, the lower's waits and is then
 * accepted: exactly one meet. Without the claim's sid both offers would
 * have waited for each other until the deadlines. */
static void test_meet4_symmetric_claims(void **st)
{
    (void)st;
    cm_run(CM_CLAIMS, true, false, false, false);
    print_message("S_0 case %d (err %d), S_1 case %d (err %d)\n", CM.rcc[0], CM.ecc[0], CM.rcc[1], CM.ecc[1]);
    assert_int_equal(CM.ecc[0], 0);
    assert_int_equal(CM.ecc[1], 0);
    assert_true((CM.rcc[0] == 0 && CM.rcc[1] == 1 && CM.vcc[0][0] == 22) ||
                (CM.rcc[0] == 1 && CM.rcc[1] == 0 && CM.vcc[1][0] == 11));   /* one meet, on one channel */
    assert_int_equal(CM.hooks[8], 2);   /* both claimed, once */
    assert_int_equal(CM.hooks[5], 1);   /* one refusal */
    assert_int_equal(CM.hooks[4], 1);   /* one offer waited */
}

/* The same, the refused claim's channel freed at its home before the
 * refusal arrives there (answer_gone with the refusal): the refused
 * select's claimed case fails -EPIPE (its channel is gone), what waited
 * for it finds it stopped, and the refusing select's proxy on that channel
 * is fired -EPIPE, not freed under its select: both selects return their
 * case on that channel with -EPIPE (AddressSanitizer: nothing read after
 * the free) */
static void test_meet4_symmetric_claims_free_at_refusal(void **st)
{
    (void)st;
    cm_run(CM_CLAIMS, true, false, false, true);
    int k = CM.free_k, j = 1 - k;
    print_message("freed c0[%d]: S_0 case %d (err %d), S_1 case %d (err %d)\n", k, CM.rcc[0], CM.ecc[0], CM.rcc[1],
                  CM.ecc[1]);
    assert_int_equal(CM.rcc[k], 0);   /* its claimed receive on the freed channel */
    assert_int_equal(CM.ecc[k], -EPIPE);
    assert_int_equal(CM.rcc[j], 1);   /* its send case there, by proxy */
    assert_int_equal(CM.ecc[j], -EPIPE);
    assert_int_equal(CM.hooks[5], 1);
}

/* S_3 [<- l3, c2 <- 3], held by reactor 2 for S_H's c2 proxy, offers to
 * S_H while S_H is claimed for S_R. DIE (S_H the lower sid): refused busy,
 * S_H's proxy skipped at reactor 2; S_R declining, S_H waits free, REMATCH,
 * and S_H and S_3 meet; S_R accepting, S_H takes c0, and S_3 meets a
 * receive at reactor 2. WAIT (S_H the higher sid): the offer waits for the
 * claim's answer: declined, S_H takes S_3's 3; accepted, S_3 is aborted
 * and meets the receive at reactor 2. */
static void cm_check_busy(int how, bool decline)
{
    cm_run(how, false, false, false, decline);
    if (decline) {
        cm_met(1, 3, 0);
        assert_int_equal(CM.vsr[0], 777);
        assert_int_equal(CM.qv, 0);
    } else {
        cm_met(0, 42, 1);
        assert_int_equal(CM.qv, 3);
    }
    assert_int_equal(CM.rs3, 1);
    assert_int_equal(CM.es3, 0);
    if (how == CM_DIE) {
        assert_int_equal(CM.hooks[5], 1);
        assert_int_equal(CM.hooks[7], decline ? 1 : 0);   /* REMATCH only if S_H waits free again */
        assert_int_equal(CM.hooks[6], decline ? 1 : 0);
    } else {
        assert_int_equal(CM.hooks[4], 1);
        assert_int_equal(CM.hooks[5], 0);
    }
}
static void test_meet4_busy_refused_rematched(void **st) { (void)st; cm_check_busy(CM_DIE, true); }
static void test_meet4_busy_refused_accepted(void **st) { (void)st; cm_check_busy(CM_DIE, false); }
static void test_meet4_offer_waits_for_claim_declined(void **st) { (void)st; cm_check_busy(CM_WAIT, true); }
static void test_meet4_offer_waits_for_claim_accepted(void **st) { (void)st; cm_check_busy(CM_WAIT, false); }

int main(void)
{
    if (getenv("RV_FILTER"))   /* one scene by name (cmocka's pattern): a failing one stops the rest */
        cmocka_set_test_filter(getenv("RV_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_rv_recv_fed_at_home, scene_guard),
        cmocka_unit_test_setup(test_rv_recv_fed_at_home_prio, scene_guard),
        cmocka_unit_test_setup(test_rv_recv_fed_by_round_trip, scene_guard),
        cmocka_unit_test_setup(test_rv_send_cases, scene_guard),
        cmocka_unit_test_setup(test_exp_recv_fed_at_home, scene_guard),
        cmocka_unit_test_setup(test_exp_recv_fed_at_home_prio, scene_guard),
        cmocka_unit_test_setup(test_exp_recv_fed_by_credit, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_accepted, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_declined_local_fired, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_expired_accepted, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_expired_declined, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_out_close_accepted, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_out_close_declined, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_out_free_accepted, scene_guard),
        cmocka_unit_test_setup(test_exp_offer_out_free_declined, scene_guard),
        cmocka_unit_test_setup(test_rv_send_cases_prio, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_declined_local_fired, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_select_cancelled, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_select_deadline, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_sender_cancelled_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_sender_deadline_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_sender_cancelled_declined, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_sender_deadline_declined, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_out_close_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_out_free_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_out_free_declined, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_round_trip_cancelled_accepted, scene_guard),
        cmocka_unit_test_setup(test_rv_offer_round_trip_cancelled_declined, scene_guard),
        cmocka_unit_test_setup(test_rv_close_with_recv_proxy, scene_guard),
        cmocka_unit_test_setup(test_rv_close_with_send_proxy, scene_guard),
        cmocka_unit_test_setup(test_rv_free_with_recv_proxy, scene_guard),
        cmocka_unit_test_setup(test_rv_free_with_send_proxy, scene_guard),
        cmocka_unit_test_setup(test_rv_closed_before_park, scene_guard),
        cmocka_unit_test_setup(test_mem_round_trip_recv_rv, scene_guard),
        cmocka_unit_test_setup(test_mem_round_trip_send_rv, scene_guard),
        cmocka_unit_test_setup(test_mem_round_trip_recv_buffered, scene_guard),
        cmocka_unit_test_setup(test_mem_credit_send, scene_guard),
        cmocka_unit_test_setup(test_mem_credit_send_until, scene_guard),
        cmocka_unit_test_setup(test_mem_select_recv_rv, scene_guard),
        cmocka_unit_test_setup(test_mem_select_send_rv, scene_guard),
        cmocka_unit_test_setup(test_mem_select_send_buffered, scene_guard),
        cmocka_unit_test_setup(test_rv_home_select_with_far_case_meets, scene_guard),
        cmocka_unit_test_setup(test_round_trip_cancel_after_free, scene_guard),
        cmocka_unit_test_setup(test_rv_proxy_enomem, scene_guard),
        cmocka_unit_test_setup(test_rv_teardown_proxy_queued, scene_guard),
        cmocka_unit_test_setup(test_rv_teardown_offer_out, scene_guard),
        cmocka_unit_test_setup(test_exp_teardown_offer_out_accepted, scene_guard),
        cmocka_unit_test_setup(test_exp_teardown_offer_out_declined, scene_guard),
        cmocka_unit_test_setup(test_parked_select_epipe_err, scene_guard),
        cmocka_unit_test_setup(test_exp_serve_local_skips_proxy, scene_guard),
        cmocka_unit_test_setup(test_meet_h_recv_r_first, scene_guard),
        cmocka_unit_test_setup(test_meet_h_recv_h_first, scene_guard),
        cmocka_unit_test_setup(test_meet_h_send_r_first, scene_guard),
        cmocka_unit_test_setup(test_meet_h_send_h_first, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_not_fired_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_not_fired_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_declined_parked_sender_meets, scene_guard),
        cmocka_unit_test_setup(test_meet_accepted_parked_sender_waits, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_deadline_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_cancel_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_deadline_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_cancel_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_close_other_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_free_other_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_free_rv_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_close_other_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_free_other_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_claimed_free_rv_declined, scene_guard),
        cmocka_unit_test_setup(test_meet_declined_reclaims_next_proxy, scene_guard),
        cmocka_unit_test_setup(test_meet_teardown_claim_out, scene_guard),
        cmocka_unit_test_setup(test_send_until_offers_proxy_first, scene_guard),
        cmocka_unit_test_setup(test_send_until_offers_sender_first, scene_guard),
        cmocka_unit_test_setup(test_send_until_expired_while_offered_accepted, scene_guard),
        cmocka_unit_test_setup(test_send_until_expired_while_offered_declined, scene_guard),
        cmocka_unit_test_setup(test_send_until_declined_parks_with_deadline, scene_guard),
        cmocka_unit_test_setup(test_meet_race, scene_guard),
        cmocka_unit_test_setup(test_meet2_race_remote_selects, scene_guard),
        cmocka_unit_test_setup(test_meet2_s1_first, scene_guard),
        cmocka_unit_test_setup(test_meet2_s2_first, scene_guard),
        cmocka_unit_test_setup(test_meet2_gone_before_hold, scene_guard),
        cmocka_unit_test_setup(test_meet2_declined_aborts, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_deadline_committed, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_deadline_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_cancel_committed, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_cancel_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet2_close_hold_out, scene_guard),
        cmocka_unit_test_setup(test_meet2_free_hold_out, scene_guard),
        cmocka_unit_test_setup(test_meet2_teardown_hold_out, scene_guard),
        cmocka_unit_test_setup(test_held_put_back_after_free_reuse, scene_guard),
        cmocka_unit_test_setup(test_meet2_paired_proxy_withdrawn, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_free_local_committed, scene_guard),
        cmocka_unit_test_setup(test_meet2_held_free_local_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_rv_s1_first, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_rv_s2_first, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_buf_s1_first, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_buf_s2_first, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_bufsend_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_third_bufsend_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_plain_offer_waits_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_plain_offer_waits_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_deadline_while_busy_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_deadline_while_busy_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_cancel_while_busy_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_cancel_while_busy_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_free_while_busy_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_free_while_busy_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_two_homes_hold_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_two_homes_hold_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_symmetric, scene_guard),
        cmocka_unit_test_setup(test_meet3_busy_refused_rematched, scene_guard),
        cmocka_unit_test_setup(test_meet3_busy_refused_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_offer_waits_for_hold_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_offer_waits_for_hold_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_close_at_refusal_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_close_at_refusal_committed, scene_guard),
        cmocka_unit_test_setup(test_meet3_free_at_refusal_aborted, scene_guard),
        cmocka_unit_test_setup(test_meet3_close_with_rematch_out, scene_guard),
        cmocka_unit_test_setup(test_meet3_free_with_rematch_out, scene_guard),
        cmocka_unit_test_setup(test_meet3_teardown_while_busy, scene_guard),
        cmocka_unit_test_setup(test_meet3_race_several_homes, scene_guard),
        cmocka_unit_test_setup(test_meet4_recv_sh_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_recv_sr_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_send_sh_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_send_sr_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_buf_sh_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_buf_sr_first, scene_guard),
        cmocka_unit_test_setup(test_meet4_buf_declined_asks_home, scene_guard),
        cmocka_unit_test_setup(test_pinned_put_back_after_free_reuse, scene_guard),
        cmocka_unit_test_setup(test_meet4_plain_offer_waits_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet4_plain_offer_waits_declined, scene_guard),
        cmocka_unit_test_setup(test_meet4_deadline_while_claimed_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet4_deadline_while_claimed_declined, scene_guard),
        cmocka_unit_test_setup(test_meet4_cancel_while_claimed_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet4_cancel_while_claimed_declined, scene_guard),
        cmocka_unit_test_setup(test_meet4_free_while_claimed_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet4_free_while_claimed_declined, scene_guard),
        cmocka_unit_test_setup(test_meet4_teardown_while_claimed, scene_guard),
        cmocka_unit_test_setup(test_meet4_symmetric_hold, scene_guard),
        cmocka_unit_test_setup(test_meet4_symmetric_claims, scene_guard),
        cmocka_unit_test_setup(test_meet4_symmetric_claims_free_at_refusal, scene_guard),
        cmocka_unit_test_setup(test_meet4_busy_refused_rematched, scene_guard),
        cmocka_unit_test_setup(test_meet4_busy_refused_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet4_offer_waits_for_claim_declined, scene_guard),
        cmocka_unit_test_setup(test_meet4_offer_waits_for_claim_accepted, scene_guard),
        cmocka_unit_test_setup(test_meet_race_far_receivers, scene_guard),
        cmocka_unit_test_setup(test_rv_race, scene_guard),
        cmocka_unit_test_setup(test_exp_race, scene_guard),
        cmocka_unit_test_setup(test_exp_rv_race, scene_guard),
        cmocka_unit_test_setup(test_rv_race_send_cases, scene_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
