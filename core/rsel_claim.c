/* rsel_claim.c: H, a select parked at the home *claimed* for another
 * reactor's proxy (issue 17; docs/core.md "A select at the home meets a
 * remote select", "A claimed select with cases elsewhere"): its nodes
 * leave our queues and its case offers itself as a blocking task does;
 * declined, it is matched again; the messages for its proxies elsewhere
 * wait on the claim meanwhile (rsel_busy.c). */
#include <stdint.h>
#include "rsel.h"

/* A select S_H parked here, its case node w offered to p: every node of
 * S_H in a queue of ours leaves it, so no local operation, match, close or
 * free finds it while the offer is out (docs/core.md "A select at the home
 * meets a remote select"); S_H waits for the answer as a blocking task
 * whose offer is out does. Its proxies at other homes stay there: S_H is
 * busy meanwhile, and what reaches them waits here on p's claim list or is
 * refused busy (docs/core.md "A claimed select with cases elsewhere"); for
 * that the offer carries S_H's sid, as a held select's does, so that two
 * busy selects offering to each other cannot wait for each other. */
void sl__rsel_claim_for(rv_proxy *p, sl_waiter *w)
{
    sl_task *t = w->task;
    bool far = sl__select_has_proxies(t);   /* someone may wait for it: it needs a sid */
    bool local = sl__select_local_only(t);
    sl__select_take(t);
    sl__rsel_task_to_offer(t, p);
    p->claim = true;
    p->chead = p->ctail = NULL;
    SL_LIST_PUSH_FRONT(&p->home->rsel_claims, p, clink);
    sl__rsel_offer_as(p, w, far ? t->id_ : 0);
    if (!local)
        sl__rsel_at_hold(8);
}
/* A claimed select leaves H's list of claims (its offer answered). */
void sl__rsel_claim_unlink(rv_proxy *p)
{
    if (!p->claim)
        return;
    p->claim = false;
    SL_LIST_REMOVE(&p->home->rsel_claims, p, clink);
}

bool sl__rsel_is_select_case(const sl_waiter *cp)
{
    return cp->task && cp != &cp->task->w_;
}

/* The messages that waited for claimed t (its claim proxy still alive:
 * the answer frees it after this), taken off the claim */
static rv_proxy *claim_waiting(sl_task *t)
{
    rv_proxy *p = (rv_proxy *)(uintptr_t)t->w_.until;
    rv_proxy *d = p->chead;
    p->chead = p->ctail = NULL;
    return d;
}

/* The answer came for a claim whose select was forgotten at teardown:
 * what waited for it runs, finding no select */
void sl__rsel_claim_orphans(rv_proxy *p)
{
    rv_proxy *d = p->chead;
    p->chead = p->ctail = NULL;
    sl__rsel_run_deferred(d, NULL);
}

/* A claimed select's wait ends: with its case cp (rc: the case's result),
 * or with err (its deadline or cancel, declined) if cp is NULL. */
void sl__rsel_select_done(sl_task *t, sl_waiter *cp, int rc, int err)
{
    rv_proxy *d = claim_waiting(t);
    t->reactor_->remote_pending--;
    t->w_.tag = 0;
    t->w_.until = 0;
    sl__select_detach_proxies(t);   /* its proxies elsewhere are withdrawn */
    sl__select_unpin(t);
    if (!cp) {
        sl__wake(t, err);
    } else {
        SL_CONTAINER_OF(cp, sl_case, w_)->err = rc;
        cp->err = rc;
        sl__wake(t, cp->idx);
    }
    sl__rsel_run_deferred(d, NULL);   /* S_H stopped: what waited finds it gone */
}
bool sl__rsel_claim(sl_task *t, sl_case *c)
{
    rv_proxy *p = sl__rsel_first_proxy(c->ch, c->op);
    if (!p)
        return false;
    sl__rsel_claim_for(p, &c->w_);
    return true;
}

/* Declined (and no deadline or cancel came): S_H is matched again, as at
 * sl_select's start: a case ready now (a local operation that found no
 * node meanwhile and parked, a channel closed) completes; else its nodes
 * go back to their places, and a case with another proxy queued is
 * claimed again. */
void sl__rsel_select_retry(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    rv_proxy *d = claim_waiting(t);
    r->remote_pending--;
    t->w_.tag = 0;
    t->w_.until = 0;
    t->wait_kind_ = SL_WAIT_SELECT;
    int i = sl__select_rematch(t);
    if (i >= 0) {
        sl__select_detach_proxies(t);   /* its proxies elsewhere are withdrawn */
        sl__select_unpin(t);
        sl__wake(t, i);
        sl__rsel_run_deferred(d, NULL);   /* S_H fired: what waited finds it gone */
        return;
    }
    if (sl__select_local_only(t)) {
        sl__rsel_count_blocked(r, t);
    } else {
        t->w_.tag = SL_SELR_TAG;   /* parked with a remote case, as before the claim */
        r->remote_pending++;
    }
    sl__select_put_back(t);
    sl__rsel_run_deferred(d, t);   /* then REMATCH for its proxies refused busy meanwhile */
    sl__rsel_reclaim(t);
}

/* t, parked here free again (after a claim or a hold ended), is claimed
 * again if another proxy waits on one of its cases on our rendezvous
 * channels */
void sl__rsel_reclaim(sl_task *t)
{
    if (t->wait_kind_ != SL_WAIT_SELECT || !t->reactor_->rv_queued)
        return;   /* fired or held again by what waited; or no proxy here */
    sl_case *cases = t->wait_obj_;
    for (int j = 0; j < t->w_.idx; j++)
        if (!cases[j].w_.tag && !cases[j].ch->cap_ && sl__rsel_claim(t, &cases[j]))
            return;
}
