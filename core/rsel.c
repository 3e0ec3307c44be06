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
 * (select_retry). Plain waiters go before proxies: a counterpart that
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
 * waits at R1 until the hold ends (defer, run_deferred), except an offer
 * from another held select of a higher sid, which is refused busy at once
 * (wait-die: waits go only from a lower sid to a higher one, so they
 * cannot cycle). The refused proxy waits at its home skipped (hbusy) until
 * R1, S1 free again, sends REMATCH (h_rematch). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"

int sl__chan_do_send_until(sl_chan *ch, const void *elem, uint64_t until);
int sl__chan_do_recv(sl_chan *ch, void *elem);

/* H_HOLDING: a send proxy whose select R is asked to hold (HOLD out);
 * H_PAIRED: the receive proxy it will be offered to, off its queue meanwhile */
enum { H_NEW, H_QUEUED, H_OFFERED, H_FIRED, H_HOLDING, H_PAIRED };

typedef struct rv_proxy {
    sl_waiter w;             /* in the channel's queue at H: task NULL, idx -1 */
    sl_msg go, wd, back, ack;
    sl_msg rm;               /* R -> H: REMATCH, the select refused busy is free again */
    sl_chan *ch;
    uint32_t gen;            /* ch's, read by S's sl_select (the case's gen_) */
    sl_reactor *from, *home; /* R, H: R never reads the channel (H may free it) */
    size_t esz;
    int op;                  /* the case's: SL_SEND waits in sendq_ */
    bool held;               /* a receive case on an expiring buffered channel: H offers
                              * its head element, held out of the ring (chan.c) */
    uint64_t until;          /* H: that element's deadline, for a decline */
    /* R's side */
    sl_task *task;           /* S while the proxy is attached to its wait; else NULL */
    sl_case *c;
    bool posted;
    /* H's side */
    int hstate;
    bool ch_gone;            /* freed with the offer out: the answer does not touch ch */
    SL_LINK(struct rv_proxy) olink;   /* ch->rv_offers_ */
    sl_waiter *cp;           /* the counterpart while an offer is out (NULL: gone at teardown) */
    SL_LINK(struct rv_proxy) clink;   /* H's rsel_claims while cp is a claimed select's case */
    bool claim;
    struct rv_proxy *pair;   /* H: the other proxy of a two-phase meet (HOLDING <-> PAIRED) */
    /* set by R before the park leaves, read by H: S may be held for this
     * case; sid, S's place in the total order of selects (its task's
     * address: two selects alive at once differ) */
    bool holdable;
    uintptr_t sid;
    /* set by H before an offer leaves, read by R: the offering held
     * select's sid (a two-phase offer), 0 for any other counterpart */
    uintptr_t osid;
    /* H's side: queued, refused busy (wait-die): skipped until REMATCH */
    bool hbusy;
    /* R's side while S is held for this case (r_hold) */
    bool hold_r;
    SL_LINK(struct rv_proxy) hlink;   /* R's rsel_holds */
    /* R's side: H -> R messages for other proxies of S that came while S
     * was held for this one, run when the hold ends (dhead on the held
     * proxy; dnext, dfn on each waiting one) */
    struct rv_proxy *dhead, *dtail, *dnext;
    void (*dfn)(void *);
    /* H's side while this proxy carries a claim (claim): the same list for
     * the claimed select's other proxies. Not dhead: this proxy's own
     * select may be held at its reactor meanwhile, which uses dhead there */
    struct rv_proxy *chead, *ctail;
    bool busy_r;             /* refused busy: REMATCH it when S waits free again */
    bool rematched;          /* a REMATCH went: freed only at an ACK (it may be in flight) */
    /* R's, for its diagnostics (sl__rsel_case_info): the channel's name
     * and capacity, written on R before the proxy is first posted (the
     * channel alive then: the select was handed it), never after */
    const char *cname;
    size_t ccap;
    /* R -> H with the answer */
    bool accept;
    bool gone;               /* the HOLD's answer: S stopped waiting (its WITHDRAW came first) */
    bool busy;               /* the offer's answer: declined, S held elsewhere (wait-die); S still waits */
    unsigned char elem[];    /* a send case's copy, or the offering sender's element */
} rv_proxy;

static _Atomic int fail_at = -1;

void sl__rsel_inject_failure(int nth)
{
    atomic_store(&fail_at, nth);
}

/* Tests force interleavings here (set before the runtime runs, or on
 * the thread that calls them): at R before an offer is decided, at H
 * right after an offer is posted (it leaves at the callback's end). */
static void (*hook_r_offer)(void *), (*hook_h_offer)(void *);
static void *hook_arg;

void sl__rsel_set_hooks(void (*at_r_offer)(void *), void (*at_h_offer)(void *), void *arg)
{
    hook_r_offer = at_r_offer;
    hook_h_offer = at_h_offer;
    hook_arg = arg;
}

/* ... and around a two-phase meet: phase 0 at R1 before a HOLD is decided,
 * 1 at R1 right after S was held, 2 at H right after the HOLD was posted,
 * 3 at H when the paired receive proxy was withdrawn with the HOLD out;
 * 4 at R when a message for a held select's other proxy waits (deferred),
 * 5 at R right after an offer was refused busy (wait-die), 6 at H when a
 * proxy refused busy is matched again (REMATCH), 7 at R right after a
 * REMATCH was posted; 8 at H right after a select with cases elsewhere
 * was claimed (its offer posted) */
static void (*hook_hold)(void *, int);
static void *hook_hold_arg;

void sl__rsel_set_hold_hook(void (*at_hold)(void *, int), void *arg)
{
    hook_hold = at_hold;
    hook_hold_arg = arg;
}

static rv_proxy *proxy_of(const sl_case *c)
{
    return (rv_proxy *)(uintptr_t)c->w_.until;
}

static sl_wq *queue_for(sl_chan *ch, int op)
{
    return op == SL_SEND ? &ch->sendq_ : &ch->recvq_;
}

static uint32_t *count_for(sl_chan *ch, int op)
{
    return op == SL_SEND ? &ch->rv_sendq_ : &ch->rv_recvq_;
}

/* p enters (1) or leaves (-1) its channel's queue at H: counted per
 * channel and operation (first_proxy's test) and per reactor (whether a
 * select parking there need look for one at all: sl_select) */
static void queued(rv_proxy *p, int d)
{
    *count_for(p->ch, p->op) += (uint32_t)d;
    p->home->rv_queued += (uint32_t)d;
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

static void h_park(void *arg);
static void h_withdraw(void *arg);
static void h_answer(void *arg);

/* S parked: the proxy goes home. */
void sl__rsel_post(sl_task *t, sl_case *c)
{
    rv_proxy *p = proxy_of(c);
    p->task = t;
    p->posted = true;
    p->holdable = p->op == SL_SEND && !p->held;
    p->sid = (uintptr_t)t;
    sl_reactor_post_mem(p->home, &p->go, h_park, p);
}

/* S stops waiting (another case fired, deadline, cancel, teardown): the
 * proxy is withdrawn at H. One never posted (the park failed) is freed. */
void sl__rsel_detach(sl_reactor *r, sl_case *c)
{
    rv_proxy *p = proxy_of(c);
    c->w_.until = 0;
    if (!p)
        return;
    if (!p->posted) {
        free(p);
        return;
    }
    p->task = NULL;
    if (!r->tearing_down)   /* teardown: the home's teardown drops it */
        sl_reactor_post_mem(p->home, &p->wd, h_withdraw, p);
}

/* S, waiting, is *busy*: held for one of its proxies (r_hold), or claimed
 * at its own reactor for another select's proxy (claim); a select waits as
 * a cross-reactor wait only then. The list the messages for its other
 * proxies wait on meanwhile (defer): the held proxy's R-side one, or the
 * claim proxy's H-side one (a claim proxy is another reactor's). NULL: S
 * is not busy. */
typedef struct { rv_proxy **head, **tail; } busy_q;

static busy_q busy_list(const sl_task *t)
{
    if (!t || t->wait_kind_ != SL_WAIT_REMOTE)
        return (busy_q){ NULL, NULL };
    rv_proxy *hp = (rv_proxy *)(uintptr_t)t->w_.until;
    if (hp->from == t->reactor_)
        return (busy_q){ &hp->dhead, &hp->dtail };
    return (busy_q){ &hp->chead, &hp->ctail };
}

/* An H -> R message for p came while S is held for hp: it waits, in
 * order, until the hold ends (run_deferred). Nothing is allocated: the
 * links are p's. Such a wait cannot be part of a cycle: what waits here
 * is an offer from a counterpart that no one can wait for (a task, a
 * round trip, an expiring channel's head, a claimed select with no proxy
 * anywhere: sid 0), or from a busy select (held, or claimed with proxies
 * elsewhere) of a lower sid (wait-die, offer_decide), or a HOLD or an
 * EPIPE, which make nobody busy; and a busy period ends once its one
 * offer is answered. */
static void defer(busy_q q, rv_proxy *p, void (*fn)(void *))
{
    p->dfn = fn;
    p->dnext = NULL;
    if (*q.tail)
        (*q.tail)->dnext = p;
    else
        *q.head = p;
    *q.tail = p;
    if (hook_hold)
        hook_hold(hook_hold_arg, 4);
}

static void h_rematch(void *arg);

/* S's hold has ended: what waited for it runs, as if it came now; then,
 * if S waits free again (not fired, not held once more by a HOLD that
 * waited), every proxy of S refused busy meanwhile is matched again at
 * its home (REMATCH), so that no meet refused busy waits for a deadline. */
static void run_deferred(rv_proxy *d, sl_task *t)
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
        rv_proxy *q = cases[i].w_.tag == SL_CASE_RV ? proxy_of(&cases[i]) : NULL;
        if (!q || !q->busy_r)
            continue;
        q->busy_r = false;
        q->rematched = true;
        sl_reactor_post_mem(q->home, &q->rm, h_rematch, q);
        if (hook_hold)
            hook_hold(hook_hold_arg, 7);
    }
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
    busy_q hq = busy_list(t);
    if (hq.head && (!p->osid || p->osid < p->sid)) {
        defer(hq, p, offer_decide);
        return;
    }
    if (hq.head) {
        p->accept = false;
        p->busy = true;
        p->busy_r = true;
        sl_reactor_post_mem(p->home, &p->go, h_answer, p);   /* H queues it again, skipped */
        if (hook_hold)
            hook_hold(hook_hold_arg, 5);
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
    sl_reactor_post_mem(p->home, &p->go, h_answer, p);   /* H owns it now */
}

static void r_offer(void *arg)
{
    if (hook_r_offer)
        hook_r_offer(hook_arg);
    offer_decide(arg);
}

/* Closed or freed at H: the case fires with -EPIPE if S still waits;
 * else a WITHDRAW is on its way, and its ACK frees the proxy. */
static void r_epipe(void *arg)
{
    rv_proxy *p = arg;
    sl_task *t = p->task;
    if (!t)
        return;
    busy_q hq = busy_list(t);
    if (hq.head) {   /* S busy: the case fires -EPIPE if the hold or claim ends with S waiting */
        defer(hq, p, r_epipe);
        return;
    }
    sl_case *c = p->c;
    p->task = NULL;
    c->w_.until = 0;
    if (p->rematched)   /* a REMATCH may be in flight to H: freed at the WITHDRAW's ACK */
        sl_reactor_post_mem(p->home, &p->wd, h_withdraw, p);
    else
        free(p);
    sl__waiter_fire(&c->w_, -EPIPE);
}

static void r_ack(void *arg)
{
    free(arg);
}

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
static void reclaim(sl_task *t);
static rv_proxy *claim_waiting(sl_task *t);

static void hold_unlink(rv_proxy *p)
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
    busy_q hq = busy_list(t);
    if (hq.head) {
        defer(hq, p, hold_decide);
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
        if (hook_hold)
            hook_hold(hook_hold_arg, 1);
    }
    sl_reactor_post_mem(p->home, &p->go, h_held, p);
}

static void r_hold(void *arg)
{
    if (hook_hold)
        hook_hold(hook_hold_arg, 0);
    hold_decide(arg);
}

/* S leaves the hold: a select again, its proxy p attached to case c */
static sl_task *hold_end(rv_proxy *p)
{
    sl_task *t = p->task;
    if (!t)
        return NULL;   /* forgotten at teardown */
    hold_unlink(p);
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
    run_deferred(d, NULL);   /* S fired: they find it gone */
}

static void r_abort(void *arg)
{
    rv_proxy *p = arg;
    rv_proxy *d = p->dhead;
    p->dhead = p->dtail = NULL;
    sl_task *t = hold_end(p);
    if (!t) {
        run_deferred(d, NULL);
        return;   /* H owns p again */
    }
    if (t->w_.tag == SL_OFFER_ABORT_TAG) {   /* its deadline or cancel came meanwhile */
        int err = t->w_.err;
        held_wake(t, err);
        run_deferred(d, NULL);
        return;
    }
    t->w_.tag = SL_OFFER_TAG;   /* not SL_SELR_TAG yet: held_wake counts it down */
    int i = sl__select_rematch(t);
    if (i >= 0) {
        held_wake(t, i);
        run_deferred(d, NULL);
        return;
    }
    t->w_.tag = SL_SELR_TAG;   /* parked with a remote case, as before */
    sl__select_put_back(t);
    run_deferred(d, t);
    reclaim(t);   /* a proxy that came for one of its cases here meanwhile */
}

/* ---- H: the channel's side ------------------------------------------------- */

static void h_fire_epipe(rv_proxy *p)
{
    p->hstate = H_FIRED;
    sl_reactor_post_mem(p->from, &p->back, r_epipe, p);
}

/* O (a waiter not in any queue now) offers itself to p; osid, the sid
 * of the busy select O is part of (wait-die, offer_decide), 0 if none */
static void offer_as(rv_proxy *p, sl_waiter *cp, uintptr_t osid)
{
    if (p->hstate == H_QUEUED) {
        sl_wq_remove(queue_for(p->ch, p->op), &p->w);
        queued(p, -1);
    }
    p->hstate = H_OFFERED;
    p->cp = cp;
    p->osid = osid;
    SL_LIST_PUSH_FRONT(&p->ch->rv_offers_, p, olink);
    if (p->op == SL_RECV && cp)   /* O sends: its element travels in the offer */
        memcpy(p->elem, cp->buf, p->ch->elem_size_);
    sl_reactor_post_mem(p->from, &p->back, r_offer, p);
    if (hook_h_offer)
        hook_h_offer(hook_arg);
}

/* ... a two-phase offer tells R which held select offers (wait-die) */
static void offer(rv_proxy *p, sl_waiter *cp)
{
    offer_as(p, cp, cp && sl__waiter_is_rvproxy(cp) ? SL_CONTAINER_OF(cp, rv_proxy, w)->sid : 0);
}

/* The first proxy a counterpart doing `cp_op` may offer to. */
static rv_proxy *first_proxy(sl_chan *ch, int cp_op)
{
    int op = cp_op == SL_SEND ? SL_RECV : SL_SEND;
    if (!*count_for(ch, op))
        return NULL;
    for (sl_waiter *w = queue_for(ch, op)->head; w; w = w->link.next)
        if (sl__waiter_is_rvproxy(w) && !SL_CONTAINER_OF(w, rv_proxy, w)->hbusy)
            return SL_CONTAINER_OF(w, rv_proxy, w);   /* one refused busy waits for its REMATCH */
    return NULL;
}

bool sl__rsel_offer(sl_chan *ch, int cp_op, sl_waiter *cp)
{
    rv_proxy *p = first_proxy(ch, cp_op);
    if (!p)
        return false;
    offer(p, cp);
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
    rv_proxy *p = first_proxy(ch, op);
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
    offer(p, &t->w_);
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

/* A parked task becomes an offering one: a cross-reactor wait now (its
 * deadline or cancel cannot walk away: sl__rsel_task_abort). */
/* A task parked here again, local and without a timer: counted as
 * blocked, as sl__park counts a wait with no end (diag.c's checks). */
static void count_blocked(sl_reactor *r, sl_task *t)
{
    if (t->heap_idx_)
        return;
    t->flags_ |= SL_TF_BLOCKED;
    r->blocked++;
    r->check_deadlock = true;
    if (!r->wg_armed)
        sl__watch_blocked(r);
}

static void task_to_offer(sl_task *t, rv_proxy *p)
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
    rv_proxy *p = first_proxy(ch, SL_SEND);
    if (!p)
        return;
    if (ch->len_) {
        sl__chan_hold_head(ch, p->elem, &p->until);
        offer(p, NULL);
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

/* A select S_H parked here, its case node w offered to p: every node of
 * S_H in a queue of ours leaves it, so no local operation, match, close or
 * free finds it while the offer is out (docs/core.md "A select at the home
 * meets a remote select"); S_H waits for the answer as a blocking task
 * whose offer is out does. Its proxies at other homes stay there: S_H is
 * busy meanwhile, and what reaches them waits here on p's claim list or is
 * refused busy (docs/core.md "A claimed select with cases elsewhere"); for
 * that the offer carries S_H's sid, as a held select's does, so that two
 * busy selects offering to each other cannot wait for each other. */
static void claim(rv_proxy *p, sl_waiter *w)
{
    sl_task *t = w->task;
    bool far = sl__select_has_proxies(t);   /* someone may wait for it: it needs a sid */
    bool local = sl__select_local_only(t);
    sl__select_take(t);
    task_to_offer(t, p);
    p->claim = true;
    p->chead = p->ctail = NULL;
    SL_LIST_PUSH_FRONT(&p->home->rsel_claims, p, clink);
    offer_as(p, w, far ? (uintptr_t)t : 0);
    if (!local && hook_hold)
        hook_hold(hook_hold_arg, 8);
}

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

bool sl__rsel_claim(sl_task *t, sl_case *c)
{
    rv_proxy *p = first_proxy(c->ch, c->op);
    if (!p)
        return false;
    claim(p, &c->w_);
    return true;
}

/* Declined (and no deadline or cancel came): S_H is matched again, as at
 * sl_select's start: a case ready now (a local operation that found no
 * node meanwhile and parked, a channel closed) completes; else its nodes
 * go back to their places, and a case with another proxy queued is
 * claimed again. */
static void select_retry(sl_task *t)
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
        run_deferred(d, NULL);   /* S_H fired: what waited finds it gone */
        return;
    }
    if (sl__select_local_only(t)) {
        count_blocked(r, t);
    } else {
        t->w_.tag = SL_SELR_TAG;   /* parked with a remote case, as before the claim */
        r->remote_pending++;
    }
    sl__select_put_back(t);
    run_deferred(d, t);   /* then REMATCH for its proxies refused busy meanwhile */
    reclaim(t);
}

/* t, parked here free again (after a claim or a hold ended), is claimed
 * again if another proxy waits on one of its cases on our rendezvous
 * channels */
static void reclaim(sl_task *t)
{
    if (t->wait_kind_ != SL_WAIT_SELECT || !t->reactor_->rv_queued)
        return;   /* fired or held again by what waited; or no proxy here */
    sl_case *cases = t->wait_obj_;
    for (int j = 0; j < t->w_.idx; j++)
        if (!cases[j].w_.tag && !cases[j].ch->cap_ && sl__rsel_claim(t, &cases[j]))
            return;
}

static void h_match(rv_proxy *p);

static void h_park(void *arg)
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
    h_match(p);
}

/* ---- H: two selects of other reactors meet (two-phase) -------------------- */

/* The first proxy queued on p's channel that p may meet in two phases:
 * of the other operation, the sending one holdable, not refused busy
 * (waiting for its REMATCH), and not of p's own select (a select never
 * meets itself: it would wait on its own hold) */
static rv_proxy *first_partner(const rv_proxy *p)
{
    sl_chan *ch = p->ch;
    int op = p->op == SL_SEND ? SL_RECV : SL_SEND;
    if ((p->op == SL_SEND && !p->holdable) || !*count_for(ch, op))
        return NULL;
    for (sl_waiter *w = queue_for(ch, op)->head; w; w = w->link.next) {
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
static void hold(rv_proxy *s, rv_proxy *r)
{
    rv_proxy *both[2] = { s, r };
    for (int i = 0; i < 2; i++)
        if (both[i]->hstate == H_QUEUED) {
            sl_wq_remove(queue_for(both[i]->ch, both[i]->op), &both[i]->w);
            queued(both[i], -1);
        }
    s->hstate = H_HOLDING;
    r->hstate = H_PAIRED;
    s->pair = r;
    r->pair = s;
    sl_reactor_post_mem(s->from, &s->back, r_hold, s);
    if (hook_hold)
        hook_hold(hook_hold_arg, 2);
}

/* The verdict on a held select: COMMIT (its case returns 0; R1 frees p) */
static void hold_commit(rv_proxy *p)
{
    p->hstate = H_FIRED;
    p->ch->rv_out_--;   /* the caller releases a freed header */
    sl_reactor_post_mem(p->from, &p->ack, r_commit, p);
}

/* ... or ABORT: R1 matches S again; p is matched again here as if it had
 * just arrived (a plain receiver, another proxy, queued; -EPIPE if closed).
 * ABORT goes by p->ack: no ACK can be in flight (S cannot withdraw p while
 * held), and p->back may carry the next offer at once. */
static void hold_abort(rv_proxy *p)
{
    p->hstate = H_NEW;
    sl_reactor_post_mem(p->from, &p->ack, r_abort, p);
    h_match(p);
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
            h_match(r);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
        return;
    }
    if (!r || ch->freed_ || ch->closed_ || ch->receivers_gone_) {
        hold_abort(p);   /* closed or freed: -EPIPE for S's case, after the ABORT */
        if (r)
            h_match(r);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
        return;
    }
    /* S is held: its element, in p, is offered to r's select as a sender
     * at H would offer it; p stays HOLDING, the offer's counterpart */
    p->until = 0;
    r->until = 0;
    offer(r, &p->w);
}

/* p, counted in rv_out_, finds its counterpart as if it had just arrived */
static void h_match(rv_proxy *p)
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
        queued(p, 1);
        sl__rsel_offer_head(ch);
        return;
    }
    sl_wq *other = queue_for(ch, p->op == SL_SEND ? SL_RECV : SL_SEND);
    for (sl_waiter *w = other->head; w; w = w->link.next) {
        if (!can_offer(w))
            continue;
        sl_wq_remove(other, w);
        p->until = w->until;   /* a send's element deadline (0: none), back with it if declined */
        if (w->task)
            task_to_offer(w->task, p);
        else
            sl__remote_offered(w);
        offer(p, w);
        return;
    }
    /* no plain waiter that offers: a select parked here waiting for the
     * other operation is claimed and offered */
    for (sl_waiter *w = other->head; w; w = w->link.next) {
        if (w->task && w->task->wait_kind_ == SL_WAIT_SELECT) {
            claim(p, w);
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
    rv_proxy *q = first_partner(p);
    if (q) {
        if (p->op == SL_SEND)
            hold(p, q);
        else
            hold(q, p);
        return;
    }
    p->hstate = H_QUEUED;
    sl_wq_push(queue_for(ch, p->op), &p->w);
    queued(p, 1);
}

static void h_withdraw(void *arg)
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
        if (hook_hold)
            hook_hold(hook_hold_arg, 3);
        if (ch->freed_)
            sl__chan_maybe_release(ch);
    } else if (p->hstate == H_QUEUED) {
        sl_wq_remove(queue_for(ch, p->op), &p->w);
        queued(p, -1);
        ch->rv_out_--;
        p->hstate = H_FIRED;
        if (ch->freed_)
            sl__chan_maybe_release(ch);
    }
    sl_reactor_post_mem(p->from, &p->ack, r_ack, p);
}

/* S, refused busy for p, waits free again: p (queued, skipped) is matched
 * again as if it had just arrived. Anything else (withdrawn, fired -EPIPE
 * by a close, matched already) leaves nothing to do: R frees p only at an
 * ACK once a REMATCH went, so p is alive here. */
static void h_rematch(void *arg)
{
    rv_proxy *p = arg;
    if (p->hstate != H_QUEUED || !p->hbusy)
        return;
    p->hbusy = false;
    sl_wq_remove(queue_for(p->ch, p->op), &p->w);
    queued(p, -1);
    if (hook_hold)
        hook_hold(hook_hold_arg, 6);
    h_match(p);
}

/* A claimed select leaves H's list of claims (its offer answered). */
static void claim_unlink(rv_proxy *p)
{
    if (!p->claim)
        return;
    p->claim = false;
    SL_LIST_REMOVE(&p->home->rsel_claims, p, clink);
}

static bool is_select_case(const sl_waiter *cp)
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
static void claim_orphans(rv_proxy *p)
{
    rv_proxy *d = p->chead;
    p->chead = p->ctail = NULL;
    run_deferred(d, NULL);
}

/* A claimed select's wait ends: with its case cp (rc: the case's result),
 * or with err (its deadline or cancel, declined) if cp is NULL. */
static void select_done(sl_task *t, sl_waiter *cp, int rc, int err)
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
    run_deferred(d, NULL);   /* S_H stopped: what waited finds it gone */
}

/* O's wait ends with rc. */
static void cp_done(sl_waiter *cp, int rc)
{
    sl_task *t = cp->task;
    if (sl__waiter_is_rvproxy(cp)) {   /* a held select's proxy: accepted (rc 0) */
        hold_commit(SL_CONTAINER_OF(cp, rv_proxy, w));
        return;
    }
    if (!t) {
        sl__remote_offer_end(cp, rc, false);
        return;
    }
    if (is_select_case(cp)) {
        select_done(t, cp, rc, 0);
        return;
    }
    t->reactor_->remote_pending--;
    t->w_.tag = 0;
    t->w_.until = 0;
    sl__wake(t, rc);
}

static void select_retry(sl_task *t);

/* Declined: O goes on as if it had just arrived, first in line; a send
 * with an element deadline (`until`) keeps it. */
static void cp_retry(sl_chan *ch, sl_waiter *cp, int op, uint64_t until)
{
    sl_task *t = cp->task;
    if (sl__waiter_is_rvproxy(cp)) {   /* a held select's proxy: declined */
        hold_abort(SL_CONTAINER_OF(cp, rv_proxy, w));
        return;
    }
    if (t && is_select_case(cp)) {
        if (t->w_.tag == SL_OFFER_ABORT_TAG)
            select_done(t, NULL, 0, t->w_.err);   /* its deadline or cancel came meanwhile */
        else
            select_retry(t);
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
    rv_proxy *p = first_proxy(ch, op);
    if (p) {
        if (t)
            t->w_.until = (uint64_t)(uintptr_t)p;
        p->until = until;
        offer(p, cp);
        return;
    }
    /* parks again at the head of its queue: its place */
    if (t) {
        sl_reactor *r = t->reactor_;
        r->remote_pending--;
        t->w_.tag = 0;
        t->w_.until = until;   /* live_sender judges it again */
        t->wait_kind_ = (uint8_t)(op == SL_SEND ? SL_WAIT_SEND : SL_WAIT_RECV);
        count_blocked(r, t);
    } else {
        sl__remote_requeued(cp);
    }
    sl_wq *q = queue_for(ch, op);
    SL_LIST_PUSH_FRONT(q, cp, link);
    q->n++;
}

/* The channel was freed with p's offer out (sl_chan_free returned: a _mem
 * channel's storage may be the caller's again): the counterpart ends by
 * the answer alone, as a retry on the freed channel would (-EPIPE). */
static void answer_gone(rv_proxy *p)
{
    sl_waiter *cp = p->cp;
    claim_unlink(p);
    if (!cp)
        claim_orphans(p);
    if (cp && sl__waiter_is_rvproxy(cp)) {
        /* a held select's proxy: it kept the header (rv_out_) */
        rv_proxy *h = SL_CONTAINER_OF(cp, rv_proxy, w);
        sl_chan *ch = h->ch;
        if (p->accept)
            hold_commit(h);
        else
            hold_abort(h);   /* -EPIPE for its case: the channel is freed */
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
    } else if (cp && is_select_case(cp)) {
        sl_task *t = cp->task;
        if (t->w_.tag == SL_OFFER_ABORT_TAG)
            select_done(t, NULL, 0, t->w_.err);
        else
            select_done(t, cp, -EPIPE, 0);   /* the offered channel is gone: as a parked case would */
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

static void h_answer(void *arg)
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
    claim_unlink(p);
    if (!cp)
        claim_orphans(p);
    if (p->busy) {
        /* refused busy (wait-die): S waits, busy (held or claimed) for
         * another meet. p waits again in its place, skipped until S's
         * REMATCH (h_rematch); the busy select that offered (held, or
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
            sl_wq *q = queue_for(ch, p->op);
            SL_LIST_PUSH_FRONT(q, &p->w, link);
            q->n++;
            queued(p, 1);
        }
        if (cp)
            cp_retry(ch, cp, p->op == SL_SEND ? SL_RECV : SL_SEND, 0);   /* hold_abort, or select_retry */
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
    queued(p, -1);
    p->ch->rv_out_--;
    h_fire_epipe(p);
}

/* Teardown: a proxy still queued has no select any more (every reactor
 * drained): it goes. */
void sl__rsel_drop_queued(sl_waiter *w)
{
    rv_proxy *p = SL_CONTAINER_OF(w, rv_proxy, w);
    queued(p, -1);
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
            hold_unlink(p);
            p->task = NULL;
            p->c->w_.until = 0;   /* forgotten, not withdrawn */
            sl__select_detach_proxies(t);   /* its other proxies forget it too */
        } else {
            if (p->claim)   /* a select claimed here: its proxies elsewhere forget it */
                sl__select_detach_proxies(t);
            p->cp = NULL;   /* the answer runs what waited for it (claim_orphans) */
        }
        t->w_.tag = 0;
        return;
    }
    t->w_.tag = SL_OFFER_ABORT_TAG;
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
 * one never posted, r_epipe, r_commit) or before the message after which
 * H or R frees (sl__rsel_detach's WITHDRAW: H's GONE or declining answer,
 * R's ACK; offer_decide's accept: h_answer; sl__rsel_task_abort at
 * teardown). A proxy refused busy (offer_decide, busy) stays attached and
 * H keeps it queued (h_answer: p->busy), never freeing it while S waits:
 * it fails to R by an EPIPE (h_fire_epipe), which R frees after clearing.
 * False, *name NULL, if c has no proxy. */
bool sl__rsel_case_info(const sl_case *c, const char **name, size_t *cap)
{
    const rv_proxy *p = proxy_of(c);
    *name = p ? p->cname : NULL;
    *cap = p ? p->ccap : 0;
    return p != NULL;
}
