/* test_ctx.c: the context tree, deadlines, causes, values, after-funcs,
 * bound tasks, reactors. */
#include <event2/event.h>
#include "testutil.h"
#include "sl_ctx.h"

static sl_runtime *rt;
static capture cap;

static void fresh(int threads)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(threads, &cap);
}

/* ---- cancel down the tree, tasks included ------------------------------------------- */

typedef struct tree_st {
    sl_ctx *root, *child, *grand, *other, *late;
    sl_task *tc, *tg;
    int rc_c, rc_g, rc, v;
    sl_chan *ch;
} tree_st;

static tree_st *TS;

static int waits_on_chan(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_chan_recv(t, TS->ch, &TS->v));
    SL_END(t);
}

static int tree_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    const char *why;
    SL_BEGIN(t);
    TS = m;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->root, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->child, m->root), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->grand, m->child), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->other, sl_ctx_background()), 0);
    assert_int_equal(sl_go(m->child, waits_on_chan, &m->rc_c, &m->tc, NULL), 0);
    assert_int_equal(sl_go(m->grand, waits_on_chan, &m->rc_g, &m->tg, NULL), 0);
    assert_ptr_equal(sl_task_ctx(m->tg), m->grand);
    assert_null(sl_task_ctx(t));
    SL_YIELD(t);
    assert_int_equal(sl_ctx_err(m->grand), 0);
    assert_int_equal(sl_ctx_cause(m->grand, &why), SL_CAUSE_NONE);
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_DISCONNECT), 0);
    /* synchronous: the whole subtree has ended before cancel returned */
    assert_int_equal(sl_ctx_err(m->child), -ECANCELED);
    assert_int_equal(sl_ctx_err(m->grand), -ECANCELED);
    assert_int_equal(sl_ctx_cause(m->grand, &why), SL_CAUSE_DISCONNECT);
    assert_string_equal(why, "client disconnected");
    assert_int_equal(sl_ctx_err(m->other), 0);                        /* not a descendant */
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_SHUTDOWN), -EALREADY);
    assert_int_equal(sl_ctx_cause(m->root, &why), SL_CAUSE_DISCONNECT);   /* the first cause stays */
    assert_int_equal(sl_ctx_cancel(m->grand, SL_CAUSE_SHUTDOWN), -EALREADY);
    SL_YIELD(t);
    assert_int_equal(m->rc_c, -ECANCELED);                            /* bound tasks woke */
    assert_int_equal(m->rc_g, -ECANCELED);
    /* a child of an ended context is born ended */
    assert_int_equal(sl_ctx_with_cancel(&m->late, m->grand), 0);
    assert_int_equal(sl_ctx_err(m->late), -ECANCELED);
    assert_int_equal(sl_ctx_cause(m->late, NULL), SL_CAUSE_DISCONNECT);
    /* and a task spawned under it starts cancelled */
    m->rc = 1;
    assert_int_equal(sl_go(m->late, waits_on_chan, &m->rc, NULL, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc, -ECANCELED);
    sl_ctx_unref(m->late);
    /* bad calls */
    assert_int_equal(sl_ctx_cancel(sl_ctx_background(), SL_CAUSE_CANCELED), -EINVAL);
    assert_int_equal(sl_ctx_cancel(m->other, SL_CAUSE_NONE), -EINVAL);
    assert_int_equal(sl_ctx_cancel(m->other, (sl_cause)99), -EINVAL);
    assert_int_equal(sl_ctx_cancel(NULL, SL_CAUSE_CANCELED), -EINVAL);
    assert_int_equal(sl_ctx_with_cancel(NULL, m->other), -EINVAL);
    assert_int_equal(sl_ctx_with_cancel(&m->late, NULL), -EINVAL);
    assert_int_equal(sl_ctx_with_value(&m->late, m->other, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sl_go(NULL, waits_on_chan, NULL, NULL, NULL), -EINVAL);
    assert_string_equal(sl_cause_text(SL_CAUSE_DEADLINE), "deadline exceeded");
    assert_string_equal(sl_cause_text((sl_cause)99), "?");
    sl_ctx_unref(m->grand);
    sl_ctx_unref(m->child);
    sl_ctx_unref(m->root);
    sl_ctx_unref(m->other);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_cancel_tree_and_tasks(void **s)
{
    (void)s;
    long before = sl_ctx_live();
    fresh(1);
    tree_st m = { 0 };
    assert_int_equal(rt_run(rt, tree_main, &m), 0);
    assert_int_equal(sl_ctx_live(), before);
}

/* ---- deadlines ------------------------------------------------------------------------ */

#define ROUNDS 7

typedef struct dl_st {
    sl_ctx *p, *c, *same, *nocancel;
    uint64_t late[ROUNDS], t0;
    int i, rc;
    sl_task *task;
} dl_st;

static int sleeps_long(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_sleep(t, 10 * SL_NS_PER_S));
    SL_END(t);
}

static int dl_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    const char *why;
    SL_BEGIN(t);
    /* a child asking for a later deadline keeps its parent's */
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 100), 0);
    assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 5000), 0);
    assert_true(sl_ctx_deadline(m->c) == sl_ctx_deadline(m->p));
    assert_true(sl_ctx_remaining_ms(m->c) <= 100 && sl_ctx_remaining_ms(m->c) >= 50);
    /* ... and adds no timer of its own (nor does a value) */
    {
        struct event_base *b = sl_reactor_base(sl_task_reactor(t));
        int n = event_base_get_num_events(b, EVENT_BASE_COUNT_ADDED);
        assert_int_equal(sl_ctx_with_deadline(&m->same, m->p, sl_ctx_deadline(m->p)), 0);
        assert_int_equal(event_base_get_num_events(b, EVENT_BASE_COUNT_ADDED), n);
        sl_ctx_unref(m->same);
    }
    /* without_cancel: no deadline, survives the parent */
    assert_int_equal(sl_ctx_without_cancel(&m->nocancel, m->p), 0);
    assert_int_equal(sl_ctx_deadline(m->nocancel), 0);
    assert_int_equal(sl_ctx_remaining_ms(m->nocancel), -1);
    assert_int_equal(sl_go(m->c, sleeps_long, &m->rc, &m->task, NULL), 0);
    assert_true(sl_task_deadline(m->task) == sl_ctx_deadline(m->c));
    SL_AWAIT(t, m->rc, sl_sleep(t, 150 * SL_NS_PER_MS));
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    assert_int_equal(sl_ctx_cause(m->c, &why), SL_CAUSE_DEADLINE);
    assert_string_equal(why, "deadline exceeded");
    assert_int_equal(sl_ctx_err(m->nocancel), 0);
    assert_int_equal(sl_ctx_remaining_ms(m->p), 0);
    sl_ctx_unref(m->c);
    sl_ctx_unref(m->p);
    sl_ctx_unref(m->nocancel);
    /* the deadline fires on time: never early, and within 5 ms (median) */
    for (m->i = 0; m->i < ROUNDS; m->i++) {
        m->t0 = sl_now_ns();
        assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 20), 0);
        while (!sl_ctx_err(m->p))
            SL_AWAIT(t, m->rc, sl_sleep(t, 100 * SL_NS_PER_US));
        assert_true(sl_now_ns() >= m->t0 + 20 * SL_NS_PER_MS);
        m->late[m->i] = sl_now_ns() - sl_ctx_deadline(m->p);
        sl_ctx_unref(m->p);
    }
    /* a deadline already past ends the context at once */
    assert_int_equal(sl_ctx_with_deadline(&m->p, sl_ctx_background(), sl_now_ns() - 1), 0);
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    sl_ctx_unref(m->p);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_deadlines(void **s)
{
    (void)s;
    fresh(1);
    dl_st m = { 0 };
    assert_int_equal(rt_run(rt, dl_main, &m), 0);
    assert_int_equal(m.rc, 0);
    /* the bound task's sleep was cut by the context's deadline */
    assert_true(median_u64(m.late, ROUNDS) < 5 * SL_NS_PER_MS);
}

/* ---- budget for a downstream call -------------------------------------------------------- */

static int budget_main(sl_task *t, void *arg)
{
    sl_ctx *c;
    uint64_t b;
    (void)t;
    (void)arg;
    assert_int_equal(sl_ctx_budget_ms(sl_ctx_background(), 10, &b), 0);
    assert_true(b == UINT64_MAX);
    assert_int_equal(sl_ctx_with_timeout(&c, sl_ctx_background(), 1000), 0);
    assert_int_equal(sl_ctx_budget_ms(c, 50, &b), 0);
    assert_true(b <= 950 && b >= 900);
    assert_int_equal(sl_ctx_budget_ms(c, 1000, &b), -ETIMEDOUT);   /* nothing left: don't send */
    sl_ctx_cancel(c, SL_CAUSE_UPSTREAM);
    assert_int_equal(sl_ctx_budget_ms(c, 0, &b), -ECANCELED);
    sl_ctx_unref(c);
    /* narrowing one wait */
    sl_task_set_deadline(t, 0);
    uint64_t old = sl_ctx_narrow(t, 50);
    assert_int_equal(old, 0);
    assert_true(sl_task_deadline(t) > sl_now_ns());
    assert_true(sl_task_deadline(t) <= sl_now_ns() + 50 * SL_NS_PER_MS);
    uint64_t d = sl_task_deadline(t);
    assert_true(sl_ctx_narrow(t, 5000) == d);
    assert_true(sl_task_deadline(t) == d);                           /* never widened */
    sl_task_set_deadline(t, old);
    sl_runtime_stop(rt);
    return 0;
}

static void test_budget_and_narrow(void **s)
{
    (void)s;
    fresh(1);
    assert_int_equal(rt_run(rt, budget_main, NULL), 0);
}

/* ---- values ------------------------------------------------------------------------------- */

static int key_a, key_b, freed;

static void free_val(void *v)
{
    (void)v;
    freed++;
}

static int values_main(sl_task *t, void *arg)
{
    sl_ctx *a, *b, *a2, *leaf, *nc;
    (void)t;
    (void)arg;
    freed = 0;
    assert_int_equal(sl_ctx_with_value(&a, sl_ctx_background(), &key_a, "a1", free_val), 0);
    assert_int_equal(sl_ctx_with_value(&b, a, &key_b, "b1", NULL), 0);
    assert_int_equal(sl_ctx_with_value(&a2, b, &key_a, "a2", free_val), 0);   /* shadows a1 */
    assert_int_equal(sl_ctx_with_cancel(&leaf, a2), 0);
    assert_int_equal(sl_ctx_without_cancel(&nc, leaf), 0);
    assert_string_equal(sl_ctx_value(leaf, &key_a), "a2");
    assert_string_equal(sl_ctx_value(leaf, &key_b), "b1");
    assert_string_equal(sl_ctx_value(b, &key_a), "a1");
    assert_string_equal(sl_ctx_value(nc, &key_a), "a2");   /* without_cancel keeps values */
    assert_null(sl_ctx_value(a, &key_b));
    assert_null(sl_ctx_value(sl_ctx_background(), &key_a));
    sl_ctx_unref(a2);
    sl_ctx_unref(b);
    sl_ctx_unref(a);
    assert_int_equal(freed, 0);          /* still held by leaf and nc */
    sl_ctx_unref(leaf);
    assert_int_equal(freed, 0);
    sl_ctx_unref(nc);
    assert_int_equal(freed, 2);          /* the whole chain went, each value once */
    sl_runtime_stop(rt);
    return 0;
}

static void test_values(void **s)
{
    (void)s;
    fresh(1);
    assert_int_equal(rt_run(rt, values_main, NULL), 0);
}

/* ---- after-funcs ---------------------------------------------------------------------------- */

static int ran;
static sl_ctx *ran_with;

static void after_fn(sl_ctx *c, void *arg)
{
    ran += (int)(intptr_t)arg;
    ran_with = c;
    assert_int_equal(sl_ctx_err(c), -ECANCELED);   /* runs after the subtree ended */
}

static int after_main(sl_task *t, void *arg)
{
    sl_ctx *p, *c;
    sl_after a1, a2, a3, a4;
    (void)t;
    (void)arg;
    ran = 0;
    assert_int_equal(sl_ctx_with_cancel(&p, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_cancel(&c, p), 0);
    assert_int_equal(sl_ctx_after(c, &a1, after_fn, (void *)1), 0);
    assert_int_equal(sl_ctx_after(c, &a2, after_fn, (void *)10), 0);
    assert_int_equal(sl_ctx_after(p, &a3, after_fn, (void *)100), 0);
    assert_true(sl_after_stop(&a2));          /* stopped before it ran */
    assert_false(sl_after_stop(&a2));
    assert_int_equal(sl_ctx_cancel(p, SL_CAUSE_CANCELED), 0);
    assert_int_equal(ran, 101);               /* exactly once each, a2 never */
    assert_false(sl_after_stop(&a1));         /* it has run */
    sl_ctx_cancel(p, SL_CAUSE_CANCELED);
    assert_int_equal(ran, 101);
    /* on an ended context it runs at once */
    assert_int_equal(sl_ctx_after(c, &a4, after_fn, (void *)1000), 0);
    assert_int_equal(ran, 1101);
    assert_ptr_equal(ran_with, c);
    assert_int_equal(sl_ctx_after(NULL, &a4, after_fn, NULL), -EINVAL);
    assert_int_equal(sl_ctx_after(c, &a4, NULL, NULL), -EINVAL);
    /* freed before it ended: the after-func is disarmed, never runs */
    sl_ctx *q;
    sl_after a5;
    assert_int_equal(sl_ctx_with_cancel(&q, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_after(q, &a5, after_fn, (void *)5), 0);
    sl_ctx_unref(q);
    assert_false(sl_after_stop(&a5));
    assert_int_equal(ran, 1101);
    sl_ctx_unref(c);
    sl_ctx_unref(p);
    sl_runtime_stop(rt);
    return 0;
}

static void test_after_funcs(void **s)
{
    (void)s;
    fresh(1);
    assert_int_equal(rt_run(rt, after_main, NULL), 0);
}

/* ---- a million short-lived children leave nothing behind -------------------------------------- */

static int churn_main(sl_task *t, void *arg)
{
    sl_ctx *parent, *c;
    (void)t;
    (void)arg;
    assert_int_equal(sl_ctx_with_timeout(&parent, sl_ctx_background(), 60000), 0);
    long base = sl_ctx_live();
    for (int i = 0; i < 1000000; i++) {
        assert_int_equal(sl_ctx_with_cancel(&c, parent), 0);
        if (i & 1)
            sl_ctx_cancel(c, SL_CAUSE_CANCELED);
        sl_ctx_unref(c);
    }
    assert_int_equal(sl_ctx_live(), base);     /* no growth */
    assert_int_equal(sl_ctx_err(parent), 0);
    sl_ctx_unref(parent);
    sl_runtime_stop(rt);
    return 0;
}

static void test_million_children(void **s)
{
    (void)s;
    fresh(1);
    long before = sl_ctx_live();
    assert_int_equal(rt_run(rt, churn_main, NULL), 0);
    assert_int_equal(sl_ctx_live(), before);
}

/* ---- reactors: misuse, and linked children ------------------------------------------------------- */

typedef struct x_st {
    sl_ctx *ctx0;
    sl_ctx *child1;        /* on reactor 1 */
    int created, cancelled_rc, cause, misuse_rc;
    uint64_t d0, d1;
    int rc;
} x_st;

static x_st X;

static void misuse_on_1(void *arg)
{
    (void)arg;
    sl_ctx *c;
    sl_after a;
    X.misuse_rc = sl_ctx_cancel(X.ctx0, SL_CAUSE_CANCELED);
    X.cancelled_rc = sl_ctx_with_cancel(&c, X.ctx0);
    X.cause = sl_ctx_after(X.ctx0, &a, after_fn, NULL);
}

static void child_gone_check(sl_ctx *c, void *arg)
{
    (void)arg;
    X.cause = sl_ctx_cause(c, NULL);
    X.cancelled_rc = sl_ctx_err(c);
    sl_ctx_unref(c);    /* frees the linked child: tells reactor 0 */
}

static void linked(sl_ctx *child, void *arg)
{
    static sl_after a;
    (void)arg;
    X.created = 1;
    X.d1 = sl_ctx_deadline(child);
    assert_ptr_equal(sl_reactor_current(), sl_runtime_reactor(rt, 1));
    sl_ctx_after(child, &a, child_gone_check, NULL);
}

static int x_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_ctx_with_timeout(&X.ctx0, sl_ctx_background(), 10000), 0);
    X.d0 = sl_ctx_deadline(X.ctx0);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), misuse_on_1, NULL), 0);
    SL_AWAIT(t, X.rc, sl_sleep(t, 20 * SL_NS_PER_MS));
    assert_int_equal(X.misuse_rc, -EXDEV);
    assert_int_equal(X.cancelled_rc, -EXDEV);
    assert_int_equal(X.cause, -EXDEV);
    assert_int_equal(sl_ctx_err(X.ctx0), 0);
    X.cause = 0;
    assert_int_equal(sl_ctx_link_on(sl_runtime_reactor(rt, 1), X.ctx0, linked, NULL), 0);
    assert_int_equal(sl_ctx_link_on(NULL, X.ctx0, linked, NULL), -EINVAL);
    SL_AWAIT(t, X.rc, sl_sleep(t, 20 * SL_NS_PER_MS));
    assert_int_equal(X.created, 1);
    assert_true(X.d1 == X.d0);
    assert_int_equal(sl_ctx_cancel(X.ctx0, SL_CAUSE_SHUTDOWN), 0);
    SL_AWAIT(t, X.rc, sl_sleep(t, 20 * SL_NS_PER_MS));
    sl_ctx_unref(X.ctx0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_reactors(void **s)
{
    (void)s;
    fresh(2);
    long before = sl_ctx_live();
    memset(&X, 0, sizeof X);
    assert_int_equal(rt_run(rt, x_main, NULL), 0);
    assert_int_equal(X.cause, SL_CAUSE_SHUTDOWN);          /* cancelled across reactors, with its cause */
    assert_int_equal(X.cancelled_rc, -ECANCELED);
    assert_int_equal(sl_ctx_live(), before);               /* the link cleaned up after itself */
    assert_non_null(strstr(cap.text, "sl_ctx_cancel on a context of reactor 0 from another reactor"));
    assert_non_null(strstr(cap.text, "making a child on a context of reactor 0"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_tree_and_tasks),
        cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_budget_and_narrow),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_after_funcs),
        cmocka_unit_test(test_million_children),
        cmocka_unit_test(test_reactors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
