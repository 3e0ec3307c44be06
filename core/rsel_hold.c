/* rsel_hold.c: two selects of other reactors meet at the home in two
 * phases (issue 17; docs/core.md "Two selects of other reactors meet at the
 * home"): H pairs a send proxy S1 (R1) with a receive proxy, asks R1 to
 * HOLD S1, offers S1's element once HELD, and sends COMMIT or ABORT by the
 * answer. Both sides are here: R1's (r_hold, r_commit, r_abort) and H's. */
#include <stdint.h>
#include <stdlib.h>
#include "rsel.h"

/* ---- R: a select held for a meet with another reactor's select at H ----
 *
 * H found S's send proxy p and another select's receive proxy queued on
 * one channel and asks R to HOLD S for p's case. S still waiting: every
 * node of S leaves R's queues (its only other cases are on R's channels:
 * sl__select_holdable), so nothing here can fire it, and S waits for H's
 * verdict as a cross-reactor wait, as a claimed select at H does (its
 * deadline and cancel wait for the verdict: SL_OFFER_TAG). HELD goes
 * back; p already holds S's element. Else GONE (S's WITHDRAW went first).
 * COMMIT: p's case returns 0. ABORT: S is matched again with its cases
 * here (its proxy is H's again, re-matched there): nothing to re-post,
 * nothing allocated. */

static void h_held(void *arg);

void sl__rsel_hold_unlink(rv_proxy *p)
{
    sl_reactor *r = p->from;
    p->hold_r = false;
    SL_LIST_REMOVE(&r->rsel_holds, p, hlink);
}

/* A HOLD for S while S is held for another proxy (two homes hold it at
 * once) waits until that hold ends: GONE if S fired, else held then. */
static void hold_decide(void *arg)
{
    rv_proxy *p = arg;
    sl_task *t = p->task;
    busy_q hq = sl__rsel_busy_list(t);
    if (hq.head) {
        sl__rsel_defer(hq, p, hold_decide);
        return;
    }
    p->gone = !t;
    if (t) {
        sl_reactor *r = p->from;
        p->dhead = p->dtail = NULL;
        sl__select_hold(t);
        t->wait_kind_ = SL_WAIT_REMOTE;   /* counted in remote_pending already (SL_SELR_TAG) */
        t->w_.tag = SL_OFFER_TAG;
        t->w_.until = (uint64_t)(uintptr_t)p;
        p->hold_r = true;
        SL_LIST_PUSH_FRONT(&r->rsel_holds, p, hlink);
        sl__rsel_at_hold(1);
    }
    sl_reactor_post_mem(p->home, &p->go, h_held, p);
}

static void r_hold(void *arg)
{
    sl__rsel_at_hold(0);
    hold_decide(arg);
}

/* S leaves the hold: a select again, its proxy p attached to case c */
static sl_task *hold_end(rv_proxy *p)
{
    sl_task *t = p->task;
    if (!t)
        return NULL;   /* forgotten at teardown */
    sl__rsel_hold_unlink(p);
    t->wait_kind_ = SL_WAIT_SELECT;
    t->w_.until = 0;
    return t;
}

/* S wakes with case i (its nodes are off every queue here); its proxies
 * still attached (p's too, unless committed) are withdrawn at their homes */
static void held_wake(sl_task *t, int i)
{
    sl_reactor *r = t->reactor_;
    sl__select_detach_proxies(t);
    sl__select_unpin(t);
    t->w_.tag = 0;
    r->remote_pending--;
    sl__wake(t, i);
}

static void r_commit(void *arg)
{
    rv_proxy *p = arg;
    rv_proxy *d = p->dhead;
    sl_task *t = hold_end(p);
    if (t) {
        sl_case *c = p->c;
        c->w_.until = 0;   /* H forgot p: not withdrawn */
        c->err = 0;
        c->w_.err = 0;
        held_wake(t, c->w_.idx);
    }
    free(p);
    sl__rsel_run_deferred(d, NULL);   /* S fired: they find it gone */
}

static void r_abort(void *arg)
{
    rv_proxy *p = arg;
    rv_proxy *d = p->dhead;
    p->dhead = p->dtail = NULL;
    sl_task *t = hold_end(p);
    if (!t) {
        sl__rsel_run_deferred(d, NULL);
        return;   /* H owns p again */
    }
    if (t->w_.tag == SL_OFFER_ABORT_TAG) {   /* its deadline or cancel came meanwhile */
        int err = t->w_.err;
        held_wake(t, err);
        sl__rsel_run_deferred(d, NULL);
        return;
    }
    t->w_.tag = SL_OFFER_TAG;   /* not SL_SELR_TAG yet: held_wake counts it down */
    int i = sl__select_rematch(t);
    if (i >= 0) {
        held_wake(t, i);
        sl__rsel_run_deferred(d, NULL);
        return;
    }
    t->w_.tag = SL_SELR_TAG;   /* parked with a remote case, as before */
    sl__select_put_back(t);
    sl__rsel_run_deferred(d, t);
    sl__rsel_reclaim(t);   /* a proxy that came for one of its cases here meanwhile */
}
/* ---- H: two selects of other reactors meet (two-phase) -------------------- */

/* The first proxy queued on p's channel that p may meet in two phases:
 * of the other operation, the sending one holdable, not refused busy
 * (waiting for its REMATCH), and not of p's own select (a select never
 * meets itself: it would wait on its own hold) */
rv_proxy *sl__rsel_first_partner(const rv_proxy *p)
{
    sl_chan *ch = p->ch;
    int op = p->op == SL_SEND ? SL_RECV : SL_SEND;
    if ((p->op == SL_SEND && !p->holdable) || !*sl__rsel_count_for(ch, op))
        return NULL;
    for (sl_waiter *w = sl__rsel_queue_for(ch, op)->head; w; w = w->link.next) {
        if (!sl__waiter_is_rvproxy(w))
            continue;
        rv_proxy *q = SL_CONTAINER_OF(w, rv_proxy, w);
        if (!q->hbusy && q->sid != p->sid && (op == SL_RECV || q->holdable))
            return q;
    }
    return NULL;
}

/* s (a send proxy) and r (a receive proxy) leave their queues; R1 is asked
 * to hold s's select */
void sl__rsel_hold_pair(rv_proxy *s, rv_proxy *r)
{
    rv_proxy *both[2] = { s, r };
    for (int i = 0; i < 2; i++)
        if (both[i]->hstate == H_QUEUED) {
            sl_wq_remove(sl__rsel_queue_for(both[i]->ch, both[i]->op), &both[i]->w);
            sl__rsel_queued(both[i], -1);
        }
    s->hstate = H_HOLDING;
    r->hstate = H_PAIRED;
    s->pair = r;
    r->pair = s;
    sl_reactor_post_mem(s->from, &s->back, r_hold, s);
    sl__rsel_at_hold(2);
}

/* The verdict on a held select: COMMIT (its case returns 0; R1 frees p) */
void sl__rsel_hold_commit(rv_proxy *p)
{
    p->hstate = H_FIRED;
    p->ch->rv_out_--;   /* the caller releases a freed header */
    sl_reactor_post_mem(p->from, &p->ack, r_commit, p);
}

/* ... or ABORT: R1 matches S again; p is matched again here as if it had
 * just arrived (a plain receiver, another proxy, queued; -EPIPE if closed).
 * ABORT goes by p->ack: no ACK can be in flight (S cannot withdraw p while
 * held), and p->back may carry the next offer at once. */
void sl__rsel_hold_abort(rv_proxy *p)
{
    p->hstate = H_NEW;
    sl_reactor_post_mem(p->from, &p->ack, r_abort, p);
    sl__rsel_h_match(p);
}

/* R1's answer to the HOLD */
static void h_held(void *arg)
{
    rv_proxy *p = arg;
    sl_chan *ch = p->ch;
    rv_proxy *r = p->pair;
    p->pair = NULL;
    if (r) {
        r->pair = NULL;
        r->hstate = H_NEW;
    }
    if (p->gone) {   /* S fired elsewhere or stopped: its WITHDRAW came and was not answered */
        ch->rv_out_--;
        free(p);
        if (r)
            sl__rsel_h_match(r);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
        return;
    }
    if (!r || ch->freed_ || ch->closed_ || ch->receivers_gone_) {
        sl__rsel_hold_abort(p);   /* closed or freed: -EPIPE for S's case, after the ABORT */
        if (r)
            sl__rsel_h_match(r);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
        return;
    }
    /* S is held: its element, in p, is offered to r's select as a sender
     * at H would offer it; p stays HOLDING, the offer's counterpart */
    p->until = 0;
    r->until = 0;
    sl__rsel_offer_to(r, &p->w);
}
