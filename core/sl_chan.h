/* sl_chan.h: bounded channels and select.
 *
 * A channel is a FIFO of fixed-size elements with a capacity from 0 (a
 * rendezvous: every send waits for its receive) to N (a ring buffer), and
 * queues of parked senders and receivers. Elements are copied in and out by
 * value (elem_size bytes).
 *
 * A parked send copies from, and a parked receive copies into, the buffer the
 * task passed; that buffer must therefore live in the task's state, not in a
 * local variable, until the wait ends.
 *
 * OWNERSHIP. The creator owns the channel: only the owner closes it and frees
 * it (ownership can be handed on with sl_chan_give). The owner is that
 * task, not its address: a task that ends owning a channel passes it to
 * nobody, and a later task made at the same address (malloc reuses it,
 * sl_spawn_mem by construction) is a non-owner like any other (-EPERM,
 * reported: "its owner is no live task here"); such a
 * channel stays until shutdown, which reports it as a leak. A task that
 * leaves a channel for others gives it first (to NULL: code outside
 * tasks). Tasks declare which ends
 * they hold with sl_chan_attach(); ends are released by sl_chan_detach() or
 * automatically when the task ends. When the last receiver end is released,
 * every parked and future send fails with -EPIPE, so no producer waits forever
 * on a channel nobody reads; when the last sender end is released, receivers
 * drain what is buffered and then get -EPIPE. Ends are opt-in: a channel no
 * task ever attached to is governed by close alone.
 *
 * BACKPRESSURE. With watermarks, on_pressure(ch, true) runs when the length
 * rises to `high`, and on_pressure(ch, false) when it falls back to `low`:
 * once per crossing (hysteresis), so the producer can be paused at its source
 * (a socket) and resumed.
 *
 * REACTORS. A channel lives on the reactor that created it (its home). Tasks
 * of other reactors can sl_chan_send() and sl_chan_recv() on it, exactly once
 * (an element is never lost or duplicated, even when the caller's deadline
 * fires at the same moment). A send on a buffered channel goes by credit: the
 * home lends free room to the sender's reactor (counted as taken, so the
 * capacity holds), a send with credit returns 0 at once and its element
 * reaches the home in a batch when the sender's callback ends; without
 * credit the task parks on its own reactor until room is lent. Lent room
 * stays with that reactor (topped up as its elements arrive) until the home
 * needs it: a send, try_send or select send case at the home that finds
 * the channel full while room is lent calls it back, and its -EAGAIN or
 * wait lasts one round trip between the two reactors. After a
 * close, elements sent with credit lent before it still arrive, and
 * receivers get -EPIPE only once the channel is empty and all credit is
 * back. A receive on a buffered channel is fed ahead (core/rrecv.c): the
 * home lends the receiver's reactor the first elements of its ring, in
 * one message, still counted in the length (so the capacity and the
 * watermarks hold), and a receive there with a lent element in hand
 * returns 0 at once; without one the task parks on its own reactor until
 * elements are lent. Lent elements stay at the front of the ring until
 * received (reported home at the end of the callback), and while any are
 * lent nobody else receives: a receive, try_recv or select receive case
 * at the home, or another reactor's receive, calls them back (try_recv:
 * -EAGAIN meanwhile) and waits one round trip; such a recall also ends
 * lending on that channel, whose other-reactor receivers then use the
 * round trip. So each receiver gets each sender's elements in the order
 * sent, every element is received exactly once, and a receiver's
 * deadline or cancel takes nothing. After a close, what was lent is
 * still received there; -EPIPE once nothing is left. Free destroys the
 * lent elements not received when they come back. Fair across reactors
 * within one pass: a receive (a send waiting for credit) from another
 * reactor that waits at the home and is passed over once by the home's
 * parked receivers (senders) gets the next element (room) before them
 * (docs/core.md, "Fair between the home and other reactors"). A receive on an
 * expiring or _mem channel, and a send or receive on a rendezvous
 * channel, is a round trip to the home and always parks the caller.
 * sl_select takes cases on other reactors' channels (below). Every other
 * operation (try_, close, attach, free) is home-only and returns -EXDEV
 * elsewhere (docs/core.md, "Across reactors"). */
#ifndef SL_CHAN_H
#define SL_CHAN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_task.h"

typedef struct sl_chan sl_chan;

typedef struct sl_chan_opts {
    /* For diagnostics. The channel keeps the pointer, not a copy, and so
     * do other reactors' tasks waiting on it (their reactor's records, a
     * select's cases): they may describe it after sl_chan_free, until its
     * -EPIPE reaches them. So the string must stay unchanged until the
     * runtime (the reactor, for sl_chan_new_on without one) is freed: a
     * literal, or storage freed after that. NULL: "". */
    const char *name;
    /* What sl_chan_free (or the teardown of a leaked channel) does with the
     * elements still buffered, one call each; at most one of the two:
     *  - ptr_free, for a channel of pointers (elem_size == sizeof(void *))
     *    that owns what they point to: it receives each element's VALUE,
     *    so `.ptr_free = free` is right;
     *  - elem_drop, for elements that own something (a struct holding a
     *    buffer): it receives a pointer to the element IN THE RING, the
     *    channel's memory, which it must not free. `free` does not fit its
     *    type, and is refused if cast to it (-EINVAL). */
    void (*ptr_free)(void *ptr);
    void (*elem_drop)(sl_chan *ch, void *elem);
    size_t high, low;                  /* watermarks; high 0 = none */
    void (*on_pressure)(sl_chan *ch, bool high, void *arg);
    void *pressure_arg;
    sl_task *owner;                    /* NULL: the current task (or none) */
    /* EXPIRING ELEMENTS (sl_chan_send_until). `expiring` gives every slot a
     * deadline: sl_chan_new allocates cap * 8 bytes for them; sl_chan_mem
     * takes them in `deadlines` (cap entries, the caller's, outliving the
     * channel; non-NULL implies expiring). An element whose deadline has
     * passed is never received: it is dropped, counted in `expired`, handed
     * to on_expire (if set) and then to the destructor (ptr_free or
     * elem_drop), each once. on_expire is how a sender is told: it runs on
     * the home reactor with a pointer to the element in the ring (which it
     * must not free, and the element usually names its request), must not
     * operate on the channel, and may not park. */
    bool expiring;
    uint64_t *deadlines;
    void (*on_expire)(sl_chan *ch, void *elem, void *arg);
    void *expire_arg;
} sl_chan_opts;

typedef struct sl_chan_stats {
    size_t len, cap, elem_size;        /* len: as sl_chan_len */
    size_t high_water;                 /* greatest length ever seen */
    size_t high, low;                  /* the watermarks */
    bool pressured;                    /* above high, not yet back to low */
    bool closed;
    uint64_t sent, received;
    uint64_t expired;                  /* elements dropped at their deadline */
    uint64_t send_parked_ns;           /* total time senders spent parked (reactor's
                                        * coarse clock: exact to a batch of steps) */
    uint32_t senders, receivers;       /* attached ends */
    uint32_t parked_senders, parked_receivers;
} sl_chan_stats;

/* The options come last, so a compound literal may be written in place.
 * Creates a channel on the current reactor (the calling thread's; a reactor
 * not running yet may be named with sl_chan_new_on). `opts` may be NULL.
 * Records the caller's file:line for leak reports. Returns 0, -ENOMEM, or
 * -EINVAL (elem_size 0 or > 64 KiB, low > high, no reactor, ptr_free with
 * elem_size other than sizeof(void *), both ptr_free and elem_drop,
 * elem_drop == free). The `...` is the options: exactly one argument (a
 * pointer or NULL), else it does not compile. */
#define sl_chan_new(out, elem_size, cap, ...) \
    sl_chan_new_at_((out), NULL, (elem_size), (cap), SL_OPTS_(sl_chan_opts, __VA_ARGS__), NULL, NULL, __FILE__, __LINE__)
#define sl_chan_new_on(r, out, elem_size, cap, ...) \
    sl_chan_new_at_((out), (r), (elem_size), (cap), SL_OPTS_(sl_chan_opts, __VA_ARGS__), NULL, NULL, __FILE__, __LINE__)

/* The _mem twin: `ch` is the caller's storage and `buf` the ring storage of
 * at least cap * elem_size bytes (NULL when cap is 0). Nothing is
 * allocated (attachments excepted). Both must outlive sl_chan_free(), and
 * are the caller's again once it returns. So a _mem channel stays on its
 * home reactor: sl_chan_send, sl_chan_send_until, sl_chan_recv and
 * sl_select cases on it from another reactor return -EXDEV, nothing taken
 * or posted (an operation on its way to the home would reach it after a
 * free that crossed it, and read the header there: docs/core.md, "_mem
 * channels stay home"). Use sl_chan_new across reactors. Its free also
 * drops the ends attached (sl_chan_attach): a later sl_chan_detach on it
 * is a use of freed storage (a task's end no longer detaches it). */
#define sl_chan_mem(ch, buf, elem_size, cap, ...) \
    sl_chan_new_at_(NULL, NULL, (elem_size), (cap), SL_OPTS_(sl_chan_opts, __VA_ARGS__), (ch), (buf), __FILE__, __LINE__)

/* Sends a copy of *elem. Returns 0 when the element was handed to a parked
 * receiver or buffered; SL_PENDING when the task parked (final result 0, or
 * -EPIPE if the channel closed or lost its last receiver meanwhile,
 * -ETIMEDOUT, -ECANCELED); -EPIPE if the channel is closed or has no
 * receivers left; the cancel error if t is cancelled. `elem` must stay valid
 * while parked. */
int sl_chan_send(sl_task *t, sl_chan *ch, const void *elem);

/* Sends a copy of *elem that expires at `expires` (absolute, sl_now_ns()
 * clock; 0: never, as sl_chan_send). Once in the channel the element is
 * never received after that moment: it is dropped when a receive (or a
 * select) reaches it, or when a send finds the channel full (a sweep: the
 * slot is free again at once), its on_expire and destructor run and
 * `expired` counts it; until then it counts in the length and watermarks.
 * While it is not in the channel it is the caller's: a send that parks
 * waits at most until `expires` and then fails with -ETIMEDOUT, nothing
 * taken. Returns what sl_chan_send returns, and -ETIMEDOUT if `expires` has
 * passed already by the reactor's clock (read per batch of steps: a
 * deadline that passed since is accepted, then dropped by the receive that
 * meets it), nothing sent; -EINVAL if the channel was not made
 * `expiring`. Across reactors, on a buffered channel, the deadline travels
 * with the element: one that expires on its way is dropped at the home
 * (the send returned 0: on_expire tells); on a rendezvous or _mem channel
 * of another reactor it returns -EXDEV. At the home of a rendezvous
 * channel it meets another reactor's select as sl_chan_send does, the
 * deadline judged when it is offered (docs/core.md, "sl_chan_send_until at
 * the home offers too"): accepted, it returns 0 even if `expires` passed
 * while the offer travelled. */
int sl_chan_send_until(sl_task *t, sl_chan *ch, const void *elem, uint64_t expires);

/* Receives into *elem. Returns 0, SL_PENDING (final result 0, -EPIPE,
 * -ETIMEDOUT, -ECANCELED), -EPIPE when the channel is closed (or has lost its
 * last sender) and empty, or the cancel error. At the home, a receive that
 * finds the front of the ring lent to another reactor parks (SL_PENDING)
 * for the recall's round trip. From another reactor: also -ENOMEM (no
 * memory for the receiver's record), -EXDEV on a _mem channel (see
 * sl_chan_mem), and SL_PENDING ends with -EPIPE when the channel is freed
 * meanwhile. sl_chan_send from another reactor: -EXDEV on a _mem channel
 * too. */
int sl_chan_recv(sl_task *t, sl_chan *ch, void *elem);

/* Never park: 0, -EAGAIN when they would have to (try_recv also while the
 * front of the ring is lent to another reactor: it is being called back),
 * -EPIPE, -EXDEV off home. `t` may be NULL (for code outside tasks, such
 * as socket callbacks). */
int sl_chan_try_send(sl_task *t, sl_chan *ch, const void *elem);
int sl_chan_try_recv(sl_task *t, sl_chan *ch, void *elem);
/* The same for an expiring element: also -ETIMEDOUT (passed already) and
 * -EINVAL (channel not `expiring`). */
int sl_chan_try_send_until(sl_task *t, sl_chan *ch, const void *elem, uint64_t expires);

/* Closes the channel: parked senders get -EPIPE, parked receivers -EPIPE,
 * buffered elements stay for receivers to drain. Only the owner may close
 * (`t` NULL stands for code outside tasks, an owner of NULL). Returns 0,
 * -EALREADY for a second close, -EPERM for a non-owner (both also reported
 * with the caller's file:line), -EXDEV off home. */
#define sl_chan_close(t, ch) sl_chan_close_at_((t), (ch), __FILE__, __LINE__)

/* Hands ownership from `from` to `to` (either may be NULL for "no task").
 * Both must be live tasks (or NULL). Returns 0 or -EPERM if `from` is not
 * the owner (an ended owner's channel can no longer be given: OWNERSHIP). */
int sl_chan_give(sl_chan *ch, sl_task *from, sl_task *to);

/* Ends held by a task (or by non-task code when t is NULL). */
#define SL_CHAN_SENDER   1
#define SL_CHAN_RECEIVER 2

/* Declares that `t` holds the given ends (a task may attach once per
 * channel; attach again to add ends). Returns 0, -ENOMEM, -EINVAL (bad ends),
 * -EPIPE if the channel is closed. */
int sl_chan_attach(sl_chan *ch, sl_task *t, int ends);

/* Releases ends held by `t`. Releasing the last receiver end fails every
 * parked sender with -EPIPE; releasing the last sender end wakes receivers
 * of an empty channel with -EPIPE. Returns 0 or -ENOENT if t holds none of
 * those ends. */
int sl_chan_detach(sl_chan *ch, sl_task *t, int ends);

/* Frees the channel: closes it if open (parked tasks get -EPIPE), destroys
 * buffered elements with elem_free, unregisters it. Owner only. The ring
 * goes at once; the header when the last attached end is released too, and
 * then into its reactor's quarantine: it stays readable while the next
 * SL_CHAN_QUARANTINE channels of that reactor are freed (and until the
 * reactor is freed), then among the reactor's free headers, which its next
 * sl_chan_new takes first: a heap header goes back to malloc only with its
 * reactor (memory: the peak of live channels plus SL_CHAN_QUARANTINE
 * headers), so past the window a stale pointer may name another channel
 * (the caller's bug), while the library's own messages in flight are told
 * apart by the header's generation (docs/core.md, "A message that crosses
 * a free"). A stale pointer used within the window meets a freed
 * channel, not freed memory: a second free or a close returns -EALREADY, a
 * send or receive -EPIPE (all three reported with the caller's file:line),
 * try_ operations -EPIPE, attach -EPIPE, select -EINVAL. An operation
 * whose offer to another reactor's select is out at the free (rsel.c: a
 * blocking send or receive here, a select claimed for it) is decided by
 * the answer, as one that completed before the free: accepted, the
 * element is delivered and it returns 0; declined, -EPIPE (docs/core.md,
 * "A free with an offer out"). Returns 0, -EPERM
 * (non-owner, reported), -EXDEV off home, -EALREADY if already freed. */
#define SL_CHAN_QUARANTINE 1024
#define sl_chan_free(t, ch) sl_chan_free_at_((t), (ch), __FILE__, __LINE__)

/* Sets (or, with fn NULL, removes) the watermarks and pressure callback after
 * creation. If the channel already holds `high` or more elements, fn(ch,
 * true) runs at once. Returns 0, -EINVAL (high 0 with a callback, low >
 * high), -EXDEV off home. */
int sl_chan_set_pressure(sl_chan *ch, size_t high, size_t low,
                         void (*fn)(sl_chan *ch, bool high, void *arg), void *arg);

void sl_chan_stats_get(const sl_chan *ch, sl_chan_stats *st);
/* How many elements the channel holds (home only): those in its ring and
 * those given to receivers on other reactors that they have not yet
 * reported received (docs/core.md "Given elements"), since those still
 * hold room. The watermarks and the statistics count the same. */
size_t sl_chan_len(const sl_chan *ch);
size_t sl_chan_cap(const sl_chan *ch);
const char *sl_chan_name(const sl_chan *ch);
sl_reactor *sl_chan_reactor(const sl_chan *ch);

/* Calls fn for every live channel of `r` (on r's thread); stops when fn
 * returns non-zero and returns that value. */
int sl_reactor_foreach_chan(sl_reactor *r, int (*fn)(sl_chan *, void *), void *arg);

/* ---- select ------------------------------------------------------------ */

#define SL_SEND 1
#define SL_RECV 2

/* One case of a select. Fill ch, op and buf; the rest is private. The case
 * array must live in the task's state while the select is parked. */
typedef struct sl_case {
    sl_chan *ch;
    int op;             /* SL_SEND or SL_RECV */
    uint32_t gen_;      /* private: another reactor's channel's generation, read by sl_select
                         * (core/chan.c, type-stable headers; in what was padding) */
    void *buf;          /* element to send, or where to receive */
    int err;            /* out: the chosen case's own result, 0 or -EPIPE */
    sl_waiter w_;       /* private */
    uint32_t waited_;   /* private: priority mode's count of choices passed over */
    /* No room here for what the diagnostics say of another reactor's
     * channel: they take it from this reactor's record or proxy of the
     * case (core/diag.c). 96 bytes on LP64, asserted in core/select.c:
     * select4_ns pays for every byte (issue 17). */
} sl_case;

#define SL_SELECT_DEFAULT 1   /* never park: -EAGAIN if no case is ready */

/* PRIORITY MODE: SL_SELECT_PRIO(k) (may be or-ed with SL_SELECT_DEFAULT).
 * Among the ready cases the first (lowest index) is chosen, unless that
 * would let a ready case be passed over more than k choices in a row: a
 * ready case is never passed over more than k times while it stays ready
 * (exactly k when the cases before it are always ready: with two cases
 * always ready, the second is chosen at every (k+1)-th choice). k must be
 * at least n - 1 (n cases always ready need a turn each within k + 1
 * choices): else -EINVAL; 0 <= k <= SL_SELECT_PRIO_MAX. The counts live in
 * the cases (waited_): keep the array between calls (setting ch, op and buf
 * again is fine, zeroing it restarts the counts). When the select parks,
 * no case was ready: the counts start again. */
#define SL_SELECT_PRIO_ 2
#define SL_SELECT_PRIO_MAX 0x7fffff
#define SL_SELECT_PRIO(k) (SL_SELECT_PRIO_ | (int)((unsigned)(k) << 8))

/* Waits until one of the cases can proceed, performs it, and returns its
 * index; cases[i].err is 0, or -EPIPE for a closed channel (a closed
 * channel's case counts as ready). When several are ready one is chosen at
 * random, uniformly (or by priority: SL_SELECT_PRIO above). With SL_SELECT_DEFAULT it never parks and returns
 * -EAGAIN if none is ready. Otherwise it may park: SL_PENDING, then the index
 * or -ETIMEDOUT/-ECANCELED. Cases may name buffered channels of other
 * reactors: such a case is decided on the calling task's reactor (a send
 * is ready with credit in hand there, a receive with a lent or given
 * element in hand there, and a parked case waits in that reactor's own
 * queue for credit or a lend), so exactly one case completes; what comes
 * for a case not chosen stays for the next send or receive. A case on
 * another reactor's rendezvous channel is never ready at the start (a
 * select with SL_SELECT_DEFAULT passes it by); a select that parks sends
 * a proxy home for it, and the case fires when a counterpart there offers
 * itself and the select still waits (docs/core.md, "Rendezvous cases by
 * offer"); its cases[i].err is 0 or -EPIPE (closed or freed at the home).
 * A receive case on another reactor's expiring channel goes the same way:
 * never ready at the start, the home offers its head element (alive at
 * the offer: an accepted one is received even if its deadline passed on
 * the way) and nobody there receives past it until the answer.
 * A select whose cases are all on this reactor's channels meets another
 * reactor's select waiting with the other operation on one of its
 * rendezvous channels (docs/core.md, "A select at the home meets a remote
 * select"): it is claimed for that select and offered to it; meanwhile its
 * deadline or cancel waits for the answer (accepted: that case; declined:
 * the error), and if declined it is matched again, uniformly among the
 * cases ready then whatever its flags.
 * Returns -EINVAL (n < 1, NULL channel, bad op), -EXDEV (checked before
 * anything is taken or parked: any case on another reactor's _mem
 * channel, sl_chan_mem; docs/core.md,
 * "sl_select over channels of other reactors"), -ENOMEM (no memory for
 * this reactor's record of a remote buffered channel, or for a proxy (a
 * rendezvous case, or a receive case on an expiring channel): nothing
 * parked), -EINVAL for a priority
 * k < n - 1, or the cancel error. */
int sl_select(sl_task *t, sl_case *cases, int n, int flags);

/* ---- private ------------------------------------------------------------ */

struct sl_chan {
    /* The first 64 bytes: what another reactor's send or receive reads
     * every time (home_, heap_, cap_, elem_size_, expiring_), beside what
     * changes only at creation, close and free. A heap channel's header is
     * 64-aligned (chan.c), so the home's writes of every operation (len_,
     * head_, the queues, the counters, below) do not make those reads a
     * cache miss on the other reactor: one a leg of a cross-reactor
     * ping-pong (docs/core.md, "The ping-pong"). */
    sl_reactor *home_;
    size_t elem_size_, cap_;
    uint8_t closed_, freed_, heap_, buf_heap_, senders_gone_, receivers_gone_;
    uint8_t expiring_;
    uint8_t pad_;
    struct { sl_chan *prev, *next; } link_;   /* the home's channels, its quarantine or free headers (core/list.h) */
    const char *name_;
    /* The generation (issue 17): a heap header is reused for the home's
     * next channels (chan.c, "type-stable headers"), and every message of
     * another reactor names a channel by (address, gen_). Bumped by the
     * home at the free and again when the header is released (__atomic,
     * release); read by another reactor when a task of its names the
     * channel (acquire); kept across reuse. */
    uint32_t gen_;
    uint32_t pad2_;
    /* written by the home as it works */
    const char *file_;
    int line_;
    uint8_t pressured_;
    uint8_t remote_seen_;          /* ever used from another reactor */
    size_t len_, head_;
    unsigned char *buf_;
    sl_wq sendq_, recvq_;
    void (*ptr_free_)(void *);
    void (*elem_drop_)(sl_chan *, void *);
    size_t high_, low_;
    void (*on_pressure_)(sl_chan *, bool, void *);
    void *pressure_arg_;
    sl_task *owner_;               /* with owner_id_ (the task's id_): an ended owner's */
    uint64_t owner_id_;            /* address, reused, names nobody (chan.c, ownership) */
    uint32_t n_senders_, n_receivers_, n_holds_;
    struct { struct sl_hold *head, *tail; } holds_;   /* ends attached (core/list.h) */
    size_t high_water_;
    uint64_t sent_, received_, send_parked_ns_;
    uint32_t remote_ops_;          /* cross-reactor operations under way */
    sl_reactor *qhome_;            /* freed: the reactor whose quarantine takes the header */
    /* credit lent to senders on other reactors (core/rsend.c): slots counted
     * as taken, len_ + reserved_ (+ given_) <= cap_ */
    size_t reserved_;
    struct sl_rs_ask *asks_, *asks_tail_;   /* asks for credit waiting for room */
    sl_chan *grant_next_;          /* in the home's list of channels to serve at turn end */
    uint8_t grant_queued_;
    /* expiring elements: a deadline per slot (0 none), how many are set */
    uint8_t dl_heap_;             /* expiring_ is in the first line */
    uint64_t *dl_;
    size_t dl_n_;
    uint64_t expired_;
    void (*on_expire_)(sl_chan *, void *, void *);
    void *expire_arg_;
    struct sl_rs_loan *loans_;     /* credit out, per borrowing reactor (core/rsend.c) */
    uint32_t recalls_;             /* recalls of credit not answered yet */
    /* elements lent to a receiving reactor (core/rrecv.c): the first lent_
     * of the ring, still counted in len_, all lent to lessee_ */
    size_t lent_;
    sl_reactor *lessee_;
    uint8_t lrecall_;              /* a recall of the lent elements is out */
    uint8_t lend_off_;             /* contended: lend no more (read by other reactors: __atomic) */
    struct sl_rr_up *rasks_, *rasks_tail_;   /* other reactors' receivers waiting for a lend */
    /* once lending is off, elements GIVEN to receiving reactors (core/rrecv.c):
     * out of the ring, counted as taken room until reported received,
     * len_ + reserved_ + given_ <= cap_; gives_ says how many each holds */
    size_t given_;
    struct sl_rr_give *gives_;
    /* selects of other reactors waiting by proxy (core/rsel.c: rendezvous
     * channels, and receive cases on expiring ones): proxies in sendq_ /
     * recvq_, and those queued or offered (the header stays while any is) */
    uint32_t rv_sendq_, rv_recvq_, rv_out_;
    struct { struct rv_proxy *head, *tail; } rv_offers_;   /* those with an offer out (a free detaches a
                                                            * rendezvous one's; core/list.h) */
    /* 1 while an expiring channel's head element is offered to a receive
     * proxy: out of the ring, counted in given_ (its room still taken),
     * nobody receives past it */
    uint32_t rv_held_;
};

int sl_chan_new_at_(sl_chan **out, sl_reactor *r, size_t elem_size, size_t cap,
                    const sl_chan_opts *opts, sl_chan *mem, void *buf,
                    const char *file, int line);
int sl_chan_close_at_(sl_task *t, sl_chan *ch, const char *file, int line);
int sl_chan_free_at_(sl_task *t, sl_chan *ch, const char *file, int line);

#endif
