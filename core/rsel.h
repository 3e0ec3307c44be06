/* rsel.h: private to core/rsel*.c, the files of sl_select's cases by offer
 * (issue 17; docs/core.md "Rendezvous cases by offer"): the proxy record,
 * its H-side states, and the calls between the files. Each file says its
 * one idea at its top; core/rsel.c has the protocol's overview.
 *   rsel.c        R: the select's side, the proxy's life (prepare, post,
 *                 detach, an offer decided, EPIPE, ACK); tests' hooks
 *   rsel_home.c   H: the channel's side (park, match, offers and their
 *                 answers, withdraw, close/free/teardown)
 *   rsel_claim.c  H: a select parked at the home claimed for a proxy
 *   rsel_hold.c   two selects of other reactors meet: HOLD/HELD,
 *                 COMMIT/ABORT (R1's side and H's)
 *   rsel_busy.c   a busy select: deferred messages, wait-die, REMATCH
 *   rsel_diag.c   what diag.c reads of proxies
 * Every function here runs on the thread its prefix names (R: the select's
 * reactor, H: the channel's home) and owns the proxy as the messages say. */
#ifndef SL_RSEL_H
#define SL_RSEL_H
#include <stdint.h>
#include "internal.h"
#include "list.h"

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
     * case; sid, S's place in the total order of selects (its task's id,
     * never reused and never 0: two selects differ, even a new one and a
     * proxy of an ended task at the same address still on its way out) */
    bool holdable;
    uint64_t sid;
    /* set by H before an offer leaves, read by R: the offering held
     * select's sid (a two-phase offer), 0 for any other counterpart */
    uint64_t osid;
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

static inline rv_proxy *sl__rsel_proxy_of(const sl_case *c)
{
    return (rv_proxy *)(uintptr_t)c->w_.until;
}

static inline sl_wq *sl__rsel_queue_for(sl_chan *ch, int op)
{
    return op == SL_SEND ? &ch->sendq_ : &ch->recvq_;
}

static inline uint32_t *sl__rsel_count_for(sl_chan *ch, int op)
{
    return op == SL_SEND ? &ch->rv_sendq_ : &ch->rv_recvq_;
}

/* p enters (1) or leaves (-1) its channel's queue at H: counted per
 * channel and operation (sl__rsel_first_proxy's test) and per reactor (whether a
 * select parking there need look for one at all: sl_select) */
static inline void sl__rsel_queued(rv_proxy *p, int d)
{
    *sl__rsel_count_for(p->ch, p->op) += (uint32_t)d;
    p->home->rv_queued += (uint32_t)d;
}

/* S, waiting, is *busy*: held for one of its proxies (r_hold), or claimed
 * at its own reactor for another select's proxy (claim); a select waits as
 * a cross-reactor wait only then. The list the messages for its other
 * proxies wait on meanwhile (defer): the held proxy's R-side one, or the
 * claim proxy's H-side one (a claim proxy is another reactor's). NULL: S
 * is not busy. */
typedef struct { rv_proxy **head, **tail; } busy_q;

/* Tests' hooks (rsel.c; set before the runtime runs): see sl__rsel_set_hooks
 * and sl__rsel_set_hold_hook for when each runs. */
extern void (*sl__rsel_hook_h_offer)(void *);
extern void *sl__rsel_hook_arg;
extern void (*sl__rsel_hook_hold)(void *, int);
extern void *sl__rsel_hook_hold_arg;

static inline void sl__rsel_at_h_offer(void)
{
    if (sl__rsel_hook_h_offer)
        sl__rsel_hook_h_offer(sl__rsel_hook_arg);
}

static inline void sl__rsel_at_hold(int phase)
{
    if (sl__rsel_hook_hold)
        sl__rsel_hook_hold(sl__rsel_hook_hold_arg, phase);
}

/* rsel.c, R: messages from H (sl_reactor_post_mem callbacks, arg the proxy) */
void sl__rsel_r_offer(void *arg);   /* an OFFER: accepted iff S still waits (deferred while S is busy) */
void sl__rsel_r_epipe(void *arg);   /* closed or freed at H: S's case fires -EPIPE if it still waits */
void sl__rsel_r_ack(void *arg);     /* the WITHDRAW's answer: R frees the proxy */

/* rsel_home.c, H */
void sl__rsel_h_park(void *arg);       /* PARK: the proxy is matched or queued (arg: it, H's now) */
void sl__rsel_h_withdraw(void *arg);   /* WITHDRAW: out of its queue, ACKed; unanswered if an offer or HOLD is out */
void sl__rsel_h_answer(void *arg);     /* the offer's ANSWER: the counterpart completes or retries; frees the proxy */
void sl__rsel_h_match(rv_proxy *p);    /* p (counted in rv_out_) finds its counterpart as if just arrived */
void sl__rsel_offer_as(rv_proxy *p, sl_waiter *cp, uint64_t osid);   /* cp (in no queue) offers itself to p */
void sl__rsel_offer_to(rv_proxy *p, sl_waiter *cp);   /* ... osid from cp if it is a held select's proxy */
rv_proxy *sl__rsel_first_proxy(sl_chan *ch, int cp_op);   /* the first proxy cp_op may offer to; NULL: none */
void sl__rsel_task_to_offer(sl_task *t, rv_proxy *p);   /* parked t becomes a cross-reactor wait, its offer to p */
void sl__rsel_count_blocked(sl_reactor *r, sl_task *t);   /* t parked again without a timer: counted blocked */

/* rsel_claim.c, H: a select parked here claimed for a proxy */
void sl__rsel_claim_for(rv_proxy *p, sl_waiter *w);   /* w's select leaves our queues, w offered to p */
void sl__rsel_claim_unlink(rv_proxy *p);   /* p's claim (if any) leaves H's list: its offer answered */
void sl__rsel_claim_orphans(rv_proxy *p);  /* a claim whose select was forgotten: what waited runs */
bool sl__rsel_is_select_case(const sl_waiter *cp);   /* cp is a select's case node, not a task's own */
void sl__rsel_select_done(sl_task *t, sl_waiter *cp, int rc, int err);   /* claimed t wakes: case cp (rc), or err */
void sl__rsel_select_retry(sl_task *t);   /* claimed t declined: matched again as at sl_select's start */
void sl__rsel_reclaim(sl_task *t);        /* t free again: claimed if a proxy waits on one of its cases */

/* rsel_hold.c: a select held at R1 for a meet at H */
void sl__rsel_hold_unlink(rv_proxy *p);   /* R1: p's select leaves rsel_holds */
rv_proxy *sl__rsel_first_partner(const rv_proxy *p);   /* H: a queued proxy p may meet in two phases; NULL: none */
void sl__rsel_hold_pair(rv_proxy *s, rv_proxy *r);   /* H: both leave their queues; HOLD s's select */
void sl__rsel_hold_commit(rv_proxy *p);   /* H: the verdict COMMIT; the caller releases a freed header */
void sl__rsel_hold_abort(rv_proxy *p);    /* H: the verdict ABORT; p matched again here */

/* rsel_busy.c, R (or H for a claimed select): a busy select */
busy_q sl__rsel_busy_list(const sl_task *t);   /* where messages for t wait; head NULL: t is not busy */
void sl__rsel_defer(busy_q q, rv_proxy *p, void (*fn)(void *));   /* p's message fn waits on q, in order */
void sl__rsel_run_deferred(rv_proxy *d, sl_task *t);   /* the busy period ended: they run; REMATCH if t waits free */
void sl__rsel_h_rematch(void *arg);   /* H: REMATCH: a proxy refused busy is matched again */

#endif
