/* test_ctx_link.c: contexts and reactors — every use from another reactor is
 * refused and reported; linked children carry deadline, values and cancel
 * across, and clean up after themselves whichever side goes first.
 *
 * Reactor 1 reports back to the test task on reactor 0 with a posted message
 * that feeds a channel the task waits on: no sleeps stand in for
 * synchronisation. */
#include "testutil.h"
#include "sl_ctx.h"
#include "sl_wire.h"
#include "ctx_internal.h"   /* sl__ctx_inject_failure */

static sl_runtime *rt;
static capture cap;
static sl_chan *sig;   /* on reactor 0: bits reported by callbacks */

static void fresh(void)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(2, &cap);
}

static void deliver(void *arg)   /* on reactor 0 */
{
    int v = (int)(intptr_t)arg;
    assert_int_equal(sl_chan_try_send(NULL, sig, &v), 0);
}

/* Called on reactor 1 too: no cmocka asserts there (they would jump across
 * threads); what is seen there is recorded and checked on reactor 0. */
static void signal0(int bit)
{
    if (sl_reactor_post(sl_runtime_reactor(rt, 0), deliver, (void *)(intptr_t)bit) != 0)
        abort();
}

/* Waits until every bit of `want` has been signalled. */
#define AWAIT_BITS(t, m, want)                                        \
    while (((m)->bits & (want)) != (want)) {                          \
        SL_AWAIT(t, (m)->rc, sl_chan_recv(t, sig, &(m)->v));           \
        assert_int_equal((m)->rc, 0);                                 \
        (m)->bits |= (m)->v;                                          \
    }

static int nop(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    return 0;
}

static void nop_after(sl_ctx *c, void *arg)
{
    (void)c;
    (void)arg;
}

static void nop_linked(sl_ctx *c, int err, void *arg)
{
    (void)err;
    (void)arg;
    sl_ctx_unref(c);
}

/* ---- misuse from another reactor ----------------------------------------------------- */

static int key;

typedef struct mis_st {
    sl_ctx *base, *ctx0;
    sl_after a0;
    int bits, v, rc;
    long live;
    /* written on reactor 1 */
    int cancel, child, after, stop, err, budget, go, link, grpc;
    sl_cause cause;
    const char *why;
    uint64_t deadline;
    int64_t remaining;
    void *value;
    sl_ctx *ref, *made;
    uint64_t misuses;
} mis_st;

static void misuse_on_1(void *arg)
{
    mis_st *m = arg;
    sl_ctx *c = NULL;
    sl_after a;
    uint64_t b;
    char buf[SL_GRPC_TIMEOUT_MAX];
    sl_reactor_stats st0, st1;
    sl_reactor_stats_get(sl_reactor_current(), &st0);
    m->cancel = sl_ctx_cancel(m->ctx0, SL_CAUSE_CANCELED);
    m->child = sl_ctx_with_cancel(&c, m->ctx0);
    m->after = sl_ctx_after(m->ctx0, &a, nop_after, NULL);
    m->stop = sl_after_stop(&m->a0);
    m->err = sl_ctx_err(m->ctx0);
    m->cause = sl_ctx_cause(m->ctx0, &m->why);
    m->deadline = sl_ctx_deadline(m->ctx0);
    m->remaining = sl_ctx_remaining_ms(m->ctx0);
    m->budget = sl_ctx_budget_ms(m->ctx0, 0, &b);
    m->value = sl_ctx_value(m->ctx0, &key);
    m->ref = sl_ctx_ref(m->ctx0);
    sl_ctx_unref(m->ctx0);   /* refused: must not free it under reactor 0 */
    m->go = sl_go(m->ctx0, nop, NULL, NULL, NULL);
    m->link = sl_ctx_link_on(sl_runtime_reactor(rt, 0), m->ctx0, nop_linked, NULL);
    m->grpc = sl_ctx_grpc_timeout(m->ctx0, 0, buf);
    sl_reactor_stats_get(sl_reactor_current(), &st1);
    m->misuses = st1.misuses - st0.misuses;
    m->made = c;
    signal0(1);
}

static int misuse_main(sl_task *t, void *arg)
{
    mis_st *m = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_deadline_ms(20000));
    assert_int_equal(sl_chan_new(&sig, sizeof(int), 16, NULL), 0);
    assert_int_equal(sl_ctx_with_timeout(&m->base, sl_ctx_background(), 10000), 0);
    assert_int_equal(sl_ctx_with_value(&m->ctx0, m->base, &key, "v", NULL), 0);
    sl_ctx_unref(m->base);   /* ctx0 holds it */
    assert_int_equal(sl_ctx_after(m->ctx0, &m->a0, nop_after, NULL), 0);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), misuse_on_1, m), 0);
    AWAIT_BITS(t, m, 1);
    assert_int_equal(m->cancel, -EXDEV);
    assert_int_equal(m->child, -EXDEV);
    assert_int_equal(m->after, -EXDEV);
    assert_int_equal(m->stop, -EXDEV);
    assert_int_equal(m->err, -EXDEV);
    assert_int_equal(m->cause, SL_CAUSE_NONE);
    assert_string_equal(m->why, "");
    assert_int_equal(m->deadline, 0);
    assert_int_equal(m->remaining, 0);
    assert_int_equal(m->budget, -EXDEV);
    assert_null(m->value);
    assert_null(m->ref);
    assert_null(m->made);
    assert_int_equal(m->go, -EXDEV);
    assert_int_equal(m->link, -EXDEV);
    assert_int_equal(m->grpc, -EXDEV);
    assert_int_equal(m->misuses, 15);   /* each one reported */
    /* nothing was touched: still running, still armed, still ours */
    assert_int_equal(sl_ctx_err(m->ctx0), 0);
    assert_string_equal(sl_ctx_value(m->ctx0, &key), "v");
    assert_int_equal(sl_after_stop(&m->a0), 0);
    sl_ctx_unref(m->ctx0);
    assert_int_equal(sl_ctx_live_count(), m->live);   /* the refused unref took nothing */
    assert_int_equal(sl_chan_free(t, sig), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_misuse_across_reactors(void **s)
{
    (void)s;
    fresh();
    mis_st m = { .live = sl_ctx_live_count() };
    assert_int_equal(rt_run(rt, misuse_main, &m), 0);
    assert_non_null(strstr(cap.text, "sl_ctx_cancel: context of reactor 0 used on another reactor"));
    assert_non_null(strstr(cap.text, "making a child: context of reactor 0 used on another reactor"));
    assert_non_null(strstr(cap.text, "sl_ctx_unref: context of reactor 0"));
    assert_non_null(strstr(cap.text, "sl_go: context of reactor 0"));
}

/* ---- linked children ------------------------------------------------------------------- */

typedef struct side {      /* one linked child, as seen on reactor 1 */
    sl_ctx *child;
    sl_after after;
    int err, child_err, task_rc, go_rc, bit;
    sl_cause cause;
    uint64_t deadline, tag;
    sl_reactor *where;
    bool with_task;
} side;

static int bound_on_1(sl_task *t, void *arg)
{
    side *sd = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, sd->task_rc, sl_sleep(t, 60 * SL_NS_PER_S));
    signal0(sd->bit << 2);
    SL_END(t);
}

static void child_ended(sl_ctx *c, void *arg)   /* on reactor 1 */
{
    side *sd = arg;
    sd->cause = sl_ctx_cause(c, NULL);
    sd->child_err = sl_ctx_err(c);
    sl_ctx_unref(c);   /* frees the child (after this returns): tells reactor 0 */
    signal0(sd->bit << 1);
}

static void linked(sl_ctx *child, int err, void *arg)   /* on reactor 1 */
{
    side *sd = arg;
    sd->err = err;
    sd->where = sl_reactor_current();
    if (child) {
        sd->child = child;
        sd->deadline = sl_ctx_deadline(child);
        sd->tag = sl_ctx_trace_tag(child);   /* a value of the remote parent */
        if (sd->with_task)
            sd->go_rc = sl_go(child, bound_on_1, sd, NULL, NULL);
        if (sl_ctx_after(child, &sd->after, child_ended, sd) != 0)
            abort();
    }
    signal0(sd->bit);
}

static void drop_at_once(sl_ctx *child, int err, void *arg)   /* on reactor 1 */
{
    side *sd = arg;
    sd->err = err;
    sl_ctx_unref(child);   /* the child goes before its parent ends */
    signal0(sd->bit);
}

typedef struct link_st {
    sl_ctx *p, *traced, *ended, *dl, *early, *same;
    sl_traceparent tp;
    side s1, s2, s3, s4, s5, s6;
    int bits, v, rc;
    long live;
} link_st;

#define B(n) (1 << (3 * (n)))   /* side n signals B(n) created, <<1 ended, <<2 its task ended */

static int link_main(sl_task *t, void *arg)
{
    link_st *m = arg;
    sl_reactor *r1 = sl_runtime_reactor(rt, 1);   /* recomputed at every resume */
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_deadline_ms(20000));
    assert_int_equal(sl_chan_new(&sig, sizeof(int), 64, NULL), 0);
    /* 1: deadline, values and cancel (with its cause) cross, and reach a task there */
    sl_traceparent_new(&m->tp);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 10000), 0);
    assert_int_equal(sl_ctx_with_trace(&m->traced, m->p, &m->tp), 0);
    m->s1 = (side){ .bit = B(0), .with_task = true };
    assert_int_equal(sl_ctx_link_on(r1, m->traced, linked, &m->s1), 0);
    AWAIT_BITS(t, m, B(0));
    assert_int_equal(m->s1.err, 0);
    assert_int_equal(m->s1.go_rc, 0);
    assert_ptr_equal(m->s1.where, r1);
    assert_true(m->s1.deadline == sl_ctx_deadline(m->p));
    assert_true(m->s1.tag == sl_traceparent_tag(&m->tp));
    assert_int_equal(sl_ctx_cancel(m->p, SL_CAUSE_SHUTDOWN), 0);
    AWAIT_BITS(t, m, B(0) << 1 | B(0) << 2);
    assert_int_equal(m->s1.cause, SL_CAUSE_SHUTDOWN);
    assert_int_equal(m->s1.child_err, -ECANCELED);
    assert_int_equal(m->s1.task_rc, -ECANCELED);
    /* 2: a parent that had already ended gives a child that ends at once */
    assert_int_equal(sl_ctx_with_cancel(&m->ended, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_cancel(m->ended, SL_CAUSE_DISCONNECT), 0);
    m->s2 = (side){ .bit = B(1) };
    assert_int_equal(sl_ctx_link_on(r1, m->ended, linked, &m->s2), 0);
    AWAIT_BITS(t, m, B(1) | B(1) << 1);
    assert_int_equal(m->s2.cause, SL_CAUSE_DISCONNECT);
    assert_int_equal(m->s2.child_err, -ECANCELED);
    /* 3: the parent's deadline ends the child there (by its own timer or the message) */
    assert_int_equal(sl_ctx_with_timeout(&m->dl, sl_ctx_background(), 30), 0);
    m->s3 = (side){ .bit = B(2) };
    assert_int_equal(sl_ctx_link_on(r1, m->dl, linked, &m->s3), 0);
    AWAIT_BITS(t, m, B(2) | B(2) << 1);
    assert_int_equal(m->s3.cause, SL_CAUSE_DEADLINE);
    assert_int_equal(m->s3.child_err, -ETIMEDOUT);
    assert_true(m->s3.deadline == sl_ctx_deadline(m->dl));
    /* 4: the child goes first; the parent ends later: nothing is sent, nothing leaks */
    assert_int_equal(sl_ctx_with_cancel(&m->early, sl_ctx_background()), 0);
    m->s4 = (side){ .bit = B(3) };
    assert_int_equal(sl_ctx_link_on(r1, m->early, drop_at_once, &m->s4), 0);
    AWAIT_BITS(t, m, B(3));
    assert_int_equal(sl_ctx_cancel(m->early, SL_CAUSE_CANCELED), 0);
    /* 5: the child cannot be made there: fn hears -ENOMEM, and it is reported */
    m->s5 = (side){ .bit = B(4) };
    sl__ctx_inject_failure(1);   /* link_on's own allocation passes, reactor 1's child fails */
    assert_int_equal(sl_ctx_link_on(r1, m->early, linked, &m->s5), 0);
    AWAIT_BITS(t, m, B(4));
    assert_int_equal(m->s5.err, -ENOMEM);
    assert_null(m->s5.child);
    /* 6: linking on the calling reactor itself works too */
    assert_int_equal(sl_ctx_with_cancel(&m->same, sl_ctx_background()), 0);
    m->s6 = (side){ .bit = B(5) };
    assert_int_equal(sl_ctx_link_on(sl_task_reactor(t), m->same, linked, &m->s6), 0);
    AWAIT_BITS(t, m, B(5));
    assert_ptr_equal(m->s6.where, sl_task_reactor(t));
    assert_int_equal(sl_ctx_cancel(m->same, SL_CAUSE_UPSTREAM), 0);
    AWAIT_BITS(t, m, B(5) << 1);
    assert_int_equal(m->s6.cause, SL_CAUSE_UPSTREAM);
    /* bad calls */
    assert_int_equal(sl_ctx_link_on(NULL, m->p, linked, &m->s1), -EINVAL);
    assert_int_equal(sl_ctx_link_on(r1, NULL, linked, &m->s1), -EINVAL);
    assert_int_equal(sl_ctx_link_on(r1, m->p, NULL, &m->s1), -EINVAL);
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_link_on(r1, m->p, linked, &m->s1), -ENOMEM);   /* fn will not run */
    sl_ctx_unref(m->traced);
    sl_ctx_unref(m->p);
    sl_ctx_unref(m->ended);
    sl_ctx_unref(m->dl);
    sl_ctx_unref(m->early);
    sl_ctx_unref(m->same);
    assert_int_equal(sl_chan_free(t, sig), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_linked_children(void **s)
{
    (void)s;
    fresh();
    link_st m = { 0 };
    long before = sl_ctx_live_count();
    assert_int_equal(rt_run(rt, link_main, &m), 0);
    /* every link cleaned up after itself, and let go of its parent */
    assert_int_equal(sl_ctx_live_count(), before);
    assert_non_null(strstr(cap.text, "could not make a linked context on reactor 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_misuse_across_reactors),
        cmocka_unit_test(test_linked_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
