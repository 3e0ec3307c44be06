/* heap.h: the per-reactor timer heap (private). A binary min-heap of tasks
 * keyed by the time their current wait must end (task->wake_at_). Each task
 * knows its slot (heap_idx_, 1-based, 0 = not in the heap), so a wait that
 * ends early leaves in O(log n). One libevent timer follows the minimum, so a
 * million parked tasks with deadlines cost one kernel timer, not a million. */
#ifndef SL_HEAP_H
#define SL_HEAP_H
#include <stddef.h>
#include "sl_task.h"

typedef struct sl_heap {
    sl_task **v;          /* v[1..n] */
    size_t n, cap;
} sl_heap;

void sl_heap_free(sl_heap *h);
int sl_heap_push(sl_heap *h, sl_task *t);        /* 0 or -ENOMEM */
void sl_heap_remove(sl_heap *h, sl_task *t);
static inline sl_task *sl_heap_top(const sl_heap *h) { return h->n ? h->v[1] : NULL; }
#endif
