/* group.c: task groups, the structured-concurrency scope of sluice. */
#include <errno.h>
#include "internal.h"

void sl_group_init(sl_group *g, sl_reactor *r)
{
    g->reactor_ = r ? r : sl_reactor_current();
    g->members_.head = g->members_.tail = NULL;
    g->size_ = 0;
    g->waiter_ = NULL;
    g->closing_ = 0;
    g->cancel_err_ = 0;
}

size_t sl_group_size(const sl_group *g) { return g->size_; }

int sl_group_cancel(sl_group *g, int err)
{
    int n = (int)g->size_;
    g->closing_ = 1;
    g->cancel_err_ = err ? err : -ECANCELED;
    /* cancelling may end no member synchronously (ends happen in steps), so
     * the list is stable while we walk it */
    for (sl_task *t = g->members_.head; t; t = t->glink_.next)
        if (!t->cancel_err_)
            sl_task_cancel(t, g->cancel_err_);
    return n;
}

void sl__group_leave(sl_task *t)
{
    sl_group *g = t->group_;
    SL_LIST_REMOVE(&g->members_, t, glink_);
    t->group_ = NULL;
    if (--g->size_ == 0 && g->waiter_) {
        sl_task *w = g->waiter_;
        g->waiter_ = NULL;
        sl__wake(w, 0);
    }
}

void sl__group_unpark(sl_task *t)
{
    sl_group *g = t->wait_obj_;
    if (g && g->waiter_ == t)
        g->waiter_ = NULL;
}

int sl_group_close(sl_task *t, sl_group *g)
{
    if (g->waiter_)
        return -EBUSY;
    sl_group_cancel(g, 0);
    if (g->size_ == 0)
        return 0;
    /* Not bounded by t's own deadline or cancel: the members are cancelled
     * and end at their next wait, and leaving before they have would let them
     * outlive the group. */
    sl_reactor *r = t->reactor_;
    g->waiter_ = t;
    t->status_ = SL_TASK_PARKED;
    t->wait_kind_ = SL_WAIT_GROUP;
    t->wait_obj_ = g;
    t->wait_since_ = sl_now_ns();
    t->flags_ |= SL_TF_BLOCKED;
    r->blocked++;
    r->check_deadlock = true;
    return SL_PENDING;
}

int sl_group_wait(sl_task *t, sl_group *g)
{
    if (g->waiter_)
        return -EBUSY;
    if (t->cancel_err_)
        return t->cancel_err_;
    if (g->size_ == 0)
        return 0;
    g->waiter_ = t;
    int rc = sl__park(t, SL_WAIT_GROUP, g, 0);
    if (rc != SL_PENDING)
        g->waiter_ = NULL;
    return rc;
}
