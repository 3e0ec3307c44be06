/* mpsc.c: see mpsc.h. */
#include <sched.h>
#include <stdatomic.h>
#include "mpsc.h"

void sl_mpsc_init(sl_mpsc *q)
{
    atomic_store_explicit(&q->stub.next_, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

void sl_mpsc_push(sl_mpsc *q, sl_msg *m)
{
    atomic_store_explicit(&m->next_, NULL, memory_order_relaxed);
    sl_mpsc_push_chain(q, m, m);
}

/* The links inside the chain are plain stores made before the release
 * below, so a consumer that acquires prev->next_ sees all of them. */
void sl_mpsc_push_chain(sl_mpsc *q, sl_msg *first, sl_msg *last)
{
    sl_msg *prev = atomic_exchange_explicit(&q->head, last, memory_order_seq_cst);
    atomic_store_explicit(&prev->next_, first, memory_order_release);
}

/* Waits for a producer that has swapped the head but not yet linked `m`. */
static sl_msg *next_of(sl_mpsc *q, sl_msg *m)
{
    sl_msg *next = atomic_load_explicit(&m->next_, memory_order_acquire);
    while (!next && atomic_load_explicit(&q->head, memory_order_acquire) != m) {
        sched_yield();
        next = atomic_load_explicit(&m->next_, memory_order_acquire);
    }
    return next;
}

sl_msg *sl_mpsc_pop(sl_mpsc *q)
{
    sl_msg *tail = q->tail;
    sl_msg *next = next_of(q, tail);
    if (tail == &q->stub) {
        if (!next)
            return NULL;
        q->tail = next;
        tail = next;
        next = next_of(q, tail);
    }
    if (next) {
        q->tail = next;
        return tail;
    }
    /* tail is the last message: put the stub behind it so it can go. */
    sl_mpsc_push(q, &q->stub);
    next = next_of(q, tail);
    q->tail = next;
    return tail;
}

/* A message is waiting if tail is one, or if a producer has swapped itself
 * into head (its link may not have landed yet: pop waits for it). */
bool sl_mpsc_empty(sl_mpsc *q)
{
    return q->tail == &q->stub && atomic_load_explicit(&q->head, memory_order_seq_cst) == &q->stub;
}
