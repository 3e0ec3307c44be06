/* test_select_prio.c: sl_select's priority mode (issue 20 item 3): the
 * first ready case wins, and a ready case is passed over at most k times
 * in a row, exactly k when the cases before it are always ready. */
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

#define NCH 4

typedef struct prio_st {
    sl_chan *ch[NCH];
    sl_case cases[NCH];
    int v, got, rc;
    uint64_t rng;
} prio_st;

static void make(sl_task *t, prio_st *m, int n)
{
    (void)t;
    for (int i = 0; i < n; i++) {
        assert_int_equal(sl_chan_new(&m->ch[i], sizeof(int), 1, NULL), 0);
        m->cases[i] = (sl_case){ .ch = m->ch[i], .op = SL_RECV, .buf = &m->got };
    }
}

static void fill(sl_task *t, prio_st *m, int n)
{
    for (int i = 0; i < n; i++) {
        m->v = i;
        if (sl_chan_len(m->ch[i]) == 0)
            assert_int_equal(sl_chan_try_send(t, m->ch[i], &m->v), 0);
    }
}

static void unmake(sl_task *t, prio_st *m, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(sl_chan_free(t, m->ch[i]), 0);
}

/* one choice among always-ready cases */
static int choose(sl_task *t, prio_st *m, int n, int flags)
{
    fill(t, m, n);
    int k = sl_select(t, m->cases, n, flags);
    assert_in_range(k, 0, n - 1);
    assert_int_equal(m->cases[k].err, 0);
    assert_int_equal(m->got, k);
    return k;
}

/* ---- the bound, exactly ------------------------------------------------------ */

static int exact_main(sl_task *t, void *arg)
{
    prio_st *m = arg;
    make(t, m, 3);
    /* two cases always ready: the second exactly at every (k+1)-th choice */
    static const unsigned ks[] = { 1, 2, 3, 7, 64 };
    for (size_t j = 0; j < sizeof ks / sizeof *ks; j++) {
        memset(m->cases, 0, sizeof m->cases);   /* the counts start again */
        for (int i = 0; i < 2; i++)
            m->cases[i] = (sl_case){ .ch = m->ch[i], .op = SL_RECV, .buf = &m->got };
        for (unsigned c = 1; c <= 5 * (ks[j] + 1); c++) {
            int k = choose(t, m, 2, SL_SELECT_PRIO(ks[j]));
            if (k != (c % (ks[j] + 1) == 0 ? 1 : 0))
                fail_msg("k=%u: choice %u went to case %d", ks[j], c, k);
        }
    }
    /* three always ready, k = n - 1 = 2: the only way is a turn each */
    memset(m->cases, 0, sizeof m->cases);
    for (int i = 0; i < 3; i++)
        m->cases[i] = (sl_case){ .ch = m->ch[i], .op = SL_RECV, .buf = &m->got };
    for (int c = 0; c < 30; c++)
        assert_int_equal(choose(t, m, 3, SL_SELECT_PRIO(2)), c % 3);
    /* three always ready, k = 4: within every 5 choices each case once at
     * least; the first case takes the rest */
    memset(m->cases, 0, sizeof m->cases);
    for (int i = 0; i < 3; i++)
        m->cases[i] = (sl_case){ .ch = m->ch[i], .op = SL_RECV, .buf = &m->got };
    int last[3] = { -1, -1, -1 }, counts[3] = { 0 };
    for (int c = 0; c < 500; c++) {
        int k = choose(t, m, 3, SL_SELECT_PRIO(4));
        counts[k]++;
        last[k] = c;
        for (int i = 0; i < 3; i++)
            if (c - last[i] > 4)
                fail_msg("case %d passed over %d times at choice %d", i, c - last[i], c);
    }
    assert_int_equal(counts[1], 100);   /* each lower case once per 5: its bound, exactly */
    assert_int_equal(counts[2], 100);
    assert_int_equal(counts[0], 300);
    unmake(t, m, 3);
    sl_runtime_stop(rt);
    return 0;
}

static void test_bound_exact(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    prio_st m = { 0 };
    assert_int_equal(rt_run(rt, exact_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- cases that come and go: the bound holds for whoever stays ready ----------- */

static int random_main(sl_task *t, void *arg)
{
    prio_st *m = arg;
    make(t, m, NCH);
    m->rng = 42;
    unsigned k = NCH - 1 + 2;
    int passed[NCH] = { 0 }, worst = 0, counts[NCH] = { 0 };
    for (int c = 0; c < 20000; c++) {
        /* each case ready with probability 3/4 this round, the first always */
        bool ready[NCH];
        for (int i = 0; i < NCH; i++) {
            m->rng = m->rng * 6364136223846793005ULL + 1442695040888963407ULL;
            ready[i] = i == 0 || (m->rng >> 33) % 4 != 0;
            int v = i, got;
            if (ready[i] && sl_chan_len(m->ch[i]) == 0)
                assert_int_equal(sl_chan_try_send(t, m->ch[i], &v), 0);
            if (!ready[i] && sl_chan_len(m->ch[i]) == 1)
                assert_int_equal(sl_chan_try_recv(t, m->ch[i], &got), 0);
        }
        int x = sl_select(t, m->cases, NCH, SL_SELECT_PRIO(k));
        assert_true(ready[x]);
        assert_int_equal(m->got, x);
        counts[x]++;
        for (int i = 0; i < NCH; i++) {
            passed[i] = i == x || !ready[i] ? 0 : passed[i] + 1;
            if (passed[i] > worst)
                worst = passed[i];
            if (passed[i] > (int)k)
                fail_msg("case %d passed over %d times in a row (k %u) at choice %d", i, passed[i], k, c);
        }
    }
    print_message("k %u: worst run of passes %d; choices %d %d %d %d\n", k, worst, counts[0], counts[1],
                  counts[2], counts[3]);
    assert_int_equal(worst, (int)k);   /* the bound is reached, not only respected */
    assert_true(counts[0] > counts[1] && counts[0] > counts[2] && counts[0] > counts[3]);
    unmake(t, m, NCH);
    sl_runtime_stop(rt);
    return 0;
}

static void test_bound_random_readiness(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    prio_st m = { 0 };
    assert_int_equal(rt_run(rt, random_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- strict priority below the bound; bad k; default and parking -------------------- */

typedef struct feeder { sl_chan *ch; int v; } feeder;

static int feed_task(sl_task *t, void *arg)
{
    feeder *f = arg;
    return sl_chan_try_send(t, f->ch, &f->v);
}

typedef struct misc_st {
    prio_st p;
    feeder f;
    int rc;
} misc_st;

static int misc_main(sl_task *t, void *arg)
{
    misc_st *m = arg;
    SL_BEGIN(t);
    make(t, &m->p, 3);
    /* k far away: the first ready case every time until the bound */
    for (int c = 0; c < 1000; c++)
        assert_int_equal(choose(t, &m->p, 2, SL_SELECT_PRIO(1000)), 0);
    assert_int_equal(choose(t, &m->p, 2, SL_SELECT_PRIO(1000)), 1);   /* passed over 1000 times */
    assert_int_equal(choose(t, &m->p, 2, SL_SELECT_PRIO(1000)), 0);
    /* the second case only ready: chosen, whatever its priority */
    assert_int_equal(sl_chan_len(m->p.ch[0]), 0);   /* just chosen */
    assert_int_equal(sl_chan_len(m->p.ch[1]), 1);
    assert_int_equal(sl_select(t, m->p.cases, 2, SL_SELECT_PRIO(5)), 1);
    /* k below n - 1: no bound can hold for n cases always ready */
    assert_int_equal(sl_select(t, m->p.cases, 3, SL_SELECT_PRIO(1)), -EINVAL);
    assert_int_equal(sl_select(t, m->p.cases, 2, SL_SELECT_PRIO(0)), -EINVAL);
    assert_int_equal(sl_select(t, m->p.cases, 1, SL_SELECT_PRIO(0) | SL_SELECT_DEFAULT), -EAGAIN);
    /* nothing ready: default says so; without it the select parks and
     * the case that becomes ready is chosen */
    assert_int_equal(sl_select(t, m->p.cases, 3, SL_SELECT_PRIO(2) | SL_SELECT_DEFAULT), -EAGAIN);
    m->f = (feeder){ .ch = m->p.ch[2], .v = 2 };
    assert_int_equal(sl_spawn(NULL, feed_task, &m->f, NULL, NULL), 0);
    sl_task_set_deadline(t, sl_deadline_ms(10000));
    SL_AWAIT(t, m->rc, sl_select(t, m->p.cases, 3, SL_SELECT_PRIO(2)));
    assert_int_equal(m->rc, 2);
    assert_int_equal(m->p.got, 2);
    sl_task_set_deadline(t, 0);
    unmake(t, &m->p, 3);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_strict_default_park_and_bad_k(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    misc_st m = { 0 };
    assert_int_equal(rt_run(rt, misc_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_exact),
        cmocka_unit_test(test_bound_random_readiness),
        cmocka_unit_test(test_strict_default_park_and_bad_k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
