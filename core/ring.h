/* ring.h: a bounded single-producer single-consumer ring of cells, one per
 * ordered pair of reactors of a runtime (private; issue 17). A cell carries
 * a chain of sl_msg (linked through next_), so one cell takes a whole
 * deferred chain and a full ring is rare: SL_RING_CELLS publications not
 * yet taken; or a small message copied in (sl_ring_try_put_inline: rsend's
 * one-element batches, reactor.c sl__reactor_post_inline). Each cell is a line of its own holding its sequence number
 * beside its payload, and only the producer writes it: it fills the cell
 * of position p and stores seq = p+1; the consumer takes it when seq is
 * get+1 and then stores get on a line of its own, which the producer reads
 * only when its cached copy says the ring is full (once a lap at most). A
 * consumer that wrote the cell back to free it (Vyukov's bounded queue)
 * would move the line three times a message, not two (reasoned, not
 * measured apart: docs/core.md, "Per-pair rings"). No locked instruction on either
 * side for the cell itself, where the MPSC costs an exchange on head per
 * push and, in a ping-pong, another on the stub per pop (docs/core.md, "The
 * ping-pong"). What to do when the ring is full (the producer's backlog,
 * need_space and the wake) is reactor.c's, see ring_send there. */
#ifndef SL_RING_H
#define SL_RING_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "sl_runtime.h"

/* Cells per ring: a power of two, read as a runtime makes its rings.
 * tests/test_ring.c sets 2 (it links libsluice.a) to reach a full ring at
 * once. 64 cells of 64 bytes: 4 KiB a pair. */
#define SL_RING_CELLS 64
extern unsigned sl__ring_cells;

/* Bytes a cell carries inline (step 2 of the experiment): a small message
 * is copied in, and the consumer runs fn on a copy taken out of the cell,
 * so it reads one line written only by the producer, not the cell and
 * then the message's own lines. */
#define SL_RING_INLINE 48

typedef struct sl_ring_cell {
    _Alignas(64) _Atomic uint64_t seq;
    /* NULL: the cell holds a chain (`first`); else a message inline, run
     * as fn(copy of data) */
    void (*fn)(void *);
    union {
        sl_msg *first;
        _Alignas(8) unsigned char data[SL_RING_INLINE];
    } u;
} sl_ring_cell;

typedef struct sl_ring {
    /* producer only: next position, the consumer's get as last read, the
     * chain that did not fit (in order: while it is not empty, everything
     * for this pair joins it) */
    _Alignas(64) uint64_t put, seen_get, ncells;
    sl_msg *bl_first, *bl_last;
    sl_reactor *from, *to;               /* set once at creation */
    /* consumer: what it has taken (the producer reads it when full) */
    _Alignas(64) _Atomic uint64_t get;
    uint64_t cmask;
    /* The producer found the ring full and waits for a cell: set by the
     * producer before it looks at get again, taken by the consumer after
     * it stores get, both by exchange (reactor.c, ring_put_backlog): one
     * of them sees the other. */
    _Alignas(64) _Atomic int need_space;
    sl_ring_cell cells[];
} sl_ring;

/* A ring of sl__ring_cells cells (64-aligned), or NULL. */
sl_ring *sl_ring_new(sl_reactor *from, sl_reactor *to);

/* Producer: places first.. (linked, last's next_ NULL) in the next cell;
 * false if the ring is full. The store that publishes it is seq_cst, for
 * the sleep/wake handshake (reactor.c, wake()). */
/* Producer: the next cell to fill, or NULL if the ring is full (get is
 * read only when the cached copy says so: once a lap at most). */
static inline sl_ring_cell *sl_ring_next(sl_ring *q)
{
    if (q->put - q->seen_get == q->ncells) {
        q->seen_get = atomic_load_explicit(&q->get, memory_order_acquire);
        if (q->put - q->seen_get == q->ncells)
            return NULL;
    }
    return &q->cells[q->put & (q->ncells - 1)];
}

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

/* Consumer: is a cell ready? seq_cst, for the handshake (may_sleep). */
static inline bool sl_ring_ready(sl_ring *q)
{
    uint64_t get = atomic_load_explicit(&q->get, memory_order_relaxed);
    sl_ring_cell *c = &q->cells[get & q->cmask];
    return atomic_load_explicit(&c->seq, memory_order_seq_cst) == get + 1;
}

/* Consumer: takes the ready cell's chain, or (*fn set, NULL returned) its
 * inline message copied to `copy` (SL_RING_INLINE bytes, 8-aligned), and
 * frees the cell (release: the producer reuses it only after we have read
 * it). Only after sl_ring_ready() said true. */
static inline sl_msg *sl_ring_take(sl_ring *q, void (**fn)(void *), void *copy)
{
    uint64_t get = atomic_load_explicit(&q->get, memory_order_relaxed);
    sl_ring_cell *c = &q->cells[get & q->cmask];
    sl_msg *m = NULL;
    if ((*fn = c->fn))
        memcpy(copy, c->u.data, SL_RING_INLINE);
    else
        m = c->u.first;
    atomic_store_explicit(&q->get, get + 1, memory_order_release);
    return m;
}
#endif
