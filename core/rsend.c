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
 * Credit stays with the sender's reactor until the home calls it back, and
 * the home tops it up as elements arrive: a batch of n elements is
 * answered with up to n slots of new credit (if nobody waits here for room
 * and no ask is queued), so a steady sender, or one that sends one element
 * per round trip (a ping-pong), sends every element with credit in hand:
 * one message per element each way, not an ask, a grant and a batch. A
 * small top-up waits for the answer's batch and rides in it; a large one
 * (a stream's) leaves before the receivers it fed run, so that the sender
 * fills its next batch while they drain this one (HOLD_TOPUP_MAX).
 * Giving credit back whenever the sender idled cost a ping-pong three
 * messages a leg and twice the wake-ups (docs/core.md has the figures;
 * tests/test_credit.c counts the messages). The home keeps a loan
 * record per borrowing reactor and calls its credit back (a recall, one
 * message, answered by a batch giving back all unused credit) when
 * someone else needs the room: a local sender or select that finds the
 * channel full while credit is out (also try_send), an ask it cannot
 * serve, close, free, the last receiver leaving. So capacity never stays
 * parked on an idle reactor while anyone wants it. A task whose deadline
 * or cancel fires while it waits for credit leaves the queue on its own
 * reactor: its element was never taken. Nothing is shared between the
 * threads but the messages (and the fields of a message set before it was
 * posted).
 *
 * At home (chan.c helpers): a batch's elements enter the channel as if sent
 * there, even if it was closed meanwhile (they were admitted before the
 * sender could know); receivers of a closed channel get -EPIPE only once
 * no credit is out. A freed channel's header stays until its credit is
 * back; elements arriving then are destroyed with its destructor.
 * Rendezvous channels (cap 0) have no capacity to lend: they keep the
 * round trip (remote.c). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"
#include "ring.h"

/* Most credit one request asks for: a batch's worth, enough to amortize
 * the round trip, small enough that several senders share a channel. */
#define WANT_MAX 256

/* The largest top-up a flush holds for the batch the next tasks may send
 * (hold_topups); a larger one goes at once (sl__rsend_flush). */
#define HOLD_TOPUP_MAX 16

typedef struct rs_batch {
    sl_msg msg;
    sl_chan *ch;
    sl_reactor *from;           /* the sender's reactor: its loan at home */
    sl_reactor *to;             /* the channel's home, where it goes */
    uint32_t n, room, unused;   /* elements, their room, credit given back */
    bool ack;                   /* the answer to a recall */
    /* A top-up riding along (tn > 0): tn slots of credit for channel tch,
     * whose home is `from`, lent to the batch's destination (which is
     * that loan's borrower). Copies, not the loan: the loan is the home's. */
    uint32_t tn;
    sl_chan *tch;
    uint32_t tgen;              /* tch's generation (the loan's) */
    size_t tesz;
    bool small;                 /* BATCH_SMALL bytes: goes to a reactor's spares when done */
    struct rs_batch *spare_next;
    /* elements, then (expiring channel) their deadlines: room * 8 bytes
     * after the room's elements, unaligned */
    unsigned char elems[];
} rs_batch;

/* A batch of at most one element of at most 8 bytes, no deadline, carried
 * inside a ring cell (sl__reactor_post_cell, issue 17's step 2): the
 * home runs home_small on a copy taken out of the cell, so a ping-pong
 * leg's consumer reads one line written only by the producer, not the cell
 * and then the batch's two lines. Its destination is the reactor running
 * it, its sender the reactor whose ring carried it (sl__reactor_msg_from:
 * an inline message always has one). Sixteen bytes (the sixteenth stop),
 * so that a leg fits the 16 bytes a cell carries when both directions of
 * a pair share one line (ring.h): the channel and the top-up's
 * channel are named by slot numbers of the pair (below, "slots"), and
 * counts that do not fit 16 bits (a top-up, credit given back: a
 * ping-pong's are 1 and 0) take the general path (a batch). */
typedef struct rs_small {
    _Alignas(8) unsigned char elem[8];
    /* Slots by their byte offsets in the pair's table (SLOT_OFF: the
     * home's look is an add, not a shift and an add; 0: none) */
    uint8_t slot;                /* the channel's slot */
    uint8_t tslot;               /* the top-up riding along (tn > 0) is for the channel of */
    uint16_t tn;                 /* slot tslot, as in rs_batch (no size: the borrower learns
                                  * it when its task sends, as after a recall) */
    /* the last word: a leg's is {0, 1, false} (home_small reads it whole) */
    uint16_t unused;
    uint8_t n;                   /* 0 or 1 */
    bool ack;
} rs_small;
_Static_assert(sizeof(rs_small) == 16, "a leg in sixteen bytes");

/* rs_small's last word for one element on its own credit, no recall's
 * answer (a constant: folded) */
static inline uint32_t small_leg_word(void)
{
    rs_small m = { .n = 1 };
    uint32_t w;
    memcpy(&w, (const unsigned char *)&m + offsetof(rs_small, unused), sizeof w);
    return w;
}

/* A slot's definition: from now on, in the pair's order, `slot` of the
 * sender names (ch, gen). Inline too (home_def). */
typedef struct rs_def {
    sl_chan *ch;
    uint32_t gen;
    uint8_t slot;
} rs_def;
_Static_assert(sizeof(rs_def) == 16, "a definition in sixteen bytes");

/* The largest top-up and credit given back a small message carries (its
 * 16-bit fields); larger ones go the general way. A variable, not the
 * constant, only so that tests/test_credit.c (linked statically) can
 * lower it to 0 and see that way taken: read on no leg's path (a
 * loan's slot is defined only under it, topup forgets it past it). */
uint32_t sl__rs_small_max = UINT16_MAX;

/* What a post of either copies from: sl__reactor_post_cell copies the
 * cell's whole room (SL_RING_INLINE bytes, by fixed moves), which is
 * exactly either message (the sixteenth stop: both directions of a pair
 * on one line, 16 bytes a cell). */
_Static_assert(sizeof(rs_small) == SL_RING_INLINE, "a leg fills a cell");
typedef union rs_cell {
    rs_small m;
    rs_def d;
    unsigned char room[SL_RING_INLINE];
} rs_cell;

/* An ask for credit (sender -> home -> sender), or a top-up (home ->
 * sender, unasked). */
typedef struct sl_rs_ask {
    sl_msg msg;
    sl_chan *ch;
    uint32_t gen;                /* ch's, as the sender read it (chan.c, type-stable headers) */
    sl_reactor *from, *home;     /* the sender's reactor; the channel's */
    size_t esz;
    uint32_t want, granted;
    int err;
    bool topup;
    bool passed;                 /* home: a local sender took room it waited for */
    struct sl_rs_ask *next;      /* home: the channel's queue of unserved asks */
} rs_ask;

/* Home: the credit one reactor holds (grants on their way included). */
typedef struct sl_rs_loan {
    sl_msg msg;                  /* the recall */
    sl_chan *ch;
    uint32_t gen;                /* ch's while alive: its recalls and top-ups carry it */
    sl_reactor *to, *home;       /* the borrower; the channel's home (set once) */
    uint32_t lent;
    /* Top-up owed: reserved and counted in `lent`, not sent yet. It leaves
     * with the next batch the home's reactor sends to `to` (one message a
     * leg in a ping-pong, not two), or alone at the callback's end; a
     * recall cancels it (never sent: nothing to get back). */
    uint32_t owed;
    bool recalling;              /* a recall is out: no top-up until its answer */
    sl_rs_cache slot;            /* the slot of the pair home -> to naming it (off 0: none; slots) */
    struct sl_rs_loan *next;
    struct sl_rs_loan *onext;    /* the home reactor's list of loans with a top-up owed */
} rs_loan;

typedef struct sl_rsend {
    struct sl_rsend *next, *dnext;
    sl_chan *ch;
    uint32_t gen;      /* with ch, what the record is for: an older channel at ch's address is another */
    sl_reactor *home, *self;
    size_t esz;
    uint32_t pinned;   /* select nodes of this queue held off it (a held or claimed select: sl__rsend_pin) */
    uint32_t credit;
    bool asking, recalled, dirty;
    bool expiring;               /* the channel's elements carry deadlines */
    bool drop;                   /* not kept when idle (an error or a recall came: sl__rsend_flush) */
    uint32_t bseq;               /* r->rs_seq when its batch began (sl__rrecv_ship_to) */
    sl_rs_cache slot;            /* the slot of the pair self -> home naming it (off 0: none; slots) */
    sl_wq waitq;
    rs_batch *batch;
    /* The channel's name and capacity, copied when a task parked here (the
     * channel alive then: the task was handed it), for the diagnostics
     * of the tasks in waitq (diag.c): the channel is the home's, which
     * may free it and release its header before the -EPIPE comes here. */
    const char *name;
    size_t cap;
} sl_rsend;

/* ---- batches' memory ---------------------------------------------------------- */

/* A batch that fits in BATCH_SMALL bytes (a ping-pong's one element, a few
 * small ones) is not freed at the home but kept in the home reactor's
 * spares (at most SPARES_MAX), and the next batch that reactor sends, to
 * any reactor, takes one: no malloc and free a leg. Safe to reuse because
 * (1) the home's queue is done with its node: sl_mpsc_pop returns a node
 * only once its next_ is linked (or, the last one, once the stub is linked
 * behind it), so no producer writes into it after, and (2) home_batch is
 * done with it: it goes to the spares at its end, on the home's thread,
 * and only that thread takes spares. The memory just changes threads, as
 * with malloc on one and free on the other. */
#define BATCH_SMALL 192
#define SPARES_MAX 8

static rs_batch *batch_alloc(sl_reactor *r, size_t size)
{
    rs_batch *b;
    if (size <= BATCH_SMALL && (b = r->rs_spares)) {
        r->rs_spares = b->spare_next;
        r->rs_nspares--;
    } else {
        b = malloc(size <= BATCH_SMALL ? BATCH_SMALL : size);
        if (!b)
            return NULL;
        r->rs_batch_mallocs++;
    }
    *b = (rs_batch){ .small = size <= BATCH_SMALL };
    return b;
}

static void batch_done(sl_reactor *r, rs_batch *b)
{
    if (b->small && r->rs_nspares < SPARES_MAX) {
        b->spare_next = r->rs_spares;
        r->rs_spares = b;
        r->rs_nspares++;
    } else {
        free(b);
    }
}

/* ---- slots -------------------------------------------------------------------- */

/* A small message names its channels by slot numbers of its pair (sender
 * reactor -> home reactor), not by pointers: the sender keeps, per
 * destination, SL_RS_SLOTS - 1 (channel, generation) it has named
 * (rs_slot_out), and naming one not there first posts a definition
 * (home_def), inline, into a victim slot (slot_victim: a clock, the
 * seventeenth stop; round robin before); the destination
 * keeps, per sender, what the definitions said (rs_slot_in), as they run.
 * The pair's ring is FIFO, so a definition runs there before any message
 * that uses it, and every message that used the slot's old meaning runs
 * before it: a message reads at its home exactly the (channel, gen) its
 * sender named. A definition the ring refuses leaves the tables as they
 * were and the message goes the general way (a batch), as when the
 * message's own post is refused.
 *
 * How a slot is checked against a header's reuse (chan.c: a freed heap
 * channel's header is kept and may become another channel, of another
 * generation): a slot is (address, generation), and what caches its
 * number is a sender record (found by address and generation: the send's
 * channel) or a loan (the channel's own while it lives: the top-up's).
 * The slot's entry points at that cache, and the cache is cleared when
 * the slot is given to another channel (slot_define) or its owner goes
 * (slot_forget: a record retired, a loan freed with its channel). So a
 * number in a cache always names its owner's (channel, generation), a
 * leg's look is one load and a test, and a new channel at an old address
 * never meets the old slot: its record or loan starts with none, finds
 * no entry of its generation and defines one. At the home the send's
 * channel needs no check (the credit the message uses keeps the header:
 * chan.c), and the top-up's channel is checked by its generation as
 * before (topup_in, credit_in: a top-up for a freed channel is dropped).
 *
 * Which slot a new definition takes (the seventeenth stop): a clock.
 * Each cache carries a bit, set by the sender at every message that
 * names its slot (one byte stored in the record or loan the leg writes
 * anyway), left in the slot's entry when the owner goes; the hand
 * clears the bits it passes and stops at the first slot not named since
 * its last pass. A definition starts with the bit clear. The bits choose
 * only which slot is given away, never what a slot means: the hand
 * clears no cache, so every rule above holds whatever they say (a slot
 * given away clears its owner's cache, a definition runs before the
 * messages that use it and after those that used the slot before, a
 * slot never serves another generation). Round robin gave the next
 * slot whatever its use: with 14 channels named every round and one of
 * 26 others, each of those pushed one of the 14 out, and that one
 * another (8 definitions a round where 1 is needed; tests/test_credit.c
 * test_slots_working_set). Past the table (more than 15 channels named
 * in turn) every message still defines, as before. The sender finds its
 * row by the runtime's array (slot_out_row), not by the destination's
 * `id`. */

/* A slot's number as messages and caches carry it: its entry's offset in
 * a row of the home's table (15 * 16 = 240 fits a byte), and back. */
#define SLOT_OFF(i) ((unsigned)(i) * (unsigned)sizeof(sl_rs_slot))
#define SLOT_IDX(off) ((unsigned)(off) / (unsigned)sizeof(sl_rs_slot))
_Static_assert(SLOT_OFF(SL_RS_SLOTS - 1) <= UINT8_MAX, "a slot's offset fits a byte");

/* home: the entry at offset `off` of a row of rs_slot_in */
static inline const sl_rs_slot *slot_at(const sl_rs_slot *row, unsigned off)
{
    return (const sl_rs_slot *)((const unsigned char *)row + off);
}

/* home: slot_row's look for a sender not the last one's. Its index in
 * the runtime's array, not its `id` field: a sender's struct is not read
 * here (slot_row). A sender always has a row: its inline message came on
 * a ring, and rings exist only for runtimes of at most RING_MAX_REACTORS
 * reactors, asserted no more than SL_RS_PEERS (reactor.c). */
static __attribute__((noinline, cold)) sl_rs_slot *slot_row_find(sl_reactor *r, sl_reactor *from)
{
    int i = 0;
    while (r->rt->r[i] != from)
        i++;
    r->rs_in_from = from;
    return r->rs_in_row = r->rs_slot_in[i];
}

/* home: the row of rs_slot_in for messages from `from`. Not by from->id:
 * that field shares a line with the sender's ready queue, which the
 * sender writes at every leg, and reading it cost the ping-pong a miss
 * a leg (1.9x main's time in the slow mode, 1.2x in the fast). */
static inline sl_rs_slot *slot_row(sl_reactor *r, sl_reactor *from)
{
    return r->rs_in_from == from ? r->rs_in_row : slot_row_find(r, from);
}

/* home: a definition, run in the pair's order */
static void home_def(void *arg)
{
    rs_def d;
    memcpy(&d, arg, sizeof d);   /* copied, not cast: as home_small */
    sl_reactor *r = sl__tl_reactor;
    slot_row(r, sl__reactor_msg_from(r))[d.slot] = (sl_rs_slot){ .ch = d.ch, .gen = d.gen };
}

/* sender: the row of our tables for the pair self -> to, or -1 (not of
 * our runtime, or no rings: no inline message goes there). Not by
 * to->id, for the reason slot_row gives: `id` shares a line with `to`'s
 * ready queue, which its thread writes at every step. The runtime's
 * array is written once, before the reactors run. The last row found
 * is kept (a fan-out defines into one row in turn). */
static int slot_out_row(sl_reactor *self, const sl_reactor *to)
{
    if (self->rs_out_to == to)
        return self->rs_out_row;
    if (!self->ring_out)
        return -1;   /* one reactor, or more than RING_MAX_REACTORS: reactor.c sl__reactor_rings_new */
    const sl_runtime *rt = self->rt;
    for (int j = 0; j < rt->n; j++)
        if (rt->r[j] == to && rt->r[j] != self) {
            self->rs_out_to = rt->r[j];
            return self->rs_out_row = j;   /* < rt->n <= RING_MAX_REACTORS <= SL_RS_PEERS (reactor.c) */
        }
    return -1;
}

/* sender: whether slot i's channel was named since the hand last passed
 * (its owner's bit, or the one its last owner left), and the bit cleared:
 * the clock's second chance */
static bool slot_pass(sl_rs_slot_out *e)
{
    uint8_t *u = e->owner ? &e->owner->used : &e->used;
    bool was = *u;
    *u = 0;
    return was;
}

/* sender: the victim for a new definition in row t, other than the slot
 * at offset `keep`. A clock (second chance): the hand moves on from the
 * last victim, clearing the bits of the slots named since it last
 * passed, and stops at the first not named since. So a set of at most
 * 15 channels named again and again keeps its slots while others come
 * and go through the rest (round robin gave the next slot whatever its
 * use: a channel named once every round pushed out one of the set each
 * time, which then pushed out another). Ends within two turns: the
 * first clears every bit it passes. */
static unsigned slot_victim(sl_reactor *self, sl_rs_slot_out *t, uint8_t *hand, unsigned keep)
{
    unsigned i = *hand;
    for (;;) {
        i = i % (SL_RS_SLOTS - 1) + 1;
        if (SLOT_OFF(i) == keep)
            continue;
        if (!slot_pass(&t[i]))
            return i;
        self->rs_slot_passed++;
    }
}

/* sender: the cache *owner (of channel ch, gen) holds no slot of the pair
 * self -> to: look for one in the table (its entry outlived an older
 * owner, or the hand left it), else define it in a victim slot other
 * than the one at offset `keep` (the other channel of the same message).
 * The slot's offset (SLOT_OFF), or 0 if the message cannot go small: no
 * rings there (reactor.c), or the definition refused. A slot found or
 * defined counts as named now. A new definition starts unnamed: its own
 * message is its only use so far, so a channel named once goes at the
 * hand's next pass, and one named again keeps it. */
static __attribute__((noinline, cold)) unsigned slot_define(sl_reactor *self, sl_reactor *to, sl_chan *ch,
                                                            uint32_t gen, sl_rs_cache *owner, unsigned keep)
{
    int row = slot_out_row(self, to);
    if (row < 0)
        return 0;
    sl_rs_slot_out *t = self->rs_slot_out[row];
    unsigned i;
    for (i = 1; i < SL_RS_SLOTS; i++)
        if (t[i].ch == ch && t[i].gen == gen) {
            self->rs_slot_found++;
            owner->used = 1;
            goto own;
        }
    uint8_t *hand = &self->rs_slot_next[row];
    i = slot_victim(self, t, hand, keep);
    rs_cell c;
    c.d = (rs_def){ .ch = ch, .gen = gen, .slot = (uint8_t)i };
    if (sl__reactor_post_cell(to, home_def, &c) < 0) {
        self->rs_slot_refused++;
        return 0;   /* the bits the hand cleared stay cleared: no harm, they are hints */
    }
    *hand = (uint8_t)i;   /* the hand goes on from i */
    if (t[i].owner)
        t[i].owner->off = 0;   /* its old meaning's cache */
    t[i] = (sl_rs_slot_out){ .ch = ch, .gen = gen };
    self->rs_slot_defs++;
    owner->used = 0;
own:
    t[i].owner = owner;
    owner->off = (uint8_t)SLOT_OFF(i);
    return SLOT_OFF(i);
}

/* the two callers' own, out of line with their loads (inlined, gcc loaded
 * the channel and generation on every leg for the call not taken) */
static __attribute__((noinline, cold)) unsigned slot_define_rec(sl_rsend *s, unsigned keep)
{
    return slot_define(s->self, s->home, s->ch, s->gen, &s->slot, keep);
}

/* A top-up past 16 bits (sl__rs_small_max; topup forgot the loan's slot
 * as it passed them) takes the general path: the only look at its size,
 * out of a leg's way. */
static __attribute__((noinline, cold)) unsigned slot_define_loan(rs_loan *l)
{
    if (l->owed > sl__rs_small_max) {
        l->home->rs_small_big++;
        return 0;
    }
    return slot_define(l->home, l->to, l->ch, l->gen, &l->slot, 0);
}

/* sender: *owner goes (a record retired, a loan freed): its slot, if any,
 * stays defined for whoever names the channel next, with no cache, and
 * keeps the owner's bit for the hand */
static void slot_forget(sl_reactor *self, const sl_reactor *to, sl_rs_cache *owner)
{
    if (owner->off) {
        int row = slot_out_row(self, to);   /* >= 0: it was found at the definition */
        if (row >= 0) {
            sl_rs_slot_out *e = &self->rs_slot_out[row][SLOT_IDX(owner->off)];
            e->used = owner->used;
            e->owner = NULL;
        }
        owner->off = 0;
    }
}

/* ---- home side ------------------------------------------------------------ */

static uint32_t space(const sl_chan *ch)
{
    size_t used = ch->len_ + ch->reserved_ + ch->given_;   /* given: rrecv.c */
    return used < ch->cap_ ? (uint32_t)(ch->cap_ - used) : 0;
}

static void rs_granted(void *arg);
static void credit_in(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_reactor *home, size_t esz,
                      uint32_t granted, int err, bool topup);

static rs_loan *loan_find(sl_chan *ch, const sl_reactor *to);

/* An ask that fails gives back the slots reserved for it. */
static void unreserve(sl_chan *ch, rs_ask *a)
{
    if (a->granted) {
        ch->reserved_ -= a->granted;
        loan_find(ch, a->from)->lent -= a->granted;
        a->granted = 0;
    }
}

static void reply(rs_ask *a)
{
    sl_reactor_post_mem(a->from, &a->msg, rs_granted, a);
}

static rs_loan *loan_find(sl_chan *ch, const sl_reactor *to)
{
    for (rs_loan *l = ch->loans_; l; l = l->next)
        if (l->to == to)
            return l;
    return NULL;
}

static rs_loan *loan_get(sl_chan *ch, sl_reactor *to)
{
    rs_loan *l = loan_find(ch, to);
    if (l)
        return l;
    l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->ch = ch;
    l->gen = sl__chan_live_gen(ch);   /* alive: made by home_ask */
    l->to = to;
    l->home = ch->home_;
    l->next = ch->loans_;
    ch->loans_ = l;
    return l;
}

void sl__rsend_free_loans(sl_chan *ch)
{
    while (ch->loans_) {
        rs_loan *l = ch->loans_;
        ch->loans_ = l->next;
        slot_forget(l->home, l->to, &l->slot);
        free(l);
    }
}

static void holder_recall(void *arg);

/* home: off its reactor's list of loans with a top-up owed */
static void owed_unlink(rs_loan *l)
{
    sl_reactor *r = l->home;
    for (rs_loan **pp = &r->rs_owed; *pp; pp = &(*pp)->onext)
        if (*pp == l) {
            *pp = l->onext;
            break;
        }
    l->onext = NULL;
}

/* home: the top-up owed to l's reactor is not sent after all (no memory
 * to send it: the borrower will ask); its slots are free again */
static void owed_cancel(rs_loan *l)
{
    owed_unlink(l);
    l->ch->reserved_ -= l->owed;
    l->lent -= l->owed;
    l->owed = 0;
}

static void owed_send(rs_loan *l);

/* home: call back the credit lent to every reactor but `except`. A top-up
 * owed to one goes first, and the recall's answer brings it back with the
 * rest, as when a top-up was posted at once. Not cancelled: that freed its
 * slots here with no recall under way when it was all that was lent, and
 * nothing moved the sender that wanted them in (it parks after this
 * returns), nor served the ask that wanted them: they waited for their
 * deadlines (tests/test_credit.c test_local_send_meets_owed_topup). */
static void recall(sl_chan *ch, const sl_reactor *except)
{
    for (rs_loan *l = ch->loans_; l; l = l->next) {
        if (l->owed && l->to != except && !l->recalling) {
            owed_unlink(l);
            owed_send(l);
        }
        if (l->lent && !l->recalling && l->to != except) {
            l->recalling = true;
            ch->recalls_++;
            sl_reactor_post_mem(l->to, &l->msg, holder_recall, l);
        }
    }
}

void sl__rsend_recall(sl_chan *ch)
{
    if (ch->reserved_ && !ch->freed_ && ch->home_)
        recall(ch, NULL);
}

/* home: credit for `l`'s reactor, unasked, as its batch made room. Owed,
 * not posted: the flush at the callback's end sends it inside a batch
 * going to that reactor if there is one (in a ping-pong the answer is),
 * else alone (sl__rsend_flush). The slots are reserved now, so capacity
 * is counted as it was when the top-up was a message of its own. */
static inline __attribute__((always_inline)) void topup(sl_chan *ch, rs_loan *l, uint32_t n)
{
    if (!n || l->recalling || ch->asks_ || ch->sendq_.head || ch->closed_ || ch->receivers_gone_ ||
        ch->freed_)
        return;
    uint32_t g = space(ch);
    if (g > n)
        g = n;
    if (!g)
        return;
    ch->reserved_ += g;
    l->lent += g;
    if (!l->owed) {
        sl_reactor *r = l->home;
        l->onext = r->rs_owed;
        r->rs_owed = l;
    }
    l->owed += g;
    /* the spin's first flush is not called while every top-up owed is
     * small (reactor.c flush_chained): this says one may not be */
    if (l->owed > HOLD_TOPUP_MAX) {
        l->home->rs_owed_big = true;
        if (l->owed > sl__rs_small_max)   /* too big for a small message: no slot, so post_small asks */
            slot_forget(l->home, l->to, &l->slot);
    }
}

/* home: the top-up owed, sent alone */
static void owed_send(rs_loan *l)
{
    rs_ask *a = malloc(sizeof *a);
    if (!a) {
        owed_cancel(l);   /* it will ask */
        return;
    }
    *a = (rs_ask){ .ch = l->ch, .gen = l->gen, .from = l->to, .home = l->home,
                   .esz = l->ch->elem_size_, .granted = l->owed, .topup = true };
    l->owed = 0;
    reply(a);
}

/* home: where the top-up owed to `to` is in r's list, or NULL */
static rs_loan **owed_find(sl_reactor *r, const sl_reactor *to)
{
    for (rs_loan **pp = &r->rs_owed, *l; (l = *pp); pp = &l->onext)
        if (l->to == to)
            return pp;
    return NULL;
}

/* home: the top-up at *pp leaves (it rides in what is going to its loan's
 * borrower) */
static void owed_take(rs_loan **pp)
{
    rs_loan *l = *pp;
    *pp = l->onext;
    l->onext = NULL;
    l->owed = 0;
}

/* home: the top-up owed to `to`, if any, rides in batch b (going there) */
static void owed_attach(sl_reactor *r, rs_batch *b, const sl_reactor *to)
{
    rs_loan **pp = owed_find(r, to);
    if (pp) {
        rs_loan *l = *pp;
        b->tch = l->ch;
        b->tgen = l->gen;
        b->tesz = l->ch->elem_size_;
        b->tn = l->owed;
        owed_take(pp);
    }
}

/* r: a top-up of tn slots for tch (homed on `home`) came inside a batch */
static inline void topup_in(sl_reactor *r, sl_chan *tch, uint32_t tgen, sl_reactor *home, size_t tesz,
                            uint32_t tn)
{
    /* a ping-pong's every leg: the record in front (find moves what it
     * finds there), nobody waiting for it, so credit_in would only add */
    sl_rsend *s = r->rsends;
    if (s && s->ch == tch && s->gen == tgen && !s->waitq.head) {
        s->credit += tn;
        r->rs_front_topups++;
    } else {
        credit_in(r, tch, tgen, home, tesz, tn, 0, true);
    }
}

/* home r: a batch arrived (n elements, and credit given back), with a
 * top-up for `from` riding along if tn */
static void home_take(sl_reactor *r, sl_chan *ch, sl_reactor *from, sl_chan *tch, uint32_t tgen,
                      size_t tesz, uint32_t tn, uint32_t n, uint32_t unused, bool ack, const unsigned char *elems,
                      const unsigned char *deadlines)
{
    /* first the top-up riding along: it was owed before the elements
     * below were sent (a top-up alone would have come first too) */
    if (tn)
        topup_in(r, tch, tgen, from, tesz, tn);
    rs_loan *l = ch->loans_;   /* there is one: credit was lent */
    if (l && l->to != from)
        l = loan_find(ch, from);
    if (l) {
        l->lent -= n + unused;
        if (ack) {
            l->recalling = false;
            ch->recalls_--;
        }
    }
    bool freed = ch->freed_;
    sl__chan_admit(ch, elems, deadlines, n, n + unused);   /* may release a freed ch */
    if (l && !ack && !freed)
        topup(ch, l, n);
}

static void home_batch(void *arg)
{
    rs_batch *b = arg;
    sl_chan *ch = b->ch;
    home_take(b->to, ch, b->from, b->tch, b->tgen, b->tesz, b->tn, b->n, b->unused, b->ack, b->elems,
              ch->expiring_ && b->n ? b->elems + (size_t)b->room * ch->elem_size_ : NULL);
    batch_done(b->to, b);
}

/* home: a small batch, run on the copy out of the ring's cell */
static void home_small(void *arg)
{
    /* copied, not cast: arg is drain's byte buffer, and an rs_small read
     * through it would break the aliasing rules */
    rs_small m;
    memcpy(&m, arg, sizeof m);
    sl_reactor *r = sl__tl_reactor;
    sl_reactor *from = sl__reactor_msg_from(r);
    const sl_rs_slot *in = slot_row(r, from);   /* the sender's names */
    sl_chan *ch = slot_at(in, m.slot)->ch;
    rs_loan *l = ch->loans_;
    /* A ping-pong's every leg: one element on its own credit, the loan in
     * front, the channel alive. home_take's work on it, in its order,
     * without the general case's loop and looks: this is all on the path
     * from the question's arrival to the answer's post (docs/core.md,
     * "The channel's path to the answer"). */
    uint32_t w;
    memcpy(&w, (const unsigned char *)&m + offsetof(rs_small, unused), sizeof w);   /* unused, n, ack */
    if (w == small_leg_word() && l && l->to == from && !ch->freed_) {
        if (m.tn)
            topup_in(r, slot_at(in, m.tslot)->ch, slot_at(in, m.tslot)->gen, from, 0, m.tn);
        l->lent--;
        sl__chan_admit_one(ch, m.elem);
        topup(ch, l, 1);
        r->rs_small_fast++;
        return;
    }
    home_take(r, ch, from, slot_at(in, m.tslot)->ch, slot_at(in, m.tslot)->gen, 0, m.tn, m.n, m.unused, m.ack,
              m.elem, NULL);   /* tslot 0: none, {NULL, 0} */
}

/* home: serves queued asks from free space (at the end of a callback). An
 * ask may hold slots reserved for it already (sl__rsend_ask_first): those
 * go with whatever free space adds, and it is answered even if that is 0. */
void sl__rsend_grant(sl_chan *ch)
{
    rs_ask *a;
    while ((a = ch->asks_) && !ch->freed_) {
        if (ch->closed_ || ch->receivers_gone_) {
            unreserve(ch, a);
            a->err = -EPIPE;
        } else {
            uint32_t g = space(ch);
            if (!g && ch->dl_n_ && sl__chan_sweep(ch))   /* expired elements hold room */
                g = space(ch);
            if (!g && !a->granted) {
                recall(ch, a->from);   /* room lent elsewhere: have it back */
                return;
            }
            uint32_t more = a->want - a->granted;
            if (g < more)
                more = g;
            a->granted += more;
            ch->reserved_ += more;
            loan_find(ch, a->from)->lent += more;   /* made by home_ask */
        }
        ch->asks_ = a->next;
        if (!ch->asks_)
            ch->asks_tail_ = NULL;
        reply(a);
    }
}

/* home: room opened and a sender parked here is next in line. FIFO between
 * the home's parked senders and other reactors' asks: the first ask, once
 * passed over (a parked sender moved in while it waited), gets the next
 * room ahead of them: the slot is reserved for it now (counted as lent, so
 * len + reserved <= cap holds and the channel stays full to everyone
 * here) and granted with the rest at the callback's end. True if the room
 * went to the ask (the caller leaves the sender parked). */
bool sl__rsend_ask_first(sl_chan *ch)
{
    rs_ask *a = ch->asks_;
    if (!a || a->granted >= a->want || ch->closed_ || ch->receivers_gone_ || ch->freed_ ||
        !ch->home_)
        return false;
    if (!a->passed) {
        a->passed = true;   /* this sender goes first; the ask gets the next room */
        return false;
    }
    a->granted++;
    ch->reserved_++;
    loan_find(ch, a->from)->lent++;
    sl__chan_turn_end(ch);
    return true;
}

/* home: fails every queued ask and calls lent credit back (close, free,
 * last receiver gone) */
void sl__rsend_fail_asks(sl_chan *ch, int err)
{
    rs_ask *a;
    for (a = ch->asks_; a; a = a->next)
        unreserve(ch, a);   /* never sent: not part of what the recall gets back */
    recall(ch, NULL);
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
    if (!sl__chan_alive_gen(ch, a->gen)) {
        /* The channel it asks for was freed since its sender read it (the
         * ask crossed the free), and the header may be another channel's
         * now: answered as a freed channel's, nothing here read or written
         * but the generation (test_ask_across_free_reuse). */
        a->err = -EPIPE;
        reply(a);
        return;
    }
    ch->remote_seen_ = 1;
    if (ch->freed_ || ch->closed_ || ch->receivers_gone_) {
        a->err = -EPIPE;
        reply(a);
        return;
    }
    if (!loan_get(ch, a->from)) {
        a->err = -ENOMEM;
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

static sl_rsend *find(sl_reactor *r, const sl_chan *ch, uint32_t gen);

/* An idle sender record (no credit, nothing asked or waiting: in a
 * ping-pong of capacity 1, after every send) stays in the list, found by
 * the next top-up as it is, for the KEEP_IDLE most recently used; the
 * others go at the flush (sl__rsend_flush). Made again at every leg it
 * cost a capacity-1 ping-pong ~65 instructions a leg (make, the list,
 * the flush's retirement; docs/core.md "What a leg is made of"). Safe
 * since records are found by (address, generation): a channel freed and
 * another made at its address has a generation of its own, so it never
 * meets the old record, which is just one more idle record that goes
 * when KEEP_IDLE newer ones are used (tests/test_credit.c
 * test_kept_record_reuse). A record that got an error (its channel
 * closed or freed) or a recall is not kept: its channel is going or
 * wanted elsewhere. */
#define KEEP_IDLE 4

/* The memory of records that went is kept for the next (the reactor's
 * rs_idle, at most IDLE_MAX), instead of a calloc and a free. */
#define IDLE_MAX 4

static sl_rsend *make(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_reactor *home, size_t esz)
{
    sl_rsend *s = r->rs_idle;
    if (s) {
        r->rs_idle = s->next;
        r->rs_nidle--;
        *s = (sl_rsend){ 0 };
    } else if (!(s = calloc(1, sizeof *s))) {
        return NULL;
    }
    r->rs_made++;
    r->rs_nrec++;
    s->ch = ch;
    s->gen = gen;
    s->home = home;
    s->self = r;
    s->esz = esz;
    s->next = r->rsends;
    r->rsends = s;
    return s;
}

/* Found by the channel's address AND its generation (issue 17): the
 * messages to the home name the channel by both, and so do its answers,
 * recalls and top-ups here. A record may outlive its channel's free while
 * something of ours still waits in it: a waiter whose ask was on its way
 * at the free, or a held or claimed select's node pinned off the queue
 * (put back, it asks again with the record's generation). The home keeps
 * every heap header (chan.c, type-stable headers) and answers an ask of
 * a generation not its channel's -EPIPE, touching nothing: so the old
 * waiters fail as the free's own -EPIPE would have failed them, and a new
 * channel at the same address, which has a generation of its own, gets
 * a record of its own (tests/test_credit.c test_ask_across_free_reuse,
 * test_select_rv.c test_pinned_put_back_after_free_reuse). */
static sl_rsend *find(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    for (sl_rsend **pp = &r->rsends, *s; (s = *pp); pp = &s->next)
        if (s->ch == ch && s->gen == gen) {
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

/* Posts c->m (a small message from self for home on s's channel, its
 * element set; n, unused and ack as given) inside a ring cell with the
 * top-up self owes home riding along, taken off the list only once the
 * post went; false if it cannot go small: the inline post refused (a
 * chain for home not yet published), a slot's definition refused, or a
 * top-up past 16 bits. Inlined: it is on a ping-pong's every leg
 * (send_now) and was one copy in each caller before; the header's
 * fields are stored together, at the end (the compiler merges them). */
__attribute__((always_inline)) static inline bool post_small(sl_reactor *self, sl_reactor *home,
                                                             rs_cell *c, sl_rsend *s, unsigned n,
                                                             uint16_t unused, bool ack)
{
    rs_loan **pp = self->rs_owed ? owed_find(self, home) : NULL;
    unsigned ts = 0, tn = 0;
    if (pp) {
        rs_loan *l = *pp;
        /* a loan's slot is cached only while its top-up fits 16 bits
         * (topup, slot_define_loan); named now: the clock's bit (slots) */
        if ((ts = l->slot.off))
            l->slot.used = 1;
        else if (!(ts = slot_define_loan(l)))
            return false;
        tn = l->owed;
    }
    unsigned cs = s->slot.off;
    if (cs)
        s->slot.used = 1;
    else if (!(cs = slot_define_rec(s, ts)))
        return false;
    c->m.slot = (uint8_t)cs;
    c->m.tslot = (uint8_t)ts;
    c->m.tn = (uint16_t)tn;
    c->m.unused = unused;
    c->m.n = (uint8_t)n;
    c->m.ack = ack;
    if (sl__reactor_post_cell(home, home_small, c) < 0)
        return false;
    if (pp)
        owed_take(pp);
    return true;
}

/* Sends the batch home with `unused` credit; `ack` answers a recall (and
 * goes even if empty). False if it could not (no memory: kept for the next
 * flush, and the credit stays lent). */
/* ship's small case: the batch (if any) holds at most one element of at
 * most 8 bytes, no deadlines; true if it went inside a ring cell. */
static bool ship_small(sl_rsend *s, rs_batch *b, uint32_t unused, bool ack)
{
    if (unused > sl__rs_small_max) {
        s->self->rs_small_big++;
        return false;
    }
    rs_cell c;
    memset(c.m.elem, 0, sizeof c.m.elem);
    unsigned n = b && b->n;
    if (n)
        memcpy(c.m.elem, b->elems, s->esz);
    if (!post_small(s->self, s->home, &c, s, n, (uint16_t)unused, ack))
        return false;
    s->batch = NULL;
    if (b)
        batch_done(s->self, b);
    s->credit -= unused;
    return true;
}

static bool ship(sl_rsend *s, uint32_t unused, bool ack)
{
    rs_batch *b = s->batch;
    if (!b && !unused && !ack)
        return true;
    if ((!b || b->n <= 1) && s->esz <= sizeof ((rs_small *)0)->elem && !s->expiring &&
        ship_small(s, b, unused, ack))
        return true;
    if (!b) {
        b = batch_alloc(s->self, sizeof *b);
        if (!b)
            return false;
        b->ch = s->ch;
    }
    s->batch = NULL;
    b->from = s->self;
    b->to = s->home;
    b->unused = unused;
    b->ack = ack;
    b->tn = 0;
    if (s->self->rs_owed)
        owed_attach(s->self, b, s->home);
    s->credit -= unused;
    sl_reactor_post_mem(s->home, &b->msg, home_batch, b);
    return true;
}

/* s starts a batch: it goes last in shipping order (the head of the
 * dirty list), after every batch started before it */
static void dirty_newest(sl_reactor *r, sl_rsend *s)
{
    if (!s->dirty) {
        mark_dirty(r, s);
        return;
    }
    if (r->rs_dirty == s)
        return;
    for (sl_rsend **pp = &r->rs_dirty; *pp; pp = &(*pp)->dnext)
        if (*pp == s) {   /* (not there: a flush's own walk holds it; left alone) */
            *pp = s->dnext;
            s->dnext = r->rs_dirty;
            r->rs_dirty = s;
            return;
        }
}

/* Copies one element (and its deadline) into the batch; the caller has
 * taken its credit.
 *
 * Order across channels (issue 17): a task's send on x happens before its
 * next send on y, so once y's element is in y at their common home, x's
 * must be in x (a task there woken by y's may poll x). Batches therefore
 * ship in the order they started (dirty_newest; the flush walks the list
 * from its oldest): tests/test_credit.c test_flush_order. And x, y, x in
 * one callback: the second x would join x's batch, which ships before
 * y's, so that x could be seen at the home before y's element. So a send
 * that starts a batch closes the open batches of other channels of its
 * home and ships them at once (close_others): they join the reactor's
 * chain for the home, and the flush's batches go behind them in that
 * chain (reactor.c flush_wakes keeps in_cb set through its flushes
 * when a chain waits; it cleared it first, and keep13's form of this
 * rule then reordered a channel's own elements: tests/test_reactor.c
 * test_spin_run_fifo, 3 runs of 8 under ASan). tests/test_credit.c
 * test_xyx_order. A batch that fills (below) ships the same way. Receives'
 * reports to the same home keep the order made with batches too: one
 * made before a batch began goes first (sl__rrecv_ship_to here, the
 * flush's order otherwise), a batch begun before a report goes first at
 * the flush (sl__rsend_ship_before). */
/* s starts a batch: any other record homed on s's home with a batch open
 * ships it now. The common case (no other batch open) is one or two
 * loads. */
static void close_others(sl_reactor *r, sl_rsend *s)
{
    if (!r->rs_dirty || (r->rs_dirty == s && !s->dnext))
        return;
    for (sl_rsend *x = r->rs_dirty; x; x = x->dnext)
        if (x != s && x->home == s->home && x->batch && x->batch->n) {
            if (r->rr_dirty)   /* receives made before it began go first (rrecv.c sl__rrecv_ship_to) */
                sl__rrecv_ship_to(r, x->home, x->bseq);
            ship(x, 0, false);   /* (no memory: it stays for the flush, as a full batch's) */
            r->rs_closed++;
        }
}

/* The flush (rrecv.c ship_dirty): a report of receives stamped `before`
 * is about to go to `home`; a batch for it begun earlier goes first (the
 * fifteenth stop). The flush sent every report before every batch, and a
 * task's send on x, then its receive on z (both homed on `home`) made
 * z's room visible there before x's element: a sender moved in by that
 * room, whose send the receive happened before, could find x empty
 * (tests/test_credit.c test_send_then_recv_order, 198 of 200 rounds with
 * the flush held after the report). A report made before a batch began
 * still goes first, and one made after never waits for a batch begun
 * after it. No message is added: the same batch leaves a moment sooner.
 * At most one batch of a home is open (a send that begins one closes the
 * others: close_others); the walk is over the one or two records marked. */
int sl__rsend_ship_before(sl_reactor *r, const sl_reactor *home, uint32_t before)
{
    int did = 0;
    for (sl_rsend *x = r->rs_dirty; x; x = x->dnext)
        if (x->home == home && x->batch && x->batch->n && (int32_t)(x->bseq - before) < 0 &&
            ship(x, 0, false)) {   /* (no memory: it stays for the flush) */
            r->rs_before++;
            did++;
        }
    return did;
}

/* Tests (sl__rsend_set_batch_room): a batch's room is at most this (0:
 * the credit in hand), so that one fills inside a task's step, with
 * credit left for the send that finds it full (tests/test_credit.c
 * test_recv_then_filled_batch_order); else a batch fills only as credit
 * comes in a drain (test_filled_batch). Set while no runtime runs. */
static uint32_t test_room;

void sl__rsend_set_batch_room(uint32_t max) { test_room = max; }

static int append(sl_reactor *r, sl_rsend *s, const void *elem, uint64_t until)
{
    rs_batch *b = s->batch;
    if (b && b->n == b->room) {
        if (r->rr_dirty)   /* as in close_others */
            sl__rrecv_ship_to(r, s->home, s->bseq);
        ship(s, 0, false);
        b = s->batch;   /* NULL unless it could not go (no memory): the element fails */
        r->rs_filled += !b;
        if (b)
            return -ENOMEM;
    }
    if (!b) {
        close_others(r, s);
        uint32_t room = s->credit + 1;   /* this element's credit is taken already */
        if (test_room && room > test_room)
            room = test_room;
        b = batch_alloc(r, sizeof *b + room * (s->esz + (s->expiring ? sizeof until : 0)));
        if (!b)
            return -ENOMEM;
        b->ch = s->ch;
        b->room = room;
        s->batch = b;
        s->bseq = ++r->rs_seq;
    }
    sl__copy_elem(b->elems + (size_t)b->n * s->esz, elem, s->esz);
    if (s->expiring)
        memcpy(b->elems + (size_t)b->room * s->esz + (size_t)b->n * sizeof until, &until, sizeof until);
    if (b->n++ == 0)
        dirty_newest(r, s);
    return 0;
}

static void ask(sl_rsend *s, sl_reactor *r)
{
    rs_ask *a = malloc(sizeof *a);
    if (!a)
        return;   /* retried by the next send or flush */
    /* the capacity as the record has it (copied at a call of a task of
     * ours), not read again: an ask may go after the home freed the
     * channel and reused its header (a put back, a second ask) */
    uint32_t want = s->waitq.n;
    size_t cap = s->cap ? s->cap : WANT_MAX;
    if (want < WANT_MAX)
        want = cap < WANT_MAX ? (uint32_t)cap : WANT_MAX;
    *a = (rs_ask){ .ch = s->ch, .gen = s->gen, .from = r, .home = s->home, .esz = s->esz, .want = want };
    s->asking = true;
    sl_reactor_post_mem(s->home, &a->msg, home_ask, a);
}

/* A select's case (sl_select parks its case nodes here) completes by
 * sl__waiter_fire, which takes the select's other cases off their queues
 * and keeps select.c's own count of remote waits. */
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

/* sender: credit for ch arrived from its home (an answer to an ask, err
 * set if it failed; or a top-up, alone or inside a batch) */
static void credit_in(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_reactor *home, size_t esz,
                      uint32_t granted, int err, bool topup)
{
    sl_rsend *s = find(r, ch, gen);
    if (!s)   /* a top-up after we went idle (an asking sender is kept) */
        s = make(r, ch, gen, home, esz);
    if (!s) {   /* no memory: the credit goes home at once, as a recall's answer would */
        rs_batch *b = malloc(sizeof *b);
        if (b) {
            *b = (rs_batch){ .ch = ch, .from = r, .to = home, .unused = granted };
            sl_reactor_post_mem(home, &b->msg, home_batch, b);
        }   /* else lost until the runtime ends: nothing more can be done */
        return;
    }
    if (!topup)
        s->asking = false;
    s->credit += granted;
    /* Credit in hand is nothing to ship: a waiter it lets send marks the
     * record as it joins the batch (append), a recall as it comes. Marked
     * only when it may leave the record idle (an error, nothing granted),
     * for the flush's look at idle records. Marked at every top-up, the
     * spin's first flush called ship for nothing at every ping-pong leg
     * (docs/core.md, "The cuts of the twelfth stop"). */
    if (err || !granted)
        mark_dirty(r, s);
    if (err && !s->drop) {
        s->drop = true;
        r->rs_ndrop++;
    }
    sl_waiter *w;
    if (err) {
        while ((w = sl_wq_pop(&s->waitq)))
            waiter_done(r, w, err);
    }
    while (s->credit && (w = s->waitq.head)) {
        if (w->until && w->until <= sl_now_ns()) {   /* expired while it waited: not taken */
            sl_wq_remove(&s->waitq, w);
            waiter_done(r, w, -ETIMEDOUT);
            continue;
        }
        s->credit--;
        if (append(r, s, w->buf, w->until) < 0) {
            s->credit++;
            break;
        }
        sl_wq_remove(&s->waitq, w);
        waiter_done(r, w, 0);
    }
    if (s->waitq.head && !s->credit && !s->asking)
        ask(s, r);
}

/* sender: the answer to an ask, or a top-up sent alone */
static void rs_granted(void *arg)
{
    rs_ask *a = arg;
    credit_in(a->from, a->ch, a->gen, a->home, a->esz, a->granted, a->err, a->topup);
    free(a);
}

/* holder: the home wants its credit back; the flush answers */
static void holder_recall(void *arg)
{
    rs_loan *l = arg;   /* only ch, to and home are ours to read */
    sl_reactor *r = l->to;
    sl_rsend *s = find(r, l->ch, l->gen);
    if (!s)
        s = make(r, l->ch, l->gen, l->home, 0);   /* nothing held: an empty answer */
    if (!s) {
        rs_batch *b = malloc(sizeof *b);
        if (b) {
            *b = (rs_batch){ .ch = l->ch, .from = r, .to = l->home, .ack = true };
            sl_reactor_post_mem(l->home, &b->msg, home_batch, b);
        }
        return;
    }
    s->recalled = true;
    if (!s->drop) {
        s->drop = true;
        r->rs_ndrop++;
    }
    mark_dirty(r, s);
}

/* A send that took the last credit in hand ships its batch at once, when
 * the batch is one small element that a ring cell carries (ship_small),
 * instead of at the callback's end: no later send of this callback can
 * join it (no credit left), so waiting only delays it. In a ping-pong
 * (capacity 1: a credit a leg) the batch used to leave after the task had
 * parked on its next receive, the step ended and the flush ran; a leg's
 * critical path was about 85 ns from the hit to the post against 40 for a
 * task that posts in its step (bench/leg-ladder; docs/core.md, "What a
 * leg is made of"). Only when nothing this callback owes the home could
 * be passed by it: no other batch waiting (s is the only dirty record), no
 * fed receiver's report or ask (rrecv.c), no grant, no recall to answer;
 * a chain of messages for the home not yet published makes the inline
 * post refuse (sl__reactor_post_inline), and the batch waits for the
 * flush as before. The top-up owed to the home rides along, as at the
 * flush. */
static void ship_early(sl_reactor *r, sl_rsend *s)
{
    rs_batch *b = s->batch;
    if (s->credit || !b || b->n != 1 || s->expiring || s->esz > sizeof ((rs_small *)0)->elem ||
        s->recalled || r->rs_dirty != s || s->dnext || r->rr_dirty || r->grant_head)
        return;
    if (ship_small(s, b, 0, false))
        r->rs_early++;
}

/* The last credit in hand and no batch open (a capacity-1 ping-pong's
 * every send): the element goes home at once inside a ring cell, what
 * append and then ship_early would do, without a batch (issue 17, the
 * fourteenth stop). That path took a batch from the spares and zeroed
 * it, copied the element in, marked the record dirty, then copied the
 * element again into the cell and put the batch back; the record stayed
 * marked, so the flush after the task's step walked the lists for
 * nothing. Under ship_early's conditions: nothing else this callback
 * owes the home (no record marked: no batch open, no recall to answer;
 * no fed receiver's report or ask, no grant), and a chain for the home
 * not yet published makes the inline post refuse, as there. Refused,
 * the send goes the batch's way. `s` is the record in front, found
 * without find; the element's size and whether it expires are read from
 * the channel (its first line, which never changes), as rsend_slow
 * copies them into the record. An 8-byte element (a ping-pong's) is
 * copied by a move, not by a call to memcpy (fifteenth stop). */
static inline __attribute__((always_inline)) bool send_now(sl_reactor *r, sl_rsend *s, const sl_chan *ch,
                                                           const void *elem)
{
    size_t esz = ch->elem_size_;
    if (r->rs_dirty || r->rr_dirty || r->grant_head || ch->expiring_ ||
        esz > sizeof ((rs_small *)0)->elem)
        return false;
    rs_cell c;   /* each field set, not zeroed whole: that was a `rep stos` here */
    if (esz == sizeof c.m.elem)
        memcpy(c.m.elem, elem, sizeof c.m.elem);
    else
        memcpy(c.m.elem, elem, esz);
    if (!post_small(r, s->home, &c, s, 1, 0, false))
        return false;
    s->esz = esz;
    s->expiring = false;
    s->credit = 0;
    r->rs_early++;
    r->rs_now++;
    return true;
}

static int rsend_slow(sl_task *t, sl_rsend *s, sl_chan *ch, uint32_t gen, const void *elem,
                      uint64_t until);

/* send_now, or, refused, the slow path */
__attribute__((noinline)) static int send_last(sl_task *t, sl_rsend *s, sl_chan *ch, uint32_t gen,
                                               const void *elem)
{
    if (send_now(t->reactor_, s, ch, elem))
        return 0;
    return rsend_slow(t, s, ch, gen, elem, 0);
}

/* `until`: the element's deadline (0 none); a wait for credit ends then.
 * `gen`: ch's generation, read when the task named it (sl__chan_gen).
 * A ping-pong's every send is the last credit of the record in front
 * (find moves what it finds there, and the top-up that brought the
 * credit was added to it there: home_take): sent at once by send_now in
 * a frame of its own size. A stream's every send (more credit in hand,
 * the record in front) goes into its batch here too. Anything else
 * goes on to rsend_slow, out of line (the fifteenth stop: in one
 * function, every send paid the slow path's frame, six registers saved,
 * and the ping-pong's send 57 instructions of it). */
int sl__rsend(sl_task *t, sl_chan *ch, uint32_t gen, const void *elem, uint64_t until)
{
    sl_rsend *s = t->reactor_->rsends;
    if (!s || s->ch != ch || s->gen != gen) {
        s = NULL;   /* rsend_slow finds it */
    } else if (s->credit && !s->waitq.head && !t->cancel_err_) {
        if (s->credit > 1) {
            /* a stream's every send: into the batch, as rsend_slow would
             * (its ship_early does nothing while credit is left) */
            s->esz = ch->elem_size_;   /* made by a top-up or a recall, it did not know */
            s->expiring = ch->expiring_;
            s->credit--;
            int rc = append(t->reactor_, s, elem, until);
            if (rc < 0)
                s->credit++;
            return rc;
        }
        if (!s->batch && !until)
            return send_last(t, s, ch, gen, elem);
    }
    return rsend_slow(t, s, ch, gen, elem, until);
}

/* `s`: ch's record if sl__rsend found it in front, else NULL */
__attribute__((noinline)) static int rsend_slow(sl_task *t, sl_rsend *s, sl_chan *ch, uint32_t gen,
                                                const void *elem, uint64_t until)
{
    sl_reactor *r = t->reactor_;
    if (t->cancel_err_)
        return t->cancel_err_;
    if (!s)
        s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;   /* made by a recall, it did not know */
    s->expiring = ch->expiring_;
    if (s->credit && !s->waitq.head) {
        if (s->credit == 1 && !s->batch && !until && send_now(r, s, ch, elem))
            return 0;   /* the record was not in front (after send_last's refusal: refused again) */
        s->credit--;
        int rc = append(r, s, elem, until);
        if (rc < 0)
            s->credit++;
        else
            ship_early(r, s);
        return rc;
    }
    s->name = ch->name_;   /* only a parked task is described: a send with credit does not pay */
    s->cap = ch->cap_;
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

/* ---- select (select.c) -------------------------------------------------------- */

/* A send case is ready when a send would complete at once: credit in
 * hand and nobody before it in this reactor's queue. */
bool sl__rsend_ready(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    sl_rsend *s = find(r, ch, gen);
    return s && s->credit && !s->waitq.head;
}

/* This reactor's queue of senders waiting for ch's credit, or NULL if
 * there is none (nobody waits, no credit held). */
sl_wq *sl__rsend_queue(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    sl_rsend *s = find(r, ch, gen);
    return s ? &s->waitq : NULL;
}

/* Queues a select's send case `w` (w->buf: the element) behind the
 * senders waiting here; credit arriving fires it like a parked send. */
int sl__rsend_push(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_waiter *w)
{
    sl_rsend *s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;
    s->expiring = ch->expiring_;
    s->name = ch->name_;   /* for the diagnostics of w's select (diag.c), as a parked send's */
    s->cap = ch->cap_;
    sl_wq_push(&s->waitq, w);
    return 0;
}

/* The select parked: an ask for credit goes home (one per reactor). */
void sl__rsend_want(sl_reactor *r, const sl_chan *ch, uint32_t gen)
{
    sl_rsend *s = find(r, ch, gen);
    if (!s)
        return;
    mark_dirty(r, s);
    if (!s->asking)
        ask(s, r);
}

/* A held or claimed select (rsel.c) took its node off this queue and
 * puts it back (or fires) later: the record must not go as idle meanwhile
 * (d: +1 when taken off, -1 when back or fired). */
void sl__rsend_pin(sl_reactor *r, const sl_chan *ch, uint32_t gen, int d)
{
    sl_rsend *s = find(r, ch, gen);
    if (s)
        s->pinned += (uint32_t)d;
}

/* A select with SL_SELECT_DEFAULT found no credit: ask for some (kept
 * as credit in hand when it comes), so that polling gets to send at all. */
int sl__rsend_poll(sl_reactor *r, sl_chan *ch, uint32_t gen)
{
    sl_rsend *s = find(r, ch, gen);
    if (!s && !(s = make(r, ch, gen, ch->home_, ch->elem_size_)))
        return -ENOMEM;
    s->esz = ch->elem_size_;
    s->expiring = ch->expiring_;
    s->cap = ch->cap_;   /* for ask */
    if (!s->asking && !s->credit)
        ask(s, r);
    return 0;
}

bool sl__rsend_parked(const sl_task *t)
{
    return t->wait_kind_ == SL_WAIT_REMOTE && t->w_.tag == SL_RSEND_TAG;
}

/* Diagnostics (diag.c): the name and capacity of r's channel `ch` of
 * another reactor that a task or a select's case waits on for credit,
 * from r's record, never from the channel. The record exists while the
 * waiter's node is in its queue (not idle: sl__rsend_flush) or, for a
 * held or claimed select's case, off it but pinned (sl__rsend_pin), and
 * its name was set when the node was queued (sl__rsend, sl__rsend_push;
 * the memory of an idle one is zeroed when made again). Found by `gen`
 * too, the waiter's: an older channel's record at the same address (a
 * waiter whose ask crossed the free) and the new channel's are both
 * there, and the address alone named whichever came first in the list
 * (tests/test_diag_why.c test_why_records_by_gen). False, *name NULL, if
 * r has no record of ch. A walk that leaves the list's order alone (find
 * moves what it finds to the front). */
bool sl__rsend_chan_info(const sl_reactor *r, const sl_chan *ch, uint32_t gen, const sl_waiter *w,
                         const char **name, size_t *cap)
{
    const sl_rsend *s = r->rsends;
    while (s && (s->ch != ch || (w ? !sl__wq_holds(&s->waitq, w) : s->gen != gen)))
        s = s->next;
    *name = s ? s->name : NULL;
    *cap = s ? s->cap : 0;
    return s != NULL;
}

/* deadline, cancel, teardown: leave the queue; nothing was taken */
void sl__rsend_unpark(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    /* the record whose queue holds t (records of older channels at the
     * same address may be there too: rare, and this is no hot path) */
    for (sl_rsend *s = r->rsends; s; s = s->next)
        if (s->ch == t->wait_obj_ && sl__wq_holds(&s->waitq, &t->w_)) {
            sl_wq_remove(&s->waitq, &t->w_);
            break;
        }
    t->w_.tag = 0;
    r->remote_pending--;
}

static int flush(sl_reactor *r, bool all);

/* End of a callback: batches go home; credit stays unless it was called
 * back. `all`: give every credit back (the runtime is being freed). The
 * spin's first flush of a ping-pong leg has nothing to do but hold the
 * top-up owed (small, for the answer's batch): said here without the
 * flush's frame (54 instructions a leg in all before, callgrind), and
 * not called at all while no top-up owed may be large (rs_owed_big;
 * reactor.c flush_chained), as on a ping-pong's every leg. */
int sl__rsend_flush(sl_reactor *r, bool all)
{
    if (!all && r->hold_topups && !r->rs_dirty && !r->grant_head && r->rs_nrec <= KEEP_IDLE &&
        !r->rs_ndrop) {
        const rs_loan *l = r->rs_owed;
        while (l && l->owed <= HOLD_TOPUP_MAX)
            l = l->onext;
        if (!l) {
            r->rs_owed_big = false;   /* none is: the big one went in a batch */
            r->rs_held_only++;
            r->rs_held_called++;
            return 0;
        }
    }
    return flush(r, all);
}

__attribute__((noinline)) static int flush(sl_reactor *r, bool all)
{
    int did = r->grant_head != NULL;
    if (all)
        for (sl_rsend *x = r->rsends; x; x = x->next)
            if (x->credit)
                mark_dirty(r, x);
    /* In marking order: rs_dirty is pushed at its head, and shipped from
     * there a task's send on x and then on y, both homed on one reactor,
     * went y first; a task there woken by y's element could poll x and
     * find it empty, though the send on x happened before the send on y
     * (tests/test_credit.c test_flush_order). Reversed here: the list is
     * one or two records long a callback. */
    sl_rsend *s = NULL;
    for (sl_rsend *x = r->rs_dirty, *xn; x; x = xn) {
        xn = x->dnext;
        x->dnext = s;
        s = x;
    }
    r->rs_dirty = NULL;
    while (s) {
        sl_rsend *next = s->dnext;
        s->dirty = false;
        bool back = all || s->recalled;
        if (s->batch || (back && s->credit) || s->recalled)
            did++;
        if (ship(s, back ? s->credit : 0, s->recalled))
            s->recalled = false;
        else
            mark_dirty(r, s);   /* could not be sent: look again next time */
        s = next;
    }
    /* home side: channels that have room for queued asks */
    sl_chan *ch;
    while ((ch = r->grant_head)) {
        r->grant_head = ch->grant_next_;
        ch->grant_next_ = NULL;
        ch->grant_queued_ = 0;
        sl__rsend_grant(ch);
        if (ch->rasks_ || (!ch->lent_ && ch->recvq_.head))
            sl__rrecv_serve(ch);   /* lends to other reactors' receivers (rrecv.c) */
    }
    /* home side: top-ups no batch took along go alone, unless the tasks
     * about to run may send one that way (hold_topups: spin_run, before
     * the tasks its messages made ready run; their flush comes next) */
    for (rs_loan **pp = &r->rs_owed, *l; (l = *pp);) {
        /* Only a small top-up waits (a ping-pong's: one slot a leg, and
         * the answer carries it). A large one answers a large batch, whose
         * sender waits for it to send the next while our receivers drain
         * this one: sent now, the two overlap (a stream sent a batch and
         * waited for its top-up in turn; docs/core.md, "The slow mode"). */
        if (r->hold_topups && !all && l->owed <= HOLD_TOPUP_MAX) {
            pp = &l->onext;
            continue;
        }
        *pp = l->onext;
        l->onext = NULL;
        if (r->hold_topups) {
            r->topup_early = true;
            r->rs_topups_early++;
        }
        owed_send(l);
        did++;
    }
    r->rs_owed_big = false;   /* the large ones went; the small ones are held */
    /* idle ones: the KEEP_IDLE first in the list (find moves a record it
     * finds to the front: the most recently used) stay, the rest go. With
     * KEEP_IDLE records or fewer and none to drop, none goes: no walk (a
     * ping-pong's every flush walked its one or two records for nothing). */
    if (!all && r->rs_nrec <= KEEP_IDLE && !r->rs_ndrop)
        return did;
    r->rs_walks++;
    unsigned kept = 0;
    for (sl_rsend **pp = &r->rsends, *x; (x = *pp);) {
        if (!x->credit && !x->asking && !x->batch && !x->waitq.head && !x->dirty && !x->pinned) {
            if (!all && !x->drop && kept < KEEP_IDLE) {
                kept++;
                pp = &x->next;
                continue;
            }
            *pp = x->next;
            r->rs_nrec--;
            slot_forget(r, x->home, &x->slot);
            if (x->drop)
                r->rs_ndrop--;
            if (r->rs_nidle < IDLE_MAX) {
                x->next = r->rs_idle;
                r->rs_idle = x;
                r->rs_nidle++;
            } else {
                free(x);
            }
        } else {
            pp = &x->next;
        }
    }
    return did;
}

/* Teardown: whatever is left (nothing can run any more). */
void sl__rsend_free_all(sl_reactor *r)
{
    while (r->rsends) {
        sl_rsend *s = r->rsends;
        r->rsends = s->next;
        slot_forget(r, s->home, &s->slot);
        free(s->batch);
        free(s);
    }
    while (r->rs_idle) {
        sl_rsend *s = r->rs_idle;
        r->rs_idle = s->next;
        free(s);
    }
    r->rs_nidle = 0;
    while (r->rs_spares) {
        rs_batch *b = r->rs_spares;
        r->rs_spares = b->spare_next;
        free(b);
    }
    r->rs_nspares = 0;
    r->rs_dirty = NULL;
    r->rs_owed = NULL;   /* the loans went with their channels */
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
