/* rsel_busy.c: a busy select, held at R for a meet or claimed at its home
 * (issue 17; docs/core.md "A held select with proxies at several homes",
 * "A claimed select with cases elsewhere"): messages for its other proxies
 * wait until the busy period ends (defer, run_deferred), except an offer
 * refused busy by wait-die (rsel.c's offer_decide), whose proxy waits
 * skipped at its home until the REMATCH sent here. */
#include <stdint.h>
#include "rsel.h"

busy_q sl__rsel_busy_list(const sl_task *t)
{
    if (!t || t->wait_kind_ != SL_WAIT_REMOTE)
        return (busy_q){ NULL, NULL };
    rv_proxy *hp = (rv_proxy *)(uintptr_t)t->w_.until;
    if (hp->from == t->reactor_)
        return (busy_q){ &hp->dhead, &hp->dtail };
    return (busy_q){ &hp->chead, &hp->ctail };
}

/* An H -> R message for p came while S is held for hp: it waits, in
 * order, until the hold ends (sl__rsel_run_deferred). Nothing is allocated: the
 * links are p's. Such a wait cannot be part of a cycle: what waits here
 * is an offer from a counterpart that no one can wait for (a task, a
 * round trip, an expiring channel's head, a claimed select with no proxy
 * anywhere: sid 0), or from a busy select (held, or claimed with proxies
 * elsewhere) of a lower sid (wait-die, offer_decide), or a HOLD or an
 * EPIPE, which make nobody busy; and a busy period ends once its one
 * offer is answered. */
void sl__rsel_defer(busy_q q, rv_proxy *p, void (*fn)(void *))
{
    p->dfn = fn;
    p->dnext = NULL;
    if (*q.tail)
        (*q.tail)->dnext = p;
    else
        *q.head = p;
    *q.tail = p;
    sl__rsel_at_hold(4);
}

/* S's hold has ended: what waited for it runs, as if it came now; then,
 * if S waits free again (not fired, not held once more by a HOLD that
 * waited), every proxy of S refused busy meanwhile is matched again at
 * its home (REMATCH), so that no meet refused busy waits for a deadline. */
void sl__rsel_run_deferred(rv_proxy *d, sl_task *t)
{
    while (d) {
        rv_proxy *next = d->dnext;
        d->dnext = NULL;
        d->dfn(d);
        d = next;
    }
    if (!t || t->wait_kind_ != SL_WAIT_SELECT)
        return;
    sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++) {
        rv_proxy *q = cases[i].w_.tag == SL_CASE_RV ? sl__rsel_proxy_of(&cases[i]) : NULL;
        if (!q || !q->busy_r)
            continue;
        q->busy_r = false;
        q->rematched = true;
        sl_reactor_post_mem(q->home, &q->rm, sl__rsel_h_rematch, q);
        sl__rsel_at_hold(7);
    }
}
/* S, refused busy for p, waits free again: p (queued, skipped) is matched
 * again as if it had just arrived. Anything else (withdrawn, fired -EPIPE
 * by a close, matched already) leaves nothing to do: R frees p only at an
 * ACK once a REMATCH went, so p is alive here. */
void sl__rsel_h_rematch(void *arg)
{
    rv_proxy *p = arg;
    if (p->hstate != H_QUEUED || !p->hbusy)
        return;
    p->hbusy = false;
    sl_wq_remove(sl__rsel_queue_for(p->ch, p->op), &p->w);
    sl__rsel_queued(p, -1);
    sl__rsel_at_hold(6);
    sl__rsel_h_match(p);
}
