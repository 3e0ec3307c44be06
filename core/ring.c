/* ring.c: see ring.h. */
#include <stdlib.h>
#include "ring.h"

_Static_assert(sizeof(sl_ring_cell) == 32, "a cell is half a line");
_Static_assert(sizeof(sl_ring_line) == 64, "a pair's cells of one position are one line");
_Static_assert(sizeof(sl_ring) % 128 == 0, "an end is whole pairs of lines");
_Static_assert(sizeof(sl_ring_pair) % 64 == 0, "the lines start on a line");

unsigned sl__ring_cells = SL_RING_CELLS;
unsigned sl__ring_reuse_max = SL_RING_REUSE_MAX;

/* end e of pair p (e = 0: a's), its peer `to` */
static void end_init(sl_ring_pair *p, int e, uint64_t n, sl_reactor *to)
{
    sl_ring *q = &p->end[e];
    memset(q, 0, sizeof *q);
    q->ncells = n;
    q->pc = n - 1;   /* the first message advances to cell 0 */
    q->to = q->from = to;
    q->pcells = &p->lines[0].half[e];
    q->peer = &p->end[!e];
    q->need_out = &p->need[e].v;
    atomic_store_explicit(&q->get, 0, memory_order_relaxed);
    q->cmask = n - 1;
    q->cc = n - 1;   /* and is looked for there */
    q->ccells = &p->lines[0].half[!e];
    q->need_in = &p->need[!e].v;
}

sl_ring_pair *sl_ring_pair_new(sl_reactor *a, sl_reactor *b)
{
    uint64_t n = sl__ring_cells;
    if (!n || (n & (n - 1)) || n > 4096)
        n = SL_RING_CELLS;
    sl_ring_pair *p = aligned_alloc(128, (sizeof *p + n * sizeof(sl_ring_line) + 127) & ~(size_t)127);
    if (!p)
        return NULL;
    end_init(p, 0, n, b);
    end_init(p, 1, n, a);
    for (int d = 0; d < 2; d++)
        atomic_store_explicit(&p->need[d].v, 0, memory_order_relaxed);
    for (uint64_t i = 0; i < n; i++)
        for (int h = 0; h < 2; h++) {
            atomic_store_explicit(&p->lines[i].half[h].sa, 0, memory_order_relaxed);
            p->lines[i].half[h].fn = NULL;
            p->lines[i].half[h].u.first = NULL;
        }
    return p;
}
