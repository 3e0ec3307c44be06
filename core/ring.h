/* ring.h: bounded single-producer single-consumer rings of cells, one per
 * ordered pair of reactors of a runtime (private; issue 17). A cell carries
 * a chain of sl_msg (linked through next_), so one cell takes a whole
 * deferred chain and a full ring is rare: SL_RING_CELLS publications not
 * yet taken; or a small message copied in (sl_ring_try_put_inline: rsend's
 * one-element batches, reactor.c sl__reactor_post_inline).
 *
 * The two directions of a pair {a, b} share their cells' lines (the
 * sixteenth stop, docs/core.md "One line for both directions"): line p of
 * the pair's array holds the cell of position p of a->b in one half and
 * that of b->a in the other, so a ping-pong's answer is written into the
 * line its question came on, and a round trip moves one line, not two (as
 * bench/flag.h's flag1 against flag). Each half holds its sequence number
 * beside its payload, and only its direction's producer writes it: it
 * fills the cell of position p and stores seq = p+1; the consumer takes it
 * when seq is get+1 and then stores get on a line of its own, which the
 * producer reads only when its cached copy says the ring is full (once a
 * lap at most). A consumer that wrote the cell back to free it (Vyukov's
 * bounded queue) would move the line three times a message, not two
 * (reasoned, not measured apart: docs/core.md, "Per-pair rings"). No
 * locked instruction on either side for the cell itself, where the MPSC
 * costs an exchange on head per push and, in a ping-pong, another on the
 * stub per pop (docs/core.md, "The ping-pong"). What to do when the ring
 * is full (the producer's backlog, need_space and the wake) is reactor.c's,
 * see ring_send there.
 *
 * An sl_ring is one direction: its producer's counters, its consumer's,
 * and a pointer to its half of the pair's cell 0. The pair's two sl_rings
 * and its lines are one allocation (sl_ring_pair), freed once, by whoever
 * made it (reactor.c: the lower-numbered reactor of the pair). */
#ifndef SL_RING_H
#define SL_RING_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "internal.h"

/* Cells per ring: a power of two, read as a runtime makes its rings.
 * tests/test_ring.c sets 2 (it links libsluice.a) to reach a full ring at
 * once. 64 lines of 64 bytes: 4 KiB a pair, both directions. */
#define SL_RING_CELLS 64
extern unsigned sl__ring_cells;

/* SL_RING_INLINE (internal.h, 16 bytes) a cell carries inline: the
 * consumer runs fn on a copy taken out of the cell, so it reads one line
 * written only by the pair's producers, not the cell and then the
 * message's own lines. 16, so that two cells are one line (48 until the
 * sixteenth stop, a line a cell). */

/* A cell: half of a line. The 8-byte alignment of data and the cell's
 * size (32) are what reactor.c's fixed copies rely on. */
typedef struct sl_ring_cell {
    _Atomic uint64_t seq;
    /* NULL: the cell holds a chain (`first`); else a message inline, run
     * as fn(copy of data) */
    void (*fn)(void *);
    union {
        sl_msg *first;
        _Alignas(8) unsigned char data[SL_RING_INLINE];
    } u;
} sl_ring_cell;

/* Position p of both directions of a pair: half[0] is the pair's dir[0]'s
 * (sl_ring_pair), half[1] dir[1]'s. */
typedef struct sl_ring_line {
    _Alignas(64) sl_ring_cell half[2];
} sl_ring_line;

typedef struct sl_ring {
    /* producer only: next position, the consumer's get as last read, the
     * chain that did not fit (in order: while it is not empty, everything
     * for this pair joins it); its half of the pair's line 0 (cells of
     * this direction are SL_RING_STRIDE apart) */
    _Alignas(64) uint64_t put, seen_get, ncells;
    sl_msg *bl_first, *bl_last;
    sl_reactor *to;                      /* set once at creation */
    sl_ring_cell *pcells;
    /* the pair's other direction, whose consumer we are: its get says
     * where the peer's last message came (sl_ring_next's realignment) */
    const struct sl_ring *sib;
    uint64_t jumps;                      /* realignments (tests/test_ring.c) */
    /* consumer: what it has taken (the producer reads it when full); its
     * own copy of the cells' address, and the producer's reactor (read at
     * every take: on the producer's line it would cost that line's move
     * a message) */
    _Alignas(64) _Atomic uint64_t get;
    uint64_t cmask;
    sl_ring_cell *ccells;
    sl_reactor *from;                    /* set once at creation */
    /* The producer found the ring full and waits for a cell: set by the
     * producer before it looks at get again, taken by the consumer after
     * it stores get, both by exchange (reactor.c, ring_put_backlog): one
     * of them sees the other. */
    _Alignas(64) _Atomic int need_space;
} sl_ring;

/* Cells from one position of a direction to the next: a line */
#define SL_RING_STRIDE (sizeof(sl_ring_line) / sizeof(sl_ring_cell))

/* A pair's two directions and their lines, one 64-aligned allocation:
 * dir[0] carries a -> b in half 0 of each line, dir[1] b -> a in half 1. */
typedef struct sl_ring_pair {
    sl_ring dir[2];
    sl_ring_line lines[];
} sl_ring_pair;

/* The pair {a, b} with rings of sl__ring_cells cells (64-aligned; a
 * value that is 0 or not a power of two reads as SL_RING_CELLS), or NULL
 * (no memory). free() frees the whole, both directions. */
sl_ring_pair *sl_ring_pair_new(sl_reactor *a, sl_reactor *b);

/* The fn of a skip cell (never run: it aborts): the producer went on at
 * the position in its data, and the consumer follows (sl_ring_ready). */
void sl__ring_skip(void *arg);

/* How far a producer jumps ahead to realign, at most (positions). */
#define SL_RING_JUMP_MAX 4

/* Producer, before each put: realign with the other direction. A line is
 * shared only while the two directions' positions keep step: a
 * ping-pong's answer lands on its question's line when the answer's
 * position is the question's (or one past it, a half of the gain). One
 * extra message in one direction (a top-up or a report sent alone, a
 * slot's definition) shifts every answer after it by one, for good: at
 * two or more apart each write lands on a line the other side is polling
 * and the layout's gain is gone (bench/leg-ladder chan with LADDER_SKEW=2
 * or 3: 650-670 ns slow against 460-490 at 0 or 1). So a producer that
 * is behind the position of the peer's last message to it (by at most
 * SL_RING_JUMP_MAX, with the room for it) writes a skip cell at put and
 * goes on there: one cell more, once a drift. A stream's other direction
 * (its asks and top-ups) is far behind and does not jump. */
static inline void ring_realign(sl_ring *q)
{
    uint64_t at = atomic_load_explicit(&q->sib->get, memory_order_relaxed);   /* ours: we consume sib */
    if (at <= q->put + 1 || at - 1 - q->put > SL_RING_JUMP_MAX || at - q->seen_get > q->ncells)
        return;
    uint64_t to = at - 1;   /* the position of the peer's last message to us */
    sl_ring_cell *c = &q->pcells[(q->put & (q->ncells - 1)) * SL_RING_STRIDE];
    c->fn = sl__ring_skip;
    memcpy(c->u.data, &to, sizeof to);
    atomic_store_explicit(&c->seq, q->put + 1, memory_order_release);   /* before the message's */
    q->put = to;
    q->jumps++;
}

/* Producer: the next cell to fill, or NULL if the ring is full (get is
 * read only when the cached copy says so: once a lap at most). */
static inline sl_ring_cell *sl_ring_next(sl_ring *q)
{
    ring_realign(q);
    if (q->put - q->seen_get == q->ncells) {
        q->seen_get = atomic_load_explicit(&q->get, memory_order_acquire);
        if (q->put - q->seen_get == q->ncells)
            return NULL;
    }
    return &q->pcells[(q->put & (q->ncells - 1)) * SL_RING_STRIDE];
}

/* Producer: places first.. (linked, last's next_ NULL) in the next cell;
 * false if the ring is full. The store that publishes it is seq_cst, for
 * the sleep/wake handshake (reactor.c, wake()). */
static inline bool sl_ring_try_put(sl_ring *q, sl_msg *first)
{
    sl_ring_cell *c = sl_ring_next(q);
    if (!c)
        return false;
    c->fn = NULL;
    c->u.first = first;
    atomic_store_explicit(&c->seq, ++q->put, memory_order_seq_cst);
    return true;
}

/* Producer: copies len (<= SL_RING_INLINE) bytes of data into the next
 * cell, to be run as fn(copy); false if the ring is full. */
static inline bool sl_ring_try_put_inline(sl_ring *q, void (*fn)(void *), const void *data, size_t len)
{
    sl_ring_cell *c = sl_ring_next(q);
    if (!c)
        return false;
    c->fn = fn;
    memcpy(c->u.data, data, len);
    atomic_store_explicit(&c->seq, ++q->put, memory_order_seq_cst);
    return true;
}

/* Consumer: the cell of position get */
static inline sl_ring_cell *sl_ring_cell_get(sl_ring *q, uint64_t get)
{
    return &q->ccells[(get & q->cmask) * SL_RING_STRIDE];
}

/* Consumer: is a cell ready? seq_cst, for the handshake (may_sleep). A
 * skip cell (ring_realign) is taken here: get goes to where its producer
 * went on, and the look is made there. */
static inline bool sl_ring_ready(sl_ring *q)
{
    for (;;) {
        uint64_t get = atomic_load_explicit(&q->get, memory_order_relaxed);
        sl_ring_cell *c = sl_ring_cell_get(q, get);
        if (atomic_load_explicit(&c->seq, memory_order_seq_cst) != get + 1)
            return false;
        if (__builtin_expect(c->fn != sl__ring_skip, 1))
            return true;
        uint64_t to;
        memcpy(&to, c->u.data, sizeof to);
        atomic_store_explicit(&q->get, to, memory_order_release);   /* frees the skipped cells */
    }
}

/* Consumer: takes the ready cell's chain, or (*fn set, NULL returned) its
 * inline message copied to `copy` (SL_RING_INLINE bytes, 8-aligned), and
 * frees the cell (release: the producer reuses it only after we have read
 * it). Only after sl_ring_ready() said true. */
static inline sl_msg *sl_ring_take(sl_ring *q, void (**fn)(void *), void *copy)
{
    uint64_t get = atomic_load_explicit(&q->get, memory_order_relaxed);
    sl_ring_cell *c = sl_ring_cell_get(q, get);
    sl_msg *m = NULL;
    if ((*fn = c->fn))
        memcpy(copy, c->u.data, SL_RING_INLINE);
    else
        m = c->u.first;
    atomic_store_explicit(&q->get, get + 1, memory_order_release);
    return m;
}
#endif
