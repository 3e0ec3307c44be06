/* test_task.c: spawning, join, sleep, yield, cancel, deadlines, groups, scale. */
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

static void fresh(void)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
}

static int ret_n(sl_task *t, void *arg)
{
    (void)t;
    return (int)(intptr_t)arg;
}

/* ---- spawn, join, detach ------------------------------------------------------- */

typedef struct join_st {
    sl_task *a, *b, *c;
    int res, rc;
    int freed;
    sl_task mem;
} join_st;

static void count_free(void *p)
{
    (*(int *)p)++;
}

static int sleeper(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_sleep(t, 5 * SL_NS_PER_MS));
    SL_RETURN(t, rc == 0 ? 17 : rc);
    SL_END(t);
}

static int join_main(sl_task *t, void *arg)
{
    join_st *m = arg;
    SL_BEGIN(t);
    /* join a task that has not run yet: parks, then gets its result */
    assert_int_equal(sl_spawn(NULL, ret_n, (void *)(intptr_t)-EIO, &m->a, &(sl_spawn_opts){ .joinable = true }), 0);
    assert_int_equal(sl_task_join(t, m->a, NULL), -EINVAL);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->a, &m->res));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->res, -EIO);
    /* join a task that already ended: completes at once */
    assert_int_equal(sl_spawn(NULL, ret_n, (void *)(intptr_t)5, &m->b, &(sl_spawn_opts){ .joinable = true }), 0);
    SL_YIELD(t);
    assert_int_equal(sl_task_join(t, m->b, &m->res), 0);
    assert_int_equal(m->res, 5);
    /* errors */
    assert_int_equal(sl_task_join(t, t, &m->res), -EINVAL);   /* not joinable */
    assert_int_equal(sl_spawn(NULL, sleeper, NULL, &m->c, &(sl_spawn_opts){ .joinable = true, .name = "sleeper" }), 0);
    assert_int_equal(sl_task_join(t, m->c, &m->res) == SL_PENDING, 1);
    assert_int_equal(sl_task_join(t, m->c, &m->res), -EBUSY);
    SL_AWAIT(t, m->rc, SL_PENDING);   /* the join above is under way */
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->res, 17);
    /* a join bounded by the joiner's deadline keeps the reference */
    assert_int_equal(sl_spawn(NULL, sleeper, NULL, &m->c, &(sl_spawn_opts){ .joinable = true }), 0);
    sl_task_set_deadline(t, sl_now_ns() + SL_NS_PER_MS);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->c, &m->res));
    assert_int_equal(m->rc, -ETIMEDOUT);
    sl_task_set_deadline(t, 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->c, &m->res));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->res, 17);
    /* detach: freed when it ends, state destructor runs once */
    assert_int_equal(sl_spawn(NULL, ret_n, &m->freed, &m->a,
                              &(sl_spawn_opts){ .joinable = true, .state_free = count_free }), 0);
    assert_int_equal(sl_task_detach(m->a), 0);
    assert_int_equal(sl_task_detach(m->a), -EINVAL);
    SL_YIELD(t);
    assert_int_equal(m->freed, 1);
    /* caller's storage */
    assert_int_equal(sl_spawn_mem(NULL, ret_n, (void *)(intptr_t)3, &m->mem, &(sl_spawn_opts){ .joinable = true }), 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, &m->mem, &m->res));
    assert_int_equal(m->res, 3);
    /* spawn errors */
    assert_int_equal(sl_spawn(NULL, NULL, NULL, NULL, NULL), -EINVAL);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_spawn_join_detach(void **s)
{
    (void)s;
    fresh();
    join_st m = { 0 };
    assert_int_equal(rt_run(rt, join_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

static void test_spawn_errors_outside(void **s)
{
    (void)s;
    assert_int_equal(sl_spawn(NULL, ret_n, NULL, NULL, NULL), -EINVAL);   /* no reactor */
    assert_int_equal(sl_spawn_on(NULL, ret_n, NULL, NULL), -EINVAL);
    fresh();
    sl_group g;
    sl_group_init(&g, sl_runtime_reactor(rt, 0));
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), ret_n, NULL, &(sl_spawn_opts){ .group = &g }), -EINVAL);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), ret_n, NULL, &(sl_spawn_opts){ .joinable = true }), -EINVAL);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- yield and order ------------------------------------------------------------------ */

typedef struct order_st {
    char log[64];
    int n;
} order_st;

static order_st olog;

static int yielder(sl_task *t, void *arg)
{
    char c = (char)(intptr_t)arg;
    SL_BEGIN(t);
    olog.log[olog.n++] = c;
    SL_YIELD(t);
    olog.log[olog.n++] = c;
    SL_YIELD(t);
    olog.log[olog.n++] = c;
    if (c == 'c')
        sl_runtime_stop(rt);
    SL_END(t);
}

static void test_yield_round_robin(void **s)
{
    (void)s;
    fresh();
    memset(&olog, 0, sizeof olog);
    sl_reactor *r = sl_runtime_reactor(rt, 0);
    /* spawning on a reactor that is not running yet is allowed */
    assert_int_equal(sl_spawn(r, yielder, (void *)(intptr_t)'a', NULL, NULL), 0);
    assert_int_equal(sl_spawn(r, yielder, (void *)(intptr_t)'b', NULL, NULL), 0);
    assert_int_equal(sl_spawn(r, yielder, (void *)(intptr_t)'c', NULL, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_string_equal(olog.log, "abcabcabc");
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- sleep and deadline accuracy -------------------------------------------------------- */

#define ROUNDS 7

typedef struct acc_st {
    int i, rc;
    uint64_t start, late_sleep[ROUNDS], late_dl[ROUNDS];
} acc_st;

static int acc_main(sl_task *t, void *arg)
{
    acc_st *m = arg;
    SL_BEGIN(t);
    for (m->i = 0; m->i < ROUNDS; m->i++) {
        m->start = sl_now_ns();
        SL_AWAIT(t, m->rc, sl_sleep(t, 15 * SL_NS_PER_MS));
        assert_int_equal(m->rc, 0);
        assert_true(sl_now_ns() >= m->start + 15 * SL_NS_PER_MS);   /* never early */
        m->late_sleep[m->i] = sl_now_ns() - (m->start + 15 * SL_NS_PER_MS);
        /* a deadline earlier than the sleep's end wins, with -ETIMEDOUT */
        m->start = sl_now_ns();
        sl_task_set_deadline(t, m->start + 10 * SL_NS_PER_MS);
        SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_S));
        assert_int_equal(m->rc, -ETIMEDOUT);
        assert_true(sl_now_ns() >= m->start + 10 * SL_NS_PER_MS);
        m->late_dl[m->i] = sl_now_ns() - (m->start + 10 * SL_NS_PER_MS);
        sl_task_set_deadline(t, 0);
    }
    /* a sleep that has already ended does not park */
    assert_int_equal(sl_sleep_until(t, sl_now_ns() - 1), 0);
    assert_int_equal(sl_sleep(t, 0), 0);
    /* a passed deadline fails a wait at once */
    sl_task_set_deadline(t, sl_now_ns() - 1);
    assert_int_equal(sl_sleep(t, SL_NS_PER_MS), -ETIMEDOUT);
    assert_int_equal(sl_task_set_deadline(t, 0) != 0, 1);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_sleep_and_deadline_accuracy(void **s)
{
    (void)s;
    fresh();
    acc_st m = { 0 };
    assert_int_equal(rt_run(rt, acc_main, &m), 0);
    /* Soon after the deadline: the median of 7 within 200 ms, a bound no
     * loaded machine reaches (load 23 on 2 cores made 10 ms flaky) yet one
     * that a timer left unserved still fails. How precise timers are is
     * measured in `make bench` (sleep_*ms_late_p50_us / _p99_us). */
    assert_true(median_u64(m.late_sleep, ROUNDS) < 200 * SL_NS_PER_MS);
    assert_true(median_u64(m.late_dl, ROUNDS) < 200 * SL_NS_PER_MS);
}

/* ---- cancel ----------------------------------------------------------------------------- */

typedef struct cancel_st {
    sl_task *child, *done;
    int rc, child_rc[3];
} cancel_st;

static int cancel_child(sl_task *t, void *arg)
{
    cancel_st *m = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, m->child_rc[0], sl_sleep(t, 10 * SL_NS_PER_S));
    /* every later wait fails with the same error, at once */
    m->child_rc[1] = sl_sleep(t, SL_NS_PER_MS);
    m->child_rc[2] = sl_task_cancelled(t);
    SL_END(t);
}

static int cancel_main(sl_task *t, void *arg)
{
    cancel_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_spawn(NULL, cancel_child, m, &m->child, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(sl_task_cancel(m->child, 5), -EINVAL);
    assert_int_equal(sl_task_cancel(m->child, -ETIMEDOUT), 0);
    assert_int_equal(sl_task_cancel(m->child, 0), -EALREADY);
    SL_YIELD(t);
    assert_int_equal(m->child_rc[0], -ETIMEDOUT);
    assert_int_equal(m->child_rc[1], -ETIMEDOUT);
    assert_int_equal(m->child_rc[2], -ETIMEDOUT);
    assert_int_equal(sl_task_cancel(NULL, 0), -EINVAL);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_cancel(void **s)
{
    (void)s;
    fresh();
    cancel_st m = { 0 };
    assert_int_equal(rt_run(rt, cancel_main, &m), 0);
}

/* ---- SL_PENDING without a wait is a reported misuse -------------------------------------- */

static int liar(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    return SL_PENDING;
}

typedef struct liar_st {
    sl_task *l;
    int rc, res;
} liar_st;

static int liar_main(sl_task *t, void *arg)
{
    liar_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_spawn(NULL, liar, NULL, &m->l, &(sl_spawn_opts){ .joinable = true, .name = "liar" }), 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->l, &m->res));
    assert_int_equal(m->res, -EINVAL);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_pending_without_wait(void **s)
{
    (void)s;
    fresh();
    liar_st m = { 0 };
    assert_int_equal(rt_run(rt, liar_main, &m), 0);
    assert_int_equal(cap.count, 1);
    assert_non_null(strstr(cap.text, "task 'liar' returned SL_PENDING"));
}

/* ---- groups ------------------------------------------------------------------------------ */

#define GROUP_N 10000

typedef struct group_st {
    sl_group g;
    int ended, cancelled, rc;
    sl_chan *never;
} group_st;

static group_st *gs;

static int member(sl_task *t, void *arg)
{
    int rc, v;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_chan_recv(t, gs->never, &v));
    gs->ended++;
    gs->cancelled += rc == -ECANCELED;
    SL_END(t);
}

static int quick_member(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    gs->ended++;
    return 0;
}

static int group_main(sl_task *t, void *arg)
{
    group_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->never, sizeof(int), 0, NULL), 0);
    sl_group_init(&m->g, NULL);
    for (int i = 0; i < GROUP_N; i++)
        assert_int_equal(sl_spawn(NULL, member, NULL, NULL, &(sl_spawn_opts){ .group = &m->g }), 0);
    assert_int_equal(sl_group_size(&m->g), GROUP_N);
    SL_YIELD(t);
    assert_int_equal(m->ended, 0);
    SL_AWAIT(t, m->rc, sl_group_close(t, &m->g));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->ended, GROUP_N);
    assert_int_equal(m->cancelled, GROUP_N);
    assert_int_equal(sl_group_size(&m->g), 0);
    /* a closed group takes no new members */
    assert_int_equal(sl_spawn(NULL, member, NULL, NULL, &(sl_spawn_opts){ .group = &m->g }), -EINVAL);
    /* wait: members end by themselves */
    sl_group_init(&m->g, NULL);
    m->ended = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(sl_spawn(NULL, quick_member, NULL, NULL, &(sl_spawn_opts){ .group = &m->g }), 0);
    SL_AWAIT(t, m->rc, sl_group_wait(t, &m->g));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->ended, 100);
    assert_int_equal(sl_group_wait(t, &m->g), 0);       /* empty: at once */
    assert_int_equal(sl_group_close(t, &m->g), 0);
    assert_int_equal(sl_chan_free(t, m->never), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_group_close_cancels_and_joins(void **s)
{
    (void)s;
    fresh();
    group_st m = { 0 };
    gs = &m;
    assert_int_equal(rt_run(rt, group_main, &m), 0);
}

/* ---- a wait's record goes with the wait (issue 17) ------------------------------------------ */

/* A group's waiter and a joinable task's joiner are kept as pointers while
 * they wait; a waiter whose wait ends (here: cancelled) is forgotten then,
 * so a later task at its address (sl_spawn_mem: the same storage) is a
 * stranger to the group and to the joinable task: it may wait and join
 * (not -EBUSY) and wakes when they end. */
typedef struct rec_st {
    sl_group g;
    sl_task mem, *member, *other, *first;
    int rc[4], res, stage;
    bool first_done, heir_done;
} rec_st;

static int rec_sleeper(sl_task *t, void *arg)   /* the member, and the joinable task */
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, t->wait_result_, sl_sleep(t, 60 * SL_NS_PER_S));   /* cancelled, never slept out */
    SL_RETURN(t, t->wait_result_);
    SL_END(t);
}

/* stage 0 joins `other`, stage 1 waits for the group: cancelled there */
static int rec_first(sl_task *t, void *arg)
{
    rec_st *m = arg;
    SL_BEGIN(t);
    m->first = t;
    if (m->stage == 0)
        SL_AWAIT(t, m->rc[0], sl_task_join(t, m->other, &m->res));
    else
        SL_AWAIT(t, m->rc[1], sl_group_wait(t, &m->g));
    m->first_done = true;
    SL_END(t);
}

static int rec_heir(sl_task *t, void *arg)
{
    rec_st *m = arg;
    SL_BEGIN(t);
    assert_ptr_equal(t, m->first);
    SL_AWAIT(t, m->rc[2], sl_group_wait(t, &m->g));
    SL_AWAIT(t, m->rc[3], sl_task_join(t, m->other, &m->res));
    m->heir_done = true;
    SL_END(t);
}

static int rec_main(sl_task *t, void *arg)
{
    rec_st *m = arg;
    SL_BEGIN(t);
    sl_group_init(&m->g, NULL);
    assert_int_equal(sl_spawn(NULL, rec_sleeper, NULL, &m->member, &(sl_spawn_opts){ .group = &m->g }), 0);
    assert_int_equal(sl_spawn(NULL, rec_sleeper, NULL, &m->other, &(sl_spawn_opts){ .joinable = true }), 0);
    for (m->stage = 0; m->stage < 2; m->stage++) {
        m->first_done = false;
        assert_int_equal(sl_spawn_mem(NULL, rec_first, m, &m->mem, &(sl_spawn_opts){ .name = "first" }), 0);
        SL_YIELD(t);   /* first joins, or waits for the group */
        assert_int_equal(sl_task_cancel(m->first, 0), 0);
        while (!m->first_done)
            SL_YIELD(t);
    }
    assert_int_equal(m->rc[0], -ECANCELED);
    assert_int_equal(m->rc[1], -ECANCELED);
    assert_int_equal(sl_spawn_mem(NULL, rec_heir, m, &m->mem, &(sl_spawn_opts){ .name = "heir" }), 0);
    SL_YIELD(t);   /* the heir waits for the group, as any task may */
    assert_int_equal(sl_group_size(&m->g), 1);
    assert_int_equal(sl_task_cancel(m->member, 0), 0);
    SL_YIELD(t);
    assert_int_equal(sl_task_cancel(m->other, 0), 0);
    while (!m->heir_done)
        SL_YIELD(t);
    assert_int_equal(m->rc[2], 0);
    assert_int_equal(m->rc[3], 0);
    assert_int_equal(m->res, -ECANCELED);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_wait_records_go_with_the_wait(void **s)
{
    (void)s;
    fresh();
    rec_st m = { 0 };
    assert_int_equal(rt_run(rt, rec_main, &m), 0);
}

/* ---- a million parked tasks ------------------------------------------------------------- */

#define MILLION 1000000

typedef struct mil_st {
    sl_chan *ch;
    int woken, rc, i;
    sl_group g;
} mil_st;

static mil_st *ms;

static int parked(sl_task *t, void *arg)
{
    int rc, v;
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_chan_recv(t, ms->ch, &v));
    ms->woken += rc == -EPIPE;
    SL_END(t);
}

static int mil_main(sl_task *t, void *arg)
{
    mil_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 0, NULL), 0);
    sl_group_init(&m->g, NULL);
    for (int i = 0; i < MILLION; i++)
        assert_int_equal(sl_spawn(NULL, parked, NULL, NULL, &(sl_spawn_opts){ .group = &m->g }), 0);
    SL_YIELD(t);   /* one full pass: every task parks */
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.parked_receivers, MILLION);
    assert_int_equal(sl_reactor_task_count(sl_task_reactor(t)), MILLION + 1);
    assert_int_equal(sl_chan_close(t, m->ch), 0);   /* releases them all */
    SL_AWAIT(t, m->rc, sl_group_wait(t, &m->g));
    assert_int_equal(m->woken, MILLION);
    assert_int_equal(sl_reactor_task_count(sl_task_reactor(t)), 1);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_million_parked(void **s)
{
    (void)s;
    fresh();
    mil_st m = { 0 };
    ms = &m;
    assert_int_equal(rt_run(rt, mil_main, &m), 0);
}

/* ---- introspection --------------------------------------------------------------------- */

static int info_main(sl_task *t, void *arg)
{
    sl_task_info i;
    char line[256];
    (void)arg;
    sl_task_info_get(t, &i);
    assert_string_equal(i.name, "main");
    assert_non_null(strstr(i.file, "testutil.h"));
    assert_int_equal(i.status, SL_TASK_RUNNING);
    assert_ptr_equal(sl_task_current(), t);
    assert_string_equal(sl_task_name(t), "main");
    sl_task_describe(t, line, sizeof line);
    assert_non_null(strstr(line, "task 'main' (spawned at"));
    assert_non_null(strstr(line, "running"));
    /* a tiny buffer is always terminated */
    char tiny[8];
    assert_true(sl_task_describe(t, tiny, sizeof tiny) > 8);
    assert_int_equal(strlen(tiny), 7);
    assert_string_equal(sl_task_status_name(SL_TASK_PARKED), "parked");
    assert_string_equal(sl_wait_kind_name(SL_WAIT_MUTEX), "mutex");
    assert_string_equal(sl_wait_kind_name((sl_wait_kind)99), "?");
    int x;
    sl_task_set_ext(t, &x, NULL);
    assert_ptr_equal(sl_task_ext(t), &x);
    sl_runtime_stop(rt);
    return 0;
}

static void test_introspection(void **s)
{
    (void)s;
    fresh();
    assert_null(sl_task_current());
    assert_int_equal(rt_run(rt, info_main, NULL), 0);
}

/* ---- external waits say what they wait for ------------------------------------------ */

typedef struct ext_st {
    sl_task *waiter;
    int rc, aborted;
} ext_st;

static int ext_waiter(sl_task *t, void *arg)
{
    ext_st *e = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, e->rc, sl_task_park_as(t, e, NULL, "disk read of 'ledger.db'"));
    SL_END(t);
}

static int ext_main(sl_task *t, void *arg)
{
    ext_st *e = arg;
    sl_task_info i;
    char line[256];
    SL_BEGIN(t);
    assert_int_equal(sl_spawn(NULL, ext_waiter, e, &e->waiter, &(sl_spawn_opts){ .name = "reader" }), 0);
    SL_YIELD(t);   /* the reader parks */
    sl_task_info_get(e->waiter, &i);
    assert_int_equal(i.status, SL_TASK_PARKED);
    assert_int_equal(i.wait, SL_WAIT_EXTERNAL);
    assert_string_equal(i.wait_name, "disk read of 'ledger.db'");
    sl_task_describe(e->waiter, line, sizeof line);
    assert_non_null(strstr(line, "parked on external 'disk read of 'ledger.db''"));
    assert_int_equal(sl_task_unpark(e->waiter, 7), 0);
    SL_YIELD(t);
    assert_int_equal(e->rc, 7);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_park_as_names_the_wait(void **s)
{
    (void)s;
    ext_st e = { 0 };
    fresh();
    assert_int_equal(rt_run(rt, ext_main, &e), 0);
}

/* ---- SL_RESET: protothreads one after another on one task ----------------------- */

typedef struct seq_st {
    int phase, steps, rc;
} seq_st;

/* A prologue with a wait of its own... */
static int seq_prologue(sl_task *t, seq_st *s)
{
    SL_BEGIN(t);
    s->steps++;
    SL_AWAIT(t, s->rc, sl_sleep(t, SL_NS_PER_MS));
    s->steps++;
    SL_END(t);
}

/* ...then a body that waits too: without the reset it would resume at the
 * prologue's line numbers, which its switch does not have. */
static int seq_body(sl_task *t, seq_st *s)
{
    SL_BEGIN(t);
    s->steps += 10;
    SL_YIELD(t);
    s->steps += 10;
    SL_END(t);
}

static int seq_main(sl_task *t, void *arg)
{
    seq_st *s = arg;
    int rc;
    if (s->phase == 0) {
        if ((rc = seq_prologue(t, s)) == SL_PENDING)
            return rc;
        s->phase = 1;
        SL_RESET(t);
    }
    if ((rc = seq_body(t, s)) == SL_PENDING)
        return rc;
    sl_runtime_stop(rt);
    return rc;
}

/* The coarse clock is never ahead of a later exact read, and lags less
 * than its slack (samples where this process lost the CPU between the
 * reads say nothing and are skipped). */
static void test_coarse_clock(void **state)
{
    (void)state;
    uint64_t slack = sl_coarse_slack_ns();
    assert_true(slack > 0 && slack <= 2 * SL_NS_PER_S);
    assert_true(sl_coarse_slack_ns() == slack);
    int usable = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t p1 = sl_now_ns(), c = sl_now_coarse_ns(), p2 = sl_now_ns();
        assert_true(c <= p2);
        if (p2 - p1 > 100 * SL_NS_PER_US)
            continue;
        usable++;
        assert_true(c + slack > p1);
    }
    assert_true(usable > 1000);
}

static void test_reset_runs_protothreads_in_sequence(void **state)
{
    (void)state;
    seq_st s = { 0 };
    fresh();
    assert_int_equal(rt_run(rt, seq_main, &s), 0);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.steps, 22);   /* each part ran once, through its waits */
}

/* ---- SL_AWAIT inside a switch of the step function's own ------------------------------- */

typedef struct sw_st {
    int kind, rc, before, after, steps;
} sw_st;

/* Go code is full of switch: a wait in one of its cases resumes in that
 * case (labels as values under GCC and Clang). */
static int sw_task(sl_task *t, void *arg)
{
    sw_st *s = arg;
    SL_BEGIN(t);
    s->steps++;
    switch (s->kind) {
    case 1:
        s->before = 1;
        SL_AWAIT(t, s->rc, sl_sleep(t, SL_NS_PER_MS));
        s->after = 1;
        break;
    case 2:
        s->before = 2;
        SL_YIELD(t);
        s->after = 2;
        break;
    default:
        s->after = -1;
    }
    SL_RETURN(t, 40 + s->after);
    SL_END(t);
}

static int sw_main(sl_task *t, void *arg)
{
    sw_st *s = arg;
    static sl_task *kids[2];
    static int res[2];
    static int i;
    SL_BEGIN(t);
    for (i = 0; i < 2; i++) {
        s[i].kind = i + 1;
        assert_int_equal(sl_spawn(NULL, sw_task, &s[i], &kids[i], &(sl_spawn_opts){ .joinable = true }), 0);
    }
    for (i = 0; i < 2; i++) {
        SL_AWAIT(t, s[i].rc, sl_task_join(t, kids[i], &res[i]));
        assert_int_equal(s[i].rc, 0);
        assert_int_equal(res[i], 40 + i + 1);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_await_inside_user_switch(void **state)
{
    (void)state;
    sw_st s[2];
    memset(s, 0, sizeof s);
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    assert_int_equal(rt_run(rt, sw_main, s), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].before, i + 1);
        assert_int_equal(s[i].after, i + 1);   /* resumed inside the case */
        assert_int_equal(s[i].steps, 1);       /* and not from the top */
    }
    assert_int_equal(cap.count, 0);
}

/* The switch form (other compilers) cannot resume there: a loud misuse
 * naming the wait's file:line and -EINVAL, never a silent result 0. */
static int sw_lost_line;

static int sw_switch_form(sl_task *t, void *arg)
{
    sw_st *s = arg;
    SL_BEGIN_SW_(t);
    switch (s->kind) {
    case 1:
        sw_lost_line = __LINE__ + 1;
        SL_AWAIT_AS_(t, s->rc, sl_sleep(t, SL_NS_PER_MS), SL_SUSPEND_SW_);
        s->after = 1;
        break;
    }
    SL_RETURN_SW_(t, 7);
    SL_END_SW_(t);
}

static int sw_lost_main(sl_task *t, void *arg)
{
    sw_st *s = arg;
    static sl_task *kid;
    static int res;
    SL_BEGIN(t);
    s->kind = 1;
    assert_int_equal(sl_spawn(NULL, sw_switch_form, s, &kid, &(sl_spawn_opts){ .name = "go-style", .joinable = true }), 0);
    SL_AWAIT(t, s->rc, sl_task_join(t, kid, &res));
    s->steps = res;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_await_in_switch_fallback_is_loud(void **state)
{
    (void)state;
    sw_st s = { 0 };
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    assert_int_equal(rt_run(rt, sw_lost_main, &s), 0);
    assert_int_equal(s.steps, -EINVAL);   /* the task's result */
    assert_int_equal(s.after, 0);
    char where[sizeof __FILE__ + 64];   /* an out-of-tree build has a long __FILE__ */
    snprintf(where, sizeof where, "misuse at %s:%d: task 'go-style'", __FILE__, sw_lost_line);
    assert_non_null(strstr(cap.text, where));
    assert_int_equal(cap.count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_join_detach),
        cmocka_unit_test(test_spawn_errors_outside),
        cmocka_unit_test(test_yield_round_robin),
        cmocka_unit_test(test_sleep_and_deadline_accuracy),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_pending_without_wait),
        cmocka_unit_test(test_group_close_cancels_and_joins),
        cmocka_unit_test(test_wait_records_go_with_the_wait),
        cmocka_unit_test(test_million_parked),
        cmocka_unit_test(test_introspection),
        cmocka_unit_test(test_reset_runs_protothreads_in_sequence),
        cmocka_unit_test(test_park_as_names_the_wait),
        cmocka_unit_test(test_coarse_clock),
        cmocka_unit_test(test_await_inside_user_switch),
        cmocka_unit_test(test_await_in_switch_fallback_is_loud),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
