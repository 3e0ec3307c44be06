/* rsel.c: sl_select cases on another reactor's rendezvous channel, and
 * receive cases on its expiring channel, by offer (issue 17; docs/core.md
 * "Rendezvous cases by offer").
 *
 * On an expiring channel the counterpart is the head element: H takes it
 * out of the ring into the first receive proxy and offers it, held (no
 * receive at H goes past it, chan.c rv_held_) until the answer; accepted,
 * it is received; declined, it goes back first (sl__chan_held_back). Its
 * deadline is judged at the offer. A free with one held waits for the
 * answer (rv_out_ keeps the header), which destroys a declined element.
 *
 * A rendezvous case can be decided neither where the select waits (only
 * the home sees the counterpart) nor at the home (the select may fire
 * another case on its own thread at the same moment). So a select S on
 * reactor R that parks posts a PROXY per such case to the channel's home
 * H, where it waits in the channel's queue; a blocking counterpart O at H
 * (sl_chan_send/recv there, or another reactor's round trip, remote.c)
 * that finds no plain waiter but a proxy takes the proxy off, waits in no
 * queue, and OFFERs itself to R. R accepts iff S still waits (the proxy
 * is still attached to it): the case fires there, on R's thread, which
 * detaches S's other proxies; else it declines. At H, an accept completes
 * O; a decline lets O go on as if it had just arrived, first in line.
 *
 * One proxy, one record, owned in turn by the side that holds it. The
 * messages (each embedded: nothing is allocated after the proxy itself):
 *   R -> H  go      PARK, later the ANSWER to an offer, or HELD / GONE
 *                   (the HOLD's answer); one at a time
 *   R -> H  wd      WITHDRAW: S stopped waiting (fired elsewhere, deadline,
 *                   cancel) while the proxy was not accepted
 *   H -> R  back    OFFER, HOLD, or EPIPE (closed or freed: the case fires -EPIPE)
 *   H -> R  ack     the WITHDRAW's answer, when no offer or hold is out; or
 *                   COMMIT / ABORT of a held S (no WITHDRAW can go while held)
 * Who frees it: H after an ANSWER or a GONE (R forgot it when it answered);
 * R at an ACK (every earlier H -> R message of the proxy has arrived, and H
 * touches it no more), at a COMMIT, or at an EPIPE while S still waits (no
 * WITHDRAW will go). A WITHDRAW that finds an offer or a hold out is not
 * answered: the offer or HOLD reaches R after S stopped, so R declines (or
 * answers GONE), and H frees at that.
 *
 * Counterparts that can wait a round trip offer; try_send/try_recv skip
 * proxies. A select at the home whose cases are all on its channels is
 * *claimed* for a proxy of the other operation (claim): its nodes leave
 * their queues, so nothing at the home can fire it, and its case offers
 * itself as a blocking counterpart does; declined, it is matched again
 * (sl__rsel_select_retry). Plain waiters go before proxies: a counterpart that
 * finds one completes at once.
 *
 * Two proxies of other reactors' selects, a send S1 (R1) and a receive S2
 * (R2), meet in two phases (docs/core.md "Two selects of other reactors
 * meet at the home"): H takes both off their queues and asks R1 to HOLD
 * S1 (r_hold: its nodes off R1's queues, as H claims a select); HELD: H
 * offers S1's element (already in the proxy) to S2 with the existing
 * offer, the held proxy as counterpart; S2's answer becomes COMMIT or
 * ABORT to R1 (by p->ack). Aborted, R1 matches S1 again with what it has
 * (nothing re-posted), and H matches the proxy again as if it had just
 * arrived. GONE (S1 fired before the HOLD came): H frees the proxy and
 * matches S2's again.
 *
 * S1 may have proxies at other homes ("A held select with proxies at
 * several homes"): an OFFER, HOLD or EPIPE reaching one while S1 is held
 * waits at R1 until the hold ends (defer, sl__rsel_run_deferred), except an offer
 * from another held select of a higher sid, which is refused busy at once
 * (wait-die: waits go only from a lower sid to a higher one, so they
 * cannot cycle). The refused proxy waits at its home skipped (hbusy) until
 * R1, S1 free again, sends REMATCH (sl__rsel_h_rematch).
 *
 * This file: R, the select's side and its proxy's life (prepare, post,
 * detach; an offer decided, EPIPE, ACK) and the tests' hooks. H's side and
 * the meets are in core/rsel_*.c, one idea each: the map is at the top of
 * core/rsel.h, which holds the proxy record. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "rsel.h"

static _Atomic int fail_at = -1;

void sl__rsel_inject_failure(int nth)
{
    atomic_store(&fail_at, nth);
}

/* Tests force interleavings here (set before the runtime runs, or on
 * the thread that calls them): at R before an offer is decided, at H
 * right after an offer is posted (it leaves at the callback's end). */
static void (*hook_r_offer)(void *);
void (*sl__rsel_hook_h_offer)(void *);
void *sl__rsel_hook_arg;

void sl__rsel_set_hooks(void (*at_r_offer)(void *), void (*at_h_offer)(void *), void *arg)
{
    hook_r_offer = at_r_offer;
    sl__rsel_hook_h_offer = at_h_offer;
    sl__rsel_hook_arg = arg;
}

/* ... and around a two-phase meet: phase 0 at R1 before a HOLD is decided,
 * 1 at R1 right after S was held, 2 at H right after the HOLD was posted,
 * 3 at H when the paired receive proxy was withdrawn with the HOLD out;
 * 4 at R when a message for a held select's other proxy waits (deferred),
 * 5 at R right after an offer was refused busy (wait-die), 6 at H when a
 * proxy refused busy is matched again (REMATCH), 7 at R right after a
 * REMATCH was posted; 8 at H right after a select with cases elsewhere
 * was claimed (its offer posted) */
void (*sl__rsel_hook_hold)(void *, int);
void *sl__rsel_hook_hold_arg;

void sl__rsel_set_hold_hook(void (*at_hold)(void *, int), void *arg)
{
    sl__rsel_hook_hold = at_hold;
    sl__rsel_hook_hold_arg = arg;
}

/* ---- R: the select's side -------------------------------------------------- */

int sl__rsel_prepare(sl_task *t, sl_case *c)
{
    int n = atomic_load(&fail_at);
    if (n >= 0 && atomic_fetch_sub(&fail_at, 1) == 0)
        return -ENOMEM;   /* the tests' injected failure (fail_at is -1 now) */
    rv_proxy *p = malloc(sizeof *p + c->ch->elem_size_);
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p);
    p->w.idx = -1;   /* sl__waiter_is_rvproxy */
    p->w.buf = p->elem;
    p->ch = c->ch;
    p->gen = c->gen_;
    p->op = c->op;
    p->from = t->reactor_;
    p->home = c->ch->home_;
    p->esz = c->ch->elem_size_;
    p->held = c->ch->cap_ != 0;   /* set at creation: safe to read here */
    p->cname = c->ch->name_;
    p->ccap = c->ch->cap_;
    p->c = c;
    if (c->op == SL_SEND)
        memcpy(p->elem, c->buf, c->ch->elem_size_);   /* the select's caller keeps its element */
    c->w_.until = (uint64_t)(uintptr_t)p;
    return 0;
}

/* S parked: the proxy goes home. */
void sl__rsel_post(sl_task *t, sl_case *c)
{
    rv_proxy *p = sl__rsel_proxy_of(c);
    p->task = t;
    p->posted = true;
    p->holdable = p->op == SL_SEND && !p->held;
    p->sid = t->id_;
    sl_reactor_post_mem(p->home, &p->go, sl__rsel_h_park, p);
}

/* S stops waiting (another case fired, deadline, cancel, teardown): the
 * proxy is withdrawn at H. One never posted (the park failed) is freed. */
void sl__rsel_detach(sl_reactor *r, sl_case *c)
{
    rv_proxy *p = sl__rsel_proxy_of(c);
    c->w_.until = 0;
    if (!p)
        return;
    if (!p->posted) {
        free(p);
        return;
    }
    p->task = NULL;
    if (!r->tearing_down)   /* teardown: the home's teardown drops it */
        sl_reactor_post_mem(p->home, &p->wd, sl__rsel_h_withdraw, p);
}

/* An offer from H: accepted iff S still waits in this select. While S is
 * held for another proxy, an offer from a held select (osid) of a higher
 * sid than S's is refused busy at once (wait-die: it "dies", its hold is
 * aborted at its home, and p is skipped there until S's REMATCH); any
 * other waits until S's hold ends. Waits thus only go from a lower sid to
 * a higher one among held selects, and cannot form a cycle. */
static void offer_decide(void *arg)
{
    rv_proxy *p = arg;
    sl_task *t = p->task;
    busy_q hq = sl__rsel_busy_list(t);
    if (hq.head && (!p->osid || p->osid < p->sid)) {
        sl__rsel_defer(hq, p, offer_decide);
        return;
    }
    if (hq.head) {
        p->accept = false;
        p->busy = true;
        p->busy_r = true;
        sl_reactor_post_mem(p->home, &p->go, sl__rsel_h_answer, p);   /* H queues it again, skipped */
        sl__rsel_at_hold(5);
        return;
    }
    p->accept = t != NULL;
    if (t) {
        sl_case *c = p->c;
        p->task = NULL;
        c->w_.until = 0;   /* accepted: not withdrawn with the others */
        if (p->op == SL_RECV)
            memcpy(c->buf, p->elem, p->esz);
        sl__waiter_fire(&c->w_, 0);   /* removes S's other nodes, withdraws its other proxies */
    }
    sl_reactor_post_mem(p->home, &p->go, sl__rsel_h_answer, p);   /* H owns it now */
}

void sl__rsel_r_offer(void *arg)
{
    if (hook_r_offer)
        hook_r_offer(sl__rsel_hook_arg);
    offer_decide(arg);
}

/* Closed or freed at H: the case fires with -EPIPE if S still waits;
 * else a WITHDRAW is on its way, and its ACK frees the proxy. */
void sl__rsel_r_epipe(void *arg)
{
    rv_proxy *p = arg;
    sl_task *t = p->task;
    if (!t)
        return;
    busy_q hq = sl__rsel_busy_list(t);
    if (hq.head) {   /* S busy: the case fires -EPIPE if the hold or claim ends with S waiting */
        sl__rsel_defer(hq, p, sl__rsel_r_epipe);
        return;
    }
    sl_case *c = p->c;
    p->task = NULL;
    c->w_.until = 0;
    if (p->rematched)   /* a REMATCH may be in flight to H: freed at the WITHDRAW's ACK */
        sl_reactor_post_mem(p->home, &p->wd, sl__rsel_h_withdraw, p);
    else
        free(p);
    sl__waiter_fire(&c->w_, -EPIPE);
}

void sl__rsel_r_ack(void *arg)
{
    free(arg);
}
