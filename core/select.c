/* select.c: wait on several channel operations, perform exactly one.
 *
 * While parked, every case's waiter node sits in a queue; the first
 * counterpart to take one fires it, and firing removes all the others
 * before the task wakes, so a select can never complete twice.
 *
 * A case on a buffered channel of another reactor (issue 17) is decided
 * on the selecting task's own reactor, like a local one: a send case is
 * ready with credit in hand (rsend.c), a receive case with a lent or
 * given element in hand (rrecv.c), and a parked case waits in this
 * reactor's queue of senders waiting for credit / receivers waiting for a
 * lend, which the grant / lend serves on this thread. So every queue a
 * select waits in is drained by its own thread, and the first case fired
 * removes the others as for local channels. What was asked home for a
 * case that was not chosen stays here as credit in hand or an element
 * held, for the next send or receive: nothing is lost or duplicated.
 * A select that does not park (a case completed at once, or a default)
 * asks home for its remote cases that were not ready, so that a busy
 * select's remote cases get ready too (ask_unready).
 * A case on another reactor's rendezvous channel is never ready here (only
 * the home sees its counterpart): a parked select sends a proxy home for
 * it, and a counterpart there offers itself; the case fires here, on
 * this thread, only when the offer is accepted, and the others are
 * withdrawn (rsel.c). A receive case on another reactor's expiring
 * channel goes the same way: the home offers its head element (never
 * lent: it would expire there). Cases on another reactor's _mem channel:
 * -EXDEV. A select here whose cases are all on this reactor's channels
 * meets another reactor's select on a rendezvous channel of ours: rsel.c
 * claims it (its nodes off their queues) and offers it to that select's
 * proxy (sl__select_take / _rematch / _put_back below). A select here
 * whose one case by offer is a send, its other cases all on our channels,
 * may be *held* by that channel's home to meet another reactor's select
 * there (rsel_hold.c r_hold: sl__select_hold takes its nodes off our queues;
 * aborted, _rematch / _put_back as for a declined claim). */
#include <errno.h>
#include "internal.h"
#include "list.h"

int sl__chan_do_send(sl_chan *ch, const void *elem);
int sl__chan_do_recv(sl_chan *ch, void *elem);
bool sl__chan_ready(sl_chan *ch, int op);


static bool is_remote(const sl_case *c, const sl_reactor *r)
{
    return c->ch->home_ != r;
}

/* w_.tag of a parked case: 0 local, REMOTE_BUF another reactor's buffered
 * channel (a queue of ours), REMOTE_RV its rendezvous one (a proxy there:
 * w_.until points at it while attached, rsel.c) */
enum { REMOTE_BUF = 1, REMOTE_RV = SL_CASE_RV };

/* The case array is the select's working set, and a field per case is
 * paid by every select, local ones too (diag12 measured 112 bytes 2-7 %
 * slower in select4_ns at high load; not shown at low load: docs/core.md
 * "Diagnostics"): what the diagnostics
 * need of a remote case lives in this reactor's record or proxy of it,
 * not in the case. */
_Static_assert(sizeof(void *) != 8 || sizeof(sl_case) == 96, "sl_case grew: see core/diag.c case_far");

/* A remote case decided by an offer from its home (rsel.c): any case on
 * a rendezvous channel, a receive case on an expiring one (never lent:
 * the home offers its head element). cap_ and expiring_ are set at
 * creation: safe to read here. */
static bool by_offer(const sl_case *c)
{
    return !c->ch->cap_ || (c->op == SL_RECV && c->ch->expiring_);
}

/* A remote case that asks home for credit or elements (not one by offer) */
static bool asks_home(const sl_case *c, const sl_reactor *r)
{
    return is_remote(c, r) && !by_offer(c);
}

/* NULL: a remote case's queue that does not exist (its node is on none).
 * Whether a parked case is remote was noted when it parked (w_.tag): a
 * channel freed meanwhile no longer says where its home was. */
static sl_wq *queue_of(sl_case *c, sl_reactor *r)
{
    if (c->w_.tag == REMOTE_RV)
        return NULL;
    if (c->w_.tag)
        return c->op == SL_SEND ? sl__rsend_queue(r, c->ch, c->gen_) : sl__rrecv_queue(r, c->ch, c->gen_);
    return c->op == SL_SEND ? &c->ch->sendq_ : &c->ch->recvq_;
}

static inline __attribute__((always_inline)) bool case_ready(sl_case *c, sl_reactor *r)
{
    if (!is_remote(c, r))
        return sl__chan_ready(c->ch, c->op);
    if (by_offer(c))
        return false;   /* decided by an offer from its home, once parked */
    return c->op == SL_SEND ? sl__rsend_ready(r, c->ch, c->gen_) : sl__rrecv_ready(r, c->ch, c->gen_);
}

/* A REMOTE_BUF case's readiness from this reactor's record alone. Ready,
 * what it holds keeps the channel's header (credit or lent elements: a
 * freed header stays until they are back), so case_do may read it. */
static bool buf_ready(const sl_case *c, sl_reactor *r)
{
    return c->op == SL_SEND ? sl__rsend_ready(r, c->ch, c->gen_) : sl__rrecv_ready(r, c->ch, c->gen_);
}

static inline __attribute__((always_inline)) int case_do(sl_task *t, sl_case *c)
{
    if (is_remote(c, t->reactor_))   /* ready: completes at once, never parks */
        return c->op == SL_SEND ? sl__rsend(t, c->ch, c->gen_, c->buf, 0) : sl__rrecv(t, c->ch, c->gen_, c->buf);
    return c->op == SL_SEND ? sl__chan_do_send(c->ch, c->buf) : sl__chan_do_recv(c->ch, c->buf);
}

/* Also reads each remote case's channel generation (the select names
 * the channels now, alive by the caller's contract): every record and
 * message of the case carries it, never a later read (rsend.c find). */
static int check_cases(const sl_task *t, sl_case *cases, int n)
{
    if (!cases || n < 1)
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        const sl_chan *ch = cases[i].ch;
        if (!ch || (cases[i].op != SL_SEND && cases[i].op != SL_RECV))
            return -EINVAL;
        if (ch->home_ == t->reactor_)
            continue;
        if (!ch->home_)
            return -EINVAL;
        cases[i].gen_ = sl__chan_gen(ch);
        /* cap_, expiring_ and heap_ are set at creation: safe to read here */
        if (!ch->heap_)
            return -EXDEV;   /* _mem: nothing of ours may be in flight to it (sl_chan_mem) */
        if (by_offer(&cases[i]))
            continue;   /* rendezvous, or a receive on an expiring channel: by offer (rsel.c) */
    }
    return 0;
}

/* A REMOTE_BUF case's record (rsend.c / rrecv.c) is kept while its node
 * is off its queue for a hold or a claim: an idle record goes at the
 * flush, and the put back (after a decline: nothing allocated there) needs
 * it. Before, a claimed select's record went at the flush of the callback
 * that claimed it (its node was never asked for) and the put back pushed
 * onto a NULL queue (test_meet4_buf_declined_asks_home). */
static void pin(sl_reactor *r, const sl_case *c, int d)
{
    if (c->op == SL_SEND)
        sl__rsend_pin(r, c->ch, c->gen_, d);
    else
        sl__rrecv_pin(r, c->ch, c->gen_, d);
}

/* Dequeues every case of t's select but `keep`. */
static void dequeue_all(sl_task *t, sl_waiter *keep)
{
    sl_case *cases = t->wait_obj_;
    int n = t->w_.idx;
    sl_reactor *r = t->reactor_;
    for (int i = 0; i < n; i++) {
        if (cases[i].w_.tag == REMOTE_RV) {
            if (cases[i].w_.until)
                sl__rsel_detach(r, &cases[i]);   /* its proxy is withdrawn */
            continue;
        }
        sl_wq *q = queue_of(&cases[i], r);
        if (&cases[i].w_ != keep && q && sl_wq_has(q, &cases[i].w_))
            sl_wq_remove(q, &cases[i].w_);
    }
    if (t->w_.tag == SL_SELR_TAG) {
        t->w_.tag = 0;
        r->remote_pending--;
    }
}

void sl__select_unpark(sl_task *t)
{
    dequeue_all(t, NULL);
}

/* ---- a select at the home claimed for an offer to another reactor's select (rsel.c) ----
 *
 * Claimed, a select parked here has none of its nodes on a queue, so no
 * local operation, match, close or free can fire it; it waits for the
 * offer's answer as a cross-reactor wait. Only a select whose cases are
 * all on this reactor's channels is claimed: every node is in a queue of
 * ours, taken off and put back on this thread. */

bool sl__select_local_only(const sl_task *t)
{
    const sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++)
        if (cases[i].w_.tag)
            return false;
    return true;
}

/* A case by offer at another home: its proxy may get an offer, a HOLD or
 * an EPIPE while the select is claimed (rsel.c: it is busy then) */
bool sl__select_has_proxies(const sl_task *t)
{
    const sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++)
        if (cases[i].w_.tag == REMOTE_RV)
            return true;
    return false;
}

/* Claimed (rsel_claim.c sl__rsel_claim_for): its nodes in our queues leave them, as for a
 * held select; its proxies elsewhere stay (the select is busy). Counted as
 * a cross-reactor wait by the claim now (rsel_home.c sl__rsel_task_to_offer), not as
 * one with remote cases parked. */
void sl__select_take(sl_task *t)
{
    sl__select_hold(t);
    if (t->w_.tag == SL_SELR_TAG) {
        t->w_.tag = 0;
        t->reactor_->remote_pending--;
    }
}

/* A select held for a rendezvous send case at another reactor (rsel_hold.c
 * r_hold): every node in a queue of ours leaves it, the local ones and
 * those waiting here for credit or a lend of another reactor's buffered
 * channel (what arrives meanwhile stays in hand, for the re-match). Its
 * proxies stay at their homes: an offer or HOLD reaching one while held
 * waits at rsel.c (or is refused busy), it does not fire the select. */
void sl__select_hold(sl_task *t)
{
    sl_case *cases = t->wait_obj_;
    sl_reactor *r = t->reactor_;
    for (int i = 0; i < t->w_.idx; i++) {
        if (cases[i].w_.tag == REMOTE_RV)
            continue;
        sl_wq *q = queue_of(&cases[i], r);
        if (q && sl_wq_has(q, &cases[i].w_))
            sl_wq_remove(q, &cases[i].w_);
        if (cases[i].w_.tag == REMOTE_BUF)   /* its queue's record stays for the put back (no allocation then) */
            pin(r, &cases[i], 1);
    }
}

/* A held or claimed select fires (or stops): its REMOTE_BUF records may go
 * as idle again */
void sl__select_unpin(sl_task *t)
{
    sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++)
        if (cases[i].w_.tag == REMOTE_BUF)
            pin(t->reactor_, &cases[i], -1);
}

/* A held select's wait ends (it fired, or its deadline or cancel): every
 * proxy still attached is withdrawn at its home (its nodes here are off
 * their queues already). */
void sl__select_detach_proxies(sl_task *t)
{
    sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++)
        if (cases[i].w_.tag == REMOTE_RV && cases[i].w_.until)
            sl__rsel_detach(t->reactor_, &cases[i]);
}

/* Declined: the cases again, as at sl_select's start (uniformly among the
 * ready ones). A case whose channel was freed while claimed is ready with
 * -EPIPE, its channel not read. The case chosen (done, its err set), or
 * -1: none ready. */
int sl__select_rematch(sl_task *t)
{
    sl_case *cases = t->wait_obj_;
    int n = t->w_.idx, chosen = -1, ready = 0;
    for (int i = 0; i < n; i++) {
        if (cases[i].w_.tag == SL_CASE_GONE) {
            cases[i].err = -EPIPE;
            cases[i].w_.err = -EPIPE;
            return i;
        }
        if (cases[i].w_.tag == REMOTE_RV)
            continue;   /* a held select's proxy (rsel.c): decided at its home */
        /* a case on another reactor's buffered channel is ready with what
         * arrived here while held (credit, a lent element): asked of its
         * record, not of the channel, whose home may have freed it and
         * reused its header meanwhile (chan.c, type-stable headers): its
         * home_ and cap_ are then another channel's, written by another
         * thread (test_pinned_put_back_after_free_reuse read them) */
        if ((cases[i].w_.tag == REMOTE_BUF ? buf_ready(&cases[i], t->reactor_) : case_ready(&cases[i], t->reactor_)) &&
            sl__rand(t->reactor_) % (uint64_t)++ready == 0)
            chosen = i;
    }
    if (chosen >= 0) {
        sl_case *c = &cases[chosen];
        /* a REMOTE_BUF case by its record, as above: not case_do's look at
         * home_ (NULL'd by a free on the home's thread meanwhile) */
        c->err = c->w_.tag != REMOTE_BUF ? case_do(t, c)
                 : c->op == SL_SEND ? sl__rsend(t, c->ch, c->gen_, c->buf, 0)
                 : sl__rrecv(t, c->ch, c->gen_, c->buf);
        c->w_.err = c->err;
    }
    return chosen;
}

/* None ready: the nodes go back at the front of their queues (their place). */
void sl__select_put_back(sl_task *t)
{
    sl_case *cases = t->wait_obj_;
    for (int i = 0; i < t->w_.idx; i++) {
        if (cases[i].w_.tag == REMOTE_RV)
            continue;   /* a held select's proxy stayed at its home */
        sl_wq *q = queue_of(&cases[i], t->reactor_);   /* a remote record lives until teardown */
        SL_LIST_PUSH_FRONT(q, &cases[i].w_, link);
        q->n++;
        if (cases[i].w_.tag == REMOTE_BUF)
            pin(t->reactor_, &cases[i], -1);   /* in its queue again: kept as any */
        if (cases[i].w_.tag == REMOTE_BUF && cases[i].op == SL_SEND)
            sl__rsend_want(t->reactor_, cases[i].ch, cases[i].gen_);   /* credit that came while held may have gone back */
        else if (cases[i].w_.tag == REMOTE_BUF)
            (void)sl__rrecv_poll(t->reactor_, cases[i].ch, cases[i].gen_);   /* claimed as it parked, its node was off at the flush: no ask went (its record exists) */
    }
}

void sl__waiter_fire(sl_waiter *w, int result)
{
    sl_task *t = w->task;
    if (!t) {
        sl__proxy_fire(w, result);
        return;
    }
    if (t->wait_kind_ == SL_WAIT_SELECT) {
        /* the case's own result, where sl_select's caller reads it (a
         * parked select's cases[i].err stayed 0 before: a channel closed
         * while it waited said 0, not -EPIPE) */
        SL_CONTAINER_OF(w, sl_case, w_)->err = result;
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

static int choose_prio(sl_task *t, sl_case *cases, int n, uint32_t k, bool *unready_remote)
{
    int first = -1, least = -1, ready = 0;
    uint32_t min_slack = NOT_READY;
    for (int i = 0; i < n; i++) {
        if (!case_ready(&cases[i], t->reactor_)) {
            cases[i].waited_ = NOT_READY;   /* not waiting: its count starts again */
            *unready_remote |= asks_home(&cases[i], t->reactor_);
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

/* A select that did not park (a case completed at once, or a default)
 * asks home for every remote case that was not ready, as a parked case
 * would: a remote case gets ready only by what is asked home (credit, or
 * elements held here), so without this a select whose local cases are
 * always ready, or a polling loop, would never see a remote case ready
 * and that channel would starve (test_recv_remote_not_starved,
 * test_send_remote_not_starved, test_poll_asks_home). Bounded: the polls
 * ask only if no ask of this reactor for that channel is in flight and
 * nothing is held. What comes stays here for the next send, receive or
 * select. `skip`: the case that completed (-1: none). */
static void ask_unready(sl_task *t, sl_case *cases, int n, int skip)
{
    sl_reactor *r = t->reactor_;
    for (int i = 0; i < n; i++) {
        sl_case *c = &cases[i];
        if (i == skip || !asks_home(c, r) || case_ready(c, r))
            continue;
        /* no memory for this reactor's record: asked at the next select */
        (void)(c->op == SL_SEND ? sl__rsend_poll(r, c->ch, c->gen_) : sl__rrecv_poll(r, c->ch, c->gen_));
    }
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
    bool unready_remote = false;   /* what ask_unready is for: only then is it called */
    if (prio) {
        chosen = choose_prio(t, cases, n, k, &unready_remote);
    } else {
        /* choose uniformly among the ready cases (reservoir sampling) */
        for (int i = 0; i < n; i++) {
            if (!case_ready(&cases[i], t->reactor_))
                unready_remote |= asks_home(&cases[i], t->reactor_);
            else if (sl__rand(t->reactor_) % (uint64_t)++ready == 0)
                chosen = i;
        }
    }
    if (chosen >= 0) {
        sl_case *c = &cases[chosen];
        c->err = case_do(t, c);
        t->spins_ = 0;
        if (unready_remote)
            ask_unready(t, cases, n, chosen);
        return chosen;
    }
    if (flags & SL_SELECT_DEFAULT) {
        ask_unready(t, cases, n, -1);
        sl__spin(t);
        return -EAGAIN;
    }
    sl_reactor *r = t->reactor_;
    bool remote = false;
    for (int i = 0; i < n; i++) {
        cases[i].err = 0;
        cases[i].w_ = (sl_waiter){ .task = t, .buf = cases[i].buf, .idx = i,
                                   .tag = !is_remote(&cases[i], r) ? 0 : by_offer(&cases[i]) ? REMOTE_RV : REMOTE_BUF };
    }
    /* proxies first: a failure there leaves nothing parked anywhere */
    for (int i = 0; i < n; i++) {
        if (cases[i].w_.tag != REMOTE_RV || (rc = sl__rsel_prepare(t, &cases[i])) == 0)
            continue;
        for (int j = 0; j < i; j++)
            if (cases[j].w_.tag == REMOTE_RV)
                sl__rsel_detach(r, &cases[j]);   /* never posted: freed */
        return rc;
    }
    t->w_.tag = 0;
    t->w_.idx = n;
    t->wait_obj_ = cases;   /* for dequeue_all, until sl__park sets it */
    for (int i = 0; i < n; i++) {
        if (!cases[i].w_.tag) {
            sl_wq_push(queue_of(&cases[i], r), &cases[i].w_);
            continue;
        }
        remote = true;
        if (cases[i].w_.tag == REMOTE_RV)
            continue;   /* posted once parked */
        rc = cases[i].op == SL_SEND ? sl__rsend_push(r, cases[i].ch, cases[i].gen_, &cases[i].w_)
                                    : sl__rrecv_push(r, cases[i].ch, cases[i].gen_, &cases[i].w_);
        if (rc < 0) {   /* no memory for this reactor's record: nothing parked */
            dequeue_all(t, NULL);
            t->wait_obj_ = NULL;
            return rc;
        }
    }
    rc = sl__park(t, SL_WAIT_SELECT, cases, 0);
    if (rc != SL_PENDING) {
        t->wait_obj_ = cases;
        dequeue_all(t, NULL);
        t->wait_obj_ = NULL;
        return rc;
    }
    if (!remote) {
        /* a case on a rendezvous channel here where another reactor's
         * select waits with the other operation: this select is claimed
         * and offered to it (rsel.c). One test while no proxy is queued
         * at this reactor's channels. */
        if (r->rv_queued)
            for (int i = 0; i < n; i++)
                if (!cases[i].ch->cap_ && sl__rsel_claim(t, &cases[i]))
                    break;
        return rc;
    }
    {
        /* It waits for another reactor (a grant, a lend), not for a task
         * of ours: counted as a cross-reactor wait, so this reactor's
         * deadlock check does not take it for blocked. */
        if (t->flags_ & SL_TF_BLOCKED) {
            t->flags_ &= (uint8_t)~SL_TF_BLOCKED;
            r->blocked--;
        }
        t->w_.tag = SL_SELR_TAG;
        r->remote_pending++;
        for (int i = 0; i < n; i++)
            if (cases[i].w_.tag == REMOTE_RV)
                sl__rsel_post(t, &cases[i]);
            else if (cases[i].w_.tag && cases[i].op == SL_SEND)
                sl__rsend_want(r, cases[i].ch, cases[i].gen_);   /* receive cases: asked by the flush */
        /* its proxies posted, it may be claimed as a local-only one is
         * (rsel.c: busy while claimed, docs/core.md "A claimed select with
         * cases elsewhere") */
        if (r->rv_queued)
            for (int i = 0; i < n; i++)
                if (!cases[i].w_.tag && !cases[i].ch->cap_ && sl__rsel_claim(t, &cases[i]))
                    break;
    }
    return rc;
}
