/* remote.c: send and receive on a channel of another reactor.
 *
 * The operation travels to the channel's home as a message, runs there (or
 * waits there as a proxy waiter in the channel's queue), and its result
 * travels back. Each side touches only its own fields of the request, and
 * the element crosses inside the request, so nothing is shared between the
 * threads but the message queue's hand-off.
 *
 * A caller whose deadline or cancel fires cannot simply walk away: its
 * element may be being taken at that very moment. It asks home to withdraw
 * the operation and keeps waiting for the answer: either the operation had
 * already completed (the task gets its result, nothing is lost) or it was
 * withdrawn (the task gets its timeout or cancel error). The request is freed
 * by the caller's side once the result and, if it asked, the withdrawal's
 * acknowledgement are both back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"

int sl__chan_do_send(sl_chan *ch, const void *elem);
int sl__chan_do_recv(sl_chan *ch, void *elem);

#define WITHDRAWN 1   /* a result that is not an errno */

typedef struct remote_req {
    sl_msg msg;              /* start (to home), then done (back) */
    sl_msg abort_msg;        /* withdraw (to home), then its ack (back) */
    sl_chan *ch;
    uint32_t gen;            /* ch's, read by the caller when its task named it */
    int op;
    /* home side */
    bool queued, offered, abort_seen;   /* offered: to a select's proxy (rsel.c) */
    bool ch_gone;            /* freed with our offer out: the channel is not touched again */
    size_t esz;              /* the element's size, read without the channel */
    int result;
    sl_waiter w;
    /* caller side */
    sl_task *task;           /* NULL once orphaned */
    sl_reactor *from;
    sl_reactor *home;        /* the channel's: its free sets ch->home_ NULL there, and a withdraw may follow */
    void *dst;
    bool aborting, got_done, got_ack;
    /* the channel's name and capacity when the task parked, for its
     * diagnostics (diag.c: the channel is the home's, maybe freed) */
    const char *name;
    size_t cap;
    unsigned char elem[];
} remote_req;

static void maybe_free(remote_req *q)
{
    if (q->got_done && (!q->aborting || q->got_ack))
        free(q);
}

/* Caller side: the result is back. */
static void caller_done(void *arg)
{
    remote_req *q = arg;
    sl_task *t = q->task;
    q->got_done = true;
    q->from->remote_pending--;
    if (t) {
        int rc = q->result;
        if (rc == WITHDRAWN)
            rc = t->w_.err;
        else if (rc == 0 && q->op == SL_RECV)
            memcpy(q->dst, q->elem, q->esz);
        t->w_.buf = NULL;
        sl__wake(t, rc);
    }
    maybe_free(q);
}

static void caller_ack(void *arg)
{
    remote_req *q = arg;
    q->got_ack = true;
    maybe_free(q);
}

/* Home side: the operation is over, one way or the other. */
static void complete(remote_req *q, int result)
{
    q->queued = false;
    if (!q->ch_gone)
        q->ch->remote_ops_--;
    q->result = result;
    sl_reactor_post_mem(q->from, &q->msg, caller_done, q);
}

void sl__proxy_fire(sl_waiter *w, int result)
{
    if (sl__waiter_is_rvproxy(w)) {
        sl__rsel_fire(w, result);
        return;
    }
    complete(SL_CONTAINER_OF(w, remote_req, w), result);
}

static void home_start(void *arg)
{
    remote_req *q = arg;
    sl_chan *ch = q->ch;
    if (!sl__chan_alive_gen(ch, q->gen)) {
        /* freed since the caller read it (the start crossed the free), the
         * header maybe another channel's now: -EPIPE, the channel not
         * touched (tests/test_credit.c test_start_*_across_free_reuse) */
        q->ch_gone = true;
        complete(q, -EPIPE);
        return;
    }
    ch->remote_ops_++;
    ch->remote_seen_ = 1;
    int rc = q->op == SL_SEND ? sl__chan_do_send(ch, q->elem) : sl__chan_do_recv(ch, q->elem);
    if (rc != -EAGAIN) {
        complete(q, rc);
        return;
    }
    q->w = (sl_waiter){ .task = NULL, .buf = q->elem };
    if (!ch->cap_ && sl__rsel_offer(ch, q->op, &q->w)) {
        q->offered = true;   /* to another reactor's select: its answer ends or requeues it */
        return;
    }
    q->queued = true;
    sl_wq_push(q->op == SL_SEND ? &ch->sendq_ : &ch->recvq_, &q->w);
}

static void home_abort(void *arg)
{
    remote_req *q = arg;
    if (q->queued) {
        sl_wq_remove(q->op == SL_SEND ? &q->ch->sendq_ : &q->ch->recvq_, &q->w);
        complete(q, WITHDRAWN);
    } else if (q->offered) {
        q->abort_seen = true;   /* the offer's answer decides: accepted, or withdrawn */
    }
    sl_reactor_post_mem(q->from, &q->abort_msg, caller_ack, q);
}

int sl__remote_op(sl_task *t, sl_chan *ch, uint32_t gen, int op, void *buf)
{
    if (t->cancel_err_)
        return t->cancel_err_;
    remote_req *q = calloc(1, sizeof *q + ch->elem_size_);
    if (!q)
        return -ENOMEM;
    q->ch = ch;
    q->gen = gen;
    q->esz = ch->elem_size_;
    q->op = op;
    q->task = t;
    q->from = t->reactor_;
    q->home = ch->home_;
    q->dst = buf;
    q->name = ch->name_;
    q->cap = ch->cap_;
    if (op == SL_SEND)
        memcpy(q->elem, buf, ch->elem_size_);
    t->w_.buf = q;
    t->w_.err = 0;
    t->w_.tag = 0;   /* not a credit waiter (rsend.c) */
    int rc = sl__park(t, SL_WAIT_REMOTE, ch, 0);
    if (rc != SL_PENDING) {
        free(q);
        return rc;
    }
    t->reactor_->remote_pending++;
    /* what this reactor's tasks sent to and received from that home
     * before goes first (rrecv.c sl__rrecv_ship_all_to): a task there
     * paired with this operation must find it (Go's happens-before) */
    if (t->reactor_->rs_dirty || t->reactor_->rr_dirty)
        sl__rrecv_ship_all_to(t->reactor_, q->home);
    sl_reactor_post_mem(q->home, &q->msg, home_start, q);
    return SL_PENDING;
}

bool sl__remote_waits(const sl_task *t)
{
    if (sl__remote_local(t) || t->w_.tag == SL_OFFER_TAG)
        return true;   /* waits for credit or a lend (its ask is at home, or on its way), or an offer's answer */
    if (t->w_.tag == SL_OFFER_ABORT_TAG)
        return false;
    const remote_req *q = t->w_.buf;
    return q && !q->aborting;
}

/* Diagnostics (diag.c): the channel of t's round trip, as it was when t
 * parked, from the request (ours until the result is back and t woken). */
void sl__remote_waits_on(const sl_task *t, const char **name, size_t *cap)
{
    const remote_req *q = t->w_.buf;
    *name = q ? q->name : NULL;
    *cap = q ? q->cap : 0;
}

/* Caller side: withdraw (deadline, cancel) or, at teardown, orphan. */
void sl__remote_unpark(sl_task *t)
{
    if (t->w_.tag == SL_OFFER_TAG || t->w_.tag == SL_OFFER_ABORT_TAG) {
        sl__rsel_task_abort(t);   /* a home task's offer is out (rsel.c) */
        return;
    }
    remote_req *q = t->w_.buf;
    if (!q || q->aborting)
        return;
    if (t->reactor_->tearing_down) {
        q->task = NULL;   /* teardown: the reactors are stopped, post nothing */
        return;
    }
    q->aborting = true;
    sl_reactor_post_mem(q->home, &q->abort_msg, home_abort, q);   /* not q->ch->home_: the home's to write */
}

/* At teardown, a proxy still queued in a channel belongs to a task that is
 * gone already: free its request. */
void sl__remote_drop_proxy(sl_waiter *w)
{
    free(SL_CONTAINER_OF(w, remote_req, w));
}

/* ---- a round trip offering itself to another reactor's select (rsel.c) ---- */

void sl__remote_offered(sl_waiter *w)
{
    remote_req *q = SL_CONTAINER_OF(w, remote_req, w);
    q->queued = false;
    q->offered = true;
}

/* its channel is freed while its offer is out: the answer ends it without
 * touching the channel (whose header does not wait for that answer) */
void sl__remote_chan_gone(sl_waiter *w)
{
    remote_req *q = SL_CONTAINER_OF(w, remote_req, w);
    q->ch->remote_ops_--;
    q->ch_gone = true;
}

bool sl__remote_offer_aborted(const sl_waiter *w)
{
    return SL_CONTAINER_OF(w, remote_req, w)->abort_seen;
}

void sl__remote_offer_end(sl_waiter *w, int rc, bool withdrawn)
{
    remote_req *q = SL_CONTAINER_OF(w, remote_req, w);
    q->offered = false;
    complete(q, withdrawn ? WITHDRAWN : rc);
}

/* declined, and nobody else there: waits in the queue again (rsel.c puts
 * it first) */
void sl__remote_requeued(sl_waiter *w)
{
    remote_req *q = SL_CONTAINER_OF(w, remote_req, w);
    q->offered = false;
    q->queued = true;
}
