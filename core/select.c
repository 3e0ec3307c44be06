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
        if (&cases[i].w_ != keep && sl_wq_has(queue_of(&cases[i]), &cases[i].w_))
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

/* ---- priority mode --------------------------------------------------------
 *
 * Each ready case has a slack: how many more choices it may be passed over
 * (k - waited_). Choosing one case costs every other ready case one unit,
 * so the bound holds as long as, for every e, at most e + 1 cases have a
 * slack <= e (unit jobs with deadlines: earliest-deadline-first meets all
 * of them whenever that holds, and it holds with k >= n - 1). The first
 * ready case is chosen unless some e below its slack is tight (e + 1 cases
 * with slack <= e): then the case with the least slack (the earliest of
 * equals). The check costs one pass while every slack is at least the
 * number of ready cases, which is the usual case with k well above n. */
#define NOT_READY UINT32_MAX

static int choose_prio(sl_task *t, sl_case *cases, int n, uint32_t k)
{
    (void)t;
    int first = -1, least = -1, ready = 0;
    uint32_t min_slack = NOT_READY;
    for (int i = 0; i < n; i++) {
        if (!sl__chan_ready(cases[i].ch, cases[i].op)) {
            cases[i].waited_ = NOT_READY;   /* not waiting: its count starts again */
            continue;
        }
        if (cases[i].waited_ > k)
            cases[i].waited_ = 0;   /* was not ready, or a count from a zeroed array's past */
        uint32_t slack = k - cases[i].waited_;
        ready++;
        if (first < 0)
            first = i;
        if (slack < min_slack) {
            min_slack = slack;
            least = i;
        }
    }
    if (first < 0)
        return -1;
    int chosen = first;
    if (min_slack < (uint32_t)ready) {
        uint32_t first_slack = k - cases[first].waited_;
        for (uint32_t e = min_slack; e < first_slack && e < (uint32_t)ready; e++) {
            uint32_t cnt = 0;
            for (int i = 0; i < n; i++)
                cnt += cases[i].waited_ != NOT_READY && k - cases[i].waited_ <= e;
            if (cnt >= e + 1) {
                chosen = least;
                break;
            }
        }
    }
    for (int i = 0; i < n; i++)
        cases[i].waited_ = i == chosen || cases[i].waited_ == NOT_READY ? 0 : cases[i].waited_ + 1;
    return chosen;
}

int sl_select(sl_task *t, sl_case *cases, int n, int flags)
{
    int rc = check_cases(t, cases, n);
    if (rc)
        return rc;
    bool prio = flags & SL_SELECT_PRIO_;
    uint32_t k = (uint32_t)flags >> 8;
    if (prio && k < (uint32_t)n - 1)
        return -EINVAL;
    if (t->cancel_err_)
        return t->cancel_err_;
    int chosen = -1, ready = 0;
    if (prio) {
        chosen = choose_prio(t, cases, n, k);
    } else {
        /* choose uniformly among the ready cases (reservoir sampling) */
        for (int i = 0; i < n; i++) {
            if (sl__chan_ready(cases[i].ch, cases[i].op) && sl__rand(t->reactor_) % (uint64_t)++ready == 0)
                chosen = i;
        }
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
