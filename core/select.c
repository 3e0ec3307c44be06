/* select.c: wait on several channel operations, perform exactly one.
 *
 * While parked, every case's waiter node sits in its channel's queue; the
 * first counterpart to take one fires it, and firing removes all the others
 * before the task wakes, so a select can never complete twice. */
#include <errno.h>
#include "internal.h"
#include "list.h"

int sl__chan_do_send(sl_chan *ch, const void *elem);
int sl__chan_do_recv(sl_chan *ch, void *elem);
bool sl__chan_ready(sl_chan *ch, int op);

static sl_wq *queue_of(sl_case *c)
{
    return c->op == SL_SEND ? &c->ch->sendq_ : &c->ch->recvq_;
}

static int check_cases(const sl_task *t, const sl_case *cases, int n)
{
    if (!cases || n < 1)
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (!cases[i].ch || (cases[i].op != SL_SEND && cases[i].op != SL_RECV))
            return -EINVAL;
        if (cases[i].ch->home_ != t->reactor_)
            return cases[i].ch->home_ ? -EXDEV : -EINVAL;
    }
    return 0;
}

/* Dequeues every case of t's select but `keep`. */
static void dequeue_all(sl_task *t, sl_waiter *keep)
{
    sl_case *cases = t->wait_obj_;
    int n = t->w_.idx;
    for (int i = 0; i < n; i++)
        if (&cases[i].w_ != keep && (cases[i].w_.prev || queue_of(&cases[i])->head == &cases[i].w_))
            sl_wq_remove(queue_of(&cases[i]), &cases[i].w_);
}

void sl__select_unpark(sl_task *t)
{
    dequeue_all(t, NULL);
}

void sl__waiter_fire(sl_waiter *w, int result)
{
    sl_task *t = w->task;
    if (!t) {
        sl__proxy_fire(w, result);
        return;
    }
    if (t->wait_kind_ == SL_WAIT_SELECT) {
        w->err = result;
        dequeue_all(t, w);   /* w itself was already taken off its queue */
        sl__wake(t, w->idx);
        return;
    }
    sl__wake(t, result);
}

int sl_select(sl_task *t, sl_case *cases, int n, int flags)
{
    int rc = check_cases(t, cases, n);
    if (rc)
        return rc;
    if (t->cancel_err_)
        return t->cancel_err_;
    /* choose uniformly among the ready cases (reservoir sampling) */
    int chosen = -1, ready = 0;
    for (int i = 0; i < n; i++) {
        if (sl__chan_ready(cases[i].ch, cases[i].op) && sl__rand(t->reactor_) % (uint64_t)++ready == 0)
            chosen = i;
    }
    if (chosen >= 0) {
        sl_case *c = &cases[chosen];
        c->err = c->op == SL_SEND ? sl__chan_do_send(c->ch, c->buf) : sl__chan_do_recv(c->ch, c->buf);
        t->spins_ = 0;
        return chosen;
    }
    if (flags & SL_SELECT_DEFAULT) {
        sl__spin(t);
        return -EAGAIN;
    }
    for (int i = 0; i < n; i++) {
        cases[i].err = 0;
        cases[i].w_ = (sl_waiter){ .task = t, .buf = cases[i].buf, .idx = i };
        sl_wq_push(queue_of(&cases[i]), &cases[i].w_);
    }
    t->w_.idx = n;
    rc = sl__park(t, SL_WAIT_SELECT, cases, 0);
    if (rc != SL_PENDING) {
        t->wait_obj_ = cases;
        dequeue_all(t, NULL);
        t->wait_obj_ = NULL;
    }
    return rc;
}
