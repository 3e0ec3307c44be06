/* test_chan.c: channels: order, hand-off, close, ends, destructor, pressure. */
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

/* ---- helper tasks ---------------------------------------------------------- */

typedef struct recver {
    sl_chan *ch;
    int n, got[128], rc[128], i;
    uint64_t deadline;
} recver;

static int recv_task(sl_task *t, void *arg)
{
    recver *s = arg;
    SL_BEGIN(t);
    if (s->deadline)
        sl_task_set_deadline(t, s->deadline);
    for (s->i = 0; s->i < s->n; s->i++) {
        SL_AWAIT(t, s->rc[s->i], sl_chan_recv(t, s->ch, &s->got[s->i]));
        if (s->rc[s->i] < 0)
            break;
    }
    SL_END(t);
}

typedef struct sender {
    sl_chan *ch;
    int n, first, rc[128], i, v;
    uint64_t deadline;
} sender;

static int send_task(sl_task *t, void *arg)
{
    sender *s = arg;
    SL_BEGIN(t);
    if (s->deadline)
        sl_task_set_deadline(t, s->deadline);
    for (s->i = 0; s->i < s->n; s->i++) {
        s->v = s->first + s->i;
        SL_AWAIT(t, s->rc[s->i], sl_chan_send(t, s->ch, &s->v));
        if (s->rc[s->i] < 0)
            break;
    }
    SL_END(t);
}

static void setup_rt(void)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
}

/* ---- FIFO ------------------------------------------------------------------- */

typedef struct fifo_st {
    sl_chan *ch;
    sender s;
    recver r;
    sl_task *st, *rt_;
    int rc, res;
} fifo_st;

static int fifo_main(sl_task *t, void *arg)
{
    fifo_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 4, NULL), 0);
    m->s = (sender){ .ch = m->ch, .n = 100, .first = 1000 };
    m->r = (recver){ .ch = m->ch, .n = 100 };
    assert_int_equal(sl_spawn(NULL, send_task, &m->s, &m->st, &(sl_spawn_opts){ .joinable = true }), 0);
    assert_int_equal(sl_spawn(NULL, recv_task, &m->r, &m->rt_, &(sl_spawn_opts){ .joinable = true }), 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->st, &m->res));
    assert_int_equal(m->rc, 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->rt_, &m->res));
    assert_int_equal(m->rc, 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(m->r.rc[i], 0);
        assert_int_equal(m->r.got[i], 1000 + i);
        assert_int_equal(m->s.rc[i], 0);
    }
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.sent, 100);
    assert_int_equal(st.received, 100);
    assert_int_equal(st.high_water, 4);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_fifo_order(void **s)
{
    (void)s;
    setup_rt();
    fifo_st m = { 0 };
    assert_int_equal(rt_run(rt, fifo_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- time senders spent parked ------------------------------------------------------ */

typedef struct parked_st {
    sl_chan *ch;
    sender s;
    int v, rc, got;
    uint64_t before;
} parked_st;

static int parked_main(sl_task *t, void *arg)
{
    parked_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 0, NULL), 0);
    m->s = (sender){ .ch = m->ch, .n = 1, .first = 5 };
    assert_int_equal(sl_spawn(NULL, send_task, &m->s, NULL, NULL), 0);
    SL_AWAIT(t, m->rc, sl_sleep(t, 20 * SL_NS_PER_MS));   /* the sender waits meanwhile */
    assert_int_equal(sl_chan_recv(t, m->ch, &m->got), 0);
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_true(st.send_parked_ns >= 19 * SL_NS_PER_MS);
    assert_true(st.send_parked_ns < 10 * SL_NS_PER_S);
    /* A sender with a deadline notes the exact clock when it parks, later
     * than the reactor's coarse one; taken from in the same turn, its wait
     * must not count as negative (it wrapped to ~584 years once). */
    m->before = st.send_parked_ns;
    m->s = (sender){ .ch = m->ch, .n = 1, .first = 6, .deadline = sl_deadline_ms(60000) };
    assert_int_equal(sl_spawn(NULL, send_task, &m->s, NULL, NULL), 0);
    SL_YIELD(t);   /* the sender runs and parks; we come back in the same turn */
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 6);
    sl_chan_stats_get(m->ch, &st);
    assert_true(st.send_parked_ns - m->before < 10 * SL_NS_PER_S);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_send_parked_time(void **s)
{
    (void)s;
    setup_rt();
    parked_st m = { 0 };
    assert_int_equal(rt_run(rt, parked_main, &m), 0);
}

/* ---- rendezvous --------------------------------------------------------------- */

typedef struct rdv_st {
    sl_chan *ch;
    int v, rc, got;
    sender s;
} rdv_st;

static int rdv_main(sl_task *t, void *arg)
{
    rdv_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 0, NULL), 0);
    /* nobody receives: a try_send cannot complete, a send parks */
    m->v = 7;
    assert_int_equal(sl_chan_try_send(t, m->ch, &m->v), -EAGAIN);
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), -EAGAIN);
    m->s = (sender){ .ch = m->ch, .n = 1, .first = 42 };
    assert_int_equal(sl_spawn(NULL, send_task, &m->s, NULL, NULL), 0);
    SL_YIELD(t);
    /* the sender is parked now, holding its element */
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.parked_senders, 1);
    assert_int_equal(st.len, 0);
    /* a receive completes at once, straight from the sender's buffer */
    assert_int_equal(sl_chan_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 42);
    SL_YIELD(t);
    assert_int_equal(m->s.rc[0], 0);
    /* and the other way: the receiver parks first */
    SL_AWAIT(t, m->rc, sl_sleep(t, 0));
    m->s = (sender){ .ch = m->ch, .n = 1, .first = 43 };
    assert_int_equal(sl_spawn(NULL, send_task, &m->s, NULL, NULL), 0);
    SL_AWAIT(t, m->rc, sl_chan_recv(t, m->ch, &m->got));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->got, 43);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_rendezvous(void **s)
{
    (void)s;
    setup_rt();
    rdv_st m = { 0 };
    assert_int_equal(rt_run(rt, rdv_main, &m), 0);
}

/* ---- close ------------------------------------------------------------------------ */

typedef struct close_st {
    sl_chan *full, *empty;
    recver r[5];
    sender s[5];
    int v, got, rc;
} close_st;

static int close_main(sl_task *t, void *arg)
{
    close_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->empty, sizeof(int), 2, NULL), 0);
    assert_int_equal(sl_chan_new(&m->full, sizeof(int), 1, NULL), 0);
    m->v = 1;
    assert_int_equal(sl_chan_send(t, m->full, &m->v), 0);
    for (int i = 0; i < 5; i++) {
        m->r[i] = (recver){ .ch = m->empty, .n = 1 };
        m->s[i] = (sender){ .ch = m->full, .n = 1 };
        assert_int_equal(sl_spawn(NULL, recv_task, &m->r[i], NULL, NULL), 0);
        assert_int_equal(sl_spawn(NULL, send_task, &m->s[i], NULL, NULL), 0);
    }
    SL_YIELD(t);
    sl_chan_stats st;
    sl_chan_stats_get(m->empty, &st);
    assert_int_equal(st.parked_receivers, 5);
    sl_chan_stats_get(m->full, &st);
    assert_int_equal(st.parked_senders, 5);
    assert_int_equal(sl_chan_close(t, m->empty), 0);
    assert_int_equal(sl_chan_close(t, m->full), 0);
    SL_YIELD(t);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m->r[i].rc[0], -EPIPE);
        assert_int_equal(m->s[i].rc[0], -EPIPE);
    }
    /* after close: sends fail, the buffered element drains, then -EPIPE */
    assert_int_equal(sl_chan_send(t, m->full, &m->v), -EPIPE);
    assert_int_equal(sl_chan_try_send(t, m->full, &m->v), -EPIPE);
    assert_int_equal(sl_chan_recv(t, m->full, &m->got), 0);
    assert_int_equal(m->got, 1);
    assert_int_equal(sl_chan_recv(t, m->full, &m->got), -EPIPE);
    assert_int_equal(sl_chan_try_recv(t, m->full, &m->got), -EPIPE);
    /* a second close is an error and a report naming this file */
    assert_int_equal(sl_chan_close(t, m->full), -EALREADY);
    assert_non_null(strstr(cap.text, "second close"));
    assert_non_null(strstr(cap.text, "test_chan.c:"));
    assert_int_equal(sl_chan_free(t, m->full), 0);
    assert_int_equal(sl_chan_free(t, m->empty), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_close_wakes_all(void **s)
{
    (void)s;
    setup_rt();
    close_st m = { 0 };
    assert_int_equal(rt_run(rt, close_main, &m), 0);
    assert_int_equal(cap.count, 1);
}

/* Only the owner closes; ownership can be handed on. */
typedef struct owner_st {
    sl_chan *ch;
    sl_task *main, *in;
    int rc, res;
} owner_st;

static int intruder(sl_task *t, void *arg)
{
    owner_st *m = arg;
    assert_int_equal(sl_chan_close(t, m->ch), -EPERM);
    assert_int_equal(sl_chan_free(t, m->ch), -EPERM);
    assert_int_equal(sl_chan_give(m->ch, t, NULL), -EPERM);
    assert_int_equal(sl_chan_give(m->ch, m->main, t), 0);
    assert_int_equal(sl_chan_close(t, m->ch), 0);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    return 0;
}

/* main stays alive while the intruder gives on its behalf: a task's
 * pointer is valid until it ends (sl_spawn), and an ended owner passes
 * nothing on (test_ended_owner_mem_reuse) */
static int owner_main(sl_task *t, void *arg)
{
    owner_st *m = arg;
    SL_BEGIN(t);
    m->main = t;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, &(sl_chan_opts){ .name = "owned" }), 0);
    assert_int_equal(sl_spawn(NULL, intruder, m, &m->in, &(sl_spawn_opts){ .name = "intruder", .joinable = true }), 0);
    SL_AWAIT(t, m->rc, sl_task_join(t, m->in, &m->res));
    assert_int_equal(m->rc, 0);
    SL_END(t);
}

static void test_close_by_non_owner(void **s)
{
    (void)s;
    setup_rt();
    owner_st m = { 0 };
    assert_int_equal(rt_run(rt, owner_main, &m), 0);
    assert_int_equal(cap.count, 2);
    assert_non_null(strstr(cap.text, "close of channel 'owned'"));
    assert_non_null(strstr(cap.text, "by task 'intruder', which does not own it"));
    assert_null(strstr(cap.text, "no live task"));   /* its owner, main, lived */
}

/* ---- ends: receivers gone, senders gone ---------------------------------------- */

typedef struct ends_st {
    sl_chan *ch, *ch2;
    sender s[3];
    recver r, r2;
    sl_task *rt_, *st_;
    int v, got, rc;
} ends_st;

static int ends_main(sl_task *t, void *arg)
{
    ends_st *m = arg;
    SL_BEGIN(t);
    /* three senders parked on a full channel; the only receiver ends */
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    m->v = 5;
    assert_int_equal(sl_chan_send(t, m->ch, &m->v), 0);
    for (int i = 0; i < 3; i++) {
        m->s[i] = (sender){ .ch = m->ch, .n = 2, .first = 10 * i, .rc = { 1, 1 } };
        assert_int_equal(sl_spawn(NULL, send_task, &m->s[i], NULL, NULL), 0);
    }
    SL_YIELD(t);
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.parked_senders, 3);
    m->r = (recver){ .ch = m->ch, .n = 1 };
    assert_int_equal(sl_spawn(NULL, recv_task, &m->r, &m->rt_, NULL), 0);
    assert_int_equal(sl_chan_attach(m->ch, m->rt_, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_attach(m->ch, m->rt_, 0), -EINVAL);
    assert_int_equal(sl_chan_attach(m->ch, m->rt_, 8), -EINVAL);
    SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_MS));
    /* the receiver took one element and ended; its end went with it */
    assert_int_equal(m->r.rc[0], 0);
    assert_int_equal(m->r.got[0], 5);
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.receivers, 0);
    assert_int_equal(st.parked_senders, 0);
    /* the first sender's element moved into the buffer as the receiver took
     * one; every other send, parked or new, failed instead of waiting forever */
    int ok = 0, pipe = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            ok += m->s[i].rc[j] == 0, pipe += m->s[i].rc[j] == -EPIPE;
    assert_int_equal(ok, 1);
    assert_int_equal(pipe, 3);
    assert_int_equal(sl_chan_send(t, m->ch, &m->v), -EPIPE);
    assert_int_equal(sl_chan_detach(m->ch, t, SL_CHAN_RECEIVER), -ENOENT);
    assert_int_equal(sl_chan_free(t, m->ch), 0);

    /* the last sender goes: receivers drain, then get -EPIPE */
    assert_int_equal(sl_chan_new(&m->ch2, sizeof(int), 4, NULL), 0);
    assert_int_equal(sl_chan_attach(m->ch2, t, SL_CHAN_SENDER), 0);
    m->v = 9;
    assert_int_equal(sl_chan_send(t, m->ch2, &m->v), 0);
    m->r2 = (recver){ .ch = m->ch2, .n = 3 };
    assert_int_equal(sl_spawn(NULL, recv_task, &m->r2, NULL, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(m->r2.rc[0], 0);
    assert_int_equal(m->r2.got[0], 9);
    assert_int_equal(sl_chan_detach(m->ch2, t, SL_CHAN_SENDER), 0);
    SL_YIELD(t);
    assert_int_equal(m->r2.rc[1], -EPIPE);
    assert_int_equal(sl_chan_free(t, m->ch2), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_receiver_gone_fails_senders(void **s)
{
    (void)s;
    setup_rt();
    ends_st m = { 0 };
    assert_int_equal(rt_run(rt, ends_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- leftover elements ------------------------------------------------------------------ */

static int destroyed;

/* ptr_free receives the element's value: the pointer itself */
static void free_elem(void *p)
{
    destroyed++;
    free(p);
}

typedef struct left_st {
    sl_chan *ch;
    int *p;
} left_st;

static int left_main(sl_task *t, void *arg)
{
    left_st *m = arg;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int *), 8, &(sl_chan_opts){ .ptr_free = free_elem }), 0);
    for (int i = 0; i < 6; i++) {
        m->p = malloc(sizeof *m->p);
        *m->p = i;
        assert_int_equal(sl_chan_try_send(t, m->ch, &m->p), 0);
    }
    /* one taken out is the receiver's to free, not the destructor's */
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->p), 0);
    assert_int_equal(*m->p, 0);
    free(m->p);
    assert_int_equal(sl_chan_close(t, m->ch), 0);
    assert_int_equal(destroyed, 0);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(destroyed, 5);
    sl_runtime_stop(rt);
    return 0;
}

static void test_leftovers_destroyed_once(void **s)
{
    (void)s;
    setup_rt();
    destroyed = 0;
    left_st m = { 0 };
    assert_int_equal(rt_run(rt, left_main, &m), 0);
    assert_int_equal(destroyed, 5);
    assert_int_equal(cap.count, 0);
}

/* The natural hook for a channel of pointers is plain free (issue 18: with
 * the old elem_free, which got the slot's address, it freed the ring and
 * aborted). ASan's leak check would see any buffer left behind. */
typedef struct plain_st {
    sl_chan *ch, *ch2;
    char *p;
    int i;
} plain_st;

static int plain_main(sl_task *t, void *arg)
{
    plain_st *m = arg;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(char *), 4, &(sl_chan_opts){ .ptr_free = free }), 0);
    for (m->i = 0; m->i < 3; m->i++) {
        m->p = strdup("leftover");
        assert_non_null(m->p);
        assert_int_equal(sl_chan_try_send(t, m->ch, &m->p), 0);
    }
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    /* a leaked channel's leftovers go the same way at teardown */
    assert_int_equal(sl_chan_new(&m->ch2, sizeof(char *), 2, &(sl_chan_opts){ .name = "leaked", .ptr_free = free }), 0);
    m->p = strdup("leaked");
    assert_int_equal(sl_chan_try_send(t, m->ch2, &m->p), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_ptr_free_is_plain_free(void **s)
{
    (void)s;
    setup_rt();
    plain_st m = { 0 };
    assert_int_equal(rt_run(rt, plain_main, &m), 1);   /* the leaked channel */
    assert_non_null(strstr(cap.text, "channel 'leaked'"));
}

/* elem_drop gets the element in the ring, for elements that own something. */
typedef struct owner { int id; char *buf; } owner;
static int dropped_ids;

static void drop_owner(sl_chan *ch, void *elem)
{
    owner *o = elem;
    assert_non_null(ch);
    assert_string_equal(o->buf, "owned");
    dropped_ids += o->id;
    free(o->buf);
}

static int drop_main(sl_task *t, void *arg)
{
    sl_chan **ch = arg;
    assert_int_equal(sl_chan_new(ch, sizeof(owner), 4, &(sl_chan_opts){ .elem_drop = drop_owner }), 0);
    for (int i = 1; i <= 3; i++) {
        owner o = { i, strdup("owned") };
        assert_int_equal(sl_chan_try_send(t, *ch, &o), 0);
    }
    assert_int_equal(sl_chan_free(t, *ch), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_elem_drop_gets_the_slot(void **s)
{
    (void)s;
    setup_rt();
    dropped_ids = 0;
    sl_chan *ch = NULL;
    assert_int_equal(rt_run(rt, drop_main, &ch), 0);
    assert_int_equal(dropped_ids, 1 + 2 + 3);
}

/* The hooks that cannot be right are refused. */
static int bad_hooks_main(sl_task *t, void *arg)
{
    sl_chan *ch = NULL;
    (void)t;
    (void)arg;
    /* ptr_free on elements that are not pointers */
    assert_int_equal(sl_chan_new(&ch, sizeof(int), 4, &(sl_chan_opts){ .ptr_free = free }), -EINVAL);
    assert_int_equal(sl_chan_new(&ch, 2 * sizeof(void *), 4, &(sl_chan_opts){ .ptr_free = free }), -EINVAL);
    /* both hooks */
    assert_int_equal(sl_chan_new(&ch, sizeof(void *), 4,
                                 &(sl_chan_opts){ .ptr_free = free, .elem_drop = drop_owner }), -EINVAL);
    /* free forced into elem_drop's type: it would free the ring's slot */
    assert_int_equal(sl_chan_new(&ch, sizeof(void *), 4,
                                 &(sl_chan_opts){ .elem_drop = (void (*)(sl_chan *, void *))(void (*)(void))free }),
                     -EINVAL);
    assert_null(ch);
    sl_runtime_stop(rt);
    return 0;
}

static void test_bad_elem_hooks_refused(void **s)
{
    (void)s;
    setup_rt();
    assert_int_equal(rt_run(rt, bad_hooks_main, NULL), 0);
}

/* ---- watermarks ------------------------------------------------------------------------ */

static int highs, lows;

static void on_pressure(sl_chan *ch, bool high, void *arg)
{
    (void)ch;
    assert_ptr_equal(arg, &highs);
    if (high)
        highs++;
    else
        lows++;
}

static int wm_main(sl_task *t, void *arg)
{
    sl_chan *ch;
    int v = 0;
    (void)arg;
    sl_chan_opts o = { .high = 8, .low = 2, .on_pressure = on_pressure, .pressure_arg = &highs };
    assert_int_equal(sl_chan_new(&ch, sizeof(int), 10, &o), 0);
    for (int round = 1; round <= 3; round++) {
        for (int i = 0; i < 10; i++)
            assert_int_equal(sl_chan_try_send(t, ch, &v), 0);
        assert_int_equal(highs, round);        /* once, at 8, not at 9 and 10 */
        assert_int_equal(lows, round - 1);
        for (int i = 0; i < 5; i++)
            assert_int_equal(sl_chan_try_recv(t, ch, &v), 0);
        assert_int_equal(lows, round - 1);     /* 5 is above low */
        for (int i = 0; i < 3; i++)
            assert_int_equal(sl_chan_try_send(t, ch, &v), 0);
        assert_int_equal(highs, round);        /* back to 8, still pressured */
        for (int i = 0; i < 8; i++)
            assert_int_equal(sl_chan_try_recv(t, ch, &v), 0);
        assert_int_equal(lows, round);         /* crossed 2 once */
        while (sl_chan_try_recv(t, ch, &v) == 0)
            ;
        assert_int_equal(lows, round);
    }
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    assert_false(st.pressured);
    assert_int_equal(st.high, 8);
    assert_int_equal(st.low, 2);
    /* set after creation: already above the new mark, the callback runs at once */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sl_chan_try_send(t, ch, &v), 0);
    highs = lows = 0;
    assert_int_equal(sl_chan_set_pressure(ch, 0, 0, on_pressure, &highs), -EINVAL);
    assert_int_equal(sl_chan_set_pressure(ch, 3, 4, on_pressure, &highs), -EINVAL);
    assert_int_equal(sl_chan_set_pressure(ch, 4, 1, on_pressure, &highs), 0);
    assert_int_equal(highs, 1);
    while (sl_chan_try_recv(t, ch, &v) == 0)
        ;
    assert_int_equal(lows, 1);
    assert_int_equal(sl_chan_set_pressure(ch, 0, 0, NULL, NULL), 0);   /* removed */
    for (int i = 0; i < 10; i++)
        assert_int_equal(sl_chan_try_send(t, ch, &v), 0);
    assert_int_equal(highs, 1);
    assert_int_equal(sl_chan_free(t, ch), 0);
    sl_runtime_stop(rt);
    return 0;
}

static void test_watermarks(void **s)
{
    (void)s;
    setup_rt();
    highs = lows = 0;
    assert_int_equal(rt_run(rt, wm_main, NULL), 0);
}

/* ---- bad arguments, _mem twin ------------------------------------------------------------ */

static int args_main(sl_task *t, void *arg)
{
    sl_chan *ch = NULL;
    (void)arg;
    assert_int_equal(sl_chan_new(&ch, 0, 4, NULL), -EINVAL);
    assert_int_equal(sl_chan_new(&ch, 65537, 4, NULL), -EINVAL);
    assert_int_equal(sl_chan_new(&ch, 8, SIZE_MAX / 4, NULL), -EINVAL);
    assert_int_equal(sl_chan_new(&ch, 4, 4, &(sl_chan_opts){ .high = 2, .low = 3 }), -EINVAL);
    assert_null(ch);
    /* caller's storage: nothing allocated */
    sl_chan mem;
    int ring[4], v = 3, got = 0;
    assert_int_equal(sl_chan_mem(&mem, NULL, sizeof(int), 4, NULL), -EINVAL);
    assert_int_equal(sl_chan_mem(&mem, ring, sizeof(int), 4, NULL), 0);
    assert_int_equal(sl_chan_try_send(t, &mem, &v), 0);
    assert_int_equal(sl_chan_len(&mem), 1);
    assert_int_equal(sl_chan_cap(&mem), 4);
    assert_int_equal(sl_chan_try_recv(t, &mem, &got), 0);
    assert_int_equal(got, 3);
    assert_int_equal(sl_chan_free(t, &mem), 0);
    assert_int_equal(sl_chan_free(t, &mem), -EALREADY);
    assert_int_equal(sl_chan_send(t, &mem, &v), -EPIPE);
    sl_runtime_stop(rt);
    return 0;
}

static void test_bad_args_and_mem(void **s)
{
    (void)s;
    setup_rt();
    assert_int_equal(rt_run(rt, args_main, NULL), 0);
    assert_int_equal(cap.count, 2);
    assert_non_null(strstr(cap.text, "second free"));
    assert_non_null(strstr(cap.text, "send on freed channel"));
}

/* A task holding an end of a _mem channel outlives its free: its holds are
 * released when it ends (sl_chan_detach). They named the channel, whose
 * storage is the caller's once sl_chan_free returns (freed here right
 * after it: AddressSanitizer reported heap-use-after-free in
 * sl_chan_detach at the task's end). A _mem channel's free drops its
 * holds. */
static int mem_holds_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_chan *ch = malloc(sizeof *ch);
    int *ring = malloc(4 * sizeof *ring);
    assert_non_null(ch);
    assert_non_null(ring);
    assert_int_equal(sl_chan_mem(ch, ring, sizeof(int), 4, NULL), 0);
    assert_int_equal(sl_chan_attach(ch, t, SL_CHAN_RECEIVER), 0);   /* this task holds one too */
    assert_int_equal(sl_chan_attach(ch, NULL, SL_CHAN_SENDER), 0);  /* and non-task code */
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    assert_int_equal(st.senders, 1);
    assert_int_equal(sl_chan_free(t, ch), 0);
    memset(ch, 0xa5, sizeof *ch);   /* the caller's again */
    free(ch);
    free(ring);
    sl_runtime_stop(rt);
    return 0;   /* ends: its holds are released */
}

static void test_mem_free_drops_holds(void **s)
{
    (void)s;
    setup_rt();
    assert_int_equal(rt_run(rt, mem_holds_main, NULL), 0);
    assert_int_equal(cap.count, 0);
}

static void test_no_reactor(void **s)
{
    (void)s;
    sl_chan *ch;
    assert_int_equal(sl_chan_new(&ch, 4, 4, NULL), -EINVAL);
}

/* ---- deadline and cancel wake parked senders and receivers ------------------------------------ */

typedef struct dl_st {
    sl_chan *full, *empty;
    recver r[5];
    sender s[5];
    recver rc_;
    sender sc_;
    sl_task *rct, *sct;
    int v;
    uint64_t start;
} dl_st;

static int dl_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&m->empty, sizeof(int), 0, NULL), 0);
    assert_int_equal(sl_chan_new(&m->full, sizeof(int), 0, NULL), 0);
    m->start = sl_now_ns();
    for (int i = 0; i < 5; i++) {
        uint64_t dl = m->start + (uint64_t)(20 + 10 * i) * SL_NS_PER_MS;
        m->r[i] = (recver){ .ch = m->empty, .n = 1, .deadline = dl };
        m->s[i] = (sender){ .ch = m->full, .n = 1, .deadline = dl };
        assert_int_equal(sl_spawn(NULL, recv_task, &m->r[i], NULL, &(sl_spawn_opts){ .joinable = true }), 0);
        assert_int_equal(sl_spawn(NULL, send_task, &m->s[i], NULL, NULL), 0);
    }
    /* and two with no deadline, to be cancelled */
    m->rc_ = (recver){ .ch = m->empty, .n = 1 };
    m->sc_ = (sender){ .ch = m->full, .n = 1 };
    assert_int_equal(sl_spawn(NULL, recv_task, &m->rc_, &m->rct, NULL), 0);
    assert_int_equal(sl_spawn(NULL, send_task, &m->sc_, &m->sct, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(sl_task_cancel(m->rct, 0), 0);
    assert_int_equal(sl_task_cancel(m->sct, -ESHUTDOWN), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc_.rc[0], -ECANCELED);
    assert_int_equal(m->sc_.rc[0], -ESHUTDOWN);
    SL_AWAIT(t, m->v, sl_sleep(t, 200 * SL_NS_PER_MS));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(m->r[i].rc[0], -ETIMEDOUT);
        assert_int_equal(m->s[i].rc[0], -ETIMEDOUT);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_deadline_and_cancel_wake(void **s)
{
    (void)s;
    setup_rt();
    dl_st m = { 0 };
    /* leaked on purpose, and each reported and freed at shutdown: the two
     * channels, and the five joinable receivers that were never joined */
    int leaks = rt_run(rt, dl_main, &m);
    assert_int_equal(leaks, 7);
    assert_non_null(strstr(cap.text, "channel '' (made at"));
    assert_non_null(strstr(cap.text, "but was never joined or detached"));
}

/* ---- misuse of a freed channel never touches freed memory ----------------------------------- */

/* A channel nobody attached to is released by its first free; the second
 * free, a close, a send or a receive through the stale pointer must still
 * be an error return and a report (run under ASan or valgrind: before the
 * fix, each of these read the freed header). */
static int freed_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_chan *ch, *held;
    int v = 1;
    sl_case cs[1];
    assert_int_equal(sl_chan_new(&ch, sizeof(int), 4, &(sl_chan_opts){ .name = "gone" }), 0);
    assert_int_equal(sl_chan_try_send(t, ch, &v), 0);
    assert_int_equal(sl_chan_free(t, ch), 0);
    assert_int_equal(sl_chan_free(t, ch), -EALREADY);
    assert_int_equal(sl_chan_close(t, ch), -EALREADY);
    assert_int_equal(sl_chan_send(t, ch, &v), -EPIPE);
    assert_int_equal(sl_chan_recv(t, ch, &v), -EPIPE);
    assert_int_equal(sl_chan_try_send(t, ch, &v), -EPIPE);
    assert_int_equal(sl_chan_try_recv(t, ch, &v), -EPIPE);
    assert_int_equal(sl_chan_try_send(NULL, ch, &v), -EPIPE);
    assert_int_equal(sl_chan_attach(ch, t, SL_CHAN_SENDER), -EPIPE);
    assert_int_equal(sl_chan_detach(ch, t, SL_CHAN_SENDER), -ENOENT);
    cs[0] = (sl_case){ .ch = ch, .op = SL_RECV, .buf = &v };
    assert_int_equal(sl_select(t, cs, 1, SL_SELECT_DEFAULT), -EINVAL);
    /* freed while an end is held: the memory goes with the last end, and a
     * later misuse is still caught */
    assert_int_equal(sl_chan_new(&held, sizeof(int), 0, &(sl_chan_opts){ .name = "held" }), 0);
    assert_int_equal(sl_chan_attach(held, t, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_free(t, held), 0);
    assert_int_equal(sl_chan_detach(held, t, SL_CHAN_RECEIVER), 0);
    assert_int_equal(sl_chan_free(t, held), -EALREADY);
    assert_int_equal(sl_chan_send(t, held, &v), -EPIPE);
    sl_runtime_stop(rt);
    return 0;
}

static void test_freed_channel_misuse(void **s)
{
    (void)s;
    setup_rt();
    assert_int_equal(rt_run(rt, freed_main, NULL), 0);
    assert_non_null(strstr(cap.text, "second free of channel 'gone'"));
    assert_non_null(strstr(cap.text, "close of freed channel 'gone'"));
    assert_non_null(strstr(cap.text, "send on freed channel 'gone'"));
    assert_non_null(strstr(cap.text, "second free of channel 'held'"));
}


/* ---- an ended owner passes nothing on (issue 17) ----------------------------------------- */

/* A channel's owner was kept as a bare pointer: a task that ended owning
 * the channel left it, and the next task made at the same address passed
 * as the owner and could close, give and free the channel (no -EPERM, no
 * misuse report). The allocator reuses a task's memory at once (glibc's
 * tcache), and sl_spawn_mem reuses it by construction. Now the owner is
 * (pointer, task id), ids are never reused, and an ended owner leaves the
 * channel to nobody: a leak, reported at shutdown (sl_chan.h, OWNERSHIP). */
typedef struct heir_st {
    sl_chan *ch;
    sl_task mem;        /* sl_spawn_mem: one storage, two tasks in turn */
    sl_task *first;     /* the owner, ended */
    sl_task *cand;
    int rc[3], res, tries;
    bool hit, ran;
} heir_st;

static int heir_maker(sl_task *t, void *arg)
{
    heir_st *m = arg;
    m->first = t;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, &(sl_chan_opts){ .name = "orphan" }), 0);
    return 0;   /* ends owning it */
}

/* Tries the owner's rights if it landed where the owner was. */
static int heir_try(sl_task *t, void *arg)
{
    heir_st *m = arg;
    m->ran = true;
    if (t != m->first)
        return 0;
    m->hit = true;
    m->rc[0] = sl_chan_close(t, m->ch);
    m->rc[1] = sl_chan_give(m->ch, t, NULL);
    m->rc[2] = sl_chan_free(t, m->ch);
    return 0;
}

/* the heap: tasks are made (and ended) until one lands at the owner's
 * address, at most 256 of them */
static int heir_heap_main(sl_task *t, void *arg)
{
    heir_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_spawn(NULL, heir_maker, m, &m->cand, &(sl_spawn_opts){ .name = "maker", .joinable = true }), 0);
    SL_AWAIT(t, m->res, sl_task_join(t, m->cand, &m->res));   /* ended and freed */
    assert_non_null(m->ch);
    for (m->tries = 0; m->tries < 256 && !m->hit; m->tries++) {
        assert_int_equal(sl_spawn(NULL, heir_try, m, &m->cand, &(sl_spawn_opts){ .name = "heir", .joinable = true }), 0);
        SL_AWAIT(t, m->res, sl_task_join(t, m->cand, &m->res));
        assert_int_equal(m->res, 0);
    }
    sl_runtime_stop(rt);
    SL_END(t);
}

static void heir_check(const heir_st *m, int leaks)
{
    assert_true(m->hit);   /* a task did land at the ended owner's address */
    assert_int_equal(m->rc[0], -EPERM);
    assert_int_equal(m->rc[1], -EPERM);
    assert_int_equal(m->rc[2], -EPERM);
    assert_non_null(strstr(cap.text, "close of channel 'orphan'"));
    assert_non_null(strstr(cap.text, "free of channel 'orphan'"));
    assert_non_null(strstr(cap.text, "by task 'heir', which does not own it (its owner is no live task here: ended without giving it on)"));
    /* nobody may free it now: left to shutdown, which reports it */
    assert_int_equal(leaks, 1);
    assert_non_null(strstr(cap.text, "leak: channel 'orphan'"));
}

static void test_ended_owner_heap_reuse(void **s)
{
    (void)s;
#if defined(__SANITIZE_ADDRESS__)
#define HEIR_NO_REUSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)   /* clang */
#define HEIR_NO_REUSE 1
#endif
#endif
#ifdef HEIR_NO_REUSE
    skip();   /* ASan's quarantine keeps freed tasks' memory from reuse: the _mem test covers it */
#endif
    setup_rt();
    heir_st m = { 0 };
    heir_check(&m, rt_run(rt, heir_heap_main, &m));
}

/* the caller's storage: the same address by construction */
static int heir_mem_main(sl_task *t, void *arg)
{
    heir_st *m = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_spawn_mem(NULL, heir_maker, m, &m->mem, &(sl_spawn_opts){ .name = "maker" }), 0);
    while (!m->first)   /* ready before us: one yield */
        SL_YIELD(t);
    assert_int_equal(sl_spawn_mem(NULL, heir_try, m, &m->mem, &(sl_spawn_opts){ .name = "heir" }), 0);
    while (!m->ran)
        SL_YIELD(t);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_ended_owner_mem_reuse(void **s)
{
    (void)s;
    setup_rt();
    heir_st m = { 0 };
    heir_check(&m, rt_run(rt, heir_mem_main, &m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_rendezvous),
        cmocka_unit_test(test_send_parked_time),
        cmocka_unit_test(test_close_wakes_all),
        cmocka_unit_test(test_close_by_non_owner),
        cmocka_unit_test(test_receiver_gone_fails_senders),
        cmocka_unit_test(test_leftovers_destroyed_once),
        cmocka_unit_test(test_ptr_free_is_plain_free),
        cmocka_unit_test(test_elem_drop_gets_the_slot),
        cmocka_unit_test(test_bad_elem_hooks_refused),
        cmocka_unit_test(test_watermarks),
        cmocka_unit_test(test_bad_args_and_mem),
        cmocka_unit_test(test_mem_free_drops_holds),
        cmocka_unit_test(test_freed_channel_misuse),
        cmocka_unit_test(test_ended_owner_heap_reuse),
        cmocka_unit_test(test_ended_owner_mem_reuse),
        cmocka_unit_test(test_no_reactor),
        cmocka_unit_test(test_deadline_and_cancel_wake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
