/* ring.c: see ring.h. */
#include <stdlib.h>
#include "ring.h"

_Static_assert(sizeof(sl_ring_cell) == 32, "a cell is half a line");
_Static_assert(sizeof(sl_ring_line) == 64, "a pair's cells of one position are one line");
_Static_assert(sizeof(sl_ring) % 64 == 0, "a direction's counters are whole lines");

unsigned sl__ring_cells = SL_RING_CELLS;

static void ring_init(sl_ring *q, uint64_t n, sl_ring_cell *cells, sl_reactor *from, sl_reactor *to)
{
    q->put = q->seen_get = 0;
    q->ncells = n;
    q->bl_first = q->bl_last = NULL;
    q->to = to;
    q->pcells = cells;
    q->jumps = 0;
    atomic_store_explicit(&q->get, 0, memory_order_relaxed);
    q->cmask = n - 1;
    q->ccells = cells;
    q->from = from;
    atomic_store_explicit(&q->need_space, 0, memory_order_relaxed);
}

sl_ring_pair *sl_ring_pair_new(sl_reactor *a, sl_reactor *b)
{
    uint64_t n = sl__ring_cells;
    if (!n || (n & (n - 1)))
        n = SL_RING_CELLS;
    sl_ring_pair *p = aligned_alloc(64, sizeof *p + n * sizeof(sl_ring_line));
    if (!p)
        return NULL;
    ring_init(&p->dir[0], n, &p->lines[0].half[0], a, b);
    ring_init(&p->dir[1], n, &p->lines[0].half[1], b, a);
    p->dir[0].sib = &p->dir[1];
    p->dir[1].sib = &p->dir[0];
    for (uint64_t i = 0; i < n; i++)
        for (int h = 0; h < 2; h++) {
            atomic_store_explicit(&p->lines[i].half[h].seq, 0, memory_order_relaxed);
            p->lines[i].half[h].fn = NULL;
            p->lines[i].half[h].u.first = NULL;
        }
    return p;
}

void sl__ring_skip(void *arg)
{
    (void)arg;
    abort();   /* a skip cell is taken by sl_ring_ready, never run */
}
