/* ring.h: bounded single-producer single-consumer rings of cells, one per
 * ordered pair of reactors of a runtime (private; issue 17). A cell carries
 * a chain of sl_msg (linked through next_), so one cell takes a whole
 * deferred chain and a full ring is rare: SL_RING_CELLS publications not
 * yet taken; or a small message copied in (sl_ring_try_put_inline: rsend's
 * one-element batches, reactor.c sl__reactor_post_inline).
 *
 * The two directions of a pair {a, b} share their cells' lines (the
 * sixteenth stop, docs/core.md "One line for both directions"): line c of
 * the pair's array holds cell c of a->b in one half and cell c of b->a in
 * the other. Each half holds its sequence number beside its payload, and
 * only its direction's producer writes it: it fills a cell and stores the
 * message's sequence number with the word that publishes it; the consumer
 * takes it when the number is get+1 and then stores get on a line of its
 * own, which the producer reads only when its count says the ring is full
 * (once a lap at most). Which cell a message takes is the producer's
 * choice (since the seventeenth stop: "Cells reused" below), so that a
 * ping-pong stays on one line. A consumer that wrote the cell back to
 * free it (Vyukov's bounded queue) would move the line three times a
 * message, not two (reasoned, not measured apart: docs/core.md, "Per-pair
 * rings"). No locked instruction on either side for the cell itself, where
 * the MPSC costs an exchange on head per push and, in a ping-pong, another
 * on the stub per pop (docs/core.md, "The ping-pong"). What to do when the
 * ring is full (the producer's backlog, need_space and the wake) is
 * reactor.c's, see ring_send there.
 *
 * An sl_ring is a reactor's end of a pair: the producer's state of its
 * direction out and the consumer's of its direction in. The pair's two
 * ends, its two need_space flags and its lines are one allocation
 * (sl_ring_pair), freed once, by whoever made it (reactor.c: the
 * lower-numbered reactor of the pair). */
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
    /* The message's sequence number (its direction's put after it) in
     * the high 32 bits; in the low 32, how many messages of the other
     * direction its producer had taken as it wrote this one (the ack:
     * see "Cells reused" below). One word, stored last: a single store
     * publishes the cell. */
    _Atomic uint64_t sa;
    /* NULL: the cell holds a chain (`first`); else a message inline, run
     * as fn(copy of data) */
    void (*fn)(void *);
    union {
        sl_msg *first;
        _Alignas(8) unsigned char data[SL_RING_INLINE];
    } u;
} sl_ring_cell;

/* Cell c of both directions of a pair: half[0] is end[0]'s direction out
 * (sl_ring_pair: a -> b), half[1] end[1]'s. */
typedef struct sl_ring_line {
    _Alignas(64) sl_ring_cell half[2];
} sl_ring_line;

/* Cells reused (seventeenth stop, docs/core.md "One line for a
 * ping-pong"). Which cell a message takes is the producer's choice, not
 * its position modulo the ring: the next cell (`advance`), or, when the
 * consumer has taken every message we sent and said so, the cell our last
 * one was in (`reuse`). A ping-pong whose two directions are in the same
 * cell then never leaves that line: the answer is written where the
 * question was read, and the next question where the answer was read.
 * Moving to the next line at every round trip, as positions did, cost
 * about twice as much on this host's fast mode (two bare threads: 111 ns
 * a round trip advancing, 55 reusing, slow mode 420 against 346;
 * bench/leg-ladder ring 104-108 before, 68-70 after): a line read and
 * then written by one side moves once, where a line written after
 * another was read is fetched and then owned in two steps. It holds only
 * while the other side does not look at the line between the read and
 * the write; a channel's leg works ~50 ns there, and the spin's looks
 * during it took most of the gain back (reactor.c, sl__look_adapt).
 *
 * The rules, and why they keep the ring exact:
 *  - The consumer takes messages in sequence order and knows where the
 *    next can be: the cell after the last one it took, and that cell
 *    again if it has since written an ack covering it (reuse_ok); it
 *    looks at both. Sequence numbers never repeat in a cell within 2^32
 *    messages (a producer advances at least once in SL_RING_REUSE_MAX
 *    reuses, so every cell is rewritten far more often), so an old
 *    message never matches.
 *  - A producer reuses only when an ack says the consumer has taken all
 *    it sent (acked == put): then the consumer, having written that ack,
 *    looks at the reused cell. An ack read from the consumer's get line
 *    (seen_get, on a full ring) does not count: the consumer may not have
 *    written one, and would not look there.
 *  - Otherwise it advances. Messages not yet taken thus lie in a run of
 *    cells ending at the last one written (a reuse needs none taken), so
 *    the next cell is free while fewer than ncells are outstanding: the
 *    full check counts messages, as before.
 *  - Acks travel in the other direction's cells (the 32 low bits of sa),
 *    read as that direction's messages are taken, in order, so they only
 *    grow; they are widened against the last one, which can only make a
 *    stale one read low, never high (a low one costs a reuse, not a
 *    message).
 *  - Keeping step: both directions of a ping-pong must be in the same
 *    cell for the answer to land on the question's line. A producer
 *    that may reuse but whose cell is behind the peer's (the cell of the
 *    peer's last message to us) by at most SL_RING_STEP_MAX advances
 *    instead, one cell a message, until they meet; one ahead reuses and
 *    waits for the peer. (The sixteenth stop's skip cells did this for
 *    positions, ring_realign; a step costs no cell.) */
#define SL_RING_REUSE_MAX 65536
#define SL_RING_STEP_MAX 4
/* SL_RING_REUSE_MAX as the rings use it: tests/test_ring.c lowers it to
 * see the forced advances */
extern unsigned sl__ring_reuse_max;

/* A reactor's end of a pair: the producer's state of its direction out
 * and the consumer's state of its direction in, together, so that what
 * one thread writes at every message lies on lines it alone writes. (The
 * sixteenth stop's sl_ring was a direction, its producer's counters and
 * its consumer's in one struct: each thread's state in two places, and a
 * reused cell ran a bare ping-pong at 195 ns a round trip against 72 with
 * the state grouped by thread, in a two-thread program beside the tree:
 * docs/core.md, "One line, and a look at the right time".) ring_out[j]
 * and ring_in[] of a reactor hold its ends (reactor.c). */
typedef struct sl_ring {
    /* producer, direction out: messages written, the consumer's get as
     * last read, the cell of our last message, how many of ours the
     * consumer has taken by its acks, reuses in a row */
    _Alignas(128) uint64_t put, seen_get, ncells, pc, acked;
    uint32_t nreuse;
    sl_reactor *to;                      /* the peer; set once at creation */
    sl_ring_cell *pcells;                /* our half of the pair's line 0 (cells SL_RING_STRIDE apart) */
    /* the chain that did not fit (in order: while it is not empty,
     * everything for this pair joins it) */
    sl_msg *bl_first, *bl_last;
    struct sl_ring *peer;                /* the peer's end: its get, read when full */
    _Atomic int *need_out;               /* our direction's need_space (below) */
    uint64_t reused, stepped;            /* tests/test_ring.c */
    /* consumer, direction in: what it has taken (the peer reads it when
     * full), the cell of the last message taken and whether an ack
     * written since covers it; its own copy of the cells' address, and
     * the producer's reactor (the peer again: `to`, named for the
     * consumer's code) */
    _Alignas(64) _Atomic uint64_t get;
    uint64_t cmask, cc;
    bool reuse_ok;
    sl_ring_cell *ccells;
    sl_reactor *from;
    _Atomic int *need_in;                /* the direction in's need_space */
} sl_ring;

/* Cells from one position of a direction to the next: a line */
#define SL_RING_STRIDE (sizeof(sl_ring_line) / sizeof(sl_ring_cell))

/* A pair's two ends and their lines, one 128-aligned allocation: end[0]
 * is a's (a -> b in half 0 of each line, b -> a in half 1), end[1] b's.
 * need[d]: the producer of direction d (a for 0) found its ring full and
 * waits for a cell: set by the producer before it looks at get again,
 * taken by the consumer after it stores get, both by exchange (reactor.c,
 * ring_put_backlog): one of them sees the other. A line each, written by
 * both sides. */
typedef struct sl_ring_pair {
    sl_ring end[2];
    struct {
        _Alignas(64) _Atomic int v;
    } need[2];
    sl_ring_line lines[];
} sl_ring_pair;

/* The pair {a, b} with rings of sl__ring_cells cells (a value that is 0,
 * not a power of two or past 4096 reads as SL_RING_CELLS), or NULL (no
 * memory). free() of end[0] (the allocation's start) frees the whole. */
sl_ring_pair *sl_ring_pair_new(sl_reactor *a, sl_reactor *b);

static inline sl_ring_cell *ring_pcell(const sl_ring *q, uint64_t c)
{
    return &q->pcells[c * SL_RING_STRIDE];
}

static inline sl_ring_cell *ring_ccell(const sl_ring *q, uint64_t c)
{
    return &q->ccells[c * SL_RING_STRIDE];
}

/* Producer: the cell for the next message, now ours (pc), or NULL if the
 * ring is full (get is read only when the count says so: once a lap at
 * most). See "Cells reused" above. */
static inline sl_ring_cell *sl_ring_next(sl_ring *q)
{
    uint64_t mask = q->ncells - 1;
    if (q->acked == q->put && q->put) {
        uint64_t behind = (q->cc - q->pc) & mask;   /* the peer's cell, from ours */
        if (behind - 1 < SL_RING_STEP_MAX) {
            q->stepped++;   /* advance toward it */
        } else if (q->nreuse < sl__ring_reuse_max) {
            q->nreuse++;
            q->reused++;
            return ring_pcell(q, q->pc);
        }
    } else if (q->put - q->seen_get >= q->ncells && q->put - q->acked >= q->ncells) {
        q->seen_get = atomic_load_explicit(&q->peer->get, memory_order_acquire);
        if (q->put - q->seen_get >= q->ncells)
            return NULL;
    }
    q->nreuse = 0;
    q->pc = (q->pc + 1) & mask;
    return ring_pcell(q, q->pc);
}

/* Producer: publishes the cell sl_ring_next gave, as message put+1, with
 * our ack of the other direction. seq_cst, for the sleep/wake handshake
 * (reactor.c, wake()). The consumer of the other direction (us) may now
 * see its producer reuse its cell: our ack covers what we have taken. */
static inline void ring_publish(sl_ring *q, sl_ring_cell *c)
{
    uint64_t ack = atomic_load_explicit(&q->get, memory_order_relaxed);   /* ours */
    atomic_store_explicit(&c->sa, (++q->put << 32) | (ack & 0xffffffffu), memory_order_seq_cst);
    q->reuse_ok = true;
}

/* Producer: places first.. (linked, last's next_ NULL) in the next cell;
 * false if the ring is full. */
static inline bool sl_ring_try_put(sl_ring *q, sl_msg *first)
{
    sl_ring_cell *c = sl_ring_next(q);
    if (!c)
        return false;
    c->fn = NULL;
    c->u.first = first;
    ring_publish(q, c);
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
    ring_publish(q, c);
    return true;
}

/* Consumer: the cell holding the next message (*at: its index), or NULL.
 * seq_cst loads, for the handshake (may_sleep). The reused cell first: a
 * ping-pong's. */
static inline sl_ring_cell *sl_ring_poll(sl_ring *q, uint64_t *at)
{
    uint64_t want = (atomic_load_explicit(&q->get, memory_order_relaxed) + 1) & 0xffffffffu;
    sl_ring_cell *c;
    if (q->reuse_ok) {
        c = ring_ccell(q, q->cc);
        if (atomic_load_explicit(&c->sa, memory_order_seq_cst) >> 32 == want) {
            *at = q->cc;
            return c;
        }
    }
    *at = (q->cc + 1) & q->cmask;
    c = ring_ccell(q, *at);
    return atomic_load_explicit(&c->sa, memory_order_seq_cst) >> 32 == want ? c : NULL;
}

/* Consumer: is a message ready? */
static inline bool sl_ring_ready(sl_ring *q)
{
    uint64_t at;
    return sl_ring_poll(q, &at) != NULL;
}

/* Consumer: takes the cell c (at index at) that sl_ring_poll found: its
 * chain, or (*fn set, NULL returned) its inline message copied to `copy`
 * (SL_RING_INLINE bytes, 8-aligned), and frees it (release: the producer
 * reuses it only after we have read it); its ack tells our producer side
 * how much of ours the peer has taken. */
static inline sl_msg *sl_ring_take(sl_ring *q, sl_ring_cell *c, uint64_t at, void (**fn)(void *), void *copy)
{
    uint64_t sa = atomic_load_explicit(&c->sa, memory_order_relaxed);
    sl_msg *m = NULL;
    if ((*fn = c->fn))
        memcpy(copy, c->u.data, SL_RING_INLINE);
    else
        m = c->u.first;
    q->cc = at;
    q->reuse_ok = false;
    atomic_store_explicit(&q->get, atomic_load_explicit(&q->get, memory_order_relaxed) + 1, memory_order_release);
    /* the ack, widened against the last: it only grows (see above) */
    uint64_t acked = q->acked + (((uint32_t)sa - (uint32_t)q->acked) & 0xffffffffu);
    if (acked <= q->put)
        q->acked = acked;
    return m;
}
#endif
