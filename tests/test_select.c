/* test_select.c: select fairness, default, closed cases, parking, bounds. */
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

typedef struct fair_st {
    sl_chan *ch[3];
    sl_case cases[3];
    int v, got, counts[3];
} fair_st;

static int fair_main(sl_task *t, void *arg)
{
    fair_st *m = arg;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(sl_chan_new(&m->ch[i], sizeof(int), 1, NULL), 0);
        m->cases[i] = (sl_case){ .ch = m->ch[i], .op = SL_RECV, .buf = &m->got };
    }
    for (int round = 0; round < 10000; round++) {
        for (int i = 0; i < 3; i++) {
            m->v = i;
            if (sl_chan_len(m->ch[i]) == 0)
                assert_int_equal(sl_chan_try_send(t, m->ch[i], &m->v), 0);
        }
        int k = sl_select(t, m->cases, 3, 0);
        assert_in_range(k, 0, 2);
        assert_int_equal(m->cases[k].err, 0);
        assert_int_equal(m->got, k);
        m->counts[k]++;
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_chan_free(t, m->ch[i]), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_fairness(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    fair_st m = { 0 };
    assert_int_equal(rt_run(rt, fair_main, &m), 0);
    for (int i = 0; i < 3; i++) {
        /* each of three ready cases chosen between 25% and 42% of the time */
        assert_in_range(m.counts[i], 2500, 4200);
    }
}

/* Two ready cases out of four, not adjacent: still an even split. */
static int fair2_main(sl_task *t, void *arg)
{
    fair_st *m = arg;
    sl_chan *c[4];
    sl_case cs[4];
    int v = 1, got, n[4] = { 0 };
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sl_chan_new(&c[i], sizeof(int), 1, NULL), 0);
        cs[i] = (sl_case){ .ch = c[i], .op = SL_RECV, .buf = &got };
    }
    for (int round = 0; round < 10000; round++) {
        for (int i = 0; i < 4; i += 2)
            if (!sl_chan_len(c[i]))
                assert_int_equal(sl_chan_try_send(t, c[i], &v), 0);
        n[sl_select(t, cs, 4, SL_SELECT_DEFAULT)]++;
    }
    assert_int_equal(n[1] + n[3], 0);
    assert_in_range(n[0], 4500, 5500);
    m->counts[0] = n[0];
    for (int i = 0; i < 4; i++)
        assert_int_equal(sl_chan_free(t, c[i]), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_fairness_sparse(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    fair_st m = { 0 };
    assert_int_equal(rt_run(rt, fair2_main, &m), 0);
}

/* ---- default, closed, send cases, bad args ------------------------------------ */

typedef struct misc_st {
    sl_chan *a, *b, *closed;
    sl_case cs[3];
    int v, got, rc;
    uint64_t t0;
} misc_st;

static int peer_send(sl_task *t, void *arg)
{
    misc_st *m = arg;
    static int v = 77;
    return sl_chan_try_send(t, m->b, &v);
}

static int misc_main(sl_task *t, void *arg)
{
    misc_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->a, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&m->b, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&m->closed, sizeof(int), 0, NULL), 0);
    m->cs[0] = (sl_case){ .ch = m->a, .op = SL_SEND, .buf = &m->v };
    m->cs[1] = (sl_case){ .ch = m->b, .op = SL_RECV, .buf = &m->got };
    /* nothing ready: default returns at once and never parks */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sl_select(t, m->cs, 2, SL_SELECT_DEFAULT), -EAGAIN);
    sl_chan_stats st;
    sl_chan_stats_get(m->a, &st);
    assert_int_equal(st.parked_senders, 0);
    sl_chan_stats_get(m->b, &st);
    assert_int_equal(st.parked_receivers, 0);
    /* a closed channel's case is ready, with -EPIPE */
    assert_int_equal(sl_chan_close(t, m->closed), 0);
    m->cs[2] = (sl_case){ .ch = m->closed, .op = SL_RECV, .buf = &m->got };
    assert_int_equal(sl_select(t, m->cs, 3, 0), 2);
    assert_int_equal(m->cs[2].err, -EPIPE);
    m->cs[2].op = SL_SEND;
    assert_int_equal(sl_select(t, m->cs, 3, SL_SELECT_DEFAULT), 2);
    assert_int_equal(m->cs[2].err, -EPIPE);
    /* park on two cases; a peer's send completes exactly one */
    assert_int_equal(sl_spawn(NULL, peer_send, m, NULL, NULL), 0);
    SL_AWAIT(t, m->rc, sl_select(t, m->cs, 2, 0));
    assert_int_equal(m->rc, 1);
    assert_int_equal(m->cs[1].err, 0);
    assert_int_equal(m->got, 77);
    sl_chan_stats_get(m->a, &st);
    assert_int_equal(st.parked_senders, 0);     /* the other case left its queue */
    /* a parked select ends at the deadline with -ETIMEDOUT */
    m->t0 = sl_now_ns();
    sl_task_set_deadline(t, m->t0 + 20 * SL_NS_PER_MS);
    SL_AWAIT(t, m->rc, sl_select(t, m->cs, 2, 0));
    assert_int_equal(m->rc, -ETIMEDOUT);
    assert_true(sl_now_ns() >= m->t0 + 20 * SL_NS_PER_MS);
    sl_chan_stats_get(m->b, &st);
    assert_int_equal(st.parked_receivers, 0);
    /* a passed deadline fails a select that would park, at once */
    assert_int_equal(sl_select(t, m->cs, 2, 0), -ETIMEDOUT);
    sl_task_set_deadline(t, 0);
    /* bad arguments */
    assert_int_equal(sl_select(t, m->cs, 0, 0), -EINVAL);
    assert_int_equal(sl_select(t, NULL, 1, 0), -EINVAL);
    m->cs[0].op = 9;
    assert_int_equal(sl_select(t, m->cs, 2, 0), -EINVAL);
    m->cs[0].op = SL_SEND;
    m->cs[0].ch = NULL;
    assert_int_equal(sl_select(t, m->cs, 2, 0), -EINVAL);
    assert_int_equal(sl_chan_free(t, m->a), 0);
    assert_int_equal(sl_chan_free(t, m->b), 0);
    assert_int_equal(sl_chan_free(t, m->closed), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_default_closed_park_timeout(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    misc_st m = { 0 };
    assert_int_equal(rt_run(rt, misc_main, &m), 0);
}

/* A parked select is cancelled with -ECANCELED and leaves every queue. */
typedef struct sc_st {
    sl_chan *a, *b;
    sl_case cs[2];
    int got, rc;
    sl_task *child;
} sc_st;

static int sc_child(sl_task *t, void *arg)
{
    sc_st *m = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, m->rc, sl_select(t, m->cs, 2, 0));
    SL_END(t);
}

static int sc_main(sl_task *t, void *arg)
{
    sc_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->a, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&m->b, sizeof(int), 2, NULL), 0);
    m->cs[0] = (sl_case){ .ch = m->a, .op = SL_RECV, .buf = &m->got };
    m->cs[1] = (sl_case){ .ch = m->b, .op = SL_RECV, .buf = &m->got };
    assert_int_equal(sl_spawn(NULL, sc_child, m, &m->child, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(sl_task_cancel(m->child, 0), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc, -ECANCELED);
    sl_chan_stats st;
    sl_chan_stats_get(m->a, &st);
    assert_int_equal(st.parked_receivers, 0);
    sl_chan_stats_get(m->b, &st);
    assert_int_equal(st.parked_receivers, 0);
    assert_int_equal(sl_chan_free(t, m->a), 0);
    assert_int_equal(sl_chan_free(t, m->b), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_cancel_parked_select(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    sc_st m = { 0 };
    assert_int_equal(rt_run(rt, sc_main, &m), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fairness),
        cmocka_unit_test(test_fairness_sparse),
        cmocka_unit_test(test_default_closed_park_timeout),
        cmocka_unit_test(test_cancel_parked_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
