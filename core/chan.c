/* chan.c: bounded channels (home-reactor operations).
 *
 * Invariants: receivers park only on an empty channel, or one whose front
 * is lent to another reactor (rrecv.c: nobody receives past a lent
 * element), senders only on a full one (cap 0 is always full and empty),
 * so without a lend at most one of the two queues is non-empty. A sender's element stays in its own buffer while it is
 * parked and is copied exactly once, by whoever takes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"

#define ELEM_MAX (64 * 1024)

/* Elements are small and usually 8 bytes: a constant-size copy inlines. */
static inline void copy_elem(const sl_chan *ch, void *dst, const void *src)
{
    sl__copy_elem(dst, src, ch->elem_size_);
}

/* What the channel holds, as its length, statistics and watermarks count
 * it: the ring (lent elements included) and the elements given to other
 * reactors (rrecv.c) not yet reported received. A give takes elements out
 * of the ring but not out of the channel: until received they still hold
 * room (len_ + reserved_ + given_ <= cap_), so a channel read as emptier
 * would say "low" while it is full (issue 17). */
static size_t occupied(const sl_chan *ch)
{
    return ch->len_ + ch->given_;
}

/* (head_ + i) within the ring, for i < cap_ (head_ < cap_ too): a compare
 * and a subtraction, not a division, which costs tens of cycles on the
 * path of every push (one) and pop (two): some six a job at a worker
 * pool's home (docs/core.md, "The worker pool's item (sixteenth stop)"). */
static inline size_t wrap(const sl_chan *ch, size_t i)
{
    i += ch->head_;
    return i >= ch->cap_ ? i - ch->cap_ : i;
}

static unsigned char *slot(const sl_chan *ch, size_t i)
{
    return ch->buf_ + wrap(ch, i) * ch->elem_size_;
}

/* `until`: the element's deadline, 0 none (always 0 unless expiring_) */
static void push_elem(sl_chan *ch, const void *elem, uint64_t until)
{
    size_t i = wrap(ch, ch->len_);   /* len_ < cap_: there is room */
    copy_elem(ch, ch->buf_ + i * ch->elem_size_, elem);
    if (ch->dl_) {
        ch->dl_[i] = until;
        ch->dl_n_ += until != 0;
    }
    ch->len_++;
    if (ch->rasks_)
        sl__chan_turn_end(ch);   /* another reactor's receivers wait: lend at the turn's end */
    if (occupied(ch) > ch->high_water_)
        ch->high_water_ = occupied(ch);
    if (ch->high_ && !ch->pressured_ && occupied(ch) >= ch->high_) {
        ch->pressured_ = 1;
        if (ch->on_pressure_)
            ch->on_pressure_(ch, true, ch->pressure_arg_);
    }
}

/* always inlined: the receive path, and sl__chan_hold_head too (a call
 * where main inlined it cost about 17 instructions per try_send+try_recv) */
static inline __attribute__((always_inline)) void pop_elem(sl_chan *ch, void *elem)
{
    copy_elem(ch, elem, slot(ch, 0));
    if (ch->dl_ && ch->dl_[ch->head_])
        ch->dl_n_--;
    ch->head_ = wrap(ch, 1);
    ch->len_--;
}

static void pressure_down(sl_chan *ch)
{
    if (ch->pressured_ && occupied(ch) <= ch->low_) {
        ch->pressured_ = 0;
        if (ch->on_pressure_)
            ch->on_pressure_(ch, false, ch->pressure_arg_);
    }
}

/* A parked sender is done (its element taken, or failed). */
static void fire_sender(sl_chan *ch, sl_waiter *w, int result)
{
    /* the reactor's coarse clock: this is a statistic. A sender that parked
     * with a timeout noted the exact clock, which may be ahead of it. */
    if (w->task && ch->home_->now > w->task->wait_since_)
        ch->send_parked_ns_ += ch->home_->now - w->task->wait_since_;
    sl__waiter_fire(w, result);
}

static void fail_all(sl_chan *ch, sl_wq *q, int err)
{
    sl_waiter *w;
    while ((w = sl_wq_pop(q))) {
        if (q == &ch->sendq_)
            fire_sender(ch, w, err);
        else
            sl__waiter_fire(w, err);
    }
}

/* ---- expiring elements ---------------------------------------------------- */

static void destroy_elem(sl_chan *ch, void *e);

/* Has deadline `d` passed? The coarse clock answers "certainly not" for a
 * quarter of the exact read's cost; only a deadline near or past it pays
 * for sl_now_ns(). */
static bool passed(uint64_t d)
{
    if (!d || d > sl_now_coarse_ns() + sl_coarse_slack_ns())
        return false;
    return d <= sl_now_ns();
}

/* An element of the ring (or of a batch) reached its deadline. */
static void expire_elem(sl_chan *ch, void *e)
{
    ch->expired_++;
    if (ch->on_expire_)
        ch->on_expire_(ch, e, ch->expire_arg_);
    destroy_elem(ch, e);
}

/* The first waiter of q that is not another reactor's select's proxy
 * (rsel.c): those are met only by a counterpart that offers, after the
 * plain waiters (which complete at once). An empty queue costs the one
 * test it cost before; a head costs a look at its task, read next anyway. */
static inline sl_waiter *plain_head(const sl_wq *q)
{
    sl_waiter *w = q->head;
    while (w && sl__waiter_is_rvproxy(w))
        w = w->link.next;
    return w;
}

/* live_sender's look past expired senders (an expiring channel's). */
static sl_waiter *live_sender_expiring(sl_chan *ch, sl_waiter *w)
{
    while (w && w->until && passed(w->until)) {
        sl_wq_remove(&ch->sendq_, w);
        fire_sender(ch, w, -ETIMEDOUT);
        w = plain_head(&ch->sendq_);
    }
    return w;
}

/* The first parked sender whose element is still alive; those whose
 * element expired while they waited fail with -ETIMEDOUT, nothing taken
 * (their timer would have said so a moment later). Inlined, the empty
 * queue a receive usually meets costs a load and a test: out of line it
 * was a call and a frame of some 17 instructions at every receive here
 * (a worker pool's home makes two a job: docs/core.md, "The worker
 * pool's item (sixteenth stop)"). */
static inline sl_waiter *live_sender(sl_chan *ch)
{
    if (!ch->sendq_.head)
        return NULL;
    sl_waiter *w = plain_head(&ch->sendq_);
    return ch->expiring_ ? live_sender_expiring(ch, w) : w;
}

static bool room(const sl_chan *ch);
static void note_room(sl_chan *ch);
static int put(sl_chan *ch, const void *elem, uint64_t until);

/* Room opened: parked senders move in, in order. Through put: with
 * elements given to other reactors (rrecv.c) the room they hold may be
 * all there is, so a receiver may be parked here on an empty ring while
 * senders wait for room, and it takes the element. */
static void refill(sl_chan *ch)
{
    sl_waiter *w;
    while (room(ch) && (w = live_sender(ch))) {
        if (sl__rsend_ask_first(ch))
            continue;   /* the slot went to another reactor's ask, first in line */
        sl_wq_remove(&ch->sendq_, w);
        put(ch, w->buf, w->until);
        fire_sender(ch, w, 0);
    }
    pressure_down(ch);
    note_room(ch);
}

/* Drops the expired elements at the head: what a receive must not get. */
static void expire_head(sl_chan *ch)
{
    bool dropped = false;
    while (ch->len_ && ch->dl_n_ && passed(ch->dl_[ch->head_])) {
        void *e = ch->buf_ + ch->head_ * ch->elem_size_;
        ch->head_ = (ch->head_ + 1) % ch->cap_;
        ch->len_--;
        ch->dl_n_--;
        expire_elem(ch, e);   /* before anything may reuse the slot */
        dropped = true;
    }
    if (dropped)
        refill(ch);
}

/* A full channel may hold expired elements anywhere: drop them all, the
 * others keep their order, then parked senders move in. Returns whether
 * room was made. */
static bool sweep(sl_chan *ch)
{
    size_t n = ch->len_, kept = 0, esz = ch->elem_size_;
    for (size_t i = 0; i < n; i++) {
        size_t from = (ch->head_ + i) % ch->cap_;
        if (ch->dl_[from] && passed(ch->dl_[from])) {
            ch->dl_n_--;
            expire_elem(ch, ch->buf_ + from * esz);
            continue;
        }
        if (kept != i) {   /* forward only: an expired slot is overwritten after its callbacks */
            size_t to = (ch->head_ + kept) % ch->cap_;
            memcpy(ch->buf_ + to * esz, ch->buf_ + from * esz, esz);
            ch->dl_[to] = ch->dl_[from];
        }
        kept++;
    }
    if (kept == n)
        return false;
    ch->len_ = kept;
    refill(ch);
    return true;
}

bool sl__chan_sweep(sl_chan *ch)
{
    return ch->dl_n_ && sweep(ch);
}

/* ---- the operations, shared by send/recv, try_ and select -------------- */

/* Credit lent to other reactors (rsend.c) and elements given to them
 * (rrecv.c) count as taken room. */
static bool room(const sl_chan *ch)
{
    return ch->len_ + ch->reserved_ + ch->given_ < ch->cap_;
}

/* Room opened: queued asks for credit are served at the turn's end, in
 * one grant, rather than one slot at a time. */
void sl__chan_turn_end(sl_chan *ch)
{
    if (!ch->grant_queued_ && ch->home_) {
        ch->grant_queued_ = 1;
        ch->grant_next_ = ch->home_->grant_head;
        ch->home_->grant_head = ch;
    }
}

static void note_room(sl_chan *ch)
{
    if (ch->asks_)
        sl__chan_turn_end(ch);
}

/* The element goes to a parked receiver, or into the ring. */
static int put(sl_chan *ch, const void *elem, uint64_t until)
{
    /* No receive past a lent element, nor past one in the ring: a receiver
     * can be parked here while the ring holds elements (lent ones just
     * come back, not yet served to it), and a sender moved in by refill
     * must go behind them. */
    sl_waiter *w = ch->lent_ || ch->len_ ? NULL : plain_head(&ch->recvq_);
    if (w && ch->rv_held_)
        w = NULL;   /* the head is offered to another reactor's select (rsel.c): behind it */
    if (w && ch->rasks_ && room(ch) && sl__rrecv_ask_first(ch)) {
        ch->sent_++;   /* another reactor's ask is first in line: it is lent the element */
        push_elem(ch, elem, until);
        sl__rrecv_lend_first(ch);
        return 0;
    }
    if (w) {
        sl_wq_remove(&ch->recvq_, w);
        copy_elem(ch, w->buf, elem);
        ch->sent_++;
        ch->received_++;
        sl__waiter_fire(w, 0);
        return 0;
    }
    if (room(ch) || (ch->dl_n_ && sweep(ch) && room(ch))) {
        ch->sent_++;
        push_elem(ch, elem, until);
        if (ch->rv_recvq_)   /* another reactor's select may wait for it (rsel.c) */
            sl__rsel_offer_head(ch);
        return 0;
    }
    if (ch->reserved_)
        sl__rsend_recall(ch);   /* room is lent to another reactor: have it back */
    return -EAGAIN;
}

static int do_send(sl_chan *ch, const void *elem, uint64_t until)
{
    if (ch->closed_ || ch->receivers_gone_)
        return -EPIPE;
    return put(ch, elem, until);
}

int sl__chan_do_send(sl_chan *ch, const void *elem);
int sl__chan_do_send(sl_chan *ch, const void *elem)
{
    return do_send(ch, elem, 0);
}

int sl__chan_do_send_until(sl_chan *ch, const void *elem, uint64_t until);
int sl__chan_do_send_until(sl_chan *ch, const void *elem, uint64_t until)
{
    return do_send(ch, elem, until);
}

int sl__chan_do_recv(sl_chan *ch, void *elem);
int sl__chan_do_recv(sl_chan *ch, void *elem)
{
    if (ch->lent_) {   /* lent to another reactor: have it back (rrecv.c) */
        sl__rrecv_recall(ch, true);
        return -EAGAIN;
    }
    if (ch->dl_n_)
        expire_head(ch);   /* behind a held head too: those expire where a receive meets them anyway */
    if (ch->rv_held_)
        return -EAGAIN;   /* the head is offered to another reactor's select: not past it (rsel.c) */
    sl_waiter *w = live_sender(ch);
    if (ch->len_ > 0) {
        pop_elem(ch, elem);
        ch->received_++;
        if (w && !sl__rsend_ask_first(ch)) {   /* a full buffer had a sender waiting: take its element in */
            sl_wq_remove(&ch->sendq_, w);
            ch->sent_++;
            push_elem(ch, w->buf, w->until);
            fire_sender(ch, w, 0);
        } else {
            note_room(ch);
        }
        pressure_down(ch);
        return 0;
    }
    if (w) {
        sl_wq_remove(&ch->sendq_, w);
        copy_elem(ch, elem, w->buf);
        ch->sent_++;
        ch->received_++;
        fire_sender(ch, w, 0);
        return 0;
    }
    /* credit out: elements may still arrive, admitted before the close */
    if ((ch->closed_ || ch->senders_gone_) && !ch->reserved_)
        return -EPIPE;
    return -EAGAIN;
}

/* Elements and credit came back from another reactor (rsend.c): room for
 * senders parked here, then for asks; receivers of a closed channel fail
 * once nothing more can come. */
static void admitted(sl_chan *ch)
{
    sl_waiter *w;
    while (room(ch) && (w = live_sender(ch))) {
        if (sl__rsend_ask_first(ch))
            continue;
        sl_wq_remove(&ch->sendq_, w);
        put(ch, w->buf, w->until);
        fire_sender(ch, w, 0);
    }
    if ((ch->closed_ || ch->senders_gone_) && !ch->len_ && !ch->reserved_ && !ch->rv_held_ &&
        !plain_head(&ch->sendq_))
        fail_all(ch, &ch->recvq_, -EPIPE);
    if (ch->rasks_)
        sl__chan_turn_end(ch);   /* credit back: other reactors' receivers may get -EPIPE now */
    note_room(ch);
}

void sl__chan_admit(sl_chan *ch, const unsigned char *elems, const unsigned char *untils,
                    uint32_t n, uint32_t returned)
{
    ch->reserved_ -= returned - n;   /* the elements' own credit goes as each enters */
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *e = (unsigned char *)elems + (size_t)i * ch->elem_size_;
        uint64_t until = 0;
        if (untils)   /* a batch's array need not be aligned */
            memcpy(&until, untils + (size_t)i * sizeof until, sizeof until);
        ch->reserved_--;
        if (ch->freed_)
            destroy_elem(ch, e);
        else if (until && passed(until))
            expire_elem(ch, e);   /* it expired on its way: its slot is free again */
        else
            put(ch, e, until);   /* room was reserved for it */
    }
    if (ch->freed_) {
        sl__chan_maybe_release(ch);
        return;
    }
    admitted(ch);
}

/* home: one element of a small batch (rsend.c home_small), its own credit
 * and nothing given back, no deadline, the channel not freed: what
 * sl__chan_admit does then, without the loop and with admitted's looks
 * only when one of them has something to do. A ping-pong leg's every
 * element comes here before the answer can be posted (docs/core.md,
 * "The channel's path to the answer"). */
void sl__chan_admit_one(sl_chan *ch, const void *elem)
{
    ch->reserved_--;
    put(ch, elem, 0);   /* room was reserved for it */
    if (ch->sendq_.head || ch->closed_ || ch->senders_gone_ || ch->rasks_ || ch->asks_)
        admitted(ch);
}

/* Would an operation complete now (including with -EPIPE)? For select. A
 * send that would not, on a channel whose room is lent to other reactors,
 * calls that credit back (rsend.c), as a parked sender does. */
bool sl__chan_ready(sl_chan *ch, int op);
bool sl__chan_ready(sl_chan *ch, int op)
{
    if (op == SL_SEND) {
        if (ch->closed_ || ch->receivers_gone_ || plain_head(&ch->recvq_) || room(ch) ||
            (ch->dl_n_ && sweep(ch) && room(ch)))
            return true;
        if (ch->reserved_)
            sl__rsend_recall(ch);
        return false;
    }
    if (ch->lent_) {
        sl__rrecv_recall(ch, true);
        return false;
    }
    if (ch->dl_n_)
        expire_head(ch);   /* a select must not choose a case that would get nothing */
    if (ch->rv_held_)
        return false;   /* its head is offered to another reactor's select */
    return ch->len_ > 0 || live_sender(ch) || ((ch->closed_ || ch->senders_gone_) && !ch->reserved_);
}

/* ---- creation ----------------------------------------------------------- */

/* TYPE-STABLE HEADERS (issue 17). A message another reactor posted before
 * the home freed a channel may reach the home after the free, naming the
 * channel by its address (an ask for credit or elements, a round trip's
 * start, a select's proxy: docs/core.md, "A message that crosses a free").
 * So a heap channel's header is never given back to malloc while its
 * reactor lives: after the quarantine it waits in the reactor's list of
 * free headers (r->chan_spare), which sl_chan_new on that reactor takes
 * from first, and the home can always read what such a message names.
 * Whether it is still the channel the message was for, the generation
 * says (gen_, sl_chan.h): bumped at the free, again at the release, kept
 * across reuse; a message carries the one its sender read when its task
 * named the channel. Memory: the peak of live heap channels plus
 * SL_CHAN_QUARANTINE headers, per reactor, all freed with the reactor. */
static sl_chan *header_get(sl_reactor *r)
{
    sl_chan *ch = r->chan_spare.head;
    if (ch) {
        SL_LIST_REMOVE(&r->chan_spare, ch, link_);
        r->nchan_spare--;
        return ch;
    }
    /* 64-aligned: the header's first line is read by other reactors (sl_chan.h) */
    ch = aligned_alloc(64, (sizeof *ch + 63) & ~(size_t)63);
    if (ch)
        __atomic_store_n(&ch->gen_, 0, __ATOMIC_RELAXED);
    return ch;
}

/* a header got by header_get and not used after all (no memory for the
 * ring): released, as a freed channel's is */
static void header_put(sl_reactor *r, sl_chan *ch)
{
    sl__chan_gen_bump(ch);   /* a message can name it only once it was handed out; harmless */
    SL_LIST_PUSH_FRONT(&r->chan_spare, ch, link_);
    r->nchan_spare++;
}

/* Zeroes a header for a new channel but its generation, which a reused
 * one keeps: another reactor may have read it (atomically) with no order
 * to this write but the messages it may not have sent. */
static void header_zero(sl_chan *ch)
{
    size_t g = offsetof(sl_chan, gen_), after = g + sizeof ch->gen_;
    memset(ch, 0, g);
    memset((char *)ch + after, 0, sizeof *ch - after);
}

int sl_chan_new_at_(sl_chan **out, sl_reactor *r, size_t elem_size, size_t cap,
                    const sl_chan_opts *opts, sl_chan *mem, void *buf,
                    const char *file, int line)
{
    if (!r)
        r = sl_reactor_current();
    if (!r || elem_size == 0 || elem_size > ELEM_MAX || (!out && !mem))
        return -EINVAL;
    if (cap > SIZE_MAX / elem_size)
        return -EINVAL;
    if (opts && opts->high && opts->low > opts->high)
        return -EINVAL;
    if (mem && cap && !buf)
        return -EINVAL;
    bool expiring = opts && (opts->expiring || opts->deadlines);
    /* deadlines are the _mem twin's storage; on_expire needs deadlines */
    if (opts && ((opts->deadlines && !mem) || (opts->on_expire && !expiring) ||
                 (mem && expiring && cap && !opts->deadlines)))
        return -EINVAL;
    /* `.elem_drop = (void *)free` would free the ring's slot: ptr_free is
     * the hook for channels of pointers */
    if (opts && ((opts->ptr_free && (opts->elem_drop || elem_size != sizeof(void *))) ||
                 (void (*)(void))opts->elem_drop == (void (*)(void))free))
        return -EINVAL;
    if (!sl__on_reactor(r))
        return -EXDEV;
    sl_chan *ch = mem ? mem : header_get(r);
    if (!ch)
        return -ENOMEM;
    if (mem)
        __atomic_store_n(&ch->gen_, 0, __ATOMIC_RELAXED);   /* home-only (sl_chan_mem): never read elsewhere */
    header_zero(ch);
    ch->heap_ = !mem;
    ch->buf_ = buf;
    if (!mem && cap) {
        ch->buf_ = malloc(cap * elem_size);
        if (!ch->buf_) {
            header_put(r, ch);
            return -ENOMEM;
        }
        ch->buf_heap_ = 1;
    }
    if (expiring && cap) {
        ch->dl_ = mem ? opts->deadlines : malloc(cap * sizeof *ch->dl_);
        if (!ch->dl_) {
            if (ch->buf_heap_)
                free(ch->buf_);
            if (!mem)
                header_put(r, ch);
            return -ENOMEM;
        }
        ch->dl_heap_ = !mem;
    }
    ch->expiring_ = expiring;
    ch->home_ = r;
    ch->file_ = file;
    ch->line_ = line;
    ch->name_ = "";
    ch->elem_size_ = elem_size;
    ch->cap_ = cap;
    sl_task *owner = r->current;
    if (opts) {
        if (opts->name)
            ch->name_ = opts->name;
        ch->ptr_free_ = opts->ptr_free;
        ch->elem_drop_ = opts->elem_drop;
        ch->high_ = opts->high;
        ch->low_ = opts->low;
        ch->on_pressure_ = opts->on_pressure;
        ch->pressure_arg_ = opts->pressure_arg;
        if (opts->owner)
            owner = opts->owner;
        ch->on_expire_ = opts->on_expire;
        ch->expire_arg_ = opts->expire_arg;
    }
    ch->owner_ = owner;
    ch->owner_id_ = owner ? owner->id_ : 0;
    SL_LIST_PUSH_FRONT(&r->chans, ch, link_);
    r->nchans++;
    if (out)
        *out = ch;
    return 0;
}

/* ---- send and receive ---------------------------------------------------- */

/* `until`: a send's element deadline, which also ends the wait (0 none) */
static int park_on(sl_task *t, sl_chan *ch, sl_wq *q, sl_wait_kind kind, void *buf, uint64_t until)
{
    t->w_.task = t;
    t->w_.buf = buf;
    t->w_.until = until;
    sl_wq_push(q, &t->w_);
    int rc = sl__park(t, kind, ch, until);
    if (rc != SL_PENDING)
        sl_wq_remove(q, &t->w_);
    return rc;
}

/* The header's first line (sl_chan.h): read by other reactors at every
 * operation, written by the home only at creation, close and free. */
_Static_assert(offsetof(sl_chan, gen_) + sizeof(uint32_t) <= 64 &&
                   offsetof(sl_chan, file_) >= 64,
               "sl_chan: the remote-read fields fill the first 64 bytes, the home's own the rest");

/* A send or receive through a stale pointer: the header is in quarantine. */
static int freed_op(sl_task *t, sl_chan *ch, const char *what)
{
    sl__misuse(t->reactor_, t->file_, t->line_, "%s on freed channel '%s' (made at %s:%d) by task '%s'",
               what, ch->name_, ch->file_, ch->line_, t->name_);
    return -EPIPE;
}

int sl_chan_send(sl_task *t, sl_chan *ch, const void *elem)
{
    if (ch->home_ != t->reactor_)
        return !ch->home_ ? freed_op(t, ch, "send")
               : !ch->heap_ ? -EXDEV   /* _mem: see sl_chan_mem */
               : ch->cap_ ? sl__rsend(t, ch, sl__chan_gen(ch), elem, 0)   /* by credit, in batches */
               : sl__remote_op(t, ch, sl__chan_gen(ch), SL_SEND, (void *)elem);
    if (t->cancel_err_)
        return t->cancel_err_;
    int rc = do_send(ch, elem, 0);
    if (rc != -EAGAIN)
        return rc;
    if (!ch->cap_ && ch->rv_recvq_ && (rc = sl__rsel_offer_task(t, ch, SL_SEND, (void *)elem, 0)) != -EAGAIN)
        return rc;   /* offered to another reactor's select (rsel.c) */
    return park_on(t, ch, &ch->sendq_, SL_WAIT_SEND, (void *)elem, 0);
}

/* expiring_ is set at creation and never changes: another reactor's
 * sender may read it, as it reads cap_. A deadline already behind the
 * reactor's clock (`r`'s coarse one, read per batch of steps, never ahead)
 * is refused; one that passed since is accepted and dropped where a
 * receive meets it (exact there). The send then reads no clock: a send
 * with a deadline costs about what a plain one does. */
static int until_check(const sl_reactor *r, const sl_chan *ch, uint64_t until)
{
    if (!ch->expiring_)
        return -EINVAL;
    return until <= r->now ? -ETIMEDOUT : 0;
}

int sl_chan_send_until(sl_task *t, sl_chan *ch, const void *elem, uint64_t expires)
{
    if (!expires)
        return sl_chan_send(t, ch, elem);
    if (!ch->home_)
        return freed_op(t, ch, "send");
    int rc = until_check(t->reactor_, ch, expires);
    if (rc)
        return rc;
    if (ch->home_ != t->reactor_)
        return ch->cap_ && ch->heap_ ? sl__rsend(t, ch, sl__chan_gen(ch), elem, expires) : -EXDEV;
    if (t->cancel_err_)
        return t->cancel_err_;
    rc = do_send(ch, elem, expires);
    if (rc != -EAGAIN)
        return rc;
    /* a rendezvous channel: offered to another reactor's select, the
     * element's deadline judged at the offer (rsel.c) */
    if (!ch->cap_ && ch->rv_recvq_ && (rc = sl__rsel_offer_task(t, ch, SL_SEND, (void *)elem, expires)) != -EAGAIN)
        return rc;
    return park_on(t, ch, &ch->sendq_, SL_WAIT_SEND, (void *)elem, expires);
}

int sl_chan_recv(sl_task *t, sl_chan *ch, void *elem)
{
    if (ch->home_ != t->reactor_)
        return !ch->home_ ? freed_op(t, ch, "receive")
               : !ch->heap_ ? -EXDEV   /* _mem: see sl_chan_mem */
               : sl__rrecv_wanted(t->reactor_, ch) ? sl__rrecv(t, ch, sl__chan_gen(ch), elem)   /* fed ahead */
               : sl__remote_op(t, ch, sl__chan_gen(ch), SL_RECV, elem);
    if (t->cancel_err_)
        return t->cancel_err_;
    int rc = sl__chan_do_recv(ch, elem);
    if (rc != -EAGAIN)
        return rc;
    if (ch->rv_sendq_ && (rc = sl__rsel_offer_task(t, ch, SL_RECV, elem, 0)) != -EAGAIN)
        return rc;   /* offered to another reactor's select (rsel.c) */
    return park_on(t, ch, &ch->recvq_, SL_WAIT_RECV, elem, 0);
}

static int try_check(sl_task *t, const sl_chan *ch)
{
    if (!ch->home_)
        return -EPIPE;
    if (t ? ch->home_ != t->reactor_ : !sl__on_reactor(ch->home_))
        return -EXDEV;
    return t ? t->cancel_err_ : 0;
}

/* A poll that finds nothing counts towards a busy-poll report. */
static int polled(sl_task *t, int rc)
{
    if (t) {
        if (rc == -EAGAIN)
            sl__spin(t);
        else
            t->spins_ = 0;
    }
    return rc;
}

int sl_chan_try_send(sl_task *t, sl_chan *ch, const void *elem)
{
    int rc = try_check(t, ch);
    return rc ? rc : polled(t, sl__chan_do_send(ch, elem));
}

int sl_chan_try_send_until(sl_task *t, sl_chan *ch, const void *elem, uint64_t expires)
{
    int rc = try_check(t, ch);
    if (!rc && expires)
        rc = until_check(ch->home_, ch, expires);
    return rc ? rc : polled(t, do_send(ch, elem, expires));
}

int sl_chan_try_recv(sl_task *t, sl_chan *ch, void *elem)
{
    int rc = try_check(t, ch);
    return rc ? rc : polled(t, sl__chan_do_recv(ch, elem));
}

void sl__chan_unpark(sl_task *t)
{
    sl_chan *ch = t->wait_obj_;
    if (t->wait_kind_ == SL_WAIT_SEND) {
        ch->send_parked_ns_ += sl_now_ns() - t->wait_since_;   /* rare: timeout, cancel */
        sl_wq_remove(&ch->sendq_, &t->w_);
    } else {
        sl_wq_remove(&ch->recvq_, &t->w_);
    }
}

/* ---- close, ownership ---------------------------------------------------- */

/* The owner is (owner_, owner_id_): a task's id is never reused (task.c),
 * so when the owner ends, a later task made at its address (malloc reuses
 * it at once; sl_spawn_mem by construction) does not pass for it. An ended
 * owner passes nothing on: nobody may close, give or free the channel from
 * then on (-EPERM, reported), and shutdown reports it as a leak. Ownership
 * goes on only by sl_chan_give before the owner ends (to NULL: code
 * outside tasks). Why not to the next task, or to NULL, at the owner's
 * end: that would take a list of owned channels per task, kept at every
 * new, give and free, to turn a bug (a channel left behind) into silence;
 * the report names it instead. */

/* For a non-owner's report: says so when the owner is no live task of the
 * home (it ended, or, given to a task of another reactor, is not known
 * here); never dereferences owner_, which may then be freed memory. */
static const char *owner_note(const sl_chan *ch)
{
    if (!ch->owner_ || !ch->home_ || sl__task_alive(ch->home_, ch->owner_, ch->owner_id_))
        return "";
    return " (its owner is no live task here: ended without giving it on)";
}

int sl_chan_close_at_(sl_task *t, sl_chan *ch, const char *file, int line)
{
    if (ch->freed_) {
        sl__misuse(sl_reactor_current(), file, line, "close of freed channel '%s' (made at %s:%d)",
                   ch->name_, ch->file_, ch->line_);
        return -EALREADY;
    }
    if (!ch->home_ || !sl__on_reactor(ch->home_) || (t && t->reactor_ != ch->home_))
        return -EXDEV;
    if (ch->closed_) {
        sl__misuse(ch->home_, file, line, "second close of channel '%s' (made at %s:%d)",
                   ch->name_, ch->file_, ch->line_);
        return -EALREADY;
    }
    if (!sl__task_is(t, ch->owner_, ch->owner_id_)) {
        sl__misuse(ch->home_, file, line,
                   "close of channel '%s' (made at %s:%d) by task '%s', which does not own it%s",
                   ch->name_, ch->file_, ch->line_, t ? t->name_ : "(none)", owner_note(ch));
        return -EPERM;
    }
    ch->closed_ = 1;
    fail_all(ch, &ch->sendq_, -EPIPE);
    sl__rsend_fail_asks(ch, -EPIPE);
    if (!ch->reserved_ && !ch->len_ && !ch->rv_held_)   /* else when the credit is back or the offer answered */
        fail_all(ch, &ch->recvq_, -EPIPE);
    if (ch->rasks_)
        sl__chan_turn_end(ch);   /* other reactors' receivers: -EPIPE once nothing is left */
    return 0;
}

int sl_chan_give(sl_chan *ch, sl_task *from, sl_task *to)
{
    if (!sl__task_is(from, ch->owner_, ch->owner_id_))
        return -EPERM;
    ch->owner_ = to;
    ch->owner_id_ = to ? to->id_ : 0;
    return 0;
}

/* ---- ends ----------------------------------------------------------------- */

static sl_hold *find_hold(sl_chan *ch, sl_task *t)
{
    sl_hold *h;
    SL_LIST_FOREACH(h, &ch->holds_, clink)
        if (h->task == t)
            return h;
    return NULL;
}

int sl_chan_attach(sl_chan *ch, sl_task *t, int ends)
{
    if (!ends || (ends & ~(SL_CHAN_SENDER | SL_CHAN_RECEIVER)))
        return -EINVAL;
    if (!ch->home_ || ch->freed_)
        return -EPIPE;
    if (!sl__on_reactor(ch->home_) || (t && t->reactor_ != ch->home_))
        return -EXDEV;
    sl_hold *h = find_hold(ch, t);
    if (!h) {
        h = calloc(1, sizeof *h);
        if (!h)
            return -ENOMEM;
        h->ch = ch;
        h->task = t;
        SL_LIST_PUSH_FRONT(&ch->holds_, h, clink);
        ch->n_holds_++;
        if (t)
            SL_LIST_PUSH_FRONT(&t->holds_, h, tlink);
    }
    int added = ends & ~h->ends;
    h->ends |= ends;
    if (added & SL_CHAN_SENDER)
        ch->n_senders_++;
    if (added & SL_CHAN_RECEIVER)
        ch->n_receivers_++;
    return 0;
}

/* ---- quarantine ------------------------------------------------------------ */

/* A freed channel's header is not given back to malloc at once: a stale
 * pointer (a second free, a close or send by a task that kept the pointer
 * but holds no end) must meet a header that says "freed", not memory that
 * malloc handed to someone else. Headers wait in a FIFO per reactor, at most
 * SL_CHAN_QUARANTINE of them (512 KiB: 512-byte headers), and all go with
 * the reactor (past it, to the free headers: "type-stable headers" above).
 * The ring, the bulk of a channel, is freed at once. The FIFO links are the
 * registry's link_, unused once the channel is unregistered. */
static void release_header(sl_chan *ch)
{
    sl_reactor *r = ch->qhome_;
    if (!r || r->quar_off) {
        free(ch);
        return;
    }
    /* no message of another reactor may settle anything with it now:
     * one still on its way finds a generation not its own */
    sl__chan_gen_bump(ch);
    SL_LIST_PUSH_BACK(&r->quar, ch, link_);
    if (++r->nquar > SL_CHAN_QUARANTINE) {
        sl_chan *old = r->quar.head;   /* to the free headers, not to malloc (type-stable) */
        SL_LIST_REMOVE(&r->quar, old, link_);
        r->nquar--;
        SL_LIST_PUSH_FRONT(&r->chan_spare, old, link_);
        r->nchan_spare++;
    }
}

void sl__chan_quarantine_free(sl_reactor *r)
{
    r->quar_off = true;
    while (r->quar.head) {
        sl_chan *ch = r->quar.head;
        SL_LIST_REMOVE(&r->quar, ch, link_);
        free(ch);
    }
    r->nquar = 0;
    while (r->chan_spare.head) {
        sl_chan *ch = r->chan_spare.head;
        SL_LIST_REMOVE(&r->chan_spare, ch, link_);
        free(ch);
    }
    r->nchan_spare = 0;
}

static void release_ring(sl_chan *ch)
{
    if (ch->buf_heap_)
        free(ch->buf_);
    ch->buf_ = NULL;
    ch->buf_heap_ = 0;
    if (ch->dl_heap_)
        free(ch->dl_);
    ch->dl_ = NULL;
    ch->dl_heap_ = 0;
    ch->dl_n_ = 0;
}

/* The loans (rsend.c) go with the header, not the ring: a recall in flight
 * still points at its loan after the ring is gone. */
static void chan_release_mem(sl_chan *ch)
{
    sl__rsend_free_loans(ch);
    sl__rrecv_drop_given(ch);   /* records of reactors holding none */
    release_ring(ch);
    if (ch->heap_)
        release_header(ch);
}

static void drop_hold(sl_chan *ch, sl_hold *h)
{
    SL_LIST_REMOVE(&ch->holds_, h, clink);
    if (h->task)
        SL_LIST_REMOVE(&h->task->holds_, h, tlink);
    free(h);
    --ch->n_holds_;
    sl__chan_maybe_release(ch);
}

int sl_chan_detach(sl_chan *ch, sl_task *t, int ends)
{
    sl_hold *h = find_hold(ch, t);
    int gone = h ? (h->ends & ends) : 0;
    if (!gone)
        return -ENOENT;
    h->ends &= ~gone;
    bool freed = ch->freed_;
    if ((gone & SL_CHAN_RECEIVER) && --ch->n_receivers_ == 0 && !freed) {
        /* nobody will ever receive: no sender may wait for one */
        ch->receivers_gone_ = 1;
        fail_all(ch, &ch->sendq_, -EPIPE);
        sl__rsend_fail_asks(ch, -EPIPE);
    }
    if ((gone & SL_CHAN_SENDER) && --ch->n_senders_ == 0 && !freed) {
        ch->senders_gone_ = 1;
        /* Another reactor's select's proxy (rsel.c) is no sender here: it
         * meets a select parked here only by a claim, made as soon as both
         * are here (one still queued beside it was refused busy, hbusy, and
         * waits for its REMATCH), and a blocking receiver that comes now
         * gets -EPIPE past it (sl__chan_do_recv). */
        if (ch->len_ == 0 && !plain_head(&ch->sendq_) && !ch->reserved_ && !ch->rv_held_)
            fail_all(ch, &ch->recvq_, -EPIPE);
        if (ch->rasks_)
            sl__chan_turn_end(ch);
    }
    if (!h->ends)
        drop_hold(ch, h);   /* may free ch */
    return 0;
}

void sl__chan_release_holds(sl_task *t)
{
    while (t->holds_.head) {
        sl_hold *h = t->holds_.head;
        sl_chan_detach(h->ch, t, h->ends);
    }
}

/* ---- free --------------------------------------------------------------- */

static void unregister(sl_chan *ch)
{
    sl_reactor *r = ch->home_;
    SL_LIST_REMOVE(&r->chans, ch, link_);
    r->nchans--;
    ch->home_ = NULL;
}

static void destroy_elem(sl_chan *ch, void *e)
{
    if (ch->ptr_free_) {
        void *p;
        memcpy(&p, e, sizeof p);   /* a slot need not be aligned for a pointer */
        ch->ptr_free_(p);
    } else if (ch->elem_drop_) {
        ch->elem_drop_(ch, e);
    }
}

/* The elements not lent (a lent one may be received there: rrecv.c
 * destroys it when it comes back unreceived). */
static void destroy_elems(sl_chan *ch)
{
    while (ch->len_ > ch->lent_) {
        ch->len_--;
        destroy_elem(ch, slot(ch, ch->len_));
    }
}

/* Off the home's list of channels to serve (freeing: rare, so a walk). */
static void grant_unqueue(sl_chan *ch)
{
    if (!ch->grant_queued_ || !ch->qhome_)
        return;
    for (sl_chan **pp = &ch->qhome_->grant_head; *pp; pp = &(*pp)->grant_next_)
        if (*pp == ch) {
            *pp = ch->grant_next_;
            break;
        }
    ch->grant_queued_ = 0;
}

/* A freed channel's header goes once no end is attached and no credit is
 * out (a batch on its way still names it); its ring went at the free. */
void sl__chan_maybe_release(sl_chan *ch)
{
    if (ch->freed_ && !ch->n_holds_ && !ch->reserved_ && !ch->recalls_ && !ch->lent_ && !ch->lrecall_ &&
        !ch->given_ && !ch->rv_out_)
        chan_release_mem(ch);
}

/* ---- elements lent to another reactor (rrecv.c) ------------------------------ */

void sl__chan_lent_taken(sl_chan *ch, size_t n)
{
    ch->head_ = (ch->head_ + n) % ch->cap_;
    ch->len_ -= n;
    ch->lent_ -= n;
    ch->received_ += n;
    if (!ch->freed_)
        refill(ch);   /* parked senders move in; watermarks; credit asks */
}

/* Elements given to another reactor were received there: their room opens. */
void sl__chan_given_taken(sl_chan *ch, size_t n)
{
    ch->given_ -= n;
    ch->received_ += n;
    if (!ch->freed_)
        refill(ch);
}

/* Given elements came back unreceived (free, teardown): destroyed if the
 * channel is freed, else put back at the front, in order (only at
 * teardown, when nobody receives any more, so order there is moot). */
void sl__chan_given_back(sl_chan *ch, const unsigned char *elems, size_t n)
{
    ch->given_ -= n;
    for (size_t i = n; i-- > 0;) {
        unsigned char *e = (unsigned char *)elems + i * ch->elem_size_;
        if (ch->freed_ || !ch->buf_) {
            destroy_elem(ch, e);
            continue;
        }
        ch->head_ = (ch->head_ + ch->cap_ - 1) % ch->cap_;
        copy_elem(ch, slot(ch, 0), e);
        ch->len_++;
    }
}

void sl__chan_lent_back(sl_chan *ch)
{
    if (ch->freed_) {
        while (ch->lent_) {   /* at the front, in order */
            void *e = slot(ch, 0);
            ch->head_ = (ch->head_ + 1) % ch->cap_;
            ch->len_--;
            ch->lent_--;
            destroy_elem(ch, e);
        }
    }
    ch->lent_ = 0;
    ch->lessee_ = NULL;
}

/* Nothing lent any more: receivers parked at the home take what is there,
 * or get -EPIPE (closed and empty). Not another reactor's select's proxy
 * (rsel.c: it is offered the head, never handed an element), and nothing
 * past a held head. rsend.c calls this after a grant on any channel with a
 * receiver queued: on an expiring one the head of recvq_ was a receive
 * proxy, which took an element into its buffer and fired -EPIPE at the
 * select, the element lost (test_exp_race, under load). */
void sl__chan_serve_local(sl_chan *ch)
{
    sl_waiter *w;
    while (!ch->lent_ && !ch->freed_ && !ch->rv_held_ && (w = plain_head(&ch->recvq_))) {
        int rc = sl__chan_do_recv(ch, w->buf);
        if (rc == -EAGAIN)
            return;
        sl_wq_remove(&ch->recvq_, w);
        sl__waiter_fire(w, rc);
    }
}

/* ---- the head offered to another reactor's select (rsel.c) ---------------- */

void sl__chan_expire_head(sl_chan *ch)
{
    if (ch->dl_n_)
        expire_head(ch);
}

/* The head element leaves the ring for an offer, with its deadline; it
 * keeps its room and counts in the watermarks as a given element does
 * (given_: room(), occupied() and rsend.c's space() see it; an expiring
 * channel is never given to, rrecv.c), and nobody receives past it until
 * sl__chan_held_back. The caller checked len_ and that none is held. */
void sl__chan_hold_head(sl_chan *ch, void *buf, uint64_t *until)
{
    *until = ch->dl_ ? ch->dl_[ch->head_] : 0;
    pop_elem(ch, buf);
    ch->rv_held_ = 1;
    ch->given_++;
}

/* The offer's answer. Accepted: received (its deadline was judged at the
 * offer; on_expire is not called). Declined: first again, with its
 * deadline (the next receive judges it), or destroyed if the channel was
 * freed meanwhile (the header waited for this answer: rv_out_). Then
 * receivers parked here take what is there, or -EPIPE. */
void sl__chan_held_back(sl_chan *ch, const void *buf, uint64_t until, bool accepted)
{
    ch->rv_held_ = 0;
    ch->given_--;
    if (accepted) {
        ch->received_++;
    } else if (ch->freed_) {
        destroy_elem(ch, (void *)buf);
    } else {
        ch->head_ = (ch->head_ + ch->cap_ - 1) % ch->cap_;
        copy_elem(ch, slot(ch, 0), buf);
        if (ch->dl_) {
            ch->dl_[ch->head_] = until;
            ch->dl_n_ += until != 0;
        }
        ch->len_++;
    }
    if (ch->freed_)
        return;
    if (accepted)
        refill(ch);   /* room: parked senders move in; watermarks; credit asks */
    sl_waiter *w;
    while (!ch->rv_held_ && (w = plain_head(&ch->recvq_))) {
        int rc = sl__chan_do_recv(ch, w->buf);
        if (rc == -EAGAIN)
            break;
        sl_wq_remove(&ch->recvq_, w);
        sl__waiter_fire(w, rc);
    }
}

/* The ends attached to a _mem channel go at its free: a holder's release
 * (its task's end, sl_chan_detach) would name the channel, whose storage
 * is the caller's again; a heap one's header waits for them instead. */
static void drop_holds(sl_chan *ch)
{
    while (ch->holds_.head) {
        sl_hold *h = ch->holds_.head;
        SL_LIST_REMOVE(&ch->holds_, h, clink);
        if (h->task)
            SL_LIST_REMOVE(&h->task->holds_, h, tlink);
        free(h);
    }
    ch->n_holds_ = 0;
}

int sl_chan_free_at_(sl_task *t, sl_chan *ch, const char *file, int line)
{
    if (ch->freed_) {
        sl__misuse(sl_reactor_current(), file, line, "second free of channel '%s' (made at %s:%d)",
                   ch->name_, ch->file_, ch->line_);
        return -EALREADY;
    }
    if (ch->home_ && (!sl__on_reactor(ch->home_) || (t && t->reactor_ != ch->home_)))
        return -EXDEV;
    if (!sl__task_is(t, ch->owner_, ch->owner_id_)) {
        sl__misuse(ch->home_, file, line,
                   "free of channel '%s' (made at %s:%d) by task '%s', which does not own it%s",
                   ch->name_, ch->file_, ch->line_, t ? t->name_ : "(none)", owner_note(ch));
        return -EPERM;
    }
    ch->closed_ = 1;
    fail_all(ch, &ch->sendq_, -EPIPE);
    fail_all(ch, &ch->recvq_, -EPIPE);
    sl__rsel_chan_freed(ch);   /* offers out: their answers will not touch ch (rsel.c) */
    sl__rsend_fail_asks(ch, -EPIPE);
    ch->qhome_ = ch->home_;
    ch->freed_ = 1;
    sl__chan_gen_bump(ch);   /* from here the home's messages carry sl__chan_live_gen */
    sl__rrecv_fail_asks(ch, -EPIPE);
    sl__rrecv_recall(ch, false);   /* lent elements: destroyed when back unreceived */
    sl__rrecv_recall_given(ch);    /* given ones too */
    destroy_elems(ch);
    grant_unqueue(ch);
    if (ch->home_)
        unregister(ch);
    if (!ch->lent_)
        release_ring(ch);   /* the ring goes at once, whatever keeps the header (else when lent ones are back) */
    if (!ch->heap_)
        drop_holds(ch);   /* a _mem channel's storage is the caller's once we return */
    sl__chan_maybe_release(ch);
    return 0;
}

/* At reactor teardown: the channel outlived its reactor, which frees it
 * (after the leak report), elements, holds and all: nothing can use it now. */
void sl__chan_teardown(sl_chan *ch)
{
    sl_wq *qs[2] = { &ch->sendq_, &ch->recvq_ };
    for (int i = 0; i < 2; i++) {
        sl_waiter *w;
        while ((w = sl_wq_pop(qs[i]))) {
            if (w->task)
                sl__waiter_fire(w, -EPIPE);
            else if (sl__waiter_is_rvproxy(w))
                sl__rsel_drop_queued(w);   /* its select is gone already */
            else
                sl__remote_drop_proxy(w);   /* its task is gone already */
        }
    }
    ch->lent_ = 0;   /* every reactor has drained: what was lent is back or received */
    ch->lrecall_ = 0;
    sl__rrecv_drop_given(ch);   /* given: back or received too */
    destroy_elems(ch);
    sl__rsend_drop_asks(ch);   /* the reactor's list of channels to serve goes with it */
    sl__rrecv_drop_asks(ch);
    unregister(ch);
    ch->freed_ = 1;
    sl__chan_gen_bump(ch);
    ch->reserved_ = 0;   /* every reactor has stopped: no batch will come */
    ch->recalls_ = 0;
    if (!ch->holds_.head) {
        chan_release_mem(ch);
        return;
    }
    /* holds of non-task code (task holds went with the tasks); the last
     * drop frees the channel */
    for (uint32_t n = ch->n_holds_; n > 0; n--)
        drop_hold(ch, ch->holds_.head);
}

int sl_chan_set_pressure(sl_chan *ch, size_t high, size_t low,
                         void (*fn)(sl_chan *, bool, void *), void *arg)
{
    if ((fn && !high) || low > high)
        return -EINVAL;
    if (!ch->home_ || !sl__on_reactor(ch->home_))
        return -EXDEV;
    ch->high_ = fn ? high : 0;
    ch->low_ = fn ? low : 0;
    ch->on_pressure_ = fn;
    ch->pressure_arg_ = arg;
    ch->pressured_ = 0;
    if (fn && occupied(ch) >= high) {
        ch->pressured_ = 1;
        fn(ch, true, arg);
    }
    return 0;
}

/* ---- stats ----------------------------------------------------------------- */

void sl_chan_stats_get(const sl_chan *ch, sl_chan_stats *st)
{
    *st = (sl_chan_stats){
        .len = occupied(ch), .cap = ch->cap_, .elem_size = ch->elem_size_,
        .high_water = ch->high_water_, .high = ch->high_, .low = ch->low_,
        .pressured = ch->pressured_, .closed = ch->closed_,
        .sent = ch->sent_, .received = ch->received_, .expired = ch->expired_,
        .send_parked_ns = ch->send_parked_ns_,
        .senders = ch->n_senders_, .receivers = ch->n_receivers_,
        .parked_senders = ch->sendq_.n, .parked_receivers = ch->recvq_.n,
    };
}

size_t sl_chan_len(const sl_chan *ch) { return occupied(ch); }
size_t sl_chan_cap(const sl_chan *ch) { return ch->cap_; }
const char *sl_chan_name(const sl_chan *ch) { return ch->name_; }
sl_reactor *sl_chan_reactor(const sl_chan *ch) { return ch->home_; }

int sl_reactor_foreach_chan(sl_reactor *r, int (*fn)(sl_chan *, void *), void *arg)
{
    sl_chan *ch, *next;
    SL_LIST_FOREACH_SAFE(ch, &r->chans, link_, next) {
        int rc = fn(ch, arg);
        if (rc)
            return rc;
    }
    return 0;
}
