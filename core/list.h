/* list.h: the one intrusive list of sluice (private to the library; every
 * module's doubly linked list is one of these).
 *
 * An element of type T carries its own links, so putting it on a list
 * allocates nothing, and taking it off is O(1) from the element alone (no
 * walk from the head). An element that sits on several lists at once (a
 * request on its connection's pipeline and in the admission queue) has one
 * link member per list:
 *
 *     struct item { int v; SL_LINK(struct item) q; };
 *     SL_LIST(struct item) items = { 0 };     zeroed: empty, no init call
 *     SL_LIST_PUSH_BACK(&items, it, q);
 *     SL_LIST_REMOVE(&items, it, q);           O(1); it->q is zeroed again
 *     struct item *x, *next;
 *     SL_LIST_FOREACH_SAFE(x, &items, q, next) may remove x as it goes
 *
 * Contract:
 * - A list is any struct with `head` and `tail` pointers to T (SL_LIST(T),
 *   or a named struct with those members, as sl_wq); a link is any member
 *   with `prev` and `next` pointers to T (SL_LINK(T)). Zeroed memory is an
 *   empty list and an unlinked element: calloc'd structs need nothing more.
 * - The list is NULL-terminated, oldest first when filled by PUSH_BACK;
 *   head and tail are NULL exactly when it is empty.
 * - An element is on at most one list per link member. REMOVE needs the
 *   list the element is on (it fixes head/tail); removing an element that
 *   is not on that list corrupts it. REMOVE zeroes the element's link, so
 *   SL_LIST_LINKED tells afterwards whether it is on the list.
 * - The element type is checked by the compiler (the stores are typed).
 * - The macros evaluate their arguments more than once: pass plain names
 *   or member accesses, never an expression with side effects.
 * - No locking: a list belongs to one reactor, or to whoever holds the lock
 *   that guards its owner (offload.c's pool).
 *
 * The waiter queues of channels and locks (sl_wq, below) are such lists
 * plus a count. */
#ifndef SL_LIST_H
#define SL_LIST_H
#include "sl_task.h"

#define SL_LINK(T) struct { T *prev, *next; }
#define SL_LIST(T) struct { T *head, *tail; }

/* Appends e (not on l) at the tail of l. */
#define SL_LIST_PUSH_BACK(l, e, link) do {             \
        (e)->link.next = NULL;                          \
        (e)->link.prev = (l)->tail;                     \
        if ((l)->tail)                                  \
            (l)->tail->link.next = (e);                 \
        else                                            \
            (l)->head = (e);                            \
        (l)->tail = (e);                                \
    } while (0)

/* Puts e (not on l) at the head of l. */
#define SL_LIST_PUSH_FRONT(l, e, link) do {            \
        (e)->link.prev = NULL;                          \
        (e)->link.next = (l)->head;                     \
        if ((l)->head)                                  \
            (l)->head->link.prev = (e);                 \
        else                                            \
            (l)->tail = (e);                            \
        (l)->head = (e);                                \
    } while (0)

/* Takes e off l, which it is on, and zeroes its link. */
#define SL_LIST_REMOVE(l, e, link) do {                \
        if ((e)->link.prev)                             \
            (e)->link.prev->link.next = (e)->link.next; \
        else                                            \
            (l)->head = (e)->link.next;                 \
        if ((e)->link.next)                             \
            (e)->link.next->link.prev = (e)->link.prev; \
        else                                            \
            (l)->tail = (e)->link.prev;                 \
        (e)->link.prev = (e)->link.next = NULL;         \
    } while (0)

/* Whether e is on l (given that, if it is on a list by this link, it is on l). */
#define SL_LIST_LINKED(l, e, link) ((e)->link.prev != NULL || (l)->head == (e))

#define SL_LIST_EMPTY(l) ((l)->head == NULL)

/* Every element, head to tail; the body must not remove e. */
#define SL_LIST_FOREACH(e, l, link) for ((e) = (l)->head; (e); (e) = (e)->link.next)

/* Every element, head to tail; the body may remove e (not the next one). */
#define SL_LIST_FOREACH_SAFE(e, l, link, tmp) \
    for ((e) = (l)->head; (e) && ((tmp) = (e)->link.next, 1); (e) = (tmp))

/* ---- waiter queues: a list of sl_waiter by `link`, with a count -------------------- */

static inline void sl_wq_push(sl_wq *q, sl_waiter *w)
{
    SL_LIST_PUSH_BACK(q, w, link);
    q->n++;
}

static inline void sl_wq_remove(sl_wq *q, sl_waiter *w)
{
    SL_LIST_REMOVE(q, w, link);
    q->n--;
}

static inline sl_waiter *sl_wq_pop(sl_wq *q)
{
    sl_waiter *w = q->head;
    if (w)
        sl_wq_remove(q, w);
    return w;
}

/* Whether w is on q. */
static inline bool sl_wq_has(const sl_wq *q, const sl_waiter *w)
{
    return SL_LIST_LINKED(q, w, link);
}

#endif
