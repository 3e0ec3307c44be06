/* rsel_home.c: H, the channel's side of sl_select's cases by offer
 * (issue 17; docs/core.md "Rendezvous cases by offer"; the protocol's
 * overview is at core/rsel.c's top): a proxy parks, is matched with a
 * counterpart (a blocking task, a round trip, an expiring channel's head,
 * a select claimed here: rsel_claim.c, another reactor's select:
 * rsel_hold.c) that offers itself to R, or queues; the answer completes
 * or retries the counterpart; withdraw, close, free and teardown. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rsel.h"

int sl__chan_do_send_until(sl_chan *ch, const void *elem, uint64_t until);
int sl__chan_do_recv(sl_chan *ch, void *elem);

/* ---- H: the channel's side ------------------------------------------------- */

static void h_fire_epipe(rv_proxy *p)
{
    p->hstate = H_FIRED;
    sl_reactor_post_mem(p->from, &p->back, sl__rsel_r_epipe, p);
}

/* O (a waiter not in any queue now) offers itself to p; osid, the sid
 * of the busy select O is part of (wait-die, offer_decide), 0 if none */
void sl__rsel_offer_as(rv_proxy *p, sl_waiter *cp, uint64_t osid)
{
    if (p->hstate == H_QUEUED) {
        sl_wq_remove(sl__rsel_queue_for(p->ch, p->op), &p->w);
        sl__rsel_queued(p, -1);
    }
    p->hstate = H_OFFERED;
    p->cp = cp;
    p->osid = osid;
    SL_LIST_PUSH_FRONT(&p->ch->rv_offers_, p, olink);
    if (p->op == SL_RECV && cp)   /* O sends: its element travels in the offer */
        memcpy(p->elem, cp->buf, p->ch->elem_size_);
    sl_reactor_post_mem(p->from, &p->back, sl__rsel_r_offer, p);
    sl__rsel_at_h_offer();
}

/* ... a two-phase offer tells R which held select offers (wait-die) */
void sl__rsel_offer_to(rv_proxy *p, sl_waiter *cp)
{
    sl__rsel_offer_as(p, cp, cp && sl__waiter_is_rvproxy(cp) ? SL_CONTAINER_OF(cp, rv_proxy, w)->sid : 0);
}

/* The first proxy a counterpart doing `cp_op` may offer to. */
rv_proxy *sl__rsel_first_proxy(sl_chan *ch, int cp_op)
{
    int op = cp_op == SL_SEND ? SL_RECV : SL_SEND;
    if (!*sl__rsel_count_for(ch, op))
        return NULL;
    for (sl_waiter *w = sl__rsel_queue_for(ch, op)->head; w; w = w->link.next)
        if (sl__waiter_is_rvproxy(w) && !SL_CONTAINER_OF(w, rv_proxy, w)->hbusy)
            return SL_CONTAINER_OF(w, rv_proxy, w);   /* one refused busy waits for its REMATCH */
    return NULL;
}

bool sl__rsel_offer(sl_chan *ch, int cp_op, sl_waiter *cp)
{
    rv_proxy *p = sl__rsel_first_proxy(ch, cp_op);
    if (!p)
        return false;
    sl__rsel_offer_to(p, cp);
    return true;
}

/* A task of H's blocking in sl_chan_send/recv (or sl_chan_send_until:
 * `until`, the element's deadline, else 0) that found no plain
 * counterpart: it offers itself to the first proxy, parked in no queue.
 * The element's deadline is judged at the offer, as for an expiring
 * channel's held head: accepted, it was received alive. Its timer ends
 * the wait as a deadline does (it waits for the answer): not the element
 * deadline's own path, which would wake the task with the offer out.
 * -EAGAIN: no proxy, park as usual. */
int sl__rsel_offer_task(sl_task *t, sl_chan *ch, int op, void *buf, uint64_t until)
{
    rv_proxy *p = sl__rsel_first_proxy(ch, op);
    if (!p)
        return -EAGAIN;
    t->w_ = (sl_waiter){ .task = t, .buf = buf, .tag = SL_OFFER_TAG, .until = (uint64_t)(uintptr_t)p };
    int rc = sl__park(t, SL_WAIT_REMOTE, ch, until);
    if (rc != SL_PENDING) {
        t->w_.tag = 0;
        t->w_.until = 0;
        return rc;
    }
    t->flags_ &= (uint8_t)~SL_TF_TIMER_OK;
    t->reactor_->remote_pending++;
    p->until = until;
    sl__rsel_offer_to(p, &t->w_);
    return SL_PENDING;
}

/* A plain waiter parked at H that may offer: a blocking task (not a
 * select's node; a send with an element deadline if it has not passed)
 * or a round trip. */
static bool can_offer(const sl_waiter *w)
{
    if (sl__waiter_is_rvproxy(w) || (w->until && sl_now_ns() >= w->until))
        return false;
    return !w->task || w->task->wait_kind_ == SL_WAIT_SEND || w->task->wait_kind_ == SL_WAIT_RECV;
}

/* A task parked here again, local and without a timer: counted as
 * blocked, as sl__park counts a wait with no end (diag.c's checks). */
void sl__rsel_count_blocked(sl_reactor *r, sl_task *t)
{
    if (t->heap_idx_)
        return;
    t->flags_ |= SL_TF_BLOCKED;
    r->blocked++;
    r->check_deadlock = true;
    if (!r->wg_armed)
        sl__watch_blocked(r);
}

/* A parked task becomes an offering one: a cross-reactor wait now (its
 * deadline or cancel cannot walk away: sl__rsel_task_abort). */
void sl__rsel_task_to_offer(sl_task *t, rv_proxy *p)
{
    sl_reactor *r = t->reactor_;
    t->flags_ &= (uint8_t)~SL_TF_TIMER_OK;   /* an element deadline's timer: as a deadline, it waits for the answer */
    if (t->flags_ & SL_TF_BLOCKED) {
        t->flags_ &= (uint8_t)~SL_TF_BLOCKED;
        r->blocked--;
    }
    t->wait_kind_ = SL_WAIT_REMOTE;
    t->w_.tag = SL_OFFER_TAG;
    t->w_.until = (uint64_t)(uintptr_t)p;
    r->remote_pending++;
}

/* An expiring channel's head element, offered to the first receive
 * proxy: the element leaves the ring, held (nobody at H receives past it)
 * until the answer. Its deadline is judged here, at the offer: an
 * accepted element is received even if its deadline passes on the way
 * (it was alive when offered, as a receive at H meeting it then would
 * have taken it); a declined one goes back first with its deadline.
 * Plain waiters go first: one parked at H means the ring is empty. With
 * nothing to offer on a closed channel the queued proxies fire -EPIPE. */
void sl__rsel_offer_head(sl_chan *ch)
{
    if (ch->rv_held_ || ch->lent_ || ch->freed_)
        return;
    sl__chan_expire_head(ch);   /* may refill, and a refill may offer: */
    if (ch->rv_held_)
        return;
    rv_proxy *p = sl__rsel_first_proxy(ch, SL_SEND);
    if (!p)
        return;
    if (ch->len_) {
        sl__chan_hold_head(ch, p->elem, &p->until);
        sl__rsel_offer_to(p, NULL);
        return;
    }
    if (!(ch->closed_ || ch->senders_gone_) || ch->reserved_)
        return;
    for (sl_waiter *w = ch->recvq_.head, *next; w; w = next) {
        next = w->link.next;
        if (!sl__waiter_is_rvproxy(w))
            continue;
        sl_wq_remove(&ch->recvq_, w);
        sl__rsel_fire(w, -EPIPE);
    }
}

void sl__rsel_h_park(void *arg)
{
    rv_proxy *p = arg;
    sl_chan *ch = p->ch;
    /* freed since S read it (the PARK crossed the free), and the header
     * maybe another channel's now: -EPIPE, nothing counted on it
     * (tests/test_credit.c test_park_across_free_reuse) */
    if (!sl__chan_alive_gen(ch, p->gen) || (p->op == SL_SEND && (ch->closed_ || ch->receivers_gone_))) {
        h_fire_epipe(p);
        return;
    }
    ch->remote_seen_ = 1;
    ch->rv_out_++;
    sl__rsel_h_match(p);
}
/* p, counted in rv_out_, finds its counterpart as if it had just arrived */
void sl__rsel_h_match(rv_proxy *p)
{
    sl_chan *ch = p->ch;
    if (ch->freed_ || (p->op == SL_SEND && (ch->closed_ || ch->receivers_gone_))) {
        ch->rv_out_--;
        h_fire_epipe(p);
        return;
    }
    if (p->held) {   /* queued, then offered the head if there is one */
        p->hstate = H_QUEUED;
        sl_wq_push(&ch->recvq_, &p->w);
        sl__rsel_queued(p, 1);
        sl__rsel_offer_head(ch);
        return;
    }
    sl_wq *other = sl__rsel_queue_for(ch, p->op == SL_SEND ? SL_RECV : SL_SEND);
    for (sl_waiter *w = other->head; w; w = w->link.next) {
        if (!can_offer(w))
            continue;
        sl_wq_remove(other, w);
        p->until = w->until;   /* a send's element deadline (0: none), back with it if declined */
        if (w->task)
            sl__rsel_task_to_offer(w->task, p);
        else
            sl__remote_offered(w);
        sl__rsel_offer_to(p, w);
        return;
    }
    /* no plain waiter that offers: a select parked here waiting for the
     * other operation is claimed and offered */
    for (sl_waiter *w = other->head; w; w = w->link.next) {
        if (w->task && w->task->wait_kind_ == SL_WAIT_SELECT) {
            sl__rsel_claim_for(p, w);
            return;
        }
    }
    if (p->op == SL_RECV && (ch->closed_ || ch->senders_gone_)) {
        ch->rv_out_--;
        h_fire_epipe(p);
        return;
    }
    /* no plain waiter, no select here: another reactor's select with the
     * other operation, if the sending one may be held (two-phase) */
    rv_proxy *q = sl__rsel_first_partner(p);
    if (q) {
        if (p->op == SL_SEND)
            sl__rsel_hold_pair(p, q);
        else
            sl__rsel_hold_pair(q, p);
        return;
    }
    p->hstate = H_QUEUED;
    sl_wq_push(sl__rsel_queue_for(ch, p->op), &p->w);
    sl__rsel_queued(p, 1);
}

void sl__rsel_h_withdraw(void *arg)
{
    rv_proxy *p = arg;
    sl_chan *ch = p->ch;
    if (p->hstate == H_OFFERED || p->hstate == H_HOLDING)
        return;   /* R declines the offer / answers GONE: the answer frees it here */
    if (p->hstate == H_PAIRED) {   /* its partner's HOLD is out: the partner goes on alone */
        p->pair->pair = NULL;
        p->pair = NULL;
        ch->rv_out_--;
        p->hstate = H_FIRED;
        sl__rsel_at_hold(3);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
    } else if (p->hstate == H_QUEUED) {
        sl_wq_remove(sl__rsel_queue_for(ch, p->op), &p->w);
        sl__rsel_queued(p, -1);
        ch->rv_out_--;
        p->hstate = H_FIRED;
        if (ch->freed_)
            sl__chan_maybe_release(ch);
    }
    sl_reactor_post_mem(p->from, &p->ack, sl__rsel_r_ack, p);
}
/* O's wait ends with rc. */
static void cp_done(sl_waiter *cp, int rc)
{
    sl_task *t = cp->task;
    if (sl__waiter_is_rvproxy(cp)) {   /* a held select's proxy: accepted (rc 0) */
        sl__rsel_hold_commit(SL_CONTAINER_OF(cp, rv_proxy, w));
        return;
    }
    if (!t) {
        sl__remote_offer_end(cp, rc, false);
        return;
    }
    if (sl__rsel_is_select_case(cp)) {
        sl__rsel_select_done(t, cp, rc, 0);
        return;
    }
    t->reactor_->remote_pending--;
    t->w_.tag = 0;
    t->w_.until = 0;
    sl__wake(t, rc);
}
/* Declined: O goes on as if it had just arrived, first in line; a send
 * with an element deadline (`until`) keeps it. */
static void cp_retry(sl_chan *ch, sl_waiter *cp, int op, uint64_t until)
{
    sl_task *t = cp->task;
    if (sl__waiter_is_rvproxy(cp)) {   /* a held select's proxy: declined */
        sl__rsel_hold_abort(SL_CONTAINER_OF(cp, rv_proxy, w));
        return;
    }
    if (t && sl__rsel_is_select_case(cp)) {
        if (t->w_.tag == SL_OFFER_ABORT_TAG)
            sl__rsel_select_done(t, NULL, 0, t->w_.err);   /* its deadline or cancel came meanwhile */
        else
            sl__rsel_select_retry(t);
        return;
    }
    if (t ? t->w_.tag == SL_OFFER_ABORT_TAG : sl__remote_offer_aborted(cp)) {
        if (t)
            cp_done(cp, t->w_.err);   /* its deadline or cancel came meanwhile */
        else
            sl__remote_offer_end(cp, 0, true);
        return;
    }
    if (until && sl_now_ns() >= until) {   /* it expired while offered, declined: as a parked one would */
        cp_done(cp, -ETIMEDOUT);
        return;
    }
    int rc = op == SL_SEND ? sl__chan_do_send_until(ch, cp->buf, until) : sl__chan_do_recv(ch, cp->buf);
    if (rc != -EAGAIN) {
        cp_done(cp, rc);
        return;
    }
    rv_proxy *p = sl__rsel_first_proxy(ch, op);
    if (p) {
        if (t)
            t->w_.until = (uint64_t)(uintptr_t)p;
        p->until = until;
        sl__rsel_offer_to(p, cp);
        return;
    }
    /* parks again at the head of its queue: its place */
    if (t) {
        sl_reactor *r = t->reactor_;
        r->remote_pending--;
        t->w_.tag = 0;
        t->w_.until = until;   /* live_sender judges it again */
        t->wait_kind_ = (uint8_t)(op == SL_SEND ? SL_WAIT_SEND : SL_WAIT_RECV);
        sl__rsel_count_blocked(r, t);
    } else {
        sl__remote_requeued(cp);
    }
    sl_wq *q = sl__rsel_queue_for(ch, op);
    SL_LIST_PUSH_FRONT(q, cp, link);
    q->n++;
}

/* The channel was freed with p's offer out (sl_chan_free returned: a _mem
 * channel's storage may be the caller's again): the counterpart ends by
 * the answer alone, as a retry on the freed channel would (-EPIPE). */
static void answer_gone(rv_proxy *p)
{
    sl_waiter *cp = p->cp;
    sl__rsel_claim_unlink(p);
    if (!cp)
        sl__rsel_claim_orphans(p);
    if (cp && sl__waiter_is_rvproxy(cp)) {
        /* a held select's proxy: it kept the header (rv_out_) */
        rv_proxy *h = SL_CONTAINER_OF(cp, rv_proxy, w);
        sl_chan *ch = h->ch;
        if (p->accept)
            sl__rsel_hold_commit(h);
        else
            sl__rsel_hold_abort(h);   /* -EPIPE for its case: the channel is freed */
        if (p->busy)   /* S still waits: its case on the freed channel fails */
            h_fire_epipe(p);
        else
            free(p);
        sl__chan_maybe_release(ch);
        return;
    }
    if (cp && p->accept) {
        if (p->op == SL_SEND)
            memcpy(cp->buf, p->elem, p->esz);
        cp_done(cp, 0);
    } else if (cp && sl__rsel_is_select_case(cp)) {
        sl_task *t = cp->task;
        if (t->w_.tag == SL_OFFER_ABORT_TAG)
            sl__rsel_select_done(t, NULL, 0, t->w_.err);
        else
            sl__rsel_select_done(t, cp, -EPIPE, 0);   /* the offered channel is gone: as a parked case would */
    } else if (cp) {
        sl_task *t = cp->task;
        bool aborted = t ? t->w_.tag == SL_OFFER_ABORT_TAG : sl__remote_offer_aborted(cp);
        if (!t)
            sl__remote_offer_end(cp, -EPIPE, aborted);
        else
            cp_done(cp, aborted ? t->w_.err : -EPIPE);
    }
    if (p->busy)   /* a claim refused busy: p's select still waits, its case on the freed channel fails */
        h_fire_epipe(p);
    else
        free(p);
}

void sl__rsel_chan_freed(sl_chan *ch)
{
    /* selects of this reactor claimed for an offer have no node on ch's
     * queues: a case on ch is marked gone (-EPIPE if declined), not read
     * again. The offered case itself is the offer's (ch_gone, below). */
    for (rv_proxy *p = ch->home_ ? ch->home_->rsel_claims.head : NULL; p; p = p->clink.next) {
        if (!p->cp)
            continue;
        sl_task *t = p->cp->task;
        sl_case *cases = t->wait_obj_;
        for (int i = 0; i < t->w_.idx; i++)
            if (cases[i].ch == ch && &cases[i].w_ != p->cp)
                cases[i].w_.tag = SL_CASE_GONE;
    }
    /* selects of this reactor held for another reactor's meet: likewise */
    for (rv_proxy *p = ch->home_ ? ch->home_->rsel_holds.head : NULL; p; p = p->hlink.next) {
        sl_task *t = p->task;
        sl_case *cases = t->wait_obj_;
        for (int i = 0; i < t->w_.idx; i++)
            if (cases[i].ch == ch && !cases[i].w_.tag)
                cases[i].w_.tag = SL_CASE_GONE;
    }
    if (ch->cap_)
        return;   /* held heads: the header waits for their answers (rv_out_), which destroy a declined one */
    for (rv_proxy *p = ch->rv_offers_.head; p; p = p->olink.next) {
        p->ch_gone = true;
        ch->rv_out_--;
        if (p->cp && !p->cp->task && !sl__waiter_is_rvproxy(p->cp))
            sl__remote_chan_gone(p->cp);
    }
    ch->rv_offers_.head = ch->rv_offers_.tail = NULL;   /* detached: their links are not read again */
}

/* The answer to p's offer came: p leaves ch's offers out. */
static void offer_answered(sl_chan *ch, rv_proxy *p)
{
    ch->rv_out_--;
    SL_LIST_REMOVE(&ch->rv_offers_, p, olink);
}

void sl__rsel_h_answer(void *arg)
{
    rv_proxy *p = arg;
    if (p->held) {
        sl_chan *ch = p->ch;
        offer_answered(ch, p);
        sl__chan_held_back(ch, p->elem, p->until, p->accept);
        free(p);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
        else
            sl__rsel_offer_head(ch);   /* the next element to the next proxy */
        return;
    }
    if (p->ch_gone) {
        answer_gone(p);
        return;
    }
    sl_chan *ch = p->ch;
    sl_waiter *cp = p->cp;
    offer_answered(ch, p);
    sl__rsel_claim_unlink(p);
    if (!cp)
        sl__rsel_claim_orphans(p);
    if (p->busy) {
        /* refused busy (wait-die): S waits, busy (held or claimed) for
         * another meet. p waits again in its place, skipped until S's
         * REMATCH (sl__rsel_h_rematch); the busy select that offered (held, or
         * claimed here) is aborted and matched again, and finds p skipped,
         * so the pair is not tried again while S is busy */
        p->busy = false;
        ch->rv_out_++;
        if (ch->closed_ || (p->op == SL_SEND ? ch->receivers_gone_ : ch->senders_gone_)) {   /* it fails (R waits for the busy period's end) */
            ch->rv_out_--;
            h_fire_epipe(p);
        } else {
            p->hbusy = true;
            p->hstate = H_QUEUED;
            sl_wq *q = sl__rsel_queue_for(ch, p->op);
            SL_LIST_PUSH_FRONT(q, &p->w, link);
            q->n++;
            sl__rsel_queued(p, 1);
        }
        if (cp)
            cp_retry(ch, cp, p->op == SL_SEND ? SL_RECV : SL_SEND, 0);   /* sl__rsel_hold_abort, or sl__rsel_select_retry */
        return;
    }
    if (cp && p->accept) {
        if (p->op == SL_SEND)   /* O receives the select's element */
            memcpy(cp->buf, p->elem, ch->elem_size_);
        ch->sent_++;
        ch->received_++;
        cp_done(cp, 0);
    } else if (cp) {
        cp_retry(ch, cp, p->op == SL_SEND ? SL_RECV : SL_SEND, p->until);
    }
    free(p);
    if (ch->freed_)
        sl__chan_maybe_release(ch);
}

/* Close, free, the last end of the other side: a queued proxy fires -EPIPE. */
void sl__rsel_fire(sl_waiter *w, int err)
{
    rv_proxy *p = SL_CONTAINER_OF(w, rv_proxy, w);
    (void)err;   /* the only error a queued proxy is failed with */
    sl__rsel_queued(p, -1);
    p->ch->rv_out_--;
    h_fire_epipe(p);
}

/* Teardown: a proxy still queued has no select any more (every reactor
 * drained): it goes. */
void sl__rsel_drop_queued(sl_waiter *w)
{
    rv_proxy *p = SL_CONTAINER_OF(w, rv_proxy, w);
    sl__rsel_queued(p, -1);
    p->ch->rv_out_--;
    free(p);
}
/* O's deadline or cancel while its offer is out: it cannot walk away (its
 * element may be moving); the answer ends its wait, with 0 if accepted,
 * else with this error (t->w_.err, set by the caller). Once the runtime
 * stops it is only forgotten (no offer is out after the teardown's first
 * drain: this is for a task destroyed with one out all the same). */
void sl__rsel_task_abort(sl_task *t)
{
    if (t->w_.tag != SL_OFFER_TAG)
        return;
    if (t->reactor_->tearing_down || atomic_load(&t->reactor_->stopping)) {
        rv_proxy *p = (rv_proxy *)(uintptr_t)t->w_.until;
        if (p->from == t->reactor_ && p->hold_r) {   /* held here: the verdict finds no task */
            sl__rsel_hold_unlink(p);
            p->task = NULL;
            p->c->w_.until = 0;   /* forgotten, not withdrawn */
            sl__select_detach_proxies(t);   /* its other proxies forget it too */
        } else {
            if (p->claim)   /* a select claimed here: its proxies elsewhere forget it */
                sl__select_detach_proxies(t);
            p->cp = NULL;   /* the answer runs what waited for it (sl__rsel_claim_orphans) */
        }
        t->w_.tag = 0;
        return;
    }
    t->w_.tag = SL_OFFER_ABORT_TAG;
}
