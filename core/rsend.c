/* rsend.c: sends on a buffered channel of another reactor, by credit.
 *
 * A round trip per element costs microseconds (two threads, two wake-ups),
 * so a remote sender does not ask the channel's home about every element.
 * The home lends it capacity (credit): slots of the ring it reserves and
 * counts as taken (ch->reserved_, so len + reserved never exceeds cap, and
 * local senders see the channel full). A send with credit completes at
 * once on the sender's reactor: the element is copied into a batch, and
 * the batch travels home in one message when the callback ends. A send
 * without credit parks its task on the sender's reactor, in FIFO order,
 * and one request for credit goes home; the grant wakes the waiters in
 * order, each element joining the batch.
 *
 * Credit that is not used goes back: at the end of a callback in which the
 * reactor sent nothing on the channel, or after which it has nothing ready
 * to run (it may sleep with it), so capacity is never parked on an idle
 * reactor. A task whose deadline or cancel fires while it waits for credit
 * leaves the queue on its own reactor: its element was never taken, and
 * the credit granted for it goes back. Nothing is shared between the
 * threads but the messages.
 *
 * At home (chan.c helpers): a batch's elements enter the channel as if sent
 * there, even if it was closed meanwhile (they were admitted before the
 * sender could know); receivers of a closed channel get -EPIPE only once
 * no credit is out. A freed channel's header stays until its credit is
 * back; elements arriving then are destroyed with its destructor.
 * Rendezvous channels (cap 0) have no capacity to lend: they keep the
 * round trip (remote.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"

/* Most credit one request asks for: a batch's worth, enough to amortize
 * the round trip, small enough that several senders share a channel. */
#define WANT_MAX 256

typedef struct rs_batch {
    sl_msg msg;
    sl_chan *ch;
    uint32_t n, room, unused;   /* elements, their room, credit given back */
    /* elements, then (expiring channel) their deadlines: room * 8 bytes
     * after the room's elements, unaligned */
    unsigned char elems[];
} rs_batch;

typedef struct sl_rs_ask {
    sl_msg msg;
    sl_chan *ch;
    sl_reactor *from;
    uint32_t want, granted;
    int err;
    struct sl_rs_ask *next;      /* home: the channel's queue of unserved asks */
} rs_ask;

typedef struct sl_rsend {
    struct sl_rsend *next, *dnext;
    sl_chan *ch;
    sl_reactor *home;
    size_t esz;
    uint32_t credit;
    bool asking, used, dirty;
    bool expiring;               /* the channel's elements carry deadlines */
    sl_wq waitq;
    rs_batch *batch;
} sl_rsend;

/* ---- home side ------------------------------------------------------------ */

/* home: a batch arrived (elements, and credit given back) */
static void home_batch(void *arg)
{
    rs_batch *b = arg;
    sl_chan *ch = b->ch;
    sl__chan_admit(ch, b->elems, ch->expiring_ && b->n ? b->elems + (size_t)b->room * ch->elem_size_ : NULL,
                   b->n, b->n + b->unused);
    free(b);
}

static uint32_t space(const sl_chan *ch)
{
    size_t used = ch->len_ + ch->reserved_;
    return used < ch->cap_ ? (uint32_t)(ch->cap_ - used) : 0;
}

static void rs_granted(void *arg);

static void reply(rs_ask *a)
{
    sl_reactor_post_mem(a->from, &a->msg, rs_granted, a);
}

/* home: serves queued asks from free space (at the end of a callback) */
void sl__rsend_grant(sl_chan *ch)
{
    rs_ask *a;
    while ((a = ch->asks_) && !ch->freed_) {
        if (ch->closed_ || ch->receivers_gone_) {
            a->err = -EPIPE;
        } else {
            uint32_t g = space(ch);
            if (!g && ch->dl_n_ && sl__chan_sweep(ch))   /* expired elements hold room */
                g = space(ch);
            if (!g)
                return;
            a->granted = g < a->want ? g : a->want;
            ch->reserved_ += a->granted;
        }
        ch->asks_ = a->next;
        if (!ch->asks_)
            ch->asks_tail_ = NULL;
        reply(a);
    }
}

/* home: fails every queued ask (close, free, last receiver gone) */
void sl__rsend_fail_asks(sl_chan *ch, int err)
{
    rs_ask *a;
    while ((a = ch->asks_)) {
        ch->asks_ = a->next;
        a->err = err;
        reply(a);
    }
    ch->asks_tail_ = NULL;
}

static void home_ask(void *arg)
{
    rs_ask *a = arg;
    sl_chan *ch = a->ch;
    ch->remote_seen_ = 1;
    if (ch->freed_ || ch->closed_ || ch->receivers_gone_) {
        a->err = -EPIPE;
        reply(a);
        return;
    }
    a->next = NULL;
    if (ch->asks_tail_)
        ch->asks_tail_->next = a;
    else
        ch->asks_ = a;
    ch->asks_tail_ = a;
    sl__rsend_grant(ch);
}

/* ---- sender side ------------------------------------------------------------ */

static sl_rsend *find(sl_reactor *r, const sl_chan *ch)
{
    for (sl_rsend **pp = &r->rsends, *s; (s = *pp); pp = &s->next)
        if (s->ch == ch) {
            if (pp != &r->rsends) {   /* to the front: one channel is usually hot */
                *pp = s->next;
                s->next = r->rsends;
                r->rsends = s;
            }
            return s;
        }
    return NULL;
}

static void mark_dirty(sl_reactor *r, sl_rsend *s)
{
    if (!s->dirty) {
        s->dirty = true;
        s->dnext = r->rs_dirty;
        r->rs_dirty = s;
    }
}

static void ship(sl_rsend *s, uint32_t unused)
{
    rs_batch *b = s->batch;
    if (!b) {
        if (!unused)
            return;
        b = malloc(sizeof *b);
        if (!b)
            return;   /* the credit stays lent: kept for the next flush */
        *b = (rs_batch){ .ch = s->ch };
    }
    s->batch = NULL;
    b->unused = unused;
    s->credit -= unused;
    sl_reactor_post_mem(s->home, &b->msg, home_batch, b);
}

/* Copies one element (and its deadline) into the batch; the caller has
 * taken its credit. */
static int append(sl_reactor *r, sl_rsend *s, const void *elem, uint64_t until)
{
    rs_batch *b = s->batch;
    if (b && b->n == b->room) {
        ship(s, 0);
        b = NULL;
    }
    if (!b) {
        uint32_t room = s->credit + 1;   /* this element's credit is taken already */
        b = malloc(sizeof *b + room * (s->esz + (s->expiring ? sizeof until : 0)));
        if (!b)
            return -ENOMEM;
        *b = (rs_batch){ .ch = s->ch, .room = room };
        s->batch = b;
    }
    memcpy(b->elems + (size_t)b->n * s->esz, elem, s->esz);
    if (s->expiring)
        memcpy(b->elems + (size_t)b->room * s->esz + (size_t)b->n * sizeof until, &until, sizeof until);
    b->n++;
    s->used = true;
    mark_dirty(r, s);
    return 0;
}

static void ask(sl_rsend *s, sl_reactor *r)
{
    rs_ask *a = malloc(sizeof *a);
    if (!a)
        return;   /* retried by the next send or flush */
    uint32_t want = s->waitq.n;
    if (want < WANT_MAX)
        want = s->ch->cap_ < WANT_MAX ? (uint32_t)s->ch->cap_ : WANT_MAX;
    *a = (rs_ask){ .ch = s->ch, .from = r, .want = want };
    s->asking = true;
    sl_reactor_post_mem(s->home, &a->msg, home_ask, a);
}

static void waiter_done(sl_reactor *r, sl_task *t, int rc)
{
    r->remote_pending--;
    t->w_.tag = 0;
    sl__wake(t, rc);
}

/* sender: the answer to an ask */
static void rs_granted(void *arg)
{
    rs_ask *a = arg;
    sl_reactor *r = a->from;
    sl_rsend *s = find(r, a->ch);
    if (!s) {   /* cannot happen: an asking sender is kept */
        free(a);
        return;
    }
    s->asking = false;
    s->credit += a->granted;
    mark_dirty(r, s);
    sl_waiter *w;
    if (a->err) {
        while ((w = sl_wq_pop(&s->waitq)))
            waiter_done(r, w->task, a->err);
    }
    while (s->credit && (w = s->waitq.head)) {
        if (w->until && w->until <= sl_now_ns()) {   /* expired while it waited: not taken */
            sl_wq_remove(&s->waitq, w);
            waiter_done(r, w->task, -ETIMEDOUT);
            continue;
        }
        s->credit--;
        if (append(r, s, w->buf, w->until) < 0) {
            s->credit++;
            break;
        }
        sl_wq_remove(&s->waitq, w);
        waiter_done(r, w->task, 0);
    }
    if (s->waitq.head && !s->credit)
        ask(s, r);
    free(a);
}

/* `until`: the element's deadline (0 none); a wait for credit ends then */
int sl__rsend(sl_task *t, sl_chan *ch, const void *elem, uint64_t until)
{
    sl_reactor *r = t->reactor_;
    if (t->cancel_err_)
        return t->cancel_err_;
    sl_rsend *s = find(r, ch);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -ENOMEM;
        s->ch = ch;
        s->home = ch->home_;
        s->esz = ch->elem_size_;
        s->expiring = ch->expiring_;
        s->next = r->rsends;
        r->rsends = s;
    }
    if (s->credit && !s->waitq.head) {
        s->credit--;
        int rc = append(r, s, elem, until);
        if (rc < 0)
            s->credit++;
        return rc;
    }
    t->w_.task = t;
    t->w_.buf = (void *)elem;
    t->w_.tag = SL_RSEND_TAG;
    t->w_.until = until;
    sl_wq_push(&s->waitq, &t->w_);
    int rc = sl__park(t, SL_WAIT_REMOTE, ch, until);
    if (rc != SL_PENDING) {
        sl_wq_remove(&s->waitq, &t->w_);
        t->w_.tag = 0;
        return rc;
    }
    r->remote_pending++;
    mark_dirty(r, s);
    if (!s->asking)
        ask(s, r);
    return SL_PENDING;
}

bool sl__rsend_parked(const sl_task *t)
{
    return t->wait_kind_ == SL_WAIT_REMOTE && t->w_.tag == SL_RSEND_TAG;
}

/* deadline, cancel, teardown: leave the queue; nothing was taken */
void sl__rsend_unpark(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    sl_rsend *s = find(r, t->wait_obj_);
    if (s)
        sl_wq_remove(&s->waitq, &t->w_);
    t->w_.tag = 0;
    r->remote_pending--;
}

/* End of a callback: batches go home; credit goes back unless the reactor
 * sent on the channel in this callback and has more to run. `all`: give
 * every credit back (the runtime is being freed). */
void sl__rsend_flush(sl_reactor *r, bool all)
{
    bool busy = !all && (r->rq_head || r->yq_head);
    sl_rsend *s = r->rs_dirty;
    r->rs_dirty = NULL;
    while (s) {
        sl_rsend *next = s->dnext;
        s->dirty = false;
        bool keep = busy && s->used && !s->waitq.head;
        ship(s, keep ? 0 : s->credit);
        s->used = false;
        if (s->credit || s->batch)
            mark_dirty(r, s);   /* kept (or could not be sent): look again next time */
        s = next;
    }
    /* home side: channels that have room for queued asks */
    sl_chan *ch;
    while ((ch = r->grant_head)) {
        r->grant_head = ch->grant_next_;
        ch->grant_next_ = NULL;
        ch->grant_queued_ = 0;
        sl__rsend_grant(ch);
    }
    /* free the idle ones */
    for (sl_rsend **pp = &r->rsends, *x; (x = *pp);) {
        if (!x->credit && !x->asking && !x->batch && !x->waitq.head && !x->dirty) {
            *pp = x->next;
            free(x);
        } else {
            pp = &x->next;
        }
    }
}

/* Teardown: whatever is left (nothing can run any more). */
void sl__rsend_free_all(sl_reactor *r)
{
    while (r->rsends) {
        sl_rsend *s = r->rsends;
        r->rsends = s->next;
        free(s->batch);
        free(s);
    }
    r->rs_dirty = NULL;
}

void sl__rsend_drop_asks(sl_chan *ch)
{
    rs_ask *a;
    while ((a = ch->asks_)) {
        ch->asks_ = a->next;
        free(a);
    }
    ch->asks_tail_ = NULL;
}
