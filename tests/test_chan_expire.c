/* test_chan_expire.c: elements sent with a deadline (sl_chan_send_until,
 * issue 20): never received once expired, destroyed and counted once each,
 * their slot free again, also when they expire on their way from another
 * reactor. Deterministic: a deadline is made to pass by sleeping until it
 * (the clock itself, no other thread), or is in the past already. */
#include <stdatomic.h>
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

/* what the hooks saw: each element's value, once per call */
static int dropped[64], ndropped;
static int expired_seen[64], nexpired_seen;
static _Atomic int adropped, aexpired;   /* the cross-reactor test's */

static void drop_int(sl_chan *ch, void *elem)
{
    (void)ch;
    int v;
    memcpy(&v, elem, sizeof v);
    if (ndropped < 64)
        dropped[ndropped] = v;
    ndropped++;
    atomic_fetch_add(&adropped, 1);
}

static void on_expire(sl_chan *ch, void *elem, void *arg)
{
    (void)ch;
    int v;
    memcpy(&v, elem, sizeof v);
    if (nexpired_seen < 64)
        expired_seen[nexpired_seen] = v;
    nexpired_seen++;
    atomic_fetch_add(&aexpired, 1);
    (*(int *)arg)++;
}

static int hook_calls;

static void reset(void)
{
    memset(&cap, 0, sizeof cap);
    ndropped = nexpired_seen = hook_calls = 0;
    atomic_store(&adropped, 0);
    atomic_store(&aexpired, 0);
}

/* Runs fn(state) as the first task of a new runtime of `threads`
 * reactors, the counters reset first, and checks that nothing leaked and
 * nothing was reported. */
static void run_clean(int threads, sl_step_fn fn, void *state)
{
    reset();
    rt = rt_new(threads, &cap);
    assert_int_equal(rt_run(rt, fn, state), 0);
    assert_int_equal(cap.count, 0);
}

static sl_chan_opts expiring_opts(void)
{
    return (sl_chan_opts){ .name = "work", .expiring = true, .elem_drop = drop_int,
                           .on_expire = on_expire, .expire_arg = &hook_calls };
}

/* ---- never received, destroyed and counted once --------------------------- */

typedef struct basic_st {
    sl_chan *ch;
    int v, got, rc;
    uint64_t soon;
} basic_st;

static int basic_main(sl_task *t, void *arg)
{
    basic_st *m = arg;
    SL_BEGIN(t);
    sl_chan_opts o = expiring_opts();
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 8, &o), 0);
    m->soon = sl_deadline_ms(5);
    uint64_t later = sl_deadline_ms(600000);
    m->v = 1;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    m->v = 2;
    assert_int_equal(sl_chan_send(t, m->ch, &m->v), 0);
    m->v = 3;
    assert_int_equal(sl_chan_try_send_until(t, m->ch, &m->v, m->soon), 0);
    m->v = 4;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, later), 0);
    m->v = 5;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    assert_int_equal(sl_chan_len(m->ch), 5);
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));   /* 1, 3 and 5 expire */
    assert_int_equal(m->rc, 0);
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 0);   /* nothing reached them yet */
    assert_int_equal(st.len, 5);
    assert_int_equal(sl_chan_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 2);
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 4);
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), -EAGAIN);   /* 5 expired: nothing */
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 3);
    assert_int_equal(st.len, 0);
    assert_int_equal(st.sent, 5);
    assert_int_equal(st.received, 2);
    assert_int_equal(st.high_water, 5);
    /* each expired element: on_expire once, then its destructor once */
    assert_int_equal(nexpired_seen, 3);
    assert_int_equal(hook_calls, 3);
    assert_int_equal(ndropped, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(expired_seen[i], 2 * i + 1);
        assert_int_equal(dropped[i], 2 * i + 1);
    }
    /* a deadline behind the clock but not behind the reactor's (read at
     * the start of this batch of steps): accepted, never received */
    m->v = 9;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, sl_now_ns()), 0);
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), -EAGAIN);
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 4);
    assert_int_equal(ndropped, 4);
    assert_int_equal(dropped[3], 9);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(ndropped, 4);   /* nothing left to destroy */
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_expired_never_received(void **s)
{
    (void)s;
    basic_st m = { 0 };
    run_clean(1, basic_main, &m);
}

/* ---- bad input ------------------------------------------------------------------ */

typedef struct bad_st {
    sl_chan *plain, *ex, mem;
    uint64_t dls[4];
    int buf[4], v;
} bad_st;

static int bad_main(sl_task *t, void *arg)
{
    bad_st *m = arg;
    SL_BEGIN(t);
    sl_chan *x = NULL;
    /* on_expire without expiring; deadlines outside the _mem twin; a _mem
     * channel that is expiring without its deadlines */
    assert_int_equal(sl_chan_new(&x, sizeof(int), 4, &(sl_chan_opts){ .on_expire = on_expire }), -EINVAL);
    assert_int_equal(sl_chan_new(&x, sizeof(int), 4, &(sl_chan_opts){ .deadlines = m->dls }), -EINVAL);
    assert_int_equal(sl_chan_mem(&m->mem, m->buf, sizeof(int), 4, &(sl_chan_opts){ .expiring = true }), -EINVAL);
    assert_null(x);

    assert_int_equal(sl_chan_new(&m->plain, sizeof(int), 4, NULL), 0);
    m->v = 7;
    assert_int_equal(sl_chan_send_until(t, m->plain, &m->v, sl_deadline_ms(1000)), -EINVAL);
    assert_int_equal(sl_chan_try_send_until(t, m->plain, &m->v, sl_deadline_ms(1000)), -EINVAL);
    assert_int_equal(sl_chan_send_until(t, m->plain, &m->v, 0), 0);   /* 0: a plain send */
    assert_int_equal(sl_chan_len(m->plain), 1);
    assert_int_equal(sl_chan_free(t, m->plain), 0);

    /* the _mem twin: its deadlines are the caller's */
    sl_chan_opts o = expiring_opts();
    o.expiring = false;
    o.deadlines = m->dls;
    assert_int_equal(sl_chan_mem(&m->mem, m->buf, sizeof(int), 4, &o), 0);
    /* a deadline passed already: refused, nothing sent, nothing destroyed */
    assert_int_equal(sl_chan_send_until(t, &m->mem, &m->v, sl_now_coarse_ns() - SL_NS_PER_S), -ETIMEDOUT);
    assert_int_equal(sl_chan_try_send_until(t, &m->mem, &m->v, 1), -ETIMEDOUT);
    assert_int_equal(sl_chan_len(&m->mem), 0);
    assert_int_equal(ndropped, 0);
    sl_chan_stats st;
    sl_chan_stats_get(&m->mem, &st);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.expired, 0);
    uint64_t d = sl_deadline_ms(600000);
    assert_int_equal(sl_chan_send_until(t, &m->mem, &m->v, d), 0);
    assert_true(m->dls[0] == d);   /* the first slot's deadline, in the caller's array */
    assert_int_equal(sl_chan_free(t, &m->mem), 0);
    assert_int_equal(ndropped, 1);   /* a live leftover: destroyed by the free, not expired */
    assert_int_equal(nexpired_seen, 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_bad_input(void **s)
{
    (void)s;
    bad_st m = { 0 };
    run_clean(1, bad_main, &m);
}

/* ---- capacity and watermarks: an expired element frees its slot ---------------- */

static int pressure[8], npressure;

static void on_pressure(sl_chan *ch, bool high, void *arg)
{
    (void)ch;
    (void)arg;
    if (npressure < 8)
        pressure[npressure] = high;
    npressure++;
}

typedef struct cap_st {
    sl_chan *ch;
    int v, got, rc;
    uint64_t soon;
} cap_st;

static int cap_main(sl_task *t, void *arg)
{
    cap_st *m = arg;
    SL_BEGIN(t);
    sl_chan_opts o = expiring_opts();
    o.high = 3;
    o.low = 1;
    o.on_pressure = on_pressure;
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 3, &o), 0);
    m->soon = sl_deadline_ms(5);
    /* full: 10 (lives), 11 and 12 (expire) */
    m->v = 10;
    assert_int_equal(sl_chan_send(t, m->ch, &m->v), 0);
    m->v = 11;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    m->v = 12;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    assert_int_equal(npressure, 1);
    assert_int_equal(pressure[0], 1);
    m->v = 13;
    assert_int_equal(sl_chan_try_send(t, m->ch, &m->v), -EAGAIN);   /* full, none expired */
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));
    /* full of which two expired: a send sweeps them and takes a slot */
    m->v = 13;
    assert_int_equal(sl_chan_try_send(t, m->ch, &m->v), 0);
    assert_int_equal(sl_chan_len(m->ch), 2);
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(ndropped, 2);
    /* the sweep brought the length to 1 (<= low): pressure went off once */
    assert_int_equal(npressure, 2);
    assert_int_equal(pressure[1], 0);
    assert_false(st.pressured);
    m->v = 14;
    assert_int_equal(sl_chan_try_send(t, m->ch, &m->v), 0);
    m->v = 15;
    assert_int_equal(sl_chan_try_send(t, m->ch, &m->v), -EAGAIN);   /* the capacity holds */
    for (int want = 10; want <= 14; want += want == 10 ? 3 : 1) {
        assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), 0);
        assert_int_equal(m->got, want);   /* order kept across the sweep */
    }
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), -EAGAIN);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(ndropped, 2);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_capacity_and_watermarks(void **s)
{
    (void)s;
    npressure = 0;
    cap_st m = { 0 };
    run_clean(1, cap_main, &m);
}

/* ---- parked senders: theirs until taken ------------------------------------------- */

typedef struct psend {
    sl_chan *ch;
    int v, rc, done;
    uint64_t until;
} psend;

static int psend_task(sl_task *t, void *arg)
{
    psend *p = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, p->rc, sl_chan_send_until(t, p->ch, &p->v, p->until));
    p->done = 1;
    SL_END(t);
}

typedef struct park_st {
    sl_chan *rv, *ch;
    psend a, b;
    int got, rc;
    uint64_t soon;
} park_st;

static int park_main(sl_task *t, void *arg)
{
    park_st *m = arg;
    SL_BEGIN(t);
    sl_chan_opts o = expiring_opts();
    assert_int_equal(sl_chan_new(&m->rv, sizeof(int), 0, &o), 0);   /* rendezvous */
    /* 50 ms: long enough that the sender runs before its deadline on a
     * loaded machine; if it did not, it cannot have parked, and whether
     * it did is not asked (only while the deadline is ahead is done == 0
     * owed: no receiver, no expiry yet) */
    m->soon = sl_deadline_ms(50);
    m->a = (psend){ .ch = m->rv, .v = 21, .until = m->soon };
    assert_int_equal(sl_spawn(NULL, psend_task, &m->a, NULL, NULL), 0);
    SL_YIELD(t);   /* it parks */
    if (sl_now_ns() < m->soon)
        assert_int_equal(m->a.done, 0);
    else
        fprintf(stderr, "test_parked_sender: the sender ran past its deadline (load); its park not checked\n");
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));
    /* its wait ended at the element's deadline, or the receive finds it
     * expired: either way nothing is received and the sender keeps it */
    assert_int_equal(sl_chan_try_recv(t, m->rv, &m->got), -EAGAIN);
    SL_YIELD(t);
    assert_int_equal(m->a.done, 1);
    assert_int_equal(m->a.rc, -ETIMEDOUT);
    assert_int_equal(ndropped, 0);   /* never the channel's: not destroyed */
    sl_chan_stats st;
    sl_chan_stats_get(m->rv, &st);
    assert_int_equal(st.expired, 0);
    assert_int_equal(st.sent, 0);

    /* a sender parked on a full channel moves in when a receive drops the
     * expired head */
    o = expiring_opts();   /* locals do not survive a wait */
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, &o), 0);
    m->soon = sl_deadline_ms(50);
    m->got = 30;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->got, m->soon), 0);
    m->b = (psend){ .ch = m->ch, .v = 31, .until = sl_deadline_ms(600000) };
    assert_int_equal(sl_spawn(NULL, psend_task, &m->b, NULL, NULL), 0);
    SL_YIELD(t);
    if (sl_now_ns() < m->soon)   /* the head not yet expired: it waits */
        assert_int_equal(m->b.done, 0);
    else
        fprintf(stderr, "test_parked_sender: the head expired before the sender ran (load); its park not checked\n");
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));
    assert_int_equal(sl_chan_try_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 31);
    SL_YIELD(t);
    assert_int_equal(m->b.done, 1);
    assert_int_equal(m->b.rc, 0);
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(ndropped, 1);
    assert_int_equal(dropped[0], 30);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(sl_chan_free(t, m->rv), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_parked_sender(void **s)
{
    (void)s;
    park_st m = { 0 };
    run_clean(1, park_main, &m);
}

/* ---- close, and select ------------------------------------------------------------ */

typedef struct close_st {
    sl_chan *ch, *other;
    int v, got, rc;
    uint64_t soon;
    sl_case cases[2];
} close_st;

static int close_main(sl_task *t, void *arg)
{
    close_st *m = arg;
    SL_BEGIN(t);
    sl_chan_opts o = expiring_opts();
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 4, &o), 0);
    assert_int_equal(sl_chan_new(&m->other, sizeof(int), 4, NULL), 0);
    m->soon = sl_deadline_ms(5);
    m->v = 40;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));
    /* a select does not choose a case whose only element expired */
    m->cases[0] = (sl_case){ .ch = m->ch, .op = SL_RECV, .buf = &m->got };
    m->cases[1] = (sl_case){ .ch = m->other, .op = SL_RECV, .buf = &m->got };
    assert_int_equal(sl_select(t, m->cases, 2, SL_SELECT_DEFAULT), -EAGAIN);
    assert_int_equal(ndropped, 1);
    m->v = 41;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, sl_deadline_ms(5)), 0);
    m->v = 42;
    assert_int_equal(sl_chan_send(t, m->ch, &m->v), 0);
    m->soon = sl_deadline_ms(5);
    m->v = 43;
    assert_int_equal(sl_chan_send_until(t, m->ch, &m->v, m->soon), 0);
    assert_int_equal(sl_chan_close(t, m->ch), 0);
    SL_AWAIT(t, m->rc, sl_sleep_until(t, m->soon));
    /* closed with expired elements inside: the live one, then -EPIPE */
    assert_int_equal(sl_chan_recv(t, m->ch, &m->got), 0);
    assert_int_equal(m->got, 42);
    assert_int_equal(sl_chan_recv(t, m->ch, &m->got), -EPIPE);
    sl_chan_stats st;
    sl_chan_stats_get(m->ch, &st);
    assert_int_equal(st.expired, 3);
    assert_int_equal(ndropped, 3);
    assert_int_equal(nexpired_seen, 3);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(ndropped, 3);
    assert_int_equal(sl_chan_free(t, m->other), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_close_and_select(void **s)
{
    (void)s;
    close_st m = { 0 };
    run_clean(1, close_main, &m);
}

/* ---- across reactors: expired on its way, and while waiting for credit ----------- */

static struct xr {
    sl_chan *ch;
    int v, got, rc, i;
    int sv[3], src, si;             /* the sender's */
    _Atomic int remote_rc[3], remote_done, full;
} X;

/* on reactor 1: a first send gets credit (it parks for the grant, which
 * lends the whole free capacity); then, with credit, an element that
 * expires before its batch leaves (the batch goes home when this callback
 * ends), and a live one */
static int x_sender(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    X.sv[0] = 49;
    X.sv[1] = 50;
    X.sv[2] = 51;
    SL_AWAIT(t, X.src, sl_chan_send(t, X.ch, &X.sv[0]));
    assert_int_equal(X.src, 0);
    {
        uint64_t until = sl_now_ns() + 200 * SL_NS_PER_US;
        atomic_store(&X.remote_rc[0], sl_chan_send_until(t, X.ch, &X.sv[1], until));
        while (sl_now_ns() < until)   /* the clock, not another thread: bounded by 200 us */
            ;
        atomic_store(&X.remote_rc[1], sl_chan_send(t, X.ch, &X.sv[2]));
    }
    /* once the home filled the channel, a send that waits for credit ends
     * at its element's deadline, nothing taken */
    TASK_POLL(t, X.src, X.si, 10000, atomic_load(&X.full));
    SL_AWAIT(t, X.src, sl_chan_send_until(t, X.ch, &X.sv[1], sl_deadline_ms(5)));
    atomic_store(&X.remote_rc[2], X.src);
    atomic_store(&X.remote_done, 1);
    SL_END(t);
}

static int x_home(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    sl_chan_opts o = expiring_opts();
    assert_int_equal(sl_chan_new(&X.ch, sizeof(int), 4, &o), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), x_sender, NULL, &(sl_spawn_opts){ .name = "xsend" }), 0);
    sl_task_set_deadline(t, sl_deadline_ms(10000));
    SL_AWAIT(t, X.rc, sl_chan_recv(t, X.ch, &X.got));
    assert_int_equal(X.rc, 0);
    assert_int_equal(X.got, 49);
    /* the live element arrives after the expired one, in the same batch */
    SL_AWAIT(t, X.rc, sl_chan_recv(t, X.ch, &X.got));
    assert_int_equal(X.rc, 0);
    assert_int_equal(X.got, 51);
    assert_int_equal(atomic_load(&X.remote_rc[0]), 0);   /* accepted by credit */
    assert_int_equal(atomic_load(&X.remote_rc[1]), 0);
    sl_chan_stats st;
    sl_chan_stats_get(X.ch, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.len, 0);
    assert_int_equal(atomic_load(&aexpired), 1);
    assert_int_equal(atomic_load(&adropped), 1);
    assert_int_equal(expired_seen[0], 50);
    /* fill it: the remote sender's next send waits for credit. A send, not
     * a try_send: room lent to the sender's reactor stays there until the
     * home calls it back, which a parked send does (core/rsend.c) */
    X.v = 60;
    for (X.i = 0; X.i < 4; X.i++) {
        SL_AWAIT(t, X.rc, sl_chan_send(t, X.ch, &X.v));
        assert_int_equal(X.rc, 0);
    }
    atomic_store(&X.full, 1);
    TASK_POLL(t, X.rc, X.i, 10000, atomic_load(&X.remote_done));
    assert_int_equal(atomic_load(&X.remote_done), 1);
    assert_int_equal(atomic_load(&X.remote_rc[2]), -ETIMEDOUT);
    sl_task_set_deadline(t, 0);
    sl_chan_stats_get(X.ch, &st);
    assert_int_equal(st.len, 4);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.received, 2);
    assert_int_equal(sl_chan_free(t, X.ch), 0);
    assert_int_equal(atomic_load(&adropped), 5);   /* and the four leftovers */
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_across_reactors(void **s)
{
    (void)s;
    memset(&X, 0, sizeof X);
    run_clean(2, x_home, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expired_never_received),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_capacity_and_watermarks),
        cmocka_unit_test(test_parked_sender),
        cmocka_unit_test(test_close_and_select),
        cmocka_unit_test(test_across_reactors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
