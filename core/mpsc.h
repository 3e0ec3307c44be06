/* mpsc.h: Dmitry Vyukov's intrusive multi-producer single-consumer queue
 * (private). Producers never lock and never wait: a push is one atomic
 * exchange and one store. The consumer may briefly observe a producer
 * between those two steps; sl_mpsc_pop() then spins until the link lands,
 * which takes a few instructions unless the producer was preempted. */
#ifndef SL_MPSC_H
#define SL_MPSC_H
#include "sl_runtime.h"

/* head and the stub share the producers' line, tail has its own. A
 * producer that finds the queue empty swaps head and links the stub to
 * its message: with the stub beside head that is one line brought over,
 * not two, and the consumer's first look (head, then stub.next_) one
 * line too. The consumer writes the stub only as it pushes it back behind
 * a lone message, swapping head in the same breath. In a ping-pong every
 * push finds the queue empty (docs/core.md, "The ping-pong"). The owner
 * must be 64-aligned (reactor.c, runtime.c). */
typedef struct sl_mpsc {
    _Alignas(64) sl_msg *_Atomic head;   /* producers swap themselves in here */
    sl_msg stub;
    _Alignas(64) sl_msg *tail;           /* consumer only */
} sl_mpsc;

void sl_mpsc_init(sl_mpsc *q);
void sl_mpsc_push(sl_mpsc *q, sl_msg *m);
/* Pushes first..last, already linked through next_ (last's next_ NULL),
 * with one exchange: the consumer sees the whole chain at once. */
void sl_mpsc_push_chain(sl_mpsc *q, sl_msg *first, sl_msg *last);
/* Next message, or NULL when the queue is empty. Consumer thread only. */
sl_msg *sl_mpsc_pop(sl_mpsc *q);
/* True when nothing has been pushed that pop has not returned. Consumer
 * thread only; the load of head is seq_cst, for the sleep/wake handshake. */
bool sl_mpsc_empty(sl_mpsc *q);
#endif
