/* rrecv.c: receives on a buffered channel of another reactor, fed ahead.
 *
 * A round trip per element costs microseconds, so a receiving reactor does
 * not ask the home for each element. The home LENDS it elements: the first
 * n of the ring, copied into one message. They stay in the home's ring,
 * counted in its length (so the capacity, the watermarks and the senders
 * see them as there) and marked lent (ch->lent_: always a prefix of the
 * ring, all lent to one reactor, ch->lessee_). A receive on the lessee
 * takes the next lent element at once, without parking; what its tasks
 * took is reported home at the end of the callback (one message for all),
 * and only then do those slots leave the ring. A receive that finds
 * nothing lent parks its task on its own reactor, FIFO, and one ask goes
 * home for as many elements as wait there plus a window (doubled at every
 * ask, quartered at every recall, 1..256); the lend feeds the waiting
 * tasks in order and keeps the rest for the next receives.
 *
 * Why a prefix, one lessee, and no receive past it. Lent elements may
 * come back unreceived (a recall, below). Put back where they were, they
 * are again the oldest; had anyone received a later element meanwhile, it
 * would then receive an earlier one of the same sender after it. So while
 * anything is lent, nobody else receives: a receive at the home (receive,
 * try_receive, a select case) that finds the front lent calls it back and
 * waits one round trip (try_receive: -EAGAIN), and so does another
 * reactor's ask. Lent elements come back by a RECALL (one message; the
 * answer reports what was taken and gives back all the rest). Such a
 * contended recall also turns lending off for the channel for good
 * (ch->lend_off_): its receivers on other reactors then use the round
 * trip (remote.c), which takes elements out of the ring one at a time
 * and lets the home's own receivers go on, so a worker pool keeps the
 * pace it had. Lending suits a channel read from one other reactor.
 *
 * A receiver's deadline or cancel just leaves the queue on its own
 * reactor: nothing was taken (lent elements stay with the reactor for its
 * next receive, or go back when recalled). Close: lent elements still get
 * received; asks are answered -EPIPE once nothing is left, lent or not.
 * Free: parked receivers get -EPIPE, unlent elements are destroyed at
 * once, lent ones are recalled and destroyed when they come back unless
 * received; the header and the ring stay until then. Not lent: rendezvous
 * channels (no ring), expiring ones (a deadline met at another reactor
 * would have to run on_expire there) and _mem ones (their storage is the
 * caller's once freed): those keep the round trip. Nothing is shared
 * between the threads but the messages and fields set at creation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"

#define WIN_MIN 1
#define WIN_START 16
#define WIN_MAX 256
/* Given elements' window may grow further (ship_dirty, `late`): it must
 * cover the round trip of an ask ahead, the receiving reactor's turn
 * until its flush and the home's until it runs the ask (up to ~50 us
 * each while busy, TURN_MSG_NS), and a worker pool's far worker took the
 * 128 jobs of ~0.36 us left when it asked in less: it ran dry at almost
 * every window (docs/core.md, "The worker pool's item (sixteenth stop)").
 * A give stays bounded by half of the ring (give), so the home's
 * receivers keep theirs. */
#define GIVE_WIN_MAX 512

/* Receiver -> home: what was taken, lent elements given back, an ask.
 * Kept at home as the ask node while it waits for elements. */
typedef struct sl_rr_up {
    sl_msg msg;
    sl_chan *ch;
    uint32_t gen;                /* ch's, as the record has it (rsend.c find) */
    sl_reactor *from;
    uint32_t taken;              /* lent elements received since the last report */
    uint32_t want;               /* an ask: up to this many (0: none) */
    bool back;                   /* every lent element not taken comes back */
    bool ack;                    /* this answers a recall */
    bool passed;                 /* home: a receiver here was handed an element it waited for */
    struct sl_rr_up *next;       /* home: the channel's asks */
    uint32_t gtaken;             /* given elements received since the last report */
    uint32_t nback;              /* given elements not received, coming back (free, teardown) */
    unsigned char elems[];       /* ... here */
} rr_up;

/* Home -> receiver: elements lent (n), or the ask's error. */
typedef struct rr_lend {
    sl_msg msg;
    sl_chan *ch;
    uint32_t gen;                /* the ask's */
    sl_reactor *home;
    uint32_t n;
    int err;
    bool given;                  /* given, not lent: out of the home's ring for good */
    struct rr_lend *next;        /* receiver: the next one held */
    unsigned char elems[];
} rr_lend;

typedef struct rr_recall {
    sl_msg msg;
    sl_chan *ch;
    uint32_t gen;                /* ch's while alive */
    sl_reactor *home;
    bool given;                  /* the given elements, not the lent ones (free) */
} rr_recall;

/* n elements from the ring's slot `at` on (wrapping at its end), in at
 * most two copies: a give of a few hundred jobs was a memcpy call for
 * each (docs/core.md, "The worker pool's item (sixteenth stop)"). */
static void copy_out(const sl_chan *ch, unsigned char *dst, size_t at, size_t n)
{
    size_t esz = ch->elem_size_, first = ch->cap_ - at < n ? ch->cap_ - at : n;
    memcpy(dst, ch->buf_ + at * esz, first * esz);
    if (n > first)
        memcpy(dst + first * esz, ch->buf_, (n - first) * esz);
}

/* Home: how many given elements one receiving reactor holds. */
typedef struct sl_rr_give {
    struct sl_rr_give *next;
    sl_reactor *r;
    size_t n;
} rr_give;

typedef struct sl_rrecv {
    struct sl_rrecv *next, *dnext;
    sl_chan *ch;
    uint32_t gen;      /* with ch, what the record is for (rsend.c find) */
    sl_reactor *home, *self;
    size_t esz;
    uint32_t pinned;   /* select nodes of this queue held off it (a held or claimed select: sl__rrecv_pin) */
    /* elements held, not taken: lend->elems[pos..n), then the next ones;
     * one lent message, or given ones in the order given */
    rr_lend *lend, *lend_tail;
    uint32_t pos, taken, gtaken, win, avail;
    bool asking, recalled, was_recalled, dirty;
    uint32_t dseq;               /* r->rs_seq when it was marked, or took its first element since its last report */
    bool grecalled;              /* free: give the given elements back */
    bool giving;                 /* the home answered the last ask with a give */
    bool polled;                 /* a select with a default found nothing held: ask */
    bool late;                   /* a receive parked while an ask for given elements was on its way */
    sl_wq waitq;
    /* The channel's name and capacity, copied when a task parked here,
     * for its diagnostics (diag.c), as in rsend.c's record. */
    const char *name;
    size_t cap;
} sl_rrecv;

static uint8_t lend_off(const sl_chan *ch)
{
    return __atomic_load_n(&ch->lend_off_, __ATOMIC_RELAXED);
}

/* ---- home side ------------------------------------------------------------ */

static void rr_lent(void *arg);
static void rr_recalled(void *arg);

static void answer(rr_up *a, rr_lend *l)
{
    sl_reactor_post_mem(a->from, &l->msg, rr_lent, l);
    free(a);
}

/* False if it could not (no memory): `a` is queued again, first. */
static bool answer_err(sl_chan *ch, rr_up *a, int err)
{
    rr_lend *l = malloc(sizeof *l);
    if (!l) {   /* served again at the next turn's end */
        a->next = ch->rasks_;
        ch->rasks_ = a;
        if (!ch->rasks_tail_)
            ch->rasks_tail_ = a;
        return false;
    }
    *l = (rr_lend){ .ch = ch, .gen = a->gen, .home = ch->home_ ? ch->home_ : ch->qhome_, .err = err };
    answer(a, l);
    return true;
}

/* `contended`: someone else wants the lent elements (not a close or free) */
void sl__rrecv_recall(sl_chan *ch, bool contended)
{
    if (contended)
        __atomic_store_n(&ch->lend_off_, 1, __ATOMIC_RELAXED);
    if (!ch->lent_ || ch->lrecall_)
        return;
    rr_recall *m = malloc(sizeof *m);
    if (!m)
        return;   /* asked again by the next receive or turn's end */
    *m = (rr_recall){ .ch = ch, .gen = sl__chan_live_gen(ch), .home = ch->home_ ? ch->home_ : ch->qhome_ };
    ch->lrecall_ = 1;
    sl_reactor_post_mem(ch->lessee_, &m->msg, rr_recalled, m);
}

static rr_up *pop_ask(sl_chan *ch)
{
    rr_up *a = ch->rasks_;
    ch->rasks_ = a->next;
    if (!ch->rasks_)
        ch->rasks_tail_ = NULL;
    return a;
}

void sl__rrecv_fail_asks(sl_chan *ch, int err)
{
    while (ch->rasks_ && answer_err(ch, pop_ask(ch), err))
        ;
}

void sl__rrecv_drop_asks(sl_chan *ch)
{
    while (ch->rasks_)
        free(pop_ask(ch));
}

static rr_give **give_find(sl_chan *ch, const sl_reactor *r)
{
    rr_give **pp = &ch->gives_;
    while (*pp && (*pp)->r != r)
        pp = &(*pp)->next;
    return pp;
}

/* Once lending is off: gives the head ask up to `avail` elements from the
 * front of the ring. They leave the ring for good (the home's receivers go
 * on past them) and count as taken room until reported received. False if
 * out of memory (the ask stays). */
static bool give(sl_chan *ch, size_t avail)
{
    rr_up *a = ch->rasks_;
    /* Half of what is there (at least one): lending went off because
     * receivers here want elements too, and what is given cannot come
     * back; a reactor whose worker is busy with a long job must not hold
     * the whole ring while the home's workers idle (tests/test_credit.c
     * test_given_worker_pool: both workers made to keep pace). */
    size_t half = avail > 1 ? avail / 2 : avail;
    uint32_t n = half < a->want ? (uint32_t)half : a->want;
    size_t esz = ch->elem_size_;
    rr_give **pp = give_find(ch, a->from), *g = *pp;
    if (!g) {
        if (!(g = calloc(1, sizeof *g)))
            return false;
        g->r = a->from;
        *pp = g;
    }
    rr_lend *l = malloc(sizeof *l + (size_t)n * esz);
    if (!l)
        return false;   /* g stays, holding 0: freed with the others */
    *l = (rr_lend){ .ch = ch, .gen = a->gen, .home = ch->home_, .n = n, .given = true };
    copy_out(ch, l->elems, ch->head_, n);
    ch->head_ = (ch->head_ + n) % ch->cap_;
    ch->len_ -= n;
    ch->given_ += n;
    g->n += n;
    pop_ask(ch);
    answer(a, l);
    return true;
}

/* home: given elements were received there (taken), or came back (nback) */
static void given_done(sl_chan *ch, rr_up *u)
{
    rr_give **pp = give_find(ch, u->from), *g = *pp;
    size_t n = (size_t)u->gtaken + u->nback;
    if (g) {   /* always (a reactor reports only what it was given) */
        g->n -= n < g->n ? n : g->n;
        if (!g->n) {
            *pp = g->next;
            free(g);
        }
    }
    if (u->nback)
        sl__chan_given_back(ch, u->elems, u->nback);
    if (u->gtaken)
        sl__chan_given_taken(ch, u->gtaken);
}

void sl__rrecv_recall_given(sl_chan *ch)
{
    for (rr_give *g = ch->gives_; g; g = g->next) {
        if (!g->n)
            continue;
        rr_recall *m = malloc(sizeof *m);
        if (!m)
            continue;   /* those stay there, and keep the header: a leak, not a fault */
        *m = (rr_recall){ .ch = ch, .gen = sl__chan_live_gen(ch), .home = ch->home_ ? ch->home_ : ch->qhome_,
                          .given = true };
        sl_reactor_post_mem(g->r, &m->msg, rr_recalled, m);
    }
}

void sl__rrecv_drop_given(sl_chan *ch)
{
    while (ch->gives_) {
        rr_give *g = ch->gives_;
        ch->gives_ = g->next;
        free(g);
    }
    ch->given_ = 0;
}

/* Lends the head ask up to `avail` elements of the ring (after the lent
 * prefix) and answers it. False if out of memory (the ask stays). */
static bool lend(sl_chan *ch, size_t avail)
{
    rr_up *a = ch->rasks_;
    uint32_t n = avail < a->want ? (uint32_t)avail : a->want;
    size_t esz = ch->elem_size_;
    rr_lend *l = malloc(sizeof *l + (size_t)n * esz);
    if (!l)
        return false;
    *l = (rr_lend){ .ch = ch, .gen = a->gen, .home = ch->home_, .n = n };
    copy_out(ch, l->elems, (ch->head_ + ch->lent_) % ch->cap_, n);
    ch->lent_ += n;
    ch->lessee_ = a->from;
    pop_ask(ch);
    answer(a, l);
    return true;
}

/* The head ask is served: given once lending is off (and the lent
 * elements are back), else lent. */
static bool serve_head(sl_chan *ch, size_t avail)
{
    return lend_off(ch) ? give(ch, avail) : lend(ch, avail);
}

/* Home, at a turn's end (and after a report): parked receivers at the home
 * first, then asks in order, each lent what is there, up to its want. */
void sl__rrecv_serve(sl_chan *ch)
{
    bool first = ch->rasks_ && ch->rasks_->passed;   /* the ask goes before the home's receivers */
    if (!ch->lent_ && !first)
        sl__chan_serve_local(ch);
    while (ch->rasks_) {
        rr_up *a = ch->rasks_;
        if (ch->freed_) {
            sl__rrecv_fail_asks(ch, -EPIPE);
            return;
        }
        if (ch->lent_ && ch->lessee_ != a->from) {
            sl__rrecv_recall(ch, true);   /* a second receiving reactor */
            return;
        }
        if (ch->recvq_.head && !a->passed)
            break;   /* the home's receivers first: theirs is what is there (below) */
        /* A recall is out: its answer gives back all that is lent then, so
         * a lend made now (to the lessee's ask that crossed the recall)
         * would be counted back while still out there, and received twice.
         * The answer serves the asks (home_up). */
        if (ch->lrecall_)
            return;
        if (ch->lent_ && lend_off(ch)) {   /* lent before it went off: back first, then gives */
            sl__rrecv_recall(ch, true);
            return;
        }
        size_t avail = ch->len_ - ch->lent_;
        if (!avail) {
            if ((ch->closed_ || ch->senders_gone_) && !ch->len_ && !ch->reserved_ && !ch->sendq_.head) {
                if (!answer_err(ch, pop_ask(ch), -EPIPE))
                    return;
                continue;
            }
            return;   /* served when elements come (push_elem) */
        }
        if (!serve_head(ch, avail))
            return;   /* tried again at the next turn's end */
    }
    if (ch->recvq_.head) {
        /* The home's receivers must not idle behind what was lent: what the
         * lessee has not taken comes back, and lending ends (gives from
         * then on). Nor behind what is in the ring: a first ask was given
         * its share and the next waits behind them, or lent elements just
         * came back (put then moves senders in behind them). */
        if (!ch->lent_)
            sl__chan_serve_local(ch);
        else if (first)
            sl__rrecv_recall(ch, true);
    }
}

/* home: `put` has an element for a receiver parked here. FIFO between the
 * home's parked receivers and other reactors' asks: the first ask, once
 * passed over (a receiver here was handed an element while it waited),
 * gets the next element ahead of them. True if it does: the caller puts
 * the element in the ring and calls sl__rrecv_lend_first. */
bool sl__rrecv_ask_first(sl_chan *ch)
{
    rr_up *a = ch->rasks_;
    if (!a || ch->lent_ || ch->lrecall_ || ch->freed_ || !ch->home_)
        return false;
    if (!a->passed) {
        a->passed = true;   /* this receiver goes first; the ask gets the next element */
        return false;
    }
    return true;
}

/* home: the element `put` just put in the ring (nothing else there: a
 * receiver was parked) is lent at once, before anything here can receive
 * it. The receivers parked here then wait for it: it is recalled (a
 * contended recall, so lending ends and the round trip queues that
 * reactor's receives in the home's FIFO from then on), and what the
 * lessee has not taken when the recall reaches it comes back to them.
 * No memory for the lend: the element goes to them after all. */
void sl__rrecv_lend_first(sl_chan *ch)
{
    if (serve_head(ch, ch->len_ - ch->lent_)) {
        if (ch->lent_ && ch->recvq_.head)   /* a give leaves nothing here to wait for */
            sl__rrecv_recall(ch, true);
    } else {
        sl__chan_serve_local(ch);
    }
}

static void home_up(void *arg)
{
    rr_up *u = arg;
    sl_chan *ch = u->ch;
    if (!sl__chan_alive_gen(ch, u->gen) && !u->taken && !u->gtaken && !u->nback && !u->back && !u->ack) {
        /* An ask (nothing to settle) for a channel freed since its
         * receiver read it: the header may be another channel's now.
         * Answered -EPIPE, nothing here read or written but the
         * generation. (What settles lent or given elements comes only
         * while they keep the header, its occupant the same: below.) */
        rr_lend *l = u->want ? malloc(sizeof *l) : NULL;
        if (l) {   /* no memory: its waiters wait for their deadlines */
            *l = (rr_lend){ .ch = ch, .gen = u->gen, .home = sl__current_reactor_raw(), .err = -EPIPE };
            sl_reactor_post_mem(u->from, &l->msg, rr_lent, l);
        }
        free(u);
        return;
    }
    bool held = ch->lent_ || ch->lrecall_ || ch->given_;   /* what keeps a freed header */
    ch->remote_seen_ = 1;
    if (u->taken)
        sl__chan_lent_taken(ch, u->taken);
    if (u->gtaken || u->nback)
        given_done(ch, u);
    if (u->back)
        sl__chan_lent_back(ch);
    if (u->ack)
        ch->lrecall_ = 0;
    if (u->want) {
        u->next = NULL;
        if (ch->rasks_tail_)
            ch->rasks_tail_->next = u;
        else
            ch->rasks_ = u;
        ch->rasks_tail_ = u;
    } else {
        free(u);
    }
    if (ch->freed_) {   /* an ask that crossed the free: -EPIPE */
        sl__rrecv_fail_asks(ch, -EPIPE);
        if (held)   /* always: an ask alone for a freed channel was answered above, by its generation */
            sl__chan_maybe_release(ch);
        return;
    }
    sl__rrecv_serve(ch);
}

/* ---- receiver side ------------------------------------------------------------ */

/* Found by the channel's address and generation, as rsend.c's find (its
 * comment says why): an ask of a record that outlived its channel's free
 * is answered -EPIPE by the home, which compares the generation first
 * (home_up; tests/test_credit.c test_fed_ask_across_free_reuse). */
static sl_rrecv *find(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    for (sl_rrecv **pp = &r->rrecvs, *s; (s = *pp); pp = &s->next)
        if (s->ch == ch && s->gen == gen) {
            if (pp != &r->rrecvs) {   /* to the front: one channel is usually hot */
                *pp = s->next;
                s->next = r->rrecvs;
                r->rrecvs = s;
            }
            return s;
        }
    return NULL;
}

/* `home`, `esz`: the channel's, passed in (once freed it is not ours to read) */
static sl_rrecv *make(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_reactor *home, size_t esz)
{
    sl_rrecv *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ch = ch;
    s->gen = gen;
    s->home = home;
    s->self = r;
    s->esz = esz;
    s->win = WIN_START;
    s->next = r->rrecvs;
    r->rrecvs = s;
    return s;
}

static void mark_dirty(sl_reactor *r, sl_rrecv *s)
{
    if (!s->dirty) {
        s->dirty = true;
        s->dseq = ++r->rs_seq;
        s->dnext = r->rr_dirty;
        r->rr_dirty = s;
    }
}

static void drop_held(sl_rrecv *s)
{
    while (s->lend) {
        rr_lend *l = s->lend;
        s->lend = l->next;
        free(l);
    }
    s->lend_tail = NULL;
    s->pos = 0;
    s->avail = 0;
}

/* The next element held is received into `dst`. */
static void take(sl_reactor *r, sl_rrecv *s, void *dst)
{
    rr_lend *l = s->lend;
    if (s->dirty && !s->taken && !s->gtaken)   /* its first report is made now (an ask does not order) */
        s->dseq = ++r->rs_seq;
    sl__copy_elem(dst, l->elems + (size_t)s->pos * s->esz, s->esz);
    if (l->given)
        s->gtaken++;
    else
        s->taken++;
    s->avail--;
    if (++s->pos == l->n) {
        s->lend = l->next;
        if (!s->lend)
            s->lend_tail = NULL;
        free(l);
        s->pos = 0;
    }
    mark_dirty(r, s);
}

/* A select's case: as in rsend.c. */
static void waiter_done(sl_reactor *r, sl_waiter *w, int rc)
{
    sl_task *t = w->task;
    if (t->wait_kind_ == SL_WAIT_SELECT) {
        sl__waiter_fire(w, rc);
        return;
    }
    r->remote_pending--;
    t->w_.tag = 0;
    sl__wake(t, rc);
}

/* receiver: a lend, or an ask's error */
static void rr_lent(void *arg)
{
    rr_lend *l = arg;
    sl_reactor *r = sl__current_reactor_raw();
    sl_rrecv *s = find(r, l->ch, l->gen);   /* kept while asking: always there */
    if (!s && !(s = make(r, l->ch, l->gen, l->home, 0))) {
        free(l);   /* cannot happen (see above); its elements stay lent until a recall */
        return;
    }
    s->asking = false;
    sl_waiter *w;
    if (l->err) {
        while ((w = sl_wq_pop(&s->waitq)))   /* none while elements are held: they took them */
            waiter_done(r, w, l->err);
        free(l);
        return;
    }
    s->giving = l->given;
    l->next = NULL;
    if (s->lend_tail)   /* given ones asked for ahead: after those held */
        s->lend_tail->next = l;
    else
        s->lend = l;
    s->lend_tail = l;
    s->avail += l->n;
    while (s->lend && (w = sl_wq_pop(&s->waitq))) {
        take(r, s, w->buf);
        waiter_done(r, w, 0);
    }
    mark_dirty(r, s);   /* still waiters: ask again; else the report */
}

static void rr_recalled(void *arg)
{
    rr_recall *m = arg;
    sl_reactor *r = sl__current_reactor_raw();
    sl_rrecv *s = find(r, m->ch, m->gen);
    if (m->given) {   /* free: what was given and not taken goes back (none held: nothing to say) */
        if (s && s->lend && s->lend->given) {
            s->grecalled = true;
            mark_dirty(r, s);
        }
        free(m);
        return;
    }
    if (!s)
        s = make(r, m->ch, m->gen, m->home, 0);   /* everything was taken, and reported: an empty answer */
    if (!s) {   /* no memory: answer from here */
        rr_up *u = malloc(sizeof *u);
        if (u) {
            *u = (rr_up){ .ch = m->ch, .gen = m->gen, .from = r, .back = true, .ack = true };
            sl_reactor_post_mem(m->home, &u->msg, home_up, u);
        }
        free(m);
        return;
    }
    free(m);
    s->recalled = true;
    mark_dirty(r, s);
}


static int rrecv_slow(sl_task *t, sl_chan *ch, uint32_t gen, void *elem);

/* A receive with an element in hand, its record in front (where find puts
 * it: one channel is usually hot) takes it here; anything else goes to
 * rrecv_slow, out of line, whose frame the parking path needs. A worker
 * pool's far worker receives so at every job (sixteenth stop). */
int sl__rrecv(sl_task *t, sl_chan *ch, uint32_t gen, void *elem)
{
    sl_rrecv *s = t->reactor_->rrecvs;
    if (s && s->ch == ch && s->gen == gen && s->lend && !s->waitq.head && !t->cancel_err_) {
        s->esz = ch->elem_size_;   /* as rrecv_slow */
        take(t->reactor_, s, elem);
        t->reactor_->rr_front++;
        return 0;
    }
    return rrecv_slow(t, ch, gen, elem);
}

__attribute__((noinline)) static int rrecv_slow(sl_task *t, sl_chan *ch, uint32_t gen, void *elem)
{
    sl_reactor *r = t->reactor_;
    if (t->cancel_err_)
        return t->cancel_err_;
    sl_rrecv *s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;   /* made by a recall, it did not know */
    if (s->lend && !s->waitq.head) {
        take(r, s, elem);
        return 0;
    }
    s->name = ch->name_;   /* only a parked task is described: a receive in hand does not pay */
    s->cap = ch->cap_;
    t->w_.task = t;
    t->w_.buf = elem;
    t->w_.tag = SL_RRECV_TAG;
    t->w_.until = 0;
    sl_wq_push(&s->waitq, &t->w_);
    int rc = sl__park(t, SL_WAIT_REMOTE, ch, 0);
    if (rc != SL_PENDING) {
        sl_wq_remove(&s->waitq, &t->w_);
        t->w_.tag = 0;
        return rc;
    }
    r->remote_pending++;
    if (s->asking && s->giving)
        s->late = true;   /* the ask ahead went too late: the next one asks for more (ship_dirty) */
    mark_dirty(r, s);   /* the ask goes at the callback's end */
    return SL_PENDING;
}

/* ---- select (select.c) -------------------------------------------------------- */

/* A receive case is ready when a receive would complete at once: an
 * element held here (lent or given) and nobody before it in the queue. */
bool sl__rrecv_ready(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    sl_rrecv *s = find(r, ch, gen);
    return s && s->lend && !s->waitq.head;
}

sl_wq *sl__rrecv_queue(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    sl_rrecv *s = find(r, ch, gen);
    return s ? &s->waitq : NULL;
}

/* Queues a select's receive case `w` (w->buf: where the element goes);
 * the ask goes home at the callback's end (the flush sees a waiter and
 * nothing held), and the lend fires it like a parked receive. */
int sl__rrecv_push(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_waiter *w)
{
    sl_rrecv *s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;
    s->name = ch->name_;   /* for the diagnostics of w's select (diag.c), as a parked receive's */
    s->cap = ch->cap_;
    sl_wq_push(&s->waitq, w);
    mark_dirty(r, s);
    return 0;
}

/* A held or claimed select (rsel.c) took its node off this queue and
 * puts it back (or fires) later: the record must not go as idle meanwhile
 * (d: +1 when taken off, -1 when back or fired). It exists: the node was
 * in its queue. */
void sl__rrecv_pin(sl_reactor *r, const sl_chan *ch, uint32_t gen, int d)
{
    sl_rrecv *s = find(r, ch, gen);
    if (s)
        s->pinned += (uint32_t)d;
}

/* A select with SL_SELECT_DEFAULT found nothing held: the flush asks
 * home as for a parked receiver, so that polling gets elements at all
 * (what comes is held for the next receive or select). */
int sl__rrecv_poll(sl_reactor *r, sl_chan *ch, uint32_t gen)
{
    sl_rrecv *s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;
    s->polled = true;
    mark_dirty(r, s);
    return 0;
}

bool sl__rrecv_parked(const sl_task *t)
{
    return t->wait_kind_ == SL_WAIT_REMOTE && t->w_.tag == SL_RRECV_TAG;
}

/* Diagnostics (diag.c): as sl__rsend_chan_info, from r's record (it
 * exists while a waiter's node is queued in it or pinned: sl__rrecv_pin;
 * its name set by sl__rrecv, sl__rrecv_push), found by the waiter's
 * generation or its node, never by the address alone (an old channel's
 * record and a new one's may share it). */
bool sl__rrecv_chan_info(const sl_reactor *r, const sl_chan *ch, uint32_t gen, const sl_waiter *w,
                         const char **name, size_t *cap)
{
    const sl_rrecv *s = r->rrecvs;
    while (s && (s->ch != ch || (w ? !sl__wq_holds(&s->waitq, w) : s->gen != gen)))
        s = s->next;
    *name = s ? s->name : NULL;
    *cap = s ? s->cap : 0;
    return s != NULL;
}

/* deadline, cancel, teardown: leave the queue; nothing was taken */
void sl__rrecv_unpark(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    for (sl_rrecv *s = r->rrecvs; s; s = s->next)   /* the one holding t (rsend.c's unpark) */
        if (s->ch == t->wait_obj_ && sl__wq_holds(&s->waitq, &t->w_)) {
            sl_wq_remove(&s->waitq, &t->w_);
            break;
        }
    t->w_.tag = 0;
    r->remote_pending--;
}

/* Tests (sl__rrecv_set_report_hook): runs on the receiving reactor's
 * thread after each report goes home, to hold the flush there while the
 * home shows what it has got (tests/test_credit.c
 * test_send_then_recv_order). Set while no runtime runs. */
static void (*report_hook)(void *);
static void *report_hook_arg;

void sl__rrecv_set_report_hook(void (*after)(void *), void *arg)
{
    report_hook = after;
    report_hook_arg = arg;
}

/* Reports, answers to recalls and asks of the records marked dirty go
 * home: those homed on `home` and stamped before `before` only (home
 * NULL: all; the others stay marked, in their order). `batches`: each
 * report after the batches for its home begun before it (the flush's
 * order, sl__rsend_ship_before); with home NULL always. */
static int ship_dirty(sl_reactor *r, bool all, const sl_reactor *home, uint32_t before, bool batches)
{
    int did = 0;
    /* In the order made, by stamp (dseq): reports of receives on x and
     * then on y, both homed on one reactor, go x first, so a sender there
     * that found room in y made by the second finds the room the first
     * made in x, as rsend.c's batches (sl__rsend_flush). rr_dirty is
     * pushed at its head, so each record is usually older than all the
     * sorted ones: one compare. Not always: a record marked for an ask is
     * stamped again by its first take (take), and kept its place. */
    sl_rrecv *s = NULL;
    for (sl_rrecv *x = r->rr_dirty, *xn; x; x = xn) {
        xn = x->dnext;
        sl_rrecv **pp = &s;
        while (*pp && (int32_t)((*pp)->dseq - x->dseq) < 0)
            pp = &(*pp)->dnext;
        x->dnext = *pp;
        *pp = x;
    }
    r->rr_dirty = NULL;
    while (s) {
        sl_rrecv *next = s->dnext;
        if (home && (s->home != home || (int32_t)(s->dseq - before) >= 0)) {   /* stays, still marked: back at the head, oldest first */
            s->dnext = r->rr_dirty;
            r->rr_dirty = s;
            s = next;
            continue;
        }
        s->dirty = false;
        bool given_held = s->lend && s->lend->given;
        bool back = s->recalled || (all && s->lend && !given_held);
        bool gback = given_held && (s->grecalled || all);
        bool dry = (s->waitq.head || s->polled) && (!s->lend || back || gback);
        s->polled = false;
        /* Asking ahead, for given elements only (a lend is one at a time:
         * a recall must get back all that is lent): a reactor whose tasks
         * received here since the last report and hold half a window or
         * less asks for the next window, so the next element is here when
         * they want it, not a round trip later. A reactor that stops
         * receiving stops asking: what it holds is at most two windows.
         * The window doubles, up to GIVE_WIN_MAX, when the tasks ran dry
         * anyway: a receive parked while the last ask was on its way
         * (late), so that ask went too late for the pace of the receives
         * here. Only a dry ask grew it before, and an ask ahead is never
         * dry: the far worker of a pool kept a window of 256, which its
         * receives emptied before the next came (the ask at 128 left, the
         * give came ~60-120 us later), and waited at every window. */
        bool ahead = s->giving && given_held && !gback && s->gtaken && s->avail <= s->win / 2;
        bool ask = !all && !s->asking && (dry || ahead);
        uint32_t nback = gback ? s->avail : 0;
        if (s->taken || s->gtaken || back || gback || ask) {
            rr_up *u = malloc(sizeof *u + (size_t)nback * s->esz);
            if (!u) {
                mark_dirty(r, s);   /* could not be sent: look again next time */
            } else {
                uint32_t want = 0;
                uint32_t max = s->giving ? GIVE_WIN_MAX : WIN_MAX;
                if (ask && dry) {
                    if (s->was_recalled)
                        s->was_recalled = false;
                    else if (s->win < max)
                        s->win *= 2;   /* it ran dry: a larger window */
                    want = s->waitq.n > s->win ? s->waitq.n : s->win;
                    s->asking = true;
                } else if (ask) {
                    if (s->late && s->win < max) {
                        s->win *= 2;
                        r->rr_late_grows++;
                    }
                    want = s->win;
                    s->asking = true;
                }
                if (ask)
                    s->late = false;
                if (s->recalled) {
                    s->win = s->win / 4 < WIN_MIN ? WIN_MIN : s->win / 4;
                    s->was_recalled = true;
                }
                *u = (rr_up){ .ch = s->ch, .gen = s->gen, .from = r, .taken = s->taken, .want = want,
                              .back = back, .ack = s->recalled, .gtaken = s->gtaken,
                              .nback = nback };
                if (gback) {   /* in order, from the one taken from */
                    uint32_t k = 0;
                    for (rr_lend *l = s->lend; l; l = l->next)
                        for (uint32_t i = l == s->lend ? s->pos : 0; i < l->n; i++, k++)
                            memcpy(u->elems + (size_t)k * s->esz, l->elems + (size_t)i * s->esz,
                                   s->esz);
                }
                if (back || gback)
                    drop_held(s);
                s->taken = 0;
                s->gtaken = 0;
                s->recalled = false;
                s->grecalled = false;
                did++;
                /* the flush: batches to that home begun before these
                 * receives go first (sl__rsend_ship_before) */
                if ((!home || batches) && r->rs_dirty)
                    did += sl__rsend_ship_before(r, s->home, s->dseq);
                sl_reactor_post_mem(s->home, &u->msg, home_up, u);
                if (report_hook)
                    report_hook(report_hook_arg);
            }
        }
        s = next;
    }
    return did;
}

/* A batch of rsend.c leaves for `home` before the callback's end (a send
 * that starts a batch closes the others of that home, a full batch goes:
 * rsend.c close_others, append): what receives of this callback owe that
 * home and made before the batch began (stamped before `before`) goes
 * first. The flush sent reports before batches, so a batch passed them;
 * a task at the home woken by its element found the room those receives
 * made not there yet (tests/test_credit.c
 * test_recv_then_closed_batch_order: a try_send on the channel received
 * from failed in 25 of 64 rounds). Reports made after the batch began
 * stay for the flush (shipped now they would pass its first elements),
 * which sends reports and batches in the order made (ship_dirty,
 * rsend.c sl__rsend_ship_before). One record's receives on both sides of
 * a batch's start are not told apart: its report goes as its first
 * (docs/core.md, "Reports and batches leave in the order made"). */
int sl__rrecv_ship_to(sl_reactor *r, const sl_reactor *home, uint32_t before)
{
    return ship_dirty(r, false, home, before, false);
}

/* A round trip to `home` is about to be posted (remote.c sl__remote_op):
 * every report and batch this reactor owes that home goes first, in the
 * order made, so the home has them before it acts on the request. The
 * request was posted in the task's step, the batch and the report at the
 * flush, behind it; the home drains a chain before it runs the tasks it
 * woke, so a task paired with the request usually found them, but not
 * when the chain was cut between the two (published at CHAIN_MAX
 * messages, reactor.c): a send on x and then a receive or a send on a
 * rendezvous z of one home, and z's counterpart there found x empty in
 * 98-99 of 100 rounds (tests/test_rv_order.c). No message is added: the
 * same batch and report leave a moment sooner. */
int sl__rrecv_ship_all_to(sl_reactor *r, const sl_reactor *home)
{
    uint32_t now = r->rs_seq + 1;   /* after every stamp made */
    int did = r->rr_dirty ? ship_dirty(r, false, home, now, true) : 0;
    if (r->rs_dirty)
        did += sl__rsend_ship_before(r, home, now);
    return did;
}

/* End of a callback: reports, answers to recalls and asks go home. `all`:
 * give every lent element back (the runtime is being freed). */
int sl__rrecv_flush(sl_reactor *r, bool all)
{
    if (all)
        for (sl_rrecv *x = r->rrecvs; x; x = x->next)
            if (x->lend)
                mark_dirty(r, x);
    int did = ship_dirty(r, all, NULL, 0, true);
    /* free the idle ones */
    for (sl_rrecv **pp = &r->rrecvs, *x; (x = *pp);) {
        if (!x->lend && !x->asking && !x->waitq.head && !x->dirty && !x->taken && !x->gtaken &&
            !x->recalled && !x->pinned) {
            *pp = x->next;
            free(x);
        } else {
            pp = &x->next;
        }
    }
    return did;
}

/* Teardown: whatever is left (nothing can run any more). */
void sl__rrecv_free_all(sl_reactor *r)
{
    while (r->rrecvs) {
        sl_rrecv *s = r->rrecvs;
        r->rrecvs = s->next;
        drop_held(s);
        free(s);
    }
    r->rr_dirty = NULL;
}
