/* test_rv_order.c: a send on a buffered channel x, then an operation on
 * a RENDEZVOUS channel z, both homed on another reactor (issue 17, the
 * fifteenth stop: docs/core.md "A rendezvous keeps the order made").
 *
 * A on reactor 1 sends e on x with credit in hand (its batch waits for
 * the callback's flush), then receives (or sends, or selects) on z, whose
 * counterpart S waits at the home, reactor 0. By Go's memory model the
 * send on x happened before A's operation on z, which is synchronized
 * with S's, so S must then find e in x (sl_chan_try_recv succeeds).
 *
 * A round trip on z (core/remote.c) is posted during A's step, the batch
 * at the flush, behind it in the reactor's chain for the home; the home
 * drains a chain before it runs the tasks it woke, so S usually finds e.
 * Not when the chain is cut between the two: a chain is published once
 * it is CHAIN_MAX (64) messages long (reactor.c publish). A's step here
 * posts no-op messages to the home (sl_reactor_post, public) until its
 * chain there holds 63, so the request is the 64th and leaves at once.
 * What a production program reaches the same way: any 63 posts or round
 * trips to one reactor in one callback (64 tasks each receiving from a
 * channel of another reactor in one turn). And B, a task of reactor 1
 * made ready by A in the same step (so it runs next, in the same
 * callback, before the flush), holds its step until S has looked, at
 * most 20 ms: a long step after A's, which production has too. Neither
 * makes a state production cannot reach: they only make the window
 * between the request's chain and the flush's wide and certain.
 *
 * Reads reactor.c's chain (defer[], internal.h): the test links
 * libsluice.a. */
#include <sched.h>
#include <stdatomic.h>
#include "testutil.h"
#include "internal.h"   /* sl_reactor's defer[], ndefer */

#define LONG_WAIT (10 * SL_NS_PER_S)   /* only a bug runs into it */
#define RV_N 100
#define RV_HOLD_NS (20 * 1000 * 1000)
#define CHAIN_FULL 64                  /* reactor.c CHAIN_MAX */

enum { RV_RECV, RV_SEND, RV_SELECT, RV_REPORT };

static sl_runtime *rt;
static capture cap;

static struct {
    int mode;
    sl_chan *x, *z, *w, *y;   /* y: RV_REPORT's, capacity 2, received from in hand */
    int ia, ib, ic, rca, rcb, rcc, va, vx, vb, vz, vw, vc;
    sl_case cs[1];
    long missed, bad, cut, late, inhand;
    atomic_int tried;     /* S: the rounds it has looked at x in */
    atomic_int armed;     /* A: the round whose z operation is out */
    int finished;
} RV;

static void rv_finished(void *arg)   /* reactor 0 */
{
    (void)arg;
    if (++RV.finished == 2)
        sl_runtime_stop(rt);
}

static void rv_noop(void *arg) { (void)arg; }

/* how many messages our chain for `to` holds (0: none waits) */
static int chain_len(const sl_reactor *r, const sl_reactor *to)
{
    for (int i = 0; i < r->ndefer; i++)
        if (r->defer[i].to == to)
            return r->defer[i].n;
    return 0;
}

static int rv_s(sl_task *t, void *arg)   /* reactor 0: x's and z's home */
{
    (void)arg;
    SL_BEGIN(t);
    if (RV.mode == RV_REPORT) {   /* y full: A's receive makes the room S's try_send needs */
        RV.vb = -1;
        assert_int_equal(sl_chan_try_send(t, RV.y, &RV.vb), 0);
        assert_int_equal(sl_chan_try_send(t, RV.y, &RV.vb), 0);
    }
    for (RV.ib = 0; RV.ib < RV_N; RV.ib++) {
        RV.vz = RV.ib;
        if (RV.mode == RV_SEND)
            SL_AWAIT(t, RV.rcb, sl_chan_recv(t, RV.z, &RV.vz));
        else
            SL_AWAIT(t, RV.rcb, sl_chan_send(t, RV.z, &RV.vz));
        assert_int_equal(RV.rcb, 0);
        if (RV.mode == RV_REPORT) {   /* A's receive on y happened before its receive on z */
            RV.vb = RV.ib;
            RV.rcb = sl_chan_try_send(t, RV.y, &RV.vb);
            atomic_store(&RV.tried, RV.ib + 1);
            if (RV.rcb != 0) {
                assert_int_equal(RV.rcb, -EAGAIN);
                RV.missed++;
                SL_AWAIT(t, RV.rcb, sl_chan_send(t, RV.y, &RV.vb));
                assert_int_equal(RV.rcb, 0);
            }
            continue;
        }
        RV.rcb = sl_chan_try_recv(t, RV.x, &RV.vb);
        atomic_store(&RV.tried, RV.ib + 1);
        if (RV.rcb != 0) {
            assert_int_equal(RV.rcb, -EAGAIN);
            RV.missed++;
            SL_AWAIT(t, RV.rcb, sl_chan_recv(t, RV.x, &RV.vb));
            assert_int_equal(RV.rcb, 0);
        }
        if (RV.vb != RV.ib)
            RV.bad++;
    }
    assert_int_equal(sl_chan_free(t, RV.x), 0);
    assert_int_equal(sl_chan_free(t, RV.z), 0);
    if (RV.y)
        assert_int_equal(sl_chan_free(t, RV.y), 0);
    rv_finished(NULL);
    SL_END(t);
}

/* reactor 1: runs right after A's step (A made it ready there), in the
 * same callback, and holds it until S has looked at x */
static int rv_b(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    for (RV.ic = 0; RV.ic < RV_N; RV.ic++) {
        SL_AWAIT(t, RV.rcc, sl_chan_recv(t, RV.w, &RV.vc));
        assert_int_equal(RV.rcc, 0);
        uint64_t end = sl_now_ns() + RV_HOLD_NS;
        while (atomic_load(&RV.tried) <= RV.ic && sl_now_ns() < end)
            sched_yield();
    }
    SL_END(t);
}

static int rv_a(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&RV.w, sizeof(int), 1, NULL), 0);
    assert_int_equal(sl_spawn(NULL, rv_b, NULL, NULL, NULL), 0);
    for (RV.ia = 0; RV.ia < RV_N; RV.ia++) {
        if (RV.mode == RV_REPORT) {   /* a receive on y, its report waiting for the flush if in hand */
            RV.rca = sl_chan_recv(t, RV.y, &RV.vx);
            RV.inhand += RV.rca == 0;
        } else {
            RV.vx = RV.ia;
            RV.rca = sl_chan_send(t, RV.x, &RV.vx);
        }
        if (RV.rca != 0) {   /* no credit (the first round), nothing given: parks for it */
            assert_int_equal(RV.rca, SL_PENDING);
            RV.late++;
            SL_AWAIT(t, RV.rca, RV.rca);
            assert_int_equal(RV.rca, 0);
        }
        RV.vw = RV.ia;
        assert_int_equal(sl_chan_try_send(t, RV.w, &RV.vw), 0);   /* B: ready, runs after this step */
        {
            sl_reactor *r = sl_task_reactor(t), *home = sl_runtime_reactor(rt, 0);
            for (int k = 0; k < CHAIN_FULL && chain_len(r, home) != CHAIN_FULL - 1; k++)
                assert_int_equal(sl_reactor_post(home, rv_noop, NULL), 0);
            RV.cut += chain_len(r, home) == CHAIN_FULL - 1;   /* the next post publishes the chain */
        }
        atomic_store(&RV.armed, RV.ia + 1);
        if (RV.mode == RV_SELECT) {
            RV.cs[0] = (sl_case){ .ch = RV.z, .op = SL_RECV, .buf = &RV.va };
            SL_AWAIT(t, RV.rca, sl_select(t, RV.cs, 1, 0));
            assert_int_equal(RV.rca, 0);
            assert_int_equal(RV.cs[0].err, 0);
        } else if (RV.mode == RV_SEND) {
            RV.va = RV.ia;
            SL_AWAIT(t, RV.rca, sl_chan_send(t, RV.z, &RV.va));
            assert_int_equal(RV.rca, 0);
        } else {
            SL_AWAIT(t, RV.rca, sl_chan_recv(t, RV.z, &RV.va));
            assert_int_equal(RV.rca, 0);
        }
        assert_int_equal(RV.va, RV.ia);
    }
    assert_int_equal(sl_chan_free(t, RV.w), 0);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 0), rv_finished, NULL), 0);
    SL_END(t);
}

static int rv_main(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    sl_task *s;
    assert_int_equal(sl_chan_new(&RV.x, sizeof(int), 256, NULL), 0);
    assert_int_equal(sl_chan_new(&RV.z, sizeof(int), 0, NULL), 0);
    if (RV.mode == RV_REPORT)
        assert_int_equal(sl_chan_new(&RV.y, sizeof(int), 2, NULL), 0);
    assert_int_equal(sl_spawn(NULL, rv_s, NULL, &s, NULL), 0);
    assert_int_equal(sl_chan_give(RV.x, t, s), 0);
    assert_int_equal(sl_chan_give(RV.z, t, s), 0);
    if (RV.y)
        assert_int_equal(sl_chan_give(RV.y, t, s), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), rv_a, NULL, NULL), 0);
    return 0;
}

static void run_rv(int mode, const char *what)
{
    memset(&cap, 0, sizeof cap);
    memset(&RV, 0, sizeof RV);
    RV.mode = mode;
    rt = rt_new(2, &cap);
    int leaks = rt_run(rt, rv_main, NULL);
    assert_int_equal(leaks, 0);
    print_message("%s: S did not find the first operation's effect (x's element, y's room), %ld of %d rounds "
                  "(%ld with the chain to the home at 63 as z's operation began, %ld late, %ld in hand)\n",
                  what, RV.missed, RV_N, RV.cut, RV.late, RV.inhand);
    if (cap.count)
        print_message("reports:\n%s", cap.text);
    assert_int_equal(cap.count, 0);
    assert_int_equal(RV.ib, RV_N);
    assert_int_equal(RV.bad, 0);
    assert_true(RV.cut >= RV_N / 2);   /* the scene was made */
    if (mode == RV_REPORT)
        assert_true(RV.inhand >= RV_N / 4);
    assert_int_equal(RV.missed, 0);
}

/* A receives on z: a round trip (remote.c), S's send pairs with it */
static void test_send_then_rv_recv_order(void **s) { (void)s; run_rv(RV_RECV, "send on x, receive on z"); }

/* A sends on z: a round trip carrying the element, S's receive takes it */
static void test_send_then_rv_send_order(void **s) { (void)s; run_rv(RV_SEND, "send on x, send on z"); }

/* A selects on z (a receive case): the select's proxy goes home at the
 * park (rsel.c sl__rsel_post), S's send offers itself to A's reactor and
 * completes only at its answer (rsel_home.c), which leaves in a later
 * callback than the batch: the order holds by that, without a fix */
static void test_send_then_rv_select_order(void **s) { (void)s; run_rv(RV_SELECT, "send on x, select on z"); }

/* A receives y's element in hand (given ahead: rrecv.c; its report
 * waits for the flush), then receives on z: S, paired by z, must find the
 * room that receive made in y (capacity 2, kept full by S) */
static void test_recv_then_rv_recv_order(void **s) { (void)s; run_rv(RV_REPORT, "receive on y, receive on z"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_then_rv_recv_order),
        cmocka_unit_test(test_send_then_rv_send_order),
        cmocka_unit_test(test_send_then_rv_select_order),
        cmocka_unit_test(test_recv_then_rv_recv_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
