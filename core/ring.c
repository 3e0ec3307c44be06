/* ring.c: see ring.h. */
#include <stdlib.h>
#include "ring.h"

_Static_assert(sizeof(sl_ring_cell) == 64, "a cell is one line");

unsigned sl__ring_cells = SL_RING_CELLS;

sl_ring *sl_ring_new(sl_reactor *from, sl_reactor *to)
{
    uint64_t n = sl__ring_cells;
    if (!n || (n & (n - 1)))
        n = SL_RING_CELLS;
    sl_ring *q = aligned_alloc(64, sizeof *q + n * sizeof(sl_ring_cell));
    if (!q)
        return NULL;
    q->put = q->seen_get = 0;
    atomic_store_explicit(&q->get, 0, memory_order_relaxed);
    q->cmask = n - 1;
    q->ncells = n;
    q->bl_first = q->bl_last = NULL;
    q->from = from;
    q->to = to;
    atomic_store_explicit(&q->need_space, 0, memory_order_relaxed);
    for (uint64_t i = 0; i < n; i++) {
        atomic_store_explicit(&q->cells[i].seq, 0, memory_order_relaxed);
        q->cells[i].fn = NULL;
        q->cells[i].u.first = NULL;
    }
    return q;
}
