/* deadline.c: deadline timers, remaining time, budgets.
 *
 * Only a context whose deadline is earlier than its parent's has a timer; an
 * equal deadline ends with the parent, through the tree. The timer is a
 * libevent event on the context's reactor's base, stored in the context's
 * own allocation (event_assign), so a deadline costs no second malloc, and
 * armed only at the end of the turn that made it (see arm_pending). */
#include <errno.h>
#include <event2/event.h>
#include "ctx_internal.h"

size_t sl__ctx_timer_size(void) { return event_get_struct_event_size(); }

enum { T_NONE, T_PENDING, T_ARMED };

static int schedule(sl_ctx *c, uint64_t now)
{
    uint64_t us = (c->deadline - now + 999) / 1000;   /* round up: never early */
    struct timeval tv = { .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };
    return evtimer_add(c->timer, &tv);
}

/* Ends c by its deadline, with the cause its timer gives. */
static void end_by_deadline(sl_ctx *c)
{
    sl__ctx_end(c, -ETIMEDOUT, c->callers ? SL_CAUSE_CALLER_DEADLINE : SL_CAUSE_DEADLINE);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    sl_ctx *c = arg;
    (void)fd;
    (void)what;
    /* libevent measures from the time it cached when the loop iteration
     * began, so a timer can fire a little before our clock says: never end
     * early, wait again for the rest */
    uint64_t now = sl_now_ns();
    if (now < c->deadline && schedule(c, now) == 0)
        return;
    c->timer = NULL;
    c->tstate = T_NONE;
    /* a plain libevent callback: a thread that drives several embedded
     * reactors has not made this one its current (after-funcs, ending and
     * freeing check it) */
    sl_reactor *prev = sl__tl_reactor;
    sl__tl_reactor = c->r;
    if (!c->err)
        end_by_deadline(c);
    sl__tl_reactor = prev;
}

/* A task bound to c is woken by its deadline (core's timer, at `now`), and
 * c's own timer, due at the same instant, may not have run yet: nothing
 * orders two timers due together (libevent may even fire c's a little
 * early, then wait again for the rest: see on_deadline). End now the
 * context that owns the deadline, as its timer would, so the task wakes to
 * a context that has ended, with the deadline's cause. */
void sl__ctx_deadline_due(sl_ctx *c, uint64_t now)
{
    /* ended already (its timer ran first), or the task's deadline was its
     * own, earlier one (opts.deadline, sl_ctx_narrow): not the context's */
    if (c->err || !c->deadline || c->deadline > now)
        return;
    /* a context without a timer has its parent's deadline (an equal one
     * ends with the parent): the owner is the nearest one with a timer, so
     * the cause is its (caller-deadline when its deadline is the caller's) */
    while (c->tstate == T_NONE) {
        if (!c->attached)
            return;   /* no timer above: nothing would end it by a deadline */
        c = c->parent;
    }
    end_by_deadline(c);
}

/* Timers are armed at the end of the turn that made them. A libevent timer
 * cannot fire before the loop runs again anyway, so arming later changes
 * nothing a program can see, and a context that ends within its turn (a
 * request answered at once) never costs a timer: no heap insert, no
 * delete. The list is this thread's: a context lives on its reactor's
 * thread. */
static __thread __attribute__((tls_model("initial-exec"))) SL_LIST(sl_ctx) pending;

static void pending_unlink(sl_ctx *c)
{
    SL_LIST_REMOVE(&pending, c, tlink);
}

static void arm_pending(sl_reactor *r)
{
    if (!pending.head)   /* all ended within the turn */
        return;
    uint64_t now = sl_now_ns();
    bool again = false;
    for (sl_ctx *c = pending.head, *next; c; c = next) {
        next = c->tlink.next;
        /* another reactor's (a thread may drive several bases in turn):
         * its own turn's end arms it */
        if (c->r != r)
            continue;
        if (event_assign(c->timer, sl_reactor_base(r), -1, 0, on_deadline, c) < 0 ||
            schedule(c, now) < 0) {
            again = true;   /* out of memory in libevent: try again next turn */
            continue;
        }
        pending_unlink(c);
        c->tstate = T_ARMED;
    }
    if (again)
        sl_reactor_at_turn_end(r, arm_pending);
}

int sl__ctx_arm(sl_ctx *c, void *mem)
{
    if (sl__ctx_fail_point() || sl_reactor_at_turn_end(c->r, arm_pending) < 0)
        return -ENOMEM;
    c->timer = mem;
    c->tstate = T_PENDING;
    SL_LIST_PUSH_FRONT(&pending, c, tlink);
    return 0;
}

void sl__ctx_disarm(sl_ctx *c)
{
    if (c->tstate == T_PENDING)
        pending_unlink(c);
    else if (c->tstate == T_ARMED)
        event_del(c->timer);
    c->timer = NULL;
    c->tstate = T_NONE;
}

/* ---- reading the deadline ---------------------------------------------------- */

uint64_t sl_ctx_deadline(const sl_ctx *ctx)
{
    if (!ctx || sl__ctx_foreign(ctx, "sl_ctx_deadline"))
        return 0;
    return ctx->deadline;
}

int sl_ctx_deadline_is_callers(sl_ctx *ctx)
{
    if (!ctx || !sl__ctx_can_end(ctx))
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_deadline_is_callers"))
        return -EXDEV;
    /* its own: earlier than the parent's (an equal one ends with the parent) */
    uint64_t pd = ctx->parent ? ctx->parent->deadline : 0;
    if (!ctx->deadline || (pd && pd <= ctx->deadline))
        return -EINVAL;
    if (ctx->err && ctx->cause != SL_CAUSE_DEADLINE && ctx->cause != SL_CAUSE_CALLER_DEADLINE)
        return -EINVAL;
    ctx->callers = true;
    if (ctx->err)   /* born past its deadline: nothing has read the cause yet */
        ctx->cause = SL_CAUSE_CALLER_DEADLINE;
    return 0;
}

int64_t sl_ctx_remaining_ms(const sl_ctx *ctx)
{
    if (!ctx || sl__ctx_foreign(ctx, "sl_ctx_remaining_ms"))
        return 0;
    if (!ctx->deadline)
        return -1;
    uint64_t now = sl_now_ns();
    return ctx->deadline > now ? (int64_t)((ctx->deadline - now) / SL_NS_PER_MS) : 0;
}

int sl_ctx_budget_ms(const sl_ctx *ctx, uint64_t margin_ms, uint64_t *budget_ms)
{
    if (!ctx || !budget_ms)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_budget_ms"))
        return -EXDEV;
    if (ctx->err)
        return ctx->err;
    if (!ctx->deadline) {
        *budget_ms = UINT64_MAX;
        return 0;
    }
    uint64_t now = sl_now_ns();
    uint64_t left = ctx->deadline > now ? (ctx->deadline - now) / SL_NS_PER_MS : 0;
    if (left <= margin_ms)
        return -ETIMEDOUT;   /* less than a millisecond would be left: do not send */
    *budget_ms = left - margin_ms;
    return 0;
}

uint64_t sl_ctx_narrow(sl_task *t, uint64_t ms)
{
    uint64_t now = sl_now_ns(), old = sl_task_deadline(t);
    uint64_t want = ms > (UINT64_MAX - now) / SL_NS_PER_MS ? UINT64_MAX : now + ms * SL_NS_PER_MS;
    sl_task_set_deadline(t, old && old < want ? old : want);
    return old;
}
