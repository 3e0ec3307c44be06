/* rsel_diag.c: what diag.c reads of sl_select's cases by offer (issue 17;
 * docs/core.md "Rendezvous cases by offer"): a select claimed or held for
 * an offer, the messages waiting for it, a blocking task's offer on a
 * freed channel, a case's channel name. Each runs on the thread it says. */
#include <stdint.h>
#include "rsel.h"

/* Diagnostics (diag.c): a select claimed at H or held at R waits as a
 * cross-reactor wait while its offer is out (SL_WAIT_REMOTE, an offer
 * tag, its proxy in w_.until), but its wait object is still its cases,
 * not a channel as a blocking task's is. */
bool sl__rsel_select_offered(const sl_task *t)
{
    if (t->wait_kind_ != SL_WAIT_REMOTE || (t->w_.tag != SL_OFFER_TAG && t->w_.tag != SL_OFFER_ABORT_TAG))
        return false;
    const rv_proxy *p = (const rv_proxy *)(uintptr_t)t->w_.until;
    return p && (p->from == t->reactor_ ? p->hold_r : p->claim);   /* its own proxy: held; another's: claimed */
}

/* Diagnostics of a select held by another reactor's meet (diag.c, on its
 * reactor's thread): how many messages for its other proxies wait for the
 * verdict (offers, HOLDs, EPIPEs: defer), or -1 if it is not held. */
int sl__rsel_held_waiting(const sl_task *t)
{
    if (!sl__rsel_select_offered(t))
        return -1;
    const rv_proxy *p = (const rv_proxy *)(uintptr_t)t->w_.until;
    if (p->from != t->reactor_)
        return -1;   /* claimed: sl__rsel_claim_waiting */
    int n = 0;
    for (const rv_proxy *d = p->dhead; d; d = d->dnext)
        n++;
    return n;
}

/* ... of a select claimed here for another reactor's select: how many
 * messages for its proxies elsewhere wait for the answer, or -1 */
int sl__rsel_claim_waiting(const sl_task *t)
{
    if (!sl__rsel_select_offered(t))
        return -1;
    const rv_proxy *p = (const rv_proxy *)(uintptr_t)t->w_.until;
    if (p->from == t->reactor_ || !sl__select_has_proxies(t))
        return -1;   /* held (sl__rsel_held_waiting), or nothing can wait for it */
    int n = 0;
    for (const rv_proxy *d = p->chead; d; d = d->dnext)
        n++;
    return n;
}

int sl__rsel_claim_from(const sl_task *t)
{
    return sl_reactor_id(((const rv_proxy *)(uintptr_t)t->w_.until)->from);
}

int sl__rsel_held_home(const sl_task *t)
{
    return sl_reactor_id(((const rv_proxy *)(uintptr_t)t->w_.until)->home);
}

/* Diagnostics (diag.c, on the home's thread): a task of ours whose offer
 * is out (a blocking one, or a select claimed for it) on a channel freed
 * since (ch_gone: the offer did not keep the header, which may be
 * released): its offering waiter, whose channel is not to be read; else
 * NULL. A select held at R (hold_r) is not offering here. */
const sl_waiter *sl__rsel_offer_gone(const sl_task *t)
{
    if (t->wait_kind_ != SL_WAIT_REMOTE || (t->w_.tag != SL_OFFER_TAG && t->w_.tag != SL_OFFER_ABORT_TAG))
        return NULL;
    const rv_proxy *p = (const rv_proxy *)(uintptr_t)t->w_.until;
    return p && !p->hold_r && p->ch_gone ? p->cp : NULL;
}

/* Diagnostics (diag.c, on R's thread): the name and capacity of the
 * channel of S's case c by offer, from its proxy (cname, ccap: R's, set
 * before the first post, never written after). Read only while
 * c->w_.until points at the proxy, and the proxy is alive then: every
 * path that frees it clears that first, or frees it after a message R
 * posted once it had: R clears it before it frees (sl__rsel_detach for
 * one never posted, sl__rsel_r_epipe, r_commit) or before the message after which
 * H or R frees (sl__rsel_detach's WITHDRAW: H's GONE or declining answer,
 * R's ACK; offer_decide's accept: sl__rsel_h_answer; sl__rsel_task_abort at
 * teardown). A proxy refused busy (offer_decide, busy) stays attached and
 * H keeps it queued (sl__rsel_h_answer: p->busy), never freeing it while S waits:
 * it fails to R by an EPIPE (h_fire_epipe), which R frees after clearing.
 * False, *name NULL, if c has no proxy. */
bool sl__rsel_case_info(const sl_case *c, const char **name, size_t *cap)
{
    const rv_proxy *p = sl__rsel_proxy_of(c);
    *name = p ? p->cname : NULL;
    *cap = p ? p->ccap : 0;
    return p != NULL;
}
