/* test_ctx.c: the context tree on one reactor — cancel down the tree and its
 * tasks, causes, deadlines and their timers, budgets, values, after-funcs,
 * without_cancel, a million short-lived children, allocation failures. */
#include <event2/event.h>
#include <unistd.h>
#include "testutil.h"
#include "sl_ctx.h"
#include "ctx_internal.h"   /* sl__ctx_inject_failure */

static sl_runtime *rt;
static capture cap;

static void fresh(void)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
}

/* every test task gets a deadline, so a broken wait fails instead of hanging */
static void bound_test(sl_task *t) { sl_task_set_deadline(t, sl_deadline_ms(20000)); }

static int timers_on(sl_task *t)
{
    return event_base_get_num_events(sl_reactor_base(sl_task_reactor(t)), EVENT_BASE_COUNT_ADDED);
}

/* ---- cancel down the tree, tasks included -------------------------------------- *
 * One rule per test. Each runs `fn` as the main task of a fresh one-reactor
 * runtime and checks that no context outlives it. */

static sl_chan *never;   /* a channel nobody sends on */
static int never_v;

static int waits_forever(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_chan_recv(t, never, &never_v));
    SL_END(t);
}

static void run_scenario(sl_step_fn fn, void *state)
{
    long before = sl_ctx_live_count();
    fresh();
    assert_int_equal(rt_run(rt, fn, state), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* Begins a scenario on its reactor: a deadline for the main task, so a
 * broken wait fails instead of hanging, and the channel tasks park on. */
static void scenario_begin(sl_task *t)
{
    bound_test(t);
    assert_int_equal(sl_chan_new(&never, sizeof(int), 0, NULL), 0);
}

/* Ends a scenario: frees the parked-on channel (on the reactor) and stops. */
static void scenario_end(sl_task *t)
{
    assert_int_equal(sl_chan_free(t, never), 0);
    never = NULL;
    sl_runtime_stop(rt);
}

/* root → child → value node → grand, and an unrelated `other`; a parked task
 * under child, val, grand and other. */
typedef struct tree_st {
    sl_ctx *root, *child, *val, *grand, *other, *late;
    sl_task *tc, *tg, *tv, *to;
    int rc_c, rc_g, rc_v, rc_o, rc;
    int v;
} tree_st;

static void tree_make(sl_task *t, tree_st *m)
{
    assert_int_equal(sl_ctx_with_cancel(&m->root, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->child, m->root), 0);
    assert_int_equal(sl_ctx_with_value(&m->val, m->child, &m->v, NULL, NULL), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->grand, m->val), 0);   /* through a value node */
    assert_int_equal(sl_ctx_with_cancel(&m->other, sl_ctx_background()), 0);
    assert_int_equal(sl_go(m->child, waits_forever, &m->rc_c, &m->tc, NULL), 0);
    assert_int_equal(sl_go(m->val, waits_forever, &m->rc_v, &m->tv, NULL), 0);
    assert_int_equal(sl_go(m->grand, waits_forever, &m->rc_g, &m->tg, NULL), 0);
    assert_int_equal(sl_go(m->other, waits_forever, &m->rc_o, &m->to, NULL), 0);
    assert_ptr_equal(sl_task_ctx(m->tg), m->grand);
    assert_null(sl_task_ctx(t));
    assert_null(sl_task_ctx(NULL));
}

/* Cancels `other` (its task wakes at the next yield) and drops every ref. */
static void tree_unref(tree_st *m)
{
    sl_ctx_cancel(m->root, SL_CAUSE_SHUTDOWN);
    sl_ctx_cancel(m->other, SL_CAUSE_SHUTDOWN);
    sl_ctx_unref(m->grand);
    sl_ctx_unref(m->val);
    sl_ctx_unref(m->child);
    sl_ctx_unref(m->root);
    sl_ctx_unref(m->other);
}

/* Cancel is synchronous: the whole subtree, value nodes included, and the
 * tasks bound to it have ended before sl_ctx_cancel returns; the cause is
 * readable everywhere below; a context outside the subtree is untouched. */
static int cancel_reaches_subtree_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    const char *why;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    SL_YIELD(t);   /* every task parks */
    assert_int_equal(sl_ctx_err(m->grand), 0);
    assert_int_equal(sl_ctx_cause(m->grand, &why), SL_CAUSE_NONE);
    assert_string_equal(why, "");
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_DISCONNECT), 0);
    assert_int_equal(sl_ctx_err(m->child), -ECANCELED);
    assert_int_equal(sl_ctx_err(m->val), -ECANCELED);
    assert_int_equal(sl_ctx_err(m->grand), -ECANCELED);
    assert_int_equal(sl_task_cancelled(m->tg), -ECANCELED);
    assert_int_equal(sl_task_cancelled(m->tc), -ECANCELED);
    assert_int_equal(sl_ctx_cause(m->grand, &why), SL_CAUSE_DISCONNECT);
    assert_string_equal(why, "client disconnected");
    assert_int_equal(sl_ctx_err(m->other), 0);   /* not a descendant */
    SL_YIELD(t);
    assert_int_equal(m->rc_c, -ECANCELED);       /* bound tasks woke with the error */
    assert_int_equal(m->rc_v, -ECANCELED);
    assert_int_equal(m->rc_g, -ECANCELED);
    assert_int_equal(m->rc_o, 0);                /* still parked */
    tree_unref(m);
    SL_YIELD(t);
    assert_int_equal(m->rc_o, -ECANCELED);
    scenario_end(t);
    SL_END(t);
}

static void test_cancel_reaches_subtree(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(cancel_reaches_subtree_main, &m);
}

/* A second cancel, of the same node or of one below it, is -EALREADY and the
 * first cause stays. */
static int cancel_idempotent_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_DISCONNECT), 0);
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_SHUTDOWN), -EALREADY);
    assert_int_equal(sl_ctx_cancel(m->grand, SL_CAUSE_SHUTDOWN), -EALREADY);
    assert_int_equal(sl_ctx_cause(m->root, NULL), SL_CAUSE_DISCONNECT);
    assert_int_equal(sl_ctx_cause(m->grand, NULL), SL_CAUSE_DISCONNECT);
    assert_int_equal(sl_ctx_err(m->root), -ECANCELED);
    tree_unref(m);
    SL_YIELD(t);
    scenario_end(t);
    SL_END(t);
}

static void test_cancel_idempotent_first_cause_stays(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(cancel_idempotent_main, &m);
}

/* A child of an ended context is born ended with its parent's cause, and a
 * task started under it begins cancelled. */
static int child_of_ended_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    assert_int_equal(sl_ctx_cancel(m->root, SL_CAUSE_DISCONNECT), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->late, m->grand), 0);
    assert_int_equal(sl_ctx_err(m->late), -ECANCELED);
    assert_int_equal(sl_ctx_cause(m->late, NULL), SL_CAUSE_DISCONNECT);
    m->rc = 1;
    assert_int_equal(sl_go(m->late, waits_forever, &m->rc, NULL, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc, -ECANCELED);
    sl_ctx_unref(m->late);
    tree_unref(m);
    SL_YIELD(t);
    scenario_end(t);
    SL_END(t);
}

static void test_child_of_ended_born_ended(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(child_of_ended_main, &m);
}

/* Cancelling a leaf leaves its parent running; the deadline cause reads as
 * -ETIMEDOUT; a value node can be cancelled like any other. */
static int cancel_leaf_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    const char *why;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    assert_int_equal(sl_ctx_with_cancel(&m->late, m->other), 0);
    assert_int_equal(sl_ctx_cancel(m->late, SL_CAUSE_DEADLINE), 0);
    assert_int_equal(sl_ctx_err(m->late), -ETIMEDOUT);
    assert_int_equal(sl_ctx_err(m->other), 0);
    sl_ctx_unref(m->late);
    assert_int_equal(sl_ctx_with_value(&m->late, m->other, &m->v, NULL, NULL), 0);
    assert_int_equal(sl_ctx_cancel(m->late, SL_CAUSE_UPSTREAM), 0);
    assert_int_equal(sl_ctx_cause(m->late, &why), SL_CAUSE_UPSTREAM);
    assert_string_equal(why, "upstream failed");
    assert_int_equal(sl_ctx_err(m->other), 0);
    sl_ctx_unref(m->late);
    tree_unref(m);
    SL_YIELD(t);
    scenario_end(t);
    SL_END(t);
}

static void test_cancel_leaf_keeps_parent(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(cancel_leaf_main, &m);
}

/* Every bad argument is -EINVAL (or a neutral answer for the getters), and
 * nothing is made. */
static int bad_calls_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    sl_ctx *nc, *late = NULL;
    const char *why;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    assert_int_equal(sl_ctx_without_cancel(&nc, m->other), 0);
    assert_int_equal(sl_ctx_cancel(nc, SL_CAUSE_CANCELED), -EINVAL);   /* cannot be cancelled */
    sl_ctx_unref(nc);
    assert_int_equal(sl_ctx_cancel(sl_ctx_background(), SL_CAUSE_CANCELED), -EINVAL);
    assert_int_equal(sl_ctx_cancel(m->other, SL_CAUSE_NONE), -EINVAL);
    assert_int_equal(sl_ctx_cancel(m->other, (sl_cause)99), -EINVAL);
    assert_int_equal(sl_ctx_cancel(m->other, (sl_cause)-1), -EINVAL);
    assert_int_equal(sl_ctx_cancel(NULL, SL_CAUSE_CANCELED), -EINVAL);
    assert_int_equal(sl_ctx_with_cancel(NULL, m->other), -EINVAL);
    assert_int_equal(sl_ctx_with_cancel(&late, NULL), -EINVAL);
    assert_int_equal(sl_ctx_with_deadline(&late, NULL, 1), -EINVAL);
    assert_int_equal(sl_ctx_with_timeout(NULL, m->other, 1), -EINVAL);
    assert_int_equal(sl_ctx_without_cancel(&late, NULL), -EINVAL);
    assert_null(late);
    assert_int_equal(sl_go(NULL, waits_forever, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sl_ctx_err(NULL), -EINVAL);
    assert_int_equal(sl_ctx_cause(NULL, &why), SL_CAUSE_NONE);
    assert_ptr_equal(sl_ctx_ref(NULL), NULL);
    sl_ctx_unref(NULL);
    assert_int_equal(sl_ctx_err(m->other), 0);   /* none of it touched a live context */
    tree_unref(m);
    SL_YIELD(t);
    scenario_end(t);
    SL_END(t);
}

static void test_bad_calls(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(bad_calls_main, &m);
}

/* Each cause has its text; an unknown one reads "?". A context belongs to
 * the reactor that made it; the background to none. */
static int cause_text_and_reactor_main(sl_task *t, void *arg)
{
    tree_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    tree_make(t, m);
    assert_string_equal(sl_cause_text(SL_CAUSE_DEADLINE), "deadline exceeded");
    assert_string_equal(sl_cause_text(SL_CAUSE_SHUTDOWN), "shutdown");
    assert_string_equal(sl_cause_text(SL_CAUSE_CANCELED), "canceled");
    assert_string_equal(sl_cause_text(SL_CAUSE_DISCONNECT), "client disconnected");
    assert_string_equal(sl_cause_text(SL_CAUSE_UPSTREAM), "upstream failed");
    assert_string_equal(sl_cause_text((sl_cause)99), "?");
    assert_ptr_equal(sl_ctx_reactor(m->root), sl_task_reactor(t));
    assert_ptr_equal(sl_ctx_reactor(m->grand), sl_task_reactor(t));
    assert_null(sl_ctx_reactor(sl_ctx_background()));
    assert_null(sl_ctx_reactor(NULL));
    tree_unref(m);
    SL_YIELD(t);
    scenario_end(t);
    SL_END(t);
}

static void test_cause_text_and_reactor(void **s)
{
    (void)s;
    tree_st m = { 0 };
    run_scenario(cause_text_and_reactor_main, &m);
}

/* outside any reactor nothing can be made (a context needs a reactor) */
static void test_no_reactor(void **s)
{
    (void)s;
    sl_ctx *c = (sl_ctx *)&c;
    assert_null(sl_reactor_current());
    assert_int_equal(sl_ctx_with_cancel(&c, sl_ctx_background()), -EINVAL);
    assert_ptr_equal(c, (sl_ctx *)&c);   /* untouched */
    assert_int_equal(sl_go(sl_ctx_background(), waits_forever, NULL, NULL, NULL), -EINVAL);
    /* the background itself is usable anywhere */
    assert_int_equal(sl_ctx_err(sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_deadline(sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_remaining_ms(sl_ctx_background()), -1);
    assert_ptr_equal(sl_ctx_ref(sl_ctx_background()), sl_ctx_background());
    sl_ctx_unref(sl_ctx_background());
}

/* ---- deadlines ------------------------------------------------------------------ */

typedef struct dl_st {
    sl_ctx *p, *c, *same, *own, *nocancel, *under_nc, *v;
    sl_task *task, *task2;
    sl_chan *ch;
    sl_after a;
    int rc, rc_task, rc_task2, rc_wide, joined, n;
    uint64_t t0;
} dl_st;

static int sleeps_long(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_sleep(t, 60 * SL_NS_PER_S));
    SL_END(t);
}

/* drops its own deadline: only the context can end its wait */
static int widens_then_sleeps(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, 0);
    SL_AWAIT(t, *rc, sl_sleep(t, 60 * SL_NS_PER_S));
    SL_END(t);
}

static void wake_chan(sl_ctx *c, void *arg)
{
    int one = 1;
    (void)c;
    assert_int_equal(sl_chan_try_send(NULL, arg, &one), 0);
}

/* A child asking for a later deadline keeps its parent's. */
static int later_deadline_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 100), 0);
    assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 5000), 0);
    assert_true(sl_ctx_deadline(m->c) == sl_ctx_deadline(m->p));
    assert_true(sl_ctx_remaining_ms(m->c) <= 100 && sl_ctx_remaining_ms(m->c) >= 0);
    sl_ctx_unref(m->c);
    sl_ctx_unref(m->p);
    scenario_end(t);
    SL_END(t);
}

static void test_later_deadline_keeps_parents(void **s)
{
    (void)s;
    dl_st m = { 0 };
    run_scenario(later_deadline_main, &m);
}

/* Timers cost only what they must: a child with its parent's deadline, or a
 * value node, adds none; an earlier deadline adds one, armed when the turn
 * that made it ends; cancelling or freeing it takes it away; one made and
 * ended within a turn never costs one. */
static int timers_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 20000), 0);
    SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_MS));   /* the turn ends: p's timer is armed */
    m->n = timers_on(t);
    assert_int_equal(sl_ctx_with_deadline(&m->same, m->p, sl_ctx_deadline(m->p)), 0);
    assert_int_equal(sl_ctx_with_value(&m->v, m->same, &m->n, NULL, NULL), 0);
    assert_int_equal(sl_ctx_with_deadline(&m->own, m->v, sl_ctx_deadline(m->p) - 1), 0);
    assert_true(sl_ctx_deadline(m->own) == sl_ctx_deadline(m->p) - 1);
    assert_int_equal(timers_on(t), m->n);            /* not within the turn */
    SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(timers_on(t), m->n + 1);        /* own's only */
    assert_int_equal(sl_ctx_cancel(m->own, SL_CAUSE_CANCELED), 0);
    assert_int_equal(timers_on(t), m->n);
    sl_ctx_unref(m->own);
    /* freeing a context with an armed timer removes the timer */
    assert_int_equal(sl_ctx_with_timeout(&m->own, m->v, 50), 0);
    SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(timers_on(t), m->n + 1);
    sl_ctx_unref(m->own);
    assert_int_equal(timers_on(t), m->n);
    /* made and freed, or cancelled, within a turn */
    assert_int_equal(sl_ctx_with_timeout(&m->own, m->v, 50), 0);
    sl_ctx_unref(m->own);
    assert_int_equal(sl_ctx_with_timeout(&m->own, m->v, 50), 0);
    assert_int_equal(sl_ctx_cancel(m->own, SL_CAUSE_CANCELED), 0);
    SL_AWAIT(t, m->rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(timers_on(t), m->n);
    sl_ctx_unref(m->own);
    sl_ctx_unref(m->v);
    sl_ctx_unref(m->same);
    sl_ctx_unref(m->p);
    scenario_end(t);
    SL_END(t);
}

static void test_deadline_timers_cost_only_what_they_must(void **s)
{
    (void)s;
    dl_st m = { 0 };
    run_scenario(timers_main, &m);
}

/* 0 means no deadline of its own; an absurd timeout saturates instead of
 * wrapping into the past. */
static int zero_and_absurd_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_ctx_with_deadline(&m->own, sl_ctx_background(), 0), 0);
    assert_int_equal(sl_ctx_deadline(m->own), 0);
    assert_int_equal(sl_ctx_remaining_ms(m->own), -1);
    sl_ctx_unref(m->own);
    assert_int_equal(sl_ctx_with_timeout(&m->own, sl_ctx_background(), UINT64_MAX), 0);
    assert_int_equal(sl_ctx_err(m->own), 0);
    assert_true(sl_ctx_deadline(m->own) > sl_now_ns());
    sl_ctx_unref(m->own);
    scenario_end(t);
    SL_END(t);
}

static void test_deadline_zero_and_absurd(void **s)
{
    (void)s;
    dl_st m = { 0 };
    run_scenario(zero_and_absurd_main, &m);
}

/* A deadline ends its subtree with -ETIMEDOUT and the deadline cause, never
 * early; a task bound to it wakes with -ETIMEDOUT even if it dropped its own
 * deadline; a without_cancel child has no deadline and survives it, and a
 * task under that child ends by its own (spawn option) deadline. */
static int deadline_ends_subtree_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    const char *why;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 100), 0);
    assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 5000), 0);
    assert_int_equal(sl_ctx_with_value(&m->v, m->c, &m->n, NULL, NULL), 0);
    assert_int_equal(sl_ctx_without_cancel(&m->nocancel, m->p), 0);
    assert_int_equal(sl_ctx_deadline(m->nocancel), 0);
    assert_int_equal(sl_ctx_remaining_ms(m->nocancel), -1);
    assert_int_equal(sl_ctx_with_timeout(&m->under_nc, m->nocancel, 60000), 0);   /* its own */
    assert_true(sl_ctx_deadline(m->under_nc) > sl_ctx_deadline(m->p));
    assert_int_equal(sl_go(m->c, sleeps_long, &m->rc_task, &m->task, NULL), 0);
    assert_true(sl_task_deadline(m->task) == sl_ctx_deadline(m->c));
    assert_int_equal(sl_go(m->c, widens_then_sleeps, &m->rc_wide, NULL, NULL), 0);
    assert_int_equal(sl_go(m->under_nc, sleeps_long, &m->rc_task2, &m->task2,
                           &(sl_spawn_opts){ .deadline = sl_deadline_ms(40), .joinable = true }), 0);
    assert_true(sl_task_deadline(m->task2) < sl_ctx_deadline(m->under_nc));   /* opts' was earlier */
    /* wait for p's deadline through an after-func, not a sleep */
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    assert_int_equal(sl_ctx_after(m->p, &m->a, wake_chan, m->ch), 0);
    SL_AWAIT(t, m->rc, sl_chan_recv(t, m->ch, &m->n));
    assert_int_equal(m->rc, 0);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_true(sl_now_ns() >= sl_ctx_deadline(m->p));   /* never early */
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    assert_int_equal(sl_ctx_err(m->c), -ETIMEDOUT);       /* equal deadline: ended with p */
    assert_int_equal(sl_ctx_err(m->v), -ETIMEDOUT);
    assert_int_equal(sl_ctx_cause(m->c, &why), SL_CAUSE_DEADLINE);
    assert_string_equal(why, "deadline exceeded");
    assert_int_equal(sl_ctx_err(m->nocancel), 0);
    assert_int_equal(sl_ctx_err(m->under_nc), 0);
    assert_int_equal(sl_ctx_remaining_ms(m->p), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc_task, -ETIMEDOUT);
    assert_int_equal(m->rc_wide, -ETIMEDOUT);   /* cancelled by the context, with its error */
    SL_AWAIT(t, m->rc, sl_task_join(t, m->task2, &m->joined));
    assert_int_equal(m->rc, 0);
    assert_int_equal(m->rc_task2, -ETIMEDOUT);
    assert_int_equal(sl_ctx_err(m->under_nc), 0);
    sl_ctx_unref(m->under_nc);
    sl_ctx_unref(m->nocancel);
    sl_ctx_unref(m->v);
    sl_ctx_unref(m->c);
    sl_ctx_unref(m->p);
    scenario_end(t);
    SL_END(t);
}

static void test_deadline_ends_subtree(void **s)
{
    (void)s;
    dl_st m = { 0 };
    run_scenario(deadline_ends_subtree_main, &m);
}

/* A deadline already past, or a zero timeout, gives a context born ended; a
 * deadline just ahead (within the coarse clock's lag, so the exact clock
 * decides) is not past: born running, ended by its timer. */
static int born_ended_main(sl_task *t, void *arg)
{
    dl_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_ctx_with_deadline(&m->p, sl_ctx_background(), sl_now_ns() - 1), 0);
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    assert_int_equal(sl_ctx_cause(m->p, NULL), SL_CAUSE_DEADLINE);
    sl_ctx_unref(m->p);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 0), 0);
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    sl_ctx_unref(m->p);
    m->t0 = sl_now_ns();
    assert_int_equal(sl_ctx_with_deadline(&m->p, sl_ctx_background(), m->t0 + 2 * SL_NS_PER_MS), 0);
    assert_true(sl_now_ns() >= m->t0 + 2 * SL_NS_PER_MS || sl_ctx_err(m->p) == 0);
    /* wait for its end through an after-func, not a sleep */
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    assert_int_equal(sl_ctx_after(m->p, &m->a, wake_chan, m->ch), 0);
    SL_AWAIT(t, m->rc, sl_chan_recv(t, m->ch, &m->n));
    assert_int_equal(m->rc, 0);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_int_equal(sl_ctx_err(m->p), -ETIMEDOUT);
    assert_true(sl_now_ns() >= m->t0 + 2 * SL_NS_PER_MS);   /* never early */
    sl_ctx_unref(m->p);
    scenario_end(t);
    SL_END(t);
}

static void test_deadline_past_born_ended(void **s)
{
    (void)s;
    dl_st m = { 0 };
    run_scenario(born_ended_main, &m);
}

/* ---- a deadline fires on time ------------------------------------------------------ */

#define ROUNDS 15

typedef struct ontime_st {
    sl_ctx *c;
    sl_after a;
    sl_chan *ch;
    uint64_t fired, late[ROUNDS];
    int i, rc, v;
} ontime_st;

static void record_fire(sl_ctx *c, void *arg)
{
    ontime_st *m = arg;
    int one = 1;
    m->fired = sl_now_ns();   /* when the context actually ended */
    assert_int_equal(sl_ctx_err(c), -ETIMEDOUT);
    assert_int_equal(sl_chan_try_send(NULL, m->ch, &one), 0);
}

static int ontime_main(sl_task *t, void *arg)
{
    ontime_st *m = arg;
    SL_BEGIN(t);
    bound_test(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    for (m->i = 0; m->i < ROUNDS; m->i++) {
        assert_int_equal(sl_ctx_with_timeout(&m->c, sl_ctx_background(), 20), 0);
        assert_int_equal(sl_ctx_after(m->c, &m->a, record_fire, m), 0);
        SL_AWAIT(t, m->rc, sl_chan_recv(t, m->ch, &m->v));
        assert_int_equal(m->rc, 0);
        assert_true(m->fired >= sl_ctx_deadline(m->c));   /* never early, every time */
        m->late[m->i] = m->fired - sl_ctx_deadline(m->c);
        sl_ctx_unref(m->c);
    }
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_deadline_on_time(void **s)
{
    (void)s;
    fresh();
    ontime_st m = { 0 };
    assert_int_equal(rt_run(rt, ontime_main, &m), 0);
    uint64_t max = 0;
    for (int i = 0; i < ROUNDS; i++)
        max = m.late[i] > max ? m.late[i] : max;
    uint64_t med = median_u64(m.late, ROUNDS);
    print_message("deadline lateness over %d rounds: median %.3f ms, max %.3f ms\n", ROUNDS,
                  (double)med / 1e6, (double)max / 1e6);
    /* The median, so one descheduling cannot fail it; and a bound no loaded
     * machine reaches (5 ms failed at load 30 on 2 cores) that a timer left
     * unserved still fails. Precision is measured in `make bench`. */
    assert_true(med < 200 * SL_NS_PER_MS);
}

/* ---- a task woken by its deadline finds its context ended ----------------------------- *
 * A bound task's deadline is the context's, and two timers enforce it: the
 * task's (core's heap) and the context's own (a libevent event). Both are due
 * at the same instant and nothing orders them; when the task's ran first, the
 * task woke with -ETIMEDOUT to a context that had not ended (sl_ctx_err 0, no
 * cause), and a handler that answered with its cause said nothing or the
 * wrong thing (issue 20). Here the context's timer is pushed a second late
 * (as a libevent timer that fired a little early and waits again for the
 * rest is), so the task's timer always runs first: the context must have
 * ended, by its deadline, before the task wakes. */

enum { FIRST_OWN, FIRST_PARENTS, FIRST_NARROWED, FIRST_CASES };

typedef struct first_st {
    sl_ctx *p, *c;        /* c: the task's; p: c's parent (the deadline's owner in FIRST_PARENTS) */
    sl_task *bt;
    int i, rc, err, perr, res, jrc;
    sl_cause cause, pcause;
    uint64_t woke;
} first_st;

static int wakes_and_reads(sl_task *t, void *arg)
{
    first_st *m = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, m->rc, sl_chan_recv(t, never, &never_v));
    /* what a handler reads as it wakes */
    m->woke = sl_now_ns();
    m->err = sl_ctx_err(m->c);
    m->cause = sl_ctx_cause(m->c, NULL);
    m->perr = sl_ctx_err(m->p);
    m->pcause = sl_ctx_cause(m->p, NULL);
    SL_END(t);
}

/* Pushes x's timer, armed at the end of the turn that made x, a second late. */
static void push_timer_late(sl_ctx *x)
{
    assert_non_null(x->timer);
    assert_true(event_pending(x->timer, EV_TIMEOUT, NULL));
    assert_int_equal(event_del(x->timer), 0);
    assert_int_equal(evtimer_add(x->timer, &(struct timeval){ .tv_sec = 1 }), 0);
}

static int task_timer_first_main(sl_task *t, void *arg)
{
    first_st *m = arg;
    SL_BEGIN(t);
    scenario_begin(t);
    for (m->i = 0; m->i < FIRST_CASES; m->i++) {
        m->rc = m->err = m->perr = 1;
        uint64_t task_dl = 0;
        if (m->i == FIRST_OWN) {            /* c's own deadline, its own timer */
            assert_int_equal(sl_ctx_with_cancel(&m->p, sl_ctx_background()), 0);
            assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 20), 0);
        } else if (m->i == FIRST_PARENTS) { /* c's deadline is its parent's, the caller's */
            assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 20), 0);
            assert_int_equal(sl_ctx_deadline_is_callers(m->p), 0);
            assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 60000), 0);   /* equal: no timer */
            assert_null(m->c->timer);
        } else {                            /* the task's own, earlier deadline */
            assert_int_equal(sl_ctx_with_cancel(&m->p, sl_ctx_background()), 0);
            assert_int_equal(sl_ctx_with_timeout(&m->c, m->p, 60000), 0);
            task_dl = sl_deadline_ms(20);
        }
        assert_int_equal(sl_go(m->c, wakes_and_reads, m, &m->bt,
                               &(sl_spawn_opts){ .joinable = true, .deadline = task_dl }), 0);
        SL_YIELD(t);   /* the task parks; the turn's end arms the timers */
        if (m->i != FIRST_NARROWED)
            push_timer_late(m->i == FIRST_OWN ? m->c : m->p);
        SL_AWAIT(t, m->jrc, sl_task_join(t, m->bt, &m->res));
        assert_int_equal(m->jrc, 0);
        assert_int_equal(m->rc, -ETIMEDOUT);
        if (m->i == FIRST_OWN) {
            assert_int_equal(m->err, -ETIMEDOUT);
            assert_int_equal(m->cause, SL_CAUSE_DEADLINE);
            assert_int_equal(m->perr, 0);   /* only the deadline's owner and below */
            assert_true(m->woke >= sl_ctx_deadline(m->c));
        } else if (m->i == FIRST_PARENTS) {
            assert_int_equal(m->err, -ETIMEDOUT);
            assert_int_equal(m->cause, SL_CAUSE_CALLER_DEADLINE);
            assert_int_equal(m->perr, -ETIMEDOUT);
            assert_int_equal(m->pcause, SL_CAUSE_CALLER_DEADLINE);
            assert_true(m->woke >= sl_ctx_deadline(m->p));
        } else {   /* a deadline of the task's own ends no context */
            assert_int_equal(m->err, 0);
            assert_int_equal(m->cause, SL_CAUSE_NONE);
            assert_int_equal(m->perr, 0);
            assert_int_equal(sl_ctx_cancel(m->p, SL_CAUSE_CANCELED), 0);
        }
        sl_ctx_unref(m->c);
        sl_ctx_unref(m->p);
    }
    scenario_end(t);
    SL_END(t);
}

static void test_deadline_task_timer_first(void **s)
{
    (void)s;
    first_st m = { 0 };
    run_scenario(task_timer_first_main, &m);
}

/* ---- budget for a downstream call, narrowing one wait ------------------------------------ */

static int budget_main(sl_task *t, void *arg)
{
    sl_ctx *c;
    uint64_t b = 7;
    (void)arg;
    assert_int_equal(sl_ctx_budget_ms(sl_ctx_background(), 10, &b), 0);
    assert_true(b == UINT64_MAX);
    assert_int_equal(sl_ctx_with_timeout(&c, sl_ctx_background(), 1000), 0);
    assert_int_equal(sl_ctx_budget_ms(c, 50, &b), 0);
    assert_true(b <= 950 && b >= 500);   /* loose below: a loaded machine may stall us */
    b = 7;
    assert_int_equal(sl_ctx_budget_ms(c, 1000, &b), -ETIMEDOUT);   /* nothing left: don't send */
    assert_int_equal(sl_ctx_budget_ms(c, UINT64_MAX, &b), -ETIMEDOUT);
    assert_int_equal(b, 7);                                         /* untouched */
    assert_int_equal(sl_ctx_budget_ms(NULL, 0, &b), -EINVAL);
    assert_int_equal(sl_ctx_budget_ms(c, 0, NULL), -EINVAL);
    assert_int_equal(sl_ctx_cancel(c, SL_CAUSE_UPSTREAM), 0);
    assert_int_equal(sl_ctx_budget_ms(c, 0, &b), -ECANCELED);      /* ended: its error */
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_deadline(&c, sl_ctx_background(), sl_now_ns() + SL_NS_PER_MS / 2), 0);
    assert_int_equal(sl_ctx_remaining_ms(c), 0);                   /* under a millisecond */
    assert_int_equal(sl_ctx_budget_ms(c, 0, &b), -ETIMEDOUT);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_remaining_ms(NULL), 0);
    assert_int_equal(sl_ctx_deadline(NULL), 0);
    /* narrowing one wait: never widened, and the old deadline comes back */
    sl_task_set_deadline(t, 0);
    uint64_t old = sl_ctx_narrow(t, 50);
    assert_int_equal(old, 0);
    assert_true(sl_task_deadline(t) > sl_now_ns());
    assert_true(sl_task_deadline(t) <= sl_now_ns() + 50 * SL_NS_PER_MS);
    uint64_t d = sl_task_deadline(t);
    assert_true(sl_ctx_narrow(t, 5000) == d);
    assert_true(sl_task_deadline(t) == d);
    assert_true(sl_ctx_narrow(t, UINT64_MAX) == d);                /* saturates, no wrap */
    assert_true(sl_task_deadline(t) == d);
    sl_task_set_deadline(t, old);
    sl_runtime_stop(rt);
    return 0;
}

static void test_budget_and_narrow(void **s)
{
    (void)s;
    fresh();
    assert_int_equal(rt_run(rt, budget_main, NULL), 0);
}

/* a narrowed wait ends with -ETIMEDOUT on time, and the old deadline returns */
typedef struct narrow_st { sl_mutex mu; uint64_t old, t0; int rc; sl_task *holder; } narrow_st;

static int holds_mutex(sl_task *t, void *arg)
{
    narrow_st *m = arg;
    int rc;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &m->mu, 1), 0);
    SL_AWAIT(t, rc, sl_sleep(t, 300 * SL_NS_PER_MS));
    (void)rc;
    assert_int_equal(sl_mutex_unlock(t, &m->mu), 0);
    SL_END(t);
}

static int narrow_main(sl_task *t, void *arg)
{
    narrow_st *m = arg;
    SL_BEGIN(t);
    bound_test(t);
    sl_mutex_init(&m->mu, NULL, "row", 0);
    assert_int_equal(sl_spawn(NULL, holds_mutex, m, NULL, NULL), 0);
    SL_YIELD(t);
    m->t0 = sl_now_ns();
    m->old = sl_ctx_narrow(t, 30);
    SL_AWAIT(t, m->rc, sl_mutex_lock(t, &m->mu, 2));
    sl_task_set_deadline(t, m->old);
    assert_int_equal(m->rc, -ETIMEDOUT);
    assert_true(sl_now_ns() - m->t0 >= 30 * SL_NS_PER_MS);
    assert_true(sl_task_deadline(t) == m->old);
    SL_AWAIT(t, m->rc, sl_mutex_lock(t, &m->mu, 2));   /* the whole deadline again */
    assert_int_equal(m->rc, 0);
    assert_int_equal(sl_mutex_unlock(t, &m->mu), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_narrow_one_wait(void **s)
{
    (void)s;
    fresh();
    narrow_st m = { 0 };
    assert_int_equal(rt_run(rt, narrow_main, &m), 0);
}

/* ---- values ---------------------------------------------------------------------------- */

static int key_a, key_b, key_c, freed;

static void free_val(void *v)
{
    (void)v;
    freed++;
}

static int values_main(sl_task *t, void *arg)
{
    sl_ctx *a, *b, *a2, *leaf, *nc, *late;
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
    assert_string_equal(sl_ctx_value(nc, &key_a), "a2");    /* without_cancel keeps values */
    assert_null(sl_ctx_value(a, &key_b));                   /* not from descendants */
    assert_null(sl_ctx_value(leaf, &key_c));
    assert_null(sl_ctx_value(sl_ctx_background(), &key_a));
    assert_null(sl_ctx_value(NULL, &key_a));
    assert_null(sl_ctx_value(leaf, NULL));
    /* an ended context still answers, and so does a child born ended */
    assert_int_equal(sl_ctx_cancel(leaf, SL_CAUSE_CANCELED), 0);
    assert_int_equal(sl_ctx_with_cancel(&late, leaf), 0);
    assert_string_equal(sl_ctx_value(late, &key_b), "b1");
    sl_ctx_unref(late);
    /* bad calls: nothing made, the value's free_fn not called */
    late = NULL;
    assert_int_equal(sl_ctx_with_value(&late, leaf, NULL, "x", free_val), -EINVAL);
    assert_int_equal(sl_ctx_with_value(&late, NULL, &key_c, "x", free_val), -EINVAL);
    assert_int_equal(sl_ctx_with_value(NULL, leaf, &key_c, "x", free_val), -EINVAL);
    assert_null(late);
    assert_int_equal(freed, 0);
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
    long before = sl_ctx_live_count();
    fresh();
    assert_int_equal(rt_run(rt, values_main, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ---- after-funcs ------------------------------------------------------------------------- */

static int ran;
static sl_ctx *ran_with, *grandchild;
static sl_after a_victim;

static void after_fn(sl_ctx *c, void *arg)
{
    ran += (int)(intptr_t)arg;
    ran_with = c;
    assert_int_equal(sl_ctx_err(c), -ECANCELED);
    if (grandchild)   /* runs after the whole subtree has ended */
        assert_int_equal(sl_ctx_err(grandchild), -ECANCELED);
}

static void stops_victim(sl_ctx *c, void *arg)
{
    (void)c;
    (void)arg;
    ran += 1000000;
    assert_int_equal(sl_after_stop(&a_victim), 0);   /* queued, not yet run: stopped */
}

static void drops_last_ref(sl_ctx *c, void *arg)
{
    (void)arg;
    sl_ctx_unref(c);                              /* the caller's last reference */
    assert_int_equal(sl_ctx_err(c), -ECANCELED);   /* still valid while it runs */
    ran += 10000000;
}

static int after_main(sl_task *t, void *arg)
{
    sl_ctx *p, *c, *q;
    sl_after a1, a2, a3, a4, a5, a6, zero = { 0 };
    (void)t;
    (void)arg;
    ran = 0;
    assert_int_equal(sl_ctx_with_cancel(&p, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_cancel(&c, p), 0);
    assert_int_equal(sl_ctx_with_cancel(&grandchild, c), 0);
    assert_int_equal(sl_ctx_after(c, &a1, after_fn, (void *)1), 0);
    assert_int_equal(sl_ctx_after(c, &a2, after_fn, (void *)10), 0);
    assert_int_equal(sl_ctx_after(p, &a3, after_fn, (void *)100), 0);
    assert_int_equal(sl_after_stop(&a2), 0);          /* stopped before it ran */
    assert_int_equal(sl_after_stop(&a2), -ENOENT);
    assert_int_equal(sl_after_stop(&zero), -ENOENT);  /* never armed */
    assert_int_equal(sl_after_stop(NULL), -EINVAL);
    assert_int_equal(sl_ctx_cancel(grandchild, SL_CAUSE_CANCELED), 0);
    assert_int_equal(ran, 0);                         /* a descendant ending is not ours */
    sl_ctx_unref(grandchild);
    assert_int_equal(sl_ctx_with_cancel(&grandchild, c), 0);
    assert_int_equal(sl_ctx_cancel(p, SL_CAUSE_CANCELED), 0);
    assert_int_equal(ran, 101);                       /* exactly once each, a2 never */
    assert_int_equal(sl_after_stop(&a1), -EALREADY);  /* it has run */
    assert_int_equal(sl_after_stop(&a3), -EALREADY);
    sl_ctx_cancel(p, SL_CAUSE_CANCELED);
    assert_int_equal(ran, 101);
    /* on an ended context it runs at once */
    assert_int_equal(sl_ctx_after(c, &a4, after_fn, (void *)1000), 0);
    assert_int_equal(ran, 1101);
    assert_ptr_equal(ran_with, c);
    assert_int_equal(sl_after_stop(&a4), -EALREADY);
    assert_int_equal(sl_ctx_after(NULL, &a4, after_fn, NULL), -EINVAL);
    assert_int_equal(sl_ctx_after(c, &a4, NULL, NULL), -EINVAL);
    assert_int_equal(sl_ctx_after(c, NULL, after_fn, NULL), -EINVAL);
    sl_ctx_unref(grandchild);
    grandchild = NULL;
    sl_ctx_unref(c);
    sl_ctx_unref(p);
    /* an armed after-func keeps its context alive; stopping it lets it go */
    long live = sl_ctx_live_count();
    assert_int_equal(sl_ctx_with_cancel(&q, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_after(q, &a5, after_fn, (void *)5), 0);
    sl_ctx_unref(q);
    assert_int_equal(sl_ctx_live_count(), live + 1);
    assert_int_equal(sl_after_stop(&a5), 0);
    assert_int_equal(sl_ctx_live_count(), live);
    assert_int_equal(ran, 1101);
    /* an after-func may stop a later one of the same context, and may drop
     * the last reference to its context */
    ran = 0;
    assert_int_equal(sl_ctx_with_cancel(&q, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_after(q, &a5, stops_victim, NULL), 0);
    assert_int_equal(sl_ctx_after(q, &a_victim, after_fn, (void *)1), 0);
    assert_int_equal(sl_ctx_after(q, &a6, drops_last_ref, NULL), 0);
    assert_int_equal(sl_ctx_cancel(q, SL_CAUSE_CANCELED), 0);
    assert_int_equal(ran, 11000000);
    assert_int_equal(sl_after_stop(&a_victim), -ENOENT);
    assert_int_equal(sl_ctx_live_count(), live);      /* q went after its after-funcs */
    /* on the background: never runs, stops fine */
    assert_int_equal(sl_ctx_after(sl_ctx_background(), &a5, after_fn, (void *)1), 0);
    assert_int_equal(sl_after_stop(&a5), 0);
    assert_int_equal(sl_after_stop(&a5), -ENOENT);
    /* on a without_cancel context: never runs, and does not keep it alive */
    assert_int_equal(sl_ctx_without_cancel(&q, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_after(q, &a5, after_fn, (void *)1), 0);
    sl_ctx_unref(q);
    assert_int_equal(sl_ctx_live_count(), live);
    assert_int_equal(sl_after_stop(&a5), 0);
    assert_int_equal(ran, 11000000);
    sl_runtime_stop(rt);
    return 0;
}

static void test_after_funcs(void **s)
{
    (void)s;
    long before = sl_ctx_live_count();
    fresh();
    assert_int_equal(rt_run(rt, after_main, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ---- tasks: the background, unbinding, spawn failures ---------------------------------------- */

typedef struct task_st { sl_ctx *c; sl_task *tk; int rc, rc2; long live; } task_st;

static int quick(sl_task *t, void *arg)
{
    int *rc = arg;
    *rc = sl_task_cancelled(t) ? -1 : 42;
    assert_ptr_not_equal(sl_task_ctx(t), NULL);
    return 0;
}

static int tasks_main(sl_task *t, void *arg)
{
    task_st *m = arg;
    SL_BEGIN(t);
    bound_test(t);
    m->live = sl_ctx_live_count();
    /* under the background: bound, never cancelled */
    assert_int_equal(sl_go(sl_ctx_background(), quick, &m->rc, &m->tk, NULL), 0);
    assert_ptr_equal(sl_task_ctx(m->tk), sl_ctx_background());
    SL_YIELD(t);
    assert_int_equal(m->rc, 42);
    /* the task's reference keeps its context; its end gives it back */
    assert_int_equal(sl_ctx_with_timeout(&m->c, sl_ctx_background(), 10000), 0);
    assert_int_equal(sl_go(m->c, quick, &m->rc2, &m->tk, &(sl_spawn_opts){ .name = "q" }), 0);
    assert_true(sl_task_deadline(m->tk) == sl_ctx_deadline(m->c));
    sl_ctx_unref(m->c);
    assert_true(sl_ctx_live_count() > m->live);
    SL_YIELD(t);
    assert_int_equal(m->rc2, 42);
    assert_int_equal(sl_ctx_live_count(), m->live);
    /* a failing spawn leaves nothing behind (a group of another reactor is -EINVAL) */
    assert_int_equal(sl_ctx_with_cancel(&m->c, sl_ctx_background()), 0);
    assert_int_equal(sl_go(m->c, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sl_ctx_live_count(), m->live + 1);
    sl_ctx_unref(m->c);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_tasks(void **s)
{
    (void)s;
    fresh();
    task_st m = { 0 };
    assert_int_equal(rt_run(rt, tasks_main, &m), 0);
}

/* ---- sl_go_mem: the task in the caller's storage, freed by its own state destructor ------------ */

typedef struct owned { sl_task task; int rc; int *freed; } owned;

static int owned_step(sl_task *t, void *arg)
{
    owned *o = arg;
    o->rc = sl_task_cancelled(t) ? -1 : 7;
    assert_ptr_equal(t, &o->task);
    return 0;
}

static void owned_free(void *arg)
{
    owned *o = arg;
    (*o->freed)++;
    free(o);   /* the task's own storage: core must be done with it (ASan says if not) */
}

typedef struct mem_st { sl_ctx *c; owned *o; sl_task *tk; int freed; long live; } mem_st;

static int go_mem_main(sl_task *t, void *arg)
{
    mem_st *m = arg;
    SL_BEGIN(t);
    m->live = sl_ctx_live_count();
    assert_int_equal(sl_ctx_with_timeout(&m->c, sl_ctx_background(), 10000), 0);
    m->o = calloc(1, sizeof *m->o);
    m->o->freed = &m->freed;
    assert_int_equal(sl_go_mem(m->c, owned_step, m->o, &m->o->task, &m->tk,
                               &(sl_spawn_opts){ .state_free = owned_free }), 0);
    assert_ptr_equal(m->tk, &m->o->task);
    assert_ptr_equal(sl_task_ctx(m->tk), m->c);
    assert_true(sl_task_deadline(m->tk) == sl_ctx_deadline(m->c));
    SL_YIELD(t);
    assert_int_equal(m->freed, 1);
    /* one cancelled by its context before it ran: ends, and is freed, the same way */
    m->o = calloc(1, sizeof *m->o);
    m->o->freed = &m->freed;
    assert_int_equal(sl_go_mem(m->c, owned_step, m->o, &m->o->task, NULL,
                               &(sl_spawn_opts){ .state_free = owned_free }), 0);
    assert_int_equal(sl_ctx_cancel(m->c, SL_CAUSE_CANCELED), 0);
    SL_YIELD(t);
    assert_int_equal(m->freed, 2);
    sl_ctx_unref(m->c);
    assert_int_equal(sl_ctx_live_count(), m->live);
    /* no storage: -EINVAL, nothing made */
    assert_int_equal(sl_go_mem(sl_ctx_background(), owned_step, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sl_ctx_live_count(), m->live);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_go_mem(void **s)
{
    (void)s;
    fresh();
    mem_st m = { 0 };
    assert_int_equal(rt_run(rt, go_mem_main, &m), 0);
}

/* ---- bindings: the first task bound to a context uses one inside it ---------------------------- */

typedef struct bind_st {
    sl_ctx *c;
    sl_chan *ch;
    long live;
    int rc1, rc2, rc3, rc;
} bind_st;

static int bind_main(sl_task *t, void *arg)
{
    bind_st *m = arg;
    SL_BEGIN(t);
    bound_test(t);
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    never = m->ch;
    m->live = sl_ctx_live_count();
    assert_int_equal(sl_ctx_with_cancel(&m->c, sl_ctx_background()), 0);
    assert_int_equal(sl_go(m->c, NULL, NULL, NULL, NULL), -EINVAL);   /* leaves the slot free */
    assert_int_equal(sl_go(m->c, waits_forever, &m->rc1, NULL, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), m->live + 1);                 /* the context only */
    assert_int_equal(sl_go(m->c, waits_forever, &m->rc2, NULL, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), m->live + 2);                 /* a second is allocated */
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_go(m->c, waits_forever, &m->rc3, NULL, NULL), -ENOMEM);
    SL_YIELD(t);   /* both park */
    assert_int_equal(sl_ctx_cancel(m->c, SL_CAUSE_CANCELED), 0);     /* reaches both */
    SL_YIELD(t);
    assert_int_equal(m->rc1, -ECANCELED);
    assert_int_equal(m->rc2, -ECANCELED);
    assert_int_equal(m->rc3, 0);                                        /* never ran */
    assert_int_equal(sl_ctx_live_count(), m->live + 1);
    /* the slot is free again once its task ended */
    assert_int_equal(sl_go(m->c, waits_forever, &m->rc1, NULL, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), m->live + 1);
    SL_YIELD(t);   /* born cancelled (the context has ended): ends at once */
    assert_int_equal(m->rc1, -ECANCELED);
    sl_ctx_unref(m->c);
    assert_int_equal(sl_ctx_live_count(), m->live);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_bindings(void **s)
{
    (void)s;
    fresh();
    bind_st m = { 0 };
    assert_int_equal(rt_run(rt, bind_main, &m), 0);
}

/* ---- allocation failures ------------------------------------------------------------------------ */

static int enomem_main(sl_task *t, void *arg)
{
    sl_ctx *p, *c = (sl_ctx *)&c;
    int rc = 0;
    (void)t;
    (void)arg;
    freed = 0;
    long live = sl_ctx_live_count();
    assert_int_equal(sl_ctx_with_cancel(&p, sl_ctx_background()), 0);
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_with_cancel(&c, p), -ENOMEM);
    assert_ptr_equal(c, (sl_ctx *)&c);                       /* untouched */
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_with_timeout(&c, p, 100), -ENOMEM);   /* the allocation */
    sl__ctx_inject_failure(1);
    assert_int_equal(sl_ctx_with_timeout(&c, p, 100), -ENOMEM);   /* the timer */
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_without_cancel(&c, p), -ENOMEM);
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_with_value(&c, p, &key_a, "v", free_val), -ENOMEM);
    assert_int_equal(freed, 0);                              /* the caller still owns it */
    sl__ctx_inject_failure(0);   /* the background's bindings are allocated (p's first is not) */
    assert_int_equal(sl_go(sl_ctx_background(), quick, &rc, NULL, NULL), -ENOMEM);
    assert_int_equal(rc, 0);                                 /* never ran */
    assert_ptr_equal(c, (sl_ctx *)&c);
    assert_int_equal(sl_ctx_live_count(), live + 1);         /* only p */
    sl__ctx_inject_failure(-1);
    assert_int_equal(sl_ctx_with_timeout(&c, p, 100), 0);    /* and all is well again */
    sl_ctx_unref(c);
    sl_ctx_unref(p);
    assert_int_equal(sl_ctx_live_count(), live);
    sl_runtime_stop(rt);
    return 0;
}

static void test_enomem(void **s)
{
    (void)s;
    fresh();
    assert_int_equal(rt_run(rt, enomem_main, NULL), 0);
}

/* ---- a deadline made outside any task ---------------------------------------------------- */

/* Timers are armed when the turn that made them ends. A context made in a
 * plain libevent callback, with no task ready to make a turn, must ask for
 * one, or its deadline would never come (the guard would end the run). */
typedef struct plain_st {
    sl_ctx *c;
    sl_after a;
    uint64_t made, ended;
    int guard_fired;
} plain_st;

static void plain_ended(sl_ctx *c, void *arg)
{
    plain_st *m = arg;
    m->ended = sl_now_ns();
    assert_int_equal(sl_ctx_err(c), -ETIMEDOUT);
    sl_ctx_unref(m->c);   /* ending holds its own reference meanwhile */
    sl_runtime_stop(rt);
}

static void plain_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ((plain_st *)arg)->guard_fired = 1;
    sl_runtime_stop(rt);
}

static void plain_make(evutil_socket_t fd, short what, void *arg)
{
    plain_st *m = arg;
    (void)fd;
    (void)what;
    m->made = sl_now_ns();
    assert_int_equal(sl_ctx_with_timeout(&m->c, sl_ctx_background(), 20), 0);
    assert_int_equal(sl_ctx_after(m->c, &m->a, plain_ended, m), 0);
}

static void test_deadline_made_outside_tasks(void **s)
{
    (void)s;
    plain_st m = { 0 };
    long before = sl_ctx_live_count();
    fresh();
    struct event_base *base = sl_reactor_base(sl_runtime_reactor(rt, 0));
    assert_int_equal(event_base_once(base, -1, EV_TIMEOUT, plain_make, &m, &(struct timeval){ 0, 1000 }), 0);
    struct event *guard = evtimer_new(base, plain_guard, &m);
    assert_non_null(guard);
    struct timeval five_s = { 5, 0 };
    assert_int_equal(evtimer_add(guard, &five_s), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    event_free(guard);
    assert_int_equal(m.guard_fired, 0);
    assert_true(m.ended >= m.made + 20 * SL_NS_PER_MS);   /* never early */
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ---- two reactors on one thread ------------------------------------------------------------- */

/* The list of timers to arm is per thread, and a thread may drive several
 * embedded reactors in turn: one reactor's turn end must leave the other's
 * contexts for it, not drop them (their deadlines would never come). */
typedef struct two_st {
    struct event_base *base;
    sl_reactor *r;
    sl_ctx *c;
    sl_after a;
    int ended;
    struct two_st *other;
} two_st;

/* The deadline's timer is a plain libevent callback: it must make its
 * context's reactor the current one, or these calls are refused as
 * foreign (and ending leaks its reference). */
static void two_ended(sl_ctx *c, void *arg)
{
    two_st *m = arg;
    assert_int_equal(sl_ctx_err(c), -ETIMEDOUT);
    assert_ptr_equal(sl_reactor_current(), m->r);
    m->ended = 1;
    sl_ctx_unref(m->c);
    m->c = NULL;
}

static void two_make(two_st *m)
{
    assert_int_equal(sl_ctx_with_timeout(&m->c, sl_ctx_background(), 10), 0);
    assert_int_equal(sl_ctx_after(m->c, &m->a, two_ended, m), 0);
}

static int two_task(sl_task *t, void *arg)
{
    (void)t;
    two_make(arg);
    return 0;
}

/* On r2: its context waits for r2's turn end, and meanwhile this thread
 * runs r1's base, whose turn (a task making a context) ends first. */
static int two_task_outer(sl_task *t, void *arg)
{
    two_st *m2 = arg, *m1 = m2->other;
    (void)t;
    two_make(m2);
    assert_int_equal(sl_spawn(m1->r, two_task, m1, NULL, NULL), 0);
    event_base_loop(m1->base, EVLOOP_NONBLOCK);
    assert_non_null(m1->c);
    return 0;
}

static void test_two_reactors_one_thread(void **s)
{
    (void)s;
    long before = sl_ctx_live_count();
    two_st m1 = { .base = event_base_new() }, m2 = { .base = event_base_new() };
    assert_int_equal(sl_reactor_new_on(&m1.r, m1.base, NULL), 0);
    assert_int_equal(sl_reactor_new_on(&m2.r, m2.base, NULL), 0);
    m2.other = &m1;
    assert_int_equal(sl_spawn(m2.r, two_task_outer, &m2, NULL, NULL), 0);
    event_base_loop(m2.base, EVLOOP_NONBLOCK);
    assert_non_null(m2.c);
    uint64_t give_up = sl_now_ns() + 5 * SL_NS_PER_S;
    while ((!m1.ended || !m2.ended) && sl_now_ns() < give_up) {
        event_base_loop(m1.base, EVLOOP_NONBLOCK);
        event_base_loop(m2.base, EVLOOP_NONBLOCK);
        usleep(1000);   /* polling two bases from one thread: nothing to wait on together */
    }
    assert_int_equal(m1.ended, 1);
    assert_int_equal(m2.ended, 1);
    assert_null(m1.c);
    assert_null(m2.c);
    assert_int_equal(sl_reactor_free(m1.r), 0);
    assert_int_equal(sl_reactor_free(m2.r), 0);
    event_base_free(m1.base);
    event_base_free(m2.base);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ---- a million short-lived children leave nothing behind ------------------------------------------ */

static int churn_main(sl_task *t, void *arg)
{
    sl_ctx *parent, *c;
    sl_after a;
    (void)arg;
    assert_int_equal(sl_ctx_with_timeout(&parent, sl_ctx_background(), 600000), 0);
    long base = sl_ctx_live_count();
    int n = timers_on(t);
    for (int i = 0; i < 1000000; i++) {
        switch (i & 3) {
        case 0: assert_int_equal(sl_ctx_with_cancel(&c, parent), 0); break;
        case 1: assert_int_equal(sl_ctx_with_timeout(&c, parent, 300000), 0); break;   /* a timer */
        case 2: assert_int_equal(sl_ctx_with_value(&c, parent, &key_a, NULL, NULL), 0); break;
        default: assert_int_equal(sl_ctx_without_cancel(&c, parent), 0); break;
        }
        if (i & 4)
            assert_int_equal(sl_ctx_after(c, &a, after_fn, NULL), 0);
        bool ended = false;
        if (i & 8) {
            ended = (i & 3) != 3;   /* a without_cancel context cannot be cancelled */
            assert_int_equal(sl_ctx_cancel(c, SL_CAUSE_CANCELED), ended ? 0 : -EINVAL);
        }
        if ((i & 4) && !ended)
            assert_int_equal(sl_after_stop(&a), 0);
        sl_ctx_unref(c);
    }
    assert_int_equal(sl_ctx_live_count(), base);     /* no growth */
    assert_int_equal(timers_on(t), n);               /* no timer left behind */
    assert_int_equal(sl_ctx_err(parent), 0);
    /* and the parent's list of children is empty: cancelling it touches nobody */
    ran = 0;
    assert_int_equal(sl_ctx_cancel(parent, SL_CAUSE_SHUTDOWN), 0);
    sl_ctx_unref(parent);
    sl_runtime_stop(rt);
    return 0;
}

static void test_million_children(void **s)
{
    (void)s;
    fresh();
    long before = sl_ctx_live_count();
    uint64_t t0 = sl_now_ns();
    assert_int_equal(rt_run(rt, churn_main, NULL), 0);
    print_message("1,000,000 create/free cycles: %.0f ms\n", (double)(sl_now_ns() - t0) / 1e6);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ---- a deep chain: cancel, values and free without recursion -------------------------------------- */

#define DEPTH 100000

static int chain_main(sl_task *t, void *arg)
{
    static sl_ctx *c[DEPTH + 1];
    (void)t;
    (void)arg;
    long live = sl_ctx_live_count();
    c[0] = sl_ctx_background();
    assert_int_equal(sl_ctx_with_value(&c[1], c[0], &key_b, "root", NULL), 0);
    for (int i = 2; i <= DEPTH; i++)
        assert_int_equal(sl_ctx_with_cancel(&c[i], c[i - 1]), 0);
    assert_string_equal(sl_ctx_value(c[DEPTH], &key_b), "root");
    assert_int_equal(sl_ctx_cancel(c[2], SL_CAUSE_CANCELED), 0);
    assert_int_equal(sl_ctx_err(c[DEPTH]), -ECANCELED);
    for (int i = 1; i < DEPTH; i++)   /* drop all but the leaf's: it holds the chain */
        sl_ctx_unref(c[i]);
    assert_int_equal(sl_ctx_live_count(), live + DEPTH);
    sl_ctx_unref(c[DEPTH]);            /* frees the whole chain, iteratively */
    assert_int_equal(sl_ctx_live_count(), live);
    sl_runtime_stop(rt);
    return 0;
}

static void test_deep_chain(void **s)
{
    (void)s;
    fresh();
    assert_int_equal(rt_run(rt, chain_main, NULL), 0);
}

/* ---- a task bound to a context ends; another is made at its address ------------------- *
 * S, bound to C1 (sl_go_mem), ends; once core is done with it
 * (state_free) N is made in the same storage, bound to C2, and parks on L.
 * C1's binding kept S's task pointer (context/bind.c) and must have let go
 * of it at S's end: C1's cancel, which cancels K (bound to C1, parked),
 * must not reach N, whose context is C2 and whose receive ends with L's
 * element. S's binding is C1's inline one (S bound first) or an
 * allocated one (K first). */
typedef struct {
    bool s_second;
    sl_ctx *c1, *c2;
    sl_chan *l;
    sl_task mem;   /* S's storage, then N's */
    sl_task *k;
    int freed, k_rc, n_rc, n_ran, n_got, v, polls, rc;
} reuse_m;

static void reuse_s_freed(void *state)
{
    ((reuse_m *)state)->freed++;
}

static int reuse_s(sl_task *t, void *arg)   /* ends at once, bound to C1 */
{
    (void)t;
    (void)arg;
    return 0;
}

static int reuse_k(sl_task *t, void *arg)   /* bound to C1: parks until C1's cancel */
{
    reuse_m *m = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, m->k_rc, sl_chan_recv(t, never, &never_v));
    SL_END(t);
}

static int reuse_n(sl_task *t, void *arg)   /* at S's address, bound to C2 */
{
    reuse_m *m = arg;
    SL_BEGIN(t);
    bound_test(t);
    SL_AWAIT(t, m->n_rc, sl_chan_recv(t, m->l, &m->n_got));
    assert_int_equal(m->n_rc, 0);   /* not C1's cancel */
    assert_int_equal(m->n_got, 42);
    assert_int_equal(sl_task_cancelled(t), 0);
    m->n_ran = 1;
    SL_END(t);
}

static int reuse_main(sl_task *t, void *arg)
{
    reuse_m *m = arg;
    sl_task_info info;
    SL_BEGIN(t);
    scenario_begin(t);
    assert_int_equal(sl_chan_new(&m->l, sizeof(int), 1, NULL), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->c1, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_cancel(&m->c2, sl_ctx_background()), 0);
    if (m->s_second)
        assert_int_equal(sl_go(m->c1, reuse_k, m, &m->k, NULL), 0);
    assert_int_equal(sl_go_mem(m->c1, reuse_s, m, &m->mem, NULL,
                               &(sl_spawn_opts){ .name = "old", .state_free = reuse_s_freed }), 0);
    assert_ptr_equal(sl_task_ctx(&m->mem), m->c1);
    if (!m->s_second)
        assert_int_equal(sl_go(m->c1, reuse_k, m, &m->k, NULL), 0);
    for (m->polls = 0; m->polls < 1000 && !m->freed; m->polls++)
        SL_YIELD(t);
    assert_int_equal(m->freed, 1);   /* S ended and core is done with it */
    assert_int_equal(sl_go_mem(m->c2, reuse_n, m, &m->mem, NULL, &(sl_spawn_opts){ .name = "new" }), 0);
    assert_ptr_equal(sl_task_ctx(&m->mem), m->c2);
    for (m->polls = 0; m->polls < 1000; m->polls++) {
        SL_YIELD(t);
        sl_task_info_get(&m->mem, &info);
        if (info.status == SL_TASK_PARKED)
            break;
    }
    sl_task_info_get(&m->mem, &info);
    assert_int_equal(info.status, SL_TASK_PARKED);
    assert_int_equal(info.wait, SL_WAIT_RECV);
    assert_int_equal(sl_ctx_cancel(m->c1, SL_CAUSE_CANCELED), 0);
    assert_int_equal(sl_task_cancelled(m->k), -ECANCELED);   /* C1's own task got it */
    assert_int_equal(sl_task_cancelled(&m->mem), 0);          /* S's successor did not */
    assert_ptr_equal(sl_task_ctx(&m->mem), m->c2);
    sl_task_info_get(&m->mem, &info);
    assert_int_equal(info.status, SL_TASK_PARKED);
    m->v = 42;
    assert_int_equal(sl_chan_try_send(t, m->l, &m->v), 0);
    for (m->polls = 0; m->polls < 1000 && !m->n_ran; m->polls++)
        SL_YIELD(t);
    assert_true(m->n_ran);
    assert_int_equal(m->k_rc, -ECANCELED);
    assert_int_equal(sl_chan_free(t, m->l), 0);
    sl_ctx_unref(m->c1);
    sl_ctx_unref(m->c2);
    scenario_end(t);
    SL_END(t);
}

static void run_reuse(bool s_second)
{
    reuse_m m = { .s_second = s_second };
    run_scenario(reuse_main, &m);
    assert_int_equal(m.freed, 1);
    assert_true(m.n_ran);
}

static void test_ended_bound_task_mem_reuse(void **s) { (void)s; run_reuse(false); }
static void test_ended_bound_task_mem_reuse_second(void **s) { (void)s; run_reuse(true); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancel_reaches_subtree),
        cmocka_unit_test(test_ended_bound_task_mem_reuse),
        cmocka_unit_test(test_ended_bound_task_mem_reuse_second),
        cmocka_unit_test(test_cancel_idempotent_first_cause_stays),
        cmocka_unit_test(test_child_of_ended_born_ended),
        cmocka_unit_test(test_cancel_leaf_keeps_parent),
        cmocka_unit_test(test_bad_calls),
        cmocka_unit_test(test_cause_text_and_reactor),
        cmocka_unit_test(test_no_reactor),
        cmocka_unit_test(test_later_deadline_keeps_parents),
        cmocka_unit_test(test_deadline_timers_cost_only_what_they_must),
        cmocka_unit_test(test_deadline_zero_and_absurd),
        cmocka_unit_test(test_deadline_ends_subtree),
        cmocka_unit_test(test_deadline_past_born_ended),
        cmocka_unit_test(test_deadline_on_time),
        cmocka_unit_test(test_deadline_task_timer_first),
        cmocka_unit_test(test_budget_and_narrow),
        cmocka_unit_test(test_narrow_one_wait),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_after_funcs),
        cmocka_unit_test(test_tasks),
        cmocka_unit_test(test_go_mem),
        cmocka_unit_test(test_bindings),
        cmocka_unit_test(test_enomem),
        cmocka_unit_test(test_deadline_made_outside_tasks),
        cmocka_unit_test(test_two_reactors_one_thread),
        cmocka_unit_test(test_million_children),
        cmocka_unit_test(test_deep_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
