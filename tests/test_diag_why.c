/* test_diag_why.c: "why is it not ready" (issue 20 item 4): for a task
 * parked on channels, sl_task_why and sl_task_describe say per channel
 * what it waits for, for each reason. */
#include <sched.h>
#include <stdatomic.h>
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

/* ---- helper tasks ---------------------------------------------------------- */

typedef struct op_st {
    sl_chan *ch, *ch2;
    int v, rc, done;
    uint64_t until;
    sl_case cases[2];
} op_st;

static int recv_task(sl_task *t, void *arg)
{
    op_st *o = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, o->rc, sl_chan_recv(t, o->ch, &o->v));
    o->done = 1;
    SL_END(t);
}

static int send_task(sl_task *t, void *arg)
{
    op_st *o = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, o->rc, sl_chan_send_until(t, o->ch, &o->v, o->until));
    o->done = 1;
    SL_END(t);
}

static int select_task(sl_task *t, void *arg)
{
    op_st *o = arg;
    SL_BEGIN(t);
    o->cases[0] = (sl_case){ .ch = o->ch, .op = SL_RECV, .buf = &o->v };
    o->cases[1] = (sl_case){ .ch = o->ch2, .op = SL_SEND, .buf = &o->v };
    SL_AWAIT(t, o->rc, sl_select(t, o->cases, 2, 0));
    o->done = 1;
    SL_END(t);
}

static int producer_task(sl_task *t, void *arg)
{
    op_st *o = arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_attach(o->ch, t, SL_CHAN_SENDER), 0);
    SL_AWAIT(t, o->rc, sl_sleep(t, 600 * SL_NS_PER_S));   /* until cancelled */
    SL_END(t);
}

/* ---- the reasons, one reactor -------------------------------------------------------- */

enum { EMPTY, FULL, NORECV, NOSEND, SELECT, LENT, PROD, NOPS };

typedef struct why_st {
    sl_chan *ch[8];
    op_st ops[NOPS];
    sl_task *tasks[NOPS];
    int rc, v, res;
    char text[1024];
    uint64_t until;
} why_st;

static void describe_has(sl_task *t, const char *want)
{
    char buf[1024];
    sl_task_describe(t, buf, sizeof buf);
    if (!strstr(buf, want))
        fail_msg("'%s' not in: %s", want, buf);
}

/* A description too long for its buffer is cut as snprintf cuts: the
 * length it would have had returned, what fits written, NUL-terminated,
 * nothing past the buffer (ASan); a NULL buffer of size 0 only measures.
 * Every part is appended this way (the cases, the why, the wait time).
 * The wait time grows between two calls (and may gain a digit), so a
 * length is checked between the full ones taken before and after it. */
static void describe_truncates(sl_task *t)
{
    char full[1024], cut[64];
    int n = sl_task_describe(t, full, sizeof full);
    assert_true(n > 40 && (size_t)n < sizeof full);
    assert_int_equal(strlen(full), (size_t)n);
    for (size_t size = 0; size <= 41; size += size ? 8 : 1) {
        memset(cut, 'x', sizeof cut);
        int k = sl_task_describe(t, size ? cut : NULL, size);
        int after = sl_task_describe(t, full, sizeof full);
        assert_true(k >= n && k <= after);
        n = after;
        if (!size)
            continue;
        assert_int_equal(strlen(cut), size - 1);
        assert_memory_equal(cut, full, size - 1);
        assert_int_equal(cut[size], 'x');   /* not written past */
    }
}

static int why_main(sl_task *t, void *arg)
{
    why_st *m = arg;
    SL_BEGIN(t);
    static const struct { size_t cap; const char *name; } chs[] = {
        { 4, "jobs" }, { 2, "full" }, { 0, "rv-send" }, { 0, "rv-recv" }, { 1, "sel-in" }, { 1, "sel-out" },
        { 4, "lent" },
    };
    for (int i = 0; i < 7; i++)
        assert_int_equal(sl_chan_new(&m->ch[i], sizeof(int), chs[i].cap,
                                     &(sl_chan_opts){ .name = chs[i].name, .expiring = true }), 0);
    m->v = 1;
    assert_int_equal(sl_chan_try_send(t, m->ch[1], &m->v), 0);
    assert_int_equal(sl_chan_try_send(t, m->ch[1], &m->v), 0);
    assert_int_equal(sl_chan_try_send(t, m->ch[5], &m->v), 0);
    assert_int_equal(sl_chan_try_send(t, m->ch[6], &m->v), 0);
    assert_int_equal(sl_chan_try_send(t, m->ch[6], &m->v), 0);
    m->ch[6]->reserved_ = 2;   /* as if two slots were lent to another reactor's senders */
    m->until = sl_deadline_ms(600000);
    m->ops[PROD] = (op_st){ .ch = m->ch[0] };
    m->ops[EMPTY] = (op_st){ .ch = m->ch[0] };
    m->ops[FULL] = (op_st){ .ch = m->ch[1], .until = m->until };
    m->ops[NORECV] = (op_st){ .ch = m->ch[2] };
    m->ops[NOSEND] = (op_st){ .ch = m->ch[3] };
    m->ops[SELECT] = (op_st){ .ch = m->ch[4], .ch2 = m->ch[5] };
    m->ops[LENT] = (op_st){ .ch = m->ch[6] };
    static const sl_step_fn fns[NOPS] = { recv_task, send_task, send_task, recv_task, select_task, send_task,
                                          producer_task };
    static const char *names[NOPS] = { "consumer", "filler", "rv-sender", "rv-receiver", "selector", "borrower",
                                       "producer" };
    for (int i = NOPS - 1; i >= 0; i--)   /* the producer first: it attaches */
        assert_int_equal(sl_spawn(NULL, fns[i], &m->ops[i], &m->tasks[i],
                                  &(sl_spawn_opts){ .name = names[i], .joinable = true }), 0);
    SL_YIELD(t);   /* they all park */
    {
        sl_wait_case w[4];
        for (int i = 0; i < NOPS; i++)
            assert_int_equal(m->ops[i].done, 0);
        /* not on a channel: nothing */
        assert_int_equal(sl_task_why(m->tasks[PROD], w, 4), 0);
        assert_int_equal(sl_task_why(t, w, 4), 0);

        assert_int_equal(sl_task_why(m->tasks[EMPTY], w, 4), 1);
        assert_int_equal(w[0].why, SL_WHY_EMPTY);
        assert_int_equal(w[0].op, SL_RECV);
        assert_string_equal(w[0].chan, "jobs");
        assert_int_equal(w[0].len, 0);
        assert_int_equal(w[0].cap, 4);
        assert_true(w[0].ends);
        assert_int_equal(w[0].peers, 1);
        assert_string_equal(w[0].peer, "producer");
        describe_has(m->tasks[EMPTY], "on recv 'jobs' for ");
        describe_has(m->tasks[EMPTY], " [why: 'jobs' empty 0/4, 1 sender incl. 'producer']");

        assert_int_equal(sl_task_why(m->tasks[FULL], w, 4), 1);
        assert_int_equal(w[0].why, SL_WHY_FULL);
        assert_int_equal(w[0].op, SL_SEND);
        assert_int_equal(w[0].len, 2);
        assert_int_equal(w[0].cap, 2);
        assert_true(w[0].until == m->until);
        assert_false(w[0].ends);
        assert_null(w[0].peer);
        describe_has(m->tasks[FULL], "[why: 'full' full 2/2, element expires in ");

        assert_int_equal(sl_task_why(m->tasks[NORECV], w, 4), 1);
        assert_int_equal(w[0].why, SL_WHY_NO_RECEIVER);
        describe_has(m->tasks[NORECV], "[why: 'rv-send' no receiver 0/0]");
        assert_int_equal(sl_task_why(m->tasks[NOSEND], w, 4), 1);
        assert_int_equal(w[0].why, SL_WHY_NO_SENDER);
        describe_has(m->tasks[NOSEND], "[why: 'rv-recv' no sender 0/0]");

        assert_int_equal(sl_task_why(m->tasks[SELECT], w, 4), 2);
        assert_int_equal(w[0].why, SL_WHY_EMPTY);
        assert_int_equal(w[1].why, SL_WHY_FULL);
        assert_int_equal(w[1].op, SL_SEND);
        assert_string_equal(w[1].chan, "sel-out");
        describe_has(m->tasks[SELECT], "[why: 'sel-in' empty 0/1; 'sel-out' full 1/1]");
        describe_truncates(m->tasks[SELECT]);
        memset(w, 0, sizeof w);
        assert_int_equal(sl_task_why(m->tasks[SELECT], w, 1), 2);   /* only max filled */
        assert_string_equal(w[0].chan, "sel-in");
        assert_null(w[1].chan);

        assert_int_equal(sl_task_why(m->tasks[LENT], w, 4), 1);
        assert_int_equal(w[0].why, SL_WHY_LENT);
        assert_int_equal(w[0].lent, 2);
        describe_has(m->tasks[LENT], "[why: 'lent' full (room lent to other reactors) 2/4, 2 lent]");

        /* ends declared and nobody holds the other one: said */
        assert_int_equal(sl_chan_attach(m->ch[1], NULL, SL_CHAN_SENDER), 0);
        describe_has(m->tasks[FULL], "[why: 'full' full 2/2, no receiver attached, element expires in ");
        assert_int_equal(sl_chan_detach(m->ch[1], NULL, SL_CHAN_SENDER), 0);
        /* a receive on a closed channel with credit out waits for it */
        assert_int_equal(sl_chan_close(t, m->ch[0]), 0);
        assert_int_equal(m->ops[EMPTY].done, 0);   /* no credit out: woken with -EPIPE */
    }
    SL_YIELD(t);
    assert_int_equal(m->ops[EMPTY].done, 1);
    assert_int_equal(m->ops[EMPTY].rc, -EPIPE);
    m->ch[4]->reserved_ = 1;   /* as if one slot were lent */
    assert_int_equal(sl_chan_close(t, m->ch[4]), 0);
    SL_YIELD(t);
    assert_int_equal(m->ops[SELECT].done, 0);
    {
        sl_wait_case w[2];
        assert_int_equal(sl_task_why(m->tasks[SELECT], w, 2), 2);
        assert_int_equal(w[0].why, SL_WHY_CLOSED);
        describe_has(m->tasks[SELECT], "[why: 'sel-in' closed, credit out 0/1, 1 lent; 'sel-out' full 1/1]");
    }
    /* the end */
    m->ch[4]->reserved_ = 0;
    m->ch[6]->reserved_ = 0;
    for (int i = 0; i < NOPS; i++)
        sl_task_cancel(m->tasks[i], -ECANCELED);
    for (m->v = 0; m->v < NOPS; m->v++)
        SL_AWAIT(t, m->rc, sl_task_join(t, m->tasks[m->v], &m->res));
    for (int i = 0; i < 7; i++)
        assert_int_equal(sl_chan_free(t, m->ch[i]), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_reasons(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    why_st m = { 0 };
    assert_int_equal(rt_run(rt, why_main, &m), 0);
    assert_int_equal(cap.count, 0);
}

/* ---- another reactor's channel: a round trip, and credit ---------------------------- */

static struct {
    sl_chan *ch, *empty;
    op_st recv_op, send_op;
    sl_task *r, *s;
    _Atomic int ready, checked;
    sl_wait_case wr, ws;
    int nr, ns, rc, i, res;
    int prc;   /* the probe's own: rc is the home task's (another thread) */
    char text[512];
} R;

static int remote_probe(sl_task *t, void *arg)   /* on reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    R.recv_op = (op_st){ .ch = R.empty };
    R.send_op = (op_st){ .ch = R.ch, .v = 3, .until = sl_deadline_ms(600000) };
    assert_int_equal(sl_spawn(NULL, recv_task, &R.recv_op, &R.r, &(sl_spawn_opts){ .name = "far-recv", .joinable = true }), 0);
    assert_int_equal(sl_spawn(NULL, send_task, &R.send_op, &R.s, &(sl_spawn_opts){ .name = "far-send", .joinable = true }), 0);
    SL_YIELD(t);
    R.nr = sl_task_why(R.r, &R.wr, 1);
    R.ns = sl_task_why(R.s, &R.ws, 1);
    sl_task_describe(R.s, R.text, sizeof R.text);
    atomic_store(&R.checked, 1);
    sl_task_cancel(R.r, -ECANCELED);
    sl_task_cancel(R.s, -ECANCELED);
    SL_AWAIT(t, R.prc, sl_task_join(t, R.r, &R.res));
    SL_AWAIT(t, R.prc, sl_task_join(t, R.s, &R.res));
    atomic_store(&R.ready, 1);
    SL_END(t);
}

static int remote_home(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    /* full: the far sender waits for credit; empty: the far receiver
     * waits for elements to be lent */
    assert_int_equal(sl_chan_new(&R.ch, sizeof(int), 1, &(sl_chan_opts){ .name = "far", .expiring = true }), 0);
    assert_int_equal(sl_chan_new(&R.empty, sizeof(int), 1, &(sl_chan_opts){ .name = "far-empty" }), 0);
    R.i = 9;
    assert_int_equal(sl_chan_try_send(t, R.ch, &R.i), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), remote_probe, NULL, &(sl_spawn_opts){ .name = "probe" }), 0);
    TASK_POLL(t, R.rc, R.i, 10000, atomic_load(&R.ready));
    assert_int_equal(atomic_load(&R.ready), 1);
    assert_int_equal(sl_chan_free(t, R.ch), 0);
    assert_int_equal(sl_chan_free(t, R.empty), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_other_reactor(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    memset(&R, 0, sizeof R);
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run(rt, remote_home, NULL), 0);
    assert_int_equal(atomic_load(&R.checked), 1);
    assert_int_equal(R.nr, 1);
    assert_int_equal(R.wr.why, SL_WHY_REMOTE);
    assert_string_equal(R.wr.chan, "far-empty");
    assert_int_equal(R.wr.op, SL_RECV);   /* fed ahead (core/rrecv.c): waits for a lend */
    assert_int_equal(R.ns, 1);
    assert_int_equal(R.ws.why, SL_WHY_CREDIT);
    assert_int_equal(R.ws.op, SL_SEND);
    assert_int_equal(R.ws.cap, 1);
    assert_true(R.ws.until != 0);
    if (!strstr(R.text, "[why: 'far' waits for credit, element expires in "))
        fail_msg("describe: %s", R.text);
}

/* ---- another reactor's channel, freed while a task here waits on it ---------- */

/* Issue 17: the diagnostics of a task waiting on another reactor's
 * channel (sl_task_why, sl_task_describe, sl_task_info_get: /debug/tasks,
 * the deadlock report) run on the task's own reactor, while the home may
 * free the channel and release its header before the -EPIPE reaches the
 * waiter. They once read the header's name, capacity and home there: a
 * use of freed memory (ASan) and, before that, a race with the home's
 * free (TSan). Each scene parks a task of reactor 1 on reactor 0's channel
 * one way, and reactor 0 frees the channel and then enough others that
 * its header leaves the quarantine (SL_CHAN_QUARANTINE) and really is
 * freed, in one step that posts the description to reactor 1 first: the
 * -EPIPE follows it (a pair of reactors' messages are FIFO), so the waiter
 * is described still parked, with a freed channel. What is described must
 * be what it was when the task parked, read from reactor 1's own memory. */
enum { F_RSEND, F_RRECV, F_SEL_BUF_SEND, F_SEL_BUF_RECV, F_SEL_RV_SEND, F_SEL_RV_RECV, F_TRIP_SEND, F_TRIP_RECV };

#define F_BOUND (20 * SL_NS_PER_S)   /* a generous bound on every wait for the other thread */

static struct {
    int how;
    sl_chan *x;                 /* reactor 0's, freed while the waiter waits on it */
    sl_task *_Atomic w;         /* the waiter (reactor 1) */
    _Atomic int freed, described, w_done;
    sl_case cases[1];
    int v, w_rc, w_err, hrc, i;
    /* what reactor 1 saw, in the message that ran before the -EPIPE */
    int status, nwhy;
    sl_wait_case why[2];
    sl_task_info info;
    char text[512];
} F;

static bool f_send(void) { return F.how == F_RSEND || F.how == F_SEL_BUF_SEND || F.how == F_SEL_RV_SEND || F.how == F_TRIP_SEND; }
static bool f_select(void) { return F.how >= F_SEL_BUF_SEND && F.how <= F_SEL_RV_RECV; }

static int f_waiter(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + F_BOUND);
    atomic_store(&F.w, t);
    F.v = 5;
    if (f_select()) {
        F.cases[0] = (sl_case){ .ch = F.x, .op = f_send() ? SL_SEND : SL_RECV, .buf = &F.v };
        SL_AWAIT(t, F.w_rc, sl_select(t, F.cases, 1, 0));
        F.w_err = F.cases[0].err;
    } else if (f_send()) {
        SL_AWAIT(t, F.w_rc, sl_chan_send(t, F.x, &F.v));
    } else {
        SL_AWAIT(t, F.w_rc, sl_chan_recv(t, F.x, &F.v));
    }
    atomic_store(&F.w_done, 1);
    SL_END(t);
}

/* At the home: what the waiter's operation sent there waits for a
 * counterpart (an ask for credit or for a lend, a select's proxy, a round
 * trip's request): the waiter is parked and nothing more of it is on its
 * way here. */
static bool f_queued(void)
{
    switch (F.how) {
    case F_RSEND: case F_SEL_BUF_SEND: return F.x->asks_ != NULL;
    case F_RRECV: case F_SEL_BUF_RECV: return F.x->rasks_ != NULL;
    case F_SEL_RV_SEND: return F.x->rv_sendq_ > 0;
    case F_SEL_RV_RECV: return F.x->rv_recvq_ > 0;
    case F_TRIP_SEND: return F.x->sendq_.n > 0;
    default: return F.x->recvq_.n > 0;
    }
}

static void f_describe(void *arg)   /* reactor 1, before the -EPIPE comes */
{
    (void)arg;
    uint64_t end = sl_now_ns() + F_BOUND;
    while (!atomic_load(&F.freed) && sl_now_ns() < end)
        sched_yield();
    sl_task *w = atomic_load(&F.w);
    F.status = w->status_;
    F.nwhy = sl_task_why(w, F.why, 2);
    sl_task_info_get(w, &F.info);
    sl_task_describe(w, F.text, sizeof F.text);
    atomic_store(&F.described, 1);
}

static int f_home(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    {
        bool rv = F.how == F_SEL_RV_SEND || F.how == F_SEL_RV_RECV || F.how == F_TRIP_SEND;
        /* a receive on an expiring channel goes by round trip */
        assert_int_equal(sl_chan_new(&F.x, sizeof(int), rv ? 0 : F.how == F_TRIP_RECV ? 2 : 1,
                                     &(sl_chan_opts){ .name = "far-x", .expiring = F.how == F_TRIP_RECV }), 0);
        F.v = 1;
        if (F.how == F_RSEND || F.how == F_SEL_BUF_SEND)   /* full: the sender waits for credit */
            assert_int_equal(sl_chan_try_send(t, F.x, &F.v), 0);
    }
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), f_waiter, NULL, &(sl_spawn_opts){ .name = "waiter" }), 0);
    TASK_POLL(t, F.hrc, F.i, 20000, f_queued());
    assert_true(f_queued());
    /* one step: the description goes to reactor 1 first, then the free
     * posts the -EPIPE behind it, and the header leaves the quarantine */
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), f_describe, NULL), 0);
    assert_int_equal(sl_chan_free(t, F.x), 0);
    chan_churn(t, SL_CHAN_QUARANTINE + 1, sizeof(int), 1);
    atomic_store(&F.freed, 1);
    TASK_POLL(t, F.hrc, F.i, 20000, atomic_load(&F.w_done));
    assert_true(atomic_load(&F.w_done));
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_freed(int how)
{
    memset(&cap, 0, sizeof cap);
    memset(&F, 0, sizeof F);
    F.how = how;
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run(rt, f_home, NULL), 0);
    assert_int_equal(cap.count, 0);
    assert_int_equal(atomic_load(&F.described), 1);
    assert_int_equal(F.status, SL_TASK_PARKED);   /* described before the -EPIPE came */
    if (f_select()) {
        assert_int_equal(F.w_rc, 0);
        assert_int_equal(F.w_err, -EPIPE);
    } else {
        assert_int_equal(F.w_rc, -EPIPE);
    }
    assert_int_equal(F.nwhy, 1);
    assert_non_null(F.why[0].chan);
    assert_string_equal(F.why[0].chan, "far-x");
    assert_int_equal(F.why[0].len, 0);
    assert_int_equal(F.why[0].lent, 0);
    assert_false(F.why[0].ends);
    assert_int_equal(F.info.status, SL_TASK_PARKED);
    if (f_select()) {
        assert_int_equal(F.info.wait, SL_WAIT_SELECT);
        assert_null(F.info.wait_name);
    } else {
        assert_int_equal(F.info.wait, SL_WAIT_REMOTE);
        assert_non_null(F.info.wait_name);
        assert_string_equal(F.info.wait_name, "far-x");
    }
    const char *want = NULL;
    switch (how) {
    case F_RSEND: case F_SEL_BUF_SEND:
        assert_int_equal(F.why[0].op, SL_SEND);
        assert_int_equal(F.why[0].why, SL_WHY_CREDIT);
        assert_int_equal(F.why[0].cap, 1);
        want = "[why: 'far-x' waits for credit]";
        break;
    case F_RRECV: case F_SEL_BUF_RECV:
        assert_int_equal(F.why[0].op, SL_RECV);
        assert_int_equal(F.why[0].why, SL_WHY_REMOTE);
        assert_int_equal(F.why[0].cap, 1);
        want = "[why: 'far-x' waits for the home reactor]";
        break;
    case F_SEL_RV_SEND:   /* by offer: it waits for a receiver there, not for credit */
        assert_int_equal(F.why[0].op, SL_SEND);
        assert_int_equal(F.why[0].why, SL_WHY_HOME_RECEIVER);
        assert_int_equal(F.why[0].cap, 0);
        want = "[why: 'far-x' waits for a receiver at the home reactor]";
        break;
    case F_SEL_RV_RECV:
        assert_int_equal(F.why[0].op, SL_RECV);
        assert_int_equal(F.why[0].why, SL_WHY_HOME_SENDER);
        assert_int_equal(F.why[0].cap, 0);
        want = "[why: 'far-x' waits for a sender at the home reactor]";
        break;
    default:   /* a round trip */
        assert_int_equal(F.why[0].op, 0);
        assert_int_equal(F.why[0].why, SL_WHY_REMOTE);
        assert_int_equal(F.why[0].cap, how == F_TRIP_RECV ? 2 : 0);
        want = "[why: 'far-x' waits for the home reactor]";
        break;
    }
    if (!strstr(F.text, want))
        fail_msg("'%s' not in: %s", want, F.text);
    const char *on = f_select() ? (f_send() ? "on select (send 'far-x') for " : "on select (recv 'far-x') for ")
                                : "on remote 'far-x' for ";
    if (!strstr(F.text, on))
        fail_msg("'%s' not in: %s", on, F.text);
}

static void test_freed_rsend(void **s) { (void)s; run_freed(F_RSEND); }
static void test_freed_rrecv(void **s) { (void)s; run_freed(F_RRECV); }
static void test_freed_select_buf_send(void **s) { (void)s; run_freed(F_SEL_BUF_SEND); }
static void test_freed_select_buf_recv(void **s) { (void)s; run_freed(F_SEL_BUF_RECV); }
static void test_freed_select_rv_send(void **s) { (void)s; run_freed(F_SEL_RV_SEND); }
static void test_freed_select_rv_recv(void **s) { (void)s; run_freed(F_SEL_RV_RECV); }
static void test_freed_trip_send(void **s) { (void)s; run_freed(F_TRIP_SEND); }
static void test_freed_trip_recv(void **s) { (void)s; run_freed(F_TRIP_RECV); }

/* ---- our own channel, freed while its offer to another reactor's select is out ---- */

/* The same at the home: a task there that offers itself to another
 * reactor's select (rsel.c: a blocking send that finds the select's
 * proxy; a select claimed for it) waits for the answer on a channel of
 * its own reactor, and a free meanwhile releases the header (the offer
 * does not keep it: its answer does not touch the channel). Reactor 1 is
 * kept busy by a message posted before the offer, so the answer waits
 * until reactor 0 has freed the channel, pushed its header out of the
 * quarantine and described the offering task. They once read the freed
 * header (ASan: heap-use-after-free in diag.c). */
enum { O_TASK, O_CLAIMED };

static struct {
    int how;
    sl_chan *x, *idle;          /* reactor 0's: x is freed with the offer out */
    sl_task *o;                 /* the offering task (reactor 0) */
    _Atomic int go, s_done, o_done;
    sl_case s_cases[1], o_cases[3];
    int s_v, o_v, s_rc, s_err, o_rc, hrc, i;
    int nwhy;
    sl_wait_case why[3];
    sl_task_info info;
    char text[512];
} O;

static int o_selector(sl_task *t, void *arg)   /* reactor 1: a receive case on x, by offer */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + F_BOUND);
    O.s_cases[0] = (sl_case){ .ch = O.x, .op = SL_RECV, .buf = &O.s_v };
    SL_AWAIT(t, O.s_rc, sl_select(t, O.s_cases, 1, 0));
    O.s_err = O.s_cases[0].err;
    atomic_store(&O.s_done, 1);
    SL_END(t);
}

static int o_offerer(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + F_BOUND);
    O.o_v = 7;
    if (O.how == O_TASK) {
        SL_AWAIT(t, O.o_rc, sl_chan_send(t, O.x, &O.o_v));
    } else {   /* all its cases ours: claimed for the select's proxy by its first case */
        O.o_cases[0] = (sl_case){ .ch = O.x, .op = SL_SEND, .buf = &O.o_v };
        O.o_cases[1] = (sl_case){ .ch = O.idle, .op = SL_RECV, .buf = &O.o_v };
        O.o_cases[2] = (sl_case){ .ch = O.x, .op = SL_SEND, .buf = &O.o_v };   /* marked gone by the free */
        SL_AWAIT(t, O.o_rc, sl_select(t, O.o_cases, 3, 0));
    }
    atomic_store(&O.o_done, 1);
    SL_END(t);
}

static void o_busy(void *arg)   /* reactor 1: the offer waits behind this */
{
    (void)arg;
    uint64_t end = sl_now_ns() + F_BOUND;
    while (!atomic_load(&O.go) && sl_now_ns() < end)
        sched_yield();
}

static int o_home(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&O.x, sizeof(int), 0, &(sl_chan_opts){ .name = "home-x" }), 0);
    assert_int_equal(sl_chan_new(&O.idle, sizeof(int), 1, &(sl_chan_opts){ .name = "idle" }), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), o_selector, NULL, &(sl_spawn_opts){ .name = "selector" }), 0);
    TASK_POLL(t, O.hrc, O.i, 20000, O.x->rv_recvq_);   /* the select's proxy is queued here */
    assert_true(O.x->rv_recvq_ > 0);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), o_busy, NULL), 0);
    assert_int_equal(sl_spawn(NULL, o_offerer, NULL, &O.o, &(sl_spawn_opts){ .name = "offerer", .joinable = true }), 0);
    TASK_POLL(t, O.hrc, O.i, 20000, O.x->rv_offers_.head);   /* its offer is out */
    assert_non_null(O.x->rv_offers_.head);
    assert_int_equal(sl_chan_free(t, O.x), 0);
    chan_churn(t, SL_CHAN_QUARANTINE + 1, sizeof(int), 1);
    O.nwhy = sl_task_why(O.o, O.why, 3);
    sl_task_info_get(O.o, &O.info);
    sl_task_describe(O.o, O.text, sizeof O.text);
    atomic_store(&O.go, 1);
    TASK_POLL(t, O.hrc, O.i, 20000, atomic_load(&O.o_done) && atomic_load(&O.s_done));
    assert_true(atomic_load(&O.o_done) && atomic_load(&O.s_done));
    SL_AWAIT(t, O.hrc, sl_task_join(t, O.o, &O.i));
    assert_int_equal(sl_chan_free(t, O.idle), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void run_offer_freed(int how)
{
    memset(&cap, 0, sizeof cap);
    memset(&O, 0, sizeof O);
    O.how = how;
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run(rt, o_home, NULL), 0);
    assert_int_equal(cap.count, 0);
    assert_int_equal(O.info.status, SL_TASK_PARKED);   /* described with its offer out */
    /* the offer was out: accepted, the element went (rsel.c) */
    assert_int_equal(O.s_rc, 0);
    assert_int_equal(O.s_err, 0);
    assert_int_equal(O.s_v, 7);
    assert_int_equal(O.o_rc, 0);
    const char *want;
    if (how == O_TASK) {
        assert_int_equal(O.info.wait, SL_WAIT_REMOTE);
        assert_non_null(O.info.wait_name);
        assert_string_equal(O.info.wait_name, "(freed)");
        assert_int_equal(O.nwhy, 1);
        assert_string_equal(O.why[0].chan, "(freed)");
        assert_int_equal(O.why[0].why, SL_WHY_REMOTE);
        assert_int_equal(O.why[0].cap, 0);
        want = "parked on remote '(freed)' for ";
    } else {
        assert_int_equal(O.info.wait, SL_WAIT_SELECT);
        assert_int_equal(O.nwhy, 3);
        for (int k = 0; k < 3; k += 2) {   /* the case offered, and the other one on the freed channel */
            assert_string_equal(O.why[k].chan, "(freed)");
            assert_int_equal(O.why[k].why, SL_WHY_CLOSED);
            assert_int_equal(O.why[k].op, SL_SEND);
        }
        assert_string_equal(O.why[1].chan, "idle");
        assert_int_equal(O.why[1].why, SL_WHY_EMPTY);
        want = "parked on select (send '(freed)', recv 'idle', send '(freed)') for ";
    }
    if (!strstr(O.text, want))
        fail_msg("'%s' not in: %s", want, O.text);
}

static void test_offer_freed_task(void **s) { (void)s; run_offer_freed(O_TASK); }
static void test_offer_freed_claimed(void **s) { (void)s; run_offer_freed(O_CLAIMED); }

/* ---- a claimed select's buffered case elsewhere, its record pinned ---------- */

/* A select of reactor 0 with a send case on its own rendezvous channel x
 * and a receive case on reactor 1's buffered channel y is claimed for
 * reactor 1's select waiting on x (rsel.c: its nodes leave their queues,
 * y's record here is pinned). Reactor 1 is kept busy, so the claim lasts
 * while reactor 0 ends callbacks (each flush drops idle records) and
 * describes it: y's name and capacity come from the pinned record (the
 * case holds no copy: sl_case is 96 bytes), never from y. */
static struct {
    _Atomic(sl_chan *) y;       /* reactor 1's */
    sl_chan *x;                 /* reactor 0's */
    sl_task *s;                 /* the claimed select (reactor 0) */
    _Atomic int go, r_done, s_done;
    sl_case r_cases[1], s_cases[2];
    int r_v, s_v, r_rc, s_rc, hrc, i;
    bool offered;
    int nwhy;
    sl_wait_case why[2];
    sl_task_info info;
    char text[512];
} P;

static int p_far(sl_task *t, void *arg)   /* reactor 1: owns y, waits on x by offer */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + F_BOUND);
    {
        sl_chan *y;
        assert_int_equal(sl_chan_new(&y, sizeof(int), 1, &(sl_chan_opts){ .name = "far-y" }), 0);
        atomic_store(&P.y, y);
    }
    P.r_cases[0] = (sl_case){ .ch = P.x, .op = SL_RECV, .buf = &P.r_v };
    SL_AWAIT(t, P.r_rc, sl_select(t, P.r_cases, 1, 0));
    assert_int_equal(sl_chan_free(t, atomic_load(&P.y)), 0);
    atomic_store(&P.r_done, 1);
    SL_END(t);
}

static int p_select(sl_task *t, void *arg)   /* reactor 0: claimed by its case on x */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + F_BOUND);
    P.s_v = 9;
    P.s_cases[0] = (sl_case){ .ch = P.x, .op = SL_SEND, .buf = &P.s_v };
    P.s_cases[1] = (sl_case){ .ch = atomic_load(&P.y), .op = SL_RECV, .buf = &P.s_v };
    SL_AWAIT(t, P.s_rc, sl_select(t, P.s_cases, 2, 0));
    atomic_store(&P.s_done, 1);
    SL_END(t);
}

static void p_busy(void *arg)   /* reactor 1: the offer waits behind this */
{
    (void)arg;
    uint64_t end = sl_now_ns() + F_BOUND;
    while (!atomic_load(&P.go) && sl_now_ns() < end)
        sched_yield();
}

static int p_home(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&P.x, sizeof(int), 0, &(sl_chan_opts){ .name = "home-x" }), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), p_far, NULL, &(sl_spawn_opts){ .name = "far" }), 0);
    TASK_POLL(t, P.hrc, P.i, 20000, P.x->rv_recvq_);   /* reactor 1's proxy is queued on x */
    assert_true(P.x->rv_recvq_ > 0);
    assert_non_null(atomic_load(&P.y));
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), p_busy, NULL), 0);
    assert_int_equal(sl_spawn(NULL, p_select, NULL, &P.s, &(sl_spawn_opts){ .name = "claimed", .joinable = true }), 0);
    TASK_POLL(t, P.hrc, P.i, 20000, P.x->rv_offers_.head);   /* claimed: its offer is out */
    assert_non_null(P.x->rv_offers_.head);
    for (P.i = 0; P.i < 3; P.i++)   /* callbacks end here meanwhile: idle records go at their flush */
        SL_AWAIT(t, P.hrc, sl_sleep(t, SL_NS_PER_MS));
    P.offered = P.s->wait_kind_ == SL_WAIT_REMOTE;   /* claimed: a cross-reactor wait inside (rsel.c) */
    P.nwhy = sl_task_why(P.s, P.why, 2);
    sl_task_info_get(P.s, &P.info);
    sl_task_describe(P.s, P.text, sizeof P.text);
    atomic_store(&P.go, 1);
    TASK_POLL(t, P.hrc, P.i, 20000, atomic_load(&P.s_done) && atomic_load(&P.r_done));
    assert_true(atomic_load(&P.s_done) && atomic_load(&P.r_done));
    SL_AWAIT(t, P.hrc, sl_task_join(t, P.s, &P.i));
    assert_int_equal(sl_chan_free(t, P.x), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_claimed_pinned_case(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    memset(&P, 0, sizeof P);
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run(rt, p_home, NULL), 0);
    assert_int_equal(cap.count, 0);
    assert_true(P.offered);   /* described while claimed */
    assert_int_equal(P.info.status, SL_TASK_PARKED);
    assert_int_equal(P.info.wait, SL_WAIT_SELECT);
    assert_int_equal(P.nwhy, 2);
    assert_string_equal(P.why[0].chan, "home-x");
    assert_int_equal(P.why[0].op, SL_SEND);
    assert_string_equal(P.why[1].chan, "far-y");   /* from the pinned record: not "(unknown)" */
    assert_int_equal(P.why[1].op, SL_RECV);
    assert_int_equal(P.why[1].cap, 1);
    assert_int_equal(P.why[1].why, SL_WHY_REMOTE);
    const char *want = "parked on select (send 'home-x', recv 'far-y') for ";
    if (!strstr(P.text, want))
        fail_msg("'%s' not in: %s", want, P.text);
    if (!strstr(P.text, "'far-y' waits for the home reactor"))
        fail_msg("'far-y' waits ... not in: %s", P.text);
    /* the offer was out: accepted, the select's send case completed */
    assert_int_equal(P.s_rc, 0);
    assert_int_equal(P.r_rc, 0);
    assert_int_equal(P.r_v, 9);
}

/* ---- an old channel's record and a new one's at the same address ---------- */

/* Issue 17: a waiter's channel on another reactor is described from its
 * reactor's record (rsend.c, rrecv.c), and records are found by the
 * channel's address and generation. Two of them share an address while a
 * waiter's ask crosses its channel's free and a new channel takes the
 * header: tasks of reactor 1 wait for credit on reactor 0's full "old-x"
 * (a send and a select's send case, one record, its ask posted while
 * reactor 0 is in a step), reactor 0 frees it in that step, pushes it out
 * of the quarantine and makes "new-y" at its address, full too, and a
 * third task of reactor 1 parks on new-y (a record of its own). Each is
 * described by its own channel's name. Before, the description looked
 * the record up by the address alone and named new-y for all three (its
 * record came first in the list). */
#define K_BOUND (20 * SL_NS_PER_S)

static struct {
    sl_chan *x, *y;
    sl_task *_Atomic t1, *_Atomic t1s, *_Atomic t2;
    _Atomic int go, asked, y_ready, described, done1, done1s, done2;
    sl_case cases[1];
    int v1, v1s, v2, rc1, rc1s, rc2, hrc, srt, i, vy;
    bool same;
    int n1, n1s, n2;
    sl_wait_case w1, w1s[1], w2;
} K;

static int k_t1(sl_task *t, void *arg)   /* reactor 1: a send on old-x */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + K_BOUND);
    atomic_store(&K.t1, t);
    K.v1 = 5;
    SL_AWAIT(t, K.rc1, sl_chan_send(t, K.x, &K.v1));
    atomic_store(&K.done1, 1);
    SL_END(t);
}

static int k_t1s(sl_task *t, void *arg)   /* reactor 1: a select's send case on old-x */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + K_BOUND);
    atomic_store(&K.t1s, t);
    K.v1s = 6;
    K.cases[0] = (sl_case){ .ch = K.x, .op = SL_SEND, .buf = &K.v1s };
    SL_AWAIT(t, K.rc1s, sl_select(t, K.cases, 1, 0));
    atomic_store(&K.done1s, 1);
    SL_END(t);
}

static int k_t2(sl_task *t, void *arg)   /* reactor 1: a send on new-y */
{
    (void)arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_now_ns() + K_BOUND);
    atomic_store(&K.t2, t);
    K.v2 = 7;
    SL_AWAIT(t, K.rc2, sl_chan_send(t, K.y, &K.v2));
    atomic_store(&K.done2, 1);
    SL_END(t);
}

static int k_starter(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    SL_BEGIN(t);
    assert_true(wait_set(&K.go, K_BOUND));   /* reactor 0 is in the step that frees x */
    assert_int_equal(sl_spawn(NULL, k_t1, NULL, NULL, &(sl_spawn_opts){ .name = "t1" }), 0);
    assert_int_equal(sl_spawn(NULL, k_t1s, NULL, NULL, &(sl_spawn_opts){ .name = "t1s" }), 0);
    /* they run (this reactor's, before the sleep's timer), park, and the ask goes */
    TASK_POLL(t, K.srt, K.i, 20000, atomic_load(&K.t1) && atomic_load(&K.t1s));
    assert_true(atomic_load(&K.t1) && atomic_load(&K.t1s));
    atomic_store(&K.asked, 1);
    TASK_POLL(t, K.srt, K.i, 20000, atomic_load(&K.y_ready));
    assert_true(atomic_load(&K.y_ready));
    assert_int_equal(sl_spawn(NULL, k_t2, NULL, NULL, &(sl_spawn_opts){ .name = "t2" }), 0);
    TASK_POLL(t, K.srt, K.i, 20000, atomic_load(&K.t2));   /* t2 parks on new-y */
    assert_non_null(atomic_load(&K.t2));
    K.n1 = sl_task_why(atomic_load(&K.t1), &K.w1, 1);
    K.n1s = sl_task_why(atomic_load(&K.t1s), K.w1s, 1);
    K.n2 = sl_task_why(atomic_load(&K.t2), &K.w2, 1);
    atomic_store(&K.described, 1);
    SL_END(t);
}

static int k_home(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&K.x, sizeof(int), 1, &(sl_chan_opts){ .name = "old-x" }), 0);
    K.vy = 1;
    assert_int_equal(sl_chan_try_send(t, K.x, &K.vy), 0);   /* full: the senders ask for credit */
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), k_starter, NULL, NULL), 0);
    SL_AWAIT(t, K.hrc, sl_sleep(t, SL_NS_PER_MS));   /* the spawn leaves at the callback's end */
    atomic_store(&K.go, 1);
    {
        /* in this step: reactor 1's messages wait in our queue meanwhile */
        assert_true(wait_set(&K.asked, K_BOUND));
        assert_null(K.x->asks_);   /* not arrived */
        sl_chan *old = K.x;
        assert_int_equal(sl_chan_free(t, K.x), 0);
        chan_churn(t, SL_CHAN_QUARANTINE, sizeof(int), 1);   /* the last one pushes x's header out */
        assert_int_equal(sl_chan_new(&K.y, sizeof(int), 1, &(sl_chan_opts){ .name = "new-y" }), 0);
        K.same = K.y == old;
        assert_int_equal(sl_chan_try_send(t, K.y, &K.vy), 0);   /* full: t2 waits for credit */
        atomic_store(&K.y_ready, 1);
        assert_true(wait_set(&K.described, K_BOUND));
    }
    /* the old asks fail -EPIPE (their generation); t2's is served once y has room */
    assert_int_equal(sl_chan_recv(t, K.y, &K.vy), 0);
    TASK_POLL(t, K.hrc, K.i, 20000, atomic_load(&K.done1) && atomic_load(&K.done1s) && atomic_load(&K.done2));
    assert_true(atomic_load(&K.done2));
    assert_int_equal(sl_chan_recv(t, K.y, &K.vy), 0);
    assert_int_equal(K.vy, 7);
    assert_int_equal(sl_chan_free(t, K.y), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_why_records_by_gen(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    memset(&K, 0, sizeof K);
    rt = rt_new(2, &cap);
    assert_int_equal(rt_run(rt, k_home, NULL), 0);
    assert_true(K.same);   /* else the test shows nothing: the header must be reused */
    assert_int_equal(K.rc1, -EPIPE);
    assert_int_equal(K.rc1s, 0);   /* the case fired, with the free's error */
    assert_int_equal(K.cases[0].err, -EPIPE);
    assert_int_equal(K.rc2, 0);
    assert_int_equal(K.n1, 1);
    assert_int_equal(K.w1.why, SL_WHY_CREDIT);
    assert_string_equal(K.w1.chan, "old-x");
    assert_int_equal(K.n1s, 1);
    assert_string_equal(K.w1s[0].chan, "old-x");
    assert_int_equal(K.n2, 1);
    assert_int_equal(K.w2.why, SL_WHY_CREDIT);
    assert_string_equal(K.w2.chan, "new-y");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_other_reactor),
        cmocka_unit_test(test_freed_rsend),
        cmocka_unit_test(test_freed_rrecv),
        cmocka_unit_test(test_freed_select_buf_send),
        cmocka_unit_test(test_freed_select_buf_recv),
        cmocka_unit_test(test_freed_select_rv_send),
        cmocka_unit_test(test_freed_select_rv_recv),
        cmocka_unit_test(test_freed_trip_send),
        cmocka_unit_test(test_freed_trip_recv),
        cmocka_unit_test(test_offer_freed_task),
        cmocka_unit_test(test_offer_freed_claimed),
        cmocka_unit_test(test_claimed_pinned_case),
        cmocka_unit_test(test_why_records_by_gen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
