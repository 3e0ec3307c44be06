/* list.h: the intrusive queues core uses (private). Waiter queues are
 * doubly linked so that a timed-out or cancelled waiter leaves in O(1). */
#ifndef SL_LIST_H
#define SL_LIST_H
#include "sl_task.h"

static inline void sl_wq_push(sl_wq *q, sl_waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
}

static inline void sl_wq_remove(sl_wq *q, sl_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    q->n--;
}

static inline sl_waiter *sl_wq_pop(sl_wq *q)
{
    sl_waiter *w = q->head;
    if (w)
        sl_wq_remove(q, w);
    return w;
}

#endif
